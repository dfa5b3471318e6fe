/* SPDX-License-Identifier: Apache-2.0 */
/*
 * node/fetch.c against a real libcurl on a real loop: a small HTTP/1.1 server in this file, on the
 * same loop, answers according to the first path segment of each request and records what it
 * received (method, target, headers, body, connection).
 *
 *   /ok/…        200 with Content-Type, ETag, Cache-Control max-age=123, Date and a binary body
 *   /echo/…      200 whose body is the request target (GET) or the request body (POST)
 *   /early/…     103 Early Hints with ETag and Cache-Control, then a bare 200
 *   /nm/…        304 Not Modified
 *   /retry/…     500 with Retry-After: 120
 *   /retrydate/… 503 with Retry-After as an HTTP-date 300 s ahead
 *   /size/N/…    200 with Content-Length N
 *   /chunk/N/…   200 chunked, N bytes
 *   /hang/…      reads the request and never answers
 *   /mid/…       promises 100 bytes, sends 10, closes
 *   /garbage/…   a line that is not HTTP, then closes
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/evp.h>
#include <uv.h>

#include "node/fetch.h"
#undef MIN
#undef MAX
#include "proto/buf.h"
#include "proto/mem.h"

#define CAP_BYTES   1000
#define MAX_REQS    128
#define MAX_GOT	    64
#define WATCHDOG_MS 10000

static const uint8_t ok_body[] = {'O', 'C', 'S', 'P', 0x00, 0x01, 0x02, 0xff, 0x30, 0x82, 0x00};
/* Sun, 06 Nov 1994 08:49:37 GMT */
#define OK_DATE_UNIX 784111777

/* ---------------------------------------------------------------- test server */

struct srv_req {
	char method[16];
	char *target;
	char *headers; /* the header block, lines separated by CRLF */
	uint8_t *body;
	size_t body_len;
	unsigned conn_id;
};

struct srv;

struct srv_conn {
	uv_tcp_t tcp;
	struct srv *srv;
	unsigned id;
	struct buf in;
	bool closing;
	struct srv_conn *prev, *next;
};

struct srv {
	uv_loop_t *loop;
	uv_tcp_t listener;
	uv_tcp_t refuser; /* bound, never listening: connections to it are refused */
	int port;
	int refused_port;
	unsigned accepts;
	unsigned disconnects;
	unsigned open_handles;
	struct srv_req reqs[MAX_REQS];
	size_t n_reqs;
	struct srv_conn *conns;
};

struct srv_write {
	uv_write_t req;
	struct srv_conn *c;
	bool close_after;
	size_t len;
	char data[];
};

static void srv_handle_closed(uv_handle_t *h)
{
	struct srv *s = h->data;
	s->open_handles--;
}

static void srv_conn_closed(uv_handle_t *h)
{
	struct srv_conn *c = h->data;
	c->srv->open_handles--;
	buf_done(&c->in);
	free(c);
}

static void srv_conn_close(struct srv_conn *c)
{
	if (c->closing)
		return;
	c->closing = true;
	if (c->prev)
		c->prev->next = c->next;
	else
		c->srv->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	uv_close((uv_handle_t *)&c->tcp, srv_conn_closed);
}

static void srv_on_write(uv_write_t *req, int status)
{
	struct srv_write *w = (struct srv_write *)req;
	if (w->close_after)
		srv_conn_close(w->c);
	free(w);
}

static void srv_send(struct srv_conn *c, const void *data, size_t len, bool close_after)
{
	struct srv_write *w = xmalloc(sizeof(*w) + len);
	w->c = c;
	w->close_after = close_after;
	w->len = len;
	memcpy(w->data, data, len);
	uv_buf_t b = uv_buf_init(w->data, (unsigned)len);
	if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, srv_on_write) < 0) {
		free(w);
		srv_conn_close(c);
	}
}

