/* SPDX-License-Identifier: Apache-2.0 */
/* pki_certs_parse on untrusted bytes (PEM, DER, PKCS#7), then every question asked of a cert. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/certid.h"
#include "proto/pki.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pki_cert **certs;
	size_t n;
	if (pki_certs_parse(data, size, &certs, &n) < 0)
		return 0;
	if (n == 0 || n > 64)
		abort();

	volatile size_t sink = 0;
	for (size_t i = 0; i < n; i++) {
		struct pki_cert *c = pki_cert_ref(certs[i]);
		size_t len;
		const char *const *urls;
		sink += pki_cert_fingerprint(c)[0];
		sink += pki_cert_der(c, &len)[0] + len;
		sink += strlen(pki_cert_subject(c));
		sink += pki_cert_is_ca(c) + pki_cert_is_must_staple(c);
		sink += (size_t)(pki_cert_not_after(c) - pki_cert_not_before(c));
		size_t k = pki_cert_ocsp_urls(c, &urls);
		for (size_t j = 0; j < k; j++)
			sink += strlen(urls[j]);
		k = pki_cert_ca_issuers_urls(c, &urls);
		for (size_t j = 0; j < k; j++)
			sink += strlen(urls[j]);
		sink += pki_cert_issued_by(c, certs[0]) + pki_cert_issued_by(certs[0], c);
		for (int alg = 0; alg < CERTID_ALG_COUNT; alg++) {
			struct certid id;
			if (pki_certid(c, certs[0], (enum certid_alg)alg, &id) == 0)
				sink += id.serial_len;
		}
		pki_cert_unref(c);
	}
	(void)sink;
	pki_certs_free(certs, n);
	return 0;
}
