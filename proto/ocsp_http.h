/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The OCSP-over-HTTP mapping (RFC 6960 Appendix A, RFC 5019 §5–6): GET paths, HTTP dates, and
 * the caching headers of a response. Pure: times are arguments.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/buf.h"
#include "proto/ocsp.h"

/*
 * Finds the OCSP request in a GET request-target. The base64 may follow any path prefix
 * ("/", "/ocsp/", nginx's "/ocsp/path?x=1/"), be %-encoded or not (so '/' and '+' may appear raw),
 * and may lack '=' padding. Candidates are tried from the longest suffix starting after a '/'
 * or '?' to the shortest; the first that decodes to a valid OCSPRequest wins.
 * On success writes the DER to *ret_der (appended) and the parsed request to *ret.
 * Errors: -EBADMSG nothing decodes to a request; -ENOTSUP / -EMSGSIZE as ocsp_request_parse for
 * the best candidate; -EMSGSIZE target over 8192 bytes.
 */
int ocsp_http_get_decode(const char *target, size_t len, struct buf *ret_der,
			 struct ocsp_request *ret);

/* Standard base64 (RFC 4648 §4) with padding, appended to out. */
void ocsp_http_base64_encode(const uint8_t *data, size_t len, struct buf *out);
/* Decodes standard base64, padding optional, appending to out (nothing on error).
 * Errors: -EBADMSG a character outside the alphabet or an impossible length. */
int ocsp_http_base64_decode(const char *s, size_t n, struct buf *out);

/*
 * Splits an absolute-form request target (what a client sends to a forward proxy, RFC 9112
 * §3.2.2) that names an OCSP responder: "http://host[:port]/path…" (or https). For a GET the
 * OCSP request is found in the path as ocsp_http_get_decode finds it, and the origin is the URL
 * before it ("http://ocsp.example/sub/"); for a POST the origin is the whole target and the
 * request is the body (the caller's to parse). The origin is written NUL-terminated.
 * Nothing is appended to ret_der on error.
 * Errors: -EINVAL not absolute-form (origin-form "/…", or another scheme); -EBADMSG an empty
 * or odd authority (userinfo, spaces), control characters, or a GET without an OCSP request
 * (also -ENOTSUP / -EMSGSIZE as ocsp_http_get_decode); -EMSGSIZE origin over origin_size.
 */
int ocsp_http_proxy_target(const char *target, size_t len, bool is_get, struct buf *ret_der,
			   struct ocsp_request *ret, char *origin, size_t origin_size);

/* Encodes DER as the url-encoded base64 GET path segment (no leading '/'); appends to out. */
void ocsp_http_get_encode(const uint8_t *der, size_t len, struct buf *out);

/* IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT"): exactly 29 bytes + NUL. */
#define HTTP_DATE_LEN 29
void http_date_format(int64_t unix_s, char out[HTTP_DATE_LEN + 1]);
/* Parses IMF-fixdate, RFC 850 and asctime dates. Errors: -EBADMSG. */
int http_date_parse(const char *s, size_t len, int64_t *ret_unix);

/* The per-response values behind RFC 5019 §6 headers, computed once when a response is stored. */
struct ocsp_http_meta {
	int64_t this_update_unix; /* Last-Modified */
	int64_t next_update_unix; /* Expires */
	uint64_t etag;		  /* strong ETag: a hash of the DER, rendered as 16 hex digits */
};
/* ETag value for a DER body (first 8 bytes of its SHA-256, big-endian). */
uint64_t ocsp_http_etag(const uint8_t *der, size_t len);

/*
 * Renders the headers of a 200 response for a cached OCSP response, from the status line to the
 * empty line, appended to out:
 *   HTTP/1.1 200 OK, Date, Content-Type: application/ocsp-response, Content-Length,
 *   Last-Modified, Expires, ETag, Cache-Control: max-age=<clamped to [0, nextUpdate - now]>,
 *   public, no-transform, must-revalidate; and "Connection: close" or "Connection: keep-alive"
 *   (the latter only for HTTP/1.0 keep-alive clients, as `conn` says).
 * `max_age_cap_s` (> 0) lowers max-age further (e.g. to the time until the next refresh).
 */
enum ocsp_http_conn {
	OCSP_HTTP_CONN_DEFAULT,
	OCSP_HTTP_CONN_CLOSE,
	OCSP_HTTP_CONN_KEEP_ALIVE
};
void ocsp_http_render_200(struct buf *out, const struct ocsp_http_meta *m, size_t body_len,
			  int64_t now_unix, int64_t max_age_cap_s, enum ocsp_http_conn conn);
/* The same for 304 Not Modified (no body, no Content-Length). */
void ocsp_http_render_304(struct buf *out, const struct ocsp_http_meta *m, int64_t now_unix,
			  int64_t max_age_cap_s, enum ocsp_http_conn conn);

/*
 * Conditional request evaluation (RFC 9110 §13.2.2): If-None-Match takes precedence over
 * If-Modified-Since. `inm` / `ims` may be NULL (absent). Returns true for "304".
 */
bool ocsp_http_not_modified(const struct ocsp_http_meta *m, const char *inm, size_t inm_len,
			    const char *ims, size_t ims_len);

/* Response-side header parsing for the fetcher. */
/* Cache-Control: max-age=N from a header value; -ENOENT when absent, -EBADMSG if malformed. */
int ocsp_http_parse_max_age(const char *v, size_t len, int64_t *ret_s);
/* Retry-After: delta-seconds or HTTP-date; returns seconds from now (≥ 0). Errors: -EBADMSG. */
int ocsp_http_parse_retry_after(const char *v, size_t len, int64_t now_unix, int64_t *ret_s);
