/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libcurl's multi interface on the libuv loop. curl tells us which sockets to watch (socket
 * callback → one uv_poll_t each) and when to wake it up (timer callback → one uv_timer_t); libuv
 * tells curl what happened (curl_multi_socket_action); finished transfers are read back with
 * curl_multi_info_read and handed to their callbacks.
 *
 * Re-entrancy rules this file lives by:
 * - user callbacks run only from fetcher_dispatch(), never from inside a curl callback, so a user
 *   may call fetch_cancel(), fetcher_start() and fetcher_close() from them;
 * - curl_multi_remove_handle() drops the DONE message of the removed handle, so a fetch cancelled
 *   while other completions are being delivered never reaches its callback;
 * - fetcher_close() from a callback cancels at once but defers curl_multi_cleanup() until the
 *   dispatch loop no longer reads from the multi handle;
 * - a uv_poll_t is freed in its close callback only; it is stopped before curl closes its socket
 *   (CURL_POLL_REMOVE, and the close-socket callback as a second line of defence), so a poll
 *   handle never outlives its descriptor and a reused descriptor number never meets a stale one.
 */
#include "node/fetch.h"

#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "config-build.h"
/* <uv.h> pulls in <sys/param.h>, whose MIN/MAX differ in spelling from proto/macro.h's. */
#undef MIN
#undef MAX
#include "proto/buf.h"
#include "proto/macro.h"
#include "proto/mem.h"
#include "proto/ocsp_http.h"

/* RFC 5019 §5: GET only while the url-encoded request stays under 255 bytes. */
#define FETCH_GET_LIMIT 255

struct fetch_sock {
	uv_poll_t poll;
	struct fetcher *fr;
	curl_socket_t fd;
	int events;   /* UV_READABLE | UV_WRITABLE as curl last asked */
	bool closing; /* uv_close() called; freed in on_sock_closed */
	struct fetch_sock *prev, *next;
};

struct fetch {
	struct fetcher *fr;
	CURL *easy;
	struct curl_slist *headers;
	fetch_cb cb;
	void *ud;
	char *url;
	uint8_t *der; /* POST body: curl does not copy CURLOPT_POSTFIELDS */
	size_t der_len;
	bool delivering; /* its callback is running: cancelling it is a no-op */
	bool too_big;
	bool h2;
	uint64_t timeout_ms;
	struct buf body;
	struct buf issuer; /* "Stapled-Issuer" response header value */
	struct fetch_result res;
	char errbuf[CURL_ERROR_SIZE];
	struct fetch *prev, *next;
};

struct fetcher {
	uv_loop_t *loop;
	CURLM *multi;
	uv_timer_t timer;
	struct fetcher_config cfg; /* string members point at the copies below */
	char *proxy;
	char *ca_file;
	char *user_agent;
	struct fetch *fetches; /* in flight */
	size_t n_active;
	struct fetch_sock *socks; /* open poll handles */
	unsigned open_handles;	  /* timer + socks, including those closing */
	unsigned dispatching;
	bool closing;
	void (*on_closed)(void *ud);
	void *closed_ud;
};

static pthread_once_t fetch_global_once = PTHREAD_ONCE_INIT;
static CURLcode fetch_global_rc = CURLE_FAILED_INIT;

