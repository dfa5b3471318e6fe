/* SPDX-License-Identifier: Apache-2.0 */
/*
 * For unit tests: reads a file of tests/fixtures (FIXTURES is set by the test's meson.build).
 * Fails the running cmocka test if the file cannot be opened. Include after <cmocka.h>.
 */
#pragma once

#include <stdio.h>

#include "proto/buf.h"

/* The whole file, newly allocated (free()); its length in *ret_len. */
static inline uint8_t *fixture_load(const char *name, size_t *ret_len)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%s", FIXTURES, name);
	FILE *f = fopen(path, "rb");
	if (!f)
		fail_msg("cannot open %s", path);
	struct buf b = BUF_INIT;
	uint8_t tmp[4096];
	size_t n;
	while ((n = fread(tmp, 1, sizeof(tmp), f)) > 0)
		buf_append(&b, tmp, n);
	fclose(f);
	return buf_steal(&b, ret_len);
}
