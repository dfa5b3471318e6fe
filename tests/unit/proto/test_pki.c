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

#include <openssl/evp.h>
#include <openssl/ocsp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "proto/buf.h"
#include "proto/mem.h"
#include "proto/pki.h"

static int parse_file(const char *name, struct pki_cert ***ret, size_t *ret_n)
{
	size_t len;
	_cleanup_free_ uint8_t *d = fixture_load(name, &len);
	return pki_certs_parse(d, len, ret, ret_n);
}

static struct pki_cert *one(const char *name)
{
	struct pki_cert **v;
	size_t n;
	assert_int_equal(parse_file(name, &v, &n), 0);
	assert_int_equal(n, 1);
	struct pki_cert *c = pki_cert_ref(v[0]);
	pki_certs_free(v, n);
	return c;
}

static void assert_subjects(struct pki_cert **v, size_t n, const char *const *want, size_t nw)
{
	assert_int_equal(n, nw);
	for (size_t i = 0; i < n; i++)
		assert_string_equal(pki_cert_subject(v[i]), want[i]);
}

static const char *const GOOD = "CN=good.pki.test,O=stapled test";
static const char *const INT = "CN=Test Intermediate CA,O=stapled test";
static const char *const ROOT = "CN=Test Root CA,O=stapled test";

static void test_parse_formats(void **state)
{
	struct pki_cert **v;
	size_t n;

	assert_int_equal(parse_file("good.crt", &v, &n), 0);
	assert_subjects(v, n, (const char *const[]){GOOD}, 1);
	pki_certs_free(v, n);

	assert_int_equal(parse_file("good-chain.pem", &v, &n), 0);
	assert_subjects(v, n, (const char *const[]){GOOD, INT}, 2);
	pki_certs_free(v, n);

	assert_int_equal(parse_file("good-key-chain.pem", &v, &n), 0);
	assert_subjects(v, n, (const char *const[]){GOOD, INT}, 2);
	pki_certs_free(v, n);

	assert_int_equal(parse_file("int.der", &v, &n), 0);
	assert_subjects(v, n, (const char *const[]){INT}, 1);
	pki_certs_free(v, n);

	assert_int_equal(parse_file("int-root.p7b", &v, &n), 0);
	assert_subjects(v, n, (const char *const[]){INT, ROOT}, 2);
	pki_certs_free(v, n);

	assert_int_equal(parse_file("int-root.p7b.pem", &v, &n), 0);
	assert_subjects(v, n, (const char *const[]){INT, ROOT}, 2);
	pki_certs_free(v, n);
}

static void test_parse_errors(void **state)
{
	struct pki_cert **v = (void *)0x1;
	size_t n = 77;

	assert_int_equal(pki_certs_parse((const uint8_t *)"", 0, &v, &n), -EBADMSG);
	assert_int_equal(pki_certs_parse((const uint8_t *)"hello", 5, &v, &n), -EBADMSG);
	assert_int_equal(parse_file("good.key", &v, &n), -EBADMSG);
	assert_int_equal(parse_file("resp-good-sha1.der", &v, &n), -EBADMSG);

	size_t len;
	_cleanup_free_ uint8_t *der = fixture_load("good.der", &len);
	for (size_t i = 1; i < len; i += 7)
		assert_int_equal(pki_certs_parse(der, i, &v, &n), -EBADMSG);
	/* trailing bytes after a DER certificate */
	_cleanup_free_ uint8_t *longer = xmalloc(len + 1);
	memcpy(longer, der, len);
	longer[len] = 0;
	assert_int_equal(pki_certs_parse(longer, len + 1, &v, &n), -EBADMSG);

	/* A PEM certificate block whose body is not a certificate. */
	static const char bad[] =
		"-----BEGIN CERTIFICATE-----\nMAMCAQA=\n-----END CERTIFICATE-----\n";
	assert_int_equal(pki_certs_parse((const uint8_t *)bad, strlen(bad), &v, &n), -EBADMSG);
	assert_ptr_equal(v, (void *)0x1);
	assert_int_equal(n, 77);
}

