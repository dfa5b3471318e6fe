/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The refresher: turns the cache's due slots into upstream fetches and their answers into
 * stored, persisted, published responses.
 *
 * Life of a refresh: the refresh timer fires at the cache's next due time; refresher_pump pops
 * due slots while fewer than max_parallel fetches run; each slot has at most one fetch in flight
 * (single-flight: the cache does not hand out a slot again until told how its fetch ended). The
 * fetch tries the entry's upstreams in order — the per-certificate override, else the global
 * override, else the certificate's AIA OCSP URLs — moving to the next one on any failure. An
 * answer is accepted only if it is HTTP 200 with an OCSP content type, passes every check of
 * ocsp_response_check against the issuer and the expected CertID, and is not older than the
 * held response; 304 renews the held one. Then it is stored, written to the cache directory and
 * output files, and parked requests are answered. If every upstream fails, the held response
 * stays untouched and the slot is retried with backoff (or at Retry-After).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "node/fetch.h"
#include "node/log.h"
#include "node/cluster.h"
#include "node/node.h"
#include "node/store.h"
#include "proto/mem.h"
#include "proto/ocsp_http.h"

#define MAX_UPSTREAMS 16

struct slot_state *entry_slot(struct entry_info *ei, enum certid_alg alg)
{
	if (!ei->slots[alg]) {
		struct slot_state *s = xcalloc(1, sizeof(*s));
		s->ei = ei;
		s->alg = (uint8_t)alg;
		ei->slots[alg] = s;
	}
	return ei->slots[alg];
}

static bool url_ok(const char *u)
{
	return strncmp(u, "http://", 7) == 0 || strncmp(u, "https://", 8) == 0;
}

size_t refresher_upstreams(const struct node *n, const struct entry_info *ei,
			   const char *const **ret_urls, const char **scratch, size_t scratch_n)
{
	if (ei->upstreams.n) {
		*ret_urls = (const char *const *)ei->upstreams.v;
		return ei->upstreams.n;
	}
	/* Parents first; the origin (global upstreams, else AIA) only without parents or as a
	 * configured fallback: a sidecar must not fall back to the CA on its own. */
	size_t k = 0;
	for (size_t i = 0; i < n->cfg.parents.n && k < scratch_n; i++)
		scratch[k++] = n->cfg.parents.v[i];
	*ret_urls = scratch;
	if (n->cfg.parents.n && !n->cfg.fallback_to_origin)
		return k;
	if (n->cfg.upstreams.n) {
		for (size_t i = 0; i < n->cfg.upstreams.n && k < scratch_n; i++)
			scratch[k++] = n->cfg.upstreams.v[i];
		return k;
	}
	if (ei->cert) {
		const char *const *aia;
		size_t na = pki_cert_ocsp_urls(ei->cert, &aia);
		for (size_t i = 0; i < na && k < scratch_n; i++)
			if (url_ok(aia[i]))
				scratch[k++] = aia[i];
	} else {
		/* Learned: the origin the request named, else its issuer's, else the default. */
		const char *o = learn_origin(n, ei);
		if (o && k < scratch_n)
			scratch[k++] = o;
	}
	*ret_urls = scratch;
	return k;
}

void refresher_file_name(const struct cache_entry *e, enum certid_alg alg, char *out, size_t len)
{
	struct certid id;
	if (cache_entry_certid(e, alg, &id) < 0) {
		snprintf(out, len, "invalid");
		return;
	}
	size_t o = (size_t)snprintf(out, len, "ocsp-%s-", certid_alg_name(alg));
	for (int i = 0; i < 8 && o + 3 < len; i++)
		o += (size_t)snprintf(out + o, len - o, "%02x", id.key_hash[i]);
	if (o + 1 < len)
		out[o++] = '-';
	for (size_t i = 0; i < id.serial_len && o + 3 < len; i++)
		o += (size_t)snprintf(out + o, len - o, "%02x", id.serial[i]);
	snprintf(out + o, len - o, ".der");
}

