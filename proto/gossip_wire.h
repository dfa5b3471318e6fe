/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The HashiCorp memberlist wire format (GOSSIP.md §1.2–1.5): message bodies in msgpack, and the
 * packet layers around them (compound, CRC, compression). Pure: bytes in, bytes out.
 *
 * Glossary
 *   message   a type byte followed by its body: a msgpack map for most types, raw bytes for a
 *             user message (8).
 *   packet    what one UDP datagram carries: a message, possibly wrapped — CRC (12) around a
 *             compound (7) of messages, or a compress (9) whose LZW data decodes to a message.
 *             Encryption (10) is outermost and handled by proto/keyring.h.
 *   stream    what one TCP connection carries: one message (push/pull, user, ping), possibly
 *             compressed (and encrypted, outermost).
 *   vsn       six bytes: protocol min, max, current; delegate min, max, current.
 *
 * Encoding follows Go's codec byte for byte (E1, E3): map keys in ascending order, strings and
 * byte fields as old-spec raw (fixraw, raw16, raw32; never str8), empty byte fields as nil,
 * integers in their smallest form, optional fields omitted when empty or zero.
 *
 * Decoding is lenient as E2 asks (str, bin or nil for strings; any integer form that fits; unknown
 * keys skipped; missing keys zero) and strict about sizes: every length and count a message
 * declares is checked against the bytes present before msgpack-c is asked to unpack it, so a
 * short packet cannot make it allocate more than a small multiple of the packet's own size.
 * Decoded strings and byte fields point into the caller's input: valid while it is.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/buf.h"

enum gossip_wire_type {
	GOSSIP_WIRE_PING = 0,
	GOSSIP_WIRE_INDIRECT_PING = 1,
	GOSSIP_WIRE_ACK = 2,
	GOSSIP_WIRE_SUSPECT = 3,
	GOSSIP_WIRE_ALIVE = 4,
	GOSSIP_WIRE_DEAD = 5,
	GOSSIP_WIRE_PUSH_PULL = 6,
	GOSSIP_WIRE_COMPOUND = 7,
	GOSSIP_WIRE_USER = 8,
	GOSSIP_WIRE_COMPRESS = 9,
	GOSSIP_WIRE_ENCRYPT = 10,
	GOSSIP_WIRE_NACK = 11,
	GOSSIP_WIRE_HAS_CRC = 12,
	GOSSIP_WIRE_ERR = 13,
};

/* Limits of what we accept and send. */
#define GOSSIP_WIRE_NAME_MAX	       512	   /* node names (memberlist has no limit; we do) */
#define GOSSIP_WIRE_META_MAX	       512	   /* node metadata (memberlist's limit) */
#define GOSSIP_WIRE_PUSH_NODES_MAX     1048576	   /* nodes in one push/pull */
#define GOSSIP_WIRE_USER_STATE_MAX     (20u << 20) /* push/pull user state, stream user message */
#define GOSSIP_WIRE_PACKET_INFLATE_MAX (1u << 20)  /* decompressed size of one UDP packet */

/* A string or byte field: points into the decoded input (or the caller's data when encoding);
 * len 0 is empty (encoded as nil for byte fields). */
struct gossip_wire_str {
	const uint8_t *p;
	size_t len;
};

struct gossip_wire_addr {
	uint8_t b[16];
	uint8_t len; /* 0 (absent), 4 or 16 */
};

struct gossip_wire_ping {
	uint32_t seq_no;
	struct gossip_wire_str node; /* target name; empty = whoever answers */
	struct gossip_wire_addr source_addr;
	uint16_t source_port;
	struct gossip_wire_str source_node;
};

struct gossip_wire_indirect_ping {
	uint32_t seq_no;
	struct gossip_wire_addr target;
	uint16_t port;
	struct gossip_wire_str node;
	bool nack;
	struct gossip_wire_addr source_addr;
	uint16_t source_port;
	struct gossip_wire_str source_node;
};

