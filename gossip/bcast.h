/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A transmit-limited broadcast queue (GOSSIP.md B13): messages waiting to be piggybacked on
 * outgoing packets, each sent a limited number of times, the least-sent first.
 *
 * Glossary
 *   item       one encoded message (type byte + body, or a raw user payload) and how many times
 *              it went out.
 *   key        what the message is about (a node name, an entry id). Queuing a message with a
 *              key drops any queued message with the same key: only the newest news about a
 *              subject travels.
 *   limit      transmissions after which an item is dropped: retransmit_mult × ceil(log10(N+1)).
 *   notify     an item flagged so the owner learns when it is gone (sent its full count or
 *              replaced): used by leave, which waits for its dead message to be out.
 *
 * Pure and single-threaded; messages are copied in.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/buf.h"

struct bcast_item {
	uint8_t *msg;
	size_t len;
	char *key; /* NUL-terminated copy, or NULL */
	uint32_t transmits;
	uint64_t id; /* queue order: larger is newer */
	bool notify;
};

struct bcast_queue {
	struct bcast_item *items;
	size_t n, cap;
	size_t max_items; /* 0: unbounded */
	uint64_t next_id;
	uint64_t dropped; /* items pushed out by max_items */
	bool notified;	  /* a notify item went away; the owner clears it */
};

void bcast_queue_init(struct bcast_queue *q, size_t max_items);
void bcast_queue_done(struct bcast_queue *q);

/*
 * Queues a copy of msg[0..len). If key is not NULL, a queued item with the same key is dropped
 * first (and counts as gone for its notify flag). When the queue is full, the most transmitted
 * (then oldest) item makes room and `dropped` counts it.
 */
void bcast_queue_push(struct bcast_queue *q, const char *key, const uint8_t *msg, size_t len,
		      bool notify);

/*
 * Takes items for one packet: repeatedly the one with the fewest transmissions (ties: the larger,
 * then the newer) whose length fits in what is left of `limit` after `overhead` bytes per item
 * already taken and this one. Each taken item is appended to `out` and its length to lens (at
 * most max_items); its count goes up and it is dropped once it reaches transmit_limit.
 * Returns the number of items taken.
 */
size_t bcast_queue_take(struct bcast_queue *q, size_t overhead, size_t limit,
			uint32_t transmit_limit, struct buf *out, size_t *lens, size_t max_items);

/* Drops every item (their notify flags count as gone). */
void bcast_queue_reset(struct bcast_queue *q);

static inline size_t bcast_queue_len(const struct bcast_queue *q)
{
	return q->n;
}

/* memberlist's retransmit limit for a view of n nodes: mult × ceil(log10(n + 1)). */
uint32_t bcast_retransmit_limit(uint32_t mult, size_t n);
