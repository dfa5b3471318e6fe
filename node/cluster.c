/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Drives gossip/gossip.h over libuv and runs the election (node/cluster.h). Everything the
 * state machine asks for is done in pump(): packets sent, streams opened, written and closed,
 * events handled; then the one timer is re-armed at the machine's next deadline.
 */
#include "node/cluster.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gossip/elect.h"
#include "gossip/gossip.h"
#include "node/log.h"
#include "proto/keyring.h"
#include "proto/macro.h"
#include "proto/mem.h"
#include "proto/ocsp_http.h"

#define LEAVE_TIMEOUT_MS   3000
#define UDP_BUF		   65536
#define ANNOUNCE_MAGIC0	   'S'
#define ANNOUNCE_MAGIC1	   'A'
#define DIGEST_MAGIC1	   'D'
#define WIRE_VERSION	   1
#define USER_MSGS_KEPT	   64
#define FORWARD_TIMEOUT_MS 2000
#define USER_MSG_SHOWN	   4096

struct gconn {
	uv_tcp_t tcp;
	struct cluster *c;
	uint32_t id;
	bool attached; /* gossip knows this stream */
	bool closing;
	uv_connect_t connect;
	uv_shutdown_t shutdown;
	struct gconn *prev, *next;
};

struct wreq {
	uv_write_t req;
	uv_buf_t buf;
	uint8_t data[];
};

struct udp_req {
	uv_udp_send_t req;
	uv_buf_t buf;
	uint8_t data[];
};

struct since {
	char *name;
	int64_t ms;
};

struct cluster {
	struct node *n;
	struct gossip *g;
	struct keyring *kr;
	uv_udp_t udp;
	uv_tcp_t listener;
	uv_timer_t timer;
	int open_handles;
	bool stopping, closed;
	struct gconn *conns;
	uint8_t udp_buf[UDP_BUF];
	char *name;
	char *http_url;
	int64_t start_ms;
	int64_t last_join_ms; /* views disagree for a while after a join: decisions wait */
	struct since *since;  /* members alive since (our clock), excluding ourselves */
	size_t nsince, since_cap;
	uint64_t announces_sent, announces_received, pulls_started, digests_received;
	uint64_t misses_forwarded;
	uint64_t fetches_by_rank[4]; /* upstream fetches made while ranked 0, 1, 2, 3+ */
	/* User messages that are not ours (another application on the cluster, or an operator's
	 * test message), the last USER_MSGS_KEPT for the admin API. */
	struct user_msg {
		uint8_t *data;
		size_t len;
		int64_t at_unix;
	} msgs[USER_MSGS_KEPT];
	size_t msgs_next;
	uint64_t msgs_total;
};

/* ---- addresses ---- */

static int to_wire(const struct sockaddr *sa, struct gossip_wire_addr *a, uint16_t *port)
{
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const void *)sa;
		memcpy(a->b, &in->sin_addr, 4);
		a->len = 4;
		*port = ntohs(in->sin_port);
		return 0;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const void *)sa;
		/* IPv4-mapped peers are IPv4 to the cluster (E4). */
		if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
			memcpy(a->b, in6->sin6_addr.s6_addr + 12, 4);
			a->len = 4;
		} else {
			memcpy(a->b, &in6->sin6_addr, 16);
			a->len = 16;
		}
		*port = ntohs(in6->sin6_port);
		return 0;
	}
	return -EAFNOSUPPORT;
}

static void from_wire(const struct gossip_wire_addr *a, uint16_t port, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (a->len == 4) {
		struct sockaddr_in *in = (void *)ss;
		in->sin_family = AF_INET;
		memcpy(&in->sin_addr, a->b, 4);
		in->sin_port = htons(port);
	} else {
		struct sockaddr_in6 *in6 = (void *)ss;
		in6->sin6_family = AF_INET6;
		memcpy(&in6->sin6_addr, a->b, 16);
		in6->sin6_port = htons(port);
	}
}

static void fmt_addr(const struct gossip_wire_addr *a, uint16_t port, char *out, size_t len)
{
	char ip[INET6_ADDRSTRLEN] = "?";
	inet_ntop(a->len == 4 ? AF_INET : AF_INET6, a->b, ip, sizeof(ip));
	snprintf(out, len, a->len == 4 ? "%s:%u" : "[%s]:%u", ip, port);
}

/* ---- handles ---- */

static void pump(struct cluster *c);

static void maybe_free(struct cluster *c)
{
	if (!c->closed || c->open_handles > 0 || c->conns)
		return;
	gossip_free(c->g);
	keyring_free(c->kr);
	for (size_t i = 0; i < c->nsince; i++)
		free(c->since[i].name);
	free(c->since);
	for (size_t i = 0; i < USER_MSGS_KEPT; i++)
		free(c->msgs[i].data);
	free(c->name);
	free(c->http_url);
	free(c);
}

static void on_handle_closed(uv_handle_t *h)
{
	struct cluster *c = h->data;
	c->open_handles--;
	maybe_free(c);
}

static void on_conn_closed(uv_handle_t *h)
{
	struct gconn *k = h->data;
	struct cluster *c = k->c;
	if (k->prev)
		k->prev->next = k->next;
	else
		c->conns = k->next;
	if (k->next)
		k->next->prev = k->prev;
	free(k);
	maybe_free(c);
}

static void conn_close(struct gconn *k)
{
	if (k->closing)
		return;
	k->closing = true;
	uv_close((uv_handle_t *)&k->tcp, on_conn_closed);
}

/* The peer or the network ended the stream. */
static void conn_lost(struct gconn *k)
{
	struct cluster *c = k->c;
	if (k->attached && !c->closed) {
		k->attached = false;
		gossip_stream_closed(c->g, (int64_t)uv_now(c->n->loop), k->id);
		pump(c);
	}
	conn_close(k);
}

static struct gconn *conn_new(struct cluster *c)
{
	struct gconn *k = xcalloc(1, sizeof(*k));
	k->c = c;
	uv_tcp_init(c->n->loop, &k->tcp);
	k->tcp.data = k;
	k->next = c->conns;
	if (c->conns)
		c->conns->prev = k;
	c->conns = k;
	return k;
}

