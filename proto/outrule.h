/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Output rules, the pure part of handing responses to web servers (node/output.c does the I/O):
 * which certificate files an output applies to, the names of the files it writes, and when its
 * notify command may run.
 *
 * Glossary: an "output" is one `outputs:` item of the config; it "matches" a certificate by the
 * path of the file the certificate was found in; a "template" is a file name with {variables}
 * taken from that path; the "gate" rate-limits an output's command.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/buf.h"

/*
 * True when cert_path is `match` itself or lies below the directory `match` (a trailing '/' on
 * match is optional). Paths are compared as strings: "/etc/ssl" does not match "/etc/ssl2/a".
 */
bool outrule_match(const char *match, const char *cert_path);

/*
 * Checks a template without expanding it: only the variables {path} (the certificate file),
 * {dir} (its directory), {file} (its name), {stem} (its name without the last extension) and
 * {serial} (the certificate's serial number, upper-case hex) are known; braces must pair; the
 * result must be an absolute path, so the template starts with '/', {path} or {dir}.
 * Errors: -EINVAL, with the reason in errbuf.
 */
int outrule_check(const char *tmpl, char *errbuf, size_t errlen);

/*
 * Appends the expansion of tmpl for a certificate found in cert_path to out.
 * Errors: -EINVAL the template is bad (see outrule_check), or the result is not an absolute
 * path to a file (a "." or ".." component, an empty component, or a trailing '/'); out is then
 * unchanged.
 */
int outrule_expand(const char *tmpl, const char *cert_path, const char *serial_hex,
		   struct buf *out);

/*
 * The gate of an output's command: at most one run at a time, runs at least interval_ms apart
 * (start to start), a change waits settle_ms for others to join it, and after failures the
 * interval doubles per consecutive failure up to max_backoff_ms. Changes during a run make one
 * more run after it. Times are the caller's monotonic milliseconds.
 */
struct outrule_gate {
	uint64_t interval_ms, settle_ms, max_backoff_ms;
	bool pending;  /* a change has not been handed to a run yet */
	bool running;  /* a run started and has not finished */
	bool ever_run; /* last_start_ms is meaningful */
	uint64_t last_start_ms;
	uint64_t changed_ms; /* the first change not yet handed to a run */
	unsigned failures;   /* consecutive failed runs */
};

void outrule_gate_init(struct outrule_gate *g, uint64_t interval_ms, uint64_t settle_ms,
		       uint64_t max_backoff_ms);
/* Something the command should act on changed at now_ms. */
void outrule_gate_change(struct outrule_gate *g, uint64_t now_ms);
/* When the next run may start: UINT64_MAX when none is wanted or one is running. */
uint64_t outrule_gate_due_ms(const struct outrule_gate *g);
/* A run starts at now_ms (the caller checked due ≤ now): the pending changes are its work. */
void outrule_gate_started(struct outrule_gate *g, uint64_t now_ms);
/* The run finished; a failed one makes its changes pending again. */
void outrule_gate_finished(struct outrule_gate *g, uint64_t now_ms, bool ok);
