/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The election rules of gossip/elect.h: the weight formula recomputed here from the header's
 * glossary (anchored on published FNV-1a and splitmix64 vectors, so that the test does not
 * merely repeat elect.c), the properties rendezvous hashing promises (a permutation of ranks,
 * minimal movement when a member goes, balance), and the fallback timetable of elect_decide.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "gossip/elect.h"

/* ---- the formula of elect.h, written again ---- */

static uint64_t ref_fnv1a64(const char *s)
{
	uint64_t h = 14695981039346656037ULL; /* FNV offset basis */
	for (size_t i = 0; s[i]; i++) {
		h ^= (unsigned char)s[i];
		h *= 1099511628211ULL; /* FNV prime 2^40 + 2^8 + 0xb3 */
	}
	return h;
}

static uint64_t ref_finaliser(uint64_t z)
{
	z ^= z >> 30;
	z *= 0xbf58476d1ce4e5b9ULL;
	z ^= z >> 27;
	z *= 0x94d049bb133111ebULL;
	z ^= z >> 31;
	return z;
}

static void test_weight_formula(void **state)
{
	/* The reference functions are the published ones: FNV-1a 64 test vectors, and the
	 * first output of splitmix64 seeded with 0 (the finaliser of the golden gamma). */
	assert_true(ref_fnv1a64("") == 0xcbf29ce484222325ULL);
	assert_true(ref_fnv1a64("a") == 0xaf63dc4c8601ec8cULL);
	assert_true(ref_fnv1a64("foobar") == 0x85944171f73967e8ULL);
	assert_true(ref_finaliser(0x9e3779b97f4a7c15ULL) == 0xe220a8397b1dcdafULL);

	/* key XOR fnv1a64("a") is the golden gamma: the weight is splitmix64's first output. */
	assert_true(elect_weight(0x3154a5f5f94b9099ULL, "a") == 0xe220a8397b1dcdafULL);
	/* Three more, worked out by hand from the formula (and recomputed below). */
	assert_true(elect_weight(0, "n00") == 0x05df94c873f09ef4ULL);
	assert_true(elect_weight(0x0123456789abcdefULL, "node-a") == 0xf67406708ae62c31ULL);
	assert_true(elect_weight(UINT64_MAX, "stapled-1.example.net") == 0xdd08c4e4fffc56caULL);

	static const char *const names[] = {"n00", "n01", "node-a", "stapled-1.example.net", "x"};
	for (uint64_t k = 0; k < 1000; k++) {
		uint64_t key = k * 0x9e3779b97f4a7c15ULL ^ (k << 7);
		for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
			assert_true(elect_weight(key, names[i]) ==
				    ref_finaliser(key ^ ref_fnv1a64(names[i])));
	}
	/* The name, not only its length or first byte, matters. */
	assert_true(elect_weight(42, "n01") != elect_weight(42, "n10"));
}

/* ---- rank ---- */

#define NM 5
static const char *const members[NM] = {"n00", "n01", "n02", "n03", "n04"};

/* The members of all[0..n) other than all[self], into out. */
static size_t others(const char *const *all, size_t n, size_t self, const char **out)
{
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		if (i != self)
			out[k++] = all[i];
	return k;
}

/* The owner of key over all[0..n) (everyone stable), seen from all[0]'s view. */
static const char *owner_of(uint64_t key, const char *const *all, size_t n)
{
	const char *rest[16], *owner = NULL;
	size_t k = others(all, n, 0, rest);
	elect_rank(key, all[0], true, rest, k, &owner);
	return owner;
}

static void test_rank_permutation(void **state)
{
	for (uint64_t key = 1; key <= 2000; key++) {
		bool seen[NM] = {false};
		const char *owner0 = NULL;
		uint64_t best = 0;
		const char *heaviest = NULL;
		for (size_t i = 0; i < NM; i++) {
			uint64_t w = elect_weight(key, members[i]);
			if (!heaviest || w > best) {
				best = w;
				heaviest = members[i];
			}
		}
		for (size_t self = 0; self < NM; self++) {
			const char *rest[NM], *owner = NULL;
			size_t k = others(members, NM, self, rest);
			unsigned r = elect_rank(key, members[self], true, rest, k, &owner);
			assert_true(r < NM);
			assert_false(seen[r]);
			seen[r] = true;
			/* Every member agrees on the owner: the one of highest weight. */
			assert_non_null(owner);
			if (self == 0)
				owner0 = owner;
			assert_string_equal(owner, owner0);
			assert_string_equal(owner, heaviest);
			/* The rank is the number of members of higher weight. */
			unsigned above = 0;
			for (size_t j = 0; j < NM; j++)
				above += elect_weight(key, members[j]) >
					 elect_weight(key, members[self]);
			assert_int_equal(r, above);
			if (r == 0)
				assert_string_equal(owner, members[self]);
		}
	}
}

