/* SPDX-License-Identifier: Apache-2.0 */
/*
 * gossip/keyring: the memberlist keyring and AES-GCM framing. keyring-vectors.txt was written by
 * a Go program following memberlist v0.2.2's encryptPayload / encryptLocalState with a fixed
 * nonce (tests/fixtures/gossip/README.txt); we must produce and accept the same bytes.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "proto/keyring.h"
#include "proto/buf.h"
#include "proto/macro.h"

static const uint8_t key_a[16] = "0123456789abcdef";
static const uint8_t key_b[24] = "bbbbbbbbbbbbbbbbbbbbbbbb";
static const uint8_t key_c[32] = "cccccccccccccccccccccccccccccccc";
static const uint8_t nonce1[12] = "nonce-one!!!";
static const uint8_t nonce2[12] = "nonce-two!!!";

static void unhex(const char *hex, struct buf *out)
{
	if (strcmp(hex, "-") == 0)
		return;
	size_t n = strlen(hex);
	assert_int_equal(n % 2, 0);
	for (size_t i = 0; i < n; i += 2) {
		unsigned v;
		assert_int_equal(sscanf(hex + i, "%2x", &v), 1);
		buf_append_byte(out, (uint8_t)v);
	}
}

static struct keyring *ring(const uint8_t *key, size_t len)
{
	struct keyring *kr = NULL;
	assert_int_equal(keyring_new(key, len, &kr), 0);
	assert_non_null(kr);
	return kr;
}

static void expect_buf(const struct buf *b, const char *prefix, const struct buf *rest)
{
	size_t pl = strlen(prefix);
	assert_int_equal(b->len, pl + rest->len);
	assert_memory_equal(b->data, prefix, pl);
	if (rest->len)
		assert_memory_equal(b->data + pl, rest->data, rest->len);
	assert_int_equal(b->data[b->len], 0);
}

/* Decrypting fails with `err`, and the output buffer is left as it was. */
static void expect_packet_fails(const struct keyring *kr, const uint8_t *in, size_t len,
				const uint8_t *aad, size_t aad_len, int err)
{
	struct buf out = BUF_INIT;
	buf_append_str(&out, "keep");
	assert_int_equal(keyring_decrypt_packet(kr, in, len, aad, aad_len, &out), err);
	assert_int_equal(out.len, 4);
	assert_string_equal((const char *)out.data, "keep");
	buf_done(&out);
}

static void expect_stream_fails(const struct keyring *kr, const uint8_t *in, size_t len,
				const uint8_t *label, size_t label_len, int err)
{
	struct buf out = BUF_INIT;
	size_t consumed = 12345;
	assert_int_equal(keyring_decrypt_stream(kr, in, len, label, label_len, &consumed, &out),
			 err);
	assert_int_equal(consumed, 12345);
	assert_int_equal(out.len, 0);
	buf_done(&out);
}

/* ---- golden vectors ---- */

