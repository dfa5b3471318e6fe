/* SPDX-License-Identifier: Apache-2.0 */
/*
 * LZW, GIF flavour, LSB-first, literal width 8: the format of memberlist's compress messages.
 * Interoperability is defined by Go's compress/lzw, so the edge cases follow it rather than
 * GIF readers: no leading clear code is required, a full table keeps decoding without new
 * entries, and the encoder clears one code early (when the next free code would be 4095).
 */
#include "proto/lzw.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "proto/buf.h"
#include "proto/macro.h"
#include "proto/mem.h"

enum {
	LZW_LITERALS = 256,
	LZW_CLEAR = 256,
	LZW_END = 257,
	LZW_FIRST = 258, /* first table entry */
	LZW_MIN_WIDTH = 9,
	LZW_MAX_WIDTH = 12,
	LZW_CODES = 1 << LZW_MAX_WIDTH,
	/* The encoder clears when its next free code would be this (Go does). */
	LZW_ENC_LIMIT = LZW_CODES - 1,
	LZW_NONE = 0xffff,
};

/* ---- decoding ---- */

/* Each entry is an earlier code (prefix) plus one byte (suffix); length and first byte are kept
 * so an expansion can be written back to front straight into the output. */
struct lzw_table {
	uint16_t prefix[LZW_CODES];
	uint16_t length[LZW_CODES];
	uint8_t suffix[LZW_CODES];
	uint8_t first[LZW_CODES];
};

/* Writes the expansion of code c (length t->length[c]) at p. */
static void lzw_expand(const struct lzw_table *t, unsigned c, uint8_t *p)
{
	size_t i = t->length[c];
	while (c >= LZW_FIRST) {
		p[--i] = t->suffix[c];
		c = t->prefix[c];
	}
	p[--i] = (uint8_t)c;
}

int lzw_decode(const uint8_t *in, size_t len, size_t max_out, struct buf *out)
{
	struct lzw_table t;
	for (unsigned c = 0; c < LZW_LITERALS; c++) {
		t.length[c] = 1;
		t.first[c] = (uint8_t)c;
	}

	const size_t start = out->len;
	size_t pos = 0, produced = 0;
	uint32_t bits = 0;
	unsigned nbits = 0, width = LZW_MIN_WIDTH;
	/* hi: the slot the next entry goes to, less than overflow = 1 << width. last: the previous
	 * code, LZW_NONE right after a clear (or at the start, or when the table is full), when no
	 * entry is to be added. */
	unsigned hi = LZW_END, overflow = 1u << LZW_MIN_WIDTH, last = LZW_NONE;
	int r;

	for (;;) {
		while (nbits < width) {
			if (pos == len) {
				r = -EBADMSG; /* no end code */
				goto fail;
			}
			bits |= (uint32_t)in[pos++] << nbits;
			nbits += 8;
		}
		unsigned code = bits & ((1u << width) - 1);
		bits >>= width;
		nbits -= width;

		if (code == LZW_CLEAR) {
			width = LZW_MIN_WIDTH;
			hi = LZW_END;
			overflow = 1u << LZW_MIN_WIDTH;
			last = LZW_NONE;
			continue;
		}
		if (code == LZW_END)
			break;
		if (code > hi) {
			r = -EBADMSG;
			goto fail;
		}

		/* code == hi with a previous code is the entry being defined right now: the
		 * previous string plus its own first byte. (code == hi without one only happens
		 * with a full table, where entry hi already exists.) */
		bool pending = code == hi && last != LZW_NONE;
		size_t n = pending ? (size_t)t.length[last] + 1 : t.length[code];
		if (n > max_out - produced) {
			r = -EFBIG;
			goto fail;
		}
		buf_reserve(out, n);
		uint8_t *p = out->data + out->len;
		if (pending) {
			lzw_expand(&t, last, p);
			p[n - 1] = t.first[last];
		} else {
			lzw_expand(&t, code, p);
		}
		out->len += n;
		produced += n;

		if (last != LZW_NONE) {
			t.prefix[hi] = (uint16_t)last;
			t.suffix[hi] = p[0];
			t.length[hi] = (uint16_t)(t.length[last] + 1);
			t.first[hi] = t.first[last];
		}
		last = code;
		hi++;
		if (hi == overflow) {
			if (width == LZW_MAX_WIDTH) {
				/* Full: keep the last slot, add nothing until a clear. */
				last = LZW_NONE;
				hi--;
			} else {
				width++;
				overflow <<= 1;
			}
		}
	}
	if (out->data)
		out->data[out->len] = 0;
	return 0;

fail:
	out->len = start;
	if (out->data)
		out->data[start] = 0;
	return r;
}