static struct gconn *conn_find(struct cluster *c, uint32_t id)
{
	for (struct gconn *k = c->conns; k; k = k->next)
		if (k->attached && k->id == id)
			return k;
	return NULL;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	(void)suggested;
	struct gconn *k = h->data;
	buf->base = (char *)k->c->udp_buf;
	buf->len = sizeof(k->c->udp_buf);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct gconn *k = s->data;
	struct cluster *c = k->c;
	if (nread < 0) {
		conn_lost(k);
		return;
	}
	if (nread == 0 || !k->attached || c->closed)
		return;
	gossip_stream_recv(c->g, (int64_t)uv_now(c->n->loop), k->id, (const uint8_t *)buf->base,
			   (size_t)nread);
	pump(c);
}

static void on_connected(uv_connect_t *req, int status)
{
	struct gconn *k = req->data;
	struct cluster *c = k->c;
	if (k->closing)
		return;
	if (status < 0) {
		log_debug("gossip", "stream %u: connect: %s", k->id, uv_strerror(status));
		conn_lost(k);
		return;
	}
	uv_read_start((uv_stream_t *)&k->tcp, on_alloc, on_read);
	if (k->attached && !c->closed) {
		gossip_stream_connected(c->g, (int64_t)uv_now(c->n->loop), k->id);
		pump(c);
	}
}

static void on_written(uv_write_t *req, int status)
{
	(void)status; /* a failed write shows up as a read error or the exchange's timeout */
	free(req->data);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
	(void)status;
	conn_close(req->data);
}

static void on_accept(uv_stream_t *server, int status)
{
	struct cluster *c = server->data;
	if (status < 0 || c->closed)
		return;
	struct gconn *k = conn_new(c);
	if (uv_accept(server, (uv_stream_t *)&k->tcp) < 0) {
		conn_close(k);
		return;
	}
	struct sockaddr_storage ss;
	int len = sizeof(ss);
	struct gossip_wire_addr a = {0};
	uint16_t port = 0;
	if (uv_tcp_getpeername(&k->tcp, (struct sockaddr *)&ss, &len) < 0 ||
	    to_wire((struct sockaddr *)&ss, &a, &port) < 0) {
		conn_close(k);
		return;
	}
	k->id = gossip_stream_accept(c->g, (int64_t)uv_now(c->n->loop), &a, port);
	k->attached = true;
	uv_read_start((uv_stream_t *)&k->tcp, on_alloc, on_read);
	pump(c);
}

static void on_udp_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	(void)suggested;
	struct cluster *c = h->data;
	buf->base = (char *)c->udp_buf;
	buf->len = sizeof(c->udp_buf);
}

static void on_udp(uv_udp_t *h, ssize_t nread, const uv_buf_t *buf, const struct sockaddr *from,
		   unsigned flags)
{
	struct cluster *c = h->data;
	struct gossip_wire_addr a = {0};
	uint16_t port;
	if (nread <= 0 || !from || c->closed || (flags & UV_UDP_PARTIAL))
		return;
	if (to_wire(from, &a, &port) < 0)
		return;
	gossip_recv_packet(c->g, (int64_t)uv_now(c->n->loop), &a, port, (const uint8_t *)buf->base,
			   (size_t)nread);
	pump(c);
}

static void on_udp_sent(uv_udp_send_t *req, int status)
{
	(void)status;
	free(req->data);
}

static void send_udp(struct cluster *c, const struct gossip_out *o)
{
	struct sockaddr_storage ss;
	from_wire(&o->addr, o->port, &ss);
	uv_buf_t b = uv_buf_init((char *)o->data, (unsigned)o->len);
	int r = uv_udp_try_send(&c->udp, &b, 1, (const struct sockaddr *)&ss);
	if (r >= 0)
		return;
	if (r != UV_EAGAIN && r != UV_ENOSYS)
		return; /* unreachable and the like: gossip treats it as loss */
	struct udp_req *q = xmalloc(sizeof(*q) + o->len);
	memcpy(q->data, o->data, o->len);
	q->buf = uv_buf_init((char *)q->data, (unsigned)o->len);
	q->req.data = q;
	if (uv_udp_send(&q->req, &c->udp, &q->buf, 1, (const struct sockaddr *)&ss, on_udp_sent) <
	    0)
		free(q);
}

/* ---- events ---- */

static void since_set(struct cluster *c, const char *name, int64_t ms)
{
	for (size_t i = 0; i < c->nsince; i++)
		if (strcmp(c->since[i].name, name) == 0) {
			c->since[i].ms = ms;
			return;
		}
	c->since = xgrow(c->since, &c->since_cap, c->nsince + 1, sizeof(*c->since));
	c->since[c->nsince++] = (struct since){xstrdup(name), ms};
}

static void since_del(struct cluster *c, const char *name)
{
	for (size_t i = 0; i < c->nsince; i++)
		if (strcmp(c->since[i].name, name) == 0) {
			free(c->since[i].name);
			c->since[i] = c->since[--c->nsince];
			return;
		}
}

static int64_t since_get(const struct cluster *c, const char *name)
{
	for (size_t i = 0; i < c->nsince; i++)
		if (strcmp(c->since[i].name, name) == 0)
			return c->since[i].ms;
	return INT64_MAX;
}

/* The responder URL a member advertises in its metadata (Serf tag "http"), into out. */
static bool member_url(const struct gossip_member *m, char *out, size_t len)
{
	struct gossip_wire_str v;
	if (gossip_wire_tag_get(m->meta, m->meta_len, "http", &v) < 0 || v.len == 0 || v.len >= len)
		return false;
	memcpy(out, v.p, v.len);
	out[v.len] = 0;
	return strncmp(out, "http://", 7) == 0 || strncmp(out, "https://", 8) == 0;
}

static bool pull_from_timeout(struct cluster *c, const char *holder, struct entry_info *ei,
			      enum certid_alg alg, uint64_t timeout_ms)
{
	const struct gossip_member *m = gossip_member_find(c->g, holder);
	char url[512];
	if (!m || m->state == GOSSIP_DEAD || m->state == GOSSIP_LEFT ||
	    !member_url(m, url, sizeof(url)))
		return false;
	if (refresher_pull(c->n, ei, alg, url, timeout_ms) < 0)
		return false;
	c->pulls_started++;
	return true;
}

static void pull_from(struct cluster *c, const char *holder, struct entry_info *ei,
		      enum certid_alg alg)
{
	pull_from_timeout(c, holder, ei, alg, 0);
}

static bool newer_than_held(const struct entry_info *ei, enum certid_alg alg, int64_t this_update)
{
	const struct cache_resp *held = cache_entry_resp(ei->entry, alg);
	return !held || held->meta.this_update_unix < this_update;
}

static uint64_t get_be64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

static void put_be64(struct buf *b, uint64_t v)
{
	uint8_t p[8];
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
	buf_append(b, p, 8);
}

