/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The simulator targets of GOSSIP.md §3, one scenario per invocation (`sim_gossip NAME`), TAP
 * output with the measured figures as comments. Durations are simulated time; SIM_QUICK
 * (set by meson in sanitizer builds) shortens the long soaks, never drops a scenario.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gossip/bcast.h"
#include "proto/mem.h"
#include "tests/sim/sim.h"

/* A long soak: full length, or a quarter with SIM_QUICK (sanitizer builds). */
static int64_t soak(int64_t ms)
{
	return sim_quick() ? ms / 4 : ms;
}

static struct sim_cfg cfg_default(uint64_t seed, size_t n)
{
	return (struct sim_cfg){.seed = seed, .n = n, .compress = true};
}

/* A formed, converged cluster, or NULL (reported). */
static struct sim *formed(const struct sim_cfg *cfg)
{
	struct sim *s = sim_new(cfg);
	int joined = sim_join_all(s);
	int64_t conv = sim_wait_converged(s, NULL, 100, 120000);
	if (!sim_ok(joined == (int)cfg->n - 1 && conv >= 0,
		    "N=%zu forms: %d/%zu joins answered, views full %.1f s after the last join",
		    cfg->n, joined, cfg->n - 1, sim_secs(conv))) {
		sim_free(s);
		return NULL;
	}
	return s;
}

static void check_clean(struct sim *s, const char *what)
{
	size_t stale = sim_stale_streams(s);
	sim_ok(s->errors == 0 && stale == 0,
	       "%s: no simulator-detected misbehaviour (%u errors, %zu streams left open)", what,
	       s->errors, stale);
}

/* Leave events about `subject` (-1: any) whose subject is not in `dead` (may be NULL), from
 * index `from` of the log on. */
static size_t false_leaves(const struct sim *s, size_t from, const bool *dead, int subject)
{
	size_t n = 0;
	for (size_t i = from; i < s->nleaves; i++) {
		const struct sim_leave *l = &s->leaves[i];
		if (subject >= 0 && l->subject != subject)
			continue;
		if (l->subject >= 0 && dead && dead[l->subject])
			continue;
		n++;
	}
	return n;
}

/* ---- a. steady-state load ---- */

static void scenario_load(uint64_t seed)
{
	static const size_t ns[] = {5, 10, 25, 50};
	for (size_t k = 0; k < sizeof(ns) / sizeof(ns[0]); k++) {
		struct sim_cfg cfg = cfg_default(seed + k, ns[k]);
		struct sim *s = formed(&cfg);
		if (!s)
			continue;
		/* Let the join storm's broadcasts finish their retransmissions first. */
		sim_run_for(s, 10000);
		uint64_t before = sim_udp_sent(s);
		int64_t span = soak(60000);
		sim_run_for(s, span);
		double rate = (double)(sim_udp_sent(s) - before) / (double)ns[k] / sim_secs(span);
		sim_note("load N=%zu: %.3f packets/node/s over %.0f s", ns[k], rate,
			 sim_secs(span));
		sim_ok(rate >= 1.8 && rate <= 2.2,
		       "load N=%zu: %.2f packets/node/s within 2.0 ± 0.2", ns[k], rate);
		sim_ok(s->nleaves == 0, "load N=%zu: no leave events (%zu)", ns[k], s->nleaves);
		check_clean(s, "load");
		sim_free(s);
	}
}

/* ---- b. no false death under loss ---- */

/* tcp_fail: the share of connections that silently die at open (TCP cut as well). */
static void loss_run(uint64_t seed, size_t n, double p, bool tcp, double tcp_fail, bool assert_zero)
{
	struct sim_cfg cfg = cfg_default(seed, n);
	cfg.no_tcp_ping = !tcp;
	struct sim *s = formed(&cfg);
	if (!s)
		return;
	sim_set_loss(s, p);
	s->tcp_fail = tcp_fail;
	size_t mark = s->nleaves;
	uint64_t sent = sim_udp_sent(s), suspects = 0;
	for (size_t i = 0; i < n; i++)
		suspects += s->nodes[i].suspects;
	int64_t span = soak(600000);
	sim_run_for(s, span);
	size_t fl = false_leaves(s, mark, NULL, -1);
	uint64_t susp2 = 0;
	for (size_t i = 0; i < n; i++)
		susp2 += s->nodes[i].suspects;
	double rate = (double)(sim_udp_sent(s) - sent) / (double)n / sim_secs(span);
	sim_note("loss N=%zu p=%.0f%% tcp=%s: %zu false leave events, %" PRIu64
		 " suspicions, %.2f packets/node/s over %.0f s",
		 n, p * 100,
		 !tcp		? "off"
		 : tcp_fail > 0 ? "on, 30% of connections cut"
				: "on",
		 fl, susp2 - suspects, rate, sim_secs(span));
	if (assert_zero)
		sim_ok(fl == 0, "loss N=%zu p=%.0f%%: zero false deaths (%zu)", n, p * 100, fl);
	check_clean(s, "loss");
	sim_free(s);
}