static void fetch_global_init(void)
{
	fetch_global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static void fetcher_handle_closed(struct fetcher *fr)
{
	assert(fr->open_handles > 0);
	if (--fr->open_handles > 0)
		return;
	assert(fr->closing && !fr->multi);
	void (*cb)(void *) = fr->on_closed;
	void *ud = fr->closed_ud;
	free(fr->proxy);
	free(fr->ca_file);
	free(fr->user_agent);
	free(fr);
	if (cb)
		cb(ud);
}

static void on_sock_closed(uv_handle_t *h)
{
	struct fetch_sock *s = h->data;
	struct fetcher *fr = s->fr;

	free(s);
	fetcher_handle_closed(fr);
}

static void fetch_sock_close(struct fetch_sock *s)
{
	struct fetcher *fr = s->fr;

	assert(!s->closing);
	s->closing = true;
	if (s->prev)
		s->prev->next = s->next;
	else
		fr->socks = s->next;
	if (s->next)
		s->next->prev = s->prev;
	s->prev = s->next = NULL;
	/* uv_close stops the poll at once: the descriptor leaves the loop before curl closes it. */
	uv_close((uv_handle_t *)&s->poll, on_sock_closed);
}

static void fetcher_dispatch(struct fetcher *fr);

static void fetcher_drive(struct fetcher *fr, curl_socket_t fd, int flags)
{
	int running;

	/* Per-transfer errors come back as DONE messages; a multi-level error here can only be a
	 * programming error (bad handle, recursive call), which the dispatch below cannot fix. */
	CURLMcode mc = curl_multi_socket_action(fr->multi, fd, flags, &running);
	assert(mc == CURLM_OK);
	(void)mc;
	fetcher_dispatch(fr);
}

static void on_poll(uv_poll_t *h, int status, int events)
{
	struct fetch_sock *s = h->data;
	struct fetcher *fr = s->fr;
	int flags = 0;

	if (status < 0) {
		flags = CURL_CSELECT_ERR;
	} else {
		if (events & UV_READABLE)
			flags |= CURL_CSELECT_IN;
		if (events & UV_WRITABLE)
			flags |= CURL_CSELECT_OUT;
	}
	fetcher_drive(fr, s->fd, flags);
	/* libuv stops a poll handle that reported an error; curl only calls the socket callback
	 * when its wishes change, so if it kept the socket, watch it again as it last asked. */
	if (status < 0 && !s->closing && s->events)
		uv_poll_start(&s->poll, s->events, on_poll);
}

static int on_curl_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
	struct fetcher *fr = userp;
	struct fetch_sock *s = socketp;

	if (what == CURL_POLL_REMOVE) {
		if (s && !s->closing)
			fetch_sock_close(s);
		return 0;
	}
	if (!s) {
		s = xcalloc(1, sizeof(*s));
		if (uv_poll_init_socket(fr->loop, &s->poll, fd) < 0) {
			free(s);
			return -1;
		}
		s->poll.data = s;
		s->fr = fr;
		s->fd = fd;
		s->next = fr->socks;
		if (s->next)
			s->next->prev = s;
		fr->socks = s;
		fr->open_handles++;
		curl_multi_assign(fr->multi, fd, s);
	}
	s->events = 0;
	if (what & CURL_POLL_IN)
		s->events |= UV_READABLE;
	if (what & CURL_POLL_OUT)
		s->events |= UV_WRITABLE;
	if (s->events)
		uv_poll_start(&s->poll, s->events, on_poll);
	else
		uv_poll_stop(&s->poll);
	return 0;
}

/*
 * curl announces CURL_POLL_REMOVE before it closes a socket it was watching; sockets it closes
 * without having watched them (idle cached connections) have no poll handle. This catches any
 * other path so that no poll handle can outlive its descriptor.
 */
static int on_curl_closesocket(void *clientp, curl_socket_t fd)
{
	struct fetcher *fr = clientp;

	for (struct fetch_sock *s = fr->socks; s; s = s->next) {
		if (s->fd == fd) {
			fetch_sock_close(s);
			break;
		}
	}
	return close(fd);
}

static void on_timer(uv_timer_t *t)
{
	fetcher_drive(t->data, CURL_SOCKET_TIMEOUT, 0);
}

static int on_curl_timer(CURLM *multi, long timeout_ms, void *userp)
{
	struct fetcher *fr = userp;

	/* A zero timeout must not be acted on from inside the callback: the loop runs it next. */
	if (timeout_ms < 0)
		uv_timer_stop(&fr->timer);
	else
		uv_timer_start(&fr->timer, on_timer, (uint64_t)timeout_ms, 0);
	return 0;
}

static void on_timer_closed(uv_handle_t *h)
{
	fetcher_handle_closed(h->data);
}

/* The second half of fetcher_close, once no dispatch loop reads from the multi handle. */
static void fetcher_teardown(struct fetcher *fr)
{
	assert(fr->closing && !fr->fetches && fr->multi);
	/* May close cached connections: their sockets go through the callbacks above. */
	curl_multi_cleanup(fr->multi);
	fr->multi = NULL;
	while (fr->socks)
		fetch_sock_close(fr->socks);
	uv_close((uv_handle_t *)&fr->timer, on_timer_closed);
}

static void fetch_free(struct fetch *f)
{
	if (f->easy)
		curl_easy_cleanup(f->easy);
	curl_slist_free_all(f->headers);
	buf_done(&f->body);
	buf_done(&f->issuer);
	free(f->url);
	free(f->der);
	free(f);
}

