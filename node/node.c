/* SPDX-License-Identifier: Apache-2.0 */
/*
 * node_run: builds the node, serves until SIGTERM, and tears it down so that every handle is
 * closed before the loop is (uv_loop_close() == 0 is asserted on the way out).
 *
 * Start-up order matters for "a restarted node serves at once, even with the CA down":
 *   1. issuers kept in the cache directory join the issuer pool (no caIssuers refetch);
 *   2. the inventory scan creates the entries;
 *   3. responses in the cache directory are validated again and stored;
 *   4. only then do the listeners open, so the first request already finds them.
 */
#include <dirent.h>
#include <malloc.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "config-build.h"
#include "node/fetch.h"
#include "node/inventory.h"
#include "node/log.h"
#include "node/cluster.h"
#include "node/node.h"
#include "node/notify.h"
#include "node/server.h"
#include "node/store.h"
#include "proto/tls.h"
#include "proto/hmap.h"
#include "proto/mem.h"

#define TICK_MS	 5000
#define DRAIN_MS 5000

int64_t node_now_unix(void)
{
	return (int64_t)time(NULL);
}

uint64_t node_random(struct node *n)
{
	/* xorshift128+: plenty for jitter; seeded from the kernel at start. */
	uint64_t s1 = n->rng[0];
	const uint64_t s0 = n->rng[1];
	n->rng[0] = s0;
	s1 ^= s1 << 23;
	n->rng[1] = s1 ^ s0 ^ (s1 >> 17) ^ (s0 >> 26);
	return n->rng[1] + s0;
}

static void seed_random(struct node *n)
{
	if (getrandom(n->rng, sizeof(n->rng), 0) != (ssize_t)sizeof(n->rng)) {
		n->rng[0] = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
		n->rng[1] = 0x9e3779b97f4a7c15ull;
	}
	if (!n->rng[0] && !n->rng[1])
		n->rng[1] = 1;
}

static void cache_config_from(const struct config *c, struct cache_config *cc)
{
	cache_config_default(cc);
	cc->max_bytes = c->cache_max_bytes;
	cc->refresh_lo = c->refresh_lo;
	cc->refresh_hi = c->refresh_hi;
	cc->min_refresh_interval_s = (int64_t)c->min_refresh_interval_s;
	cc->backoff_base_s = (int64_t)c->backoff_base_s;
	cc->backoff_max_s = (int64_t)c->backoff_max_s;
	memcpy(cc->alert_fraction, c->alert_fraction, sizeof(cc->alert_fraction));
}

static bool str_differs(const char *a, const char *b)
{
	return (a == NULL) != (b == NULL) || (a && strcmp(a, b) != 0);
}

static void apply_config(struct node *n)
{
	log_setup(n->cfg.log_level);
	ocsp_policy_default(&n->policy);
	n->policy.max_skew_s = n->cfg.max_clock_skew_s;
	n->policy.default_validity_s = n->cfg.default_validity_s;
	n->policy.allow_revoked = n->cfg.allow_revoked;
}

/* Every client connection is a descriptor: make room for limits.max_connections by raising the
 * soft descriptor limit towards the hard one, and when that is not enough, serve only as many
 * connections as fit, saying so once, so that extra clients are refused and counted rather than
 * dropped unseen by accept() failing with EMFILE. Sets n->conn_budget. */
static void fd_limit_apply(struct node *n)
{
	size_t want_conns = n->cfg.max_connections;
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
		n->conn_budget = want_conns;
		return;
	}
	uint64_t want = (uint64_t)want_conns + SERVER_FD_RESERVE;
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want) {
		rlim_t to = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > want ? (rlim_t)want
									       : rl.rlim_max;
		if (to > rl.rlim_cur) {
			struct rlimit nl = {.rlim_cur = to, .rlim_max = rl.rlim_max};
			if (setrlimit(RLIMIT_NOFILE, &nl) == 0) {
				log_info("node", "descriptor limit raised from %llu to %llu",
					 (unsigned long long)rl.rlim_cur, (unsigned long long)to);
				rl.rlim_cur = to;
			}
		}
	}
	uint64_t nofile = rl.rlim_cur == RLIM_INFINITY ? UINT64_MAX : (uint64_t)rl.rlim_cur;
	size_t budget = server_connection_budget(nofile, want_conns);
	if (budget < want_conns && budget != n->conn_budget)
		log_warning(
			"node",
			"the descriptor limit (%llu, hard limit %llu) leaves room for %zu client "
			"connections, not limits.max_connections %zu: further clients are "
			"refused; raise LimitNOFILE= (systemd) or ulimit -n",
			(unsigned long long)nofile,
			rl.rlim_max == RLIM_INFINITY ? (unsigned long long)UINT64_MAX
						     : (unsigned long long)rl.rlim_max,
			budget, want_conns);
	n->conn_budget = budget;
}

