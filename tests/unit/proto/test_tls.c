/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The server side under test is proto/tls; the client side is a plain OpenSSL client with its
 * own memory BIOs, verifying the server against the fixtures' root. Bytes are shuttled by hand:
 * no sockets.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "tests/unit/fixture.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "proto/buf.h"
#include "proto/mem.h"
#include "proto/tls.h"

static const uint8_t OFFER_BOTH[] = "\x08http/1.1\x02h2";
static const uint8_t OFFER_H2[] = "\x02h2";
static const uint8_t OFFER_H11[] = "\x08http/1.1";
static const uint8_t OFFER_OTHER[] = "\x06spdy/3\x08http/1.0";

static int ctx_from(const char *chain, const char *key, char *errbuf, size_t errlen,
		    struct tls_ctx **ret)
{
	size_t cl, kl;
	_cleanup_free_ uint8_t *c = fixture_load(chain, &cl);
	_cleanup_free_ uint8_t *k = fixture_load(key, &kl);
	return tls_ctx_new(c, cl, k, kl, errbuf, errlen, ret);
}

static int ctx_from_mem(const char *chain, const char *key, char *errbuf, size_t errlen)
{
	struct tls_ctx *ctx = NULL;
	int r = tls_ctx_new((const uint8_t *)chain, strlen(chain), (const uint8_t *)key,
			    strlen(key), errbuf, errlen, &ctx);
	/* ret is written only on success. */
	assert_true((r == 0) == (ctx != NULL));
	tls_ctx_free(ctx);
	return r;
}

static struct tls_ctx *server_ctx(void)
{
	struct tls_ctx *ctx = NULL;
	char err[256] = "";
	int r = ctx_from("good-chain.pem", "good.key", err, sizeof(err), &ctx);
	if (r != 0)
		fail_msg("tls_ctx_new: %d %s", r, err);
	return ctx;
}

static struct tls_conn *server_conn(struct tls_ctx *ctx)
{
	struct tls_conn *c = NULL;
	assert_int_equal(tls_conn_new(ctx, &c), 0);
	assert_non_null(c);
	return c;
}

struct client {
	SSL_CTX *ctx;
	SSL *ssl;
	BIO *rbio;
	BIO *wbio;
};

/* A client verifying good.pki.test against root.crt; alpn in wire format (NULL: none). */
static void client_init(struct client *cl, int min_version, int max_version, const uint8_t *alpn,
			size_t alpn_len)
{
	cl->ctx = SSL_CTX_new(TLS_client_method());
	assert_non_null(cl->ctx);
	char root[512];
	snprintf(root, sizeof(root), "%s/root.crt", FIXTURES);
	assert_int_equal(SSL_CTX_load_verify_locations(cl->ctx, root, NULL), 1);
	SSL_CTX_set_verify(cl->ctx, SSL_VERIFY_PEER, NULL);
	assert_int_equal(SSL_CTX_set_min_proto_version(cl->ctx, min_version), 1);
	assert_int_equal(SSL_CTX_set_max_proto_version(cl->ctx, max_version), 1);
	/* Old protocol versions are only sent at security level 0. */
	if (max_version < TLS1_2_VERSION)
		assert_int_equal(SSL_CTX_set_cipher_list(cl->ctx, "DEFAULT:@SECLEVEL=0"), 1);
	cl->ssl = SSL_new(cl->ctx);
	assert_non_null(cl->ssl);
	assert_int_equal(SSL_set1_host(cl->ssl, "good.pki.test"), 1);
	assert_int_equal(SSL_set_tlsext_host_name(cl->ssl, "good.pki.test"), 1);
	if (alpn)
		assert_int_equal(SSL_set_alpn_protos(cl->ssl, alpn, (unsigned)alpn_len), 0);
	cl->rbio = BIO_new(BIO_s_mem());
	cl->wbio = BIO_new(BIO_s_mem());
	assert_non_null(cl->rbio);
	assert_non_null(cl->wbio);
	BIO_set_mem_eof_return(cl->rbio, -1);
	BIO_set_mem_eof_return(cl->wbio, -1);
	SSL_set_bio(cl->ssl, cl->rbio, cl->wbio);
	SSL_set_connect_state(cl->ssl);
}

static void client_done(struct client *cl)
{
	SSL_free(cl->ssl);
	SSL_CTX_free(cl->ctx);
}

