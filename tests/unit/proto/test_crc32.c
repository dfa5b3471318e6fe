/* SPDX-License-Identifier: Apache-2.0 */
/*
 * gossip/crc32 against values from Go's crc32.ChecksumIEEE (what memberlist uses for its CRC
 * messages) and the packet captured from a real memberlist node (GOSSIP.md Appendix B).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proto/crc32.h"
#include "proto/macro.h"

static size_t unhex(const char *hex, uint8_t *out, size_t cap)
{
	size_t n = strlen(hex) / 2;
	assert_true(n <= cap);
	for (size_t i = 0; i < n; i++) {
		unsigned v;
		assert_int_equal(sscanf(hex + 2 * i, "%2x", &v), 1);
		out[i] = (uint8_t)v;
	}
	return n;
}

/* splitmix64 bytes, seed 42, little-endian words: the same "random" stream as the Go program
 * that produced the expected values. */
static uint8_t *random_bytes(size_t n)
{
	uint8_t *p = malloc(n + 8);
	assert_non_null(p);
	uint64_t s = 42;
	for (size_t i = 0; i < n; i += 8) {
		uint64_t z = (s += 0x9e3779b97f4a7c15ull);
		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
		z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
		z ^= z >> 31;
		for (int j = 0; j < 8; j++)
			p[i + j] = (uint8_t)(z >> (8 * j));
	}
	return p;
}

static void test_known(void **state)
{
	(void)state;
	assert_int_equal(crc32_ieee(NULL, 0), 0);
	assert_int_equal(crc32_ieee((const uint8_t *)"123456789", 9), 0xcbf43926);
	static const char fox[] = "The quick brown fox jumps over the lazy dog";
	assert_int_equal(crc32_ieee((const uint8_t *)fox, strlen(fox)), 0x414fa339);
	assert_int_equal(crc32_ieee((const uint8_t *)"\0", 1), 0xd202ef8d);
}

static void test_go_values(void **state)
{
	(void)state;
	/* crc32.ChecksumIEEE(first n bytes of the stream), from Go 1.26. */
	static const struct {
		size_t n;
		uint32_t crc;
	} want[] = {
		{0, 0x00000000}, {1, 0x52678846}, {3, 0xc83fded0},    {7, 0x7c30883d},
		{8, 0x3fc65c25}, {9, 0x0030ac2c}, {1000, 0x52ea8497}, {102400, 0x3690e745},
	};
	uint8_t *p = random_bytes(102400);
	for (size_t i = 0; i < ARRAY_SIZE(want); i++)
		assert_int_equal(crc32_ieee(p, want[i].n), want[i].crc);
	free(p);
}

static void test_memberlist_packet(void **state)
{
	(void)state;
	/* Appendix B vector 2: type 12, CRC, then a compound message; the CRC covers offset 5 on.
	 */
	static const char hex[] =
		"0cb7dbe3f70703003d003b00110486a441646472a47f000001ab496e6361726e6174696f6e01a44d65"
		"7461c0a44e6f6465a5676f636170a4506f7274cd1f0fa356736ea60105020000000486a441646472a4"
		"7f000001ab496e6361726e6174696f6e01a44d657461c0a44e6f6465a3636170a4506f7274cd1f1aa3"
		"56736ea60105020000000868656c6c6f2d66726f6d2d676f636170";
	uint8_t pkt[256];
	size_t n = unhex(hex, pkt, sizeof(pkt));
	uint32_t declared =
		(uint32_t)pkt[1] << 24 | (uint32_t)pkt[2] << 16 | (uint32_t)pkt[3] << 8 | pkt[4];
	assert_int_equal(declared, 0xb7dbe3f7);
	assert_int_equal(crc32_ieee(pkt + 5, n - 5), declared);
	/* Any flipped bit changes it. */
	for (size_t i = 5; i < n; i++) {
		pkt[i] ^= 0x10;
		assert_int_not_equal(crc32_ieee(pkt + 5, n - 5), declared);
		pkt[i] ^= 0x10;
	}
}

static void test_update(void **state)
{
	(void)state;
	uint8_t *p = random_bytes(1000);
	uint32_t whole = crc32_ieee(p, 1000);
	for (size_t cut = 0; cut <= 1000; cut += 7)
		assert_int_equal(crc32_update(crc32_ieee(p, cut), p + cut, 1000 - cut), whole);
	assert_int_equal(crc32_update(whole, NULL, 0), whole);
	free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_known),
		cmocka_unit_test(test_go_values),
		cmocka_unit_test(test_memberlist_packet),
		cmocka_unit_test(test_update),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
