/* SPDX-License-Identifier: Apache-2.0 */
/*
 * haproxy_cli_parse_reply on whatever an admin socket may send back: it never reads past the
 * input, the message for the log is NUL-terminated printable ASCII within its buffer, and the
 * verdict is "accepted" only when the first non-blank line starts with HAProxy's success text.
 */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "proto/haproxy_cli.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char msg[80];
	size_t cap = size ? (data[0] % sizeof(msg)) + 1 : sizeof(msg);
	memset(msg, 'Z', sizeof(msg));
	enum haproxy_cli_reply r = haproxy_cli_parse_reply(data, size, msg, cap);
	size_t n = strnlen(msg, cap);
	assert(n < cap);
	for (size_t i = 0; i < n; i++)
		assert(msg[i] >= 0x20 && msg[i] < 0x7f);
	for (size_t i = cap; i < sizeof(msg); i++)
		assert(msg[i] == 'Z');
	/* The same verdict without a message buffer. */
	assert(haproxy_cli_parse_reply(data, size, NULL, 0) == r);
	if (r == HAPROXY_CLI_ACCEPTED)
		assert(memmem(data, size, "OCSP Response updated", 21) != NULL);
	return 0;
}
