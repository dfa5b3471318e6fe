/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Arbitrary bytes through config_load_string and config_validate, as a config file and a SIGHUP
 * reload would see them: loaded over the defaults, then loaded again over the result, so that
 * list replacement and the swap on success are exercised as well as the error paths.
 */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "node/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config c;
	char err[512];

	config_init(&c);
	for (int pass = 0; pass < 2; pass++) {
		int r = config_load_string(&c, "fuzz.yaml", (const char *)data, size, err,
					   sizeof(err));
		if (r < 0) {
			assert(strncmp(err, "fuzz.yaml: ", 11) == 0);
			break;
		}
		if (config_validate(&c, err, sizeof(err)) < 0)
			assert(err[0]);
	}
	config_done(&c);
	return 0;
}
