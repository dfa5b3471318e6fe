/* SPDX-License-Identifier: Apache-2.0 */
#include "proto/pki.h"
#include "proto/ocsp_http.h"
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
#include <openssl/pem.h>
#include <openssl/pkcs7.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "proto/mem.h"

#define PKI_CERTS_MAX 64
/* RFC 7633: the TLS extension number of status_request. */
#define TLS_EXT_STATUS_REQUEST 5

struct pki_cert {
	unsigned refs;
	X509 *x509;
	uint8_t *der;
	size_t der_len;
	uint8_t fingerprint[32];
	char *subject;
	bool is_ca;
	bool must_staple;
	int64_t not_before;
	int64_t not_after;
	char **ocsp_urls;
	size_t n_ocsp_urls;
	char **ca_issuers_urls;
	size_t n_ca_issuers_urls;
	uint8_t serial[CERTID_SERIAL_MAX];
	uint8_t serial_len;
	bool serial_too_long;
	/* pki_cert_place: the DER is gone; issuer_fp is the issuer verified before. */
	bool placed;
	uint8_t issuer_fp[32];
	/* pki_cert_issued_x509 memo, made on first use (issuers only, so leaves do not pay). */
	struct issued_memo *issued;
};

/* Fingerprints of certificates an issuer is known to have issued (a small ring; delegated
 * signers are one or two per CA). */
struct issued_memo {
	uint8_t fp[4][32];
	uint8_t n, next;
};

