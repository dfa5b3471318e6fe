/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The gossip state machine driven by hand: one or two real instances wired synchronously
 * (no delay, no loss), plus "fake" members at 10.0.0.x whose packets the test writes and
 * reads itself. The simulator (tests/sim/) covers clusters over a lossy network.
 */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "gossip/gossip.h"
#include "proto/gossip_wire.h"
#include "proto/macro.h"
#include "proto/mem.h"

#define PORT 7946

struct link {
	int node[2];
	uint32_t sid[2];
	bool open[2];
};

struct event {
	int node;
	enum gossip_event ev;
	char name[32];
	enum gossip_state state;
	int count;
};

struct pkt {
	int64_t t;
	int from;
	struct gossip_wire_addr to;
	uint16_t port;
	uint8_t *data;
	size_t len;
};

struct net {
	struct gossip *g[2];
	struct gossip_wire_addr addr[2];
	int n;
	int64_t now;
	struct link links[64];
	size_t nlinks;
	struct event evs[512];
	size_t nevs;
	struct pkt pkts[4096]; /* packets to fake members */
	size_t npkts;
	bool answer_pings; /* fake members ack every ping */
	/* node 0's outgoing push/pull requests, as written on their streams */
	struct buf pp_out;
	bool capture_pp;
};

static struct gossip_wire_addr ip4(uint8_t a, uint8_t b, uint8_t c, uint8_t d)
{
	return (struct gossip_wire_addr){.b = {a, b, c, d}, .len = 4};
}

static bool addr_eq(const struct gossip_wire_addr *a, const struct gossip_wire_addr *b)
{
	return a->len == b->len && memcmp(a->b, b->b, a->len) == 0;
}

static int node_at(const struct net *t, const struct gossip_wire_addr *a)
{
	for (int i = 0; i < t->n; i++)
		if (addr_eq(&t->addr[i], a))
			return i;
	return -1;
}

static void local_state(void *ud, bool join, struct buf *out)
{
	buf_append_str(out, ud);
}

static struct net *net_new(int n, bool compress, bool lifeguard)
{
	static const char *names[] = {"a", "b"};
	struct net *t = xcalloc(1, sizeof(*t));
	t->n = n;
	t->now = 1000;
	for (int i = 0; i < n; i++) {
		t->addr[i] = ip4(127, 0, 0, (uint8_t)(i + 1));
		struct gossip_config cfg = {
			.name = names[i],
			.addr = t->addr[i],
			.port = PORT,
			.compress = compress,
			.no_lifeguard = !lifeguard,
			.seed = 42 + (uint64_t)i,
			.local_state = local_state,
			.ud = i == 0 ? "state-of-a" : "state-of-b",
		};
		assert_int_equal(gossip_profile_get("lan", &cfg.profile), 0);
		assert_int_equal(gossip_new(&cfg, t->now, &t->g[i]), 0);
	}
	return t;
}

static void net_free(struct net *t)
{
	for (int i = 0; i < t->n; i++)
		gossip_free(t->g[i]);
	for (size_t i = 0; i < t->npkts; i++)
		free(t->pkts[i].data);
	buf_done(&t->pp_out);
	free(t);
}

static struct link *link_of(struct net *t, int node, uint32_t sid, int *ret_side)
{
	for (size_t i = 0; i < t->nlinks; i++)
		for (int k = 0; k < 2; k++)
			if (t->links[i].node[k] == node && t->links[i].sid[k] == sid) {
				*ret_side = k;
				return &t->links[i];
			}
	return NULL;
}

struct walk {
	struct net *t;
	int from;		    /* the real node that sent it */
	struct gossip_wire_addr to; /* the fake member it went to */
};

static void answer(enum gossip_wire_type type, const uint8_t *body, size_t len, void *ud)
{
	struct walk *w = ud;
	struct gossip_wire_ping p;
	if (type != GOSSIP_WIRE_PING || gossip_wire_decode_ping(body, len, &p) < 0)
		return;
	struct buf b = {0};
	struct gossip_wire_ack ack = {.seq_no = p.seq_no};
	gossip_wire_encode_ack(&ack, &b);
	gossip_recv_packet(w->t->g[w->from], w->t->now, &w->to, PORT, b.data, b.len);
	buf_done(&b);
}