/* Moves everything the client has written into `to`. */
static void client_drain(struct client *cl, struct buf *to)
{
	size_t pending;
	while ((pending = BIO_ctrl_pending(cl->wbio)) > 0) {
		buf_reserve(to, pending);
		size_t n;
		assert_int_equal(BIO_read_ex(cl->wbio, to->data + to->len, pending, &n), 1);
		to->len += n;
		to->data[to->len] = 0;
	}
}

static void client_feed(struct client *cl, const struct buf *from)
{
	if (from->len == 0)
		return;
	size_t n;
	assert_int_equal(BIO_write_ex(cl->rbio, from->data, from->len, &n), 1);
	assert_int_equal(n, from->len);
}

/* Server output → client. */
static size_t to_client(struct tls_conn *s, struct client *cl)
{
	struct buf out = BUF_INIT;
	tls_conn_output(s, &out);
	client_feed(cl, &out);
	size_t n = out.len;
	buf_done(&out);
	return n;
}

/* Client output → server; returns tls_conn_input's result, *moved what was fed. */
static int to_server(struct client *cl, struct tls_conn *s, struct buf *plain, size_t *moved)
{
	struct buf in = BUF_INIT;
	client_drain(cl, &in);
	*moved = in.len;
	int r = in.len ? tls_conn_input(s, in.data, in.len, plain) : 0;
	buf_done(&in);
	return r;
}

/* Runs the handshake to completion on both sides. */
static void handshake(struct client *cl, struct tls_conn *s)
{
	struct buf plain = BUF_INIT;
	for (int round = 0; round < 10; round++) {
		int r = SSL_do_handshake(cl->ssl);
		if (r <= 0) {
			int e = SSL_get_error(cl->ssl, r);
			if (e != SSL_ERROR_WANT_READ)
				fail_msg("client handshake: %d, verify %ld", e,
					 SSL_get_verify_result(cl->ssl));
		}
		size_t moved;
		assert_int_equal(to_server(cl, s, &plain, &moved), 0);
		size_t back = to_client(s, cl);
		if (r == 1 && tls_conn_handshake_done(s) && moved == 0 && back == 0)
			break;
	}
	assert_true(SSL_is_init_finished(cl->ssl));
	assert_true(tls_conn_handshake_done(s));
	assert_int_equal(SSL_get_verify_result(cl->ssl), X509_V_OK);
	/* No application data was sent. */
	assert_int_equal(plain.len, 0);
	buf_done(&plain);
}

static void client_read_all(struct client *cl, struct buf *got)
{
	for (;;) {
		buf_reserve(got, 16384);
		size_t n;
		if (!SSL_read_ex(cl->ssl, got->data + got->len, got->cap - got->len - 1, &n)) {
			assert_int_equal(SSL_get_error(cl->ssl, 0), SSL_ERROR_WANT_READ);
			return;
		}
		got->len += n;
		got->data[got->len] = 0;
	}
}

static void fill_pattern(uint8_t *p, size_t n, uint32_t seed)
{
	for (size_t i = 0; i < n; i++) {
		seed = seed * 1103515245u + 12345u;
		p[i] = (uint8_t)(seed >> 16);
	}
}

static void test_handshake_versions(void **state)
{
	(void)state;
	static const int versions[] = {TLS1_3_VERSION, TLS1_2_VERSION};
	for (size_t i = 0; i < ARRAY_SIZE(versions); i++) {
		struct tls_ctx *ctx = server_ctx();
		struct tls_conn *s = server_conn(ctx);
		struct client cl;
		client_init(&cl, versions[i], versions[i], OFFER_BOTH, sizeof(OFFER_BOTH) - 1);
		assert_false(tls_conn_handshake_done(s));
		handshake(&cl, s);
		assert_int_equal(SSL_version(cl.ssl), versions[i]);
		assert_string_equal(tls_conn_alpn(s), "h2");
		/* The server sent good + int: the client built the path to the root from it. */
		STACK_OF(X509) *chain = SSL_get_peer_cert_chain(cl.ssl);
		assert_non_null(chain);
		assert_int_equal(sk_X509_num(chain), 2);
		client_done(&cl);
		tls_conn_free(s);
		tls_ctx_free(ctx);
	}
}

