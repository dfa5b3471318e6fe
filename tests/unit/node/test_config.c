/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Configuration: defaults, every key landing in its field, the error messages (file, line, key),
 * list replacement, loads that fail leaving the configuration untouched, the value parsers at
 * their boundaries, cross-field validation, and the shipped example file.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <syslog.h>
#include <unistd.h>

#include <cmocka.h>

#include "node/config.h"
#include "proto/macro.h"

#define EXAMPLE	  FIXTURES "/../../deploy/stapled.example.yaml"
#define REFERENCE FIXTURES "/../../docs/configuration.md"

static int load(struct config *c, const char *text, char *err, size_t errlen)
{
	return config_load_string(c, "test.yaml", text, strlen(text), err, errlen);
}

static void assert_list(const struct str_list *l, size_t n, ...)
{
	va_list ap;
	assert_int_equal(l->n, n);
	va_start(ap, n);
	for (size_t i = 0; i < n; i++)
		assert_string_equal(l->v[i], va_arg(ap, const char *));
	va_end(ap);
}

static void assert_defaults(const struct config *c)
{
	assert_null(c->path);
	assert_list(&c->listen, 1, "127.0.0.1:8889");
	assert_list(&c->admin_listen, 1, "127.0.0.1:8890");
	assert_int_equal(c->max_connections, 4096);
	assert_int_equal(c->max_header_bytes, 8192);
	assert_int_equal(c->max_body_bytes, 16384);
	assert_int_equal(c->idle_timeout_ms, 60000);
	assert_int_equal(c->request_timeout_ms, 10000);
	assert_null(c->certs);
	assert_int_equal(c->n_certs, 0);
	assert_list(&c->cert_dirs, 0);
	assert_list(&c->issuer_dirs, 0);
	assert_true(c->fetch_ca_issuers);
	assert_false(c->write_ocsp_files);
	assert_null(c->cache_dir);
	assert_int_equal(c->cache_max_bytes, 256 * 1024 * 1024);
	assert_list(&c->upstreams, 0);
	assert_null(c->proxy);
	assert_int_equal(c->connect_timeout_ms, 5000);
	assert_int_equal(c->fetch_timeout_ms, 15000);
	assert_int_equal(c->max_response_bytes, 65536);
	assert_int_equal(c->backoff_base_s, 10);
	assert_int_equal(c->backoff_max_s, 3600);
	assert_int_equal(c->max_parallel_fetches, 16);
	assert_true(c->refresh_lo == 0.5);
	assert_true(c->refresh_hi == 0.75);
	assert_int_equal(c->min_refresh_interval_s, 60);
	assert_true(c->alert_fraction[0] == 0.5);
	assert_true(c->alert_fraction[1] == 0.25);
	assert_true(c->alert_fraction[2] == 0.1);
	assert_null(c->alert_command);
	assert_int_equal(c->max_clock_skew_s, 300);
	assert_int_equal(c->default_validity_s, 0);
	assert_true(c->allow_revoked);
	assert_true(c->learn);
	assert_int_equal(c->learn_idle_ms, 24 * 3600 * 1000);
	assert_int_equal(c->learn_max_entries, 100000);
	assert_null(c->learn_default_origin);
	assert_list(&c->learn_allowed_origins, 0);
	assert_int_equal(c->log_level, LOG_INFO);
}

static void test_defaults(void **state)
{
	(void)state;
	struct config c;
	char err[256];

	config_init(&c);
	assert_defaults(&c);
	assert_int_equal(config_validate(&c, err, sizeof(err)), 0);
	config_done(&c);
	/* an empty file and a comment-only file change nothing */
	config_init(&c);
	assert_int_equal(load(&c, "", err, sizeof(err)), 0);
	assert_int_equal(load(&c, "# nothing\n---\n", err, sizeof(err)), 0);
	assert_defaults(&c);
	config_done(&c);
	/* done twice is harmless: the struct is left empty */
	config_done(&c);
	assert_null(c.listen.v);
}

static const char every_key[] =
	"listen: [\"0.0.0.0:80\", \"[::]:80\"]\n"
	"admin_listen: \"[::1]:9000\"\n"
	"log_level: warning\n"
	"limits:\n"
	"  max_connections: 100\n"
	"  max_header_bytes: 4KiB\n"
	"  max_body_bytes: 2k\n"
	"  idle_timeout: 250ms\n"
	"  request_timeout: 2m\n"
	"certificates:\n"
	"  - /etc/ssl/a.pem\n"
	"  - path: /etc/ssl/b.pem\n"
	"    issuer: /etc/ssl/int.pem\n"
	"    upstreams: [http://ocsp1.example/, 'https://ocsp2.example/x']\n"
	"    ocsp_file: /etc/haproxy/b.pem.ocsp\n"
	"  - path: \"/etc/ssl/c d.pem\"\n"
	"    upstreams: http://only.example/\n"
	"cert_dirs: /etc/ssl/stapled\n"
	"issuer_dirs:\n"
	"  - /etc/ssl/issuers\n"
	"  - /usr/local/share/issuers\n"
	"fetch_ca_issuers: no\n"
	"write_ocsp_files: On\n"
	"cache:\n"
	"  dir: /var/lib/stapled\n"
	"  max_bytes: 1GiB\n"
	"fetch:\n"
	"  upstreams:\n"
	"  - http://parent1:8889/\n"
	"  - http://parent2:8889/\n"
	"  proxy: http://proxy.example:3128\n"
	"  connect_timeout: 3s\n"
	"  timeout: 1m\n"
	"  max_response_bytes: 128KiB\n"
	"  backoff_base: 30s\n"
	"  backoff_max: 2h\n"
	"  max_parallel: 64\n"
	"refresh:\n"
	"  window: [0.25, 0.5]\n"
	"  min_interval: 10m\n"
	"  alert_thresholds: [0.4, .2]\n"
	"  alert_command: /usr/local/bin/ocsp-alert --page\n"
	"validation:\n"
	"  max_clock_skew: 90\n"
	"  default_validity: 7d\n"
	"  allow_revoked: FALSE\n"
	"learn:\n"
	"  enabled: false\n"
	"  idle_expiry: 2h\n"
	"  max_entries: 7\n"
	"  default_origin: http://ocsp.example/\n"
	"  allowed_origins: [http://ocsp.example/, \"https://ocsp2.example/\"]\n";

