/* SPDX-License-Identifier: Apache-2.0 */
#include "gossip/bcast.h"

#include <stdlib.h>
#include <string.h>

#include "proto/mem.h"

void bcast_queue_init(struct bcast_queue *q, size_t max_items)
{
	*q = (struct bcast_queue){.max_items = max_items};
}

static void item_free(struct bcast_queue *q, size_t i)
{
	struct bcast_item *it = &q->items[i];
	if (it->notify)
		q->notified = true;
	free(it->msg);
	free(it->key);
	q->items[i] = q->items[--q->n];
}

void bcast_queue_reset(struct bcast_queue *q)
{
	while (q->n > 0)
		item_free(q, q->n - 1);
}

void bcast_queue_done(struct bcast_queue *q)
{
	bcast_queue_reset(q);
	free(q->items);
	*q = (struct bcast_queue){0};
}

void bcast_queue_push(struct bcast_queue *q, const char *key, const uint8_t *msg, size_t len,
		      bool notify)
{
	if (key) {
		for (size_t i = 0; i < q->n; i++)
			if (q->items[i].key && strcmp(q->items[i].key, key) == 0) {
				item_free(q, i);
				break; /* at most one per key */
			}
	}
	if (q->max_items && q->n >= q->max_items) {
		size_t worst = 0;
		for (size_t i = 1; i < q->n; i++) {
			const struct bcast_item *a = &q->items[i], *b = &q->items[worst];
			if (a->transmits > b->transmits ||
			    (a->transmits == b->transmits && a->id < b->id))
				worst = i;
		}
		item_free(q, worst);
		q->dropped++;
	}
	q->items = xgrow(q->items, &q->cap, q->n + 1, sizeof(*q->items));
	q->items[q->n++] = (struct bcast_item){
		.msg = xmemdup(msg, len),
		.len = len,
		.key = key ? xstrdup(key) : NULL,
		.id = ++q->next_id,
		.notify = notify,
	};
}

/* Whether a is to be sent before b. */
static bool before(const struct bcast_item *a, const struct bcast_item *b)
{
	if (a->transmits != b->transmits)
		return a->transmits < b->transmits;
	if (a->len != b->len)
		return a->len > b->len;
	return a->id > b->id;
}

size_t bcast_queue_take(struct bcast_queue *q, size_t overhead, size_t limit,
			uint32_t transmit_limit, struct buf *out, size_t *lens, size_t max_items)
{
	size_t used = 0, taken = 0;
	/* Taken items are moved to the tail [q->n - taken, q->n) so each goes out once. */
	while (taken < max_items) {
		if (used + overhead >= limit)
			break;
		size_t free_bytes = limit - used - overhead;
		size_t best = SIZE_MAX;
		for (size_t i = 0; i < q->n - taken; i++) {
			if (q->items[i].len > free_bytes)
				continue;
			if (best == SIZE_MAX || before(&q->items[i], &q->items[best]))
				best = i;
		}
		if (best == SIZE_MAX)
			break;
		struct bcast_item *it = &q->items[best];
		buf_append(out, it->msg, it->len);
		lens[taken] = it->len;
		used += overhead + it->len;
		taken++;
		struct bcast_item tmp = *it;
		*it = q->items[q->n - taken];
		q->items[q->n - taken] = tmp;
	}
	/* Count the transmissions; drop what reached the limit. */
	for (size_t k = 0; k < taken; k++) {
		size_t i = q->n - 1 - k;
		q->items[i].transmits++;
	}
	for (size_t i = q->n; i-- > 0;)
		if (q->items[i].transmits >= transmit_limit)
			item_free(q, i);
	return taken;
}

uint32_t bcast_retransmit_limit(uint32_t mult, size_t n)
{
	/* ceil(log10(n + 1)) without floating point. */
	uint32_t scale = 0;
	for (uint64_t p = 1; p < (uint64_t)n + 1; p *= 10)
		scale++;
	return mult * scale;
}