static void test_alpn(void **state)
{
	(void)state;
	static const struct {
		const uint8_t *offer;
		size_t len;
		const char *want;
	} cases[] = {
		{OFFER_BOTH, sizeof(OFFER_BOTH) - 1, "h2"},
		{OFFER_H2, sizeof(OFFER_H2) - 1, "h2"},
		{OFFER_H11, sizeof(OFFER_H11) - 1, "http/1.1"},
		{OFFER_OTHER, sizeof(OFFER_OTHER) - 1, NULL},
		{NULL, 0, NULL},
	};
	struct tls_ctx *ctx = server_ctx();
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		for (int v = TLS1_2_VERSION; v <= TLS1_3_VERSION; v++) {
			struct tls_conn *s = server_conn(ctx);
			struct client cl;
			client_init(&cl, v, v, cases[i].offer, cases[i].len);
			assert_null(tls_conn_alpn(s));
			handshake(&cl, s);
			const unsigned char *p;
			unsigned n;
			SSL_get0_alpn_selected(cl.ssl, &p, &n);
			if (cases[i].want) {
				assert_string_equal(tls_conn_alpn(s), cases[i].want);
				assert_int_equal(n, strlen(cases[i].want));
				assert_memory_equal(p, cases[i].want, n);
			} else {
				assert_null(tls_conn_alpn(s));
				assert_int_equal(n, 0);
			}
			client_done(&cl);
			tls_conn_free(s);
		}
	}
	tls_ctx_free(ctx);
}

static void test_data_both_ways(void **state)
{
	(void)state;
	const size_t big = 1 << 20;
	_cleanup_free_ uint8_t *up = xmalloc(big);
	_cleanup_free_ uint8_t *down = xmalloc(big);
	fill_pattern(up, big, 1);
	fill_pattern(down, big, 2);

	for (int v = TLS1_2_VERSION; v <= TLS1_3_VERSION; v++) {
		struct tls_ctx *ctx = server_ctx();
		struct tls_conn *s = server_conn(ctx);
		struct client cl;
		client_init(&cl, v, v, OFFER_H11, sizeof(OFFER_H11) - 1);
		handshake(&cl, s);

		/* A small request, in one piece. */
		static const char req[] = "GET /ocsp HTTP/1.1\r\nHost: x\r\n\r\n";
		assert_int_equal(SSL_write(cl.ssl, req, sizeof(req) - 1), (int)sizeof(req) - 1);
		struct buf plain = BUF_INIT;
		size_t moved;
		assert_int_equal(to_server(&cl, s, &plain, &moved), 0);
		assert_int_equal(plain.len, sizeof(req) - 1);
		assert_memory_equal(plain.data, req, plain.len);
		/* The buffer stays a C string. */
		assert_int_equal(plain.data[plain.len], 0);
		buf_reset(&plain);

		/* 1 MiB upload, fed in odd-sized pieces that split records anywhere. */
		assert_int_equal(SSL_write(cl.ssl, up, (int)big), (int)big);
		struct buf cipher = BUF_INIT;
		client_drain(&cl, &cipher);
		assert_true(cipher.len > big);
		for (size_t off = 0; off < cipher.len;) {
			size_t n = MIN(cipher.len - off, (size_t)997);
			assert_int_equal(tls_conn_input(s, cipher.data + off, n, &plain), 0);
			off += n;
		}
		assert_int_equal(plain.len, big);
		assert_memory_equal(plain.data, up, big);
		buf_done(&cipher);

		/* 1 MiB download in one write, then a small one after it. */
		assert_int_equal(tls_conn_write(s, down, big), 0);
		assert_int_equal(tls_conn_write(s, (const uint8_t *)"tail", 4), 0);
		assert_int_equal(tls_conn_write(s, (const uint8_t *)"", 0), 0);
		assert_true(to_client(s, &cl) > big);
		struct buf got = BUF_INIT;
		client_read_all(&cl, &got);
		assert_int_equal(got.len, big + 4);
		assert_memory_equal(got.data, down, big);
		assert_memory_equal(got.data + big, "tail", 4);
		/* Nothing left behind. */
		struct buf out = BUF_INIT;
		tls_conn_output(s, &out);
		assert_int_equal(out.len, 0);

		buf_done(&out);
		buf_done(&got);
		buf_done(&plain);
		client_done(&cl);
		tls_conn_free(s);
		tls_ctx_free(ctx);
	}
}