/*
 * Announcement: 'S' 'A' version | alg | name hash | key hash (hash length of alg each) |
 * serial length | serial | thisUpdate (8, BE) | nextUpdate (8, BE) | holder length | holder.
 */
static void on_announce(struct cluster *c, const uint8_t *p, size_t len)
{
	if (len < 4 || p[2] != WIRE_VERSION || p[3] >= CERTID_ALG_COUNT)
		return;
	struct certid id = {.alg = p[3]};
	size_t hl = certid_hash_len(id.alg), off = 4;
	if (len < off + 2 * hl + 1)
		return;
	memcpy(id.name_hash, p + off, hl);
	memcpy(id.key_hash, p + off + hl, hl);
	off += 2 * hl;
	id.serial_len = p[off++];
	if (id.serial_len == 0 || id.serial_len > CERTID_SERIAL_MAX ||
	    len < off + id.serial_len + 17)
		return;
	memcpy(id.serial, p + off, id.serial_len);
	off += id.serial_len;
	int64_t tu = (int64_t)get_be64(p + off);
	off += 16; /* nextUpdate: informational */
	size_t nl = p[off++];
	if (nl == 0 || len < off + nl)
		return;
	char holder[256];
	memcpy(holder, p + off, nl);
	holder[nl] = 0;
	c->announces_received++;
	if (strcmp(holder, c->name) == 0)
		return;
	struct cache_entry *e = cache_lookup(c->n->cache, &id);
	struct entry_info *ei = e ? cache_entry_user(e) : NULL;
	if (!ei)
		return; /* not ours to keep: a request for it will find it through the cluster */
	struct slot_state *s = entry_slot(ei, id.alg);
	if (tu <= s->cluster_seen_tu || !newer_than_held(ei, id.alg, tu))
		return;
	/* Memberlist hands user broadcasts to the application and forgets them: spreading them
	 * further is ours to do (as Serf does with its events). Relaying each piece of news once
	 * makes it epidemic; the key keeps one message per entry in the queue. */
	s->cluster_seen_tu = tu;
	char key[64];
	snprintf(key, sizeof(key), "e:%016llx:%u",
		 (unsigned long long)cache_entry_key_hash(ei->entry), (unsigned)id.alg);
	gossip_broadcast(c->g, key, p, len);
	pull_from(c, holder, ei, id.alg);
}

struct digest_ctx {
	struct cluster *c;
	const uint8_t *items; /* sorted? no: scanned per entry through a small index */
	size_t n;
	const char *holder;
	struct buf *out;
};

static void digest_one(struct cache_entry *e, void *ud)
{
	struct digest_ctx *d = ud;
	struct entry_info *ei = cache_entry_user(e);
	if (!ei)
		return;
	for (int a = 0; a < CERTID_ALG_COUNT; a++) {
		const struct cache_resp *r = cache_entry_resp(e, (enum certid_alg)a);
		if (!r)
			continue;
		put_be64(d->out, cache_entry_key_hash(e));
		buf_append_byte(d->out, (uint8_t)a);
		put_be64(d->out, (uint64_t)r->meta.this_update_unix);
	}
}

/* Digest: 'S' 'D' version | holder length | holder | (key hash 8, alg 1, thisUpdate 8)… */
static void local_state(void *ud, bool join, struct buf *out)
{
	(void)join;
	struct cluster *c = ud;
	/* Leaving: the node's entries are being torn down; peers keep theirs. */
	if (c->stopping)
		return;
	size_t nl = strlen(c->name);
	buf_append_byte(out, ANNOUNCE_MAGIC0);
	buf_append_byte(out, DIGEST_MAGIC1);
	buf_append_byte(out, WIRE_VERSION);
	buf_append_byte(out, (uint8_t)nl);
	buf_append(out, c->name, nl);
	struct digest_ctx d = {.c = c, .out = out};
	cache_foreach(c->n->cache, digest_one, &d);
}

#define DIGEST_ITEM 17

static int cmp_digest(const void *a, const void *b)
{
	uint64_t x = get_be64(a), y = get_be64(b);
	if (x != y)
		return x < y ? -1 : 1;
	return (int)((const uint8_t *)a)[8] - (int)((const uint8_t *)b)[8];
}

static void digest_check(struct cache_entry *e, void *ud)
{
	struct digest_ctx *d = ud;
	struct entry_info *ei = cache_entry_user(e);
	if (!ei)
		return;
	uint8_t key[9];
	uint64_t kh = cache_entry_key_hash(e);
	for (int i = 7; i >= 0; i--, kh >>= 8)
		key[i] = (uint8_t)kh;
	for (int a = 0; a < CERTID_ALG_COUNT; a++) {
		key[8] = (uint8_t)a;
		const uint8_t *hit = bsearch(key, d->items, d->n, DIGEST_ITEM, cmp_digest);
		if (hit && newer_than_held(ei, (enum certid_alg)a, (int64_t)get_be64(hit + 9)))
			pull_from(d->c, d->holder, ei, (enum certid_alg)a);
	}
}

static void on_remote_state(struct cluster *c, const uint8_t *p, size_t len)
{
	if (len < 4 || p[0] != ANNOUNCE_MAGIC0 || p[1] != DIGEST_MAGIC1 || p[2] != WIRE_VERSION)
		return;
	size_t nl = p[3];
	if (nl == 0 || len < 4 + nl || (len - 4 - nl) % DIGEST_ITEM != 0)
		return;
	char holder[256];
	memcpy(holder, p + 4, nl);
	holder[nl] = 0;
	if (strcmp(holder, c->name) == 0)
		return;
	c->digests_received++;
	size_t n = (len - 4 - nl) / DIGEST_ITEM;
	uint8_t *items = xmemdup(p + 4 + nl, n * DIGEST_ITEM);
	qsort(items, n, DIGEST_ITEM, cmp_digest);
	struct digest_ctx d = {.c = c, .items = items, .n = n, .holder = holder};
	cache_foreach(c->n->cache, digest_check, &d);
	free(items);
}

