/* SPDX-License-Identifier: Apache-2.0 */
/*
 * gossip/lzw against Go's compress/lzw (LSB, literal width 8), the compressor memberlist uses.
 * The fixtures in tests/fixtures/gossip/ were written by Go (see README.txt there): small
 * input/output pairs, digests of the output for generated inputs (the generators below are
 * re-implemented exactly as the Go program had them), and Go's verdict on hand-made streams.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "proto/lzw.h"
#include "proto/buf.h"
#include "proto/macro.h"
#include "tests/unit/fixture.h"

/* ---- helpers ---- */

static void sha256_hex(const uint8_t *p, size_t n, char hex[65])
{
	uint8_t md[32];
	unsigned mdlen = 0;
	assert_int_equal(EVP_Digest(n ? p : (const uint8_t *)"", n, md, &mdlen, EVP_sha256(), NULL),
			 1);
	for (unsigned i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
}

/* splitmix64, as in the Go generator. */
static uint64_t sm64_next(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* The Go generators: every stream's first n bytes do not depend on how long it is. */
static uint8_t *generate(const char *gen, size_t n)
{
	uint8_t *p = malloc(n + 8);
	assert_non_null(p);
	uint64_t s;
	if (strcmp(gen, "random") == 0) {
		s = 42;
		for (size_t i = 0; i < n; i += 8) {
			uint64_t v = sm64_next(&s);
			for (int j = 0; j < 8; j++)
				p[i + j] = (uint8_t)(v >> (8 * j));
		}
	} else if (strcmp(gen, "text") == 0) {
		size_t o = 0;
		for (int i = 0; o < n; i++) {
			char line[80];
			int l = snprintf(line, sizeof(line),
					 "line %05d: the quick brown fox jumps over the lazy dog\n",
					 i);
			size_t c = MIN((size_t)l, n - o);
			memcpy(p + o, line, c);
			o += c;
		}
	} else if (strcmp(gen, "zeros") == 0) {
		memset(p, 0, n);
	} else if (strcmp(gen, "ab") == 0) {
		s = 7;
		for (size_t i = 0; i < n; i++)
			p[i] = "ab"[sm64_next(&s) % 2];
	} else if (strcmp(gen, "acgt") == 0) {
		s = 9;
		for (size_t i = 0; i < n; i++)
			p[i] = "ACGT"[sm64_next(&s) % 4];
	} else {
		fail_msg("unknown generator %s", gen);
	}
	return p;
}

static void load(const char *name, struct buf *b)
{
	char path[256];
	snprintf(path, sizeof(path), "gossip/%s", name);
	size_t n;
	uint8_t *p = fixture_load(path, &n);
	buf_append(b, p, n);
	free(p);
}

/* Decoding `lzw` gives exactly `want`, also when appended to existing contents. */
static void expect_decodes(const uint8_t *lzw, size_t len, const uint8_t *want, size_t want_len)
{
	struct buf out = BUF_INIT;
	buf_append_str(&out, "keep");
	assert_int_equal(lzw_decode(lzw, len, LZW_MAX_OUT, &out), 0);
	assert_int_equal(out.len, 4 + want_len);
	assert_memory_equal(out.data, "keep", 4);
	if (want_len)
		assert_memory_equal(out.data + 4, want, want_len);
	assert_int_equal(out.data[out.len], 0);
	buf_done(&out);
}

static void expect_encodes(const uint8_t *in, size_t len, const uint8_t *want, size_t want_len)
{
	struct buf out = BUF_INIT;
	buf_append_str(&out, "keep");
	lzw_encode(in, len, &out);
	assert_int_equal(out.len, 4 + want_len);
	assert_memory_equal(out.data, "keep", 4);
	assert_memory_equal(out.data + 4, want, want_len);
	assert_int_equal(out.data[out.len], 0);
	buf_done(&out);
}

/* Decoding fails with `err` and leaves the buffer as it was. */
static void expect_fails(const uint8_t *lzw, size_t len, size_t max_out, int err)
{
	struct buf out = BUF_INIT;
	buf_append_str(&out, "keep");
	assert_int_equal(lzw_decode(lzw, len, max_out, &out), err);
	assert_int_equal(out.len, 4);
	assert_string_equal((const char *)out.data, "keep");
	buf_done(&out);
}

/* Packs codes LSB first at the widths a decoder expects, for hand-made streams. */
struct packer {
	struct buf b;
	uint32_t bits;
	unsigned nbits;
};

static void pack(struct packer *k, unsigned code, unsigned width)
{
	k->bits |= (uint32_t)code << k->nbits;
	k->nbits += width;
	while (k->nbits >= 8) {
		buf_append_byte(&k->b, (uint8_t)k->bits);
		k->bits >>= 8;
		k->nbits -= 8;
	}
}

static void pack_end(struct packer *k)
{
	if (k->nbits)
		buf_append_byte(&k->b, (uint8_t)k->bits);
	k->nbits = 0;
	k->bits = 0;
}

/* ---- tests ---- */

static void test_small_vectors(void **state)
{
	(void)state;
	static const char *const names[] = {"empty", "1byte", "hello", "kwkwk", "pushpull"};
	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		char f[64];
		struct buf in = BUF_INIT, lzw = BUF_INIT;
		snprintf(f, sizeof(f), "lzw-%s.in", names[i]);
		load(f, &in);
		snprintf(f, sizeof(f), "lzw-%s.lzw", names[i]);
		load(f, &lzw);
		assert_true(lzw.len >= 3);
		expect_encodes(in.data, in.len, lzw.data, lzw.len);
		expect_decodes(lzw.data, lzw.len, in.data, in.len);
		buf_done(&in);
		buf_done(&lzw);
	}
	/* Spelled out: clear (256) and end (257), 9 bits each, LSB first. */
	static const uint8_t empty[] = {0x00, 0x03, 0x02};
	expect_encodes(NULL, 0, empty, sizeof(empty));
	expect_decodes(empty, sizeof(empty), NULL, 0);
}

static void test_text_100k(void **state)
{
	(void)state;
	struct buf lzw = BUF_INIT;
	load("lzw-text100k.lzw", &lzw);
	uint8_t *text = generate("text", 102400);
	expect_encodes(text, 102400, lzw.data, lzw.len);
	expect_decodes(lzw.data, lzw.len, text, 102400);
	/* The cap is exact. */
	struct buf out = BUF_INIT;
	assert_int_equal(lzw_decode(lzw.data, lzw.len, 102400, &out), 0);
	assert_int_equal(out.len, 102400);
	buf_done(&out);
	expect_fails(lzw.data, lzw.len, 102399, -EFBIG);
	free(text);
	buf_done(&lzw);
}

/* lzw-digests.txt: "gen n clen sha" for one input, "range gen lo hi step sha" for the SHA-256
 * over every prefix length lo, lo+step, ... < hi of le64(compressed length) || compressed. */
static void test_go_digests(void **state)
{
	(void)state;
	char path[512];
	snprintf(path, sizeof(path), "%s/gossip/lzw-digests.txt", FIXTURES);
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	char line[512];
	int singles = 0, ranges = 0;
	while (fgets(line, sizeof(line), f)) {
		char gen[16], want[65], got[65];
		size_t n, clen, lo, hi, step;
		if (line[0] == '#')
			continue;
		if (sscanf(line, "range %15s %zu %zu %zu %64s", gen, &lo, &hi, &step, want) == 5) {
			uint8_t *in = generate(gen, hi);
			EVP_MD_CTX *md = EVP_MD_CTX_new();
			assert_int_equal(EVP_DigestInit_ex(md, EVP_sha256(), NULL), 1);
			for (n = lo; n < hi; n += step) {
				struct buf c = BUF_INIT, d = BUF_INIT;
				lzw_encode(in, n, &c);
				uint8_t le[8];
				for (int j = 0; j < 8; j++)
					le[j] = (uint8_t)((uint64_t)c.len >> (8 * j));
				EVP_DigestUpdate(md, le, 8);
				EVP_DigestUpdate(md, c.data, c.len);
				assert_int_equal(lzw_decode(c.data, c.len, n, &d), 0);
				assert_int_equal(d.len, n);
				assert_true(n == 0 || memcmp(d.data, in, n) == 0);
				buf_done(&c);
				buf_done(&d);
			}
			uint8_t dg[32];
			assert_int_equal(EVP_DigestFinal_ex(md, dg, NULL), 1);
			EVP_MD_CTX_free(md);
			for (int j = 0; j < 32; j++)
				snprintf(got + 2 * j, 3, "%02x", dg[j]);
			if (strcmp(got, want) != 0)
				fail_msg("range %s %zu..%zu step %zu differs from Go", gen, lo, hi,
					 step);
			free(in);
			ranges++;
		} else if (sscanf(line, "%15s %zu %zu %64s", gen, &n, &clen, want) == 4) {
			uint8_t *in = generate(gen, n);
			struct buf c = BUF_INIT, d = BUF_INIT;
			lzw_encode(in, n, &c);
			sha256_hex(c.data, c.len, got);
			if (c.len != clen || strcmp(got, want) != 0)
				fail_msg("%s %zu: %zu bytes %s, Go: %zu bytes %s", gen, n, c.len,
					 got, clen, want);
			assert_int_equal(lzw_decode(c.data, c.len, n, &d), 0);
			assert_int_equal(d.len, n);
			assert_memory_equal(d.data, in, n);
			buf_done(&c);
			buf_done(&d);
			free(in);
			singles++;
		} else {
			fail_msg("bad line: %s", line);
		}
	}
	fclose(f);
	assert_int_equal(singles, 6);
	assert_int_equal(ranges, 8);
}

/* lzw-decode.txt: Go's reader on hand-made streams: no leading clear, bytes after the end code,
 * a full table without a clear, the code being defined (KwKwK), truncation, bad codes. */
static void test_go_decode_verdicts(void **state)
{
	(void)state;
	char path[512];
	snprintf(path, sizeof(path), "%s/gossip/lzw-decode.txt", FIXTURES);
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	char line[512];
	int ok = 0, bad = 0;
	while (fgets(line, sizeof(line), f)) {
		char name[64], verdict[8], want[65] = "", got[65];
		size_t want_len = 0;
		if (line[0] == '#')
			continue;
		int k = sscanf(line, "%63s %7s %zu %64s", name, verdict, &want_len, want);
		assert_true(k == 2 || k == 4);
		struct buf in = BUF_INIT, out = BUF_INIT;
		load(name, &in);
		int r = lzw_decode(in.data, in.len, LZW_MAX_OUT, &out);
		if (strcmp(verdict, "ok") == 0) {
			if (r != 0)
				fail_msg("%s: %d, Go decodes it", name, r);
			sha256_hex(out.data, out.len, got);
			assert_int_equal(out.len, want_len);
			assert_string_equal(got, want);
			ok++;
		} else {
			if (r != -EBADMSG)
				fail_msg("%s: %d, Go rejects it", name, r);
			assert_int_equal(out.len, 0);
			bad++;
		}
		buf_done(&in);
		buf_done(&out);
	}
	fclose(f);
	assert_int_equal(ok, 5);
	assert_int_equal(bad, 4);
}

static void test_truncated(void **state)
{
	(void)state;
	struct buf lzw = BUF_INIT;
	load("lzw-pushpull.lzw", &lzw);
	/* Every strict prefix lacks (part of) the end code. */
	for (size_t n = 0; n < lzw.len; n++)
		expect_fails(lzw.data, n, LZW_MAX_OUT, -EBADMSG);
	buf_done(&lzw);

	/* A stream that stops right after a full code, without the end code. */
	struct packer k = {BUF_INIT, 0, 0};
	pack(&k, 256, 9);
	pack(&k, 'a', 9);
	pack_end(&k);
	expect_fails(k.b.data, k.b.len, 100, -EBADMSG);
	buf_done(&k.b);
}

static void test_bad_codes(void **state)
{
	(void)state;
	struct packer k = {BUF_INIT, 0, 0};
	/* Entry codes before any entry exists: at the start, and after a clear. */
	for (unsigned code = 258; code < 512; code += 37) {
		pack(&k, code, 9);
		pack(&k, 257, 9);
		pack_end(&k);
		expect_fails(k.b.data, k.b.len, 100, -EBADMSG);
		buf_reset(&k.b);
		pack(&k, 256, 9);
		pack(&k, 'x', 9);
		pack(&k, 256, 9);
		pack(&k, code, 9);
		pack(&k, 257, 9);
		pack_end(&k);
		expect_fails(k.b.data, k.b.len, 100, -EBADMSG);
		buf_reset(&k.b);
	}
	/* After "a", "b" entry 258 exists and 259 is being defined: 259 is fine, 260 is not. */
	pack(&k, 256, 9);
	pack(&k, 'a', 9);
	pack(&k, 'b', 9);
	pack(&k, 259, 9);
	pack(&k, 257, 9);
	pack_end(&k);
	expect_decodes(k.b.data, k.b.len, (const uint8_t *)"abbb", 4);
	buf_reset(&k.b);
	pack(&k, 256, 9);
	pack(&k, 'a', 9);
	pack(&k, 'b', 9);
	pack(&k, 260, 9);
	pack(&k, 257, 9);
	pack_end(&k);
	expect_fails(k.b.data, k.b.len, 100, -EBADMSG);
	buf_done(&k.b);
}

static void test_width_growth(void **state)
{
	(void)state;
	/* 254 literals after a clear define entries 258..510 (the first adds none); the next code
	 * defines 511, hi reaches 512, and from then on codes are 10 bits wide. */
	struct packer k = {BUF_INIT, 0, 0};
	struct buf want = BUF_INIT;
	pack(&k, 256, 9);
	for (unsigned i = 0; i < 254; i++) {
		pack(&k, i, 9);
		buf_append_byte(&want, (uint8_t)i);
	}
	pack(&k, 'z', 9); /* defines 511 = "\xfd" "z" */
	buf_append_byte(&want, 'z');
	pack(&k, 511, 10);
	buf_append(&want, "\xfdz", 2);
	pack(&k, 257, 10);
	pack_end(&k);
	expect_decodes(k.b.data, k.b.len, want.data, want.len);
	/* One code more at 9 bits, and the decoder reads it (and the end code) wrongly. */
	buf_reset(&k.b);
	buf_reset(&want);
	pack(&k, 256, 9);
	for (unsigned i = 0; i < 256; i++)
		pack(&k, i, 9);
	pack(&k, 257, 9);
	pack_end(&k);
	expect_fails(k.b.data, k.b.len, 1000, -EBADMSG);
	buf_done(&k.b);
	buf_done(&want);
}

static void test_output_cap(void **state)
{
	(void)state;
	struct buf lzw = BUF_INIT;
	load("lzw-hello.lzw", &lzw);
	for (size_t cap = 0; cap < 5; cap++)
		expect_fails(lzw.data, lzw.len, cap, -EFBIG);
	struct buf out = BUF_INIT;
	assert_int_equal(lzw_decode(lzw.data, lzw.len, 5, &out), 0);
	assert_int_equal(out.len, 5);
	/* The cap counts this call's output only, not what the buffer held. */
	assert_int_equal(lzw_decode(lzw.data, lzw.len, 5, &out), 0);
	assert_int_equal(out.len, 10);
	assert_memory_equal(out.data, "hellohello", 10);
	buf_done(&out);
	buf_done(&lzw);

	/* A bomb: 8 MB of zeros is 6.8 kB compressed; a 1 MiB cap stops it. */
	uint8_t *zeros = generate("zeros", 8000000);
	struct buf c = BUF_INIT;
	lzw_encode(zeros, 8000000, &c);
	assert_true(c.len < 8000);
	expect_fails(c.data, c.len, 1 << 20, -EFBIG);
	expect_fails(c.data, c.len, 7999999, -EFBIG);
	assert_int_equal(lzw_decode(c.data, c.len, 8000000, &out), 0);
	assert_int_equal(out.len, 8000000);
	assert_memory_equal(out.data, zeros, 8000000);
	buf_done(&out);
	buf_done(&c);
	free(zeros);
}

static void test_roundtrip(void **state)
{
	(void)state;
	uint64_t s = 2024;
	for (int i = 0; i < 300; i++) {
		size_t n = sm64_next(&s) % (i % 10 == 0 ? 40000 : 2000);
		unsigned alphabet = 1 + (unsigned)(sm64_next(&s) % 256);
		uint8_t *in = malloc(n + 1);
		for (size_t j = 0; j < n; j++)
			in[j] = (uint8_t)(sm64_next(&s) % alphabet);
		struct buf c = BUF_INIT, d = BUF_INIT;
		lzw_encode(in, n, &c);
		/* The documented bound. */
		assert_true(c.len <= 3 * n / 2 + n / 2048 + 8);
		assert_int_equal(lzw_decode(c.data, c.len, n, &d), 0);
		assert_int_equal(d.len, n);
		assert_true(n == 0 || memcmp(d.data, in, n) == 0);
		if (n > 0)
			expect_fails(c.data, c.len, n - 1, -EFBIG);
		buf_done(&c);
		buf_done(&d);
		free(in);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_small_vectors), cmocka_unit_test(test_text_100k),
		cmocka_unit_test(test_go_digests),    cmocka_unit_test(test_go_decode_verdicts),
		cmocka_unit_test(test_truncated),     cmocka_unit_test(test_bad_codes),
		cmocka_unit_test(test_width_growth),  cmocka_unit_test(test_output_cap),
		cmocka_unit_test(test_roundtrip),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
