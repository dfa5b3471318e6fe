/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The memberlist packet decoder on arbitrary bytes: CRC, compound, compress (LZW) and every
 * message body. Whatever decodes must re-encode to bytes that decode to the same values; the
 * same input is also read as a push/pull stream (header, node states) as the stream reader
 * would, with its -EAGAIN contract.
 */
#include <assert.h>
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "proto/buf.h"
#include "proto/gossip_wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool str_eq(struct gossip_wire_str a, struct gossip_wire_str b)
{
	return a.len == b.len && (a.len == 0 || memcmp(a.p, b.p, a.len) == 0);
}

static void on_msg(enum gossip_wire_type t, const uint8_t *body, size_t len, void *ud)
{
	(void)ud;
	struct buf enc = BUF_INIT;
	switch (t) {
	case GOSSIP_WIRE_PING: {
		struct gossip_wire_ping a, b;
		if (gossip_wire_decode_ping(body, len, &a) == 0) {
			gossip_wire_encode_ping(&a, &enc);
			assert(gossip_wire_decode_ping(enc.data + 1, enc.len - 1, &b) == 0);
			assert(a.seq_no == b.seq_no && str_eq(a.node, b.node) &&
			       str_eq(a.source_node, b.source_node) &&
			       a.source_port == b.source_port);
		}
		break;
	}
	case GOSSIP_WIRE_INDIRECT_PING: {
		struct gossip_wire_indirect_ping a, b;
		if (gossip_wire_decode_indirect_ping(body, len, &a) == 0) {
			gossip_wire_encode_indirect_ping(&a, &enc);
			assert(gossip_wire_decode_indirect_ping(enc.data + 1, enc.len - 1, &b) ==
			       0);
			assert(a.seq_no == b.seq_no && a.nack == b.nack && a.port == b.port &&
			       str_eq(a.node, b.node));
		}
		break;
	}
	case GOSSIP_WIRE_ACK: {
		struct gossip_wire_ack a, b;
		if (gossip_wire_decode_ack(body, len, &a) == 0) {
			gossip_wire_encode_ack(&a, &enc);
			assert(gossip_wire_decode_ack(enc.data + 1, enc.len - 1, &b) == 0);
			assert(a.seq_no == b.seq_no && str_eq(a.payload, b.payload));
		}
		break;
	}
	case GOSSIP_WIRE_SUSPECT:
	case GOSSIP_WIRE_DEAD: {
		struct gossip_wire_accuse a, b;
		if (gossip_wire_decode_accuse(body, len, &a) == 0) {
			gossip_wire_encode_accuse(t, &a, &enc);
			assert(gossip_wire_decode_accuse(enc.data + 1, enc.len - 1, &b) == 0);
			assert(a.incarnation == b.incarnation && str_eq(a.node, b.node) &&
			       str_eq(a.from, b.from));
		}
		break;
	}
	case GOSSIP_WIRE_ALIVE: {
		struct gossip_wire_alive a, b;
		if (gossip_wire_decode_alive(body, len, &a) == 0) {
			gossip_wire_encode_alive(&a, &enc);
			assert(gossip_wire_decode_alive(enc.data + 1, enc.len - 1, &b) == 0);
			assert(a.incarnation == b.incarnation && str_eq(a.node, b.node) &&
			       str_eq(a.meta, b.meta) && a.port == b.port &&
			       a.vsn_len == b.vsn_len && memcmp(a.vsn, b.vsn, a.vsn_len) == 0 &&
			       a.addr.len == b.addr.len);
		}
		break;
	}
	case GOSSIP_WIRE_NACK: {
		uint32_t a, b;
		if (gossip_wire_decode_nack(body, len, &a) == 0) {
			gossip_wire_encode_nack(a, &enc);
			assert(gossip_wire_decode_nack(enc.data + 1, enc.len - 1, &b) == 0 &&
			       a == b);
		}
		break;
	}
	case GOSSIP_WIRE_ERR: {
		struct gossip_wire_str e;
		(void)gossip_wire_decode_err(body, len, &e);
		break;
	}
	default:
		break;
	}
	buf_done(&enc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int r = gossip_wire_packet_walk(data, size, on_msg, NULL);
	assert(r >= -EBADMSG);

	/* As a push/pull stream body. */
	if (size > 0 && data[0] == GOSSIP_WIRE_PUSH_PULL) {
		const uint8_t *p = data + 1;
		size_t left = size - 1, used = 0;
		struct gossip_wire_push_pull_header h;
		r = gossip_wire_decode_push_pull_header(p, left, &h, &used);
		assert(r == 0 || r == -EAGAIN || r == -EBADMSG || r == -EMSGSIZE);
		if (r == 0) {
			assert(used <= left);
			p += used;
			left -= used;
			for (uint32_t i = 0; i < h.nodes; i++) {
				struct gossip_wire_node_state ns;
				r = gossip_wire_decode_node_state(p, left, &ns, &used);
				if (r < 0)
					break;
				assert(used > 0 && used <= left);
				p += used;
				left -= used;
			}
		}
	}
	return 0;
}