/* Handles everything the real nodes asked for until they are quiet. */
static void pump(struct net *t)
{
	bool any = true;
	while (any) {
		any = false;
		for (int i = 0; i < t->n; i++) {
			struct gossip_out o;
			while (gossip_poll(t->g[i], &o)) {
				any = true;
				switch (o.type) {
				case GOSSIP_OUT_PACKET: {
					int j = node_at(t, &o.addr);
					uint8_t *copy = xmemdup(o.data, o.len);
					if (j >= 0) {
						gossip_recv_packet(t->g[j], t->now, &t->addr[i],
								   PORT, copy, o.len);
						free(copy);
						break;
					}
					assert_true(t->npkts < ARRAY_SIZE(t->pkts));
					t->pkts[t->npkts++] = (struct pkt){t->now, i,	 o.addr,
									   o.port, copy, o.len};
					if (t->answer_pings) {
						struct walk w = {t, i, o.addr};
						gossip_wire_packet_walk(copy, o.len, answer, &w);
					}
					break;
				}
				case GOSSIP_OUT_STREAM_OPEN: {
					int j = node_at(t, &o.addr);
					uint32_t sid = o.stream;
					if (j < 0) {
						gossip_stream_closed(t->g[i], t->now, sid);
						break;
					}
					uint32_t peer = gossip_stream_accept(t->g[j], t->now,
									     &t->addr[i], 40000);
					assert_true(t->nlinks < ARRAY_SIZE(t->links));
					t->links[t->nlinks++] =
						(struct link){{i, j}, {sid, peer}, {true, true}};
					gossip_stream_connected(t->g[i], t->now, sid);
					break;
				}
				case GOSSIP_OUT_STREAM_WRITE: {
					int k = 0;
					struct link *l = link_of(t, i, o.stream, &k);
					assert_non_null(l);
					assert_true(l->open[k]);
					uint8_t *copy = xmemdup(o.data, o.len);
					if (t->capture_pp && i == 0 && k == 0)
						buf_append(&t->pp_out, copy, o.len);
					if (l->open[1 - k])
						gossip_stream_recv(t->g[l->node[1 - k]], t->now,
								   l->sid[1 - k], copy, o.len);
					free(copy);
					break;
				}
				case GOSSIP_OUT_STREAM_CLOSE: {
					int k = 0;
					struct link *l = link_of(t, i, o.stream, &k);
					assert_non_null(l);
					/* It may have closed this side already, before it learnt
					 * (synchronously, below) that the peer closed: fine. */
					l->open[k] = false;
					if (l->open[1 - k]) {
						l->open[1 - k] = false;
						gossip_stream_closed(t->g[l->node[1 - k]], t->now,
								     l->sid[1 - k]);
					}
					break;
				}
				case GOSSIP_OUT_EVENT: {
					assert_true(t->nevs < ARRAY_SIZE(t->evs));
					struct event *e = &t->evs[t->nevs++];
					*e = (struct event){.node = i,
							    .ev = o.event,
							    .state = o.state,
							    .count = o.count};
					if (o.name)
						snprintf(e->name, sizeof(e->name), "%s", o.name);
					break;
				}
				}
			}
		}
	}
}

/* Runs every timer up to `end`, in order. */
static void advance(struct net *t, int64_t end)
{
	for (;;) {
		int best = -1;
		int64_t d = INT64_MAX;
		for (int i = 0; i < t->n; i++) {
			int64_t x = gossip_next_deadline_ms(t->g[i]);
			if (x < d) {
				d = x;
				best = i;
			}
		}
		if (d > end)
			break;
		if (d > t->now)
			t->now = d;
		gossip_tick(t->g[best], t->now);
		pump(t);
	}
	t->now = end;
}

static size_t count_events(const struct net *t, int node, enum gossip_event ev, const char *name)
{
	size_t n = 0;
	for (size_t i = 0; i < t->nevs; i++)
		n += t->evs[i].node == node && t->evs[i].ev == ev &&
		     (!name || strcmp(t->evs[i].name, name) == 0);
	return n;
}

static const struct event *find_event(const struct net *t, int node, enum gossip_event ev,
				      const char *name)
{
	for (size_t i = 0; i < t->nevs; i++)
		if (t->evs[i].node == node && t->evs[i].ev == ev &&
		    (!name || strcmp(t->evs[i].name, name) == 0))
			return &t->evs[i];
	return NULL;
}

static struct gossip_wire_str str(const char *s)
{
	return (struct gossip_wire_str){(const uint8_t *)s, strlen(s)};
}

/* Feeds node 0 one message from fake member 10.0.0.x. */
static void feed(struct net *t, uint8_t x, const struct buf *msg)
{
	struct gossip_wire_addr from = ip4(10, 0, 0, x);
	gossip_recv_packet(t->g[0], t->now, &from, PORT, msg->data, msg->len);
	pump(t);
}

static void feed_alive(struct net *t, const char *name, uint8_t x, uint32_t inc)
{
	struct buf b = {0};
	struct gossip_wire_alive a = {
		.incarnation = inc,
		.node = str(name),
		.addr = ip4(10, 0, 0, x),
		.port = PORT,
		.vsn = {1, 5, 2, 0, 0, 0},
		.vsn_len = 6,
	};
	gossip_wire_encode_alive(&a, &b);
	feed(t, x, &b);
	buf_done(&b);
}

static void feed_accuse(struct net *t, enum gossip_wire_type type, const char *node, uint32_t inc,
			const char *from)
{
	struct buf b = {0};
	struct gossip_wire_accuse a = {.incarnation = inc, .node = str(node), .from = str(from)};
	gossip_wire_encode_accuse(type, &a, &b);
	feed(t, 200, &b);
	buf_done(&b);
}

/* ---- messages found in captured packets ---- */

struct found {
	enum gossip_wire_type type;
	uint32_t seq;	      /* ack, nack, ping */
	char node[32];	      /* alive, suspect, dead, ping */
	uint32_t incarnation; /* alive, suspect, dead */
	int hits;
};

