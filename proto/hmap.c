/* SPDX-License-Identifier: Apache-2.0 */
#include "proto/hmap.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "proto/mem.h"

uint64_t hmap_hash(const void *key, size_t len)
{
	/* FNV-1a with a final avalanche: keys here are paths and digests, not attacker-chosen
	 * at scale (the inventory reads the operator's own files). */
	const uint8_t *p = key;
	uint64_t h = 0xcbf29ce484222325ull;
	for (size_t i = 0; i < len; i++) {
		h ^= p[i];
		h *= 0x100000001b3ull;
	}
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	return h ? h : 1;
}

void hmap_init(struct hmap *m, hmap_key_fn key_of)
{
	*m = (struct hmap){.key_of = key_of};
}

void hmap_done(struct hmap *m)
{
	free(m->values);
	free(m->hashes);
	hmap_init(m, m->key_of);
}

static size_t find(const struct hmap *m, const void *key, size_t len, uint64_t h)
{
	size_t mask = m->cap - 1;
	for (size_t i = h & mask;; i = (i + 1) & mask) {
		if (!m->hashes[i])
			return i;
		if (m->hashes[i] != h)
			continue;
		size_t kl;
		const void *k = m->key_of(m->values[i], &kl);
		if (kl == len && memcmp(k, key, len) == 0)
			return i;
	}
}

void *hmap_get(const struct hmap *m, const void *key, size_t len)
{
	if (!m->n)
		return NULL;
	size_t i = find(m, key, len, hmap_hash(key, len));
	return m->hashes[i] ? m->values[i] : NULL;
}

static void grow(struct hmap *m)
{
	size_t old_cap = m->cap;
	void **old_values = m->values;
	uint64_t *old_hashes = m->hashes;
	m->cap = old_cap ? old_cap * 2 : 16;
	m->values = xcalloc(m->cap, sizeof(*m->values));
	m->hashes = xcalloc(m->cap, sizeof(*m->hashes));
	size_t mask = m->cap - 1;
	for (size_t j = 0; j < old_cap; j++) {
		if (!old_hashes[j])
			continue;
		size_t i = old_hashes[j] & mask;
		while (m->hashes[i])
			i = (i + 1) & mask;
		m->hashes[i] = old_hashes[j];
		m->values[i] = old_values[j];
	}
	free(old_values);
	free(old_hashes);
}

void *hmap_put(struct hmap *m, void *value)
{
	if ((m->n + 1) * 10 > m->cap * 7)
		grow(m);
	size_t len;
	const void *key = m->key_of(value, &len);
	uint64_t h = hmap_hash(key, len);
	size_t i = find(m, key, len, h);
	void *old = m->hashes[i] ? m->values[i] : NULL;
	if (!old)
		m->n++;
	m->hashes[i] = h;
	m->values[i] = value;
	return old;
}

void *hmap_del(struct hmap *m, const void *key, size_t len)
{
	if (!m->n)
		return NULL;
	size_t i = find(m, key, len, hmap_hash(key, len));
	if (!m->hashes[i])
		return NULL;
	void *old = m->values[i];
	m->n--;
	/* Backward-shift: move later members of the probe run into the hole, so lookups never
	 * need tombstones. */
	size_t mask = m->cap - 1;
	size_t hole = i;
	for (size_t j = (i + 1) & mask; m->hashes[j]; j = (j + 1) & mask) {
		size_t home = m->hashes[j] & mask;
		/* j's entry may move to the hole only if its home is not in (hole, j]. */
		bool stays = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
		if (stays)
			continue;
		m->hashes[hole] = m->hashes[j];
		m->values[hole] = m->values[j];
		hole = j;
	}
	m->hashes[hole] = 0;
	m->values[hole] = NULL;
	return old;
}
