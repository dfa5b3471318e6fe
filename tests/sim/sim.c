/* SPDX-License-Identifier: Apache-2.0 */
#include "tests/sim/sim.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/keyring.h"
#include "proto/mem.h"

/* A socket receive buffer's worth of datagrams kept for a frozen node (Linux's default
 * rmem of ~208 KiB holds a few hundred small gossip packets). */
#define FROZEN_UDP_MAX 256
#define T0_MS	       1000
#define IO_BATCH       32 /* datagrams libuv reads per socket and loop iteration */

enum ev_kind {
	EV_UDP,	      /* datagram for node from src */
	EV_ACCEPT,    /* conn's SYN reaches side 1 */
	EV_CONNECTED, /* conn's handshake completes at side 0 */
	EV_REFUSED,   /* conn's connect fails at side 0 */
	EV_DATA,      /* bytes for side `side` */
	EV_FIN,	      /* the other side closed (after its writes) */
};

struct sim_ev {
	int64_t t;
	uint64_t seq;
	enum ev_kind kind;
	int node, src;
	uint32_t conn;
	int side;
	uint8_t *data;
	size_t len;
};

struct sim_conn {
	int node[2];	     /* 0: the side that opened, 1: the side that accepted */
	uint32_t sid[2];     /* stream ids (sid[1] once accepted) */
	bool open[2];	     /* the side's gossip still knows the stream */
	bool broken;	     /* cut by a partition or tcp_fail: nothing more is delivered */
	int64_t last[2];     /* time of the last delivery scheduled to each side (in-order) */
	int64_t since_ms[2]; /* when each side's gossip got it: open asked, accepted */
};

/* ---- seed and environment ---- */

uint64_t sim_seed(uint64_t dflt)
{
	const char *e = getenv("SIM_SEED");
	uint64_t seed = dflt;
	if (e && *e)
		seed = strtoull(e, NULL, 0);
	printf("# seed %" PRIu64 " (set SIM_SEED to replay)\n", seed);
	fflush(stdout);
	return seed;
}

bool sim_quick(void)
{
	const char *e = getenv("SIM_QUICK");
	return e && *e && strcmp(e, "0") != 0;
}

/* ---- event heap ---- */

static bool ev_before(const struct sim_ev *a, const struct sim_ev *b)
{
	return a->t != b->t ? a->t < b->t : a->seq < b->seq;
}

static void heap_push(struct sim *s, struct sim_ev *e)
{
	e->seq = s->next_seq++;
	s->heap = xgrow(s->heap, &s->heap_cap, s->nheap + 1, sizeof(*s->heap));
	size_t i = s->nheap++;
	while (i > 0) {
		size_t p = (i - 1) / 2;
		if (!ev_before(e, s->heap[p]))
			break;
		s->heap[i] = s->heap[p];
		i = p;
	}
	s->heap[i] = e;
}

static struct sim_ev *heap_pop(struct sim *s)
{
	struct sim_ev *top = s->heap[0];
	struct sim_ev *last = s->heap[--s->nheap];
	size_t i = 0;
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		const struct sim_ev *best = last;
		if (l < s->nheap && ev_before(s->heap[l], best)) {
			m = l;
			best = s->heap[l];
		}
		if (r < s->nheap && ev_before(s->heap[r], best))
			m = r;
		if (m == i)
			break;
		s->heap[i] = s->heap[m];
		i = m;
	}
	if (s->nheap > 0)
		s->heap[i] = last;
	return top;
}

static void ev_free(struct sim_ev *e)
{
	free(e->data);
	free(e);
}

static struct sim_ev *ev_new(enum ev_kind kind, int64_t t, int node)
{
	struct sim_ev *e = xcalloc(1, sizeof(*e));
	e->kind = kind;
	e->t = t;
	e->node = node;
	e->src = -1;
	return e;
}

static int64_t delay(struct sim *s)
{
	return s->dmin + (int64_t)rng_below(&s->rng, (uint64_t)(s->dmax - s->dmin + 1));
}

/* ---- node lookup ---- */