static void find_cb(enum gossip_wire_type type, const uint8_t *body, size_t len, void *ud)
{
	struct found *f = ud;
	if (type != f->type)
		return;
	switch (type) {
	case GOSSIP_WIRE_ACK: {
		struct gossip_wire_ack a;
		if (gossip_wire_decode_ack(body, len, &a) == 0 && a.seq_no == f->seq)
			f->hits++;
		break;
	}
	case GOSSIP_WIRE_NACK: {
		uint32_t seq;
		if (gossip_wire_decode_nack(body, len, &seq) == 0 && seq == f->seq)
			f->hits++;
		break;
	}
	case GOSSIP_WIRE_ALIVE: {
		struct gossip_wire_alive a;
		if (gossip_wire_decode_alive(body, len, &a) == 0 && a.node.len == strlen(f->node) &&
		    memcmp(a.node.p, f->node, a.node.len) == 0 && a.incarnation == f->incarnation)
			f->hits++;
		break;
	}
	case GOSSIP_WIRE_PING: {
		struct gossip_wire_ping p;
		if (gossip_wire_decode_ping(body, len, &p) == 0 && p.node.len == strlen(f->node) &&
		    memcmp(p.node.p, f->node, p.node.len) == 0) {
			f->seq = p.seq_no;
			f->hits++;
		}
		break;
	}
	default:
		break;
	}
}

/* How many captured packets (from index `from` on) to 10.0.0.x contain the message. */
static int packets_with(struct net *t, size_t from, uint8_t x, struct found *f)
{
	struct gossip_wire_addr to = ip4(10, 0, 0, x);
	int n = 0;
	for (size_t i = from; i < t->npkts; i++) {
		if (!addr_eq(&t->pkts[i].to, &to))
			continue;
		int before = f->hits;
		gossip_wire_packet_walk(t->pkts[i].data, t->pkts[i].len, find_cb, f);
		n += f->hits > before;
	}
	return n;
}

/* ---- tests ---- */

static void test_join_over_a_stream(void **state)
{
	struct net *t = net_new(2, false, true);
	struct gossip_peer seed = {.addr = t->addr[1], .port = PORT};
	assert_int_equal(gossip_join(t->g[0], t->now, &seed, 0), -EINVAL);
	assert_int_equal(gossip_join(t->g[0], t->now, &seed, 1), 0);
	pump(t);
	const struct event *e = find_event(t, 0, GOSSIP_EV_JOIN_DONE, NULL);
	assert_non_null(e);
	assert_int_equal(e->count, 1);
	assert_int_equal(count_events(t, 0, GOSSIP_EV_JOIN, "b"), 1);
	assert_int_equal(count_events(t, 1, GOSSIP_EV_JOIN, "a"), 1);
	/* each got the other's user state, flagged as a join */
	assert_int_equal(count_events(t, 0, GOSSIP_EV_REMOTE_STATE, NULL), 1);
	assert_int_equal(count_events(t, 1, GOSSIP_EV_REMOTE_STATE, NULL), 1);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(gossip_member_count(t->g[i]), 2);
		const struct gossip_member *m = gossip_member_find(t->g[i], i ? "a" : "b");
		assert_non_null(m);
		assert_int_equal(m->state, GOSSIP_ALIVE);
		assert_int_equal(m->incarnation, 1);
		assert_int_equal(m->port, PORT);
		assert_true(addr_eq(&m->addr, &t->addr[1 - i]));
		uint8_t vsn[6] = {1, 5, 2, 0, 0, 0};
		assert_memory_equal(m->vsn, vsn, 6);
	}
	/* A minute of probing each other: all acked, nobody suspected. */
	advance(t, t->now + 60000);
	for (int i = 0; i < 2; i++) {
		const struct gossip_stats *st = gossip_get_stats(t->g[i]);
		/* One probe per second, less the ticks lost when the list wraps and its
		 * reshuffle puts us first (memberlist gives up after N checks too). */
		assert_true(st->probes >= 40 && st->probes <= 61);
		assert_int_equal(st->probes_failed, 0);
		assert_true(st->push_pulls >= 2);
		assert_int_equal(gossip_health(t->g[i]), 0);
		assert_int_equal(count_events(t, i, GOSSIP_EV_SUSPECT, NULL), 0);
		assert_int_equal(count_events(t, i, GOSSIP_EV_LEAVE, NULL), 0);
	}
	net_free(t);
}

static void test_join_fails_unreachable(void **state)
{
	struct net *t = net_new(1, false, true);
	struct gossip_peer seed = {.addr = ip4(10, 0, 0, 1), .port = PORT};
	assert_int_equal(gossip_join(t->g[0], t->now, &seed, 1), 0);
	pump(t); /* refused */
	const struct event *e = find_event(t, 0, GOSSIP_EV_JOIN_DONE, NULL);
	assert_non_null(e);
	assert_int_equal(e->count, 0);
	net_free(t);
}

