/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The OCSP responder (RFC 6960 Appendix A, RFC 5019) and the admin routes.
 *
 * Life of a request: the server hands over a parsed HTTP request; GET paths and POST bodies are
 * decoded to a CertID; the cache finds the entry and slot for it (any of the four hash algs).
 * A servable response is answered at once with its DER as stored and freshly rendered RFC 5019
 * headers — the hot path never re-parses or re-verifies a response. An unknown certificate gets
 * `unauthorized`, a malformed request `malformedRequest`, both as HTTP 200 OCSP answers.
 * A known certificate with nothing servable parks the connection on the entry until the fetch in
 * flight ends (bounded by wait_ms), then gets the response or `tryLater`. Nonces are ignored:
 * the cached response is the answer (RFC 5019 §2.1.1 allows it; mod_md always sends one).
 *
 * A request for an unknown certificate becomes a learned entry when the node knows where to ask
 * (node/learn.c) and waits on its first fetch like any request. Absolute-form targets are
 * forward-proxy requests: the URL names the origin responder; anything in that form that is not
 * an OCSP request is refused with a plain HTTP 400 (stapled proxies OCSP only).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "node/fetch.h"
#include "node/log.h"
#include "node/cluster.h"
#include "node/node.h"
#include "node/server.h"
#include "proto/hmap.h"
#include "proto/mem.h"
#include "proto/ocsp_http.h"

/* How long a request for a known certificate without a response waits for its fetch. */
#define WAIT_MS 3000

/*
 * Request memo. Web servers ask for a certificate with byte-identical requests (no nonce), so the
 * exact bytes of a GET target or POST body that decoded successfully are remembered with their
 * CertID in a small direct-mapped table: a repeat skips percent-decoding, base64 and OpenSSL's
 * DER parse, the bulk of the user-space work per request. A hit compares every byte, so the memo
 * can only ever return what decoding those bytes returned.
 */
#define MEMO_SLOTS   128
#define MEMO_MAX_KEY 320

struct memo_slot {
	uint64_t hash;
	uint16_t len;
	bool is_post;
	struct ocsp_request req;
	uint8_t key[MEMO_MAX_KEY];
};

static struct memo_slot *memo_find(struct memo_slot *memo, const void *key, size_t len,
				   bool is_post, uint64_t *ret_hash)
{
	uint64_t h = hmap_hash(key, len) ^ (is_post ? 0x9e3779b97f4a7c15ull : 0);
	*ret_hash = h;
	struct memo_slot *m = &memo[h % MEMO_SLOTS];
	if (m->hash == h && m->len == len && m->is_post == is_post && memcmp(m->key, key, len) == 0)
		return m;
	return NULL;
}

static void memo_put(struct memo_slot *memo, const void *key, size_t len, bool is_post, uint64_t h,
		     const struct ocsp_request *req)
{
	if (len > MEMO_MAX_KEY)
		return;
	struct memo_slot *m = &memo[h % MEMO_SLOTS];
	m->hash = h;
	m->len = (uint16_t)len;
	m->is_post = is_post;
	m->req = *req;
	memcpy(m->key, key, len);
}

/* Decodes the OCSP request of a GET target or POST body, through the memo. */
static int decode_request(struct node *n, const struct http1_request *req, struct ocsp_request *ret)
{
	if (!n->req_memo)
		n->req_memo = xcalloc(MEMO_SLOTS, sizeof(struct memo_slot));
	struct memo_slot *memo = n->req_memo;
	bool is_post = req->method == HTTP1_POST;
	const void *key = is_post ? (const void *)req->body : (const void *)req->target.p;
	size_t len = is_post ? req->body_len : req->target.len;
	uint64_t h;
	struct memo_slot *m = memo_find(memo, key, len, is_post, &h);
	if (m) {
		*ret = m->req;
		return 0;
	}
	int r;
	if (is_post) {
		r = ocsp_request_parse(req->body, req->body_len, ret);
	} else {
		struct buf der = BUF_INIT;
		r = ocsp_http_get_decode(req->target.p, req->target.len, &der, ret);
		buf_done(&der);
	}
	if (r == 0)
		memo_put(memo, key, len, is_post, h, ret);
	return r;
}