static void srv_sendf(struct srv_conn *c, bool close_after, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void srv_sendf(struct srv_conn *c, bool close_after, const char *fmt, ...)
{
	struct buf b = BUF_INIT;
	va_list ap;
	va_start(ap, fmt);
	buf_vprintf(&b, fmt, ap);
	va_end(ap);
	srv_send(c, b.data, b.len, close_after);
	buf_done(&b);
}

/* The first path segment names the behaviour; the second may carry a number. */
static void srv_route(const char *target, char *mode, size_t cap, long *arg)
{
	const char *p = target;
	if (strncmp(p, "http://", 7) == 0) {
		p = strchr(p + 7, '/');
		if (!p)
			p = "/";
	}
	if (*p == '/')
		p++;
	size_t n = strcspn(p, "/?");
	snprintf(mode, cap, "%.*s", (int)n, p);
	*arg = 0;
	if (p[n] == '/')
		*arg = strtol(p + n + 1, NULL, 10);
}

static void srv_answer(struct srv_conn *c, const struct srv_req *r)
{
	char mode[32];
	long arg;

	srv_route(r->target, mode, sizeof(mode), &arg);
	if (strcmp(mode, "ok") == 0) {
		srv_sendf(c, false,
			  "HTTP/1.1 200 OK\r\n"
			  "Content-Type: application/ocsp-response\r\n"
			  "ETag: \"abc\"\r\n"
			  "Cache-Control: public, max-age=123, no-transform\r\n"
			  "Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n"
			  "Content-Length: %zu\r\n\r\n",
			  sizeof(ok_body));
		srv_send(c, ok_body, sizeof(ok_body), false);
	} else if (strcmp(mode, "echo") == 0) {
		const void *body = r->body_len ? (const void *)r->body : r->target;
		size_t len = r->body_len ? r->body_len : strlen(r->target);
		srv_sendf(c, false,
			  "HTTP/1.1 200 OK\r\nContent-Type: application/ocsp-response\r\n"
			  "Content-Length: %zu\r\n\r\n",
			  len);
		srv_send(c, body, len, false);
	} else if (strcmp(mode, "early") == 0) {
		srv_sendf(c, false,
			  "HTTP/1.1 103 Early Hints\r\nETag: \"early\"\r\nCache-Control: "
			  "max-age=9\r\n\r\n"
			  "HTTP/1.1 200 OK\r\nContent-Type: application/ocsp-response\r\n"
			  "Content-Length: 0\r\n\r\n");
	} else if (strcmp(mode, "nm") == 0) {
		srv_sendf(c, false, "HTTP/1.1 304 Not Modified\r\nETag: \"abc\"\r\n\r\n");
	} else if (strcmp(mode, "retry") == 0) {
		srv_sendf(c, false,
			  "HTTP/1.1 500 Internal Server Error\r\nRetry-After: 120\r\n"
			  "Content-Length: 0\r\n\r\n");
	} else if (strcmp(mode, "retrydate") == 0) {
		char date[64];
		struct tm tm;
		time_t when = time(NULL) + 300;
		gmtime_r(&when, &tm);
		strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
		srv_sendf(c, false,
			  "HTTP/1.1 503 Service Unavailable\r\nRetry-After: %s\r\n"
			  "Content-Length: 0\r\n\r\n",
			  date);
	} else if (strcmp(mode, "size") == 0) {
		char *body = xmalloc((size_t)arg);
		memset(body, 'x', (size_t)arg);
		srv_sendf(c, false, "HTTP/1.1 200 OK\r\nContent-Length: %ld\r\n\r\n", arg);
		srv_send(c, body, (size_t)arg, false);
		free(body);
	} else if (strcmp(mode, "chunk") == 0) {
		/* Two chunks, so the cap is crossed in the middle of the body. */
		long first = arg / 2, second = arg - first;
		char *body = xmalloc((size_t)arg);
		memset(body, 'y', (size_t)arg);
		srv_sendf(c, false, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n%lx\r\n",
			  first);
		srv_send(c, body, (size_t)first, false);
		srv_sendf(c, false, "\r\n%lx\r\n", second);
		srv_send(c, body + first, (size_t)second, false);
		srv_sendf(c, false, "\r\n0\r\n\r\n");
		free(body);
	} else if (strcmp(mode, "hang") == 0) {
		/* nothing */
	} else if (strcmp(mode, "mid") == 0) {
		srv_sendf(c, false, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n");
		srv_send(c, "0123456789", 10, true);
	} else if (strcmp(mode, "garbage") == 0) {
		srv_sendf(c, true, "this is not HTTP at all\r\n\r\n");
	} else {
		srv_sendf(c, false, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
	}
}

static size_t srv_content_length(const char *headers)
{
	for (const char *p = headers; p && *p; p = strstr(p, "\r\n"), p = p ? p + 2 : NULL) {
		if (strncasecmp(p, "Content-Length:", 15) == 0)
			return strtoul(p + 15, NULL, 10);
	}
	return 0;
}

static void srv_process(struct srv_conn *c)
{
	struct srv *s = c->srv;

	while (!c->closing && c->in.len > 0) {
		const char *data = (const char *)c->in.data;
		const char *end = memmem(data, c->in.len, "\r\n\r\n", 4);
		if (!end)
			return;
		size_t head_len = (size_t)(end - data) + 4;
		const char *eol = memmem(data, head_len, "\r\n", 2);
		char *headers = xstrndup(eol + 2, (size_t)(end + 2 - (eol + 2)));
		size_t body_len = srv_content_length(headers);
		if (c->in.len < head_len + body_len) {
			free(headers);
			return;
		}
		assert_true(s->n_reqs < MAX_REQS);
		struct srv_req *r = &s->reqs[s->n_reqs++];
		char target[8192];
		assert_int_equal(sscanf(data, "%15s %8191s", r->method, target), 2);
		r->target = xstrdup(target);
		r->headers = headers;
		/* One byte more than the body: the buffer's terminating NUL when it is empty. */
		r->body = xmemdup(data + head_len, body_len + 1);
		r->body_len = body_len;
		r->conn_id = c->id;
		buf_consume(&c->in, head_len + body_len);
		srv_answer(c, r);
	}
}

static void srv_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
	b->base = xmalloc(65536);
	b->len = 65536;
}

static void srv_on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *b)
{
	struct srv_conn *c = st->data;

	if (nread > 0) {
		buf_append(&c->in, b->base, (size_t)nread);
		srv_process(c);
	} else if (nread < 0) {
		c->srv->disconnects++;
		srv_conn_close(c);
	}
	free(b->base);
}

static void srv_on_connection(uv_stream_t *l, int status)
{
	struct srv *s = l->data;

	assert_int_equal(status, 0);
	struct srv_conn *c = xcalloc(1, sizeof(*c));
	c->srv = s;
	c->id = ++s->accepts;
	buf_init(&c->in);
	assert_int_equal(uv_tcp_init(s->loop, &c->tcp), 0);
	c->tcp.data = c;
	s->open_handles++;
	c->next = s->conns;
	if (c->next)
		c->next->prev = c;
	s->conns = c;
	assert_int_equal(uv_accept(l, (uv_stream_t *)&c->tcp), 0);
	assert_int_equal(uv_read_start((uv_stream_t *)&c->tcp, srv_alloc, srv_on_read), 0);
}

static int srv_bind(uv_loop_t *loop, uv_tcp_t *t, void *data)
{
	struct sockaddr_in sa;
	struct sockaddr_storage got;
	int len = sizeof(got);

	assert_int_equal(uv_tcp_init(loop, t), 0);
	t->data = data;
	assert_int_equal(uv_ip4_addr("127.0.0.1", 0, &sa), 0);
	assert_int_equal(uv_tcp_bind(t, (const struct sockaddr *)&sa, 0), 0);
	assert_int_equal(uv_tcp_getsockname(t, (struct sockaddr *)&got, &len), 0);
	return ntohs(((struct sockaddr_in *)&got)->sin_port);
}

static void srv_start(struct srv *s, uv_loop_t *loop)
{
	memset(s, 0, sizeof(*s));
	s->loop = loop;
	s->port = srv_bind(loop, &s->listener, s);
	s->refused_port = srv_bind(loop, &s->refuser, s);
	s->open_handles = 2;
	assert_int_equal(uv_listen((uv_stream_t *)&s->listener, 128, srv_on_connection), 0);
}

static void srv_stop(struct srv *s)
{
	while (s->conns)
		srv_conn_close(s->conns);
	uv_close((uv_handle_t *)&s->listener, srv_handle_closed);
	uv_close((uv_handle_t *)&s->refuser, srv_handle_closed);
}

static void srv_free_reqs(struct srv *s)
{
	for (size_t i = 0; i < s->n_reqs; i++) {
		free(s->reqs[i].target);
		free(s->reqs[i].headers);
		free(s->reqs[i].body);
	}
	s->n_reqs = 0;
}

/* The value of a request header, "" if present and empty, NULL if absent. Static storage. */
static const char *srv_header(const struct srv_req *r, const char *name)
{
	static char val[1024];
	size_t n = strlen(name);

	for (const char *p = r->headers; p && *p; p = strstr(p, "\r\n"), p = p ? p + 2 : NULL) {
		if (strncasecmp(p, name, n) == 0 && p[n] == ':') {
			const char *v = p + n + 1;
			while (*v == ' ')
				v++;
			size_t vl = strcspn(v, "\r\n");
			snprintf(val, sizeof(val), "%.*s", (int)vl, v);
			return val;
		}
	}
	return NULL;
}

/* ---------------------------------------------------------------- fixture */

struct tctx;

struct got {
	struct tctx *t;
	unsigned calls;
	struct fetch_result r;
	uint8_t body[4096];
	/* what to do from inside the callback */
	struct fetch **cancel_other;
	bool cancel_self;
	bool close_fetcher;
	bool start_after_close;
	int start_rc;
};

struct tctx {
	uv_loop_t loop;
	uv_timer_t watchdog;
	uv_timer_t pause;
	bool watchdog_fired;
	bool pause_done;
	struct srv srv;
	struct fetcher_config cfg;
	struct fetcher *fr;
	bool fr_closed;
	unsigned total_calls;
	char url[256];
};

static void on_watchdog(uv_timer_t *t)
{
	*(bool *)t->data = true;
}

#define RUN_UNTIL(t, cond)                                                   \
	do {                                                                 \
		(t)->watchdog_fired = false;                                 \
		uv_timer_start(&(t)->watchdog, on_watchdog, WATCHDOG_MS, 0); \
		while (!(cond) && !(t)->watchdog_fired)                      \
			uv_run(&(t)->loop, UV_RUN_ONCE);                     \
		uv_timer_stop(&(t)->watchdog);                               \
		assert_true(cond);                                           \
	} while (0)

/* Gives wrong callbacks a chance to happen before asserting they did not. */
static void run_for(struct tctx *t, uint64_t ms)
{
	t->pause_done = false;
	uv_timer_start(&t->pause, on_watchdog, ms, 0);
	while (!t->pause_done)
		uv_run(&t->loop, UV_RUN_ONCE);
}

static void set_flag(void *ud)
{
	*(bool *)ud = true;
}

static void on_fetcher_closed(void *ud)
{
	struct tctx *t = ud;
	assert_false(t->fr_closed);
	t->fr_closed = true;
}

static void tctx_open(struct tctx *t)
{
	memset(t, 0, sizeof(*t));
	assert_int_equal(uv_loop_init(&t->loop), 0);
	assert_int_equal(uv_timer_init(&t->loop, &t->watchdog), 0);
	t->watchdog.data = &t->watchdog_fired;
	assert_int_equal(uv_timer_init(&t->loop, &t->pause), 0);
	t->pause.data = &t->pause_done;
	srv_start(&t->srv, &t->loop);
	t->cfg = (struct fetcher_config){
		.connect_timeout_ms = 2000,
		.total_timeout_ms = 5000,
		.max_response_bytes = CAP_BYTES,
		.user_agent = "test-agent/1",
	};
}

static void tctx_new_fetcher(struct tctx *t)
{
	assert_int_equal(fetcher_new(&t->loop, &t->cfg, &t->fr), 0);
}

static int tctx_setup(void **state)
{
	struct tctx *t = xcalloc(1, sizeof(*t));
	tctx_open(t);
	tctx_new_fetcher(t);
	*state = t;
	return 0;
}

/* Closes everything and proves no handle is left behind. */
static void tctx_finish(struct tctx *t)
{
	if (!t->fr_closed) {
		fetcher_close(t->fr, on_fetcher_closed, t);
		RUN_UNTIL(t, t->fr_closed);
	}
	srv_stop(&t->srv);
	uv_close((uv_handle_t *)&t->watchdog, NULL);
	uv_close((uv_handle_t *)&t->pause, NULL);
	assert_int_equal(uv_run(&t->loop, UV_RUN_DEFAULT), 0);
	assert_int_equal(t->srv.open_handles, 0);
	assert_int_equal(uv_loop_close(&t->loop), 0);
	srv_free_reqs(&t->srv);
}

static int tctx_teardown(void **state)
{
	struct tctx *t = *state;
	tctx_finish(t);
	free(t);
	return 0;
}

static void on_fetch(struct fetch *f, const struct fetch_result *r, void *ud)
{
	struct got *g = ud;

	g->calls++;
	g->t->total_calls++;
	g->r = *r;
	assert_true(r->body_len <= sizeof(g->body));
	if (r->body_len)
		memcpy(g->body, r->body, r->body_len);
	g->r.body = g->body;
	if (r->err != 0) {
		assert_int_equal(r->http_status, 0);
		assert_int_equal(r->body_len, 0);
		assert_true(r->errmsg[0] != '\0');
	}
	if (g->cancel_self)
		fetch_cancel(f); /* a no-op: it is being delivered */
	if (g->cancel_other && *g->cancel_other) {
		fetch_cancel(*g->cancel_other);
		*g->cancel_other = NULL;
	}
	if (g->close_fetcher) {
		fetcher_close(g->t->fr, on_fetcher_closed, g->t);
		if (g->start_after_close) {
			struct fetch_request req = {.url = g->t->url, .der = ok_body, .der_len = 3};
			struct fetch *nf = NULL;
			g->start_rc = fetcher_start(g->t->fr, &req, on_fetch, g, &nf);
		}
	}
}

static const char *tctx_url(struct tctx *t, const char *path)
{
	snprintf(t->url, sizeof(t->url), "http://127.0.0.1:%d%s", t->srv.port, path);
	return t->url;
}

static struct fetch *start(struct tctx *t, const char *path, const uint8_t *der, size_t der_len,
			   struct got *g)
{
	struct fetch_request req = {.url = tctx_url(t, path), .der = der, .der_len = der_len};
	struct fetch *f = NULL;
	g->t = t;
	assert_int_equal(fetcher_start(t->fr, &req, on_fetch, g, &f), 0);
	assert_non_null(f);
	return f;
}

/* Independent url-encoded base64 (RFC 5019 §5) to check what reached the server. */
static char *url_b64(const uint8_t *der, size_t len)
{
	unsigned char *b64 = xmalloc(4 * ((len + 2) / 3) + 1);
	int n = EVP_EncodeBlock(b64, der, (int)len);
	struct buf out = BUF_INIT;
	for (int i = 0; i < n; i++) {
		if (b64[i] == '+')
			buf_append_str(&out, "%2B");
		else if (b64[i] == '/')
			buf_append_str(&out, "%2F");
		else if (b64[i] == '=')
			buf_append_str(&out, "%3D");
		else
			buf_append_byte(&out, b64[i]);
	}
	free(b64);
	if (!out.data)
		buf_append_str(&out, "");
	return (char *)buf_steal(&out, NULL);
}

static const uint8_t small_der[] = {0x30, 0x03, 0x0a, 0x01, 0x00};

/* ---------------------------------------------------------------- tests */

static void test_ok_headers(void **state)
{
	struct tctx *t = *state;
	struct got g = {0};

	start(t, "/ok/", small_der, sizeof(small_der), &g);
	assert_int_equal(fetcher_active(t->fr), 1);
	RUN_UNTIL(t, g.calls == 1);
	assert_int_equal(fetcher_active(t->fr), 0);
	assert_int_equal(g.r.err, 0);
	assert_int_equal(g.r.http_status, 200);
	assert_false(g.r.used_post);
	assert_int_equal(g.r.body_len, sizeof(ok_body));
	assert_memory_equal(g.body, ok_body, sizeof(ok_body));
	assert_string_equal(g.r.content_type, "application/ocsp-response");
	assert_string_equal(g.r.etag, "\"abc\"");
	assert_int_equal(g.r.max_age_s, 123);
	assert_int_equal(g.r.retry_after_s, -1);
	assert_int_equal(g.r.date_unix, OK_DATE_UNIX);
	assert_true(g.r.total_ms > 0);

	assert_int_equal(t->srv.n_reqs, 1);
	const struct srv_req *r = &t->srv.reqs[0];
	assert_string_equal(r->method, "GET");
	assert_string_equal(srv_header(r, "User-Agent"), "test-agent/1");
	assert_string_equal(srv_header(r, "Accept"), "application/ocsp-response");
	assert_null(srv_header(r, "If-None-Match"));
	assert_null(srv_header(r, "Expect"));
	run_for(t, 50);
	assert_int_equal(g.calls, 1);
}

static void test_cancel_self_in_callback_is_noop(void **state)
{
	struct tctx *t = *state;
	struct got g = {.cancel_self = true};

	start(t, "/ok/", small_der, sizeof(small_der), &g);
	fetch_cancel(NULL);
	RUN_UNTIL(t, g.calls == 1);
	assert_int_equal(g.r.http_status, 200);
	run_for(t, 50);
	assert_int_equal(g.calls, 1);
}

static void test_not_modified(void **state)
{
	struct tctx *t = *state;
	struct got g = {.t = t};
	struct fetch_request req = {.url = tctx_url(t, "/nm/"),
				    .der = small_der,
				    .der_len = sizeof(small_der),
				    .if_none_match = "\"abc\""};
	struct fetch *f = NULL;

	assert_int_equal(fetcher_start(t->fr, &req, on_fetch, &g, &f), 0);
	RUN_UNTIL(t, g.calls == 1);
	assert_int_equal(g.r.err, 0);
	assert_int_equal(g.r.http_status, 304);
	assert_int_equal(g.r.body_len, 0);
	assert_string_equal(g.r.etag, "\"abc\"");
	assert_string_equal(g.r.content_type, "");
	assert_int_equal(g.r.max_age_s, -1);
	assert_int_equal(g.r.date_unix, -1);
	assert_string_equal(srv_header(&t->srv.reqs[0], "If-None-Match"), "\"abc\"");
}

static void test_http_error_retry_after(void **state)
{
	struct tctx *t = *state;
	struct got g1 = {0}, g2 = {0};

	start(t, "/retry/", small_der, sizeof(small_der), &g1);
	start(t, "/retrydate/", small_der, sizeof(small_der), &g2);
	RUN_UNTIL(t, g1.calls == 1 && g2.calls == 1);
	/* An HTTP error status is an answer, not a transport failure. */
	assert_int_equal(g1.r.err, 0);
	assert_int_equal(g1.r.http_status, 500);
	assert_int_equal(g1.r.retry_after_s, 120);
	assert_int_equal(g2.r.err, 0);
	assert_int_equal(g2.r.http_status, 503);
	assert_in_range(g2.r.retry_after_s, 290, 300);
}

static void test_size_cap(void **state)
{
	struct tctx *t = *state;
	struct got at_cap = {0}, over = {0}, chunk_at_cap = {0}, chunk_over = {0};

	start(t, "/size/1000/", small_der, sizeof(small_der), &at_cap);
	start(t, "/size/1001/", small_der, sizeof(small_der), &over);
	start(t, "/chunk/1000/", small_der, sizeof(small_der), &chunk_at_cap);
	start(t, "/chunk/1001/", small_der, sizeof(small_der), &chunk_over);
	RUN_UNTIL(t, t->total_calls == 4);
	assert_int_equal(at_cap.r.err, 0);
	assert_int_equal(at_cap.r.body_len, CAP_BYTES);
	assert_int_equal(chunk_at_cap.r.err, 0);
	assert_int_equal(chunk_at_cap.r.body_len, CAP_BYTES);
	assert_int_equal(over.r.err, -EMSGSIZE);
	assert_int_equal(chunk_over.r.err, -EMSGSIZE);
	assert_int_equal(over.calls + chunk_over.calls, 2);
}

static void test_timeout(void **state)
{
	struct tctx *t = *state;
	struct got g = {0};

	/* A fetcher with a short total timeout next to the fixture's. */
	struct fetcher *keep = t->fr;
	t->cfg.total_timeout_ms = 300;
	tctx_new_fetcher(t);
	start(t, "/hang/", small_der, sizeof(small_der), &g);
	uint64_t t0 = uv_now(&t->loop);
	RUN_UNTIL(t, g.calls == 1);
	assert_int_equal(g.r.err, -ETIMEDOUT);
	assert_in_range(uv_now(&t->loop) - t0, 250, 3000);
	assert_int_equal(t->srv.n_reqs, 1);
	RUN_UNTIL(t, t->srv.disconnects == 1);
	fetcher_close(t->fr, on_fetcher_closed, t);
	RUN_UNTIL(t, t->fr_closed);
	t->fr_closed = false;
	t->fr = keep;
}

static void test_connection_refused(void **state)
{
	struct tctx *t = *state;
	struct got g = {.t = t};
	char url[64];
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/", t->srv.refused_port);
	struct fetch_request req = {.url = url, .der = small_der, .der_len = sizeof(small_der)};
	struct fetch *f;

	assert_int_equal(fetcher_start(t->fr, &req, on_fetch, &g, &f), 0);
	RUN_UNTIL(t, g.calls == 1);
	assert_int_equal(g.r.err, -ECONNREFUSED);
	assert_string_equal(g.r.content_type, "");
}

static void test_unresolvable_host(void **state)
{
	struct tctx *t = *state;
	struct got g = {.t = t};
	/* RFC 6761: .invalid never resolves, and fails without leaving the machine. */
	struct fetch_request req = {.url = "http://stapled-test.invalid/",
				    .der = small_der,
				    .der_len = sizeof(small_der)};
	struct fetch *f;

	assert_int_equal(fetcher_start(t->fr, &req, on_fetch, &g, &f), 0);
	RUN_UNTIL(t, g.calls == 1);
	assert_int_equal(g.r.err, -EHOSTUNREACH);
}

static void test_broken_replies(void **state)
{
	struct tctx *t = *state;
	struct got mid = {0}, garbage = {0};

	start(t, "/mid/", small_der, sizeof(small_der), &mid);
	start(t, "/garbage/", small_der, sizeof(small_der), &garbage);
	RUN_UNTIL(t, t->total_calls == 2);
	assert_int_equal(mid.r.err, -EPROTO);
	assert_int_equal(garbage.r.err, -EPROTO);
}

static void test_keep_alive_reuse(void **state)
{
	struct tctx *t = *state;
	struct got g1 = {0}, g2 = {0};

	start(t, "/ok/", small_der, sizeof(small_der), &g1);
	RUN_UNTIL(t, g1.calls == 1);
	start(t, "/echo/", small_der, sizeof(small_der), &g2);
	RUN_UNTIL(t, g2.calls == 1);
	assert_int_equal(g1.r.http_status, 200);
	assert_int_equal(g2.r.http_status, 200);
	assert_int_equal(t->srv.n_reqs, 2);
	assert_int_equal(t->srv.accepts, 1);
	assert_int_equal(t->srv.reqs[0].conn_id, t->srv.reqs[1].conn_id);
}

static void check_method(struct tctx *t, const uint8_t *der, size_t len, bool force_post,
			 bool want_post)
{
	struct got g = {.t = t};
	struct fetch_request req = {.url = tctx_url(t, "/echo/ocsp"),
				    .der = der,
				    .der_len = len,
				    .force_post = force_post};
	struct fetch *f;
	size_t before = t->srv.n_reqs;

	assert_int_equal(fetcher_start(t->fr, &req, on_fetch, &g, &f), 0);
	RUN_UNTIL(t, g.calls == 1);
	assert_int_equal(g.r.err, 0);
	assert_int_equal(g.r.used_post, want_post);
	assert_int_equal(t->srv.n_reqs, before + 1);
	const struct srv_req *r = &t->srv.reqs[before];
	if (want_post) {
		assert_string_equal(r->method, "POST");
		assert_string_equal(r->target, "/echo/ocsp");
		assert_string_equal(srv_header(r, "Content-Type"), "application/ocsp-request");
		assert_null(srv_header(r, "Expect"));
		assert_int_equal(r->body_len, len);
		assert_memory_equal(r->body, der, len);
		assert_int_equal(g.r.body_len, len);
		assert_memory_equal(g.body, der, len);
	} else {
		char *enc = url_b64(der, len);
		char want[1024];
		assert_true(strlen(enc) < 255);
		snprintf(want, sizeof(want), "/echo/ocsp/%s", enc);
		assert_string_equal(r->method, "GET");
		assert_string_equal(r->target, want);
		assert_int_equal(r->body_len, 0);
		assert_null(srv_header(r, "Content-Type"));
		free(enc);
	}
}

static void test_get_post_selection(void **state)
{
	struct tctx *t = *state;
	uint8_t zeros[256] = {0};
	uint8_t ones[84];
	/* base64 "++++////AA==": every character that needs %-encoding */
	static const uint8_t special[] = {0xfb, 0xef, 0xbe, 0xff, 0xff, 0xff, 0x00};

	memset(ones, 0xff, sizeof(ones));
	/* 188 zero bytes: 248 'A' + "AAA%3D" = 254 bytes, the longest GET */
	check_method(t, zeros, 188, false, false);
	/* 189: 252 bytes, GET; 190: "AA%3D%3D" makes 260, POST; 192: 256, POST */
	check_method(t, zeros, 189, false, false);
	check_method(t, zeros, 190, false, true);
	check_method(t, zeros, 192, false, true);
	/* 112 base64 characters, all '/': 336 once encoded, so POST although the base64 is short */
	check_method(t, ones, sizeof(ones), false, true);
	check_method(t, special, sizeof(special), false, false);
	assert_string_equal(t->srv.reqs[t->srv.n_reqs - 1].target,
			    "/echo/ocsp/%2B%2B%2B%2B%2F%2F%2F%2FAA%3D%3D");
	check_method(t, small_der, sizeof(small_der), true, true);
}

static void test_large_post_no_expect(void **state)
{
	struct tctx *t = *state;
	struct got g = {.t = t};
	enum {
		LEN = 1100 * 1024
	};
	uint8_t *der = xmalloc(LEN);

	/* curl adds "Expect: 100-continue" to POST bodies over 1 MiB; this server, like openssl
	 * ocsp, never sends 100 Continue, so the fetch would first stall for a second. */
	for (size_t i = 0; i < LEN; i++)
		der[i] = (uint8_t)(i * 7);
	start(t, "/ok/", der, LEN, &g);
	uint64_t t0 = uv_now(&t->loop);
	RUN_UNTIL(t, g.calls == 1);
	assert_true(uv_now(&t->loop) - t0 < 900);
	assert_int_equal(g.r.err, 0);
	assert_int_equal(g.r.http_status, 200);
	assert_true(g.r.used_post);
	assert_null(srv_header(&t->srv.reqs[0], "Expect"));
	assert_int_equal(t->srv.reqs[0].body_len, LEN);
	assert_memory_equal(t->srv.reqs[0].body, der, LEN);
	free(der);
}

/* Headers of an interim 1xx response do not leak into the final one. */
static void test_interim_response(void **state)
{
	struct tctx *t = *state;
	struct got g = {0};

	start(t, "/early/", small_der, sizeof(small_der), &g);
	RUN_UNTIL(t, g.calls == 1);
	assert_int_equal(g.r.err, 0);
	assert_int_equal(g.r.http_status, 200);
	assert_string_equal(g.r.etag, "");
	assert_int_equal(g.r.max_age_s, -1);
	assert_string_equal(g.r.content_type, "application/ocsp-response");
}

static void test_get_url_slash(void **state)
{
	struct tctx *t = *state;
	struct got g1 = {0};

	/* The responder URL already ends in '/': no second one. */
	start(t, "/echo/", small_der, sizeof(small_der), &g1);
	RUN_UNTIL(t, g1.calls == 1);
	char *enc = url_b64(small_der, sizeof(small_der));
	char want[256];
	snprintf(want, sizeof(want), "/echo/%s", enc);
	assert_string_equal(t->srv.reqs[0].target, want);
	assert_int_equal(g1.r.body_len, strlen(want));
	assert_memory_equal(g1.body, want, strlen(want));
	free(enc);
}

static void test_bad_requests(void **state)
{
	struct tctx *t = *state;
	struct got g = {.t = t};
	struct fetch *f = (struct fetch *)&g; /* must stay untouched on failure */
	const char *bad[] = {"ftp://127.0.0.1/", "file:///etc/passwd", "not a url", "gopher://x/",
			     "http://"};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct fetch_request req = {.url = bad[i], .der = small_der, .der_len = 5};
		assert_int_equal(fetcher_start(t->fr, &req, on_fetch, &g, &f), -EINVAL);
	}
	struct fetch_request inj = {.url = tctx_url(t, "/ok/"),
				    .der = small_der,
				    .der_len = 5,
				    .if_none_match = "\"a\"\r\nX-Evil: 1"};
	assert_int_equal(fetcher_start(t->fr, &inj, on_fetch, &g, &f), -EINVAL);
	assert_ptr_equal(f, (struct fetch *)&g);
	assert_int_equal(fetcher_active(t->fr), 0);
	run_for(t, 20);
	assert_int_equal(g.calls, 0);
	assert_int_equal(t->srv.n_reqs, 0);
}

