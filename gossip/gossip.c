/* SPDX-License-Identifier: Apache-2.0 */
/*
 * SWIM + Lifeguard over the memberlist wire format. The rule numbers (B5, S6…) are those of
 * GOSSIP.md §1, which follows memberlist's behaviour closely: where this file does something
 * memberlist does not (the reconnect loop, bounds on queues and relays), the comment says so.
 */
#include "gossip/gossip.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gossip/bcast.h"
#include "gossip/rng.h"
#include "proto/crc32.h"
#include "proto/hmap.h"
#include "proto/keyring.h"
#include "proto/macro.h"
#include "proto/mem.h"

#define PROTO_MIN 1
#define PROTO_MAX 5
#define PROTO_CUR 2

#define COMPOUND_OVERHEAD  2 /* per part: its 2-byte length */
#define COMPOUND_HEADER	   2 /* type byte and count */
#define MAX_PARTS	   255
#define RELAYS_MAX	   1024 /* indirect pings we relay at once; more are dropped (ours) */
#define STREAMS_MAX	   256	/* open streams; memberlist refuses push/pulls past 128 */
#define USER_QUEUE_MAX	   8192 /* application broadcasts queued (ours; memberlist has none) */
#define STREAM_IN_MAX	   (GOSSIP_STREAM_MAX_PAYLOAD + GOSSIP_STREAM_HEADER_BYTES + (1u << 20))
#define STREAM_INFLATE_MAX (GOSSIP_WIRE_USER_STATE_MAX + (16u << 20))
#define FAILED_MAX	   1024 /* remembered failed members for reconnect */

struct suspicion {
	int64_t start_ms, min_ms, max_ms, deadline_ms;
	unsigned k, n;
	char **from; /* accusers counted: the original one, then up to k confirmations */
	size_t nfrom;
};

struct member {
	struct gossip_member pub;
	struct suspicion *susp;
};

struct relay {
	uint32_t local_seq, req_seq;
	struct gossip_wire_addr addr;
	uint16_t port;
	char *name; /* requester, for the CRC decision; may be NULL */
	bool nack;
	int64_t deadline_ms;
};

struct failed {
	char *name;
	struct gossip_wire_addr addr;
	uint16_t port;
	int64_t since_ms;
};

enum stream_kind {
	STREAM_IN,	  /* accepted: read one request, answer */
	STREAM_PUSH_PULL, /* ours: send state, read theirs */
	STREAM_PING,	  /* ours: TCP ping of the current probe */
	STREAM_USER,	  /* ours: reliable user message */
};

struct stream {
	uint32_t id;
	enum stream_kind kind;
	bool connected, closing;
	int64_t deadline_ms;
	struct gossip_wire_addr addr;
	uint16_t port;
	struct buf in;
	struct buf out; /* written once connected */
	bool join;
	uint32_t batch; /* join batch id (0: none) */
	uint32_t seq;	/* ping */
};

struct join_batch {
	uint32_t id;
	unsigned pending, ok;
};

struct probe {
	bool active;
	char *target;
	uint32_t target_inc; /* the target's incarnation when the probe started */
	uint32_t seq;
	int64_t start_ms, direct_deadline_ms, end_ms;
	bool indirect_sent, acked, tcp_ok;
	unsigned expected_nacks, nacks;
	uint32_t tcp_stream;
};

struct gossip {
	char *name;
	struct gossip_wire_addr addr;
	uint16_t port;
	struct gossip_profile prof;
	uint8_t vsn[6];
	struct keyring *keyring;
	bool compress, tcp_ping, lifeguard;
	void (*local_state)(void *ud, bool join, struct buf *out);
	void *ud;
	struct rng rng;

	struct member **members; /* the probe list: every member, in probe order */
	size_t n, cap;
	size_t probe_idx;
	struct hmap by_name;
	struct member *self;

	struct bcast_queue bq;	 /* memberlist messages */
	struct bcast_queue user; /* application broadcasts, stored with their type byte 8 */

	unsigned health;
	uint32_t seq;
	struct probe probe;
	bool probe_tick_pending;
	int64_t next_probe_ms, next_gossip_ms, next_push_pull_ms, next_reconnect_ms;

	struct relay *relays;
	size_t nrelays, relays_cap;

	struct stream **streams;
	size_t nstreams, streams_cap;
	uint32_t next_stream_id;

	struct join_batch *batches;
	size_t nbatches, batches_cap;
	uint32_t next_batch;

	struct gossip_peer *seeds;
	size_t nseeds;
	struct failed *failed;
	size_t nfailed, failed_cap;

	bool leaving, leave_done;
	int64_t leave_deadline_ms;

	struct gossip_out *outq;
	size_t outq_head, outq_n, outq_cap;
	struct gossip_out last; /* the output handed out by the last poll: freed at the next */

	struct gossip_stats stats;
};

/* ---- small helpers ---- */

static const void *member_key(const void *v, size_t *ret_len)
{
	const struct member *m = v;
	*ret_len = strlen(m->pub.name);
	return m->pub.name;
}

static struct member *find(const struct gossip *g, const uint8_t *name, size_t len)
{
	return hmap_get(&g->by_name, name, len);
}

static struct member *find_str(const struct gossip *g, struct gossip_wire_str s)
{
	if (s.len == 0)
		return NULL;
	return find(g, s.p, s.len);
}

static bool str_is(struct gossip_wire_str s, const char *c)
{
	size_t n = strlen(c);
	return s.len == n && memcmp(s.p, c, n) == 0;
}

static char *str_dup(struct gossip_wire_str s)
{
	return xstrndup((const char *)s.p, s.len);
}

static bool addr_eq(const struct gossip_wire_addr *a, const struct gossip_wire_addr *b)
{
	return a->len == b->len && memcmp(a->b, b->b, a->len) == 0;
}

static bool is_dead_or_left(const struct member *m)
{
	return m->pub.state == GOSSIP_DEAD || m->pub.state == GOSSIP_LEFT;
}

static int64_t min64(int64_t a, int64_t b)
{
	return a < b ? a : b;
}

static void nonce(struct gossip *g, uint8_t out[GOSSIP_NONCE_BYTES])
{
	uint64_t a = rng_next(&g->rng), b = rng_next(&g->rng);
	memcpy(out, &a, 8);
	memcpy(out + 8, &b, 4);
}

static size_t encrypt_overhead(const struct gossip *g)
{
	return g->keyring ? GOSSIP_ENCRYPT_OVERHEAD : 0;
}

/* ---- outputs ---- */

static struct gossip_out *out_push(struct gossip *g, enum gossip_out_type type)
{
	if (g->outq_head > 0 && g->outq_head == g->outq_n) {
		g->outq_head = 0;
		g->outq_n = 0;
	}
	g->outq = xgrow(g->outq, &g->outq_cap, g->outq_n + 1, sizeof(*g->outq));
	struct gossip_out *o = &g->outq[g->outq_n++];
	*o = (struct gossip_out){.type = type};
	return o;
}

static void out_free(struct gossip_out *o)
{
	free((void *)o->data);
	free((void *)o->name);
	*o = (struct gossip_out){0};
}

bool gossip_poll(struct gossip *g, struct gossip_out *out)
{
	out_free(&g->last);
	if (g->outq_head == g->outq_n)
		return false;
	g->last = g->outq[g->outq_head++];
	*out = g->last;
	return true;
}

static void emit_event(struct gossip *g, enum gossip_event ev, const char *name,
		       enum gossip_state state)
{
	struct gossip_out *o = out_push(g, GOSSIP_OUT_EVENT);
	o->event = ev;
	o->name = name ? xstrdup(name) : NULL;
	o->state = state;
}

static void emit_data_event(struct gossip *g, enum gossip_event ev, const uint8_t *data, size_t len,
			    bool join)
{
	struct gossip_out *o = out_push(g, GOSSIP_OUT_EVENT);
	o->event = ev;
	o->data = len ? xmemdup(data, len) : NULL;
	o->len = len;
	o->join = join;
}

/* ---- sending packets ---- */

/* Wraps msg per P2–P4 for the destination (member may be NULL: unknown) and queues it. */
static void send_packet(struct gossip *g, const struct gossip_wire_addr *addr, uint16_t port,
			const struct member *dest, const uint8_t *msg, size_t len)
{
	_cleanup_(buf_donep) struct buf z = {0}, c = {0}, e = {0};
	if (g->compress) {
		gossip_wire_encode_compress(msg, len, &z);
		if (z.len < len) {
			msg = z.data;
			len = z.len;
		}
	}
	if (dest && dest->pub.vsn[1] >= 5) {
		gossip_wire_encode_crc(msg, len, &c);
		msg = c.data;
		len = c.len;
	}
	if (g->keyring) {
		uint8_t iv[GOSSIP_NONCE_BYTES];
		nonce(g, iv);
		if (keyring_encrypt_packet(g->keyring, iv, msg, len, NULL, 0, &e) < 0)
			return;
		msg = e.data;
		len = e.len;
	}
	struct gossip_out *o = out_push(g, GOSSIP_OUT_PACKET);
	o->addr = *addr;
	o->port = port;
	o->data = xmemdup(msg, len);
	o->len = len;
	g->stats.packets_sent++;
	g->stats.bytes_sent += len;
}

/* Takes pending broadcasts (ours first, then the application's, B13) for a packet with `limit`
 * bytes left; their bytes go to out, their lengths to lens. Returns how many. */
