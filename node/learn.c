/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Entries learned from requests (DESIGN §2, §3.5): leaf, parent and forward-proxy modes.
 *
 * A request for a CertID the node has no entry for becomes a learned entry when the node knows
 * somewhere to ask: its parents, or an origin responder — named by the request (a forward-proxy
 * target, or the Stapled-Origin header of a child node), learned from another certificate of the
 * same issuer, or configured (learn.default_origin). From then on it is an entry like any other:
 * fetched once however many requests wait on it (the cache's single-flight), validated, stored,
 * refreshed. Differences:
 *   - its issuer may be known only by the CertID's hashes: then the signature cannot be checked
 *     until a parent hands over the issuer certificate (Stapled-Issuer), which is accepted only
 *     if its name and key hash to the CertID's; everything else is always checked;
 *   - it is dropped when nobody asked for it during learn.idle_expiry (sooner, 10 minutes, if it
 *     never got a response), and at most learn.max_entries exist;
 *   - an upstream that answers `unauthorized` makes the node answer `unauthorized` too while the
 *     entry rests in backoff.
 * Learned entries sit on one list (n->learned) so expiry costs O(learned), not O(entries).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "node/inventory.h"
#include "node/log.h"
#include "node/node.h"
#include "node/store.h"
#include "proto/mem.h"
#include "proto/ocsp_http.h"

/* Issuers a flood of made-up CertIDs may create at most (real deployments have tens). */
#define LEARN_MAX_ISSUERS 4096
/* A learned entry that never got a response is retried for at most this long without use. */
#define LEARN_NEGATIVE_IDLE_S 600

/* What the node knows about an issuer beyond the cache (cache_issuer_user). */
struct issuer_info {
	struct cache_issuer *ci;
	char *origin; /* an origin responder seen for one of its certificates */
	struct issuer_info *prev, *next;
};

const char *const learn_result_names[LEARN_RESULT_COUNT] = {
	[LEARN_CREATED] = "created",
	[LEARN_REFUSED_LIMIT] = "refused_limit",
	[LEARN_REFUSED_NO_ORIGIN] = "refused_no_origin",
	[LEARN_REFUSED_ORIGIN] = "refused_origin",
	[LEARN_REFUSED_LOOP] = "refused_loop",
	[LEARN_REFUSED_NO_ISSUER] = "refused_no_issuer",
	[LEARN_EVICTED] = "evicted",
	[LEARN_EXPIRED] = "expired",
};

/* Scheme, authority and path of an http(s) URL; false if it is not one we would fetch. Only
 * host names, addresses and a port may form the authority (no userinfo: "a@b" is host b). */
struct url_parts {
	size_t scheme_len; /* "http://" or "https://" */
	const char *auth;
	size_t auth_len;
	const char *path; /* from the first '/' or '?', "" if none */
};

static bool url_split(const char *url, struct url_parts *ret)
{
	if (strncasecmp(url, "http://", 7) == 0)
		ret->scheme_len = 7;
	else if (strncasecmp(url, "https://", 8) == 0)
		ret->scheme_len = 8;
	else
		return false;
	const char *a = url + ret->scheme_len, *p = a;
	while (*p && *p != '/' && *p != '?') {
		char c = *p;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '-' || c == ':' || c == '[' || c == ']' || c == '_'))
			return false;
		p++;
	}
	if (p == a)
		return false;
	for (const char *q = p; *q; q++)
		if ((unsigned char)*q <= ' ' || *q == 0x7f)
			return false;
	ret->auth = a;
	ret->auth_len = (size_t)(p - a);
	ret->path = p;
	return true;
}

bool learn_origin_allowed(const struct node *n, const char *url)
{
	struct url_parts u;
	if (!url_split(url, &u))
		return false;
	const struct str_list *allow = &n->cfg.learn_allowed_origins;
	if (allow->n == 0)
		return true;
	/* Same scheme, the same host and port exactly, and the path under the allowed one: a
	 * prefix match on the whole string would let "http://host.evil/" through. */
	for (size_t i = 0; i < allow->n; i++) {
		struct url_parts a;
		if (!url_split(allow->v[i], &a) || a.scheme_len != u.scheme_len ||
		    strncasecmp(allow->v[i], url, u.scheme_len) != 0 || a.auth_len != u.auth_len ||
		    strncasecmp(a.auth, u.auth, u.auth_len) != 0)
			continue;
		if (strncmp(u.path, a.path, strlen(a.path)) == 0)
			return true;
	}
	return false;
}