static void on_event(struct cluster *c, const struct gossip_out *o)
{
	int64_t now = (int64_t)uv_now(c->n->loop);
	switch (o->event) {
	case GOSSIP_EV_JOIN:
		if (strcmp(o->name, c->name) != 0) {
			since_set(c, o->name, now);
			c->last_join_ms = now;
			log_info("gossip", "%s: member alive", o->name);
		}
		break;
	case GOSSIP_EV_LEAVE:
		if (strcmp(o->name, c->name) != 0) {
			since_del(c, o->name);
			log_info("gossip", "%s: member %s", o->name,
				 o->state == GOSSIP_LEFT ? "left" : "failed");
		}
		break;
	case GOSSIP_EV_SUSPECT:
		log_notice("gossip", "%s: member suspected", o->name);
		break;
	case GOSSIP_EV_UPDATE:
		break;
	case GOSSIP_EV_USER:
		if (c->stopping)
			break; /* the entries are being torn down */
		if (o->len >= 2 && o->data[0] == ANNOUNCE_MAGIC0 && o->data[1] == ANNOUNCE_MAGIC1) {
			on_announce(c, o->data, o->len);
		} else {
			struct user_msg *m = &c->msgs[c->msgs_next++ % USER_MSGS_KEPT];
			free(m->data);
			m->len = MIN(o->len, (size_t)USER_MSG_SHOWN);
			m->data = m->len ? xmemdup(o->data, m->len) : NULL;
			m->at_unix = node_now_unix();
			c->msgs_total++;
			log_debug("gossip", "user message of %zu bytes", o->len);
		}
		break;
	case GOSSIP_EV_REMOTE_STATE:
		if (!c->stopping)
			on_remote_state(c, o->data, o->len);
		break;
	case GOSSIP_EV_JOIN_DONE:
		if (o->count > 0)
			log_info("gossip", "joined the cluster through %d seed(s)", o->count);
		else
			log_warning("gossip",
				    "no seed answered; running alone and retrying every reconnect "
				    "interval");
		break;
	case GOSSIP_EV_LEAVE_DONE:
		if (c->stopping && !c->closed) {
			c->closed = true;
			uv_close((uv_handle_t *)&c->udp, on_handle_closed);
			uv_close((uv_handle_t *)&c->listener, on_handle_closed);
			uv_close((uv_handle_t *)&c->timer, on_handle_closed);
			for (struct gconn *k = c->conns; k; k = k->next)
				conn_close(k);
		}
		break;
	}
}

static void on_timer(uv_timer_t *t)
{
	struct cluster *c = t->data;
	if (c->closed)
		return;
	gossip_tick(c->g, (int64_t)uv_now(c->n->loop));
	pump(c);
}

static void pump(struct cluster *c)
{
	struct gossip_out o;
	while (!c->closed && gossip_poll(c->g, &o)) {
		switch (o.type) {
		case GOSSIP_OUT_PACKET:
			send_udp(c, &o);
			break;
		case GOSSIP_OUT_STREAM_OPEN: {
			struct gconn *k = conn_new(c);
			k->id = o.stream;
			k->attached = true;
			k->connect.data = k;
			struct sockaddr_storage ss;
			from_wire(&o.addr, o.port, &ss);
			if (uv_tcp_connect(&k->connect, &k->tcp, (const struct sockaddr *)&ss,
					   on_connected) < 0) {
				k->attached = false;
				gossip_stream_closed(c->g, (int64_t)uv_now(c->n->loop), o.stream);
				conn_close(k);
			}
			break;
		}
		case GOSSIP_OUT_STREAM_WRITE: {
			struct gconn *k = conn_find(c, o.stream);
			if (!k)
				break;
			struct wreq *w = xmalloc(sizeof(*w) + o.len);
			memcpy(w->data, o.data, o.len);
			w->buf = uv_buf_init((char *)w->data, (unsigned)o.len);
			w->req.data = w;
			if (uv_write(&w->req, (uv_stream_t *)&k->tcp, &w->buf, 1, on_written) < 0)
				free(w);
			break;
		}
		case GOSSIP_OUT_STREAM_CLOSE: {
			struct gconn *k = conn_find(c, o.stream);
			if (!k)
				break;
			k->attached = false;
			k->shutdown.data = k;
			/* Half-close after the queued writes, then close. */
			if (uv_shutdown(&k->shutdown, (uv_stream_t *)&k->tcp, on_shutdown) < 0)
				conn_close(k);
			break;
		}
		case GOSSIP_OUT_EVENT:
			on_event(c, &o);
			break;
		}
	}
	if (c->closed)
		return;
	int64_t now = (int64_t)uv_now(c->n->loop);
	int64_t d = gossip_next_deadline_ms(c->g);
	if (d == INT64_MAX) {
		uv_timer_stop(&c->timer);
		return;
	}
	uv_timer_start(&c->timer, on_timer, d > now ? (uint64_t)(d - now) : 0, 0);
}

/* ---- election ---- */

/* Our rank for key among the members alive for at least stable ms in our view (0 = first), and
 * the first-ranked name (NULL when nobody counts yet). */
static unsigned rank_among(struct cluster *c, uint64_t key, int64_t now, int64_t stable,
			   const char **ret_owner)
{
	size_t nm = gossip_member_count(c->g), n = 0;
	const char **names = xmalloc((nm + 1) * sizeof(*names));
	for (size_t i = 0; i < nm; i++) {
		const struct gossip_member *m = gossip_member_at(c->g, i);
		/* Suspect members keep their rank: suspicion is not failure (GOSSIP.md §2.2). */
		if (strcmp(m->name, c->name) == 0 ||
		    (m->state != GOSSIP_ALIVE && m->state != GOSSIP_SUSPECT))
			continue;
		int64_t since = since_get(c, m->name);
		if (since != INT64_MAX && now - since >= stable)
			names[n++] = m->name;
	}
	unsigned r = elect_rank(key, c->name, now - c->start_ms >= stable, names, n, ret_owner);
	free(names);
	return r;
}

/* The election proper: only members stable for cluster.stable_after count. */
static unsigned rank_of(struct cluster *c, uint64_t key, int64_t now, const char **ret_owner)
{
	return rank_among(c, key, now, (int64_t)c->n->cfg.cluster_stable_ms, ret_owner);
}