static void test_every_key(void **state)
{
	(void)state;
	struct config c;
	char err[256];

	config_init(&c);
	int r = load(&c, every_key, err, sizeof(err));
	if (r < 0)
		fail_msg("%s", err);
	assert_list(&c.listen, 2, "0.0.0.0:80", "[::]:80");
	assert_list(&c.admin_listen, 1, "[::1]:9000");
	assert_int_equal(c.log_level, LOG_WARNING);
	assert_int_equal(c.max_connections, 100);
	assert_int_equal(c.max_header_bytes, 4096);
	assert_int_equal(c.max_body_bytes, 2048);
	assert_int_equal(c.idle_timeout_ms, 250);
	assert_int_equal(c.request_timeout_ms, 120000);

	assert_int_equal(c.n_certs, 3);
	assert_string_equal(c.certs[0].path, "/etc/ssl/a.pem");
	assert_null(c.certs[0].issuer);
	assert_null(c.certs[0].ocsp_file);
	assert_list(&c.certs[0].upstreams, 0);
	assert_string_equal(c.certs[1].path, "/etc/ssl/b.pem");
	assert_string_equal(c.certs[1].issuer, "/etc/ssl/int.pem");
	assert_list(&c.certs[1].upstreams, 2, "http://ocsp1.example/", "https://ocsp2.example/x");
	assert_string_equal(c.certs[1].ocsp_file, "/etc/haproxy/b.pem.ocsp");
	assert_string_equal(c.certs[2].path, "/etc/ssl/c d.pem");
	assert_list(&c.certs[2].upstreams, 1, "http://only.example/");

	assert_list(&c.cert_dirs, 1, "/etc/ssl/stapled");
	assert_list(&c.issuer_dirs, 2, "/etc/ssl/issuers", "/usr/local/share/issuers");
	assert_false(c.fetch_ca_issuers);
	assert_true(c.write_ocsp_files);
	assert_string_equal(c.cache_dir, "/var/lib/stapled");
	assert_int_equal(c.cache_max_bytes, 1024 * 1024 * 1024);
	assert_list(&c.upstreams, 2, "http://parent1:8889/", "http://parent2:8889/");
	assert_string_equal(c.proxy, "http://proxy.example:3128");
	assert_int_equal(c.connect_timeout_ms, 3000);
	assert_int_equal(c.fetch_timeout_ms, 60000);
	assert_int_equal(c.max_response_bytes, 128 * 1024);
	assert_int_equal(c.backoff_base_s, 30);
	assert_int_equal(c.backoff_max_s, 7200);
	assert_int_equal(c.max_parallel_fetches, 64);
	assert_true(c.refresh_lo == 0.25);
	assert_true(c.refresh_hi == 0.5);
	assert_int_equal(c.min_refresh_interval_s, 600);
	assert_true(c.alert_fraction[0] == 0.4);
	assert_true(c.alert_fraction[1] == 0.2);
	assert_true(c.alert_fraction[2] == 0);
	assert_string_equal(c.alert_command, "/usr/local/bin/ocsp-alert --page");
	assert_int_equal(c.max_clock_skew_s, 90);
	assert_int_equal(c.default_validity_s, 7 * 86400);
	assert_false(c.allow_revoked);
	assert_false(c.learn);
	assert_int_equal(c.learn_idle_ms, 2 * 3600 * 1000);
	assert_int_equal(c.learn_max_entries, 7);
	assert_string_equal(c.learn_default_origin, "http://ocsp.example/");
	assert_list(&c.learn_allowed_origins, 2, "http://ocsp.example/", "https://ocsp2.example/");
	assert_null(c.path); /* only config_load_file records a path */
	assert_int_equal(config_validate(&c, err, sizeof(err)), 0);

	/* loading the same file again gives the same result, without growing any list */
	assert_int_equal(load(&c, every_key, err, sizeof(err)), 0);
	assert_int_equal(c.listen.n, 2);
	assert_int_equal(c.n_certs, 3);
	assert_int_equal(c.certs[1].upstreams.n, 2);
	assert_int_equal(c.issuer_dirs.n, 2);
	config_done(&c);
}