static void test_ping_ack(void **state)
{
	struct net *t = net_new(1, false, true);
	struct buf b = {0};
	/* Source* present: the ack goes there, not to the packet's source. */
	struct gossip_wire_ping p = {
		.seq_no = 77,
		.node = str("a"),
		.source_addr = ip4(10, 0, 0, 9),
		.source_port = PORT,
		.source_node = str("x"),
	};
	gossip_wire_encode_ping(&p, &b);
	feed(t, 5, &b);
	struct found f = {.type = GOSSIP_WIRE_ACK, .seq = 77};
	assert_int_equal(packets_with(t, 0, 9, &f), 1);
	assert_int_equal(t->npkts, 1);
	/* Meant for another node that had our address: no answer. */
	buf_reset(&b);
	p.node = str("someone-else");
	p.seq_no = 78;
	gossip_wire_encode_ping(&p, &b);
	feed(t, 5, &b);
	assert_int_equal(t->npkts, 1);
	/* No Source*: to the packet's source; an empty Node is anyone. */
	buf_reset(&b);
	p = (struct gossip_wire_ping){.seq_no = 79};
	gossip_wire_encode_ping(&p, &b);
	feed(t, 5, &b);
	f = (struct found){.type = GOSSIP_WIRE_ACK, .seq = 79};
	assert_int_equal(packets_with(t, 0, 5, &f), 1);
	buf_done(&b);
	net_free(t);
}

static void test_stream_ping(void **state)
{
	struct net *t = net_new(1, false, true);
	struct gossip_wire_addr from = ip4(10, 0, 0, 3);
	uint32_t sid = gossip_stream_accept(t->g[0], t->now, &from, 40000);
	struct buf b = {0};
	struct gossip_wire_ping p = {.seq_no = 5, .node = str("a")};
	gossip_wire_encode_ping(&p, &b);
	/* in two pieces: the reader waits for the whole object */
	gossip_stream_recv(t->g[0], t->now, sid, b.data, 3);
	struct gossip_out o;
	assert_false(gossip_poll(t->g[0], &o));
	gossip_stream_recv(t->g[0], t->now, sid, b.data + 3, b.len - 3);
	assert_true(gossip_poll(t->g[0], &o));
	assert_int_equal(o.type, GOSSIP_OUT_STREAM_WRITE);
	assert_int_equal(o.stream, sid);
	assert_int_equal(o.data[0], GOSSIP_WIRE_ACK);
	struct gossip_wire_ack ack;
	assert_int_equal(gossip_wire_decode_ack(o.data + 1, o.len - 1, &ack), 0);
	assert_int_equal(ack.seq_no, 5);
	assert_true(gossip_poll(t->g[0], &o));
	assert_int_equal(o.type, GOSSIP_OUT_STREAM_CLOSE);
	assert_int_equal(o.stream, sid);
	assert_false(gossip_poll(t->g[0], &o));
	/* for another node: closed without an answer */
	sid = gossip_stream_accept(t->g[0], t->now, &from, 40001);
	buf_reset(&b);
	p.node = str("b");
	gossip_wire_encode_ping(&p, &b);
	gossip_stream_recv(t->g[0], t->now, sid, b.data, b.len);
	assert_true(gossip_poll(t->g[0], &o));
	assert_int_equal(o.type, GOSSIP_OUT_STREAM_CLOSE);
	assert_false(gossip_poll(t->g[0], &o));
	/* a stream that never says anything is closed at the TCP timeout */
	sid = gossip_stream_accept(t->g[0], t->now, &from, 40002);
	assert_true(gossip_next_deadline_ms(t->g[0]) <= t->now + 10000);
	gossip_tick(t->g[0], t->now + 10000);
	bool closed = false;
	while (gossip_poll(t->g[0], &o))
		closed |= o.type == GOSSIP_OUT_STREAM_CLOSE && o.stream == sid;
	assert_true(closed);
	buf_done(&b);
	net_free(t);
}

