/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A TLS server connection fed arbitrary bytes: once in one piece and once in small pieces of
 * varying size, which must give the same verdict (record reassembly must not depend on how the
 * socket split the stream). The context is built once, from a throwaway self-signed EC
 * certificate made for this file only.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/buf.h"
#include "proto/macro.h"
#include "proto/tls.h"

static const char CERT_PEM[] = "-----BEGIN CERTIFICATE-----\n"
			       "MIIBhjCCASugAwIBAgIUCFvn1FE82QPm6e+fK9qL9VNSlvIwCgYIKoZIzj0EAwIw\n"
			       "FzEVMBMGA1UEAwwMZnV6ei5pbnZhbGlkMCAXDTI2MTEyMTE1NTQzM1oYDzIxMjYx\n"
			       "MDI4MTU1NDMzWjAXMRUwEwYDVQQDDAxmdXp6LmludmFsaWQwWTATBgcqhkjOPQIB\n"
			       "BggqhkjOPQMBBwNCAAQOfAWOcWbcUtv9f642hvVYTbnAf/At1SqM0L9a8w+50DzB\n"
			       "jiqXymTjo6la56lavESheACbgPDBNw4JVVwHBIj4o1MwUTAdBgNVHQ4EFgQUEMHD\n"
			       "ZW68jXp9a/0s+zQCDuMOF68wHwYDVR0jBBgwFoAUEMHDZW68jXp9a/0s+zQCDuMO\n"
			       "F68wDwYDVR0TAQH/BAUwAwEB/zAKBggqhkjOPQQDAgNJADBGAiEAySW1JWN5ORDX\n"
			       "+QHoJPbt58INmONRWLQoVW2Qed3XEkUCIQDGE19ARwtTXv4YdlyYLV6c4ZSfrIAb\n"
			       "sugKqtuWyV6EhQ==\n"
			       "-----END CERTIFICATE-----\n";

static const char KEY_PEM[] = "-----BEGIN PRIVATE KEY-----\n"
			      "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgLpKe732uhIEsaDwK\n"
			      "4ANyZcYZp3jNZtkza5xACm4CD7ChRANCAAQOfAWOcWbcUtv9f642hvVYTbnAf/At\n"
			      "1SqM0L9a8w+50DzBjiqXymTjo6la56lavESheACbgPDBNw4JVVwHBIj4\n"
			      "-----END PRIVATE KEY-----\n";

static struct tls_ctx *ctx;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	char err[256] = "";
	if (tls_ctx_new((const uint8_t *)CERT_PEM, sizeof(CERT_PEM) - 1, (const uint8_t *)KEY_PEM,
			sizeof(KEY_PEM) - 1, err, sizeof(err), &ctx) < 0) {
		fprintf(stderr, "fuzz_tls: %s\n", err);
		abort();
	}
	return 0;
}

/* Feeds data in pieces of 1..max bytes (max 0: all at once); returns the first failure. */
static int feed(const uint8_t *data, size_t size, size_t max)
{
	struct tls_conn *c;
	if (tls_conn_new(ctx, &c) < 0)
		abort();
	_cleanup_buf_ struct buf plain = BUF_INIT;
	_cleanup_buf_ struct buf out = BUF_INIT;
	uint32_t seed = (uint32_t)size;
	int r = 0;
	for (size_t off = 0; off < size && r == 0;) {
		size_t n = size - off;
		if (max) {
			seed = seed * 1103515245u + 12345u;
			n = MIN(n, 1 + (seed >> 16) % max);
		}
		r = tls_conn_input(c, data + off, n, &plain);
		off += n;
		tls_conn_output(c, &out);
	}
	/* Nobody can forge a Finished message: no plaintext, no completed handshake. */
	if (plain.len > 0 || tls_conn_handshake_done(c))
		abort();
	int w = tls_conn_write(c, (const uint8_t *)"x", 1);
	if (w != (r == -EPROTO ? -EPROTO : -EAGAIN))
		abort();
	(void)tls_conn_alpn(c);
	tls_conn_shutdown(c);
	tls_conn_output(c, &out);
	tls_conn_free(c);
	return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!ctx)
		LLVMFuzzerInitialize(NULL, NULL);
	int whole = feed(data, size, 0);
	int pieces = feed(data, size, 1 + size % 97);
	if (whole != pieces) {
		fprintf(stderr, "fuzz_tls: whole input %d, in pieces %d\n", whole, pieces);
		abort();
	}
	return 0;
}