static const struct {
	const char *doc;
	int err;
	const char *msg; /* the whole message */
} bad[] = {
	{"lissen: x\n", -EINVAL, "test.yaml: line 1: unknown key 'lissen'"},
	{"limits:\n  max_conections: 1\n", -EINVAL,
	 "test.yaml: line 2: unknown key 'limits.max_conections'"},
	{"certificates:\n  - path: /a\n    isuser: /b\n", -EINVAL,
	 "test.yaml: line 3: unknown key 'certificates[0].isuser'"},
	{"limits:\n  max_connections: lots\n", -EINVAL,
	 "test.yaml: line 2: limits.max_connections: 'lots' is not a whole number"},
	{"limits:\n  max_connections: 0\n", -EINVAL,
	 "test.yaml: line 2: limits.max_connections: '0' is out of range"},
	{"limits:\n  max_connections: -1\n", -EINVAL,
	 "test.yaml: line 2: limits.max_connections: '-1' is not a whole number"},
	{"limits:\n  max_connections: [1]\n", -EINVAL,
	 "test.yaml: line 2: limits.max_connections: expected a value, got a list"},
	{"limits:\n  max_header_bytes: 8 KiB\n", -EINVAL,
	 "test.yaml: line 2: limits.max_header_bytes: '8 KiB' is not a size (e.g. 4096, 64KiB, "
	 "256MiB)"},
	{"limits:\n  max_header_bytes: 2MiB\n", -EINVAL,
	 "test.yaml: line 2: limits.max_header_bytes: '2MiB' is out of range"},
	{"limits:\n  idle_timeout: 0\n", -EINVAL,
	 "test.yaml: line 2: limits.idle_timeout: '0' is out of range"},
	{"limits:\n  idle_timeout: soon\n", -EINVAL,
	 "test.yaml: line 2: limits.idle_timeout: 'soon' is not a duration (e.g. 250ms, 10s, 5m, "
	 "2h, 1d)"},
	{"limits:\n  request_timeout: 99999999999999999999s\n", -EINVAL,
	 "test.yaml: line 2: limits.request_timeout: '99999999999999999999s' is out of range"},
	{"limits: 5\n", -EINVAL, "test.yaml: line 1: limits: expected a mapping, got a scalar"},
	{"limits:\n  - 5\n", -EINVAL, "test.yaml: line 2: limits: expected a mapping, got a list"},
	{"- a\n", -EINVAL, "test.yaml: line 1: the document: expected a mapping, got a list"},
	{"log_level: loud\n", -EINVAL,
	 "test.yaml: line 1: log_level: 'loud' is not a log level (debug, info, notice, warning, "
	 "err, crit, alert, emerg or 0-7)"},
	{"log_level: 8\n", -EINVAL, NULL},
	{"fetch_ca_issuers: maybe\n", -EINVAL,
	 "test.yaml: line 1: fetch_ca_issuers: 'maybe' is not a boolean (true/false)"},
	{"write_ocsp_files:\n  a: 1\n", -EINVAL,
	 "test.yaml: line 2: write_ocsp_files: expected true or false, got a mapping"},
	{"listen:\n  a: 1\n", -EINVAL,
	 "test.yaml: line 2: listen: expected a string or a list of strings, got a mapping"},
	{"cert_dirs: [/a, '']\n", -EINVAL, "test.yaml: line 1: cert_dirs[1]: empty string"},
	{"cert_dirs:\n  - /a\n  - [b]\n", -EINVAL, NULL},
	{"cert_dirs:\n  - /a\n  - b: 1\n", -EINVAL,
	 "test.yaml: line 3: cert_dirs[1]: expected a string, got a mapping"},
	{"issuer_dirs: ''\n", -EINVAL, "test.yaml: line 1: issuer_dirs: empty string"},
	{"certificates: /a.pem\n", -EINVAL,
	 "test.yaml: line 1: certificates: expected a list, got a scalar"},
	{"certificates:\n  - issuer: /i.pem\n", -EINVAL,
	 "test.yaml: line 2: certificates[0]: 'path' is required"},
	{"certificates:\n  - /a\n  - ''\n", -EINVAL,
	 "test.yaml: line 3: certificates[1]: empty path"},
	{"certificates:\n  - [a]\n", -EINVAL,
	 "test.yaml: line 2: certificates[0]: expected a path or a mapping with 'path', got a "
	 "list"},
	{"certificates:\n  - path: /a\n    upstreams: [x, '']\n", -EINVAL,
	 "test.yaml: line 3: certificates[0].upstreams[1]: empty string"},
	{"certificates:\n  - path:\n      x: 1\n", -EINVAL,
	 "test.yaml: line 3: certificates[0].path: expected a string, got a mapping"},
	{"cache:\n  max_bytes: 1k\n", -EINVAL,
	 "test.yaml: line 2: cache.max_bytes: '1k' is out of range"},
	{"cache:\n  max_bytes: 99999999999G\n", -EINVAL,
	 "test.yaml: line 2: cache.max_bytes: '99999999999G' is out of range"},
	{"fetch:\n  backoff_base: 500ms\n", -EINVAL,
	 "test.yaml: line 2: fetch.backoff_base: '500ms' must be a whole number of seconds"},
	{"fetch:\n  backoff_base: 0s\n", -EINVAL,
	 "test.yaml: line 2: fetch.backoff_base: '0s' is out of range"},
	{"fetch:\n  max_parallel: 0\n", -EINVAL,
	 "test.yaml: line 2: fetch.max_parallel: '0' is out of range"},
	{"fetch:\n  max_parallel: 4097\n", -EINVAL,
	 "test.yaml: line 2: fetch.max_parallel: '4097' is out of range"},
	{"refresh:\n  window: [0.5]\n", -EINVAL,
	 "test.yaml: line 2: refresh.window: expected a list of two fractions [lo, hi]"},
	{"refresh:\n  window: 0.5\n", -EINVAL,
	 "test.yaml: line 2: refresh.window: expected a list of two fractions [lo, hi]"},
	{"refresh:\n  window: [0.5, 1]\n", -EINVAL,
	 "test.yaml: line 2: refresh.window: 1 is out of range (0 < x < 1)"},
	{"refresh:\n  window: [0, 0.5]\n", -EINVAL,
	 "test.yaml: line 2: refresh.window: 0 is out of range (0 < x < 1)"},
	{"refresh:\n  window: [0.7, 0.6]\n", -EINVAL,
	 "test.yaml: line 2: refresh.window: lo must not be greater than hi"},
	{"refresh:\n  window: [0.5, 1e-1]\n", -EINVAL,
	 "test.yaml: line 2: refresh.window: '1e-1' is not a decimal number"},
	{"refresh:\n  window: [0.5, nan]\n", -EINVAL,
	 "test.yaml: line 2: refresh.window: 'nan' is not a decimal number"},
	{"refresh:\n  alert_thresholds: []\n", -EINVAL,
	 "test.yaml: line 2: refresh.alert_thresholds: expected a list of 1 to 3 fractions"},
	{"refresh:\n  alert_thresholds: [0.5, 0.4, 0.3, 0.2]\n", -EINVAL,
	 "test.yaml: line 2: refresh.alert_thresholds: expected a list of 1 to 3 fractions"},
	{"refresh:\n  alert_thresholds:\n    - 0.5\n    - 0.5\n", -EINVAL,
	 "test.yaml: line 4: refresh.alert_thresholds: thresholds must be strictly decreasing"},
	{"refresh:\n  min_interval: 0\n", -EINVAL,
	 "test.yaml: line 2: refresh.min_interval: '0' is out of range"},
	{"validation:\n  max_clock_skew: 2d\n", -EINVAL,
	 "test.yaml: line 2: validation.max_clock_skew: '2d' is out of range"},
	{"learn:\n  idle_expiry: 10ms\n", -EINVAL,
	 "test.yaml: line 2: learn.idle_expiry: '10ms' is out of range"},
	{"validation:\n  allow_revoked: [yes]\n", -EINVAL,
	 "test.yaml: line 2: validation.allow_revoked: expected true or false, got a list"},
	/* YAML errors carry the file name and the parser's line */
	{"limits:\n\tmax_connections: 1\n", -EBADMSG,
	 "test.yaml: line 2: tab character in indentation"},
	{"log_level: info\nlog_level: debug\n", -EBADMSG,
	 "test.yaml: line 2: duplicate key 'log_level' (first on line 1)"},
	{"a: &x 1\n", -EBADMSG, "test.yaml: line 1: anchors (&) are not supported"},
};