static void server_limits_from(const struct node *n, struct server_limits *l)
{
	const struct config *c = &n->cfg;
	*l = (struct server_limits){
		.max_connections = n->conn_budget,
		.http = {.max_header_bytes = c->max_header_bytes,
			 .max_body_bytes = c->max_body_bytes,
			 .max_headers = 64},
		.request_timeout_ms = c->request_timeout_ms,
		.idle_timeout_ms = c->idle_timeout_ms,
	};
}

/* ---- start-up loading ---- */

static void load_issuers(struct node *n)
{
	DIR *d = opendir(n->cfg.cache_dir);
	if (!d)
		return;
	struct dirent *de;
	struct buf data = BUF_INIT;
	while ((de = readdir(d))) {
		if (strncmp(de->d_name, "issuer-", 7) != 0)
			continue;
		buf_reset(&data);
		struct pki_cert **certs;
		size_t nc;
		if (store_read(n->store, de->d_name, &data, NULL) == 0 &&
		    pki_certs_parse(data.data, data.len, &certs, &nc) == 0) {
			for (size_t i = 0; i < nc; i++)
				inventory_add_issuer(n->inv, certs[i], false);
			pki_certs_free(certs, nc);
		} else {
			log_warning("store", "%s: not a certificate, ignored", de->d_name);
		}
	}
	buf_done(&data);
	closedir(d);
}

/*
 * Start-up loading of the cache directory. Validating a response costs a signature check and a
 * certificate decode (about half a millisecond), so 100,000 entries would keep the listeners
 * closed for a minute. Instead only the directory listing is read before listening: each file is
 * mapped to the entry its name belongs to and that slot is marked pending. An idle handle then
 * validates files in slices of a few milliseconds between I/O, and a slot that a request or a
 * refresh needs before its turn is loaded on the spot. The refresher leaves pending slots alone,
 * so nothing is fetched that the disk already has.
 */
#define LOAD_SLICE_MS 5

struct load_name {
	char name[192];
	struct cache_entry *e;
};

static const void *load_name_key(const void *v, size_t *len)
{
	const struct load_name *ln = v;
	*len = strlen(ln->name);
	return ln->name;
}

struct collect_ctx {
	struct load_name *v;
	size_t count;
};

static void collect_name(struct cache_entry *e, void *ud)
{
	struct collect_ctx *cc = ud;
	cc->v[cc->count].e = e;
	refresher_file_name(e, CERTID_SHA1, cc->v[cc->count].name, sizeof(cc->v[0].name));
	cc->count++;
}

static void load_one(struct node *n, size_t idx)
{
	struct pending_file *pf = &n->pending[idx];
	if (!pf->name)
		return;
	struct entry_info *ei = pf->hint ? cache_entry_user(pf->hint) : NULL;
	if (ei && ei->slots[CERTID_SHA1])
		ei->slots[CERTID_SHA1]->disk_pending = false;
	struct buf b = BUF_INIT;
	int64_t mtime = node_now_unix();
	int r = store_read(n->store, pf->name, &b, &mtime);
	/* A clock that went backwards must not make a response look received in the future. */
	mtime = MIN(mtime, node_now_unix());
	if (r < 0) {
		log_warning("store", "%s: unreadable, skipped: %s", pf->name, strerror(-r));
		n->m.disk_skipped++;
	} else {
		refresher_load_file(n, pf->name, b.data, b.len, mtime, ei ? pf->hint : NULL);
	}
	buf_done(&b);
	free(pf->name);
	pf->name = NULL;
	n->pending_loaded++;
}

void node_load_pending(struct node *n, struct entry_info *ei, enum certid_alg alg)
{
	struct slot_state *s = ei->slots[alg];
	if (s && s->disk_pending && s->disk_idx < n->n_pending)
		load_one(n, s->disk_idx);
}