static void test_proxy(void **state)
{
	struct tctx *t = *state;
	struct got g = {.t = t};
	char proxy[64];

	snprintf(proxy, sizeof(proxy), "http://127.0.0.1:%d", t->srv.port);
	struct fetcher *keep = t->fr;
	t->cfg.proxy = proxy;
	tctx_new_fetcher(t);
	proxy[0] = '\0'; /* the fetcher copied it */
	struct fetch_request req = {.url = "http://ocsp.example.invalid/echo/",
				    .der = small_der,
				    .der_len = sizeof(small_der)};
	struct fetch *f;
	assert_int_equal(fetcher_start(t->fr, &req, on_fetch, &g, &f), 0);
	RUN_UNTIL(t, g.calls == 1);
	assert_int_equal(g.r.err, 0);
	assert_int_equal(g.r.http_status, 200);
	/* Through a forward proxy, the request target is the absolute URL. */
	assert_int_equal(strncmp(t->srv.reqs[0].target, "http://ocsp.example.invalid/echo/", 33),
			 0);
	fetcher_close(t->fr, on_fetcher_closed, t);
	RUN_UNTIL(t, t->fr_closed);
	t->fr_closed = false;
	t->fr = keep;
}

static void test_cancel_before_completion(void **state)
{
	struct tctx *t = *state;
	struct got g = {0};

	struct fetch *f = start(t, "/hang/", small_der, sizeof(small_der), &g);
	RUN_UNTIL(t, t->srv.n_reqs == 1);
	assert_int_equal(fetcher_active(t->fr), 1);
	fetch_cancel(f);
	assert_int_equal(fetcher_active(t->fr), 0);
	RUN_UNTIL(t, t->srv.disconnects == 1);
	run_for(t, 50);
	assert_int_equal(g.calls, 0);
}