static size_t take_broadcasts(struct gossip *g, size_t limit, struct buf *out, size_t *lens,
			      size_t max)
{
	uint32_t tl = bcast_retransmit_limit(g->prof.retransmit_mult, g->n);
	size_t k = bcast_queue_take(&g->bq, COMPOUND_OVERHEAD, limit, tl, out, lens, max);
	size_t used = 0;
	for (size_t i = 0; i < k; i++)
		used += lens[i] + COMPOUND_OVERHEAD;
	if (k < max && limit > used + COMPOUND_OVERHEAD + 1)
		k += bcast_queue_take(&g->user, COMPOUND_OVERHEAD, limit - used, tl, out, lens + k,
				      max - k);
	return k;
}

static void send_parts(struct gossip *g, const struct gossip_wire_addr *addr, uint16_t port,
		       const struct member *dest, const uint8_t *data, const size_t *lens, size_t n)
{
	if (n == 1) {
		send_packet(g, addr, port, dest, data, lens[0]);
		return;
	}
	struct gossip_wire_str parts[MAX_PARTS];
	size_t off = 0;
	for (size_t i = 0; i < n; i++) {
		parts[i] = (struct gossip_wire_str){data + off, lens[i]};
		off += lens[i];
	}
	_cleanup_(buf_donep) struct buf c = {0};
	if (gossip_wire_encode_compound(parts, n, &c) == 0)
		send_packet(g, addr, port, dest, c.data, c.len);
}

/* Sends msg with piggybacked broadcasts (B14). */
static void send_msg(struct gossip *g, const struct gossip_wire_addr *addr, uint16_t port,
		     const struct member *dest, const uint8_t *msg, size_t len)
{
	size_t budget = g->prof.packet_budget;
	size_t over = len + COMPOUND_HEADER + encrypt_overhead(g);
	_cleanup_(buf_donep) struct buf b = {0};
	size_t lens[MAX_PARTS];
	size_t k = 0;
	buf_append(&b, msg, len);
	lens[0] = len;
	if (budget > over)
		k = take_broadcasts(g, budget - over, &b, lens + 1, MAX_PARTS - 1);
	send_parts(g, addr, port, dest, b.data, lens, k + 1);
}

/* ---- members ---- */

static void susp_free(struct suspicion *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->nfrom; i++)
		free(s->from[i]);
	free(s->from);
	free(s);
}

static void member_free(struct member *m)
{
	susp_free(m->susp);
	free(m->pub.name);
	free(m->pub.meta);
	free(m);
}

static void cancel_suspicion(struct member *m)
{
	susp_free(m->susp);
	m->susp = NULL;
}

static void failed_remove(struct gossip *g, const char *name)
{
	for (size_t i = 0; i < g->nfailed; i++)
		if (strcmp(g->failed[i].name, name) == 0) {
			free(g->failed[i].name);
			g->failed[i] = g->failed[--g->nfailed];
			return;
		}
}

static void failed_add(struct gossip *g, const struct member *m, int64_t now)
{
	failed_remove(g, m->pub.name);
	if (g->nfailed >= FAILED_MAX) {
		size_t oldest = 0;
		for (size_t i = 1; i < g->nfailed; i++)
			if (g->failed[i].since_ms < g->failed[oldest].since_ms)
				oldest = i;
		free(g->failed[oldest].name);
		g->failed[oldest] = g->failed[--g->nfailed];
	}
	g->failed = xgrow(g->failed, &g->failed_cap, g->nfailed + 1, sizeof(*g->failed));
	g->failed[g->nfailed++] = (struct failed){
		.name = xstrdup(m->pub.name),
		.addr = m->pub.addr,
		.port = m->pub.port,
		.since_ms = now,
	};
}

static void encode_alive_of(const struct member *m, struct buf *out)
{
	struct gossip_wire_alive a = {
		.incarnation = m->pub.incarnation,
		.node = {(const uint8_t *)m->pub.name, strlen(m->pub.name)},
		.addr = m->pub.addr,
		.port = m->pub.port,
		.meta = {m->pub.meta, m->pub.meta_len},
		.vsn_len = 6,
	};
	memcpy(a.vsn, m->pub.vsn, 6);
	gossip_wire_encode_alive(&a, out);
}

static void broadcast(struct gossip *g, const char *about, const struct buf *msg, bool notify)
{
	bcast_queue_push(&g->bq, about, msg->data, msg->len, notify);
}

static void apply_health(struct gossip *g, int delta)
{
	if (!g->lifeguard)
		return;
	int h = (int)g->health + delta;
	int max = (int)g->prof.awareness_max - 1;
	g->health = h < 0 ? 0 : h > max ? (unsigned)max : (unsigned)h;
}

/* B10 */
static void refute(struct gossip *g, uint32_t accused)
{
	uint32_t inc = g->self->pub.incarnation + 1;
	if (accused >= inc)
		inc = accused + 1;
	g->self->pub.incarnation = inc;
	apply_health(g, 1);
	g->stats.refutes++;
	_cleanup_(buf_donep) struct buf b = {0};
	encode_alive_of(g->self, &b);
	broadcast(g, g->self->pub.name, &b, false);
}

static void set_state(struct member *m, enum gossip_state st, int64_t now)
{
	if (m->pub.state != st) {
		m->pub.state = st;
		m->pub.state_change_ms = now;
	}
}

/* B7 */
static void alive_node(struct gossip *g, int64_t now, const struct gossip_wire_alive *a)
{
	if (a->node.len == 0 || (a->addr.len != 4 && a->addr.len != 16))
		return;
	bool about_us = str_is(a->node, g->name);
	if (g->leaving && about_us)
		return;
	if (a->vsn_len >= 3 && (a->vsn[0] == 0 || a->vsn[1] == 0 || a->vsn[0] > a->vsn[1]))
		return;
	struct member *m = find_str(g, a->node);
	bool updates_addr = false;
	if (!m) {
		m = xcalloc(1, sizeof(*m));
		m->pub.name = str_dup(a->node);
		m->pub.addr = a->addr;
		m->pub.port = a->port;
		m->pub.state = GOSSIP_DEAD;
		m->pub.state_change_ms = now;
		if (a->vsn_len == 6)
			memcpy(m->pub.vsn, a->vsn, 6);
		hmap_put(&g->by_name, m);
		/* A random position: the failure detection bound stays low on average. */
		g->members = xgrow(g->members, &g->cap, g->n + 1, sizeof(*g->members));
		size_t off = g->n > 0 ? rng_below(&g->rng, g->n) : 0;
		g->members[g->n] = g->members[off];
		g->members[off] = m;
		g->n++;
	} else if (!addr_eq(&m->pub.addr, &a->addr) || m->pub.port != a->port) {
		/* Another address for a known name: only a node that left may come back elsewhere;
		 * anything else is a conflict (two nodes with one name) and ignored. */
		if (m->pub.state != GOSSIP_LEFT)
			return;
		updates_addr = true;
	}
	if (!about_us && a->incarnation <= m->pub.incarnation && !updates_addr)
		return;
	if (about_us && a->incarnation < m->pub.incarnation)
		return;
	cancel_suspicion(m);
	enum gossip_state old = m->pub.state;
	bool meta_changed = a->meta.len != m->pub.meta_len ||
			    (a->meta.len && memcmp(a->meta.p, m->pub.meta, a->meta.len) != 0);
	if (about_us) {
		if (a->incarnation == m->pub.incarnation && !meta_changed && a->vsn_len == 6 &&
		    memcmp(a->vsn, m->pub.vsn, 6) == 0)
			return;
		refute(g, a->incarnation);
		return;
	}
	_cleanup_(buf_donep) struct buf b = {0};
	gossip_wire_encode_alive(a, &b);
	broadcast(g, m->pub.name, &b, false);
	if (a->vsn_len == 6)
		memcpy(m->pub.vsn, a->vsn, 6);
	m->pub.incarnation = a->incarnation;
	if (meta_changed) {
		free(m->pub.meta);
		m->pub.meta = a->meta.len ? xmemdup(a->meta.p, a->meta.len) : NULL;
		m->pub.meta_len = a->meta.len;
	}
	m->pub.addr = a->addr;
	m->pub.port = a->port;
	set_state(m, GOSSIP_ALIVE, now);
	if (old == GOSSIP_DEAD || old == GOSSIP_LEFT) {
		failed_remove(g, m->pub.name);
		emit_event(g, GOSSIP_EV_JOIN, m->pub.name, GOSSIP_ALIVE);
	} else if (meta_changed) {
		emit_event(g, GOSSIP_EV_UPDATE, m->pub.name, GOSSIP_ALIVE);
	}
}

/* B9: memberlist's suspicionTimeout. */
static int64_t suspicion_min_ms(const struct gossip *g)
{
	double scale = fmax(1.0, log10(fmax(1.0, (double)g->n)));
	return (int64_t)g->prof.suspicion_mult * (int64_t)(scale * 1000) *
	       g->prof.probe_interval_ms / 1000;
}

static void suspicion_retime(struct suspicion *s)
{
	int64_t timeout = s->min_ms;
	if (s->k >= 1) {
		double frac = log((double)s->n + 1.0) / log((double)s->k + 1.0);
		double raw = (double)s->max_ms / 1000.0 -
			     frac * (double)(s->max_ms - s->min_ms) / 1000.0;
		timeout = (int64_t)floor(1000.0 * raw);
		if (timeout < s->min_ms)
			timeout = s->min_ms;
	}
	s->deadline_ms = s->start_ms + timeout;
}

