/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Prometheus metrics (text exposition format 0.0.4) and the JSON admin views. Counters live in
 * struct metrics and are bumped where events happen; gauges are computed when scraped.
 */
#include <stdio.h>
#include <string.h>

#include "node/fetch.h"
#include "node/inventory.h"
#include "node/cluster.h"
#include "node/node.h"
#include "node/server.h"
#include "node/store.h"
#include "proto/mem.h"

static const char *const req_names[REQ_RESULT_COUNT] = {
	[REQ_HIT] = "hit",
	[REQ_NOT_MODIFIED] = "not_modified",
	[REQ_UNAUTHORIZED] = "unauthorized",
	[REQ_MALFORMED] = "malformed",
	[REQ_UNAVAILABLE] = "unavailable",
	[REQ_ERROR] = "error",
};

static const char *const outcome_names[FETCH_OUTCOME_COUNT] = {
	[FETCH_OK] = "ok",
	[FETCH_UNCHANGED] = "unchanged",
	[FETCH_INVALID] = "invalid",
	[FETCH_HTTP_ERROR] = "http_error",
	[FETCH_NETWORK_ERROR] = "network_error",
};

struct upstream_stats *metrics_upstream(struct metrics *m, const char *url)
{
	for (size_t i = 0; i < m->n_upstreams; i++)
		if (strcmp(m->upstreams[i].url, url) == 0)
			return &m->upstreams[i];
	/* Origins named by requests are not ours to count without bound: past the cap they share
	 * one "(other)" record (which never trips the circuit breaker). */
	if (m->n_upstreams >= METRICS_UPSTREAMS_MAX) {
		if (!m->other.url)
			m->other.url = xstrdup("(other)");
		return &m->other;
	}
	m->upstreams =
		xgrow(m->upstreams, &m->cap_upstreams, m->n_upstreams + 1, sizeof(*m->upstreams));
	struct upstream_stats *u = &m->upstreams[m->n_upstreams++];
	memset(u, 0, sizeof(*u));
	u->url = xstrdup(url);
	return u;
}

void metrics_done(struct metrics *m)
{
	for (size_t i = 0; i < m->n_upstreams; i++)
		free(m->upstreams[i].url);
	free(m->upstreams);
	free(m->other.url);
	memset(m, 0, sizeof(*m));
}

/* Label values escape backslash, quote and newline (exposition format). */
void metrics_label_value(struct buf *out, const char *s)
{
	for (; *s; s++) {
		if (*s == '\\' || *s == '"')
			buf_append_byte(out, '\\');
		if (*s == '\n') {
			buf_append_str(out, "\\n");
			continue;
		}
		buf_append_byte(out, (uint8_t)*s);
	}
}

