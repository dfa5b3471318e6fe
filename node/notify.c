/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sd_notify(3) without libsystemd: the protocol is one unix datagram of "KEY=value" lines, so a
 * socket and sendto() are all it takes, and the daemon keeps no dependency for it.
 */
#include "node/notify.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "node/log.h"
#include "proto/macro.h"

/* A datagram: a state line, MONOTONIC_USEC and a STATUS line fit with room to spare. */
#define NOTIFY_MSG_MAX 512
/* A state change the manager could not take at once is retried this often, this many times. */
#define RETRY_MS       100
#define RETRY_ATTEMPTS 50

/* ---- pure helpers ---- */

int notify_addr_parse(const char *s, struct sockaddr_un *ret_addr, socklen_t *ret_len)
{
	if (!s || !s[0])
		return -ENOENT;
	if (s[0] != '/' && s[0] != '@')
		return -EAFNOSUPPORT;
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	size_t n = strlen(s);
	socklen_t len;
	if (s[0] == '@') {
		/* Abstract namespace: a leading NUL, then the name, with no terminator; the address
		 * length says where it ends. */
		if (n == 1)
			return -EINVAL;
		if (n > sizeof(a.sun_path))
			return -ENAMETOOLONG;
		memcpy(a.sun_path + 1, s + 1, n - 1);
		len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
	} else {
		if (n >= sizeof(a.sun_path))
			return -ENAMETOOLONG;
		memcpy(a.sun_path, s, n + 1);
		len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
	}
	*ret_addr = a;
	*ret_len = len;
	return 0;
}

/* A decimal number without sign, spaces or trailing text (strtoull alone accepts " -1"). */
static int parse_u64(const char *s, uint64_t *ret)
{
	if (!s || s[0] < '0' || s[0] > '9')
		return -EINVAL;
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || *end)
		return -EINVAL;
	*ret = v;
	return 0;
}

int notify_watchdog_parse(const char *usec, const char *pid, pid_t self, uint64_t *ret_usec)
{
	if (!usec)
		return -ENOENT;
	uint64_t u, p;
	if (parse_u64(usec, &u) < 0 || u == 0)
		return -EINVAL;
	if (pid) {
		if (parse_u64(pid, &p) < 0 || p == 0 || p > INT32_MAX)
			return -EINVAL;
		if ((pid_t)p != self)
			return -ESRCH;
	}
	*ret_usec = u;
	return 0;
}

int notify_format(char *buf, size_t len, enum notify_state st, uint64_t mono_usec,
		  const char *status)
{
	int k;
	switch (st) {
	case NOTIFY_READY:
		k = snprintf(buf, len, "READY=1");
		break;
	case NOTIFY_RELOADING:
		k = snprintf(buf, len, "RELOADING=1\nMONOTONIC_USEC=%" PRIu64, mono_usec);
		break;
	case NOTIFY_STOPPING:
		k = snprintf(buf, len, "STOPPING=1");
		break;
	case NOTIFY_WATCHDOG:
		k = snprintf(buf, len, "WATCHDOG=1");
		break;
	case NOTIFY_STATUS:
		if (!status)
			return -EINVAL;
		k = snprintf(buf, len, "%s", "");
		break;
	default:
		return -EINVAL;
	}
	if (k < 0 || (size_t)k >= len)
		return -EMSGSIZE;
	size_t n = (size_t)k;
	if (status) {
		int m = snprintf(buf + n, len - n, "%sSTATUS=%s", n ? "\n" : "", status);
		if (m < 0 || (size_t)m >= len - n)
			return -EMSGSIZE;
		/* One assignment per line: a newline in the text must not start another. */
		for (size_t i = n + (n ? 1 : 0); i < n + (size_t)m; i++)
			if (buf[i] == '\n' || buf[i] == '\r')
				buf[i] = ' ';
		n += (size_t)m;
	}
	if (n > INT32_MAX)
		return -EMSGSIZE;
	return (int)n;
}

/* ---- the process's notification socket ---- */

static struct {
	int fd; /* -1: notifications off */
	struct sockaddr_un addr;
	socklen_t addr_len;
	uv_timer_t watchdog; /* pings WATCHDOG=1 */
	bool watchdog_open;
	uv_timer_t retry; /* re-sends `pending` */
	bool retry_open;
	char pending[NOTIFY_MSG_MAX];
	size_t pending_len; /* 0: nothing pending */
	unsigned retries;
	char last_status[NOTIFY_MSG_MAX];
	bool error_logged;
	bool started;
} nt = {.fd = -1};

static void log_failure_once(const char *what, int err)
{
	if (nt.error_logged)
		return;
	nt.error_logged = true;
	log_debug("notify", "%s: %s (ignored; further notification errors are not logged)", what,
		  strerror(-err));
}

static int send_now(const char *msg, size_t len)
{
	/* A signal can interrupt even a non-blocking send; a few tries bound it. */
	for (int i = 0; i < 3; i++) {
		if (sendto(nt.fd, msg, len, MSG_DONTWAIT | MSG_NOSIGNAL,
			   (const struct sockaddr *)&nt.addr, nt.addr_len) >= 0)
			return 0;
		if (errno != EINTR)
			return -errno;
	}
	return -EINTR;
}