int64_t cluster_fetch_time(struct node *n, struct entry_info *ei, enum certid_alg alg, int64_t now)
{
	struct cluster *c = n->cluster;
	if (!c || c->stopping)
		return now;
	const struct cache_resp *held0 = cache_entry_resp(ei->entry, alg);
	struct slot_state *ms = entry_slot(ei, alg);
	if (!held0 && ms->cluster_forward_until) {
		/* Our miss went to the owner: wait for its answer, then ask the upstreams. */
		if (now < ms->cluster_forward_until)
			return ms->cluster_forward_until;
		ms->cluster_forward_until = 0;
		ms->cluster_miss = CLUSTER_MISS_NONE;
		ms->cluster_rank = 0;
		return now;
	}
	if (!held0 && ms->cluster_miss != CLUSTER_MISS_NONE) {
		/* A client is waiting and nothing is held: no settling, no fallback delays. A miss
		 * a peer forwarded is fetched here; our own goes to the owner once, with a short
		 * timeout, and to the upstreams if that brings nothing. */
		enum cluster_miss why = ms->cluster_miss;
		ms->cluster_miss = CLUSTER_MISS_NONE;
		if (why == CLUSTER_MISS_LOCAL) {
			const char *owner = NULL;
			uint64_t key = cache_entry_key_hash(ei->entry);
			int64_t t = (int64_t)uv_now(n->loop);
			rank_of(c, key, t, &owner);
			/* Settling after a start or a join: nobody counts yet. Ask the member the
			 * views are about to agree on, ranking every live member as of now, so that
			 * when the same miss reaches several nodes of a cluster that starts cold,
			 * the CA is asked once, not once per node. */
			if (!owner)
				rank_among(c, key, t, 0, &owner);
			if (owner && strcmp(owner, c->name) != 0 &&
			    pull_from_timeout(c, owner, ei, alg, FORWARD_TIMEOUT_MS)) {
				c->misses_forwarded++;
				ms->cluster_forward_until = now + (FORWARD_TIMEOUT_MS + 999) / 1000;
				return ms->cluster_forward_until;
			}
		}
		ms->cluster_rank = 0;
		return now;
	}
	/* Settling: for stable_after after we start or see a member join, the views of the
	 * members may still differ (a new member is stable in one view and not yet in another),
	 * and two nodes could both believe they rank first. The disk cache serves meanwhile. */
	int64_t quiet_ms = (int64_t)uv_now(n->loop) - MAX(c->start_ms, c->last_join_ms);
	int64_t stable = (int64_t)n->cfg.cluster_stable_ms;
	struct slot_state *s = entry_slot(ei, alg);
	if (quiet_ms < stable)
		return now + (stable - quiet_ms + 999) / 1000;
	const char *owner = NULL;
	unsigned r = rank_of(c, cache_entry_key_hash(ei->entry), (int64_t)uv_now(n->loop), &owner);
	const struct cache_resp *held = cache_entry_resp(ei->entry, alg);
	int64_t base;
	if (held && held->refresh_unix <= now) {
		base = held->refresh_unix;
	} else {
		/* No response yet (or a retry): count from when we first wanted it. */
		if (!s->cluster_wanted_unix)
			s->cluster_wanted_unix = now;
		base = s->cluster_wanted_unix;
	}
	int64_t delta = (int64_t)(n->cfg.cluster_fallback_ms / 1000), at = now;
	/* Before stepping in, a lower rank asks the owner once: the announcement may simply not
	 * have reached us (gossip is probabilistic), and a pull costs the CA nothing. */
	switch (elect_decide(r, base, delta, now, s->cluster_asked_base == base, &at)) {
	case ELECT_WAIT:
		return at;
	case ELECT_ASK_OWNER:
		s->cluster_asked_base = base;
		if (owner)
			pull_from(c, owner, ei, alg);
		return at;
	case ELECT_FETCH:
		break;
	}
	s->cluster_wanted_unix = 0;
	s->cluster_rank = (uint8_t)(r > 255 ? 255 : r);
	return now;
}

void cluster_announce(struct node *n, struct entry_info *ei, enum certid_alg alg)
{
	struct cluster *c = n->cluster;
	if (!c)
		return;
	struct slot_state *s = entry_slot(ei, alg);
	c->fetches_by_rank[s->cluster_rank < 3 ? s->cluster_rank : 3]++;
	const struct cache_resp *r = cache_entry_resp(ei->entry, alg);
	struct certid id;
	if (!r || cache_entry_certid(ei->entry, alg, &id) < 0)
		return;
	size_t hl = certid_hash_len(id.alg), nl = strlen(c->name);
	struct buf b = BUF_INIT;
	buf_append_byte(&b, ANNOUNCE_MAGIC0);
	buf_append_byte(&b, ANNOUNCE_MAGIC1);
	buf_append_byte(&b, WIRE_VERSION);
	buf_append_byte(&b, id.alg);
	buf_append(&b, id.name_hash, hl);
	buf_append(&b, id.key_hash, hl);
	buf_append_byte(&b, id.serial_len);
	buf_append(&b, id.serial, id.serial_len);
	put_be64(&b, (uint64_t)r->meta.this_update_unix);
	put_be64(&b, (uint64_t)r->meta.next_update_unix);
	buf_append_byte(&b, (uint8_t)nl);
	buf_append(&b, c->name, nl);
	char key[64];
	snprintf(key, sizeof(key), "e:%016llx:%u",
		 (unsigned long long)cache_entry_key_hash(ei->entry), (unsigned)alg);
	if (gossip_broadcast(c->g, key, b.data, b.len) == 0)
		c->announces_sent++;
	buf_done(&b);
	pump(c);
}

bool cluster_is_peer_url(const struct node *n, const char *url)
{
	const struct cluster *c = n->cluster;
	if (!c || !url)
		return false;
	size_t nm = gossip_member_count(c->g);
	for (size_t i = 0; i < nm; i++) {
		char u[512];
		const struct gossip_member *m = gossip_member_at(c->g, i);
		if (strcmp(m->name, c->name) != 0 && member_url(m, u, sizeof(u)) &&
		    strcmp(u, url) == 0)
			return true;
	}
	return false;
}

const char *cluster_owner(struct node *n, const struct entry_info *ei)
{
	struct cluster *c = n->cluster;
	if (!c)
		return NULL;
	const char *owner = NULL;
	rank_of(c, cache_entry_key_hash(ei->entry), (int64_t)uv_now(n->loop), &owner);
	return owner;
}

/* ---- metrics and admin ---- */

static const char *state_name(enum gossip_state s)
{
	switch (s) {
	case GOSSIP_ALIVE:
		return "alive";
	case GOSSIP_SUSPECT:
		return "suspect";
	case GOSSIP_DEAD:
		return "failed";
	case GOSSIP_LEFT:
		return "left";
	}
	return "?";
}

struct own_ctx {
	struct cluster *c;
	int64_t now;
	size_t owned, entries;
};

static void count_owned(struct cache_entry *e, void *ud)
{
	struct own_ctx *o = ud;
	if (!cache_entry_user(e))
		return;
	o->entries++;
	if (rank_of(o->c, cache_entry_key_hash(e), o->now, NULL) == 0)
		o->owned++;
}