static void test_go_vectors(void **state)
{
	(void)state;
	char path[512];
	snprintf(path, sizeof(path), "%s/gossip/keyring-vectors.txt", FIXTURES);
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	char *line = NULL;
	size_t cap = 0;
	int count = 0;
	while (getline(&line, &cap, f) > 0) {
		if (line[0] == '#')
			continue;
		char name[64], mode[16], key_h[80], nonce_h[40], label_h[600], plain_h[4000],
			wire_h[4200];
		int version;
		assert_int_equal(sscanf(line, "%63s %15s %d %79s %39s %599s %3999s %4199s", name,
					mode, &version, key_h, nonce_h, label_h, plain_h, wire_h),
				 8);
		struct buf key = BUF_INIT, nonce = BUF_INIT, label = BUF_INIT, plain = BUF_INIT,
			   wire = BUF_INIT, out = BUF_INIT;
		unhex(key_h, &key);
		unhex(nonce_h, &nonce);
		unhex(label_h, &label);
		unhex(plain_h, &plain);
		unhex(wire_h, &wire);
		assert_int_equal(nonce.len, GOSSIP_NONCE_BYTES);
		/* The vector's key is not the primary: decryption tries every key. */
		struct keyring *kr = ring(key_c, sizeof(key_c));
		assert_int_equal(keyring_add(kr, key.data, key.len), 1);
		struct keyring *enc = ring(key.data, key.len);
		bool stream = strcmp(mode, "stream") == 0;
		if (version == 0) {
			/* Refused unless enabled. */
			expect_packet_fails(kr, wire.data, wire.len, label.data, label.len,
					    -EBADMSG);
			keyring_set_version0(kr, true);
		}

		/* We only send version 1; it must be byte-identical. */
		if (version == 1) {
			buf_append_str(&out, "pre");
			if (stream)
				assert_int_equal(keyring_encrypt_stream(enc, nonce.data, plain.data,
									plain.len, label.data,
									label.len, &out),
						 0);
			else
				assert_int_equal(keyring_encrypt_packet(enc, nonce.data, plain.data,
									plain.len, label.data,
									label.len, &out),
						 0);
			expect_buf(&out, "pre", &wire);
			buf_reset(&out);
		}

		buf_append_str(&out, "pre");
		if (stream) {
			size_t size = 0, consumed = 0;
			assert_int_equal(keyring_stream_frame_size(wire.data, wire.len, &size), 0);
			assert_int_equal(size, wire.len);
			/* Bytes after the frame are not part of it. */
			buf_append_str(&wire, "trailing");
			assert_int_equal(keyring_decrypt_stream(kr, wire.data, wire.len, label.data,
								label.len, &consumed, &out),
					 0);
			assert_int_equal(consumed, size);
		} else {
			assert_int_equal(keyring_decrypt_packet(kr, wire.data, wire.len, label.data,
								label.len, &out),
					 0);
		}
		expect_buf(&out, "pre", &plain);

		/* Without the right key nothing decrypts. */
		struct keyring *other = ring(key_a, sizeof(key_a));
		if (stream)
			expect_stream_fails(other, wire.data, wire.len, label.data, label.len,
					    -EBADMSG);
		else
			expect_packet_fails(other, wire.data, wire.len, label.data, label.len,
					    -EBADMSG);
		keyring_free(other);

		keyring_free(kr);
		keyring_free(enc);
		buf_done(&key);
		buf_done(&nonce);
		buf_done(&label);
		buf_done(&plain);
		buf_done(&wire);
		buf_done(&out);
		count++;
	}
	free(line);
	fclose(f);
	assert_int_equal(count, 4);
}

/* ---- keyring management ---- */

static void test_key_lengths(void **state)
{
	(void)state;
	static const uint8_t k[40] = {0};
	struct keyring *kr = (struct keyring *)&kr;
	static const size_t bad[] = {0, 1, 15, 17, 23, 25, 31, 33, 40};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		assert_int_equal(keyring_new(k, bad[i], &kr), -EINVAL);
		assert_ptr_equal(kr, (struct keyring *)&kr); /* untouched */
	}
	static const size_t good[] = {16, 24, 32};
	for (size_t i = 0; i < ARRAY_SIZE(good); i++) {
		kr = ring(k, good[i]);
		for (size_t j = 0; j < ARRAY_SIZE(bad); j++)
			assert_int_equal(keyring_add(kr, k, bad[j]), -EINVAL);
		assert_int_equal(keyring_count(kr), 1);
		size_t len = 0;
		const uint8_t *got = keyring_get(kr, 0, &len);
		assert_non_null(got);
		assert_int_equal(len, good[i]);
		assert_null(keyring_get(kr, 1, &len));
		assert_int_equal(len, good[i]);
		/* The same bytes at another length are another key. */
		if (good[i] != 16)
			assert_int_equal(keyring_add(kr, k, 16), 1);
		keyring_free(kr);
	}
	keyring_free(NULL);
}

static bool decrypts(const struct keyring *kr, const struct buf *wire, const char *want)
{
	struct buf out = BUF_INIT;
	int r = keyring_decrypt_packet(kr, wire->data, wire->len, NULL, 0, &out);
	bool ok = r == 0 && out.len == strlen(want) && memcmp(out.data, want, out.len) == 0;
	if (r != 0)
		assert_int_equal(r, -EBADMSG);
	buf_done(&out);
	return ok;
}

