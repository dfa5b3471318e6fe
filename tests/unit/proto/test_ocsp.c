/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tests/unit/fixture.h"

#include "proto/buf.h"
#include "proto/mem.h"
#include "proto/ocsp.h"
#include "proto/pki.h"

#define REVOKED_AT_UNIX 1704164645 /* 2024-01-02 03:04:05Z, set in make-fixtures.sh */
#define WEEK		(7 * 86400)

static struct pki_cert *load_cert(const char *name)
{
	size_t len, n;
	_cleanup_free_ uint8_t *data = fixture_load(name, &len);
	struct pki_cert **v;
	assert_int_equal(pki_certs_parse(data, len, &v, &n), 0);
	assert_int_equal(n, 1);
	struct pki_cert *c = pki_cert_ref(v[0]);
	pki_certs_free(v, n);
	return c;
}

struct fx {
	struct pki_cert *root, *intca, *good, *revoked, *unknown, *noaia;
	struct certid good_id, good_id256, revoked_id, unknown_id;
	int64_t this_update; /* of resp-good-sha1.der */
};

static struct fx fx;

static int check(const char *name, const struct pki_cert *issuer, const struct certid *expect,
		 int64_t now, const struct ocsp_policy *policy, struct ocsp_info *info,
		 uint32_t *failures)
{
	size_t len;
	_cleanup_free_ uint8_t *der = fixture_load(name, &len);
	return ocsp_response_check(der, len, issuer, expect, now, policy, info, failures);
}

static int setup(void **state)
{
	fx.root = load_cert("root.crt");
	fx.intca = load_cert("int.crt");
	fx.good = load_cert("good.crt");
	fx.revoked = load_cert("revoked.crt");
	fx.unknown = load_cert("unknown.crt");
	fx.noaia = load_cert("noaia.crt");
	assert_int_equal(pki_certid(fx.good, fx.intca, CERTID_SHA1, &fx.good_id), 0);
	assert_int_equal(pki_certid(fx.good, fx.intca, CERTID_SHA256, &fx.good_id256), 0);
	assert_int_equal(pki_certid(fx.revoked, fx.intca, CERTID_SHA1, &fx.revoked_id), 0);
	assert_int_equal(pki_certid(fx.unknown, fx.intca, CERTID_SHA1, &fx.unknown_id), 0);

	/* The fixtures' times come from their generation; everything else is relative to them. */
	struct ocsp_info info;
	uint32_t f;
	check("resp-good-sha1.der", NULL, NULL, 0, NULL, &info, &f);
	fx.this_update = info.this_update_unix;
	assert_true(fx.this_update > 1700000000);
	return 0;
}

static int teardown(void **state)
{
	pki_cert_unref(fx.root);
	pki_cert_unref(fx.intca);
	pki_cert_unref(fx.good);
	pki_cert_unref(fx.revoked);
	pki_cert_unref(fx.unknown);
	pki_cert_unref(fx.noaia);
	return 0;
}

/* Checks `name` against int and good's SHA-1 CertID one minute after thisUpdate. */
static uint32_t failures_of(const char *name, struct ocsp_info *info)
{
	struct ocsp_info tmp;
	uint32_t f = 0xffffffff;
	int r = check(name, fx.intca, &fx.good_id, fx.this_update + 60, NULL, info ? info : &tmp,
		      &f);
	assert_int_equal(r, f == 0 ? 0 : (f & OCSP_CHECK_PARSE) ? -EBADMSG : -EPROTO);
	return f;
}

static void test_good_sha1(void **state)
{
	struct ocsp_info info;
	assert_int_equal(failures_of("resp-good-sha1.der", &info), 0);
	assert_int_equal(info.response_status, 0);
	assert_int_equal(info.cert_status, OCSP_CERT_GOOD);
	assert_int_equal(info.revocation_reason, -1);
	assert_int_equal(info.single_count, 1);
	assert_true(info.next_update_present);
	assert_int_equal(info.next_update_unix - info.this_update_unix, WEEK);
	assert_true(info.produced_at_unix >= info.this_update_unix);
	assert_true(info.signer_delegated);
	assert_false(info.signer_is_issuer);
	assert_string_equal(info.signer, "CN=Test OCSP Signer,O=stapled test");
	assert_true(info.has_id);
	assert_true(certid_equal(&info.id, &fx.good_id));
}

