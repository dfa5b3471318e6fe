/* SPDX-License-Identifier: Apache-2.0 */
#include "node/server.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "node/config.h"
#include "node/h2.h"
#include "proto/tls.h"
#include "node/log.h"
#include "proto/mem.h"

/* Read in chunks of this size; a connection's unconsumed input is bounded by the limits. */
#define READ_CHUNK 16384
/* Stop reading while this much output waits for a slow reader. */
#define OUT_HIGH_WATER (256u * 1024u)
/* Refusals at the connection limit are logged at most this often, with the count since. */
#define REFUSE_LOG_MS 10000
/* How long a closing connection drains the peer's input before giving up. */
#define LINGER_MS 2000

struct listener {
	uv_tcp_t tcp;
	struct server *srv;
	enum listener_kind kind;
	struct tls_ctx *tls; /* TLS listener: connections start with a handshake */
	struct listener *next;
	char addr[64];
};

struct server {
	uv_loop_t *loop;
	struct node *node;
	struct server_limits limits;
	server_handler_fn handlers[2];
	struct listener *listeners;
	struct conn *conns;
	size_t n_conns;
	size_t n_conns_kind[2];
	uint64_t refused[2];	 /* connections refused at the limit, by listener kind */
	uint64_t refused_logged; /* refused[] total when the last refusal was logged */
	uint64_t refused_log_ms; /* when it was logged */
	uint64_t requests[SERVER_PROTO_COUNT];
	size_t open_handles; /* listeners and connections not yet fully closed */
	bool closing;
	void (*on_closed)(void *ud);
	void *on_closed_ud;
};

static void conn_process(struct conn *c);
static void conn_flush(struct conn *c);
static void conn_h2_flush(struct conn *c);
static void conn_h2_input(struct conn *c);
static void conn_start_h2(struct conn *c);
static void conn_resume(struct conn *c);
static void conn_close(struct conn *c);
static void conn_arm_timer(struct conn *c);

static void server_maybe_closed(struct server *s)
{
	if (!s->closing || s->open_handles > 0)
		return;
	void (*cb)(void *) = s->on_closed;
	void *ud = s->on_closed_ud;
	free(s);
	if (cb)
		cb(ud);
}

/* ---- connections ---- */

static void on_conn_handle_closed(uv_handle_t *h)
{
	struct conn *c = h->data;
	if (--c->open_handles > 0)
		return;
	struct server *s = c->srv;
	buf_done(&c->in);
	buf_done(&c->out);
	buf_done(&c->wbuf);
	buf_done(&c->cin);
	buf_done(&c->cout);
	free(c->scratch);
	free(c);
	s->open_handles--;
	server_maybe_closed(s);
}

static void conn_close(struct conn *c)
{
	if (c->closing)
		return;
	c->closing = true;
	if (c->waiters)
		responder_cancel_waits(c, 0);
	if (c->h2) {
		/* Parked streams were cancelled above: freeing reports no one. */
		h2_session_free(c->h2);
		c->h2 = NULL;
	}
	if (c->tls) {
		tls_conn_free(c->tls);
		c->tls = NULL;
	}
	struct server *s = c->srv;
	if (c->prev)
		c->prev->next = c->next;
	else
		s->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	s->n_conns--;
	s->n_conns_kind[c->kind]--;
	uv_close((uv_handle_t *)&c->tcp, on_conn_handle_closed);
	uv_close((uv_handle_t *)&c->timer, on_conn_handle_closed);
}

static void on_timer(uv_timer_t *t)
{
	struct conn *c = t->data;
	uint64_t now = uv_now(c->srv->loop);
	if (c->draining) {
		conn_close(c);
		return;
	}
	if (c->waiters) {
		/* Parked requests' deadlines are checked here: this is the connection's only
		 * timer. The responder answers the expired ones (tryLater). */
		responder_waits_expired(c, now);
		if (c->closing)
			return;
	}
	if (c->waiting) {
		conn_arm_timer(c);
		return;
	}
	if (c->request_start_ms && !c->h2 && !c->close_after_write) {
		log_info("http", "%s: request not complete within %llu ms, closing", c->peer,
			 (unsigned long long)c->srv->limits.request_timeout_ms);
		conn_error_response(c, &c->out, 408, "Request Timeout", "request timeout\n");
		conn_flush(c);
		return;
	}
	if (c->writing) {
		/* A client that stopped reading: give up once it has been idle as long as an
		 * idle keep-alive connection may be. */
		if (now - c->last_activity_ms >= c->srv->limits.idle_timeout_ms) {
			log_info("http", "%s: not reading its responses, closing", c->peer);
			conn_close(c);
		} else {
			conn_arm_timer(c);
		}
		return;
	}
	if (now - c->last_activity_ms < c->srv->limits.idle_timeout_ms) {
		conn_arm_timer(c); /* woken for a waiter's deadline only */
		return;
	}
	log_debug("http", "%s: idle, closing", c->peer);
	conn_close(c);
}