static void scenario_loss(uint64_t seed, size_t n)
{
	static const double ps[] = {0.10, 0.20, 0.30};
	for (size_t k = 0; k < 3; k++)
		loss_run(seed + k, n, ps[k], true, 0, true);
	/* Without the TCP fallback, or with TCP lossy too: reported, not a target (GOSSIP.md §3
	 * asks for both; at 30 % UDP alone a round trip fails half the time). */
	for (size_t k = 0; k < 3; k++)
		loss_run(seed + 10 + k, n, ps[k], false, 0, false);
	loss_run(seed + 20, n, 0.30, true, 0.30, false);
}

/* ---- c. detection of a silent failure ---- */

static int64_t suspicion_min_ms(const struct gossip_profile *p, size_t n)
{
	double scale = fmax(1.0, log10((double)n));
	return (int64_t)((double)p->suspicion_mult * scale * (double)p->probe_interval_ms);
}

struct det {
	int victim;
	int64_t first_suspect; /* -1: none yet */
};

static void det_event(struct sim *s, int node, const struct gossip_out *o, void *ud)
{
	struct det *d = ud;
	if (o->type == GOSSIP_OUT_EVENT && o->event == GOSSIP_EV_SUSPECT &&
	    sim_index(s, o->name) == d->victim && d->first_suspect < 0)
		d->first_suspect = s->now_ms;
}

struct det_result {
	int64_t suspect, first, all; /* after the kill */
};

/* Kills `victim`; false if not every peer declared it dead within 120 s. */
static bool detect_once(struct sim *s, int victim, struct det_result *ret)
{
	size_t mark = s->nleaves;
	int64_t t0 = s->now_ms;
	struct det d = {.victim = victim, .first_suspect = -1};
	s->on_event = det_event;
	s->ud = &d;
	sim_kill(s, victim);
	bool *by = xcalloc(s->n, sizeof(*by));
	bool done = false;
	int64_t first = -1, all = -1;
	while (!done && s->now_ms - t0 < 120000) {
		sim_run_for(s, 10);
		size_t seen = 0, live = 0;
		memset(by, 0, s->n * sizeof(*by));
		for (size_t i = mark; i < s->nleaves; i++) {
			const struct sim_leave *l = &s->leaves[i];
			if (l->subject != victim || by[l->observer])
				continue;
			by[l->observer] = true;
			seen++;
			if (first < 0)
				first = l->t_ms - t0;
			all = l->t_ms - t0;
		}
		for (size_t i = 0; i < s->n; i++)
			live += !s->nodes[i].dead;
		done = seen == live;
	}
	free(by);
	s->on_event = NULL;
	if (done)
		*ret = (struct det_result){d.first_suspect - t0, first, all};
	return done;
}

static void scenario_detect(uint64_t seed)
{
	static const size_t ns[] = {5, 10, 25};
	const int trials = 20;
	struct gossip_profile prof;
	gossip_profile_get("lan", &prof);
	for (size_t k = 0; k < 3; k++) {
		size_t n = ns[k];
		int64_t bound = suspicion_min_ms(&prof, n) + 3 * prof.probe_interval_ms;
		double sum_susp = 0, sum_first = 0, sum_all = 0;
		int64_t max_all = 0;
		int good = 0, within = 0;
		for (int t = 0; t < trials; t++) {
			struct sim_cfg cfg = cfg_default(seed + k * 100 + (uint64_t)t, n);
			struct sim *s = formed(&cfg);
			if (!s)
				continue;
			/* A random phase against the probe loops. */
			sim_run_for(s, 5000 + (int64_t)rng_below(&s->rng, 1000));
			struct det_result r;
			bool done = detect_once(s, (int)n - 1, &r);
			bool others = false_leaves(s, 0, NULL, -1) != n - 1;
			if (done) {
				sim_note("detect N=%zu trial %d: first suspicion %.2f s, first "
					 "death "
					 "%.2f s, "
					 "all %.2f s",
					 n, t, sim_secs(r.suspect), sim_secs(r.first),
					 sim_secs(r.all));
				sum_susp += (double)r.suspect;
				sum_first += (double)r.first;
				sum_all += (double)r.all;
				max_all = r.all > max_all ? r.all : max_all;
				within += r.all <= bound;
				good++;
			}
			sim_ok(done && !others,
			       "detect N=%zu trial %d: every peer declares it dead, "
			       "nobody else",
			       n, t);
			check_clean(s, "detect");
			sim_free(s);
		}
		if (good == 0)
			continue;
		double mean_all = sum_all / good;
		sim_note("detect N=%zu: mean first suspicion %.2f s (%.2f probe intervals), mean "
			 "first "
			 "death %.2f s, mean all %.2f s, max all %.2f s, %d/%d within %.2f s",
			 n, sum_susp / good / 1000,
			 sum_susp / good / (double)prof.probe_interval_ms, sum_first / good / 1000,
			 mean_all / 1000, sim_secs(max_all), within, good, sim_secs(bound));
		sim_ok(mean_all <= (double)bound,
		       "detect N=%zu: all peers within suspicion-min + 3 probe intervals on "
		       "average "
		       "(%.2f ≤ %.2f s)",
		       n, mean_all / 1000, sim_secs(bound));
		/* Individual trials are reported, not bounded: the first probe of the victim
		 * can come several probe intervals late (every peer walks its own shuffled
		 * round; rounds that started together stay in step), which memberlist shows
		 * too (5–11 s measured, GOSSIP.md §3). */
	}
}