static void loading_done(struct node *n)
{
	n->loading = false;
	uv_idle_stop(&n->loader);
	for (size_t i = 0; i < n->n_pending; i++)
		free(n->pending[i].name);
	free(n->pending);
	n->pending = NULL;
	n->n_pending = n->pending_next = 0;
	/* Start-up parsed thousands of certificates and responses, now freed: give the peak back
	 * (glibc keeps freed heap otherwise, and RSS is what operators watch). */
	malloc_trim(0);
	log_info("store", "%s: %llu responses loaded, %llu skipped, in %llu ms", n->cfg.cache_dir,
		 (unsigned long long)n->m.disk_loaded, (unsigned long long)n->m.disk_skipped,
		 (unsigned long long)(uv_now(n->loop) - n->loading_start_ms));
	refresher_pump(n);
}

static void on_load_idle(uv_idle_t *h)
{
	struct node *n = h->data;
	uv_update_time(n->loop);
	uint64_t until = uv_now(n->loop) + LOAD_SLICE_MS;
	while (n->pending_next < n->n_pending) {
		load_one(n, n->pending_next++);
		if ((n->pending_next & 15) == 0) {
			uv_update_time(n->loop);
			if (uv_now(n->loop) >= until)
				return;
		}
	}
	loading_done(n);
}

static void load_responses(struct node *n)
{
	DIR *d = opendir(n->cfg.cache_dir);
	if (!d) {
		log_err("store", "%s: cannot read the cache directory: %s", n->cfg.cache_dir,
			strerror(errno));
		return;
	}
	struct cache_stats cs;
	cache_stats(n->cache, node_now_unix(), &cs);
	struct collect_ctx cc = {.v = xcalloc(cs.entries + 1, sizeof(*cc.v))};
	cache_foreach(n->cache, collect_name, &cc);
	struct hmap names;
	hmap_init(&names, load_name_key);
	for (size_t i = 0; i < cc.count; i++)
		hmap_put(&names, &cc.v[i]);

	size_t cap = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (strncmp(de->d_name, "ocsp-", 5) != 0)
			continue;
		size_t len = strlen(de->d_name);
		if (len < 5 || strcmp(de->d_name + len - 4, ".der") != 0)
			continue;
		n->pending = xgrow(n->pending, &cap, n->n_pending + 1, sizeof(*n->pending));
		struct pending_file *pf = &n->pending[n->n_pending];
		struct load_name *ln = hmap_get(&names, de->d_name, len);
		pf->name = xstrdup(de->d_name);
		pf->hint = ln ? ln->e : NULL;
		struct entry_info *ei = ln ? cache_entry_user(ln->e) : NULL;
		if (ei) {
			struct slot_state *s = entry_slot(ei, CERTID_SHA1);
			s->n = n;
			s->disk_pending = true;
			s->disk_idx = (uint32_t)n->n_pending;
		}
		n->n_pending++;
	}
	closedir(d);
	hmap_done(&names);
	free(cc.v);
	if (n->n_pending == 0)
		return;
	n->loading = true;
	n->loading_start_ms = uv_now(n->loop);
	uv_idle_start(&n->loader, on_load_idle);
	log_info("store", "%s: %zu responses to load", n->cfg.cache_dir, n->n_pending);
}

/* ---- background commands ---- */

/* Commands (alert hooks, output commands) run in the background; they are tracked so that a
 * hung one is killed after HOOK_TIMEOUT_MS and none can keep SIGTERM from finishing. */
#define HOOK_TIMEOUT_MS 60000

struct hook {
	uv_process_t proc;
	struct node *n;
	const char *group; /* static string */
	uint64_t started_ms;
	void (*on_exit)(int64_t status, int sig, void *ud);
	void *ud;
	struct hook *next;
};

static void hook_unlink(struct hook *h)
{
	struct hook **pp = &h->n->hooks;
	while (*pp && *pp != h)
		pp = &(*pp)->next;
	if (*pp)
		*pp = h->next;
}

static void on_hook_closed(uv_handle_t *handle)
{
	free(handle->data);
}

static void on_hook_exit(uv_process_t *p, int64_t status, int sig)
{
	struct hook *h = p->data;
	hook_unlink(h);
	if (h->on_exit)
		h->on_exit(status, sig, h->ud);
	else if (status || sig)
		log_warning(h->group, "command exited with status %lld, signal %d",
			    (long long)status, sig);
	uv_close((uv_handle_t *)p, on_hook_closed);
}

