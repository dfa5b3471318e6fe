/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ocsp_http_get_decode on arbitrary request-targets. A decoded request must be a request
 * ocsp_request_parse accepts, and must survive our own GET encoding; the input is also tried as
 * DER, whose encoded path must decode back to it. The same bytes are tried as a forward-proxy
 * target (ocsp_http_proxy_target): an origin it returns is a NUL-terminated http(s) URL without
 * spaces or control characters, and prefixes the target.
 */
#include <assert.h>
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "proto/buf.h"
#include "proto/certid.h"
#include "proto/ocsp.h"
#include "proto/ocsp_http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_roundtrip(const uint8_t *der, size_t len, const struct ocsp_request *want)
{
	struct buf path = BUF_INIT, back = BUF_INIT;
	buf_append_str(&path, "/ocsp/");
	ocsp_http_get_encode(der, len, &path);
	struct ocsp_request again;
	int k = ocsp_http_get_decode((const char *)path.data, path.len, &back, &again);
	if (path.len <= 8192) {
		assert(k == 0);
		assert(back.len == len && memcmp(back.data, der, len) == 0);
		assert(certid_equal(&again.id, &want->id));
	} else {
		assert(k == -EMSGSIZE);
	}
	buf_done(&path);
	buf_done(&back);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct buf der = BUF_INIT;
	struct ocsp_request req;
	int k = ocsp_http_get_decode((const char *)data, size, &der, &req);
	assert(k == 0 || k == -EBADMSG || k == -ENOTSUP || k == -EMSGSIZE);
	if (size > 8192)
		assert(k == -EMSGSIZE);
	if (k == 0) {
		struct ocsp_request direct;
		assert(ocsp_request_parse(der.data, der.len, &direct) == 0);
		assert(certid_equal(&direct.id, &req.id));
		check_roundtrip(der.data, der.len, &req);
	} else {
		assert(der.len == 0);
	}
	buf_done(&der);

	for (int get = 0; get < 2; get++) {
		char origin[256];
		struct buf pder = BUF_INIT;
		k = ocsp_http_proxy_target((const char *)data, size, get, &pder, &req, origin,
					   sizeof(origin));
		assert(k == 0 || k == -EINVAL || k == -EBADMSG || k == -ENOTSUP || k == -EMSGSIZE);
		if (k == 0) {
			size_t ol = strlen(origin);
			assert(ol < sizeof(origin));
			assert(strncmp(origin, "http://", 7) == 0 ||
			       strncmp(origin, "https://", 8) == 0);
			for (size_t i = 0; i < ol; i++)
				assert((unsigned char)origin[i] > ' ' && origin[i] != 0x7f);
			if (get)
				assert(pder.len > 0);
		} else {
			assert(pder.len == 0);
		}
		buf_done(&pder);
	}

	/* base64: whatever decodes re-encodes to the same text (modulo padding and the unused
	 * bits of the last character, which must then decode the same). */
	struct buf dec = BUF_INIT, enc = BUF_INIT, dec2 = BUF_INIT;
	if (ocsp_http_base64_decode((const char *)data, size, &dec) == 0) {
		ocsp_http_base64_encode(dec.data, dec.len, &enc);
		assert(ocsp_http_base64_decode((const char *)enc.data, enc.len, &dec2) == 0);
		assert(dec2.len == dec.len &&
		       (dec.len == 0 || memcmp(dec.data, dec2.data, dec.len) == 0));
	} else {
		assert(dec.len == 0);
	}
	buf_done(&dec);
	buf_done(&enc);
	buf_done(&dec2);

	if (ocsp_request_parse(data, size, &req) == 0)
		check_roundtrip(data, size, &req);
	return 0;
}