static void test_good_sha256(void **state)
{
	struct ocsp_info info;
	uint32_t f;
	assert_int_equal(check("resp-good-sha256.der", fx.intca, &fx.good_id256,
			       fx.this_update + 60, NULL, &info, &f),
			 0);
	assert_int_equal(f, 0);
	assert_int_equal(info.id.alg, CERTID_SHA256);
	/* Same certificate, other hash: not the CertID that was asked for. */
	assert_int_equal(failures_of("resp-good-sha256.der", NULL), OCSP_CHECK_CERTID);
}

static void test_revoked(void **state)
{
	struct ocsp_info info;
	uint32_t f;
	struct ocsp_policy p;
	ocsp_policy_default(&p);
	assert_true(p.allow_revoked);
	assert_int_equal(p.max_skew_s, 300);
	assert_int_equal(p.default_validity_s, 0);

	assert_int_equal(check("resp-revoked.der", fx.intca, &fx.revoked_id, fx.this_update + 60,
			       &p, &info, &f),
			 0);
	assert_int_equal(info.cert_status, OCSP_CERT_REVOKED);
	assert_int_equal(info.revocation_reason, 1);
	assert_int_equal(info.revocation_unix, REVOKED_AT_UNIX);

	p.allow_revoked = false;
	assert_int_equal(check("resp-revoked.der", fx.intca, &fx.revoked_id, fx.this_update + 60,
			       &p, &info, &f),
			 -EPROTO);
	assert_int_equal(f, OCSP_CHECK_STATUS);
}

static void test_unknown(void **state)
{
	struct ocsp_info info;
	uint32_t f;
	assert_int_equal(check("resp-unknown.der", fx.intca, &fx.unknown_id, fx.this_update + 60,
			       NULL, &info, &f),
			 -EPROTO);
	assert_int_equal(f, OCSP_CHECK_STATUS);
	assert_int_equal(info.cert_status, OCSP_CERT_UNKNOWN);
}

static void test_error_statuses(void **state)
{
	struct ocsp_info info;
	assert_int_equal(failures_of("resp-trylater.der", &info), OCSP_CHECK_RESPONSE_STATUS);
	assert_int_equal(info.response_status, 3);
	assert_int_equal(failures_of("resp-unauthorized.der", &info), OCSP_CHECK_RESPONSE_STATUS);
	assert_int_equal(info.response_status, 6);
	assert_int_equal(info.single_count, 0);

	static const int statuses[] = {1, 2, 3, 5, 6};
	for (size_t i = 0; i < ARRAY_SIZE(statuses); i++) {
		size_t len = 0;
		const uint8_t *der = ocsp_error_response(statuses[i], &len);
		assert_non_null(der);
		assert_int_equal(len, 5);
		uint32_t f;
		assert_int_equal(ocsp_response_check(der, len, fx.intca, NULL, 0, NULL, &info, &f),
				 -EPROTO);
		assert_int_equal(f, OCSP_CHECK_RESPONSE_STATUS);
		assert_int_equal(info.response_status, statuses[i]);
	}
	size_t len = 42;
	assert_null(ocsp_error_response(0, &len));
	assert_null(ocsp_error_response(4, &len));
	assert_null(ocsp_error_response(7, &len));
	assert_int_equal(len, 42);
}

static void test_no_next_update(void **state)
{
	struct ocsp_info info;
	uint32_t f;
	assert_int_equal(failures_of("resp-no-next.der", &info), OCSP_CHECK_NO_NEXT_UPDATE);
	assert_false(info.next_update_present);

	struct ocsp_policy p;
	ocsp_policy_default(&p);
	p.default_validity_s = 3600;
	assert_int_equal(check("resp-no-next.der", fx.intca, &fx.good_id, fx.this_update + 60, &p,
			       &info, &f),
			 0);
	assert_false(info.next_update_present);
	assert_int_equal(info.next_update_unix, info.this_update_unix + 3600);
	check("resp-no-next.der", fx.intca, &fx.good_id, info.this_update_unix + 3600, &p, &info,
	      &f);
	assert_int_equal(f, OCSP_CHECK_EXPIRED);
}