static void hooks_reap(struct node *n, bool all)
{
	uint64_t now = uv_now(n->loop);
	for (struct hook *h = n->hooks; h; h = h->next)
		if (all || now - h->started_ms > HOOK_TIMEOUT_MS) {
			if (!all)
				log_warning(h->group, "command still running after %d s, killed",
					    HOOK_TIMEOUT_MS / 1000);
			uv_process_kill(&h->proc, SIGKILL);
		}
}

struct hook *node_spawn(struct node *n, const char *group, const char *command, char *const *env,
			void (*on_exit)(int64_t status, int sig, void *ud), void *ud)
{
	const char *path = getenv("PATH");
	char pathv[1024];
	char *envv[32];
	size_t ne = 0;

	snprintf(pathv, sizeof(pathv), "PATH=%s", path ? path : "/usr/bin:/bin");
	envv[ne++] = pathv;
	for (size_t i = 0; env && env[i] && ne + 1 < ARRAY_SIZE(envv); i++)
		envv[ne++] = env[i];
	envv[ne] = NULL;
	char *args[] = {"/bin/sh", "-c", (char *)command, NULL};
	uv_process_options_t o = {
		.exit_cb = on_hook_exit, .file = "/bin/sh", .args = args, .env = envv};
	struct hook *h = xcalloc(1, sizeof(*h));
	h->n = n;
	h->group = group;
	h->on_exit = on_exit;
	h->ud = ud;
	h->proc.data = h;
	h->started_ms = uv_now(n->loop);
	int r = uv_spawn(n->loop, &h->proc, &o);
	if (r < 0) {
		log_err(group, "cannot run command: %s", uv_strerror(r));
		uv_close((uv_handle_t *)&h->proc, on_hook_closed);
		return NULL;
	}
	h->next = n->hooks;
	n->hooks = h;
	return h;
}

void node_hook_detach(struct hook *h)
{
	h->on_exit = NULL;
}

/* ---- alerts ---- */

static void run_alert_hook(struct node *n, struct entry_info *ei, int level, int64_t next_update)
{
	if (!n->cfg.alert_command || !n->cfg.alert_command[0])
		return;
	char lv[32], nu[64], id[CERTID_SHORT_MAX + 32], subj[600];
	snprintf(lv, sizeof(lv), "STAPLED_ALERT_LEVEL=%d", level);
	snprintf(nu, sizeof(nu), "STAPLED_NEXT_UPDATE=%lld", (long long)next_update);
	snprintf(id, sizeof(id), "STAPLED_ENTRY=%s", ei->name);
	snprintf(subj, sizeof(subj), "STAPLED_SUBJECT=%s",
		 ei->cert ? pki_cert_subject(ei->cert) : "");
	char *env[] = {lv, nu, id, subj, NULL};
	if (node_spawn(n, "alert", n->cfg.alert_command, env, NULL, NULL))
		n->m.hook_runs++;
}

struct alert_ctx {
	struct node *n;
	int64_t now;
};

static void entry_alerts(struct cache_entry *e, void *ud)
{
	struct alert_ctx *a = ud;
	struct entry_info *ei = cache_entry_user(e);
	if (!ei)
		return;
	for (int alg = 0; alg < CERTID_ALG_COUNT; alg++) {
		const struct cache_resp *r = cache_entry_resp(e, alg);
		if (!r)
			continue;
		struct slot_state *s = entry_slot(ei, alg);
		int level = cache_alert_level(a->n->cache, e, alg, a->now);
		if (level <= s->last_alert) {
			s->last_alert = (uint8_t)level;
			continue;
		}
		s->last_alert = (uint8_t)level;
		a->n->m.alerts[level - 1]++;
		int64_t left = r->meta.next_update_unix - a->now;
		bool must = cache_entry_flags(e) & CACHE_ENTRY_MUST_STAPLE;
		int sev = level >= 4   ? LOG_CRIT
			  : level == 3 ? LOG_ERR
			  : level == 2 ? LOG_WARNING
				       : LOG_NOTICE;
		if (must && sev > LOG_ERR)
			sev--; /* must-staple: no staple means a failed handshake */
		if (level >= 4)
			log_at(sev, "alert", "%s: response EXPIRED (%s), no longer served%s",
			       ei->name, certid_alg_name(alg), must ? "; must-staple!" : "");
		else
			log_at(sev, "alert",
			       "%s: no new response yet, %lld s of validity left (level %d)%s",
			       ei->name, (long long)left, level, must ? "; must-staple" : "");
		run_alert_hook(a->n, ei, level, r->meta.next_update_unix);
	}
}