static struct issuer_info *issuer_info_of(struct node *n, struct cache_issuer *ci)
{
	struct issuer_info *ii = cache_issuer_user(ci);
	if (ii)
		return ii;
	ii = xcalloc(1, sizeof(*ii));
	ii->ci = ci;
	ii->next = n->issuer_infos;
	if (ii->next)
		ii->next->prev = ii;
	n->issuer_infos = ii;
	cache_issuer_set_user(ci, ii);
	return ii;
}

void learn_note_issuer_origin(struct node *n, struct cache_issuer *ci, const char *url)
{
	if (!url || !url[0])
		return;
	struct issuer_info *ii = issuer_info_of(n, ci);
	if (!ii->origin)
		ii->origin = xstrdup(url);
}

const char *learn_origin(const struct node *n, const struct entry_info *ei)
{
	if (ei->origin)
		return ei->origin;
	if (ei->cert) {
		const char *const *aia;
		size_t na = pki_cert_ocsp_urls(ei->cert, &aia);
		for (size_t i = 0; i < na; i++)
			if (strncmp(aia[i], "http://", 7) == 0 ||
			    strncmp(aia[i], "https://", 8) == 0)
				return aia[i];
	}
	if (ei->entry) {
		const struct issuer_info *ii = cache_issuer_user(cache_entry_issuer(ei->entry));
		if (ii && ii->origin)
			return ii->origin;
	}
	return n->cfg.learn_default_origin;
}

/* The learned list runs from the most recently asked (n->learned) to the least
 * (n->learned_tail). */
static void learned_link(struct node *n, struct entry_info *ei)
{
	ei->learned = true;
	ei->learn_prev = NULL;
	ei->learn_next = n->learned;
	if (ei->learn_next)
		ei->learn_next->learn_prev = ei;
	else
		n->learned_tail = ei;
	n->learned = ei;
	n->n_learned++;
}

static void learned_unlink(struct node *n, struct entry_info *ei)
{
	if (!ei->learned)
		return;
	if (ei->learn_prev)
		ei->learn_prev->learn_next = ei->learn_next;
	else
		n->learned = ei->learn_next;
	if (ei->learn_next)
		ei->learn_next->learn_prev = ei->learn_prev;
	else
		n->learned_tail = ei->learn_prev;
	ei->learn_prev = ei->learn_next = NULL;
	ei->learned = false;
	n->n_learned--;
}

void learn_touch(struct node *n, struct entry_info *ei, int64_t now)
{
	ei->last_used_unix = now;
	if (!ei->learned || n->learned == ei)
		return;
	learned_unlink(n, ei);
	learned_link(n, ei);
}

/*
 * Drops the least recently asked learned entry that has nothing to serve and nobody waiting,
 * looking at most a few entries from the cold end: a flood of made-up certificates then
 * recycles its own entries instead of locking real ones out. False if none qualifies.
 */
static bool evict_one(struct node *n)
{
	struct entry_info *ei = n->learned_tail;
	for (int k = 0; ei && k < 64; k++, ei = ei->learn_prev) {
		bool keep = false;
		for (int a = 0; a < CERTID_ALG_COUNT && !keep; a++)
			keep = cache_entry_resp(ei->entry, a) != NULL ||
			       (ei->slots[a] && (ei->slots[a]->waiters || ei->slots[a]->inflight));
		if (keep)
			continue;
		n->learn_results[LEARN_EVICTED]++;
		node_entry_remove(n, ei);
		cache_issuer_gc(n->cache, learn_issuer_removed, n);
		return true;
	}
	return false;
}

