/* SPDX-License-Identifier: Apache-2.0 */
/*
 * For proto/ only: the OpenSSL side of struct pki_cert, so the OCSP validator can use an issuer's
 * parsed form instead of decoding it again for every response (an EC key decode alone costs
 * hundreds of microseconds in OpenSSL 3.0). Never include this outside proto/.
 */
#pragma once

#include <stdbool.h>
#include <openssl/x509.h>

#include "proto/pki.h"

/* The parsed certificate if kept (always for CA certificates), else NULL. Borrowed. */
X509 *pki_cert_get0_x509(const struct pki_cert *c);

/*
 * Whether `issuer` issued `c` (names chain and the issuer's key verifies c's signature), with the
 * answer for the last few certificates remembered inside the issuer: a CA's delegated OCSP signer
 * signs every response, and checking its certificate once per signer is enough. The memo only
 * records facts that cannot change (both certificates are immutable), so it is invisible.
 */
bool pki_cert_issued_x509(const struct pki_cert *issuer, X509 *c);
