/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Certificates as stapled sees them: parsed from files' bytes (PEM with any number of
 * certificates, DER, PKCS#7 in DER or PEM), identified by content, and asked the few questions
 * stapled needs (serial, issuer, OCSP and caIssuers URLs, must-staple, CertIDs).
 *
 * struct pki_cert is reference counted and immutable after parsing, so several owners (the
 * inventory, the issuer store, a cache entry) can share one. Pure: no I/O, no clock.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/certid.h"
#include "proto/macro.h"

struct pki_cert;

/*
 * Parses every certificate in `data`: one or more PEM "CERTIFICATE" blocks (other PEM blocks,
 * e.g. private keys, are skipped), a single DER certificate, or a PKCS#7 SignedData bundle (DER
 * or PEM "PKCS7"). On success *ret_certs is a newly allocated array of *ret_n (≥ 1) references,
 * in file order; free with pki_certs_free().
 * Errors: -EBADMSG nothing parseable as a certificate; -EMSGSIZE more than 64 certificates.
 */
int pki_certs_parse(const uint8_t *data, size_t len, struct pki_cert ***ret_certs, size_t *ret_n);
void pki_certs_free(struct pki_cert **certs, size_t n);

struct pki_cert *pki_cert_ref(struct pki_cert *c);
struct pki_cert *pki_cert_unref(struct pki_cert *c); /* returns NULL */
DEFINE_TRIVIAL_CLEANUP_FUNC(struct pki_cert *, pki_cert_unref);

/*
 * Drops the parsed form of a leaf certificate (several KiB), keeping its DER and every extracted
 * field. Calls that need the parsed form afterwards (issuer checks) decode the DER again, which
 * costs tens of microseconds: call this once a certificate has been placed. No-op for CA
 * certificates. Not a visible change: the certificate stays immutable.
 */
void pki_cert_compact(struct pki_cert *c);
/*
 * A leaf certificate placed for good under `issuer` (verified by the caller): drops its parsed
 * form and its DER (the largest parts of an entry's memory), keeping every extracted field and
 * the issuer's fingerprint. Afterwards pki_cert_issued_by() answers from that fingerprint (true
 * only for the issuer it was placed under), pki_cert_der() gives NULL and pki_cert_pem() writes
 * nothing; pki_certid() still works (it needs only the serial). No-op for CA certificates.
 */
void pki_cert_place(struct pki_cert *c, const struct pki_cert *issuer);

/* SHA-256 of the certificate's DER: its identity, whatever file it came from. */
const uint8_t *pki_cert_fingerprint(const struct pki_cert *c); /* 32 bytes */
/* NULL (length 0) once the certificate has been placed (pki_cert_place). */
const uint8_t *pki_cert_der(const struct pki_cert *c, size_t *ret_len);
/* The serial number's INTEGER content octets (as a CertID carries them); length 0 when longer
 * than CERTID_SERIAL_MAX. Owned by the cert. */
const uint8_t *pki_cert_serial(const struct pki_cert *c, size_t *ret_len);
/* Appends the certificate as one PEM "CERTIFICATE" block (64-column base64) to out. */
struct buf;
void pki_cert_pem(const struct pki_cert *c, struct buf *out);
/* One-line RFC 2253 subject, for logs. Owned by the cert. */
const char *pki_cert_subject(const struct pki_cert *c);
bool pki_cert_is_ca(const struct pki_cert *c);
/* notBefore / notAfter as Unix seconds. */
int64_t pki_cert_not_before(const struct pki_cert *c);
int64_t pki_cert_not_after(const struct pki_cert *c);
/* TLS feature extension (RFC 7633) with status_request: the certificate is "must-staple". */
bool pki_cert_is_must_staple(const struct pki_cert *c);

/* The AIA OCSP URLs (in certificate order) and caIssuers URLs. Owned by the cert. */
size_t pki_cert_ocsp_urls(const struct pki_cert *c, const char *const **ret_urls);
size_t pki_cert_ca_issuers_urls(const struct pki_cert *c, const char *const **ret_urls);

/*
 * Whether `issuer` issued `c`: subject/issuer names match and c's signature verifies with
 * issuer's key. (Authority/subject key identifiers are used only to skip obvious mismatches.)
 */
bool pki_cert_issued_by(const struct pki_cert *c, const struct pki_cert *issuer);

/*
 * The CertID of `c` as issued by `issuer` under `alg`: hashes of issuer's subject name and
 * public key, and c's serial. Errors: -EINVAL unsupported alg; -EMSGSIZE serial over
 * CERTID_SERIAL_MAX.
 */
int pki_certid(const struct pki_cert *c, const struct pki_cert *issuer, enum certid_alg alg,
	       struct certid *ret_id);

/*
 * The issuer-side half of a CertID (name hash and key hash under `alg`) computed from the issuer
 * certificate alone; used to recognise requests for any serial of a known issuer.
 */
int pki_issuer_hashes(const struct pki_cert *issuer, enum certid_alg alg,
		      uint8_t ret_name_hash[CERTID_HASH_MAX],
		      uint8_t ret_key_hash[CERTID_HASH_MAX]);
