/* SPDX-License-Identifier: Apache-2.0 */
#include "proto/ocsp.h"
#include "proto/pki_internal.h"
#include "proto/ossl.h"

#include <errno.h>
#include <limits.h>
#include <string.h>

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/ocsp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "proto/macro.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(OCSP_REQUEST *, OCSP_REQUEST_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(OCSP_RESPONSE *, OCSP_RESPONSE_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(OCSP_BASICRESP *, OCSP_BASICRESP_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(EXTENDED_KEY_USAGE *, EXTENDED_KEY_USAGE_free);

/* Content octets of a DER INTEGER as OpenSSL re-encodes it (minimal two's complement). */
static int integer_content(const ASN1_INTEGER *i, uint8_t *out, size_t cap, size_t *ret_len)
{
	_cleanup_(openssl_freep) unsigned char *der = NULL;
	int n = i2d_ASN1_INTEGER(i, &der);
	if (n < 2) {
		ERR_clear_error();
		return -EBADMSG;
	}
	size_t hdr = 2;
	if (der[1] & 0x80)
		hdr += der[1] & 0x7f;
	if ((size_t)n <= hdr)
		return -EBADMSG;
	size_t len = (size_t)n - hdr;
	if (len > cap)
		return -EMSGSIZE;
	memcpy(out, der + hdr, len);
	*ret_len = len;
	return 0;
}

/*
 * Errors: -ENOTSUP hash other than SHA-1/256/384/512 or a serial over CERTID_SERIAL_MAX;
 * -EBADMSG hash lengths that do not match the algorithm.
 */
static int certid_from_openssl(const OCSP_CERTID *cid, struct certid *ret)
{
	ASN1_OCTET_STRING *name_hash, *key_hash;
	ASN1_OBJECT *md;
	ASN1_INTEGER *serial;
	struct certid id = {0};
	int r;

	if (!OCSP_id_get0_info(&name_hash, &md, &key_hash, &serial, (OCSP_CERTID *)cid)) {
		ERR_clear_error();
		return -EBADMSG;
	}
	switch (OBJ_obj2nid(md)) {
	case NID_sha1:
		id.alg = CERTID_SHA1;
		break;
	case NID_sha256:
		id.alg = CERTID_SHA256;
		break;
	case NID_sha384:
		id.alg = CERTID_SHA384;
		break;
	case NID_sha512:
		id.alg = CERTID_SHA512;
		break;
	default:
		return -ENOTSUP;
	}
	size_t hl = certid_hash_len(id.alg);
	if ((size_t)ASN1_STRING_length(name_hash) != hl ||
	    (size_t)ASN1_STRING_length(key_hash) != hl)
		return -EBADMSG;
	memcpy(id.name_hash, ASN1_STRING_get0_data(name_hash), hl);
	memcpy(id.key_hash, ASN1_STRING_get0_data(key_hash), hl);

	size_t sl;
	r = integer_content(serial, id.serial, sizeof(id.serial), &sl);
	if (r == -EMSGSIZE)
		return -ENOTSUP;
	if (r < 0)
		return r;
	id.serial_len = (uint8_t)sl;
	*ret = id;
	return 0;
}

int ocsp_request_parse(const uint8_t *der, size_t len, struct ocsp_request *ret)
{
	if (len > OCSP_REQUEST_MAX_BYTES)
		return -EMSGSIZE;
	if (len == 0)
		return -EBADMSG;

	const unsigned char *p = der;
	_cleanup_(OCSP_REQUEST_freep) OCSP_REQUEST *req = d2i_OCSP_REQUEST(NULL, &p, (long)len);
	if (!req) {
		ERR_clear_error();
		return -EBADMSG;
	}
	if (p != der + len)
		return -EBADMSG;

	int n = OCSP_request_onereq_count(req);
	if (n <= 0)
		return -EBADMSG;
	if (n > 1)
		return -ENOTSUP;

	OCSP_ONEREQ *one = OCSP_request_onereq_get0(req, 0);
	struct ocsp_request r = {0};
	int k = certid_from_openssl(OCSP_onereq_get0_id(one), &r.id);
	if (k < 0)
		return k;

	int ext_count = OCSP_REQUEST_get_ext_count(req);
	r.has_nonce = OCSP_REQUEST_get_ext_by_NID(req, NID_id_pkix_OCSP_Nonce, -1) >= 0;
	r.has_other_ext = ext_count > (r.has_nonce ? 1 : 0) || OCSP_ONEREQ_get_ext_count(one) > 0;
	*ret = r;
	return 0;
}