static void family(struct buf *out, const char *name, const char *type, const char *help)
{
	buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

void metrics_render(struct node *n, struct buf *out)
{
	int64_t now = node_now_unix();
	struct cache_stats cs;
	cache_stats(n->cache, now, &cs);
	struct metrics *m = &n->m;

	family(out, "stapled_entries", "gauge", "Certificates with a cache entry.");
	buf_printf(out, "stapled_entries %zu\n", cs.entries);
	family(out, "stapled_responses_servable", "gauge",
	       "Cached responses that can be served now (nextUpdate in the future).");
	buf_printf(out, "stapled_responses_servable %zu\n", cs.servable);
	family(out, "stapled_responses", "gauge", "Cached responses, servable or not.");
	buf_printf(out, "stapled_responses %zu\n", cs.responses);
	family(out, "stapled_cache_bytes", "gauge", "Bytes accounted by the cache.");
	buf_printf(out, "stapled_cache_bytes %zu\n", cs.bytes);
	family(out, "stapled_issuers", "gauge", "Issuers known to the cache.");
	buf_printf(out, "stapled_issuers %zu\n", cs.issuers);
	family(out, "stapled_inventory_certificates", "gauge",
	       "Leaf certificates found in the configured sources.");
	buf_printf(out, "stapled_inventory_certificates %zu\n", inventory_leaves(n->inv));

	family(out, "stapled_seconds_to_earliest_next_update", "gauge",
	       "Seconds until the first servable response expires (absent when none).");
	if (cs.earliest_next_update != INT64_MAX)
		buf_printf(out, "stapled_seconds_to_earliest_next_update %lld\n",
			   (long long)(cs.earliest_next_update - now));

	family(out, "stapled_alert_responses", "gauge",
	       "Responses by alert level (1-3: validity left under the thresholds with the "
	       "refresh overdue; 4: expired).");
	for (int l = 1; l <= 4; l++)
		buf_printf(out, "stapled_alert_responses{level=\"%d\"} %zu\n", l, cs.alerts[l]);

	family(out, "stapled_requests_total", "counter", "OCSP requests answered, by result.");
	for (int i = 0; i < REQ_RESULT_COUNT; i++)
		buf_printf(out, "stapled_requests_total{result=\"%s\"} %llu\n", req_names[i],
			   (unsigned long long)m->requests[i]);

	family(out, "stapled_upstream_fetches_total", "counter",
	       "Upstream OCSP fetches, by upstream and outcome.");
	for (size_t u = 0; u <= m->n_upstreams; u++) {
		const struct upstream_stats *us = u < m->n_upstreams ? &m->upstreams[u] : &m->other;
		if (!us->url)
			continue;
		for (int o = 0; o < FETCH_OUTCOME_COUNT; o++) {
			buf_append_str(out, "stapled_upstream_fetches_total{upstream=\"");
			metrics_label_value(out, us->url);
			buf_printf(out, "\",result=\"%s\"} %llu\n", outcome_names[o],
				   (unsigned long long)us->outcomes[o]);
		}
	}
	family(out, "stapled_upstream_set_aside", "gauge",
	       "1 while an upstream is set aside after failing repeatedly (circuit breaker).");
	for (size_t u = 0; u < m->n_upstreams; u++) {
		buf_append_str(out, "stapled_upstream_set_aside{upstream=\"");
		metrics_label_value(out, m->upstreams[u].url);
		buf_printf(out, "\"} %d\n", m->upstreams[u].set_aside_until > now ? 1 : 0);
	}
	family(out, "stapled_upstream_fetches_in_flight", "gauge", "Upstream fetches running.");
	buf_printf(out, "stapled_upstream_fetches_in_flight %zu\n", n->fetches_active);

	struct store_stats ss;
	store_get_stats(n->store, &ss);
	family(out, "stapled_store_writes_total", "counter",
	       "Atomic file writes (cache directory and output files), by result.");
	buf_printf(out, "stapled_store_writes_total{result=\"ok\"} %llu\n",
		   (unsigned long long)ss.writes_ok);
	buf_printf(out, "stapled_store_writes_total{result=\"error\"} %llu\n",
		   (unsigned long long)ss.writes_failed);
	buf_printf(out, "stapled_store_writes_total{result=\"unchanged\"} %llu\n",
		   (unsigned long long)ss.writes_unchanged);
	family(out, "stapled_store_loaded_total", "counter",
	       "Responses loaded from the cache directory at start, by result.");
	buf_printf(out, "stapled_store_loaded_total{result=\"ok\"} %llu\n",
		   (unsigned long long)m->disk_loaded);
	buf_printf(out, "stapled_store_loaded_total{result=\"skipped\"} %llu\n",
		   (unsigned long long)m->disk_skipped);

	family(out, "stapled_alerts_total", "counter", "Alerts raised, by level.");
	for (int l = 1; l <= 4; l++)
		buf_printf(out, "stapled_alerts_total{level=\"%d\"} %llu\n", l,
			   (unsigned long long)m->alerts[l - 1]);
	family(out, "stapled_connections_active", "gauge",
	       "Open client connections, by listener (the scrape's own included).");
	buf_printf(out, "stapled_connections_active{listener=\"ocsp\"} %zu\n",
		   server_connections_kind(n->server, LISTENER_OCSP));
	buf_printf(out, "stapled_connections_active{listener=\"admin\"} %zu\n",
		   server_connections_kind(n->server, LISTENER_ADMIN));
	family(out, "stapled_connections_limit", "gauge",
	       "Client connections served at once, by listener: limits.max_connections, or less "
	       "when the descriptor limit leaves no room for it.");
	buf_printf(out, "stapled_connections_limit{listener=\"ocsp\"} %zu\n", n->conn_budget);
	buf_printf(out, "stapled_connections_limit{listener=\"admin\"} %d\n",
		   SERVER_ADMIN_MAX_CONNECTIONS);
	family(out, "stapled_connections_refused_total", "counter",
	       "Client connections accepted and closed at once because the listener's limit was "
	       "reached, by listener.");
	buf_printf(out, "stapled_connections_refused_total{listener=\"ocsp\"} %llu\n",
		   (unsigned long long)server_refused_kind(n->server, LISTENER_OCSP));
	buf_printf(out, "stapled_connections_refused_total{listener=\"admin\"} %llu\n",
		   (unsigned long long)server_refused_kind(n->server, LISTENER_ADMIN));
	family(out, "stapled_http_requests_total", "counter",
	       "HTTP requests handled, by protocol.");
	static const char *const protos[] = {"http/1.0", "http/1.1", "h2"};
	for (int p = 0; p < SERVER_PROTO_COUNT; p++)
		buf_printf(out, "stapled_http_requests_total{protocol=\"%s\"} %llu\n", protos[p],
			   (unsigned long long)server_requests(n->server, p));
	family(out, "stapled_learned_entries", "gauge",
	       "Entries learned from requests (leaf, parent and proxy modes).");
	buf_printf(out, "stapled_learned_entries %zu\n", n->n_learned);
	family(out, "stapled_learn_total", "counter",
	       "Requests for unknown certificates, by what became of them, and expiries.");
	for (int i = 0; i < LEARN_RESULT_COUNT; i++)
		buf_printf(out, "stapled_learn_total{result=\"%s\"} %llu\n", learn_result_names[i],
			   (unsigned long long)n->learn_results[i]);
	family(out, "stapled_proxy_requests_total", "counter",
	       "Forward-proxy (absolute-URI) requests, by result.");
	buf_printf(out, "stapled_proxy_requests_total{result=\"ocsp\"} %llu\n",
		   (unsigned long long)n->proxy_requests);
	buf_printf(out, "stapled_proxy_requests_total{result=\"refused\"} %llu\n",
		   (unsigned long long)n->proxy_refused);
	family(out, "stapled_reloads_total", "counter", "Configuration reloads (SIGHUP).");
	buf_printf(out, "stapled_reloads_total %llu\n", (unsigned long long)m->reloads);
	family(out, "stapled_ready", "gauge", "1 when /readyz answers 200.");
	buf_printf(out, "stapled_ready %d\n", node_is_ready(n) ? 1 : 0);
	cluster_metrics(n, out);
	output_metrics(n, out);
}

/* ---- admin ---- */

void admin_json_str(struct buf *out, const char *s)
{
	buf_append_byte(out, '"');
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch == '"' || ch == '\\')
			buf_printf(out, "\\%c", ch);
		else if (ch < 0x20)
			buf_printf(out, "\\u%04x", ch);
		else
			buf_append_byte(out, ch);
	}
	buf_append_byte(out, '"');
}