static bool suspicion_confirm(struct suspicion *s, struct gossip_wire_str from)
{
	if (s->n >= s->k)
		return false;
	for (size_t i = 0; i < s->nfrom; i++)
		if (str_is(from, s->from[i]))
			return false;
	s->from = xrealloc(s->from, (s->nfrom + 1) * sizeof(*s->from));
	s->from[s->nfrom++] = str_dup(from);
	s->n++;
	suspicion_retime(s);
	return true;
}

/* B8 */
static void suspect_node(struct gossip *g, int64_t now, const struct gossip_wire_accuse *sm)
{
	struct member *m = find_str(g, sm->node);
	if (!m || sm->incarnation < m->pub.incarnation)
		return;
	_cleanup_(buf_donep) struct buf b = {0};
	if (m->susp) {
		if (suspicion_confirm(m->susp, sm->from)) {
			gossip_wire_encode_accuse(GOSSIP_WIRE_SUSPECT, sm, &b);
			broadcast(g, m->pub.name, &b, false);
		}
		return;
	}
	if (m->pub.state != GOSSIP_ALIVE)
		return;
	if (m == g->self) {
		refute(g, sm->incarnation);
		return;
	}
	gossip_wire_encode_accuse(GOSSIP_WIRE_SUSPECT, sm, &b);
	broadcast(g, m->pub.name, &b, false);
	m->pub.incarnation = sm->incarnation;
	set_state(m, GOSSIP_SUSPECT, now);
	g->stats.suspects++;

	struct suspicion *s = xcalloc(1, sizeof(*s));
	s->start_ms = now;
	s->k = g->prof.suspicion_mult >= 2 ? g->prof.suspicion_mult - 2 : 0;
	if (g->n < 2 || g->n - 2 < s->k || !g->lifeguard)
		s->k = 0;
	s->min_ms = suspicion_min_ms(g);
	s->max_ms =
		g->lifeguard ? (int64_t)g->prof.suspicion_max_timeout_mult * s->min_ms : s->min_ms;
	s->from = xmalloc(sizeof(*s->from));
	s->from[0] = str_dup(sm->from);
	s->nfrom = 1;
	s->deadline_ms = s->start_ms + (s->k >= 1 ? s->max_ms : s->min_ms);
	m->susp = s;
	emit_event(g, GOSSIP_EV_SUSPECT, m->pub.name, GOSSIP_SUSPECT);
}

/* B12 */
static void dead_node(struct gossip *g, int64_t now, const struct gossip_wire_accuse *d)
{
	struct member *m = find_str(g, d->node);
	if (!m || d->incarnation < m->pub.incarnation)
		return;
	cancel_suspicion(m);
	if (is_dead_or_left(m))
		return;
	_cleanup_(buf_donep) struct buf b = {0};
	gossip_wire_encode_accuse(GOSSIP_WIRE_DEAD, d, &b);
	if (m == g->self) {
		if (!g->leaving) {
			refute(g, d->incarnation);
			return;
		}
		broadcast(g, m->pub.name, &b, true);
	} else {
		broadcast(g, m->pub.name, &b, false);
	}
	m->pub.incarnation = d->incarnation;
	bool left = d->from.len == d->node.len && memcmp(d->from.p, d->node.p, d->node.len) == 0;
	set_state(m, left ? GOSSIP_LEFT : GOSSIP_DEAD, now);
	if (m != g->self) {
		if (left)
			failed_remove(g, m->pub.name);
		else
			failed_add(g, m, now);
		g->stats.deaths++;
	}
	emit_event(g, GOSSIP_EV_LEAVE, m->pub.name, m->pub.state);
}

static void suspicion_fire(struct gossip *g, int64_t now, struct member *m)
{
	struct gossip_wire_accuse d = {
		.incarnation = m->pub.incarnation,
		.node = {(const uint8_t *)m->pub.name, strlen(m->pub.name)},
		.from = {(const uint8_t *)g->name, strlen(g->name)},
	};
	cancel_suspicion(m);
	if (m->pub.state == GOSSIP_SUSPECT)
		dead_node(g, now, &d);
}

/* B12's reaping and reshuffle, when the probe cursor wraps. */
static void reset_members(struct gossip *g, int64_t now)
{
	size_t j = 0;
	for (size_t i = 0; i < g->n; i++) {
		struct member *m = g->members[i];
		if (m != g->self && is_dead_or_left(m) &&
		    now - m->pub.state_change_ms > g->prof.gossip_to_the_dead_ms) {
			size_t len;
			const void *k = member_key(m, &len);
			hmap_del(&g->by_name, k, len);
			member_free(m);
			continue;
		}
		g->members[j++] = m;
	}
	g->n = j;
	for (size_t i = g->n; i > 1; i--) {
		size_t r = rng_below(&g->rng, i);
		struct member *t = g->members[i - 1];
		g->members[i - 1] = g->members[r];
		g->members[r] = t;
	}
}

/* Up to k distinct random members other than self (and excl) passing ok(). */
static size_t random_members(struct gossip *g, size_t k, const struct member *excl,
			     bool (*ok)(const struct gossip *, const struct member *, int64_t),
			     int64_t now, struct member **out)
{
	size_t n = 0;
	struct member **cand = xmalloc((g->n + 1) * sizeof(*cand));
	for (size_t i = 0; i < g->n; i++) {
		struct member *m = g->members[i];
		if (m != g->self && m != excl && ok(g, m, now))
			cand[n++] = m;
	}
	size_t taken = 0;
	for (; taken < k && taken < n; taken++) {
		size_t r = taken + rng_below(&g->rng, n - taken);
		struct member *t = cand[taken];
		cand[taken] = cand[r];
		cand[r] = t;
		out[taken] = cand[taken];
	}
	free(cand);
	return taken;
}

static bool is_alive(const struct gossip *g, const struct member *m, int64_t now)
{
	return m->pub.state == GOSSIP_ALIVE;
}

/* ---- streams ---- */

static struct stream *stream_find(struct gossip *g, uint32_t id)
{
	for (size_t i = 0; i < g->nstreams; i++)
		if (g->streams[i]->id == id)
			return g->streams[i];
	return NULL;
}

static void stream_forget(struct gossip *g, struct stream *s)
{
	for (size_t i = 0; i < g->nstreams; i++)
		if (g->streams[i] == s) {
			g->streams[i] = g->streams[--g->nstreams];
			break;
		}
	buf_done(&s->in);
	buf_done(&s->out);
	free(s);
}

static struct stream *stream_new(struct gossip *g, enum stream_kind kind, int64_t now,
				 const struct gossip_wire_addr *addr, uint16_t port)
{
	struct stream *s = xcalloc(1, sizeof(*s));
	if (++g->next_stream_id == 0)
		g->next_stream_id = 1;
	s->id = g->next_stream_id;
	s->kind = kind;
	s->addr = *addr;
	s->port = port;
	s->deadline_ms = now + g->prof.tcp_timeout_ms;
	g->streams = xgrow(g->streams, &g->streams_cap, g->nstreams + 1, sizeof(*g->streams));
	g->streams[g->nstreams++] = s;
	return s;
}

/* Frames a stream message (S3, S4) into s->out or straight out if connected. */
static void stream_write(struct gossip *g, struct stream *s, const uint8_t *msg, size_t len)
{
	_cleanup_(buf_donep) struct buf z = {0}, e = {0};
	if (g->compress) {
		gossip_wire_encode_compress(msg, len, &z);
		msg = z.data;
		len = z.len;
	}
	if (g->keyring) {
		uint8_t iv[GOSSIP_NONCE_BYTES];
		nonce(g, iv);
		if (keyring_encrypt_stream(g->keyring, iv, msg, len, NULL, 0, &e) < 0)
			return;
		msg = e.data;
		len = e.len;
	}
	if (!s->connected) {
		buf_append(&s->out, msg, len);
		return;
	}
	struct gossip_out *o = out_push(g, GOSSIP_OUT_STREAM_WRITE);
	o->stream = s->id;
	o->data = xmemdup(msg, len);
	o->len = len;
}

/* Asks the caller to close the stream and forgets it. */
static void stream_close(struct gossip *g, struct stream *s)
{
	struct gossip_out *o = out_push(g, GOSSIP_OUT_STREAM_CLOSE);
	o->stream = s->id;
	stream_forget(g, s);
}

static void batch_done(struct gossip *g, uint32_t id, bool ok)
{
	if (id == 0)
		return;
	for (size_t i = 0; i < g->nbatches; i++) {
		struct join_batch *b = &g->batches[i];
		if (b->id != id)
			continue;
		b->ok += ok;
		if (--b->pending == 0) {
			struct gossip_out *o = out_push(g, GOSSIP_OUT_EVENT);
			o->event = GOSSIP_EV_JOIN_DONE;
			o->count = (int)b->ok;
			g->batches[i] = g->batches[--g->nbatches];
		}
		return;
	}
}

/* A stream of ours ended without success. */
static void stream_failed(struct gossip *g, struct stream *s)
{
	g->stats.streams_failed++;
	if (s->kind == STREAM_PUSH_PULL) {
		g->stats.push_pulls_failed++;
		batch_done(g, s->batch, false);
	}
	if (s->kind == STREAM_PING && g->probe.tcp_stream == s->id)
		g->probe.tcp_stream = 0;
}

