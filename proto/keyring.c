/* SPDX-License-Identifier: Apache-2.0 */
/*
 * memberlist's encryption: AES-GCM with a 12-byte nonce and a 16-byte tag, keys of 16, 24 or 32
 * bytes, a version byte in front. OpenSSL types stay in this file; its errors become -errno here
 * and its error queue is drained after every failed call.
 */
#include "proto/keyring.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include "proto/buf.h"
#include "proto/macro.h"
#include "proto/mem.h"

enum {
	VERSION_PADDED = 0, /* plaintext PKCS#7-padded to 16 bytes before encryption */
	VERSION_PLAIN = 1,
	KEY_MAX = 32,
	PAD_BLOCK = 16,
	STREAM_TYPE_ENCRYPT = 10, /* memberlist's encryptMsg */
	/* Shortest payloads: version, nonce, (version 0: one block of padding), tag. */
	MIN_PLAIN = 1 + GOSSIP_NONCE_BYTES + GOSSIP_TAG_BYTES,
	MIN_PADDED = MIN_PLAIN + PAD_BLOCK,
};

struct keyring_key {
	size_t len;
	uint8_t bytes[KEY_MAX];
};

struct keyring {
	struct keyring_key *keys; /* keys[0] is the primary */
	size_t n, cap;
	bool version0; /* accept version 0 payloads */
};

DEFINE_TRIVIAL_CLEANUP_FUNC(EVP_CIPHER_CTX *, EVP_CIPHER_CTX_free);

static bool key_len_ok(size_t len)
{
	return len == 16 || len == 24 || len == 32;
}

/* Index of an installed key, or kr->n if absent. */
static size_t key_find(const struct keyring *kr, const uint8_t *key, size_t len)
{
	size_t i;
	for (i = 0; i < kr->n; i++)
		if (kr->keys[i].len == len && CRYPTO_memcmp(kr->keys[i].bytes, key, len) == 0)
			break;
	return i;
}

int keyring_new(const uint8_t *key, size_t len, struct keyring **ret)
{
	if (!key_len_ok(len))
		return -EINVAL;
	struct keyring *kr = xcalloc(1, sizeof(*kr));
	keyring_add(kr, key, len);
	*ret = kr;
	return 0;
}

void keyring_free(struct keyring *kr)
{
	if (!kr)
		return;
	if (kr->keys)
		OPENSSL_cleanse(kr->keys, kr->cap * sizeof(*kr->keys));
	free(kr->keys);
	free(kr);
}

int keyring_add(struct keyring *kr, const uint8_t *key, size_t len)
{
	if (!key_len_ok(len))
		return -EINVAL;
	if (key_find(kr, key, len) < kr->n)
		return 0;
	/* Grow by hand rather than with xgrow: a realloc would leave copies of keys behind. */
	if (kr->n == kr->cap) {
		size_t cap = kr->cap ? kr->cap * 2 : 4;
		struct keyring_key *keys = xcalloc(cap, sizeof(*keys));
		if (kr->keys) {
			memcpy(keys, kr->keys, kr->n * sizeof(*keys));
			OPENSSL_cleanse(kr->keys, kr->cap * sizeof(*kr->keys));
			free(kr->keys);
		}
		kr->keys = keys;
		kr->cap = cap;
	}
	struct keyring_key *k = &kr->keys[kr->n++];
	k->len = len;
	memcpy(k->bytes, key, len);
	return 1;
}

int keyring_use(struct keyring *kr, const uint8_t *key, size_t len)
{
	size_t i = key_find(kr, key, len);
	if (i == kr->n)
		return -ENOENT;
	if (i == 0)
		return 0;
	struct keyring_key k = kr->keys[i];
	memmove(&kr->keys[1], &kr->keys[0], i * sizeof(*kr->keys));
	kr->keys[0] = k;
	OPENSSL_cleanse(&k, sizeof(k));
	return 0;
}

int keyring_remove(struct keyring *kr, const uint8_t *key, size_t len)
{
	size_t i = key_find(kr, key, len);
	if (i == kr->n)
		return -ENOENT;
	if (i == 0)
		return -EBUSY;
	memmove(&kr->keys[i], &kr->keys[i + 1], (kr->n - i - 1) * sizeof(*kr->keys));
	kr->n--;
	OPENSSL_cleanse(&kr->keys[kr->n], sizeof(*kr->keys));
	return 0;
}

void keyring_set_version0(struct keyring *kr, bool accept)
{
	kr->version0 = accept;
}

size_t keyring_count(const struct keyring *kr)
{
	return kr->n;
}

const uint8_t *keyring_get(const struct keyring *kr, size_t i, size_t *ret_len)
{
	if (i >= kr->n)
		return NULL;
	*ret_len = kr->keys[i].len;
	return kr->keys[i].bytes;
}

/* ---- AES-GCM ---- */