static void fetch_unlink(struct fetch *f)
{
	struct fetcher *fr = f->fr;

	if (f->prev)
		f->prev->next = f->next;
	else
		fr->fetches = f->next;
	if (f->next)
		f->next->prev = f->prev;
	f->prev = f->next = NULL;
	assert(fr->n_active > 0);
	fr->n_active--;
}

static int fetch_errno(CURLcode code)
{
	switch (code) {
	case CURLE_OPERATION_TIMEDOUT:
		return -ETIMEDOUT;
	case CURLE_COULDNT_CONNECT:
		return -ECONNREFUSED;
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
		return -EHOSTUNREACH;
	case CURLE_FILESIZE_EXCEEDED:
		return -EMSGSIZE;
	case CURLE_WEIRD_SERVER_REPLY:
	case CURLE_PARTIAL_FILE:
	case CURLE_GOT_NOTHING:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
	case CURLE_BAD_CONTENT_ENCODING:
	case CURLE_UNSUPPORTED_PROTOCOL: /* HTTP/0.9 replies: our schemes are checked up front */
		return -EPROTO;
	default:
		return -EIO;
	}
}

static void fetch_reset_headers(struct fetch_result *r)
{
	r->content_type[0] = '\0';
	r->etag[0] = '\0';
	r->max_age_s = -1;
	r->retry_after_s = -1;
	r->date_unix = -1;
}

static void fetch_finish(struct fetch *f, CURLcode code)
{
	struct fetcher *fr = f->fr;
	struct fetch_result *r = &f->res;
	curl_off_t total_us = 0;

	if (curl_easy_getinfo(f->easy, CURLINFO_TOTAL_TIME_T, &total_us) == CURLE_OK)
		r->total_ms = (double)total_us / 1000.0;
	if (f->too_big) {
		r->err = -EMSGSIZE;
		snprintf(r->errmsg, sizeof(r->errmsg), "response body over %zu bytes",
			 fr->cfg.max_response_bytes);
	} else if (code != CURLE_OK) {
		r->err = fetch_errno(code);
		snprintf(r->errmsg, sizeof(r->errmsg), "%s",
			 f->errbuf[0] ? f->errbuf : curl_easy_strerror(code));
	} else {
		long status = 0;
		curl_easy_getinfo(f->easy, CURLINFO_RESPONSE_CODE, &status);
		r->err = 0;
		r->http_status = status;
		r->body = f->body.data;
		r->body_len = f->body.len;
		r->stapled_issuer = f->issuer.len ? (const char *)f->issuer.data : NULL;
		r->stapled_issuer_len = f->issuer.len;
	}
	if (r->err != 0) {
		r->http_status = 0;
		r->body = NULL;
		r->body_len = 0;
		fetch_reset_headers(r);
	}

	fetch_unlink(f);
	curl_multi_remove_handle(fr->multi, f->easy);
	f->delivering = true;
	f->cb(f, r, f->ud);
	fetch_free(f);
}

static void fetcher_dispatch(struct fetcher *fr)
{
	CURLMsg *msg;
	int left;

	fr->dispatching++;
	while (!fr->closing && (msg = curl_multi_info_read(fr->multi, &left))) {
		if (msg->msg != CURLMSG_DONE)
			continue;
		CURL *easy = msg->easy_handle;
		CURLcode code = msg->data.result;
		struct fetch *f = NULL;
		curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&f);
		assert(f && f->easy == easy);
		fetch_finish(f, code);
	}
	fr->dispatching--;
	if (fr->closing && fr->dispatching == 0 && fr->multi)
		fetcher_teardown(fr);
}

/* Copies a header value, or leaves the field empty ("absent") if it does not fit whole:
 * a cut ETag or media type would be a different one. */
static void fetch_copy_field(char *dst, size_t cap, const char *v, size_t len)
{
	if (len >= cap) {
		dst[0] = '\0';
		return;
	}
	memcpy(dst, v, len);
	dst[len] = '\0';
}

static bool fetch_header_is(const char *name, size_t len, const char *want)
{
	return len == strlen(want) && strncasecmp(name, want, len) == 0;
}