void entry_info_free(struct node *n, struct entry_info *ei)
{
	learn_unlink(n, ei);
	str_list_clear(&ei->upstreams);
	output_forget(n, ei);
	out_bindings_clear(&ei->outs);
	out_bindings_clear(&ei->outs_next);
	if (ei->cert)
		pki_cert_unref(ei->cert);
	for (int a = 0; a < CERTID_ALG_COUNT; a++) {
		if (ei->slots[a]) {
			free(ei->slots[a]->etag);
			free(ei->slots[a]->url);
			free(ei->slots[a]);
		}
	}
	free(ei->origin);
	free(ei);
}

void node_entry_remove(struct node *n, struct entry_info *ei)
{
	refresher_forget(n, ei);
	/* Still waiting in the start-up loader: its file must not be matched to a freed entry. */
	struct slot_state *s = ei->slots[CERTID_SHA1];
	if (s && s->disk_pending && s->disk_idx < n->n_pending)
		n->pending[s->disk_idx].hint = NULL;
	for (int a = 0; a < CERTID_ALG_COUNT; a++) {
		if (!cache_entry_resp(ei->entry, a) || !n->store_has_dir)
			continue;
		/* An entry left behind by an issuer merge shares its file names with the entry
		 * that lookups find: only that one's files are its own to delete. */
		struct certid id;
		if (cache_entry_certid(ei->entry, a, &id) < 0 ||
		    cache_lookup(n->cache, &id) != ei->entry)
			continue;
		char name[192];
		refresher_file_name(ei->entry, a, name, sizeof(name));
		store_del(n->store, name);
	}
	/* Requests parked on it learn that it is gone. */
	cache_entry_remove(n->cache, ei->entry);
	ei->entry = NULL;
	for (int a = 0; a < CERTID_ALG_COUNT; a++)
		responder_wake(n, ei, a);
	entry_info_free(n, ei);
}

/* ---- service manager notifications (node/notify.c) ---- */

/* The STATUS= line `systemctl status` shows: counts only, so that it rarely changes. */
static void service_status_text(struct node *n, const char *prefix, char *buf, size_t len)
{
	struct cache_stats cs;
	cache_stats(n->cache, node_now_unix(), &cs);
	snprintf(buf, len, "%s%zu certificates, %zu servable responses%s", prefix, cs.entries,
		 cs.servable, n->loading ? "; loading the cache directory" : "");
}

static void on_tick(uv_timer_t *t)
{
	struct node *n = t->data;
	struct alert_ctx a = {.n = n, .now = node_now_unix()};
	hooks_reap(n, false);
	cache_foreach(n->cache, entry_alerts, &a);
	if (n->learned)
		learn_sweep(n, a.now);
	/* The store cannot log (it runs off the loop): report new failures from its counters. */
	struct store_stats ss;
	store_get_stats(n->store, &ss);
	if (ss.writes_failed > n->store_failures_seen) {
		log_err("store",
			"%llu file write(s) failed since the last check (last error: %s); "
			"serving from memory continues",
			(unsigned long long)(ss.writes_failed - n->store_failures_seen),
			strerror(-ss.last_error));
		n->store_failures_seen = ss.writes_failed;
	}
	if (!n->ready && node_is_ready(n)) {
		n->ready = true;
		log_info("node", "ready: every known certificate has a response or has failed");
	}
	if (notify_enabled() && !n->stopping) {
		char st[256];
		service_status_text(n, "", st, sizeof(st));
		notify_status(st);
	}
	/* A clock jump or a slow burst may have left due slots behind the timer. */
	refresher_pump(n);
}

/* ---- signals, reload, shutdown ---- */