static enum ocsp_http_conn conn_mode(bool keep_alive, bool http10)
{
	if (!keep_alive)
		return OCSP_HTTP_CONN_CLOSE;
	return http10 ? OCSP_HTTP_CONN_KEEP_ALIVE : OCSP_HTTP_CONN_DEFAULT;
}

static void answer_ocsp_bytes(struct buf *out, const uint8_t *body, size_t len, bool head,
			      bool keep_alive, bool http10)
{
	char date[HTTP_DATE_LEN + 1];
	http_date_format(node_now_unix(), date);
	buf_printf(out,
		   "HTTP/1.1 200 OK\r\nDate: %s\r\nContent-Type: application/ocsp-response\r\n"
		   "Content-Length: %zu\r\nCache-Control: no-cache\r\n%s\r\n",
		   date, len,
		   !keep_alive ? "Connection: close\r\n"
		   : http10    ? "Connection: keep-alive\r\n"
			       : "");
	if (!head)
		buf_append(out, body, len);
}

static void answer_status(struct node *n, struct buf *out, int status, enum req_result res,
			  bool head, bool keep_alive, bool http10)
{
	size_t len;
	const uint8_t *der = ocsp_error_response(status, &len);
	n->m.requests[res]++;
	answer_ocsp_bytes(out, der, len, head, keep_alive, http10);
}

/* Answers from the cache if it can; returns false when the slot has nothing servable. */
/* The issuer certificate as a header for a child node that asked for it (before the blank line
 * that ends the rendered headers). */
static void add_issuer_header(struct buf *out, const struct entry_info *ei)
{
	const struct pki_cert *ic = cache_issuer_cert(cache_entry_issuer(ei->entry));
	if (!ic || out->len < 4)
		return;
	size_t len;
	const uint8_t *der = pki_cert_der(ic, &len);
	if ((len + 2) / 3 * 4 > FETCH_ISSUER_MAX)
		return;
	out->len -= 2;
	buf_append_str(out, "Stapled-Issuer: ");
	ocsp_http_base64_encode(der, len, out);
	buf_append_str(out, "\r\n\r\n");
}

static bool answer_cached(struct node *n, struct entry_info *ei, enum certid_alg alg,
			  struct buf *out, bool head, bool keep_alive, bool http10, const char *inm,
			  size_t inm_len, const char *ims, size_t ims_len, bool want_issuer)
{
	int64_t now = node_now_unix();
	learn_touch(n, ei, now);
	const struct cache_resp *r = cache_entry_servable(ei->entry, alg, now);
	if (!r)
		return false;
	/* Clients may cache until the response's refresh time at most: after that a newer
	 * response may exist here. */
	int64_t cap = r->refresh_unix > now ? r->refresh_unix - now : 0;
	enum ocsp_http_conn mode = conn_mode(keep_alive, http10);
	if ((inm || ims) && ocsp_http_not_modified(&r->meta, inm, inm_len, ims, ims_len)) {
		ocsp_http_render_304(out, &r->meta, now, cap, mode);
		n->m.requests[REQ_NOT_MODIFIED]++;
		return true;
	}
	ocsp_http_render_200(out, &r->meta, r->der_len, now, cap, mode);
	if (want_issuer)
		add_issuer_header(out, ei);
	if (!head)
		buf_append(out, r->der, r->der_len);
	n->m.requests[REQ_HIT]++;
	return true;
}

static void waiter_unlink_slot(struct waiter *w)
{
	struct slot_state *s = w->entry ? w->entry->slots[w->alg] : NULL;
	if (s) {
		struct waiter **pp = &s->waiters;
		while (*pp && *pp != w)
			pp = &(*pp)->slot_next;
		if (*pp)
			*pp = w->slot_next;
	}
	w->slot_next = NULL;
	w->entry = NULL;
}

static void waiter_unlink_conn(struct waiter *w)
{
	struct waiter **pp = &w->conn->waiters;
	while (*pp && *pp != w)
		pp = &(*pp)->conn_next;
	if (*pp)
		*pp = w->conn_next;
	w->conn_next = NULL;
}

void responder_cancel_waits(struct conn *c, int32_t stream_id)
{
	struct waiter **pp = &c->waiters;
	while (*pp) {
		struct waiter *w = *pp;
		if (stream_id && w->stream_id != stream_id) {
			pp = &w->conn_next;
			continue;
		}
		*pp = w->conn_next;
		waiter_unlink_slot(w);
		free(w);
	}
	if (!stream_id)
		c->waiting = false;
}

