/* SPDX-License-Identifier: Apache-2.0 */
/*
 * proto/outrule: which certificate files an output matches, the file names its templates give,
 * and the gate that rate-limits its command.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "proto/outrule.h"

static void test_match(void **state)
{
	(void)state;
	assert_true(outrule_match("/etc/haproxy/site.pem", "/etc/haproxy/site.pem"));
	assert_true(outrule_match("/etc/haproxy", "/etc/haproxy/site.pem"));
	assert_true(outrule_match("/etc/haproxy/", "/etc/haproxy/site.pem"));
	assert_true(outrule_match("/etc/haproxy//", "/etc/haproxy/certs/a/site.pem"));
	assert_true(outrule_match("/", "/etc/site.pem"));
	assert_false(outrule_match("/etc/haproxy", "/etc/haproxy2/site.pem"));
	assert_false(outrule_match("/etc/haproxy/site.pem", "/etc/haproxy/site.pem.bak"));
	assert_false(outrule_match("/etc/haproxy/site", "/etc/haproxy/site.pem"));
	assert_false(outrule_match("", "/etc/site.pem"));
	assert_false(outrule_match("/etc/nginx", "/etc/haproxy/site.pem"));
}

static void expect(const char *tmpl, const char *path, const char *want)
{
	struct buf b = BUF_INIT;
	buf_append_str(&b, "x"); /* appends: what was there stays */
	assert_int_equal(outrule_expand(tmpl, path, "1A2B", &b), 0);
	assert_string_equal((const char *)b.data + 1, want);
	assert_int_equal(strlen((const char *)b.data), b.len);
	buf_done(&b);
}

static void test_expand(void **state)
{
	(void)state;
	expect("{path}.ocsp", "/etc/haproxy/site.pem", "/etc/haproxy/site.pem.ocsp");
	expect("{path}.issuer", "/etc/haproxy/site.pem", "/etc/haproxy/site.pem.issuer");
	expect("/var/lib/stapled/nginx/{stem}.der", "/etc/nginx/ssl/a.b.crt",
	       "/var/lib/stapled/nginx/a.b.der");
	expect("{dir}/ocsp/{file}.der", "/etc/nginx/ssl/site.crt",
	       "/etc/nginx/ssl/ocsp/site.crt.der");
	expect("{dir}/{stem}-{serial}.resp", "/site.pem", "/site-1A2B.resp");
	expect("/out/{stem}", "/etc/noext", "/out/noext");
	expect("/out/{stem}.der", "/etc/.hidden", "/out/.hidden.der");
}

static void expect_bad(const char *tmpl, const char *path)
{
	struct buf b = BUF_INIT;
	buf_append_str(&b, "keep");
	assert_int_equal(outrule_expand(tmpl, path, "01", &b), -EINVAL);
	assert_int_equal(b.len, 4);
	buf_done(&b);
}

static void test_expand_refused(void **state)
{
	(void)state;
	expect_bad("{path}.ocsp", "relative/site.pem"); /* not absolute */
	expect_bad("{dir}/x", "site.pem");
	expect_bad("/out/{stem}/", "/etc/site.pem"); /* a directory */
	expect_bad("/out/../etc/{file}", "/etc/site.pem");
	expect_bad("/out/./{file}", "/etc/site.pem");
	expect_bad("/out//{file}", "/etc/site.pem");
	expect_bad("/out/{nope}", "/etc/site.pem");
	expect_bad("{dir}", "/site.pem"); /* the root directory is no file */
}

static void test_check(void **state)
{
	(void)state;
	char err[256];
	assert_int_equal(outrule_check("{path}.ocsp", err, sizeof(err)), 0);
	assert_int_equal(outrule_check("{dir}/{stem}.der", err, sizeof(err)), 0);
	assert_int_equal(outrule_check("/x/{serial}.der", err, sizeof(err)), 0);
	assert_int_equal(outrule_check("", err, sizeof(err)), -EINVAL);
	assert_int_equal(outrule_check("{stem}.der", err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "absolute"));
	assert_int_equal(outrule_check("ocsp/{stem}.der", err, sizeof(err)), -EINVAL);
	assert_int_equal(outrule_check("/x/{stem", err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "unknown or unclosed"));
	assert_int_equal(outrule_check("/x/stem}", err, sizeof(err)), -EINVAL);
	assert_int_equal(outrule_check("/x/{PATH}", err, sizeof(err)), -EINVAL);
}

static void test_gate(void **state)
{
	(void)state;
	struct outrule_gate g;
	outrule_gate_init(&g, 30000, 500, 3600000);
	assert_int_equal(outrule_gate_due_ms(&g), UINT64_MAX);

	/* First change: runs after the settle time only. */
	outrule_gate_change(&g, 1000);
	outrule_gate_change(&g, 1200); /* joins the first */
	assert_int_equal(outrule_gate_due_ms(&g), 1500);
	outrule_gate_started(&g, 1500);
	assert_int_equal(outrule_gate_due_ms(&g), UINT64_MAX);
	/* A change during the run: one more run, not before the interval. */
	outrule_gate_change(&g, 2000);
	assert_int_equal(outrule_gate_due_ms(&g), UINT64_MAX); /* still running */
	outrule_gate_finished(&g, 2500, true);
	assert_int_equal(outrule_gate_due_ms(&g), 31500);
	outrule_gate_started(&g, 31500);
	outrule_gate_finished(&g, 31600, true);
	assert_int_equal(outrule_gate_due_ms(&g), UINT64_MAX);

	/* Long after: the settle time alone. */
	outrule_gate_change(&g, 100000);
	assert_int_equal(outrule_gate_due_ms(&g), 100500);

	/* Failures: retried, the interval doubling each time, capped. */
	outrule_gate_started(&g, 100500);
	outrule_gate_finished(&g, 100600, false);
	assert_int_equal(outrule_gate_due_ms(&g), 100500 + 60000);
	outrule_gate_started(&g, 160500);
	outrule_gate_finished(&g, 160600, false);
	assert_int_equal(outrule_gate_due_ms(&g), 160500 + 120000);
	for (int i = 0; i < 20; i++) {
		uint64_t at = outrule_gate_due_ms(&g);
		outrule_gate_started(&g, at);
		outrule_gate_finished(&g, at + 10, false);
	}
	uint64_t last = g.last_start_ms;
	assert_int_equal(outrule_gate_due_ms(&g), last + 3600000);
	/* A success resets the backoff. */
	outrule_gate_started(&g, last + 3600000);
	outrule_gate_finished(&g, last + 3600010, true);
	outrule_gate_change(&g, last + 3600020);
	assert_int_equal(outrule_gate_due_ms(&g), last + 3600000 + 30000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_match),	       cmocka_unit_test(test_expand),
		cmocka_unit_test(test_expand_refused), cmocka_unit_test(test_check),
		cmocka_unit_test(test_gate),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