static void test_rotation(void **state)
{
	(void)state;
	_cleanup_keyring_ struct keyring *kr = ring(key_a, sizeof(key_a));
	_cleanup_keyring_ struct keyring *only_a = ring(key_a, sizeof(key_a));
	_cleanup_keyring_ struct keyring *only_b = ring(key_b, sizeof(key_b));
	struct buf old = BUF_INIT, mid = BUF_INIT, new = BUF_INIT;
	size_t len;

	assert_int_equal(
		keyring_encrypt_packet(kr, nonce1, (const uint8_t *)"old", 3, NULL, 0, &old), 0);

	/* Step 1: install the new key; the old one still encrypts. */
	assert_int_equal(keyring_add(kr, key_b, sizeof(key_b)), 1);
	assert_int_equal(keyring_add(kr, key_b, sizeof(key_b)), 0);
	assert_int_equal(keyring_add(kr, key_a, sizeof(key_a)), 0);
	assert_int_equal(keyring_count(kr), 2);
	assert_memory_equal(keyring_get(kr, 0, &len), key_a, sizeof(key_a));
	assert_int_equal(
		keyring_encrypt_packet(kr, nonce2, (const uint8_t *)"mid", 3, NULL, 0, &mid), 0);
	assert_true(decrypts(only_a, &mid, "mid"));
	assert_false(decrypts(only_b, &mid, "mid"));

	/* Step 2: the new key becomes primary; both keys still decrypt. */
	assert_int_equal(keyring_remove(kr, key_a, sizeof(key_a)), -EBUSY);
	assert_int_equal(keyring_use(kr, key_b, sizeof(key_b)), 0);
	assert_int_equal(keyring_use(kr, key_b, sizeof(key_b)), 0);
	assert_memory_equal(keyring_get(kr, 0, &len), key_b, sizeof(key_b));
	assert_int_equal(len, sizeof(key_b));
	assert_memory_equal(keyring_get(kr, 1, &len), key_a, sizeof(key_a));
	assert_int_equal(
		keyring_encrypt_packet(kr, nonce1, (const uint8_t *)"new", 3, NULL, 0, &new), 0);
	assert_true(decrypts(only_b, &new, "new"));
	assert_false(decrypts(only_a, &new, "new"));
	assert_true(decrypts(kr, &old, "old"));
	assert_true(decrypts(kr, &mid, "mid"));
	assert_true(decrypts(kr, &new, "new"));

	/* Step 3: the old key goes; its messages no longer decrypt. */
	assert_int_equal(keyring_remove(kr, key_b, sizeof(key_b)), -EBUSY);
	assert_int_equal(keyring_remove(kr, key_a, sizeof(key_a)), 0);
	assert_int_equal(keyring_remove(kr, key_a, sizeof(key_a)), -ENOENT);
	assert_int_equal(keyring_use(kr, key_a, sizeof(key_a)), -ENOENT);
	assert_int_equal(keyring_count(kr), 1);
	assert_false(decrypts(kr, &old, "old"));
	assert_true(decrypts(kr, &new, "new"));

	buf_done(&old);
	buf_done(&mid);
	buf_done(&new);
}

