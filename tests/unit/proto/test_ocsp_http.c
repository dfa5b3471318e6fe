/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "proto/buf.h"
#include "proto/certid.h"
#include "proto/macro.h"
#include "proto/ocsp.h"
#include "proto/ocsp_http.h"

static void read_fixture(const char *name, struct buf *out)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%s", FIXTURES, name);
	FILE *f = fopen(path, "rb");
	if (!f)
		fail_msg("cannot open %s", path);
	uint8_t tmp[4096];
	size_t n;
	while ((n = fread(tmp, 1, sizeof(tmp), f)) > 0)
		buf_append(out, tmp, n);
	fclose(f);
	assert_true(out->len > 0);
}

/* Plain base64 (no url-encoding), for building the raw forms clients send. */
static void b64(const uint8_t *d, size_t n, bool pad, struct buf *out)
{
	static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)d[i] << 16 | (i + 1 < n ? d[i + 1] << 8 : 0) |
			     (i + 2 < n ? d[i + 2] : 0);
		size_t chars = i + 2 < n ? 4 : i + 1 < n ? 3 : 2;
		for (size_t j = 0; j < 4; j++) {
			if (j < chars)
				buf_append_byte(out, (uint8_t)a[(v >> (18 - 6 * j)) & 63]);
			else if (pad)
				buf_append_byte(out, '=');
		}
	}
}

/* A SHA-1 request whose base64 is full of '/' and '+' (0xff and 0xfb bytes). */
static void slashy_request(struct buf *der)
{
	struct certid id = {.alg = CERTID_SHA1, .serial_len = 9};
	memset(id.name_hash, 0xff, sizeof(id.name_hash));
	memset(id.key_hash, 0xfb, sizeof(id.key_hash));
	memset(id.serial, 0xff, 9);
	id.serial[0] = 0x7f;
	assert_int_equal(ocsp_request_encode(&id, der), 0);
}

static void expect_decodes(const char *target, const struct buf *want)
{
	struct buf der = BUF_INIT;
	buf_append_str(&der, "prefix");
	struct ocsp_request req;
	int k = ocsp_http_get_decode(target, strlen(target), &der, &req);
	if (k != 0)
		fail_msg("%s: %d", target, k);
	assert_int_equal(der.len, 6 + want->len);
	assert_memory_equal(der.data, "prefix", 6);
	assert_memory_equal(der.data + 6, want->data, want->len);
	struct ocsp_request direct;
	assert_int_equal(ocsp_request_parse(want->data, want->len, &direct), 0);
	assert_true(certid_equal(&req.id, &direct.id));
	assert_int_equal(req.has_nonce, direct.has_nonce);
	buf_done(&der);
}

static void expect_fails(const char *target, size_t len, int want)
{
	struct buf der = BUF_INIT;
	buf_append_str(&der, "keep");
	struct ocsp_request req;
	memset(&req, 0x5a, sizeof(req));
	int k = ocsp_http_get_decode(target, len, &der, &req);
	if (k != want)
		fail_msg("%.60s: got %d, want %d", target, k, want);
	assert_int_equal(der.len, 4);
	assert_string_equal((char *)der.data, "keep");
	for (size_t i = 0; i < sizeof(req); i++)
		assert_int_equal(((uint8_t *)&req)[i], 0x5a);
	buf_done(&der);
}

static char *cat(const char *a, const char *b)
{
	struct buf o = BUF_INIT;
	buf_append_str(&o, a);
	buf_append_str(&o, b);
	return (char *)buf_steal(&o, NULL);
}

/* Every form a GET path may take, for one request. */
static void check_forms(const struct buf *der)
{
	struct buf enc = BUF_INIT, raw = BUF_INIT, rawnopad = BUF_INIT, lower = BUF_INIT;
	ocsp_http_get_encode(der->data, der->len, &enc);
	b64(der->data, der->len, true, &raw);
	b64(der->data, der->len, false, &rawnopad);
	/* lowercase hex in the escapes */
	for (size_t i = 0; i < enc.len; i++)
		buf_append_byte(&lower, (i > 0 && enc.data[i - 1] == '%') ||
							(i > 1 && enc.data[i - 2] == '%')
						? (uint8_t)(enc.data[i] | 0x20)
						: enc.data[i]);
	const char *bodies[] = {(char *)enc.data, (char *)raw.data, (char *)rawnopad.data,
				(char *)lower.data};
	const char *prefixes[] = {
		"/",
		"/ocsp/",
		"/ocsp/path?x=1/", /* nginx with a query in the responder URL */
		"/a/b/c/",
		"http://ocsp.example:8080/ocsp/",
		"//",
		"/%zz/", /* an invalid escape in an earlier segment does not matter */
		"/MEM/",
		"/ocsp?",
	};
	for (size_t i = 0; i < ARRAY_SIZE(prefixes); i++) {
		for (size_t j = 0; j < ARRAY_SIZE(bodies); j++) {
			char *t = cat(prefixes[i], bodies[j]);
			expect_decodes(t, der);
			free(t);
		}
	}
	/* A body with its padding url-encoded but not the rest, and the reverse. */
	buf_done(&enc);
	buf_done(&raw);
	buf_done(&rawnopad);
	buf_done(&lower);
}