/* ---- d. Lifeguard: a node frozen 2–5 s every 20 s ---- */

struct lg_level {
	const char *what;
	double loss;
	int bursts; /* freezes of 2–5 s per 20 s cycle, 50 ms of CPU between them */
};

struct lg_result {
	size_t healthy_fp, frozen_deaths;
	uint64_t suspicions;
};

static void lifeguard_run(uint64_t seed, bool lifeguard, const struct lg_level *lv,
			  struct lg_result *acc)
{
	const size_t n = 10;
	const int frozen = 3;
	struct sim_cfg cfg = cfg_default(seed, n);
	cfg.no_lifeguard = !lifeguard;
	struct sim *s = formed(&cfg);
	if (!s) {
		acc->healthy_fp = SIZE_MAX / 2;
		return;
	}
	sim_set_loss(s, lv->loss);
	size_t mark = s->nleaves;
	uint64_t susp0 = 0;
	for (size_t i = 0; i < n; i++)
		susp0 += s->nodes[i].suspects;
	/* Full length even with SIM_QUICK: the SWIM comparison needs the rare events. */
	int64_t end = s->now_ms + 600000;
	while (s->now_ms < end) {
		int64_t cycle = s->now_ms;
		for (int b = 0; b < lv->bursts; b++) {
			if (b > 0)
				sim_run_for(s, 50);
			sim_freeze(s, frozen);
			sim_run_for(s, 2000 + (int64_t)rng_below(&s->rng, 3001));
			sim_unfreeze(s, frozen);
		}
		sim_run_until(s, cycle + 20000);
	}
	bool dead[10] = {[frozen] = true}; /* leaves about the frozen node are not false */
	acc->healthy_fp += false_leaves(s, mark, dead, -1);
	acc->frozen_deaths += false_leaves(s, mark, NULL, frozen);
	for (size_t i = 0; i < n; i++)
		acc->suspicions += s->nodes[i].suspects;
	acc->suspicions -= susp0;
	check_clean(s, lifeguard ? "lifeguard" : "swim");
	sim_free(s);
}

static void scenario_lifeguard(uint64_t seed)
{
	/*
	 * The scenario as GOSSIP.md §3 states it, then harsher until plain SWIM shows what
	 * Lifeguard is for. Added loss alone is not enough: with the TCP fallback and every
	 * refutation gossiped at once, SWIM's fixed 4 s suspicion (N=10) never outlives a
	 * refutation. What does break it is CPU starvation proper: the node gets 50 ms slices
	 * between freezes, so its own stale suspicions (probes that timed out while it was
	 * frozen) reach their 4 s timeout at its next wake-up, when its timers run before it
	 * reads the refutations waiting in its socket. Lifeguard's suspicion starts at 6 × 4 s
	 * and only shortens with independent confirmations, which a healthy node never gets.
	 * Each level sums three seeds so that no single lucky run decides.
	 */
	static const struct lg_level levels[] = {
		{"one 2-5 s freeze every 20 s", 0.0, 1},
		{"one 2-5 s freeze every 20 s, 10% loss", 0.10, 1},
		{"three 2-5 s freezes 50 ms apart every 20 s, 10% loss", 0.10, 3},
	};
	const size_t nl = sizeof(levels) / sizeof(levels[0]);
	for (size_t k = 0; k < nl; k++) {
		struct lg_result lg = {0}, sw = {0};
		for (uint64_t r = 0; r < 3; r++) {
			lifeguard_run(seed + k * 10 + r, true, &levels[k], &lg);
			lifeguard_run(seed + k * 10 + r, false, &levels[k], &sw);
		}
		sim_note("lifeguard [%s]: Lifeguard %zu false deaths of healthy nodes, frozen node "
			 "declared dead %zu times, %" PRIu64 " suspicions (3 runs)",
			 levels[k].what, lg.healthy_fp, lg.frozen_deaths, lg.suspicions);
		sim_note(
			"lifeguard [%s]: plain SWIM %zu false deaths of healthy nodes, frozen node "
			"declared dead %zu times, %" PRIu64 " suspicions (3 runs)",
			levels[k].what, sw.healthy_fp, sw.frozen_deaths, sw.suspicions);
		sim_ok(lg.healthy_fp == 0, "lifeguard [%s]: no healthy node declared dead (%zu)",
		       levels[k].what, lg.healthy_fp);
		if (k == nl - 1)
			sim_ok(sw.healthy_fp > 0,
			       "lifeguard [%s]: plain SWIM declares healthy nodes dead (%zu)",
			       levels[k].what, sw.healthy_fp);
	}
}

