/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Cluster membership: SWIM with the Lifeguard extensions, speaking HashiCorp memberlist's wire
 * protocol (GOSSIP.md §1). A pure state machine in the style of nghttp2's session: it never
 * touches a socket, a clock, randomness or the log. The caller feeds it
 *
 *   - UDP packets received (gossip_recv_packet),
 *   - TCP stream events: accepted, connected, bytes read, closed (gossip_stream_*),
 *   - the passing of time: gossip_tick(now) whenever gossip_next_deadline_ms() is reached,
 *
 * and drains what it wants done with gossip_poll(): packets to send, streams to open, write and
 * close, and events for the application (members joining and leaving, user messages, remote
 * state). The same code runs in the daemon (node/cluster.c, over libuv) and in the simulator
 * (tests/sim/), where a virtual clock and a lossy fake network make runs reproducible.
 *
 * Glossary
 *   member       a node in our view, including ourselves and the dead or left not yet reaped.
 *   incarnation  a member's own counter; only it raises it, to refute suspicion (B10).
 *   probe        one round of failure detection against one member: ping, then indirect pings
 *                through others and a TCP ping, then suspicion (B5).
 *   health       Lifeguard's local health awareness, 0 (good) to awareness_max − 1: scales our
 *                probe interval when we, not the others, seem to be the problem (B11).
 *   suspicion    a timer that declares a suspect dead unless it refutes; other members'
 *                independent accusations shorten it (B9).
 *   broadcast    news (alive, suspect, dead, user data) piggybacked on the packets we send
 *                anyway, and spread by the gossip loop (B13–B15).
 *   push/pull    a TCP exchange of full state with one member: at join, then periodically, to
 *                repair what gossip missed (S6, B16).
 *   reconnect    our periodic re-join of failed members and seeds, so that a partition longer
 *                than the reap time still heals (B20).
 *   stream id    a number naming one TCP connection between gossip and its caller.
 *
 * Time is monotonic milliseconds (the caller's clock); every function taking `now_ms` expects
 * it never to go backwards.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/buf.h"
#include "proto/gossip_wire.h"

struct keyring;

enum gossip_state {
	GOSSIP_ALIVE = 0,
	GOSSIP_SUSPECT = 1,
	GOSSIP_DEAD = 2,
	GOSSIP_LEFT = 3,
};

/* Timings and sizes (GOSSIP.md §1.7). */
struct gossip_profile {
	int64_t probe_interval_ms;
	int64_t probe_timeout_ms;
	unsigned indirect_checks;
	unsigned suspicion_mult;
	unsigned suspicion_max_timeout_mult;
	unsigned retransmit_mult;
	int64_t gossip_interval_ms;
	unsigned gossip_nodes;
	int64_t gossip_to_the_dead_ms;
	int64_t push_pull_interval_ms;
	int64_t tcp_timeout_ms;
	unsigned awareness_max;
	int64_t reconnect_interval_ms;
	int64_t reconnect_timeout_ms;
	size_t packet_budget;
};

/* The named profiles "lan", "wan", "local". Errors: -ENOENT unknown name. */
int gossip_profile_get(const char *name, struct gossip_profile *ret);

struct gossip_config {
	const char *name;	      /* unique in the cluster; copied */
	struct gossip_wire_addr addr; /* advertised address and port */
	uint16_t port;
	struct gossip_profile profile;
	uint8_t delegate_vsn[3]; /* min, max, current: 0/0/0 for memberlist, 2/5/5 for Serf */
	const uint8_t *meta;	 /* ≤ GOSSIP_WIRE_META_MAX bytes, copied */
	size_t meta_len;
	/* Encryption: borrowed, must outlive the gossip; the caller may rotate keys in it between
	 * calls. NULL: plaintext. */
	struct keyring *keyring;
	bool compress;	   /* compress streams, and packets when it makes them smaller */
	bool no_tcp_ping;  /* do not try the TCP ping fallback (B5.4) */
	bool no_lifeguard; /* plain SWIM: no health awareness, no nacks, fixed suspicion timeout
			    * (a baseline for the simulator; never for production) */
	uint64_t seed;	   /* for the internal generator (shuffles, peers, nonces) */
	/*
	 * Called when a push/pull is about to send our state: append the application's state
	 * (≤ GOSSIP_WIRE_USER_STATE_MAX bytes) to out. May be NULL (no user state).
	 */
	void (*local_state)(void *ud, bool join, struct buf *out);
	void *ud;
};

struct gossip_member {
	char *name;
	struct gossip_wire_addr addr;
	uint16_t port;
	uint8_t *meta;
	size_t meta_len;
	uint32_t incarnation;
	enum gossip_state state;
	int64_t state_change_ms; /* when the state last changed */
	uint8_t vsn[6];
};

enum gossip_out_type {
	GOSSIP_OUT_PACKET,	 /* send data as one UDP datagram to addr:port */
	GOSSIP_OUT_STREAM_OPEN,	 /* connect stream `stream` to addr:port, then call
				  * gossip_stream_connected or gossip_stream_closed */
	GOSSIP_OUT_STREAM_WRITE, /* write data on `stream` */
	GOSSIP_OUT_STREAM_CLOSE, /* close `stream` once its writes are out; no further calls */
	GOSSIP_OUT_EVENT,	 /* an event for the application, below */
};

enum gossip_event {
	GOSSIP_EV_JOIN,		/* member `name` is alive (new, or back from dead/left) */
	GOSSIP_EV_LEAVE,	/* member `name` is dead or left (`state` says which) */
	GOSSIP_EV_UPDATE,	/* member `name` changed its metadata */
	GOSSIP_EV_SUSPECT,	/* member `name` is suspected */
	GOSSIP_EV_USER,		/* a user message (data), from a packet, stream or broadcast */
	GOSSIP_EV_REMOTE_STATE, /* the user state of a peer's push/pull (data; `join`) */
	GOSSIP_EV_JOIN_DONE,	/* gossip_join finished: `count` seeds answered (0: failed) */
	GOSSIP_EV_LEAVE_DONE,	/* gossip_leave: our leave went out (or the timeout passed) */
};

struct gossip_out {
	enum gossip_out_type type;
	uint32_t stream;
	struct gossip_wire_addr addr;
	uint16_t port;
	const uint8_t *data; /* valid until the next call into gossip */
	size_t len;
	enum gossip_event event;
	const char *name; /* event subject; valid until the next call into gossip */
	enum gossip_state state;
	bool join;
	int count;
};

/* Counters, for metrics. */
struct gossip_stats {
	uint64_t packets_sent, packets_received, bytes_sent, bytes_received;
	uint64_t packets_dropped; /* undecryptable, bad CRC, malformed, unknown type */
	uint64_t streams_opened, streams_accepted, streams_failed;
	uint64_t probes, probes_failed, indirect_probes, tcp_probes_ok;
	uint64_t suspects, deaths, refutes;
	uint64_t push_pulls, push_pulls_failed;
	uint64_t user_received, user_sent, broadcasts_dropped;
	uint64_t reconnects;
};

struct gossip;

/*
 * Creates the state machine with ourselves alive (incarnation 1) and starts the periodic loops
 * (their first deadlines after a random part of their interval, B19).
 * Errors: -EINVAL no name, a name over GOSSIP_WIRE_NAME_MAX, meta over GOSSIP_WIRE_META_MAX,
 * an address not 4 or 16 bytes, a profile with a zero interval.
 */
int gossip_new(const struct gossip_config *cfg, int64_t now_ms, struct gossip **ret);

/* Frees everything. Open streams are forgotten: the caller closes its connections. */
void gossip_free(struct gossip *g);

/* The earliest time gossip_tick must run (INT64_MAX if nothing is pending). */
int64_t gossip_next_deadline_ms(const struct gossip *g);

/* Runs every timer due at now_ms. */
void gossip_tick(struct gossip *g, int64_t now_ms);

/*
 * A UDP datagram from addr:port. Anything wrong with it (undecryptable, bad CRC, malformed,
 * unknown message type) is dropped and counted in packets_dropped; messages before the defect
 * stay processed (P1).
 */
void gossip_recv_packet(struct gossip *g, int64_t now_ms, const struct gossip_wire_addr *addr,
			uint16_t port, const uint8_t *data, size_t len);

/* ---- streams ---- */

/* A connection accepted from addr:port; returns its stream id. The exchange is bounded by the
 * profile's tcp_timeout (gossip closes the stream then). */
uint32_t gossip_stream_accept(struct gossip *g, int64_t now_ms, const struct gossip_wire_addr *addr,
			      uint16_t port);
/* An outgoing connection asked for by GOSSIP_OUT_STREAM_OPEN is established. */
void gossip_stream_connected(struct gossip *g, int64_t now_ms, uint32_t stream);
/* Bytes read from a stream. */
void gossip_stream_recv(struct gossip *g, int64_t now_ms, uint32_t stream, const uint8_t *data,
			size_t len);
/* The stream is gone (connect failed, peer closed, error): gossip forgets it and asks for no
 * close. Unknown ids are ignored (the stream was closed by gossip already). */
void gossip_stream_closed(struct gossip *g, int64_t now_ms, uint32_t stream);

/* ---- application ---- */

/*
 * Joins through seeds (push/pull with Join = true, B2); a GOSSIP_EV_JOIN_DONE event follows
 * with the number that answered. The seeds are remembered for the reconnect loop (B20).
 * Errors: -EINVAL n is 0.
 */
struct gossip_peer {
	struct gossip_wire_addr addr;
	uint16_t port;
};
int gossip_join(struct gossip *g, int64_t now_ms, const struct gossip_peer *seeds, size_t n);

/*
 * Leaves gracefully (B17): announces our departure and emits GOSSIP_EV_LEAVE_DONE once that
 * announcement went out its full count, or after timeout_ms. The caller then frees the gossip.
 */
void gossip_leave(struct gossip *g, int64_t now_ms, int64_t timeout_ms);

/*
 * Queues a user broadcast (B13, B18), sent within gossip and piggybacked packets. With a key, a
 * queued broadcast with the same key is replaced. Errors: -EMSGSIZE larger than fits in a
 * packet.
 */
int gossip_broadcast(struct gossip *g, const char *key, const uint8_t *data, size_t len);

/*
 * Sends a user message to one member: best-effort as one UDP packet, or reliable over a TCP
 * stream. Errors: -ENOENT no such member; -EMSGSIZE too large for a packet (best effort) or
 * over GOSSIP_WIRE_USER_STATE_MAX.
 */
int gossip_send_user(struct gossip *g, int64_t now_ms, const char *name, const uint8_t *data,
		     size_t len, bool reliable);

/* Replaces our metadata and tells the cluster (a new incarnation). Errors: -EMSGSIZE. */
int gossip_set_meta(struct gossip *g, const uint8_t *meta, size_t len);

/* Takes the next output; returns false when there is none. out's pointers stay valid until the
 * next call into gossip. */
bool gossip_poll(struct gossip *g, struct gossip_out *out);

/* ---- introspection ---- */

size_t gossip_member_count(const struct gossip *g);
/* Member i in 0..count-1 (an order that changes as members come and go). */
const struct gossip_member *gossip_member_at(const struct gossip *g, size_t i);
const struct gossip_member *gossip_member_find(const struct gossip *g, const char *name);
const struct gossip_member *gossip_self(const struct gossip *g);
unsigned gossip_health(const struct gossip *g);
const struct gossip_stats *gossip_get_stats(const struct gossip *g);
/* Number of queued broadcasts (ours plus the application's). */
size_t gossip_pending_broadcasts(const struct gossip *g);
