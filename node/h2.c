/* SPDX-License-Identifier: Apache-2.0 */
/*
 * HTTP/2 server sessions on nghttp2, bytes in and bytes out.
 *
 * Each request stream gets a struct h2_stream (nghttp2's stream user data, also linked in the
 * session's list so h2_session_free() can release streams nghttp2 drops silently). It holds the
 * few request headers the responder needs, the body, and later a copy of the response body that
 * the data provider hands to nghttp2 as flow control allows.
 *
 * Memory per session is bounded by the limits: at most max_concurrent_streams open streams, each
 * holding at most about max_header_bytes of header values, max_body_bytes of body and one
 * response. A stream over a limit is answered 431/413 at once (and then reset with NO_ERROR if the
 * client is still sending, RFC 9113 §8.1), never the connection.
 *
 * nghttp2 reports most connection errors by queuing a GOAWAY and accepting the input, so
 * h2_session_recv() serializes pending frames right away into s->pending: seeing our own GOAWAY
 * with an error code go out is how a protocol error becomes -EPROTO. The server calls
 * h2_session_send() after every receive anyway, so this only moves the copy earlier.
 */
#include <assert.h>
#include <errno.h>
#include <nghttp2/nghttp2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "node/h2.h"
#include "proto/mem.h"

/* Request headers kept for the responder. */
enum h2_field {
	F_METHOD,
	F_PATH,
	F_AUTHORITY,
	F_HOST,
	F_SCHEME,
	F_CONTENT_TYPE,
	F_IF_NONE_MATCH,
	F_IF_MODIFIED_SINCE,
	F_STAPLED_ORIGIN,
	F_STAPLED_HOPS,
	F_STAPLED_WANT_ISSUER,
	F_STAPLED_ISSUER,
	F_STAPLED_FORWARDED,
	F_COUNT
};

struct h2_stream {
	int32_t id;
	struct h2_stream *prev, *next;
	struct buf field[F_COUNT];
	unsigned present; /* bit per enum h2_field */
	size_t header_bytes;
	struct buf body;
	int reject_status; /* 413 or 431 once over a limit: answered by us, never delivered */
	bool complete;	   /* END_STREAM received */
	bool delivered;	   /* on_request called */
	bool answered;	   /* a response was submitted */
	bool head;
	uint8_t *resp;
	size_t resp_len, resp_off;
};

struct h2_session {
	nghttp2_session *ng;
	struct h2_limits lim;
	struct h2_callbacks cb;
	void *ud;
	struct h2_stream *streams;
	struct buf pending; /* serialized by h2_session_recv(), not yet handed out */
	uint32_t resets;    /* unanswered streams reset by the client */
	bool failed;	    /* protocol error or flood: GOAWAY with an error code queued or sent */
	bool shutdown;
	int in_callback;
};

static const char preface[] = NGHTTP2_CLIENT_MAGIC;

bool h2_is_preface(const uint8_t *data, size_t len)
{
	size_t n = MIN(len, (size_t)NGHTTP2_CLIENT_MAGIC_LEN);
	return n == 0 || memcmp(data, preface, n) == 0;
}

void h2_limits_default(struct h2_limits *l)
{
	*l = (struct h2_limits){
		.max_concurrent_streams = 128,
		.max_header_bytes = 8192,
		.max_body_bytes = 16384,
		.max_unanswered_resets = 1000,
	};
}

/* nghttp2 allocates through us: allocation failure aborts like everywhere else. */
static void *ng_malloc(size_t size, void *ud)
{
	(void)ud;
	return xmalloc(size ? size : 1);
}

static void ng_free(void *p, void *ud)
{
	(void)ud;
	free(p);
}

static void *ng_calloc(size_t nmemb, size_t size, void *ud)
{
	(void)ud;
	return xcalloc(nmemb ? nmemb : 1, size ? size : 1);
}

static void *ng_realloc(void *p, size_t size, void *ud)
{
	(void)ud;
	return xrealloc(p, size ? size : 1);
}

