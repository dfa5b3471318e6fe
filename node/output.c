/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Outputs for web servers: files, HAProxy runtime API pushes and notify commands (node/output.h).
 *
 * Lifetimes: struct outputs is reference counted. The node holds one reference; every pending
 * file write, open libuv handle and running command holds one more, so a reload or shutdown can
 * drop the node's reference at any time and the memory goes when the last callback has run.
 */
#include "node/output.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "cache/cache.h"
#include "node/log.h"
#include "node/node.h"
#include "node/store.h"
#include "proto/haproxy_cli.h"
#include "proto/hmap.h"
#include "proto/mem.h"
#include "proto/outrule.h"
#include "proto/pki.h"

/* A burst of writes (a batch of responses, start-up) settles this long before a command runs. */
#define OUTPUT_SETTLE_MS 500
/* A failing command is retried, its interval doubling up to this. */
#define OUTPUT_MAX_BACKOFF_MS (60 * 60 * 1000)
/* One push (connect, command, reply) must be over within this. */
#define PUSH_TIMEOUT_MS 5000
/* Changed files named to a command in STAPLED_FILES (the count is always given). */
#define CHANGED_FILES_MAX 64

struct outputs;
struct out_target;

struct push {
	struct entry_info *ei; /* hmap key; NULL once the entry is gone */
	struct push *prev, *next;
	char name[CERTID_SHORT_MAX];
	uint8_t *der;
	size_t len;
	unsigned attempts;	/* failed attempts so far */
	uint64_t not_before_ms; /* a rejected push waits before its next attempt */
};

struct out_sock {
	struct out_target *t;
	char *addr;
	struct sockaddr_storage sa;
	struct push *head, *tail; /* queued, oldest first */
	size_t n_queued;
	struct hmap by_ei; /* queued pushes by entry */
	struct push *cur;  /* the push in flight, in no queue */
	union {
		uv_handle_t handle;
		uv_stream_t stream;
		uv_pipe_t pipe;
		uv_tcp_t tcp;
	} h;
	bool h_open; /* the attempt's handle is initialised and not yet closed */
	uv_connect_t connect_req;
	uv_write_t write_req;
	struct buf line, reply;
	uv_timer_t timer;	/* attempt deadline, or the wake-up for a delayed push */
	unsigned sock_failures; /* consecutive attempts that got no answer at all */
	uint64_t backoff_until_ms;
	uint64_t accepted, rejected, failed, dropped;
	int64_t last_ok_unix;
	char last_error[200];
};

struct out_target {
	struct outputs *o;
	char *name;
	char *command; /* NULL: none */
	struct outrule_gate gate;
	uv_timer_t timer;
	struct hook *running;
	struct str_list changed; /* files changed since the last run started (capped) */
	size_t n_changed;
	struct out_sock *socks;
	size_t n_socks;
	uint64_t files_written, files_unchanged, files_failed;
	uint64_t commands_ok, commands_failed;
	int64_t last_run_unix;
	int last_status; /* exit status of the last run (-1 killed by a signal) */
};

struct outputs {
	struct node *n;
	unsigned refs;
	bool closing;
	struct out_target *t; /* one per cfg.outputs item, then one for certificates' own files */
	size_t n_t;
};

struct out_write {
	struct out_target *t;
	char *file;
	/* Written once this write is in place (an .ocsp after its .issuer); NULL when none. */
	char *then_file;
	uint8_t *then_data;
	size_t then_len;
};

static void outputs_unref(struct outputs *o);
static void out_write_free(struct out_write *w);
static void write_file(struct outputs *o, struct out_target *t, const char *file,
		       const uint8_t *data, size_t len, const char *then_file,
		       const uint8_t *then_data, size_t then_len);

/* ---- bindings ---- */

void out_bindings_clear(struct out_bindings *b)
{
	for (size_t i = 0; i < b->n; i++) {
		free(b->v[i].file);
		free(b->v[i].issuer_file);
	}
	free(b->v);
	*b = (struct out_bindings){0};
}

static bool str_eq(const char *a, const char *b)
{
	return a == b || (a && b && strcmp(a, b) == 0);
}

static bool binding_eq(const struct out_binding *a, const struct out_binding *b)
{
	return a->output == b->output && str_eq(a->file, b->file) &&
	       str_eq(a->issuer_file, b->issuer_file);
}

static void bindings_add(struct out_bindings *b, const char *file, const char *issuer_file,
			 int output)
{
	struct out_binding nb = {(char *)file, (char *)issuer_file, output};
	for (size_t i = 0; i < b->n; i++)
		if (binding_eq(&b->v[i], &nb))
			return;
	b->v = xrealloc(b->v, (b->n + 1) * sizeof(*b->v));
	b->v[b->n++] = (struct out_binding){file ? xstrdup(file) : NULL,
					    issuer_file ? xstrdup(issuer_file) : NULL, output};
}