static const EVP_CIPHER *gcm_cipher(size_t key_len)
{
	switch (key_len) {
	case 16:
		return EVP_aes_128_gcm();
	case 24:
		return EVP_aes_192_gcm();
	default:
		return EVP_aes_256_gcm();
	}
}

/* Seals plain[0..len) into ct[0..len) followed by the tag. Lengths fit in int (checked by the
 * callers). Returns 0 or -EIO. */
static int gcm_seal(const struct keyring_key *k, const uint8_t *nonce, const uint8_t *aad,
		    size_t aad_len, const uint8_t *plain, size_t len, uint8_t *ct)
{
	_cleanup_(EVP_CIPHER_CTX_freep) EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	int n = 0, fin = 0;
	if (!ctx || EVP_EncryptInit_ex(ctx, gcm_cipher(k->len), NULL, NULL, NULL) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, GOSSIP_NONCE_BYTES, NULL) != 1 ||
	    EVP_EncryptInit_ex(ctx, NULL, NULL, k->bytes, nonce) != 1 ||
	    (aad_len > 0 && EVP_EncryptUpdate(ctx, NULL, &n, aad, (int)aad_len) != 1) ||
	    (len > 0 && EVP_EncryptUpdate(ctx, ct, &n, plain, (int)len) != 1) ||
	    EVP_EncryptFinal_ex(ctx, ct + (len > 0 ? n : 0), &fin) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, GOSSIP_TAG_BYTES, ct + len) != 1) {
		ERR_clear_error();
		return -EIO;
	}
	return 0;
}

/* Opens ct[0..len) + tag[16] into plain[0..len). Returns 0, or -EBADMSG if the key does not
 * authenticate it (plain then holds garbage the caller must wipe). */
static int gcm_open(EVP_CIPHER_CTX *ctx, const struct keyring_key *k, const uint8_t *nonce,
		    const uint8_t *aad, size_t aad_len, const uint8_t *ct, size_t len,
		    const uint8_t *tag, uint8_t *plain)
{
	int n = 0, fin = 0;
	if (EVP_CIPHER_CTX_reset(ctx) != 1 ||
	    EVP_DecryptInit_ex(ctx, gcm_cipher(k->len), NULL, NULL, NULL) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, GOSSIP_NONCE_BYTES, NULL) != 1 ||
	    EVP_DecryptInit_ex(ctx, NULL, NULL, k->bytes, nonce) != 1 ||
	    (aad_len > 0 && EVP_DecryptUpdate(ctx, NULL, &n, aad, (int)aad_len) != 1) ||
	    (len > 0 && EVP_DecryptUpdate(ctx, plain, &n, ct, (int)len) != 1) ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, GOSSIP_TAG_BYTES, (void *)tag) != 1 ||
	    EVP_DecryptFinal_ex(ctx, plain + (len > 0 ? n : 0), &fin) != 1) {
		ERR_clear_error();
		return -EBADMSG;
	}
	return 0;
}

/* OpenSSL counts in int; leave room for the overhead. */
static bool len_ok(size_t len, size_t aad_len)
{
	return len <= (size_t)INT_MAX - 64 && aad_len <= (size_t)INT_MAX;
}

int keyring_encrypt_packet(const struct keyring *kr, const uint8_t nonce[GOSSIP_NONCE_BYTES],
			   const uint8_t *plain, size_t len, const uint8_t *aad, size_t aad_len,
			   struct buf *out)
{
	if (!len_ok(len, aad_len))
		return -EMSGSIZE;
	buf_reserve(out, len + GOSSIP_ENCRYPT_OVERHEAD);
	uint8_t *p = out->data + out->len;
	p[0] = VERSION_PLAIN;
	memcpy(p + 1, nonce, GOSSIP_NONCE_BYTES);
	int r = gcm_seal(&kr->keys[0], nonce, aad, aad_len, plain, len, p + 1 + GOSSIP_NONCE_BYTES);
	if (r < 0) {
		out->data[out->len] = 0;
		return r;
	}
	out->len += len + GOSSIP_ENCRYPT_OVERHEAD;
	out->data[out->len] = 0;
	return 0;
}