static int node_by_addr(const struct sim *s, const struct gossip_wire_addr *a, uint16_t port)
{
	if (a->len != 4 || a->b[0] != 127 || a->b[1] != 0 || a->b[2] != 0 || port != SIM_PORT)
		return -1;
	int i = (int)a->b[3] - 1;
	return i >= 0 && (size_t)i < s->n ? i : -1;
}

int sim_index(const struct sim *s, const char *name)
{
	if (!name || name[0] != 'n')
		return -1;
	char *end;
	long i = strtol(name + 1, &end, 10);
	if (*end || i < 0 || (size_t)i >= s->n)
		return -1;
	return (int)i;
}

static bool tcp_blocked(const struct sim *s, int a, int b)
{
	return s->block[a * s->n + b] || s->block[b * s->n + a];
}

/* ---- streams ---- */

static void stream_reg(struct sim_node *nd, uint32_t sid, uint32_t conn)
{
	nd->streams = xgrow(nd->streams, &nd->streams_cap, nd->nstreams + 1, sizeof(*nd->streams));
	nd->streams[nd->nstreams].sid = sid;
	nd->streams[nd->nstreams].conn = conn;
	nd->nstreams++;
}

static void stream_unreg(struct sim_node *nd, uint32_t sid)
{
	for (size_t i = 0; i < nd->nstreams; i++)
		if (nd->streams[i].sid == sid) {
			nd->streams[i] = nd->streams[--nd->nstreams];
			return;
		}
}

static struct sim_conn *stream_conn(struct sim *s, int node, uint32_t sid, int *ret_side)
{
	const struct sim_node *nd = &s->nodes[node];
	for (size_t i = 0; i < nd->nstreams; i++)
		if (nd->streams[i].sid == sid) {
			struct sim_conn *c = &s->conns[nd->streams[i].conn];
			*ret_side = c->node[0] == node && c->sid[0] == sid ? 0 : 1;
			return c;
		}
	return NULL;
}

/* Schedules an in-order delivery of kind to side k of conn c. */
static void conn_deliver(struct sim *s, struct sim_conn *c, int k, enum ev_kind kind,
			 const uint8_t *data, size_t len)
{
	int64_t t = s->now_ms + delay(s);
	if (t < c->last[k])
		t = c->last[k];
	c->last[k] = t;
	struct sim_ev *e = ev_new(kind, t, c->node[k]);
	e->conn = (uint32_t)(c - s->conns);
	e->side = k;
	if (len) {
		e->data = xmemdup(data, len);
		e->len = len;
	}
	heap_push(s, e);
}

static void out_open(struct sim *s, int i, uint32_t sid, const struct gossip_wire_addr *addr,
		     uint16_t port)
{
	s->conns = xgrow(s->conns, &s->conns_cap, s->nconns + 1, sizeof(*s->conns));
	uint32_t ci = (uint32_t)s->nconns++;
	struct sim_conn *c = &s->conns[ci];
	int j = node_by_addr(s, addr, port);
	*c = (struct sim_conn){
		.node = {i, j}, .sid = {sid, 0}, .open = {true, false}, .since_ms = {s->now_ms, 0}};
	stream_reg(&s->nodes[i], sid, ci);
	if (j < 0 || s->nodes[j].dead) {
		/* Nobody listens there: refused (RST) after a round trip. */
		c->broken = true;
		struct sim_ev *e = ev_new(EV_REFUSED, s->now_ms + 2 * delay(s), i);
		e->conn = ci;
		heap_push(s, e);
		return;
	}
	if (j == i || tcp_blocked(s, i, j) ||
	    (s->tcp_fail > 0 && rng_unit(&s->rng) < s->tcp_fail)) {
		/* SYNs vanish: the opener's own timeout ends it. */
		c->broken = true;
		return;
	}
	int64_t t = s->now_ms + delay(s);
	struct sim_ev *e = ev_new(EV_ACCEPT, t, j);
	e->conn = ci;
	e->side = 1;
	heap_push(s, e);
	c->last[1] = t;
	/* The kernel completes the handshake even if the acceptor is frozen. */
	e = ev_new(EV_CONNECTED, t, i);
	e->conn = ci;
	heap_push(s, e);
	c->last[0] = t;
}