static void test_rank_unstable_self_last(void **state)
{
	for (uint64_t key = 1; key <= 500; key++) {
		for (size_t self = 0; self < NM; self++) {
			const char *rest[NM], *owner = NULL;
			size_t k = others(members, NM, self, rest);
			unsigned r = elect_rank(key, members[self], false, rest, k, &owner);
			/* After every stable member, however heavy self is. */
			assert_int_equal(r, k);
			assert_non_null(owner);
			assert_string_not_equal(owner, members[self]);
			assert_string_equal(owner, owner_of(key, rest, k));
		}
	}
	/* Alone: first if stable (and the owner), else nobody owns the key. */
	const char *owner = "unset";
	assert_int_equal(elect_rank(7, "n00", true, NULL, 0, &owner), 0);
	assert_string_equal(owner, "n00");
	owner = "unset";
	assert_int_equal(elect_rank(7, "n00", false, NULL, 0, &owner), 0);
	assert_null(owner);
	/* ret_owner may be NULL. */
	assert_int_equal(elect_rank(7, "n00", true, members + 1, NM - 1, NULL),
			 elect_rank(7, "n00", true, members + 1, NM - 1, &owner));
}

#define NKEYS 10000

static void test_rank_minimal_movement(void **state)
{
	/* n02 goes: exactly the keys it owned move, and they are about 1/5 of all. */
	static const char *const without[NM - 1] = {"n00", "n01", "n03", "n04"};
	size_t moved = 0, owned_by_leaver = 0;
	for (uint64_t key = 1; key <= NKEYS; key++) {
		const char *before = owner_of(key, members, NM);
		const char *after = owner_of(key, without, NM - 1);
		bool was_leaver = strcmp(before, "n02") == 0;
		owned_by_leaver += was_leaver;
		if (strcmp(before, after) != 0) {
			moved++;
			assert_true(was_leaver);
		} else {
			assert_false(was_leaver);
		}
	}
	print_message("# n02 leaves: %zu of %d keys move (%.1f %%, 1/N = 20 %%)\n", moved, NKEYS,
		      100.0 * (double)moved / NKEYS);
	assert_int_equal(moved, owned_by_leaver);
	/* Binomial(10000, 0.2): mean 2000, sd 40. */
	assert_in_range(moved, 1700, 2300);

	/* A sixth member joins: only keys it wins move, each to it, about 1/6. */
	static const char *const with[NM + 1] = {"n00", "n01", "n02", "n03", "n04", "n05"};
	moved = 0;
	for (uint64_t key = 1; key <= NKEYS; key++) {
		const char *before = owner_of(key, members, NM);
		const char *after = owner_of(key, with, NM + 1);
		if (strcmp(before, after) != 0) {
			moved++;
			assert_string_equal(after, "n05");
		}
	}
	print_message("# n05 joins: %zu of %d keys move (%.1f %%, 1/6 = 16.7 %%)\n", moved, NKEYS,
		      100.0 * (double)moved / NKEYS);
	assert_in_range(moved, 1367, 1967);
}

static void test_rank_balance(void **state)
{
	size_t owned[NM] = {0}, second[NM] = {0};
	for (uint64_t key = 1; key <= NKEYS; key++) {
		for (size_t self = 0; self < NM; self++) {
			const char *rest[NM];
			size_t k = others(members, NM, self, rest);
			unsigned r = elect_rank(key, members[self], true, rest, k, NULL);
			owned[self] += r == 0;
			second[self] += r == 1;
		}
	}
	for (size_t i = 0; i < NM; i++) {
		print_message("# %s: first for %zu keys, second for %zu (of %d)\n", members[i],
			      owned[i], second[i], NKEYS);
		/* ±20 % of the fair share 2000. */
		assert_in_range(owned[i], 1600, 2400);
		assert_in_range(second[i], 1600, 2400);
	}
}

/* ---- decide ---- */

#define BASE  1700000000
#define DELTA 60

