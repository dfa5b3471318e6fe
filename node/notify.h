/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Telling the service manager (systemd, Type=notify) what the process is doing, without
 * libsystemd: one datagram per event on the unix socket named by $NOTIFY_SOCKET.
 *
 * Glossary (systemd's sd_notify(3) protocol):
 *   READY=1         start-up (or a reload) is over: the unit becomes "active";
 *   RELOADING=1     a reload began; with MONOTONIC_USEC (CLOCK_MONOTONIC, µs) systemd ≥ 253 keeps
 *                   the unit "reloading" until the next READY=1; older versions ignore both;
 *   STOPPING=1      shutdown began (the unit becomes "deactivating");
 *   STATUS=text     one line shown by `systemctl status`;
 *   WATCHDOG=1      the keep-alive ping that WatchdogSec= expects every WATCHDOG_USEC.
 *
 * The socket is a process-wide thing (one environment variable, one service manager), so this
 * module keeps one process-wide state rather than an object: node_run() starts it once and
 * closes it with the other handles. Without $NOTIFY_SOCKET every call is a no-op. Sending never
 * blocks the loop: a datagram the manager cannot take at once (EAGAIN) is retried a few times
 * from a timer if it changes the unit's state, dropped if it is a STATUS or watchdog line (the
 * next one follows). Other errors are logged once, at debug level, and otherwise ignored:
 * notifications help the manager, they never decide whether stapled serves.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>
#include <uv.h>

enum notify_state {
	NOTIFY_STATUS,	  /* a STATUS= line only */
	NOTIFY_READY,	  /* READY=1 */
	NOTIFY_RELOADING, /* RELOADING=1 and MONOTONIC_USEC= */
	NOTIFY_STOPPING,  /* STOPPING=1 */
	NOTIFY_WATCHDOG,  /* WATCHDOG=1 */
};

/* ---- pure helpers (no I/O, no clock, no environment) ---- */

/*
 * Parses a $NOTIFY_SOCKET value: an absolute path ("/run/systemd/notify") or an abstract socket
 * name ("@name", sent with a leading NUL byte). Writes the address and its length on success.
 * Errors: -ENOENT s is NULL or empty; -EAFNOSUPPORT neither form (systemd's "vsock:" addresses,
 * a relative path); -EINVAL "@" without a name; -ENAMETOOLONG longer than sun_path allows.
 */
int notify_addr_parse(const char *s, struct sockaddr_un *ret_addr, socklen_t *ret_len);

/*
 * The watchdog interval from $WATCHDOG_USEC and $WATCHDOG_PID (either may be NULL = unset), as
 * sd_watchdog_enabled(3) reads them: the watchdog is ours if WATCHDOG_PID is unset or names
 * `self`. Writes the interval in µs on success.
 * Errors: -ENOENT WATCHDOG_USEC unset; -EINVAL either value malformed, or an interval of 0;
 * -ESRCH WATCHDOG_PID names another process (a parent's watchdog leaked into our environment).
 */
int notify_watchdog_parse(const char *usec, const char *pid, pid_t self, uint64_t *ret_usec);

/*
 * Formats one datagram into buf: the state's line(s), then "STATUS=<status>" if status is not
 * NULL (newlines in it become spaces: one assignment per line is the protocol). mono_usec is
 * used by NOTIFY_RELOADING only. Lines are separated by "\n", without a trailing one. Returns
 * the length (the text is NUL-terminated as well).
 * Errors: -EMSGSIZE it does not fit in len bytes (buf then holds nothing useful); -EINVAL
 * NOTIFY_STATUS without a status.
 */
int notify_format(char *buf, size_t len, enum notify_state st, uint64_t mono_usec,
		  const char *status);

/* ---- the process's notification socket ---- */

/*
 * Reads $NOTIFY_SOCKET, $WATCHDOG_USEC and $WATCHDOG_PID, opens the socket and, if a watchdog is
 * ours, pings it every half interval from a timer on `loop` (the ping proves the loop turns).
 * Call once, before the first notification; a no-op without $NOTIFY_SOCKET. Its handles do not
 * keep the loop alive; notify_close() closes them.
 */
void notify_start(uv_loop_t *loop);
/* Whether notifications go anywhere (callers skip building a STATUS text otherwise). */
bool notify_enabled(void);
/* READY=1, with a STATUS= line if status is not NULL. */
void notify_ready(const char *status);
/* RELOADING=1 and MONOTONIC_USEC=now. */
void notify_reloading(void);
/* STOPPING=1, with a STATUS= line if status is not NULL. */
void notify_stopping(const char *status);
/* A STATUS= line, sent only if it differs from the last one sent (callers may call it often). */
void notify_status(const char *status);
/*
 * Closes the timers (asynchronously, with the loop's other handles) and the socket; later
 * calls are no-ops. Safe to call without notify_start().
 */
void notify_close(void);