int ocsp_request_encode(const struct certid *id, struct buf *out)
{
	uint8_t cid[256];
	int n = certid_encode(id, cid, sizeof(cid));
	if (n < 0)
		return n;

	/* OCSPRequest { TBSRequest { requestList SEQUENCE OF { Request { reqCert } } } } */
	uint8_t hdr[3][4];
	size_t hdr_len[3];
	size_t inner = (size_t)n;
	for (int i = 2; i >= 0; i--) {
		hdr_len[i] = ossl_der_header(hdr[i], 0x30, inner);
		inner += hdr_len[i];
	}
	uint8_t top[4];
	size_t top_len = ossl_der_header(top, 0x30, inner);

	buf_append(out, top, top_len);
	for (int i = 0; i < 3; i++)
		buf_append(out, hdr[i], hdr_len[i]);
	buf_append(out, cid, (size_t)n);
	return 0;
}

static const uint8_t error_responses[7][5] = {
	[1] = {0x30, 0x03, 0x0a, 0x01, 0x01}, [2] = {0x30, 0x03, 0x0a, 0x01, 0x02},
	[3] = {0x30, 0x03, 0x0a, 0x01, 0x03}, [5] = {0x30, 0x03, 0x0a, 0x01, 0x05},
	[6] = {0x30, 0x03, 0x0a, 0x01, 0x06},
};

const uint8_t *ocsp_error_response(int response_status, size_t *ret_len)
{
	switch (response_status) {
	case 1:
	case 2:
	case 3:
	case 5:
	case 6:
		*ret_len = sizeof(error_responses[0]);
		return error_responses[response_status];
	default:
		return NULL;
	}
}

const char *ocsp_cert_status_name(enum ocsp_cert_status s)
{
	switch (s) {
	case OCSP_CERT_GOOD:
		return "good";
	case OCSP_CERT_REVOKED:
		return "revoked";
	case OCSP_CERT_UNKNOWN:
		return "unknown";
	}
	return "invalid";
}

const char *ocsp_response_status_name(int response_status)
{
	switch (response_status) {
	case 0:
		return "successful";
	case 1:
		return "malformedRequest";
	case 2:
		return "internalError";
	case 3:
		return "tryLater";
	case 5:
		return "sigRequired";
	case 6:
		return "unauthorized";
	default:
		return "invalid";
	}
}

const char *ocsp_check_name(unsigned check_bit)
{
	switch (check_bit) {
	case OCSP_CHECK_PARSE:
		return "parse";
	case OCSP_CHECK_RESPONSE_STATUS:
		return "response-status";
	case OCSP_CHECK_SIGNATURE:
		return "signature";
	case OCSP_CHECK_SIGNER:
		return "signer";
	case OCSP_CHECK_SIGNER_VALIDITY:
		return "signer-validity";
	case OCSP_CHECK_COUNT:
		return "count";
	case OCSP_CHECK_CERTID:
		return "certid";
	case OCSP_CHECK_STATUS:
		return "status";
	case OCSP_CHECK_NOT_YET_VALID:
		return "not-yet-valid";
	case OCSP_CHECK_NO_NEXT_UPDATE:
		return "no-next-update";
	case OCSP_CHECK_EXPIRED:
		return "expired";
	case OCSP_CHECK_NO_ISSUER:
		return "no-issuer";
	default:
		return "invalid";
	}
}

void ocsp_policy_default(struct ocsp_policy *p)
{
	*p = (struct ocsp_policy){
		.max_skew_s = 300,
		.default_validity_s = 0,
		.allow_revoked = true,
	};
}

/* Days since 1970-01-01 of a proleptic Gregorian date, independent of any time zone. */
static void name_rfc2253(const X509_NAME *name, char *out, size_t cap)
{
	_cleanup_free_ char *full = ossl_name_rfc2253(name);
	size_t l = MIN(strlen(full), cap - 1);
	memcpy(out, full, l);
	out[l] = '\0';
}

/* Whether `c` is the certificate the ResponderID names (RFC 6960 §4.2.2.3). */
static bool responder_id_matches(X509 *c, const ASN1_OCTET_STRING *key_id, const X509_NAME *name)
{
	if (name)
		return X509_NAME_cmp(X509_get_subject_name(c), name) == 0;
	if (!key_id || ASN1_STRING_length(key_id) != SHA_DIGEST_LENGTH)
		return false;
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int md_len;
	if (!X509_pubkey_digest(c, EVP_sha1(), md, &md_len)) {
		ERR_clear_error();
		return false;
	}
	return md_len == SHA_DIGEST_LENGTH &&
	       memcmp(md, ASN1_STRING_get0_data(key_id), SHA_DIGEST_LENGTH) == 0;
}