static void out_write(struct sim *s, int i, uint32_t sid, const uint8_t *data, size_t len)
{
	int k;
	struct sim_conn *c = stream_conn(s, i, sid, &k);
	if (!c) {
		fprintf(stderr, "sim: n%02d writes on unknown stream %u\n", i, sid);
		s->errors++;
		return;
	}
	if (c->broken || (k == 0 && c->node[1] < 0))
		return;
	/* TCP keeps no message boundaries: cut the write into segments of random sizes (now
	 * and then tiny ones) so the reader's incremental parsing is exercised. */
	while (len > 0) {
		size_t seg = rng_below(&s->rng, 8) == 0 ? 1 + rng_below(&s->rng, 8)
							: 1 + rng_below(&s->rng, 2920);
		if (seg > len)
			seg = len;
		conn_deliver(s, c, 1 - k, EV_DATA, data, seg);
		data += seg;
		len -= seg;
	}
}

static void out_close(struct sim *s, int i, uint32_t sid)
{
	int k;
	struct sim_conn *c = stream_conn(s, i, sid, &k);
	if (!c) {
		fprintf(stderr, "sim: n%02d closes unknown stream %u\n", i, sid);
		s->errors++;
		return;
	}
	c->open[k] = false;
	stream_unreg(&s->nodes[i], sid);
	if (!c->broken && c->node[1 - k] >= 0)
		conn_deliver(s, c, 1 - k, EV_FIN, NULL, 0);
}

static void out_packet(struct sim *s, int i, const struct gossip_out *o)
{
	s->nodes[i].udp_sent++;
	int j = node_by_addr(s, &o->addr, o->port);
	if (j < 0 || j == i)
		return;
	if (s->block[i * s->n + j])
		return;
	double p = s->loss[i * s->n + j];
	if (p > 0 && rng_unit(&s->rng) < p)
		return;
	struct sim_ev *e = ev_new(EV_UDP, s->now_ms + delay(s), j);
	e->src = i;
	e->data = xmemdup(o->data, o->len);
	e->len = o->len;
	heap_push(s, e);
}

static void out_event(struct sim *s, int i, const struct gossip_out *o)
{
	struct sim_node *nd = &s->nodes[i];
	switch (o->event) {
	case GOSSIP_EV_JOIN:
		nd->joins++;
		break;
	case GOSSIP_EV_LEAVE:
		s->leaves = xgrow(s->leaves, &s->leaves_cap, s->nleaves + 1, sizeof(*s->leaves));
		s->leaves[s->nleaves++] = (struct sim_leave){
			.t_ms = s->now_ms,
			.observer = i,
			.subject = sim_index(s, o->name),
			.state = o->state,
		};
		break;
	case GOSSIP_EV_SUSPECT:
		nd->suspects++;
		break;
	case GOSSIP_EV_USER:
		nd->users++;
		break;
	case GOSSIP_EV_REMOTE_STATE:
		nd->remote_states++;
		break;
	case GOSSIP_EV_JOIN_DONE:
		nd->join_done++;
		nd->join_done_count = o->count;
		break;
	case GOSSIP_EV_LEAVE_DONE:
		nd->leave_done++;
		break;
	default:
		break;
	}
	if (s->trace && o->event <= GOSSIP_EV_SUSPECT)
		printf("# %10.3f n%02d %s %s\n", (double)s->now_ms / 1000.0, i,
		       (const char *[]){"join", "leave", "update", "suspect"}[o->event],
		       o->name ? o->name : "-");
	if (s->on_event)
		s->on_event(s, i, o, s->ud);
}