static void test_refute(void **state)
{
	struct net *t = net_new(1, false, true);
	feed_alive(t, "f1", 1, 1);
	const struct gossip_member *me = gossip_self(t->g[0]);
	assert_int_equal(me->incarnation, 1);
	/* Suspected at our incarnation: refute with the next one, and feel worse. */
	feed_accuse(t, GOSSIP_WIRE_SUSPECT, "a", 1, "f1");
	assert_int_equal(me->incarnation, 2);
	assert_int_equal(me->state, GOSSIP_ALIVE);
	assert_int_equal(gossip_health(t->g[0]), 1);
	assert_int_equal(gossip_get_stats(t->g[0])->refutes, 1);
	/* The refutation rides the next packet: answer a ping and look. */
	struct buf b = {0};
	struct gossip_wire_ping p = {.seq_no = 1, .node = str("a")};
	gossip_wire_encode_ping(&p, &b);
	size_t mark = t->npkts;
	feed(t, 1, &b);
	struct found f = {.type = GOSSIP_WIRE_ALIVE, .node = "a", .incarnation = 2};
	assert_int_equal(packets_with(t, mark, 1, &f), 1);
	/* Declared dead at a higher incarnation: beat that one. */
	feed_accuse(t, GOSSIP_WIRE_DEAD, "a", 7, "f1");
	assert_int_equal(me->incarnation, 8);
	assert_int_equal(me->state, GOSSIP_ALIVE);
	/* Stale accusations are ignored. */
	feed_accuse(t, GOSSIP_WIRE_SUSPECT, "a", 3, "f1");
	assert_int_equal(me->incarnation, 8);
	/* Someone else claims our name from another address: a conflict, ignored. */
	feed_alive(t, "a", 9, 20);
	assert_int_equal(me->incarnation, 8);
	/* An alive about us, at our address, newer than ours (say from before a restart):
	 * refute it. */
	struct gossip_wire_alive a = {
		.incarnation = 20,
		.node = str("a"),
		.addr = t->addr[0],
		.port = PORT,
		.vsn = {1, 5, 2, 0, 0, 0},
		.vsn_len = 6,
	};
	buf_reset(&b);
	gossip_wire_encode_alive(&a, &b);
	feed(t, 1, &b);
	assert_int_equal(me->incarnation, 21);
	assert_true(addr_eq(&me->addr, &t->addr[0]));
	/* and our own current alive changes nothing */
	a.incarnation = 21;
	buf_reset(&b);
	gossip_wire_encode_alive(&a, &b);
	feed(t, 1, &b);
	assert_int_equal(me->incarnation, 21);
	assert_int_equal(gossip_health(t->g[0]), 3);
	assert_int_equal(count_events(t, 0, GOSSIP_EV_LEAVE, NULL), 0);
	buf_done(&b);
	net_free(t);
}

/*
 * Elapsed ms from a suspicion of f1 (by f2) until node 0 declares it dead, in a view of
 * `members` (us and fake f1..), with confirmations from the members named in `conf` at the
 * times in `at` (ms after the suspicion). -1: not within 120 s.
 */
static int64_t suspicion_ms(int members, const char *const *conf, const int64_t *at, size_t nconf)
{
	struct net *t = net_new(1, false, true);
	t->answer_pings = true; /* our own probes of f1 succeed: no confirmation from us */
	char name[16];
	for (int i = 1; i < members; i++) {
		snprintf(name, sizeof(name), "f%d", i);
		feed_alive(t, name, (uint8_t)i, 1);
	}
	assert_int_equal(gossip_member_count(t->g[0]), (size_t)members);
	int64_t t0 = t->now;
	feed_accuse(t, GOSSIP_WIRE_SUSPECT, "f1", 1, "f2");
	assert_int_equal(count_events(t, 0, GOSSIP_EV_SUSPECT, "f1"), 1);
	assert_int_equal(gossip_member_find(t->g[0], "f1")->state, GOSSIP_SUSPECT);
	int64_t dead = -1;
	size_t next = 0;
	while (t->now - t0 < 120000 && dead < 0) {
		int64_t until = next < nconf ? t0 + at[next] : t0 + 120000;
		/* step in 1 ms so the death is timed exactly */
		while (t->now < until && dead < 0) {
			advance(t, t->now + 1);
			const struct event *e = find_event(t, 0, GOSSIP_EV_LEAVE, "f1");
			if (e)
				dead = t->now - t0;
		}
		if (dead < 0 && next < nconf) {
			feed_accuse(t, GOSSIP_WIRE_SUSPECT, "f1", 1, conf[next++]);
			if (find_event(t, 0, GOSSIP_EV_LEAVE, "f1"))
				dead = t->now - t0;
			/* a timer re-timed into the past fires at the next tick, at once */
			if (dead < 0 && gossip_next_deadline_ms(t->g[0]) <= t->now) {
				advance(t, t->now);
				if (find_event(t, 0, GOSSIP_EV_LEAVE, "f1"))
					dead = t->now - t0;
			}
		}
	}
	if (dead >= 0) {
		assert_int_equal(gossip_member_find(t->g[0], "f1")->state, GOSSIP_DEAD);
		assert_int_equal(count_events(t, 0, GOSSIP_EV_LEAVE, NULL), 1);
	}
	net_free(t);
	return dead;
}

/* B9 computed independently: min = mult × max(1, log10 N) × interval (with memberlist's
 * millisecond truncation of the scale), max = 6 × min, k = mult − 2 (0 if N − 2 < k). */
static int64_t b9(int members, unsigned c)
{
	double scale = fmax(1.0, log10((double)members));
	int64_t min = 4 * (int64_t)(scale * 1000) * 1000 / 1000;
	int64_t max = 6 * min;
	unsigned k = members - 2 < 2 ? 0 : 2;
	if (k < 1)
		return min;
	double frac = log((double)c + 1) / log((double)k + 1);
	int64_t to =
		(int64_t)floor(1000.0 * ((double)max / 1000 - frac * (double)(max - min) / 1000));
	return to < min ? min : to;
}