/* The ClientHello arriving one byte per read must still complete the handshake. */
static void test_byte_at_a_time(void **state)
{
	(void)state;
	struct tls_ctx *ctx = server_ctx();
	struct tls_conn *s = server_conn(ctx);
	struct client cl;
	client_init(&cl, TLS1_2_VERSION, TLS1_3_VERSION, OFFER_BOTH, sizeof(OFFER_BOTH) - 1);
	assert_int_equal(SSL_do_handshake(cl.ssl), -1);
	struct buf hello = BUF_INIT, plain = BUF_INIT, out = BUF_INIT;
	client_drain(&cl, &hello);
	assert_true(hello.len > 5);
	for (size_t i = 0; i < hello.len; i++) {
		assert_int_equal(tls_conn_input(s, hello.data + i, 1, &plain), 0);
		tls_conn_output(s, &out);
		/* The server answers only once the whole ClientHello is in. */
		assert_int_equal(out.len == 0, i + 1 < hello.len);
	}
	/* ServerHello is a handshake record. */
	assert_int_equal(out.data[0], 22);
	client_feed(&cl, &out);
	handshake(&cl, s);
	assert_int_equal(SSL_version(cl.ssl), TLS1_3_VERSION);
	buf_done(&hello);
	buf_done(&plain);
	buf_done(&out);
	client_done(&cl);
	tls_conn_free(s);
	tls_ctx_free(ctx);
}

static void test_write_before_handshake(void **state)
{
	(void)state;
	struct tls_ctx *ctx = server_ctx();
	struct tls_conn *s = server_conn(ctx);
	assert_int_equal(tls_conn_write(s, (const uint8_t *)"x", 1), -EAGAIN);

	/* Midway: ServerHello sent, client Finished not yet received. */
	struct client cl;
	client_init(&cl, TLS1_3_VERSION, TLS1_3_VERSION, NULL, 0);
	SSL_do_handshake(cl.ssl);
	struct buf plain = BUF_INIT, out = BUF_INIT;
	size_t moved;
	assert_int_equal(to_server(&cl, s, &plain, &moved), 0);
	assert_true(moved > 0);
	assert_false(tls_conn_handshake_done(s));
	assert_int_equal(tls_conn_write(s, (const uint8_t *)"x", 1), -EAGAIN);
	/* Shutting down during the handshake sends nothing more and does not break the object. */
	tls_conn_output(s, &out);
	assert_true(out.len > 0);
	buf_reset(&out);
	tls_conn_shutdown(s);
	tls_conn_output(s, &out);
	assert_int_equal(out.len, 0);

	buf_done(&plain);
	buf_done(&out);
	client_done(&cl);
	tls_conn_free(s);
	tls_ctx_free(ctx);
}

