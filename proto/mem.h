/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Allocation that cannot fail: memory is bounded by design (cache byte limit, per-connection and
 * per-message limits), so running out is a fatal condition, reported once and aborted on.
 */
#pragma once

#include <stddef.h>

void *xmalloc(size_t n);
void *xcalloc(size_t nmemb, size_t size);
void *xrealloc(void *p, size_t n);
/* Grow an array: returns p resized to hold at least `need` elements of `size`, updating *cap. */
void *xgrow(void *p, size_t *cap, size_t need, size_t size);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
void *xmemdup(const void *p, size_t n);