static void test_errors(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct config c;
		char err[512] = "";
		config_init(&c);
		int r = load(&c, bad[i].doc, err, sizeof(err));
		if (r != bad[i].err)
			fail_msg("case %zu (%s): got %d (%s), want %d", i, bad[i].doc, r, err,
				 bad[i].err);
		if (bad[i].msg && strcmp(err, bad[i].msg) != 0)
			fail_msg("case %zu: message\n  \"%s\", want\n  \"%s\"", i, err, bad[i].msg);
		if (!bad[i].msg && strncmp(err, "test.yaml: line ", 16) != 0)
			fail_msg("case %zu: message \"%s\" does not name file and line", i, err);
		/* a failed load changes nothing */
		assert_defaults(&c);
		config_done(&c);
	}
}

static void test_failed_load_keeps_previous(void **state)
{
	(void)state;
	struct config c;
	char err[256];

	config_init(&c);
	assert_int_equal(load(&c, every_key, err, sizeof(err)), 0);
	/* the first keys are valid and would replace lists; the last one is wrong */
	assert_int_equal(load(&c,
			      "listen: ':1'\ncertificates: [/x]\ncache:\n  dir: ''\n"
			      "limits:\n  max_connections: none\n",
			      err, sizeof(err)),
			 -EINVAL);
	assert_list(&c.listen, 2, "0.0.0.0:80", "[::]:80");
	assert_int_equal(c.n_certs, 3);
	assert_string_equal(c.cache_dir, "/var/lib/stapled");
	assert_int_equal(c.max_connections, 100);
	config_done(&c);
}

static void test_list_replacement(void **state)
{
	(void)state;
	struct config c;
	char err[256];

	config_init(&c);
	/* present keys replace, absent keys keep what was there */
	assert_int_equal(load(&c, "listen: ':1'\ncert_dirs: [/a, /b]\n", err, sizeof(err)), 0);
	assert_list(&c.listen, 1, ":1");
	assert_list(&c.admin_listen, 1, "127.0.0.1:8890");
	assert_list(&c.cert_dirs, 2, "/a", "/b");
	assert_int_equal(load(&c, "cert_dirs: /c\n", err, sizeof(err)), 0);
	assert_list(&c.cert_dirs, 1, "/c");
	assert_list(&c.listen, 1, ":1");
	/* an empty value or [] empties the list */
	assert_int_equal(load(&c, "cert_dirs: []\nadmin_listen:\n", err, sizeof(err)), 0);
	assert_list(&c.cert_dirs, 0);
	assert_list(&c.admin_listen, 0);
	/* certificates replace as a whole, too */
	assert_int_equal(load(&c, "certificates: [/a, /b]\n", err, sizeof(err)), 0);
	assert_int_equal(c.n_certs, 2);
	assert_int_equal(load(&c, "certificates:\n  - path: /z\n", err, sizeof(err)), 0);
	assert_int_equal(c.n_certs, 1);
	assert_string_equal(c.certs[0].path, "/z");
	assert_int_equal(load(&c, "certificates:\n", err, sizeof(err)), 0);
	assert_int_equal(c.n_certs, 0);
	/* an empty string or ~ unsets an optional path, and a later file can set it again */
	assert_int_equal(
		load(&c, "cache:\n  dir: /d\nfetch:\n  proxy: http://p/\n", err, sizeof(err)), 0);
	assert_string_equal(c.cache_dir, "/d");
	assert_int_equal(load(&c, "cache:\n  dir: ''\nfetch:\n  proxy: ~\n", err, sizeof(err)), 0);
	assert_null(c.cache_dir);
	assert_null(c.proxy);
	/* str_list helpers, as cmd/ uses them for repeatable flags */
	str_list_add(&c.cert_dirs, "/flag1");
	str_list_add(&c.cert_dirs, "/flag2");
	assert_list(&c.cert_dirs, 2, "/flag1", "/flag2");
	str_list_clear(&c.cert_dirs);
	assert_list(&c.cert_dirs, 0);
	assert_null(c.cert_dirs.v);
	config_done(&c);
}