void out_bindings_merge(struct out_bindings *dst, const struct out_bindings *src)
{
	for (size_t i = 0; i < src->n; i++)
		bindings_add(dst, src->v[i].file, src->v[i].issuer_file, src->v[i].output);
}

bool out_bindings_equal(const struct out_bindings *a, const struct out_bindings *b)
{
	if (a->n != b->n)
		return false;
	for (size_t i = 0; i < a->n; i++) {
		bool found = false;
		for (size_t j = 0; !found && j < b->n; j++)
			found = binding_eq(&a->v[i], &b->v[j]);
		if (!found)
			return false;
	}
	return true;
}

/* Expands one template for the certificate; NULL (logged once per call) if it does not. */
static char *expand(const char *output, const char *what, const char *tmpl, const char *path,
		    const char *serial, struct buf *scratch)
{
	buf_reset(scratch);
	if (outrule_expand(tmpl, path, serial, scratch) < 0) {
		log_warning("output", "%s: %s '%s' gives no absolute file name for %s: skipped",
			    output, what, tmpl, path);
		return NULL;
	}
	return xstrndup((const char *)scratch->data, scratch->len);
}

void output_bind(struct node *n, struct out_bindings *b, const char *path,
		 const struct pki_cert *cert, bool issuer_in_file, const char *own_ocsp_file)
{
	const struct config *cfg = &n->cfg;
	char serial[2 * CERTID_SERIAL_MAX + 1] = "";
	struct buf scratch = BUF_INIT;
	size_t sl;
	const uint8_t *sp = pki_cert_serial(cert, &sl);

	for (size_t i = 0; i < sl; i++)
		snprintf(serial + 2 * i, 3, "%02X", sp[i]);
	if (own_ocsp_file)
		bindings_add(b, own_ocsp_file, NULL, -1);
	if (!path)
		goto out;
	if (cfg->write_ocsp_files) {
		buf_printf(&scratch, "%s.ocsp", path);
		bindings_add(b, (const char *)scratch.data, NULL, -1);
	}
	for (size_t i = 0; i < cfg->n_outputs; i++) {
		const struct config_output *co = &cfg->outputs[i];
		bool match = false;
		for (size_t j = 0; !match && j < co->match.n; j++)
			match = outrule_match(co->match.v[j], path);
		if (!match)
			continue;
		char *file = NULL, *issuer = NULL;
		if (co->ocsp_file) {
			file = expand(co->name, "ocsp_file", co->ocsp_file, path, serial, &scratch);
			if (!file)
				continue;
		}
		if (co->issuer_file && !issuer_in_file)
			issuer = expand(co->name, "issuer_file", co->issuer_file, path, serial,
					&scratch);
		if (file || issuer || co->haproxy_sockets.n)
			bindings_add(b, file, issuer, (int)i);
		free(file);
		free(issuer);
	}
out:
	buf_done(&scratch);
}

/* ---- pushes to HAProxy admin sockets ---- */

static const void *push_key(const void *value, size_t *ret_len)
{
	const struct push *p = value;
	*ret_len = sizeof(p->ei);
	return &p->ei;
}

static void push_free(struct push *p)
{
	if (!p)
		return;
	free(p->der);
	free(p);
}

static void queue_unlink(struct out_sock *s, struct push *p)
{
	if (p->prev)
		p->prev->next = p->next;
	else
		s->head = p->next;
	if (p->next)
		p->next->prev = p->prev;
	else
		s->tail = p->prev;
	p->prev = p->next = NULL;
	s->n_queued--;
	hmap_del(&s->by_ei, &p->ei, sizeof(p->ei));
}

static void queue_append(struct out_sock *s, struct push *p, bool front)
{
	if (front) {
		p->next = s->head;
		p->prev = NULL;
		if (s->head)
			s->head->prev = p;
		else
			s->tail = p;
		s->head = p;
	} else {
		p->prev = s->tail;
		p->next = NULL;
		if (s->tail)
			s->tail->next = p;
		else
			s->head = p;
		s->tail = p;
	}
	s->n_queued++;
	hmap_put(&s->by_ei, p);
}

static void sock_kick(struct out_sock *s);
static void on_handle_closed(uv_handle_t *h);

/* Ends the attempt in flight with the reply read so far (or the error recorded). */
static void attempt_end(struct out_sock *s)
{
	if (s->h_open && !uv_is_closing(&s->h.handle))
		uv_close(&s->h.handle, on_handle_closed);
}