static void test_signers(void **state)
{
	struct ocsp_info info;

	assert_int_equal(failures_of("resp-by-int.der", &info), 0);
	assert_true(info.signer_is_issuer);
	assert_false(info.signer_delegated);
	assert_string_equal(info.signer, "CN=Test Intermediate CA,O=stapled test");

	assert_int_equal(failures_of("resp-key-id.der", &info), 0);
	assert_true(info.signer_delegated);
	assert_string_equal(info.signer, "CN=Test OCSP Signer,O=stapled test");

	/* The signer is not in the response, so nothing can vouch for the signature. */
	assert_int_equal(failures_of("resp-no-certs.der", &info), OCSP_CHECK_SIGNER);
	assert_false(info.signer_delegated);
	assert_false(info.signer_is_issuer);

	assert_int_equal(failures_of("resp-badsig.der", &info), OCSP_CHECK_SIGNATURE);

	assert_int_equal(failures_of("resp-noeku.der", &info), OCSP_CHECK_SIGNER);
	assert_false(info.signer_delegated);
	assert_int_equal(failures_of("resp-rootocsp.der", &info), OCSP_CHECK_SIGNER);
	assert_int_equal(failures_of("resp-by-leaf.der", &info), OCSP_CHECK_SIGNER);
	assert_string_equal(info.signer, "CN=good.pki.test,O=stapled test");

	assert_int_equal(failures_of("resp-expocsp.der", &info), OCSP_CHECK_SIGNER_VALIDITY);
	assert_true(info.signer_delegated);
}

static void test_signer_validity_window(void **state)
{
	struct ocsp_info info;
	uint32_t f;
	struct ocsp_policy p;
	ocsp_policy_default(&p);
	/* expocsp.crt is valid 2000-01-01 .. 2001-01-01; move the response window there. */
	p.max_skew_s = 100LL * 365 * 86400;
	check("resp-expocsp.der", fx.intca, &fx.good_id, 946684800, &p, &info, &f);
	assert_int_equal(f, 0);
	check("resp-expocsp.der", fx.intca, &fx.good_id, 978307200, &p, &info, &f);
	assert_int_equal(f, 0);
	check("resp-expocsp.der", fx.intca, &fx.good_id, 946684800 - 1, &p, &info, &f);
	assert_int_equal(f, OCSP_CHECK_SIGNER_VALIDITY);
	check("resp-expocsp.der", fx.intca, &fx.good_id, 978307200 + 1, &p, &info, &f);
	assert_int_equal(f, OCSP_CHECK_SIGNER_VALIDITY);
}

static void test_wrong_issuer(void **state)
{
	struct ocsp_info info;
	uint32_t f;
	/* Signed by int, checked against root: int is root's CA certificate, not its responder. */
	check("resp-by-int.der", fx.root, &fx.good_id, fx.this_update + 60, NULL, &info, &f);
	assert_int_equal(f, OCSP_CHECK_SIGNER);
	/* Delegated signer of int, checked against root. */
	check("resp-good-sha1.der", fx.root, &fx.good_id, fx.this_update + 60, NULL, &info, &f);
	assert_int_equal(f, OCSP_CHECK_SIGNER);
	/* Same subject as int but another key: the name matches, the signature does not. */
	_cleanup_(pki_cert_unrefp) struct pki_cert *fake = load_cert("fakeint.crt");
	check("resp-by-int.der", fake, &fx.good_id, fx.this_update + 60, NULL, &info, &f);
	assert_int_equal(f, OCSP_CHECK_SIGNER);
}

static void test_count_and_certid(void **state)
{
	struct ocsp_info info;
	assert_int_equal(failures_of("resp-two.der", &info), OCSP_CHECK_COUNT);
	assert_int_equal(info.single_count, 2);
	assert_true(certid_equal(&info.id, &fx.good_id));

	assert_int_equal(failures_of("resp-other.der", &info), OCSP_CHECK_CERTID);
	assert_true(info.has_id);
	struct certid noaia_id;
	assert_int_equal(pki_certid(fx.noaia, fx.intca, CERTID_SHA1, &noaia_id), 0);
	assert_true(certid_equal(&info.id, &noaia_id));

	/* No expectation: any CertID is fine. */
	uint32_t f;
	check("resp-other.der", fx.intca, NULL, fx.this_update + 60, NULL, &info, &f);
	assert_int_equal(f, 0);
}

