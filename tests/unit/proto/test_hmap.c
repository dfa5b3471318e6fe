/* SPDX-License-Identifier: Apache-2.0 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "proto/hmap.h"

struct item {
	char key[16];
	size_t len;
	int live;
};

static const void *item_key(const void *v, size_t *len)
{
	const struct item *it = v;
	*len = it->len;
	return it->key;
}

static void test_basic(void **state)
{
	(void)state;
	struct hmap m;
	hmap_init(&m, item_key);
	struct item a = {"alpha", 5, 1}, b = {"beta", 4, 1}, a2 = {"alpha", 5, 1};
	assert_null(hmap_get(&m, "alpha", 5));
	assert_null(hmap_put(&m, &a));
	assert_null(hmap_put(&m, &b));
	assert_ptr_equal(hmap_get(&m, "alpha", 5), &a);
	assert_ptr_equal(hmap_get(&m, "beta", 4), &b);
	assert_null(hmap_get(&m, "alph", 4));
	/* Same key replaces and returns the old value; the count does not grow. */
	assert_ptr_equal(hmap_put(&m, &a2), &a);
	assert_int_equal(m.n, 2);
	assert_ptr_equal(hmap_del(&m, "alpha", 5), &a2);
	assert_null(hmap_del(&m, "alpha", 5));
	assert_null(hmap_get(&m, "alpha", 5));
	assert_int_equal(m.n, 1);
	hmap_done(&m);
}

/* Random puts and deletes over a small key space (many collisions and probe runs that wrap),
 * checked after every step against a plain array: catches broken backward-shift deletion. */
static void test_model(void **state)
{
	(void)state;
	enum {
		KEYS = 300,
		STEPS = 60000
	};
	static struct item items[KEYS];
	for (int i = 0; i < KEYS; i++) {
		items[i].len = (size_t)snprintf(items[i].key, sizeof(items[i].key), "k%d", i);
		items[i].live = 0;
	}
	struct hmap m;
	hmap_init(&m, item_key);
	uint64_t x = 88172645463325252ull;
	size_t live = 0;
	for (int step = 0; step < STEPS; step++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		struct item *it = &items[x % KEYS];
		if ((x >> 32) & 1) {
			void *old = hmap_put(&m, it);
			assert_true(it->live ? old == it : old == NULL);
			live += !it->live;
			it->live = 1;
		} else {
			void *old = hmap_del(&m, it->key, it->len);
			assert_true(it->live ? old == it : old == NULL);
			live -= it->live;
			it->live = 0;
		}
		assert_int_equal(m.n, live);
		if (step % 97 == 0)
			for (int i = 0; i < KEYS; i++)
				assert_true(hmap_get(&m, items[i].key, items[i].len) ==
					    (items[i].live ? &items[i] : NULL));
	}
	hmap_done(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_basic),
		cmocka_unit_test(test_model),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
