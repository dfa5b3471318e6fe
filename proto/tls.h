/* SPDX-License-Identifier: Apache-2.0 */
/*
 * TLS for the responder's listeners, without I/O: ciphertext from the socket goes in, plaintext
 * comes out, and the other way round, through OpenSSL memory BIOs. The server offers ALPN
 * "h2" and "http/1.1" and reports which one the client chose. OpenSSL types stop here.
 *
 * Not pure in one respect: OpenSSL draws handshake randomness itself. Everything else is bytes
 * in, bytes out.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/buf.h"

struct tls_ctx;
struct tls_conn;

/*
 * A server context from PEM bytes: the certificate chain (leaf first) and its private key.
 * TLS 1.2 and 1.3 only; ALPN h2 and http/1.1 (h2 preferred when the client offers both).
 * Errors: -EBADMSG unparseable certificate or key; -EINVAL key does not match the certificate;
 * writes a reason to errbuf.
 */
int tls_ctx_new(const uint8_t *chain_pem, size_t chain_len, const uint8_t *key_pem, size_t key_len,
		char *errbuf, size_t errlen, struct tls_ctx **ret);
void tls_ctx_free(struct tls_ctx *ctx);

/* Errors: -ENOMEM. */
int tls_conn_new(struct tls_ctx *ctx, struct tls_conn **ret);
void tls_conn_free(struct tls_conn *c);

/*
 * Feeds ciphertext received from the peer and appends any plaintext it yields to `plain`
 * (the handshake advances as needed). Afterwards, tls_conn_output() has bytes to send (handshake
 * messages, alerts). Returns 0, or: -EPROTO handshake or record failure (an alert may be pending
 * in the output: send it, then close); -ESHUTDOWN the peer sent close_notify.
 */
int tls_conn_input(struct tls_conn *c, const uint8_t *cipher, size_t len, struct buf *plain);

/* Encrypts plaintext for the peer (only after the handshake: else -EAGAIN, try later). */
int tls_conn_write(struct tls_conn *c, const uint8_t *plain, size_t len);

/* Appends ciphertext waiting to be sent to `out`. */
void tls_conn_output(struct tls_conn *c, struct buf *out);

bool tls_conn_handshake_done(const struct tls_conn *c);
/* The ALPN protocol agreed ("h2", "http/1.1"), or NULL when none was negotiated. */
const char *tls_conn_alpn(const struct tls_conn *c);
/* Queues close_notify. */
void tls_conn_shutdown(struct tls_conn *c);