static void test_parse_duration(void **state)
{
	(void)state;
	static const struct {
		const char *s;
		int r;
		uint64_t ms;
	} cases[] = {
		{"0", 0, 0},
		{"250ms", 0, 250},
		{"10s", 0, 10000},
		{"10", 0, 10000},
		{"5m", 0, 300000},
		{"2h", 0, 7200000},
		{"1d", 0, 86400000},
		{"0ms", 0, 0},
		{"18446744073709551615ms", 0, UINT64_MAX},
		{"18446744073709551s", 0, 18446744073709551000ULL},
		{"18446744073709552s", -ERANGE, 0},
		{"18446744073709551616ms", -ERANGE, 0},
		{"213503982335d", -ERANGE, 0},
		{"", -EINVAL, 0},
		{"s", -EINVAL, 0},
		{"-1s", -EINVAL, 0},
		{"+1s", -EINVAL, 0},
		{"1.5s", -EINVAL, 0},
		{"10 s", -EINVAL, 0},
		{" 10s", -EINVAL, 0},
		{"10x", -EINVAL, 0},
		{"10S", -EINVAL, 0},
		{"10sec", -EINVAL, 0},
		{"1h30m", -EINVAL, 0},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint64_t ms = 12345;
		int r = config_parse_duration_ms(cases[i].s, &ms);
		if (r != cases[i].r)
			fail_msg("'%s': got %d, want %d", cases[i].s, r, cases[i].r);
		assert_true(ms == (r == 0 ? cases[i].ms : 12345));
	}
}

static void test_parse_size(void **state)
{
	(void)state;
	static const struct {
		const char *s;
		int r;
		uint64_t v;
	} cases[] = {
		{"0", 0, 0},
		{"512", 0, 512},
		{"512B", 0, 512},
		{"64k", 0, 65536},
		{"64K", 0, 65536},
		{"64KB", 0, 65536},
		{"16KiB", 0, 16384},
		{"256MiB", 0, 268435456},
		{"2M", 0, 2097152},
		{"1g", 0, 1073741824},
		{"3GiB", 0, 3221225472ULL},
		{"18446744073709551615", 0, UINT64_MAX},
		{"18446744073709551616", -ERANGE, 0},
		{"17179869183G", 0, 17179869183ULL << 30},
		{"17179869184G", -ERANGE, 0},
		{"", -EINVAL, 0},
		{"k", -EINVAL, 0},
		{"-1", -EINVAL, 0},
		{"1.5M", -EINVAL, 0},
		{"1 KiB", -EINVAL, 0},
		{"1T", -EINVAL, 0},
		{"1KiBs", -EINVAL, 0},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t v = 777;
		int r = config_parse_size(cases[i].s, &v);
		if (r != cases[i].r)
			fail_msg("'%s': got %d, want %d", cases[i].s, r, cases[i].r);
		assert_true(v == (r == 0 ? cases[i].v : 777));
	}
}

static void test_parse_log_level(void **state)
{
	(void)state;
	static const struct {
		const char *s;
		int level;
	} ok[] = {
		{"debug", LOG_DEBUG},
		{"info", LOG_INFO},
		{"notice", LOG_NOTICE},
		{"warning", LOG_WARNING},
		{"warn", LOG_WARNING},
		{"err", LOG_ERR},
		{"error", LOG_ERR},
		{"crit", LOG_CRIT},
		{"alert", LOG_ALERT},
		{"emerg", LOG_EMERG},
		{"DEBUG", LOG_DEBUG},
		{"Info", LOG_INFO},
		{"0", 0},
		{"7", 7},
	};
	static const char *const bad_levels[] = {"8", "-1", "", "07", "infoo", "6 ", "trace"};
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		int level = -5;
		assert_int_equal(config_parse_log_level(ok[i].s, &level), 0);
		assert_int_equal(level, ok[i].level);
	}
	for (size_t i = 0; i < sizeof(bad_levels) / sizeof(bad_levels[0]); i++) {
		int level = -5;
		assert_int_equal(config_parse_log_level(bad_levels[i], &level), -EINVAL);
		assert_int_equal(level, -5);
	}
}

