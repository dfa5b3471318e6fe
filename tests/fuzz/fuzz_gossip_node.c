/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A whole gossip state machine (gossip/gossip.h) fed arbitrary packets, stream bytes and time:
 * the stream decoder (encrypted frames, compressed messages, push/pull, user, ping, err) on both
 * sides of an exchange, and every message handler. Nothing it is given may crash it, make it
 * allocate without bound, or leak.
 *
 * Input: one flags byte (bit 0: a keyring, bit 1: compression, bit 2: no Lifeguard), then
 * records of kind (1 byte), length (2 bytes, big-endian) and that many bytes:
 *   0  a UDP packet from 127.0.0.2:7946
 *   1  bytes on an accepted stream (accepted at the first use, re-accepted after a close)
 *   2  bytes answering our own push/pull (a join is started at the first use)
 *   3  time passes: the first data byte × 97 ms, then every due timer runs
 *   4  the peer closes the accepted stream
 * Outputs are drained after every record.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "gossip/gossip.h"
#include "proto/keyring.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct run {
	struct gossip *g;
	uint32_t in_stream, out_stream;
	int64_t now;
};

static void drain(struct run *r)
{
	struct gossip_out o;
	while (gossip_poll(r->g, &o)) {
		if (o.type == GOSSIP_OUT_STREAM_OPEN && !r->out_stream)
			r->out_stream = o.stream;
		if (o.type == GOSSIP_OUT_STREAM_CLOSE) {
			if (o.stream == r->in_stream)
				r->in_stream = 0;
			if (o.stream == r->out_stream)
				r->out_stream = 0;
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	uint8_t flags = data[0];
	data++;
	size--;
	static const uint8_t key[16] = "0123456789abcdef";
	struct keyring *kr = NULL;
	if ((flags & 1) && keyring_new(key, sizeof(key), &kr) < 0)
		return 0;
	struct gossip_config cfg = {
		.name = "fuzz",
		.addr = {.b = {127, 0, 0, 1}, .len = 4},
		.port = 7946,
		.keyring = kr,
		.compress = flags & 2,
		.no_lifeguard = flags & 4,
		.seed = 42,
	};
	gossip_profile_get("local", &cfg.profile);
	struct run r = {.now = 1000};
	if (gossip_new(&cfg, r.now, &r.g) < 0) {
		keyring_free(kr);
		return 0;
	}
	const struct gossip_wire_addr peer = {.b = {127, 0, 0, 2}, .len = 4};
	while (size >= 3) {
		uint8_t kind = data[0];
		size_t len = (size_t)data[1] << 8 | data[2];
		data += 3;
		size -= 3;
		if (len > size)
			len = size;
		const uint8_t *p = data;
		data += len;
		size -= len;
		switch (kind % 5) {
		case 0:
			gossip_recv_packet(r.g, r.now, &peer, 7946, p, len);
			break;
		case 1:
			if (!r.in_stream)
				r.in_stream = gossip_stream_accept(r.g, r.now, &peer, 40000);
			drain(&r);
			if (r.in_stream)
				gossip_stream_recv(r.g, r.now, r.in_stream, p, len);
			break;
		case 2:
			if (!r.out_stream) {
				struct gossip_peer seed = {.addr = peer, .port = 7946};
				gossip_join(r.g, r.now, &seed, 1);
				drain(&r);
				if (r.out_stream)
					gossip_stream_connected(r.g, r.now, r.out_stream);
				drain(&r);
			}
			if (r.out_stream)
				gossip_stream_recv(r.g, r.now, r.out_stream, p, len);
			break;
		case 3:
			r.now += (len ? p[0] : 1) * 97;
			gossip_tick(r.g, r.now);
			break;
		case 4:
			if (r.in_stream)
				gossip_stream_closed(r.g, r.now, r.in_stream);
			r.in_stream = 0;
			break;
		}
		drain(&r);
	}
	gossip_free(r.g);
	keyring_free(kr);
	return 0;
}