static nghttp2_mem ng_mem = {
	.malloc = ng_malloc,
	.free = ng_free,
	.calloc = ng_calloc,
	.realloc = ng_realloc,
};

static struct h2_stream *stream_get(struct h2_session *s, int32_t id)
{
	return nghttp2_session_get_stream_user_data(s->ng, id);
}

static void stream_free(struct h2_session *s, struct h2_stream *st)
{
	if (st->prev)
		st->prev->next = st->next;
	else
		s->streams = st->next;
	if (st->next)
		st->next->prev = st->prev;
	for (size_t i = 0; i < F_COUNT; i++)
		buf_done(&st->field[i]);
	buf_done(&st->body);
	free(st->resp);
	free(st);
}

/* Ends the connection with GOAWAY(error); h2_session_recv() then reports -EPROTO. */
static void session_fail(struct h2_session *s, uint32_t error)
{
	s->failed = true;
	nghttp2_session_terminate_session(s->ng, error);
}

static ssize_t on_read_body(nghttp2_session *ng, int32_t stream_id, uint8_t *buf, size_t length,
			    uint32_t *data_flags, nghttp2_data_source *source, void *ud)
{
	(void)ng;
	(void)stream_id;
	(void)ud;
	struct h2_stream *st = source->ptr;
	size_t n = MIN(length, st->resp_len - st->resp_off);
	if (n)
		memcpy(buf, st->resp + st->resp_off, n);
	st->resp_off += n;
	if (st->resp_off == st->resp_len)
		*data_flags |= NGHTTP2_DATA_FLAG_EOF;
	return (ssize_t)n;
}

static bool status_has_body(int status)
{
	return status >= 200 && status != 204 && status != 304;
}

/* Connection-specific fields are forbidden in HTTP/2 (RFC 9113 §8.2.2). */
static bool header_name_allowed(const char *name, size_t len)
{
	static const char *const banned[] = {
		"connection",	  "keep-alive", "proxy-connection", "transfer-encoding", "upgrade",
		"content-length", "te",
	};
	if (len == 0 || name[0] == ':' || !nghttp2_check_header_name((const uint8_t *)name, len))
		return false;
	for (size_t i = 0; i < len; i++)
		if (name[i] >= 'A' && name[i] <= 'Z')
			return false;
	for (size_t i = 0; i < ARRAY_SIZE(banned); i++)
		if (strcmp(name, banned[i]) == 0)
			return false;
	return true;
}

static int stream_respond(struct h2_session *s, struct h2_stream *st, int status,
			  const struct h2_header *hdrs, size_t n_hdrs, const uint8_t *body,
			  size_t body_len)
{
	if (status < 200 || status > 599 || (body_len && !body) || (n_hdrs && !hdrs) || n_hdrs > 64)
		return -EINVAL;
	if (!status_has_body(status) && body_len)
		return -EINVAL;
	for (size_t i = 0; i < n_hdrs; i++) {
		if (!hdrs[i].name || (hdrs[i].value_len && !hdrs[i].value) ||
		    !header_name_allowed(hdrs[i].name, strlen(hdrs[i].name)) ||
		    !nghttp2_check_header_value(
			    (const uint8_t *)(hdrs[i].value ? hdrs[i].value : ""),
			    hdrs[i].value_len))
			return -EINVAL;
	}
	if (st->answered)
		return -EINVAL;

	char status_str[4], len_str[24];
	snprintf(status_str, sizeof(status_str), "%d", status);
	snprintf(len_str, sizeof(len_str), "%zu", body_len);
	nghttp2_nv nv[66];
	size_t n = 0;
	nv[n++] = (nghttp2_nv){(uint8_t *)":status", (uint8_t *)status_str, 7, 3,
			       NGHTTP2_NV_FLAG_NONE};
	for (size_t i = 0; i < n_hdrs; i++)
		nv[n++] = (nghttp2_nv){
			(uint8_t *)hdrs[i].name, (uint8_t *)(hdrs[i].value ? hdrs[i].value : ""),
			strlen(hdrs[i].name), hdrs[i].value_len, NGHTTP2_NV_FLAG_NONE};
	if (status_has_body(status))
		nv[n++] = (nghttp2_nv){(uint8_t *)"content-length", (uint8_t *)len_str, 14,
				       strlen(len_str), NGHTTP2_NV_FLAG_NONE};

	/* A HEAD response announces the length of the body it does not carry. */
	bool with_body = body_len > 0 && !st->head;
	nghttp2_data_provider prd = {.source.ptr = st, .read_callback = on_read_body};
	if (with_body) {
		st->resp = xmemdup(body, body_len);
		st->resp_len = body_len;
		st->resp_off = 0;
	}
	int r = nghttp2_submit_response(s->ng, st->id, nv, n, with_body ? &prd : NULL);
	if (r != 0) {
		free(st->resp);
		st->resp = NULL;
		return r == NGHTTP2_ERR_NOMEM ? -ENOMEM : -EINVAL;
	}
	st->answered = true;
	return 0;
}