static void test_parse_addr(void **state)
{
	(void)state;
	struct sockaddr_storage ss;
	const struct sockaddr_in *sin = (const struct sockaddr_in *)&ss;
	const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&ss;

	assert_int_equal(config_parse_addr("1.2.3.4:80", &ss), 0);
	assert_int_equal(ss.ss_family, AF_INET);
	assert_int_equal(ntohs(sin->sin_port), 80);
	assert_int_equal(ntohl(sin->sin_addr.s_addr), 0x01020304);

	assert_int_equal(config_parse_addr(":8889", &ss), 0);
	assert_int_equal(ss.ss_family, AF_INET);
	assert_int_equal(ntohs(sin->sin_port), 8889);
	assert_int_equal(sin->sin_addr.s_addr, htonl(INADDR_ANY));

	assert_int_equal(config_parse_addr("127.0.0.1:0", &ss), 0);
	assert_int_equal(ntohs(sin->sin_port), 0);
	assert_int_equal(config_parse_addr("127.0.0.1:65535", &ss), 0);
	assert_int_equal(ntohs(sin->sin_port), 65535);

	assert_int_equal(config_parse_addr("[::1]:443", &ss), 0);
	assert_int_equal(ss.ss_family, AF_INET6);
	assert_int_equal(ntohs(sin6->sin6_port), 443);
	assert_true(IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr));
	assert_int_equal(config_parse_addr("[::]:1", &ss), 0);
	assert_true(IN6_IS_ADDR_UNSPECIFIED(&sin6->sin6_addr));
	assert_int_equal(config_parse_addr("[2001:db8::ffff:1.2.3.4]:8080", &ss), 0);
	assert_int_equal(ss.ss_family, AF_INET6);

	static const char *const bad_addrs[] = {
		"",
		"1.2.3.4",
		"1.2.3.4:",
		":",
		"1.2.3.4:65536",
		"1.2.3.4:-1",
		"1.2.3.4:+80",
		"1.2.3.4:8x",
		"1.2.3.4: 80",
		"1.2.3.256:80",
		"host:80",
		"localhost:80",
		"::1:80",
		"[::1]",
		"[::1]80",
		"[::1]:",
		"[]:80",
		"[1.2.3.4]:80",
		"[::1:80",
		"1.2.3.4:100000",
		"[::1]:80:80",
		"1.2.3.4:123456",
		" 1.2.3.4:80",
	};
	for (size_t i = 0; i < sizeof(bad_addrs) / sizeof(bad_addrs[0]); i++) {
		memset(&ss, 0xa5, sizeof(ss));
		if (config_parse_addr(bad_addrs[i], &ss) != -EINVAL)
			fail_msg("'%s' accepted", bad_addrs[i]);
		assert_int_equal(((unsigned char *)&ss)[0], 0xa5);
	}
}

/* Loads `text` over the defaults, then applies `change` (for settings flags can make). */
static int validate_after(const char *text, void (*change)(struct config *), char *err,
			  size_t errlen)
{
	struct config c;
	config_init(&c);
	assert_int_equal(load(&c, text, err, errlen), 0);
	if (change)
		change(&c);
	int r = config_validate(&c, err, errlen);
	config_done(&c);
	return r;
}

static void set_window_inverted(struct config *c)
{
	c->refresh_lo = 0.8;
	c->refresh_hi = 0.7;
}

static void set_window_one(struct config *c)
{
	c->refresh_hi = 1.0;
}

static void set_thresholds_increasing(struct config *c)
{
	c->alert_fraction[1] = 0.6;
}

static void set_thresholds_gap(struct config *c)
{
	c->alert_fraction[1] = 0;
	c->alert_fraction[2] = 0.1;
}

static void set_no_listen(struct config *c)
{
	str_list_clear(&c->listen);
}

static void add_bad_listen(struct config *c)
{
	str_list_add(&c->listen, "localhost:80");
}

static void add_bad_admin(struct config *c)
{
	str_list_add(&c->admin_listen, "[::1]");
}

static void add_pathless_cert(struct config *c)
{
	c->certs = realloc(c->certs, (c->n_certs + 1) * sizeof(*c->certs));
	assert_non_null(c->certs);
	memset(&c->certs[c->n_certs++], 0, sizeof(*c->certs));
}

static void add_bad_upstream(struct config *c)
{
	str_list_add(&c->upstreams, "ftp://x/");
}

static void set_bad_proxy(struct config *c)
{
	c->proxy = strdup("proxy:3128");
}

static void set_zero_timeout(struct config *c)
{
	c->fetch_timeout_ms = 0;
}

static void set_zero_idle(struct config *c)
{
	c->idle_timeout_ms = 0;
}

static void set_bad_level(struct config *c)
{
	c->log_level = 9;
}