static void test_times(void **state)
{
	struct ocsp_info info;
	uint32_t f;
	int64_t t = fx.this_update;

	check("resp-good-sha1.der", fx.intca, &fx.good_id, t + WEEK - 1, NULL, &info, &f);
	assert_int_equal(f, 0);
	check("resp-good-sha1.der", fx.intca, &fx.good_id, t + WEEK, NULL, &info, &f);
	assert_int_equal(f, OCSP_CHECK_EXPIRED);
	check("resp-good-sha1.der", fx.intca, &fx.good_id, t + 10 * WEEK, NULL, &info, &f);
	assert_int_equal(f, OCSP_CHECK_EXPIRED);

	/*
	 * Before thisUpdate the delegated signer (issued seconds before the response) is not valid
	 * yet either: use the response int signed itself, whose thisUpdate is the same.
	 */
	check("resp-by-int.der", NULL, NULL, 0, NULL, &info, &f);
	int64_t ti = info.this_update_unix;
	check("resp-by-int.der", fx.intca, &fx.good_id, ti - 300, NULL, &info, &f);
	assert_int_equal(f, 0);
	check("resp-by-int.der", fx.intca, &fx.good_id, ti - 301, NULL, &info, &f);
	assert_int_equal(f, OCSP_CHECK_NOT_YET_VALID);
	check("resp-good-sha1.der", fx.intca, &fx.good_id, t - 3600, NULL, &info, &f);
	assert_int_equal(f, OCSP_CHECK_NOT_YET_VALID | OCSP_CHECK_SIGNER_VALIDITY);

	struct ocsp_policy p;
	ocsp_policy_default(&p);
	p.max_skew_s = 0;
	check("resp-by-int.der", fx.intca, &fx.good_id, ti - 1, &p, &info, &f);
	assert_int_equal(f, OCSP_CHECK_NOT_YET_VALID);
	check("resp-by-int.der", fx.intca, &fx.good_id, ti, &p, &info, &f);
	assert_int_equal(f, 0);
}

static void test_no_issuer(void **state)
{
	struct ocsp_info info;
	uint32_t f;
	assert_int_equal(
		check("resp-badsig.der", NULL, &fx.good_id, fx.this_update + 60, NULL, &info, &f),
		-EPROTO);
	assert_int_equal(f, OCSP_CHECK_NO_ISSUER);
	assert_int_equal(info.cert_status, OCSP_CERT_GOOD);
	assert_string_equal(info.signer, "");
}

static void test_malformed_responses(void **state)
{
	struct ocsp_info info;
	uint32_t f;
	size_t len;
	_cleanup_free_ uint8_t *der = fixture_load("resp-good-sha1.der", &len);

	static const uint8_t junk[] = {0x30, 0x03, 0x02, 0x01, 0x00};
	assert_int_equal(
		ocsp_response_check(junk, sizeof(junk), fx.intca, &fx.good_id, 0, NULL, &info, &f),
		-EBADMSG);
	assert_int_equal(f, OCSP_CHECK_PARSE);
	assert_int_equal(info.response_status, -1);
	assert_int_equal(ocsp_response_check(der, 0, fx.intca, NULL, 0, NULL, &info, &f), -EBADMSG);
	assert_int_equal(f, OCSP_CHECK_PARSE);

	for (size_t i = 1; i < len; i++) {
		assert_int_equal(ocsp_response_check(der, i, fx.intca, &fx.good_id,
						     fx.this_update + 60, NULL, &info, &f),
				 -EBADMSG);
		assert_int_equal(f, OCSP_CHECK_PARSE);
	}

	_cleanup_free_ uint8_t *longer = xmalloc(len + 1);
	memcpy(longer, der, len);
	longer[len] = 0;
	assert_int_equal(ocsp_response_check(longer, len + 1, fx.intca, &fx.good_id,
					     fx.this_update + 60, NULL, &info, &f),
			 -EBADMSG);
	assert_int_equal(f, OCSP_CHECK_PARSE);

	/* successful, but without responseBytes */
	static const uint8_t empty_ok[] = {0x30, 0x03, 0x0a, 0x01, 0x00};
	assert_int_equal(
		ocsp_response_check(empty_ok, sizeof(empty_ok), fx.intca, NULL, 0, NULL, &info, &f),
		-EBADMSG);
	assert_int_equal(f, OCSP_CHECK_PARSE);
	assert_int_equal(info.response_status, 0);

	/* Flipping any byte of the signed data must never leave a clean bill of health. */
	for (size_t i = 0; i < len; i++) {
		_cleanup_free_ uint8_t *m = xmemdup(der, len);
		m[i] ^= 0x01;
		int r = ocsp_response_check(m, len, fx.intca, &fx.good_id, fx.this_update + 60,
					    NULL, &info, &f);
		/* Even the unsigned certificate list carries the signer's own signature. */
		if (r == 0)
			fail_msg("byte %zu flipped yet the response validated", i);
	}
}