static void reload(struct node *n)
{
	struct config fresh;
	char err[512] = "";
	int r = n->load_config(&fresh, n->load_config_ud, err, sizeof(err));
	if (r < 0) {
		log_err("config", "reload failed, keeping the running configuration: %s", err);
		return;
	}
	bool listen_changed =
		fresh.listen.n != n->cfg.listen.n || fresh.admin_listen.n != n->cfg.admin_listen.n;
	for (size_t i = 0; !listen_changed && i < fresh.listen.n; i++)
		listen_changed = strcmp(fresh.listen.v[i], n->cfg.listen.v[i]) != 0;
	for (size_t i = 0; !listen_changed && i < fresh.admin_listen.n; i++)
		listen_changed = strcmp(fresh.admin_listen.v[i], n->cfg.admin_listen.v[i]) != 0;
	bool dir_changed = (fresh.cache_dir == NULL) != (n->cfg.cache_dir == NULL) ||
			   (fresh.cache_dir && strcmp(fresh.cache_dir, n->cfg.cache_dir) != 0);
	if (listen_changed)
		log_warning("config", "listen addresses changed: takes effect on restart");
	/* The fetcher's connections are set up at start (curl handles, TLS trust). */
	if (fresh.connect_timeout_ms != n->cfg.connect_timeout_ms ||
	    fresh.fetch_timeout_ms != n->cfg.fetch_timeout_ms ||
	    fresh.max_response_bytes != n->cfg.max_response_bytes ||
	    str_differs(fresh.proxy, n->cfg.proxy) || str_differs(fresh.ca_file, n->cfg.ca_file))
		log_warning("config", "fetch timeouts, proxy, size cap or CA file changed: take "
				      "effect on restart");
	if (str_differs(fresh.tls_cert, n->cfg.tls_cert) ||
	    str_differs(fresh.tls_key, n->cfg.tls_key))
		log_warning("config", "TLS certificate or key changed: takes effect on restart");
	if (dir_changed)
		log_warning("config", "cache directory changed: takes effect on restart");
	/* Settings bound at start stay; everything else is taken from the new file. */
	struct str_list keep_listen = n->cfg.listen, keep_admin = n->cfg.admin_listen;
	char *keep_dir = n->cfg.cache_dir;
	n->cfg.listen = fresh.listen;
	n->cfg.admin_listen = fresh.admin_listen;
	n->cfg.cache_dir = fresh.cache_dir;
	fresh.listen = keep_listen;
	fresh.admin_listen = keep_admin;
	fresh.cache_dir = keep_dir;
	struct config old = n->cfg;
	n->cfg = fresh;
	bool outputs_changed = !config_outputs_equal(&old, &n->cfg);
	config_done(&old);
	if (outputs_changed)
		output_restart(n);
	apply_config(n);
	struct cache_config cc;
	cache_config_from(&n->cfg, &cc);
	if (cache_set_config(n->cache, &cc) < 0)
		log_err("config", "refresh/cache settings rejected, keeping the previous ones");
	struct server_limits l;
	fd_limit_apply(n);
	server_limits_from(n, &l);
	server_set_limits(n->server, &l);
	inventory_scan(n->inv);
	if (outputs_changed)
		output_publish_all(n);
	cluster_reload(n);
	refresher_pump(n);
	n->m.reloads++;
	log_info("config", "reloaded%s%s", n->cfg.path ? " " : "", n->cfg.path ? n->cfg.path : "");
}

/* A reload as the service manager sees it: RELOADING=1 (systemd >= 253 shows "reloading" until
 * the next READY=1), then READY=1 whether it worked or not: the node serves on either way. */
static void reload_notified(struct node *n)
{
	uint64_t reloads = n->m.reloads;
	notify_reloading();
	reload(n);
	char st[256];
	service_status_text(n, n->m.reloads == reloads ? "reload failed, configuration kept; " : "",
			    st, sizeof(st));
	notify_ready(st);
}

static void node_teardown(struct node *n);

static void on_drain_timer(uv_timer_t *t)
{
	struct node *n = t->data;
	if (server_connections(n->server) > 0 && uv_now(n->loop) < n->drain_start_ms + DRAIN_MS) {
		uv_timer_start(t, on_drain_timer, 100, 0);
		return;
	}
	node_teardown(n);
}

static void begin_stop(struct node *n, const char *why)
{
	if (n->stopping)
		return;
	n->stopping = true;
	log_info("node", "%s: draining connections, then exiting", why);
	notify_stopping("stopping: draining connections");
	server_stop_listening(n->server);
	cluster_stop(n);
	uv_timer_stop(&n->refresh_timer);
	n->drain_start_ms = uv_now(n->loop);
	uv_timer_init(n->loop, &n->drain_timer);
	n->drain_timer.data = n;
	uv_timer_start(&n->drain_timer, on_drain_timer, 0, 0);
}

static void on_signal(uv_signal_t *s, int signum)
{
	struct node *n = s->data;
	if (signum == SIGHUP) {
		if (!n->stopping)
			reload_notified(n);
		return;
	}
	begin_stop(n, signum == SIGTERM ? "SIGTERM" : "SIGINT");
}

static void on_component_closed(void *ud)
{
	(void)ud;
}

