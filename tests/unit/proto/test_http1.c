/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proto/buf.h"
#include "proto/http1.h"
#include "proto/macro.h"

static const struct http1_limits default_limits = {
	.max_header_bytes = 8192,
	.max_body_bytes = 16384,
	.max_headers = 64,
};

struct pcase {
	const char *name;
	const char *in;
	int rc;
	const char *body;	 /* expected body on COMPLETE; NULL: empty */
	size_t consumed;	 /* expected on COMPLETE; 0: the whole input */
	struct http1_limits lim; /* all zero: default_limits */
	bool no_scratch;
	size_t len; /* 0: strlen(in) */
};

static const struct http1_limits *limits_of(const struct pcase *c)
{
	return c->lim.max_header_bytes ? &c->lim : &default_limits;
}

/* Parses an exactly sized copy, so ASan sees any read past the end. */
static int parse_copy(const char *in, size_t len, const struct http1_limits *lim, uint8_t *scratch,
		      bool headers_only, struct http1_request *r, size_t *consumed)
{
	uint8_t *copy = malloc(len ? len : 1);
	assert_non_null(copy);
	memcpy(copy, in, len);
	int k = http1_parse(copy, len, lim, scratch, headers_only, r, consumed);
	/* Pointers into the input are checked by the callers against `in`: rebase them. */
	if (k == HTTP1_COMPLETE || k == HTTP1_HEADERS_DONE) {
		const char *base = in;
#define REBASE(f)                                                     \
	if (r->f.p) {                                                 \
		assert_true(r->f.p >= (const char *)copy &&           \
			    r->f.p + r->f.len <= (char *)copy + len); \
		r->f.p = base + (r->f.p - (const char *)copy);        \
	}
		REBASE(method_token);
		REBASE(target);
		REBASE(host);
		REBASE(content_type);
		REBASE(if_none_match);
		REBASE(if_modified_since);
		REBASE(stapled_origin);
		REBASE(stapled_hops);
		REBASE(stapled_want_issuer);
		REBASE(stapled_issuer);
#undef REBASE
		if (r->body && r->body != scratch) {
			assert_true(r->body >= copy && r->body + r->body_len <= copy + len);
			r->body = (const uint8_t *)base + (r->body - copy);
		}
	}
	free(copy);
	return k;
}

static void check_case(const struct pcase *c)
{
	size_t n = c->len ? c->len : strlen(c->in);
	const struct http1_limits *lim = limits_of(c);
	uint8_t *scratch = c->no_scratch ? NULL : malloc(lim->max_body_bytes + 1);
	struct http1_request r;
	size_t consumed = 12345;

	int k = parse_copy(c->in, n, lim, scratch, false, &r, &consumed);
	if (k != c->rc)
		fail_msg("%s: got %d, want %d", c->name, k, c->rc);
	size_t want_consumed = c->consumed ? c->consumed : n;
	if (k == HTTP1_COMPLETE) {
		assert_int_equal(consumed, want_consumed);
		const char *want_body = c->body ? c->body : "";
		assert_int_equal(r.body_len, strlen(want_body));
		if (r.body_len)
			assert_memory_equal(r.body, want_body, r.body_len);
	} else {
		assert_int_equal(consumed, 12345); /* untouched unless complete */
	}

	/*
	 * Feeding the bytes one at a time must say "incomplete" until the request (or the error)
	 * is there, then give exactly the all-at-once answer.
	 */
	for (size_t i = 0; i < n; i++) {
		struct http1_request pr;
		size_t pc = 0;
		int pk = parse_copy(c->in, i, lim, scratch, false, &pr, &pc);
		if (pk == HTTP1_INCOMPLETE)
			continue;
		if (pk != k)
			fail_msg("%s: prefix %zu gave %d, full input %d", c->name, i, pk, k);
		if (pk == HTTP1_COMPLETE)
			assert_int_equal(pc, consumed);
	}
	free(scratch);
}

#define REQ11 "GET / HTTP/1.1\r\nHost: h\r\n"

