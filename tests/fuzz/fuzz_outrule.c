/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Output templates and matches from the config (untrusted text): the input is
 * "template\0certificate path\0match". outrule_expand either refuses, leaving the buffer as it
 * was, or gives an absolute path without empty, "." or ".." components; a template that
 * outrule_check refuses never expands; outrule_match agrees with a plain prefix rule.
 */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/buf.h"
#include "proto/outrule.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *take(const uint8_t **p, size_t *left)
{
	const uint8_t *z = memchr(*p, 0, *left);
	size_t n = z ? (size_t)(z - *p) : *left;
	char *s = malloc(n + 1);
	memcpy(s, *p, n);
	s[n] = 0;
	*p += z ? n + 1 : n;
	*left -= z ? n + 1 : n;
	return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *p = data;
	size_t left = size;
	char *tmpl = take(&p, &left), *path = take(&p, &left), *match = take(&p, &left);
	char err[128];
	struct buf b = BUF_INIT;

	buf_append_str(&b, "pre");
	int checked = outrule_check(tmpl, err, sizeof(err));
	int r = outrule_expand(tmpl, path, "0A", &b);
	if (checked < 0)
		assert(r < 0);
	if (r < 0) {
		assert(b.len == 3 && memcmp(b.data, "pre", 3) == 0);
	} else {
		const char *out = (const char *)b.data + 3;
		size_t n = b.len - 3;
		assert(strlen(out) == n);
		assert(n >= 2 && out[0] == '/' && out[n - 1] != '/');
		assert(!strstr(out, "//") && !strstr(out, "/./") && !strstr(out, "/../"));
	}
	buf_done(&b);

	bool m = outrule_match(match, path);
	size_t ml = strlen(match);
	while (ml > 1 && match[ml - 1] == '/')
		ml--;
	if (m)
		assert(ml > 0 && strncmp(match, path, ml) == 0);
	if (ml > 0 && strcmp(match, path) == 0)
		assert(m);
	free(tmpl);
	free(path);
	free(match);
	return 0;
}