static size_t on_curl_header(char *p, size_t size, size_t nitems, void *ud)
{
	struct fetch *f = ud;
	struct fetch_result *r = &f->res;
	size_t total = size * nitems;
	size_t len = total;

	while (len > 0 && (p[len - 1] == '\n' || p[len - 1] == '\r'))
		len--;
	/* Each status line starts a new header block (1xx, proxy CONNECT): keep the last one. */
	if (len >= 5 && memcmp(p, "HTTP/", 5) == 0) {
		fetch_reset_headers(r);
		buf_reset(&f->issuer);
		return total;
	}
	const char *colon = memchr(p, ':', len);
	if (!colon)
		return total;
	size_t nlen = (size_t)(colon - p);
	const char *v = colon + 1;
	size_t vlen = len - nlen - 1;
	while (vlen > 0 && (*v == ' ' || *v == '\t')) {
		v++;
		vlen--;
	}
	while (vlen > 0 && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
		vlen--;

	int64_t n;
	if (fetch_header_is(p, nlen, "content-type")) {
		fetch_copy_field(r->content_type, sizeof(r->content_type), v, vlen);
	} else if (fetch_header_is(p, nlen, "etag")) {
		fetch_copy_field(r->etag, sizeof(r->etag), v, vlen);
	} else if (fetch_header_is(p, nlen, "cache-control")) {
		/* Several Cache-Control lines may be sent; the first max-age wins. */
		if (r->max_age_s < 0 && ocsp_http_parse_max_age(v, vlen, &n) == 0)
			r->max_age_s = n;
	} else if (fetch_header_is(p, nlen, "retry-after")) {
		if (ocsp_http_parse_retry_after(v, vlen, (int64_t)time(NULL), &n) == 0)
			r->retry_after_s = n;
	} else if (fetch_header_is(p, nlen, "date")) {
		if (http_date_parse(v, vlen, &n) == 0)
			r->date_unix = n;
	} else if (fetch_header_is(p, nlen, "stapled-issuer")) {
		/* A CA certificate in base64: a few KB; anything larger is not one. */
		buf_reset(&f->issuer);
		if (vlen <= FETCH_ISSUER_MAX)
			buf_append(&f->issuer, v, vlen);
	}
	return total;
}

static size_t on_curl_write(char *p, size_t size, size_t nitems, void *ud)
{
	struct fetch *f = ud;
	size_t len = size * nitems;

	/* Content-Length is checked by CURLOPT_MAXFILESIZE; this catches chunked and unsized
	 * bodies. Returning less than len aborts the transfer (CURLE_WRITE_ERROR). */
	if (len > f->fr->cfg.max_response_bytes - f->body.len) {
		f->too_big = true;
		return 0;
	}
	buf_append(&f->body, p, len);
	return len;
}

static bool fetch_url_ok(const char *url)
{
	CURLU *u = curl_url();
	char *scheme = NULL;
	char *host = NULL;
	bool ok;

	if (!u)
		return false;
	ok = curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
	     curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
	     (strcasecmp(scheme, "http") == 0 || strcasecmp(scheme, "https") == 0) &&
	     curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK && host[0] != '\0';
	curl_free(scheme);
	curl_free(host);
	curl_url_cleanup(u);
	return ok;
}

static long fetch_clamp_long(uint64_t v)
{
	return v > (uint64_t)LONG_MAX ? LONG_MAX : (long)v;
}

/* Sets every option; returns false if curl refused one. */
static bool fetch_setup(struct fetch *f, bool post, const char *if_none_match,
			const char *const *extra, size_t n_extra)
{
	struct fetcher *fr = f->fr;
	const struct fetcher_config *cfg = &fr->cfg;
	CURL *e = f->easy;
	bool ok = true;

#define SET(opt, val) ok = (curl_easy_setopt(e, opt, val) == CURLE_OK) && ok
	SET(CURLOPT_PRIVATE, f);
	SET(CURLOPT_URL, f->url);
	SET(CURLOPT_ERRORBUFFER, f->errbuf);
	SET(CURLOPT_NOSIGNAL, 1L);
#if LIBCURL_VERSION_NUM >= 0x075500
	SET(CURLOPT_PROTOCOLS_STR, "http,https");
#else
	SET(CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
	SET(CURLOPT_FOLLOWLOCATION, 0L);
	SET(CURLOPT_CONNECTTIMEOUT_MS, fetch_clamp_long(cfg->connect_timeout_ms));
	SET(CURLOPT_TIMEOUT_MS,
	    fetch_clamp_long(f->timeout_ms ? f->timeout_ms : cfg->total_timeout_ms));
	/* "" rather than unset: the configuration, not http_proxy in the environment, decides. */
	SET(CURLOPT_PROXY, cfg->proxy ? cfg->proxy : "");
	SET(CURLOPT_SUPPRESS_CONNECT_HEADERS, 1L);
	if (cfg->ca_file)
		SET(CURLOPT_CAINFO, cfg->ca_file);
	SET(CURLOPT_USERAGENT, cfg->user_agent);
	if (cfg->max_response_bytes > 0 && cfg->max_response_bytes < (size_t)INT64_MAX)
		SET(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)cfg->max_response_bytes);
	SET(CURLOPT_HEADERFUNCTION, on_curl_header);
	SET(CURLOPT_HEADERDATA, f);
	SET(CURLOPT_WRITEFUNCTION, on_curl_write);
	SET(CURLOPT_WRITEDATA, f);
	/* The fetcher outlives every connection (they die in curl_multi_cleanup at the latest). */
	SET(CURLOPT_CLOSESOCKETFUNCTION, on_curl_closesocket);
	SET(CURLOPT_CLOSESOCKETDATA, fr);
	/* Over TLS, wait to learn whether an existing connection multiplexes (HTTP/2 to parent
	 * nodes) instead of opening one connection per fetch. */
	bool tls = strncasecmp(f->url, "https:", 6) == 0;
	if (tls || f->h2)
		SET(CURLOPT_PIPEWAIT, 1L);
	/* Parents are stapled nodes: over TLS every fetch to one shares one HTTP/2 connection
	 * (ALPN). Cleartext parents get HTTP/1.1 keep-alive: libcurl 7.88 (Debian 12) fails the
	 * second request on a reused prior-knowledge h2c connection (decision 0005). */
	if (f->h2)
		SET(CURLOPT_HTTP_VERSION,
		    tls ? (long)CURL_HTTP_VERSION_2TLS : (long)CURL_HTTP_VERSION_1_1);
	if (post) {
		SET(CURLOPT_POST, 1L);
		SET(CURLOPT_POSTFIELDS, f->der ? (const char *)f->der : "");
		SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)f->der_len);
	} else {
		SET(CURLOPT_HTTPGET, 1L);
	}

	struct buf line = BUF_INIT;
	/* An empty "Expect:" stops curl from waiting for 100-continue on POST. */
	f->headers = curl_slist_append(f->headers, "Expect:");
	ok = f->headers && ok;
	f->headers = curl_slist_append(f->headers, "Accept: application/ocsp-response");
	ok = f->headers && ok;
	if (post) {
		f->headers =
			curl_slist_append(f->headers, "Content-Type: application/ocsp-request");
		ok = f->headers && ok;
	}
	if (if_none_match) {
		buf_printf(&line, "If-None-Match: %s", if_none_match);
		f->headers = curl_slist_append(f->headers, (const char *)line.data);
		ok = f->headers && ok;
	}
	for (size_t i = 0; i < n_extra; i++) {
		f->headers = curl_slist_append(f->headers, extra[i]);
		ok = f->headers && ok;
	}
	buf_done(&line);
	SET(CURLOPT_HTTPHEADER, f->headers);