static void test_cancel_before_any_io(void **state)
{
	struct tctx *t = *state;
	struct got g = {0};

	struct fetch *f = start(t, "/ok/", small_der, sizeof(small_der), &g);
	fetch_cancel(f);
	run_for(t, 50);
	assert_int_equal(g.calls, 0);
	assert_int_equal(t->srv.n_reqs, 0);
}

static void test_cancel_from_other_callback(void **state)
{
	struct tctx *t = *state;
	struct got a = {0}, b = {0};

	struct fetch *fb = start(t, "/hang/", small_der, sizeof(small_der), &b);
	a.cancel_other = &fb;
	start(t, "/ok/", small_der, sizeof(small_der), &a);
	RUN_UNTIL(t, a.calls == 1);
	assert_null(fb);
	assert_int_equal(fetcher_active(t->fr), 0);
	RUN_UNTIL(t, t->srv.disconnects == 1);
	run_for(t, 50);
	assert_int_equal(b.calls, 0);
}

/* Two fetches that finish together, each set to cancel the other: only the first is delivered,
 * even when both completions are read in the same pass. */
static void test_cancel_peer_completing(void **state)
{
	struct tctx *t = *state;

	for (int round = 0; round < 20; round++) {
		struct got a = {0}, b = {0};
		struct fetch *fa, *fb;
		unsigned before = t->total_calls;

		fa = start(t, "/ok/", small_der, sizeof(small_der), &a);
		fb = start(t, "/ok/", small_der, sizeof(small_der), &b);
		a.cancel_other = &fb;
		b.cancel_other = &fa;
		RUN_UNTIL(t, t->total_calls == before + 1 && fetcher_active(t->fr) == 0);
		run_for(t, 20);
		assert_int_equal(a.calls + b.calls, 1);
		assert_int_equal(t->total_calls, before + 1);
	}
}

