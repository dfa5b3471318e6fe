/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The HTTP/1.x server: TCP listeners on the loop and one `struct conn` per client connection.
 *
 * A connection handles its requests strictly in order (HTTP/1.1 pipelining): the parser
 * (proto/http1.h) finds the next complete request in the bytes received, the handler for the
 * listener's kind appends the response to the connection's output buffer — or, when it must wait
 * (an entry being fetched), parks the connection and calls conn_resume() later — and the output is
 * written with uv_try_write first, falling back to one uv_write in flight at a time.
 *
 * Limits: max_connections on the responder listeners (extra connections are accepted, closed at
 * once and counted; admin listeners have their own budget of 64, so probes work under load), header
 * and body
 * sizes (431 / 413), request_timeout from the first byte of a request to its end (408),
 * idle_timeout between keep-alive requests (silent close). A connection that must close after
 * its response shuts down its write side and drains input briefly, so the client reads the
 * response instead of a reset.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "proto/buf.h"
#include "proto/certid.h"
#include "proto/http1.h"

struct h2_session;
struct tls_conn;

struct node;
struct server;
struct entry_info;

enum listener_kind {
	LISTENER_OCSP,	/* the responder */
	LISTENER_ADMIN, /* metrics, health, admin API (loopback by default) */
};

/*
 * A parked OCSP request: a known certificate whose response is being fetched. Owned by the
 * responder; listed on its entry's slot and on its connection. An HTTP/1 connection has at most
 * one (requests are answered in order, so it stops parsing until it is answered); an HTTP/2
 * connection has one per waiting stream while its other streams go on.
 */
struct waiter {
	struct waiter *slot_next; /* in the slot's list of waiters */
	struct waiter *conn_next; /* in the connection's list */
	struct conn *conn;
	int32_t stream_id; /* HTTP/2 stream, 0 for HTTP/1 */
	struct entry_info *entry;
	uint8_t alg;
	bool head;
	bool keep_alive;
	bool http10;
	bool want_issuer; /* Stapled-Want-Issuer: answer with the issuer certificate */
	char if_none_match[80];
	uint64_t deadline_ms;
};

struct conn {
	uv_tcp_t tcp;
	uv_timer_t timer;
	uv_shutdown_t shutdown_req;
	uv_write_t write_req;
	struct server *srv;
	enum listener_kind kind;
	struct conn *prev, *next; /* the server's list of connections */
	struct buf in;		  /* received, not yet consumed bytes start at in_off */
	size_t in_off;
	struct buf out;		   /* response bytes not yet handed to libuv */
	struct buf wbuf;	   /* bytes of the uv_write in flight */
	uint8_t *scratch;	   /* decoded chunked bodies, allocated on first use */
	uint64_t request_start_ms; /* first byte of the current request, 0 if none */
	uint64_t last_activity_ms;
	uint64_t drain_start_ms;
	int open_handles;
	bool closing;
	bool writing;
	bool reading;
	bool close_after_write; /* the last response is queued: close once written */
	bool draining;		/* write side shut down; discarding input until EOF */
	bool waiting;		/* HTTP/1: the request in progress is parked */
	struct waiter *waiters; /* parked requests of this connection */
	struct h2_session *h2;	/* non-NULL once the connection speaks HTTP/2 */
	int32_t h2_stream;	/* the stream being handled (set around handler calls) */
	bool in_h2_recv;	/* inside h2_session_recv: sending is deferred */
	bool http1;		/* decided: not HTTP/2 */
	struct tls_conn *tls;	/* TLS listener: the session (ciphertext in cin/cout) */
	struct buf cin;		/* ciphertext read, before decryption */
	struct buf cout;	/* ciphertext to write */
	char peer[64];
};

/*
 * Handlers, one per listener kind, return HANDLER_DONE when the response is in `out`, or
 * HANDLER_WAIT after parking the request (a struct waiter on c->waiters; for HTTP/1 also
 * c->waiting, and the connection reads nothing more until conn_resume()). The answer to a parked
 * request is delivered with conn_deliver(). Handlers never close the connection themselves: a
 * response that must end the connection sets c->close_after_write. For HTTP/2 the request is
 * presented as a parsed HTTP/1.1 request and the rendered response is converted to frames.
 */