#undef SET
	return ok;
}

int fetcher_start(struct fetcher *fr, const struct fetch_request *req, fetch_cb cb, void *ud,
		  struct fetch **ret)
{
	assert(fr && req && cb);
	if (fr->closing)
		return -ECANCELED;
	if (!req->url || !fetch_url_ok(req->url))
		return -EINVAL;
	/* CR or LF would let a stored ETag inject header lines. */
	if (req->if_none_match && strpbrk(req->if_none_match, "\r\n"))
		return -EINVAL;
	for (size_t i = 0; i < req->n_headers; i++) {
		const char *h = req->headers[i];
		const char *colon = h ? strchr(h, ':') : NULL;
		if (!colon || colon == h || strpbrk(h, "\r\n"))
			return -EINVAL;
	}
	if (!req->der && req->der_len > 0)
		return -EINVAL;

	struct fetch *f = xcalloc(1, sizeof(*f));
	f->fr = fr;
	f->cb = cb;
	f->ud = ud;
	buf_init(&f->body);
	buf_init(&f->issuer);
	fetch_reset_headers(&f->res);

	struct buf url = BUF_INIT;
	buf_append_str(&url, req->url);
	bool post = false;
	if (req->der) {
		if (url.data[url.len - 1] != '/')
			buf_append_byte(&url, '/');
		size_t prefix = url.len;
		ocsp_http_get_encode(req->der, req->der_len, &url);
		post = req->force_post || url.len - prefix >= FETCH_GET_LIMIT;
	}
	if (post) {
		f->url = xstrdup(req->url);
		f->der = req->der_len > 0 ? xmemdup(req->der, req->der_len) : NULL;
		f->der_len = req->der_len;
		buf_done(&url);
	} else {
		f->url = (char *)buf_steal(&url, NULL);
	}
	f->res.used_post = post;
	f->h2 = req->h2;
	f->timeout_ms = req->timeout_ms;

