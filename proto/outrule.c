/* SPDX-License-Identifier: Apache-2.0 */
#include "proto/outrule.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

bool outrule_match(const char *match, const char *cert_path)
{
	size_t m = strlen(match);
	while (m > 1 && match[m - 1] == '/')
		m--;
	if (m == 0 || strncmp(match, cert_path, m) != 0)
		return false;
	if (cert_path[m] == 0)
		return true;
	/* "/" matches everything absolute; otherwise the next byte must start a component. */
	return cert_path[m] == '/' || (m == 1 && match[0] == '/');
}

enum var {
	VAR_PATH,
	VAR_DIR,
	VAR_FILE,
	VAR_STEM,
	VAR_SERIAL,
	VAR_COUNT
};
static const char *const var_names[VAR_COUNT] = {"path", "dir", "file", "stem", "serial"};

/* The variable named by tmpl[0..] (just after '{'), its length through '}' in *ret_len. */
static int var_at(const char *p, size_t *ret_len)
{
	const char *close = strchr(p, '}');
	if (!close)
		return -1;
	size_t n = (size_t)(close - p);
	for (int v = 0; v < VAR_COUNT; v++)
		if (strlen(var_names[v]) == n && memcmp(var_names[v], p, n) == 0) {
			*ret_len = n + 1;
			return v;
		}
	return -1;
}

int outrule_check(const char *tmpl, char *errbuf, size_t errlen)
{
	size_t len;
	int first = -1;

	if (!tmpl || !tmpl[0]) {
		snprintf(errbuf, errlen, "empty file name");
		return -EINVAL;
	}
	for (const char *p = tmpl; *p; p++) {
		if (*p == '}') {
			snprintf(errbuf, errlen, "'}' without '{' in '%.200s'", tmpl);
			return -EINVAL;
		}
		if (*p != '{')
			continue;
		int v = var_at(p + 1, &len);
		if (v < 0) {
			snprintf(errbuf, errlen,
				 "unknown or unclosed variable in '%.200s' (known: {path} {dir} "
				 "{file} {stem} {serial})",
				 tmpl);
			return -EINVAL;
		}
		if (p == tmpl)
			first = v;
		p += len;
	}
	if (tmpl[0] != '/' && first != VAR_PATH && first != VAR_DIR) {
		snprintf(errbuf, errlen,
			 "'%.200s' is not absolute: start it with '/', {path} or {dir}", tmpl);
		return -EINVAL;
	}
	return 0;
}

/* An absolute path naming a file: no empty, "." or ".." component, no trailing '/'. */
static bool path_ok(const char *p, size_t n)
{
	if (n < 2 || p[0] != '/' || p[n - 1] == '/')
		return false;
	size_t i = 1;
	while (i <= n) {
		size_t j = i;
		while (j < n && p[j] != '/')
			j++;
		size_t c = j - i;
		if (c == 0 || (c == 1 && p[i] == '.') || (c == 2 && p[i] == '.' && p[i + 1] == '.'))
			return false;
		i = j + 1;
	}
	return memchr(p, 0, n) == NULL;
}

int outrule_expand(const char *tmpl, const char *cert_path, const char *serial_hex, struct buf *out)
{
	char err[8];
	size_t len = 0, mark = out->len;
	const char *slash = strrchr(cert_path, '/');
	const char *file = slash ? slash + 1 : cert_path;
	const char *dot = strrchr(file, '.');
	size_t dir_len = slash ? (slash == cert_path ? 1 : (size_t)(slash - cert_path)) : 1;
	const char *dir = slash ? cert_path : ".";
	size_t stem_len = dot && dot != file ? (size_t)(dot - file) : strlen(file);

	if (outrule_check(tmpl, err, sizeof(err)) < 0)
		return -EINVAL;
	for (const char *p = tmpl; *p; p++) {
		if (*p != '{') {
			buf_append_byte(out, (uint8_t)*p);
			continue;
		}
		int v = var_at(p + 1, &len);
		switch (v) {
		case VAR_PATH:
			buf_append_str(out, cert_path);
			break;
		case VAR_DIR:
			/* The root directory: "{dir}/x" must give "/x", not "//x". */
			if (!(dir_len == 1 && dir[0] == '/'))
				buf_append(out, dir, dir_len);
			break;
		case VAR_FILE:
			buf_append_str(out, file);
			break;
		case VAR_STEM:
			buf_append(out, file, stem_len);
			break;
		default:
			buf_append_str(out, serial_hex ? serial_hex : "");
			break;
		}
		p += len;
	}
	if (!path_ok((const char *)out->data + mark, out->len - mark)) {
		out->len = mark;
		return -EINVAL;
	}
	buf_append_byte(out, 0);
	out->len--;
	return 0;
}

void outrule_gate_init(struct outrule_gate *g, uint64_t interval_ms, uint64_t settle_ms,
		       uint64_t max_backoff_ms)
{
	*g = (struct outrule_gate){
		.interval_ms = interval_ms,
		.settle_ms = settle_ms,
		.max_backoff_ms = max_backoff_ms < interval_ms ? interval_ms : max_backoff_ms,
	};
}

void outrule_gate_change(struct outrule_gate *g, uint64_t now_ms)
{
	if (!g->pending)
		g->changed_ms = now_ms;
	g->pending = true;
}

uint64_t outrule_gate_due_ms(const struct outrule_gate *g)
{
	if (!g->pending || g->running)
		return UINT64_MAX;
	uint64_t due = g->changed_ms + g->settle_ms;
	if (g->ever_run) {
		uint64_t gap = g->interval_ms;
		for (unsigned i = 0; i < g->failures && gap < g->max_backoff_ms; i++)
			gap *= 2;
		if (gap > g->max_backoff_ms)
			gap = g->max_backoff_ms;
		if (g->last_start_ms + gap > due)
			due = g->last_start_ms + gap;
	}
	return due;
}

void outrule_gate_started(struct outrule_gate *g, uint64_t now_ms)
{
	g->pending = false;
	g->running = true;
	g->ever_run = true;
	g->last_start_ms = now_ms;
}

void outrule_gate_finished(struct outrule_gate *g, uint64_t now_ms, bool ok)
{
	g->running = false;
	if (ok) {
		g->failures = 0;
		return;
	}
	g->failures++;
	if (!g->pending)
		g->changed_ms = now_ms;
	g->pending = true;
}
