/* SPDX-License-Identifier: Apache-2.0 */
/*
 * LZW as memberlist uses it for compress messages (type 9, Algo 0): the GIF flavour of LZW with
 * codes packed least-significant bit first, literal width 8 and code widths 9 to 12. Code 256
 * clears the table, code 257 ends the data (GOSSIP.md 1.8).
 *
 * Glossary:
 *   code     a 9- to 12-bit number: a literal byte (0-255), clear (256), end (257), or a table
 *            entry (258-4095) standing for an earlier string plus one byte.
 *   hi       the table slot the next entry goes to; the code width grows when it reaches 2^width.
 *
 * Inputs must not point into `out` (appending may move it). Both functions are pure and
 * bounded: the encoder writes at most 3 * len / 2 + len / 2048 + 8 bytes (12-bit codes, at most
 * one per input byte, plus clears and the end code); the decoder stops at a caller-given size.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "proto/buf.h"

/* The decompressed-size limit GOSSIP.md 1.8 gives for Go receivers: a sensible max_out. */
#define LZW_MAX_OUT (40u * 1024 * 1024)

/*
 * Decodes the LZW data in[0..len) and appends the result to `out`. Accepts exactly what Go's
 * compress/lzw reader (LSB, literal width 8) accepts: a leading clear code is optional, the
 * data must contain the end code, and bytes after the end code are ignored. When the table is
 * full (4096 entries) without a clear code, decoding continues without adding entries, as Go
 * does.
 *
 * The input is borrowed; `out` is the caller's. On error nothing is appended (`out` keeps its
 * contents).
 *
 * Errors:
 *   -EBADMSG  a code that is neither a literal, clear, end nor an existing entry (or the
 *             entry being defined), or the data ends before the end code.
 *   -EFBIG    the decoded data would be longer than max_out bytes.
 */
int lzw_decode(const uint8_t *in, size_t len, size_t max_out, struct buf *out);

/*
 * Encodes in[0..len) and appends the result to `out`, byte for byte what Go's
 * lzw.NewWriter(w, lzw.LSB, 8) writes for one Write of the same bytes followed by Close: a
 * clear code first, a clear code whenever the next free code would be 4095 (and then a fresh
 * table), and at the end the pending code, the end code and zero bits up to a byte boundary.
 * Empty input gives the three bytes 00 03 02 (clear, end).
 *
 * The input is borrowed; `out` is the caller's. Cannot fail (allocation failure aborts).
 */
void lzw_encode(const uint8_t *in, size_t len, struct buf *out);