/* ---- e. partitions ---- */

/* Splits 5/5 for split_ms, heals, and returns how long until every view is full again
 * (-1: not within wait_ms). reconnect false: B20's loop off (memberlist's behaviour). */
static int64_t partition_run(uint64_t seed, int64_t split_ms, int64_t wait_ms, bool reconnect)
{
	const size_t n = 10;
	struct sim_cfg cfg = cfg_default(seed, n);
	struct gossip_profile prof;
	gossip_profile_get("lan", &prof);
	if (!reconnect)
		prof.reconnect_interval_ms = INT64_MAX / 4;
	cfg.profile_override = &prof;
	struct sim *s = formed(&cfg);
	if (!s)
		return -2;
	int side[10];
	for (size_t i = 0; i < n; i++)
		side[i] = i >= n / 2;
	sim_partition(s, side);
	sim_run_for(s, split_ms);
	/* Each side should see the other dead by now (views of 5). */
	size_t min_view = n, max_view = 0;
	for (size_t i = 0; i < n; i++) {
		size_t v = 0;
		for (size_t j = 0; j < n; j++)
			v += sim_state(s, (int)i, (int)j) == GOSSIP_ALIVE;
		min_view = v < min_view ? v : min_view;
		max_view = v > max_view ? v : max_view;
	}
	sim_note("partition %.0f s%s: views at heal time %zu..%zu alive", sim_secs(split_ms),
		 reconnect ? "" : " (no reconnect)", min_view, max_view);
	sim_partition(s, NULL);
	int64_t heal = sim_wait_converged(s, NULL, 100, wait_ms);
	sim_note("partition %.0f s%s: %s %.1f s after the heal", sim_secs(split_ms),
		 reconnect ? "" : " (no reconnect)", heal >= 0 ? "all views full" : "still split",
		 sim_secs(heal >= 0 ? heal : wait_ms));
	check_clean(s, "partition");
	sim_free(s);
	return heal;
}

static void scenario_partition(uint64_t seed)
{
	struct gossip_profile p;
	gossip_profile_get("lan", &p);
	/*
	 * Both bounds: the reconnect loop (B20) re-joins a failed member within one reconnect
	 * interval of the heal (each of the 10 nodes has its own phase, so usually much sooner);
	 * one push/pull period covers a reconnect that lands while the far side is dead but not
	 * yet reaped (the exchange then only makes the far side refute, and gossip to the dead
	 * carries it across, or the next round does); 5 s of slack for gossip to spread the
	 * result (GossipInterval 0.2 s, a handful of hops at N=10).
	 */
	int64_t bound = p.reconnect_interval_ms + p.push_pull_interval_ms + 5000;
	int64_t h = partition_run(seed, 15000, 300000, true);
	sim_ok(h >= 0 && h <= bound, "partition 15 s heals within %.0f s (%.1f s)", sim_secs(bound),
	       sim_secs(h));
	h = partition_run(seed + 1, 90000, 300000, true);
	sim_ok(h >= 0 && h <= bound, "partition 90 s heals within %.0f s (%.1f s)", sim_secs(bound),
	       sim_secs(h));
	/* The control: without B20 a partition longer than the reap time stays split, as
	 * GOSSIP.md §3 measured on memberlist (each side has forgotten the other). */
	h = partition_run(seed + 1, 90000, 150000, false);
	sim_ok(h < 0, "partition 90 s without the reconnect loop is still split 150 s later");

	/* A one-way block (n09 hears n00, n00 never hears n09; TCP, which needs both ways, is
	 * cut): n00's direct probes of n09 fail, the indirect ones through the others do not, so
	 * nobody is suspected for long and nobody dies. */
	struct sim_cfg cfg = cfg_default(seed + 2, 10);
	struct sim *s = formed(&cfg);
	if (s) {
		const struct gossip_stats *st = gossip_get_stats(s->nodes[0].g);
		uint64_t ind0 = st->indirect_probes;
		sim_set_block(s, 9, 0, true);
		sim_run_for(s, 120000);
		sim_note("one-way block n09 -> n00 for 120 s: n00 sent %" PRIu64
			 " indirect probes, %zu leave events",
			 st->indirect_probes - ind0, s->nleaves);
		sim_ok(st->indirect_probes > ind0 && s->nleaves == 0,
		       "one-way block: probes go indirect, nobody is declared dead (%zu)",
		       s->nleaves);
		sim_set_block(s, 9, 0, false);
		sim_ok(sim_wait_converged(s, NULL, 100, 30000) >= 0, "views full after the block");
		check_clean(s, "one-way block");
		sim_free(s);
	}
}