static void test_parse_limit(void **state)
{
	size_t len;
	_cleanup_free_ uint8_t *pem = fixture_load("good.crt", &len);
	_cleanup_buf_ struct buf b = BUF_INIT;
	for (int i = 0; i < 64; i++)
		buf_append(&b, pem, len);

	struct pki_cert **v;
	size_t n;
	assert_int_equal(pki_certs_parse(b.data, b.len, &v, &n), 0);
	assert_int_equal(n, 64);
	/* Same bytes, same identity. */
	assert_memory_equal(pki_cert_fingerprint(v[0]), pki_cert_fingerprint(v[63]), 32);
	pki_certs_free(v, n);

	buf_append(&b, pem, len);
	assert_int_equal(pki_certs_parse(b.data, b.len, &v, &n), -EMSGSIZE);
}

static void test_identity(void **state)
{
	_cleanup_(pki_cert_unrefp) struct pki_cert *pem = one("good.crt");
	_cleanup_(pki_cert_unrefp) struct pki_cert *der = one("good.der");
	size_t len, dl;
	_cleanup_free_ uint8_t *file = fixture_load("good.der", &len);

	const uint8_t *d = pki_cert_der(pem, &dl);
	assert_int_equal(dl, len);
	assert_memory_equal(d, file, len);

	uint8_t md[32];
	unsigned int ml;
	assert_int_equal(EVP_Digest(file, len, md, &ml, EVP_sha256(), NULL), 1);
	assert_memory_equal(pki_cert_fingerprint(pem), md, 32);
	assert_memory_equal(pki_cert_fingerprint(der), md, 32);

	_cleanup_(pki_cert_unrefp) struct pki_cert *other = one("revoked.crt");
	assert_memory_not_equal(pki_cert_fingerprint(other), md, 32);
}

static void test_refcount(void **state)
{
	struct pki_cert **v;
	size_t n;
	assert_int_equal(parse_file("good-chain.pem", &v, &n), 0);
	struct pki_cert *kept = pki_cert_ref(v[1]);
	assert_ptr_equal(kept, v[1]);
	pki_certs_free(v, n);
	/* Still alive after the array went (ASan would catch a use after free). */
	assert_string_equal(pki_cert_subject(kept), INT);
	assert_null(pki_cert_unref(kept));
	assert_null(pki_cert_ref(NULL));
	assert_null(pki_cert_unref(NULL));
}

static void test_attributes(void **state)
{
	_cleanup_(pki_cert_unrefp) struct pki_cert *root = one("root.crt");
	_cleanup_(pki_cert_unrefp) struct pki_cert *intca = one("int.crt");
	_cleanup_(pki_cert_unrefp) struct pki_cert *good = one("good.crt");
	_cleanup_(pki_cert_unrefp) struct pki_cert *ms = one("muststaple.crt");
	_cleanup_(pki_cert_unrefp) struct pki_cert *noaia = one("noaia.crt");
	_cleanup_(pki_cert_unrefp) struct pki_cert *exp = one("expocsp.crt");

	assert_true(pki_cert_is_ca(root));
	assert_true(pki_cert_is_ca(intca));
	assert_false(pki_cert_is_ca(good));

	assert_true(pki_cert_is_must_staple(ms));
	assert_false(pki_cert_is_must_staple(good));
	assert_false(pki_cert_is_must_staple(intca));

	assert_int_equal(pki_cert_not_before(exp), 946684800); /* 2000-01-01 */
	assert_int_equal(pki_cert_not_after(exp), 978307200);  /* 2001-01-01 */
	assert_true(pki_cert_not_after(good) - pki_cert_not_before(good) == 36500LL * 86400);

	const char *const *urls;
	assert_int_equal(pki_cert_ocsp_urls(good, &urls), 2);
	assert_string_equal(urls[0], "http://ocsp1.pki.test/");
	assert_string_equal(urls[1], "http://ocsp2.pki.test:8080/ocsp");
	assert_int_equal(pki_cert_ca_issuers_urls(good, &urls), 1);
	assert_string_equal(urls[0], "http://pki.test/int.der");

	assert_int_equal(pki_cert_ocsp_urls(ms, &urls), 1);
	assert_string_equal(urls[0], "http://ocsp1.pki.test/");

	assert_int_equal(pki_cert_ocsp_urls(noaia, &urls), 0);
	assert_int_equal(pki_cert_ca_issuers_urls(noaia, &urls), 0);
	assert_int_equal(pki_cert_ocsp_urls(intca, &urls), 1);
	assert_string_equal(urls[0], "http://ocsp.root.test/");
	assert_int_equal(pki_cert_ocsp_urls(root, &urls), 0);
}