static void test_order(void **state)
{
	(void)state;
	/* memberlist's installKeys: the new primary first, the others in their previous order. */
	uint8_t keys[6][16];
	for (int i = 0; i < 6; i++)
		memset(keys[i], 'a' + i, 16);
	_cleanup_keyring_ struct keyring *kr = ring(keys[0], 16);
	for (int i = 1; i < 6; i++) /* past the initial capacity */
		assert_int_equal(keyring_add(kr, keys[i], 16), 1);
	assert_int_equal(keyring_use(kr, keys[3], 16), 0);
	static const int want1[] = {3, 0, 1, 2, 4, 5};
	size_t len;
	for (int i = 0; i < 6; i++)
		assert_memory_equal(keyring_get(kr, (size_t)i, &len), keys[want1[i]], 16);
	assert_int_equal(keyring_remove(kr, keys[1], 16), 0);
	assert_int_equal(keyring_use(kr, keys[5], 16), 0);
	static const int want2[] = {5, 3, 0, 2, 4};
	assert_int_equal(keyring_count(kr), 5);
	for (int i = 0; i < 5; i++)
		assert_memory_equal(keyring_get(kr, (size_t)i, &len), keys[want2[i]], 16);
	/* Every installed key decrypts. */
	for (int i = 0; i < 6; i++) {
		_cleanup_keyring_ struct keyring *one = ring(keys[i], 16);
		struct buf w = BUF_INIT;
		assert_int_equal(
			keyring_encrypt_packet(one, nonce1, (const uint8_t *)"x", 1, NULL, 0, &w),
			0);
		assert_int_equal(decrypts(kr, &w, "x"), i != 1);
		buf_done(&w);
	}
}

/* ---- packets ---- */

static void test_packet_roundtrip(void **state)
{
	(void)state;
	_cleanup_keyring_ struct keyring *kr = ring(key_c, sizeof(key_c));
	uint8_t plain[1500];
	for (size_t i = 0; i < sizeof(plain); i++)
		plain[i] = (uint8_t)(i * 7);
	static const size_t lens[] = {0, 1, 15, 16, 17, 1400, 1500};
	for (size_t i = 0; i < ARRAY_SIZE(lens); i++) {
		struct buf w = BUF_INIT, out = BUF_INIT;
		assert_int_equal(keyring_encrypt_packet(kr, nonce1, plain, lens[i],
							(const uint8_t *)"L", 1, &w),
				 0);
		assert_int_equal(w.len, lens[i] + GOSSIP_ENCRYPT_OVERHEAD);
		assert_int_equal(w.data[0], 1);
		assert_memory_equal(w.data + 1, nonce1, 12);
		assert_int_equal(
			keyring_decrypt_packet(kr, w.data, w.len, (const uint8_t *)"L", 1, &out),
			0);
		assert_int_equal(out.len, lens[i]);
		if (lens[i])
			assert_memory_equal(out.data, plain, lens[i]);
		/* aad is authenticated. */
		expect_packet_fails(kr, w.data, w.len, NULL, 0, -EBADMSG);
		expect_packet_fails(kr, w.data, w.len, (const uint8_t *)"M", 1, -EBADMSG);
		buf_done(&w);
		buf_done(&out);
	}
}

static void test_packet_errors(void **state)
{
	(void)state;
	_cleanup_keyring_ struct keyring *kr = ring(key_a, sizeof(key_a));
	assert_int_equal(keyring_add(kr, key_b, sizeof(key_b)), 1);
	keyring_set_version0(kr, true);
	struct buf w = BUF_INIT;
	assert_int_equal(keyring_encrypt_packet(kr, nonce1, (const uint8_t *)"hello world!", 12,
						NULL, 0, &w),
			 0);
	assert_true(decrypts(kr, &w, "hello world!"));

	/* Too short for its version: version 1 needs 29 bytes, version 0 needs 45. */
	expect_packet_fails(kr, NULL, 0, NULL, 0, -EBADMSG);
	for (size_t n = 1; n < 29; n++)
		expect_packet_fails(kr, w.data, n, NULL, 0, -EBADMSG);
	uint8_t zeros[45] = {0};
	for (size_t n = 1; n < 45; n++)
		expect_packet_fails(kr, zeros, n, NULL, 0, -EBADMSG);
	expect_packet_fails(kr, zeros, 45, NULL, 0, -EBADMSG); /* long enough, not authentic */

	/* Every truncation, and every flipped bit: version, nonce, ciphertext, tag. */
	for (size_t n = 29; n < w.len; n++)
		expect_packet_fails(kr, w.data, n, NULL, 0, -EBADMSG);
	for (size_t i = 0; i < w.len; i++) {
		for (int bit = 0; bit < 8; bit++) {
			w.data[i] ^= (uint8_t)(1u << bit);
			expect_packet_fails(kr, w.data, w.len, NULL, 0, -EBADMSG);
			w.data[i] ^= (uint8_t)(1u << bit);
		}
	}
	/* Unknown versions. */
	for (unsigned v = 2; v < 256; v += 17) {
		uint8_t save = w.data[0];
		w.data[0] = (uint8_t)v;
		expect_packet_fails(kr, w.data, w.len, NULL, 0, -EBADMSG);
		w.data[0] = save;
	}
	/* An extra byte at the end is part of what is authenticated. */
	buf_append_byte(&w, 0);
	expect_packet_fails(kr, w.data, w.len, NULL, 0, -EBADMSG);
	buf_done(&w);
}