static void stream_reject(struct h2_session *s, struct h2_stream *st, int status)
{
	static const char too_large[] = "Request Header Fields Too Large\n";
	static const char body_large[] = "Payload Too Large\n";
	static const struct h2_header ct = {"content-type", "text/plain", 10};
	const char *msg = status == 431 ? too_large : body_large;
	st->reject_status = status;
	for (size_t i = 0; i < F_COUNT; i++)
		buf_done(&st->field[i]);
	buf_done(&st->body);
	if (!st->answered)
		stream_respond(s, st, status, &ct, 1, (const uint8_t *)msg, strlen(msg));
}

static void stream_deliver(struct h2_session *s, struct h2_stream *st)
{
	struct h2_request req = {.stream_id = st->id};
	struct h2_str *dst[F_COUNT] = {
		[F_METHOD] = &req.method,
		[F_PATH] = &req.path,
		[F_AUTHORITY] = &req.authority,
		[F_HOST] = NULL,
		[F_SCHEME] = &req.scheme,
		[F_CONTENT_TYPE] = &req.content_type,
		[F_IF_NONE_MATCH] = &req.if_none_match,
		[F_IF_MODIFIED_SINCE] = &req.if_modified_since,
		[F_STAPLED_ORIGIN] = &req.stapled_origin,
		[F_STAPLED_HOPS] = &req.stapled_hops,
		[F_STAPLED_WANT_ISSUER] = &req.stapled_want_issuer,
		[F_STAPLED_ISSUER] = &req.stapled_issuer,
		[F_STAPLED_FORWARDED] = &req.stapled_forwarded,
	};
	for (size_t i = 0; i < F_COUNT; i++) {
		if (!dst[i] || !(st->present & (1u << i)))
			continue;
		dst[i]->p = st->field[i].data ? (const char *)st->field[i].data : "";
		dst[i]->len = st->field[i].len;
	}
	if (!req.authority.p && (st->present & (1u << F_HOST))) {
		req.authority.p =
			st->field[F_HOST].data ? (const char *)st->field[F_HOST].data : "";
		req.authority.len = st->field[F_HOST].len;
	}
	req.body = st->body.data;
	req.body_len = st->body.len;
	st->delivered = true;
	s->cb.on_request(s->ud, s, &req);
}

static int on_begin_headers(nghttp2_session *ng, const nghttp2_frame *frame, void *ud)
{
	struct h2_session *s = ud;
	if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
		return 0;
	struct h2_stream *st = xcalloc(1, sizeof(*st));
	st->id = frame->hd.stream_id;
	st->next = s->streams;
	if (s->streams)
		s->streams->prev = st;
	s->streams = st;
	nghttp2_session_set_stream_user_data(ng, st->id, st);
	return 0;
}

static bool name_is(const uint8_t *name, size_t len, const char *lit)
{
	return len == strlen(lit) && memcmp(name, lit, len) == 0;
}