/* Creates the entry and its node-side data; NULL (counted) when refused. */
static struct entry_info *learned_new(struct node *n, const struct certid *id, const char *origin,
				      unsigned hops)
{
	if (n->n_learned >= n->cfg.learn_max_entries && !evict_one(n)) {
		n->learn_results[LEARN_REFUSED_LIMIT]++;
		return NULL;
	}
	struct cache_issuer *ci = cache_issuer_find(n->cache, id->alg, id->name_hash, id->key_hash);
	if (!ci) {
		for (int k = 0; k < 8 && cache_issuer_count(n->cache) >= LEARN_MAX_ISSUERS; k++)
			if (!evict_one(n))
				break;
		if (cache_issuer_count(n->cache) >= LEARN_MAX_ISSUERS) {
			n->learn_results[LEARN_REFUSED_LIMIT]++;
			return NULL;
		}
		ci = cache_issuer_add_hashes(n->cache, id->alg, id->name_hash, id->key_hash);
	}
	int64_t now = node_now_unix();
	struct cache_entry *e;
	int r = cache_entry_add(n->cache, ci, id->serial, id->serial_len, CACHE_ENTRY_LEARNED, now,
				&e);
	if (r < 0) {
		/* A serial stapled cannot hold (empty, over 20 bytes): not a limit, just refused.
		 */
		cache_issuer_gc(n->cache, learn_issuer_removed, n);
		return NULL;
	}
	struct entry_info *ei = cache_entry_user(e);
	if (ei)
		return ei; /* cannot happen: the caller looked it up */
	ei = xcalloc(1, sizeof(*ei));
	ei->entry = e;
	certid_short(id, ei->name);
	ei->origin = origin ? xstrdup(origin) : NULL;
	ei->hops = (uint8_t)MIN(hops, 255u);
	ei->last_used_unix = now;
	ei->learned_unix = now;
	cache_entry_set_user(e, ei);
	learned_link(n, ei);
	/* Only the form asked for is fetched: a SHA-256 request must not also cost a SHA-1
	 * fetch nobody wants. */
	enum certid_alg alg0 = cache_issuer_has_alg(ci, CERTID_SHA1) ? CERTID_SHA1 : id->alg;
	if (id->alg != alg0) {
		cache_slot_schedule(n->cache, e, alg0, INT64_MAX);
		cache_entry_want(n->cache, e, id->alg, now);
	}
	return ei;
}

struct entry_info *learn_entry(struct node *n, const struct certid *id, const char *origin,
			       unsigned hops)
{
	if (!n->cfg.learn)
		return NULL;
	if (hops >= LEARN_MAX_HOPS) {
		/* Parents pointing at each other would forward a miss around forever. */
		n->learn_results[LEARN_REFUSED_LOOP]++;
		log_warning("learn",
			    "request forwarded through %u stapled nodes: a loop of parents? "
			    "not learned",
			    hops);
		return NULL;
	}
	/* Configured upstreams are trusted to have checked what they answer; an origin is asked
	 * directly, and its answer is only as good as the signature we can check ourselves. */
	bool trusted_upstream = n->cfg.parents.n > 0 || n->cfg.upstreams.n > 0;
	struct cache_issuer *ci = cache_issuer_find(n->cache, id->alg, id->name_hash, id->key_hash);
	if (!trusted_upstream) {
		const struct issuer_info *ii = ci ? cache_issuer_user(ci) : NULL;
		if (!origin && !(ii && ii->origin) && !n->cfg.learn_default_origin) {
			n->learn_results[LEARN_REFUSED_NO_ORIGIN]++;
			return NULL;
		}
		if (!ci || !cache_issuer_cert(ci)) {
			n->learn_results[LEARN_REFUSED_NO_ISSUER]++;
			return NULL;
		}
	}
	struct entry_info *ei = learned_new(n, id, origin, hops);
	if (!ei)
		return NULL;
	n->learn_results[LEARN_CREATED]++;
	log_info("learn", "%s: learned from a request%s%s", ei->name, origin ? ", origin " : "",
		 origin ? origin : "");
	return ei;
}

struct entry_info *learn_from_disk(struct node *n, const struct certid *id)
{
	if (!n->cfg.learn)
		return NULL;
	return learned_new(n, id, NULL, 0);
}

void learn_adopt(struct node *n, struct entry_info *ei, struct pki_cert *cert)
{
	if (!ei->learned)
		return;
	learned_unlink(n, ei);
	if (!ei->cert)
		ei->cert = pki_cert_ref(cert);
	/* What requests said no longer matters: the certificate's own AIA does. */
	free(ei->origin);
	ei->origin = NULL;
	ei->hops = 0;
	ei->unauthorized = false;
	/* Learned in another form, it may never have fetched the SHA-1 one web servers ask for. */
	if (!cache_entry_resp(ei->entry, CERTID_SHA1))
		cache_entry_want(n->cache, ei->entry, CERTID_SHA1, node_now_unix());
	log_info("learn", "%s: now in the inventory", ei->name);
}