static void node_teardown(struct node *n)
{
	n->exit_code = 0;
	/* Hooks still running would keep the loop alive: they die with us. Their exit callbacks
	 * close the handles. */
	output_close(n);
	hooks_reap(n, true);
	notify_close();
	if (n->drain_start_ms)
		uv_close((uv_handle_t *)&n->drain_timer, NULL);
	server_close(n->server, on_component_closed, n);
	n->server = NULL;
	learn_close(n);
	inventory_close(n->inv, on_component_closed, n);
	fetcher_close(n->fetcher, on_component_closed, n);
	store_close(n->store, on_component_closed, n);
	uv_close((uv_handle_t *)&n->refresh_timer, NULL);
	uv_close((uv_handle_t *)&n->tick, NULL);
	uv_close((uv_handle_t *)&n->loader, NULL);
	/* Stopped while still loading: the rest stays on disk for next time. */
	for (size_t i = 0; i < n->n_pending; i++)
		free(n->pending[i].name);
	free(n->pending);
	n->pending = NULL;
	n->n_pending = 0;
	n->loading = false;
	uv_close((uv_handle_t *)&n->sig_hup, NULL);
	uv_close((uv_handle_t *)&n->sig_term, NULL);
	uv_close((uv_handle_t *)&n->sig_int, NULL);
}

static int read_whole(const char *path, struct buf *out)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	for (;;) {
		buf_reserve(out, 16384);
		ssize_t k = read(fd, out->data + out->len, out->cap - out->len - 1);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) {
			int err = k < 0 ? -errno : 0;
			close(fd);
			return err;
		}
		out->len += (size_t)k;
		if (out->len > 1024 * 1024) {
			close(fd);
			return -EFBIG;
		}
	}
}

/* The TLS context of the tls.listen addresses, from the configured PEM files. */
static int open_tls(struct node *n)
{
	struct buf chain = BUF_INIT, key = BUF_INIT;
	int r = read_whole(n->cfg.tls_cert, &chain);
	if (r < 0)
		log_crit("tls", "%s: %s", n->cfg.tls_cert, strerror(-r));
	else if ((r = read_whole(n->cfg.tls_key, &key)) < 0)
		log_crit("tls", "%s: %s", n->cfg.tls_key, strerror(-r));
	if (r == 0) {
		char err[256] = "";
		r = tls_ctx_new(chain.data, chain.len, key.data, key.len, err, sizeof(err),
				&n->tls_ctx);
		if (r < 0)
			log_crit("tls", "%s / %s: %s", n->cfg.tls_cert, n->cfg.tls_key, err);
	}
	/* The key must not linger in freed heap. */
	if (key.data)
		explicit_bzero(key.data, key.cap);
	buf_done(&chain);
	buf_done(&key);
	return r;
}

static int open_store(struct node *n)
{
	if (n->cfg.cache_dir && n->cfg.cache_dir[0]) {
		int r = store_open(n->loop, n->cfg.cache_dir, &n->store);
		if (r == 0) {
			n->store_has_dir = true;
			return 0;
		}
		/* Serving from memory beats not serving: the disk is an optimisation. */
		log_err("store", "%s: cannot use the cache directory: %s; running from memory",
			n->cfg.cache_dir, strerror(-r));
	} else {
		log_info("store",
			 "no cache directory configured: responses are kept in memory only");
	}
	return store_open_outputs_only(n->loop, &n->store);
}