struct gossip_wire_ack {
	uint32_t seq_no;
	struct gossip_wire_str payload;
};

/* suspect (3) and dead (5) share a shape. */
struct gossip_wire_accuse {
	uint32_t incarnation;
	struct gossip_wire_str node;
	struct gossip_wire_str from;
};

struct gossip_wire_alive {
	uint32_t incarnation;
	struct gossip_wire_str node;
	struct gossip_wire_addr addr;
	uint16_t port;
	struct gossip_wire_str meta;
	uint8_t vsn[6];
	uint8_t vsn_len; /* bytes received (0..6; more are cut); we always send 6 */
};

struct gossip_wire_push_pull_header {
	uint32_t nodes;
	uint32_t user_state_len;
	bool join;
};

/* One member in a push/pull. State: 0 alive, 1 suspect, 2 dead, 3 left. */
struct gossip_wire_node_state {
	struct gossip_wire_str name;
	struct gossip_wire_addr addr;
	uint16_t port;
	struct gossip_wire_str meta;
	uint32_t incarnation;
	uint8_t state;
	uint8_t vsn[6];
	uint8_t vsn_len;
};

/* ---- encoding: each appends the type byte (where the message has one) and the body ---- */

void gossip_wire_encode_ping(const struct gossip_wire_ping *m, struct buf *out);
void gossip_wire_encode_indirect_ping(const struct gossip_wire_indirect_ping *m, struct buf *out);
void gossip_wire_encode_ack(const struct gossip_wire_ack *m, struct buf *out);
void gossip_wire_encode_nack(uint32_t seq_no, struct buf *out);
/* type is GOSSIP_WIRE_SUSPECT or GOSSIP_WIRE_DEAD. */
void gossip_wire_encode_accuse(enum gossip_wire_type type, const struct gossip_wire_accuse *m,
			       struct buf *out);
void gossip_wire_encode_alive(const struct gossip_wire_alive *m, struct buf *out);
void gossip_wire_encode_err(const char *error, struct buf *out);
/* User message: type byte 8 and the payload as is. */
void gossip_wire_encode_user(const uint8_t *payload, size_t len, struct buf *out);
/* Push/pull: the type byte 6 and the header; then one node_state per node, then the raw user
 * state bytes (the caller appends those). */
void gossip_wire_encode_push_pull_header(const struct gossip_wire_push_pull_header *h,
					 struct buf *out);
void gossip_wire_encode_node_state(const struct gossip_wire_node_state *s, struct buf *out);
/* Stream user message: type byte 8 and the header {UserMsgLen}; the payload follows. */
void gossip_wire_encode_user_stream_header(uint32_t len, struct buf *out);

/* Compound (7) of n messages, each at most 65535 bytes, n in 1..255. Errors: -EINVAL. */
int gossip_wire_encode_compound(const struct gossip_wire_str *parts, size_t n, struct buf *out);
/* CRC wrapper (12) around a message or compound. */
void gossip_wire_encode_crc(const uint8_t *msg, size_t len, struct buf *out);
/* Compress wrapper (9): the LZW of msg, as {Algo: 0, Buf}. */
void gossip_wire_encode_compress(const uint8_t *msg, size_t len, struct buf *out);

/* ---- decoding message bodies (the bytes after the type byte) ----
 * Errors: -EBADMSG not a msgpack map / a field of the wrong type / trailing bytes / a declared
 * size beyond the input; -EMSGSIZE a name or meta over the limits, an address not 4 or 16
 * bytes. On error *ret is unspecified. */
int gossip_wire_decode_ping(const uint8_t *body, size_t len, struct gossip_wire_ping *ret);
int gossip_wire_decode_indirect_ping(const uint8_t *body, size_t len,
				     struct gossip_wire_indirect_ping *ret);
