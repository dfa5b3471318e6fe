/* SPDX-License-Identifier: Apache-2.0 */
/*
 * HTTP/2 server sessions (RFC 9113) on nghttp2, without I/O: received bytes go in, bytes to send
 * come out, complete requests are reported through a callback and answered with h2_respond(),
 * at once or later (a request may wait for an upstream fetch while other streams go on).
 * nghttp2 types stop here. One session per connection; the server switches a connection to
 * HTTP/2 when its first bytes are the client connection preface (h2c with prior knowledge) or
 * when TLS negotiated "h2" through ALPN.
 *
 * Limits (struct h2_limits) protect the node: concurrent streams per connection (advertised in
 * SETTINGS and enforced), header block and body sizes (a stream over a limit is reset with
 * REFUSED_STREAM or answered 413/431, never the whole connection), and a budget of streams a
 * client may open and reset without waiting for answers (rapid-reset floods end the connection
 * with GOAWAY ENHANCE_YOUR_CALM). A malformed frame ends that connection only.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/buf.h"

struct h2_session;

struct h2_str {
	const char *p;
	size_t len; /* p == NULL: absent */
};

/* A complete request (END_STREAM seen). Everything is borrowed: valid during the callback only. */
struct h2_request {
	int32_t stream_id;
	struct h2_str method;	 /* ":method" */
	struct h2_str path;	 /* ":path" (origin-form, or absolute for proxies) */
	struct h2_str authority; /* ":authority" or Host */
	struct h2_str scheme;	 /* ":scheme" */
	struct h2_str content_type;
	struct h2_str if_none_match;
	struct h2_str if_modified_since;
	struct h2_str stapled_origin; /* between stapled nodes (docs/decisions/0006) */
	struct h2_str stapled_hops;
	struct h2_str stapled_want_issuer;
	struct h2_str stapled_issuer;
	struct h2_str stapled_forwarded;
	const uint8_t *body;
	size_t body_len;
};

struct h2_header {
	const char *name; /* lowercase */
	const char *value;
	size_t value_len;
};

struct h2_limits {
	uint32_t max_concurrent_streams; /* advertised and enforced (default 128) */
	size_t max_header_bytes;	 /* per request header block, decoded (8192) */
	size_t max_body_bytes;		 /* per request body (16384) */
	uint32_t max_unanswered_resets;	 /* streams reset by the client before being answered,
					    per connection, before GOAWAY (1000) */
};
void h2_limits_default(struct h2_limits *l);

struct h2_callbacks {
	/* A request is complete. The handler answers now or later with h2_respond(); until then
	 * the stream stays open. */
	void (*on_request)(void *ud, struct h2_session *s, const struct h2_request *req);
	/* The client reset (or the session dropped) a stream that was not answered yet: forget any
	 * pending answer for it. Optional. */
	void (*on_stream_closed)(void *ud, struct h2_session *s, int32_t stream_id);
};

/* Errors: -ENOMEM. The session starts by queuing our SETTINGS. */
int h2_session_new(const struct h2_limits *limits, const struct h2_callbacks *cb, void *ud,
		   struct h2_session **ret);
void h2_session_free(struct h2_session *s);

/*
 * Feeds received bytes (the first call starts with the client preface). Calls on_request for
 * every request completed by these bytes. Errors: -EPROTO the client broke the protocol or a
 * flood limit was hit: a GOAWAY is queued, send what h2_session_send() gives, then close.
 */
int h2_session_recv(struct h2_session *s, const uint8_t *data, size_t len);

/*
 * Answers a stream: status, headers (":status" is added; content-length is added from
 * body_len), and the body (copied). Errors: -ENOENT the stream is gone (reset by the client):
 * nothing to send; -EINVAL bad arguments.
 */
int h2_respond(struct h2_session *s, int32_t stream_id, int status, const struct h2_header *hdrs,
	       size_t n_hdrs, const uint8_t *body, size_t body_len);

/*
 * Appends every frame ready to send to out (bounded by flow control). Returns 1 while the session
 * goes on, 0 when it is finished (GOAWAY sent and nothing left: close after writing out), or
 * -EPROTO on an internal nghttp2 error.
 */
int h2_session_send(struct h2_session *s, struct buf *out);

/* Starts a graceful shutdown: GOAWAY with the last stream id; streams in progress finish. */
void h2_session_shutdown(struct h2_session *s);

/* True when the bytes look like the start of the HTTP/2 client preface (given at least
 * min(len, 24) bytes: a prefix match on fewer bytes answers true). */
bool h2_is_preface(const uint8_t *data, size_t len);