static void test_validate(void **state)
{
	(void)state;
	static const struct {
		const char *text;
		void (*change)(struct config *);
		const char *msg;
	} cases[] = {
		{"", set_window_inverted, "refresh.window: need 0 < lo <= hi < 1, got [0.8, 0.7]"},
		{"", set_window_one, "refresh.window: need 0 < lo <= hi < 1, got [0.5, 1]"},
		{"", set_thresholds_increasing,
		 "refresh.alert_thresholds: thresholds must be "
		 "strictly decreasing fractions in (0, 1)"},
		{"", set_thresholds_gap,
		 "refresh.alert_thresholds: thresholds must be strictly "
		 "decreasing fractions in (0, 1)"},
		{"", set_no_listen, "listen: at least one address is required"},
		{"listen:\n", NULL, "listen: at least one address is required"},
		{"", add_bad_listen,
		 "listen: 'localhost:80' is not ADDR:PORT, [IPV6]:PORT or :PORT"},
		{"listen: '1.2.3.4'\n", NULL,
		 "listen: '1.2.3.4' is not ADDR:PORT, [IPV6]:PORT or :PORT"},
		{"", add_bad_admin, "admin_listen: '[::1]' is not ADDR:PORT, [IPV6]:PORT or :PORT"},
		{"", add_pathless_cert, "certificates[0]: no path"},
		{"certificates:\n  - path: /a\n    upstreams: ocsp.example\n", NULL,
		 "certificates[0].upstreams: 'ocsp.example' is not an http:// or https:// URL"},
		{"fetch:\n  upstreams: [http://a/, 'https://']\n", NULL,
		 "fetch.upstreams: 'https://' is not an http:// or https:// URL"},
		{"", add_bad_upstream,
		 "fetch.upstreams: 'ftp://x/' is not an http:// or https:// URL"},
		{"", set_bad_proxy, "fetch.proxy: 'proxy:3128' is not an http:// or https:// URL"},
		{"learn:\n  default_origin: ocsp.example\n", NULL,
		 "learn.default_origin: 'ocsp.example' is not an http:// or https:// URL"},
		{"learn:\n  allowed_origins: [10.0.0.1]\n", NULL,
		 "learn.allowed_origins: '10.0.0.1' is not an http:// or https:// URL"},
		{"", set_zero_timeout, "fetch: timeouts must be positive"},
		{"", set_zero_idle, "limits: timeouts must be positive"},
		{"", set_bad_level, "log_level: 9 is not between 0 and 7"},
		{"fetch:\n  backoff_base: 1h\n  backoff_max: 30m\n", NULL,
		 "fetch.backoff_max (1800s) is smaller than fetch.backoff_base (3600s)"},
		{"cache:\n  max_bytes: 64KiB\nfetch:\n  max_response_bytes: 128KiB\n", NULL,
		 "cache.max_bytes (65536) is smaller than fetch.max_response_bytes (131072)"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char err[256] = "";
		int r = validate_after(cases[i].text, cases[i].change, err, sizeof(err));
		if (r != -EINVAL || strcmp(err, cases[i].msg) != 0)
			fail_msg("case %zu: %d \"%s\", want \"%s\"", i, r, err, cases[i].msg);
	}
	/* boundaries that are valid */
	char err[256];
	assert_int_equal(validate_after("refresh:\n  window: [0.6, 0.6]\n  alert_thresholds: "
					"[0.9]\nlisten: ':0'\nadmin_listen: []\n",
					NULL, err, sizeof(err)),
			 0);
	assert_int_equal(validate_after("fetch:\n  backoff_base: 1s\n  backoff_max: 1s\n  proxy: "
					"https://p/\n  upstreams: [http://x]\n",
					NULL, err, sizeof(err)),
			 0);
}

static char *write_temp(const char *content, size_t len)
{
	char *path = strdup("/tmp/stapled-test-config-XXXXXX");
	assert_non_null(path);
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	while (len) {
		ssize_t n = write(fd, content, len);
		assert_true(n > 0);
		content += n;
		len -= (size_t)n;
	}
	close(fd);
	return path;
}

static void test_load_file(void **state)
{
	(void)state;
	struct config c;
	char err[512];
	char *path;

	config_init(&c);
	assert_int_equal(config_load_file(&c, "/nonexistent/stapled.yaml", err, sizeof(err)),
			 -ENOENT);
	assert_string_equal(err, "/nonexistent/stapled.yaml: No such file or directory");
	assert_int_equal(config_load_file(&c, "/tmp", err, sizeof(err)), -EISDIR);
	assert_null(c.path);

	path = write_temp("log_level: debug\n", 17);
	assert_int_equal(config_load_file(&c, path, err, sizeof(err)), 0);
	assert_string_equal(c.path, path);
	assert_int_equal(c.log_level, LOG_DEBUG);
	/* a second load replaces the recorded path without leaking it */
	assert_int_equal(config_load_file(&c, path, err, sizeof(err)), 0);
	assert_string_equal(c.path, path);
	unlink(path);
	free(path);

	path = write_temp("log_level: debug\nbogus: 1\n", 26);
	assert_int_equal(config_load_file(&c, path, err, sizeof(err)), -EINVAL);
	char want[128];
	snprintf(want, sizeof(want), "%s: line 2: unknown key 'bogus'", path);
	assert_string_equal(err, want);
	unlink(path);
	free(path);

	/* larger than the YAML limit: refused before parsing */
	size_t big = 1024 * 1024 + 1;
	char *text = malloc(big);
	assert_non_null(text);
	memset(text, '\n', big);
	path = write_temp(text, big);
	assert_int_equal(config_load_file(&c, path, err, sizeof(err)), -EMSGSIZE);
	assert_non_null(strstr(err, "larger than"));
	/* exactly 1 MiB is accepted */
	assert_int_equal(truncate(path, (off_t)(big - 1)), 0);
	assert_int_equal(config_load_file(&c, path, err, sizeof(err)), 0);
	unlink(path);
	free(path);
	free(text);
	config_done(&c);
}

static void test_example_file(void **state)
{
	(void)state;
	struct config c;
	char err[512];

	config_init(&c);
	int r = config_load_file(&c, EXAMPLE, err, sizeof(err));
	if (r < 0)
		fail_msg("%s", err);
	assert_int_equal(config_validate(&c, err, sizeof(err)), 0);
	/* the example documents the defaults: loading it must not change any */
	free(c.path);
	c.path = NULL;
	assert_defaults(&c);
	config_done(&c);
}

/* Every ```yaml block of the reference must load and validate: the documentation cannot drift. */
static void test_outputs(void **state)
{
	(void)state;
	struct config c, d;
	char err[512] = "";
	config_init(&c);
	assert_int_equal(load(&c,
			      "outputs:\n"
			      "  - name: haproxy\n"
			      "    match: /etc/haproxy/certs\n"
			      "    ocsp_file: \"{path}.ocsp\"\n"
			      "    issuer_file: \"{path}.issuer\"\n"
			      "    haproxy_sockets: [/run/haproxy/admin.sock, \"127.0.0.1:9999\"]\n"
			      "  - match: [/etc/nginx/a.pem, /etc/nginx/b.pem]\n"
			      "    ocsp_file: /var/lib/stapled/nginx/{stem}.der\n"
			      "    command: nginx -s reload\n"
			      "    command_interval: 2m\n"
			      "  - match: /srv\n"
			      "    haproxy_sockets: [/run/h.sock]\n",
			      err, sizeof(err)),
			 0);
	assert_int_equal(config_validate(&c, err, sizeof(err)), 0);
	assert_int_equal(c.n_outputs, 3);
	assert_string_equal(c.outputs[0].name, "haproxy");
	assert_list(&c.outputs[0].match, 1, "/etc/haproxy/certs");
	assert_string_equal(c.outputs[0].issuer_file, "{path}.issuer");
	assert_list(&c.outputs[0].haproxy_sockets, 2, "/run/haproxy/admin.sock", "127.0.0.1:9999");
	assert_null(c.outputs[0].command);
	assert_int_equal(c.outputs[0].command_interval_ms, 30000); /* default */
	assert_string_equal(c.outputs[1].name, "output-2");	   /* default: its position */
	assert_list(&c.outputs[1].match, 2, "/etc/nginx/a.pem", "/etc/nginx/b.pem");
	assert_string_equal(c.outputs[1].command, "nginx -s reload");
	assert_int_equal(c.outputs[1].command_interval_ms, 120000);

	/* The same text again: equal; any change: not. */
	config_init(&d);
	assert_true(config_outputs_equal(&c, &c));
	assert_false(config_outputs_equal(&c, &d));
	assert_int_equal(load(&d, "outputs:\n  - match: /srv\n    haproxy_sockets: [/run/h.sock]\n",
			      err, sizeof(err)),
			 0);
	assert_false(config_outputs_equal(&c, &d));
	config_done(&d);

	/* A later load replaces the whole list; "outputs:" alone empties it. */
	assert_int_equal(load(&c, "outputs:\n", err, sizeof(err)), 0);
	assert_int_equal(c.n_outputs, 0);
	config_done(&c);

	static const struct {
		const char *doc, *want;
	} refused[] = {
		{"outputs:\n  - ocsp_file: /x\n", "'match' is required"},
		{"outputs:\n  - match: /x\n", "nothing to do"},
		{"outputs:\n  - match: /x\n    command: true\n    haproxy_sockets: [/s]\n",
		 "'command' runs when a written file changes"},
		{"outputs:\n  - match: /x\n    ocsp_file: /y\n    colour: red\n",
		 "unknown key 'outputs[0].colour'"},
		{"outputs:\n  - match: /x\n    ocsp_file: /y\n    command_interval: soon\n",
		 "is not a duration"},
		{"outputs: /x\n", "expected a list"},
		{"outputs:\n  - /x\n", "expected a mapping"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(refused); i++) {
		config_init(&c);
		err[0] = 0;
		assert_int_equal(load(&c, refused[i].doc, err, sizeof(err)), -EINVAL);
		if (!strstr(err, refused[i].want))
			fail_msg("case %zu: \"%s\" lacks \"%s\"", i, err, refused[i].want);
		assert_int_equal(c.n_outputs, 0);
		config_done(&c);
	}
	static const struct {
		const char *doc, *want;
	} invalid[] = {
		{"outputs:\n  - match: rel\n    ocsp_file: /y\n", "not an absolute path"},
		{"outputs:\n  - match: /x\n    ocsp_file: \"{stem}.der\"\n", "not absolute"},
		{"outputs:\n  - match: /x\n    issuer_file: \"/a/{nope}\"\n",
		 "unknown or unclosed"},
		{"outputs:\n  - match: /x\n    haproxy_sockets: [sock]\n", "haproxy_sockets"},
		{"outputs:\n  - match: /x\n    haproxy_sockets: [127.0.0.1]\n", "haproxy_sockets"},
		{"outputs:\n  - name: a\n    match: /x\n    ocsp_file: /y\n"
		 "  - name: a\n    match: /z\n    ocsp_file: /w\n",
		 "two outputs are named 'a'"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(invalid); i++) {
		config_init(&c);
		err[0] = 0;
		assert_int_equal(load(&c, invalid[i].doc, err, sizeof(err)), 0);
		assert_int_equal(config_validate(&c, err, sizeof(err)), -EINVAL);
		if (!strstr(err, invalid[i].want))
			fail_msg("invalid %zu: \"%s\" lacks \"%s\"", i, err, invalid[i].want);
		config_done(&c);
	}
}

static void test_reference_examples(void **state)
{
	(void)state;
	FILE *f = fopen(REFERENCE, "r");
	char line[512], err[512];
	char *block = NULL;
	size_t len = 0, blocks = 0;
	bool in_block = false;

	assert_non_null(f);
	while (fgets(line, sizeof(line), f)) {
		if (!in_block && strcmp(line, "```yaml\n") == 0) {
			in_block = true;
			len = 0;
			continue;
		}
		if (in_block && strcmp(line, "```\n") == 0) {
			struct config c;
			in_block = false;
			blocks++;
			config_init(&c);
			int r = config_load_string(&c, "block", block ? block : "", len, err,
						   sizeof(err));
			if (r < 0)
				fail_msg("yaml block %zu: %s", blocks, err);
			if (config_validate(&c, err, sizeof(err)) < 0)
				fail_msg("yaml block %zu: %s", blocks, err);
			config_done(&c);
			continue;
		}
		if (in_block) {
			size_t n = strlen(line);
			block = realloc(block, len + n + 1);
			assert_non_null(block);
			memcpy(block + len, line, n + 1);
			len += n;
		}
	}
	fclose(f);
	free(block);
	assert_false(in_block);
	assert_true(blocks >= 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_every_key),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_failed_load_keeps_previous),
		cmocka_unit_test(test_list_replacement),
		cmocka_unit_test(test_parse_duration),
		cmocka_unit_test(test_parse_size),
		cmocka_unit_test(test_parse_log_level),
		cmocka_unit_test(test_parse_addr),
		cmocka_unit_test(test_validate),
		cmocka_unit_test(test_load_file),
		cmocka_unit_test(test_example_file),
		cmocka_unit_test(test_reference_examples),
		cmocka_unit_test(test_outputs),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