void cluster_metrics(struct node *n, struct buf *out)
{
	struct cluster *c = n->cluster;
	if (!c)
		return;
	size_t by_state[4] = {0};
	size_t nm = gossip_member_count(c->g);
	for (size_t i = 0; i < nm; i++)
		by_state[gossip_member_at(c->g, i)->state]++;
	buf_printf(out, "# HELP stapled_cluster_members Members in this node's view, by state.\n"
			"# TYPE stapled_cluster_members gauge\n");
	for (int s = 0; s < 4; s++)
		buf_printf(out, "stapled_cluster_members{state=\"%s\"} %zu\n",
			   state_name((enum gossip_state)s), by_state[s]);
	struct own_ctx o = {.c = c, .now = (int64_t)uv_now(n->loop)};
	cache_foreach(n->cache, count_owned, &o);
	buf_printf(out,
		   "# HELP stapled_cluster_owned_entries Entries this node is first in rank "
		   "to refresh.\n"
		   "# TYPE stapled_cluster_owned_entries gauge\n"
		   "stapled_cluster_owned_entries %zu\n",
		   o.owned);
	buf_printf(out,
		   "# HELP stapled_cluster_health Lifeguard local health (0 is best).\n"
		   "# TYPE stapled_cluster_health gauge\n"
		   "stapled_cluster_health %u\n",
		   gossip_health(c->g));
	buf_printf(out,
		   "# HELP stapled_cluster_announcements_total Fetch announcements sent and "
		   "received.\n"
		   "# TYPE stapled_cluster_announcements_total counter\n"
		   "stapled_cluster_announcements_total{direction=\"sent\"} %llu\n"
		   "stapled_cluster_announcements_total{direction=\"received\"} %llu\n",
		   (unsigned long long)c->announces_sent,
		   (unsigned long long)c->announces_received);
	buf_printf(out,
		   "# HELP stapled_cluster_pulls_total Responses pulled from peers (after an "
		   "announcement or a digest).\n"
		   "# TYPE stapled_cluster_pulls_total counter\n"
		   "stapled_cluster_pulls_total %llu\n",
		   (unsigned long long)c->pulls_started);
	buf_printf(out,
		   "# HELP stapled_cluster_misses_forwarded_total Requests for entries without a "
		   "response, forwarded once to the entry's owner.\n"
		   "# TYPE stapled_cluster_misses_forwarded_total counter\n"
		   "stapled_cluster_misses_forwarded_total %llu\n",
		   (unsigned long long)c->misses_forwarded);
	buf_printf(out,
		   "# HELP stapled_cluster_upstream_fetches_total Upstream fetches that brought "
		   "a new response, by this node's rank for the entry.\n"
		   "# TYPE stapled_cluster_upstream_fetches_total counter\n");
	for (int r = 0; r < 4; r++)
		buf_printf(out, "stapled_cluster_upstream_fetches_total{rank=\"%d%s\"} %llu\n", r,
			   r == 3 ? "+" : "", (unsigned long long)c->fetches_by_rank[r]);
	const struct gossip_stats *st = gossip_get_stats(c->g);
	buf_printf(out,
		   "# HELP stapled_gossip_packets_total UDP gossip packets.\n"
		   "# TYPE stapled_gossip_packets_total counter\n"
		   "stapled_gossip_packets_total{direction=\"sent\"} %llu\n"
		   "stapled_gossip_packets_total{direction=\"received\"} %llu\n"
		   "stapled_gossip_packets_total{direction=\"dropped\"} %llu\n"
		   "# HELP stapled_gossip_probes_total Failure-detection probes.\n"
		   "# TYPE stapled_gossip_probes_total counter\n"
		   "stapled_gossip_probes_total{result=\"sent\"} %llu\n"
		   "stapled_gossip_probes_total{result=\"failed\"} %llu\n"
		   "# HELP stapled_gossip_push_pulls_total State exchanges over TCP.\n"
		   "# TYPE stapled_gossip_push_pulls_total counter\n"
		   "stapled_gossip_push_pulls_total{result=\"ok\"} %llu\n"
		   "stapled_gossip_push_pulls_total{result=\"failed\"} %llu\n"
		   "# HELP stapled_gossip_refutes_total Times this node refuted suspicion of "
		   "itself.\n"
		   "# TYPE stapled_gossip_refutes_total counter\n"
		   "stapled_gossip_refutes_total %llu\n",
		   (unsigned long long)st->packets_sent, (unsigned long long)st->packets_received,
		   (unsigned long long)st->packets_dropped, (unsigned long long)st->probes,
		   (unsigned long long)st->probes_failed, (unsigned long long)st->push_pulls,
		   (unsigned long long)st->push_pulls_failed, (unsigned long long)st->refutes);
}

void cluster_members_json(struct node *n, struct buf *out)
{
	struct cluster *c = n->cluster;
	buf_append_byte(out, '[');
	if (!c) {
		buf_append_byte(out, ']');
		return;
	}
	size_t nm = gossip_member_count(c->g);
	int64_t now = (int64_t)uv_now(n->loop);
	for (size_t i = 0; i < nm; i++) {
		const struct gossip_member *m = gossip_member_at(c->g, i);
		char addr[64], url[512] = "";
		fmt_addr(&m->addr, m->port, addr, sizeof(addr));
		member_url(m, url, sizeof(url));
		bool self = strcmp(m->name, c->name) == 0;
		int64_t since = self ? c->start_ms : since_get(c, m->name);
		buf_append_str(out, i ? ",{\"name\":" : "{\"name\":");
		admin_json_str(out, m->name);
		buf_printf(out, ",\"addr\":\"%s\",\"state\":\"%s\",\"incarnation\":%u,\"self\":%s",
			   addr, state_name(m->state), m->incarnation, self ? "true" : "false");
		buf_append_str(out, ",\"http\":");
		admin_json_str(out, url);
		buf_printf(out, ",\"stable\":%s}",
			   since != INT64_MAX && now - since >= (int64_t)n->cfg.cluster_stable_ms
				   ? "true"
				   : "false");
	}
	buf_append_byte(out, ']');
}

/* ---- start and stop ---- */