/* Carries out everything node i asked for, then refreshes its deadline. */
static void drain(struct sim *s, int i)
{
	struct sim_node *nd = &s->nodes[i];
	struct gossip_out o;
	while (gossip_poll(nd->g, &o)) {
		switch (o.type) {
		case GOSSIP_OUT_PACKET:
			out_packet(s, i, &o);
			break;
		case GOSSIP_OUT_STREAM_OPEN:
			out_open(s, i, o.stream, &o.addr, o.port);
			break;
		case GOSSIP_OUT_STREAM_WRITE:
			out_write(s, i, o.stream, o.data, o.len);
			break;
		case GOSSIP_OUT_STREAM_CLOSE:
			out_close(s, i, o.stream);
			break;
		case GOSSIP_OUT_EVENT:
			out_event(s, i, &o);
			break;
		}
	}
	nd->deadline_ms = gossip_next_deadline_ms(nd->g);
}

/* ---- delivery ---- */

static void dispatch(struct sim *s, struct sim_ev *e)
{
	struct sim_node *nd = &s->nodes[e->node];
	if (nd->dead) {
		ev_free(e);
		return;
	}
	if (nd->frozen) {
		if (e->kind == EV_UDP) {
			if (nd->deferred_udp >= FROZEN_UDP_MAX) {
				nd->udp_dropped_frozen++;
				ev_free(e);
				return;
			}
			nd->deferred_udp++;
		}
		nd->deferred = xgrow(nd->deferred, &nd->deferred_cap, nd->ndeferred + 1,
				     sizeof(*nd->deferred));
		nd->deferred[nd->ndeferred++] = e;
		return;
	}
	struct sim_conn *c = e->kind == EV_UDP ? NULL : &s->conns[e->conn];
	int64_t now = s->now_ms;
	if (nd->io_at != now) {
		nd->io_at = now;
		nd->io_count = 0;
	}
	nd->io_count++;
	switch (e->kind) {
	case EV_UDP:
		gossip_recv_packet(nd->g, now, &s->nodes[e->src].addr, SIM_PORT, e->data, e->len);
		break;
	case EV_ACCEPT: {
		if (c->broken)
			break;
		/* An ephemeral source port, as a kernel would pick. */
		uint16_t port = (uint16_t)(32768 + e->conn % 28000);
		uint32_t sid = gossip_stream_accept(nd->g, now, &s->nodes[c->node[0]].addr, port);
		c->sid[1] = sid;
		c->open[1] = true;
		c->since_ms[1] = now;
		stream_reg(nd, sid, e->conn);
		break;
	}
	case EV_CONNECTED:
		if (c->broken || !c->open[0])
			break;
		gossip_stream_connected(nd->g, now, c->sid[0]);
		break;
	case EV_REFUSED:
		if (!c->open[0])
			break;
		c->open[0] = false;
		stream_unreg(nd, c->sid[0]);
		gossip_stream_closed(nd->g, now, c->sid[0]);
		break;
	case EV_DATA:
		if (c->broken || !c->open[e->side])
			break;
		gossip_stream_recv(nd->g, now, c->sid[e->side], e->data, e->len);
		break;
	case EV_FIN:
		if (c->broken || !c->open[e->side])
			break;
		c->open[e->side] = false;
		stream_unreg(nd, c->sid[e->side]);
		gossip_stream_closed(nd->g, now, c->sid[e->side]);
		break;
	}
	int node = e->node;
	ev_free(e);
	drain(s, node);
}

static void tick(struct sim *s, int i)
{
	struct sim_node *nd = &s->nodes[i];
	nd->io_count = 0;
	gossip_tick(nd->g, s->now_ms);
	drain(s, i);
	if (nd->deadline_ms <= s->now_ms) {
		/* Every timer due at now ran: a deadline still due means gossip would spin. */
		if (nd->stuck_at != s->now_ms) {
			nd->stuck_at = s->now_ms;
			nd->stuck = 0;
		}
		if (++nd->stuck > 100) {
			fprintf(stderr, "sim: n%02d deadline %" PRId64 " stuck at %" PRId64 "\n", i,
				nd->deadline_ms, s->now_ms);
			s->errors++;
			nd->deadline_ms = s->now_ms + 1;
		}
	}
}