static int field_of(const uint8_t *name, size_t len)
{
	static const char *const names[F_COUNT] = {
		[F_METHOD] = ":method",
		[F_PATH] = ":path",
		[F_AUTHORITY] = ":authority",
		[F_HOST] = "host",
		[F_SCHEME] = ":scheme",
		[F_CONTENT_TYPE] = "content-type",
		[F_IF_NONE_MATCH] = "if-none-match",
		[F_IF_MODIFIED_SINCE] = "if-modified-since",
		[F_STAPLED_ORIGIN] = "stapled-origin",
		[F_STAPLED_HOPS] = "stapled-hops",
		[F_STAPLED_WANT_ISSUER] = "stapled-want-issuer",
		[F_STAPLED_ISSUER] = "stapled-issuer",
		[F_STAPLED_FORWARDED] = "stapled-forwarded",
	};
	for (int i = 0; i < F_COUNT; i++)
		if (name_is(name, len, names[i]))
			return i;
	return -1;
}

/* A declared length over the limit is refused before any byte of the body arrives. */
static bool content_length_over(const uint8_t *v, size_t len, size_t max)
{
	uint64_t n = 0;
	for (size_t i = 0; i < len; i++) {
		if (v[i] < '0' || v[i] > '9')
			return false; /* nghttp2 rejects the stream itself */
		if (n > UINT64_MAX / 10)
			return true;
		n = n * 10 + (uint64_t)(v[i] - '0');
		if (n > max)
			return true;
	}
	return false;
}

static int on_header(nghttp2_session *ng, const nghttp2_frame *frame, const uint8_t *name,
		     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags, void *ud)
{
	(void)ng;
	(void)flags;
	struct h2_session *s = ud;
	struct h2_stream *st = stream_get(s, frame->hd.stream_id);
	if (!st || st->reject_status)
		return 0;
	st->header_bytes += namelen + valuelen;
	if (st->header_bytes > s->lim.max_header_bytes) {
		/* Answered once the header block is complete (on_frame_recv). */
		st->reject_status = 431;
		for (size_t i = 0; i < F_COUNT; i++)
			buf_done(&st->field[i]);
		return 0;
	}
	if (frame->headers.cat != NGHTTP2_HCAT_REQUEST)
		return 0; /* trailers: counted, not kept */
	if (name_is(name, namelen, "content-length") &&
	    content_length_over(value, valuelen, s->lim.max_body_bytes)) {
		st->reject_status = 413;
		return 0;
	}
	int f = field_of(name, namelen);
	if (f < 0)
		return 0;
	if (st->present & (1u << f)) {
		/* Only a list-valued field may repeat meaningfully; join as one line would. */
		if (f == F_IF_NONE_MATCH) {
			buf_append(&st->field[f], ", ", 2);
			buf_append(&st->field[f], value, valuelen);
		}
		return 0;
	}
	st->present |= 1u << f;
	buf_append(&st->field[f], value, valuelen);
	if (f == F_METHOD)
		st->head = name_is(value, valuelen, "HEAD");
	return 0;
}

static int on_data_chunk_recv(nghttp2_session *ng, uint8_t flags, int32_t stream_id,
			      const uint8_t *data, size_t len, void *ud)
{
	(void)ng;
	(void)flags;
	struct h2_session *s = ud;
	struct h2_stream *st = stream_get(s, stream_id);
	if (!st || st->reject_status)
		return 0;
	if (len > s->lim.max_body_bytes - st->body.len) {
		stream_reject(s, st, 413);
		return 0;
	}
	buf_append(&st->body, data, len);
	return 0;
}

static int on_frame_recv(nghttp2_session *ng, const nghttp2_frame *frame, void *ud)
{
	(void)ng;
	struct h2_session *s = ud;
	struct h2_stream *st = frame->hd.stream_id ? stream_get(s, frame->hd.stream_id) : NULL;
	if (!st)
		return 0;
	switch (frame->hd.type) {
	case NGHTTP2_RST_STREAM:
		if (st->answered || s->failed)
			break;
		if (++s->resets > s->lim.max_unanswered_resets)
			session_fail(s, NGHTTP2_ENHANCE_YOUR_CALM);
		break;
	case NGHTTP2_HEADERS:
		if (st->reject_status && !st->answered)
			stream_reject(s, st, st->reject_status);
		__attribute__((fallthrough));
	case NGHTTP2_DATA:
		if (!(frame->hd.flags & NGHTTP2_FLAG_END_STREAM))
			break;
		st->complete = true;
		if (!st->reject_status && !st->delivered && !s->failed)
			stream_deliver(s, st);
		break;
	default:
		break;
	}
	return 0;
}