static void on_sock_timer(uv_timer_t *t)
{
	struct out_sock *s = t->data;
	if (s->cur) {
		/* The attempt's deadline. */
		snprintf(s->last_error, sizeof(s->last_error), "no answer within %d s",
			 PUSH_TIMEOUT_MS / 1000);
		attempt_end(s);
		return;
	}
	sock_kick(s);
}

static void on_reply_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *b)
{
	struct out_sock *s = st->data;
	if (nread > 0) {
		size_t room = HAPROXY_CLI_REPLY_MAX - s->reply.len;
		buf_append(&s->reply, b->base, (size_t)nread < room ? (size_t)nread : room);
	}
	free(b->base);
	if (nread == UV_EOF || s->reply.len >= HAPROXY_CLI_REPLY_MAX) {
		attempt_end(s);
	} else if (nread < 0) {
		snprintf(s->last_error, sizeof(s->last_error), "reading the reply: %s",
			 uv_strerror((int)nread));
		attempt_end(s);
	}
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
	(void)h;
	(void)suggested;
	b->base = xmalloc(1024);
	b->len = 1024;
}

static void on_command_written(uv_write_t *req, int status)
{
	struct out_sock *s = req->data;
	if (status < 0) {
		if (status != UV_ECANCELED)
			snprintf(s->last_error, sizeof(s->last_error), "sending the command: %s",
				 uv_strerror(status));
		attempt_end(s);
	}
}

static void on_connected(uv_connect_t *req, int status)
{
	struct out_sock *s = req->data;
	if (status < 0) {
		if (status != UV_ECANCELED)
			snprintf(s->last_error, sizeof(s->last_error), "connect: %s",
				 uv_strerror(status));
		attempt_end(s);
		return;
	}
	uv_buf_t b = uv_buf_init((char *)s->line.data, (unsigned)s->line.len);
	s->write_req.data = s;
	int r = uv_write(&s->write_req, &s->h.stream, &b, 1, on_command_written);
	if (r == 0)
		r = uv_read_start(&s->h.stream, on_alloc, on_reply_read);
	if (r < 0) {
		snprintf(s->last_error, sizeof(s->last_error), "sending the command: %s",
			 uv_strerror(r));
		attempt_end(s);
	}
}

/* Drops every queued push of the socket (the .ocsp files still carry them). */
static size_t sock_drop_all(struct out_sock *s)
{
	size_t n = 0;
	while (s->head) {
		struct push *p = s->head;
		queue_unlink(s, p);
		push_free(p);
		n++;
	}
	s->dropped += n;
	return n;
}

/* The attempt's handle is closed: judge the reply and decide what comes next. */
static void on_handle_closed(uv_handle_t *h)
{
	struct out_sock *s = h->data;
	struct outputs *o = s->t->o;
	struct push *p = s->cur;
	uint64_t now = uv_now(o->n->loop);
	char msg[160];

	s->h_open = false;
	s->cur = NULL;
	uv_timer_stop(&s->timer);
	if (o->closing) {
		push_free(p);
		outputs_unref(o);
		return;
	}
	enum haproxy_cli_reply r =
		haproxy_cli_parse_reply(s->reply.data, s->reply.len, msg, sizeof(msg));
	if (r == HAPROXY_CLI_ACCEPTED) {
		s->accepted++;
		s->sock_failures = 0;
		s->last_ok_unix = node_now_unix();
		log_info("output", "%s: %s: response for %s pushed", s->t->name, s->addr, p->name);
		push_free(p);
	} else if (r == HAPROXY_CLI_REJECTED) {
		/* HAProxy is there but said no (a certificate it does not hold, a reload under
		 * way): this push is retried later; the others go on. */
		s->rejected++;
		s->sock_failures = 0;
		snprintf(s->last_error, sizeof(s->last_error), "HAProxy answered: %s", msg);
		p->attempts++;
		if (!p->ei || hmap_get(&s->by_ei, &p->ei, sizeof(p->ei))) {
			push_free(p); /* gone, or a newer response is queued */
		} else if (p->attempts >= HAPROXY_CLI_MAX_ATTEMPTS) {
			s->dropped++;
			log_err("output", "%s: %s: push for %s refused %u times (%s): given up",
				s->t->name, s->addr, p->name, p->attempts, msg);
			push_free(p);
		} else {
			log_warning("output", "%s: %s: push for %s refused: %s; retried",
				    s->t->name, s->addr, p->name, msg);
			p->not_before_ms = now + haproxy_cli_retry_delay_ms(p->attempts);
			queue_append(s, p, false);
		}
	} else {
		/* No answer at all: the socket is down (HAProxy stopped or restarting). The
		 * socket backs off as a whole. */
		s->failed++;
		s->sock_failures++;
		if (!s->last_error[0])
			snprintf(s->last_error, sizeof(s->last_error),
				 "connection closed without an answer");
		if (!p->ei || hmap_get(&s->by_ei, &p->ei, sizeof(p->ei)))
			push_free(p);
		else
			queue_append(s, p, true);
		if (s->sock_failures >= HAPROXY_CLI_MAX_ATTEMPTS) {
			size_t dropped = sock_drop_all(s);
			log_err("output",
				"%s: %s: unreachable after %u attempts (%s): %zu pushes dropped; "
				"the "
				"files carry them to HAProxy's next start",
				s->t->name, s->addr, s->sock_failures, s->last_error, dropped);
			s->sock_failures = 0;
			s->backoff_until_ms =
				now + haproxy_cli_retry_delay_ms(HAPROXY_CLI_MAX_ATTEMPTS);
		} else {
			log_warning("output", "%s: %s: push for %s failed: %s; retried", s->t->name,
				    s->addr, p->name, s->last_error);
			s->backoff_until_ms = now + haproxy_cli_retry_delay_ms(s->sock_failures);
		}
	}
	outputs_unref(o);
	sock_kick(s);
}

