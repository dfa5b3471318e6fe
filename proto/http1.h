/* SPDX-License-Identifier: Apache-2.0 */
/*
 * An HTTP/1.0 and HTTP/1.1 request parser (RFC 9112) for the responder. Stateless: it is given
 * the bytes received so far on a connection (starting at a request boundary) and either finds one
 * complete request in them or says more bytes are needed. Re-parsing on every read is bounded by
 * the header limit, and keeps pipelining trivial: consume, then parse again. Pure.
 *
 * All pointers in a parsed request point into the caller's buffer and are valid until the caller
 * changes it. Header names are matched case-insensitively; values have surrounding whitespace
 * trimmed. Only the headers stapled acts on are extracted; repeated singleton headers
 * (Content-Length, Host) with different values are errors.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct http1_limits {
	size_t max_header_bytes; /* request line + headers + empty line (e.g. 8192) */
	size_t max_body_bytes;	 /* decoded body (e.g. 16384) */
	size_t max_headers;	 /* number of header lines (e.g. 64) */
};

enum http1_method {
	HTTP1_GET,
	HTTP1_HEAD,
	HTTP1_POST,
	HTTP1_OTHER, /* a valid token we do not serve: answered 405 */
};

struct http1_str {
	const char *p;
	size_t len; /* p == NULL: absent */
};

struct http1_request {
	enum http1_method method;
	struct http1_str method_token;
	struct http1_str target; /* request-target as sent (origin-form or absolute-form) */
	int version_minor;	 /* 0 or 1 (HTTP/1.x only) */
	bool keep_alive;	 /* after this response: 1.1 unless "close"; 1.0 only with
				    "keep-alive" */
	bool expect_continue;	 /* "Expect: 100-continue" */
	bool chunked;		 /* Transfer-Encoding: chunked (body already decoded) */
	struct http1_str host;
	struct http1_str content_type;
	struct http1_str if_none_match;
	struct http1_str if_modified_since;
	/* Between stapled nodes (docs/decisions/0006): the origin responder URL the forwarding
	 * node knows, how many stapled nodes forwarded the request, and whether the issuer
	 * certificate is wanted back; and the issuer certificate a child sends along. */
	struct http1_str stapled_origin;
	struct http1_str stapled_hops;
	struct http1_str stapled_want_issuer;
	struct http1_str stapled_issuer; /* base64 DER of the issuer, from a child node */
	/* From a cluster peer that forwarded its miss to us (docs/cluster.md): never forwarded
	 * again. */
	struct http1_str stapled_forwarded;
	int64_t content_length; /* -1 if absent */
	/* The body. For Content-Length bodies it points into the input; for chunked bodies into
	 * `scratch` (see http1_parse). */
	const uint8_t *body;
	size_t body_len;
	size_t header_bytes; /* bytes of the request line + headers */
};

enum http1_result {
	HTTP1_INCOMPLETE = 0,	/* need more bytes */
	HTTP1_COMPLETE = 1,	/* *ret filled, *ret_consumed = bytes of this whole request */
	HTTP1_HEADERS_DONE = 2, /* only with want_headers_only: headers parsed, body not yet here */
};

/*
 * Parses one request from buf[0..len).
 * `scratch` (may be NULL if chunked bodies are to be refused) receives the decoded body of a
 * chunked request; it must be at least limits->max_body_bytes long.
 * Returns HTTP1_COMPLETE or HTTP1_INCOMPLETE; with `headers_only`, returns HTTP1_HEADERS_DONE as
 * soon as the headers are complete (so the server can answer "100-continue" or refuse an
 * oversize Content-Length early) with body fields unset.
 * Stricter than the minimum, as RFC 9112 allows: HTTP/1.1 without Host, Transfer-Encoding on
 * an HTTP/1.0 request, and chunked not last (or twice) are -EBADMSG; empty lines before the
 * request line are skipped. Chunk framing (size lines, extensions) may take at most
 * max_header_bytes (-EFBIG beyond), and trailers count against the header limits, so tiny
 * chunks cannot make re-parsing expensive. With headers_only, *ret_consumed is the header length.
 * Errors (the connection must be answered with an error and closed):
 *   -EBADMSG   malformed request line, header, chunk, or conflicting lengths (400)
 *   -EMSGSIZE  header block over max_header_bytes or too many headers (431)
 *   -EFBIG     body over max_body_bytes (413)
 *   -ENOTSUP   HTTP version other than 1.0/1.1, or a transfer coding other than chunked (505/501)
 */
int http1_parse(const uint8_t *buf, size_t len, const struct http1_limits *limits, uint8_t *scratch,
		bool headers_only, struct http1_request *ret, size_t *ret_consumed);

/* Case-insensitive comparison of a parsed string with a C string. */
bool http1_str_eq(struct http1_str s, const char *lit);
