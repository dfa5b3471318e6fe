/* SPDX-License-Identifier: Apache-2.0 */
/*
 * http1_parse on arbitrary bytes, under two sets of limits, checking the invariants the server
 * relies on: every pointer stays inside the input (or scratch for chunked bodies), consumed never
 * exceeds the input, results do not depend on how the bytes were split into reads, and the
 * headers-only mode agrees with the full parse.
 */
#include <assert.h>
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/http1.h"
#include "proto/macro.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool is_result(int k)
{
	return k == HTTP1_INCOMPLETE || k == HTTP1_COMPLETE || k == HTTP1_HEADERS_DONE ||
	       k == -EBADMSG || k == -EMSGSIZE || k == -EFBIG || k == -ENOTSUP;
}

static void check_str(struct http1_str s, const uint8_t *data, size_t size)
{
	if (!s.p)
		return;
	assert((const uint8_t *)s.p >= data && (const uint8_t *)s.p + s.len <= data + size);
}

static void check_request(const struct http1_request *r, const uint8_t *data, size_t size,
			  size_t consumed, const uint8_t *scratch, const struct http1_limits *lim)
{
	assert(consumed <= size);
	assert(r->header_bytes <= consumed);
	assert(r->header_bytes <= lim->max_header_bytes);
	assert(r->version_minor == 0 || r->version_minor == 1);
	assert(r->method_token.p && r->method_token.len > 0);
	assert(r->target.p && r->target.len > 0);
	check_str(r->method_token, data, r->header_bytes);
	check_str(r->target, data, r->header_bytes);
	check_str(r->host, data, r->header_bytes);
	check_str(r->content_type, data, r->header_bytes);
	check_str(r->if_none_match, data, r->header_bytes);
	check_str(r->if_modified_since, data, r->header_bytes);
	assert(r->content_length >= -1);
	assert(r->body_len <= lim->max_body_bytes);
	if (r->chunked) {
		assert(r->content_length == -1);
		assert(r->body == scratch);
	} else if (r->body_len) {
		assert(r->body >= data + r->header_bytes &&
		       r->body + r->body_len <= data + consumed);
		assert((int64_t)r->body_len == r->content_length);
		assert(consumed == r->header_bytes + r->body_len);
	} else {
		assert(consumed == r->header_bytes);
	}
}

static void run(const uint8_t *data, size_t size, const struct http1_limits *lim, uint8_t *scratch)
{
	struct http1_request r;
	size_t consumed = 0;
	int k = http1_parse(data, size, lim, scratch, false, &r, &consumed);
	assert(is_result(k) && k != HTTP1_HEADERS_DONE);
	if (k == HTTP1_COMPLETE)
		check_request(&r, data, size, consumed, scratch, lim);

	/* Headers-only agrees with the full parse. */
	struct http1_request h;
	size_t hc = 0;
	int hk = http1_parse(data, size, lim, scratch, true, &h, &hc);
	assert(is_result(hk) && hk != HTTP1_COMPLETE);
	if (k == HTTP1_COMPLETE) {
		assert(hk == HTTP1_HEADERS_DONE);
		assert(h.header_bytes == r.header_bytes && hc == r.header_bytes);
		assert(h.body == NULL && h.body_len == 0);
	}
	if (hk < 0)
		assert(k == hk);
	if (hk == HTTP1_INCOMPLETE)
		assert(k == HTTP1_INCOMPLETE);

	/*
	 * Any prefix: incomplete, or the answer for the whole input. Every prefix for small
	 * inputs; a sample (always including the ones next to the request's end) for large ones.
	 */
	size_t step = size <= 256 ? 1 : size / 64;
	for (size_t i = 0; i <= size; i += step) {
		size_t cuts[3] = {i, 0, 0};
		size_t ncuts = 1;
		if (k == HTTP1_COMPLETE && i == 0) {
			cuts[1] = consumed;
			cuts[2] = consumed ? consumed - 1 : 0;
			ncuts = 3;
		}
		for (size_t c = 0; c < ncuts; c++) {
			size_t n = cuts[c];
			struct http1_request pr;
			size_t pc = 0;
			int pk = http1_parse(data, n, lim, scratch, false, &pr, &pc);
			assert(is_result(pk));
			if (pk == HTTP1_INCOMPLETE) {
				assert(k != HTTP1_COMPLETE || n < consumed);
				continue;
			}
			assert(pk == k);
			if (pk == HTTP1_COMPLETE) {
				assert(pc == consumed && pc <= n);
				check_request(&pr, data, n, pc, scratch, lim);
			}
		}
	}

	/* Pipelining: keep consuming complete requests. */
	size_t off = 0;
	while (off < size) {
		size_t c = 0;
		int pk = http1_parse(data + off, size - off, lim, scratch, false, &r, &c);
		if (pk != HTTP1_COMPLETE)
			break;
		check_request(&r, data + off, size - off, c, scratch, lim);
		assert(c > 0);
		off += c;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct http1_limits big = {8192, 16384, 64};
	static const struct http1_limits small = {96, 24, 4};
	uint8_t *scratch = malloc(big.max_body_bytes);
	if (!scratch)
		abort();
	run(data, size, &big, scratch);
	run(data, size, &small, scratch);
	run(data, size, &small, NULL);
	free(scratch);
	return 0;
}