/* Starts the next push that is ready, or arms the timer for when one will be. */
static void sock_kick(struct out_sock *s)
{
	struct outputs *o = s->t->o;
	uv_loop_t *loop = o->n->loop;
	uint64_t now = uv_now(loop), wake = UINT64_MAX;
	struct push *p;

	if (o->closing || s->cur || s->h_open || !s->head)
		return;
	if (now < s->backoff_until_ms) {
		uv_timer_start(&s->timer, on_sock_timer, s->backoff_until_ms - now, 0);
		return;
	}
	for (;;) {
		for (p = s->head; p && p->not_before_ms > now; p = p->next)
			if (p->not_before_ms < wake)
				wake = p->not_before_ms;
		if (!p) {
			if (wake != UINT64_MAX)
				uv_timer_start(&s->timer, on_sock_timer, wake - now, 0);
			return;
		}
		queue_unlink(s, p);
		buf_reset(&s->line);
		if (haproxy_cli_encode_set_ocsp(p->der, p->len, &s->line) == 0)
			break;
		s->dropped++;
		log_err("output", "%s: %s: response for %s too large for HAProxy's CLI (%zu bytes)",
			s->t->name, s->addr, p->name, p->len);
		push_free(p);
	}
	s->cur = p;
	s->last_error[0] = 0;
	buf_reset(&s->reply);
	int r;
	if (s->sa.ss_family == AF_UNIX)
		r = uv_pipe_init(loop, &s->h.pipe, 0);
	else
		r = uv_tcp_init(loop, &s->h.tcp);
	if (r < 0) {
		snprintf(s->last_error, sizeof(s->last_error), "socket: %s", uv_strerror(r));
		queue_append(s, p, true);
		s->cur = NULL;
		s->backoff_until_ms = now + haproxy_cli_retry_delay_ms(1);
		uv_timer_start(&s->timer, on_sock_timer, haproxy_cli_retry_delay_ms(1), 0);
		return;
	}
	s->h.handle.data = s;
	s->h_open = true;
	o->refs++;
	s->connect_req.data = s;
	if (s->sa.ss_family == AF_UNIX) {
		uv_pipe_connect(&s->connect_req, &s->h.pipe,
				((struct sockaddr_un *)&s->sa)->sun_path, on_connected);
	} else {
		r = uv_tcp_connect(&s->connect_req, &s->h.tcp, (struct sockaddr *)&s->sa,
				   on_connected);
		if (r < 0) {
			snprintf(s->last_error, sizeof(s->last_error), "connect: %s",
				 uv_strerror(r));
			attempt_end(s);
			return;
		}
	}
	uv_timer_start(&s->timer, on_sock_timer, PUSH_TIMEOUT_MS, 0);
}

static void sock_enqueue(struct out_sock *s, struct entry_info *ei, const uint8_t *der, size_t len)
{
	struct push *p = hmap_get(&s->by_ei, &ei, sizeof(ei));
	if (p) {
		/* A newer response replaces the one still waiting: only the newest matters. */
		free(p->der);
		p->der = xmemdup(der, len);
		p->len = len;
		p->attempts = 0;
		p->not_before_ms = 0;
	} else {
		p = xcalloc(1, sizeof(*p));
		p->ei = ei;
		snprintf(p->name, sizeof(p->name), "%s", ei->name);
		p->der = xmemdup(der, len);
		p->len = len;
		queue_append(s, p, false);
	}
	sock_kick(s);
}

/* ---- commands ---- */

static void target_arm(struct out_target *t);