static void test_bad_pem(void **state)
{
	(void)state;
	char err[256];
	struct tls_ctx *ctx = NULL;

	/* The fixtures load in every accepted layout. */
	assert_int_equal(ctx_from("good-chain.pem", "good.key", err, sizeof(err), &ctx), 0);
	tls_ctx_free(ctx);
	assert_int_equal(ctx_from("good.crt", "good.key", err, sizeof(err), &ctx), 0);
	tls_ctx_free(ctx);
	/* Key and certificates in one file, used for both. */
	assert_int_equal(
		ctx_from("good-key-chain.pem", "good-key-chain.pem", err, sizeof(err), &ctx), 0);
	tls_ctx_free(ctx);

	/* Wrong key: revoked.key belongs to another leaf. */
	err[0] = 0;
	ctx = NULL;
	assert_int_equal(ctx_from("good-chain.pem", "revoked.key", err, sizeof(err), &ctx),
			 -EINVAL);
	assert_null(ctx);
	assert_non_null(strstr(err, "does not match"));
	/* An RSA key for an EC certificate. */
	err[0] = 0;
	assert_int_equal(ctx_from("good-chain.pem", "int.key", err, sizeof(err), &ctx), -EINVAL);
	assert_string_equal(err, "private key does not match the certificate");

	size_t cl, kl;
	_cleanup_free_ uint8_t *chain = fixture_load("good-chain.pem", &cl);
	_cleanup_free_ uint8_t *key = fixture_load("good.key", &kl);
	const char *goodkey = (const char *)key;
	const char *goodchain = (const char *)chain;

	err[0] = 0;
	assert_int_equal(ctx_from_mem("not a certificate", goodkey, err, sizeof(err)), -EBADMSG);
	assert_non_null(strstr(err, "certificate"));
	assert_int_equal(ctx_from_mem("", goodkey, err, sizeof(err)), -EBADMSG);
	err[0] = 0;
	assert_int_equal(ctx_from_mem(goodchain, "garbage", err, sizeof(err)), -EBADMSG);
	assert_non_null(strstr(err, "key"));
	assert_int_equal(ctx_from_mem(goodchain, "", err, sizeof(err)), -EBADMSG);
	/* A file of certificates only, given as the key. */
	assert_int_equal(ctx_from_mem(goodchain, goodchain, err, sizeof(err)), -EBADMSG);
	/* A key given as the chain. */
	assert_int_equal(ctx_from_mem(goodkey, goodkey, err, sizeof(err)), -EBADMSG);

	/* A damaged second certificate: the base64 of int is cut short. */
	_cleanup_free_ char *cut = xstrdup(goodchain);
	char *second = strstr(strstr(cut, "-----END CERTIFICATE-----") + 1, "-----BEGIN");
	assert_non_null(second);
	char *body = strchr(second, '\n') + 1;
	memmove(body + 10, strstr(body, "-----END"), strlen(strstr(body, "-----END")) + 1);
	assert_int_equal(ctx_from_mem(cut, goodkey, err, sizeof(err)), -EBADMSG);
	assert_non_null(strstr(err, "certificate 2"));

	/* A damaged key body. */
	_cleanup_free_ char *badkey = xstrdup(goodkey);
	char *kb = strchr(badkey, '\n') + 1;
	kb[5] = kb[5] == 'A' ? 'B' : 'A';
	kb[6] = '*';
	assert_int_equal(ctx_from_mem(goodchain, badkey, err, sizeof(err)), -EBADMSG);

	/* An encrypted key fails instead of prompting for a passphrase on the terminal. */
	static const char enc_hdr[] =
		"-----BEGIN ENCRYPTED PRIVATE KEY-----\n"
		"MIHsMFcGCSqGSIb3DQEFDTBKMCkGCSqGSIb3DQEFDDAcBAhAAAAAAAAAAAICCAAw\n"
		"-----END ENCRYPTED PRIVATE KEY-----\n";
	assert_int_equal(ctx_from_mem(goodchain, enc_hdr, err, sizeof(err)), -EBADMSG);

	/* No error buffer at all is allowed. */
	assert_int_equal(ctx_from_mem("x", goodkey, NULL, 0), -EBADMSG);
	/* A tiny one is truncated, not overrun. */
	char tiny[4] = "zzz";
	assert_int_equal(ctx_from_mem("x", goodkey, tiny, 3), -EBADMSG);
	assert_int_equal(strlen(tiny), 2);
	/* Nothing is left in OpenSSL's queue for the next caller. */
	assert_int_equal(ERR_peek_error(), 0);
}

