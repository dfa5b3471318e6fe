/* SPDX-License-Identifier: Apache-2.0 */
/*
 * struct hmap: an open-addressing hash map from byte-string keys to pointers, for the node's
 * indexes (files by path, certificates by fingerprint). Keys are not copied: every value carries
 * its own key, which the map reads through key_of(value). Linear probing with backward-shift
 * deletion (no tombstones); the table doubles at 70 % load. Pure.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

typedef const void *(*hmap_key_fn)(const void *value, size_t *ret_len);

struct hmap {
	void **values;
	uint64_t *hashes; /* 0 marks an empty slot */
	size_t cap;
	size_t n;
	hmap_key_fn key_of;
};

void hmap_init(struct hmap *m, hmap_key_fn key_of);
void hmap_done(struct hmap *m); /* frees the table, not the values */
/* The value whose key equals (key, len), or NULL. */
void *hmap_get(const struct hmap *m, const void *key, size_t len);
/* Inserts value; returns the value it replaced (same key), or NULL. */
void *hmap_put(struct hmap *m, void *value);
/* Removes and returns the value with that key, or NULL. */
void *hmap_del(struct hmap *m, const void *key, size_t len);
uint64_t hmap_hash(const void *key, size_t len);
