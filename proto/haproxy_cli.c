/* SPDX-License-Identifier: Apache-2.0 */
#include "proto/haproxy_cli.h"

#include <errno.h>
#include <string.h>

#include "proto/ocsp_http.h"

#define SET_OCSP "set ssl ocsp-response "

int haproxy_cli_encode_set_ocsp(const uint8_t *der, size_t len, struct buf *out)
{
	if (!der || len == 0)
		return -EINVAL;
	/* base64 grows 3 bytes into 4; plus the command and the newline. */
	if (len > (HAPROXY_CLI_LINE_MAX - sizeof(SET_OCSP)) / 4 * 3)
		return -EMSGSIZE;
	buf_append_str(out, SET_OCSP);
	ocsp_http_base64_encode(der, len, out);
	buf_append_byte(out, '\n');
	return 0;
}

static bool is_blank(uint8_t c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* The text HAProxy prints when it took the response (2.2 to 3.x). */
static const char accepted[] = "OCSP Response updated";

enum haproxy_cli_reply haproxy_cli_parse_reply(const uint8_t *p, size_t len, char *msg,
					       size_t msglen)
{
	size_t i = 0, end;

	if (msg && msglen)
		msg[0] = 0;
	while (i < len && is_blank(p[i]))
		i++;
	if (i == len)
		return HAPROXY_CLI_EMPTY;
	end = i;
	while (end < len && p[end] != '\n' && p[end] != '\r')
		end++;
	if (msg && msglen) {
		size_t n = 0;
		for (size_t j = i; j < end && n + 1 < msglen; j++)
			msg[n++] = (p[j] >= 0x20 && p[j] < 0x7f) ? (char)p[j] : '?';
		msg[n] = 0;
	}
	/* Only the first line decides: "OCSP Response updated!" is the whole success reply. */
	if (end - i >= sizeof(accepted) - 1 && memcmp(p + i, accepted, sizeof(accepted) - 1) == 0)
		return HAPROXY_CLI_ACCEPTED;
	return HAPROXY_CLI_REJECTED;
}

uint64_t haproxy_cli_retry_delay_ms(unsigned attempt)
{
	unsigned shift = attempt == 0 ? 0 : attempt - 1;
	if (shift > 6)
		shift = 6;
	return 1000u << shift;
}
