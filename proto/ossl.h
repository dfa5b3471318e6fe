/* SPDX-License-Identifier: Apache-2.0 */
/*
 * For proto/ only: the small OpenSSL vocabulary shared by certid.c, ocsp.c and pki.c — cleanup
 * helpers, a DER header writer, and conversions of ASN.1 times and names. Never include this
 * outside proto/ (OpenSSL types stop at proto's public headers).
 */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/x509.h>

#include "proto/macro.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(X509 *, X509_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(BIO *, BIO_free);

static inline void openssl_freep(unsigned char **p)
{
	OPENSSL_free(*p);
}

/* Writes a DER tag and definite length at p (room for 4 bytes); len must be below 65536.
 * Returns the bytes written. */
size_t ossl_der_header(uint8_t *p, uint8_t tag, size_t len);

/* An ASN.1 time as Unix seconds (UTC, no clock, no time zone). Errors: -EBADMSG. */
int ossl_time_unix(const ASN1_TIME *t, int64_t *ret);

/* A name in RFC 2253 form, newly allocated ("" if it cannot be printed). */
char *ossl_name_rfc2253(const X509_NAME *name);
