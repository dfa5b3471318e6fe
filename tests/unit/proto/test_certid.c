/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "tests/unit/fixture.h"

#include <openssl/ocsp.h>
#include <openssl/x509.h>

#include "proto/buf.h"
#include "proto/certid.h"
#include "proto/pki.h"

static struct certid sample(enum certid_alg alg)
{
	struct certid id = {.alg = (uint8_t)alg, .serial_len = 3, .serial = {0x01, 0x02, 0x03}};
	for (size_t i = 0; i < CERTID_HASH_MAX; i++) {
		id.name_hash[i] = (uint8_t)i;
		id.key_hash[i] = (uint8_t)(0xf0 + i);
	}
	return id;
}

static void test_lengths_and_names(void **state)
{
	assert_int_equal(certid_hash_len(CERTID_SHA1), 20);
	assert_int_equal(certid_hash_len(CERTID_SHA256), 32);
	assert_int_equal(certid_hash_len(CERTID_SHA384), 48);
	assert_int_equal(certid_hash_len(CERTID_SHA512), 64);
	assert_int_equal(certid_hash_len(CERTID_ALG_COUNT), 0);
	assert_string_equal(certid_alg_name(CERTID_SHA1), "sha1");
	assert_string_equal(certid_alg_name(CERTID_SHA256), "sha256");
	assert_string_equal(certid_alg_name(CERTID_SHA384), "sha384");
	assert_string_equal(certid_alg_name(CERTID_SHA512), "sha512");
}

static void test_equal(void **state)
{
	struct certid a = sample(CERTID_SHA1), b = sample(CERTID_SHA1);
	assert_true(certid_equal(&a, &b));

	/* Bytes past the hash length and serial length are not part of the identity. */
	b.name_hash[20] ^= 1;
	b.key_hash[63] ^= 1;
	b.serial[3] = 0x77;
	assert_true(certid_equal(&a, &b));

	b = sample(CERTID_SHA1);
	b.name_hash[19] ^= 1;
	assert_false(certid_equal(&a, &b));
	b = sample(CERTID_SHA1);
	b.key_hash[0] ^= 1;
	assert_false(certid_equal(&a, &b));
	b = sample(CERTID_SHA1);
	b.serial[2] ^= 1;
	assert_false(certid_equal(&a, &b));
	b = sample(CERTID_SHA1);
	b.serial_len = 2;
	assert_false(certid_equal(&a, &b));
	b = sample(CERTID_SHA256);
	assert_false(certid_equal(&a, &b));
}

static void test_short(void **state)
{
	struct certid id = sample(CERTID_SHA256);
	char out[CERTID_SHORT_MAX];
	assert_ptr_equal(certid_short(&id, out), out);
	assert_string_equal(out, "f0f1f2f3f4f5f6f7-010203");

	id.serial_len = CERTID_SERIAL_MAX;
	memset(id.serial, 0xab, sizeof(id.serial));
	certid_short(&id, out);
	assert_int_equal(strlen(out), 16 + 1 + 40);
	assert_string_equal(out + 17, "abababababababababababababababababababab");
}

/* Our encoder against OpenSSL's, for every algorithm. */
static void test_encode_matches_openssl(void **state)
{
	for (int alg = 0; alg < CERTID_ALG_COUNT; alg++) {
		struct certid id = sample((enum certid_alg)alg);
		id.serial_len = 20;
		memset(id.serial, 0x5a, 20);
		uint8_t out[256];
		int n = certid_encode(&id, out, sizeof(out));
		assert_true(n > 0);

		const unsigned char *p = out;
		OCSP_CERTID *cid = d2i_OCSP_CERTID(NULL, &p, n);
		assert_non_null(cid);
		assert_ptr_equal(p, out + n);
		unsigned char *re = NULL;
		int rn = i2d_OCSP_CERTID(cid, &re);
		assert_int_equal(rn, n);
		assert_memory_equal(re, out, (size_t)n);

		ASN1_OCTET_STRING *nh, *kh;
		ASN1_OBJECT *md;
		ASN1_INTEGER *serial;
		assert_int_equal(OCSP_id_get0_info(&nh, &md, &kh, &serial, cid), 1);
		static const int nids[] = {NID_sha1, NID_sha256, NID_sha384, NID_sha512};
		assert_int_equal(OBJ_obj2nid(md), nids[alg]);
		assert_int_equal(ASN1_STRING_length(nh), (int)certid_hash_len(alg));
		assert_memory_equal(ASN1_STRING_get0_data(kh), id.key_hash, certid_hash_len(alg));
		OPENSSL_free(re);
		OCSP_CERTID_free(cid);

		/* Too small by one byte: refused without overflow; exact size works. */
		assert_int_equal(certid_encode(&id, out, (size_t)n - 1), -EMSGSIZE);
		assert_int_equal(certid_encode(&id, out, (size_t)n), n);
	}
	struct certid big = sample(CERTID_SHA512);
	big.serial_len = CERTID_SERIAL_MAX;
	uint8_t out[256];
	assert_true(certid_encode(&big, out, sizeof(out)) > 128);
	big.alg = CERTID_ALG_COUNT;
	assert_true(certid_encode(&big, out, sizeof(out)) < 0);
}

/* The CertID inside openssl's request for good.crt ends the request; ours must equal it. */
static void test_encode_matches_fixture_requests(void **state)
{
	static const char *const files[] = {"req-sha1.der", "req-sha256.der", "req-sha384.der",
					    "req-sha512.der"};
	size_t len, n;
	uint8_t *d = fixture_load("good-chain.pem", &len);
	struct pki_cert **v;
	assert_int_equal(pki_certs_parse(d, len, &v, &n), 0);
	free(d);
	assert_int_equal(n, 2);
	for (int alg = 0; alg < CERTID_ALG_COUNT; alg++) {
		struct certid id;
		assert_int_equal(pki_certid(v[0], v[1], (enum certid_alg)alg, &id), 0);
		uint8_t out[256];
		int k = certid_encode(&id, out, sizeof(out));
		assert_true(k > 0);
		uint8_t *req = fixture_load(files[alg], &len);
		assert_true(len > (size_t)k);
		assert_memory_equal(req + len - (size_t)k, out, (size_t)k);
		free(req);
	}
	pki_certs_free(v, n);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lengths_and_names),
		cmocka_unit_test(test_equal),
		cmocka_unit_test(test_short),
		cmocka_unit_test(test_encode_matches_openssl),
		cmocka_unit_test(test_encode_matches_fixture_requests),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
