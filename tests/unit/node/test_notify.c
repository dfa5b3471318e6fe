/* SPDX-License-Identifier: Apache-2.0 */
/*
 * node/notify.c: the $NOTIFY_SOCKET address forms and their limits, the watchdog variables as
 * sd_watchdog_enabled(3) reads them, the datagram text of every notification, and one run of the
 * socket itself on a real loop (a datagram socket of the test's own receives what is sent, the
 * watchdog pings, an unchanged STATUS is not sent twice, every handle closes).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "node/notify.h"

static void test_addr_path(void **state)
{
	(void)state;
	struct sockaddr_un a;
	socklen_t len;
	assert_int_equal(notify_addr_parse("/run/systemd/notify", &a, &len), 0);
	assert_int_equal(a.sun_family, AF_UNIX);
	assert_string_equal(a.sun_path, "/run/systemd/notify");
	assert_int_equal(len, offsetof(struct sockaddr_un, sun_path) +
				      strlen("/run/systemd/notify") + 1);
}

static void test_addr_abstract(void **state)
{
	(void)state;
	struct sockaddr_un a;
	socklen_t len;
	assert_int_equal(notify_addr_parse("@stapled/notify", &a, &len), 0);
	assert_int_equal(a.sun_path[0], 0);
	assert_memory_equal(a.sun_path + 1, "stapled/notify", 14);
	/* No terminator: the length alone ends an abstract name. */
	assert_int_equal(len, offsetof(struct sockaddr_un, sun_path) + 1 + 14);
}

static void test_addr_refused(void **state)
{
	(void)state;
	struct sockaddr_un a = {0}, untouched = {0};
	socklen_t len = 1234;
	assert_int_equal(notify_addr_parse(NULL, &a, &len), -ENOENT);
	assert_int_equal(notify_addr_parse("", &a, &len), -ENOENT);
	assert_int_equal(notify_addr_parse("run/notify", &a, &len), -EAFNOSUPPORT);
	assert_int_equal(notify_addr_parse("vsock:2:1234", &a, &len), -EAFNOSUPPORT);
	assert_int_equal(notify_addr_parse("@", &a, &len), -EINVAL);
	/* Nothing is written on failure. */
	assert_memory_equal(&a, &untouched, sizeof(a));
	assert_int_equal(len, 1234);
}

static void test_addr_lengths(void **state)
{
	(void)state;
	struct sockaddr_un a;
	socklen_t len;
	const size_t cap = sizeof(a.sun_path);
	char s[256];

	/* A path needs its terminator inside sun_path: cap - 1 characters at most. */
	memset(s, 'p', sizeof(s));
	s[0] = '/';
	s[cap - 1] = 0;
	assert_int_equal(notify_addr_parse(s, &a, &len), 0);
	assert_int_equal(strlen(a.sun_path), cap - 1);
	s[cap - 1] = 'p';
	s[cap] = 0;
	assert_int_equal(notify_addr_parse(s, &a, &len), -ENAMETOOLONG);

	/* An abstract name fills sun_path after its NUL: cap - 1 name characters at most. */
	s[0] = '@';
	s[cap] = 0; /* "@" + cap - 1 characters */
	assert_int_equal(notify_addr_parse(s, &a, &len), 0);
	assert_int_equal(len, offsetof(struct sockaddr_un, sun_path) + cap);
	s[cap] = 'p';
	s[cap + 1] = 0;
	assert_int_equal(notify_addr_parse(s, &a, &len), -ENAMETOOLONG);
}