static void test_decide_rank0(void **state)
{
	int64_t at = -1;
	/* Before base: wait until base; at and after base: fetch. */
	assert_int_equal(elect_decide(0, BASE, DELTA, BASE - 100, false, &at), ELECT_WAIT);
	assert_int_equal(at, BASE);
	at = -1;
	assert_int_equal(elect_decide(0, BASE, DELTA, BASE, false, &at), ELECT_FETCH);
	assert_int_equal(at, -1); /* untouched */
	assert_int_equal(elect_decide(0, BASE, DELTA, BASE + 5, true, &at), ELECT_FETCH);
}

static void test_decide_rank2(void **state)
{
	int64_t at = -1;
	/* At base: nothing before base + Δ/4. */
	assert_int_equal(elect_decide(2, BASE, DELTA, BASE, false, &at), ELECT_WAIT);
	assert_int_equal(at, BASE + DELTA / 4);
	assert_int_equal(elect_decide(2, BASE, DELTA, BASE + DELTA / 4 - 1, false, &at),
			 ELECT_WAIT);
	assert_int_equal(at, BASE + DELTA / 4);
	/* At base + Δ/4: ask the owner, then look again at base + 2Δ. */
	assert_int_equal(elect_decide(2, BASE, DELTA, BASE + DELTA / 4, false, &at),
			 ELECT_ASK_OWNER);
	assert_int_equal(at, BASE + 2 * DELTA);
	/* Asked: wait for base + 2Δ, then fetch. */
	assert_int_equal(elect_decide(2, BASE, DELTA, BASE + DELTA / 4, true, &at), ELECT_WAIT);
	assert_int_equal(at, BASE + 2 * DELTA);
	assert_int_equal(elect_decide(2, BASE, DELTA, BASE + 2 * DELTA - 1, true, &at), ELECT_WAIT);
	assert_int_equal(at, BASE + 2 * DELTA);
	assert_int_equal(elect_decide(2, BASE, DELTA, BASE + 2 * DELTA, true, &at), ELECT_FETCH);
	/* Rank 1 steps in one Δ after base. */
	assert_int_equal(elect_decide(1, BASE, DELTA, BASE + DELTA / 4, true, &at), ELECT_WAIT);
	assert_int_equal(at, BASE + DELTA);
	assert_int_equal(elect_decide(1, BASE, DELTA, BASE + DELTA, true, &at), ELECT_FETCH);
}

static void test_decide_asked_skips_ask(void **state)
{
	int64_t at = -1;
	/* Already asked for this base (say an announcement-driven pull stood for it): no second
	 * ask, straight to the fallback time. */
	assert_int_equal(elect_decide(1, BASE, DELTA, BASE, true, &at), ELECT_WAIT);
	assert_int_equal(at, BASE + DELTA);
	assert_int_equal(elect_decide(3, BASE, DELTA, BASE + 1, true, &at), ELECT_WAIT);
	assert_int_equal(at, BASE + 3 * DELTA);
	/* Late and never asked (say we were settling through our turn): ask first, and give the
	 * answer Δ/4 to arrive before stepping in (never a fetch beside the pull). */
	assert_int_equal(elect_decide(1, BASE, DELTA, BASE + 2 * DELTA, false, &at),
			 ELECT_ASK_OWNER);
	assert_int_equal(at, BASE + 2 * DELTA + DELTA / 4);
	assert_int_equal(elect_decide(1, BASE, DELTA, BASE + 2 * DELTA, true, &at), ELECT_FETCH);
}

static void test_decide_small_delta(void **state)
{
	int64_t at = -1;
	/* Δ/4 rounds to 0 for Δ < 4: the ask still comes at least 1 s after base. */
	assert_int_equal(elect_decide(1, BASE, 2, BASE, false, &at), ELECT_WAIT);
	assert_int_equal(at, BASE + 1);
	assert_int_equal(elect_decide(1, BASE, 2, BASE + 1, false, &at), ELECT_ASK_OWNER);
	assert_int_equal(at, BASE + 2);
	assert_int_equal(elect_decide(1, BASE, 2, BASE + 2, true, &at), ELECT_FETCH);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_weight_formula),
		cmocka_unit_test(test_rank_permutation),
		cmocka_unit_test(test_rank_unstable_self_last),
		cmocka_unit_test(test_rank_minimal_movement),
		cmocka_unit_test(test_rank_balance),
		cmocka_unit_test(test_decide_rank0),
		cmocka_unit_test(test_decide_rank2),
		cmocka_unit_test(test_decide_asked_skips_ask),
		cmocka_unit_test(test_decide_small_delta),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