static void test_suspicion_timeout(void **state)
{
	static const char *const two[] = {"f3", "f4"};
	static const char *const dup[] = {"f3", "f3", "f2"};
	static const int64_t at12[] = {1000, 2000};
	static const int64_t at_late[] = {1000, 6000};
	static const int64_t at_dup[] = {1000, 2000, 3000};
	/* N = 10: k = 2, min 4 s, max 24 s */
	assert_int_equal(b9(10, 0), 24000);
	assert_int_equal(b9(10, 1), 11381);
	assert_int_equal(b9(10, 2), 4000);
	assert_int_equal(suspicion_ms(10, NULL, NULL, 0), b9(10, 0));
	assert_int_equal(suspicion_ms(10, two, at12, 1), b9(10, 1));
	assert_int_equal(suspicion_ms(10, two, at12, 2), b9(10, 2));
	/* the second confirmation after the reduced timeout passed: dead at once */
	assert_int_equal(suspicion_ms(10, two, at_late, 2), 6000);
	/* the same confirmer twice, and the original accuser, count nothing */
	assert_int_equal(suspicion_ms(10, dup, at_dup, 3), b9(10, 1));
	/* N = 3: no one to confirm (N − 2 < k): k = 0, the minimum */
	assert_int_equal(suspicion_ms(3, NULL, NULL, 0), b9(3, 0));
	assert_int_equal(b9(3, 0), 4000);
	/* N = 25: min = 4 × 1.397 s */
	assert_int_equal(b9(25, 2), 5588);
	assert_int_equal(suspicion_ms(25, two, at12, 2), b9(25, 2));
	assert_int_equal(suspicion_ms(25, NULL, NULL, 0), b9(25, 0));
}

static void test_suspicion_refuted(void **state)
{
	struct net *t = net_new(1, false, true);
	t->answer_pings = true;
	for (int i = 1; i < 10; i++) {
		char name[16];
		snprintf(name, sizeof(name), "f%d", i);
		feed_alive(t, name, (uint8_t)i, 1);
	}
	feed_accuse(t, GOSSIP_WIRE_SUSPECT, "f1", 1, "f2");
	advance(t, t->now + 2000);
	feed_alive(t, "f1", 1, 2); /* f1 refutes */
	assert_int_equal(gossip_member_find(t->g[0], "f1")->state, GOSSIP_ALIVE);
	/* an older suspicion no longer applies */
	feed_accuse(t, GOSSIP_WIRE_SUSPECT, "f1", 1, "f3");
	assert_int_equal(gossip_member_find(t->g[0], "f1")->state, GOSSIP_ALIVE);
	advance(t, t->now + 60000);
	assert_int_equal(count_events(t, 0, GOSSIP_EV_LEAVE, NULL), 0);
	/* and plain SWIM (no Lifeguard) uses the minimum, whatever the confirmations */
	net_free(t);
	t = net_new(1, false, false);
	t->answer_pings = true;
	for (int i = 1; i < 10; i++) {
		char name[16];
		snprintf(name, sizeof(name), "f%d", i);
		feed_alive(t, name, (uint8_t)i, 1);
	}
	int64_t t0 = t->now;
	feed_accuse(t, GOSSIP_WIRE_SUSPECT, "f1", 1, "f2");
	while (!find_event(t, 0, GOSSIP_EV_LEAVE, "f1") && t->now - t0 < 60000)
		advance(t, t->now + 1);
	assert_int_equal(t->now - t0, 4000);
	net_free(t);
}

static void test_indirect_ping(void **state)
{
	struct net *t = net_new(1, false, true);
	feed_alive(t, "f1", 1, 1);
	feed_alive(t, "f2", 2, 1);
	t->answer_pings = true;
	struct buf b = {0};
	struct gossip_wire_indirect_ping ind = {
		.seq_no = 55,
		.target = ip4(10, 0, 0, 1),
		.port = PORT,
		.node = str("f1"),
		.nack = true,
		.source_addr = ip4(10, 0, 0, 2),
		.source_port = PORT,
		.source_node = str("f2"),
	};
	gossip_wire_encode_indirect_ping(&ind, &b);
	size_t mark = t->npkts;
	feed(t, 2, &b);
	/* we pinged f1 for f2 (with our own sequence number), f1 acked, we relayed the ack */
	struct found ping = {.type = GOSSIP_WIRE_PING, .node = "f1"};
	assert_int_equal(packets_with(t, mark, 1, &ping), 1);
	assert_int_not_equal(ping.seq, 55);
	struct found ack = {.type = GOSSIP_WIRE_ACK, .seq = 55};
	assert_int_equal(packets_with(t, mark, 2, &ack), 1);
	/* f1 silent now: after the probe timeout a nack goes to f2, and no ack */
	t->answer_pings = false;
	ind.seq_no = 56;
	buf_reset(&b);
	gossip_wire_encode_indirect_ping(&ind, &b);
	mark = t->npkts;
	feed(t, 2, &b);
	advance(t, t->now + 499);
	struct found nack = {.type = GOSSIP_WIRE_NACK, .seq = 56};
	assert_int_equal(packets_with(t, mark, 2, &nack), 0);
	advance(t, t->now + 1);
	assert_int_equal(packets_with(t, mark, 2, &nack), 1);
	ack = (struct found){.type = GOSSIP_WIRE_ACK, .seq = 56};
	assert_int_equal(packets_with(t, mark, 2, &ack), 0);
	buf_done(&b);
	net_free(t);
}