static bool signature_verifies(OCSP_BASICRESP *bs, X509 *signer)
{
	EVP_PKEY *key = X509_get0_pubkey(signer);
	if (!key) {
		ERR_clear_error();
		return false;
	}
	int r = ASN1_item_verify(ASN1_ITEM_rptr(OCSP_RESPDATA), OCSP_resp_get0_tbs_sigalg(bs),
				 OCSP_resp_get0_signature(bs), OCSP_resp_get0_respdata(bs), key);
	if (r != 1) {
		ERR_clear_error();
		return false;
	}
	return true;
}

static bool same_key(X509 *a, X509 *b)
{
	EVP_PKEY *ka = X509_get0_pubkey(a), *kb = X509_get0_pubkey(b);
	bool eq = ka && kb && EVP_PKEY_eq(ka, kb) == 1;
	ERR_clear_error();
	return eq;
}

static bool has_ocsp_signing(X509 *c)
{
	_cleanup_(EXTENDED_KEY_USAGE_freep) EXTENDED_KEY_USAGE *eku =
		X509_get_ext_d2i(c, NID_ext_key_usage, NULL, NULL);
	if (!eku) {
		ERR_clear_error();
		return false;
	}
	for (int i = 0; i < sk_ASN1_OBJECT_num(eku); i++)
		if (OBJ_obj2nid(sk_ASN1_OBJECT_value(eku, i)) == NID_OCSP_sign)
			return true;
	return false;
}

static uint32_t check_signer(OCSP_BASICRESP *bs, const struct pki_cert *issuer, int64_t now,
			     struct ocsp_info *info)
{
	/* Issuers are CA certificates, which keep their parsed form; decode only otherwise. */
	_cleanup_(X509_freep) X509 *decoded = NULL;
	X509 *ca = pki_cert_get0_x509(issuer);
	if (!ca) {
		size_t der_len;
		const unsigned char *p = pki_cert_der(issuer, &der_len);
		ca = decoded = d2i_X509(NULL, &p, (long)der_len);
	}
	if (!ca) {
		ERR_clear_error();
		return OCSP_CHECK_SIGNER;
	}

	const ASN1_OCTET_STRING *key_id = NULL;
	const X509_NAME *name = NULL;
	if (!OCSP_resp_get0_id(bs, &key_id, &name)) {
		ERR_clear_error();
		return OCSP_CHECK_SIGNER;
	}

	/*
	 * Candidates: the issuer first, then the certificates the response carries. Several may
	 * carry the named subject (a forged copy of the CA name, say): the signer is the first
	 * whose key verifies the signature.
	 */
	const STACK_OF(X509) *certs = OCSP_resp_get0_certs(bs);
	int n = sk_X509_num(certs);
	X509 *matched = NULL, *signer = NULL;
	for (int i = -1; i < n && !signer; i++) {
		X509 *c = i < 0 ? ca : sk_X509_value(certs, i);
		if (!c || !responder_id_matches(c, key_id, name))
			continue;
		if (!matched)
			matched = c;
		if (signature_verifies(bs, c))
			signer = c;
	}
	if (!matched)
		return OCSP_CHECK_SIGNER;

	uint32_t f = 0;
	if (!signer) {
		f |= OCSP_CHECK_SIGNATURE;
		signer = matched;
	}
	name_rfc2253(X509_get_subject_name(signer), info->signer, sizeof(info->signer));

	if (X509_cmp(signer, ca) == 0 || same_key(signer, ca)) {
		info->signer_is_issuer = true;
		return f;
	}
	if (!pki_cert_issued_x509(issuer, signer) || !has_ocsp_signing(signer))
		return f | OCSP_CHECK_SIGNER;

	info->signer_delegated = true;
	int64_t nb, na;
	if (ossl_time_unix(X509_get0_notBefore(signer), &nb) < 0 ||
	    ossl_time_unix(X509_get0_notAfter(signer), &na) < 0 || now < nb || now > na)
		f |= OCSP_CHECK_SIGNER_VALIDITY;
	return f;
}

