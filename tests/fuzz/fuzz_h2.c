/* SPDX-License-Identifier: Apache-2.0 */
/*
 * HTTP/2 server session: arbitrary client bytes, fed in chunks, every request answered (most at
 * once, some after the bytes that completed them), output drained after every chunk.
 *
 * The first byte picks the variant: bit 0 prepends the client preface (so most inputs get past
 * it), bit 1 small limits (so the 413/431/refused/flood paths are reached), bit 2 answers later,
 * bit 3 starts a graceful shutdown halfway; the high nibble sets the chunk size.
 */
#include <errno.h>
#include <nghttp2/nghttp2.h>
#include <stdlib.h>
#include <string.h>

#include "node/h2.h"
#include "proto/buf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct fuzz_state {
	bool later;
	int32_t pending[64];
	size_t n_pending;
};

static void answer(struct h2_session *s, int32_t id, const struct h2_request *req)
{
	static const struct h2_header hdrs[] = {
		{"content-type", "application/ocsp-response", 25},
		{"cache-control", "max-age=60", 10},
	};
	uint8_t body[64];
	size_t n = req && req->path.p ? req->path.len : 0;
	n = n > sizeof(body) ? sizeof(body) : n;
	if (n)
		memcpy(body, req->path.p, n);
	int r = h2_respond(s, id, 200, hdrs, 2, body, n);
	/* A stream delivered and not yet answered must accept an answer. */
	if (r != 0 && r != -ENOENT)
		abort();
}

static void on_request(void *ud, struct h2_session *s, const struct h2_request *req)
{
	struct fuzz_state *f = ud;
	if (!req->method.p)
		abort();
	if (f->later && f->n_pending < 64) {
		f->pending[f->n_pending++] = req->stream_id;
		return;
	}
	answer(s, req->stream_id, req);
}

static void on_stream_closed(void *ud, struct h2_session *s, int32_t id)
{
	(void)s;
	struct fuzz_state *f = ud;
	for (size_t i = 0; i < f->n_pending; i++)
		if (f->pending[i] == id)
			f->pending[i] = 0;
}

static void answer_pending(struct fuzz_state *f, struct h2_session *s)
{
	for (size_t i = 0; i < f->n_pending; i++)
		if (f->pending[i] && h2_respond(s, f->pending[i], 404, NULL, 0, NULL, 0) != 0)
			abort();
	f->n_pending = 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	uint8_t mode = data[0];
	data++;
	size--;

	struct h2_limits lim;
	h2_limits_default(&lim);
	if (mode & 2) {
		lim.max_concurrent_streams = 4;
		lim.max_header_bytes = 256;
		lim.max_body_bytes = 512;
		lim.max_unanswered_resets = 8;
	}
	struct fuzz_state f = {.later = (mode & 4) != 0};
	static const struct h2_callbacks cb = {on_request, on_stream_closed};
	struct h2_session *s;
	if (h2_session_new(&lim, &cb, &f, &s) != 0)
		abort();

	struct buf out = BUF_INIT;
	bool dead = false;
	if (mode & 1) {
		if (h2_session_recv(s, (const uint8_t *)NGHTTP2_CLIENT_MAGIC,
				    NGHTTP2_CLIENT_MAGIC_LEN) != 0)
			abort();
	}
	size_t chunk = (size_t)(mode >> 4) * 7 + 1;
	size_t off = 0;
	while (off < size && !dead) {
		size_t n = size - off < chunk ? size - off : chunk;
		if (h2_session_recv(s, data + off, n) < 0)
			dead = true;
		off += n;
		if ((mode & 8) && off >= size / 2)
			h2_session_shutdown(s);
		if (!dead)
			answer_pending(&f, s);
		buf_reset(&out);
		if (h2_session_send(s, &out) < 0)
			abort();
	}
	buf_reset(&out);
	if (h2_session_send(s, &out) < 0)
		abort();
	buf_done(&out);
	h2_session_free(s);
	return 0;
}
