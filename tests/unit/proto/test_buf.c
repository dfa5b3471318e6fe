/* SPDX-License-Identifier: Apache-2.0 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proto/buf.h"

static void test_init_empty(void **state)
{
	struct buf b;
	memset(&b, 0x55, sizeof(b));
	buf_init(&b);
	assert_null(b.data);
	assert_int_equal(b.len, 0);
	assert_int_equal(b.cap, 0);
	struct buf s = BUF_INIT;
	assert_memory_equal(&s, &b, sizeof(b));
	/* Operations on an empty buffer that need no storage. */
	buf_reset(&b);
	buf_consume(&b, 0);
	assert_null(b.data);
	size_t len = 99;
	assert_null(buf_steal(&b, &len));
	assert_int_equal(len, 0);
	buf_done(&b);
}

static void test_append(void **state)
{
	struct buf b = BUF_INIT;
	buf_append(&b, "ab", 2);
	assert_int_equal(b.len, 2);
	assert_true(b.cap >= 3);
	assert_string_equal((char *)b.data, "ab");
	buf_append_str(&b, "cd");
	buf_append_byte(&b, 'e');
	buf_append_byte(&b, 0);
	buf_append(&b, "f", 1);
	assert_int_equal(b.len, 7);
	assert_memory_equal(b.data, "abcde\0f", 7);
	assert_int_equal(b.data[7], 0); /* always terminated past len */
	/* An empty append still leaves a terminated, non-NULL buffer. */
	struct buf e = BUF_INIT;
	buf_append(&e, NULL, 0);
	assert_non_null(e.data);
	assert_int_equal(e.len, 0);
	assert_string_equal((char *)e.data, "");
	buf_done(&e);

	/* Growth across many reallocations keeps every byte. */
	buf_reset(&b);
	for (int i = 0; i < 100000; i++)
		buf_append_byte(&b, (uint8_t)(i * 7));
	assert_int_equal(b.len, 100000);
	for (int i = 0; i < 100000; i++)
		assert_int_equal(b.data[i], (uint8_t)(i * 7));
	assert_int_equal(b.data[100000], 0);
	assert_true(b.cap > b.len);
	buf_done(&b);
	assert_null(b.data);
	assert_int_equal(b.len, 0);
	assert_int_equal(b.cap, 0);
}

static void test_reserve(void **state)
{
	struct buf b = BUF_INIT;
	buf_reserve(&b, 100);
	assert_true(b.cap >= 101);
	assert_int_equal(b.len, 0);
	uint8_t *p = b.data;
	size_t cap = b.cap;
	/* Appending within the reservation does not move the storage. */
	for (int i = 0; i < 100; i++)
		buf_append_byte(&b, 'x');
	assert_ptr_equal(b.data, p);
	assert_int_equal(b.cap, cap);
	assert_int_equal(b.data[100], 0);
	buf_reserve(&b, 0);
	assert_ptr_equal(b.data, p);
	buf_done(&b);
}

static void test_printf(void **state)
{
	struct buf b = BUF_INIT;
	buf_printf(&b, "%d-%s", 42, "x");
	assert_string_equal((char *)b.data, "42-x");
	assert_int_equal(b.len, 4);
	buf_printf(&b, "%s", "");
	assert_int_equal(b.len, 4);
	buf_printf(&b, "|%05u|", 7u);
	assert_string_equal((char *)b.data, "42-x|00007|");
	/* Longer than any initial capacity. */
	char big[5000];
	memset(big, 'q', sizeof(big) - 1);
	big[sizeof(big) - 1] = 0;
	buf_printf(&b, "%s!", big);
	assert_int_equal(b.len, 11 + 4999 + 1);
	assert_int_equal(b.data[11], 'q');
	assert_int_equal(b.data[b.len - 1], '!');
	assert_int_equal(b.data[b.len], 0);
	assert_int_equal(strlen((char *)b.data), b.len);
	/* Formatting into an empty buffer with an empty result. */
	struct buf e = BUF_INIT;
	buf_printf(&e, "%s", "");
	assert_non_null(e.data);
	assert_int_equal(e.len, 0);
	buf_done(&e);
	buf_done(&b);
}

static void test_reset_consume(void **state)
{
	struct buf b = BUF_INIT;
	buf_append_str(&b, "0123456789");
	uint8_t *p = b.data;
	buf_consume(&b, 3);
	assert_int_equal(b.len, 7);
	assert_string_equal((char *)b.data, "3456789");
	buf_consume(&b, 0);
	assert_string_equal((char *)b.data, "3456789");
	buf_consume(&b, 6);
	assert_string_equal((char *)b.data, "9");
	buf_consume(&b, 1);
	assert_int_equal(b.len, 0);
	assert_string_equal((char *)b.data, "");
	assert_ptr_equal(b.data, p); /* storage kept */
	buf_append_str(&b, "abc");
	buf_consume(&b, 100); /* more than held: emptied */
	assert_int_equal(b.len, 0);
	assert_string_equal((char *)b.data, "");
	buf_append_str(&b, "xyz");
	size_t cap = b.cap;
	buf_reset(&b);
	assert_int_equal(b.len, 0);
	assert_int_equal(b.cap, cap);
	assert_ptr_equal(b.data, p);
	assert_string_equal((char *)b.data, "");
	buf_done(&b);
}

static void test_steal(void **state)
{
	struct buf b = BUF_INIT;
	buf_append_str(&b, "owned");
	size_t len = 0;
	uint8_t *p = buf_steal(&b, &len);
	assert_int_equal(len, 5);
	assert_string_equal((char *)p, "owned");
	assert_null(b.data);
	assert_int_equal(b.len, 0);
	assert_int_equal(b.cap, 0);
	/* The buffer is reusable after a steal. */
	buf_append_str(&b, "again");
	assert_string_equal((char *)b.data, "again");
	assert_ptr_not_equal(b.data, p);
	free(p);
	p = buf_steal(&b, NULL);
	assert_string_equal((char *)p, "again");
	free(p);
}

static void test_cleanup(void **state)
{
	uint8_t *kept;
	{
		_cleanup_buf_ struct buf b = BUF_INIT;
		buf_append_str(&b, "temporary");
		_cleanup_buf_ struct buf c = BUF_INIT;
		buf_append_str(&c, "taken");
		kept = buf_steal(&c, NULL);
	}
	/* ASan reports a leak of b if the cleanup did not run, a double free if it freed c's
	 * stolen storage. */
	assert_string_equal((char *)kept, "taken");
	free(kept);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_init_empty),    cmocka_unit_test(test_append),
		cmocka_unit_test(test_reserve),	      cmocka_unit_test(test_printf),
		cmocka_unit_test(test_reset_consume), cmocka_unit_test(test_steal),
		cmocka_unit_test(test_cleanup),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