static struct stream *stream_open(struct gossip *g, enum stream_kind kind, int64_t now,
				  const struct gossip_wire_addr *addr, uint16_t port)
{
	if (g->nstreams >= STREAMS_MAX)
		return NULL;
	struct stream *s = stream_new(g, kind, now, addr, port);
	struct gossip_out *o = out_push(g, GOSSIP_OUT_STREAM_OPEN);
	o->stream = s->id;
	o->addr = *addr;
	o->port = port;
	g->stats.streams_opened++;
	return s;
}

/* S7: our full state, as a push/pull message. */
static void encode_local_state(struct gossip *g, bool join, struct buf *out)
{
	_cleanup_(buf_donep) struct buf user = {0};
	if (g->local_state)
		g->local_state(g->ud, join, &user);
	if (user.len > GOSSIP_WIRE_USER_STATE_MAX)
		user.len = 0; /* the peer would refuse the whole exchange */
	struct gossip_wire_push_pull_header h = {
		.nodes = (uint32_t)g->n,
		.user_state_len = (uint32_t)user.len,
		.join = join,
	};
	gossip_wire_encode_push_pull_header(&h, out);
	for (size_t i = 0; i < g->n; i++) {
		const struct member *m = g->members[i];
		struct gossip_wire_node_state ns = {
			.name = {(const uint8_t *)m->pub.name, strlen(m->pub.name)},
			.addr = m->pub.addr,
			.port = m->pub.port,
			.meta = {m->pub.meta, m->pub.meta_len},
			.incarnation = m->pub.incarnation,
			.state = (uint8_t)m->pub.state,
			.vsn_len = 6,
		};
		memcpy(ns.vsn, m->pub.vsn, 6);
		gossip_wire_encode_node_state(&ns, out);
	}
	buf_append(out, user.data, user.len);
}

struct remote_state {
	struct gossip_wire_push_pull_header h;
	struct gossip_wire_node_state *nodes;
	size_t n, cap;
	const uint8_t *user;
};

/* The push/pull message after its type byte. -EAGAIN: incomplete. */
static int parse_push_pull(const uint8_t *p, size_t len, struct remote_state *rs)
{
	size_t used, off = 0;
	int r = gossip_wire_decode_push_pull_header(p, len, &rs->h, &used);
	if (r < 0)
		return r;
	if (rs->h.nodes > GOSSIP_WIRE_PUSH_NODES_MAX ||
	    rs->h.user_state_len > GOSSIP_WIRE_USER_STATE_MAX)
		return -EMSGSIZE;
	off = used;
	rs->n = 0;
	for (uint32_t i = 0; i < rs->h.nodes; i++) {
		struct gossip_wire_node_state ns;
		r = gossip_wire_decode_node_state(p + off, len - off, &ns, &used);
		if (r < 0)
			return r;
		off += used;
		rs->nodes = xgrow(rs->nodes, &rs->cap, rs->n + 1, sizeof(*rs->nodes));
		rs->nodes[rs->n++] = ns;
	}
	if (len - off < rs->h.user_state_len)
		return -EAGAIN;
	rs->user = p + off;
	return 0;
}

/* B3 */
static bool versions_ok(const struct gossip *g, const struct remote_state *rs)
{
	unsigned maxpmin = 0, minpmax = 255, maxdmin = 0, mindmax = 255;
#define RANGE(v)                                               \
	do {                                                   \
		maxpmin = (v)[0] > maxpmin ? (v)[0] : maxpmin; \
		minpmax = (v)[1] < minpmax ? (v)[1] : minpmax; \
		maxdmin = (v)[3] > maxdmin ? (v)[3] : maxdmin; \
		mindmax = (v)[4] < mindmax ? (v)[4] : mindmax; \
	} while (0)
	for (size_t i = 0; i < rs->n; i++)
		if (rs->nodes[i].state == GOSSIP_ALIVE && rs->nodes[i].vsn_len == 6)
			RANGE(rs->nodes[i].vsn);
	/* Members learnt from an alive without a 6-byte Vsn keep zeros: unknown, not a range of
	 * 0 (which would reject every merge). Protocol max 0 is otherwise impossible (B7.1). */
	for (size_t i = 0; i < g->n; i++)
		if (g->members[i]->pub.state == GOSSIP_ALIVE && g->members[i]->pub.vsn[1] != 0)
			RANGE(g->members[i]->pub.vsn);
#undef RANGE
	for (size_t i = 0; i < rs->n; i++) {
		const uint8_t *v = rs->nodes[i].vsn;
		if (rs->nodes[i].state != GOSSIP_ALIVE || rs->nodes[i].vsn_len != 6)
			continue;
		if (v[2] < maxpmin || v[2] > minpmax || v[5] < maxdmin || v[5] > mindmax)
			return false;
	}
	for (size_t i = 0; i < g->n; i++) {
		const uint8_t *v = g->members[i]->pub.vsn;
		if (g->members[i]->pub.state != GOSSIP_ALIVE || v[1] == 0)
			continue;
		if (v[2] < maxpmin || v[2] > minpmax || v[5] < maxdmin || v[5] > mindmax)
			return false;
	}
	return true;
}

/* B3, B4 and the user state. Returns false if the versions do not match. */
static bool merge_remote(struct gossip *g, int64_t now, const struct remote_state *rs)
{
	if (!versions_ok(g, rs))
		return false;
	for (size_t i = 0; i < rs->n; i++) {
		const struct gossip_wire_node_state *ns = &rs->nodes[i];
		struct gossip_wire_accuse acc = {.incarnation = ns->incarnation, .node = ns->name};
		switch (ns->state) {
		case GOSSIP_ALIVE: {
			struct gossip_wire_alive a = {
				.incarnation = ns->incarnation,
				.node = ns->name,
				.addr = ns->addr,
				.port = ns->port,
				.meta = ns->meta,
				.vsn_len = ns->vsn_len,
			};
			memcpy(a.vsn, ns->vsn, sizeof(a.vsn));
			alive_node(g, now, &a);
			break;
		}
		case GOSSIP_LEFT:
			acc.from = ns->name;
			dead_node(g, now, &acc);
			break;
		case GOSSIP_DEAD:
		case GOSSIP_SUSPECT:
			/* A remote "dead" only makes us suspect: the node may refute. */
			acc.from =
				(struct gossip_wire_str){(const uint8_t *)g->name, strlen(g->name)};
			suspect_node(g, now, &acc);
			break;
		default:
			break;
		}
	}
	if (rs->h.user_state_len > 0)
		emit_data_event(g, GOSSIP_EV_REMOTE_STATE, rs->user, rs->h.user_state_len,
				rs->h.join);
	return true;
}

/*
 * Gets the one message a stream carries (S3–S5) out of s->in: *ret_msg points at its type byte,
 * in s->in or in one of the scratch buffers. Returns 1 when complete, 0 when more bytes are
 * needed, -errno when the stream is bad.
 */
static int stream_message(struct gossip *g, struct stream *s, struct buf *plain,
			  struct buf *inflated, const uint8_t **ret_msg, size_t *ret_len)
{
	const uint8_t *p = s->in.data;
	size_t n = s->in.len;
	bool framed = false;
	if (n == 0)
		return 0;
	if (g->keyring) {
		size_t used;
		int r = keyring_decrypt_stream(g->keyring, p, n, NULL, 0, &used, plain);
		if (r == -EAGAIN)
			return 0;
		if (r < 0)
			return r; /* includes a plaintext stream: S3 says reject */
		p = plain->data;
		n = plain->len;
		framed = true;
	} else if (p[0] == GOSSIP_WIRE_ENCRYPT) {
		return -EPROTO; /* encrypted, and we have no key */
	}
	if (n > 0 && p[0] == GOSSIP_WIRE_COMPRESS) {
		size_t used;
		int r = gossip_wire_decompress_stream(p + 1, n - 1, STREAM_INFLATE_MAX, inflated,
						      &used);
		if (r == -EAGAIN)
			return framed ? -EBADMSG : 0;
		if (r < 0)
			return r;
		p = inflated->data;
		n = inflated->len;
		framed = true;
	}
	if (n == 0)
		return framed ? -EBADMSG : 0;
	*ret_msg = p;
	*ret_len = n;
	return framed ? 2 : 1; /* 2: complete by construction; 1: the caller checks */
}

static void send_err(struct gossip *g, struct stream *s, const char *what)
{
	_cleanup_(buf_donep) struct buf b = {0};
	gossip_wire_encode_err(what, &b);
	stream_write(g, s, b.data, b.len);
}