static void on_command_exit(int64_t status, int sig, void *ud)
{
	struct out_target *t = ud;
	struct outputs *o = t->o;
	t->running = NULL;
	bool ok = status == 0 && sig == 0;
	t->last_status = sig ? -1 : (int)status;
	if (ok) {
		t->commands_ok++;
		log_info("output", "%s: command done", t->name);
	} else {
		t->commands_failed++;
		log_err("output", "%s: command failed (exit status %lld, signal %d); retried later",
			t->name, (long long)status, sig);
	}
	if (!o->closing) {
		outrule_gate_finished(&t->gate, uv_now(o->n->loop), ok);
		target_arm(t);
	}
	outputs_unref(o);
}

/* The command's environment (besides PATH): STAPLED_OUTPUT, STAPLED_CHANGED, STAPLED_FILES. */
struct cmd_env {
	char name[200], count[64];
	struct buf files;
	char *v[4];
};

static void cmd_env_init(struct cmd_env *e, const struct out_target *t)
{
	e->files = (struct buf)BUF_INIT;
	buf_append_str(&e->files, "STAPLED_FILES=");
	for (size_t i = 0; i < t->changed.n; i++)
		buf_printf(&e->files, "%s%s", i ? "\n" : "", t->changed.v[i]);
	buf_append_byte(&e->files, 0);
	snprintf(e->name, sizeof(e->name), "STAPLED_OUTPUT=%s", t->name);
	snprintf(e->count, sizeof(e->count), "STAPLED_CHANGED=%zu", t->n_changed);
	e->v[0] = e->name;
	e->v[1] = e->count;
	e->v[2] = (char *)e->files.data;
	e->v[3] = NULL;
}

static void on_detached_closed(uv_handle_t *h)
{
	free(h);
}

/*
 * The outputs are going away (stop, or a reload that rebuilds them) with a change not yet handed
 * to the command (its interval was still running): run it now, detached, rather than lose it —
 * the files already hold the new bytes, so no later write would trigger it, and nginx would keep
 * stapling the old file's response. It outlives us; nobody waits for it.
 */
static void target_run_detached(struct out_target *t)
{
	struct cmd_env e;
	const char *path = getenv("PATH");
	char pathv[1024];
	uv_process_t *p = xcalloc(1, sizeof(*p));

	cmd_env_init(&e, t);
	snprintf(pathv, sizeof(pathv), "PATH=%s", path ? path : "/usr/bin:/bin");
	char *env[] = {pathv, e.v[0], e.v[1], e.v[2], NULL};
	char *args[] = {"/bin/sh", "-c", t->command, NULL};
	uv_process_options_t opts = {
		.file = "/bin/sh", .args = args, .env = env, .flags = UV_PROCESS_DETACHED};
	int r = uv_spawn(t->o->n->loop, p, &opts);
	if (r < 0)
		log_err("output", "%s: cannot run its command: %s", t->name, uv_strerror(r));
	else
		log_info("output", "%s: %zu file(s) changed, running its command before closing",
			 t->name, t->n_changed);
	uv_close((uv_handle_t *)p, on_detached_closed);
	buf_done(&e.files);
}

static void target_run(struct out_target *t)
{
	struct outputs *o = t->o;
	uint64_t now = uv_now(o->n->loop);
	struct cmd_env e;

	cmd_env_init(&e, t);
	log_info("output", "%s: %zu file(s) changed, running its command", t->name, t->n_changed);
	outrule_gate_started(&t->gate, now);
	t->last_run_unix = node_now_unix();
	str_list_clear(&t->changed);
	t->n_changed = 0;
	t->running = node_spawn(o->n, "output", t->command, e.v, on_command_exit, t);
	buf_done(&e.files);
	if (t->running) {
		o->refs++;
	} else {
		t->commands_failed++;
		outrule_gate_finished(&t->gate, now, false);
	}
}

static void on_target_timer(uv_timer_t *timer)
{
	struct out_target *t = timer->data;
	if (t->o->closing)
		return;
	if (outrule_gate_due_ms(&t->gate) <= uv_now(t->o->n->loop))
		target_run(t);
	target_arm(t);
}

static void target_arm(struct out_target *t)
{
	uint64_t due = outrule_gate_due_ms(&t->gate), now = uv_now(t->o->n->loop);
	if (due == UINT64_MAX) {
		uv_timer_stop(&t->timer);
		return;
	}
	uv_timer_start(&t->timer, on_target_timer, due > now ? due - now : 0, 0);
}

/* ---- files ---- */

