/* SPDX-License-Identifier: Apache-2.0 */
/*
 * struct buf: a growable byte buffer owned by whoever embeds it. `data` is always NUL-terminated
 * past `len` (when non-NULL) so text can be used directly as a C string.
 */
#pragma once

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/macro.h"

struct buf {
	uint8_t *data;
	size_t len;
	size_t cap;
};

#define BUF_INIT           \
	{                  \
		NULL, 0, 0 \
	}

void buf_init(struct buf *b);
/* Frees the storage; the buffer is left empty and reusable. */
void buf_done(struct buf *b);
/* Drops the contents, keeps the storage. */
void buf_reset(struct buf *b);
/* Ensures room for `extra` more bytes (plus the terminating NUL). */
void buf_reserve(struct buf *b, size_t extra);
void buf_append(struct buf *b, const void *p, size_t n);
void buf_append_str(struct buf *b, const char *s);
void buf_append_byte(struct buf *b, uint8_t c);
void buf_printf(struct buf *b, const char *fmt, ...) _printf_(2, 3);
void buf_vprintf(struct buf *b, const char *fmt, va_list ap) _printf_(2, 0);
/* Removes the first n bytes (n <= len). */
void buf_consume(struct buf *b, size_t n);
/* Hands the storage to the caller (who frees it with free()); the buffer is left empty. */
uint8_t *buf_steal(struct buf *b, size_t *ret_len);

static inline void buf_donep(struct buf *b)
{
	buf_done(b);
}
#define _cleanup_buf_ _cleanup_(buf_donep)