static void conn_arm_timer(struct conn *c)
{
	if (c->closing)
		return;
	uint64_t now = uv_now(c->srv->loop);
	uint64_t deadline = UINT64_MAX;
	for (const struct waiter *w = c->waiters; w; w = w->conn_next)
		deadline = MIN(deadline, w->deadline_ms);
	if (c->draining)
		deadline = c->drain_start_ms + LINGER_MS;
	else if (c->waiting)
		; /* HTTP/1 parked: only the waiter's deadline matters */
	else if (c->request_start_ms && !c->h2)
		deadline = MIN(deadline, c->request_start_ms + c->srv->limits.request_timeout_ms);
	else
		deadline = MIN(deadline, c->last_activity_ms + c->srv->limits.idle_timeout_ms);
	uv_timer_start(&c->timer, on_timer, deadline > now ? deadline - now : 0, 0);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
	struct conn *c = h->data;
	(void)suggested;
	if (c->draining) {
		/* Discarded input: reuse the start of the buffer. */
		buf_reset(&c->in);
		c->in_off = 0;
	}
	/* TLS connections read ciphertext beside the plaintext they decrypt into `in`. */
	struct buf *dst = c->tls && !c->draining ? &c->cin : &c->in;
	buf_reserve(dst, READ_CHUNK);
	b->base = (char *)dst->data + dst->len;
	b->len = dst->cap - dst->len - 1;
}

static void conn_stop_reading(struct conn *c)
{
	if (c->reading) {
		uv_read_stop((uv_stream_t *)&c->tcp);
		c->reading = false;
	}
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *b);

static void conn_start_reading(struct conn *c)
{
	if (!c->reading && !c->closing) {
		if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) == 0)
			c->reading = true;
	}
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *b)
{
	struct conn *c = st->data;
	(void)b;
	if (nread < 0) {
		/* EOF or error. Requests already complete in the buffer were answered (we parse
		 * eagerly), so there is nothing left to do but close. */
		if (nread != UV_EOF && nread != UV_ECONNRESET)
			log_debug("http", "%s: read: %s", c->peer, uv_strerror((int)nread));
		if (c->waiting || c->writing || c->out.len) {
			/* Half-closed by a client still owed a response (HTTP/1.0 clients may
			 * shut down their write side): answer first, then close. */
			conn_stop_reading(c);
			c->close_after_write = true;
			return;
		}
		conn_close(c);
		return;
	}
	if (nread == 0)
		return;
	c->last_activity_ms = uv_now(c->srv->loop);
	if (c->draining) {
		conn_arm_timer(c);
		return;
	}
	if (c->tls) {
		int r = tls_conn_input(c->tls, c->cin.data, (size_t)nread, &c->in);
		buf_reset(&c->cin);
		if (r < 0) {
			/* Handshake failure or the peer's close_notify: send what is pending (an
			 * alert, answers to what was decrypted), then close. */
			log_debug("tls", "%s: %s", c->peer,
				  r == -ESHUTDOWN ? "closed" : "TLS error");
			c->close_after_write = true;
		}
		if (c->in.len == c->in_off) {
			conn_flush(c); /* handshake records */
			conn_arm_timer(c);
			return;
		}
	} else {
		c->in.len += (size_t)nread;
		c->in.data[c->in.len] = 0;
	}
	if (c->h2) {
		conn_h2_input(c);
		return;
	}
	if (!c->request_start_ms)
		c->request_start_ms = c->last_activity_ms;
	conn_process(c);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
	struct conn *c = req->data;
	(void)status;
	if (c->closing)
		return;
	/* Keep reading (and discarding) until the peer closes or LINGER_MS passes (counted from
	 * now, whatever the peer keeps sending). */
	c->draining = true;
	c->drain_start_ms = uv_now(c->srv->loop);
	conn_start_reading(c);
	conn_arm_timer(c);
}

