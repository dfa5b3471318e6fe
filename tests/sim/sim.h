/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A deterministic network for many struct gossip instances (GOSSIP.md §3, in the style of
 * Tarantool's fakeev/fakenet): a virtual clock, one event queue ordered by (time, sequence
 * number), a seeded generator, per-link UDP loss and delay, one-way blocks, partitions that also
 * cut TCP, frozen nodes and killed nodes.
 *
 * Glossary
 *   node      one gossip instance, named "nNN", at 127.0.0.(NN+1):7946.
 *   tick      a call of gossip_tick on a node whose deadline came. Order as in libuv: at one
 *             instant deliveries first, a due timer after every 32 of them to one node; a
 *             node waking up from a freeze runs its timers before its backlog.
 *   link      the directed pair (src, dst): its UDP loss probability and whether it is blocked.
 *   conn      a TCP connection: a stream id on each side, in-order delivery per direction, FIN
 *             after the writes before it. A blocked link (either way) breaks it: everything in
 *             flight is dropped and neither side hears anything more (their own timeouts end it).
 *   frozen    a node that processes nothing (its timers do not run; what arrives for it waits,
 *             UDP up to a socket buffer's worth) while its kernel still completes TCP
 *             handshakes. Unfreezing runs its timers first, then the backlog, in order.
 *   killed    a crashed process: everything for it is dropped, connects to it are refused, its
 *             open connections see a FIN. sim_restart starts a fresh one in its place.
 *   tcp_fail  the share of new connections that silently die (TCP loss, off by default).
 *
 * Stream writes are cut into random segments, so readers see arbitrary boundaries.
 *
 * Everything that happens is a pure function of the seed: SIM_SEED in the environment
 * overrides the seed a scenario picks (see sim_seed).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gossip/gossip.h"
#include "gossip/rng.h"

#define SIM_PORT 7946

struct sim;

struct sim_cfg {
	uint64_t seed;
	size_t n;
	const char *profile;			       /* gossip_profile_get name; NULL: "lan" */
	const struct gossip_profile *profile_override; /* instead of a named one */
	bool compress, no_lifeguard, no_tcp_ping;
	int64_t delay_min_ms, delay_max_ms; /* one-way, uniform; 0/0: 1..5 ms */
	double loss;			    /* UDP loss on every link */
	/* Shared key for every node (NULL: plaintext); odd_key gives node `odd_node` another. */
	const uint8_t *key;
	size_t key_len;
	const uint8_t *odd_key;
	int odd_node;
	void (*local_state)(void *ud, bool join, struct buf *out); /* passed to every node */
	/* Instead of local_state: called with the node whose state is wanted, so that a scenario
	 * can keep an application model per node (its own state in s->ud). */
	void (*node_state)(struct sim *s, int node, bool join, struct buf *out);
};

/* One GOSSIP_EV_LEAVE seen by `observer` about `subject` (-1: not a sim node). */
struct sim_leave {
	int64_t t_ms;
	int observer, subject;
	enum gossip_state state;
};

struct sim_ev;
struct sim_conn;

struct sim_node {
	struct sim *sim; /* back to the simulator (node_state) */
	struct gossip *g;
	char name[16];
	struct gossip_wire_addr addr;
	struct keyring *kr;
	bool frozen, dead;
	int64_t deadline_ms;
	struct sim_ev **deferred; /* backlog while frozen */
	size_t ndeferred, deferred_cap, deferred_udp;
	struct {
		uint32_t sid, conn;
	} * streams; /* this node's open stream ids → conn */
	size_t nstreams, streams_cap;
	/* counters */
	uint64_t udp_sent, udp_dropped_frozen;
	int join_done, join_done_count; /* JOIN_DONE events seen, count of the last */
	int leave_done;
	uint64_t joins, suspects, users, remote_states;
	int64_t stuck_at, io_at; /* io_count deliveries at io_at since the last tick */
	unsigned stuck, io_count;
};

/* Called for every GOSSIP_OUT_EVENT while the node's outputs are drained. It may queue a
 * broadcast on that node (gossip_broadcast emits nothing), nothing that produces output. */
typedef void (*sim_event_fn)(struct sim *s, int node, const struct gossip_out *o, void *ud);

struct sim {
	struct sim_cfg cfg;
	uint64_t seed;
	struct rng rng;
	int64_t now_ms;
	struct gossip_profile prof;
	struct sim_node *nodes;
	size_t n;
	double *loss; /* n×n, [src * n + dst] */
	bool *block;  /* n×n, one-way */
	int64_t dmin, dmax;
	double tcp_fail; /* probability that a new connection is silently broken */

	struct sim_ev **heap;
	size_t nheap, heap_cap;
	uint64_t next_seq;

	struct sim_conn *conns;
	size_t nconns, conns_cap;

	struct sim_leave *leaves;
	size_t nleaves, leaves_cap;

	sim_event_fn on_event;
	void *ud;

	bool trace;	 /* SIM_TRACE: membership events and freezes as TAP comments */
	unsigned errors; /* simulator-detected misbehaviour (stuck deadlines, bad stream ids) */
	uint64_t events;
};

/* The seed: SIM_SEED from the environment if set, else `dflt`; printed as a TAP comment. */
uint64_t sim_seed(uint64_t dflt);
/* Whether SIM_QUICK is set (sanitizer builds): scenarios shorten their long soaks. */
bool sim_quick(void);

/* Creates n nodes at now = 1000 ms, not joined. Aborts on setup errors (a test bug). */
struct sim *sim_new(const struct sim_cfg *cfg);
void sim_free(struct sim *s);

void sim_run_until(struct sim *s, int64_t t_ms);
void sim_run_for(struct sim *s, int64_t ms);

/* Joins every node i ≥ 1 to node 0, one after another (each waits for its JOIN_DONE, up to
 * 5 s). Returns how many joins answered. */
int sim_join_all(struct sim *s);
/* Joins node i to node `seed`; returns the JOIN_DONE count (0 failed), or -1 no answer within
 * timeout. */
int sim_join(struct sim *s, int i, int seed, int64_t timeout_ms);

/* Every node that is neither killed nor in skip (may be NULL) sees exactly the live nodes
 * alive (killed ones not alive); nodes in skip are neither checked nor expected. */
bool sim_converged(const struct sim *s, const bool *skip);
/* Runs in steps of step_ms until sim_converged or timeout; returns the time taken or -1. */
int64_t sim_wait_converged(struct sim *s, const bool *skip, int64_t step_ms, int64_t timeout_ms);

void sim_freeze(struct sim *s, int i);
void sim_unfreeze(struct sim *s, int i);
void sim_kill(struct sim *s, int i);
/* A fresh gossip for node i (same name, address and key; incarnation 1), killing the old one
 * first if it still runs. It is not joined. */
void sim_restart(struct sim *s, int i);
void sim_set_loss(struct sim *s, double p);
void sim_set_link_loss(struct sim *s, int src, int dst, double p);
void sim_set_block(struct sim *s, int src, int dst, bool blocked);
/* side[i] in {0, 1}: blocks both ways between the sides (UDP and TCP); NULL heals all. */
void sim_partition(struct sim *s, const int *side);

/* The state of subject as observer sees it; -1 if unknown to observer. */
int sim_state(const struct sim *s, int observer, int subject);
/* Node index of a member name "nNN", or -1. */
int sim_index(const struct sim *s, const char *name);
/* Stream sides a (non-frozen) gossip still holds longer than its TCP timeout (+1 s) after it
 * asked for or accepted them: gossip promises to close every stream by then. */
size_t sim_stale_streams(const struct sim *s);
/* Sum of udp_sent over all nodes. */
uint64_t sim_udp_sent(const struct sim *s);
/* Calls into a node, then handles what it asked for: use these instead of gossip_* directly. */
int sim_broadcast(struct sim *s, int i, const char *key, const uint8_t *data, size_t len);
int sim_send_user(struct sim *s, int i, int to, const uint8_t *data, size_t len, bool reliable);
void sim_leave_node(struct sim *s, int i, int64_t timeout_ms);

/* ---- TAP output shared by the scenario programs ---- */

/* "ok N - …" or "not ok N - …"; returns cond. */
bool sim_ok(bool cond, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* "# …": a figure or an explanation. */
void sim_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Prints the plan ("1..N") and returns the exit code: 1 if any check failed. */
int sim_tap_end(void);
static inline double sim_secs(int64_t ms)
{
	return (double)ms / 1000.0;
}