static void on_written(int err, void *ud)
{
	struct out_write *w = ud;
	struct out_target *t = w->t;
	struct outputs *o = t->o;

	if (err < 0) {
		t->files_failed++;
		o->n->m.output_writes_failed++;
		log_err("output", "%s: cannot write %s: %s", t->name, w->file, strerror(-err));
	} else if (err > 0) {
		t->files_unchanged++;
	} else {
		t->files_written++;
		o->n->m.output_writes_ok++;
		log_debug("output", "%s: wrote %s", t->name, w->file);
		if (t->command) {
			if (t->changed.n < CHANGED_FILES_MAX)
				str_list_add(&t->changed, w->file);
			t->n_changed++;
			if (o->closing) {
				/* Written while stopping (SIGTERM lets queued writes finish): the
				 * change must still reach the web server. */
				target_run_detached(t);
				str_list_clear(&t->changed);
				t->n_changed = 0;
			} else {
				outrule_gate_change(&t->gate, uv_now(o->n->loop));
				target_arm(t);
			}
		}
	}
	if (w->then_file) {
		if (err >= 0) {
			write_file(o, t, w->then_file, w->then_data, w->then_len, NULL, NULL, 0);
		} else {
			/* HAProxy refuses to start on a .ocsp whose issuer it cannot find: better
			 * the previous .ocsp than that. The next response tries both again. */
			t->files_failed++;
			o->n->m.output_writes_failed++;
			log_err("output", "%s: %s not written: its issuer file %s could not be",
				t->name, w->then_file, w->file);
		}
	}
	out_write_free(w);
	outputs_unref(o);
}

static void out_write_free(struct out_write *w)
{
	free(w->file);
	free(w->then_file);
	free(w->then_data);
	free(w);
}

/* Queues an atomic write of file; with then_file, that one is written after file is in place
 * (and not at all if file cannot be written). */
static void write_file(struct outputs *o, struct out_target *t, const char *file,
		       const uint8_t *data, size_t len, const char *then_file,
		       const uint8_t *then_data, size_t then_len)
{
	struct out_write *w = xcalloc(1, sizeof(*w));
	w->t = t;
	w->file = xstrdup(file);
	if (then_file) {
		w->then_file = xstrdup(then_file);
		w->then_data = xmemdup(then_data, then_len);
		w->then_len = then_len;
	}
	int r = store_write_file(o->n->store, file, data, len, 0644, on_written, w);
	if (r < 0) {
		t->files_failed += then_file ? 2 : 1;
		o->n->m.output_writes_failed += then_file ? 2 : 1;
		log_err("output", "%s: cannot queue a write of %s: %s", t->name, file,
			strerror(-r));
		out_write_free(w);
		return;
	}
	o->refs++;
}

/* ---- life cycle ---- */

static void on_timer_closed(uv_handle_t *h)
{
	struct outputs *o = h->data;
	outputs_unref(o);
}

static void target_init(struct outputs *o, struct out_target *t, const char *name,
			const struct config_output *co)
{
	struct node *n = o->n;
	t->o = o;
	t->name = xstrdup(name);
	t->command = co && co->command ? xstrdup(co->command) : NULL;
	outrule_gate_init(&t->gate, co ? co->command_interval_ms : 0, OUTPUT_SETTLE_MS,
			  OUTPUT_MAX_BACKOFF_MS);
	uv_timer_init(n->loop, &t->timer);
	t->timer.data = t;
	o->refs++;
	t->n_socks = co ? co->haproxy_sockets.n : 0;
	t->socks = t->n_socks ? xcalloc(t->n_socks, sizeof(*t->socks)) : NULL;
	for (size_t i = 0; i < t->n_socks; i++) {
		struct out_sock *s = &t->socks[i];
		s->t = t;
		s->addr = xstrdup(co->haproxy_sockets.v[i]);
		/* Validated with the config. */
		config_parse_socket(s->addr, &s->sa);
		hmap_init(&s->by_ei, push_key);
		uv_timer_init(n->loop, &s->timer);
		s->timer.data = s;
		o->refs++;
	}
}

void output_start(struct node *n)
{
	struct outputs *o = xcalloc(1, sizeof(*o));
	o->n = n;
	o->refs = 1;
	o->n_t = n->cfg.n_outputs + 1;
	o->t = xcalloc(o->n_t, sizeof(*o->t));
	for (size_t i = 0; i < n->cfg.n_outputs; i++)
		target_init(o, &o->t[i], n->cfg.outputs[i].name, &n->cfg.outputs[i]);
	target_init(o, &o->t[o->n_t - 1], "certificates", NULL);
	n->outputs = o;
}

static void outputs_unref(struct outputs *o)
{
	if (--o->refs > 0)
		return;
	for (size_t i = 0; i < o->n_t; i++) {
		struct out_target *t = &o->t[i];
		for (size_t j = 0; j < t->n_socks; j++) {
			struct out_sock *s = &t->socks[j];
			sock_drop_all(s);
			hmap_done(&s->by_ei);
			buf_done(&s->line);
			buf_done(&s->reply);
			free(s->addr);
		}
		free(t->socks);
		str_list_clear(&t->changed);
		free(t->name);
		free(t->command);
	}
	free(o->t);
	free(o);
}