/* Two fetches timing out together are usually finished by the same timer action, so both DONE
 * messages sit in curl's queue when the first callback cancels the second. */
static void test_cancel_peer_timing_out_together(void **state)
{
	struct tctx *t = *state;
	struct fetcher *keep = t->fr;

	t->cfg.total_timeout_ms = 100;
	tctx_new_fetcher(t);
	for (int round = 0; round < 5; round++) {
		struct got a = {0}, b = {0};
		struct fetch *fa, *fb;
		unsigned before = t->total_calls;

		fa = start(t, "/hang/", small_der, sizeof(small_der), &a);
		fb = start(t, "/hang/", small_der, sizeof(small_der), &b);
		a.cancel_other = &fb;
		b.cancel_other = &fa;
		RUN_UNTIL(t, t->total_calls == before + 1 && fetcher_active(t->fr) == 0);
		run_for(t, 20);
		assert_int_equal(a.calls + b.calls, 1);
		assert_int_equal((a.calls ? a.r.err : b.r.err), -ETIMEDOUT);
	}
	fetcher_close(t->fr, on_fetcher_closed, t);
	RUN_UNTIL(t, t->fr_closed);
	t->fr_closed = false;
	t->fr = keep;
}

static void test_concurrent(void **state)
{
	struct tctx *t = *state;
	enum {
		N = 50
	};
	struct got *g = xcalloc(N, sizeof(*g));
	uint8_t der[N][6];

	for (int i = 0; i < N; i++) {
		memcpy(der[i], small_der, sizeof(small_der));
		der[i][5] = (uint8_t)i;
		start(t, "/echo/", der[i], sizeof(der[i]), &g[i]);
	}
	assert_int_equal(fetcher_active(t->fr), N);
	RUN_UNTIL(t, t->total_calls == N);
	assert_int_equal(fetcher_active(t->fr), 0);
	for (int i = 0; i < N; i++) {
		char *enc = url_b64(der[i], sizeof(der[i]));
		char want[128];
		snprintf(want, sizeof(want), "/echo/%s", enc);
		free(enc);
		assert_int_equal(g[i].calls, 1);
		assert_int_equal(g[i].r.err, 0);
		assert_int_equal(g[i].r.body_len, strlen(want));
		assert_memory_equal(g[i].body, want, strlen(want));
	}
	assert_int_equal(t->srv.n_reqs, N);
	free(g);
}