static void conn_finish_close(struct conn *c)
{
	if (c->closing || c->draining)
		return;
	c->draining = true; /* no more requests are processed */
	if (uv_shutdown(&c->shutdown_req, (uv_stream_t *)&c->tcp, on_shutdown) != 0)
		conn_close(c);
}

static void on_write(uv_write_t *w, int status)
{
	struct conn *c = w->data;
	c->writing = false;
	buf_reset(&c->wbuf);
	if (c->closing)
		return;
	if (status < 0) {
		log_debug("http", "%s: write: %s", c->peer, uv_strerror(status));
		conn_close(c);
		return;
	}
	c->last_activity_ms = uv_now(c->srv->loop);
	conn_flush(c);
	if (!c->closing && !c->writing && !c->close_after_write && !c->waiting) {
		/* Output drained below the high-water mark: take input again. */
		conn_start_reading(c);
		conn_process(c);
	}
}

static void conn_flush(struct conn *c)
{
	if (c->closing || c->writing)
		return;
	/* What goes on the wire: the plaintext, or for TLS its records. */
	struct buf *wire = &c->out;
	if (c->tls) {
		if (c->out.len && tls_conn_handshake_done(c->tls)) {
			int r = tls_conn_write(c->tls, c->out.data, c->out.len);
			if (r < 0 && r != -EAGAIN) {
				conn_close(c);
				return;
			}
			if (r == 0)
				buf_reset(&c->out);
		}
		tls_conn_output(c->tls, &c->cout);
		wire = &c->cout;
	}
	if (wire->len) {
		uv_buf_t b = uv_buf_init((char *)wire->data, (unsigned)wire->len);
		int n = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
		if (n < 0 && n != UV_EAGAIN) {
			conn_close(c);
			return;
		}
		if (n > 0)
			buf_consume(wire, (size_t)n);
		if (wire->len) {
			/* Swap the remainder into the in-flight buffer: `wire` keeps collecting. */
			struct buf tmp = c->wbuf;
			c->wbuf = *wire;
			*wire = tmp;
			buf_reset(wire);
			b = uv_buf_init((char *)c->wbuf.data, (unsigned)c->wbuf.len);
			c->write_req.data = c;
			if (uv_write(&c->write_req, (uv_stream_t *)&c->tcp, &b, 1, on_write) != 0) {
				conn_close(c);
				return;
			}
			c->writing = true;
			if (c->wbuf.len + c->out.len >= OUT_HIGH_WATER)
				conn_stop_reading(c);
			conn_arm_timer(c);
			return;
		}
	}
	if (c->close_after_write && !c->waiting && !c->out.len)
		conn_finish_close(c);
}

void conn_error_response(struct conn *c, struct buf *out, int status, const char *reason,
			 const char *msg)
{
	buf_printf(out,
		   "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n"
		   "Connection: close\r\n\r\n%s",
		   status, reason, strlen(msg), msg);
	c->close_after_write = true;
}

static void conn_parse_error(struct conn *c, int err)
{
	switch (err) {
	case -EMSGSIZE:
		conn_error_response(c, &c->out, 431, "Request Header Fields Too Large",
				    "request header too large\n");
		break;
	case -EFBIG:
		conn_error_response(c, &c->out, 413, "Content Too Large",
				    "request body too large\n");
		break;
	case -ENOTSUP:
		conn_error_response(c, &c->out, 501, "Not Implemented",
				    "unsupported HTTP version or transfer coding\n");
		break;
	default:
		conn_error_response(c, &c->out, 400, "Bad Request", "malformed HTTP request\n");
		break;
	}
	log_info("http", "%s: bad HTTP request (%s), closing", c->peer, strerror(-err));
}