/* ---- f. dissemination ---- */

struct dis {
	const uint8_t *want;
	size_t len;
	int64_t *got; /* per node: time the payload arrived, -1 not yet */
	unsigned dups;
	const char *relay_key; /* non-NULL: re-broadcast on first receipt, as Serf does */
};

static void dis_event(struct sim *s, int node, const struct gossip_out *o, void *ud)
{
	struct dis *d = ud;
	if (o->type != GOSSIP_OUT_EVENT || o->event != GOSSIP_EV_USER || !d->want)
		return;
	if (o->len != d->len || memcmp(o->data, d->want, d->len) != 0)
		return;
	if (d->got[node] >= 0) {
		d->dups++;
		return;
	}
	d->got[node] = s->now_ms;
	/* The application's relay. o->data stays valid through this call (gossip_broadcast
	 * copies it and emits no output). */
	if (d->relay_key && gossip_broadcast(s->nodes[node].g, d->relay_key, o->data, o->len) < 0)
		s->errors++;
}

/* Broadcasts payload from node `from`; returns how many others got it within 30 s and the
 * time the last of them did. */
static size_t dis_broadcast(struct sim *s, struct dis *d, int from, const char *key,
			    const uint8_t *payload, size_t len, int64_t *ret_last)
{
	for (size_t i = 0; i < s->n; i++)
		d->got[i] = -1;
	d->want = payload;
	d->len = len;
	d->dups = 0;
	d->got[from] = s->now_ms; /* the sender has it (and would not relay its own) */
	int64_t t0 = s->now_ms, last = -1;
	size_t reached = 0;
	if (sim_broadcast(s, from, key, payload, len) < 0)
		return 0;
	while (s->now_ms - t0 < 30000 && reached < s->n - 1) {
		sim_run_for(s, 10);
		reached = 0;
		for (size_t i = 0; i < s->n; i++)
			if ((int)i != from && d->got[i] >= 0) {
				reached++;
				last = d->got[i] - t0 > last ? d->got[i] - t0 : last;
			}
	}
	*ret_last = last;
	return reached;
}

