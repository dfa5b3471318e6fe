/* SPDX-License-Identifier: Apache-2.0 */
/* ocsp_request_parse on untrusted bytes; what parses must survive an encode/parse round trip. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "proto/buf.h"
#include "proto/certid.h"
#include "proto/ocsp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ocsp_request req;
	if (ocsp_request_parse(data, size, &req) < 0)
		return 0;

	char name[CERTID_SHORT_MAX];
	certid_short(&req.id, name);
	uint8_t der[256];
	if (certid_encode(&req.id, der, sizeof(der)) <= 0)
		abort();

	_cleanup_buf_ struct buf out = BUF_INIT;
	if (ocsp_request_encode(&req.id, &out) < 0)
		abort();
	struct ocsp_request again;
	if (ocsp_request_parse(out.data, out.len, &again) < 0 ||
	    !certid_equal(&req.id, &again.id) || again.has_nonce || again.has_other_ext)
		abort();
	return 0;
}
