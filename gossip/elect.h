/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Who refreshes an entry, and when (GOSSIP.md §2, docs/cluster.md). Pure: the daemon
 * (node/cluster.c) and the simulator (tests/sim/) run the same rules.
 *
 * Glossary
 *   key        a 64-bit hash of the entry that every node computes alike (cache_entry_key_hash).
 *   weight     rendezvous (HRW) weight of a member for a key:
 *                  splitmix64(key XOR fnv1a64(member name))
 *              with splitmix64's finaliser (z ^= z >> 30; z *= 0xbf58476d1ce4e5b9; z ^= z >> 27;
 *              z *= 0x94d049bb133111eb; z ^= z >> 31) and 64-bit FNV-1a over the name's bytes.
 *   rank       0 for the member of highest weight among the stable members (ties: the smaller
 *              name first), 1 for the next… A member that is not stable itself counts as
 *              coming after every stable member.
 *   stable     alive (or suspect: suspicion is not failure) for at least stable_after in our
 *              view; so every node ranks over nearly the same set.
 *   base       the entry's refresh time, computed alike everywhere from its response.
 *   delta      the fallback delay: rank r steps in at base + r × delta.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

uint64_t elect_weight(uint64_t key, const char *name);

/*
 * The rank of `self` for key among the members named in stable[0..n) (self excluded from that
 * list; self_stable says whether self counts), and the first-ranked name in *ret_owner (may be
 * self; NULL if nobody is stable).
 */
unsigned elect_rank(uint64_t key, const char *self, bool self_stable, const char *const *stable,
		    size_t n, const char **ret_owner);

enum elect_action {
	ELECT_WAIT,	 /* nothing before the returned time */
	ELECT_ASK_OWNER, /* pull from the owner now (the announcement may have been missed),
			    then wait until the returned time */
	ELECT_FETCH,	 /* ask the upstream now */
};

/*
 * What a node of the given rank does at `now` (seconds) for an entry due at `base` that has no
 * newer response yet. asked_owner: whether it already asked the owner for this base. The time
 * to look again is in *ret_at (ELECT_WAIT, ELECT_ASK_OWNER). Rank 0 fetches at base; rank r
 * asks the owner at base + q (q = max(1, delta / 4)), then fetches at base + r × delta, and never
 * sooner than q after asking (a node looking late asks, then waits q for the answer).
 */
enum elect_action elect_decide(unsigned rank, int64_t base, int64_t delta, int64_t now,
			       bool asked_owner, int64_t *ret_at);
