/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lzw_decode on arbitrary bytes, and lzw_encode of the same bytes. Decoding either
 * fails leaving the output buffer exactly as it was, or produces at most max_out bytes that
 * re-encode and decode back to themselves; the cap is exact (one byte less fails with -EFBIG).
 * Encoding any input stays within the documented size bound and decodes back to the input.
 */
#include <assert.h>
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "proto/lzw.h"
#include "proto/buf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Small enough to keep the fuzzer fast, large enough that bombs hit it. */
#define MAX_OUT ((size_t)1 << 20)

static void check_roundtrip(const uint8_t *p, size_t n)
{
	struct buf enc = BUF_INIT, dec = BUF_INIT;
	lzw_encode(p, n, &enc);
	assert(enc.len <= 3 * n / 2 + n / 2048 + 8);
	assert(enc.len >= 3);
	assert(lzw_decode(enc.data, enc.len, n, &dec) == 0);
	assert(dec.len == n && (n == 0 || memcmp(dec.data, p, n) == 0));
	buf_done(&enc);
	buf_done(&dec);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct buf out = BUF_INIT;
	buf_append(&out, "keep", 4);
	int r = lzw_decode(data, size, MAX_OUT, &out);
	assert(r == 0 || r == -EBADMSG || r == -EFBIG);
	assert(out.len >= 4 && memcmp(out.data, "keep", 4) == 0);
	assert(out.data[out.len] == 0);
	if (r < 0) {
		assert(out.len == 4);
	} else {
		size_t n = out.len - 4;
		assert(n <= MAX_OUT);
		check_roundtrip(out.data + 4, n);
		/* The same result with exactly enough room, -EFBIG with one byte less. */
		struct buf again = BUF_INIT;
		assert(lzw_decode(data, size, n, &again) == 0);
		assert(again.len == n && (n == 0 || memcmp(again.data, out.data + 4, n) == 0));
		buf_reset(&again);
		if (n > 0) {
			assert(lzw_decode(data, size, n - 1, &again) == -EFBIG);
			assert(again.len == 0);
		}
		buf_done(&again);
	}
	buf_done(&out);

	check_roundtrip(data, size);
	return 0;
}