static void test_watchdog(void **state)
{
	(void)state;
	uint64_t u = 7;
	assert_int_equal(notify_watchdog_parse(NULL, NULL, 100, &u), -ENOENT);
	assert_int_equal(notify_watchdog_parse(NULL, "100", 100, &u), -ENOENT);
	assert_int_equal(notify_watchdog_parse("30000000", NULL, 100, &u), 0);
	assert_int_equal(u, 30000000);
	u = 7;
	assert_int_equal(notify_watchdog_parse("2000", "100", 100, &u), 0);
	assert_int_equal(u, 2000);
	/* Another process's watchdog (inherited from a parent): not ours to ping. */
	u = 7;
	assert_int_equal(notify_watchdog_parse("2000", "101", 100, &u), -ESRCH);
	assert_int_equal(u, 7);
	const char *bad[] = {"", "0", "-1", " 5", "+5", "5x", "0x10", "99999999999999999999999"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(notify_watchdog_parse(bad[i], NULL, 100, &u), -EINVAL);
	const char *bad_pid[] = {"", "0", "-100", "100 ", "abc", "4294967396"};
	for (size_t i = 0; i < sizeof(bad_pid) / sizeof(bad_pid[0]); i++)
		assert_int_equal(notify_watchdog_parse("2000", bad_pid[i], 100, &u), -EINVAL);
	assert_int_equal(u, 7);
}

static void test_format(void **state)
{
	(void)state;
	char b[256];
	assert_int_equal(notify_format(b, sizeof(b), NOTIFY_READY, 0, NULL), 7);
	assert_string_equal(b, "READY=1");
	assert_int_equal(notify_format(b, sizeof(b), NOTIFY_READY, 0, "3 certificates") > 0, 1);
	assert_string_equal(b, "READY=1\nSTATUS=3 certificates");
	assert_int_equal(
		notify_format(b, sizeof(b), NOTIFY_RELOADING, 18446744073709551615u, NULL) > 0, 1);
	assert_string_equal(b, "RELOADING=1\nMONOTONIC_USEC=18446744073709551615");
	assert_int_equal(notify_format(b, sizeof(b), NOTIFY_RELOADING, 12, "r") > 0, 1);
	assert_string_equal(b, "RELOADING=1\nMONOTONIC_USEC=12\nSTATUS=r");
	assert_int_equal(notify_format(b, sizeof(b), NOTIFY_STOPPING, 0, "bye") > 0, 1);
	assert_string_equal(b, "STOPPING=1\nSTATUS=bye");
	assert_int_equal(notify_format(b, sizeof(b), NOTIFY_WATCHDOG, 0, NULL), 10);
	assert_string_equal(b, "WATCHDOG=1");
	assert_int_equal(notify_format(b, sizeof(b), NOTIFY_STATUS, 0, "x"), 8);
	assert_string_equal(b, "STATUS=x");
	assert_int_equal(notify_format(b, sizeof(b), NOTIFY_STATUS, 0, NULL), -EINVAL);
	/* A newline in the status must not start another assignment. */
	assert_int_equal(notify_format(b, sizeof(b), NOTIFY_READY, 0, "a\nREADY=0\rb") > 0, 1);
	assert_string_equal(b, "READY=1\nSTATUS=a READY=0 b");
	assert_int_equal(notify_format(b, sizeof(b), NOTIFY_STATUS, 0, "\nWATCHDOG=1") > 0, 1);
	assert_string_equal(b, "STATUS= WATCHDOG=1");
}

static void test_format_sizes(void **state)
{
	(void)state;
	char b[32];
	/* "READY=1\nSTATUS=" is 15 bytes: 16 more characters and the NUL fill 32 exactly. */
	assert_int_equal(notify_format(b, sizeof(b), NOTIFY_READY, 0, "0123456789abcdef"), 31);
	assert_int_equal(notify_format(b, sizeof(b), NOTIFY_READY, 0, "0123456789abcdefg"),
			 -EMSGSIZE);
	assert_int_equal(notify_format(b, 7, NOTIFY_READY, 0, NULL), -EMSGSIZE);
	assert_int_equal(notify_format(b, 8, NOTIFY_READY, 0, NULL), 7);
	assert_int_equal(notify_format(b, 0, NOTIFY_WATCHDOG, 0, NULL), -EMSGSIZE);
	assert_int_equal(notify_format(b, sizeof(b), (enum notify_state)99, 0, NULL), -EINVAL);
}

/* ---- the socket, on a real loop ---- */

#define MAX_DGRAMS 64

/* Receives the datagrams waiting on fd (non-blocking), each NUL-terminated; returns the count. */
static size_t drain(int fd, char got[MAX_DGRAMS][600])
{
	size_t count = 0;
	ssize_t k;
	char d[600];
	while ((k = recv(fd, d, sizeof(d) - 1, MSG_DONTWAIT)) >= 0) {
		assert_true(count < MAX_DGRAMS);
		d[k] = 0;
		memcpy(got[count++], d, (size_t)k + 1);
	}
	assert_int_equal(errno, EAGAIN);
	return count;
}

static uint64_t mono_usec(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void on_stop(uv_timer_t *t)
{
	(void)t;
}

static void run_for(uv_loop_t *loop, uint64_t ms)
{
	uv_timer_t t;
	uv_timer_init(loop, &t);
	uv_timer_start(&t, on_stop, ms, 0);
	uv_run(loop, UV_RUN_DEFAULT);
	uv_close((uv_handle_t *)&t, NULL);
	uv_run(loop, UV_RUN_DEFAULT);
}

static void test_socket(void **state)
{
	(void)state;
	static char got[MAX_DGRAMS][600];
	char name[64];
	snprintf(name, sizeof(name), "@stapled-test-notify-%ld", (long)getpid());
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	struct sockaddr_un a;
	socklen_t len;
	assert_int_equal(notify_addr_parse(name, &a, &len), 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, len), 0);

	/* Before start, nothing is sent and nothing breaks. */
	notify_ready("early");
	assert_false(notify_enabled());

	char pid[32];
	snprintf(pid, sizeof(pid), "%ld", (long)getpid());
	setenv("NOTIFY_SOCKET", name, 1);
	setenv("WATCHDOG_USEC", "40000", 1); /* pings every 20 ms */
	setenv("WATCHDOG_PID", pid, 1);
	uv_loop_t loop;
	uv_loop_init(&loop);
	notify_start(&loop);
	assert_true(notify_enabled());

	notify_ready("1 certificates");
	notify_status("1 certificates"); /* unchanged since READY: not sent */
	notify_status("2 certificates");
	notify_status("2 certificates");
	uint64_t before = mono_usec();
	notify_reloading();
	uint64_t after = mono_usec();
	notify_stopping("stopping");
	assert_int_equal(drain(fd, got), 4);
	assert_string_equal(got[0], "READY=1\nSTATUS=1 certificates");
	assert_string_equal(got[1], "STATUS=2 certificates");
	unsigned long long at = 0;
	assert_int_equal(sscanf(got[2], "RELOADING=1\nMONOTONIC_USEC=%llu", &at), 1);
	assert_true(at >= before && at <= after);
	assert_string_equal(got[3], "STOPPING=1\nSTATUS=stopping");

	/* The pings come from the loop; the unreferenced timer alone does not keep it running. */
	size_t pings = 0;
	for (int i = 0; i < 200 && pings < 2; i++) {
		run_for(&loop, 25);
		size_t n = drain(fd, got);
		for (size_t j = 0; j < n; j++)
			assert_string_equal(got[j], "WATCHDOG=1");
		pings += n;
	}
	assert_true(pings >= 2);

	notify_close();
	notify_ready("after close");
	uv_run(&loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&loop), 0);
	assert_int_equal(drain(fd, got), 0);
	close(fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_addr_path),    cmocka_unit_test(test_addr_abstract),
		cmocka_unit_test(test_addr_refused), cmocka_unit_test(test_addr_lengths),
		cmocka_unit_test(test_watchdog),     cmocka_unit_test(test_format),
		cmocka_unit_test(test_format_sizes), cmocka_unit_test(test_socket),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