/* Handles a complete request on an accepted stream. Returns 0 done, -EAGAIN more needed. */
static int serve_stream(struct gossip *g, int64_t now, struct stream *s, const uint8_t *msg,
			size_t len, bool complete)
{
	const uint8_t *body = msg + 1;
	size_t blen = len - 1;
	switch (msg[0]) {
	case GOSSIP_WIRE_PUSH_PULL: {
		struct remote_state rs = {0};
		int r = parse_push_pull(body, blen, &rs);
		if (r == -EAGAIN && !complete) {
			free(rs.nodes);
			return -EAGAIN;
		}
		if (r < 0) {
			free(rs.nodes);
			send_err(g, s, "malformed push/pull");
			g->stats.packets_dropped++;
			return 0;
		}
		_cleanup_(buf_donep) struct buf out = {0};
		encode_local_state(g, rs.h.join, &out);
		stream_write(g, s, out.data, out.len);
		g->stats.push_pulls++;
		merge_remote(g, now, &rs);
		free(rs.nodes);
		return 0;
	}
	case GOSSIP_WIRE_USER: {
		uint32_t ulen;
		size_t used;
		int r = gossip_wire_decode_user_stream_header(body, blen, &ulen, &used);
		if (r == 0 && ulen > GOSSIP_WIRE_USER_STATE_MAX)
			r = -EMSGSIZE;
		if (r == 0 && blen - used < ulen)
			r = -EAGAIN;
		if (r == -EAGAIN && !complete)
			return -EAGAIN;
		if (r < 0) {
			g->stats.packets_dropped++;
			return 0;
		}
		g->stats.user_received++;
		emit_data_event(g, GOSSIP_EV_USER, body + used, ulen, false);
		return 0;
	}
	case GOSSIP_WIRE_PING: {
		size_t olen;
		int r = gossip_wire_object_len(body, blen, &olen);
		if (r == -EAGAIN && !complete)
			return -EAGAIN;
		struct gossip_wire_ping p;
		if (r < 0 || gossip_wire_decode_ping(body, olen, &p) < 0) {
			g->stats.packets_dropped++;
			return 0;
		}
		if (p.node.len && !str_is(p.node, g->name))
			return 0;
		_cleanup_(buf_donep) struct buf b = {0};
		struct gossip_wire_ack ack = {.seq_no = p.seq_no};
		gossip_wire_encode_ack(&ack, &b);
		stream_write(g, s, b.data, b.len);
		return 0;
	}
	default:
		g->stats.packets_dropped++;
		send_err(g, s, "unknown message type");
		return 0;
	}
}

/* Handles the answer on one of our streams. Returns 0 done, -EAGAIN more needed. */
static int finish_stream(struct gossip *g, int64_t now, struct stream *s, const uint8_t *msg,
			 size_t len, bool complete)
{
	const uint8_t *body = msg + 1;
	size_t blen = len - 1;
	if (s->kind == STREAM_PUSH_PULL) {
		if (msg[0] == GOSSIP_WIRE_ERR) {
			size_t olen;
			int r = gossip_wire_object_len(body, blen, &olen);
			if (r == -EAGAIN && !complete)
				return -EAGAIN;
			stream_failed(g, s);
			return 0;
		}
		struct remote_state rs = {0};
		int r = msg[0] == GOSSIP_WIRE_PUSH_PULL ? parse_push_pull(body, blen, &rs)
							: -EPROTO;
		if (r == -EAGAIN && !complete) {
			free(rs.nodes);
			return -EAGAIN;
		}
		bool ok = r == 0 && merge_remote(g, now, &rs);
		free(rs.nodes);
		if (!ok) {
			g->stats.packets_dropped += r < 0;
			stream_failed(g, s);
			return 0;
		}
		g->stats.push_pulls++;
		batch_done(g, s->batch, true);
		return 0;
	}
	if (s->kind == STREAM_PING) {
		size_t olen;
		int r = msg[0] == GOSSIP_WIRE_ACK ? gossip_wire_object_len(body, blen, &olen)
						  : -EPROTO;
		if (r == -EAGAIN && !complete)
			return -EAGAIN;
		struct gossip_wire_ack ack;
		if (r == 0 && gossip_wire_decode_ack(body, olen, &ack) == 0 &&
		    ack.seq_no == s->seq && g->probe.active && g->probe.tcp_stream == s->id) {
			g->probe.tcp_ok = true;
			g->probe.tcp_stream = 0;
			g->stats.tcp_probes_ok++;
		} else {
			stream_failed(g, s);
		}
		return 0;
	}
	return 0; /* user streams expect no answer */
}

uint32_t gossip_stream_accept(struct gossip *g, int64_t now_ms, const struct gossip_wire_addr *addr,
			      uint16_t port)
{
	struct stream *s = stream_new(g, STREAM_IN, now_ms, addr, port);
	s->connected = true;
	g->stats.streams_accepted++;
	if (g->nstreams > STREAMS_MAX) {
		uint32_t id = s->id;
		stream_close(g, s); /* too many at once: the peer retries later */
		return id;
	}
	return s->id;
}

void gossip_stream_connected(struct gossip *g, int64_t now_ms, uint32_t id)
{
	struct stream *s = stream_find(g, id);
	if (!s || s->connected)
		return;
	s->connected = true;
	if (s->out.len > 0) {
		struct gossip_out *o = out_push(g, GOSSIP_OUT_STREAM_WRITE);
		o->stream = s->id;
		o->data = buf_steal(&s->out, &o->len);
	}
	if (s->kind == STREAM_USER)
		stream_close(g, s);
}

void gossip_stream_recv(struct gossip *g, int64_t now_ms, uint32_t id, const uint8_t *data,
			size_t len)
{
	struct stream *s = stream_find(g, id);
	if (!s || s->closing)
		return;
	if (s->in.len + len > STREAM_IN_MAX) {
		g->stats.packets_dropped++;
		if (s->kind != STREAM_IN)
			stream_failed(g, s);
		stream_close(g, s);
		return;
	}
	buf_append(&s->in, data, len);
	_cleanup_(buf_donep) struct buf plain = {0}, inflated = {0};
	const uint8_t *msg;
	size_t mlen;
	int r = stream_message(g, s, &plain, &inflated, &msg, &mlen);
	if (r == 0)
		return;
	if (r < 0) {
		g->stats.packets_dropped++;
		if (s->kind == STREAM_IN)
			send_err(g, s, "cannot read the stream");
		else
			stream_failed(g, s);
		stream_close(g, s);
		return;
	}
	bool complete = r == 2;
	if (s->kind == STREAM_IN)
		r = serve_stream(g, now_ms, s, msg, mlen, complete);
	else
		r = finish_stream(g, now_ms, s, msg, mlen, complete);
	if (r == -EAGAIN)
		return;
	stream_close(g, s);
}

void gossip_stream_closed(struct gossip *g, int64_t now_ms, uint32_t id)
{
	struct stream *s = stream_find(g, id);
	if (!s)
		return;
	if (s->kind != STREAM_IN && s->kind != STREAM_USER)
		stream_failed(g, s);
	stream_forget(g, s);
}

static void push_pull_start(struct gossip *g, int64_t now, const struct gossip_wire_addr *addr,
			    uint16_t port, bool join, uint32_t batch)
{
	struct stream *s = stream_open(g, STREAM_PUSH_PULL, now, addr, port);
	if (!s) {
		g->stats.push_pulls_failed++;
		batch_done(g, batch, false);
		return;
	}
	s->join = join;
	s->batch = batch;
	_cleanup_(buf_donep) struct buf st = {0};
	encode_local_state(g, join, &st);
	stream_write(g, s, st.data, st.len);
}

/* ---- probing (B5, B6) ---- */

static void probe_finish(struct gossip *g, int64_t now, bool ok);
static void leave_check(struct gossip *g, int64_t now);

static void probe_start(struct gossip *g, int64_t now)
{
	struct member *target = NULL;
	for (size_t checked = 0; checked <= g->n && !target;) {
		if (g->probe_idx >= g->n) {
			reset_members(g, now);
			g->probe_idx = 0;
			checked++;
			continue;
		}
		struct member *m = g->members[g->probe_idx++];
		if (m == g->self || is_dead_or_left(m)) {
			checked++;
			continue;
		}
		target = m;
	}
	if (!target)
		return;
	struct probe *p = &g->probe;
	free(p->target);
	*p = (struct probe){
		.active = true,
		.target = xstrdup(target->pub.name),
		.target_inc = target->pub.incarnation,
		.seq = ++g->seq,
		.start_ms = now,
		.direct_deadline_ms = now + g->prof.probe_timeout_ms,
		.end_ms = now + g->prof.probe_interval_ms * (int64_t)(g->health + 1),
	};
	g->stats.probes++;
	struct gossip_wire_ping ping = {
		.seq_no = p->seq,
		.node = {(const uint8_t *)target->pub.name, strlen(target->pub.name)},
		.source_addr = g->addr,
		.source_port = g->port,
		.source_node = {(const uint8_t *)g->name, strlen(g->name)},
	};
	_cleanup_(buf_donep) struct buf b = {0};
	gossip_wire_encode_ping(&ping, &b);
	if (target->pub.state == GOSSIP_ALIVE) {
		send_msg(g, &target->pub.addr, target->pub.port, target, b.data, b.len);
		return;
	}
	/* Buddy system: tell a suspect so that it can refute at once. */
	size_t plen = b.len;
	struct gossip_wire_accuse sm = {
		.incarnation = target->pub.incarnation,
		.node = ping.node,
		.from = ping.source_node,
	};
	gossip_wire_encode_accuse(GOSSIP_WIRE_SUSPECT, &sm, &b);
	struct gossip_wire_str parts[2] = {{b.data, plen}, {b.data + plen, b.len - plen}};
	_cleanup_(buf_donep) struct buf c = {0};
	if (gossip_wire_encode_compound(parts, 2, &c) == 0)
		send_packet(g, &target->pub.addr, target->pub.port, target, c.data, c.len);
}

