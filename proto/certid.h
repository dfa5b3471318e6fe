/* SPDX-License-Identifier: Apache-2.0 */
/*
 * CertID (RFC 6960 §4.1.1): which certificate an OCSP request or SingleResponse is about.
 *
 * Glossary
 *   alg        the hash of the CertID: SHA-1 (what Apache, nginx and most clients send), SHA-256,
 *              SHA-384 or SHA-512. One certificate has one CertID per alg.
 *   name hash  hash of the DER of the issuer's subject Name.
 *   key hash   hash of the issuer's subjectPublicKey BIT STRING contents (no tag, length or
 *              unused-bits byte).
 *   serial     the certificate serial number: the content octets of the DER INTEGER, exactly as
 *              encoded (so 0x00 padding of a positive number with the top bit set is kept).
 *
 * Pure: no I/O, no clock. OpenSSL stays behind this header.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum certid_alg {
	CERTID_SHA1 = 0,
	CERTID_SHA256,
	CERTID_SHA384,
	CERTID_SHA512,
	CERTID_ALG_COUNT,
};

#define CERTID_HASH_MAX 64
/* RFC 5280 caps serials at 20 octets; real-world certificates break that a little. */
#define CERTID_SERIAL_MAX 32

struct certid {
	uint8_t alg; /* enum certid_alg */
	uint8_t serial_len;
	uint8_t name_hash[CERTID_HASH_MAX];
	uint8_t key_hash[CERTID_HASH_MAX];
	uint8_t serial[CERTID_SERIAL_MAX];
};

/* Digest length of alg in bytes (20, 32, 48, 64). */
size_t certid_hash_len(enum certid_alg alg);
/* "sha1", "sha256", … */
const char *certid_alg_name(enum certid_alg alg);

/* Byte-wise equality of alg, both hashes and serial. */
bool certid_equal(const struct certid *a, const struct certid *b);

/*
 * A short, stable, printable name for logs and file names: lowercase hex of the first 8 bytes of
 * the key hash, '-', and the serial in hex (truncated to 40 hex digits). `out` must hold
 * CERTID_SHORT_MAX bytes; returns out.
 */
#define CERTID_SHORT_MAX 64
char *certid_short(const struct certid *id, char out[CERTID_SHORT_MAX]);

/*
 * DER encoding of the CertID SEQUENCE itself (used as a map key by the HAProxy runtime API and in
 * tests). Returns the length written, or -EMSGSIZE if `cap` is too small (256 always suffices).
 */
int certid_encode(const struct certid *id, uint8_t *out, size_t cap);
