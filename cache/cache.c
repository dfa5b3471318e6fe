/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The response cache. Layout, chosen for the memory target (DESIGN §4: raw DER + 256 B per entry
 * at 1 M entries for the whole process):
 *
 *   - Each entry is one allocation with its serial as a variable tail. It embeds its default slot
 *     (the response pointer, due time and failure count of the alg most clients use); the other
 *     three slots live in a side allocation made only when a client asks in another form. On
 *     x86-64 the fixed part is 48 bytes, so an entry with a serial of up to 24 bytes is one
 *     80-byte malloc chunk.
 *   - Entries are indexed by (issuer, serial) in one open-addressing table of entry pointers
 *     (linear probing, load ≤ 3/4, backward-shift deletion so there are no tombstones).
 *   - Due times live in two indexed binary min-heaps of entry pointers, one for must-staple
 *     entries and one for the rest; an entry's heap key is the earliest due time over its slots
 *     and the entry remembers its heap position, so rescheduling is O(log n) and cache_next_due()
 *     is the smaller of two roots. Popping takes the must-staple root if it is due at or before
 *     now, else the other root: must-staple first among what is due, earliest first otherwise.
 *   - Issuers are few: a small open-addressing table maps (alg, name hash, key hash) to issuers.
 *
 * Entries are individually allocated because the node keeps pointers to them (in-flight
 * fetches, the inventory); the tables only hold pointers, so growing them never moves an entry.
 *
 * Measured with glibc (18-byte serials, one response each), the cache costs ~177 B per entry at
 * 1 M entries beyond the DER itself: the 80-byte entry chunk, ~72 B for the 56-byte
 * struct cache_resp header and its chunk, and ~25 B of index and heap arrays at their load.
 * tests/unit/cache/test_cache.c keeps it under 200 B.
 */
#include "cache/cache.h"

#include <assert.h>
#include <errno.h>
#include <string.h>

#include "proto/macro.h"
#include "proto/mem.h"

#define CACHE_DER_MAX (1u << 20)

/*
 * Accounted bytes of one held response: its DER plus this fixed overhead, which is the
 * struct cache_resp header rounded up with the allocator's per-chunk cost (8 bytes of header
 * and up to 15 of rounding on glibc). A fixed figure keeps the bound deterministic and
 * independent of the allocator.
 */
#define CACHE_RESP_OVERHEAD (sizeof(struct cache_resp) + 16)

/* Slot due-time sentinels: not wanted (no due time) and being fetched (no due time either). */
#define DUE_IDLE     INT64_MAX
#define DUE_FETCHING INT64_MIN

#define HEAP_NONE UINT32_MAX

enum {
	HEAP_NORMAL = 0,
	HEAP_MUST_STAPLE = 1
};

struct cache_issuer {
	struct pki_cert *cert; /* NULL for a hashes-only issuer */
	void *user;	       /* the node's data (cache_issuer_user) */
	uint32_t seq;	       /* creation order: keys the entry index deterministically */
	uint32_t n_entries;    /* entries whose issuer this is */
	uint8_t algs;	       /* bit per alg with known hashes */
	bool merged;	       /* folded into another issuer: no longer found by lookups */
	uint8_t fingerprint[32];
	uint8_t name_hash[CERTID_ALG_COUNT][CERTID_HASH_MAX];
	uint8_t key_hash[CERTID_ALG_COUNT][CERTID_HASH_MAX];
};

/* The three non-default slots of an entry, indexed by alg (the default alg's cells are unused). */
struct cache_more {
	struct cache_resp *resp[CERTID_ALG_COUNT];
	int64_t due[CERTID_ALG_COUNT];
	uint16_t failures[CERTID_ALG_COUNT];
	int64_t key; /* earliest effective due time over all slots, default slot included */
};

struct cache_entry {
	struct cache_issuer *issuer;
	void *user;
	struct cache_more *more;  /* NULL until a non-default slot is used */
	struct cache_resp *resp0; /* the default slot */
	int64_t due0;
	uint32_t heap_idx;
	uint16_t failures0;
	uint8_t bits; /* alg0 in bits 0-1, enum cache_entry_flags in bits 2-3 */
	uint8_t serial_len;
	uint8_t serial[];
};

/* The memory budget depends on this (see the top of the file); keep it when adding fields. */
_Static_assert(sizeof(void *) != 8 || sizeof(struct cache_entry) == 48, "entry layout grew");

#define BITS_ALG0(b)  ((b)&3u)
#define BITS_FLAGS(b) (((b) >> 2) & 3u)

struct issuer_key {
	struct cache_issuer *issuer;
	uint8_t alg;
};

struct heap {
	struct cache_entry **v;
	size_t n, cap;
};

struct cache {
	struct cache_config cfg;

	struct cache_issuer **issuers;
	size_t n_issuers, cap_issuers;
	uint32_t next_seq;
	uint64_t seed;		  /* cfg.hash_seed as given to cache_new: keys the entry index */
	struct issuer_key *ikeys; /* open addressing, power-of-two size */
	size_t n_ikeys, cap_ikeys;

	struct cache_entry **index; /* open addressing, power-of-two size */
	size_t n_entries, cap_index;

	struct heap heaps[2];

	size_t bytes;
	size_t responses;
};