static void test_close_with_fetches_in_flight(void **state)
{
	struct tctx *t = *state;
	struct got g[5] = {0};

	for (int i = 0; i < 5; i++)
		start(t, "/hang/", small_der, sizeof(small_der), &g[i]);
	RUN_UNTIL(t, t->srv.n_reqs == 5);
	fetcher_close(t->fr, on_fetcher_closed, t);
	RUN_UNTIL(t, t->fr_closed);
	RUN_UNTIL(t, t->srv.disconnects == 5);
	run_for(t, 50);
	assert_int_equal(t->total_calls, 0);
}

static void test_close_from_callback(void **state)
{
	struct tctx *t = *state;
	struct got a = {.close_fetcher = true, .start_after_close = true};
	struct got b = {0};

	start(t, "/hang/", small_der, sizeof(small_der), &b);
	start(t, "/ok/", small_der, sizeof(small_der), &a);
	tctx_url(t, "/ok/");
	RUN_UNTIL(t, t->fr_closed);
	assert_int_equal(a.calls, 1);
	assert_int_equal(a.start_rc, -ECANCELED);
	RUN_UNTIL(t, t->srv.disconnects >= 1);
	run_for(t, 50);
	assert_int_equal(b.calls, 0);
	assert_int_equal(t->total_calls, 1);
}