static void probe_indirect(struct gossip *g, int64_t now)
{
	struct probe *p = &g->probe;
	p->indirect_sent = true;
	struct member *target = find(g, (const uint8_t *)p->target, strlen(p->target));
	if (!target)
		return;
	struct member *helpers[16];
	size_t k = random_members(g, MIN(g->prof.indirect_checks, ARRAY_SIZE(helpers)), target,
				  is_alive, now, helpers);
	for (size_t i = 0; i < k; i++) {
		struct gossip_wire_indirect_ping ind = {
			.seq_no = p->seq,
			.target = target->pub.addr,
			.port = target->pub.port,
			.node = {(const uint8_t *)target->pub.name, strlen(target->pub.name)},
			.nack = g->lifeguard && helpers[i]->pub.vsn[1] >= 4,
			.source_addr = g->addr,
			.source_port = g->port,
			.source_node = {(const uint8_t *)g->name, strlen(g->name)},
		};
		p->expected_nacks += ind.nack;
		_cleanup_(buf_donep) struct buf b = {0};
		gossip_wire_encode_indirect_ping(&ind, &b);
		send_msg(g, &helpers[i]->pub.addr, helpers[i]->pub.port, helpers[i], b.data, b.len);
		g->stats.indirect_probes++;
	}
	if (g->tcp_ping && target->pub.vsn[1] >= 3) {
		struct stream *s =
			stream_open(g, STREAM_PING, now, &target->pub.addr, target->pub.port);
		if (s) {
			s->seq = p->seq;
			s->deadline_ms = p->end_ms;
			p->tcp_stream = s->id;
			struct gossip_wire_ping ping = {
				.seq_no = p->seq,
				.node = {(const uint8_t *)target->pub.name,
					 strlen(target->pub.name)},
				.source_addr = g->addr,
				.source_port = g->port,
				.source_node = {(const uint8_t *)g->name, strlen(g->name)},
			};
			_cleanup_(buf_donep) struct buf b = {0};
			gossip_wire_encode_ping(&ping, &b);
			stream_write(g, s, b.data, b.len);
		}
	}
}

static void probe_finish(struct gossip *g, int64_t now, bool ok)
{
	struct probe *p = &g->probe;
	if (p->tcp_stream) {
		struct stream *s = stream_find(g, p->tcp_stream);
		if (s)
			stream_close(g, s);
	}
	p->active = false;
	if (ok) {
		apply_health(g, -1);
	} else {
		g->stats.probes_failed++;
		int delta = 0;
		if (p->expected_nacks > 0) {
			if (p->nacks < p->expected_nacks)
				delta += (int)(p->expected_nacks - p->nacks);
		} else {
			delta += 1;
		}
		apply_health(g, delta);
		struct member *t = find(g, (const uint8_t *)p->target, strlen(p->target));
		if (t) {
			/* The incarnation the probe started with, as memberlist (which probes a
			 * copy of the node): if the target refuted while we probed, this suspicion
			 * is stale and B8 drops it instead of accusing the new incarnation. */
			struct gossip_wire_accuse sm = {
				.incarnation = p->target_inc,
				.node = {(const uint8_t *)t->pub.name, strlen(t->pub.name)},
				.from = {(const uint8_t *)g->name, strlen(g->name)},
			};
			suspect_node(g, now, &sm);
		}
	}
	if (g->probe_tick_pending) {
		g->probe_tick_pending = false;
		probe_start(g, now);
	}
}

/* ---- receiving packets ---- */

struct rx {
	struct gossip *g;
	int64_t now;
	const struct gossip_wire_addr *addr;
	uint16_t port;
};

static void reply_to(struct gossip *g, const struct gossip_wire_addr *saddr, uint16_t sport,
		     struct gossip_wire_str sname, const struct rx *rx, const uint8_t *msg,
		     size_t len)
{
	/* To the Source* fields when present (the sender may be behind a NAT or bound to
	 * another address), else to where the packet came from. */
	const struct gossip_wire_addr *a = rx->addr;
	uint16_t port = rx->port;
	if (saddr->len > 0 && sport > 0) {
		a = saddr;
		port = sport;
	}
	send_msg(g, a, port, find_str(g, sname), msg, len);
}

static void relay_remove(struct gossip *g, size_t i)
{
	free(g->relays[i].name);
	g->relays[i] = g->relays[--g->nrelays];
}

static void handle_ping(struct gossip *g, const struct rx *rx, const uint8_t *body, size_t len)
{
	struct gossip_wire_ping p;
	if (gossip_wire_decode_ping(body, len, &p) < 0) {
		g->stats.packets_dropped++;
		return;
	}
	if (p.node.len && !str_is(p.node, g->name))
		return; /* meant for another node that had this address */
	_cleanup_(buf_donep) struct buf b = {0};
	struct gossip_wire_ack ack = {.seq_no = p.seq_no};
	gossip_wire_encode_ack(&ack, &b);
	reply_to(g, &p.source_addr, p.source_port, p.source_node, rx, b.data, b.len);
}

static void handle_indirect_ping(struct gossip *g, const struct rx *rx, const uint8_t *body,
				 size_t len)
{
	struct gossip_wire_indirect_ping ind;
	if (gossip_wire_decode_indirect_ping(body, len, &ind) < 0 ||
	    (ind.target.len != 4 && ind.target.len != 16)) {
		g->stats.packets_dropped++;
		return;
	}
	if (g->nrelays >= RELAYS_MAX) {
		g->stats.packets_dropped++;
		return;
	}
	struct relay r = {
		.local_seq = ++g->seq,
		.req_seq = ind.seq_no,
		.addr = *rx->addr,
		.port = rx->port,
		.name = ind.source_node.len ? str_dup(ind.source_node) : NULL,
		.nack = ind.nack,
		.deadline_ms = rx->now + g->prof.probe_timeout_ms,
	};
	if (ind.source_addr.len > 0 && ind.source_port > 0) {
		r.addr = ind.source_addr;
		r.port = ind.source_port;
	}
	g->relays = xgrow(g->relays, &g->relays_cap, g->nrelays + 1, sizeof(*g->relays));
	g->relays[g->nrelays++] = r;
	struct gossip_wire_ping ping = {
		.seq_no = r.local_seq,
		.node = ind.node,
		.source_addr = g->addr,
		.source_port = g->port,
		.source_node = {(const uint8_t *)g->name, strlen(g->name)},
	};
	_cleanup_(buf_donep) struct buf b = {0};
	gossip_wire_encode_ping(&ping, &b);
	send_msg(g, &ind.target, ind.port ? ind.port : g->port, find_str(g, ind.node), b.data,
		 b.len);
}

static void handle_ack(struct gossip *g, const struct rx *rx, const uint8_t *body, size_t len)
{
	struct gossip_wire_ack ack;
	if (gossip_wire_decode_ack(body, len, &ack) < 0) {
		g->stats.packets_dropped++;
		return;
	}
	struct probe *p = &g->probe;
	if (p->active && ack.seq_no == p->seq) {
		p->acked = true;
		probe_finish(g, rx->now, true);
		return;
	}
	for (size_t i = 0; i < g->nrelays; i++) {
		struct relay *r = &g->relays[i];
		if (r->local_seq != ack.seq_no)
			continue;
		_cleanup_(buf_donep) struct buf b = {0};
		struct gossip_wire_ack fwd = {.seq_no = r->req_seq};
		gossip_wire_encode_ack(&fwd, &b);
		struct member *dest =
			r->name ? find(g, (const uint8_t *)r->name, strlen(r->name)) : NULL;
		send_msg(g, &r->addr, r->port, dest, b.data, b.len);
		relay_remove(g, i);
		return;
	}
}

static void handle_nack(struct gossip *g, const uint8_t *body, size_t len)
{
	uint32_t seq;
	if (gossip_wire_decode_nack(body, len, &seq) < 0) {
		g->stats.packets_dropped++;
		return;
	}
	if (g->probe.active && seq == g->probe.seq)
		g->probe.nacks++;
}

static void on_message(enum gossip_wire_type type, const uint8_t *body, size_t len, void *ud)
{
	const struct rx *rx = ud;
	struct gossip *g = rx->g;
	switch (type) {
	case GOSSIP_WIRE_PING:
		handle_ping(g, rx, body, len);
		return;
	case GOSSIP_WIRE_INDIRECT_PING:
		handle_indirect_ping(g, rx, body, len);
		return;
	case GOSSIP_WIRE_ACK:
		handle_ack(g, rx, body, len);
		return;
	case GOSSIP_WIRE_NACK:
		handle_nack(g, body, len);
		return;
	case GOSSIP_WIRE_SUSPECT:
	case GOSSIP_WIRE_DEAD: {
		struct gossip_wire_accuse a;
		if (gossip_wire_decode_accuse(body, len, &a) < 0) {
			g->stats.packets_dropped++;
			return;
		}
		if (type == GOSSIP_WIRE_SUSPECT)
			suspect_node(g, rx->now, &a);
		else
			dead_node(g, rx->now, &a);
		return;
	}
	case GOSSIP_WIRE_ALIVE: {
		struct gossip_wire_alive a;
		if (gossip_wire_decode_alive(body, len, &a) < 0) {
			g->stats.packets_dropped++;
			return;
		}
		if (a.port == 0)
			a.port = g->port; /* protocol 1 peers send none: ours is theirs */
		alive_node(g, rx->now, &a);
		return;
	}
	case GOSSIP_WIRE_USER:
		g->stats.user_received++;
		emit_data_event(g, GOSSIP_EV_USER, body, len, false);
		return;
	default:
		g->stats.packets_dropped++;
		return;
	}
}

void gossip_recv_packet(struct gossip *g, int64_t now_ms, const struct gossip_wire_addr *addr,
			uint16_t port, const uint8_t *data, size_t len)
{
	g->stats.packets_received++;
	g->stats.bytes_received += len;
	_cleanup_(buf_donep) struct buf plain = {0};
	if (g->keyring) {
		if (keyring_decrypt_packet(g->keyring, data, len, NULL, 0, &plain) < 0) {
			g->stats.packets_dropped++;
			return;
		}
		data = plain.data;
		len = plain.len;
	}
	struct rx rx = {g, now_ms, addr, port};
	if (gossip_wire_packet_walk(data, len, on_message, &rx) < 0)
		g->stats.packets_dropped++;
	/* Our leave may just have ridden out on an ack: say so now, not at the next tick (the
	 * deadline does not cover it). */
	leave_check(g, now_ms);
}

