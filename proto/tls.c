/* SPDX-License-Identifier: Apache-2.0 */
#include "proto/tls.h"

#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "proto/mem.h"
#include "proto/ossl.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(SSL_CTX *, SSL_CTX_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(EVP_PKEY *, EVP_PKEY_free);

struct tls_ctx {
	SSL_CTX *ssl_ctx;
};

struct tls_conn {
	SSL *ssl;
	/* Both owned by ssl (SSL_set_bio); kept to move bytes in and out. */
	BIO *rbio;
	BIO *wbio;
	/* Sticky once set (-EPROTO or -ESHUTDOWN): OpenSSL must not be driven after a fatal error.
	 */
	int err;
};

/* ALPN wire format, in our order of preference. */
static const uint8_t ALPN_H2[] = {2, 'h', '2'};
static const uint8_t ALPN_HTTP11[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};

/* Writes "what: reason" to errbuf, taking the reason from OpenSSL's queue, which it drains. */
_printf_(3, 4) static void set_err(char *errbuf, size_t errlen, const char *fmt, ...)
{
	unsigned long e = ERR_peek_last_error();
	const char *reason = e ? ERR_reason_error_string(e) : NULL;
	if (errbuf && errlen > 0) {
		va_list ap;
		va_start(ap, fmt);
		int n = vsnprintf(errbuf, errlen, fmt, ap);
		va_end(ap);
		if (reason && n >= 0 && (size_t)n < errlen)
			snprintf(errbuf + n, errlen - (size_t)n, ": %s", reason);
	}
	ERR_clear_error();
}

/* An encrypted key would otherwise make OpenSSL prompt on the terminal for a passphrase. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)u;
	return -1;
}

/* Is `proto` (wire format: length byte, name) among the client's offers (wire format list)? */
static bool alpn_offered(const uint8_t *in, size_t inlen, const uint8_t *proto)
{
	size_t i = 0;
	while (i < inlen) {
		size_t n = in[i];
		if (n == 0 || n > inlen - i - 1)
			return false;
		if (n == proto[0] && memcmp(in + i + 1, proto + 1, n) == 0)
			return true;
		i += 1 + n;
	}
	return false;
}

static int on_alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
			  const unsigned char *in, unsigned int inlen, void *arg)
{
	static const uint8_t *const prefs[] = {ALPN_H2, ALPN_HTTP11};
	(void)ssl;
	(void)arg;
	for (size_t i = 0; i < ARRAY_SIZE(prefs); i++) {
		if (alpn_offered(in, inlen, prefs[i])) {
			*out = prefs[i] + 1;
			*outlen = prefs[i][0];
			return SSL_TLSEXT_ERR_OK;
		}
	}
	/* RFC 7301 allows a fatal alert here; carrying on without ALPN serves such clients as
	 * HTTP/1.1, which every client speaking to an OCSP responder understands. */
	return SSL_TLSEXT_ERR_NOACK;
}

/* Loads the leaf and its chain into ctx. */
static int load_chain(SSL_CTX *ctx, const uint8_t *pem, size_t len, char *errbuf, size_t errlen)
{
	if (len > INT_MAX) {
		set_err(errbuf, errlen, "certificate chain: too large");
		return -EBADMSG;
	}
	_cleanup_(BIO_freep) BIO *bio = BIO_new_mem_buf(pem, (int)len);
	if (!bio) {
		set_err(errbuf, errlen, "certificate chain");
		return -ENOMEM;
	}
	size_t n = 0;
	for (;;) {
		_cleanup_(X509_freep) X509 *x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
		if (!x) {
			unsigned long e = ERR_peek_last_error();
			/* The end of the input shows as "no start line"; anything else is damage.
			 */
			if (n > 0 && ERR_GET_LIB(e) == ERR_LIB_PEM &&
			    ERR_GET_REASON(e) == PEM_R_NO_START_LINE) {
				ERR_clear_error();
				return 0;
			}
			if (n == 0)
				set_err(errbuf, errlen, "certificate chain: no certificate");
			else
				set_err(errbuf, errlen, "certificate chain: certificate %zu",
					n + 1);
			return -EBADMSG;
		}
		/* The context keeps its own references. */
		int ok = n == 0 ? SSL_CTX_use_certificate(ctx, x) : SSL_CTX_add1_chain_cert(ctx, x);
		if (!ok) {
			/* Parsed but refused, e.g. a key too weak for the security level. */
			set_err(errbuf, errlen, "certificate chain: certificate %zu rejected",
				n + 1);
			return -EINVAL;
		}
		n++;
	}
}

