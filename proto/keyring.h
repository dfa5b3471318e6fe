/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The memberlist keyring and its AES-GCM framing (GOSSIP.md P4 for packets, S3 for streams).
 *
 * Glossary:
 *   keyring   1..N AES keys of 16, 24 or 32 bytes (AES-128/192/256). The first is the primary:
 *             it encrypts. Every key is tried, primary first, to decrypt.
 *   version   the first byte of an encrypted payload. 1: no padding (what we send). 0: the
 *             plaintext was PKCS#7-padded to 16 bytes (only protocol 1 peers send it; accepted
 *             only if enabled with keyring_set_version0). As in memberlist, the
 *             version byte is not authenticated.
 *   payload   version (1) + nonce (12) + ciphertext + GCM tag (16).
 *   frame     a stream's encrypted message: byte 0x0a, 4-byte big-endian length L, then an
 *             L-byte payload whose additional data is those 5 bytes followed by the label.
 *   label     an optional cluster label (GOSSIP.md P5); packets use it as the additional data,
 *             streams append it to the frame header. Empty when not configured.
 *
 * Rotation, as memberlist does it: add the new key everywhere, make it primary everywhere
 * (keyring_use), then remove the old key.
 *
 * Pure: no randomness of its own (the caller passes a fresh random nonce for every message; a
 * repeated nonce under one key breaks GCM), no I/O. Keys are copied in and wiped on removal.
 * A keyring is not shared between threads while it is changed. Every function below appends to
 * a caller's struct buf, which may move: no input may point into that buffer.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/buf.h"
#include "proto/macro.h"

#define GOSSIP_NONCE_BYTES 12
#define GOSSIP_TAG_BYTES   16
/* Version byte + nonce + tag: what version 1 adds to a plaintext. */
#define GOSSIP_ENCRYPT_OVERHEAD (1 + GOSSIP_NONCE_BYTES + GOSSIP_TAG_BYTES)
/* The frame header: 0x0a and the 4-byte length. */
#define GOSSIP_STREAM_HEADER_BYTES 5
/* Largest payload length L a stream frame may declare: Go memberlist (maxPushStateBytes) refuses
 * bigger frames, so we neither accept nor send them. */
#define GOSSIP_STREAM_MAX_PAYLOAD (20u * 1024 * 1024)
/* Labels are at most 255 bytes (one length byte on the wire). */
#define GOSSIP_LABEL_MAX 255

struct keyring;

/*
 * A new keyring holding one key (a copy of key[0..len)), which is primary.
 * Errors: -EINVAL len is not 16, 24 or 32. *ret is set only on success; free with
 * keyring_free.
 */
int keyring_new(const uint8_t *key, size_t len, struct keyring **ret);

/* Wipes and frees the keys and the keyring. NULL is fine. */
void keyring_free(struct keyring *kr);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct keyring *, keyring_free);
#define _cleanup_keyring_ _cleanup_(keyring_freep)

/*
 * Installs a copy of key[0..len) as the last (non-primary) key, for decryption only.
 * Returns 1 if added, 0 if that key was already installed (nothing changes, as in memberlist).
 * Errors: -EINVAL len is not 16, 24 or 32.
 */
int keyring_add(struct keyring *kr, const uint8_t *key, size_t len);

/*
 * Makes an installed key the primary; the other keys keep their relative order.
 * Errors: -ENOENT the key is not installed.
 */
int keyring_use(struct keyring *kr, const uint8_t *key, size_t len);

/*
 * Removes an installed key and wipes it.
 * Errors: -EBUSY it is the primary (make another key primary first); -ENOENT it is not
 * installed (memberlist ignores that silently; callers may too).
 */
int keyring_remove(struct keyring *kr, const uint8_t *key, size_t len);

/*
 * Whether keyring_decrypt_packet/_stream accept version 0 payloads (default: no). Only protocol 1
 * peers send them. Since the version byte is not authenticated, anyone who sees a version 1
 * payload can turn it into version 0, and if the plaintext happens to end in what looks like
 * padding (say one byte 0x01) it is accepted minus those bytes. (Go memberlist always accepts
 * version 0 and does not even check the padding bytes.) Enable only for protocol 1 peers.
 */