static void test_request_parse_algs(void **state)
{
	static const struct {
		const char *file;
		enum certid_alg alg;
	} cases[] = {
		{"req-sha1.der", CERTID_SHA1},
		{"req-sha256.der", CERTID_SHA256},
		{"req-sha384.der", CERTID_SHA384},
		{"req-sha512.der", CERTID_SHA512},
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		size_t len;
		_cleanup_free_ uint8_t *der = fixture_load(cases[i].file, &len);
		struct ocsp_request req;
		assert_int_equal(ocsp_request_parse(der, len, &req), 0);
		assert_int_equal(req.id.alg, cases[i].alg);
		assert_false(req.has_nonce);
		assert_false(req.has_other_ext);

		struct certid want;
		assert_int_equal(pki_certid(fx.good, fx.intca, cases[i].alg, &want), 0);
		assert_true(certid_equal(&req.id, &want));
		assert_int_equal(req.id.serial_len, 6);
		assert_int_equal(req.id.serial[0], 0x00);
		assert_int_equal(req.id.serial[1], 0x8f);

		/* Our encoding of a nonce-less request is byte for byte what openssl sends. */
		_cleanup_buf_ struct buf out = BUF_INIT;
		assert_int_equal(ocsp_request_encode(&req.id, &out), 0);
		assert_int_equal(out.len, len);
		assert_memory_equal(out.data, der, len);

		struct ocsp_request again;
		assert_int_equal(ocsp_request_parse(out.data, out.len, &again), 0);
		assert_true(certid_equal(&again.id, &req.id));
	}
}

static void test_request_encode_appends(void **state)
{
	_cleanup_buf_ struct buf out = BUF_INIT;
	buf_append_str(&out, "xy");
	assert_int_equal(ocsp_request_encode(&fx.good_id, &out), 0);
	assert_memory_equal(out.data, "xy", 2);
	struct ocsp_request req;
	assert_int_equal(ocsp_request_parse(out.data + 2, out.len - 2, &req), 0);
	assert_true(certid_equal(&req.id, &fx.good_id));

	struct certid bad = fx.good_id;
	bad.alg = CERTID_ALG_COUNT;
	size_t before = out.len;
	assert_true(ocsp_request_encode(&bad, &out) < 0);
	assert_int_equal(out.len, before);
}

static void test_request_nonce_and_two(void **state)
{
	size_t len;
	struct ocsp_request req;
	_cleanup_free_ uint8_t *nonce = fixture_load("req-nonce.der", &len);
	assert_int_equal(ocsp_request_parse(nonce, len, &req), 0);
	assert_true(req.has_nonce);
	assert_false(req.has_other_ext);
	assert_true(certid_equal(&req.id, &fx.good_id));

	/* RFC 5019 responders need not check request signatures; the CertID is what matters. */
	_cleanup_free_ uint8_t *signed_req = fixture_load("req-signed.der", &len);
	assert_int_equal(ocsp_request_parse(signed_req, len, &req), 0);
	assert_false(req.has_nonce);
	assert_false(req.has_other_ext);
	assert_true(certid_equal(&req.id, &fx.good_id));

	_cleanup_free_ uint8_t *two = fixture_load("req-two.der", &len);
	memset(&req, 0xaa, sizeof(req));
	assert_int_equal(ocsp_request_parse(two, len, &req), -ENOTSUP);
	assert_int_equal(req.id.alg, 0xaa); /* untouched on failure */
}