static void scenario_dissemination(uint64_t seed)
{
	const size_t n = 50;
	struct sim_cfg cfg = cfg_default(seed, n);
	struct sim *s = formed(&cfg);
	if (!s)
		return;
	sim_run_for(s, 10000);
	struct dis d = {.got = xmalloc(n * sizeof(int64_t))};
	s->on_event = dis_event;
	s->ud = &d;
	int64_t last;

	/*
	 * As in memberlist, gossip sends an application broadcast only from the node that
	 * queued it, RetransmitMult × ceil(log10(N + 1)) times (B13): receivers hand it to the
	 * application and do not pass it on. That reaches at most that many nodes.
	 */
	static const uint8_t bc1[] = "entry 41 refreshed by n07";
	uint32_t limit = bcast_retransmit_limit(s->prof.retransmit_mult, n);
	size_t reached = dis_broadcast(s, &d, 7, "entry41", bc1, sizeof(bc1), &last);
	sim_note("dissemination N=%zu, no relay: broadcast reached %zu/%zu nodes (limit %u "
		 "transmissions)",
		 n, reached, n - 1, limit);
	/* No loss: every transmission is one delivery, to a random node (sometimes twice the
	 * same: memberlist does not deduplicate either). */
	sim_ok(reached + d.dups == limit,
	       "without relay a broadcast is delivered once per transmission: %zu nodes + %u "
	       "repeats = %u",
	       reached, d.dups, limit);
	sim_ok(gossip_pending_broadcasts(s->nodes[7].g) == 0,
	       "the broadcast retires after its limit");

	/* With the application relaying what it has not seen yet (Serf's user events; what
	 * node/cluster.c must do for cluster-wide news), it is an epidemic. */
	static const uint8_t bc2[] = "entry 42 refreshed by n07";
	d.relay_key = "entry42";
	reached = dis_broadcast(s, &d, 7, "entry42", bc2, sizeof(bc2), &last);
	d.relay_key = NULL;
	sim_note("dissemination N=%zu, relayed: broadcast reached %zu/%zu nodes in %.2f s", n,
		 reached, n - 1, sim_secs(last));
	sim_ok(reached == n - 1 && last <= 2000,
	       "relayed, a broadcast reaches all %zu others within 2 s (%.2f s)", n - 1,
	       sim_secs(last));
	sim_run_for(s, 10000);
	size_t pending = 0;
	for (size_t i = 0; i < n; i++)
		pending += gossip_pending_broadcasts(s->nodes[i].g);
	sim_ok(pending == 0, "and every copy retires (%zu pending)", pending);

	/* Reliable (TCP) and best-effort (UDP) user messages to one node. */
	static const uint8_t rel[] = "reliable hello from n03";
	static const uint8_t be[] = "best-effort hello from n03";
	for (size_t i = 0; i < n; i++)
		d.got[i] = -1;
	d.want = rel;
	d.len = sizeof(rel);
	d.dups = 0;
	int64_t t0 = s->now_ms;
	sim_ok(sim_send_user(s, 3, 40, rel, sizeof(rel), true) == 0, "reliable user message sent");
	sim_run_for(s, 2000);
	sim_note("dissemination: reliable user message arrived after %.3f s",
		 d.got[40] >= 0 ? sim_secs(d.got[40] - t0) : -1.0);
	sim_ok(d.got[40] >= 0, "reliable user message delivered to n40");
	sim_ok(d.dups == 0, "delivered once");
	for (size_t i = 0; i < n; i++)
		d.got[i] = -1;
	d.want = be;
	d.len = sizeof(be);
	t0 = s->now_ms;
	sim_ok(sim_send_user(s, 3, 40, be, sizeof(be), false) == 0,
	       "best-effort user message sent");
	sim_run_for(s, 2000);
	sim_note("dissemination: best-effort user message arrived after %.3f s",
		 d.got[40] >= 0 ? sim_secs(d.got[40] - t0) : -1.0);
	sim_ok(d.got[40] >= 0, "best-effort user message delivered to n40");
	size_t others = 0;
	for (size_t i = 0; i < n; i++)
		others += i != 40 && d.got[i] >= 0;
	sim_ok(others == 0, "and to nobody else (%zu)", others);

	/* A large reliable message (several packets' worth) goes whole over TCP. */
	size_t big_len = 200000;
	uint8_t *big = xmalloc(big_len);
	for (size_t i = 0; i < big_len; i++)
		big[i] = (uint8_t)(i * 7 + i / 251);
	for (size_t i = 0; i < n; i++)
		d.got[i] = -1;
	d.want = big;
	d.len = big_len;
	sim_ok(sim_send_user(s, 3, 41, big, big_len, true) == 0, "200 kB reliable message sent");
	sim_ok(sim_send_user(s, 3, 41, big, big_len, false) == -EMSGSIZE,
	       "200 kB best-effort message refused (-EMSGSIZE)");
	sim_run_for(s, 2000);
	sim_ok(d.got[41] >= 0, "200 kB reliable message delivered intact");
	free(big);
	d.want = NULL;
	check_clean(s, "dissemination");
	s->on_event = NULL;
	free(d.got);
	sim_free(s);
}

/* ---- g. encryption ---- */

static void scenario_encryption(uint64_t seed)
{
	static const uint8_t key[16] = "0123456789abcdef";
	static const uint8_t other[16] = "fedcba9876543210";
	const size_t n = 6;
	struct sim_cfg cfg = cfg_default(seed, n);
	cfg.key = key;
	cfg.key_len = sizeof(key);
	cfg.odd_key = other;
	cfg.odd_node = 5;
	struct sim *s = sim_new(&cfg);
	int joined = 0;
	for (int i = 1; i < 5; i++)
		joined += sim_join(s, i, 0, 5000) > 0;
	bool skip[6] = {[5] = true};
	int64_t conv = sim_wait_converged(s, skip, 100, 60000);
	sim_ok(joined == 4 && conv >= 0, "encrypted 5-node cluster forms (%d joins, %.1f s)",
	       joined, sim_secs(conv));
	int r = sim_join(s, 5, 0, 15000);
	sim_ok(r == 0, "a node with another key cannot join (JOIN_DONE count %d)", r);
	sim_run_for(s, 5000);
	bool knows = false;
	for (int i = 0; i < 5; i++)
		knows |= sim_state(s, i, 5) >= 0;
	sim_ok(!knows, "nobody in the cluster learnt of the odd node");
	uint64_t dropped = gossip_get_stats(s->nodes[0].g)->packets_dropped;
	sim_ok(dropped > 0, "n00 dropped what it could not decrypt (%" PRIu64 ")", dropped);

	/* A minute at 20 % loss: indirect probes and encrypted TCP pings keep everyone alive. */
	uint64_t tcp_ok = 0;
	sim_set_loss(s, 0.20);
	sim_run_for(s, 60000);
	sim_set_loss(s, 0);
	for (int i = 0; i < 5; i++)
		tcp_ok += gossip_get_stats(s->nodes[i].g)->tcp_probes_ok;
	sim_note("encryption: 60 s at 20%% loss, %" PRIu64
		 " probes rescued by TCP pings, %zu leave "
		 "events",
		 tcp_ok, s->nleaves);
	sim_ok(s->nleaves == 0 && tcp_ok > 0, "encrypted under loss: TCP pings work, nobody dies");

	/* A death is detected over encrypted packets. */
	size_t mark = s->nleaves;
	int64_t t0 = s->now_ms;
	sim_kill(s, 4);
	int64_t all = -1;
	while (s->now_ms - t0 < 60000 && all < 0) {
		sim_run_for(s, 10);
		int seen = 0;
		for (size_t i = mark; i < s->nleaves; i++)
			seen += s->leaves[i].subject == 4 && s->leaves[i].observer < 4;
		if (seen >= 4)
			all = s->now_ms - t0;
	}
	sim_note("encryption: death of n04 known to all 4 peers after %.2f s", sim_secs(all));
	sim_ok(all >= 0, "encrypted cluster detects a death (%.2f s)", sim_secs(all));
	sim_ok(false_leaves(s, mark, NULL, -1) == 4, "and nothing else died");
	check_clean(s, "encryption");
	sim_free(s);
}

