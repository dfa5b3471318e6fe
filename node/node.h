/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The node: one process, one libuv loop, and everything it drives — the cache (pure), the
 * inventory of certificates, the refresher that fetches from upstreams, the disk store, the HTTP
 * server and the metrics. This header is node/'s internal shared vocabulary; cmd/ only sees
 * node_run().
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "cache/cache.h"
#include "node/config.h"
#include "node/server.h"
#include "proto/certid.h"
#include "proto/ocsp.h"

struct fetcher;
struct fetch;
struct store;
struct server;
struct inventory;
struct conn;
struct tls_ctx;
struct hook;

enum req_result {
	REQ_HIT,
	REQ_NOT_MODIFIED,
	REQ_UNAUTHORIZED,
	REQ_MALFORMED,
	REQ_UNAVAILABLE,
	REQ_ERROR,
	REQ_RESULT_COUNT,
};

enum fetch_outcome {
	FETCH_OK,
	FETCH_UNCHANGED,
	FETCH_INVALID,
	FETCH_HTTP_ERROR,
	FETCH_NETWORK_ERROR,
	FETCH_OUTCOME_COUNT,
};

struct upstream_stats {
	char *url;
	uint64_t outcomes[FETCH_OUTCOME_COUNT];
	int64_t last_ok_unix;
	int64_t last_fail_unix;
	unsigned consecutive_failures;
	int64_t set_aside_until; /* circuit breaker: not asked before this unless nothing else */
};

struct metrics {
	uint64_t requests[REQ_RESULT_COUNT];
	struct upstream_stats *upstreams;
	size_t n_upstreams, cap_upstreams;
	uint64_t reloads;
	uint64_t alerts[4]; /* alerts raised per level 1..3 and expiry (index level-1) */
	uint64_t hook_runs;
	uint64_t output_writes_ok, output_writes_failed;
	uint64_t disk_loaded, disk_skipped;
};

/* Per-(entry, alg) state the node keeps beside the cache: fetches, waiters, upstream ETag. */
struct slot_state {
	struct node *n;
	struct entry_info *ei;
	uint8_t alg;
	struct fetch *inflight;
	uint32_t url_idx;	/* position in the upstream list of the fetch in flight */
	uint8_t last_alert;	/* alert level last reported */
	bool tried;		/* at least one fetch attempt has completed */
	bool disk_pending;	/* its cache-dir file is not loaded yet (start-up) */
	uint32_t disk_idx;	/* that file's index in node.pending */
	char *etag;		/* upstream ETag of the held response (for If-None-Match) */
	struct waiter *waiters; /* parked requests (slot_next list) */
};

/* The node's data for a cache entry (cache_entry_user). Owned by the inventory. */
struct entry_info {
	struct cache_entry *entry;
	struct pki_cert *cert;	     /* the leaf (reference); NULL if only known by CertID */
	char name[CERTID_SHORT_MAX]; /* short id for logs and metrics */
	struct str_list upstreams;   /* per-certificate override from the config */
	struct str_list out_files;   /* output files to write each new response to */
	unsigned sources;	     /* inventory files/config items naming this certificate */
	bool no_upstream;	     /* no URL to ask: definitively failed */
	struct slot_state *slots[CERTID_ALG_COUNT];
};

struct node {
	uv_loop_t *loop;
	struct config cfg;
	struct ocsp_policy policy;
	struct cache *cache;
	struct fetcher *fetcher;
	struct store *store; /* cache dir, or outputs only */
	bool store_has_dir;
	struct server *server;
	struct tls_ctx *tls_ctx; /* tls.listen addresses (NULL without) */
	struct inventory *inv;
	struct metrics m;

	uv_timer_t refresh_timer; /* fires at the cache's next due time */
	uv_timer_t tick;	  /* 1 s housekeeping: alerts, expiry, readiness */
	uv_signal_t sig_hup, sig_term, sig_int;
	uv_timer_t drain_timer; /* SIGTERM: waits for connections to finish */
	/* Start-up loading: cache-dir files are validated in the background after the
	 * listeners open; a slot still on disk is loaded on demand. */
	struct pending_file *pending;
	size_t n_pending, pending_next, pending_loaded;
	uv_idle_t loader;
	bool loading;
	uint64_t loading_start_ms;
	uint64_t drain_start_ms;
	size_t fetches_active;
	uint64_t store_failures_seen; /* store write failures already logged */
	bool ready;
	bool stopping;
	int exit_code;
	uint64_t rng[2];    /* xorshift128+ state, seeded from getrandom */
	struct hook *hooks; /* alert commands running */
	void *req_memo;	    /* responder.c: request bytes -> CertID memo */

	/* Reload support: rebuilds the config from file and flags. */
	int (*load_config)(struct config *out, void *ud, char *err, size_t errlen);
	void *load_config_ud;
};

struct pending_file {
	char *name;		  /* NULL once loaded */
	struct cache_entry *hint; /* the entry its name belongs to, if any */
};

/* Loads the slot's cache-dir file now if it is still pending (a request or refresh needs it). */
void node_load_pending(struct node *n, struct entry_info *ei, enum certid_alg alg);

/* Options from cmd/. load_config must produce a validated config (file + flags). */
struct node_opts {
	int (*load_config)(struct config *out, void *ud, char *err, size_t errlen);
	void *ud;
};

/* Runs the node until SIGTERM/SIGINT; returns the process exit code. */
int node_run(const struct node_opts *opts);

/* Wall-clock seconds (the only clock the cache and validator see). */
int64_t node_now_unix(void);
uint64_t node_random(struct node *n);

/* ---- responder (node/responder.c) ---- */
enum handler_result responder_handle_ocsp(struct node *n, struct conn *c,
					  const struct http1_request *req, struct buf *out);
enum handler_result responder_handle_admin(struct node *n, struct conn *c,
					   const struct http1_request *req, struct buf *out);
/* Answers every request parked on (entry, alg): called after a fetch ends either way. */
void responder_wake(struct node *n, struct entry_info *ei, enum certid_alg alg);

/* ---- refresher (node/refresher.c) ---- */
/* Starts the fetches that are due (bounded by max_parallel) and re-arms the timer. */
void refresher_pump(struct node *n);
/* Cancels the slot fetches of an entry about to be removed. */
void refresher_forget(struct node *n, struct entry_info *ei);
/* Offers a response read from disk at start-up (validated like any upstream answer). `hint` is
 * the entry the file's name belongs to, if known: the file is then checked in one pass. */
void refresher_load_file(struct node *n, const char *name, const uint8_t *der, size_t len,
			 int64_t received_unix, struct cache_entry *hint);
/* Cache-dir file name of a slot: "ocsp-<alg>-<key hash>-<serial>.der". */
void refresher_file_name(const struct cache_entry *e, enum certid_alg alg, char *out, size_t len);
struct slot_state *entry_slot(struct entry_info *ei, enum certid_alg alg);
/* The ordered upstream URLs for an entry (override, global, AIA); returns the count. */
size_t refresher_upstreams(const struct node *n, const struct entry_info *ei,
			   const char *const **ret_urls, const char **scratch, size_t scratch_n);

/* ---- metrics and admin (node/metrics.c, node/admin.c) ---- */
struct upstream_stats *metrics_upstream(struct metrics *m, const char *url);
void metrics_render(struct node *n, struct buf *out);
void metrics_done(struct metrics *m);
void admin_entries_json(struct node *n, struct buf *out);
void admin_refresh_all(struct node *n);
bool node_is_ready(struct node *n);