void keyring_set_version0(struct keyring *kr, bool accept);

/* Number of keys (at least 1). */
size_t keyring_count(const struct keyring *kr) _pure_;

/* Key i (0 = primary), borrowed until the keyring changes, its length in *ret_len; NULL (and
 * *ret_len untouched) if i >= count. */
const uint8_t *keyring_get(const struct keyring *kr, size_t i, size_t *ret_len);

/*
 * Encrypts plain[0..len) with the primary key and the given nonce, appending a version 1
 * payload (1, nonce, ciphertext, tag: len + GOSSIP_ENCRYPT_OVERHEAD bytes) to `out`. aad is the
 * additional authenticated data: the label for packets (aad_len 0 without one). Inputs are
 * borrowed; on error nothing is appended.
 * Errors: -EMSGSIZE len or aad_len beyond what OpenSSL takes (INT_MAX); -EIO OpenSSL failed.
 */
int keyring_encrypt_packet(const struct keyring *kr, const uint8_t nonce[GOSSIP_NONCE_BYTES],
			   const uint8_t *plain, size_t len, const uint8_t *aad, size_t aad_len,
			   struct buf *out);

/*
 * Decrypts a payload in[0..len) (version 1, or 0 if enabled) trying every key, primary first, and
 * appends the plaintext (version 0: without its padding) to `out`. Inputs are borrowed; on error
 * nothing is appended.
 * Errors: -EBADMSG shorter than the version's minimum (29 bytes for version 1, 45 for
 * version 0), unknown version (or version 0 not enabled), no key authenticates it, or bad
 * padding (version 0); -EMSGSIZE len or aad_len beyond INT_MAX.
 */
int keyring_decrypt_packet(const struct keyring *kr, const uint8_t *in, size_t len,
			   const uint8_t *aad, size_t aad_len, struct buf *out);

/*
 * Encrypts a stream message plain[0..len) into a frame appended to `out`: 0x0a, the payload
 * length L = len + GOSSIP_ENCRYPT_OVERHEAD (big-endian), and the version 1 payload whose
 * additional data is the 5 header bytes followed by label[0..label_len). Inputs are
 * borrowed; on error nothing is appended.
 * Errors: -EMSGSIZE L would exceed GOSSIP_STREAM_MAX_PAYLOAD (peers would refuse it);
 * -EINVAL label_len > GOSSIP_LABEL_MAX; -EIO OpenSSL failed.
 */
int keyring_encrypt_stream(const struct keyring *kr, const uint8_t nonce[GOSSIP_NONCE_BYTES],
			   const uint8_t *plain, size_t len, const uint8_t *label, size_t label_len,
			   struct buf *out);

/*
 * From the first bytes of a stream, the size of the whole frame (5 + L) in *ret_size, so a
 * reader knows how much to read before keyring_decrypt_stream; nothing is allocated from L.
 * Errors: -EAGAIN fewer than 5 bytes (read more); -EBADMSG the first byte is not 0x0a;
 * -EMSGSIZE L exceeds GOSSIP_STREAM_MAX_PAYLOAD.
 */
int keyring_stream_frame_size(const uint8_t *in, size_t len, size_t *ret_size);

/*
 * Decrypts the frame at the start of in[0..len) (bytes after it are not looked at) and
 * appends its plaintext to `out`; *ret_consumed is set to the frame size on success. The
 * declared length is checked against the limit and the bytes present before anything is
 * decrypted. Inputs are borrowed; on error nothing is appended.
 * Errors: those of keyring_stream_frame_size (-EAGAIN also when the frame is not complete yet:
 * a caller at end of stream treats it as truncation); -EINVAL label_len > GOSSIP_LABEL_MAX;
 * those of keyring_decrypt_packet.
 */
int keyring_decrypt_stream(const struct keyring *kr, const uint8_t *in, size_t len,
			   const uint8_t *label, size_t label_len, size_t *ret_consumed,
			   struct buf *out);
