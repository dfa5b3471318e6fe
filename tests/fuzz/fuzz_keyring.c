/* SPDX-License-Identifier: Apache-2.0 */
/*
 * memberlist AES-GCM framing on arbitrary bytes, with a keyring holding the keys of the Go
 * golden vectors (so the seed corpus decrypts). Decryption succeeds only on authentic input
 * and otherwise leaves the output buffer as it was; stream decryption never asks for more than
 * the declared frame and never accepts a frame over the limit. The input is also encrypted as
 * a plaintext: it must decrypt back, and any single flipped bit must be refused.
 */
#include <assert.h>
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "proto/keyring.h"
#include "proto/buf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Accepts version 0, so that its padding code is fuzzed too. */
static struct keyring *keyring(void)
{
	static struct keyring *kr;
	if (!kr) {
		uint8_t k[32];
		for (int i = 0; i < 32; i++)
			k[i] = (uint8_t)(0x80 + i);
		assert(keyring_new(k, 32, &kr) == 0);
		for (int i = 0; i < 16; i++)
			k[i] = (uint8_t)i;
		assert(keyring_add(kr, k, 16) == 1);
		for (int i = 0; i < 24; i++)
			k[i] = (uint8_t)(0x40 + i);
		assert(keyring_add(kr, k, 24) == 1);
		keyring_set_version0(kr, true);
	}
	return kr;
}

static const uint8_t label[] = "stapled";

static void check_packet(const struct keyring *kr, const uint8_t *data, size_t size,
			 const uint8_t *aad, size_t aad_len)
{
	struct buf out = BUF_INIT;
	buf_append(&out, "keep", 4);
	int r = keyring_decrypt_packet(kr, data, size, aad, aad_len, &out);
	assert(r == 0 || r == -EBADMSG);
	assert(out.len >= 4 && memcmp(out.data, "keep", 4) == 0 && out.data[out.len] == 0);
	if (size < 29 || data[0] > 1)
		assert(r == -EBADMSG);
	if (r < 0)
		assert(out.len == 4);
	else
		assert(out.len - 4 <= size - 29);
	buf_done(&out);
}

static void check_stream(const struct keyring *kr, const uint8_t *data, size_t size,
			 const uint8_t *lab, size_t lab_len)
{
	struct buf out = BUF_INIT;
	size_t consumed = 0, frame = 0;
	int f = keyring_stream_frame_size(data, size, &frame);
	int r = keyring_decrypt_stream(kr, data, size, lab, lab_len, &consumed, &out);
	assert(f == 0 || f == -EAGAIN || f == -EBADMSG || f == -EMSGSIZE);
	if (f < 0) {
		assert(r == f);
	} else {
		assert(frame >= 5 && frame <= 5 + (size_t)GOSSIP_STREAM_MAX_PAYLOAD);
		if (size < frame)
			assert(r == -EAGAIN);
		else
			assert(r == 0 || r == -EBADMSG);
	}
	if (r == 0)
		assert(consumed == frame && out.len + 5 + 29 <= frame);
	else
		assert(out.len == 0);
	buf_done(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct keyring *kr = keyring();

	check_packet(kr, data, size, NULL, 0);
	check_packet(kr, data, size, label, sizeof(label) - 1);
	check_stream(kr, data, size, NULL, 0);
	check_stream(kr, data, size, label, sizeof(label) - 1);

	/* Encrypt the input itself: the nonce is its first bytes, any flipped bit is caught. */
	uint8_t nonce[GOSSIP_NONCE_BYTES] = {0};
	memcpy(nonce, data, size < sizeof(nonce) ? size : sizeof(nonce));
	struct buf enc = BUF_INIT, dec = BUF_INIT;
	assert(keyring_encrypt_packet(kr, nonce, data, size, label, 3, &enc) == 0);
	assert(enc.len == size + GOSSIP_ENCRYPT_OVERHEAD);
	assert(keyring_decrypt_packet(kr, enc.data, enc.len, label, 3, &dec) == 0);
	assert(dec.len == size && (size == 0 || memcmp(dec.data, data, size) == 0));
	size_t at = 0;
	for (size_t i = 0; i < size; i++)
		at = at * 31 + data[i];
	at %= enc.len * 8;
	enc.data[at / 8] ^= (uint8_t)(1u << (at % 8));
	buf_reset(&dec);
	int r = keyring_decrypt_packet(kr, enc.data, enc.len, label, 3, &dec);
	if (at == 0) {
		/* Version 1 turned into 0, which is not authenticated: at best the plaintext minus
		 * what looked like its padding; refused when version 0 is off. */
		assert(r == -EBADMSG || (dec.len < size && dec.len + 16 >= size &&
					 (dec.len == 0 || memcmp(dec.data, data, dec.len) == 0)));
		keyring_set_version0(kr, false);
		buf_reset(&dec);
		assert(keyring_decrypt_packet(kr, enc.data, enc.len, label, 3, &dec) == -EBADMSG);
		keyring_set_version0(kr, true);
	} else {
		assert(r == -EBADMSG);
	}
	if (r < 0)
		assert(dec.len == 0);
	buf_reset(&dec);

	buf_reset(&enc);
	size_t consumed = 0;
	assert(keyring_encrypt_stream(kr, nonce, data, size, label, sizeof(label) - 1, &enc) == 0);
	assert(keyring_decrypt_stream(kr, enc.data, enc.len, label, sizeof(label) - 1, &consumed,
				      &dec) == 0);
	assert(consumed == enc.len);
	assert(dec.len == size && (size == 0 || memcmp(dec.data, data, size) == 0));
	buf_done(&enc);
	buf_done(&dec);
	return 0;
}