static void test_issued_by(void **state)
{
	_cleanup_(pki_cert_unrefp) struct pki_cert *root = one("root.crt");
	_cleanup_(pki_cert_unrefp) struct pki_cert *intca = one("int.crt");
	_cleanup_(pki_cert_unrefp) struct pki_cert *good = one("good.crt");
	_cleanup_(pki_cert_unrefp) struct pki_cert *ocsp = one("ocsp.crt");
	_cleanup_(pki_cert_unrefp) struct pki_cert *rootocsp = one("rootocsp.crt");
	_cleanup_(pki_cert_unrefp) struct pki_cert *fake = one("fakeint.crt");

	assert_true(pki_cert_issued_by(good, intca));
	assert_true(pki_cert_issued_by(ocsp, intca));
	assert_true(pki_cert_issued_by(intca, root));
	assert_true(pki_cert_issued_by(root, root));
	assert_true(pki_cert_issued_by(rootocsp, root));
	assert_true(pki_cert_issued_by(fake, fake));

	assert_false(pki_cert_issued_by(good, root));
	assert_false(pki_cert_issued_by(rootocsp, intca));
	assert_false(pki_cert_issued_by(intca, intca));
	assert_false(pki_cert_issued_by(root, intca));
	/* Name matches, key identifiers absent: only the signature tells the impostor apart. */
	assert_string_equal(pki_cert_subject(fake), INT);
	assert_false(pki_cert_issued_by(good, fake));
}

/* A placed leaf keeps what an entry needs (serial, subject, URLs, CertID) without its DER, and
 * still recognises the issuer it was placed under, and only that one. */
static void test_place(void **state)
{
	_cleanup_(pki_cert_unrefp) struct pki_cert *root = one("root.crt");
	_cleanup_(pki_cert_unrefp) struct pki_cert *intca = one("int.crt");
	_cleanup_(pki_cert_unrefp) struct pki_cert *intca2 = one("int.crt");
	_cleanup_(pki_cert_unrefp) struct pki_cert *fake = one("fakeint.crt");
	_cleanup_(pki_cert_unrefp) struct pki_cert *good = one("good.crt");
	struct certid before, after;
	size_t len;

	assert_int_equal(pki_certid(good, intca, CERTID_SHA1, &before), 0);
	char *subject = strdup(pki_cert_subject(good));
	uint8_t fp[32];
	memcpy(fp, pki_cert_fingerprint(good), 32);

	pki_cert_place(good, intca);
	assert_null(pki_cert_der(good, &len));
	assert_int_equal(len, 0);
	struct buf pem = BUF_INIT;
	pki_cert_pem(good, &pem);
	assert_int_equal(pem.len, 0);
	assert_int_equal(pki_certid(good, intca, CERTID_SHA1, &after), 0);
	assert_memory_equal(&before, &after, sizeof(before));
	assert_string_equal(pki_cert_subject(good), subject);
	assert_memory_equal(pki_cert_fingerprint(good), fp, 32);
	/* The same issuer, also as another object parsed from the same file. */
	assert_true(pki_cert_issued_by(good, intca));
	assert_true(pki_cert_issued_by(good, intca2));
	assert_false(pki_cert_issued_by(good, root));
	assert_false(pki_cert_issued_by(good, fake));

	/* CA certificates are never placed: they keep their DER for everyone's checks. */
	pki_cert_place(intca, root);
	assert_non_null(pki_cert_der(intca, &len));
	assert_true(pki_cert_issued_by(intca, root));
	free(subject);
}

