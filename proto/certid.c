/* SPDX-License-Identifier: Apache-2.0 */
#include "proto/certid.h"
#include "proto/ossl.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "proto/macro.h"

static const struct {
	const char *name;
	size_t len;
	/* DER of the AlgorithmIdentifier OID (tag, length, value). */
	uint8_t oid[11];
	uint8_t oid_len;
} certid_algs[CERTID_ALG_COUNT] = {
	[CERTID_SHA1] = {"sha1", 20, {0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a}, 7},
	[CERTID_SHA256] = {"sha256",
			   32,
			   {0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01},
			   11},
	[CERTID_SHA384] = {"sha384",
			   48,
			   {0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02},
			   11},
	[CERTID_SHA512] = {"sha512",
			   64,
			   {0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03},
			   11},
};

size_t certid_hash_len(enum certid_alg alg)
{
	if ((unsigned)alg >= CERTID_ALG_COUNT)
		return 0;
	return certid_algs[alg].len;
}

const char *certid_alg_name(enum certid_alg alg)
{
	if ((unsigned)alg >= CERTID_ALG_COUNT)
		return "invalid";
	return certid_algs[alg].name;
}

bool certid_equal(const struct certid *a, const struct certid *b)
{
	if (a->alg != b->alg || a->serial_len != b->serial_len)
		return false;
	size_t hl = certid_hash_len(a->alg);
	if (hl == 0 || a->serial_len > CERTID_SERIAL_MAX)
		return false;
	return memcmp(a->name_hash, b->name_hash, hl) == 0 &&
	       memcmp(a->key_hash, b->key_hash, hl) == 0 &&
	       memcmp(a->serial, b->serial, a->serial_len) == 0;
}

char *certid_short(const struct certid *id, char out[CERTID_SHORT_MAX])
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;

	for (size_t i = 0; i < 8; i++) {
		out[o++] = hex[id->key_hash[i] >> 4];
		out[o++] = hex[id->key_hash[i] & 0xf];
	}
	out[o++] = '-';
	size_t n = MIN((size_t)id->serial_len, (size_t)20);
	for (size_t i = 0; i < n; i++) {
		out[o++] = hex[id->serial[i] >> 4];
		out[o++] = hex[id->serial[i] & 0xf];
	}
	out[o] = '\0';
	return out;
}

static size_t der_header_len(size_t len)
{
	return len < 0x80 ? 2 : len < 0x100 ? 3 : 4;
}

int certid_encode(const struct certid *id, uint8_t *out, size_t cap)
{
	size_t hl = certid_hash_len(id->alg);
	if (hl == 0 || id->serial_len > CERTID_SERIAL_MAX)
		return -EINVAL;

	const uint8_t *oid = certid_algs[id->alg].oid;
	size_t oid_len = certid_algs[id->alg].oid_len;
	/* AlgorithmIdentifier with explicit NULL parameters, as OpenSSL and most clients send. */
	size_t alg_body = oid_len + 2;
	size_t body = der_header_len(alg_body) + alg_body + 2 * (der_header_len(hl) + hl) +
		      der_header_len(id->serial_len) + id->serial_len;
	size_t total = der_header_len(body) + body;
	if (total > cap)
		return -EMSGSIZE;

	uint8_t *p = out;
	p += ossl_der_header(p, 0x30, body);
	p += ossl_der_header(p, 0x30, alg_body);
	memcpy(p, oid, oid_len);
	p += oid_len;
	*p++ = 0x05;
	*p++ = 0x00;
	p += ossl_der_header(p, 0x04, hl);
	memcpy(p, id->name_hash, hl);
	p += hl;
	p += ossl_der_header(p, 0x04, hl);
	memcpy(p, id->key_hash, hl);
	p += hl;
	p += ossl_der_header(p, 0x02, id->serial_len);
	memcpy(p, id->serial, id->serial_len);
	p += id->serial_len;
	return (int)(p - out);
}
