/* SPDX-License-Identifier: Apache-2.0 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "gossip/bcast.h"

/* A message of len bytes, all `tag`. */
static void push(struct bcast_queue *q, const char *key, char tag, size_t len, bool notify)
{
	uint8_t m[256];
	assert_true(len <= sizeof(m));
	memset(m, tag, len);
	bcast_queue_push(q, key, m, len, notify);
}

/* Takes one packet's worth and returns the tags taken, in order, as a string. */
static char *take(struct bcast_queue *q, size_t overhead, size_t limit, uint32_t tl, size_t max)
{
	static char tags[64];
	struct buf out = {0};
	size_t lens[64];
	size_t n = bcast_queue_take(q, overhead, limit, tl, &out, lens, max);
	size_t off = 0;
	for (size_t i = 0; i < n; i++) {
		/* each item is uniform: its first byte names it, and all its bytes agree */
		for (size_t j = 1; j < lens[i]; j++)
			assert_int_equal(out.data[off + j], out.data[off]);
		tags[i] = (char)out.data[off];
		off += lens[i];
	}
	assert_int_equal(off, out.len);
	tags[n] = 0;
	buf_done(&out);
	return tags;
}

static void test_order_fewest_transmits_then_larger_then_newer(void **state)
{
	struct bcast_queue q;
	bcast_queue_init(&q, 0);
	push(&q, NULL, 'a', 10, false);
	push(&q, NULL, 'b', 20, false);
	push(&q, NULL, 'c', 20, false); /* as large as b, newer */
	assert_string_equal(take(&q, 2, 1000, 10, 64), "cba");
	/* A new item has fewer transmissions than all of them: first, though the smallest. */
	push(&q, NULL, 'd', 5, false);
	assert_string_equal(take(&q, 2, 1000, 10, 64), "dcba");
	push(&q, NULL, 'e', 5, false);
	/* 29 bytes: e (never sent), then d (sent once), then of the twice-sent the largest that
	 * still fits in 29 - 14 - 2 = 13 bytes: a, not the newer but larger c and b. */
	assert_string_equal(take(&q, 2, 29, 10, 64), "eda");
	bcast_queue_done(&q);
}

static void test_budget_and_overhead(void **state)
{
	struct bcast_queue q;
	bcast_queue_init(&q, 0);
	push(&q, NULL, 'a', 20, false);
	push(&q, NULL, 'b', 10, false);
	push(&q, NULL, 'c', 8, false);
	/* 20 + 2 used, 30 - 22 - 2 = 6 free: neither 10 nor 8 fits. */
	assert_string_equal(take(&q, 2, 30, 10, 64), "a");
	/* b and c (1 transmission less than a) before a; 10+2 + 8+2 = 22, then 30-22-2 = 6. */
	assert_string_equal(take(&q, 2, 30, 10, 64), "bc");
	/* Exactly fitting: 20 + 2 = 22 of 22. */
	assert_string_equal(take(&q, 2, 22, 10, 64), "a");
	assert_string_equal(take(&q, 2, 21, 10, 64), "b");
	/* Nothing fits, or the overhead alone fills the limit. */
	assert_string_equal(take(&q, 2, 2, 10, 64), "");
	assert_string_equal(take(&q, 2, 9, 10, 64), "");
	/* At most max items per take: c (sent once), then a (larger of the twice-sent). */
	assert_string_equal(take(&q, 0, 1000, 10, 2), "ca");
	assert_int_equal(bcast_queue_len(&q), 3);
	bcast_queue_done(&q);
}

static void test_key_replacement(void **state)
{
	struct bcast_queue q;
	bcast_queue_init(&q, 0);
	push(&q, "n1", 'a', 10, false);
	push(&q, "n2", 'b', 10, false);
	push(&q, NULL, 'x', 10, false);
	push(&q, NULL, 'y', 10, false); /* no key: never replaces */
	assert_int_equal(bcast_queue_len(&q), 4);
	take(&q, 2, 1000, 10, 64);
	push(&q, "n1", 'c', 12, false); /* news about n1 replaces a, with a fresh count */
	assert_int_equal(bcast_queue_len(&q), 4);
	char *t = take(&q, 2, 1000, 10, 64);
	assert_int_equal(t[0], 'c');
	assert_null(strchr(t, 'a'));
	assert_int_equal(strlen(t), 4);
	bcast_queue_done(&q);
}

