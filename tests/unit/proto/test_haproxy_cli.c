/* SPDX-License-Identifier: Apache-2.0 */
/*
 * proto/haproxy_cli: the set ssl ocsp-response line, and HAProxy 2.6's replies as seen on a real
 * admin socket (TESTING.md §3.3).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proto/haproxy_cli.h"
#include "proto/ocsp_http.h"
#include "tests/unit/fixture.h"

static void test_encode_roundtrip(void **state)
{
	(void)state;
	size_t len;
	uint8_t *der = fixture_load("resp-good-sha1.der", &len);
	struct buf b = BUF_INIT;
	assert_int_equal(haproxy_cli_encode_set_ocsp(der, len, &b), 0);
	const char *prefix = "set ssl ocsp-response ";
	assert_true(b.len > strlen(prefix) + 1);
	assert_memory_equal(b.data, prefix, strlen(prefix));
	assert_int_equal(b.data[b.len - 1], '\n');
	/* One line: the newline is the last byte and nothing else breaks the line. */
	assert_null(memchr(b.data, '\n', b.len - 1));
	struct buf dec = BUF_INIT;
	assert_int_equal(ocsp_http_base64_decode((const char *)b.data + strlen(prefix),
						 b.len - strlen(prefix) - 1, &dec),
			 0);
	assert_int_equal(dec.len, len);
	assert_memory_equal(dec.data, der, len);
	buf_done(&dec);
	buf_done(&b);
	free(der);
}

static void test_encode_limits(void **state)
{
	(void)state;
	struct buf b = BUF_INIT;
	uint8_t one = 0x30;
	assert_int_equal(haproxy_cli_encode_set_ocsp(&one, 0, &b), -EINVAL);
	assert_int_equal(haproxy_cli_encode_set_ocsp(NULL, 5, &b), -EINVAL);
	/* The largest DER that fits, and one past it (nothing appended then). */
	size_t max = (HAPROXY_CLI_LINE_MAX - sizeof("set ssl ocsp-response ")) / 4 * 3;
	uint8_t *big = calloc(1, max + 1);
	assert_int_equal(haproxy_cli_encode_set_ocsp(big, max, &b), 0);
	assert_true(b.len <= HAPROXY_CLI_LINE_MAX);
	buf_reset(&b);
	assert_int_equal(haproxy_cli_encode_set_ocsp(big, max + 1, &b), -EMSGSIZE);
	assert_int_equal(b.len, 0);
	free(big);
	buf_done(&b);
}

static enum haproxy_cli_reply parse(const char *s, char *msg, size_t n)
{
	return haproxy_cli_parse_reply((const uint8_t *)s, strlen(s), msg, n);
}

static void test_replies(void **state)
{
	(void)state;
	char msg[64];
	/* HAProxy 2.6 replies, byte for byte. */
	assert_int_equal(parse("OCSP Response updated!\n\n", msg, sizeof(msg)),
			 HAPROXY_CLI_ACCEPTED);
	assert_string_equal(msg, "OCSP Response updated!");
	assert_int_equal(parse("OCSP single response: Certificate ID does not match any "
			       "certificate or issuer.\n\n",
			       msg, sizeof(msg)),
			 HAPROXY_CLI_REJECTED);
	assert_int_equal(strlen(msg), sizeof(msg) - 1); /* truncated, terminated */
	assert_int_equal(parse("Unable to parse OCSP response.\n\n", msg, sizeof(msg)),
			 HAPROXY_CLI_REJECTED);
	assert_string_equal(msg, "Unable to parse OCSP response.");
	assert_int_equal(parse("Permission denied\n\n", NULL, 0), HAPROXY_CLI_REJECTED);
	assert_int_equal(parse("Unknown command: 'set ssl ocsp-response'\n", msg, sizeof(msg)),
			 HAPROXY_CLI_REJECTED);
	/* Nothing, or blanks: the connection closed without an answer. */
	assert_int_equal(parse("", msg, sizeof(msg)), HAPROXY_CLI_EMPTY);
	assert_string_equal(msg, "");
	assert_int_equal(parse(" \r\n\n\t", msg, sizeof(msg)), HAPROXY_CLI_EMPTY);
	/* Only the first line decides; the success text later on is not success. */
	assert_int_equal(parse("error\nOCSP Response updated!\n", msg, sizeof(msg)),
			 HAPROXY_CLI_REJECTED);
	/* Leading blank lines are skipped; control bytes never reach the log. */
	assert_int_equal(parse("\n\nOCSP Response updated!", msg, sizeof(msg)),
			 HAPROXY_CLI_ACCEPTED);
	const uint8_t odd[] = {'b', 0x1b, 'a', 0xff, 'd', '\n'};
	assert_int_equal(haproxy_cli_parse_reply(odd, sizeof(odd), msg, sizeof(msg)),
			 HAPROXY_CLI_REJECTED);
	assert_string_equal(msg, "b?a?d");
	/* A prefix of the success text is not success. */
	assert_int_equal(parse("OCSP Response upd", msg, sizeof(msg)), HAPROXY_CLI_REJECTED);
}

static void test_retry_delays(void **state)
{
	(void)state;
	assert_int_equal(haproxy_cli_retry_delay_ms(1), 1000);
	assert_int_equal(haproxy_cli_retry_delay_ms(2), 2000);
	assert_int_equal(haproxy_cli_retry_delay_ms(7), 64000);
	assert_int_equal(haproxy_cli_retry_delay_ms(100), 64000);
	/* All attempts together stay within a few minutes: HAProxy down is the file's job. */
	uint64_t sum = 0;
	for (unsigned a = 1; a < HAPROXY_CLI_MAX_ATTEMPTS; a++)
		sum += haproxy_cli_retry_delay_ms(a);
	assert_true(sum <= 5 * 60 * 1000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_encode_roundtrip),
		cmocka_unit_test(test_encode_limits),
		cmocka_unit_test(test_replies),
		cmocka_unit_test(test_retry_delays),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