static int on_frame_send(nghttp2_session *ng, const nghttp2_frame *frame, void *ud)
{
	struct h2_session *s = ud;
	if (frame->hd.type == NGHTTP2_GOAWAY && frame->goaway.error_code != NGHTTP2_NO_ERROR) {
		s->failed = true;
		return 0;
	}
	if ((frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA) ||
	    !(frame->hd.flags & NGHTTP2_FLAG_END_STREAM))
		return 0;
	/* An early answer (over a limit) is complete: tell the client to stop sending
	 * (RFC 9113 §8.1). */
	struct h2_stream *st = stream_get(s, frame->hd.stream_id);
	if (st && !st->complete)
		nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_NO_ERROR);
	return 0;
}

static int on_stream_close(nghttp2_session *ng, int32_t stream_id, uint32_t error_code, void *ud)
{
	(void)error_code;
	struct h2_session *s = ud;
	struct h2_stream *st = stream_get(s, stream_id);
	if (!st)
		return 0;
	nghttp2_session_set_stream_user_data(ng, stream_id, NULL);
	bool notify = st->delivered && !st->answered;
	stream_free(s, st);
	if (notify && s->cb.on_stream_closed)
		s->cb.on_stream_closed(s->ud, s, stream_id);
	return 0;
}

int h2_session_new(const struct h2_limits *limits, const struct h2_callbacks *cb, void *ud,
		   struct h2_session **ret)
{
	assert(limits && cb && cb->on_request && ret);
	struct h2_session *s = xcalloc(1, sizeof(*s));
	s->lim = *limits;
	s->cb = *cb;
	s->ud = ud;
	if (s->lim.max_concurrent_streams == 0)
		s->lim.max_concurrent_streams = 1;

	nghttp2_session_callbacks *cbs = NULL;
	nghttp2_option *opt = NULL;
	int r = -ENOMEM;
	if (nghttp2_session_callbacks_new(&cbs) != 0 || nghttp2_option_new(&opt) != 0)
		goto fail;
	nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, on_begin_headers);
	nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk_recv);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
	nghttp2_session_callbacks_set_on_frame_send_callback(cbs, on_frame_send);
	nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);

	nghttp2_option_set_max_outbound_ack(opt, 1000);
	nghttp2_option_set_max_settings(opt, 32);
	nghttp2_option_set_max_deflate_dynamic_table_size(opt, 4096);
	/* Closed streams are only kept for the RFC 7540 priority tree, which we turn off. */
	nghttp2_option_set_no_closed_streams(opt, 1);
	/* nghttp2's own token bucket on RST_STREAM (all of them, answered or not, 33/s refill)
	 * must not cut in before the configured budget for unanswered ones. */
	nghttp2_option_set_stream_reset_rate_limit(
		opt, MAX((uint64_t)1000, (uint64_t)s->lim.max_unanswered_resets + 1), 33);

	if (nghttp2_session_server_new3(&s->ng, cbs, s, opt, &ng_mem) != 0)
		goto fail;

	/* Advertised with room for the 32-byte per-field overhead that RFC 9113 counts and the
	 * limit above does not. */
	size_t list = s->lim.max_header_bytes + 32 * 64;
	nghttp2_settings_entry iv[] = {
		{NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, s->lim.max_concurrent_streams},
		{NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 65535},
		{NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE,
		 list > UINT32_MAX ? UINT32_MAX : (uint32_t)list},
		{NGHTTP2_SETTINGS_NO_RFC7540_PRIORITIES, 1},
	};
	if (nghttp2_submit_settings(s->ng, NGHTTP2_FLAG_NONE, iv, ARRAY_SIZE(iv)) != 0)
		goto fail;
	/* Bodies are small and consumed at once; a larger connection window lets many streams
	 * upload concurrently without waiting for WINDOW_UPDATE round trips. */
	if (nghttp2_session_set_local_window_size(s->ng, NGHTTP2_FLAG_NONE, 0, 1 << 20) != 0)
		goto fail;

	nghttp2_session_callbacks_del(cbs);
	nghttp2_option_del(opt);
	*ret = s;
	return 0;