static int load_key(SSL_CTX *ctx, const uint8_t *pem, size_t len, char *errbuf, size_t errlen)
{
	if (len > INT_MAX) {
		set_err(errbuf, errlen, "private key: too large");
		return -EBADMSG;
	}
	_cleanup_(BIO_freep) BIO *bio = BIO_new_mem_buf(pem, (int)len);
	if (!bio) {
		set_err(errbuf, errlen, "private key");
		return -ENOMEM;
	}
	_cleanup_(EVP_PKEY_freep) EVP_PKEY *key =
		PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL);
	if (!key) {
		set_err(errbuf, errlen, "private key: no usable key");
		return -EBADMSG;
	}
	/* A key of the leaf's type is checked against it here; a key of another type lands in
	 * another slot and is caught by the check below (whose reason would only confuse). */
	if (!SSL_CTX_use_PrivateKey(ctx, key)) {
		set_err(errbuf, errlen, "private key does not match the certificate");
		return -EINVAL;
	}
	if (!SSL_CTX_check_private_key(ctx)) {
		ERR_clear_error();
		set_err(errbuf, errlen, "private key does not match the certificate");
		return -EINVAL;
	}
	return 0;
}

int tls_ctx_new(const uint8_t *chain_pem, size_t chain_len, const uint8_t *key_pem, size_t key_len,
		char *errbuf, size_t errlen, struct tls_ctx **ret)
{
	int r;
	ERR_clear_error();
	_cleanup_(SSL_CTX_freep) SSL_CTX *ssl_ctx = SSL_CTX_new(TLS_server_method());
	if (!ssl_ctx) {
		set_err(errbuf, errlen, "cannot create a TLS context");
		return -ENOMEM;
	}
	if (!SSL_CTX_set_min_proto_version(ssl_ctx, TLS1_2_VERSION)) {
		set_err(errbuf, errlen, "cannot set the minimum TLS version");
		return -EINVAL;
	}
	SSL_CTX_set_options(ssl_ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
					     SSL_OP_CIPHER_SERVER_PREFERENCE);
	/* Idle keep-alive connections then cost no record buffers. Partial writes stay off:
	 * tls_conn_write encrypts everything or fails. */
	SSL_CTX_set_mode(ssl_ctx, SSL_MODE_RELEASE_BUFFERS);
	/* Resumption works through stateless tickets (TLS 1.2 and 1.3); a server-side session
	 * cache would be one more thing for clients to grow. */
	SSL_CTX_set_session_cache_mode(ssl_ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_alpn_select_cb(ssl_ctx, on_alpn_select, NULL);

	r = load_chain(ssl_ctx, chain_pem, chain_len, errbuf, errlen);
	if (r < 0)
		return r;
	r = load_key(ssl_ctx, key_pem, key_len, errbuf, errlen);
	if (r < 0)
		return r;

	struct tls_ctx *ctx = xmalloc(sizeof(*ctx));
	ctx->ssl_ctx = TAKE_PTR(ssl_ctx);
	*ret = ctx;
	return 0;
}

void tls_ctx_free(struct tls_ctx *ctx)
{
	if (!ctx)
		return;
	/* Reference-counted: connections still open keep their own reference. */
	SSL_CTX_free(ctx->ssl_ctx);
	free(ctx);
}

int tls_conn_new(struct tls_ctx *ctx, struct tls_conn **ret)
{
	SSL *ssl = SSL_new(ctx->ssl_ctx);
	BIO *rbio = BIO_new(BIO_s_mem());
	BIO *wbio = BIO_new(BIO_s_mem());
	if (!ssl || !rbio || !wbio) {
		SSL_free(ssl);
		BIO_free(rbio);
		BIO_free(wbio);
		ERR_clear_error();
		return -ENOMEM;
	}
	/* An empty memory BIO then means "retry later", not end of stream (that is the default of
	 * BIO_s_mem, made explicit because the handshake depends on it). */
	BIO_set_mem_eof_return(rbio, -1);
	BIO_set_mem_eof_return(wbio, -1);
	SSL_set_bio(ssl, rbio, wbio);
	SSL_set_accept_state(ssl);

	struct tls_conn *c = xcalloc(1, sizeof(*c));
	c->ssl = ssl;
	c->rbio = rbio;
	c->wbio = wbio;
	*ret = c;
	return 0;
}

void tls_conn_free(struct tls_conn *c)
{
	if (!c)
		return;
	SSL_free(c->ssl);
	free(c);
}

/* Maps the failure of the last SSL call (which returned r) to a sticky -errno, or 0 for "needs
 * more input". */
static int conn_fail(struct tls_conn *c, int r)
{
	switch (SSL_get_error(c->ssl, r)) {
	case SSL_ERROR_WANT_READ:
		/* Output never blocks: wbio is a growing memory BIO. */
	case SSL_ERROR_WANT_WRITE:
		return 0;
	case SSL_ERROR_ZERO_RETURN:
		c->err = -ESHUTDOWN;
		break;
	default:
		c->err = -EPROTO;
		break;
	}
	ERR_clear_error();
	return c->err;
}

int tls_conn_input(struct tls_conn *c, const uint8_t *cipher, size_t len, struct buf *plain)
{
	if (c->err)
		return c->err;
	/* SSL_get_error() reads the queue: leftovers from other code would be blamed on us. */
	ERR_clear_error();
	while (len > 0) {
		size_t n;
		/* A memory BIO fails only when it cannot grow: out of memory, fatal by policy. */
		if (!BIO_write_ex(c->rbio, cipher, len, &n) || n == 0)
			abort();
		cipher += n;
		len -= n;
	}

	if (!SSL_is_init_finished(c->ssl)) {
		int r = SSL_do_handshake(c->ssl);
		if (r <= 0)
			return conn_fail(c, r);
	}
	for (;;) {
		/* One TLS record holds at most 16 KiB of plaintext. */
		buf_reserve(plain, 16384);
		size_t n;
		int r = SSL_read_ex(c->ssl, plain->data + plain->len, plain->cap - plain->len - 1,
				    &n);
		if (r <= 0)
			return conn_fail(c, r);
		plain->len += n;
		plain->data[plain->len] = 0;
	}
}

int tls_conn_write(struct tls_conn *c, const uint8_t *plain, size_t len)
{
	if (c->err == -EPROTO)
		return -EPROTO;
	if (!SSL_is_init_finished(c->ssl))
		return -EAGAIN;
	if (SSL_get_shutdown(c->ssl) & SSL_SENT_SHUTDOWN)
		return -ESHUTDOWN;
	if (len == 0)
		return 0;
	ERR_clear_error();
	size_t n;
	if (!SSL_write_ex(c->ssl, plain, len, &n)) {
		int r = conn_fail(c, 0);
		return r < 0 ? r : -EPROTO;
	}
	/* Without SSL_MODE_ENABLE_PARTIAL_WRITE, success means all of it. */
	assert(n == len);
	return 0;
}

void tls_conn_output(struct tls_conn *c, struct buf *out)
{
	size_t pending;
	while ((pending = BIO_ctrl_pending(c->wbio)) > 0) {
		buf_reserve(out, pending);
		size_t n;
		if (!BIO_read_ex(c->wbio, out->data + out->len, pending, &n) || n == 0) {
			ERR_clear_error();
			return;
		}
		out->len += n;
		out->data[out->len] = 0;
	}
}

bool tls_conn_handshake_done(const struct tls_conn *c)
{
	return SSL_is_init_finished(c->ssl);
}

const char *tls_conn_alpn(const struct tls_conn *c)
{
	const unsigned char *p;
	unsigned int n;
	SSL_get0_alpn_selected(c->ssl, &p, &n);
	if (n == ALPN_H2[0] && memcmp(p, ALPN_H2 + 1, n) == 0)
		return "h2";
	if (n == ALPN_HTTP11[0] && memcmp(p, ALPN_HTTP11 + 1, n) == 0)
		return "http/1.1";
	return NULL;
}

void tls_conn_shutdown(struct tls_conn *c)
{
	/* OpenSSL forbids SSL_shutdown after a fatal error, and during the handshake it sends
	 * nothing useful: the caller simply closes. */
	if (c->err == -EPROTO || !SSL_is_init_finished(c->ssl))
		return;
	if (SSL_get_shutdown(c->ssl) & SSL_SENT_SHUTDOWN)
		return;
	ERR_clear_error();
	SSL_shutdown(c->ssl);
	ERR_clear_error();
}