/* ---- periodic work ---- */

static bool gossip_target_ok(const struct gossip *g, const struct member *m, int64_t now)
{
	switch (m->pub.state) {
	case GOSSIP_ALIVE:
	case GOSSIP_SUSPECT:
		return true;
	case GOSSIP_DEAD:
		return now - m->pub.state_change_ms <= g->prof.gossip_to_the_dead_ms;
	default:
		return false;
	}
}

/* B15 */
static void gossip_round(struct gossip *g, int64_t now)
{
	struct member *peers[16];
	size_t k = random_members(g, MIN(g->prof.gossip_nodes, ARRAY_SIZE(peers)), NULL,
				  gossip_target_ok, now, peers);
	size_t budget = g->prof.packet_budget - COMPOUND_HEADER - encrypt_overhead(g);
	for (size_t i = 0; i < k; i++) {
		_cleanup_(buf_donep) struct buf b = {0};
		size_t lens[MAX_PARTS];
		size_t n = take_broadcasts(g, budget, &b, lens, MAX_PARTS);
		if (n == 0)
			return;
		send_parts(g, &peers[i]->pub.addr, peers[i]->pub.port, peers[i], b.data, lens, n);
	}
}

/* B16's interval scaling for large clusters. */
static int64_t push_pull_interval(const struct gossip *g)
{
	int64_t iv = g->prof.push_pull_interval_ms;
	if (g->n <= 32)
		return iv;
	double mult = ceil(log2((double)g->n) - log2(32.0)) + 1.0;
	return (int64_t)(mult * (double)iv);
}

static void push_pull_round(struct gossip *g, int64_t now)
{
	struct member *peer;
	if (random_members(g, 1, NULL, is_alive, now, &peer) == 1)
		push_pull_start(g, now, &peer->pub.addr, peer->pub.port, false, 0);
}

/* B20 (ours): re-join one recently failed member or absent seed. */
static void reconnect_round(struct gossip *g, int64_t now)
{
	for (size_t i = g->nfailed; i-- > 0;)
		if (now - g->failed[i].since_ms > g->prof.reconnect_timeout_ms) {
			free(g->failed[i].name);
			g->failed[i] = g->failed[--g->nfailed];
		}
	size_t ncand = 0;
	struct gossip_peer *cand = xmalloc((g->nfailed + g->nseeds + 1) * sizeof(*cand));
	for (size_t i = 0; i < g->nfailed; i++) {
		const struct member *m =
			find(g, (const uint8_t *)g->failed[i].name, strlen(g->failed[i].name));
		if (m && (m->pub.state == GOSSIP_ALIVE || m->pub.state == GOSSIP_SUSPECT))
			continue;
		cand[ncand++] = (struct gossip_peer){g->failed[i].addr, g->failed[i].port};
	}
	for (size_t i = 0; i < g->nseeds; i++) {
		const struct gossip_peer *sp = &g->seeds[i];
		bool present = addr_eq(&sp->addr, &g->addr) && sp->port == g->port;
		for (size_t j = 0; j < g->n && !present; j++) {
			const struct member *m = g->members[j];
			present = m != g->self && m->pub.state != GOSSIP_DEAD &&
				  m->pub.state != GOSSIP_LEFT && addr_eq(&m->pub.addr, &sp->addr) &&
				  m->pub.port == sp->port;
		}
		if (!present)
			cand[ncand++] = *sp;
	}
	if (ncand > 0) {
		const struct gossip_peer *c = &cand[rng_below(&g->rng, ncand)];
		g->stats.reconnects++;
		push_pull_start(g, now, &c->addr, c->port, true, 0);
	}
	free(cand);
}

/* The next time on a fixed grid strictly after now (missed ticks are skipped, as Go's
 * tickers do). */
static int64_t next_tick(int64_t prev, int64_t interval, int64_t now)
{
	int64_t t = prev + interval;
	if (t <= now)
		t = now + interval - (now - prev) % interval;
	return t;
}

int64_t gossip_next_deadline_ms(const struct gossip *g)
{
	int64_t d = INT64_MAX;
	d = min64(d, g->next_probe_ms);
	d = min64(d, g->next_gossip_ms);
	d = min64(d, g->next_push_pull_ms);
	d = min64(d, g->next_reconnect_ms);
	if (g->probe.active)
		d = min64(d,
			  g->probe.indirect_sent ? g->probe.end_ms : g->probe.direct_deadline_ms);
	for (size_t i = 0; i < g->nrelays; i++)
		d = min64(d, g->relays[i].deadline_ms);
	for (size_t i = 0; i < g->n; i++)
		if (g->members[i]->susp)
			d = min64(d, g->members[i]->susp->deadline_ms);
	for (size_t i = 0; i < g->nstreams; i++)
		d = min64(d, g->streams[i]->deadline_ms);
	if (g->leaving && !g->leave_done)
		d = min64(d, g->leave_deadline_ms);
	return d;
}

static void leave_check(struct gossip *g, int64_t now)
{
	if (!g->leaving || g->leave_done)
		return;
	if (g->bq.notified || now >= g->leave_deadline_ms) {
		g->leave_done = true;
		emit_event(g, GOSSIP_EV_LEAVE_DONE, NULL, GOSSIP_LEFT);
	}
}

void gossip_tick(struct gossip *g, int64_t now)
{
	/* Suspicion timers (iterate by name: firing changes state, never the member array). */
	for (size_t i = 0; i < g->n; i++) {
		struct member *m = g->members[i];
		if (m->susp && m->susp->deadline_ms <= now)
			suspicion_fire(g, now, m);
	}
	for (size_t i = g->nrelays; i-- > 0;) {
		struct relay *r = &g->relays[i];
		if (r->deadline_ms > now)
			continue;
		if (r->nack) {
			_cleanup_(buf_donep) struct buf b = {0};
			gossip_wire_encode_nack(r->req_seq, &b);
			struct member *dest =
				r->name ? find(g, (const uint8_t *)r->name, strlen(r->name)) : NULL;
			send_msg(g, &r->addr, r->port, dest, b.data, b.len);
		}
		relay_remove(g, i);
	}
	for (size_t i = g->nstreams; i-- > 0;) {
		struct stream *s = g->streams[i];
		if (s->deadline_ms > now)
			continue;
		if (s->kind != STREAM_IN && s->kind != STREAM_USER)
			stream_failed(g, s);
		stream_close(g, s);
	}
	struct probe *p = &g->probe;
	if (p->active && !p->indirect_sent && now >= p->direct_deadline_ms)
		probe_indirect(g, now);
	if (p->active && p->indirect_sent && now >= p->end_ms)
		probe_finish(g, now, p->tcp_ok);
	if (now >= g->next_probe_ms) {
		g->next_probe_ms = next_tick(g->next_probe_ms, g->prof.probe_interval_ms, now);
		if (p->active)
			g->probe_tick_pending = true;
		else
			probe_start(g, now);
	}
	if (now >= g->next_gossip_ms) {
		g->next_gossip_ms = next_tick(g->next_gossip_ms, g->prof.gossip_interval_ms, now);
		gossip_round(g, now);
	}
	if (now >= g->next_push_pull_ms) {
		g->next_push_pull_ms = now + push_pull_interval(g);
		push_pull_round(g, now);
	}
	if (now >= g->next_reconnect_ms) {
		g->next_reconnect_ms = now + g->prof.reconnect_interval_ms;
		reconnect_round(g, now);
	}
	leave_check(g, now);
}

/* ---- application ---- */

int gossip_join(struct gossip *g, int64_t now_ms, const struct gossip_peer *seeds, size_t n)
{
	if (n == 0)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		bool known = false;
		for (size_t j = 0; j < g->nseeds && !known; j++)
			known = addr_eq(&g->seeds[j].addr, &seeds[i].addr) &&
				g->seeds[j].port == seeds[i].port;
		if (!known) {
			g->seeds = xrealloc(g->seeds, (g->nseeds + 1) * sizeof(*g->seeds));
			g->seeds[g->nseeds++] = seeds[i];
		}
	}
	if (++g->next_batch == 0)
		g->next_batch = 1;
	g->batches = xgrow(g->batches, &g->batches_cap, g->nbatches + 1, sizeof(*g->batches));
	g->batches[g->nbatches++] =
		(struct join_batch){.id = g->next_batch, .pending = (unsigned)n};
	uint32_t id = g->next_batch;
	for (size_t i = 0; i < n; i++)
		push_pull_start(g, now_ms, &seeds[i].addr, seeds[i].port, true, id);
	return 0;
}

void gossip_leave(struct gossip *g, int64_t now_ms, int64_t timeout_ms)
{
	if (g->leaving)
		return;
	g->leaving = true;
	g->leave_deadline_ms = now_ms + timeout_ms;
	struct gossip_wire_accuse d = {
		.incarnation = g->self->pub.incarnation,
		.node = {(const uint8_t *)g->name, strlen(g->name)},
		.from = {(const uint8_t *)g->name, strlen(g->name)},
	};
	dead_node(g, now_ms, &d);
	bool any_alive = false;
	for (size_t i = 0; i < g->n && !any_alive; i++)
		any_alive = g->members[i] != g->self && g->members[i]->pub.state == GOSSIP_ALIVE;
	if (!any_alive)
		g->leave_deadline_ms = now_ms; /* nobody to tell */
	leave_check(g, now_ms);
}

