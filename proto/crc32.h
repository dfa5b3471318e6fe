/* SPDX-License-Identifier: Apache-2.0 */
/*
 * CRC-32/IEEE (reflected polynomial 0xedb88320, initial and final XOR 0xffffffff): the checksum
 * of memberlist's CRC messages (type 12, GOSSIP.md P3), the same as Go's crc32.ChecksumIEEE and
 * zlib's crc32(). Pure; the input is borrowed.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "proto/macro.h"

/* The CRC of p[0..n). crc32_ieee(NULL, 0) is 0; "123456789" gives 0xcbf43926. */
uint32_t crc32_ieee(const uint8_t *p, size_t n) _pure_;

/* Continues a CRC over more bytes, as zlib's crc32(crc, p, n): start from 0, and
 * crc32_update(crc32_ieee(a, na), b, nb) is the CRC of a followed by b. */
uint32_t crc32_update(uint32_t crc, const uint8_t *p, size_t n) _pure_;