/* ---- encoding ---- */

/* The dictionary: (code, next byte) -> code, open addressing. At most LZW_ENC_LIMIT - LZW_FIRST
 * entries live at once, so 8192 slots stay under half full. */
enum {
	LZW_HASH_BITS = 13,
	LZW_HASH_SIZE = 1 << LZW_HASH_BITS,
};

struct lzw_slot {
	uint32_t key;  /* code << 8 | byte */
	uint16_t code; /* 0: empty (entries are >= LZW_FIRST) */
};

struct lzw_enc {
	struct buf *out;
	uint32_t bits;
	unsigned nbits, width;
	unsigned hi; /* the last code given to an entry */
	unsigned overflow;
	struct lzw_slot slot[LZW_HASH_SIZE];
};

static unsigned lzw_hash(uint32_t key)
{
	return (key * 0x9e3779b1u) >> (32 - LZW_HASH_BITS);
}

static void lzw_put(struct lzw_enc *e, unsigned code)
{
	e->bits |= (uint32_t)code << e->nbits;
	e->nbits += e->width;
	if (unlikely(e->out->cap - e->out->len < 4))
		buf_reserve(e->out, 4);
	while (e->nbits >= 8) {
		e->out->data[e->out->len++] = (uint8_t)e->bits;
		e->bits >>= 8;
		e->nbits -= 8;
	}
}

static void lzw_reset(struct lzw_enc *e)
{
	e->width = LZW_MIN_WIDTH;
	e->hi = LZW_END;
	e->overflow = 1u << LZW_MIN_WIDTH;
	memset(e->slot, 0, sizeof(e->slot));
}

/* A code went out: the entry it starts (that code's string plus the next byte) gets code
 * hi + 1. Returns false if that reaches LZW_ENC_LIMIT: then a clear went out instead, the table
 * is empty again and the entry is not added. */
static bool lzw_next_entry(struct lzw_enc *e)
{
	e->hi++;
	if (e->hi == e->overflow) {
		e->width++;
		e->overflow <<= 1;
	}
	if (e->hi == LZW_ENC_LIMIT) {
		lzw_put(e, LZW_CLEAR);
		lzw_reset(e);
		return false;
	}
	return true;
}

void lzw_encode(const uint8_t *in, size_t len, struct buf *out)
{
	_cleanup_free_ struct lzw_enc *e = xmalloc(sizeof(*e));
	e->out = out;
	e->bits = 0;
	e->nbits = 0;
	lzw_reset(e);
	/* Typical gossip payloads shrink; the buffer grows if not. */
	buf_reserve(out, len / 2 + 8);

	lzw_put(e, LZW_CLEAR);
	if (len > 0) {
		unsigned code = in[0];
		for (size_t i = 1; i < len; i++) {
			uint32_t key = (uint32_t)code << 8 | in[i];
			unsigned h = lzw_hash(key);
			while (e->slot[h].code && e->slot[h].key != key)
				h = (h + 1) & (LZW_HASH_SIZE - 1);
			if (e->slot[h].code) {
				code = e->slot[h].code;
				continue;
			}
			lzw_put(e, code);
			code = in[i];
			if (lzw_next_entry(e)) {
				e->slot[h].key = key;
				e->slot[h].code = (uint16_t)e->hi;
			}
		}
		lzw_put(e, code);
		lzw_next_entry(e);
	}
	lzw_put(e, LZW_END);
	if (e->nbits > 0)
		out->data[out->len++] = (uint8_t)e->bits;
	out->data[out->len] = 0;
}