struct json_ctx {
	struct node *n;
	struct buf *out;
	bool first;
	int64_t now;
};

static void entry_json(struct cache_entry *e, void *ud)
{
	struct json_ctx *j = ud;
	struct entry_info *ei = cache_entry_user(e);
	if (!ei)
		return;
	struct buf *out = j->out;
	buf_append_str(out, j->first ? "\n  {" : ",\n  {");
	j->first = false;
	size_t sl;
	const uint8_t *serial = cache_entry_serial(e, &sl);
	buf_append_str(out, "\"id\":");
	admin_json_str(out, ei->name);
	buf_append_str(out, ",\"serial\":\"");
	for (size_t i = 0; i < sl; i++)
		buf_printf(out, "%02x", serial[i]);
	buf_append_str(out, "\",\"subject\":");
	admin_json_str(out, ei->cert ? pki_cert_subject(ei->cert) : "");
	buf_printf(out, ",\"must_staple\":%s",
		   cache_entry_flags(e) & CACHE_ENTRY_MUST_STAPLE ? "true" : "false");
	buf_printf(out, ",\"learned\":%s,\"issuer_known\":%s,\"origin\":",
		   ei->learned ? "true" : "false",
		   cache_issuer_cert(cache_entry_issuer(e)) ? "true" : "false");
	const char *origin = learn_origin(j->n, ei);
	if (origin)
		admin_json_str(out, origin);
	else
		buf_append_str(out, "null");
	if (ei->learned)
		buf_printf(out, ",\"last_used\":%lld", (long long)ei->last_used_unix);
	buf_printf(out, ",\"fetches\":%u,\"pulls\":%u", ei->fetches, ei->pulls);
	const char *owner = cluster_owner(j->n, ei);
	if (owner) {
		buf_append_str(out, ",\"owner\":");
		admin_json_str(out, owner);
	}
	const struct cache_resp *r = cache_entry_resp(e, CERTID_SHA1);
	const char *status = "none";
	if (r)
		status = r->meta.next_update_unix <= j->now ? "expired"
							    : ocsp_cert_status_name(r->status);
	buf_printf(out, ",\"status\":\"%s\"", status);
	if (r)
		buf_printf(out,
			   ",\"this_update\":%lld,\"next_update\":%lld,\"refresh_at\":%lld,"
			   "\"stored_at\":%lld",
			   (long long)r->meta.this_update_unix, (long long)r->meta.next_update_unix,
			   (long long)r->refresh_unix, (long long)r->stored_unix);
	buf_printf(out, ",\"failures\":%u,\"alert_level\":%d", cache_slot_failures(e, CERTID_SHA1),
		   cache_alert_level(j->n->cache, e, CERTID_SHA1, j->now));
	buf_append_str(out, ",\"forms\":[");
	bool first = true;
	for (int a = 0; a < CERTID_ALG_COUNT; a++)
		if (cache_entry_resp(e, a)) {
			buf_printf(out, "%s\"%s\"", first ? "" : ",", certid_alg_name(a));
			first = false;
		}
	buf_append_str(out, "],\"upstreams\":[");
	const char *scratch[16];
	const char *const *urls;
	size_t nu = refresher_upstreams(j->n, ei, &urls, scratch, 16);
	for (size_t i = 0; i < nu; i++) {
		if (i)
			buf_append_byte(out, ',');
		admin_json_str(out, urls[i]);
	}
	buf_append_str(out, "]}");
}