void cache_config_default(struct cache_config *c)
{
	*c = (struct cache_config){
		.max_bytes = 256u << 20,
		.refresh_lo = 0.5,
		.refresh_hi = 0.75,
		.min_refresh_interval_s = 60,
		.backoff_base_s = 10,
		.backoff_max_s = 3600,
		.alert_fraction = {0.5, 0.25, 0.1},
	};
}

/* ---- hashing ---- */

#define FNV_OFFSET 0xcbf29ce484222325ull
#define FNV_PRIME  0x100000001b3ull

static uint64_t fnv1a(uint64_t h, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		h ^= p[i];
		h *= FNV_PRIME;
	}
	return h;
}

/* The splitmix64 finaliser: spreads FNV's weak high bits over the whole word. */
static uint64_t mix64(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/*
 * Position hash of (issuer, serial) in the entry index: process-local, but deterministic. It is
 * on the responder's hot path, so it takes the serial eight bytes at a time rather than FNV's one.
 */
static uint64_t index_hash(uint64_t seed, const struct cache_issuer *i, const uint8_t *serial,
			   size_t len)
{
	uint64_t h = mix64(seed ^ ((uint64_t)i->seq << 8 | len)) * 0x9e3779b97f4a7c15ull;

	for (size_t off = 0; off < len; off += 8) {
		uint64_t w = 0;
		memcpy(&w, serial + off, MIN(len - off, (size_t)8));
		h = (h ^ w) * 0xff51afd7ed558ccdull;
		h ^= h >> 29;
	}
	return mix64(h);
}

static uint64_t ikey_hash(enum certid_alg alg, const uint8_t *name_hash, const uint8_t *key_hash)
{
	/* The inputs are already cryptographic digests: their first bytes are uniform. */
	uint64_t a, b;
	memcpy(&a, name_hash, sizeof(a));
	memcpy(&b, key_hash, sizeof(b));
	return mix64(a ^ (b * 31) ^ ((uint64_t)alg << 56));
}

/* Fractions in [0, 1] as 32.32 fixed point, so schedules are pure integer arithmetic. */
static uint64_t frac_q32(double f)
{
	if (!(f > 0))
		return 0;
	if (f >= 1)
		return 1ull << 32;
	return (uint64_t)(f * 4294967296.0);
}

/* ---- issuers ---- */

static bool issuer_matches(const struct cache_issuer *i, enum certid_alg alg,
			   const uint8_t *name_hash, const uint8_t *key_hash)
{
	size_t n = certid_hash_len(alg);
	return (i->algs & (1u << alg)) && memcmp(i->name_hash[alg], name_hash, n) == 0 &&
	       memcmp(i->key_hash[alg], key_hash, n) == 0;
}

static size_t ikey_slot(const struct cache *c, enum certid_alg alg, const uint8_t *name_hash,
			const uint8_t *key_hash)
{
	size_t mask = c->cap_ikeys - 1;
	size_t p = ikey_hash(alg, name_hash, key_hash) & mask;
	for (;; p = (p + 1) & mask) {
		const struct issuer_key *k = &c->ikeys[p];
		if (!k->issuer ||
		    (k->alg == alg && issuer_matches(k->issuer, alg, name_hash, key_hash)))
			return p;
	}
}

static void ikeys_insert_raw(struct cache *c, struct cache_issuer *i, enum certid_alg alg)
{
	size_t p = ikey_slot(c, alg, i->name_hash[alg], i->key_hash[alg]);
	if (!c->ikeys[p].issuer)
		c->n_ikeys++;
	c->ikeys[p] = (struct issuer_key){.issuer = i, .alg = alg};
}

static void ikeys_grow(struct cache *c)
{
	struct issuer_key *old = c->ikeys;
	size_t old_cap = c->cap_ikeys;

	c->cap_ikeys = old_cap ? old_cap * 2 : 16;
	c->ikeys = xcalloc(c->cap_ikeys, sizeof(*c->ikeys));
	c->n_ikeys = 0;
	for (size_t p = 0; p < old_cap; p++)
		if (old[p].issuer)
			ikeys_insert_raw(c, old[p].issuer, old[p].alg);
	free(old);
}

/* Maps (alg, hashes of i) to i, replacing whatever issuer held that key. */
static void ikeys_set(struct cache *c, struct cache_issuer *i, enum certid_alg alg)
{
	if ((c->n_ikeys + 1) * 2 > c->cap_ikeys)
		ikeys_grow(c);
	ikeys_insert_raw(c, i, alg);
}

struct cache_issuer *cache_issuer_find(struct cache *c, enum certid_alg alg,
				       const uint8_t *name_hash, const uint8_t *key_hash)
{
	if ((unsigned)alg >= CERTID_ALG_COUNT || !c->cap_ikeys)
		return NULL;
	return c->ikeys[ikey_slot(c, alg, name_hash, key_hash)].issuer;
}

static struct cache_issuer *issuer_new(struct cache *c)
{
	struct cache_issuer *i = xcalloc(1, sizeof(*i));

	i->seq = c->next_seq++;
	c->issuers = xgrow(c->issuers, &c->cap_issuers, c->n_issuers + 1, sizeof(*c->issuers));
	c->issuers[c->n_issuers++] = i;
	return i;
}

struct cache_issuer *cache_issuer_add_hashes(struct cache *c, enum certid_alg alg,
					     const uint8_t *name_hash, const uint8_t *key_hash)
{
	assert((unsigned)alg < CERTID_ALG_COUNT);

	struct cache_issuer *i = cache_issuer_find(c, alg, name_hash, key_hash);
	if (i)
		return i;

	size_t n = certid_hash_len(alg);
	i = issuer_new(c);
	i->algs = 1u << alg;
	memcpy(i->name_hash[alg], name_hash, n);
	memcpy(i->key_hash[alg], key_hash, n);
	ikeys_set(c, i, alg);
	return i;
}

/* ---- entry index ---- */

static bool entry_is(const struct cache_entry *e, const struct cache_issuer *i,
		     const uint8_t *serial, size_t len)
{
	return e->issuer == i && e->serial_len == len && memcmp(e->serial, serial, len) == 0;
}

/* The index position holding (i, serial), or the empty position where it would go. */
static size_t index_slot(const struct cache *c, const struct cache_issuer *i, const uint8_t *serial,
			 size_t len)
{
	size_t mask = c->cap_index - 1;
	size_t p = index_hash(c->seed, i, serial, len) & mask;
	while (c->index[p] && !entry_is(c->index[p], i, serial, len))
		p = (p + 1) & mask;
	return p;
}

static struct cache_entry *index_find(const struct cache *c, const struct cache_issuer *i,
				      const uint8_t *serial, size_t len)
{
	if (!c->cap_index)
		return NULL;
	return c->index[index_slot(c, i, serial, len)];
}

static void index_insert_raw(struct cache *c, struct cache_entry *e)
{
	size_t p = index_slot(c, e->issuer, e->serial, e->serial_len);
	assert(!c->index[p]);
	c->index[p] = e;
	c->n_entries++;
}

static void index_insert(struct cache *c, struct cache_entry *e)
{
	if ((c->n_entries + 1) * 4 > c->cap_index * 3) {
		struct cache_entry **old = c->index;
		size_t old_cap = c->cap_index;

		c->cap_index = old_cap ? old_cap * 2 : 64;
		c->index = xcalloc(c->cap_index, sizeof(*c->index));
		c->n_entries = 0;
		for (size_t p = 0; p < old_cap; p++)
			if (old[p])
				index_insert_raw(c, old[p]);
		free(old);
	}
	index_insert_raw(c, e);
}

static void index_remove(struct cache *c, struct cache_entry *e)
{
	size_t mask = c->cap_index - 1;
	size_t p = index_slot(c, e->issuer, e->serial, e->serial_len);

	assert(c->index[p] == e);
	c->index[p] = NULL;
	c->n_entries--;
	for (size_t q = (p + 1) & mask; c->index[q]; q = (q + 1) & mask) {
		struct cache_entry *k = c->index[q];
		size_t home = index_hash(c->seed, k->issuer, k->serial, k->serial_len) & mask;
		if (((q - home) & mask) >= ((q - p) & mask)) {
			c->index[p] = k;
			c->index[q] = NULL;
			p = q;
		}
	}
}

/* ---- slots ---- */

struct slot {
	struct cache_resp **resp;
	int64_t *due;
	uint16_t *failures;
};

static enum certid_alg entry_alg0(const struct cache_entry *e)
{
	return (enum certid_alg)BITS_ALG0(e->bits);
}

/* A real due time, kept clear of the two sentinels (no real time is that far from 1970). */
static int64_t due_time(int64_t t)
{
	return CLAMP(t, INT64_MIN + 1, INT64_MAX - 1);
}

static int64_t due_effective(int64_t due)
{
	return due == DUE_FETCHING ? INT64_MAX : due;
}

/* The slot of alg, creating the side slots if `create`; false if it does not exist. */
static bool slot_get(const struct cache_entry *ce, enum certid_alg alg, bool create,
		     struct slot *ret)
{
	struct cache_entry *e = (struct cache_entry *)ce;

	if ((unsigned)alg >= CERTID_ALG_COUNT || !(e->issuer->algs & (1u << alg)))
		return false;
	if (alg == entry_alg0(e)) {
		*ret = (struct slot){&e->resp0, &e->due0, &e->failures0};
		return true;
	}
	if (!e->more) {
		if (!create)
			return false;
		e->more = xcalloc(1, sizeof(*e->more));
		for (size_t a = 0; a < CERTID_ALG_COUNT; a++)
			e->more->due[a] = DUE_IDLE;
		/* The heap key must stay what it was: callers may return without rekeying. */
		e->more->key = due_effective(e->due0);
	}
	*ret = (struct slot){&e->more->resp[alg], &e->more->due[alg], &e->more->failures[alg]};
	return true;
}

static int64_t entry_key(const struct cache_entry *e)
{
	return e->more ? e->more->key : due_effective(e->due0);
}

/* ---- due-time heaps ---- */

static struct heap *entry_heap(struct cache *c, const struct cache_entry *e)
{
	return &c->heaps[BITS_FLAGS(e->bits) & CACHE_ENTRY_MUST_STAPLE ? HEAP_MUST_STAPLE
								       : HEAP_NORMAL];
}

static void heap_place(struct heap *h, size_t i, struct cache_entry *e)
{
	h->v[i] = e;
	e->heap_idx = (uint32_t)i;
}

static void heap_up(struct heap *h, size_t i)
{
	struct cache_entry *e = h->v[i];
	int64_t k = entry_key(e);

	while (i > 0) {
		size_t parent = (i - 1) / 2;
		if (entry_key(h->v[parent]) <= k)
			break;
		heap_place(h, i, h->v[parent]);
		i = parent;
	}
	heap_place(h, i, e);
}

static void heap_down(struct heap *h, size_t i)
{
	struct cache_entry *e = h->v[i];
	int64_t k = entry_key(e);

	for (;;) {
		size_t l = 2 * i + 1, m;
		if (l >= h->n)
			break;
		m = l;
		if (l + 1 < h->n && entry_key(h->v[l + 1]) < entry_key(h->v[l]))
			m = l + 1;
		if (entry_key(h->v[m]) >= k)
			break;
		heap_place(h, i, h->v[m]);
		i = m;
	}
	heap_place(h, i, e);
}

static void heap_remove(struct heap *h, struct cache_entry *e)
{
	size_t i = e->heap_idx;

	assert(i < h->n && h->v[i] == e);
	e->heap_idx = HEAP_NONE;
	if (i == --h->n)
		return;
	struct cache_entry *last = h->v[h->n];
	heap_place(h, i, last);
	heap_up(h, i);
	heap_down(h, last->heap_idx);
}

static void heap_insert(struct heap *h, struct cache_entry *e)
{
	if (h->n == UINT32_MAX - 1)
		abort(); /* heap positions are 32-bit; four billion entries exceed any byte bound */
	h->v = xgrow(h->v, &h->cap, h->n + 1, sizeof(*h->v));
	heap_place(h, h->n++, e);
	heap_up(h, h->n - 1);
}

/*
 * Recomputes the entry's earliest due time after any slot changed, and puts the entry where it
 * belongs: in its heap with that key, or out of the heaps when no slot has a due time.
 */
static void entry_rekey(struct cache *c, struct cache_entry *e)
{
	struct heap *h = entry_heap(c, e);

	if (e->more) {
		int64_t k = due_effective(e->due0);
		for (size_t a = 0; a < CERTID_ALG_COUNT; a++)
			if (a != entry_alg0(e))
				k = MIN(k, due_effective(e->more->due[a]));
		e->more->key = k;
	}
	if (entry_key(e) == INT64_MAX) {
		if (e->heap_idx != HEAP_NONE)
			heap_remove(h, e);
	} else if (e->heap_idx == HEAP_NONE) {
		heap_insert(h, e);
	} else {
		heap_up(h, e->heap_idx);
		heap_down(h, e->heap_idx);
	}
}

/* ---- cache ---- */

static int cache_config_check(const struct cache_config *cfg)
{
	if (!(cfg->refresh_lo >= 0 && cfg->refresh_lo <= cfg->refresh_hi && cfg->refresh_hi <= 1))
		return -EINVAL;
	/* Thresholds in (0, 1], strictly decreasing; unused ones are 0 and come last. */
	if (!(cfg->alert_fraction[0] > 0 && cfg->alert_fraction[0] <= 1))
		return -EINVAL;
	for (int i = 1; i < 3; i++) {
		double f = cfg->alert_fraction[i], prev = cfg->alert_fraction[i - 1];
		if (f < 0 || (f > 0 && !(prev > f)) || (f > 0 && prev == 0))
			return -EINVAL;
	}
	if (cfg->min_refresh_interval_s < 0 || cfg->backoff_base_s < 1 ||
	    cfg->backoff_max_s < cfg->backoff_base_s || cfg->max_bytes == 0)
		return -EINVAL;
	return 0;
}

int cache_set_config(struct cache *c, const struct cache_config *cfg)
{
	int r = cache_config_check(cfg);
	if (r < 0)
		return r;
	uint64_t seed = c->cfg.hash_seed;
	c->cfg = *cfg;
	c->cfg.hash_seed = seed; /* the index is laid out by it */
	return 0;
}

int cache_new(const struct cache_config *cfg, struct cache **ret)
{
	int r = cache_config_check(cfg);
	if (r < 0)
		return r;

	struct cache *c = xcalloc(1, sizeof(*c));
	c->cfg = *cfg;
	c->seed = cfg->hash_seed;
	*ret = c;
	return 0;
}

static void entry_free(struct cache_entry *e)
{
	free(e->resp0);
	if (e->more)
		for (size_t a = 0; a < CERTID_ALG_COUNT; a++)
			free(e->more->resp[a]);
	free(e->more);
	free(e);
}

void cache_free(struct cache *c)
{
	if (!c)
		return;
	for (size_t p = 0; p < c->cap_index; p++)
		if (c->index[p])
			entry_free(c->index[p]);
	free(c->index);
	for (size_t i = 0; i < c->n_issuers; i++) {
		if (c->issuers[i]->cert)
			pki_cert_unref(c->issuers[i]->cert);
		free(c->issuers[i]);
	}
	free(c->issuers);
	free(c->ikeys);
	free(c->heaps[0].v);
	free(c->heaps[1].v);
	free(c);
}

/*
 * Moves the entries of hashes-only issuer `from` to `to` (which now answers every form `from`
 * answered) and stops `from` from answering lookups. Rare: it happens when requests in two forms
 * taught us two hashes-only issuers before the CA certificate arrived. An entry whose serial `to`
 * already holds stays with `from`: the node holds pointers to both, so neither can vanish; it is
 * no longer found by lookups and ages out like any learned entry.
 */
static void issuer_merge(struct cache *c, struct cache_issuer *from, struct cache_issuer *to)
{
	struct cache_entry **moving = NULL;
	size_t n = 0, cap = 0;

	for (size_t p = 0; p < c->cap_index; p++) {
		if (c->index[p] && c->index[p]->issuer == from) {
			moving = xgrow(moving, &cap, n + 1, sizeof(*moving));
			moving[n++] = c->index[p];
		}
	}
	for (size_t k = 0; k < n; k++) {
		struct cache_entry *e = moving[k];
		if (index_find(c, to, e->serial, e->serial_len))
			continue;
		index_remove(c, e);
		e->issuer = to;
		from->n_entries--;
		to->n_entries++;
		index_insert(c, e);
	}
	free(moving);
	from->merged = true;
}

int cache_issuer_add(struct cache *c, struct pki_cert *issuer_cert, struct cache_issuer **ret)
{
	uint8_t name[CERTID_ALG_COUNT][CERTID_HASH_MAX] = {{0}};
	uint8_t key[CERTID_ALG_COUNT][CERTID_HASH_MAX] = {{0}};
	const uint8_t *fp = pki_cert_fingerprint(issuer_cert);
	struct cache_issuer *target = NULL;

	for (size_t i = 0; i < c->n_issuers; i++) {
		if (c->issuers[i]->cert && memcmp(c->issuers[i]->fingerprint, fp, 32) == 0) {
			*ret = c->issuers[i];
			return 0;
		}
	}
	for (size_t a = 0; a < CERTID_ALG_COUNT; a++)
		if (pki_issuer_hashes(issuer_cert, a, name[a], key[a]) < 0)
			return -EINVAL;

	/*
	 * Another certificate with the same name and key (a cross-signed or re-issued CA) yields
	 * the same CertIDs, so it is the same issuer; an issuer with a certificate is registered
	 * under all four algs, so finding it under SHA-1 is enough.
	 */
	target = cache_issuer_find(c, CERTID_SHA1, name[CERTID_SHA1], key[CERTID_SHA1]);
	if (target && target->cert) {
		*ret = target;
		return 0;
	}
	for (size_t a = 0; a < CERTID_ALG_COUNT && !target; a++)
		target = cache_issuer_find(c, a, name[a], key[a]);
	if (!target)
		target = issuer_new(c);

	target->cert = pki_cert_ref(issuer_cert);
	memcpy(target->fingerprint, fp, 32);
	for (size_t a = 0; a < CERTID_ALG_COUNT; a++) {
		struct cache_issuer *other = cache_issuer_find(c, a, name[a], key[a]);

		if (other && other != target)
			issuer_merge(c, other, target);
		memcpy(target->name_hash[a], name[a], CERTID_HASH_MAX);
		memcpy(target->key_hash[a], key[a], CERTID_HASH_MAX);
		target->algs |= 1u << a;
		ikeys_set(c, target, a);
	}
	*ret = target;
	return 0;
}

struct pki_cert *cache_issuer_cert(const struct cache_issuer *i)
{
	return i->cert;
}

bool cache_issuer_has_alg(const struct cache_issuer *i, enum certid_alg alg)
{
	return (unsigned)alg < CERTID_ALG_COUNT && (i->algs & (1u << alg));
}

void *cache_issuer_user(const struct cache_issuer *i)
{
	return i->user;
}

void cache_issuer_set_user(struct cache_issuer *i, void *user)
{
	i->user = user;
}

size_t cache_issuer_entries(const struct cache_issuer *i)
{
	return i->n_entries;
}

size_t cache_issuer_gc(struct cache *c, void (*on_remove)(struct cache_issuer *i, void *ud),
		       void *ud)
{
	size_t kept = 0, removed = 0;

	for (size_t k = 0; k < c->n_issuers; k++) {
		struct cache_issuer *i = c->issuers[k];
		if ((i->cert && !i->merged) || i->n_entries > 0) {
			c->issuers[kept++] = i;
			continue;
		}
		if (on_remove)
			on_remove(i, ud);
		if (i->cert)
			pki_cert_unref(i->cert);
		free(i);
		removed++;
	}
	c->n_issuers = kept;
	if (!removed)
		return 0;
	/* Rebuild the issuer table from the survivors (no tombstones to manage; gc is rare). */
	memset(c->ikeys, 0, c->cap_ikeys * sizeof(*c->ikeys));
	c->n_ikeys = 0;
	for (size_t k = 0; k < c->n_issuers; k++) {
		struct cache_issuer *i = c->issuers[k];
		if (i->merged)
			continue;
		for (unsigned a = 0; a < CERTID_ALG_COUNT; a++)
			if (i->algs & (1u << a))
				ikeys_insert_raw(c, i, a);
	}
	return removed;
}

/* ---- entries ---- */

int cache_entry_add(struct cache *c, struct cache_issuer *issuer, const uint8_t *serial,
		    size_t serial_len, unsigned flags, int64_t now_unix, struct cache_entry **ret)
{
	struct cache_entry *e;

	if (serial_len == 0)
		return -EINVAL;
	if (serial_len > CERTID_SERIAL_MAX)
		return -EMSGSIZE;
	flags &= CACHE_ENTRY_MUST_STAPLE | CACHE_ENTRY_LEARNED;

	e = index_find(c, issuer, serial, serial_len);
	if (e) {
		unsigned old = BITS_FLAGS(e->bits);
		if ((old | flags) != old) {
			/* Gaining must-staple moves the entry to the must-staple heap. */
			bool queued = e->heap_idx != HEAP_NONE;
			if (queued)
				heap_remove(entry_heap(c, e), e);
			e->bits |= (uint8_t)(flags << 2);
			if (queued)
				heap_insert(entry_heap(c, e), e);
		}
		*ret = e;
		return 0;
	}

	unsigned alg0 = CERTID_SHA1;
	if (!(issuer->algs & (1u << CERTID_SHA1)))
		alg0 = (unsigned)__builtin_ctz(issuer->algs);

	e = xmalloc(sizeof(*e) + serial_len);
	*e = (struct cache_entry){
		.issuer = issuer,
		.due0 = due_time(now_unix),
		.heap_idx = HEAP_NONE,
		.bits = (uint8_t)(alg0 | (flags << 2)),
		.serial_len = (uint8_t)serial_len,
	};
	memcpy(e->serial, serial, serial_len);
	index_insert(c, e);
	issuer->n_entries++;
	entry_rekey(c, e);
	*ret = e;
	return 0;
}

static void slot_drop_resp(struct cache *c, struct cache_resp *r)
{
	if (!r)
		return;
	c->bytes -= r->der_len + CACHE_RESP_OVERHEAD;
	c->responses--;
	free(r);
}

void cache_entry_remove(struct cache *c, struct cache_entry *e)
{
	if (e->heap_idx != HEAP_NONE)
		heap_remove(entry_heap(c, e), e);
	index_remove(c, e);
	e->issuer->n_entries--;
	slot_drop_resp(c, e->resp0);
	e->resp0 = NULL;
	if (e->more) {
		for (size_t a = 0; a < CERTID_ALG_COUNT; a++) {
			slot_drop_resp(c, e->more->resp[a]);
			e->more->resp[a] = NULL;
		}
	}
	entry_free(e);
}

struct cache_entry *cache_lookup(struct cache *c, const struct certid *id)
{
	if (id->alg >= CERTID_ALG_COUNT || id->serial_len == 0 ||
	    id->serial_len > CERTID_SERIAL_MAX)
		return NULL;
	struct cache_issuer *i = cache_issuer_find(c, id->alg, id->name_hash, id->key_hash);
	if (!i)
		return NULL;
	return index_find(c, i, id->serial, id->serial_len);
}

struct cache_issuer *cache_entry_issuer(const struct cache_entry *e)
{
	return e->issuer;
}

const uint8_t *cache_entry_serial(const struct cache_entry *e, size_t *ret_len)
{
	*ret_len = e->serial_len;
	return e->serial;
}

unsigned cache_entry_flags(const struct cache_entry *e)
{
	return BITS_FLAGS(e->bits);
}

int cache_entry_certid(const struct cache_entry *e, enum certid_alg alg, struct certid *ret)
{
	if (!cache_issuer_has_alg(e->issuer, alg))
		return -ENOENT;

	size_t n = certid_hash_len(alg);
	memset(ret, 0, sizeof(*ret));
	ret->alg = (uint8_t)alg;
	memcpy(ret->name_hash, e->issuer->name_hash[alg], n);
	memcpy(ret->key_hash, e->issuer->key_hash[alg], n);
	ret->serial_len = e->serial_len;
	memcpy(ret->serial, e->serial, e->serial_len);
	return 0;
}

/*
 * The entry key hash, which every node of a cluster must compute identically (it places the
 * refresh time in the window, and may seed rendezvous ranking):
 *
 *   K = the issuer's SHA-1 key hash (20 bytes) if the issuer has SHA-1 hashes, else the key
 *       hash of the lowest-numbered alg it has (enum certid_alg order), at that alg's length;
 *   h = FNV-1a 64 (offset basis 0xcbf29ce484222325, prime 0x100000001b3) over K ‖ serial, where
 *       serial is the content octets of the DER INTEGER as in the CertID;
 *   key_hash = splitmix64 finaliser of h:
 *       z = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9; z = (z ^ (z >> 27)) * 0x94d049bb133111eb;
 *       key_hash = z ^ (z >> 31)   (all arithmetic modulo 2^64).
 *
 * Entries whose issuer certificate is known (inventory) or that were learned from SHA-1 requests
 * therefore agree on every node.
 */
uint64_t cache_entry_key_hash(const struct cache_entry *e)
{
	const struct cache_issuer *i = e->issuer;
	unsigned alg =
		(i->algs & (1u << CERTID_SHA1)) ? CERTID_SHA1 : (unsigned)__builtin_ctz(i->algs);
	uint64_t h = fnv1a(FNV_OFFSET, i->key_hash[alg], certid_hash_len(alg));

	return mix64(fnv1a(h, e->serial, e->serial_len));
}

void *cache_entry_user(const struct cache_entry *e)
{
	return e->user;
}

void cache_entry_set_user(struct cache_entry *e, void *user)
{
	e->user = user;
}

const struct cache_resp *cache_entry_resp(const struct cache_entry *e, enum certid_alg alg)
{
	struct slot s;
	return slot_get(e, alg, false, &s) ? *s.resp : NULL;
}

const struct cache_resp *cache_entry_servable(const struct cache_entry *e, enum certid_alg alg,
					      int64_t now_unix)
{
	const struct cache_resp *r = cache_entry_resp(e, alg);
	return r && r->meta.next_update_unix > now_unix ? r : NULL;
}

int cache_entry_want(struct cache *c, struct cache_entry *e, enum certid_alg alg, int64_t now_unix)
{
	struct slot s;

	if (!slot_get(e, alg, true, &s))
		return -ENOENT;
	if (!*s.resp && *s.due == DUE_IDLE) {
		*s.due = due_time(now_unix);
		entry_rekey(c, e);
	}
	return 0;
}

/* ---- responses and schedule ---- */

/*
 * thisUpdate + validity × f with f = lo + (hi − lo) × u, all in 32.32 fixed point so that every
 * node and architecture computes the same second (floating point may be contracted differently):
 *   u    = key_hash >> 32                         (u / 2^32 ∈ [0, 1))
 *   lo_q = floor(lo × 2^32), hi_q = floor(hi × 2^32)  (fractions clamped to [0, 1])
 *   f_q  = lo_q + floor((hi_q − lo_q) × u / 2^32)
 *   t    = this + floor(validity × f_q / 2^32)     (128-bit intermediate; never past next)
 * A response with nextUpdate ≤ thisUpdate is refreshed at thisUpdate.
 */
int64_t cache_refresh_time(const struct cache_config *cfg, uint64_t key_hash, int64_t this_update,
			   int64_t next_update)
{
	if (next_update <= this_update)
		return this_update;

	uint64_t validity = (uint64_t)next_update - (uint64_t)this_update;
	uint64_t lo = frac_q32(cfg->refresh_lo), hi = frac_q32(cfg->refresh_hi);
	uint64_t u = key_hash >> 32;
	if (hi < lo)
		hi = lo;
	uint64_t f = lo + (uint64_t)(((unsigned __int128)(hi - lo) * u) >> 32);
	uint64_t off = (uint64_t)(((unsigned __int128)validity * f) >> 32);

	if (off > validity)
		off = validity;
	return (int64_t)((uint64_t)this_update + off);
}

static int64_t sat_add(int64_t a, int64_t b)
{
	int64_t r;
	if (__builtin_add_overflow(a, b, &r))
		return b > 0 ? INT64_MAX : INT64_MIN;
	return r;
}

int cache_store(struct cache *c, struct cache_entry *e, enum certid_alg alg, const uint8_t *der,
		size_t len, const struct ocsp_info *info, int64_t now_unix, int64_t max_age_s)
{
	struct slot s;
	struct cache_resp *old, *r;
	int64_t refresh;
	int result;

	if (!slot_get(e, alg, true, &s))
		return -ENOENT;
	if (len > CACHE_DER_MAX)
		return -EMSGSIZE;

	old = *s.resp;
	if (old && info->this_update_unix < old->meta.this_update_unix)
		return -ESTALE;

	if (old && old->der_len == len && memcmp(old->der, der, len) == 0) {
		/*
		 * The upstream has nothing newer yet: spread the next try over what is left of the
		 * validity, as if the response had been issued now.
		 */
		refresh = cache_refresh_time(&c->cfg, cache_entry_key_hash(e),
					     MAX(now_unix, old->meta.this_update_unix),
					     old->meta.next_update_unix);
		r = old;
		result = CACHE_UNCHANGED;
	} else {
		size_t old_cost = old ? old->der_len + CACHE_RESP_OVERHEAD : 0;
		size_t new_cost = len + CACHE_RESP_OVERHEAD;
		if (c->bytes - old_cost + new_cost > c->cfg.max_bytes)
			return -ENOSPC;

		r = xmalloc(sizeof(*r) + len);
		*r = (struct cache_resp){
			.meta =
				{
					.this_update_unix = info->this_update_unix,
					.next_update_unix = info->next_update_unix,
					.etag = ocsp_http_etag(der, len),
				},
			.produced_at_unix = info->produced_at_unix,
			.stored_unix = now_unix,
			.status = (uint8_t)info->cert_status,
			.der_len = (uint32_t)len,
		};
		memcpy(r->der, der, len);
		refresh = cache_refresh_time(&c->cfg, cache_entry_key_hash(e),
					     info->this_update_unix, info->next_update_unix);
		slot_drop_resp(c, old);
		*s.resp = r;
		c->bytes += new_cost;
		c->responses++;
		result = CACHE_STORED;
	}

	if (max_age_s >= 0)
		refresh = MIN(refresh, sat_add(now_unix, max_age_s));
	refresh = MAX(refresh, sat_add(now_unix, c->cfg.min_refresh_interval_s));
	/* The schedule is the cache's own bookkeeping: the bytes and validity stay immutable. */
	refresh = due_time(refresh);
	r->refresh_unix = refresh;
	*s.due = refresh;
	*s.failures = 0;
	entry_rekey(c, e);
	return result;
}

int64_t cache_fetch_failed(struct cache *c, struct cache_entry *e, enum certid_alg alg,
			   int64_t now_unix, int64_t retry_after_s, uint64_t random)
{
	struct slot s;
	int64_t delay;
	bool ok = slot_get(e, alg, true, &s);

	assert(ok); /* the node only fetches forms the issuer has */
	(void)ok;

	if (retry_after_s >= 0) {
		delay = MIN(retry_after_s, c->cfg.backoff_max_s);
	} else {
		unsigned n = *s.failures;
		uint64_t ceiling = (uint64_t)c->cfg.backoff_max_s;
		/* base × 2^n, stopping as soon as it reaches the cap (no overflow). */
		if (n < 63 && (uint64_t)c->cfg.backoff_base_s <= (ceiling >> n))
			ceiling = MIN(ceiling, (uint64_t)c->cfg.backoff_base_s << n);
		/* Uniform in [0, ceiling] from 64 random bits, by multiply-high (no modulo bias).
		 */
		delay = (int64_t)(((unsigned __int128)random * (ceiling + 1)) >> 64);
		delay = MAX(delay, 1);
	}
	if (*s.failures < UINT16_MAX)
		(*s.failures)++;
	*s.due = due_time(sat_add(now_unix, delay));
	entry_rekey(c, e);
	return *s.due;
}

unsigned cache_slot_failures(const struct cache_entry *e, enum certid_alg alg)
{
	struct slot s;
	return slot_get(e, alg, false, &s) ? *s.failures : 0;
}

int cache_slot_schedule(struct cache *c, struct cache_entry *e, enum certid_alg alg,
			int64_t when_unix)
{
	struct slot s;

	if (!slot_get(e, alg, true, &s))
		return -ENOENT;
	*s.due = when_unix == INT64_MAX ? DUE_IDLE : due_time(when_unix);
	entry_rekey(c, e);
	return 0;
}

size_t cache_issuer_count(const struct cache *c)
{
	return c->n_issuers;
}

int64_t cache_next_due(const struct cache *c)
{
	int64_t t = INT64_MAX;
	for (size_t h = 0; h < 2; h++)
		if (c->heaps[h].n)
			t = MIN(t, entry_key(c->heaps[h].v[0]));
	return t;
}

struct cache_entry *cache_due_pop(struct cache *c, int64_t now_unix, enum certid_alg *ret_alg)
{
	struct cache_entry *e = NULL;
	struct heap *ms = &c->heaps[HEAP_MUST_STAPLE], *normal = &c->heaps[HEAP_NORMAL];

	if (ms->n && entry_key(ms->v[0]) <= now_unix)
		e = ms->v[0];
	else if (normal->n && entry_key(normal->v[0]) <= now_unix)
		e = normal->v[0];
	if (!e)
		return NULL;

	/* The slot that made the entry due: the earliest, the default form on a tie. */
	enum certid_alg alg = entry_alg0(e);
	int64_t best = due_effective(e->due0);
	if (e->more) {
		for (size_t a = 0; a < CERTID_ALG_COUNT; a++) {
			if (a != entry_alg0(e) && due_effective(e->more->due[a]) < best) {
				best = due_effective(e->more->due[a]);
				alg = (enum certid_alg)a;
			}
		}
	}
	struct slot s;
	bool ok = slot_get(e, alg, false, &s);
	assert(ok && best <= now_unix);
	(void)ok;
	*s.due = DUE_FETCHING;
	entry_rekey(c, e);
	*ret_alg = alg;
	return e;
}

int cache_alert_level(const struct cache *c, const struct cache_entry *e, enum certid_alg alg,
		      int64_t now_unix)
{
	const struct cache_resp *r = cache_entry_resp(e, alg);

	/* Without a response there is no validity to run out of; failures are counted apart. */
	if (!r)
		return 0;
	if (r->meta.next_update_unix <= now_unix)
		return 4;
	if (now_unix < r->refresh_unix)
		return 0;

	uint64_t left = (uint64_t)r->meta.next_update_unix - (uint64_t)now_unix;
	uint64_t validity =
		r->meta.next_update_unix > r->meta.this_update_unix
			? (uint64_t)r->meta.next_update_unix - (uint64_t)r->meta.this_update_unix
			: 0;
	int level = 0;
	for (size_t k = 0; k < 3; k++) {
		unsigned __int128 threshold =
			(unsigned __int128)validity * frac_q32(c->cfg.alert_fraction[k]);
		if (((unsigned __int128)left << 32) < threshold)
			level = (int)k + 1;
	}
	return level;
}

/* ---- whole-cache views ---- */

void cache_stats(const struct cache *c, int64_t now_unix, struct cache_stats *ret)
{
	struct cache_stats s = {
		.entries = c->n_entries,
		.issuers = c->n_issuers,
		.responses = c->responses,
		.bytes = c->bytes,
		.earliest_next_update = INT64_MAX,
	};

	for (size_t p = 0; p < c->cap_index; p++) {
		const struct cache_entry *e = c->index[p];
		if (!e)
			continue;
		for (size_t a = 0; a < CERTID_ALG_COUNT; a++) {
			const struct cache_resp *r = cache_entry_resp(e, a);
			if (!r)
				continue;
			if (r->meta.next_update_unix > now_unix) {
				s.servable++;
				s.earliest_next_update =
					MIN(s.earliest_next_update, r->meta.next_update_unix);
			}
			s.alerts[cache_alert_level(c, e, a, now_unix)]++;
		}
	}
	*ret = s;
}

void cache_foreach(struct cache *c, void (*fn)(struct cache_entry *e, void *ud), void *ud)
{
	for (size_t p = 0; p < c->cap_index; p++)
		if (c->index[p])
			fn(c->index[p], ud);
}