static void test_garbage_hello(void **state)
{
	(void)state;
	struct tls_ctx *ctx = server_ctx();
	struct buf plain = BUF_INIT, out = BUF_INIT;

	/* A handshake record whose body is not a ClientHello. */
	static const uint8_t bad[] = {22, 3, 1, 0, 8, 1, 0, 0, 4, 0xde, 0xad, 0xbe, 0xef};
	struct tls_conn *s = server_conn(ctx);
	assert_int_equal(tls_conn_input(s, bad, sizeof(bad), &plain), -EPROTO);
	tls_conn_output(s, &out);
	/* A fatal alert record: type 21, level 2. */
	assert_true(out.len >= 7);
	assert_int_equal(out.data[0], 21);
	assert_int_equal(out.data[5], 2);
	assert_int_equal(plain.len, 0);
	assert_false(tls_conn_handshake_done(s));
	/* The failure is sticky, and the object stays safe to use. */
	buf_reset(&out);
	assert_int_equal(tls_conn_input(s, bad, sizeof(bad), &plain), -EPROTO);
	assert_int_equal(tls_conn_write(s, (const uint8_t *)"x", 1), -EPROTO);
	tls_conn_shutdown(s);
	tls_conn_output(s, &out);
	assert_int_equal(out.len, 0);
	assert_null(tls_conn_alpn(s));
	tls_conn_free(s);

	/* Plain HTTP on the TLS port. */
	static const char http[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
	s = server_conn(ctx);
	assert_int_equal(tls_conn_input(s, (const uint8_t *)http, sizeof(http) - 1, &plain),
			 -EPROTO);
	assert_int_equal(plain.len, 0);
	tls_conn_free(s);

	/* Random bytes. */
	uint8_t noise[300];
	fill_pattern(noise, sizeof(noise), 7);
	s = server_conn(ctx);
	assert_int_equal(tls_conn_input(s, noise, sizeof(noise), &plain), -EPROTO);
	tls_conn_free(s);

	assert_int_equal(ERR_peek_error(), 0);
	buf_done(&plain);
	buf_done(&out);
	tls_ctx_free(ctx);
}

/* A record corrupted after the handshake is a protocol failure, with an alert. */
static void test_corrupt_record(void **state)
{
	(void)state;
	struct tls_ctx *ctx = server_ctx();
	struct tls_conn *s = server_conn(ctx);
	struct client cl;
	client_init(&cl, TLS1_3_VERSION, TLS1_3_VERSION, NULL, 0);
	handshake(&cl, s);
	assert_int_equal(SSL_write(cl.ssl, "hello", 5), 5);
	struct buf in = BUF_INIT, plain = BUF_INIT, out = BUF_INIT;
	client_drain(&cl, &in);
	in.data[in.len - 1] ^= 1;
	assert_int_equal(tls_conn_input(s, in.data, in.len, &plain), -EPROTO);
	assert_int_equal(plain.len, 0);
	tls_conn_output(s, &out);
	assert_true(out.len > 0);
	assert_int_equal(out.data[0], 23); /* TLS 1.3 hides the alert in an application record */
	client_feed(&cl, &out);
	char tmp[16];
	assert_true(SSL_read(cl.ssl, tmp, sizeof(tmp)) <= 0);
	assert_int_equal(SSL_get_error(cl.ssl, 0), SSL_ERROR_SSL);
	/* bad_record_mac */
	assert_int_equal(ERR_GET_REASON(ERR_peek_last_error()), SSL_R_SSLV3_ALERT_BAD_RECORD_MAC);
	ERR_clear_error();
	buf_done(&in);
	buf_done(&plain);
	buf_done(&out);
	client_done(&cl);
	tls_conn_free(s);
	tls_ctx_free(ctx);
}

static void test_close_notify(void **state)
{
	(void)state;
	for (int v = TLS1_2_VERSION; v <= TLS1_3_VERSION; v++) {
		struct tls_ctx *ctx = server_ctx();
		struct tls_conn *s = server_conn(ctx);
		struct client cl;
		client_init(&cl, v, v, OFFER_BOTH, sizeof(OFFER_BOTH) - 1);
		handshake(&cl, s);

		/* Data and close_notify in one read: the data still comes out. */
		assert_int_equal(SSL_write(cl.ssl, "bye", 3), 3);
		assert_int_equal(SSL_shutdown(cl.ssl), 0);
		struct buf plain = BUF_INIT, out = BUF_INIT;
		size_t moved;
		assert_int_equal(to_server(&cl, s, &plain, &moved), -ESHUTDOWN);
		assert_int_equal(plain.len, 3);
		assert_memory_equal(plain.data, "bye", 3);
		/* Sticky. */
		assert_int_equal(tls_conn_input(s, (const uint8_t *)"x", 1, &plain), -ESHUTDOWN);
		/* A response may still go out before our own close_notify. */
		assert_int_equal(tls_conn_write(s, (const uint8_t *)"ok", 2), 0);
		tls_conn_shutdown(s);
		assert_int_equal(tls_conn_write(s, (const uint8_t *)"late", 4), -ESHUTDOWN);
		to_client(s, &cl);
		char tmp[8];
		assert_int_equal(SSL_read(cl.ssl, tmp, sizeof(tmp)), 2);
		assert_memory_equal(tmp, "ok", 2);
		assert_true(SSL_read(cl.ssl, tmp, sizeof(tmp)) <= 0);
		assert_int_equal(SSL_get_error(cl.ssl, 0), SSL_ERROR_ZERO_RETURN);
		assert_int_equal(SSL_shutdown(cl.ssl), 1);

		buf_done(&plain);
		buf_done(&out);
		client_done(&cl);
		tls_conn_free(s);
		tls_ctx_free(ctx);
	}
}

/* The server closes first; the client sees a clean close_notify. */
static void test_server_shutdown(void **state)
{
	(void)state;
	struct tls_ctx *ctx = server_ctx();
	struct tls_conn *s = server_conn(ctx);
	struct client cl;
	client_init(&cl, TLS1_2_VERSION, TLS1_3_VERSION, NULL, 0);
	handshake(&cl, s);
	tls_conn_shutdown(s);
	tls_conn_shutdown(s); /* once only */
	struct buf out = BUF_INIT, plain = BUF_INIT;
	tls_conn_output(s, &out);
	/* One alert record (TLS 1.3 wraps it: type 23, 5 + 2 + 1 + 16 bytes). */
	assert_int_equal(out.len, 24);
	client_feed(&cl, &out);
	char tmp[8];
	assert_true(SSL_read(cl.ssl, tmp, sizeof(tmp)) <= 0);
	assert_int_equal(SSL_get_error(cl.ssl, 0), SSL_ERROR_ZERO_RETURN);
	assert_int_equal(tls_conn_write(s, (const uint8_t *)"x", 1), -ESHUTDOWN);
	/* The client's answering close_notify. */
	assert_int_equal(SSL_shutdown(cl.ssl), 1);
	size_t moved;
	assert_int_equal(to_server(&cl, s, &plain, &moved), -ESHUTDOWN);
	buf_done(&out);
	buf_done(&plain);
	client_done(&cl);
	tls_conn_free(s);
	tls_ctx_free(ctx);
}

static void test_old_versions_refused(void **state)
{
	(void)state;
	static const int versions[] = {TLS1_VERSION, TLS1_1_VERSION};
	struct tls_ctx *ctx = server_ctx();
	for (size_t i = 0; i < ARRAY_SIZE(versions); i++) {
		struct tls_conn *s = server_conn(ctx);
		struct client cl;
		client_init(&cl, TLS1_VERSION, versions[i], NULL, 0);
		assert_int_equal(SSL_do_handshake(cl.ssl), -1);
		struct buf hello = BUF_INIT, plain = BUF_INIT, out = BUF_INIT;
		client_drain(&cl, &hello);
		/* The client did offer at most that version: ClientHello.legacy_version. */
		assert_true(hello.len > 11);
		assert_int_equal((hello.data[9] << 8) | hello.data[10], versions[i]);
		assert_int_equal(tls_conn_input(s, hello.data, hello.len, &plain), -EPROTO);
		tls_conn_output(s, &out);
		/* Fatal protocol_version alert. */
		assert_int_equal(out.len, 7);
		assert_int_equal(out.data[0], 21);
		assert_int_equal(out.data[5], 2);
		assert_int_equal(out.data[6], 70);
		assert_false(tls_conn_handshake_done(s));
		buf_done(&hello);
		buf_done(&plain);
		buf_done(&out);
		client_done(&cl);
		tls_conn_free(s);
	}
	tls_ctx_free(ctx);
}

/* A TLS 1.2 client asking to renegotiate is refused, and the connection keeps working. */
static void test_no_renegotiation(void **state)
{
	(void)state;
	struct tls_ctx *ctx = server_ctx();
	struct tls_conn *s = server_conn(ctx);
	struct client cl;
	client_init(&cl, TLS1_2_VERSION, TLS1_2_VERSION, NULL, 0);
	handshake(&cl, s);
	assert_int_equal(SSL_renegotiate(cl.ssl), 1);
	assert_int_equal(SSL_do_handshake(cl.ssl), -1);
	struct buf plain = BUF_INIT, out = BUF_INIT;
	size_t moved;
	assert_int_equal(to_server(&cl, s, &plain, &moved), 0);
	assert_true(moved > 0);
	tls_conn_output(s, &out);
	/* Only an encrypted warning alert (no_renegotiation) comes back, no ServerHello. */
	assert_true(out.len > 0);
	assert_int_equal(out.data[0], 21);
	assert_int_equal(out.len, 5 + (size_t)((out.data[3] << 8) | out.data[4]));
	client_feed(&cl, &out);
	/* The client gives up on renegotiation. */
	assert_true(SSL_do_handshake(cl.ssl) <= 0);
	ERR_clear_error();
	buf_done(&plain);
	buf_done(&out);
	client_done(&cl);
	tls_conn_free(s);
	tls_ctx_free(ctx);
}

/* TLS 1.3 KeyUpdate from the client is answered, and data keeps flowing both ways. */
static void test_key_update(void **state)
{
	(void)state;
	struct tls_ctx *ctx = server_ctx();
	struct tls_conn *s = server_conn(ctx);
	struct client cl;
	client_init(&cl, TLS1_3_VERSION, TLS1_3_VERSION, OFFER_H2, sizeof(OFFER_H2) - 1);
	handshake(&cl, s);
	assert_int_equal(SSL_key_update(cl.ssl, SSL_KEY_UPDATE_REQUESTED), 1);
	assert_int_equal(SSL_write(cl.ssl, "ping", 4), 4);
	struct buf plain = BUF_INIT, got = BUF_INIT;
	size_t moved;
	assert_int_equal(to_server(&cl, s, &plain, &moved), 0);
	assert_int_equal(plain.len, 4);
	assert_memory_equal(plain.data, "ping", 4);
	assert_int_equal(tls_conn_write(s, (const uint8_t *)"pong", 4), 0);
	to_client(s, &cl);
	client_read_all(&cl, &got);
	assert_int_equal(got.len, 4);
	assert_memory_equal(got.data, "pong", 4);
	buf_done(&plain);
	buf_done(&got);
	client_done(&cl);
	tls_conn_free(s);
	tls_ctx_free(ctx);
}

/* A second connection resumes the first one's session from a ticket. */
static void test_resumption(void **state)
{
	(void)state;
	struct tls_ctx *ctx = server_ctx();
	for (int v = TLS1_2_VERSION; v <= TLS1_3_VERSION; v++) {
		SSL_SESSION *sess = NULL;
		for (int round = 0; round < 2; round++) {
			struct tls_conn *s = server_conn(ctx);
			struct client cl;
			client_init(&cl, v, v, OFFER_BOTH, sizeof(OFFER_BOTH) - 1);
			if (sess)
				assert_int_equal(SSL_set_session(cl.ssl, sess), 1);
			handshake(&cl, s);
			/* TLS 1.3 tickets arrive after the handshake: let the client read them. */
			struct buf got = BUF_INIT;
			client_read_all(&cl, &got);
			assert_int_equal(got.len, 0);
			assert_int_equal(SSL_session_reused(cl.ssl), round);
			assert_string_equal(tls_conn_alpn(s), "h2");
			if (!sess) {
				sess = SSL_get1_session(cl.ssl);
				assert_non_null(sess);
				assert_int_equal(SSL_SESSION_is_resumable(sess), 1);
			}
			/* OpenSSL spoils the session of a client freed without close_notify. */
			assert_true(SSL_shutdown(cl.ssl) >= 0);
			buf_done(&got);
			client_done(&cl);
			tls_conn_free(s);
		}
		SSL_SESSION_free(sess);
	}
	tls_ctx_free(ctx);
}

/* Connections hold the context: it can be replaced (certificate reload) under them. */
static void test_ctx_outlived(void **state)
{
	(void)state;
	struct tls_ctx *ctx = server_ctx();
	struct tls_conn *s = server_conn(ctx);
	tls_ctx_free(ctx);
	struct client cl;
	client_init(&cl, TLS1_2_VERSION, TLS1_3_VERSION, OFFER_BOTH, sizeof(OFFER_BOTH) - 1);
	handshake(&cl, s);
	assert_string_equal(tls_conn_alpn(s), "h2");
	client_done(&cl);
	tls_conn_free(s);
	tls_conn_free(NULL);
	tls_ctx_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_handshake_versions),
		cmocka_unit_test(test_alpn),
		cmocka_unit_test(test_data_both_ways),
		cmocka_unit_test(test_byte_at_a_time),
		cmocka_unit_test(test_write_before_handshake),
		cmocka_unit_test(test_bad_pem),
		cmocka_unit_test(test_garbage_hello),
		cmocka_unit_test(test_corrupt_record),
		cmocka_unit_test(test_close_notify),
		cmocka_unit_test(test_server_shutdown),
		cmocka_unit_test(test_old_versions_refused),
		cmocka_unit_test(test_no_renegotiation),
		cmocka_unit_test(test_key_update),
		cmocka_unit_test(test_resumption),
		cmocka_unit_test(test_ctx_outlived),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