/* Ends a parked request (already off its slot's list): the response if one is servable now,
 * else tryLater (unauthorized if the certificate is gone meanwhile). */
static void waiter_finish(struct node *n, struct waiter *w, struct entry_info *ei)
{
	struct buf out = BUF_INIT;
	const char *inm = w->if_none_match[0] ? w->if_none_match : NULL;
	bool done = ei && ei->entry &&
		    answer_cached(n, ei, w->alg, &out, w->head, w->keep_alive, w->http10, inm,
				  inm ? strlen(inm) : 0, NULL, 0, w->want_issuer);
	if (!done) {
		if (ei && ei->entry && !ei->unauthorized)
			answer_status(n, &out, 3, REQ_UNAVAILABLE, w->head, w->keep_alive,
				      w->http10);
		else
			answer_status(n, &out, 6, REQ_UNAUTHORIZED, w->head, w->keep_alive,
				      w->http10);
	}
	struct conn *c = w->conn;
	int32_t stream_id = w->stream_id;
	waiter_unlink_conn(w);
	free(w);
	if (!stream_id)
		c->waiting = false;
	conn_deliver(c, stream_id, &out);
	buf_done(&out);
}

void responder_waits_expired(struct conn *c, uint64_t now_ms)
{
	/* Finishing changes the list: take one expired waiter at a time. */
	for (;;) {
		struct waiter *w = c->waiters;
		while (w && w->deadline_ms > now_ms)
			w = w->conn_next;
		if (!w)
			return;
		struct entry_info *ei = w->entry;
		struct node *n = ei && ei->slots[w->alg] ? ei->slots[w->alg]->n : NULL;
		if (!n) {
			/* Cannot happen: a parked request always has its entry's slot. */
			responder_cancel_waits(c, w->stream_id);
			return;
		}
		log_info("http", "%s: %s: no response within %d ms, answering tryLater", c->peer,
			 ei->name, WAIT_MS);
		waiter_unlink_slot(w);
		waiter_finish(n, w, ei);
		if (c->closing)
			return;
	}
}

void responder_wake(struct node *n, struct entry_info *ei, enum certid_alg alg)
{
	struct slot_state *s = ei->slots[alg];
	if (!s)
		return;
	/* Detach the whole list first: answering resumes connections, whose next requests may
	 * park here again; they wait for the next fetch. */
	struct waiter *w = s->waiters;
	s->waiters = NULL;
	while (w) {
		struct waiter *next = w->slot_next;
		w->slot_next = NULL;
		w->entry = NULL;
		waiter_finish(n, w, ei);
		w = next;
	}
}

static enum handler_result park(struct node *n, struct conn *c, struct entry_info *ei,
				enum certid_alg alg, const struct http1_request *req)
{
	struct slot_state *s = entry_slot(ei, alg);
	s->n = n;
	struct waiter *w = xcalloc(1, sizeof(*w));
	w->conn = c;
	w->stream_id = c->h2_stream;
	w->entry = ei;
	w->alg = (uint8_t)alg;
	w->head = req->method == HTTP1_HEAD;
	w->keep_alive = req->keep_alive;
	w->http10 = req->version_minor == 0;
	w->want_issuer = req->stapled_want_issuer.p != NULL;
	if (req->if_none_match.p && req->if_none_match.len < sizeof(w->if_none_match)) {
		memcpy(w->if_none_match, req->if_none_match.p, req->if_none_match.len);
		w->if_none_match[req->if_none_match.len] = 0;
	}
	w->deadline_ms = uv_now(n->loop) + WAIT_MS;
	w->slot_next = s->waiters;
	s->waiters = w;
	w->conn_next = c->waiters;
	c->waiters = w;
	if (!c->h2)
		c->waiting = true;
	return HANDLER_WAIT;
}

static bool path_is(const struct http1_request *req, const char *p)
{
	size_t n = strlen(p);
	return req->target.len == n && memcmp(req->target.p, p, n) == 0;
}