/* ---- h. graceful leave ---- */

static void scenario_leave(uint64_t seed)
{
	const size_t n = 5;
	struct sim_cfg cfg = cfg_default(seed, n);
	struct sim *s = formed(&cfg);
	if (!s)
		return;
	sim_run_for(s, 3000);
	size_t mark = s->nleaves;
	int64_t t0 = s->now_ms;
	uint64_t susp0 = 0;
	for (size_t i = 0; i < n; i++)
		susp0 += s->nodes[i].suspects;
	sim_leave_node(s, 2, 5000);
	while (s->nodes[2].leave_done == 0 && s->now_ms - t0 < 10000)
		sim_run_for(s, 10);
	sim_note("leave: LEAVE_DONE after %.2f s", sim_secs(s->now_ms - t0));
	sim_ok(s->nodes[2].leave_done == 1, "LEAVE_DONE arrives (%d)", s->nodes[2].leave_done);
	sim_ok(s->now_ms - t0 < 5000, "before the timeout (%.2f s)", sim_secs(s->now_ms - t0));
	sim_kill(s, 2); /* the process exits after its leave */
	sim_run_for(s, 15000);
	bool all_left = true;
	for (int i = 0; i < (int)n; i++)
		if (i != 2)
			all_left &= sim_state(s, i, 2) == GOSSIP_LEFT;
	sim_ok(all_left, "every other node sees n02 as left (not dead)");
	size_t left_ev = 0, other_ev = 0;
	for (size_t i = mark; i < s->nleaves; i++) {
		const struct sim_leave *l = &s->leaves[i];
		if (l->observer == 2)
			continue;
		if (l->subject == 2 && l->state == GOSSIP_LEFT)
			left_ev++;
		else
			other_ev++;
	}
	sim_ok(left_ev == n - 1 && other_ev == 0,
	       "one leave event with state LEFT per peer (%zu), nothing else (%zu)", left_ev,
	       other_ev);
	uint64_t susp = 0;
	for (size_t i = 0; i < n; i++)
		susp += s->nodes[i].suspects;
	sim_ok(susp == susp0, "a node that left is never suspected (%" PRIu64 ")", susp - susp0);
	check_clean(s, "leave");
	sim_free(s);
}

/* ---- restarts and metadata ---- */

struct meta_seen {
	int subject;
	size_t updates;
};

static void meta_event(struct sim *s, int node, const struct gossip_out *o, void *ud)
{
	struct meta_seen *m = ud;
	if (o->type == GOSSIP_OUT_EVENT && o->event == GOSSIP_EV_UPDATE &&
	    sim_index(s, o->name) == m->subject)
		m->updates++;
}

/* Waits until every other node has a leave event about `victim` after log index `mark`. */
static int64_t wait_all_leave(struct sim *s, size_t mark, int victim, int64_t timeout_ms)
{
	int64_t t0 = s->now_ms;
	for (;;) {
		size_t seen = 0;
		for (size_t i = 0; i < s->n; i++) {
			bool any = false;
			for (size_t k = mark; k < s->nleaves && !any; k++)
				any = s->leaves[k].observer == (int)i &&
				      s->leaves[k].subject == victim;
			seen += any;
		}
		if (seen >= s->n - 1)
			return s->now_ms - t0;
		if (s->now_ms - t0 >= timeout_ms)
			return -1;
		sim_run_for(s, 10);
	}
}

