/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ocsp_http_get_decode on arbitrary request-targets. A decoded request must be a request
 * ocsp_request_parse accepts, and must survive our own GET encoding; the input is also tried as
 * DER, whose encoded path must decode back to it.
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

	if (ocsp_request_parse(data, size, &req) == 0)
		check_roundtrip(data, size, &req);
	return 0;
}