static void conn_process(struct conn *c)
{
	struct server *s = c->srv;
	if (c->h2) {
		conn_h2_flush(c);
		return;
	}
	if (!c->http1 && c->in.len > c->in_off) {
		/* A connection that opens with the HTTP/2 preface speaks h2c (prior knowledge);
		 * anything else is HTTP/1 for good. */
		const uint8_t *p = c->in.data + c->in_off;
		size_t avail = c->in.len - c->in_off;
		if (h2_is_preface(p, avail)) {
			if (avail < 24)
				return; /* the rest of the preface is coming */
			conn_start_h2(c);
			return;
		}
		c->http1 = true;
	}
	while (!c->closing && !c->waiting && !c->close_after_write && !c->draining) {
		/* A client that pipelines without reading must not make us queue answers without
		 * bound: stop parsing (and reading) until the output drains (on_write resumes). */
		if (c->out.len + c->wbuf.len >= OUT_HIGH_WATER) {
			conn_stop_reading(c);
			break;
		}
		size_t avail = c->in.len - c->in_off;
		if (avail == 0)
			break;
		if (!c->scratch)
			c->scratch = xmalloc(s->limits.http.max_body_bytes + 1);
		struct http1_request req;
		size_t consumed = 0;
		int r = http1_parse(c->in.data + c->in_off, avail, &s->limits.http, c->scratch,
				    false, &req, &consumed);
		if (r == HTTP1_INCOMPLETE)
			break;
		if (r < 0) {
			conn_parse_error(c, r);
			break;
		}
		s->requests[req.version_minor ? SERVER_PROTO_HTTP11 : SERVER_PROTO_HTTP10]++;
		enum handler_result hr = s->handlers[c->kind](s->node, c, &req, &c->out);
		c->in_off += consumed;
		if (!req.keep_alive)
			c->close_after_write = true;
		c->request_start_ms = c->in_off < c->in.len ? uv_now(s->loop) : 0;
		if (hr == HANDLER_WAIT)
			break;
		/* Keep the unconsumed tail small: compact once half the buffer is consumed. */
		if (c->in_off > c->in.len / 2) {
			buf_consume(&c->in, c->in_off);
			c->in_off = 0;
		}
	}
	if (c->closing)
		return;
	if (c->in_off == c->in.len) {
		buf_reset(&c->in);
		c->in_off = 0;
	}
	if (c->waiting || c->close_after_write)
		conn_stop_reading(c);
	conn_flush(c);
	conn_arm_timer(c);
}

/* ---- HTTP/2 ---- */

/* Writes what the session has to send; ends the connection when the session is finished. Never
 * called from inside the session's own callbacks (nghttp2 forbids sending there): those
 * deliveries are flushed when h2_session_recv returns. */
static void conn_h2_flush(struct conn *c)
{
	if (c->closing || !c->h2 || c->in_h2_recv)
		return;
	int r = h2_session_send(c->h2, &c->out);
	if (r <= 0)
		c->close_after_write = true;
	conn_flush(c);
	if (!c->closing && c->out.len + c->wbuf.len >= OUT_HIGH_WATER)
		conn_stop_reading(c);
	conn_arm_timer(c);
}

static void conn_h2_input(struct conn *c)
{
	size_t avail = c->in.len - c->in_off;
	c->in_h2_recv = true;
	int r = h2_session_recv(c->h2, c->in.data + c->in_off, avail);
	c->in_h2_recv = false;
	buf_reset(&c->in);
	c->in_off = 0;
	if (c->closing)
		return;
	if (r < 0)
		log_info("h2", "%s: protocol error, closing", c->peer);
	conn_h2_flush(c);
}