	f->easy = curl_easy_init();
	if (!f->easy) {
		fetch_free(f);
		return -ENOMEM;
	}
	if (!fetch_setup(f, post, req->if_none_match, req->headers, req->n_headers)) {
		fetch_free(f);
		return -EIO;
	}
	CURLMcode mc = curl_multi_add_handle(fr->multi, f->easy);
	if (mc != CURLM_OK) {
		fetch_free(f);
		return mc == CURLM_OUT_OF_MEMORY ? -ENOMEM : -EIO;
	}

	f->next = fr->fetches;
	if (f->next)
		f->next->prev = f;
	fr->fetches = f;
	fr->n_active++;
	if (ret)
		*ret = f;
	return 0;
}

void fetch_cancel(struct fetch *f)
{
	if (!f || f->delivering)
		return;
	fetch_unlink(f);
	/* Outside any curl callback by construction (user code never runs inside one). An
	 * unfinished HTTP/1.1 transfer closes its connection here, so the server sees the
	 * disconnect. */
	curl_multi_remove_handle(f->fr->multi, f->easy);
	fetch_free(f);
}

size_t fetcher_active(const struct fetcher *fr)
{
	return fr->n_active;
}

int fetcher_new(uv_loop_t *loop, const struct fetcher_config *cfg, struct fetcher **ret)
{
	assert(loop && cfg && ret);
	pthread_once(&fetch_global_once, fetch_global_init);
	if (fetch_global_rc != CURLE_OK)
		return fetch_global_rc == CURLE_OUT_OF_MEMORY ? -ENOMEM : -EIO;

	struct fetcher *fr = xcalloc(1, sizeof(*fr));
	fr->loop = loop;
	fr->cfg = *cfg;
	fr->proxy = cfg->proxy ? xstrdup(cfg->proxy) : NULL;
	fr->ca_file = cfg->ca_file ? xstrdup(cfg->ca_file) : NULL;
	fr->user_agent = xstrdup(cfg->user_agent ? cfg->user_agent : "stapled/" STAPLED_VERSION);
	fr->cfg.proxy = fr->proxy;
	fr->cfg.ca_file = fr->ca_file;
	fr->cfg.user_agent = fr->user_agent;

	int r = -ENOMEM;
	fr->multi = curl_multi_init();
	if (!fr->multi)
		goto fail;
	r = -EIO;
	bool ok = true;
#define MSET(opt, val) ok = (curl_multi_setopt(fr->multi, opt, val) == CURLM_OK) && ok
	MSET(CURLMOPT_SOCKETFUNCTION, on_curl_socket);
	MSET(CURLMOPT_SOCKETDATA, fr);
	MSET(CURLMOPT_TIMERFUNCTION, on_curl_timer);
	MSET(CURLMOPT_TIMERDATA, fr);
	if (cfg->max_host_connections > 0)
		MSET(CURLMOPT_MAX_HOST_CONNECTIONS, fetch_clamp_long(cfg->max_host_connections));
#undef MSET
	if (!ok)
		goto fail;

	/* Last: from here on the fetcher can only go away through fetcher_close. */
	if (uv_timer_init(loop, &fr->timer) < 0)
		goto fail;
	fr->timer.data = fr;
	fr->open_handles = 1;
	*ret = fr;
	return 0;

fail:
	if (fr->multi)
		curl_multi_cleanup(fr->multi);
	free(fr->proxy);
	free(fr->ca_file);
	free(fr->user_agent);
	free(fr);
	return r;
}

void fetcher_close(struct fetcher *fr, void (*on_closed)(void *ud), void *ud)
{
	assert(!fr->closing);
	fr->closing = true;
	fr->on_closed = on_closed;
	fr->closed_ud = ud;
	while (fr->fetches)
		fetch_cancel(fr->fetches);
	/* From a fetch callback, the dispatch loop finishes the job once it lets go of the multi.
	 */
	if (fr->dispatching == 0)
		fetcher_teardown(fr);
}