fail:
	nghttp2_session_callbacks_del(cbs);
	nghttp2_option_del(opt);
	nghttp2_session_del(s->ng);
	free(s);
	return r;
}

void h2_session_free(struct h2_session *s)
{
	if (!s)
		return;
	assert(s->in_callback == 0);
	/* nghttp2_session_del() drops streams without callbacks: tell the handler about the
	 * requests it still holds, then free them. */
	s->in_callback++;
	while (s->streams) {
		struct h2_stream *st = s->streams;
		int32_t id = st->id;
		bool notify = st->delivered && !st->answered;
		nghttp2_session_set_stream_user_data(s->ng, id, NULL);
		stream_free(s, st);
		if (notify && s->cb.on_stream_closed)
			s->cb.on_stream_closed(s->ud, s, id);
	}
	s->in_callback--;
	nghttp2_session_del(s->ng);
	buf_done(&s->pending);
	free(s);
}

static int drain(struct h2_session *s, struct buf *out)
{
	for (;;) {
		const uint8_t *p;
		ssize_t n = nghttp2_session_mem_send(s->ng, &p);
		if (n < 0)
			return -EPROTO;
		if (n == 0)
			return 0;
		buf_append(out, p, (size_t)n);
	}
}

int h2_session_recv(struct h2_session *s, const uint8_t *data, size_t len)
{
	if (s->failed)
		return -EPROTO;
	s->in_callback++;
	ssize_t n = nghttp2_session_mem_recv(s->ng, data, len);
	s->in_callback--;
	if (n < 0) {
		/* Fatal for nghttp2 (bad preface, outbound flood): it queues nothing itself. */
		session_fail(s, n == NGHTTP2_ERR_BAD_CLIENT_MAGIC ? NGHTTP2_PROTOCOL_ERROR
								  : NGHTTP2_ENHANCE_YOUR_CALM);
		return -EPROTO;
	}
	if (s->failed)
		return -EPROTO;
	s->in_callback++;
	int r = drain(s, &s->pending);
	s->in_callback--;
	if (r < 0 || s->failed)
		return -EPROTO;
	return 0;
}

int h2_respond(struct h2_session *s, int32_t stream_id, int status, const struct h2_header *hdrs,
	       size_t n_hdrs, const uint8_t *body, size_t body_len)
{
	if (stream_id <= 0)
		return -EINVAL;
	if (!nghttp2_session_find_stream(s->ng, stream_id))
		return -ENOENT;
	struct h2_stream *st = stream_get(s, stream_id);
	if (!st)
		return -ENOENT;
	if (!st->delivered)
		return -EINVAL;
	return stream_respond(s, st, status, hdrs, n_hdrs, body, body_len);
}

int h2_session_send(struct h2_session *s, struct buf *out)
{
	if (s->pending.len) {
		buf_append(out, s->pending.data, s->pending.len);
		buf_reset(&s->pending);
	}
	s->in_callback++;
	int r = drain(s, out);
	s->in_callback--;
	if (r < 0)
		return r;
	if (!nghttp2_session_want_read(s->ng) && !nghttp2_session_want_write(s->ng))
		return 0;
	return 1;
}

void h2_session_shutdown(struct h2_session *s)
{
	if (s->shutdown || s->failed)
		return;
	s->shutdown = true;
	nghttp2_submit_goaway(s->ng, NGHTTP2_FLAG_NONE,
			      nghttp2_session_get_last_proc_stream_id(s->ng), NGHTTP2_NO_ERROR,
			      NULL, 0);
}