/* Converts a rendered HTTP/1.x response (ours: well formed) into an HTTP/2 answer. */
static void h2_reply_from_http1(struct conn *c, int32_t stream_id, const struct buf *resp)
{
	const char *p = (const char *)resp->data, *end = p + resp->len;
	const char *eol = memchr(p, '\n', resp->len);
	if (!eol || resp->len < 12)
		return;
	int status = atoi(p + 9);
	struct h2_header hdrs[16];
	char names[16][40];
	size_t n = 0;
	const char *line = eol + 1;
	while (line < end) {
		eol = memchr(line, '\n', (size_t)(end - line));
		if (!eol)
			return;
		size_t len = (size_t)(eol - line);
		if (len && line[len - 1] == '\r')
			len--;
		if (len == 0) {
			line = eol + 1;
			break;
		}
		const char *colon = memchr(line, ':', len);
		if (colon && (size_t)(colon - line) < sizeof(names[0]) && n < ARRAY_SIZE(hdrs)) {
			size_t nl = (size_t)(colon - line);
			for (size_t i = 0; i < nl; i++)
				names[n][i] = (char)tolower((unsigned char)line[i]);
			names[n][nl] = 0;
			const char *v = colon + 1;
			while (v < line + len && *v == ' ')
				v++;
			/* Connection-specific fields do not exist in HTTP/2; the length is the
			 * session's to send. */
			if (strcmp(names[n], "connection") && strcmp(names[n], "keep-alive") &&
			    strcmp(names[n], "content-length") &&
			    strcmp(names[n], "transfer-encoding")) {
				hdrs[n] = (struct h2_header){names[n], v, (size_t)(line + len - v)};
				n++;
			}
		}
		line = eol + 1;
	}
	int r = h2_respond(c->h2, stream_id, status, hdrs, n, (const uint8_t *)line,
			   (size_t)(end - line));
	if (r < 0 && r != -ENOENT)
		log_warning("h2", "%s: stream %d: cannot answer: %s", c->peer, stream_id,
			    strerror(-r));
}

static bool h2_str_eq(struct h2_str s, const char *lit)
{
	return s.p && s.len == strlen(lit) && memcmp(s.p, lit, s.len) == 0;
}

static void on_h2_request(void *ud, struct h2_session *session, const struct h2_request *r)
{
	struct conn *c = ud;
	struct server *s = c->srv;
	(void)session;
	/* The responder speaks parsed HTTP/1.1; a HEAD is asked as GET so the answer carries its
	 * body's length (the session sends no body for HEAD). */
	struct http1_request req = {
		.method = h2_str_eq(r->method, "GET") || h2_str_eq(r->method, "HEAD") ? HTTP1_GET
			  : h2_str_eq(r->method, "POST")			      ? HTTP1_POST
										      : HTTP1_OTHER,
		.method_token = {r->method.p, r->method.len},
		.target = {r->path.p, r->path.len},
		.version_minor = 1,
		.keep_alive = true,
		.host = {r->authority.p, r->authority.len},
		.content_type = {r->content_type.p, r->content_type.len},
		.if_none_match = {r->if_none_match.p, r->if_none_match.len},
		.if_modified_since = {r->if_modified_since.p, r->if_modified_since.len},
		.stapled_origin = {r->stapled_origin.p, r->stapled_origin.len},
		.stapled_hops = {r->stapled_hops.p, r->stapled_hops.len},
		.stapled_want_issuer = {r->stapled_want_issuer.p, r->stapled_want_issuer.len},
		.stapled_issuer = {r->stapled_issuer.p, r->stapled_issuer.len},
		.stapled_forwarded = {r->stapled_forwarded.p, r->stapled_forwarded.len},
		.content_length = (int64_t)r->body_len,
		.body = r->body,
		.body_len = r->body_len,
	};
	struct buf out = BUF_INIT;
	s->requests[SERVER_PROTO_H2]++;
	c->h2_stream = r->stream_id;
	enum handler_result hr = s->handlers[c->kind](s->node, c, &req, &out);
	c->h2_stream = 0;
	c->close_after_write = false; /* HTTP/1 connection semantics do not apply */
	if (hr == HANDLER_DONE)
		h2_reply_from_http1(c, r->stream_id, &out);
	buf_done(&out);
}

static void on_h2_stream_closed(void *ud, struct h2_session *session, int32_t stream_id)
{
	(void)session;
	responder_cancel_waits(ud, stream_id);
}

static void conn_start_h2(struct conn *c)
{
	struct h2_limits l;
	h2_limits_default(&l);
	l.max_header_bytes = c->srv->limits.http.max_header_bytes;
	l.max_body_bytes = c->srv->limits.http.max_body_bytes;
	static const struct h2_callbacks cb = {
		.on_request = on_h2_request,
		.on_stream_closed = on_h2_stream_closed,
	};
	if (h2_session_new(&l, &cb, c, &c->h2) < 0) {
		conn_close(c);
		return;
	}
	c->request_start_ms = 0;
	conn_h2_input(c);
}