static void test_certid_against_openssl(void **state)
{
	_cleanup_(pki_cert_unrefp) struct pki_cert *intca = one("int.crt");
	static const char *const leaves[] = {"good.crt", "revoked.crt"};
	static const size_t serial_lens[] = {6, 20};

	for (size_t l = 0; l < ARRAY_SIZE(leaves); l++) {
		_cleanup_(pki_cert_unrefp) struct pki_cert *leaf = one(leaves[l]);
		size_t len;
		const uint8_t *p = pki_cert_der(leaf, &len);
		X509 *xl = d2i_X509(NULL, &p, (long)len);
		p = pki_cert_der(intca, &len);
		X509 *xi = d2i_X509(NULL, &p, (long)len);
		assert_non_null(xl);
		assert_non_null(xi);

		static const int nids[] = {NID_sha1, NID_sha256, NID_sha384, NID_sha512};
		for (int alg = 0; alg < CERTID_ALG_COUNT; alg++) {
			struct certid id;
			assert_int_equal(pki_certid(leaf, intca, (enum certid_alg)alg, &id), 0);
			assert_int_equal(id.alg, alg);
			assert_int_equal(id.serial_len, serial_lens[l]);

			OCSP_CERTID *cid = OCSP_cert_to_id(EVP_get_digestbynid(nids[alg]), xl, xi);
			assert_non_null(cid);
			ASN1_OCTET_STRING *nh, *kh;
			ASN1_OBJECT *md;
			ASN1_INTEGER *serial;
			assert_int_equal(OCSP_id_get0_info(&nh, &md, &kh, &serial, cid), 1);
			size_t hl = certid_hash_len((enum certid_alg)alg);
			assert_memory_equal(ASN1_STRING_get0_data(nh), id.name_hash, hl);
			assert_memory_equal(ASN1_STRING_get0_data(kh), id.key_hash, hl);
			unsigned char *sd = NULL;
			int sn = i2d_ASN1_INTEGER(serial, &sd);
			assert_int_equal(sn, 2 + id.serial_len);
			assert_memory_equal(sd + 2, id.serial, id.serial_len);
			OPENSSL_free(sd);
			OCSP_CERTID_free(cid);

			uint8_t nh2[CERTID_HASH_MAX], kh2[CERTID_HASH_MAX];
			assert_int_equal(pki_issuer_hashes(intca, (enum certid_alg)alg, nh2, kh2),
					 0);
			assert_memory_equal(nh2, id.name_hash, hl);
			assert_memory_equal(kh2, id.key_hash, hl);
		}
		X509_free(xl);
		X509_free(xi);
	}

	_cleanup_(pki_cert_unrefp) struct pki_cert *good = one("good.crt");
	struct certid id;
	assert_int_equal(pki_certid(good, intca, CERTID_SHA1, &id), 0);
	static const uint8_t want[] = {0x00, 0x8f, 0x11, 0x22, 0x33, 0x44};
	assert_memory_equal(id.serial, want, sizeof(want));
	assert_int_equal(pki_certid(good, intca, CERTID_ALG_COUNT, &id), -EINVAL);
	uint8_t a[CERTID_HASH_MAX], b[CERTID_HASH_MAX];
	assert_int_equal(pki_issuer_hashes(intca, (enum certid_alg) - 1, a, b), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_formats),
		cmocka_unit_test(test_parse_errors),
		cmocka_unit_test(test_parse_limit),
		cmocka_unit_test(test_identity),
		cmocka_unit_test(test_refcount),
		cmocka_unit_test(test_attributes),
		cmocka_unit_test(test_issued_by),
		cmocka_unit_test(test_place),
		cmocka_unit_test(test_certid_against_openssl),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