static void scenario_restart(uint64_t seed)
{
	const size_t n = 5;
	struct sim_cfg cfg = cfg_default(seed, n);
	cfg.compress = false; /* one scenario without compression */
	struct sim *s = formed(&cfg);
	if (!s)
		return;
	sim_run_for(s, 3000);

	/* New metadata travels as a new incarnation; everyone emits one update. */
	struct meta_seen ms = {.subject = 1};
	s->on_event = meta_event;
	s->ud = &ms;
	static const uint8_t meta[] = "role=fetcher";
	sim_ok(gossip_set_meta(s->nodes[1].g, meta, sizeof(meta)) == 0, "n01 sets its metadata");
	sim_run_for(s, 3000);
	s->on_event = NULL;
	size_t have = 0;
	for (size_t i = 0; i < n; i++) {
		const struct gossip_member *m = gossip_member_find(s->nodes[i].g, "n01");
		have += m && m->meta_len == sizeof(meta) &&
			memcmp(m->meta, meta, sizeof(meta)) == 0;
	}
	sim_ok(have == n && ms.updates == n - 1,
	       "every node has n01's metadata (%zu/%zu), one update event per peer (%zu)", have, n,
	       ms.updates);

	/* A crashed node that comes back with a fresh incarnation 1 refutes its death. */
	size_t mark = s->nleaves;
	sim_kill(s, 3);
	int64_t dead = wait_all_leave(s, mark, 3, 60000);
	sim_ok(dead >= 0, "n03's crash is noticed (%.1f s)", sim_secs(dead));
	sim_restart(s, 3);
	int r = sim_join(s, 3, 0, 5000);
	int64_t conv = sim_wait_converged(s, NULL, 100, 60000);
	sim_note("restart: crashed n03 rejoined, views full %.1f s later, incarnation %u",
		 sim_secs(conv), gossip_self(s->nodes[3].g)->incarnation);
	sim_ok(r == 1 && conv >= 0, "a crashed node restarts and rejoins (join %d, %.1f s)", r,
	       sim_secs(conv));
	sim_ok(gossip_self(s->nodes[3].g)->incarnation > 1,
	       "it refuted its death with a newer incarnation");

	/* A node that left comes back the same way. */
	mark = s->nleaves;
	sim_leave_node(s, 4, 5000);
	while (s->nodes[4].leave_done == 0)
		sim_run_for(s, 10);
	sim_kill(s, 4);
	int64_t left = wait_all_leave(s, mark, 4, 10000);
	sim_ok(left >= 0, "n04's leave is known everywhere (%.1f s)", sim_secs(left));
	sim_restart(s, 4);
	r = sim_join(s, 4, 0, 5000);
	conv = sim_wait_converged(s, NULL, 100, 60000);
	sim_ok(r == 1 && conv >= 0, "a node that left rejoins (join %d, %.1f s)", r,
	       sim_secs(conv));
	sim_run_for(s, 30000);
	sim_ok(sim_converged(s, NULL), "and the views stay full");
	/* Only the crash and the leave were ever reported. */
	size_t other = 0;
	for (size_t k = 0; k < s->nleaves; k++)
		other += s->leaves[k].subject != 3 && s->leaves[k].subject != 4;
	sim_ok(other == 0, "no other node was declared dead (%zu)", other);
	check_clean(s, "restart");
	sim_free(s);
}

/* ---- main ---- */

int main(int argc, char **argv)
{
	if (argc != 2 && argc != 3) {
		fprintf(stderr,
			"usage: %s load|loss N|detect|lifeguard|partition|dissemination|"
			"encryption|leave|restart\n",
			argv[0]);
		return 2;
	}
	const char *sc = argv[1];
	uint64_t seed = sim_seed(0x5eed0000u + (uint64_t)strlen(sc) * 7919u +
				 (argc == 3 ? (uint64_t)atoi(argv[2]) : 0));
	if (sim_quick())
		sim_note("SIM_QUICK: long soaks shortened to a quarter");
	if (strcmp(sc, "load") == 0)
		scenario_load(seed);
	else if (strcmp(sc, "loss") == 0 && argc == 3)
		scenario_loss(seed, (size_t)atoi(argv[2]));
	else if (strcmp(sc, "detect") == 0)
		scenario_detect(seed);
	else if (strcmp(sc, "lifeguard") == 0)
		scenario_lifeguard(seed);
	else if (strcmp(sc, "partition") == 0)
		scenario_partition(seed);
	else if (strcmp(sc, "dissemination") == 0)
		scenario_dissemination(seed);
	else if (strcmp(sc, "encryption") == 0)
		scenario_encryption(seed);
	else if (strcmp(sc, "leave") == 0)
		scenario_leave(seed);
	else if (strcmp(sc, "restart") == 0)
		scenario_restart(seed);
	else {
		fprintf(stderr, "unknown scenario %s\n", sc);
		return 2;
	}
	return sim_tap_end();
}