static int load_keyring(const char *path, struct keyring **ret)
{
	FILE *f = fopen(path, "re");
	if (!f)
		return -errno;
	struct keyring *kr = NULL;
	char line[512];
	int r = 0;
	while (fgets(line, sizeof(line), f)) {
		size_t len = strcspn(line, "\r\n");
		line[len] = 0;
		char *p = line;
		while (*p == ' ' || *p == '\t')
			p++;
		if (!*p || *p == '#')
			continue;
		struct buf key = BUF_INIT;
		if (ocsp_http_base64_decode(p, strlen(p), &key) < 0) {
			r = -EINVAL;
		} else if (!kr) {
			r = keyring_new(key.data, key.len, &kr);
		} else {
			int a = keyring_add(kr, key.data, key.len);
			r = a < 0 ? a : 0;
		}
		if (key.data)
			explicit_bzero(key.data, key.cap);
		buf_done(&key);
		if (r < 0)
			break;
	}
	explicit_bzero(line, sizeof(line));
	fclose(f);
	if (r == 0 && !kr)
		r = -ENOENT;
	if (r < 0) {
		keyring_free(kr);
		return r;
	}
	*ret = kr;
	return 0;
}

static void default_http_url(const struct node *n, const struct gossip_wire_addr *adv, char *out,
			     size_t len)
{
	struct sockaddr_storage ss;
	char ip[INET6_ADDRSTRLEN] = "127.0.0.1";
	unsigned port = 8889;
	if (n->cfg.listen.n && config_parse_addr(n->cfg.listen.v[0], &ss) == 0) {
		if (ss.ss_family == AF_INET) {
			const struct sockaddr_in *in = (const void *)&ss;
			port = ntohs(in->sin_port);
			if (in->sin_addr.s_addr != htonl(INADDR_ANY))
				inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip));
			else if (adv->len == 4)
				inet_ntop(AF_INET, adv->b, ip, sizeof(ip));
		} else {
			const struct sockaddr_in6 *in6 = (const void *)&ss;
			port = ntohs(in6->sin6_port);
			if (!IN6_IS_ADDR_UNSPECIFIED(&in6->sin6_addr))
				inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof(ip));
			else
				inet_ntop(adv->len == 4 ? AF_INET : AF_INET6, adv->b, ip,
					  sizeof(ip));
			if (strchr(ip, ':')) {
				snprintf(out, len, "http://[%s]:%u/", ip, port);
				return;
			}
		}
	}
	snprintf(out, len, "http://%s:%u/", ip, port);
}

int cluster_start(struct node *n)
{
	const struct config *cfg = &n->cfg;
	if (!cfg->cluster_bind)
		return 0;
	struct sockaddr_storage bind_ss, adv_ss;
	if (config_parse_addr(cfg->cluster_bind, &bind_ss) < 0)
		return -EINVAL;
	adv_ss = bind_ss;
	if (cfg->cluster_advertise && config_parse_addr(cfg->cluster_advertise, &adv_ss) < 0)
		return -EINVAL;
	struct gossip_wire_addr adv;
	uint16_t adv_port;
	to_wire((struct sockaddr *)&adv_ss, &adv, &adv_port);
	static const uint8_t zero[16];
	if (memcmp(adv.b, zero, adv.len) == 0) {
		log_crit("gossip", "cluster.bind %s is a wildcard: set cluster.advertise",
			 cfg->cluster_bind);
		return -EINVAL;
	}
	struct cluster *c = xcalloc(1, sizeof(*c));
	c->n = n;
	char host[256] = "";
	if (cfg->node_name)
		c->name = xstrdup(cfg->node_name);
	else if (gethostname(host, sizeof(host) - 1) == 0 && host[0])
		c->name = xstrdup(host);
	else
		c->name = xstrdup("stapled");
	char url[512];
	if (cfg->cluster_http_url)
		snprintf(url, sizeof(url), "%s", cfg->cluster_http_url);
	else
		default_http_url(n, &adv, url, sizeof(url));
	c->http_url = xstrdup(url);
	if (cfg->cluster_keyring) {
		int r = load_keyring(cfg->cluster_keyring, &c->kr);
		if (r < 0) {
			log_crit("gossip", "%s: cannot load the keyring: %s", cfg->cluster_keyring,
				 r == -EINVAL	? "keys must be base64 of 16, 24 or 32 bytes"
				 : r == -ENOENT ? "no key in it"
						: strerror(-r));
			maybe_free((c->closed = true, c));
			return r;
		}
	}
	struct gossip_config gc = {
		.name = c->name,
		.addr = adv,
		.port = adv_port,
		.keyring = c->kr,
		.compress = cfg->cluster_compress,
		.seed = node_random(n),
		.local_state = local_state,
		.ud = c,
	};
	gossip_profile_get(cfg->cluster_profile ? cfg->cluster_profile : "lan", &gc.profile);
	/* Announcements ride the same queue as membership news; the "local" profile's 2
	 * retransmissions lose too many of them in a burst of refreshes (measured with
	 * tests/integration/test_cluster.py), so never go below memberlist's LAN value. */
	gc.profile.retransmit_mult = MAX(gc.profile.retransmit_mult, 4u);
	if (cfg->cluster_delegate_version)
		config_parse_delegate_version(cfg->cluster_delegate_version, gc.delegate_vsn);
	const char *tags[] = {"http", c->http_url};
	struct buf meta = BUF_INIT;
	if (gossip_wire_encode_tags(tags, 1, &meta) == 0) {
		gc.meta = meta.data;
		gc.meta_len = meta.len;
	}
	c->start_ms = (int64_t)uv_now(n->loop);
	int r = gossip_new(&gc, c->start_ms, &c->g);
	buf_done(&meta);
	if (r < 0) {
		log_crit("gossip", "cannot start gossip: %s", strerror(-r));
		maybe_free((c->closed = true, c));
		return r;
	}
	uv_udp_init(n->loop, &c->udp);
	uv_tcp_init(n->loop, &c->listener);
	uv_timer_init(n->loop, &c->timer);
	c->udp.data = c->listener.data = c->timer.data = c;
	c->open_handles = 3;
	n->cluster = c;
	r = uv_udp_bind(&c->udp, (struct sockaddr *)&bind_ss, UV_UDP_REUSEADDR);
	if (r == 0)
		r = uv_udp_recv_start(&c->udp, on_udp_alloc, on_udp);
	if (r == 0)
		r = uv_tcp_bind(&c->listener, (struct sockaddr *)&bind_ss, 0);
	if (r == 0)
		r = uv_listen((uv_stream_t *)&c->listener, 128, on_accept);
	if (r < 0) {
		log_crit("gossip", "%s: cannot bind: %s", cfg->cluster_bind, uv_strerror(r));
		c->closed = true;
		n->cluster = NULL;
		uv_close((uv_handle_t *)&c->udp, on_handle_closed);
		uv_close((uv_handle_t *)&c->listener, on_handle_closed);
		uv_close((uv_handle_t *)&c->timer, on_handle_closed);
		return r;
	}
	log_info("gossip", "node %s on %s (%s, %s), responder %s", c->name, cfg->cluster_bind,
		 cfg->cluster_profile ? cfg->cluster_profile : "lan",
		 c->kr ? "encrypted" : "not encrypted", c->http_url);
	if (cfg->cluster_join.n) {
		struct gossip_peer *seeds = xcalloc(cfg->cluster_join.n, sizeof(*seeds));
		size_t ns = 0;
		for (size_t i = 0; i < cfg->cluster_join.n; i++) {
			struct sockaddr_storage ss;
			if (config_parse_addr(cfg->cluster_join.v[i], &ss) == 0 &&
			    to_wire((struct sockaddr *)&ss, &seeds[ns].addr, &seeds[ns].port) == 0)
				ns++;
		}
		if (ns)
			gossip_join(c->g, c->start_ms, seeds, ns);
		free(seeds);
	}
	pump(c);
	return 0;
}