/* Parses a push/pull request (after any compression) and checks it against the two nodes. */
static void check_push_pull(const uint8_t *p, size_t len, bool join)
{
	assert_true(len > 1);
	assert_int_equal(p[0], GOSSIP_WIRE_PUSH_PULL);
	p++;
	len--;
	struct gossip_wire_push_pull_header h;
	size_t used;
	assert_int_equal(gossip_wire_decode_push_pull_header(p, len, &h, &used), 0);
	assert_int_equal(h.nodes, 2);
	assert_int_equal(h.join, join);
	assert_int_equal(h.user_state_len, strlen("state-of-a"));
	p += used;
	len -= used;
	bool seen[2] = {false, false};
	for (uint32_t i = 0; i < h.nodes; i++) {
		struct gossip_wire_node_state ns;
		assert_int_equal(gossip_wire_decode_node_state(p, len, &ns, &used), 0);
		p += used;
		len -= used;
		assert_int_equal(ns.name.len, 1);
		int k = ns.name.p[0] - 'a';
		assert_true(k == 0 || k == 1);
		seen[k] = true;
		assert_int_equal(ns.state, 0);
		assert_int_equal(ns.incarnation, 1);
		assert_int_equal(ns.port, PORT);
		struct gossip_wire_addr want = ip4(127, 0, 0, (uint8_t)(k + 1));
		assert_true(addr_eq(&ns.addr, &want));
		assert_int_equal(ns.vsn_len, 6);
		uint8_t vsn[6] = {1, 5, 2, 0, 0, 0};
		assert_memory_equal(ns.vsn, vsn, 6);
		assert_int_equal(ns.meta.len, 0);
	}
	assert_true(seen[0] && seen[1]);
	assert_int_equal(len, strlen("state-of-a"));
	assert_memory_equal(p, "state-of-a", len);
}

static void push_pull_of_joined_node(bool compress)
{
	struct net *t = net_new(2, compress, true);
	struct gossip_peer seed = {.addr = t->addr[1], .port = PORT};
	assert_int_equal(gossip_join(t->g[0], t->now, &seed, 1), 0);
	pump(t);
	/* the next periodic push/pull of node 0 (within one interval, B16) */
	t->capture_pp = true;
	uint64_t before = gossip_get_stats(t->g[0])->streams_opened;
	while (gossip_get_stats(t->g[0])->streams_opened == before && t->now < 100000)
		advance(t, t->now + 100);
	/* node 0 opens streams for TCP pings only when a probe fails; none fails here */
	assert_true(t->pp_out.len > 0);
	struct buf plain = {0};
	const uint8_t *p = t->pp_out.data;
	size_t len = t->pp_out.len;
	if (compress) {
		assert_int_equal(p[0], GOSSIP_WIRE_COMPRESS);
		size_t used;
		assert_int_equal(
			gossip_wire_decompress_stream(p + 1, len - 1, 1 << 20, &plain, &used), 0);
		assert_int_equal(used, len - 1);
		p = plain.data;
		len = plain.len;
	}
	check_push_pull(p, len, false);
	buf_done(&plain);
	net_free(t);
}

static void test_push_pull_decodes(void **state)
{
	push_pull_of_joined_node(false);
	push_pull_of_joined_node(true);
}

static void test_leave(void **state)
{
	struct net *t = net_new(2, true, true);
	struct gossip_peer seed = {.addr = t->addr[1], .port = PORT};
	assert_int_equal(gossip_join(t->g[0], t->now, &seed, 1), 0);
	pump(t);
	advance(t, t->now + 2000);
	gossip_leave(t->g[0], t->now, 5000);
	pump(t);
	advance(t, t->now + 3000);
	assert_int_equal(count_events(t, 0, GOSSIP_EV_LEAVE_DONE, NULL), 1);
	const struct event *e = find_event(t, 1, GOSSIP_EV_LEAVE, "a");
	assert_non_null(e);
	assert_int_equal(e->state, GOSSIP_LEFT);
	assert_int_equal(gossip_member_find(t->g[1], "a")->state, GOSSIP_LEFT);
	assert_int_equal(gossip_self(t->g[0])->state, GOSSIP_LEFT);
	/* Alone, a leave is done at once. */
	net_free(t);
	t = net_new(1, false, true);
	gossip_leave(t->g[0], t->now, 5000);
	pump(t);
	assert_int_equal(count_events(t, 0, GOSSIP_EV_LEAVE_DONE, NULL), 1);
	net_free(t);
}