/* A version 0 payload as Go's encryptPayload(0, ...) builds it, with the padding given. */
static void seal_v0(const uint8_t *key, size_t key_len, const uint8_t *padded, size_t len,
		    struct buf *out)
{
	const EVP_CIPHER *c = key_len == 16   ? EVP_aes_128_gcm()
			      : key_len == 24 ? EVP_aes_192_gcm()
					      : EVP_aes_256_gcm();
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	uint8_t ct[256], tag[16];
	int n = 0, fin = 0;
	assert_true(len <= sizeof(ct));
	assert_int_equal(EVP_EncryptInit_ex(ctx, c, NULL, key, nonce2), 1);
	assert_int_equal(EVP_EncryptUpdate(ctx, ct, &n, padded, (int)len), 1);
	assert_int_equal(EVP_EncryptFinal_ex(ctx, ct + n, &fin), 1);
	assert_int_equal(EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, 16, tag), 1);
	EVP_CIPHER_CTX_free(ctx);
	buf_append_byte(out, 0);
	buf_append(out, nonce2, 12);
	buf_append(out, ct, len);
	buf_append(out, tag, 16);
}

static void test_version0(void **state)
{
	(void)state;
	_cleanup_keyring_ struct keyring *kr = ring(key_b, sizeof(key_b));
	_cleanup_keyring_ struct keyring *off = ring(key_b, sizeof(key_b));
	keyring_set_version0(kr, true);
	/* Valid PKCS#7 for every plaintext length 0..40. */
	for (size_t n = 0; n <= 40; n++) {
		uint8_t padded[64];
		size_t pad = 16 - n % 16;
		for (size_t i = 0; i < n; i++)
			padded[i] = (uint8_t)('A' + i);
		memset(padded + n, (int)pad, pad);
		struct buf w = BUF_INIT, out = BUF_INIT;
		seal_v0(key_b, sizeof(key_b), padded, n + pad, &w);
		buf_append_str(&out, "pre");
		assert_int_equal(keyring_decrypt_packet(kr, w.data, w.len, NULL, 0, &out), 0);
		assert_int_equal(out.len, 3 + n);
		assert_memory_equal(out.data + 3, padded, n);
		expect_packet_fails(off, w.data, w.len, NULL, 0, -EBADMSG);
		buf_done(&w);
		buf_done(&out);
	}
	/* Bad padding, though authentic: 0, more than a block, more than the data, mixed bytes. */
	static const struct {
		size_t len;
		uint8_t last;
		uint8_t other;
	} bad[] = {
		{16, 0, 0}, {32, 17, 17}, {32, 0xff, 0xff}, {16, 4, 3}, {32, 16, 15},
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		uint8_t padded[64];
		memset(padded, bad[i].other, sizeof(padded));
		padded[bad[i].len - 1] = bad[i].last;
		struct buf w = BUF_INIT;
		seal_v0(key_b, sizeof(key_b), padded, bad[i].len, &w);
		expect_packet_fails(kr, w.data, w.len, NULL, 0, -EBADMSG);
		buf_done(&w);
	}
}