void sim_run_until(struct sim *s, int64_t end)
{
	for (;;) {
		int best = -1;
		int64_t bt = INT64_MAX;
		for (size_t i = 0; i < s->n; i++) {
			const struct sim_node *nd = &s->nodes[i];
			if (!nd->dead && !nd->frozen && nd->deadline_ms < bt) {
				bt = nd->deadline_ms;
				best = (int)i;
			}
		}
		/*
		 * libuv's order: a loop iteration runs the expired timers, then reads what is
		 * waiting (up to 32 datagrams per socket); a timer that comes due while those are
		 * handled (a suspicion re-timed into the past) runs in the next iteration. So at
		 * one instant deliveries go first, and a due timer gets its turn after every 32
		 * of them to the same node.
		 */
		if (bt < s->now_ms)
			bt = s->now_ms;
		int64_t et = s->nheap ? s->heap[0]->t : INT64_MAX;
		int64_t t = bt < et ? bt : et;
		if (t > end)
			break;
		if (t > s->now_ms)
			s->now_ms = t;
		s->events++;
		if (best >= 0 && (bt < et || (bt == et && s->nodes[best].io_at == bt &&
					      s->nodes[best].io_count >= IO_BATCH)))
			tick(s, best);
		else
			dispatch(s, heap_pop(s));
	}
	if (end > s->now_ms)
		s->now_ms = end;
}

void sim_run_for(struct sim *s, int64_t ms)
{
	sim_run_until(s, s->now_ms + ms);
}

/* ---- setup ---- */

static void node_start(struct sim *s, int i);

struct sim *sim_new(const struct sim_cfg *cfg)
{
	struct sim *s = xcalloc(1, sizeof(*s));
	s->seed = cfg->seed;
	s->cfg = *cfg;
	rng_seed(&s->rng, cfg->seed);
	s->now_ms = T0_MS;
	s->trace = getenv("SIM_TRACE") && *getenv("SIM_TRACE");
	assert(cfg->n >= 1 && cfg->n <= 250); /* one 127.0.0.x address each */
	s->n = cfg->n;
	s->dmin = cfg->delay_min_ms;
	s->dmax = cfg->delay_max_ms;
	if (s->dmin <= 0 && s->dmax <= 0) {
		s->dmin = 1;
		s->dmax = 5;
	}
	if (s->dmin < 1)
		s->dmin = 1;
	if (s->dmax < s->dmin)
		s->dmax = s->dmin;
	if (cfg->profile_override)
		s->prof = *cfg->profile_override;
	else if (gossip_profile_get(cfg->profile ? cfg->profile : "lan", &s->prof) < 0)
		abort();
	s->loss = xcalloc(s->n * s->n, sizeof(*s->loss));
	s->block = xcalloc(s->n * s->n, sizeof(*s->block));
	sim_set_loss(s, cfg->loss);
	s->nodes = xcalloc(s->n, sizeof(*s->nodes));
	for (size_t i = 0; i < s->n; i++) {
		struct sim_node *nd = &s->nodes[i];
		snprintf(nd->name, sizeof(nd->name), "n%02u", (unsigned)(i % 1000));
		nd->addr = (struct gossip_wire_addr){.b = {127, 0, 0, (uint8_t)(i + 1)}, .len = 4};
		const uint8_t *key = cfg->key;
		if (cfg->odd_key && (int)i == cfg->odd_node)
			key = cfg->odd_key;
		if (key && keyring_new(key, cfg->key_len, &nd->kr) < 0)
			abort();
		node_start(s, (int)i);
	}
	return s;
}

static void node_state(void *ud, bool join, struct buf *out)
{
	struct sim_node *nd = ud;
	struct sim *s = nd->sim;
	s->cfg.node_state(s, (int)(nd - s->nodes), join, out);
}

static void node_start(struct sim *s, int i)
{
	struct sim_node *nd = &s->nodes[i];
	nd->sim = s;
	struct gossip_config gc = {
		.name = nd->name,
		.addr = nd->addr,
		.port = SIM_PORT,
		.profile = s->prof,
		.keyring = nd->kr,
		.compress = s->cfg.compress,
		.no_tcp_ping = s->cfg.no_tcp_ping,
		.no_lifeguard = s->cfg.no_lifeguard,
		.seed = rng_next(&s->rng),
		.local_state = s->cfg.local_state,
		.ud = s,
	};
	if (s->cfg.node_state) {
		gc.local_state = node_state;
		gc.ud = nd;
	}
	if (gossip_new(&gc, s->now_ms, &nd->g) < 0)
		abort();
	drain(s, i);
}