static void test_close_idle(void **state)
{
	struct tctx *t = *state;

	/* A fetcher that never fetched, and one holding an idle keep-alive connection. */
	struct got g = {0};
	start(t, "/ok/", small_der, sizeof(small_der), &g);
	RUN_UNTIL(t, g.calls == 1);
	struct fetcher *idle;
	assert_int_equal(fetcher_new(&t->loop, &t->cfg, &idle), 0);
	bool idle_closed = false;
	fetcher_close(idle, set_flag, &idle_closed);
	RUN_UNTIL(t, idle_closed);
	fetcher_close(t->fr, on_fetcher_closed, t);
	RUN_UNTIL(t, t->fr_closed);
	RUN_UNTIL(t, t->srv.disconnects == 1);
}

int main(void)
{
	/* libuv writes to sockets the peer may already have closed. */
	signal(SIGPIPE, SIG_IGN);
	/* The configuration, not the environment, decides about proxies. */
	setenv("http_proxy", "http://127.0.0.1:1", 1);
	setenv("HTTPS_PROXY", "http://127.0.0.1:1", 1);
	setenv("ALL_PROXY", "http://127.0.0.1:1", 1);

#define T(fn) cmocka_unit_test_setup_teardown(fn, tctx_setup, tctx_teardown)
	const struct CMUnitTest tests[] = {
		T(test_ok_headers),
		T(test_cancel_self_in_callback_is_noop),
		T(test_not_modified),
		T(test_http_error_retry_after),
		T(test_size_cap),
		T(test_timeout),
		T(test_connection_refused),
		T(test_unresolvable_host),
		T(test_broken_replies),
		T(test_keep_alive_reuse),
		T(test_get_post_selection),
		T(test_large_post_no_expect),
		T(test_interim_response),
		T(test_get_url_slash),
		T(test_bad_requests),
		T(test_proxy),
		T(test_cancel_before_completion),
		T(test_cancel_before_any_io),
		T(test_cancel_from_other_callback),
		T(test_cancel_peer_completing),
		T(test_cancel_peer_timing_out_together),
		T(test_concurrent),
		T(test_close_with_fetches_in_flight),
		T(test_close_from_callback),
		T(test_close_idle),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
