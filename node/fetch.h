/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Upstream OCSP fetches over HTTP with the libcurl multi interface, driven by the libuv loop
 * (curl's socket and timer callbacks become uv_poll_t and uv_timer_t). One `struct fetcher` per
 * loop; any number of fetches in flight, each independent.
 *
 * The request method follows RFC 5019 §5: GET with the url-encoded base64 appended to the URL
 * when that encoding is under 255 bytes, POST (application/ocsp-request) otherwise.
 * libcurl types stop here: errors come back as -errno plus a message.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct fetcher;
struct fetch;

struct fetcher_config {
	uint64_t connect_timeout_ms; /* TCP + TLS connect */
	uint64_t total_timeout_ms;   /* whole transfer */
	size_t max_response_bytes;   /* larger bodies abort the transfer with -EMSGSIZE */
	const char *proxy;	     /* forward proxy URL for every fetch, NULL for none (copied) */
	const char *ca_file;	/* CA bundle for https upstreams, NULL for the system default */
	const char *user_agent; /* copied */
	size_t max_host_connections; /* per host; 0 = curl's default */
};

struct fetch_request {
	const char *url;    /* responder URL, http:// or https:// (copied) */
	const uint8_t *der; /* DER OCSPRequest (copied); NULL: a plain GET of `url` as
			       given (AIA caIssuers downloads) */
	size_t der_len;
	const char *if_none_match; /* ETag of the held response, NULL for none (copied) */
	bool force_post;	   /* POST even when GET would fit */
	bool h2; /* a stapled parent: HTTP/2 by ALPN on https:// (HTTP/1.1 keep-alive on http://),
		    multiplexed on one connection */
	const char *const *headers; /* extra request header lines "Name: value" (copied) */
	size_t n_headers;
	uint64_t timeout_ms; /* whole-exchange bound; 0: the fetcher's */
};

/* Largest "Stapled-Issuer" response header value kept (base64 of a CA certificate). */
#define FETCH_ISSUER_MAX 16384

struct fetch_result {
	int err;	  /* 0: an HTTP response came back (any status); else -errno:
			     -ETIMEDOUT, -ECONNREFUSED, -EHOSTUNREACH, -EMSGSIZE (over the
			     cap), -EPROTO (HTTP-level garbage), -EIO other */
	char errmsg[256]; /* human-readable cause when err != 0 */
	long http_status; /* 200, 304, 5xx … (0 when err != 0) */
	bool used_post;
	const uint8_t *body; /* borrowed: valid only during the callback */
	size_t body_len;
	char content_type[128]; /* "" if absent; parameters kept as sent */
	char etag[128];		/* "" if absent; as sent, quotes included */
	int64_t max_age_s;	/* Cache-Control max-age, -1 if absent */
	int64_t retry_after_s;	/* Retry-After in seconds from now, -1 if absent */
	int64_t date_unix;	/* Date header, -1 if absent */
	double total_ms;	/* transfer time */
	/* "Stapled-Issuer" header of a parent node (base64 DER, unchecked), borrowed like body;
	 * NULL if absent or over FETCH_ISSUER_MAX. */
	const char *stapled_issuer;
	size_t stapled_issuer_len;
};

typedef void (*fetch_cb)(struct fetch *f, const struct fetch_result *r, void *ud);

/* Errors: -ENOMEM / -EIO if curl cannot be initialised. */
int fetcher_new(uv_loop_t *loop, const struct fetcher_config *cfg, struct fetcher **ret);

/*
 * Starts a fetch. On success the callback is called exactly once, from the loop, unless the
 * fetch is cancelled first; the struct fetch is freed after the callback returns.
 * Errors (callback never called): -EINVAL bad URL scheme (only http and https), malformed URL,
 * CR/LF in if_none_match or a header line, a header line without "Name:", or der == NULL
 * with der_len > 0; -ECANCELED the fetcher is closing;
 * -ENOMEM / -EIO curl could not set the transfer up.
 */
int fetcher_start(struct fetcher *fr, const struct fetch_request *req, fetch_cb cb, void *ud,
		  struct fetch **ret);

/* Cancels a fetch in flight: its callback will not be called. Safe inside other callbacks. */
void fetch_cancel(struct fetch *f);

/* Number of fetches in flight. */
size_t fetcher_active(const struct fetcher *fr);

/*
 * Cancels every fetch (no callbacks) and closes all handles (every struct fetch pointer the
 * caller holds becomes invalid: do not cancel them afterwards); on_closed is called once every
 * libuv handle is closed, after which the fetcher is freed.
 */
void fetcher_close(struct fetcher *fr, void (*on_closed)(void *ud), void *ud);