void sim_restart(struct sim *s, int i)
{
	struct sim_node *nd = &s->nodes[i];
	if (!nd->dead)
		sim_kill(s, i);
	gossip_free(nd->g);
	nd->g = NULL;
	nd->dead = false;
	nd->frozen = false;
	nd->join_done = nd->leave_done = 0;
	node_start(s, i);
}

void sim_free(struct sim *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n; i++) {
		struct sim_node *nd = &s->nodes[i];
		gossip_free(nd->g);
		keyring_free(nd->kr);
		for (size_t k = 0; k < nd->ndeferred; k++)
			ev_free(nd->deferred[k]);
		free(nd->deferred);
		free(nd->streams);
	}
	while (s->nheap > 0)
		ev_free(heap_pop(s));
	free(s->heap);
	free(s->nodes);
	free(s->loss);
	free(s->block);
	free(s->conns);
	free(s->leaves);
	free(s);
}

int sim_join(struct sim *s, int i, int seed, int64_t timeout_ms)
{
	struct sim_node *nd = &s->nodes[i];
	struct gossip_peer p = {.addr = s->nodes[seed].addr, .port = SIM_PORT};
	int before = nd->join_done;
	if (gossip_join(nd->g, s->now_ms, &p, 1) < 0)
		abort();
	drain(s, i);
	int64_t end = s->now_ms + timeout_ms;
	while (nd->join_done == before && s->now_ms < end)
		sim_run_for(s, 10);
	return nd->join_done == before ? -1 : nd->join_done_count;
}

int sim_join_all(struct sim *s)
{
	int ok = 0;
	for (size_t i = 1; i < s->n; i++)
		ok += sim_join(s, (int)i, 0, 5000) > 0;
	return ok;
}

/* ---- views ---- */

int sim_state(const struct sim *s, int observer, int subject)
{
	const struct gossip_member *m =
		gossip_member_find(s->nodes[observer].g, s->nodes[subject].name);
	return m ? (int)m->state : -1;
}

bool sim_converged(const struct sim *s, const bool *skip)
{
	for (size_t i = 0; i < s->n; i++) {
		if (s->nodes[i].dead || (skip && skip[i]))
			continue;
		for (size_t j = 0; j < s->n; j++) {
			if (skip && skip[j])
				continue;
			bool alive = sim_state(s, (int)i, (int)j) == GOSSIP_ALIVE;
			if (alive == s->nodes[j].dead)
				return false;
		}
	}
	return true;
}

int64_t sim_wait_converged(struct sim *s, const bool *skip, int64_t step_ms, int64_t timeout_ms)
{
	int64_t start = s->now_ms;
	while (!sim_converged(s, skip)) {
		if (s->now_ms - start >= timeout_ms)
			return -1;
		sim_run_for(s, step_ms);
	}
	return s->now_ms - start;
}

size_t sim_stale_streams(const struct sim *s)
{
	size_t n = 0;
	for (size_t i = 0; i < s->nconns; i++) {
		const struct sim_conn *c = &s->conns[i];
		for (int k = 0; k < 2; k++) {
			if (!c->open[k] || s->nodes[c->node[k]].frozen ||
			    s->now_ms - c->since_ms[k] <= s->prof.tcp_timeout_ms + 1000)
				continue;
			fprintf(stderr, "sim: n%02d keeps stream %u open %.1f s\n", c->node[k],
				c->sid[k], (double)(s->now_ms - c->since_ms[k]) / 1000);
			n++;
		}
	}
	return n;
}

uint64_t sim_udp_sent(const struct sim *s)
{
	uint64_t n = 0;
	for (size_t i = 0; i < s->n; i++)
		n += s->nodes[i].udp_sent;
	return n;
}