static void test_request_malformed(void **state)
{
	size_t len;
	struct ocsp_request req;
	_cleanup_free_ uint8_t *der = fixture_load("req-sha256.der", &len);

	for (size_t i = 0; i < len; i++)
		assert_int_equal(ocsp_request_parse(der, i, &req), -EBADMSG);

	_cleanup_free_ uint8_t *longer = xmalloc(len + 1);
	memcpy(longer, der, len);
	longer[len] = 0x00;
	assert_int_equal(ocsp_request_parse(longer, len + 1, &req), -EBADMSG);

	_cleanup_free_ uint8_t *big = xcalloc(1, OCSP_REQUEST_MAX_BYTES + 1);
	memcpy(big, der, len);
	assert_int_equal(ocsp_request_parse(big, OCSP_REQUEST_MAX_BYTES + 1, &req), -EMSGSIZE);

	/* SHA-224 (2.16.840.1.101.3.4.2.4) in place of SHA-256: same OID length. */
	_cleanup_free_ uint8_t *sha224 = xmemdup(der, len);
	static const uint8_t oid256[] = {0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01};
	uint8_t *o = memmem(sha224, len, oid256, sizeof(oid256));
	assert_non_null(o);
	o[sizeof(oid256) - 1] = 0x04;
	assert_int_equal(ocsp_request_parse(sha224, len, &req), -ENOTSUP);

	/* A response is not a request. */
	size_t rlen;
	_cleanup_free_ uint8_t *resp = fixture_load("resp-good-sha1.der", &rlen);
	assert_int_equal(ocsp_request_parse(resp, rlen, &req), -EBADMSG);

	/* Hash of the wrong length for its algorithm. */
	struct certid id = fx.good_id256;
	id.alg = CERTID_SHA384;
	_cleanup_buf_ struct buf out = BUF_INIT;
	assert_int_equal(ocsp_request_encode(&id, &out), 0);
	/* rewrite: the encoder used 48-byte hashes; patch the OID back to SHA-256 */
	static const uint8_t oid384[] = {0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02};
	o = memmem(out.data, out.len, oid384, sizeof(oid384));
	assert_non_null(o);
	o[sizeof(oid384) - 1] = 0x01;
	assert_int_equal(ocsp_request_parse(out.data, out.len, &req), -EBADMSG);
}

static void test_names(void **state)
{
	assert_string_equal(ocsp_cert_status_name(OCSP_CERT_GOOD), "good");
	assert_string_equal(ocsp_cert_status_name(OCSP_CERT_REVOKED), "revoked");
	assert_string_equal(ocsp_cert_status_name(OCSP_CERT_UNKNOWN), "unknown");
	assert_string_equal(ocsp_response_status_name(0), "successful");
	assert_string_equal(ocsp_response_status_name(3), "tryLater");
	assert_string_equal(ocsp_response_status_name(6), "unauthorized");
	assert_string_equal(ocsp_response_status_name(4), "invalid");

	for (unsigned i = 0; i < 12; i++) {
		const char *n = ocsp_check_name(1u << i);
		assert_string_not_equal(n, "invalid");
		for (unsigned j = 0; j < i; j++)
			assert_string_not_equal(n, ocsp_check_name(1u << j));
	}
	assert_string_equal(ocsp_check_name(OCSP_CHECK_SIGNATURE), "signature");
	assert_string_equal(ocsp_check_name(1u << 12), "invalid");
	assert_string_equal(ocsp_check_name(3), "invalid");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good_sha1),
		cmocka_unit_test(test_good_sha256),
		cmocka_unit_test(test_revoked),
		cmocka_unit_test(test_unknown),
		cmocka_unit_test(test_error_statuses),
		cmocka_unit_test(test_no_next_update),
		cmocka_unit_test(test_signers),
		cmocka_unit_test(test_signer_validity_window),
		cmocka_unit_test(test_wrong_issuer),
		cmocka_unit_test(test_count_and_certid),
		cmocka_unit_test(test_times),
		cmocka_unit_test(test_no_issuer),
		cmocka_unit_test(test_malformed_responses),
		cmocka_unit_test(test_request_parse_algs),
		cmocka_unit_test(test_request_encode_appends),
		cmocka_unit_test(test_request_nonce_and_two),
		cmocka_unit_test(test_request_malformed),
		cmocka_unit_test(test_names),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