static void test_version_flip(void **state)
{
	(void)state;
	/* The version byte is outside what GCM authenticates: a version 1 payload whose plaintext
	 * ends like padding still decrypts as version 0, shortened. That is why version 0 is off
	 * unless enabled. */
	_cleanup_keyring_ struct keyring *kr = ring(key_a, sizeof(key_a));
	static const char msg[] = "a user message\x03\x03\x03";
	struct buf w = BUF_INIT, out = BUF_INIT;
	assert_int_equal(keyring_encrypt_packet(kr, nonce1, (const uint8_t *)msg, sizeof(msg) - 1,
						NULL, 0, &w),
			 0);
	w.data[0] = 0;
	expect_packet_fails(kr, w.data, w.len, NULL, 0, -EBADMSG);
	keyring_set_version0(kr, true);
	assert_int_equal(keyring_decrypt_packet(kr, w.data, w.len, NULL, 0, &out), 0);
	assert_int_equal(out.len, sizeof(msg) - 1 - 3);
	assert_memory_equal(out.data, msg, out.len);
	keyring_set_version0(kr, false);
	expect_packet_fails(kr, w.data, w.len, NULL, 0, -EBADMSG);
	buf_done(&w);
	buf_done(&out);
}

/* ---- streams ---- */

static void test_stream(void **state)
{
	(void)state;
	_cleanup_keyring_ struct keyring *kr = ring(key_a, sizeof(key_a));
	static const char msg[] = "\x06push-pull state";
	struct buf f = BUF_INIT, out = BUF_INIT;
	assert_int_equal(keyring_encrypt_stream(kr, nonce1, (const uint8_t *)msg, sizeof(msg) - 1,
						(const uint8_t *)"lab", 3, &f),
			 0);
	size_t total = 5 + sizeof(msg) - 1 + GOSSIP_ENCRYPT_OVERHEAD;
	assert_int_equal(f.len, total);
	assert_int_equal(f.data[0], 0x0a);
	assert_int_equal(f.data[1], 0);
	assert_int_equal(f.data[2], 0);
	assert_int_equal(f.data[3], 0);
	assert_int_equal(f.data[4], total - 5);

	size_t consumed = 0;
	assert_int_equal(keyring_decrypt_stream(kr, f.data, f.len, (const uint8_t *)"lab", 3,
						&consumed, &out),
			 0);
	assert_int_equal(consumed, total);
	assert_int_equal(out.len, sizeof(msg) - 1);
	assert_memory_equal(out.data, msg, out.len);

	/* Incomplete frames ask for more; nothing is decrypted until the frame is whole. */
	for (size_t n = 0; n < f.len; n++)
		expect_stream_fails(kr, f.data, n, (const uint8_t *)"lab", 3, -EAGAIN);
	/* The label and the header are authenticated. */
	expect_stream_fails(kr, f.data, f.len, NULL, 0, -EBADMSG);
	expect_stream_fails(kr, f.data, f.len, (const uint8_t *)"lab!", 4, -EBADMSG);
	for (size_t i = 5; i < f.len; i++) {
		f.data[i] ^= 0x01;
		expect_stream_fails(kr, f.data, f.len, (const uint8_t *)"lab", 3, -EBADMSG);
		f.data[i] ^= 0x01;
	}
	/* A shorter declared length: header bytes and payload no longer match. */
	buf_append_byte(&f, 0);
	f.data[4]++;
	expect_stream_fails(kr, f.data, f.len, (const uint8_t *)"lab", 3, -EBADMSG);
	f.data[4] -= 2;
	expect_stream_fails(kr, f.data, f.len, (const uint8_t *)"lab", 3, -EBADMSG);
	f.data[4]++;
	/* Not an encrypted frame. */
	f.data[0] = 0x06;
	expect_stream_fails(kr, f.data, f.len, (const uint8_t *)"lab", 3, -EBADMSG);
	f.data[0] = 0x0a;

	/* Labels longer than the wire allows. */
	uint8_t label[256] = {0};
	expect_stream_fails(kr, f.data, f.len, label, 256, -EINVAL);
	buf_reset(&out);
	assert_int_equal(
		keyring_encrypt_stream(kr, nonce1, (const uint8_t *)"x", 1, label, 256, &out),
		-EINVAL);
	assert_int_equal(out.len, 0);
	assert_int_equal(
		keyring_encrypt_stream(kr, nonce1, (const uint8_t *)"x", 1, label, 255, &out), 0);
	assert_int_equal(keyring_decrypt_stream(kr, out.data, out.len, label, 255, &consumed, &f),
			 0);
	buf_done(&f);
	buf_done(&out);
}