/*
 * A Stapled-Issuer header. The certificate is accepted only if it hashes to the CertID's issuer
 * name and key: that binding, not the certificate's own signature, is what makes it safe to
 * check responses with (a forged response cannot verify under the real CA key).
 */
bool learn_issuer_add(struct node *n, const struct certid *id, const char *b64, size_t len,
		      const char *who)
{
	struct buf der = BUF_INIT;
	struct pki_cert **certs = NULL;
	size_t nc = 0;
	bool ok = false;
	if (ocsp_http_base64_decode(b64, len, &der) < 0 ||
	    pki_certs_parse(der.data, der.len, &certs, &nc) < 0 || nc != 1)
		goto out;
	uint8_t name[CERTID_HASH_MAX], key[CERTID_HASH_MAX];
	size_t hl = certid_hash_len(id->alg);
	if (pki_issuer_hashes(certs[0], id->alg, name, key) < 0 ||
	    memcmp(name, id->name_hash, hl) != 0 || memcmp(key, id->key_hash, hl) != 0) {
		log_warning("learn",
			    "%s: a Stapled-Issuer certificate that does not match the CertID, "
			    "ignored",
			    who);
		goto out;
	}
	struct cache_issuer *ci;
	if (cache_issuer_add(n->cache, certs[0], &ci) < 0)
		goto out;
	inventory_add_issuer(n->inv, certs[0], true);
	log_info("learn", "%s: issuer %s received in Stapled-Issuer", who,
		 pki_cert_subject(certs[0]));
	ok = true;
out:
	if (certs)
		pki_certs_free(certs, nc);
	buf_done(&der);
	return ok;
}

void learn_sweep(struct node *n, int64_t now)
{
	int64_t idle = (int64_t)(n->cfg.learn_idle_ms / 1000);
	size_t removed = 0;
	struct entry_info *next;
	for (struct entry_info *ei = n->learned; ei; ei = next) {
		next = ei->learn_next;
		int64_t limit = idle;
		bool held = false;
		for (int a = 0; a < CERTID_ALG_COUNT && !held; a++)
			held = cache_entry_resp(ei->entry, a) != NULL;
		if (!held)
			limit = MIN(limit, (int64_t)LEARN_NEGATIVE_IDLE_S);
		bool waiting = false;
		for (int a = 0; a < CERTID_ALG_COUNT && !waiting; a++)
			waiting = ei->slots[a] && (ei->slots[a]->waiters || ei->slots[a]->inflight);
		if (waiting || now - ei->last_used_unix < limit)
			continue;
		log_info("learn", "%s: not asked for in %lld s, dropped", ei->name,
			 (long long)(now - ei->last_used_unix));
		n->learn_results[LEARN_EXPIRED]++;
		node_entry_remove(n, ei);
		removed++;
	}
	if (removed)
		cache_issuer_gc(n->cache, learn_issuer_removed, n);
}

void learn_issuer_removed(struct cache_issuer *ci, void *ud)
{
	struct node *n = ud;
	struct issuer_info *ii = cache_issuer_user(ci);
	if (!ii)
		return;
	if (ii->prev)
		ii->prev->next = ii->next;
	else
		n->issuer_infos = ii->next;
	if (ii->next)
		ii->next->prev = ii->prev;
	free(ii->origin);
	free(ii);
}

void learn_unlink(struct node *n, struct entry_info *ei)
{
	learned_unlink(n, ei);
}

void learn_close(struct node *n)
{
	while (n->learned) {
		struct entry_info *ei = n->learned;
		learned_unlink(n, ei);
		refresher_forget(n, ei);
		cache_entry_set_user(ei->entry, NULL);
		entry_info_free(n, ei);
	}
	while (n->issuer_infos) {
		struct issuer_info *ii = n->issuer_infos;
		n->issuer_infos = ii->next;
		cache_issuer_set_user(ii->ci, NULL);
		free(ii->origin);
		free(ii);
	}
}