static const struct pcase valid_cases[] = {
	{"get 1.1", "GET / HTTP/1.1\r\nHost: a\r\n\r\n", HTTP1_COMPLETE},
	{"get 1.0 no host", "GET /x HTTP/1.0\r\n\r\n", HTTP1_COMPLETE},
	{"bare LF", "GET / HTTP/1.1\nHost: a\n\n", HTTP1_COMPLETE},
	{"mixed line ends", "GET / HTTP/1.1\r\nHost: a\n\r\n", HTTP1_COMPLETE},
	{"leading empty lines", "\r\n\nGET / HTTP/1.0\r\n\r\n", HTTP1_COMPLETE},
	{"post cl", "POST /ocsp HTTP/1.0\r\nContent-Length: 5\r\n\r\nhello", HTTP1_COMPLETE,
	 "hello"},
	{"cl zero", "POST / HTTP/1.0\r\nContent-Length: 0\r\n\r\n", HTTP1_COMPLETE},
	{"cl leading zeros", "POST / HTTP/1.0\r\nContent-Length: 003\r\n\r\nabc", HTTP1_COMPLETE,
	 "abc"},
	{"cl repeated same", "POST / HTTP/1.0\r\nContent-Length: 2\r\ncontent-length: 2\r\n\r\nab",
	 HTTP1_COMPLETE, "ab"},
	{"get with body", REQ11 "Content-Length: 3\r\n\r\nxyz", HTTP1_COMPLETE, "xyz"},
	{"head with body", "HEAD / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n\r\nz",
	 HTTP1_COMPLETE, "z"},
	{"pipelined", REQ11 "\r\nGET /2 HTTP/1.1\r\nHost: h\r\n\r\n", HTTP1_COMPLETE, NULL,
	 sizeof(REQ11 "\r\n") - 1},
	{"pipelined after body",
	 "POST / HTTP/1.0\r\nContent-Length: 2\r\n\r\nabGET / HTTP/1.0\r\n\r\n", HTTP1_COMPLETE,
	 "ab", sizeof("POST / HTTP/1.0\r\nContent-Length: 2\r\n\r\nab") - 1},
	{"chunked",
	 REQ11 "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
	 HTTP1_COMPLETE, "hello world"},
	{"chunked hex upper lower",
	 REQ11 "Transfer-Encoding: Chunked\r\n\r\nA\r\n0123456789\r\n"
	       "a\r\nabcdefghij\r\n0\r\n\r\n",
	 HTTP1_COMPLETE, "0123456789abcdefghij"},
	{"chunked ext",
	 REQ11 "Transfer-Encoding: chunked\r\n\r\n3;name=val\r\nabc\r\n"
	       "2 ; x=\"q;q\"\r\nde\r\n0;last\r\n\r\n",
	 HTTP1_COMPLETE, "abcde"},
	{"chunked trailers",
	 REQ11 "Transfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\nT1: a\r\n"
	       "t2: b\r\n\r\n",
	 HTTP1_COMPLETE, "x"},
	{"chunked bare LF", REQ11 "Transfer-Encoding: chunked\n\n2\nab\n0\n\n", HTTP1_COMPLETE,
	 "ab"},
	{"chunked leading zeros",
	 REQ11 "Transfer-Encoding: chunked\r\n\r\n0002\r\nab\r\n000\r\n\r\n", HTTP1_COMPLETE, "ab"},
	{"chunked data with CR LF",
	 REQ11 "Transfer-Encoding: chunked\r\n\r\n4\r\n\r\n\r\n\r\n0\r\n\r\n", HTTP1_COMPLETE,
	 "\r\n\r\n"},
	{"te list chunked", REQ11 "Transfer-Encoding: , chunked ,\r\n\r\n0\r\n\r\n",
	 HTTP1_COMPLETE},
	{"absolute-form", "GET http://h/MEMw HTTP/1.1\r\nHost: h\r\n\r\n", HTTP1_COMPLETE},
	{"asterisk", "OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n", HTTP1_COMPLETE},
	{"other method", "DELETE /x HTTP/1.1\r\nHost: h\r\n\r\n", HTTP1_COMPLETE},
	{"value obs-text and tabs", REQ11 "X-A:\t \xc3\xa9t\xe9 \"q\" \t\r\n\r\n", HTTP1_COMPLETE},
	{"empty value", REQ11 "X-Empty:\r\nX-Sp:   \r\n\r\n", HTTP1_COMPLETE},
	{"tchar name", REQ11 "!#$%&'*+-.^_`|~09azAZ: v\r\n\r\n", HTTP1_COMPLETE},
	{"host repeated same", "GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", HTTP1_COMPLETE},
	{"cr in body", "POST / HTTP/1.0\r\nContent-Length: 3\r\n\r\n\r\r\r", HTTP1_COMPLETE,
	 "\r\r\r"},
};

static const struct pcase incomplete_cases[] = {
	{"empty", "", HTTP1_INCOMPLETE},
	{"request line only", "GET / HTTP/1.1\r\n", HTTP1_INCOMPLETE},
	{"no final empty line", REQ11, HTTP1_INCOMPLETE},
	{"headers then CR", REQ11 "\r", HTTP1_INCOMPLETE},
	{"short body", "POST / HTTP/1.0\r\nContent-Length: 5\r\n\r\nhell", HTTP1_INCOMPLETE},
	{"chunk data short", REQ11 "Transfer-Encoding: chunked\r\n\r\n5\r\nhel", HTTP1_INCOMPLETE},
	{"chunk no crlf yet", REQ11 "Transfer-Encoding: chunked\r\n\r\n5\r\nhello",
	 HTTP1_INCOMPLETE},
	{"chunk cr only", REQ11 "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r", HTTP1_INCOMPLETE},
	{"no last chunk", REQ11 "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
	 HTTP1_INCOMPLETE},
	{"no trailer end", REQ11 "Transfer-Encoding: chunked\r\n\r\n0\r\nT: x\r\n",
	 HTTP1_INCOMPLETE},
	{"partial method", "GE", HTTP1_INCOMPLETE},
	{"partial target", "GET /abc", HTTP1_INCOMPLETE},
};

