/* SPDX-License-Identifier: Apache-2.0 */
/*
 * HAProxy's runtime API (the "stats socket" CLI), the one command stapled sends: replacing the
 * OCSP response HAProxy staples for a certificate. Pure: bytes out, bytes in.
 *
 * Glossary: a "push" is one command on one short-lived connection (HAProxy answers a
 * non-interactive command, then closes); an "attempt" is one try of a push.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/buf.h"

/*
 * HAProxy reads a command line into one buffer (tune.bufsize, 16 KiB by default); a line that
 * does not fit is refused. We stay well inside it.
 */
#define HAPROXY_CLI_LINE_MAX 15000
/* A reply longer than this is not one HAProxy gives to our command; reading stops there. */
#define HAPROXY_CLI_REPLY_MAX 4096
/* Attempts of one push before it is given up (the <crt>.ocsp file still carries the response
 * to the next start or reload of HAProxy). */
#define HAPROXY_CLI_MAX_ATTEMPTS 8

/*
 * Appends "set ssl ocsp-response <base64 of der>\n" to out.
 * Errors: -EINVAL empty der; -EMSGSIZE the line would exceed HAPROXY_CLI_LINE_MAX (out unchanged).
 */
int haproxy_cli_encode_set_ocsp(const uint8_t *der, size_t len, struct buf *out);

enum haproxy_cli_reply {
	HAPROXY_CLI_ACCEPTED, /* "OCSP Response updated!" */
	HAPROXY_CLI_REJECTED, /* any other text: an error message from HAProxy */
	HAPROXY_CLI_EMPTY,    /* nothing but blanks: the connection closed without an answer */
};

/*
 * Classifies HAProxy's complete reply (everything read until it closed) to a set ssl
 * ocsp-response command. The first non-blank line is copied to msg (NUL-terminated, truncated
 * to msglen - 1, bytes outside printable ASCII replaced by '?') for logs; msg may be NULL.
 */
enum haproxy_cli_reply haproxy_cli_parse_reply(const uint8_t *p, size_t len, char *msg,
					       size_t msglen);

/* Delay before attempt number `attempt` (1 = the first retry): 1 s doubling, at most 64 s. */
uint64_t haproxy_cli_retry_delay_ms(unsigned attempt);