void cluster_stop(struct node *n)
{
	struct cluster *c = n->cluster;
	if (!c || c->stopping)
		return;
	c->stopping = true;
	n->cluster = NULL;
	log_info("gossip", "leaving the cluster");
	gossip_leave(c->g, (int64_t)uv_now(n->loop), LEAVE_TIMEOUT_MS);
	pump(c);
}

/* ---- admin: user messages and keyring ---- */

static bool query_get(const char *q, size_t qlen, const char *key, char *out, size_t len)
{
	size_t kl = strlen(key);
	for (size_t i = 0; i < qlen;) {
		size_t end = i;
		while (end < qlen && q[end] != '&')
			end++;
		if (end - i > kl && memcmp(q + i, key, kl) == 0 && q[i + kl] == '=') {
			size_t vl = end - i - kl - 1;
			if (vl >= len)
				return false;
			memcpy(out, q + i + kl + 1, vl);
			out[vl] = 0;
			return true;
		}
		i = end + 1;
	}
	return false;
}

int cluster_admin(struct node *n, bool post, const char *target, size_t tlen, const uint8_t *body,
		  size_t blen, struct buf *out)
{
	struct cluster *c = n->cluster;
	const char *q = memchr(target, '?', tlen);
	size_t plen = q ? (size_t)(q - target) : tlen;
	size_t qlen = q ? tlen - plen - 1 : 0;
	if (q)
		q++;
#define PATH(p) (plen == strlen(p) && memcmp(target, p, plen) == 0)
	if (!c) {
		buf_append_str(out, "{\"error\":\"no cluster configured\"}\n");
		return 409;
	}
	int64_t now = (int64_t)uv_now(n->loop);
	if (post && PATH("/admin/cluster/broadcast")) {
		int r = gossip_broadcast(c->g, NULL, body, blen);
		pump(c);
		buf_printf(out, "{\"ok\":%s}\n", r == 0 ? "true" : "false");
		return r == 0 ? 200 : 413;
	}
	if (post && PATH("/admin/cluster/send")) {
		char to[256], rel[8] = "0";
		if (!q || !query_get(q, qlen, "to", to, sizeof(to))) {
			buf_append_str(out, "{\"error\":\"to=NAME is required\"}\n");
			return 400;
		}
		query_get(q, qlen, "reliable", rel, sizeof(rel));
		int r = gossip_send_user(c->g, now, to, body, blen, strcmp(rel, "1") == 0);
		pump(c);
		if (r < 0) {
			buf_printf(out, "{\"error\":\"%s\"}\n",
				   r == -ENOENT ? "no such member" : strerror(-r));
			return r == -ENOENT ? 404 : 413;
		}
		buf_append_str(out, "{\"ok\":true}\n");
		return 200;
	}
	if (!post && PATH("/admin/cluster/messages")) {
		buf_printf(out, "{\"total\":%llu,\"messages\":[",
			   (unsigned long long)c->msgs_total);
		size_t kept = MIN(c->msgs_total, (uint64_t)USER_MSGS_KEPT), first = 1;
		for (size_t i = 0; i < kept; i++) {
			const struct user_msg *m =
				&c->msgs[(c->msgs_next - kept + i) % USER_MSGS_KEPT];
			buf_append_str(out, first ? "{\"data\":\"" : ",{\"data\":\"");
			first = 0;
			ocsp_http_base64_encode(m->data, m->len, out);
			buf_printf(out, "\",\"time\":%lld}", (long long)m->at_unix);
		}
		buf_append_str(out, "]}\n");
		return 200;
	}
#undef PATH
	buf_append_str(out, "{\"error\":\"not found\"}\n");
	return 404;
}

void cluster_reload(struct node *n)
{
	struct cluster *c = n->cluster;
	if (!c || !c->kr || !n->cfg.cluster_keyring)
		return;
	struct keyring *fresh = NULL;
	int r = load_keyring(n->cfg.cluster_keyring, &fresh);
	if (r < 0) {
		log_err("gossip", "%s: cannot reload the keyring (%s), keeping the current keys",
			n->cfg.cluster_keyring, strerror(-r));
		return;
	}
	/* memberlist's rotation, in place: install the new keys, switch the primary, then drop
	 * the keys the file no longer lists (the primary cannot be removed before it changed). */
	for (size_t i = 0; i < keyring_count(fresh); i++) {
		size_t len;
		const uint8_t *k = keyring_get(fresh, i, &len);
		keyring_add(c->kr, k, len);
	}
	size_t plen;
	const uint8_t *primary = keyring_get(fresh, 0, &plen);
	keyring_use(c->kr, primary, plen);
	for (size_t i = keyring_count(c->kr); i-- > 0;) {
		size_t len;
		const uint8_t *k = keyring_get(c->kr, i, &len);
		bool keep = false;
		for (size_t j = 0; j < keyring_count(fresh) && !keep; j++) {
			size_t fl;
			const uint8_t *f = keyring_get(fresh, j, &fl);
			keep = fl == len && memcmp(f, k, len) == 0;
		}
		if (!keep) {
			uint8_t copy[32];
			memcpy(copy, k, len);
			keyring_remove(c->kr, copy, len);
			explicit_bzero(copy, sizeof(copy));
		}
	}
	log_info("gossip", "keyring reloaded: %zu key(s)", keyring_count(c->kr));
	keyring_free(fresh);
}