static void test_get_decode_forms(void **state)
{
	static const char *const fixtures[] = {"req-sha1.der", "req-sha256.der", "req-sha384.der",
					       "req-sha512.der", "req-nonce.der"};
	for (size_t i = 0; i < ARRAY_SIZE(fixtures); i++) {
		struct buf der = BUF_INIT;
		read_fixture(fixtures[i], &der);
		check_forms(&der);
		buf_done(&der);
	}
	struct buf der = BUF_INIT;
	slashy_request(&der);
	struct buf raw = BUF_INIT;
	b64(der.data, der.len, true, &raw);
	/* The point of this request: its raw base64 holds '/' and '+'. */
	assert_non_null(memchr(raw.data, '/', raw.len));
	assert_non_null(memchr(raw.data, '+', raw.len));
	check_forms(&der);
	buf_done(&raw);
	buf_done(&der);
}

/* Forward-proxy targets: the origin is the URL before the request (GET) or all of it (POST). */
static void test_proxy_target(void **state)
{
	struct buf der = BUF_INIT, enc = BUF_INIT;
	read_fixture("req-sha1.der", &der);
	ocsp_http_get_encode(der.data, der.len, &enc);
	buf_append_byte(&enc, 0);
	static const struct {
		const char *prefix, *origin;
	} gets[] = {
		{"http://127.0.0.1:8888/", "http://127.0.0.1:8888/"},
		{"HTTP://ocsp.example.com/sub/path/", "http://ocsp.example.com/sub/path/"},
		{"http://[::1]:80/ocsp?x=1/", "http://[::1]:80/ocsp?x=1/"},
		{"https://ocsp.example/", "https://ocsp.example/"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(gets); i++) {
		char *t = cat(gets[i].prefix, (char *)enc.data);
		struct buf out = BUF_INIT;
		struct ocsp_request req;
		char origin[256];
		assert_int_equal(ocsp_http_proxy_target(t, strlen(t), true, &out, &req, origin,
							sizeof(origin)),
				 0);
		assert_string_equal(origin, gets[i].origin);
		assert_int_equal(out.len, der.len);
		assert_memory_equal(out.data, der.data, der.len);
		/* Too small for the origin. */
		assert_int_equal(ocsp_http_proxy_target(t, strlen(t), true, &out, &req, origin,
							strlen(gets[i].origin)),
				 -EMSGSIZE);
		buf_done(&out);
		free(t);
	}
	struct ocsp_request req;
	struct buf out = BUF_INIT;
	char origin[64];
	static const struct {
		const char *target;
		bool get;
		int err;
		const char *origin;
	} cases[] = {
		{"http://ocsp.example", false, 0, "http://ocsp.example/"},
		{"http://ocsp.example/a/b", false, 0, "http://ocsp.example/a/b"},
		{"/", false, -EINVAL, NULL},
		{"/MEUw", true, -EINVAL, NULL},
		{"ftp://x/", false, -EINVAL, NULL},
		{"http:///", false, -EBADMSG, NULL},
		{"http://user@host/", false, -EBADMSG, NULL},
		{"http://host/a b", false, -EBADMSG, NULL},
		{"http://example.invalid/index.html", true, -EBADMSG, NULL},
		{"http://example.invalid", true, -EBADMSG, NULL},
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		int r = ocsp_http_proxy_target(cases[i].target, strlen(cases[i].target),
					       cases[i].get, &out, &req, origin, sizeof(origin));
		assert_int_equal(r, cases[i].err);
		if (cases[i].origin)
			assert_string_equal(origin, cases[i].origin);
	}
	buf_done(&out);
	buf_done(&enc);
	buf_done(&der);
	(void)state;
}

static void test_base64(void **state)
{
	static const struct {
		const char *raw, *b64;
	} v[] = {{"", ""},
		 {"f", "Zg=="},
		 {"fo", "Zm8="},
		 {"foo", "Zm9v"},
		 {"foob", "Zm9vYg=="},
		 {"fooba", "Zm9vYmE="},
		 {"foobar", "Zm9vYmFy"},
		 {"\xfb\xff", "+/8="}};
	for (size_t i = 0; i < ARRAY_SIZE(v); i++) {
		struct buf e = BUF_INIT, d = BUF_INIT;
		ocsp_http_base64_encode((const uint8_t *)v[i].raw, strlen(v[i].raw), &e);
		assert_int_equal(e.len, strlen(v[i].b64));
		assert_memory_equal(e.data, v[i].b64, e.len);
		assert_int_equal(ocsp_http_base64_decode(v[i].b64, strlen(v[i].b64), &d), 0);
		assert_int_equal(d.len, strlen(v[i].raw));
		assert_memory_equal(d.data, v[i].raw, d.len);
		buf_reset(&d);
		/* Unpadded forms decode too. */
		size_t n = strlen(v[i].b64);
		while (n && v[i].b64[n - 1] == '=')
			n--;
		assert_int_equal(ocsp_http_base64_decode(v[i].b64, n, &d), 0);
		assert_int_equal(d.len, strlen(v[i].raw));
		buf_done(&e);
		buf_done(&d);
	}
	struct buf d = BUF_INIT;
	assert_int_equal(ocsp_http_base64_decode("Zm9v!", 5, &d), -EBADMSG);
	assert_int_equal(ocsp_http_base64_decode("Z", 1, &d), -EBADMSG);
	assert_int_equal(ocsp_http_base64_decode("Zg=", 3, &d), -EBADMSG);
	assert_int_equal(ocsp_http_base64_decode("Zm 9v", 5, &d), -EBADMSG);
	assert_int_equal(d.len, 0);
	buf_done(&d);
	(void)state;
}

static void test_get_decode_padding_lengths(void **state)
{
	/* Serial lengths 1..3 give the three residues of the DER length mod 3. */
	for (int sl = 1; sl <= 3; sl++) {
		struct certid id = {.alg = CERTID_SHA1, .serial_len = (uint8_t)sl};
		memset(id.name_hash, 0x11, 20);
		memset(id.key_hash, 0x22, 20);
		memset(id.serial, 0x33, (size_t)sl);
		struct buf der = BUF_INIT;
		assert_int_equal(ocsp_request_encode(&id, &der), 0);
		check_forms(&der);
		buf_done(&der);
	}
}

static void test_get_decode_errors(void **state)
{
	struct buf der = BUF_INIT, enc = BUF_INIT, raw = BUF_INIT;
	read_fixture("req-sha1.der", &der);
	ocsp_http_get_encode(der.data, der.len, &enc);
	b64(der.data, der.len, false, &raw);

	expect_fails("", 0, -EBADMSG);
	expect_fails("/", 1, -EBADMSG);
	expect_fails("/ocsp/", 6, -EBADMSG);
	expect_fails("/garbage", 8, -EBADMSG);
	expect_fails("*", 1, -EBADMSG);
	/* No separator before the base64: no candidate. */
	expect_fails((char *)raw.data, raw.len, -EBADMSG);

	struct buf t = BUF_INIT;
	/* Damaged base64: one character changed, removed, or added. */
	buf_printf(&t, "/%s", (char *)raw.data);
	t.data[10] = '.';
	expect_fails((char *)t.data, t.len, -EBADMSG);
	buf_reset(&t);
	buf_printf(&t, "/%.*s", (int)raw.len - 1, (char *)raw.data);
	expect_fails((char *)t.data, t.len, -EBADMSG);
	buf_reset(&t);
	buf_printf(&t, "/%sA", (char *)raw.data);
	expect_fails((char *)t.data, t.len, -EBADMSG);
	/* Whitespace, raw or encoded, is not allowed inside. */
	buf_reset(&t);
	buf_printf(&t, "/%.8s%%20%s", (char *)raw.data, (char *)raw.data + 8);
	expect_fails((char *)t.data, t.len, -EBADMSG);
	/* '+' is a base64 character here, never a space: "%2B" and '+' are the same, ' ' is not. */
	/* Invalid or truncated escapes inside the candidate. */
	buf_reset(&t);
	buf_printf(&t, "/%.8s%%G1%s", (char *)raw.data, (char *)raw.data + 8);
	expect_fails((char *)t.data, t.len, -EBADMSG);
	buf_reset(&t);
	buf_printf(&t, "/%s%%3", (char *)raw.data);
	expect_fails((char *)t.data, t.len, -EBADMSG);
	/* Too much padding, or padding in the middle. */
	buf_reset(&t);
	buf_printf(&t, "/%s===", (char *)raw.data);
	expect_fails((char *)t.data, t.len, -EBADMSG);
	buf_reset(&t);
	buf_printf(&t, "/%.8s=%s", (char *)raw.data, (char *)raw.data + 8);
	expect_fails((char *)t.data, t.len, -EBADMSG);
	/* A query after the base64 is not part of it. */
	buf_reset(&t);
	buf_printf(&t, "/%s?x=1", (char *)enc.data);
	expect_fails((char *)t.data, t.len, -EBADMSG);

	/* A well-formed request the responder refuses: two certificates. */
	struct buf two = BUF_INIT, twoenc = BUF_INIT;
	read_fixture("req-two.der", &two);
	ocsp_http_get_encode(two.data, two.len, &twoenc);
	buf_reset(&t);
	buf_printf(&t, "/ocsp/%s", (char *)twoenc.data);
	expect_fails((char *)t.data, t.len, -ENOTSUP);

	/* Over 8192 bytes: refused before any work; exactly 8192 of junk is just not a request. */
	char *big = malloc(8193);
	memset(big, '/', 8193);
	expect_fails(big, 8193, -EMSGSIZE);
	expect_fails(big, 8192, -EBADMSG);
	/* Many candidates that each look like the start of a request. */
	for (size_t i = 0; i < 8192; i += 2)
		memcpy(big + i, "/M", 2);
	expect_fails(big, 8192, -EBADMSG);
	/* A valid request at the end of a very long path is still found. */
	memset(big, 'a', 8192);
	big[0] = '/';
	big[8191 - enc.len] = '/';
	memcpy(big + 8192 - enc.len, enc.data, enc.len);
	struct buf out = BUF_INIT;
	struct ocsp_request req;
	assert_int_equal(ocsp_http_get_decode(big, 8192, &out, &req), 0);
	assert_int_equal(out.len, der.len);
	assert_memory_equal(out.data, der.data, der.len);
	free(big);
	buf_done(&out);
	buf_done(&two);
	buf_done(&twoenc);
	buf_done(&t);
	buf_done(&der);
	buf_done(&enc);
	buf_done(&raw);
}

static void test_get_encode(void **state)
{
	struct buf o = BUF_INIT;
	buf_append_str(&o, "/");
	ocsp_http_get_encode((const uint8_t *)"\xfb\xff\xbf", 3, &o);
	assert_string_equal((char *)o.data, "/%2B%2F%2B%2F");
	buf_reset(&o);
	ocsp_http_get_encode((const uint8_t *)"\x00", 1, &o);
	assert_string_equal((char *)o.data, "AA%3D%3D");
	buf_reset(&o);
	ocsp_http_get_encode((const uint8_t *)"ab", 2, &o);
	assert_string_equal((char *)o.data, "YWI%3D");
	buf_reset(&o);
	ocsp_http_get_encode((const uint8_t *)"abc", 3, &o);
	assert_string_equal((char *)o.data, "YWJj");
	buf_reset(&o);
	ocsp_http_get_encode(NULL, 0, &o);
	assert_int_equal(o.len, 0);
	buf_done(&o);
}

static void test_date_format(void **state)
{
	static const struct {
		int64_t t;
		const char *s;
	} cases[] = {
		{0, "Thu, 01 Jan 1970 00:00:00 GMT"},
		{784111777, "Sun, 06 Nov 1994 08:49:37 GMT"},
		{951827696, "Tue, 29 Feb 2000 12:34:56 GMT"},
		{946684799, "Fri, 31 Dec 1999 23:59:59 GMT"},
		{2147483648, "Tue, 19 Jan 2038 03:14:08 GMT"},
		{4107542400, "Mon, 01 Mar 2100 00:00:00 GMT"},
		{1795273200, "Sat, 21 Nov 2026 15:00:00 GMT"},
		{253402300799, "Fri, 31 Dec 9999 23:59:59 GMT"},
		/* Outside four-digit years since 1970: clamped. */
		{-1, "Thu, 01 Jan 1970 00:00:00 GMT"},
		{INT64_MIN, "Thu, 01 Jan 1970 00:00:00 GMT"},
		{INT64_MAX, "Fri, 31 Dec 9999 23:59:59 GMT"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		char out[HTTP_DATE_LEN + 1];
		memset(out, 'x', sizeof(out));
		http_date_format(cases[i].t, out);
		assert_string_equal(out, cases[i].s);
		int64_t back;
		assert_int_equal(http_date_parse(out, HTTP_DATE_LEN, &back), 0);
		if (cases[i].t >= 0 && cases[i].t <= 253402300799)
			assert_int_equal(back, cases[i].t);
	}
}

/* Against libc's gmtime_r (UTC by definition, no TZ involved), over 1970..9999. */
static void test_date_vs_gmtime(void **state)
{
	static const char *const wd[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
	static const char *const mon[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
					  "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
	for (int64_t t = 0; t <= 253402300799; t += 86400 * 7 + 3607) {
		time_t tt = (time_t)t;
		struct tm tm;
		assert_non_null(gmtime_r(&tt, &tm));
		char want[64];
		snprintf(want, sizeof(want), "%s, %02d %s %04d %02d:%02d:%02d GMT", wd[tm.tm_wday],
			 tm.tm_mday, mon[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
			 tm.tm_sec);
		char out[HTTP_DATE_LEN + 1];
		http_date_format(t, out);
		assert_string_equal(out, want);
		int64_t back;
		assert_int_equal(http_date_parse(out, HTTP_DATE_LEN, &back), 0);
		assert_int_equal(back, t);
	}
}

static void test_date_parse(void **state)
{
	static const struct {
		const char *s;
		int rc;
		int64_t t;
	} cases[] = {
		{"Sun, 06 Nov 1994 08:49:37 GMT", 0, 784111777},
		{"Sunday, 06-Nov-94 08:49:37 GMT", 0, 784111777},
		{"Sun Nov  6 08:49:37 1994", 0, 784111777},
		{"Sun Nov 06 08:49:37 1994", 0, 784111777},
		{"Wednesday, 01-Mar-00 00:00:00 GMT", 0, 951868800},
		{"Thursday, 01-Jan-70 00:00:00 GMT", 0, 0},
		{"Tuesday, 19-Jan-38 03:14:08 GMT", 0, 2147483648},
		{"Tue, 29 Feb 2000 12:34:56 GMT", 0, 951827696},
		{"Tue Feb 29 12:34:56 2000", 0, 951827696},
		/* before 1970 */
		{"Wed, 31 Dec 1969 23:59:59 GMT", 0, -1},
		/* a leap second reads as the next second */
		{"Sat, 31 Dec 2016 23:59:60 GMT", 0, 1483228800},
		/* invalid */
		{"", -EBADMSG, 0},
		{"Sun, 06 Nov 1994 08:49:37 UTC", -EBADMSG, 0},
		{"Sun, 06 Nov 1994 08:49:37 gmt", -EBADMSG, 0},
		{"sun, 06 Nov 1994 08:49:37 GMT", -EBADMSG, 0},
		{"Sun, 06 nov 1994 08:49:37 GMT", -EBADMSG, 0},
		{"Xyz, 06 Nov 1994 08:49:37 GMT", -EBADMSG, 0},
		{"Sun, 6 Nov 1994 08:49:37 GMT ", -EBADMSG, 0},
		{"Sun,  06 Nov 1994 08:49:37 GMT", -EBADMSG, 0},
		{" Sun, 06 Nov 1994 08:49:37 GMT", -EBADMSG, 0},
		{"Sun, 06 Nov 1994 08:49:37 GMT\r", -EBADMSG, 0},
		{"Sun, 06 Nov 1994 24:00:00 GMT", -EBADMSG, 0},
		{"Sun, 06 Nov 1994 08:60:00 GMT", -EBADMSG, 0},
		{"Sun, 06 Nov 1994 08:00:61 GMT", -EBADMSG, 0},
		{"Sun, 06 Nov 1994 08-49-37 GMT", -EBADMSG, 0},
		{"Sun, 00 Nov 1994 08:49:37 GMT", -EBADMSG, 0},
		{"Sun, 31 Nov 1994 08:49:37 GMT", -EBADMSG, 0},
		{"Mon, 29 Feb 1900 00:00:00 GMT", -EBADMSG, 0},
		{"Sun, 29 Feb 2001 00:00:00 GMT", -EBADMSG, 0},
		{"Sun, 30 Feb 2000 00:00:00 GMT", -EBADMSG, 0},
		{"Sun, 06 Nov 19x4 08:49:37 GMT", -EBADMSG, 0},
		{"Sun, +6 Nov 1994 08:49:37 GMT", -EBADMSG, 0},
		{"Sun, 06 Nov 1994 8:49:37  GMT", -EBADMSG, 0},
		{"Sunday, 06-Nov-1994 08:49:37 GMT", -EBADMSG, 0},
		{"Sunday, 06 Nov 94 08:49:37 GMT", -EBADMSG, 0},
		{"Sundae, 06-Nov-94 08:49:37 GMT", -EBADMSG, 0},
		{"Sun, 06-Nov-94 08:49:37 GMT", -EBADMSG, 0},
		{"Sun Nov  6 08:49:37 94", -EBADMSG, 0},
		{"Sun Nov 6 08:49:37 1994", -EBADMSG, 0},
		{"Sun Nov  6 08:49:37 1994 ", -EBADMSG, 0},
		{"Sun Nov   08:49:37 1994", -EBADMSG, 0},
		{"1994-11-06T08:49:37Z", -EBADMSG, 0},
		{"784111777", -EBADMSG, 0},
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		int64_t t = 42;
		int k = http_date_parse(cases[i].s, strlen(cases[i].s), &t);
		if (k != cases[i].rc)
			fail_msg("\"%s\": got %d", cases[i].s, k);
		assert_int_equal(t, k == 0 ? cases[i].t : 42);
	}
}

static void test_etag(void **state)
{
	/* SHA-256("abc") = ba7816bf8f01cfea 414140de…, SHA-256("") = e3b0c44298fc1c14 9afbf4c8… */
	assert_true(ocsp_http_etag((const uint8_t *)"abc", 3) == UINT64_C(0xba7816bf8f01cfea));
	assert_true(ocsp_http_etag((const uint8_t *)"", 0) == UINT64_C(0xe3b0c44298fc1c14));
}

static const struct ocsp_http_meta meta = {
	.this_update_unix = 784111777,	       /* Sun, 06 Nov 1994 08:49:37 GMT */
	.next_update_unix = 784111777 + 86400, /* Mon, 07 Nov 1994 08:49:37 GMT */
	.etag = UINT64_C(0x0123456789abcdef),
};

static void test_render_200(void **state)
{
	struct buf o = BUF_INIT;
	buf_append_str(&o, "previous");
	ocsp_http_render_200(&o, &meta, 1234, 784111777 + 3600, 0, OCSP_HTTP_CONN_CLOSE);
	assert_string_equal(
		(char *)o.data,
		"previous"
		"HTTP/1.1 200 OK\r\n"
		"Date: Sun, 06 Nov 1994 09:49:37 GMT\r\n"
		"Content-Type: application/ocsp-response\r\n"
		"Content-Length: 1234\r\n"
		"Last-Modified: Sun, 06 Nov 1994 08:49:37 GMT\r\n"
		"Expires: Mon, 07 Nov 1994 08:49:37 GMT\r\n"
		"ETag: \"0123456789abcdef\"\r\n"
		"Cache-Control: max-age=82800, public, no-transform, must-revalidate\r\n"
		"Connection: close\r\n"
		"\r\n");
	assert_int_equal(o.len, strlen((char *)o.data));

	/* The cap lowers max-age; keep-alive for HTTP/1.0 clients; 0-byte body. */
	buf_reset(&o);
	ocsp_http_render_200(&o, &meta, 0, 784111777, 600, OCSP_HTTP_CONN_KEEP_ALIVE);
	assert_string_equal((char *)o.data,
			    "HTTP/1.1 200 OK\r\n"
			    "Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n"
			    "Content-Type: application/ocsp-response\r\n"
			    "Content-Length: 0\r\n"
			    "Last-Modified: Sun, 06 Nov 1994 08:49:37 GMT\r\n"
			    "Expires: Mon, 07 Nov 1994 08:49:37 GMT\r\n"
			    "ETag: \"0123456789abcdef\"\r\n"
			    "Cache-Control: max-age=600, public, no-transform, must-revalidate\r\n"
			    "Connection: keep-alive\r\n"
			    "\r\n");

	/* Past nextUpdate: max-age 0; a cap above the remaining time changes nothing; no
	 * Connection header by default. */
	buf_reset(&o);
	ocsp_http_render_200(&o, &meta, 18446744073709551615u, 784111777 + 90000, 100,
			     OCSP_HTTP_CONN_DEFAULT);
	assert_string_equal((char *)o.data,
			    "HTTP/1.1 200 OK\r\n"
			    "Date: Mon, 07 Nov 1994 09:49:37 GMT\r\n"
			    "Content-Type: application/ocsp-response\r\n"
			    "Content-Length: 18446744073709551615\r\n"
			    "Last-Modified: Sun, 06 Nov 1994 08:49:37 GMT\r\n"
			    "Expires: Mon, 07 Nov 1994 08:49:37 GMT\r\n"
			    "ETag: \"0123456789abcdef\"\r\n"
			    "Cache-Control: max-age=0, public, no-transform, must-revalidate\r\n"
			    "\r\n");
	buf_reset(&o);
	ocsp_http_render_200(&o, &meta, 7, 784111777 + 86000, 1000, OCSP_HTTP_CONN_DEFAULT);
	assert_non_null(strstr((char *)o.data, "\r\nCache-Control: max-age=400, public"));
	/* Extreme times do not overflow. */
	struct ocsp_http_meta m2 = meta;
	m2.next_update_unix = INT64_MAX;
	buf_reset(&o);
	ocsp_http_render_200(&o, &m2, 7, INT64_MIN, 0, OCSP_HTTP_CONN_DEFAULT);
	assert_non_null(strstr((char *)o.data, "max-age=9223372036854775807, public"));
	assert_non_null(strstr((char *)o.data, "Expires: Fri, 31 Dec 9999 23:59:59 GMT\r\n"));
	m2.next_update_unix = INT64_MIN;
	buf_reset(&o);
	ocsp_http_render_200(&o, &m2, 7, INT64_MAX, 0, OCSP_HTTP_CONN_DEFAULT);
	assert_non_null(strstr((char *)o.data, "max-age=0, public"));
	buf_done(&o);
}

static void test_render_304(void **state)
{
	struct buf o = BUF_INIT;
	ocsp_http_render_304(&o, &meta, 784111777 + 3600, 0, OCSP_HTTP_CONN_DEFAULT);
	assert_string_equal(
		(char *)o.data,
		"HTTP/1.1 304 Not Modified\r\n"
		"Date: Sun, 06 Nov 1994 09:49:37 GMT\r\n"
		"Last-Modified: Sun, 06 Nov 1994 08:49:37 GMT\r\n"
		"Expires: Mon, 07 Nov 1994 08:49:37 GMT\r\n"
		"ETag: \"0123456789abcdef\"\r\n"
		"Cache-Control: max-age=82800, public, no-transform, must-revalidate\r\n"
		"\r\n");
	buf_reset(&o);
	ocsp_http_render_304(&o, &meta, 784111777, 5, OCSP_HTTP_CONN_CLOSE);
	assert_non_null(strstr((char *)o.data, "max-age=5, public"));
	assert_non_null(strstr((char *)o.data, "\r\nConnection: close\r\n\r\n"));
	assert_null(strstr((char *)o.data, "Content-"));
	buf_done(&o);
}

static void test_not_modified(void **state)
{
	static const struct {
		const char *inm;
		const char *ims;
		bool nm;
	} cases[] = {
		{NULL, NULL, false},
		{"\"0123456789abcdef\"", NULL, true},
		{"W/\"0123456789abcdef\"", NULL, true},
		{"*", NULL, true},
		{" * ", NULL, true},
		{"\"x\", \"0123456789abcdef\"", NULL, true},
		{"\"x\",W/\"0123456789abcdef\" , \"y\"", NULL, true},
		{"\"0123456789ABCDEF\"", NULL, false},
		{"\"0123456789abcde\"", NULL, false},
		{"0123456789abcdef", NULL, false},
		{"\"0123456789abcdef", NULL, false},
		{"\"x\" \"0123456789abcdef\"", NULL, false},
		{"w/\"0123456789abcdef\"", NULL, false},
		{"", NULL, false},
		{"*, \"0123456789abcdef\"", NULL, false},
		/* If-None-Match wins over If-Modified-Since, in both directions */
		{"\"other\"", "Sun, 06 Nov 1994 08:49:37 GMT", false},
		{"\"0123456789abcdef\"", "Sat, 01 Jan 1994 00:00:00 GMT", true},
		/* If-Modified-Since alone: not modified when thisUpdate <= IMS */
		{NULL, "Sun, 06 Nov 1994 08:49:37 GMT", true},
		{NULL, "Sun, 06 Nov 1994 08:49:38 GMT", true},
		{NULL, "Sun, 06 Nov 1994 08:49:36 GMT", false},
		{NULL, "Sunday, 06-Nov-94 08:49:37 GMT", true},
		{NULL, "Sun Nov  6 08:49:37 1994", true},
		{NULL, " Sun, 06 Nov 1994 08:49:37 GMT ", true},
		{NULL, "garbage", false},
		{NULL, "", false},
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		const char *inm = cases[i].inm, *ims = cases[i].ims;
		bool nm = ocsp_http_not_modified(&meta, inm, inm ? strlen(inm) : 0, ims,
						 ims ? strlen(ims) : 0);
		if (nm != cases[i].nm)
			fail_msg("case %zu (%s / %s): %d", i, inm ? inm : "-", ims ? ims : "-", nm);
	}
}

static void test_parse_max_age(void **state)
{
	static const struct {
		const char *v;
		int rc;
		int64_t s;
	} cases[] = {
		{"max-age=3600", 0, 3600},
		{"MAX-AGE=10", 0, 10},
		{"public, max-age=0", 0, 0},
		{"max-age=\"10\"", 0, 10},
		{"no-transform,max-age=99 , must-revalidate", 0, 99},
		{"private=\"a, max-age=5\", max-age=7", 0, 7},
		{"s-maxage=5, max-age=6", 0, 6},
		{"max-age=1, max-age=2", 0, 1},
		{"max-age=99999999999999999999", 0, 2147483648},
		{"max-age=2147483649", 0, 2147483648},
		{"junk junk, max-age=4", 0, 4},
		{"=x, max-age=4", 0, 4},
		{"", -ENOENT, 0},
		{"public, no-cache", -ENOENT, 0},
		{"s-maxage=5", -ENOENT, 0},
		{"max-ages=5", -ENOENT, 0},
		{"max-age", -EBADMSG, 0},
		{"max-age=", -EBADMSG, 0},
		{"max-age=\"\"", -EBADMSG, 0},
		{"max-age=-1", -EBADMSG, 0},
		{"max-age=1.5", -EBADMSG, 0},
		{"max-age=10s", -EBADMSG, 0},
		{"max-age=\"10", -EBADMSG, 0},
		{"max-age = 10", -EBADMSG, 0},
		{"max-age=0x10", -EBADMSG, 0},
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		int64_t s = -42;
		int k = ocsp_http_parse_max_age(cases[i].v, strlen(cases[i].v), &s);
		if (k != cases[i].rc)
			fail_msg("\"%s\": got %d", cases[i].v, k);
		assert_int_equal(s, k == 0 ? cases[i].s : -42);
	}
}

static void test_parse_retry_after(void **state)
{
	const int64_t now = 784111777;
	static const struct {
		const char *v;
		int rc;
		int64_t s;
	} cases[] = {
		{"120", 0, 120},
		{" 0 ", 0, 0},
		{"99999999999", 0, 2147483648},
		{"Sun, 06 Nov 1994 08:50:37 GMT", 0, 60},
		{"Sun, 06 Nov 1994 08:49:37 GMT", 0, 0},
		{"Sun, 06 Nov 1994 08:00:00 GMT", 0, 0}, /* in the past: now */
		{"Sunday, 06-Nov-94 09:49:37 GMT", 0, 3600},
		{"", -EBADMSG, 0},
		{"-5", -EBADMSG, 0},
		{"12a", -EBADMSG, 0},
		{"1 2", -EBADMSG, 0},
		{"soon", -EBADMSG, 0},
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		int64_t s = -42;
		int k = ocsp_http_parse_retry_after(cases[i].v, strlen(cases[i].v), now, &s);
		if (k != cases[i].rc)
			fail_msg("\"%s\": got %d", cases[i].v, k);
		assert_int_equal(s, k == 0 ? cases[i].s : -42);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_get_decode_forms),
		cmocka_unit_test(test_get_decode_padding_lengths),
		cmocka_unit_test(test_proxy_target),
		cmocka_unit_test(test_base64),
		cmocka_unit_test(test_get_decode_errors),
		cmocka_unit_test(test_get_encode),
		cmocka_unit_test(test_date_format),
		cmocka_unit_test(test_date_vs_gmtime),
		cmocka_unit_test(test_date_parse),
		cmocka_unit_test(test_etag),
		cmocka_unit_test(test_render_200),
		cmocka_unit_test(test_render_304),
		cmocka_unit_test(test_not_modified),
		cmocka_unit_test(test_parse_max_age),
		cmocka_unit_test(test_parse_retry_after),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