static void text_response(struct buf *out, int status, const char *reason, const char *ctype,
			  const char *body, size_t len, bool head, bool keep_alive, bool http10)
{
	buf_printf(out,
		   "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
		   "Cache-Control: no-store\r\n%s\r\n",
		   status, reason, ctype, len,
		   !keep_alive ? "Connection: close\r\n"
		   : http10    ? "Connection: keep-alive\r\n"
			       : "");
	if (!head)
		buf_append(out, body, len);
}

static bool health_routes(struct node *n, const struct http1_request *req, struct buf *out)
{
	bool head = req->method == HTTP1_HEAD;
	if (req->method != HTTP1_GET && !head)
		return false;
	if (path_is(req, "/healthz")) {
		text_response(out, 200, "OK", "text/plain", "ok\n", 3, head, req->keep_alive,
			      req->version_minor == 0);
		return true;
	}
	if (path_is(req, "/readyz")) {
		if (node_is_ready(n))
			text_response(out, 200, "OK", "text/plain", "ready\n", 6, head,
				      req->keep_alive, req->version_minor == 0);
		else
			text_response(out, 503, "Service Unavailable", "text/plain", "not ready\n",
				      10, head, req->keep_alive, req->version_minor == 0);
		return true;
	}
	return false;
}

/* Stapled-Hops as a number; anything odd counts as too many (a loop guard must not be
 * switched off by garbage). */
static unsigned parse_hops(struct http1_str h)
{
	if (!h.p)
		return 0;
	unsigned v = 0;
	if (h.len == 0 || h.len > 3)
		return LEARN_MAX_HOPS;
	for (size_t i = 0; i < h.len; i++) {
		if (h.p[i] < '0' || h.p[i] > '9')
			return LEARN_MAX_HOPS;
		v = v * 10 + (unsigned)(h.p[i] - '0');
	}
	return v;
}

/* The origin a child node passed along, if usable (a NUL-terminated copy in out). */
static const char *header_origin(struct node *n, struct http1_str h, char *out, size_t size)
{
	if (!h.p || h.len == 0 || h.len >= size)
		return NULL;
	memcpy(out, h.p, h.len);
	out[h.len] = 0;
	return learn_origin_allowed(n, out) ? out : NULL;
}

static enum handler_result refuse_proxy(struct node *n, struct buf *out,
					const struct http1_request *req, int status,
					const char *reason, const char *text)
{
	n->proxy_refused++;
	n->m.requests[REQ_ERROR]++;
	text_response(out, status, reason, "text/plain", text, strlen(text),
		      req->method == HTTP1_HEAD, req->keep_alive, req->version_minor == 0);
	return HANDLER_DONE;
}