DEFINE_TRIVIAL_CLEANUP_FUNC(PKCS7 *, PKCS7_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(AUTHORITY_INFO_ACCESS *, AUTHORITY_INFO_ACCESS_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(TLS_FEATURE *, TLS_FEATURE_free);

/* Unix seconds of an ASN1_TIME, without the local time zone; 0 if unparseable. */
static void url_push(char ***urls, size_t *n, const GENERAL_NAME *gn)
{
	if (gn->type != GEN_URI)
		return;
	const ASN1_IA5STRING *s = gn->d.uniformResourceIdentifier;
	int len = ASN1_STRING_length(s);
	const unsigned char *d = ASN1_STRING_get0_data(s);
	/* An embedded NUL would make the URL say one thing to us and another to libcurl. */
	if (len <= 0 || memchr(d, '\0', (size_t)len))
		return;
	*urls = xrealloc(*urls, (*n + 1) * sizeof(**urls));
	(*urls)[(*n)++] = xstrndup((const char *)d, (size_t)len);
}

static void read_aia(struct pki_cert *c)
{
	_cleanup_(AUTHORITY_INFO_ACCESS_freep) AUTHORITY_INFO_ACCESS *aia =
		X509_get_ext_d2i(c->x509, NID_info_access, NULL, NULL);
	if (!aia) {
		ERR_clear_error();
		return;
	}
	for (int i = 0; i < sk_ACCESS_DESCRIPTION_num(aia); i++) {
		const ACCESS_DESCRIPTION *ad = sk_ACCESS_DESCRIPTION_value(aia, i);
		switch (OBJ_obj2nid(ad->method)) {
		case NID_ad_OCSP:
			url_push(&c->ocsp_urls, &c->n_ocsp_urls, ad->location);
			break;
		case NID_ad_ca_issuers:
			url_push(&c->ca_issuers_urls, &c->n_ca_issuers_urls, ad->location);
			break;
		default:
			break;
		}
	}
}

static bool read_must_staple(X509 *x)
{
	_cleanup_(TLS_FEATURE_freep) TLS_FEATURE *tf =
		X509_get_ext_d2i(x, NID_tlsfeature, NULL, NULL);
	if (!tf) {
		ERR_clear_error();
		return false;
	}
	for (int i = 0; i < sk_ASN1_INTEGER_num(tf); i++) {
		int64_t v;
		if (ASN1_INTEGER_get_int64(&v, sk_ASN1_INTEGER_value(tf, i)) == 1 &&
		    v == TLS_EXT_STATUS_REQUEST)
			return true;
	}
	ERR_clear_error();
	return false;
}

/* The serial's INTEGER content octets, as a CertID carries them; too long: left empty. */
static void read_serial(struct pki_cert *c)
{
	unsigned char *der = NULL;
	int n = i2d_ASN1_INTEGER(X509_get0_serialNumber(c->x509), &der);
	if (n >= 2) {
		size_t hdr = 2 + ((der[1] & 0x80) ? (der[1] & 0x7f) : 0);
		if ((size_t)n > hdr && (size_t)n - hdr <= CERTID_SERIAL_MAX) {
			c->serial_len = (uint8_t)((size_t)n - hdr);
			memcpy(c->serial, der + hdr, c->serial_len);
		} else if ((size_t)n > hdr) {
			c->serial_too_long = true;
		}
	}
	OPENSSL_free(der);
	ERR_clear_error();
}

static int64_t time_unix(const ASN1_TIME *t)
{
	int64_t v = 0;
	return ossl_time_unix(t, &v) == 0 ? v : 0;
}

/* Takes ownership of x. NULL if the certificate cannot be re-encoded. */
static struct pki_cert *cert_new(X509 *x)
{
	_cleanup_(X509_freep) X509 *owned = x;
	_cleanup_(openssl_freep) unsigned char *der = NULL;
	int der_len = i2d_X509(x, &der);
	if (der_len <= 0) {
		ERR_clear_error();
		return NULL;
	}

	struct pki_cert *c = xcalloc(1, sizeof(*c));
	c->refs = 1;
	c->x509 = TAKE_PTR(owned);
	c->der = xmemdup(der, (size_t)der_len);
	c->der_len = (size_t)der_len;
	unsigned int md_len = 0;
	if (!EVP_Digest(c->der, c->der_len, c->fingerprint, &md_len, EVP_sha256(), NULL))
		ERR_clear_error();
	c->subject = ossl_name_rfc2253(X509_get_subject_name(x));
	c->is_ca = (X509_get_extension_flags(x) & EXFLAG_CA) != 0;
	c->must_staple = read_must_staple(x);
	c->not_before = time_unix(X509_get0_notBefore(x));
	c->not_after = time_unix(X509_get0_notAfter(x));
	read_aia(c);
	read_serial(c);
	ERR_clear_error();
	return c;
}

void pki_cert_compact(struct pki_cert *c)
{
	/* CA certificates are few and used for every issuer check: they keep theirs. */
	if (c->is_ca || !c->x509)
		return;
	X509_free(c->x509);
	c->x509 = NULL;
}

void pki_cert_place(struct pki_cert *c, const struct pki_cert *issuer)
{
	if (c->is_ca)
		return;
	pki_cert_compact(c);
	memcpy(c->issuer_fp, issuer->fingerprint, sizeof(c->issuer_fp));
	c->placed = true;
	free(c->der);
	c->der = NULL;
	c->der_len = 0;
}

/* The parsed certificate: the kept one, or one decoded into *tmp (freed by the caller); NULL
 * for a placed certificate. */
static X509 *cert_x509(const struct pki_cert *c, X509 **tmp)
{
	if (c->x509)
		return c->x509;
	if (!c->der)
		return NULL;
	const unsigned char *p = c->der;
	*tmp = d2i_X509(NULL, &p, (long)c->der_len);
	if (!*tmp)
		ERR_clear_error();
	return *tmp;
}

static void cert_free(struct pki_cert *c)
{
	X509_free(c->x509);
	free(c->der);
	free(c->subject);
	for (size_t i = 0; i < c->n_ocsp_urls; i++)
		free(c->ocsp_urls[i]);
	free(c->ocsp_urls);
	for (size_t i = 0; i < c->n_ca_issuers_urls; i++)
		free(c->ca_issuers_urls[i]);
	free(c->ca_issuers_urls);
	free(c->issued);
	free(c);
}

struct pki_cert *pki_cert_ref(struct pki_cert *c)
{
	if (c)
		__atomic_add_fetch(&c->refs, 1, __ATOMIC_RELAXED);
	return c;
}

struct pki_cert *pki_cert_unref(struct pki_cert *c)
{
	if (c && __atomic_sub_fetch(&c->refs, 1, __ATOMIC_ACQ_REL) == 0)
		cert_free(c);
	return NULL;
}

void pki_certs_free(struct pki_cert **certs, size_t n)
{
	if (!certs)
		return;
	for (size_t i = 0; i < n; i++)
		pki_cert_unref(certs[i]);
	free(certs);
}

struct cert_list {
	struct pki_cert **v;
	size_t n;
	bool overflow;
};

static void list_add(struct cert_list *l, X509 *x)
{
	if (l->n >= PKI_CERTS_MAX) {
		l->overflow = true;
		X509_free(x);
		return;
	}
	struct pki_cert *c = cert_new(x);
	if (!c)
		return;
	l->v = xrealloc(l->v, (l->n + 1) * sizeof(*l->v));
	l->v[l->n++] = c;
}

static void list_add_pkcs7(struct cert_list *l, const PKCS7 *p7)
{
	if (!PKCS7_type_is_signed(p7) || !p7->d.sign)
		return;
	STACK_OF(X509) *certs = p7->d.sign->cert;
	for (int i = 0; i < sk_X509_num(certs) && !l->overflow; i++) {
		X509 *x = sk_X509_value(certs, i);
		if (x && X509_up_ref(x))
			list_add(l, x);
	}
}

static bool parse_der(const uint8_t *data, size_t len, struct cert_list *l)
{
	const unsigned char *p = data;
	X509 *x = d2i_X509(NULL, &p, (long)len);
	if (x && p == data + len) {
		list_add(l, x);
		return true;
	}
	X509_free(x);
	ERR_clear_error();

	p = data;
	_cleanup_(PKCS7_freep) PKCS7 *p7 = d2i_PKCS7(NULL, &p, (long)len);
	if (p7 && p == data + len) {
		list_add_pkcs7(l, p7);
		return true;
	}
	ERR_clear_error();
	return false;
}

static void parse_pem(const uint8_t *data, size_t len, struct cert_list *l)
{
	_cleanup_(BIO_freep) BIO *bio = BIO_new_mem_buf(data, (int)len);
	if (!bio) {
		ERR_clear_error();
		return;
	}
	while (!l->overflow) {
		char *name = NULL, *header = NULL;
		unsigned char *body = NULL;
		long body_len = 0;
		/* Stops at the end of the data and at the first block that is not valid PEM. */
		if (!PEM_read_bio(bio, &name, &header, &body, &body_len))
			break;
		const unsigned char *p = body;
		if (strcmp(name, PEM_STRING_X509) == 0 || strcmp(name, PEM_STRING_X509_OLD) == 0) {
			X509 *x = d2i_X509(NULL, &p, body_len);
			if (x)
				list_add(l, x);
		} else if (strcmp(name, PEM_STRING_X509_TRUSTED) == 0) {
			X509 *x = d2i_X509_AUX(NULL, &p, body_len);
			if (x)
				list_add(l, x);
		} else if (strcmp(name, PEM_STRING_PKCS7) == 0) {
			PKCS7 *p7 = d2i_PKCS7(NULL, &p, body_len);
			if (p7)
				list_add_pkcs7(l, p7);
			PKCS7_free(p7);
		}
		OPENSSL_free(name);
		OPENSSL_free(header);
		OPENSSL_free(body);
	}
	ERR_clear_error();
}

int pki_certs_parse(const uint8_t *data, size_t len, struct pki_cert ***ret_certs, size_t *ret_n)
{
	struct cert_list l = {0};

	if (len == 0 || len > INT_MAX)
		return -EBADMSG;
	/* DER starts with a SEQUENCE tag; anything else can only be PEM. */
	if (data[0] != 0x30 || !parse_der(data, len, &l))
		parse_pem(data, len, &l);

	if (l.overflow) {
		pki_certs_free(l.v, l.n);
		return -EMSGSIZE;
	}
	if (l.n == 0) {
		free(l.v);
		return -EBADMSG;
	}
	*ret_certs = l.v;
	*ret_n = l.n;
	return 0;
}

const uint8_t *pki_cert_fingerprint(const struct pki_cert *c)
{
	return c->fingerprint;
}

const uint8_t *pki_cert_der(const struct pki_cert *c, size_t *ret_len)
{
	*ret_len = c->der_len;
	return c->der;
}

const uint8_t *pki_cert_serial(const struct pki_cert *c, size_t *ret_len)
{
	*ret_len = c->serial_len;
	return c->serial;
}

void pki_cert_pem(const struct pki_cert *c, struct buf *out)
{
	size_t len;
	const uint8_t *der = pki_cert_der(c, &len);
	struct buf b64 = BUF_INIT;

	if (!der)
		return; /* placed: nothing to write */
	ocsp_http_base64_encode(der, len, &b64);
	buf_append_str(out, "-----BEGIN CERTIFICATE-----\n");
	for (size_t i = 0; i < b64.len; i += 64) {
		buf_append(out, b64.data + i, b64.len - i < 64 ? b64.len - i : 64);
		buf_append_byte(out, '\n');
	}
	buf_append_str(out, "-----END CERTIFICATE-----\n");
	buf_done(&b64);
}

const char *pki_cert_subject(const struct pki_cert *c)
{
	return c->subject;
}

bool pki_cert_is_ca(const struct pki_cert *c)
{
	return c->is_ca;
}

int64_t pki_cert_not_before(const struct pki_cert *c)
{
	return c->not_before;
}

int64_t pki_cert_not_after(const struct pki_cert *c)
{
	return c->not_after;
}

bool pki_cert_is_must_staple(const struct pki_cert *c)
{
	return c->must_staple;
}

size_t pki_cert_ocsp_urls(const struct pki_cert *c, const char *const **ret_urls)
{
	*ret_urls = (const char *const *)c->ocsp_urls;
	return c->n_ocsp_urls;
}

size_t pki_cert_ca_issuers_urls(const struct pki_cert *c, const char *const **ret_urls)
{
	*ret_urls = (const char *const *)c->ca_issuers_urls;
	return c->n_ca_issuers_urls;
}

bool pki_cert_issued_by(const struct pki_cert *c, const struct pki_cert *issuer)
{
	/* X509 caches decoded extensions inside the object, hence the casts; the data is fixed. */
	if (c->placed)
		return memcmp(c->issuer_fp, issuer->fingerprint, sizeof(c->issuer_fp)) == 0;
	_cleanup_(X509_freep) X509 *tx = NULL;
	_cleanup_(X509_freep) X509 *tix = NULL;
	X509 *x = cert_x509(c, &tx), *ix = cert_x509(issuer, &tix);
	if (!x || !ix)
		return false;

	if (X509_NAME_cmp(X509_get_issuer_name(x), X509_get_subject_name(ix)) != 0)
		return false;
	const ASN1_OCTET_STRING *akid = X509_get0_authority_key_id(x);
	const ASN1_OCTET_STRING *skid = X509_get0_subject_key_id(ix);
	if (akid && skid && ASN1_OCTET_STRING_cmp(akid, skid) != 0)
		return false;
	EVP_PKEY *key = X509_get0_pubkey(ix);
	bool ok = key && X509_verify(x, key) == 1;
	ERR_clear_error();
	return ok;
}

static const EVP_MD *certid_md(enum certid_alg alg)
{
	switch (alg) {
	case CERTID_SHA1:
		return EVP_sha1();
	case CERTID_SHA256:
		return EVP_sha256();
	case CERTID_SHA384:
		return EVP_sha384();
	case CERTID_SHA512:
		return EVP_sha512();
	default:
		return NULL;
	}
}

int pki_issuer_hashes(const struct pki_cert *issuer, enum certid_alg alg,
		      uint8_t ret_name_hash[CERTID_HASH_MAX], uint8_t ret_key_hash[CERTID_HASH_MAX])
{
	const EVP_MD *md = certid_md(alg);
	if (!md)
		return -EINVAL;

	uint8_t nh[EVP_MAX_MD_SIZE], kh[EVP_MAX_MD_SIZE];
	unsigned int nl = 0, kl = 0;
	/* The subject exactly as encoded in the issuer certificate. */
	_cleanup_(openssl_freep) unsigned char *name_der = NULL;
	_cleanup_(X509_freep) X509 *tix = NULL;
	X509 *ix = cert_x509(issuer, &tix);
	if (!ix)
		return -EINVAL;
	int name_len = i2d_X509_NAME(X509_get_subject_name(ix), &name_der);
	const ASN1_BIT_STRING *key = X509_get0_pubkey_bitstr(ix);
	if (name_len <= 0 || !key || !EVP_Digest(name_der, (size_t)name_len, nh, &nl, md, NULL) ||
	    !EVP_Digest(ASN1_STRING_get0_data(key), (size_t)ASN1_STRING_length(key), kh, &kl, md,
			NULL) ||
	    nl != certid_hash_len(alg) || kl != nl) {
		ERR_clear_error();
		return -EINVAL;
	}
	memcpy(ret_name_hash, nh, nl);
	memcpy(ret_key_hash, kh, kl);
	return 0;
}

int pki_certid(const struct pki_cert *c, const struct pki_cert *issuer, enum certid_alg alg,
	       struct certid *ret_id)
{
	struct certid id = {.alg = (uint8_t)alg};
	int r = pki_issuer_hashes(issuer, alg, id.name_hash, id.key_hash);
	if (r < 0)
		return r;

	if (c->serial_too_long)
		return -EMSGSIZE;
	if (c->serial_len == 0)
		return -EINVAL;
	memcpy(id.serial, c->serial, c->serial_len);
	id.serial_len = c->serial_len;
	*ret_id = id;
	return 0;
}

X509 *pki_cert_get0_x509(const struct pki_cert *c)
{
	return c->x509;
}

bool pki_cert_issued_x509(const struct pki_cert *issuer, X509 *c)
{
	unsigned char fp[EVP_MAX_MD_SIZE];
	unsigned int fp_len = 0;
	if (!X509_digest(c, EVP_sha256(), fp, &fp_len) || fp_len != 32) {
		ERR_clear_error();
		return false;
	}
	for (unsigned i = 0; issuer->issued && i < issuer->issued->n; i++)
		if (memcmp(issuer->issued->fp[i], fp, 32) == 0)
			return true;
	_cleanup_(X509_freep) X509 *tix = NULL;
	X509 *ix = cert_x509(issuer, &tix);
	if (!ix || X509_NAME_cmp(X509_get_issuer_name(c), X509_get_subject_name(ix)) != 0)
		return false;
	EVP_PKEY *key = X509_get0_pubkey(ix);
	bool ok = key && X509_verify(c, key) == 1;
	ERR_clear_error();
	if (ok) {
		/* The memo is a cache of an immutable fact: writing it through a const pointer
		 * changes nothing observable. */
		struct pki_cert *w = (struct pki_cert *)issuer;
		if (!w->issued)
			w->issued = xcalloc(1, sizeof(*w->issued));
		struct issued_memo *m = w->issued;
		memcpy(m->fp[m->next], fp, 32);
		m->next = (uint8_t)((m->next + 1) % 4);
		if (m->n < 4)
			m->n++;
	}
	return ok;
}