int gossip_wire_decode_ack(const uint8_t *body, size_t len, struct gossip_wire_ack *ret);
int gossip_wire_decode_nack(const uint8_t *body, size_t len, uint32_t *ret_seq_no);
int gossip_wire_decode_accuse(const uint8_t *body, size_t len, struct gossip_wire_accuse *ret);
int gossip_wire_decode_alive(const uint8_t *body, size_t len, struct gossip_wire_alive *ret);
int gossip_wire_decode_err(const uint8_t *body, size_t len, struct gossip_wire_str *ret_error);

/*
 * Stream bodies are consumed piece by piece: each of these decodes ONE msgpack object from the
 * start of data and says how many bytes it took, so the caller can walk a push/pull (header,
 * `nodes` node states, then raw user state) without knowing the sizes in advance.
 * Errors as above, plus -EAGAIN: data ends before the object does (read more).
 */
int gossip_wire_decode_push_pull_header(const uint8_t *data, size_t len,
					struct gossip_wire_push_pull_header *ret, size_t *ret_used);
int gossip_wire_decode_node_state(const uint8_t *data, size_t len,
				  struct gossip_wire_node_state *ret, size_t *ret_used);
int gossip_wire_decode_user_stream_header(const uint8_t *data, size_t len, uint32_t *ret_len,
					  size_t *ret_used);

/*
 * The compress message (type byte already consumed) at the start of a stream's data: inflates
 * its LZW data into out (at most max_out bytes) and says in *ret_used how many bytes of data it
 * took. Errors: -EAGAIN data ends before the message does (read more); others as
 * gossip_wire_decompress.
 */
int gossip_wire_decompress_stream(const uint8_t *data, size_t len, size_t max_out, struct buf *out,
				  size_t *ret_used);

/* The length of the msgpack object at the start of data (a message body on a stream, which has
 * no length of its own), checked as the decoders check it. Errors: -EAGAIN data ends inside it;
 * -EBADMSG not msgpack. */
int gossip_wire_object_len(const uint8_t *data, size_t len, size_t *ret_len);

/*
 * Serf's tag encoding of node metadata: byte 0xff then a msgpack map of string to string
 * (`serf members` shows them). kv holds n key/value pairs: kv[2i] key, kv[2i+1] value.
 * Errors: -EINVAL n > GOSSIP_WIRE_TAGS_MAX; -EMSGSIZE the result exceeds GOSSIP_WIRE_META_MAX
 * (nothing appended).
 */
#define GOSSIP_WIRE_TAGS_MAX 16
int gossip_wire_encode_tags(const char *const *kv, size_t n, struct buf *out);
/* The value of tag `key` in metadata (pointing into meta). Errors: -ENOENT no such tag or the
 * metadata is not tags; -EBADMSG malformed. */
int gossip_wire_tag_get(const uint8_t *meta, size_t len, const char *key,
			struct gossip_wire_str *ret);

/* ---- packets ---- */

/*
 * Unwraps a packet (after decryption) and calls `fn` for every message in it, in order, with its
 * type and body (user messages: their payload). CRC wrappers are verified, compounds split,
 * compress wrappers inflated (up to GOSSIP_WIRE_PACKET_INFLATE_MAX; nesting at most 4 deep).
 * Compound parts whose declared length runs past the data are dropped, the rest delivered (P1).
 * Bodies are valid only during the call to fn (inflated data is freed after).
 * Returns the number of messages delivered, or -EBADMSG (empty, CRC mismatch, bad compound
 * header, bad compression, too deep): messages delivered before the error stay delivered.
 */
typedef void (*gossip_wire_msg_fn)(enum gossip_wire_type type, const uint8_t *body, size_t len,
				   void *ud);
int gossip_wire_packet_walk(const uint8_t *pkt, size_t len, gossip_wire_msg_fn fn, void *ud);

/*
 * The body of a compress message: checks Algo 0 and inflates Buf into out (at most max_out
 * bytes). Errors: -EBADMSG bad body or LZW data; -EFBIG over max_out; -ENOTSUP another Algo.
 */
int gossip_wire_decompress(const uint8_t *body, size_t len, size_t max_out, struct buf *out);