enum handler_result responder_handle_ocsp(struct node *n, struct conn *c,
					  const struct http1_request *req, struct buf *out)
{
	bool head = req->method == HTTP1_HEAD;
	bool http10 = req->version_minor == 0;
	bool proxy = req->target.len > 0 && req->target.p[0] != '/';
	struct ocsp_request oreq;
	char origin_buf[1024];
	const char *origin = NULL;
	int r;

	if (proxy && req->method != HTTP1_OTHER) {
		/* Forward-proxy mode: the target names the origin responder. */
		struct buf der = BUF_INIT;
		r = ocsp_http_proxy_target(req->target.p, req->target.len,
					   req->method != HTTP1_POST, &der, &oreq, origin_buf,
					   sizeof(origin_buf));
		buf_done(&der);
		if (r == 0 && req->method == HTTP1_POST)
			r = decode_request(n, req, &oreq);
		if (r < 0) {
			log_debug("http", "%s: proxy request that is not OCSP refused", c->peer);
			return refuse_proxy(n, out, req, 400, "Bad Request",
					    "stapled forwards OCSP requests only: the target must "
					    "be an http:// OCSP responder URL with a GET-encoded "
					    "request, or a POST of application/ocsp-request\n");
		}
		if (!learn_origin_allowed(n, origin_buf)) {
			log_info("http", "%s: proxy request for %s refused (learn.allowed_origins)",
				 c->peer, origin_buf);
			n->learn_results[LEARN_REFUSED_ORIGIN]++;
			return refuse_proxy(n, out, req, 403, "Forbidden",
					    "stapled: this origin responder is not in "
					    "learn.allowed_origins\n");
		}
		origin = origin_buf;
		n->proxy_requests++;
	} else if (req->method == HTTP1_POST) {
		r = decode_request(n, req, &oreq);
	} else if (req->method == HTTP1_GET || head) {
		if (health_routes(n, req, out))
			return HANDLER_DONE;
		r = decode_request(n, req, &oreq);
	} else {
		const char *why = "stapled answers OCSP requests by GET and POST; as a proxy it "
				  "forwards OCSP only (no CONNECT tunnels)\n";
		buf_printf(out,
			   "HTTP/1.1 405 Method Not Allowed\r\nAllow: GET, HEAD, POST\r\n"
			   "Content-Type: text/plain\r\nContent-Length: %zu\r\n%s\r\n%s",
			   strlen(why), req->keep_alive ? "" : "Connection: close\r\n", why);
		n->m.requests[REQ_ERROR]++;
		return HANDLER_DONE;
	}
	if (r < 0) {
		log_debug("http", "%s: malformed OCSP request: %s", c->peer, strerror(-r));
		answer_status(n, out, 1, REQ_MALFORMED, head, req->keep_alive, http10);
		return HANDLER_DONE;
	}
	if (!origin && req->stapled_origin.p)
		origin = header_origin(n, req->stapled_origin, origin_buf, sizeof(origin_buf));
	bool want_issuer = req->stapled_want_issuer.p != NULL;
	unsigned hops = parse_hops(req->stapled_hops);
	struct cache_entry *e = cache_lookup(n->cache, &oreq.id);
	struct entry_info *ei = e ? cache_entry_user(e) : NULL;
	/* A child node sends the issuer along: with it, answers from the origin can be checked. */
	if (req->stapled_issuer.p && req->stapled_issuer.len <= STAPLED_ISSUER_HEADER_MAX &&
	    !(e && cache_issuer_cert(cache_entry_issuer(e)))) {
		struct cache_issuer *ci = cache_issuer_find(n->cache, oreq.id.alg,
							    oreq.id.name_hash, oreq.id.key_hash);
		if (!ci || !cache_issuer_cert(ci)) {
			char who[CERTID_SHORT_MAX];
			learn_issuer_add(n, &oreq.id, req->stapled_issuer.p,
					 req->stapled_issuer.len, certid_short(&oreq.id, who));
		}
	}
	if (!ei && !e)
		ei = learn_entry(n, &oreq.id, origin, hops);
	if (!ei) {
		if (log_max_level >= LOG_DEBUG) {
			char name[CERTID_SHORT_MAX];
			log_debug("http", "%s: %s: unknown certificate", c->peer,
				  certid_short(&oreq.id, name));
		}
		answer_status(n, out, 6, REQ_UNAUTHORIZED, head, req->keep_alive, http10);
		return HANDLER_DONE;
	}
	e = ei->entry;
	enum certid_alg alg = oreq.id.alg;
	if (ei->learned) {
		/* What a request says about a learned entry cannot pin it: another origin replaces
		 * one that has not produced an answer, and the fewest hops seen count (a client
		 * claiming many must not make the node refuse everyone as a loop). */
		bool answered = cache_entry_resp(e, alg) != NULL;
		bool idle = !(ei->slots[alg] && ei->slots[alg]->inflight);
		if (origin && (!ei->origin || (!answered && strcmp(ei->origin, origin) != 0))) {
			bool replaced = ei->origin != NULL;
			free(ei->origin);
			ei->origin = xstrdup(origin);
			/* Try the new one now rather than after the old one's backoff. */
			if (replaced && idle)
				cache_slot_schedule(n->cache, e, alg, node_now_unix());
		}
		if (hops < ei->hops) {
			ei->hops = (uint8_t)hops;
			if (ei->unauthorized && idle) {
				ei->unauthorized = false;
				cache_slot_schedule(n->cache, e, alg, node_now_unix());
			}
		}
	}
	/* Right after start-up its response may still be waiting on disk: load it now. */
	if (n->loading)
		node_load_pending(n, ei, alg);
	if (answer_cached(n, ei, alg, out, head, req->keep_alive, http10, req->if_none_match.p,
			  req->if_none_match.len, req->if_modified_since.p,
			  req->if_modified_since.len, want_issuer))
		return HANDLER_DONE;

	/* Known, nothing servable: make sure a fetch is coming, then wait for it. In a cluster
	 * the owner is asked first, once (docs/cluster.md); a request a peer forwarded to us is
	 * fetched here and never forwarded again. */
	if (n->cluster) {
		struct slot_state *ms = entry_slot(ei, alg);
		ms->n = n;
		if (req->stapled_forwarded.p)
			ms->cluster_miss = CLUSTER_MISS_FORWARDED;
		else if (ms->cluster_miss == CLUSTER_MISS_NONE)
			ms->cluster_miss = CLUSTER_MISS_LOCAL;
	}
	cache_entry_want(n->cache, e, alg, node_now_unix());
	refresher_pump(n);
	/* The pump may have failed the slot synchronously (no upstream at all). */
	if (answer_cached(n, ei, alg, out, head, req->keep_alive, http10, NULL, 0, NULL, 0,
			  want_issuer))
		return HANDLER_DONE;
	/* Wait for a fetch in flight or one still queued (max_parallel reached); a slot resting
	 * in backoff, or without any upstream, answers tryLater at once (unauthorized when that
	 * is what the upstream said). */
	struct slot_state *s = ei->slots[alg];
	bool in_backoff = cache_slot_failures(e, alg) > 0 && !(s && s->inflight);
	if (ei->no_upstream || in_backoff) {
		if (ei->unauthorized || (ei->learned && ei->no_upstream))
			answer_status(n, out, 6, REQ_UNAUTHORIZED, head, req->keep_alive, http10);
		else
			answer_status(n, out, 3, REQ_UNAVAILABLE, head, req->keep_alive, http10);
		return HANDLER_DONE;
	}
	return park(n, c, ei, alg, req);
}