void output_close(struct node *n)
{
	struct outputs *o = n->outputs;
	if (!o)
		return;
	n->outputs = NULL;
	o->closing = true;
	for (size_t i = 0; i < o->n_t; i++) {
		struct out_target *t = &o->t[i];
		if (t->command && t->gate.pending)
			target_run_detached(t);
		if (t->running) {
			/* It runs on (an nginx reload half done is worse than one more run). */
			node_hook_detach(t->running);
			t->running = NULL;
			outputs_unref(o);
		}
		t->timer.data = o;
		uv_close((uv_handle_t *)&t->timer, on_timer_closed);
		for (size_t j = 0; j < t->n_socks; j++) {
			struct out_sock *s = &t->socks[j];
			sock_drop_all(s);
			attempt_end(s);
			s->timer.data = o;
			uv_close((uv_handle_t *)&s->timer, on_timer_closed);
		}
	}
	outputs_unref(o);
}

void output_restart(struct node *n)
{
	output_close(n);
	output_start(n);
}

/* ---- publishing ---- */

static struct out_target *binding_target(struct outputs *o, const struct out_binding *b)
{
	if (b->output >= 0 && (size_t)b->output + 1 < o->n_t)
		return &o->t[b->output];
	return &o->t[o->n_t - 1];
}

void output_publish(struct node *n, struct entry_info *ei, bool push)
{
	struct outputs *o = n->outputs;
	if (!o || o->closing || !ei->outs.n || !ei->entry)
		return;
	const struct cache_resp *r = cache_entry_resp(ei->entry, CERTID_SHA1);
	if (!r)
		return;
	struct cache_issuer *ci = cache_entry_issuer(ei->entry);
	struct pki_cert *ic = ci ? cache_issuer_cert(ci) : NULL;
	struct buf pem = BUF_INIT;

	for (size_t i = 0; i < ei->outs.n; i++) {
		const struct out_binding *b = &ei->outs.v[i];
		struct out_target *t = binding_target(o, b);
		if (b->issuer_file && ic) {
			/* The issuer first: a web server (re)started between the two writes must
			 * never find a response whose issuer file is not there yet. */
			if (!pem.len)
				pki_cert_pem(ic, &pem);
			write_file(o, t, b->issuer_file, pem.data, pem.len, b->file, r->der,
				   r->der_len);
		} else if (b->file) {
			write_file(o, t, b->file, r->der, r->der_len, NULL, NULL, 0);
		}
		if (push)
			for (size_t j = 0; j < t->n_socks; j++)
				sock_enqueue(&t->socks[j], ei, r->der, r->der_len);
	}
	buf_done(&pem);
}

static void publish_one(struct cache_entry *e, void *ud)
{
	struct node *n = ud;
	struct entry_info *ei = cache_entry_user(e);
	if (ei)
		output_publish(n, ei, true);
}

void output_publish_all(struct node *n)
{
	cache_foreach(n->cache, publish_one, n);
}

void output_forget(struct node *n, struct entry_info *ei)
{
	struct outputs *o = n->outputs;
	if (!o)
		return;
	for (size_t i = 0; i < o->n_t; i++)
		for (size_t j = 0; j < o->t[i].n_socks; j++) {
			struct out_sock *s = &o->t[i].socks[j];
			struct push *p = hmap_get(&s->by_ei, &ei, sizeof(ei));
			if (p) {
				queue_unlink(s, p);
				push_free(p);
			}
			if (s->cur && s->cur->ei == ei)
				s->cur->ei = NULL;
		}
}

/* ---- metrics and admin ---- */

static void metric_target(struct buf *out, const char *metric, const struct out_target *t,
			  const char *result, uint64_t v)
{
	buf_printf(out, "%s{output=\"", metric);
	metrics_label_value(out, t->name);
	buf_printf(out, "\",result=\"%s\"} %llu\n", result, (unsigned long long)v);
}

static void metric_sock(struct buf *out, const char *metric, const struct out_sock *s,
			const char *result, uint64_t v)
{
	buf_printf(out, "%s{output=\"", metric);
	metrics_label_value(out, s->t->name);
	buf_append_str(out, "\",socket=\"");
	metrics_label_value(out, s->addr);
	if (result)
		buf_printf(out, "\",result=\"%s", result);
	buf_printf(out, "\"} %llu\n", (unsigned long long)v);
}