int keyring_decrypt_packet(const struct keyring *kr, const uint8_t *in, size_t len,
			   const uint8_t *aad, size_t aad_len, struct buf *out)
{
	if (len < 1 || !(in[0] == VERSION_PLAIN || (in[0] == VERSION_PADDED && kr->version0)))
		return -EBADMSG;
	if (len < (in[0] == VERSION_PLAIN ? (size_t)MIN_PLAIN : (size_t)MIN_PADDED))
		return -EBADMSG;
	if (!len_ok(len, aad_len))
		return -EMSGSIZE;

	const uint8_t *nonce = in + 1;
	const uint8_t *ct = nonce + GOSSIP_NONCE_BYTES;
	size_t ct_len = len - MIN_PLAIN;
	const uint8_t *tag = ct + ct_len;

	_cleanup_(EVP_CIPHER_CTX_freep) EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	if (!ctx) {
		ERR_clear_error();
		return -EIO;
	}
	buf_reserve(out, ct_len);
	uint8_t *plain = out->data + out->len;
	int r = -EBADMSG;
	for (size_t i = 0; i < kr->n && r < 0; i++)
		r = gcm_open(ctx, &kr->keys[i], nonce, aad, aad_len, ct, ct_len, tag, plain);

	size_t plain_len = ct_len;
	if (r == 0 && in[0] == VERSION_PADDED) {
		/* Go strips as many bytes as the last one says without looking at them; senders
		 * always write valid PKCS#7, so we insist on it. */
		uint8_t pad = plain[ct_len - 1];
		if (pad == 0 || pad > PAD_BLOCK || pad > ct_len)
			r = -EBADMSG;
		for (size_t i = 0; r == 0 && i < pad; i++)
			if (plain[ct_len - 1 - i] != pad)
				r = -EBADMSG;
		plain_len = ct_len - (r == 0 ? pad : 0);
	}
	if (r < 0) {
		/* Unauthenticated plaintext never stays behind. */
		OPENSSL_cleanse(plain, ct_len);
		out->data[out->len] = 0;
		return r;
	}
	OPENSSL_cleanse(plain + plain_len, ct_len - plain_len);
	out->len += plain_len;
	out->data[out->len] = 0;
	return 0;
}

/* The frame's additional data: the 5 header bytes, then the label. */
static size_t stream_aad(const uint8_t header[GOSSIP_STREAM_HEADER_BYTES], const uint8_t *label,
			 size_t label_len,
			 uint8_t aad[GOSSIP_STREAM_HEADER_BYTES + GOSSIP_LABEL_MAX])
{
	memcpy(aad, header, GOSSIP_STREAM_HEADER_BYTES);
	if (label_len > 0)
		memcpy(aad + GOSSIP_STREAM_HEADER_BYTES, label, label_len);
	return GOSSIP_STREAM_HEADER_BYTES + label_len;
}

int keyring_encrypt_stream(const struct keyring *kr, const uint8_t nonce[GOSSIP_NONCE_BYTES],
			   const uint8_t *plain, size_t len, const uint8_t *label, size_t label_len,
			   struct buf *out)
{
	if (label_len > GOSSIP_LABEL_MAX)
		return -EINVAL;
	if (len > GOSSIP_STREAM_MAX_PAYLOAD - GOSSIP_ENCRYPT_OVERHEAD)
		return -EMSGSIZE;
	uint32_t payload = (uint32_t)(len + GOSSIP_ENCRYPT_OVERHEAD);
	uint8_t header[GOSSIP_STREAM_HEADER_BYTES] = {
		STREAM_TYPE_ENCRYPT,	 (uint8_t)(payload >> 24), (uint8_t)(payload >> 16),
		(uint8_t)(payload >> 8), (uint8_t)payload,
	};
	uint8_t aad[GOSSIP_STREAM_HEADER_BYTES + GOSSIP_LABEL_MAX];
	size_t aad_len = stream_aad(header, label, label_len, aad);

	size_t start = out->len;
	buf_append(out, header, sizeof(header));
	int r = keyring_encrypt_packet(kr, nonce, plain, len, aad, aad_len, out);
	if (r < 0) {
		out->len = start;
		out->data[start] = 0;
	}
	return r;
}

int keyring_stream_frame_size(const uint8_t *in, size_t len, size_t *ret_size)
{
	if (len < GOSSIP_STREAM_HEADER_BYTES)
		return -EAGAIN;
	if (in[0] != STREAM_TYPE_ENCRYPT)
		return -EBADMSG;
	uint32_t payload =
		(uint32_t)in[1] << 24 | (uint32_t)in[2] << 16 | (uint32_t)in[3] << 8 | in[4];
	if (payload > GOSSIP_STREAM_MAX_PAYLOAD)
		return -EMSGSIZE;
	*ret_size = GOSSIP_STREAM_HEADER_BYTES + (size_t)payload;
	return 0;
}

int keyring_decrypt_stream(const struct keyring *kr, const uint8_t *in, size_t len,
			   const uint8_t *label, size_t label_len, size_t *ret_consumed,
			   struct buf *out)
{
	if (label_len > GOSSIP_LABEL_MAX)
		return -EINVAL;
	size_t size;
	int r = keyring_stream_frame_size(in, len, &size);
	if (r < 0)
		return r;
	if (len < size)
		return -EAGAIN;
	uint8_t aad[GOSSIP_STREAM_HEADER_BYTES + GOSSIP_LABEL_MAX];
	size_t aad_len = stream_aad(in, label, label_len, aad);
	r = keyring_decrypt_packet(kr, in + GOSSIP_STREAM_HEADER_BYTES,
				   size - GOSSIP_STREAM_HEADER_BYTES, aad, aad_len, out);
	if (r < 0)
		return r;
	*ret_consumed = size;
	return 0;
}