enum handler_result {
	HANDLER_DONE = 0,
	HANDLER_WAIT = 1
};
typedef enum handler_result (*server_handler_fn)(struct node *n, struct conn *c,
						 const struct http1_request *req, struct buf *out);

struct server_limits {
	size_t max_connections;
	struct http1_limits http;
	uint64_t request_timeout_ms;
	uint64_t idle_timeout_ms;
};

int server_new(uv_loop_t *loop, struct node *n, const struct server_limits *limits,
	       server_handler_fn ocsp_handler, server_handler_fn admin_handler,
	       struct server **ret);
/* Binds and listens on "ADDR:PORT". Errors: -EINVAL bad address; -errno from bind/listen. */
int server_listen(struct server *s, const char *addr, enum listener_kind kind);
/* The same with TLS: every connection starts with a handshake under `tls` (borrowed: it must
 * outlive the server), offering ALPN h2 and http/1.1; the plaintext is then HTTP/1.x or HTTP/2
 * as on a plain listener. */
struct tls_ctx;
int server_listen_tls(struct server *s, const char *addr, enum listener_kind kind,
		      struct tls_ctx *tls);
/* The admin listener's own connection budget: health probes and scrapes must get through when
 * the responder is saturated, so they never share its limit. */
#define SERVER_ADMIN_MAX_CONNECTIONS 64

/* Descriptors kept out of the responder's connection budget: the admin listener's 64
 * connections, upstream fetches and kept-alive upstream connections, gossip, files being written,
 * listeners, logs. */
#define SERVER_FD_RESERVE 256

/* How many responder connections a descriptor limit of nofile leaves room for, at most
 * max_connections: what remains after SERVER_FD_RESERVE, and never less than a quarter of the limit
 * (a tiny limit still serves someone). Beyond this budget accept() would fail with EMFILE, and
 * libuv then closes pending connections unseen; within it, extra clients are refused and counted.
 */
size_t server_connection_budget(uint64_t nofile, size_t max_connections);

/* New limits apply to new requests (config reload). */
void server_set_limits(struct server *s, const struct server_limits *limits);
/* Stops accepting; existing connections continue (graceful drain on SIGTERM). */
void server_stop_listening(struct server *s);
size_t server_connections(const struct server *s);
size_t server_connections_kind(const struct server *s, enum listener_kind kind);
/* Connections refused because the listener kind's limit was reached. */
uint64_t server_refused_kind(const struct server *s, enum listener_kind kind);
enum server_proto {
	SERVER_PROTO_HTTP10,
	SERVER_PROTO_HTTP11,
	SERVER_PROTO_H2,
	SERVER_PROTO_COUNT
};
/* Requests handled since start, by protocol (all listeners). */
uint64_t server_requests(const struct server *s, enum server_proto proto);
/* Closes every connection and listener; on_closed once all handles are closed (then freed). */
void server_close(struct server *s, void (*on_closed)(void *ud), void *ud);

/* Implemented by the responder: drop every parked request of a connection that closes, or of
 * one HTTP/2 stream that the client reset (stream_id > 0); answer those whose deadline passed. */
void responder_cancel_waits(struct conn *c, int32_t stream_id);
void responder_waits_expired(struct conn *c, uint64_t now_ms);

/*
 * Delivers the answer to a parked request of `c`: `resp` holds a complete rendered HTTP/1.x
 * response. For HTTP/1 it is queued and parsing resumes; for HTTP/2 it is sent on `stream_id`.
 */
void conn_deliver(struct conn *c, int32_t stream_id, const struct buf *resp);
/* Appends a minimal text response with the given status (e.g. 400) and closes afterwards. */
void conn_error_response(struct conn *c, struct buf *out, int status, const char *reason,
			 const char *msg);