static void test_user_messages(void **state)
{
	struct net *t = net_new(2, true, true);
	struct gossip_peer seed = {.addr = t->addr[1], .port = PORT};
	assert_int_equal(gossip_join(t->g[0], t->now, &seed, 1), 0);
	pump(t);
	static const uint8_t hi[] = "hi";
	assert_int_equal(gossip_send_user(t->g[0], t->now, "nobody", hi, 2, false), -ENOENT);
	assert_int_equal(gossip_send_user(t->g[0], t->now, "a", hi, 2, false), -ENOENT);
	assert_int_equal(gossip_send_user(t->g[0], t->now, "b", hi, 2, false), 0);
	assert_int_equal(gossip_send_user(t->g[0], t->now, "b", hi, 2, true), 0);
	pump(t);
	assert_int_equal(count_events(t, 1, GOSSIP_EV_USER, NULL), 2);
	uint8_t big[1400] = {0};
	assert_int_equal(gossip_broadcast(t->g[0], "k", big, sizeof(big)), -EMSGSIZE);
	assert_int_equal(gossip_broadcast(t->g[0], "k", hi, 2), 0);
	assert_int_equal(gossip_broadcast(t->g[0], "k", hi, 1), 0); /* replaces */
	advance(t, t->now + 5000);
	/* Once per transmission, and with one peer every transmission goes to it: the limit
	 * for N = 2 is 4 × ceil(log10 3) = 4. (memberlist does not deduplicate either.) */
	assert_int_equal(count_events(t, 1, GOSSIP_EV_USER, NULL), 2 + 4);
	assert_int_equal(gossip_pending_broadcasts(t->g[0]), 0);
	net_free(t);
}

static void test_probe_suspects_the_incarnation_it_probed(void **state)
{
	struct net *t = net_new(1, false, true);
	feed_alive(t, "f1", 1, 1);
	/* wait for the first ping to f1 */
	struct found ping = {.type = GOSSIP_WIRE_PING, .node = "f1"};
	while (packets_with(t, 0, 1, &ping) == 0)
		advance(t, t->now + 1);
	int64_t start = t->now;
	/* f1 refutes something while our probe runs unanswered (its ack is lost) */
	feed_alive(t, "f1", 1, 2);
	advance(t, start + 1000);
	assert_int_equal(gossip_get_stats(t->g[0])->probes_failed, 1);
	/* the probe failed against incarnation 1: memberlist's suspicion of that copy is stale
	 * (B8 drops it); accusing incarnation 2 would be a false suspicion */
	assert_int_equal(gossip_member_find(t->g[0], "f1")->state, GOSSIP_ALIVE);
	assert_int_equal(count_events(t, 0, GOSSIP_EV_SUSPECT, "f1"), 0);
	/* the next failed probe is about incarnation 2, and suspects it; it lasts 2 s, as the
	 * failure raised our health score to 1 (no helpers to nack: +1, B5.6) */
	assert_int_equal(gossip_health(t->g[0]), 1);
	advance(t, start + 2999);
	assert_int_equal(count_events(t, 0, GOSSIP_EV_SUSPECT, "f1"), 0);
	advance(t, start + 3000);
	assert_int_equal(count_events(t, 0, GOSSIP_EV_SUSPECT, "f1"), 1);
	net_free(t);
}

static void test_own_alive_is_gossiped(void **state)
{
	/* memberlist's setAlive: our own alive is queued at start and rides the first packets */
	struct net *t = net_new(1, false, true);
	assert_int_equal(gossip_pending_broadcasts(t->g[0]), 1);
	feed_alive(t, "f1", 1, 1);
	t->answer_pings = true;
	advance(t, t->now + 1000);
	struct found f = {.type = GOSSIP_WIRE_ALIVE, .node = "a", .incarnation = 1};
	assert_true(packets_with(t, 0, 1, &f) >= 1);
	net_free(t);
}

static void test_member_without_vsn(void **state)
{
	/* A member learnt from an alive without Vsn (protocol 1) does not make every later
	 * version check fail (B3 ignores entries without versions). */
	struct net *t = net_new(2, false, true);
	struct buf b = {0};
	struct gossip_wire_alive a = {
		.incarnation = 1, .node = str("old"), .addr = ip4(10, 0, 0, 7), .port = PORT};
	gossip_wire_encode_alive(&a, &b);
	feed(t, 7, &b);
	assert_non_null(gossip_member_find(t->g[0], "old"));
	struct gossip_peer seed = {.addr = t->addr[1], .port = PORT};
	assert_int_equal(gossip_join(t->g[0], t->now, &seed, 1), 0);
	pump(t);
	const struct event *e = find_event(t, 0, GOSSIP_EV_JOIN_DONE, NULL);
	assert_non_null(e);
	assert_int_equal(e->count, 1);
	assert_int_equal(gossip_member_find(t->g[0], "b")->state, GOSSIP_ALIVE);
	buf_done(&b);
	net_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_join_over_a_stream),
		cmocka_unit_test(test_join_fails_unreachable),
		cmocka_unit_test(test_ping_ack),
		cmocka_unit_test(test_stream_ping),
		cmocka_unit_test(test_refute),
		cmocka_unit_test(test_suspicion_timeout),
		cmocka_unit_test(test_suspicion_refuted),
		cmocka_unit_test(test_indirect_ping),
		cmocka_unit_test(test_push_pull_decodes),
		cmocka_unit_test(test_leave),
		cmocka_unit_test(test_user_messages),
		cmocka_unit_test(test_probe_suspects_the_incarnation_it_probed),
		cmocka_unit_test(test_own_alive_is_gossiped),
		cmocka_unit_test(test_member_without_vsn),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