static uint32_t check_single(OCSP_BASICRESP *bs, const struct certid *expect, int64_t now,
			     const struct ocsp_policy *policy, struct ocsp_info *info)
{
	OCSP_SINGLERESP *single = OCSP_resp_get0(bs, 0);
	if (!single)
		return OCSP_CHECK_PARSE;

	uint32_t f = 0;
	info->has_id = certid_from_openssl(OCSP_SINGLERESP_get0_id(single), &info->id) == 0;
	if (expect && (!info->has_id || !certid_equal(expect, &info->id)))
		f |= OCSP_CHECK_CERTID;

	int reason = -1;
	ASN1_GENERALIZEDTIME *rev = NULL, *this_update = NULL, *next_update = NULL;
	int st = OCSP_single_get0_status(single, &reason, &rev, &this_update, &next_update);
	switch (st) {
	case V_OCSP_CERTSTATUS_GOOD:
		info->cert_status = OCSP_CERT_GOOD;
		break;
	case V_OCSP_CERTSTATUS_REVOKED:
		info->cert_status = OCSP_CERT_REVOKED;
		info->revocation_reason = reason;
		if (ossl_time_unix(rev, &info->revocation_unix) < 0)
			f |= OCSP_CHECK_PARSE;
		if (!policy->allow_revoked)
			f |= OCSP_CHECK_STATUS;
		break;
	case V_OCSP_CERTSTATUS_UNKNOWN:
		info->cert_status = OCSP_CERT_UNKNOWN;
		f |= OCSP_CHECK_STATUS;
		break;
	default:
		ERR_clear_error();
		return f | OCSP_CHECK_PARSE;
	}

	if (ossl_time_unix(this_update, &info->this_update_unix) < 0)
		return f | OCSP_CHECK_PARSE;
	if (info->this_update_unix > now + policy->max_skew_s)
		f |= OCSP_CHECK_NOT_YET_VALID;

	if (next_update) {
		info->next_update_present = true;
		if (ossl_time_unix(next_update, &info->next_update_unix) < 0)
			return f | OCSP_CHECK_PARSE;
	} else if (policy->default_validity_s > 0) {
		info->next_update_unix = info->this_update_unix + policy->default_validity_s;
	} else {
		return f | OCSP_CHECK_NO_NEXT_UPDATE;
	}
	if (info->next_update_unix <= now)
		f |= OCSP_CHECK_EXPIRED;
	return f;
}

int ocsp_response_check(const uint8_t *der, size_t len, const struct pki_cert *issuer,
			const struct certid *expect, int64_t now_unix,
			const struct ocsp_policy *policy, struct ocsp_info *ret_info,
			uint32_t *ret_failures)
{
	struct ocsp_policy def;
	if (!policy) {
		ocsp_policy_default(&def);
		policy = &def;
	}

	struct ocsp_info info = {
		.response_status = -1,
		.cert_status = OCSP_CERT_UNKNOWN,
		.revocation_reason = -1,
	};
	uint32_t f = 0;
	_cleanup_(OCSP_RESPONSE_freep) OCSP_RESPONSE *resp = NULL;
	_cleanup_(OCSP_BASICRESP_freep) OCSP_BASICRESP *bs = NULL;

	const unsigned char *p = der;
	if (len == 0 || len > LONG_MAX || !(resp = d2i_OCSP_RESPONSE(NULL, &p, (long)len)) ||
	    p != der + len) {
		ERR_clear_error();
		f = OCSP_CHECK_PARSE;
		goto out;
	}
	info.response_status = OCSP_response_status(resp);
	if (info.response_status != OCSP_RESPONSE_STATUS_SUCCESSFUL) {
		f = OCSP_CHECK_RESPONSE_STATUS;
		goto out;
	}
	bs = OCSP_response_get1_basic(resp);
	if (!bs) {
		ERR_clear_error();
		f = OCSP_CHECK_PARSE;
		goto out;
	}
	if (ossl_time_unix(OCSP_resp_get0_produced_at(bs), &info.produced_at_unix) < 0)
		f |= OCSP_CHECK_PARSE;

	int n = OCSP_resp_count(bs);
	info.single_count = n > 0 ? (size_t)n : 0;
	if (n != 1)
		f |= OCSP_CHECK_COUNT;
	if (n >= 1)
		f |= check_single(bs, expect, now_unix, policy, &info);
	else if (expect)
		f |= OCSP_CHECK_CERTID;

	if (issuer)
		f |= check_signer(bs, issuer, now_unix, &info);
	else
		f |= OCSP_CHECK_NO_ISSUER;

out:
	*ret_info = info;
	*ret_failures = f;
	if (f == 0)
		return 0;
	return f & OCSP_CHECK_PARSE ? -EBADMSG : -EPROTO;
}