int node_run(const struct node_opts *opts)
{
	struct node *n = xcalloc(1, sizeof(*n));
	char err[512] = "";
	n->load_config = opts->load_config;
	n->load_config_ud = opts->ud;
	if (n->load_config(&n->cfg, n->load_config_ud, err, sizeof(err)) < 0) {
		fprintf(stderr, "stapled: %s\n", err);
		free(n);
		return 1;
	}
	apply_config(n);
	seed_random(n);
	signal(SIGPIPE, SIG_IGN);

	uv_loop_t loop;
	uv_loop_init(&loop);
	n->loop = &loop;
	int rc = 1;

	struct cache_config cc;
	cache_config_from(&n->cfg, &cc);
	cc.hash_seed = node_random(n);
	int r = cache_new(&cc, &n->cache);
	if (r < 0) {
		log_crit("config", "invalid cache settings: %s", strerror(-r));
		goto out_loop;
	}
	struct fetcher_config fc = {
		.connect_timeout_ms = n->cfg.connect_timeout_ms,
		.total_timeout_ms = n->cfg.fetch_timeout_ms,
		.max_response_bytes = n->cfg.max_response_bytes,
		.proxy = n->cfg.proxy && n->cfg.proxy[0] ? n->cfg.proxy : NULL,
		.user_agent = "stapled/" STAPLED_VERSION,
		.ca_file = n->cfg.ca_file,
	};
	r = fetcher_new(n->loop, &fc, &n->fetcher);
	if (r < 0) {
		log_crit("fetch", "cannot initialise libcurl: %s", strerror(-r));
		goto out_cache;
	}
	open_store(n);
	output_start(n);
	inventory_new(n, &n->inv);
	uv_idle_init(n->loop, &n->loader);
	n->loader.data = n;
	uv_timer_init(n->loop, &n->refresh_timer);
	n->refresh_timer.data = n;
	uv_timer_init(n->loop, &n->tick);
	n->tick.data = n;

	if (n->store_has_dir)
		load_issuers(n);
	inventory_scan(n->inv);
	if (n->store_has_dir)
		load_responses(n);
	malloc_trim(0);

	struct server_limits sl;
	fd_limit_apply(n);
	server_limits_from(n, &sl);
	server_new(n->loop, n, &sl, responder_handle_ocsp, responder_handle_admin, &n->server);
	bool listening = true;
	for (size_t i = 0; i < n->cfg.listen.n; i++)
		listening &= server_listen(n->server, n->cfg.listen.v[i], LISTENER_OCSP) == 0;
	for (size_t i = 0; i < n->cfg.admin_listen.n; i++)
		listening &=
			server_listen(n->server, n->cfg.admin_listen.v[i], LISTENER_ADMIN) == 0;
	if (n->cfg.tls_listen.n) {
		listening &= open_tls(n) == 0;
		for (size_t i = 0; listening && i < n->cfg.tls_listen.n; i++)
			listening &= server_listen_tls(n->server, n->cfg.tls_listen.v[i],
						       LISTENER_OCSP, n->tls_ctx) == 0;
	}

	uv_signal_init(n->loop, &n->sig_hup);
	uv_signal_init(n->loop, &n->sig_term);
	uv_signal_init(n->loop, &n->sig_int);
	n->sig_hup.data = n->sig_term.data = n->sig_int.data = n;
	uv_signal_start(&n->sig_hup, on_signal, SIGHUP);
	uv_signal_start(&n->sig_term, on_signal, SIGTERM);
	uv_signal_start(&n->sig_int, on_signal, SIGINT);
	uv_timer_start(&n->tick, on_tick, TICK_MS, TICK_MS);

	if (!listening) {
		log_crit("node", "cannot open every listener, exiting");
		n->stopping = true;
		node_teardown(n);
		uv_run(n->loop, UV_RUN_DEFAULT);
		rc = 1;
		goto out_cache;
	}
	struct cache_stats cs;
	cache_stats(n->cache, node_now_unix(), &cs);
	if (cluster_start(n) < 0) {
		log_crit("node", "cannot start the cluster, exiting");
		n->stopping = true;
		node_teardown(n);
		uv_run(n->loop, UV_RUN_DEFAULT);
		rc = 1;
		goto out_cache;
	}
	log_info("node", "stapled %s started: %zu certificates, %zu servable responses",
		 STAPLED_VERSION, cs.entries, cs.servable);
	/*
	 * Ready for systemd (Type=notify) means "serving": the listeners are open and every
	 * response in the cache directory is servable (a pending file is loaded on demand). Not
	 * "every certificate has a fresh response" (the "ready:" log line, /readyz): a CA that is
	 * down would then fail the start, and restart loops would take down a node that serves
	 * the responses it has. The counts in STATUS= tell how far the fetches are.
	 */
	char st[256];
	notify_start(n->loop);
	service_status_text(n, "", st, sizeof(st));
	notify_ready(st);
	refresher_pump(n);
	uv_run(n->loop, UV_RUN_DEFAULT);
	rc = n->exit_code;
	log_info("node", "stopped");

out_cache:
	cache_free(n->cache);
out_loop:
	r = uv_loop_close(n->loop);
	if (r != 0) {
		/* A handle left open is a bug: make it loud (tests check the exit code). */
		log_err("node", "event loop closed with handles still open");
		uv_print_all_handles(n->loop, stderr);
		rc = 70;
	}
	if (n->tls_ctx)
		tls_ctx_free(n->tls_ctx);
	metrics_done(&n->m);
	config_done(&n->cfg);
	free(n->req_memo);
	free(n);
	return rc;
}