static void on_retry(uv_timer_t *t)
{
	if (!nt.pending_len || nt.fd < 0) {
		uv_timer_stop(t);
		return;
	}
	int r = send_now(nt.pending, nt.pending_len);
	if (r == 0 || (r != -EAGAIN && r != -ENOBUFS) || ++nt.retries >= RETRY_ATTEMPTS) {
		if (r < 0)
			log_failure_once("a state notification could not be delivered", r);
		nt.pending_len = 0;
		uv_timer_stop(t);
	}
}

/* Sends one notification; returns 0 or the -errno of the failure (already handled). */
static int send_msg(enum notify_state st, const char *status)
{
	if (nt.fd < 0)
		return -ENOTCONN;
	struct timespec ts = {0};
	if (st == NOTIFY_RELOADING)
		clock_gettime(CLOCK_MONOTONIC, &ts);
	char msg[NOTIFY_MSG_MAX];
	int len = notify_format(msg, sizeof(msg), st,
				(uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u,
				status);
	if (len < 0) {
		log_failure_once("notification too long", len);
		return len;
	}
	bool changes_state = st == NOTIFY_READY || st == NOTIFY_RELOADING || st == NOTIFY_STOPPING;
	if (changes_state)
		nt.pending_len = 0; /* superseded: the manager only needs the newest state */
	int r = send_now(msg, (size_t)len);
	if (r == 0)
		return 0;
	if ((r == -EAGAIN || r == -ENOBUFS) && changes_state && nt.retry_open) {
		memcpy(nt.pending, msg, (size_t)len);
		nt.pending_len = (size_t)len;
		nt.retries = 0;
		uv_timer_start(&nt.retry, on_retry, RETRY_MS, RETRY_MS);
		return r;
	}
	log_failure_once(nt.addr.sun_path[0] ? nt.addr.sun_path : "@notify socket", r);
	return r;
}

static void on_watchdog(uv_timer_t *t)
{
	(void)t;
	send_msg(NOTIFY_WATCHDOG, NULL);
}

void notify_start(uv_loop_t *loop)
{
	if (nt.started)
		return;
	nt.started = true;
	const char *e = getenv("NOTIFY_SOCKET");
	if (!e)
		return;
	int r = notify_addr_parse(e, &nt.addr, &nt.addr_len);
	if (r < 0) {
		log_failure_once("$NOTIFY_SOCKET not usable", r);
		return;
	}
	/* Non-blocking: the manager being slow to read must never stall the loop. */
	nt.fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (nt.fd < 0) {
		log_failure_once("notification socket", -errno);
		return;
	}
	uv_timer_init(loop, &nt.retry);
	uv_unref((uv_handle_t *)&nt.retry);
	nt.retry_open = true;

	uint64_t usec;
	r = notify_watchdog_parse(getenv("WATCHDOG_USEC"), getenv("WATCHDOG_PID"), getpid(), &usec);
	if (r == -ESRCH) {
		log_debug("notify", "$WATCHDOG_PID names another process: no watchdog pings");
	} else if (r == -EINVAL) {
		log_failure_once("$WATCHDOG_USEC or $WATCHDOG_PID malformed", r);
	} else if (r == 0) {
		/* Half the interval, as sd_watchdog_enabled(3) advises: one late turn of the loop
		 * is not yet a missed deadline. */
		uint64_t every_ms = MAX(usec / 2000u, (uint64_t)1);
		uv_timer_init(loop, &nt.watchdog);
		uv_unref((uv_handle_t *)&nt.watchdog);
		nt.watchdog_open = true;
		uv_timer_start(&nt.watchdog, on_watchdog, every_ms, every_ms);
		log_info("notify", "service manager watchdog: pinging every %" PRIu64 " ms",
			 every_ms);
	}
}

bool notify_enabled(void)
{
	return nt.fd >= 0;
}

void notify_ready(const char *status)
{
	if (send_msg(NOTIFY_READY, status) == 0 && status)
		snprintf(nt.last_status, sizeof(nt.last_status), "%s", status);
}

void notify_reloading(void)
{
	send_msg(NOTIFY_RELOADING, NULL);
}

void notify_stopping(const char *status)
{
	if (send_msg(NOTIFY_STOPPING, status) == 0 && status)
		snprintf(nt.last_status, sizeof(nt.last_status), "%s", status);
}

void notify_status(const char *status)
{
	if (nt.fd < 0 || !status || strcmp(status, nt.last_status) == 0)
		return;
	if (send_msg(NOTIFY_STATUS, status) == 0)
		snprintf(nt.last_status, sizeof(nt.last_status), "%s", status);
}

void notify_close(void)
{
	/* The handles live in static storage: nothing to free in a close callback. */
	if (nt.watchdog_open)
		uv_close((uv_handle_t *)&nt.watchdog, NULL);
	if (nt.retry_open)
		uv_close((uv_handle_t *)&nt.retry, NULL);
	nt.watchdog_open = nt.retry_open = false;
	nt.pending_len = 0;
	if (nt.fd >= 0)
		close(nt.fd);
	nt.fd = -1;
}
