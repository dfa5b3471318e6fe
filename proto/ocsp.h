/* SPDX-License-Identifier: Apache-2.0 */
/*
 * OCSP messages (RFC 6960, profiled by RFC 5019): parsing requests, building requests, and the
 * validation that makes stapled the gatekeeper (DESIGN §3.3). Pure: "now" is an argument.
 *
 * Glossary
 *   response status  the outer OCSPResponseStatus: successful(0), malformedRequest(1),
 *                    internalError(2), tryLater(3), sigRequired(5), unauthorized(6).
 *   cert status      good / revoked / unknown, from the SingleResponse.
 *   delegated signer a responder certificate issued directly by the CA with the
 *                    id-kp-OCSPSigning extended key usage (RFC 6960 §4.2.2.2).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/buf.h"
#include "proto/certid.h"
#include "proto/pki.h"

/* Largest OCSP request body stapled accepts (a request for one cert is ~70–120 bytes). */
#define OCSP_REQUEST_MAX_BYTES 16384

struct ocsp_request {
	struct certid id; /* the (single) CertID asked for */
	bool has_nonce;	  /* the request carries the nonce extension (answered from cache anyway) */
	bool has_other_ext;
};

/*
 * Parses a DER OCSPRequest. Signed requests are accepted (the signature is ignored: RFC 5019
 * responders need not check it).
 * Errors: -EBADMSG not a well-formed OCSPRequest (including trailing bytes);
 *         -EMSGSIZE over OCSP_REQUEST_MAX_BYTES;
 *         -ENOTSUP more than one Request (RFC 5019 §2.1.1: one certificate per request) or a
 *         CertID hash other than SHA-1/256/384/512.
 */
int ocsp_request_parse(const uint8_t *der, size_t len, struct ocsp_request *ret);

/* Encodes a DER OCSPRequest for one CertID, without nonce (RFC 5019). Appends to out. */
int ocsp_request_encode(const struct certid *id, struct buf *out);

/* The fixed DER of an unsuccessful OCSPResponse with the given status (1, 2, 3, 5 or 6). */
const uint8_t *ocsp_error_response(int response_status, size_t *ret_len);

enum ocsp_cert_status {
	OCSP_CERT_GOOD = 0,
	OCSP_CERT_REVOKED = 1,
	OCSP_CERT_UNKNOWN = 2,
};
const char *ocsp_cert_status_name(enum ocsp_cert_status s);
const char *ocsp_response_status_name(int response_status);

/* What the validator is told to accept. */
struct ocsp_policy {
	int64_t max_skew_s; /* thisUpdate may be at most this far in the future (default 300) */
	int64_t default_validity_s; /* nextUpdate absent: 0 = reject, else thisUpdate + this */
	bool allow_revoked;	    /* revoked is a valid answer to staple (default true) */
};

/* Failed checks, as bits of the `failures` out-parameter. */
enum ocsp_check {
	OCSP_CHECK_PARSE = 1u << 0,	      /* not a DER OCSPResponse / BasicOCSPResponse */
	OCSP_CHECK_RESPONSE_STATUS = 1u << 1, /* not successful (tryLater, unauthorized, …) */
	OCSP_CHECK_SIGNATURE = 1u << 2,	      /* signature does not verify with the signer's key */
	OCSP_CHECK_SIGNER = 1u << 3,	      /* signer is neither the issuer nor a delegated signer
						 of it (with id-kp-OCSPSigning) */
	OCSP_CHECK_SIGNER_VALIDITY = 1u << 4, /* delegated signer certificate not valid at `now` */
	OCSP_CHECK_COUNT = 1u << 5,	      /* not exactly one SingleResponse */
	OCSP_CHECK_CERTID = 1u << 6,	     /* the SingleResponse is not for the expected CertID */
	OCSP_CHECK_STATUS = 1u << 7,	     /* cert status unknown, or revoked and not allowed */
	OCSP_CHECK_NOT_YET_VALID = 1u << 8,  /* thisUpdate > now + max_skew */
	OCSP_CHECK_NO_NEXT_UPDATE = 1u << 9, /* nextUpdate absent and no default validity */
	OCSP_CHECK_EXPIRED = 1u << 10,	     /* nextUpdate <= now */
	OCSP_CHECK_NO_ISSUER = 1u << 11, /* no issuer given: the signature could not be checked */
};
/* Name of a single check bit, e.g. "signature". */
const char *ocsp_check_name(unsigned check_bit);

/* What a response says, filled as far as it could be parsed. */
struct ocsp_info {
	int response_status; /* -1 if not even the outer structure parsed */
	enum ocsp_cert_status cert_status;
	int revocation_reason; /* CRLReason, -1 if absent */
	int64_t revocation_unix;
	int64_t produced_at_unix;
	int64_t this_update_unix;
	int64_t next_update_unix; /* effective: the default validity applied if absent */
	bool next_update_present;
	size_t single_count;
	bool signer_is_issuer; /* signed by the CA key itself */
	bool signer_delegated; /* signed by an id-kp-OCSPSigning certificate of the CA */
	char signer[256];      /* subject of the signing certificate, "" if unknown */
	struct certid id;      /* CertID of the first SingleResponse */
	bool has_id;
};

/*
 * Parses and validates a DER OCSPResponse at time `now_unix` against DESIGN §3.3:
 * - the outer status is successful and the body a BasicOCSPResponse;
 * - signed by `issuer`, or by a certificate included in the response that `issuer` issued, that
 *   carries id-kp-OCSPSigning and is valid at now (if `issuer` is NULL the signature is not
 *   checked and OCSP_CHECK_NO_ISSUER is reported: callers decide whether that is acceptable);
 * - exactly one SingleResponse, whose CertID equals `expect` (if not NULL);
 * - cert status good or revoked (revoked only if policy->allow_revoked);
 * - thisUpdate ≤ now + max_skew; nextUpdate present (or a default) and > now.
 * Rollback (an older thisUpdate than the cached one) is the cache's rule, not checked here.
 *
 * Always fills *ret_info as far as parsing went and *ret_failures with every failed check.
 * Returns 0 if no check failed, -EBADMSG if the bytes are not an OCSPResponse at all
 * (ret_failures = OCSP_CHECK_PARSE), -EPROTO if parsed but some check failed.
 */
int ocsp_response_check(const uint8_t *der, size_t len, const struct pki_cert *issuer,
			const struct certid *expect, int64_t now_unix,
			const struct ocsp_policy *policy, struct ocsp_info *ret_info,
			uint32_t *ret_failures);

/* Default policy: skew 300 s, nextUpdate required, revoked allowed. */
void ocsp_policy_default(struct ocsp_policy *p);
