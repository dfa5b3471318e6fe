/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The refresh election (GOSSIP.md §2.2, gossip/elect.h) over real gossip instances in the
 * deterministic simulator: one scenario per invocation (`sim_elect NAME`), TAP output with the
 * figures as comments. Scenarios: steady N (no loss, then 10 % UDP loss), crash N (the owner
 * dies in the middle of a fetch), partition (5/5 for longer than a validity), churn (a join or
 * a leave a minute for 30 minutes), and two that found defects in the first rules, now fixed in
 * gossip/elect.c and node/refresher.c: storm (a rolling restart: a late ask no longer fetches
 * beside its pull) and stuck (an owner whose upstream is unreachable: an identical pulled
 * response no longer moves the refresh time; the old behaviour also runs, for comparison).
 *
 * The refresher is a model of node/cluster.c and node/refresher.c, with the same rules:
 *
 *   - every node holds E entries, each with a response (thisUpdate, nextUpdate) and the refresh
 *     time the cache draws for it (cache_refresh_time: thisUpdate + f × validity, f in
 *     [0.5, 0.75] from the entry's key hash): that is `base`, alike on every node holding the
 *     same response;
 *   - when base comes, a node ranks itself over its stable members (elect_rank: alive or
 *     suspect for stable_after since its GOSSIP_EV_JOIN, itself stable_after after its start)
 *     and does what elect_decide says; a node waits stable_after after its start or the last
 *     member JOIN it saw before deciding anything (settling);
 *   - an upstream fetch is counted when it is sent (the CA sees it even if the fetcher dies)
 *     and answers after 50–500 ms with thisUpdate = now; the fetcher stores it and announces
 *     it with gossip_broadcast("e:<key>");
 *   - a node receiving an announcement newer than what it holds and than what it relayed
 *     relays it once (same key) and pulls the body from the holder: after a few ms it holds
 *     what the holder holds then (a pull never reaches the CA); a pull to a dead node fails at
 *     once, one across a partition after the 5 s connect timeout;
 *   - ELECT_ASK_OWNER is such a pull from the owner; while a pull runs the node's decision
 *     waits (look again in 1 s), and an ASK whose time to look again is not in the future
 *     starts the fetch at once, as refresher_pump does;
 *   - push/pull carries a digest (entry → thisUpdate) through local_state; a node pulls from
 *     the sender every entry the digest shows newer (GOSSIP_EV_REMOTE_STATE).
 *
 * The oracle: a window of an entry is the life of one response (one thisUpdate), from its
 * issue until it is refreshed; every upstream fetch is charged to the window of the response
 * the fetcher held, i.e. the one it was refreshing. k fetches in a window = k − 1 wasted. (Not
 * a fixed validity period: refreshing at 0.5–0.75 of the validity makes 1.33–2 refreshes per
 * validity, so "1.00 per window" can only mean per refresh.) A second oracle calls a fetch
 * redundant if, when it was sent, a live node the fetcher could reach held a newer response.
 * Responses have a validity of 600 s (so windows last 300–450 s), Δ = 60 s, stable_after =
 * 10 s, LAN gossip profile; everything is in simulated time.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache/cache.h"
#include "gossip/elect.h"
#include "proto/buf.h"
#include "proto/mem.h"
#include "tests/sim/sim.h"

#define MAXN		 16
#define ENTRIES		 200
#define VALIDITY_S	 600
#define DELTA_S		 60
#define STABLE_MS	 10000
#define MIN_REFRESH_S	 60	    /* cache_config.min_refresh_interval_s */
#define EPOCH_S		 1700000000 /* simulated unix time at sim time 0 */
#define FETCH_MIN_MS	 50
#define FETCH_MAX_MS	 500
#define PULL_MIN_MS	 5
#define PULL_MAX_MS	 50
#define CONNECT_TO_MS	 5000 /* connect_timeout_ms: a pull across a partition fails after it */
#define LEAVE_TIMEOUT_MS 3000
#define STEP_MS		 20 /* longest stretch of gossip run between two looks at the model */
#define MONITOR_MS	 1000

/* ---- the model ---- */

/* One node's state for one entry (node/cluster.c's slot_state plus the cache's view). */
struct view {
	int64_t tu, nu;	    /* held response: thisUpdate, nextUpdate (unix s) */
	int64_t base;	    /* its refresh time (unix s) */
	int64_t seen_tu;    /* newest announcement relayed (cluster_seen_tu) */
	int64_t asked_base; /* base for which the owner was asked (cluster_asked_base) */
	int64_t check_ms;   /* next decision (sim ms), INT64_MAX: none pending */
	bool fetching, pulling;
	unsigned failures; /* upstream failures in a row (the stuck scenario) */
};

struct since {
	char name[16];
	int64_t ms;
};

struct rnode {
	bool alive;	/* its refresher runs (false: crashed, or shutting down) */
	uint32_t epoch; /* bumped at every kill, so that late completions are dropped */
	int side;	/* partition side, for the accounting */
	int64_t start_ms, last_join_ms;
	struct since since[MAXN];
	size_t nsince;
	struct view *v;
	int64_t min_check_ms;
	bool upstream_broken; /* its upstream fetches fail (the stuck scenario) */
	uint64_t fetches, pulls, pulls_newer, asks, announces, relays, digests;
};

enum act_kind {
	ACT_FETCH_DONE,
	ACT_PULL_DONE,
};

struct act {
	int64_t t;
	uint64_t seq;
	enum act_kind kind;
	int node, from;
	uint32_t epoch;
	uint32_t entry;
};

/* One window: the life of the response with thisUpdate `gen`. */
struct win {
	int64_t gen;
	unsigned fetches;
	int64_t first_ms;	   /* when its first fetch was sent */
	unsigned split_by_side[2]; /* fetches sent while partitioned, by the fetcher's side */
	bool affected;		   /* the crash scenario's exemption */
};

struct ent {
	uint64_t key;
	struct win *w;
	size_t nw, cap;
};

struct fetch_rec {
	int64_t t_ms;
	int node;
	uint32_t entry;
	int64_t gen;
	unsigned rank;
	bool redundant, split;
};

struct run {
	struct sim *s;
	size_t n, ne;
	struct rnode nodes[MAXN];
	struct ent *ents;
	struct cache_config cc;
	struct rng rng; /* the model's own draws, apart from the network's */
	struct act *acts;
	size_t nacts, acts_cap;
	uint64_t seq;
	struct fetch_rec *log;
	size_t nlog, log_cap;
	bool split;	       /* partitioned now */
	bool daemon_unchanged; /* model cache_store's reschedule of an identical pulled response */
	uint64_t late_asks;    /* ASKs whose time to look again was not in the future */
	uint64_t failed_attempts; /* fetches of a node whose upstream is broken */
	int64_t next_monitor_ms;
	size_t expired_now, expired_max; /* (node, entry) pairs holding an expired response */
	uint64_t expired_node_s;
	/* crash scenario: kill the first node that sends a fetch at or after kill_at_ms */
	bool kill_armed;
	int64_t kill_at_ms;
	int victim;
	uint32_t victim_entry;
	int64_t killed_ms;
	size_t victim_due; /* entries it ranked first for and were due within Δ */
};

static int64_t now_s(const struct run *r)
{
	return EPOCH_S + r->s->now_ms / 1000;
}

static int64_t s_to_ms(int64_t unix_s)
{
	return (unix_s - EPOCH_S) * 1000;
}

static int64_t draw(struct run *r, int64_t lo, int64_t hi)
{
	return lo + (int64_t)rng_below(&r->rng, (uint64_t)(hi - lo + 1));
}

static bool reachable(const struct run *r, int a, int b)
{
	const struct sim *s = r->s;
	return a == b || (!s->block[a * s->n + b] && !s->block[b * s->n + a]);
}

/* ---- application timers ---- */

static bool act_before(const struct act *a, const struct act *b)
{
	return a->t != b->t ? a->t < b->t : a->seq < b->seq;
}

static void act_push(struct run *r, struct act a)
{
	a.seq = r->seq++;
	r->acts = xgrow(r->acts, &r->acts_cap, r->nacts + 1, sizeof(*r->acts));
	size_t i = r->nacts++;
	while (i > 0 && act_before(&a, &r->acts[(i - 1) / 2])) {
		r->acts[i] = r->acts[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	r->acts[i] = a;
}

static struct act act_pop(struct run *r)
{
	struct act top = r->acts[0], last = r->acts[--r->nacts];
	size_t i = 0;
	for (;;) {
		size_t l = 2 * i + 1, m = i;
		const struct act *best = &last;
		if (l < r->nacts && act_before(&r->acts[l], best))
			best = &r->acts[m = l];
		if (l + 1 < r->nacts && act_before(&r->acts[l + 1], best))
			m = l + 1;
		if (m == i)
			break;
		r->acts[i] = r->acts[m];
		i = m;
	}
	if (r->nacts > 0)
		r->acts[i] = last;
	return top;
}

/* ---- accounting ---- */

static struct win *win_get(struct run *r, uint32_t e, int64_t gen)
{
	struct ent *en = &r->ents[e];
	for (size_t k = en->nw; k-- > 0;)
		if (en->w[k].gen == gen)
			return &en->w[k];
	en->w = xgrow(en->w, &en->cap, en->nw + 1, sizeof(*en->w));
	en->w[en->nw] = (struct win){.gen = gen};
	return &en->w[en->nw++];
}

/* A live node that i can reach holds a newer response than i: i's fetch is avoidable. */
static bool redundant(const struct run *r, int i, uint32_t e)
{
	int64_t mine = r->nodes[i].v[e].tu;
	for (size_t j = 0; j < r->n; j++)
		if ((int)j != i && r->nodes[j].alive && reachable(r, i, (int)j) &&
		    r->nodes[j].v[e].tu > mine)
			return true;
	return false;
}

/* ---- members: what node/cluster.c keeps about its view ---- */

static void since_set(struct rnode *nd, const char *name, int64_t ms)
{
	for (size_t k = 0; k < nd->nsince; k++)
		if (strcmp(nd->since[k].name, name) == 0) {
			nd->since[k].ms = ms;
			return;
		}
	if (nd->nsince == MAXN)
		abort();
	snprintf(nd->since[nd->nsince].name, sizeof(nd->since[0].name), "%s", name);
	nd->since[nd->nsince++].ms = ms;
}

static void since_del(struct rnode *nd, const char *name)
{
	for (size_t k = 0; k < nd->nsince; k++)
		if (strcmp(nd->since[k].name, name) == 0) {
			nd->since[k] = nd->since[--nd->nsince];
			return;
		}
}

static int64_t since_get(const struct rnode *nd, const char *name)
{
	for (size_t k = 0; k < nd->nsince; k++)
		if (strcmp(nd->since[k].name, name) == 0)
			return nd->since[k].ms;
	return INT64_MAX;
}

/* node/cluster.c rank_of: over the alive or suspect members stable in i's view. */
static unsigned rank_of(const struct run *r, int i, uint32_t e, const char **ret_owner)
{
	const struct sim *s = r->s;
	const struct rnode *nd = &r->nodes[i];
	const struct gossip *g = s->nodes[i].g;
	const char *names[MAXN];
	size_t n = 0, nm = gossip_member_count(g);
	for (size_t k = 0; k < nm; k++) {
		const struct gossip_member *m = gossip_member_at(g, k);
		if (strcmp(m->name, s->nodes[i].name) == 0 ||
		    (m->state != GOSSIP_ALIVE && m->state != GOSSIP_SUSPECT))
			continue;
		int64_t since = since_get(nd, m->name);
		if (since != INT64_MAX && s->now_ms - since >= STABLE_MS && n < MAXN)
			names[n++] = m->name;
	}
	return elect_rank(r->ents[e].key, s->nodes[i].name, s->now_ms - nd->start_ms >= STABLE_MS,
			  names, n, ret_owner);
}

/* ---- the refresher ---- */

static void set_check(struct run *r, int i, uint32_t e, int64_t ms)
{
	struct rnode *nd = &r->nodes[i];
	nd->v[e].check_ms = ms;
	if (ms < nd->min_check_ms)
		nd->min_check_ms = ms;
}

/* cache_store's refresh time for a response stored now. */
static int64_t refresh_time(const struct run *r, uint32_t e, int64_t tu, int64_t nu)
{
	int64_t t = cache_refresh_time(&r->cc, r->ents[e].key, tu, nu);
	int64_t floor = now_s(r) + MIN_REFRESH_S;
	return t > floor ? t : floor;
}

static void store(struct run *r, int i, uint32_t e, int64_t tu, int64_t nu)
{
	struct view *v = &r->nodes[i].v[e];
	v->tu = tu;
	v->nu = nu;
	v->base = refresh_time(r, e, tu, nu);
	v->failures = 0;
	set_check(r, i, e, s_to_ms(v->base));
}

/* node/cluster.c pull_from: false if not started (no such member, dead, or busy). */
static bool pull_from(struct run *r, int i, const char *holder, uint32_t e)
{
	struct sim *s = r->s;
	const struct gossip_member *m = gossip_member_find(s->nodes[i].g, holder);
	int j = sim_index(s, holder);
	struct view *v = &r->nodes[i].v[e];
	if (!m || m->state == GOSSIP_DEAD || m->state == GOSSIP_LEFT || j < 0 || j == i)
		return false;
	if (v->pulling || v->fetching) /* refresher_pull: -EBUSY */
		return false;
	int64_t d = !r->nodes[j].alive	  ? PULL_MIN_MS /* refused */
		    : !reachable(r, i, j) ? CONNECT_TO_MS
					  : draw(r, PULL_MIN_MS, PULL_MAX_MS);
	v->pulling = true;
	r->nodes[i].pulls++;
	act_push(r, (struct act){.t = s->now_ms + d,
				 .kind = ACT_PULL_DONE,
				 .node = i,
				 .from = j,
				 .epoch = r->nodes[i].epoch,
				 .entry = e});
	return true;
}

static void pull_done(struct run *r, const struct act *a)
{
	struct rnode *nd = &r->nodes[a->node];
	if (!nd->alive || nd->epoch != a->epoch)
		return;
	struct view *v = &nd->v[a->entry];
	v->pulling = false;
	if (!r->nodes[a->from].alive || !reachable(r, a->node, a->from))
		return; /* crashed, or shutting down */
	const struct view *h = &r->nodes[a->from].v[a->entry];
	if (h->nu <= now_s(r))
		return; /* nothing servable: the holder would fetch (or fail) itself; a failure */
	if (h->tu > v->tu) {
		nd->pulls_newer++;
		store(r, a->node, a->entry, h->tu, h->nu);
	} else if (h->tu == v->tu && r->daemon_unchanged) {
		/* cache_store of the same bytes: CACHE_UNCHANGED, and the refresh is drawn again
		 * over what is left of the validity, as if the response had been issued now. */
		int64_t now = now_s(r);
		v->base = refresh_time(r, a->entry, now > v->tu ? now : v->tu, v->nu);
		set_check(r, a->node, a->entry, s_to_ms(v->base));
	}
}

static void node_kill(struct run *r, int i);

static void start_fetch(struct run *r, int i, uint32_t e, unsigned rank)
{
	struct sim *s = r->s;
	struct rnode *nd = &r->nodes[i];
	struct view *v = &nd->v[e];
	v->fetching = true;
	v->check_ms = INT64_MAX;
	if (nd->upstream_broken) {
		/* Its requests never reach the CA: not counted. */
		r->failed_attempts++;
		act_push(r, (struct act){.t = s->now_ms + CONNECT_TO_MS,
					 .kind = ACT_FETCH_DONE,
					 .node = i,
					 .epoch = nd->epoch,
					 .entry = e});
		return;
	}
	nd->fetches++;
	struct win *w = win_get(r, e, v->tu);
	if (w->fetches++ == 0)
		w->first_ms = s->now_ms;
	if (r->split)
		w->split_by_side[nd->side]++;
	r->log = xgrow(r->log, &r->log_cap, r->nlog + 1, sizeof(*r->log));
	r->log[r->nlog++] = (struct fetch_rec){
		.t_ms = s->now_ms,
		.node = i,
		.entry = e,
		.gen = v->tu,
		.rank = rank,
		.redundant = redundant(r, i, e),
		.split = r->split,
	};
	act_push(r, (struct act){.t = s->now_ms + draw(r, FETCH_MIN_MS, FETCH_MAX_MS),
				 .kind = ACT_FETCH_DONE,
				 .node = i,
				 .epoch = nd->epoch,
				 .entry = e});
	if (r->kill_armed && s->now_ms >= r->kill_at_ms) {
		/* Crash in the middle of this fetch. What else did it stand first for in the
		 * next Δ? Those entries may cost one more fetch; nothing else may. */
		r->kill_armed = false;
		r->victim = i;
		r->victim_entry = e;
		r->killed_ms = s->now_ms;
		w->affected = true;
		for (uint32_t k = 0; k < r->ne; k++) {
			const struct view *o = &nd->v[k];
			if (k == e || o->base > now_s(r) + DELTA_S || o->fetching)
				continue;
			if (rank_of(r, i, k, NULL) == 0) {
				win_get(r, k, o->tu)->affected = true;
				r->victim_due++;
			}
		}
		node_kill(r, i);
	}
}

static void announce(struct run *r, int i, uint32_t e)
{
	struct sim *s = r->s;
	const struct view *v = &r->nodes[i].v[e];
	struct buf b = {0};
	buf_append(&b, "SA", 2);
	uint8_t x[20];
	for (int k = 0; k < 4; k++)
		x[k] = (uint8_t)(e >> (24 - 8 * k));
	for (int k = 0; k < 8; k++) {
		x[4 + k] = (uint8_t)((uint64_t)v->tu >> (56 - 8 * k));
		x[12 + k] = (uint8_t)((uint64_t)v->nu >> (56 - 8 * k));
	}
	buf_append(&b, x, sizeof(x));
	const char *name = s->nodes[i].name;
	buf_append_byte(&b, (uint8_t)strlen(name));
	buf_append(&b, name, strlen(name));
	char key[32];
	snprintf(key, sizeof(key), "e:%016" PRIx64, r->ents[e].key);
	if (sim_broadcast(s, i, key, b.data, b.len) == 0)
		r->nodes[i].announces++;
	buf_done(&b);
}

static void fetch_done(struct run *r, const struct act *a)
{
	struct rnode *nd = &r->nodes[a->node];
	if (!nd->alive || nd->epoch != a->epoch)
		return; /* the process died: the CA answered nobody */
	struct view *v = &nd->v[a->entry];
	v->fetching = false;
	if (nd->upstream_broken) {
		/* slot_failed: retry after a backoff of 10 s × 2^failures (capped), with the
		 * same held response and so the same base. */
		unsigned k = v->failures < 6 ? v->failures : 6;
		v->failures++;
		set_check(r, a->node, a->entry, r->s->now_ms + draw(r, 5000, 10000) * (1 << k));
		return;
	}
	int64_t tu = now_s(r);
	if (tu < v->tu) {
		set_check(r, a->node, a->entry, s_to_ms(v->base));
		return;
	}
	store(r, a->node, a->entry, tu, tu + VALIDITY_S);
	announce(r, a->node, a->entry);
}

/* node/cluster.c cluster_fetch_time and the refresher_pump around it, for one due entry. */
static void decide(struct run *r, int i, uint32_t e)
{
	struct sim *s = r->s;
	struct rnode *nd = &r->nodes[i];
	struct view *v = &nd->v[e];
	int64_t now = now_s(r);
	v->check_ms = INT64_MAX;
	if (v->fetching)
		return;
	if (v->pulling) {
		/* "A pull from a peer is under way: its answer decides." */
		set_check(r, i, e, s_to_ms(now + 1));
		return;
	}
	if (v->base > now) {
		set_check(r, i, e, s_to_ms(v->base));
		return;
	}
	int64_t quiet =
		s->now_ms - (nd->start_ms > nd->last_join_ms ? nd->start_ms : nd->last_join_ms);
	if (quiet < STABLE_MS) {
		set_check(r, i, e, s_to_ms(now + (STABLE_MS - quiet + 999) / 1000));
		return;
	}
	const char *owner = NULL;
	unsigned rank = rank_of(r, i, e, &owner);
	int64_t at = now;
	switch (elect_decide(rank, v->base, DELTA_S, now, v->asked_base == v->base, &at)) {
	case ELECT_WAIT:
		set_check(r, i, e, s_to_ms(at));
		return;
	case ELECT_ASK_OWNER:
		v->asked_base = v->base;
		if (owner) {
			nd->asks++;
			pull_from(r, i, owner, e);
		}
		/* A late ask (past our turn already) still waits for the answer: elect_decide
		 * never has us fetch beside the pull. */
		if (v->base + (int64_t)rank * DELTA_S <= now)
			r->late_asks++;
		set_check(r, i, e, s_to_ms(at));
		return;
	case ELECT_FETCH:
		break;
	}
	start_fetch(r, i, e, rank);
}

static void run_checks(struct run *r, int i)
{
	struct rnode *nd = &r->nodes[i];
	int64_t now = r->s->now_ms;
	if (!nd->alive || nd->min_check_ms > now)
		return;
	nd->min_check_ms = INT64_MAX;
	for (uint32_t e = 0; e < r->ne; e++) {
		struct view *v = &nd->v[e];
		if (v->check_ms <= now)
			decide(r, i, e);
		if (!nd->alive)
			return;
		if (v->check_ms < nd->min_check_ms)
			nd->min_check_ms = v->check_ms;
	}
}

/* ---- gossip events ---- */

static uint64_t get_be(const uint8_t *p, int n)
{
	uint64_t x = 0;
	for (int k = 0; k < n; k++)
		x = x << 8 | p[k];
	return x;
}

static void on_announce(struct run *r, int i, const uint8_t *p, size_t len)
{
	struct sim *s = r->s;
	if (len < 23 || len < 23 + (size_t)p[22])
		return;
	uint32_t e = (uint32_t)get_be(p + 2, 4);
	int64_t tu = (int64_t)get_be(p + 6, 8);
	char holder[32];
	size_t nl = p[22] < sizeof(holder) - 1 ? p[22] : sizeof(holder) - 1;
	memcpy(holder, p + 23, nl);
	holder[nl] = 0;
	if (e >= r->ne || strcmp(holder, s->nodes[i].name) == 0)
		return;
	struct view *v = &r->nodes[i].v[e];
	if (tu <= v->seen_tu || tu <= v->tu)
		return;
	v->seen_tu = tu;
	char key[32];
	snprintf(key, sizeof(key), "e:%016" PRIx64, r->ents[e].key);
	if (gossip_broadcast(s->nodes[i].g, key, p, len) == 0)
		r->nodes[i].relays++;
	pull_from(r, i, holder, e);
}

static void on_digest(struct run *r, int i, const uint8_t *p, size_t len)
{
	struct sim *s = r->s;
	if (len < 3 || p[0] != 'S' || p[1] != 'D' || len < 3 + (size_t)p[2])
		return;
	char holder[32];
	size_t nl = p[2] < sizeof(holder) - 1 ? p[2] : sizeof(holder) - 1;
	memcpy(holder, p + 3, nl);
	holder[nl] = 0;
	if (strcmp(holder, s->nodes[i].name) == 0)
		return;
	r->nodes[i].digests++;
	for (size_t off = 3 + (size_t)p[2]; off + 12 <= len; off += 12) {
		uint32_t e = (uint32_t)get_be(p + off, 4);
		int64_t tu = (int64_t)get_be(p + off + 4, 8);
		if (e < r->ne && tu > r->nodes[i].v[e].tu)
			pull_from(r, i, holder, e);
	}
}

static void node_state(struct sim *s, int node, bool join, struct buf *out)
{
	struct run *r = s->ud;
	const struct rnode *nd = &r->nodes[node];
	const char *name = s->nodes[node].name;
	if (!nd->alive)
		return; /* leaving: its entries are being torn down (node/cluster.c) */
	buf_append(out, "SD", 2);
	buf_append_byte(out, (uint8_t)strlen(name));
	buf_append(out, name, strlen(name));
	for (uint32_t e = 0; e < r->ne; e++) {
		uint8_t x[12];
		for (int k = 0; k < 4; k++)
			x[k] = (uint8_t)(e >> (24 - 8 * k));
		for (int k = 0; k < 8; k++)
			x[4 + k] = (uint8_t)((uint64_t)nd->v[e].tu >> (56 - 8 * k));
		buf_append(out, x, sizeof(x));
	}
}

static void on_event(struct sim *s, int i, const struct gossip_out *o, void *ud)
{
	struct run *r = ud;
	struct rnode *nd = &r->nodes[i];
	if (o->type != GOSSIP_OUT_EVENT || !nd->alive)
		return;
	bool self = o->name && strcmp(o->name, s->nodes[i].name) == 0;
	switch (o->event) {
	case GOSSIP_EV_JOIN:
		if (!self) {
			since_set(nd, o->name, s->now_ms);
			nd->last_join_ms = s->now_ms;
		}
		break;
	case GOSSIP_EV_LEAVE:
		if (!self)
			since_del(nd, o->name);
		break;
	case GOSSIP_EV_USER:
		if (o->len >= 2 && o->data[0] == 'S' && o->data[1] == 'A')
			on_announce(r, i, o->data, o->len);
		break;
	case GOSSIP_EV_REMOTE_STATE:
		on_digest(r, i, o->data, o->len);
		break;
	default:
		break;
	}
}

/* ---- the driver ---- */

static void monitor(struct run *r)
{
	int64_t now = now_s(r);
	size_t expired = 0;
	for (size_t i = 0; i < r->n; i++) {
		if (!r->nodes[i].alive)
			continue;
		for (uint32_t e = 0; e < r->ne; e++)
			expired += now >= r->nodes[i].v[e].nu;
	}
	r->expired_now = expired;
	if (expired > r->expired_max)
		r->expired_max = expired;
	r->expired_node_s += expired;
	r->next_monitor_ms = r->s->now_ms + MONITOR_MS;
}

static void run_until(struct run *r, int64_t end_ms)
{
	struct sim *s = r->s;
	for (;;) {
		int64_t t = end_ms;
		if (s->now_ms + STEP_MS < t)
			t = s->now_ms + STEP_MS;
		if (r->nacts && r->acts[0].t < t)
			t = r->acts[0].t;
		for (size_t i = 0; i < r->n; i++)
			if (r->nodes[i].alive && r->nodes[i].min_check_ms < t)
				t = r->nodes[i].min_check_ms;
		if (r->next_monitor_ms < t)
			t = r->next_monitor_ms;
		if (t < s->now_ms)
			t = s->now_ms;
		sim_run_until(s, t);
		while (r->nacts && r->acts[0].t <= s->now_ms) {
			struct act a = act_pop(r);
			if (a.kind == ACT_FETCH_DONE)
				fetch_done(r, &a);
			else
				pull_done(r, &a);
		}
		for (size_t i = 0; i < r->n; i++)
			run_checks(r, (int)i);
		if (s->now_ms >= r->next_monitor_ms)
			monitor(r);
		if (s->now_ms >= end_ms)
			return;
	}
}

static void run_for(struct run *r, int64_t ms)
{
	run_until(r, r->s->now_ms + ms);
}

/* The refresher stops (a daemon shutting down starts no fetch, and forgets those in flight);
 * gossip runs on until the caller kills the node. */
static void node_stop(struct run *r, int i)
{
	r->nodes[i].alive = false;
	r->nodes[i].epoch++;
}

static void node_kill(struct run *r, int i)
{
	node_stop(r, i);
	sim_kill(r->s, i);
}

/* A new process in node i's place that kept its responses (the disk cache) and nothing else,
 * joining through `seed`. */
static int node_restart(struct run *r, int i, int seed)
{
	struct rnode *nd = &r->nodes[i];
	int64_t now = r->s->now_ms;
	nd->alive = true;
	nd->epoch++;
	nd->start_ms = now;
	nd->last_join_ms = 0;
	nd->nsince = 0;
	nd->min_check_ms = INT64_MAX;
	for (uint32_t e = 0; e < r->ne; e++) {
		struct view *v = &nd->v[e];
		v->seen_tu = 0;
		v->asked_base = INT64_MIN;
		v->fetching = v->pulling = false;
		v->failures = 0;
		int64_t due = s_to_ms(v->base);
		set_check(r, i, e, due > now ? due : now);
	}
	sim_restart(r->s, i);
	return sim_join(r->s, i, seed, 5000);
}

/* n nodes formed into a cluster, every one holding the same first response of every entry;
 * their thisUpdates spread so that the first refreshes fall 50–450 s from now. */
static struct run *run_new(uint64_t seed, size_t n, double loss)
{
	struct run *r = xcalloc(1, sizeof(*r));
	rng_seed(&r->rng, seed ^ 0xe1ec7ULL);
	r->n = n;
	r->ne = ENTRIES;
	r->victim = -1;
	cache_config_default(&r->cc);
	r->cc.min_refresh_interval_s = MIN_REFRESH_S;
	r->ents = xcalloc(r->ne, sizeof(*r->ents));
	for (uint32_t e = 0; e < r->ne; e++)
		r->ents[e].key = rng_next(&r->rng);
	struct sim_cfg cfg = {.seed = seed, .n = n, .compress = true, .node_state = node_state};
	r->s = sim_new(&cfg);
	r->s->on_event = on_event;
	r->s->ud = r;
	int64_t t0 = now_s(r);
	for (size_t i = 0; i < n; i++) {
		struct rnode *nd = &r->nodes[i];
		nd->alive = true;
		nd->start_ms = r->s->now_ms;
		nd->min_check_ms = INT64_MAX;
		nd->v = xcalloc(r->ne, sizeof(*nd->v));
	}
	for (uint32_t e = 0; e < r->ne; e++) {
		int64_t tu = t0 - draw(r, 0, 250);
		for (size_t i = 0; i < n; i++) {
			r->nodes[i].v[e].asked_base = INT64_MIN;
			store(r, (int)i, e, tu, tu + VALIDITY_S);
		}
	}
	int joined = sim_join_all(r->s);
	int64_t conv = sim_wait_converged(r->s, NULL, 100, 60000);
	sim_ok(joined == (int)n - 1 && conv >= 0,
	       "N=%zu forms (%d/%zu joins, views full after %.1f s)", n, joined, n - 1,
	       sim_secs(conv));
	sim_set_loss(r->s, loss);
	r->next_monitor_ms = r->s->now_ms;
	return r;
}

static void run_free(struct run *r)
{
	sim_free(r->s);
	for (size_t i = 0; i < r->n; i++)
		free(r->nodes[i].v);
	for (uint32_t e = 0; e < r->ne; e++)
		free(r->ents[e].w);
	free(r->ents);
	free(r->acts);
	free(r->log);
	free(r);
}

/* ---- figures ---- */

struct wstats {
	size_t windows, fetches, over1, max, min_per_entry;
	size_t redundant, by_rank[4];
};

/* The windows whose first fetch was sent in [from_ms, to_ms) (with all their fetches), and the
 * fetches sent in that time for redundancy and rank. */
static struct wstats win_stats(const struct run *r, int64_t from_ms, int64_t to_ms)
{
	struct wstats w = {.min_per_entry = SIZE_MAX};
	for (uint32_t e = 0; e < r->ne; e++) {
		size_t here = 0;
		const struct ent *en = &r->ents[e];
		for (size_t k = 0; k < en->nw; k++) {
			const struct win *x = &en->w[k];
			if (x->fetches == 0 || x->first_ms < from_ms || x->first_ms >= to_ms)
				continue;
			here++;
			w.windows++;
			w.fetches += x->fetches;
			w.over1 += x->fetches > 1;
			if (x->fetches > w.max)
				w.max = x->fetches;
		}
		if (here < w.min_per_entry)
			w.min_per_entry = here;
	}
	for (size_t k = 0; k < r->nlog; k++) {
		const struct fetch_rec *f = &r->log[k];
		if (f->t_ms < from_ms || f->t_ms >= to_ms)
			continue;
		w.redundant += f->redundant;
		w.by_rank[f->rank < 3 ? f->rank : 3]++;
	}
	return w;
}

static double mean(const struct wstats *w)
{
	return w->windows ? (double)w->fetches / (double)w->windows : 0;
}

static void print_stats(const char *what, const struct wstats *w)
{
	sim_note("%s: %zu windows (at least %zu per entry), %zu fetches: %.3f per window, max %zu, "
		 "%zu windows over 1; %zu redundant; by rank 0/1/2/3+: %zu/%zu/%zu/%zu",
		 what, w->windows, w->min_per_entry, w->fetches, mean(w), w->max, w->over1,
		 w->redundant, w->by_rank[0], w->by_rank[1], w->by_rank[2], w->by_rank[3]);
}

static void print_traffic(const struct run *r, const char *what)
{
	uint64_t pulls = 0, newer = 0, asks = 0, ann = 0, relays = 0, digests = 0;
	for (size_t i = 0; i < r->n; i++) {
		const struct rnode *nd = &r->nodes[i];
		pulls += nd->pulls;
		newer += nd->pulls_newer;
		asks += nd->asks;
		ann += nd->announces;
		relays += nd->relays;
		digests += nd->digests;
	}
	sim_note("%s: %" PRIu64 " announcements, %" PRIu64 " relays, %" PRIu64 " pulls (%" PRIu64
		 " brought a newer response), %" PRIu64 " owner asks, %" PRIu64
		 " digests; at most %zu (node, entry) pairs held an expired response",
		 what, ann, relays, pulls, newer, asks, digests, r->expired_max);
}

static void check_clean(struct run *r, const char *what)
{
	size_t stale = sim_stale_streams(r->s);
	sim_ok(r->s->errors == 0 && stale == 0,
	       "%s: no simulator-detected misbehaviour (%u errors, %zu streams left open)", what,
	       r->s->errors, stale);
}

/* ---- a. steady state ---- */

static void scenario_steady(uint64_t seed, size_t n, double loss)
{
	struct run *r = run_new(seed, n, loss);
	int64_t t0 = r->s->now_ms;
	run_for(r, 1800000);
	struct wstats w = win_stats(r, 0, INT64_MAX);
	char what[64];
	snprintf(what, sizeof(what), "steady N=%zu loss %.0f%%", n, loss * 100);
	double span = sim_secs(r->s->now_ms - t0);
	sim_note("%s: %.0f s simulated; per validity period (%d s) that is %.2f fetches per entry",
		 what, span, VALIDITY_S, (double)w.fetches / (double)r->ne / (span / VALIDITY_S));
	print_stats(what, &w);
	print_traffic(r, what);
	sim_ok(w.min_per_entry >= 3, "%s: at least 3 windows per entry (%zu)", what,
	       w.min_per_entry);
	sim_ok(w.max == 1, "%s: one fetch per entry per window (mean %.3f, max %zu)", what,
	       mean(&w), w.max);
	sim_ok(r->expired_max == 0, "%s: no node ever held an expired response (%zu)", what,
	       r->expired_max);
	check_clean(r, what);
	run_free(r);
}

/* ---- b. owner crash ---- */

static void scenario_crash(uint64_t seed, size_t n)
{
	struct run *r = run_new(seed, n, 0);
	char what[64];
	snprintf(what, sizeof(what), "crash N=%zu", n);
	run_for(r, 500000);
	r->kill_armed = true;
	r->kill_at_ms = r->s->now_ms;
	while (r->kill_armed)
		run_for(r, 1000);
	int v = r->victim;
	sim_note("%s: %s killed at %.3f s in the middle of its fetch of entry %u; it stood first "
		 "for "
		 "%zu more entries due within Δ",
		 what, r->s->nodes[v].name, sim_secs(r->killed_ms), r->victim_entry, r->victim_due);
	run_for(r, 1000000);
	/* Detection, for the record. */
	int64_t all = -1;
	size_t seen = 0;
	for (size_t k = 0; k < r->s->nleaves; k++)
		if (r->s->leaves[k].subject == v) {
			seen++;
			all = r->s->leaves[k].t_ms - r->killed_ms;
		}
	sim_note("%s: %zu peers declared it dead, the last %.1f s after the crash", what, seen,
		 sim_secs(all));
	size_t aff = 0, aff_max = 0, aff_two = 0, other_max = 0, other = 0;
	for (uint32_t e = 0; e < r->ne; e++) {
		const struct ent *en = &r->ents[e];
		for (size_t k = 0; k < en->nw; k++) {
			const struct win *x = &en->w[k];
			if (x->fetches == 0)
				continue;
			if (x->affected) {
				aff++;
				aff_two += x->fetches == 2;
				aff_max = x->fetches > aff_max ? x->fetches : aff_max;
			} else {
				other++;
				other_max = x->fetches > other_max ? x->fetches : other_max;
			}
		}
	}
	struct wstats w = win_stats(r, 0, INT64_MAX);
	print_stats(what, &w);
	print_traffic(r, what);
	sim_note("%s: the %zu windows the crash hit cost at most %zu fetches (%zu cost 2); the "
		 "other "
		 "%zu at most %zu",
		 what, aff, aff_max, aff_two, other, other_max);
	sim_ok(aff >= 1 && aff_max <= 2,
	       "%s: windows the crash hit cost ≤ 2 fetches (max %zu of %zu)", what, aff_max, aff);
	sim_ok(other_max == 1, "%s: every other window costs 1 (max %zu over %zu)", what, other_max,
	       other);
	sim_ok(r->expired_max == 0, "%s: no node ever held an expired response (%zu)", what,
	       r->expired_max);
	check_clean(r, what);
	run_free(r);
}

/* ---- c. partition ---- */

/* Every live node holds, for every entry, at least want[e]. */
static bool holds_at_least(const struct run *r, const int64_t *want)
{
	for (size_t i = 0; i < r->n; i++) {
		if (!r->nodes[i].alive)
			continue;
		for (uint32_t e = 0; e < r->ne; e++)
			if (r->nodes[i].v[e].tu < want[e])
				return false;
	}
	return true;
}

static void scenario_partition(uint64_t seed)
{
	const size_t n = 10;
	struct run *r = run_new(seed, n, 0);
	const char *what = "partition 5/5";
	run_for(r, 300000);
	int side[MAXN];
	for (size_t i = 0; i < n; i++)
		r->nodes[i].side = side[i] = i >= n / 2;
	int64_t split_ms = r->s->now_ms;
	sim_partition(r->s, side);
	r->split = true;
	int64_t len_ms = 700000; /* longer than a validity, so than any window */
	run_for(r, len_ms);
	int64_t heal_ms = r->s->now_ms;
	sim_partition(r->s, NULL);
	r->split = false;
	/* The newest response of each entry at the heal: where everyone must get to. */
	int64_t *want = xcalloc(r->ne, sizeof(*want));
	size_t differ = 0;
	for (uint32_t e = 0; e < r->ne; e++) {
		int64_t lo = INT64_MAX;
		for (size_t i = 0; i < n; i++) {
			want[e] = r->nodes[i].v[e].tu > want[e] ? r->nodes[i].v[e].tu : want[e];
			lo = r->nodes[i].v[e].tu < lo ? r->nodes[i].v[e].tu : lo;
		}
		differ += lo != want[e];
	}
	int64_t views = -1, data = -1;
	while (r->s->now_ms - heal_ms < 600000 && (views < 0 || data < 0)) {
		run_for(r, 100);
		if (views < 0 && sim_converged(r->s, NULL))
			views = r->s->now_ms - heal_ms;
		if (data < 0 && holds_at_least(r, want))
			data = r->s->now_ms - heal_ms;
	}
	free(want);
	int64_t conv_ms = r->s->now_ms;
	run_for(r, 1000000);

	/* During the split: per window, per side. */
	size_t split_windows = 0, both = 0, side_max = 0, total_max = 0;
	for (uint32_t e = 0; e < r->ne; e++) {
		const struct ent *en = &r->ents[e];
		for (size_t k = 0; k < en->nw; k++) {
			const struct win *x = &en->w[k];
			unsigned a = x->split_by_side[0], b = x->split_by_side[1];
			if (a + b == 0)
				continue;
			split_windows++;
			both += a && b;
			side_max = a > side_max ? a : side_max;
			side_max = b > side_max ? b : side_max;
			total_max = x->fetches > total_max ? x->fetches : total_max;
		}
	}
	sim_note("%s: split at %.0f s for %.0f s; %zu windows had fetches during it, %zu on both "
		 "sides; per side at most %zu, in all at most %zu",
		 what, sim_secs(split_ms), sim_secs(len_ms), split_windows, both, side_max,
		 total_max);
	struct wstats during = win_stats(r, split_ms, heal_ms);
	sim_note("%s: %zu fetches during the split (%zu redundant)", what,
		 during.by_rank[0] + during.by_rank[1] + during.by_rank[2] + during.by_rank[3],
		 during.redundant);
	sim_ok(split_windows > 0 && side_max <= 1 && total_max <= 2,
	       "%s: ≤ 1 fetch per entry per window per side (max %zu), ≤ 2 in all (max %zu)", what,
	       side_max, total_max);
	sim_note("%s: at the heal %zu of %zu entries differed between nodes; views full after %.1f "
		 "s, "
		 "every node held the newest response of every entry after %.1f s",
		 what, differ, r->ne, sim_secs(views), sim_secs(data));
	sim_ok(views >= 0 && data >= 0,
	       "%s: after the heal every node converges to the newest thisUpdate (%.1f s)", what,
	       sim_secs(data));
	struct wstats heal = win_stats(r, heal_ms, conv_ms);
	sim_note("%s: %zu fetches between the heal and convergence, %zu of them redundant (a newer "
		 "response was reachable)",
		 what, heal.by_rank[0] + heal.by_rank[1] + heal.by_rank[2] + heal.by_rank[3],
		 heal.redundant);
	struct wstats after = win_stats(r, conv_ms, INT64_MAX);
	print_stats("partition, after convergence", &after);
	print_traffic(r, what);
	sim_ok(after.windows > 0 && after.max == 1,
	       "%s: after convergence one fetch per entry per window (mean %.3f, max %zu over %zu)",
	       what, mean(&after), after.max, after.windows);
	sim_ok(r->expired_max == 0, "%s: no node ever held an expired response (%zu)", what,
	       r->expired_max);
	check_clean(r, what);
	run_free(r);
}

/* ---- d. churn ---- */

static void scenario_churn(uint64_t seed)
{
	const size_t n = 10;
	struct run *r = run_new(seed, n, 0);
	const char *what = "churn N=10";
	run_for(r, 60000);
	int64_t t0 = r->s->now_ms;
	int away = -1;
	unsigned leaves = 0, crashes = 0, joins = 0;
	for (int minute = 0; minute < 30; minute++) {
		/* At a random moment of each minute (not on the whole second when decisions are
		 * taken, which would catch fetches in flight more often than chance). */
		run_until(r, t0 + (int64_t)minute * 60000 + draw(r, 0, 59999));
		if (away < 0) {
			/* Someone leaves: gracefully, or (every other leave) crashes. */
			int i;
			do
				i = (int)rng_below(&r->rng, n);
			while (!r->nodes[i].alive);
			if (minute % 4 == 0) {
				node_stop(r, i);
				sim_leave_node(r->s, i, LEAVE_TIMEOUT_MS);
				int64_t end = r->s->now_ms + LEAVE_TIMEOUT_MS;
				while (!r->s->nodes[i].leave_done && r->s->now_ms < end)
					run_for(r, 10);
				leaves++;
			} else {
				crashes++;
			}
			node_kill(r, i);
			away = i;
			sim_note("%s: %.3f s %s %s", what, sim_secs(r->s->now_ms),
				 r->s->nodes[i].name, minute % 4 == 0 ? "left" : "crashed");
		} else {
			int seed_node;
			do
				seed_node = (int)rng_below(&r->rng, n);
			while (!r->nodes[seed_node].alive);
			sim_note("%s: %.3f s %s restarts, joins through %s", what,
				 sim_secs(r->s->now_ms), r->s->nodes[away].name,
				 r->s->nodes[seed_node].name);
			int j = node_restart(r, away, seed_node);
			joins += j > 0;
			away = -1;
		}
		run_until(r, t0 + (int64_t)(minute + 1) * 60000);
	}
	int64_t t1 = r->s->now_ms;
	/* Let the last windows close. */
	run_for(r, 120000);
	sim_note("%s: %u graceful leaves, %u crashes, %u rejoins (one event a minute for %.0f s)",
		 what, leaves, crashes, joins, sim_secs(t1 - t0));
	struct wstats w = win_stats(r, t0, t1);
	print_stats(what, &w);
	print_traffic(r, what);
	for (size_t k = 0; k < r->nlog; k++) {
		const struct fetch_rec *f = &r->log[k];
		const struct win *x = NULL;
		const struct ent *en = &r->ents[f->entry];
		for (size_t m = 0; m < en->nw && !x; m++)
			if (en->w[m].gen == f->gen)
				x = &en->w[m];
		if (f->t_ms >= t0 && x && x->fetches > 1)
			sim_note("%s: entry %u, window of thisUpdate %" PRId64
				 " s: fetch by %s at %.3f s, rank %u%s",
				 what, f->entry, f->gen - EPOCH_S, r->s->nodes[f->node].name,
				 sim_secs(f->t_ms), f->rank, f->redundant ? ", redundant" : "");
	}
	sim_ok(w.windows > 0 && mean(&w) <= 1.1,
	       "%s: fetches per entry per window ≤ 1.1 (mean %.3f, max %zu, %zu windows over 1)",
	       what, mean(&w), w.max, w.over1);
	sim_ok(r->expired_max == 0, "%s: no node ever held an expired response (%zu)", what,
	       r->expired_max);
	check_clean(r, what);
	run_free(r);
}

/* ---- e. rolling restart: the late ask ---- */

/*
 * Every node restarted in turn, one every 8 s (a rolling upgrade): each rejoin is a member JOIN
 * for the others, so nobody decides anything until 10 s after the last one, ~90 s in all. An
 * entry that came due early in that pause is decided more than Δ after its base: the owner
 * fetches, and a rank-1 node that never asked asks late. The first rules had it fetch beside
 * that pull (17 of 144 windows fetched twice); elect_decide now has it look again Δ/4 later, by
 * when the owner's announcement is in.
 */
static void storm_run(uint64_t seed, const char *what)
{
	const size_t n = 10;
	struct run *r = run_new(seed, n, 0);
	run_for(r, 300000);
	int64_t t0 = r->s->now_ms;
	for (size_t i = 0; i < n; i++) {
		node_stop(r, (int)i);
		sim_leave_node(r->s, (int)i, LEAVE_TIMEOUT_MS);
		int64_t end = r->s->now_ms + LEAVE_TIMEOUT_MS;
		while (!r->s->nodes[i].leave_done && r->s->now_ms < end)
			run_for(r, 10);
		sim_kill(r->s, (int)i);
		node_restart(r, (int)i, (int)((i + 1) % n));
		run_for(r, 8000);
	}
	run_for(r, 600000);
	struct wstats w = win_stats(r, t0, t0 + 300000);
	print_stats(what, &w);
	sim_note("%s: %" PRIu64 " late asks (asking the owner after our own turn had come)", what,
		 r->late_asks);
	sim_ok(w.windows > 0 && w.max == 1,
	       "%s: one fetch per entry per window (mean %.3f, max %zu, %zu over 1)", what,
	       mean(&w), w.max, w.over1);
	sim_ok(r->expired_max == 0, "%s: no node ever held an expired response (%zu)", what,
	       r->expired_max);
	check_clean(r, what);
	run_free(r);
}

static void scenario_storm(uint64_t seed)
{
	storm_run(seed, "rolling restart");
}

/* ---- f. an owner whose upstream is broken ---- */

/*
 * n00 stays a healthy member but none of its fetches reaches the CA (its route is down). Its
 * entries are what the fallback is for: rank 1 asks it at base + Δ/4 (and gets the same
 * response back), then fetches at base + Δ. `unchanged` models what the daemon does with that
 * identical answer: cache_store returns CACHE_UNCHANGED and draws the refresh time again over
 * what is left of the validity, so base moves, the ask repeats at the new base, and rank 1
 * never reaches base + Δ.
 */
static void stuck_run(uint64_t seed, bool unchanged, const char *what)
{
	const size_t n = 5;
	struct run *r = run_new(seed, n, 0);
	r->daemon_unchanged = unchanged;
	run_for(r, 300000);
	int64_t t0 = r->s->now_ms;
	r->nodes[0].upstream_broken = true;
	run_for(r, 1200000);
	/* For each window of an entry n00 owns (in n01's view, everyone agrees) that came due after
	 * the break: how long after its base the first fetch came. */
	size_t windows = 0, late = 0;
	int64_t worst = 0;
	double sum = 0;
	for (uint32_t e = 0; e < r->ne; e++) {
		const char *owner = NULL;
		rank_of(r, 1, e, &owner);
		if (!owner || strcmp(owner, "n00") != 0)
			continue;
		const struct ent *en = &r->ents[e];
		for (size_t k = 0; k < en->nw; k++) {
			const struct win *x = &en->w[k];
			int64_t base =
				cache_refresh_time(&r->cc, en->key, x->gen, x->gen + VALIDITY_S);
			if (x->fetches == 0 || s_to_ms(base) < t0)
				continue;
			int64_t d = x->first_ms - s_to_ms(base);
			windows++;
			sum += (double)d;
			late += d > (DELTA_S + 2) * 1000;
			worst = d > worst ? d : worst;
		}
	}
	struct wstats w = win_stats(r, t0, INT64_MAX);
	print_stats(what, &w);
	print_traffic(r, what);
	sim_note("%s: %zu windows of n00's entries refreshed: first fetch %.1f s after base on "
		 "average, at worst %.1f s, %zu later than Δ + 2 s; n00 tried %" PRIu64 " times",
		 what, windows, windows ? sum / (double)windows / 1000 : 0, sim_secs(worst), late,
		 r->failed_attempts);
	if (!unchanged) {
		sim_ok(windows > 0 && late == 0,
		       "%s: rank 1 steps in at base + Δ (worst %.1f s after base)", what,
		       sim_secs(worst));
		sim_ok(r->expired_max == 0, "%s: no node ever held an expired response (%zu)", what,
		       r->expired_max);
	} else {
		sim_note("%s: up to %zu (node, entry) pairs held an expired response, %" PRIu64
			 " pair-seconds in all",
			 what, r->expired_max, r->expired_node_s);
	}
	sim_ok(w.max == 1, "%s: still one fetch per window (max %zu)", what, w.max);
	check_clean(r, what);
	run_free(r);
}

static void scenario_stuck(uint64_t seed)
{
	stuck_run(seed, false, "stuck owner, a pull changes nothing unless newer (the rule now)");
	stuck_run(seed, true, "stuck owner, identical pull rescheduling (the old behaviour)");
}

/* ---- main ---- */

int main(int argc, char **argv)
{
	if (argc != 2 && argc != 3) {
		fprintf(stderr, "usage: %s steady N|crash N|partition|churn|storm|stuck\n",
			argv[0]);
		return 2;
	}
	const char *sc = argv[1];
	uint64_t seed = sim_seed(0xe1ec0000u + (uint64_t)strlen(sc) * 7919u +
				 (argc >= 3 ? (uint64_t)atoi(argv[2]) : 0));
	if (strcmp(sc, "steady") == 0 && argc == 3) {
		size_t n = (size_t)atoi(argv[2]);
		scenario_steady(seed, n, 0);
		scenario_steady(seed + 1, n, 0.10);
	} else if (strcmp(sc, "crash") == 0 && argc == 3) {
		scenario_crash(seed, (size_t)atoi(argv[2]));
	} else if (strcmp(sc, "partition") == 0) {
		scenario_partition(seed);
	} else if (strcmp(sc, "churn") == 0) {
		scenario_churn(seed);
	} else if (strcmp(sc, "storm") == 0) {
		scenario_storm(seed);
	} else if (strcmp(sc, "stuck") == 0) {
		scenario_stuck(seed);
	} else {
		fprintf(stderr, "unknown scenario %s\n", sc);
		return 2;
	}
	return sim_tap_end();
}