static void test_stream_declared_length(void **state)
{
	(void)state;
	_cleanup_keyring_ struct keyring *kr = ring(key_a, sizeof(key_a));
	size_t size = 777;
	uint8_t h[8] = {0x0a, 0, 0, 0, 0};

	assert_int_equal(keyring_stream_frame_size(h, 4, &size), -EAGAIN);
	assert_int_equal(keyring_stream_frame_size(h, 0, &size), -EAGAIN);
	assert_int_equal(size, 777);
	/* Declared lengths too small to be a payload are found out by decryption. */
	assert_int_equal(keyring_stream_frame_size(h, 5, &size), 0);
	assert_int_equal(size, 5);
	expect_stream_fails(kr, h, 5, NULL, 0, -EBADMSG);

	/* Exactly the limit is fine (and needs that many bytes); one more is refused at once. */
	uint32_t max = GOSSIP_STREAM_MAX_PAYLOAD;
	h[1] = (uint8_t)(max >> 24);
	h[2] = (uint8_t)(max >> 16);
	h[3] = (uint8_t)(max >> 8);
	h[4] = (uint8_t)max;
	assert_int_equal(keyring_stream_frame_size(h, 5, &size), 0);
	assert_int_equal(size, 5 + (size_t)max);
	struct buf out = BUF_INIT;
	size_t consumed = 0;
	assert_int_equal(keyring_decrypt_stream(kr, h, sizeof(h), NULL, 0, &consumed, &out),
			 -EAGAIN);
	assert_null(out.data); /* nothing allocated from the declared size */
	h[4]++;
	assert_int_equal(keyring_stream_frame_size(h, 5, &size), -EMSGSIZE);
	assert_int_equal(keyring_decrypt_stream(kr, h, 5, NULL, 0, &consumed, &out), -EMSGSIZE);
	memset(h + 1, 0xff, 4);
	assert_int_equal(keyring_stream_frame_size(h, 5, &size), -EMSGSIZE);
	assert_int_equal(keyring_decrypt_stream(kr, h, 5, NULL, 0, &consumed, &out), -EMSGSIZE);
	assert_null(out.data);
	h[0] = 0x09;
	assert_int_equal(keyring_stream_frame_size(h, 5, &size), -EBADMSG);

	/* Sending: the largest plaintext whose frame peers accept, and one byte more. */
	size_t big = GOSSIP_STREAM_MAX_PAYLOAD - GOSSIP_ENCRYPT_OVERHEAD;
	uint8_t *plain = calloc(1, big + 1);
	assert_non_null(plain);
	assert_int_equal(keyring_encrypt_stream(kr, nonce1, plain, big + 1, NULL, 0, &out),
			 -EMSGSIZE);
	assert_int_equal(out.len, 0);
	assert_int_equal(keyring_encrypt_stream(kr, nonce1, plain, big, NULL, 0, &out), 0);
	assert_int_equal(out.len, 5 + (size_t)GOSSIP_STREAM_MAX_PAYLOAD);
	struct buf back = BUF_INIT;
	assert_int_equal(keyring_decrypt_stream(kr, out.data, out.len, NULL, 0, &consumed, &back),
			 0);
	assert_int_equal(consumed, out.len);
	assert_int_equal(back.len, big);
	free(plain);
	buf_done(&out);
	buf_done(&back);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_go_vectors),
		cmocka_unit_test(test_key_lengths),
		cmocka_unit_test(test_rotation),
		cmocka_unit_test(test_order),
		cmocka_unit_test(test_packet_roundtrip),
		cmocka_unit_test(test_packet_errors),
		cmocka_unit_test(test_version0),
		cmocka_unit_test(test_version_flip),
		cmocka_unit_test(test_stream),
		cmocka_unit_test(test_stream_declared_length),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
