/* SPDX-License-Identifier: Apache-2.0 */
#include "proto/ossl.h"

#include <errno.h>
#include <openssl/err.h>

#include "proto/civil.h"
#include "proto/mem.h"

size_t ossl_der_header(uint8_t *p, uint8_t tag, size_t len)
{
	p[0] = tag;
	if (len < 0x80) {
		p[1] = (uint8_t)len;
		return 2;
	}
	if (len < 0x100) {
		p[1] = 0x81;
		p[2] = (uint8_t)len;
		return 3;
	}
	p[1] = 0x82;
	p[2] = (uint8_t)(len >> 8);
	p[3] = (uint8_t)len;
	return 4;
}

int ossl_time_unix(const ASN1_TIME *t, int64_t *ret)
{
	struct tm tm;
	/* ASN1_TIME_to_tm(NULL) would read the clock. */
	if (!t)
		return -EBADMSG;
	if (!ASN1_TIME_to_tm(t, &tm)) {
		ERR_clear_error();
		return -EBADMSG;
	}
	*ret = civil_days(tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday) * 86400 +
	       tm.tm_hour * 3600 + tm.tm_min * 60 + tm.tm_sec;
	return 0;
}

char *ossl_name_rfc2253(const X509_NAME *name)
{
	_cleanup_(BIO_freep) BIO *bio = BIO_new(BIO_s_mem());
	char *p;
	long n;
	if (!bio || X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253) < 0 ||
	    (n = BIO_get_mem_data(bio, &p)) < 0) {
		ERR_clear_error();
		return xstrdup("");
	}
	return xstrndup(p, (size_t)n);
}