void output_metrics(struct node *n, struct buf *out)
{
	struct outputs *o = n->outputs;
	if (!o)
		return;
	buf_append_str(out, "# HELP stapled_output_files_total Output files handed a response (or "
			    "an issuer), by result: written, unchanged (already held the bytes), "
			    "failed.\n# TYPE stapled_output_files_total counter\n");
	for (size_t i = 0; i < o->n_t; i++) {
		const struct out_target *t = &o->t[i];
		metric_target(out, "stapled_output_files_total", t, "written", t->files_written);
		metric_target(out, "stapled_output_files_total", t, "unchanged",
			      t->files_unchanged);
		metric_target(out, "stapled_output_files_total", t, "failed", t->files_failed);
	}
	buf_append_str(out, "# HELP stapled_output_commands_total Output commands run, by "
			    "result.\n# TYPE stapled_output_commands_total counter\n");
	for (size_t i = 0; i < o->n_t; i++) {
		const struct out_target *t = &o->t[i];
		if (!t->command)
			continue;
		metric_target(out, "stapled_output_commands_total", t, "ok", t->commands_ok);
		metric_target(out, "stapled_output_commands_total", t, "failed",
			      t->commands_failed);
	}
	buf_append_str(out, "# HELP stapled_output_pushes_total HAProxy runtime API pushes, by "
			    "result: accepted, rejected (HAProxy said no), failed (no answer), "
			    "dropped (given up).\n# TYPE stapled_output_pushes_total counter\n");
	for (size_t i = 0; i < o->n_t; i++)
		for (size_t j = 0; j < o->t[i].n_socks; j++) {
			const struct out_sock *s = &o->t[i].socks[j];
			metric_sock(out, "stapled_output_pushes_total", s, "accepted", s->accepted);
			metric_sock(out, "stapled_output_pushes_total", s, "rejected", s->rejected);
			metric_sock(out, "stapled_output_pushes_total", s, "failed", s->failed);
			metric_sock(out, "stapled_output_pushes_total", s, "dropped", s->dropped);
		}
	buf_append_str(out, "# HELP stapled_output_pushes_pending Pushes queued or in flight.\n"
			    "# TYPE stapled_output_pushes_pending gauge\n");
	for (size_t i = 0; i < o->n_t; i++)
		for (size_t j = 0; j < o->t[i].n_socks; j++) {
			const struct out_sock *s = &o->t[i].socks[j];
			metric_sock(out, "stapled_output_pushes_pending", s, NULL,
				    s->n_queued + (s->cur ? 1 : 0));
		}
}

void output_admin_json(struct node *n, struct buf *out)
{
	struct outputs *o = n->outputs;
	buf_append_str(out, "{\"outputs\":[");
	for (size_t i = 0; o && i < o->n_t; i++) {
		const struct out_target *t = &o->t[i];
		buf_append_str(out, i ? ",{\"name\":" : "{\"name\":");
		admin_json_str(out, t->name);
		buf_printf(out, ",\"files\":{\"written\":%llu,\"unchanged\":%llu,\"failed\":%llu}",
			   (unsigned long long)t->files_written,
			   (unsigned long long)t->files_unchanged,
			   (unsigned long long)t->files_failed);
		if (t->command) {
			buf_append_str(out, ",\"command\":{\"line\":");
			admin_json_str(out, t->command);
			uint64_t due = outrule_gate_due_ms(&t->gate);
			buf_printf(out,
				   ",\"ok\":%llu,\"failed\":%llu,\"running\":%s,\"pending\":%s,"
				   "\"last_run_unix\":%lld,\"last_status\":%d,\"due_in_ms\":%lld}",
				   (unsigned long long)t->commands_ok,
				   (unsigned long long)t->commands_failed,
				   t->running ? "true" : "false",
				   t->gate.pending ? "true" : "false", (long long)t->last_run_unix,
				   t->last_status,
				   due == UINT64_MAX ? -1LL
						     : (long long)(due > uv_now(n->loop)
									   ? due - uv_now(n->loop)
									   : 0));
		}
		buf_append_str(out, ",\"haproxy_sockets\":[");
		for (size_t j = 0; j < t->n_socks; j++) {
			const struct out_sock *s = &t->socks[j];
			buf_append_str(out, j ? ",{\"address\":" : "{\"address\":");
			admin_json_str(out, s->addr);
			buf_printf(out,
				   ",\"pending\":%zu,\"accepted\":%llu,\"rejected\":%llu,"
				   "\"failed\":%llu,\"dropped\":%llu,\"last_ok_unix\":%lld,"
				   "\"last_error\":",
				   s->n_queued + (s->cur ? 1 : 0), (unsigned long long)s->accepted,
				   (unsigned long long)s->rejected, (unsigned long long)s->failed,
				   (unsigned long long)s->dropped, (long long)s->last_ok_unix);
			admin_json_str(out, s->last_error);
			buf_append_byte(out, '}');
		}
		buf_append_str(out, "]}");
	}
	buf_append_str(out, "]}\n");
}