static void admin_members_json(struct node *n, struct buf *body)
{
	buf_append_str(body, "{\"members\":");
	cluster_members_json(n, body);
	buf_append_str(body, "}\n");
}

/* The admin listener's JSON documents: GET (or HEAD) PATH answers what RENDER writes. */
static const struct {
	const char *path;
	void (*render)(struct node *n, struct buf *body);
} admin_json[] = {
	{"/admin/entries", admin_entries_json},
	{"/admin/outputs", output_admin_json},
	{"/admin/members", admin_members_json},
};

enum handler_result responder_handle_admin(struct node *n, struct conn *c,
					   const struct http1_request *req, struct buf *out)
{
	bool head = req->method == HTTP1_HEAD;
	(void)c;
	if (health_routes(n, req, out))
		return HANDLER_DONE;
	if ((req->method == HTTP1_GET || head) && path_is(req, "/metrics")) {
		struct buf body = BUF_INIT;
		metrics_render(n, &body);
		text_response(out, 200, "OK", "text/plain; version=0.0.4", (const char *)body.data,
			      body.len, head, req->keep_alive, req->version_minor == 0);
		buf_done(&body);
		return HANDLER_DONE;
	}
	if (req->method == HTTP1_GET || head) {
		for (size_t i = 0; i < ARRAY_SIZE(admin_json); i++) {
			if (!path_is(req, admin_json[i].path))
				continue;
			struct buf body = BUF_INIT;
			admin_json[i].render(n, &body);
			text_response(out, 200, "OK", "application/json", (const char *)body.data,
				      body.len, head, req->keep_alive, req->version_minor == 0);
			buf_done(&body);
			return HANDLER_DONE;
		}
	}
	if (req->target.len > 15 && memcmp(req->target.p, "/admin/cluster/", 15) == 0 &&
	    (req->method == HTTP1_GET || req->method == HTTP1_POST)) {
		struct buf body = BUF_INIT;
		int status =
			cluster_admin(n, req->method == HTTP1_POST, (const char *)req->target.p,
				      req->target.len, req->body, req->body_len, &body);
		text_response(out, status, status == 200 ? "OK" : "Error", "application/json",
			      (const char *)body.data, body.len, false, req->keep_alive,
			      req->version_minor == 0);
		buf_done(&body);
		return HANDLER_DONE;
	}
	if (req->method == HTTP1_POST && path_is(req, "/admin/refresh")) {
		admin_refresh_all(n);
		text_response(out, 200, "OK", "application/json", "{\"ok\":true}\n", 12, false,
			      req->keep_alive, req->version_minor == 0);
		return HANDLER_DONE;
	}
	text_response(out, 404, "Not Found", "text/plain", "not found\n", 10, head, req->keep_alive,
		      req->version_minor == 0);
	return HANDLER_DONE;
}
