/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The node's side of the cluster: the libuv transport of gossip/gossip.h (one UDP socket and one
 * TCP listener on cluster.bind), the keyring, and the election that decides which node refreshes
 * which entry (GOSSIP.md §2, docs/cluster.md):
 *
 *   rank       the members alive for at least cluster.stable_after, ordered for an entry by
 *              rendezvous hashing: w(m) = splitmix64(key_hash ^ fnv1a64(name of m)), highest
 *              first. key_hash is cache_entry_key_hash (the same on every node).
 *   schedule   rank r refreshes at the entry's refresh time (computed the same way everywhere)
 *              plus r × cluster.fallback_delay, unless a newer response arrived first.
 *   announce   after a fetch from an upstream the node broadcasts (CertID, thisUpdate,
 *              nextUpdate, its name); the others pull the response from it over HTTP/2 and
 *              validate it like any upstream answer.
 *   digest     push/pull carries (key_hash, alg, thisUpdate) of every response held, which
 *              repairs missed announcements.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "node/node.h"

/* Starts the cluster if cluster.bind is set (n->cluster stays NULL otherwise): binds, joins the
 * seeds. Errors (logged): -errno binding, -EINVAL an unusable keyring or advertise address. */
int cluster_start(struct node *n);

/* Leaves gracefully (bounded by a few seconds), then closes the sockets and frees the cluster.
 * Safe without a cluster. */
void cluster_stop(struct node *n);

/*
 * The time (unix) at which this node should fetch a slot that the cache says is due now:
 * `now` if this node is first in rank (or there is no cluster), later for lower ranks (the
 * refresher reschedules the slot then), or the end of the start-up settle period.
 */
int64_t cluster_fetch_time(struct node *n, struct entry_info *ei, enum certid_alg alg, int64_t now);

/* A new response was fetched from an upstream (not from a peer): tell the cluster. */
void cluster_announce(struct node *n, struct entry_info *ei, enum certid_alg alg);

/* Whether url is a cluster peer's responder (answers from peers are trusted like parents'). */
bool cluster_is_peer_url(const struct node *n, const char *url);

/* Prometheus lines for the cluster (nothing without one). */
void cluster_metrics(struct node *n, struct buf *out);
/* The admin API's "members" JSON array (empty without a cluster). */
void cluster_members_json(struct node *n, struct buf *out);
/* The "owner" of an entry (first in rank) for the admin API; NULL without a cluster. */
const char *cluster_owner(struct node *n, const struct entry_info *ei);

/*
 * The admin API under /admin/cluster/: POST broadcast (the body as a user broadcast), POST
 * send?to=NAME[&reliable=1] (to one member, UDP or TCP), GET messages (the last user messages
 * received that are not stapled's own, base64). Returns the HTTP status; JSON in out.
 */
int cluster_admin(struct node *n, bool post, const char *target, size_t tlen, const uint8_t *body,
		  size_t blen, struct buf *out);

/* SIGHUP: re-reads the keyring file and rotates in place (new keys added, the first one made
 * primary, keys no longer listed removed). Other cluster settings take effect on restart. */
void cluster_reload(struct node *n);