void conn_deliver(struct conn *c, int32_t stream_id, const struct buf *resp)
{
	if (c->closing)
		return;
	if (stream_id == 0) {
		buf_append(&c->out, resp->data, resp->len);
		conn_resume(c);
		return;
	}
	if (!c->h2)
		return;
	h2_reply_from_http1(c, stream_id, resp);
	conn_h2_flush(c);
}

static void conn_resume(struct conn *c)
{
	if (c->closing)
		return;
	c->waiting = false;
	c->request_start_ms = c->in_off < c->in.len ? uv_now(c->srv->loop) : 0;
	conn_flush(c);
	if (c->closing)
		return;
	if (!c->close_after_write && !c->writing)
		conn_start_reading(c);
	conn_process(c);
}

/* ---- listeners ---- */

static void peer_name(uv_tcp_t *t, char *out, size_t len)
{
	struct sockaddr_storage ss;
	int sl = sizeof(ss);
	char host[INET6_ADDRSTRLEN] = "?";
	int port = 0;
	if (uv_tcp_getpeername(t, (struct sockaddr *)&ss, &sl) == 0) {
		if (ss.ss_family == AF_INET6) {
			struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
			uv_ip6_name(a, host, sizeof(host));
			port = ntohs(a->sin6_port);
			snprintf(out, len, "[%s]:%d", host, port);
			return;
		}
		struct sockaddr_in *a = (struct sockaddr_in *)&ss;
		uv_ip4_name(a, host, sizeof(host));
		port = ntohs(a->sin_port);
	}
	snprintf(out, len, "%s:%d", host, port);
}

static void on_reject_closed(uv_handle_t *h)
{
	struct server *s = h->data;
	free(h);
	s->open_handles--;
	server_maybe_closed(s);
}

static void on_connection(uv_stream_t *ls, int status)
{
	struct listener *l = ls->data;
	struct server *s = l->srv;
	if (status < 0) {
		log_warning("http", "%s: accept: %s", l->addr, uv_strerror(status));
		return;
	}
	size_t limit =
		l->kind == LISTENER_OCSP ? s->limits.max_connections : SERVER_ADMIN_MAX_CONNECTIONS;
	if (s->n_conns_kind[l->kind] >= limit) {
		/* Over the limit: accept and close at once, so the backlog does not fill with
		 * clients waiting for nothing. */
		uv_tcp_t *t = xmalloc(sizeof(*t));
		uv_tcp_init(s->loop, t);
		t->data = s;
		s->open_handles++;
		if (uv_accept(ls, (uv_stream_t *)t) == 0) {
			s->refused[l->kind]++;
			uint64_t total = s->refused[0] + s->refused[1], now = uv_now(s->loop);
			/* A flood of clients must not become a flood of log lines. */
			if (s->refused_logged == 0 || now - s->refused_log_ms >= REFUSE_LOG_MS) {
				log_warning("http",
					    "%s: connection limit (%zu) reached, refusing clients "
					    "(%llu refused since the last such line)",
					    l->addr, limit,
					    (unsigned long long)(total - s->refused_logged));
				s->refused_logged = total;
				s->refused_log_ms = now;
			}
		}
		uv_close((uv_handle_t *)t, on_reject_closed);
		return;
	}
	struct conn *c = xcalloc(1, sizeof(*c));
	c->srv = s;
	c->kind = l->kind;
	uv_tcp_init(s->loop, &c->tcp);
	uv_timer_init(s->loop, &c->timer);
	c->tcp.data = c;
	c->timer.data = c;
	c->shutdown_req.data = c;
	c->open_handles = 2;
	s->open_handles++;
	c->next = s->conns;
	if (s->conns)
		s->conns->prev = c;
	s->conns = c;
	s->n_conns++;
	s->n_conns_kind[c->kind]++;
	if (uv_accept(ls, (uv_stream_t *)&c->tcp) != 0) {
		conn_close(c);
		return;
	}
	uv_tcp_nodelay(&c->tcp, 1);
	peer_name(&c->tcp, c->peer, sizeof(c->peer));
	if (l->tls && tls_conn_new(l->tls, &c->tls) < 0) {
		conn_close(c);
		return;
	}
	c->last_activity_ms = uv_now(s->loop);
	conn_start_reading(c);
	conn_arm_timer(c);
}