void admin_entries_json(struct node *n, struct buf *out)
{
	struct json_ctx j = {.n = n, .out = out, .first = true, .now = node_now_unix()};
	buf_append_str(out, "{\"entries\":[");
	cache_foreach(n->cache, entry_json, &j);
	buf_append_str(out, j.first ? "]}\n" : "\n]}\n");
}

struct refresh_ctx {
	struct node *n;
	int64_t now;
};

static void entry_refresh(struct cache_entry *e, void *ud)
{
	struct refresh_ctx *r = ud;
	struct entry_info *ei = cache_entry_user(e);
	if (!ei)
		return;
	for (int a = 0; a < CERTID_ALG_COUNT; a++) {
		struct slot_state *s = ei->slots[a];
		bool held = cache_entry_resp(e, a) != NULL;
		if ((a == CERTID_SHA1 || held) && !(s && s->inflight))
			cache_slot_schedule(r->n->cache, e, a, r->now);
	}
}

void admin_refresh_all(struct node *n)
{
	struct refresh_ctx r = {.n = n, .now = node_now_unix()};
	cache_foreach(n->cache, entry_refresh, &r);
	refresher_pump(n);
}

struct ready_ctx {
	bool ready;
	int64_t now;
};

static void entry_ready(struct cache_entry *e, void *ud)
{
	struct ready_ctx *r = ud;
	struct entry_info *ei = cache_entry_user(e);
	/* Learned entries come and go with requests: readiness is about the inventory. */
	if (!ei || ei->no_upstream || ei->learned)
		return;
	if (cache_entry_servable(e, CERTID_SHA1, r->now))
		return;
	struct slot_state *s = ei->slots[CERTID_SHA1];
	if (s && s->tried && !s->inflight)
		return; /* definitively failed for now: retried with backoff */
	r->ready = false;
}

bool node_is_ready(struct node *n)
{
	if (n->loading || inventory_pending_issuers(n->inv) > 0)
		return false;
	struct ready_ctx r = {.ready = true, .now = node_now_unix()};
	cache_foreach(n->cache, entry_ready, &r);
	return r.ready;
}
