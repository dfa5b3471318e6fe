/* SPDX-License-Identifier: Apache-2.0 */
#include "gossip/elect.h"

#include <string.h>

static uint64_t fnv1a64(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	for (; *s; s++) {
		h ^= (uint8_t)*s;
		h *= 0x100000001b3ULL;
	}
	return h;
}

static uint64_t splitmix64(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

uint64_t elect_weight(uint64_t key, const char *name)
{
	return splitmix64(key ^ fnv1a64(name));
}

/* Whether (wa, a) ranks before (wb, b). */
static bool ahead(uint64_t wa, const char *a, uint64_t wb, const char *b)
{
	return wa > wb || (wa == wb && strcmp(a, b) < 0);
}

unsigned elect_rank(uint64_t key, const char *self, bool self_stable, const char *const *stable,
		    size_t n, const char **ret_owner)
{
	uint64_t mine = elect_weight(key, self);
	const char *owner = self_stable ? self : NULL;
	uint64_t best = mine;
	unsigned above = 0;
	for (size_t i = 0; i < n; i++) {
		uint64_t w = elect_weight(key, stable[i]);
		if (ahead(w, stable[i], mine, self))
			above++;
		if (!owner || ahead(w, stable[i], best, owner)) {
			best = w;
			owner = stable[i];
		}
	}
	if (ret_owner)
		*ret_owner = owner;
	return self_stable ? above : (unsigned)n;
}

enum elect_action elect_decide(unsigned rank, int64_t base, int64_t delta, int64_t now,
			       bool asked_owner, int64_t *ret_at)
{
	int64_t at = base + (int64_t)rank * delta;
	int64_t quarter = delta / 4 > 1 ? delta / 4 : 1;
	if (rank > 0 && !asked_owner) {
		if (now < base + quarter) {
			*ret_at = base + quarter;
			return ELECT_WAIT;
		}
		/* Give the owner's answer time to arrive even when we look late (after a settle
		 * or a restart): never fetch in the same breath as asking. */
		*ret_at = at > now + quarter ? at : now + quarter;
		return ELECT_ASK_OWNER;
	}
	if (now >= at)
		return ELECT_FETCH;
	*ret_at = at;
	return ELECT_WAIT;
}