static void test_retransmit_limit(void **state)
{
	struct bcast_queue q;
	bcast_queue_init(&q, 0);
	push(&q, NULL, 'a', 10, false);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(bcast_queue_len(&q), 1);
		assert_string_equal(take(&q, 2, 1000, 3, 64), "a");
	}
	assert_int_equal(bcast_queue_len(&q), 0);
	assert_string_equal(take(&q, 2, 1000, 3, 64), "");

	/* memberlist: RetransmitMult × ceil(log10(n + 1)) */
	assert_int_equal(bcast_retransmit_limit(4, 0), 0);
	assert_int_equal(bcast_retransmit_limit(4, 1), 4);
	assert_int_equal(bcast_retransmit_limit(4, 9), 4);
	assert_int_equal(bcast_retransmit_limit(4, 10), 8);
	assert_int_equal(bcast_retransmit_limit(4, 50), 8);
	assert_int_equal(bcast_retransmit_limit(4, 99), 8);
	assert_int_equal(bcast_retransmit_limit(4, 100), 12);
	assert_int_equal(bcast_retransmit_limit(2, 1000), 8);
	/* A limit of 0 (n = 0) still sends once, as memberlist's transmits+1 >= limit. */
	push(&q, NULL, 'b', 10, false);
	assert_string_equal(take(&q, 2, 1000, 0, 64), "b");
	assert_int_equal(bcast_queue_len(&q), 0);
	bcast_queue_done(&q);
}

static void test_notify(void **state)
{
	struct bcast_queue q;
	bcast_queue_init(&q, 0);
	push(&q, "me", 'd', 10, true);
	push(&q, NULL, 'o', 10, false);
	take(&q, 2, 1000, 2, 64);
	assert_false(q.notified);
	take(&q, 2, 1000, 2, 64); /* the notify item reaches its limit */
	assert_true(q.notified);
	q.notified = false;
	/* Replaced counts as gone, as memberlist's invalidated broadcasts finish. */
	push(&q, "me", 'd', 10, true);
	push(&q, "me", 'e', 10, false);
	assert_true(q.notified);
	q.notified = false;
	/* A plain item leaving notifies nobody. */
	take(&q, 2, 1000, 1, 64);
	assert_false(q.notified);
	/* reset drops everything, notify items included. */
	push(&q, NULL, 'f', 10, true);
	bcast_queue_reset(&q);
	assert_true(q.notified);
	assert_int_equal(bcast_queue_len(&q), 0);
	bcast_queue_done(&q);
}

static void test_bounded(void **state)
{
	struct bcast_queue q;
	bcast_queue_init(&q, 3);
	push(&q, NULL, 'a', 10, false);
	push(&q, NULL, 'b', 10, false);
	take(&q, 2, 1000, 10, 1); /* b (newer) sent once */
	push(&q, NULL, 'c', 10, false);
	push(&q, NULL, 'd', 10, false); /* full: the most sent (b) makes room */
	assert_int_equal(q.dropped, 1);
	assert_int_equal(bcast_queue_len(&q), 3);
	push(&q, NULL, 'e', 10, false); /* all sent as often: the oldest (a) makes room */
	assert_int_equal(q.dropped, 2);
	char *t = take(&q, 2, 1000, 10, 64);
	assert_null(strchr(t, 'b'));
	assert_null(strchr(t, 'a')); /* a: oldest among equally sent */
	assert_int_equal(strlen(t), 3);
	bcast_queue_done(&q);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_order_fewest_transmits_then_larger_then_newer),
		cmocka_unit_test(test_budget_and_overhead),
		cmocka_unit_test(test_key_replacement),
		cmocka_unit_test(test_retransmit_limit),
		cmocka_unit_test(test_notify),
		cmocka_unit_test(test_bounded),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