static void fmt_time(int64_t t, char out[32])
{
	time_t tt = (time_t)t;
	struct tm tm;
	gmtime_r(&tt, &tm);
	strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void checks_str(uint32_t fails, char *out, size_t len)
{
	size_t o = 0;
	out[0] = 0;
	for (unsigned bit = 1; bit && o + 2 < len; bit <<= 1) {
		if (!(fails & bit))
			continue;
		o += (size_t)snprintf(out + o, len - o, "%s%s", o ? "," : "", ocsp_check_name(bit));
	}
}

/* A new response is in the cache: persist it and hand it to consumers. */
static void publish(struct node *n, struct entry_info *ei, enum certid_alg alg)
{
	const struct cache_resp *r = cache_entry_resp(ei->entry, alg);
	if (!r)
		return;
	if (n->store_has_dir) {
		char name[192];
		refresher_file_name(ei->entry, alg, name, sizeof(name));
		int e = store_put(n->store, name, r->der, r->der_len);
		if (e < 0)
			log_warning("store", "%s: cannot queue write: %s", ei->name, strerror(-e));
	}
	/* Web servers staple SHA-1 CertID responses: outputs follow that slot only. */
	if (alg == CERTID_SHA1)
		output_publish(n, ei, true);
}

static void start_fetch(struct node *n, struct entry_info *ei, enum certid_alg alg, size_t url_idx,
			int64_t retry_after_s);

static bool is_parent(const struct node *n, const char *url)
{
	for (size_t i = 0; i < n->cfg.parents.n; i++)
		if (strcmp(n->cfg.parents.v[i], url) == 0)
			return true;
	return false;
}

/* Upstreams the operator named (parents, fetch.upstreams, a certificate's own): answers from
 * them are trusted as far as the signature goes when the issuer is unknown here, because the
 * node at the top of the tree checked it. An origin named by a request is not trusted at all. */
static bool is_trusted(const struct node *n, const struct entry_info *ei, const char *url)
{
	/* Cluster peers are configured upstreams too: they share our keyring. */
	if (is_parent(n, url) || cluster_is_peer_url(n, url))
		return true;
	for (size_t i = 0; i < n->cfg.upstreams.n; i++)
		if (strcmp(n->cfg.upstreams.v[i], url) == 0)
			return true;
	for (size_t i = 0; i < ei->upstreams.n; i++)
		if (strcmp(ei->upstreams.v[i], url) == 0)
			return true;
	return false;
}

/* Parents and upstreams that keep failing are set aside for a while (circuit breaker):
 * 3 failures in a row rest it 10 s, doubling with each further failure, at most 5 minutes. */
#define BREAKER_THRESHOLD 3
#define BREAKER_BASE_S	  10
#define BREAKER_MAX_S	  300

static void upstream_outcome(struct node *n, struct upstream_stats *us, bool ok)
{
	int64_t now = node_now_unix();
	if (us == &n->m.other)
		return; /* a crowd of request-named origins: no breaker for all of them at once */
	if (ok) {
		if (us->consecutive_failures >= BREAKER_THRESHOLD)
			log_info("fetch", "%s: answering again", us->url);
		us->consecutive_failures = 0;
		us->set_aside_until = 0;
		us->last_ok_unix = now;
		return;
	}
	us->last_fail_unix = now;
	if (++us->consecutive_failures < BREAKER_THRESHOLD)
		return;
	unsigned k = MIN(us->consecutive_failures - BREAKER_THRESHOLD, 5u);
	int64_t rest = MIN((int64_t)BREAKER_BASE_S << k, (int64_t)BREAKER_MAX_S);
	us->set_aside_until = now + rest;
	log_warning("fetch", "%s: %u failures in a row, set aside for %lld s", us->url,
		    us->consecutive_failures, (long long)rest);
}

static void slot_failed(struct node *n, struct entry_info *ei, enum certid_alg alg,
			int64_t retry_after_s)
{
	struct slot_state *s = entry_slot(ei, alg);
	s->tried = true;
	int64_t now = node_now_unix();
	/* Retry-After is honoured but never below the backoff base: "0" or a date in the past (a
	 * clock behind ours) must not turn into a refetch loop. */
	if (retry_after_s >= 0)
		retry_after_s = MAX(retry_after_s, (int64_t)n->cfg.backoff_base_s);
	int64_t when =
		cache_fetch_failed(n->cache, ei->entry, alg, now, retry_after_s, node_random(n));
	char t[32];
	fmt_time(when, t);
	const struct cache_resp *held = cache_entry_servable(ei->entry, alg, now);
	log_warning("fetch", "%s: every upstream failed (%u in a row); %s; retry at %s", ei->name,
		    cache_slot_failures(ei->entry, alg),
		    held ? "keeping the held response" : "nothing to serve", t);
	responder_wake(n, ei, alg);
}

static enum fetch_outcome handle_answer(struct node *n, struct entry_info *ei, enum certid_alg alg,
					const char *url, const struct fetch_result *r)
{
	struct slot_state *s = entry_slot(ei, alg);
	int64_t now = node_now_unix();
	if (r->err) {
		log_warning("fetch", "%s: %s: %s", ei->name, url,
			    r->errmsg[0] ? r->errmsg : strerror(-r->err));
		return FETCH_NETWORK_ERROR;
	}
	const struct cache_resp *held = cache_entry_resp(ei->entry, alg);
	if (r->http_status == 304 && held) {
		struct ocsp_info info = {
			.response_status = 0,
			.cert_status = held->status,
			.produced_at_unix = held->produced_at_unix,
			.this_update_unix = held->meta.this_update_unix,
			.next_update_unix = held->meta.next_update_unix,
			.next_update_present = true,
		};
		int e = cache_store(n->cache, ei->entry, alg, held->der, held->der_len, &info, now,
				    r->max_age_s);
		if (e < 0)
			return FETCH_INVALID;
		log_debug("fetch", "%s: %s: not modified", ei->name, url);
		return FETCH_UNCHANGED;
	}
	if (r->http_status != 200) {
		log_warning("fetch", "%s: %s: HTTP %ld", ei->name, url, r->http_status);
		return FETCH_HTTP_ERROR;
	}
	size_t ctlen = strcspn(r->content_type, "; \t");
	if (ctlen != strlen("application/ocsp-response") ||
	    strncasecmp(r->content_type, "application/ocsp-response", ctlen) != 0) {
		log_warning("fetch", "%s: %s: wrong Content-Type \"%s\"", ei->name, url,
			    r->content_type);
		return FETCH_INVALID;
	}
	struct certid want;
	if (cache_entry_certid(ei->entry, alg, &want) < 0)
		return FETCH_INVALID;
	struct pki_cert *issuer = cache_issuer_cert(cache_entry_issuer(ei->entry));
	bool trusted = is_trusted(n, ei, url);
	if (!issuer && r->stapled_issuer && is_parent(n, url) &&
	    learn_issuer_add(n, &want, r->stapled_issuer, r->stapled_issuer_len, ei->name))
		issuer = cache_issuer_cert(cache_entry_issuer(ei->entry));
	struct ocsp_info info;
	uint32_t fails = 0;
	int e = ocsp_response_check(r->body, r->body_len, issuer, &want, now, &n->policy, &info,
				    &fails);
	/* Without the issuer certificate (an entry learned by CertID only) the signature cannot
	 * be checked here. That is acceptable only from an upstream the operator configured: the
	 * node at the top of the tree checked it. From an origin a request named, never. */
	if (e < 0 && !issuer && fails == OCSP_CHECK_NO_ISSUER) {
		if (trusted) {
			log_debug("fetch", "%s: %s: signature not checked here (issuer unknown)",
				  ei->name, url);
			e = 0;
		} else {
			log_warning("fetch",
				    "%s: %s: cannot check the signature without the issuer "
				    "certificate, refused",
				    ei->name, url);
			return FETCH_INVALID;
		}
	}
	/* "unauthorized", or a signed "unknown": the upstream does not know the certificate, and
	 * neither can we (an unknown status is never served). */
	ei->unauthorized =
		e < 0 && (((fails & OCSP_CHECK_RESPONSE_STATUS) && info.response_status == 6) ||
			  ((fails & OCSP_CHECK_STATUS) && info.cert_status == OCSP_CERT_UNKNOWN));
	if (e < 0) {
		char why[256];
		checks_str(fails, why, sizeof(why));
		if (fails & OCSP_CHECK_RESPONSE_STATUS)
			log_warning("fetch", "%s: %s: answered %s", ei->name, url,
				    ocsp_response_status_name(info.response_status));
		else
			log_warning("fetch", "%s: %s: response rejected: %s", ei->name, url, why);
		return FETCH_INVALID;
	}
	/* A peer that has nothing newer changes nothing: storing the same response again would
	 * redraw its refresh time and keep pushing back the moment a lower rank steps in. */
	if (s->pull && held && info.this_update_unix <= held->meta.this_update_unix) {
		log_debug("fetch", "%s: %s has nothing newer", ei->name, url);
		return FETCH_UNCHANGED;
	}
	e = cache_store(n->cache, ei->entry, alg, r->body, r->body_len, &info, now, r->max_age_s);
	if (e == -ESTALE) {
		log_warning("fetch", "%s: %s: response older than the one held, refused", ei->name,
			    url);
		return FETCH_INVALID;
	}
	if (e == -ENOSPC) {
		log_err("cache", "%s: cache byte limit reached, response not stored", ei->name);
		return FETCH_INVALID;
	}
	if (e < 0) {
		log_warning("cache", "%s: cannot store: %s", ei->name, strerror(-e));
		return FETCH_INVALID;
	}
	free(s->etag);
	s->etag = r->etag[0] ? xstrdup(r->etag) : NULL;
	s->last_alert = 0;
	const struct cache_resp *now_held = cache_entry_resp(ei->entry, alg);
	char tu[32], nu[32], ra[32];
	fmt_time(info.this_update_unix, tu);
	fmt_time(info.next_update_unix, nu);
	fmt_time(now_held ? now_held->refresh_unix : 0, ra);
	/* A verified answer from an origin: other certificates of this issuer can go there. */
	if (ei->learned && !trusted && issuer)
		learn_note_issuer_origin(n, cache_entry_issuer(ei->entry), url);
	if (e == CACHE_STORED) {
		log_info("fetch",
			 "%s: %s from %s (%s): thisUpdate %s, nextUpdate %s, refresh at %s",
			 ei->name, ocsp_cert_status_name(info.cert_status), url,
			 certid_alg_name(alg), tu, nu, ra);
		publish(n, ei, alg);
		/* Fetched from an upstream: the cluster pulls it from us. From a peer: the
		 * holder announced it already. */
		if (!s->pull)
			cluster_announce(n, ei, alg);
		return FETCH_OK;
	}
	log_debug("fetch", "%s: unchanged from %s, refresh at %s", ei->name, url, ra);
	return FETCH_UNCHANGED;
}

static void on_fetched(struct fetch *f, const struct fetch_result *r, void *ud)
{
	struct slot_state *s = ud;
	struct node *n = s->n;
	struct entry_info *ei = s->ei;
	enum certid_alg alg = s->alg;
	(void)f;
	s->inflight = NULL;
	n->fetches_active--;
	if (s->learned_fetch)
		n->fetches_learned--;
	s->learned_fetch = false;

	const char *scratch[MAX_UPSTREAMS];
	const char *const *urls;
	size_t nu = refresher_upstreams(n, ei, &urls, scratch, MAX_UPSTREAMS);
	char *url = s->url; /* what was asked, even if the list changed since */
	s->url = NULL;
	enum fetch_outcome o = handle_answer(n, ei, alg, url ? url : "(unknown)", r);
	struct upstream_stats *us = metrics_upstream(&n->m, url ? url : "(unknown)");
	free(url);
	us->outcomes[o]++;
	if (s->pull) {
		/* A pull from a peer: whatever happened, the slot keeps its own schedule (the
		 * cache moved it if a newer response was stored). */
		s->pull = false;
		if (o == FETCH_OK || o == FETCH_UNCHANGED) {
			responder_wake(n, ei, alg);
		} else if (s->cluster_forward_until && !cache_entry_resp(ei->entry, alg)) {
			/* Our miss went to the owner and it could not help: the upstreams now,
			 * rather than at the end of the wait. */
			s->cluster_forward_until = 1;
			cache_slot_schedule(n->cache, ei->entry, alg, node_now_unix());
		}
		refresher_pump(n);
		return;
	}
	upstream_outcome(n, us, o == FETCH_OK || o == FETCH_UNCHANGED);
	if (o == FETCH_OK || o == FETCH_UNCHANGED) {
		s->tried = true;
		responder_wake(n, ei, alg);
		refresher_pump(n);
		return;
	}
	if (!n->stopping && s->url_idx + 1 < nu) {
		start_fetch(n, ei, alg, s->url_idx + 1, r->retry_after_s);
		return;
	}
	slot_failed(n, ei, alg, r->err ? -1 : r->retry_after_s);
	refresher_pump(n);
}

static void start_fetch(struct node *n, struct entry_info *ei, enum certid_alg alg, size_t url_idx,
			int64_t retry_after_s)
{
	struct slot_state *s = entry_slot(ei, alg);
	s->n = n;
	const char *scratch[MAX_UPSTREAMS];
	const char *const *urls;
	size_t nu = refresher_upstreams(n, ei, &urls, scratch, MAX_UPSTREAMS);
	ei->no_upstream = nu == 0;
	if (nu == 0) {
		slot_failed(n, ei, alg, -1);
		return;
	}
	struct certid id;
	if (cache_entry_certid(ei->entry, alg, &id) < 0) {
		slot_failed(n, ei, alg, -1);
		return;
	}
	struct buf der = BUF_INIT;
	if (ocsp_request_encode(&id, &der) < 0) {
		buf_done(&der);
		slot_failed(n, ei, alg, -1);
		return;
	}
	int64_t now = node_now_unix();
	/* Circuit breaker: upstreams set aside are skipped while others remain; when every one of
	 * them is set aside, the one whose rest ends first is probed. */
	bool any_ready = false;
	for (size_t i = url_idx; i < nu && !any_ready; i++)
		any_ready = metrics_upstream(&n->m, urls[i])->set_aside_until <= now;
	if (!any_ready && url_idx == 0) {
		size_t best = 0;
		for (size_t i = 1; i < nu; i++)
			if (metrics_upstream(&n->m, urls[i])->set_aside_until <
			    metrics_upstream(&n->m, urls[best])->set_aside_until)
				best = i;
		url_idx = best;
		any_ready = true;
		metrics_upstream(&n->m, urls[best])->set_aside_until = 0; /* the probe */
	}
	/* What a parent needs from us (docs/decisions/0006): where the origin is, how far the
	 * request came, and whether we want the issuer certificate back. */
	char hops[32], origin[1100];
	const char *hdrs[4];
	size_t nh = 0;
	struct buf issuer_hdr = BUF_INIT;
	snprintf(hops, sizeof(hops), "Stapled-Hops: %u", (unsigned)ei->hops + 1);
	hdrs[nh++] = hops;
	const char *o = learn_origin(n, ei);
	if (o && strlen(o) < sizeof(origin) - 20) {
		snprintf(origin, sizeof(origin), "Stapled-Origin: %s", o);
		hdrs[nh++] = origin;
	}
	const struct pki_cert *ic = cache_issuer_cert(cache_entry_issuer(ei->entry));
	if (!ic) {
		hdrs[nh++] = "Stapled-Want-Issuer: 1";
	} else {
		/* A parent without this CA can then check the signature itself. */
		size_t ilen;
		const uint8_t *ider = pki_cert_der(ic, &ilen);
		if ((ilen + 2) / 3 * 4 <= STAPLED_ISSUER_HEADER_MAX) {
			buf_append_str(&issuer_hdr, "Stapled-Issuer: ");
			ocsp_http_base64_encode(ider, ilen, &issuer_hdr);
			hdrs[nh++] = (const char *)issuer_hdr.data;
		}
	}
	for (; any_ready && url_idx < nu; url_idx++) {
		if (metrics_upstream(&n->m, urls[url_idx])->set_aside_until > now)
			continue;
		bool parent = is_parent(n, urls[url_idx]);
		struct fetch_request req = {
			.url = urls[url_idx],
			.der = der.data,
			.der_len = der.len,
			.if_none_match = cache_entry_resp(ei->entry, alg) ? s->etag : NULL,
			.h2 = parent,
			.headers = parent ? hdrs : NULL,
			.n_headers = parent ? nh : 0,
		};
		int e = fetcher_start(n->fetcher, &req, on_fetched, s, &s->inflight);
		if (e == 0) {
			s->url_idx = (uint32_t)url_idx;
			ei->fetches++;
			free(s->url);
			s->url = xstrdup(urls[url_idx]);
			n->fetches_active++;
			s->learned_fetch = ei->learned;
			if (ei->learned)
				n->fetches_learned++;
			log_debug("fetch", "%s: asking %s (%s)", ei->name, urls[url_idx],
				  certid_alg_name(alg));
			buf_done(&der);
			buf_done(&issuer_hdr);
			return;
		}
		log_warning("fetch", "%s: %s: cannot start: %s", ei->name, urls[url_idx],
			    strerror(-e));
	}
	buf_done(&der);
	buf_done(&issuer_hdr);
	slot_failed(n, ei, alg, retry_after_s);
}

static void on_refresh_timer(uv_timer_t *t)
{
	refresher_pump(t->data);
}

void refresher_pump(struct node *n)
{
	if (n->stopping)
		return;
	int64_t now = node_now_unix();
	while (n->fetches_active < n->cfg.max_parallel_fetches) {
		enum certid_alg alg;
		struct cache_entry *e = cache_due_pop(n->cache, now, &alg);
		if (!e)
			break;
		struct entry_info *ei = cache_entry_user(e);
		if (!ei) {
			/* Not the inventory's (cannot happen yet): park it for a day. */
			cache_slot_schedule(n->cache, e, alg, now + 86400);
			continue;
		}
		/* Entries learned from requests get at most half the fetch slots: a flood of
		 * made-up certificates must not starve the inventory's refreshes. */
		if (ei->learned &&
		    n->fetches_learned >= MAX((size_t)1, n->cfg.max_parallel_fetches / 2)) {
			cache_slot_schedule(n->cache, e, alg, now + 1);
			continue;
		}
		struct slot_state *s = ei->slots[alg];
		if (s && s->disk_pending) {
			/* Start-up loading will bring its response: look again in a second
			 * rather than ask the upstream for what the disk already has. */
			cache_slot_schedule(n->cache, e, alg, now + 1);
			continue;
		}
		if (s && s->inflight) {
			/* A pull from a peer is under way: its answer decides. */
			cache_slot_schedule(n->cache, e, alg, now + 1);
			continue;
		}
		if (n->cluster) {
			int64_t at = cluster_fetch_time(n, ei, alg, now);
			/* The election may have started a pull: never a fetch beside it. */
			if (at > now || (ei->slots[alg] && ei->slots[alg]->inflight)) {
				cache_slot_schedule(n->cache, e, alg, MAX(at, now + 1));
				continue;
			}
		}
		start_fetch(n, ei, alg, 0, -1);
	}
	int64_t next = cache_next_due(n->cache);
	if (next == INT64_MAX || n->fetches_active >= n->cfg.max_parallel_fetches) {
		/* Nothing due ever, or saturated: the next completion pumps again. */
		uv_timer_stop(&n->refresh_timer);
		return;
	}
	/* Far-off due times re-arm hourly: no overflow, and a clock jump is caught up. */
	uint64_t delay_ms = next > now ? (uint64_t)MIN(next - now, (int64_t)3600) * 1000 : 0;
	/* Due times are whole seconds; never spin faster than that when the queue is hot. */
	if (delay_ms == 0)
		delay_ms = 1000;
	n->refresh_timer.data = n;
	uv_timer_start(&n->refresh_timer, on_refresh_timer, delay_ms, 0);
}

int refresher_pull(struct node *n, struct entry_info *ei, enum certid_alg alg, const char *url,
		   uint64_t timeout_ms)
{
	if (n->stopping)
		return -ECANCELED;
	struct slot_state *s = entry_slot(ei, alg);
	s->n = n;
	if (s->inflight)
		return -EBUSY;
	struct certid id;
	struct buf der = BUF_INIT;
	int e = cache_entry_certid(ei->entry, alg, &id);
	if (e == 0)
		e = ocsp_request_encode(&id, &der);
	if (e < 0) {
		buf_done(&der);
		return e;
	}
	/* The peer answers from its cache, or fetches itself if it is first in rank; it never
	 * forwards our request to anyone else (docs/cluster.md). */
	static const char *const hdrs[] = {"Stapled-Forwarded: 1"};
	struct fetch_request req = {
		.url = url,
		.der = der.data,
		.der_len = der.len,
		.h2 = true,
		.headers = hdrs,
		.n_headers = 1,
		.timeout_ms = timeout_ms,
	};
	e = fetcher_start(n->fetcher, &req, on_fetched, s, &s->inflight);
	buf_done(&der);
	if (e < 0)
		return e;
	s->pull = true;
	ei->pulls++;
	free(s->url);
	s->url = xstrdup(url);
	n->fetches_active++;
	log_debug("fetch", "%s: pulling from peer %s (%s)", ei->name, url, certid_alg_name(alg));
	return 0;
}

void refresher_forget(struct node *n, struct entry_info *ei)
{
	for (int a = 0; a < CERTID_ALG_COUNT; a++) {
		struct slot_state *s = ei->slots[a];
		if (s && s->inflight) {
			fetch_cancel(s->inflight);
			s->inflight = NULL;
			s->pull = false;
			n->fetches_active--;
			if (s->learned_fetch)
				n->fetches_learned--;
			s->learned_fetch = false;
			free(s->url);
			s->url = NULL;
		}
	}
}

void refresher_load_file(struct node *n, const char *name, const uint8_t *der, size_t len,
			 int64_t received_unix, struct cache_entry *hint)
{
	int64_t now = node_now_unix();
	struct ocsp_info info;
	uint32_t fails = 0;
	struct certid want;
	int r = -ENOENT;
	if (hint && cache_entry_user(hint) && cache_entry_certid(hint, CERTID_SHA1, &want) == 0) {
		/* The name says which entry: one pass checks everything, including that claim. */
		r = ocsp_response_check(der, len, cache_issuer_cert(cache_entry_issuer(hint)),
					&want, now, &n->policy, &info, &fails);
		if (r < 0 && (fails & OCSP_CHECK_CERTID))
			r = -ENOENT; /* renamed or misnamed file: find its entry the slow way */
	}
	struct cache_entry *e = hint;
	if (r == -ENOENT) {
		/* First pass without an issuer only finds out which entry the file is for. */
		ocsp_response_check(der, len, NULL, NULL, now, &n->policy, &info, &fails);
		if (!info.has_id) {
			log_warning("store", "%s: not an OCSP response, skipped", name);
			n->m.disk_skipped++;
			return;
		}
		e = cache_lookup(n->cache, &info.id);
		if ((!e || !cache_entry_user(e)) && !(info.response_status == 0 && !e)) {
			log_debug("store", "%s: not for a certificate in the inventory, skipped",
				  name);
			n->m.disk_skipped++;
			return;
		}
		bool learned_now = false;
		if (!e) {
			/* A response this node had learned before it restarted. */
			struct entry_info *lei = learn_from_disk(n, &info.id);
			if (!lei) {
				log_debug("store", "%s: not for a known certificate, skipped",
					  name);
				n->m.disk_skipped++;
				return;
			}
			e = lei->entry;
			learned_now = true;
		}
		struct pki_cert *issuer = cache_issuer_cert(cache_entry_issuer(e));
		r = ocsp_response_check(der, len, issuer, &info.id, now, &n->policy, &info, &fails);
		if (r < 0 && !issuer && fails == OCSP_CHECK_NO_ISSUER)
			r = 0; /* as when it was fetched: the signature could not be checked */
		if (r < 0 && learned_now) {
			char why[256];
			checks_str(fails, why, sizeof(why));
			log_warning("store", "%s: skipped (%s)", name, why);
			n->m.disk_skipped++;
			node_entry_remove(n, cache_entry_user(e));
			cache_issuer_gc(n->cache, learn_issuer_removed, n);
			return;
		}
	}
	struct entry_info *ei = cache_entry_user(e);
	if (r < 0) {
		char why[256];
		checks_str(fails, why, sizeof(why));
		log_warning("store", "%s: %s: skipped (%s)", name, ei->name, why);
		n->m.disk_skipped++;
		return;
	}
	enum certid_alg alg = info.id.alg;
	r = cache_store(n->cache, e, alg, der, len, &info, received_unix, -1);
	if (r < 0 && r != -ESTALE) {
		log_warning("store", "%s: %s: not loaded: %s", name, ei->name, strerror(-r));
		n->m.disk_skipped++;
		return;
	}
	entry_slot(ei, alg)->tried = true;
	n->m.disk_loaded++;
	log_debug("store", "%s: %s loaded (%s)", name, ei->name,
		  ocsp_cert_status_name(info.cert_status));
	/* Consumers may have lost their copy while we were down (or restarted meanwhile with an
	 * older one): files are rewritten only if they differ, and HAProxy gets a push. */
	if (alg == CERTID_SHA1)
		output_publish(n, ei, true);
}