static size_t user_max(const struct gossip *g)
{
	return g->prof.packet_budget - COMPOUND_HEADER - encrypt_overhead(g) - COMPOUND_OVERHEAD -
	       1;
}

int gossip_broadcast(struct gossip *g, const char *key, const uint8_t *data, size_t len)
{
	if (len > user_max(g))
		return -EMSGSIZE;
	_cleanup_(buf_donep) struct buf b = {0};
	gossip_wire_encode_user(data, len, &b);
	bcast_queue_push(&g->user, key, b.data, b.len, false);
	return 0;
}

int gossip_send_user(struct gossip *g, int64_t now_ms, const char *name, const uint8_t *data,
		     size_t len, bool reliable)
{
	struct member *m = find(g, (const uint8_t *)name, strlen(name));
	if (!m || m == g->self)
		return -ENOENT;
	_cleanup_(buf_donep) struct buf b = {0};
	if (!reliable) {
		if (len + 1 + encrypt_overhead(g) + 5 > g->prof.packet_budget)
			return -EMSGSIZE;
		gossip_wire_encode_user(data, len, &b);
		send_packet(g, &m->pub.addr, m->pub.port, m, b.data, b.len);
		g->stats.user_sent++;
		return 0;
	}
	if (len > GOSSIP_WIRE_USER_STATE_MAX)
		return -EMSGSIZE;
	struct stream *s = stream_open(g, STREAM_USER, now_ms, &m->pub.addr, m->pub.port);
	if (!s)
		return -EBUSY;
	gossip_wire_encode_user_stream_header((uint32_t)len, &b);
	buf_append(&b, data, len);
	stream_write(g, s, b.data, b.len);
	g->stats.user_sent++;
	return 0;
}

int gossip_set_meta(struct gossip *g, const uint8_t *meta, size_t len)
{
	if (len > GOSSIP_WIRE_META_MAX)
		return -EMSGSIZE;
	struct member *me = g->self;
	free(me->pub.meta);
	me->pub.meta = len ? xmemdup(meta, len) : NULL;
	me->pub.meta_len = len;
	me->pub.incarnation++;
	_cleanup_(buf_donep) struct buf b = {0};
	encode_alive_of(me, &b);
	broadcast(g, me->pub.name, &b, false);
	return 0;
}

/* ---- lifecycle and introspection ---- */

int gossip_profile_get(const char *name, struct gossip_profile *ret)
{
	struct gossip_profile p = {
		.probe_interval_ms = 1000,
		.probe_timeout_ms = 500,
		.indirect_checks = 3,
		.suspicion_mult = 4,
		.suspicion_max_timeout_mult = 6,
		.retransmit_mult = 4,
		.gossip_interval_ms = 200,
		.gossip_nodes = 3,
		.gossip_to_the_dead_ms = 30000,
		.push_pull_interval_ms = 30000,
		.tcp_timeout_ms = 10000,
		.awareness_max = 8,
		.reconnect_interval_ms = 30000,
		.reconnect_timeout_ms = 24LL * 3600 * 1000,
		.packet_budget = 1400,
	};
	if (strcmp(name, "lan") == 0) {
		/* as above */
	} else if (strcmp(name, "wan") == 0) {
		p.probe_interval_ms = 5000;
		p.probe_timeout_ms = 3000;
		p.suspicion_mult = 6;
		p.gossip_nodes = 4;
		p.gossip_interval_ms = 500;
		p.push_pull_interval_ms = 60000;
		p.gossip_to_the_dead_ms = 60000;
		p.tcp_timeout_ms = 30000;
	} else if (strcmp(name, "local") == 0) {
		p.probe_timeout_ms = 200;
		p.indirect_checks = 1;
		p.suspicion_mult = 3;
		p.retransmit_mult = 2;
		p.gossip_interval_ms = 100;
		p.gossip_to_the_dead_ms = 15000;
		p.push_pull_interval_ms = 15000;
		p.tcp_timeout_ms = 1000;
		p.reconnect_interval_ms = 15000;
	} else {
		return -ENOENT;
	}
	*ret = p;
	return 0;
}

int gossip_new(const struct gossip_config *cfg, int64_t now, struct gossip **ret)
{
	const struct gossip_profile *pr = &cfg->profile;
	if (!cfg->name || !*cfg->name || strlen(cfg->name) > GOSSIP_WIRE_NAME_MAX ||
	    cfg->meta_len > GOSSIP_WIRE_META_MAX || (cfg->addr.len != 4 && cfg->addr.len != 16) ||
	    pr->probe_interval_ms <= 0 || pr->probe_timeout_ms <= 0 ||
	    pr->gossip_interval_ms <= 0 || pr->push_pull_interval_ms <= 0 ||
	    pr->tcp_timeout_ms <= 0 || pr->reconnect_interval_ms <= 0 || pr->awareness_max < 1 ||
	    pr->packet_budget < 576)
		return -EINVAL;
	struct gossip *g = xcalloc(1, sizeof(*g));
	g->name = xstrdup(cfg->name);
	g->addr = cfg->addr;
	g->port = cfg->port;
	g->prof = *pr;
	g->vsn[0] = PROTO_MIN;
	g->vsn[1] = PROTO_MAX;
	g->vsn[2] = PROTO_CUR;
	memcpy(g->vsn + 3, cfg->delegate_vsn, 3);
	g->keyring = cfg->keyring;
	g->compress = cfg->compress;
	g->tcp_ping = !cfg->no_tcp_ping;
	g->lifeguard = !cfg->no_lifeguard;
	g->local_state = cfg->local_state;
	g->ud = cfg->ud;
	rng_seed(&g->rng, cfg->seed);
	hmap_init(&g->by_name, member_key);
	bcast_queue_init(&g->bq, 0);
	bcast_queue_init(&g->user, USER_QUEUE_MAX);

	struct member *me = xcalloc(1, sizeof(*me));
	me->pub.name = xstrdup(cfg->name);
	me->pub.addr = cfg->addr;
	me->pub.port = cfg->port;
	me->pub.meta = cfg->meta_len ? xmemdup(cfg->meta, cfg->meta_len) : NULL;
	me->pub.meta_len = cfg->meta_len;
	me->pub.incarnation = 1;
	me->pub.state = GOSSIP_ALIVE;
	me->pub.state_change_ms = now;
	memcpy(me->pub.vsn, g->vsn, 6);
	hmap_put(&g->by_name, me);
	g->members = xgrow(NULL, &g->cap, 1, sizeof(*g->members));
	g->members[g->n++] = me;
	g->self = me;
	/* memberlist's setAlive queues our own alive as well: it rides our first packets after a
	 * join, so members the seed's gossip misses still hear of us from us. */
	_cleanup_(buf_donep) struct buf b = {0};
	encode_alive_of(me, &b);
	broadcast(g, me->pub.name, &b, false);

	/* B19: each loop starts after a random part of its interval. */
	g->next_probe_ms = now + (int64_t)rng_below(&g->rng, (uint64_t)pr->probe_interval_ms);
	g->next_gossip_ms = now + (int64_t)rng_below(&g->rng, (uint64_t)pr->gossip_interval_ms);
	g->next_push_pull_ms =
		now + (int64_t)rng_below(&g->rng, (uint64_t)pr->push_pull_interval_ms);
	g->next_reconnect_ms = now + pr->reconnect_interval_ms / 2 +
			       (int64_t)rng_below(&g->rng, (uint64_t)pr->reconnect_interval_ms);
	*ret = g;
	return 0;
}

void gossip_free(struct gossip *g)
{
	if (!g)
		return;
	for (size_t i = 0; i < g->n; i++)
		member_free(g->members[i]);
	free(g->members);
	hmap_done(&g->by_name);
	bcast_queue_done(&g->bq);
	bcast_queue_done(&g->user);
	free(g->probe.target);
	while (g->nrelays > 0)
		relay_remove(g, g->nrelays - 1);
	free(g->relays);
	while (g->nstreams > 0)
		stream_forget(g, g->streams[g->nstreams - 1]);
	free(g->streams);
	free(g->batches);
	free(g->seeds);
	for (size_t i = 0; i < g->nfailed; i++)
		free(g->failed[i].name);
	free(g->failed);
	out_free(&g->last);
	for (size_t i = g->outq_head; i < g->outq_n; i++)
		out_free(&g->outq[i]);
	free(g->outq);
	free(g->name);
	free(g);
}

size_t gossip_member_count(const struct gossip *g)
{
	return g->n;
}

const struct gossip_member *gossip_member_at(const struct gossip *g, size_t i)
{
	return i < g->n ? &g->members[i]->pub : NULL;
}

const struct gossip_member *gossip_member_find(const struct gossip *g, const char *name)
{
	struct member *m = find(g, (const uint8_t *)name, strlen(name));
	return m ? &m->pub : NULL;
}

const struct gossip_member *gossip_self(const struct gossip *g)
{
	return &g->self->pub;
}

unsigned gossip_health(const struct gossip *g)
{
	return g->health;
}

const struct gossip_stats *gossip_get_stats(const struct gossip *g)
{
	return &g->stats;
}

size_t gossip_pending_broadcasts(const struct gossip *g)
{
	return bcast_queue_len(&g->bq) + bcast_queue_len(&g->user);
}