/* ---- faults ---- */

void sim_freeze(struct sim *s, int i)
{
	if (s->trace)
		printf("# %10.3f n%02d frozen\n", (double)s->now_ms / 1000.0, i);
	s->nodes[i].frozen = true;
}

void sim_unfreeze(struct sim *s, int i)
{
	struct sim_node *nd = &s->nodes[i];
	if (!nd->frozen)
		return;
	if (s->trace)
		printf("# %10.3f n%02d thawed (%zu waiting)\n", (double)s->now_ms / 1000.0, i,
		       nd->ndeferred);
	nd->frozen = false;
	/* A process resuming runs its expired timers first (libuv: timers, then I/O), then
	 * reads its backlog in order. */
	tick(s, i);
	for (size_t k = 0; k < nd->ndeferred; k++) {
		nd->deferred[k]->t = s->now_ms;
		heap_push(s, nd->deferred[k]);
	}
	nd->ndeferred = 0;
	nd->deferred_udp = 0;
}

void sim_kill(struct sim *s, int i)
{
	struct sim_node *nd = &s->nodes[i];
	nd->dead = true;
	for (size_t k = 0; k < nd->ndeferred; k++)
		ev_free(nd->deferred[k]);
	nd->ndeferred = 0;
	/* The kernel closes the dead process's connections. */
	for (size_t k = 0; k < nd->nstreams; k++) {
		int side;
		struct sim_conn *c = stream_conn(s, i, nd->streams[k].sid, &side);
		c->open[side] = false;
		if (!c->broken && c->node[1 - side] >= 0)
			conn_deliver(s, c, 1 - side, EV_FIN, NULL, 0);
	}
	nd->nstreams = 0;
}

void sim_set_loss(struct sim *s, double p)
{
	for (size_t i = 0; i < s->n * s->n; i++)
		s->loss[i] = p;
}

void sim_set_link_loss(struct sim *s, int src, int dst, double p)
{
	s->loss[src * s->n + dst] = p;
}

static void break_blocked_conns(struct sim *s)
{
	for (size_t i = 0; i < s->nconns; i++) {
		struct sim_conn *c = &s->conns[i];
		if (!c->broken && c->node[1] >= 0 && tcp_blocked(s, c->node[0], c->node[1]))
			c->broken = true;
	}
}

void sim_set_block(struct sim *s, int src, int dst, bool blocked)
{
	s->block[src * s->n + dst] = blocked;
	break_blocked_conns(s);
}

void sim_partition(struct sim *s, const int *side)
{
	for (size_t a = 0; a < s->n; a++)
		for (size_t b = 0; b < s->n; b++)
			s->block[a * s->n + b] = side && side[a] != side[b];
	break_blocked_conns(s);
}

/* ---- application calls ---- */

int sim_broadcast(struct sim *s, int i, const char *key, const uint8_t *data, size_t len)
{
	int r = gossip_broadcast(s->nodes[i].g, key, data, len);
	drain(s, i);
	return r;
}

int sim_send_user(struct sim *s, int i, int to, const uint8_t *data, size_t len, bool reliable)
{
	int r = gossip_send_user(s->nodes[i].g, s->now_ms, s->nodes[to].name, data, len, reliable);
	drain(s, i);
	return r;
}

void sim_leave_node(struct sim *s, int i, int64_t timeout_ms)
{
	gossip_leave(s->nodes[i].g, s->now_ms, timeout_ms);
	drain(s, i);
}

/* ---- TAP ---- */

static int tap_n, tap_failed;

bool sim_ok(bool cond, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	printf("%s %d - ", cond ? "ok" : "not ok", ++tap_n);
	vprintf(fmt, ap);
	printf("\n");
	va_end(ap);
	fflush(stdout);
	tap_failed += !cond;
	return cond;
}

void sim_note(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	printf("# ");
	vprintf(fmt, ap);
	printf("\n");
	va_end(ap);
	fflush(stdout);
}

int sim_tap_end(void)
{
	printf("1..%d\n", tap_n);
	return tap_failed ? 1 : 0;
}