static const struct pcase error_cases[] = {
	/* request line */
	{"tls hello", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", -EBADMSG, .len = 11},
	{"lowercase ok but bad sep", "get\t/ HTTP/1.1\r\n\r\n", -EBADMSG},
	{"two spaces", "GET  / HTTP/1.1\r\nHost: a\r\n\r\n", -EBADMSG},
	{"space after target", "GET / HTTP/1.1 \r\nHost: a\r\n\r\n", -EBADMSG},
	{"leading space", " GET / HTTP/1.1\r\nHost: a\r\n\r\n", -EBADMSG},
	{"no target", "GET HTTP/1.1\r\nHost: a\r\n\r\n", -EBADMSG},
	{"no version", "GET /\r\n\r\n", -EBADMSG},
	{"http 0.9", "GET /\r\n", -EBADMSG},
	{"control in target", "GET /a\x01 HTTP/1.1\r\nHost: a\r\n\r\n", -EBADMSG},
	{"del in target", "GET /a\x7f HTTP/1.1\r\nHost: a\r\n\r\n", -EBADMSG},
	{"8bit in target", "GET /\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n", -EBADMSG},
	{"tab in target", "GET /a\tb HTTP/1.1\r\nHost: a\r\n\r\n", -EBADMSG},
	{"lowercase version", "GET / http/1.1\r\nHost: a\r\n\r\n", -EBADMSG},
	{"version 1.10", "GET / HTTP/1.10\r\nHost: a\r\n\r\n", -EBADMSG},
	{"version 11", "GET / HTTP/11\r\nHost: a\r\n\r\n", -EBADMSG},
	{"version 2.0", "GET / HTTP/2.0\r\nHost: a\r\n\r\n", -ENOTSUP},
	{"version 1.2", "GET / HTTP/1.2\r\nHost: a\r\n\r\n", -ENOTSUP},
	{"version 0.9", "GET / HTTP/0.9\r\n\r\n", -ENOTSUP},
	{"bare CR request line", "GET / HTTP/1.1\rHost: a\r\n\r\n", -EBADMSG},
	{"bare CR leading", "\rGET / HTTP/1.1\r\n\r\n", -EBADMSG},
	{"method with slash", "GE/T / HTTP/1.1\r\n\r\n", -EBADMSG},
	{"nul in method", "G\0T / HTTP/1.0\r\n\r\n", -EBADMSG, .len = 19},
	/* header fields */
	{"space before colon", REQ11 "X-A : b\r\n\r\n", -EBADMSG},
	{"tab before colon", REQ11 "X-A\t: b\r\n\r\n", -EBADMSG},
	{"no colon", REQ11 "X-A b\r\n\r\n", -EBADMSG},
	{"empty name", REQ11 ": b\r\n\r\n", -EBADMSG},
	{"obs-fold space", REQ11 "X-A: b\r\n c\r\n\r\n", -EBADMSG},
	{"obs-fold tab", REQ11 "X-A: b\r\n\tc\r\n\r\n", -EBADMSG},
	{"space first header", "GET / HTTP/1.1\r\n Host: a\r\n\r\n", -EBADMSG},
	{"bare CR in value", REQ11 "X-A: b\rc\r\n\r\n", -EBADMSG},
	{"bare CR end of value", REQ11 "X-A: b\r\r\n\r\n", -EBADMSG},
	{"ctl in value", REQ11 "X-A: b\x01\r\n\r\n", -EBADMSG},
	{"nul in value", "GET / HTTP/1.0\r\nX-A: \0\r\n\r\n", -EBADMSG, .len = 26},
	{"del in value", REQ11 "X-A: \x7f\r\n\r\n", -EBADMSG},
	{"8bit in name", REQ11 "X-\xc3\xa9: b\r\n\r\n", -EBADMSG},
	{"bare CR empty line", REQ11 "\r\r\n", -EBADMSG},
	{"host missing 1.1", "GET / HTTP/1.1\r\nX: y\r\n\r\n", -EBADMSG},
	{"host different", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", -EBADMSG},
	/* lengths */
	{"cl empty", REQ11 "Content-Length:\r\n\r\n", -EBADMSG},
	{"cl sign", REQ11 "Content-Length: +5\r\n\r\n", -EBADMSG},
	{"cl negative", REQ11 "Content-Length: -1\r\n\r\n", -EBADMSG},
	{"cl list", REQ11 "Content-Length: 5, 5\r\n\r\n", -EBADMSG},
	{"cl hex", REQ11 "Content-Length: 0x5\r\n\r\n", -EBADMSG},
	{"cl inner space", REQ11 "Content-Length: 1 2\r\n\r\n", -EBADMSG},
	{"cl overflow", REQ11 "Content-Length: 9223372036854775808\r\n\r\n", -EBADMSG},
	{"cl huge", REQ11 "Content-Length: 99999999999999999999999\r\n\r\n", -EBADMSG},
	{"cl max int64 too big", REQ11 "Content-Length: 9223372036854775807\r\n\r\n", -EFBIG},
	{"cl conflict", REQ11 "Content-Length: 1\r\nContent-Length: 2\r\n\r\nab", -EBADMSG},
	{"cl and te", REQ11 "Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
	 -EBADMSG},
	{"te and cl", REQ11 "Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n",
	 -EBADMSG},
	{"te in 1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", -EBADMSG},
	{"te gzip", REQ11 "Transfer-Encoding: gzip\r\n\r\n", -EBADMSG},
	{"te gzip chunked", REQ11 "Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", -ENOTSUP},
	{"te two lines", REQ11 "Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n",
	 -ENOTSUP},
	{"te chunked gzip", REQ11 "Transfer-Encoding: chunked, gzip\r\n\r\n", -EBADMSG},
	{"te chunked twice", REQ11 "Transfer-Encoding: chunked, chunked\r\n\r\n", -EBADMSG},
	{"te empty", REQ11 "Transfer-Encoding:\r\n\r\n", -EBADMSG},
	{"te chunked no scratch",
	 REQ11 "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
	 -ENOTSUP,
	 NULL,
	 0,
	 {0},
	 true},
	/* chunks */
	{"chunk no size", REQ11 "Transfer-Encoding: chunked\r\n\r\n\r\nab\r\n0\r\n\r\n", -EBADMSG},
	{"chunk bad size", REQ11 "Transfer-Encoding: chunked\r\n\r\nzz\r\n", -EBADMSG},
	{"chunk size sign", REQ11 "Transfer-Encoding: chunked\r\n\r\n+2\r\nab\r\n0\r\n\r\n",
	 -EBADMSG},
	{"chunk size 0x", REQ11 "Transfer-Encoding: chunked\r\n\r\n0x2\r\nab\r\n0\r\n\r\n",
	 -EBADMSG},
	{"chunk size trailing space",
	 REQ11 "Transfer-Encoding: chunked\r\n\r\n2 \r\nab\r\n0\r\n\r\n", -EBADMSG},
	{"chunk ext ctl", REQ11 "Transfer-Encoding: chunked\r\n\r\n2;a\x01\r\nab\r\n0\r\n\r\n",
	 -EBADMSG},
	{"chunk ext bare CR", REQ11 "Transfer-Encoding: chunked\r\n\r\n2;a\rb\r\nab\r\n0\r\n\r\n",
	 -EBADMSG},
	{"chunk data too long", REQ11 "Transfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n0\r\n\r\n",
	 -EBADMSG},
	{"chunk data cr no lf", REQ11 "Transfer-Encoding: chunked\r\n\r\n2\r\nab\rx0\r\n\r\n",
	 -EBADMSG},
	{"chunk size overflow", REQ11 "Transfer-Encoding: chunked\r\n\r\nffffffffffffffffffff\r\n",
	 -EFBIG},
	{"chunk over max body", REQ11 "Transfer-Encoding: chunked\r\n\r\n4001\r\n", -EFBIG},
	{"trailer obs-fold", REQ11 "Transfer-Encoding: chunked\r\n\r\n0\r\nT: a\r\n b\r\n\r\n",
	 -EBADMSG},
	{"trailer bad", REQ11 "Transfer-Encoding: chunked\r\n\r\n0\r\nT : a\r\n\r\n", -EBADMSG},
	{"trailer bare CR", REQ11 "Transfer-Encoding: chunked\r\n\r\n0\r\nT: a\rb\r\n\r\n",
	 -EBADMSG},
	/* body size */
	{"cl over max", REQ11 "Content-Length: 16385\r\n\r\n", -EFBIG},
};

static void test_valid(void **state)
{
	for (size_t i = 0; i < ARRAY_SIZE(valid_cases); i++)
		check_case(&valid_cases[i]);
}

static void test_incomplete(void **state)
{
	for (size_t i = 0; i < ARRAY_SIZE(incomplete_cases); i++)
		check_case(&incomplete_cases[i]);
}

static void test_errors(void **state)
{
	for (size_t i = 0; i < ARRAY_SIZE(error_cases); i++)
		check_case(&error_cases[i]);
}

static int parse_str(const char *s, struct http1_request *r, size_t *consumed)
{
	static uint8_t scratch[16384];
	return http1_parse((const uint8_t *)s, strlen(s), &default_limits, scratch, false, r,
			   consumed);
}

static void assert_str(struct http1_str s, const char *want)
{
	if (!want) {
		assert_null(s.p);
		return;
	}
	assert_non_null(s.p);
	assert_int_equal(s.len, strlen(want));
	assert_memory_equal(s.p, want, s.len);
}

static void test_fields(void **state)
{
	static const char req[] = "POST /ocsp/x?y=1 HTTP/1.1\r\n"
				  "hOsT:  example.com:8080 \r\n"
				  "Content-Type:\tapplication/ocsp-request\t\r\n"
				  "If-None-Match: \"abc\", W/\"def\"\r\n"
				  "If-Modified-Since: Sun, 06 Nov 1994 08:49:37 GMT\r\n"
				  "User-Agent: t\r\n"
				  "EXPECT: 100-Continue\r\n"
				  "Content-Length: 4\r\n"
				  "\r\n"
				  "body";
	struct http1_request r;
	size_t consumed;
	assert_int_equal(parse_str(req, &r, &consumed), HTTP1_COMPLETE);
	assert_int_equal(consumed, sizeof(req) - 1);
	assert_int_equal(r.method, HTTP1_POST);
	assert_str(r.method_token, "POST");
	assert_str(r.target, "/ocsp/x?y=1");
	assert_int_equal(r.version_minor, 1);
	assert_true(r.keep_alive);
	assert_true(r.expect_continue);
	assert_false(r.chunked);
	assert_str(r.host, "example.com:8080");
	assert_str(r.content_type, "application/ocsp-request");
	assert_str(r.if_none_match, "\"abc\", W/\"def\"");
	assert_str(r.if_modified_since, "Sun, 06 Nov 1994 08:49:37 GMT");
	assert_int_equal(r.content_length, 4);
	assert_int_equal(r.body_len, 4);
	assert_memory_equal(r.body, "body", 4);
	assert_ptr_equal(r.body, (const uint8_t *)req + sizeof(req) - 5);
	assert_int_equal(r.header_bytes, sizeof(req) - 5);
	assert_null(r.stapled_origin.p);

	/* The headers stapled nodes send each other; the first of a repeated one counts. */
	assert_int_equal(parse_str("POST http://ocsp.example/ HTTP/1.1\r\nHost: ocsp.example\r\n"
				   "Stapled-Origin: http://ca.example/ocsp\r\n"
				   "stapled-origin: http://other.example/\r\n"
				   "STAPLED-HOPS: 2\r\nStapled-Want-Issuer: 1\r\n"
				   "Content-Length: 0\r\n\r\n",
				   &r, &consumed),
			 HTTP1_COMPLETE);
	assert_str(r.target, "http://ocsp.example/");
	assert_str(r.stapled_origin, "http://ca.example/ocsp");
	assert_str(r.stapled_hops, "2");
	assert_str(r.stapled_want_issuer, "1");
	assert_null(r.stapled_issuer.p);

	assert_int_equal(parse_str("GET /a HTTP/1.0\r\n\r\n", &r, &consumed), HTTP1_COMPLETE);
	assert_int_equal(r.method, HTTP1_GET);
	assert_int_equal(r.version_minor, 0);
	assert_false(r.keep_alive);
	assert_false(r.expect_continue);
	assert_null(r.host.p);
	assert_null(r.content_type.p);
	assert_null(r.if_none_match.p);
	assert_null(r.if_modified_since.p);
	assert_int_equal(r.content_length, -1);
	assert_int_equal(r.body_len, 0);
	assert_int_equal(r.header_bytes, consumed);

	assert_int_equal(
		parse_str("HEAD / HTTP/1.1\r\nHost: a\r\nExpect: 200-ok\r\n\r\n", &r, &consumed),
		HTTP1_COMPLETE);
	assert_int_equal(r.method, HTTP1_HEAD);
	assert_false(r.expect_continue);

	/* Methods are case-sensitive: "get" is a token, not GET. */
	assert_int_equal(parse_str("get / HTTP/1.1\r\nHost: a\r\n\r\n", &r, &consumed),
			 HTTP1_COMPLETE);
	assert_int_equal(r.method, HTTP1_OTHER);
	assert_str(r.method_token, "get");
	assert_int_equal(parse_str("PUT / HTTP/1.1\r\nHost: a\r\n\r\n", &r, &consumed),
			 HTTP1_COMPLETE);
	assert_int_equal(r.method, HTTP1_OTHER);
	assert_int_equal(parse_str("GETS / HTTP/1.1\r\nHost: a\r\n\r\n", &r, &consumed),
			 HTTP1_COMPLETE);
	assert_int_equal(r.method, HTTP1_OTHER);

	/* The first of repeated headers that are not singletons is kept. */
	assert_int_equal(parse_str("GET / HTTP/1.0\r\nContent-Type: a\r\nContent-Type: b\r\n"
				   "If-None-Match: \"1\"\r\nIf-None-Match: \"2\"\r\n\r\n",
				   &r, &consumed),
			 HTTP1_COMPLETE);
	assert_str(r.content_type, "a");
	assert_str(r.if_none_match, "\"1\"");

	/* An empty Host is present, not absent (absolute-form requests may send it). */
	assert_int_equal(parse_str("GET http://a/ HTTP/1.1\r\nHost:\r\n\r\n", &r, &consumed),
			 HTTP1_COMPLETE);
	assert_non_null(r.host.p);
	assert_int_equal(r.host.len, 0);
	assert_str(r.target, "http://a/");
}

static void test_keep_alive(void **state)
{
	static const struct {
		const char *req;
		bool ka;
	} cases[] = {
		{"GET / HTTP/1.1\r\nHost: a\r\n\r\n", true},
		{"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", false},
		{"GET / HTTP/1.1\r\nHost: a\r\nConnection: CLOSE\r\n\r\n", false},
		{"GET / HTTP/1.1\r\nHost: a\r\nConnection: te, Close\r\n\r\n", false},
		{"GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive\r\n\r\n", true},
		{"GET / HTTP/1.1\r\nHost: a\r\nConnection: closed\r\n\r\n", true},
		{"GET / HTTP/1.1\r\nHost: a\r\nConnection: x\r\nConnection: close\r\n\r\n", false},
		{"GET / HTTP/1.0\r\n\r\n", false},
		{"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", true},
		{"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", true},
		{"GET / HTTP/1.0\r\nConnection: foo,keep-alive , bar\r\n\r\n", true},
		{"GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n", false},
		{"GET / HTTP/1.0\r\nConnection: keep-alivex\r\n\r\n", false},
		{"GET / HTTP/1.0\r\nKeep-Alive: 1\r\n\r\n", false},
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct http1_request r;
		size_t consumed;
		assert_int_equal(parse_str(cases[i].req, &r, &consumed), HTTP1_COMPLETE);
		if (r.keep_alive != cases[i].ka)
			fail_msg("case %zu: keep_alive %d", i, r.keep_alive);
	}
}

static void test_pipelining(void **state)
{
	const char *stream = "GET /1 HTTP/1.1\r\nHost: a\r\n\r\n"
			     "POST /2 HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc"
			     "POST /3 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
			     "2\r\nde\r\n0\r\n\r\n"
			     "HEAD /4 HTTP/1.1\r\nHost: a\r\n\r\n"
			     "GET /5 HTTP";
	static const char *targets[] = {"/1", "/2", "/3", "/4"};
	static const char *bodies[] = {"", "abc", "de", ""};
	const uint8_t *p = (const uint8_t *)stream;
	size_t left = strlen(stream);
	uint8_t scratch[16384];
	for (size_t i = 0; i < ARRAY_SIZE(targets); i++) {
		struct http1_request r;
		size_t consumed;
		assert_int_equal(
			http1_parse(p, left, &default_limits, scratch, false, &r, &consumed),
			HTTP1_COMPLETE);
		assert_str(r.target, targets[i]);
		assert_int_equal(r.body_len, strlen(bodies[i]));
		assert_memory_equal(r.body ? r.body : (const uint8_t *)"", bodies[i], r.body_len);
		assert_true(consumed <= left);
		p += consumed;
		left -= consumed;
	}
	struct http1_request r;
	size_t consumed;
	assert_int_equal(http1_parse(p, left, &default_limits, scratch, false, &r, &consumed),
			 HTTP1_INCOMPLETE);
	assert_int_equal(left, strlen("GET /5 HTTP"));
}

/* A request whose header block is exactly `total` bytes, made of `nheaders` header lines. */
static char *make_request(size_t total, size_t nheaders)
{
	struct buf b = BUF_INIT;
	buf_append_str(&b, "GET / HTTP/1.0\r\n");
	for (size_t i = 0; i < nheaders; i++)
		buf_printf(&b, "X-%zu: v\r\n", i);
	assert_true(b.len + 2 <= total);
	if (b.len + 2 < total) {
		/* pad with one more header "P: ppp...\r\n" so that the block ends at total */
		assert_true(total - 2 - b.len >= 5);
		size_t pad = total - 2 - b.len - 5;
		buf_append_str(&b, "P: ");
		for (size_t i = 0; i < pad; i++)
			buf_append_byte(&b, 'p');
		buf_append_str(&b, "\r\n");
	}
	buf_append_str(&b, "\r\n");
	assert_int_equal(b.len, total);
	return (char *)buf_steal(&b, NULL);
}

static void test_header_limits(void **state)
{
	struct http1_limits lim = {.max_header_bytes = 200, .max_body_bytes = 10, .max_headers = 5};
	struct http1_request r;
	size_t consumed;

	/* Exactly max_header_bytes: accepted; one more byte: refused. */
	char *req = make_request(200, 0);
	assert_int_equal(http1_parse((uint8_t *)req, 200, &lim, NULL, false, &r, &consumed),
			 HTTP1_COMPLETE);
	assert_int_equal(consumed, 200);
	lim.max_header_bytes = 199;
	assert_int_equal(http1_parse((uint8_t *)req, 200, &lim, NULL, false, &r, &consumed),
			 -EMSGSIZE);
	/* Refused as soon as the buffer reaches the limit without the end of the headers. */
	assert_int_equal(http1_parse((uint8_t *)req, 199, &lim, NULL, false, &r, &consumed),
			 -EMSGSIZE);
	assert_int_equal(http1_parse((uint8_t *)req, 198, &lim, NULL, false, &r, &consumed),
			 HTTP1_INCOMPLETE);
	free(req);

	/* A request line alone longer than the limit. */
	lim.max_header_bytes = 32;
	const char *longline = "GET /aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
	assert_int_equal(http1_parse((const uint8_t *)longline, strlen(longline), &lim, NULL, false,
				     &r, &consumed),
			 -EMSGSIZE);
	assert_int_equal(
		http1_parse((const uint8_t *)longline, 31, &lim, NULL, false, &r, &consumed),
		HTTP1_INCOMPLETE);

	/* Header count: exactly max_headers, then one more. */
	lim.max_header_bytes = 8192;
	req = make_request(16 + 5 * 8 + 2, 5);
	assert_int_equal(http1_parse((uint8_t *)req, strlen(req), &lim, NULL, false, &r, &consumed),
			 HTTP1_COMPLETE);
	free(req);
	req = make_request(16 + 6 * 8 + 2, 6);
	assert_int_equal(http1_parse((uint8_t *)req, strlen(req), &lim, NULL, false, &r, &consumed),
			 -EMSGSIZE);
	free(req);

	/* The header limit is on the header block, not the buffer: a long body or pipelined data
	 * after a small header block is fine. */
	lim = (struct http1_limits){
		.max_header_bytes = 64, .max_body_bytes = 100, .max_headers = 5};
	struct buf b = BUF_INIT;
	buf_append_str(&b, "POST / HTTP/1.0\r\nContent-Length: 100\r\n\r\n");
	for (int i = 0; i < 100; i++)
		buf_append_byte(&b, 'b');
	buf_append_str(&b, "GET / HTTP/1.0\r\n");
	assert_int_equal(http1_parse(b.data, b.len, &lim, NULL, false, &r, &consumed),
			 HTTP1_COMPLETE);
	assert_int_equal(r.body_len, 100);
	assert_int_equal(consumed, b.len - 16);
	buf_done(&b);
}

static void test_body_limits(void **state)
{
	struct http1_limits lim = {.max_header_bytes = 1024, .max_body_bytes = 8, .max_headers = 8};
	uint8_t scratch[8];
	struct http1_request r;
	size_t consumed;
	const char *ok = "POST / HTTP/1.0\r\nContent-Length: 8\r\n\r\n12345678";
	const char *big = "POST / HTTP/1.0\r\nContent-Length: 9\r\n\r\n";
	assert_int_equal(
		http1_parse((const uint8_t *)ok, strlen(ok), &lim, scratch, false, &r, &consumed),
		HTTP1_COMPLETE);
	/* Refused from the headers alone, before any body byte. */
	assert_int_equal(
		http1_parse((const uint8_t *)big, strlen(big), &lim, scratch, false, &r, &consumed),
		-EFBIG);
	assert_int_equal(
		http1_parse((const uint8_t *)big, strlen(big), &lim, scratch, true, &r, &consumed),
		-EFBIG);

	/* Chunked: exactly max_body_bytes over several chunks, then one byte more. */
	const char *cok = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
			  "3\r\nabc\r\n5\r\ndefgh\r\n0\r\n\r\n";
	const char *cbig = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
			   "3\r\nabc\r\n6\r\n";
	assert_int_equal(
		http1_parse((const uint8_t *)cok, strlen(cok), &lim, scratch, false, &r, &consumed),
		HTTP1_COMPLETE);
	assert_int_equal(r.body_len, 8);
	assert_ptr_equal(r.body, scratch);
	assert_memory_equal(scratch, "abcdefgh", 8);
	assert_true(r.chunked);
	assert_int_equal(r.content_length, -1);
	assert_int_equal(http1_parse((const uint8_t *)cbig, strlen(cbig), &lim, scratch, false, &r,
				     &consumed),
			 -EFBIG);
}

static void test_chunk_framing_limits(void **state)
{
	/* Trailers count against the header block limit. */
	struct http1_limits lim = {.max_header_bytes = 80, .max_body_bytes = 100, .max_headers = 3};
	uint8_t scratch[100];
	struct http1_request r;
	size_t consumed;
	const char *head = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";
	size_t budget = lim.max_header_bytes - strlen(head);
	struct buf b = BUF_INIT;
	/* A trailer section ("T: ppp\r\n\r\n") of exactly the bytes left, then one more. */
	for (size_t extra = 0; extra <= 1; extra++) {
		buf_reset(&b);
		buf_append_str(&b, head);
		buf_append_str(&b, "0\r\nT: ");
		for (size_t i = 0; i < budget - 7 + extra; i++)
			buf_append_byte(&b, 'p');
		buf_append_str(&b, "\r\n\r\n");
		assert_int_equal(http1_parse(b.data, b.len, &lim, scratch, false, &r, &consumed),
				 extra ? -EMSGSIZE : HTTP1_COMPLETE);
	}
	/* Trailer lines count against max_headers (2 headers + 1 trailer fits, 2 do not). */
	buf_reset(&b);
	buf_append_str(&b, head);
	buf_append_str(&b, "0\r\nA: 1\r\n\r\n");
	assert_int_equal(http1_parse(b.data, b.len, &lim, scratch, false, &r, &consumed),
			 HTTP1_COMPLETE);
	buf_reset(&b);
	buf_append_str(&b, head);
	buf_append_str(&b, "0\r\nA: 1\r\nB: 2\r\n\r\n");
	assert_int_equal(http1_parse(b.data, b.len, &lim, scratch, false, &r, &consumed),
			 -EMSGSIZE);

	/* Chunk framing (size lines and line ends) may take at most max_header_bytes: a 1-byte
	 * chunk takes 5 bytes of framing and the last chunk 3, so 15 fit in 80 and 16 do not. */
	for (int chunks = 15; chunks <= 16; chunks++) {
		buf_reset(&b);
		buf_append_str(&b, head);
		for (int i = 0; i < chunks; i++)
			buf_append_str(&b, "1\r\nx\r\n");
		buf_append_str(&b, "0\r\n\r\n");
		int k = http1_parse(b.data, b.len, &lim, scratch, false, &r, &consumed);
		assert_int_equal(k, chunks == 15 ? HTTP1_COMPLETE : -EFBIG);
		if (k == HTTP1_COMPLETE)
			assert_int_equal(r.body_len, 15);
	}
	/* A chunk extension without end is refused at the framing limit. */
	buf_reset(&b);
	buf_append_str(&b, head);
	buf_append_str(&b, "1;");
	for (int i = 0; i < 100; i++)
		buf_append_byte(&b, 'e');
	assert_int_equal(http1_parse(b.data, b.len, &lim, scratch, false, &r, &consumed), -EFBIG);
	buf_done(&b);
}

static void test_headers_only(void **state)
{
	const char *req = "POST /x HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n"
			  "Content-Length: 4\r\n\r\n";
	struct http1_request r;
	size_t consumed = 0;
	uint8_t scratch[16384];
	assert_int_equal(http1_parse((const uint8_t *)req, strlen(req), &default_limits, scratch,
				     true, &r, &consumed),
			 HTTP1_HEADERS_DONE);
	assert_true(r.expect_continue);
	assert_int_equal(r.content_length, 4);
	assert_null(r.body);
	assert_int_equal(r.body_len, 0);
	assert_int_equal(r.header_bytes, strlen(req));
	assert_int_equal(consumed, strlen(req));
	/* Without headers_only the same bytes are incomplete. */
	assert_int_equal(http1_parse((const uint8_t *)req, strlen(req), &default_limits, scratch,
				     false, &r, &consumed),
			 HTTP1_INCOMPLETE);
	/* Headers not complete yet: incomplete in both modes. */
	assert_int_equal(http1_parse((const uint8_t *)req, strlen(req) - 1, &default_limits,
				     scratch, true, &r, &consumed),
			 HTTP1_INCOMPLETE);
	/* Chunked without scratch is refused at the headers. */
	const char *ch = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";
	assert_int_equal(http1_parse((const uint8_t *)ch, strlen(ch), &default_limits, NULL, true,
				     &r, &consumed),
			 -ENOTSUP);
	assert_int_equal(http1_parse((const uint8_t *)ch, strlen(ch), &default_limits, scratch,
				     true, &r, &consumed),
			 HTTP1_HEADERS_DONE);
	assert_true(r.chunked);
}

static void test_out_params_untouched(void **state)
{
	struct http1_request r, orig;
	memset(&r, 0xa5, sizeof(r));
	orig = r;
	size_t consumed = 77;
	assert_int_equal(parse_str("GET / HTTP/1.1\r\nHost: a\r\n", &r, &consumed),
			 HTTP1_INCOMPLETE);
	assert_int_equal(consumed, 77);
	assert_memory_equal(&r, &orig, sizeof(r));
	assert_int_equal(parse_str("GET / HTTP/3\r\n\r\n", &r, &consumed), -EBADMSG);
	assert_int_equal(consumed, 77);
	assert_memory_equal(&r, &orig, sizeof(r));
}

static void test_str_eq(void **state)
{
	struct http1_str s = {"Keep-Alive", 10};
	assert_true(http1_str_eq(s, "keep-alive"));
	assert_true(http1_str_eq(s, "KEEP-ALIVE"));
	assert_false(http1_str_eq(s, "keep-aliv"));
	assert_false(http1_str_eq(s, "keep-alivee"));
	s.len = 4;
	assert_true(http1_str_eq(s, "keep"));
	assert_false(http1_str_eq((struct http1_str){NULL, 0}, ""));
	assert_true(http1_str_eq((struct http1_str){"", 0}, ""));
	/* Only ASCII letters fold: '@' is not '`'. */
	assert_false(http1_str_eq((struct http1_str){"@", 1}, "`"));
}

/* Every byte position of long values and targets, so the word-at-a-time scans see each lane. */
static void test_byte_classes_every_position(void **state)
{
	static const uint8_t bad_value[] = {0x00, 0x01, 0x08, 0x0b, 0x1f, 0x7f, '\r'};
	static const uint8_t good_value[] = {'\t', ' ', 0x21, 0x7e, 0x80, 0xff, '"', ':'};
	static const uint8_t bad_target[] = {0x00, '\t', 0x1f, 0x7f, 0x80, 0xff, '\r'};
	static const uint8_t good_target[] = {0x21, 0x7e, '%', '?', '#', '"'};
	struct http1_request r;
	size_t consumed;
	char req[256];

	for (size_t pos = 0; pos < 40; pos++) {
		for (size_t i = 0; i < ARRAY_SIZE(bad_value) + ARRAY_SIZE(good_value); i++) {
			bool bad = i < ARRAY_SIZE(bad_value);
			uint8_t c = bad ? bad_value[i] : good_value[i - ARRAY_SIZE(bad_value)];
			int n = snprintf(req, sizeof(req), "GET / HTTP/1.0\r\nX: %s\r\n\r\n",
					 "0123456789012345678901234567890123456789");
			req[19 + pos] = (char)c;
			int k = http1_parse((uint8_t *)req, (size_t)n, &default_limits, NULL, false,
					    &r, &consumed);
			if (k != (bad ? -EBADMSG : HTTP1_COMPLETE))
				fail_msg("value byte 0x%02x at %zu: %d", c, pos, k);
		}
		for (size_t i = 0; i < ARRAY_SIZE(bad_target) + ARRAY_SIZE(good_target); i++) {
			bool bad = i < ARRAY_SIZE(bad_target);
			uint8_t c = bad ? bad_target[i] : good_target[i - ARRAY_SIZE(bad_target)];
			int n = snprintf(req, sizeof(req), "GET /%s HTTP/1.0\r\n\r\n",
					 "0123456789012345678901234567890123456789");
			req[5 + pos] = (char)c;
			int k = http1_parse((uint8_t *)req, (size_t)n, &default_limits, NULL, false,
					    &r, &consumed);
			if (k != (bad ? -EBADMSG : HTTP1_COMPLETE))
				fail_msg("target byte 0x%02x at %zu: %d", c, pos, k);
			if (!bad)
				assert_int_equal(r.target.len, 41);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid),
		cmocka_unit_test(test_incomplete),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_fields),
		cmocka_unit_test(test_keep_alive),
		cmocka_unit_test(test_pipelining),
		cmocka_unit_test(test_header_limits),
		cmocka_unit_test(test_body_limits),
		cmocka_unit_test(test_chunk_framing_limits),
		cmocka_unit_test(test_headers_only),
		cmocka_unit_test(test_out_params_untouched),
		cmocka_unit_test(test_str_eq),
		cmocka_unit_test(test_byte_classes_every_position),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