int server_new(uv_loop_t *loop, struct node *n, const struct server_limits *limits,
	       server_handler_fn ocsp_handler, server_handler_fn admin_handler, struct server **ret)
{
	struct server *s = xcalloc(1, sizeof(*s));
	s->loop = loop;
	s->node = n;
	s->limits = *limits;
	s->handlers[LISTENER_OCSP] = ocsp_handler;
	s->handlers[LISTENER_ADMIN] = admin_handler;
	*ret = s;
	return 0;
}

void server_set_limits(struct server *s, const struct server_limits *limits)
{
	/* Scratch buffers were sized for the old body limit: connections get new ones. */
	if (limits->http.max_body_bytes != s->limits.http.max_body_bytes)
		for (struct conn *c = s->conns; c; c = c->next)
			if (!c->waiting && c->in.len == c->in_off) {
				free(c->scratch);
				c->scratch = NULL;
			}
	size_t old_body = s->limits.http.max_body_bytes;
	s->limits = *limits;
	/* A connection mid-request keeps a scratch of the old size: never let it be exceeded. */
	if (limits->http.max_body_bytes > old_body)
		for (struct conn *c = s->conns; c; c = c->next)
			if (c->scratch) {
				free(c->scratch);
				c->scratch = NULL;
			}
}

int server_listen(struct server *s, const char *addr, enum listener_kind kind)
{
	return server_listen_tls(s, addr, kind, NULL);
}

int server_listen_tls(struct server *s, const char *addr, enum listener_kind kind,
		      struct tls_ctx *tls)
{
	struct sockaddr_storage ss;
	if (config_parse_addr(addr, &ss) < 0)
		return -EINVAL;
	struct listener *l = xcalloc(1, sizeof(*l));
	l->srv = s;
	l->kind = kind;
	l->tls = tls;
	snprintf(l->addr, sizeof(l->addr), "%s", addr);
	uv_tcp_init(s->loop, &l->tcp);
	l->tcp.data = l;
	s->open_handles++;
	int r = uv_tcp_bind(&l->tcp, (const struct sockaddr *)&ss, 0);
	if (r == 0)
		r = uv_listen((uv_stream_t *)&l->tcp, 1024, on_connection);
	l->next = s->listeners;
	s->listeners = l;
	if (r < 0) {
		log_err("http", "%s: cannot listen: %s", addr, uv_strerror(r));
		return r;
	}
	log_info("http", "listening on %s (%s%s)", addr, kind == LISTENER_OCSP ? "ocsp" : "admin",
		 tls ? ", TLS with ALPN h2 and http/1.1" : "");
	return 0;
}

static void on_listener_closed(uv_handle_t *h)
{
	struct listener *l = h->data;
	struct server *s = l->srv;
	free(l);
	s->open_handles--;
	server_maybe_closed(s);
}

void server_stop_listening(struct server *s)
{
	struct listener *l = s->listeners;
	s->listeners = NULL;
	while (l) {
		struct listener *next = l->next;
		uv_close((uv_handle_t *)&l->tcp, on_listener_closed);
		l = next;
	}
}

size_t server_connections(const struct server *s)
{
	return s->n_conns;
}

size_t server_connections_kind(const struct server *s, enum listener_kind kind)
{
	return s->n_conns_kind[kind];
}

uint64_t server_refused_kind(const struct server *s, enum listener_kind kind)
{
	return s->refused[kind];
}

size_t server_connection_budget(uint64_t nofile, size_t max_connections)
{
	uint64_t room = nofile > SERVER_FD_RESERVE ? nofile - SERVER_FD_RESERVE : 0;
	if (room < nofile / 4)
		room = nofile / 4;
	if (room == 0)
		room = 1;
	return room < max_connections ? (size_t)room : max_connections;
}

uint64_t server_requests(const struct server *s, enum server_proto proto)
{
	return s->requests[proto];
}

void server_close(struct server *s, void (*on_closed)(void *ud), void *ud)
{
	s->closing = true;
	s->on_closed = on_closed;
	s->on_closed_ud = ud;
	server_stop_listening(s);
	while (s->conns)
		conn_close(s->conns);
	/* The listeners' and connections' close callbacks finish the job. */
	server_maybe_closed(s);
}
