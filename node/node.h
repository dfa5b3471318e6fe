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
#include "node/output.h"
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
struct cluster;

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

/* Why a slot without response is wanted now (node/cluster.c). */
enum cluster_miss {
	CLUSTER_MISS_NONE,
	CLUSTER_MISS_LOCAL,	/* a client of ours asked: forward once to the owner */
	CLUSTER_MISS_FORWARDED, /* a peer forwarded its miss: fetch, never forward again */
};

/* Distinct upstream URLs counted one by one; the rest share metrics.other. */
#define METRICS_UPSTREAMS_MAX 1024

struct metrics {
	uint64_t requests[REQ_RESULT_COUNT];
	struct upstream_stats *upstreams;
	size_t n_upstreams, cap_upstreams;
	struct upstream_stats other; /* past METRICS_UPSTREAMS_MAX; no circuit breaker */
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
	uint32_t url_idx;     /* position in the upstream list of the fetch in flight */
	char *url;	      /* the URL of the fetch in flight (the list may change meanwhile) */
	bool learned_fetch;   /* counted in node.fetches_learned */
	uint8_t last_alert;   /* alert level last reported */
	bool tried;	      /* at least one fetch attempt has completed */
	bool disk_pending;    /* its cache-dir file is not loaded yet (start-up) */
	uint32_t disk_idx;    /* that file's index in node.pending */
	char *etag;	      /* upstream ETag of the held response (for If-None-Match) */
	bool pull;	      /* the fetch in flight pulls from a cluster peer (node/cluster.c) */
	uint8_t cluster_rank; /* our rank for the entry when the fetch in flight started */
	int64_t cluster_wanted_unix;   /* cluster: when a slot without response was first due */
	int64_t cluster_seen_tu;       /* newest thisUpdate announced for it (relayed once) */
	int64_t cluster_asked_base;    /* the refresh time for which we already asked the owner */
	uint8_t cluster_miss;	       /* a client waits: CLUSTER_MISS_LOCAL or _FORWARDED */
	int64_t cluster_forward_until; /* our miss went to the owner: its answer is awaited until */
	struct waiter *waiters;	       /* parked requests (slot_next list) */
};

/* The node's data for a cache entry (cache_entry_user). Owned by the inventory. */
struct entry_info {
	struct cache_entry *entry;
	struct pki_cert *cert;	       /* the leaf (reference); NULL if only known by CertID */
	char name[CERTID_SHORT_MAX];   /* short id for logs and metrics */
	struct str_list upstreams;     /* per-certificate override from the config */
	struct out_bindings outs;      /* what web servers get of each new response (output.c) */
	struct out_bindings outs_next; /* inventory.c, during a scan */
	bool outs_rebuilt;	       /* inventory.c, during a scan */
	unsigned sources;	       /* inventory files/config items naming this certificate */
	bool no_upstream;	       /* no URL to ask: definitively failed */
	struct slot_state *slots[CERTID_ALG_COUNT];
	int64_t last_used_unix; /* last request for it (learned entries expire on this) */
	uint32_t fetches;	/* upstream fetches started for it (not peer pulls) */
	uint32_t pulls;		/* responses pulled from cluster peers */
	/* Learned from a request (node/learn.c), not from the inventory. */
	bool learned;
	bool unauthorized; /* the upstream answered unauthorized: so do we while in backoff */
	uint8_t hops;	   /* Stapled-Hops of the request that taught it */
	char *origin;	   /* origin responder named by a request (proxy target, Stapled-Origin) */
	int64_t learned_unix;
	struct entry_info *learn_prev, *learn_next; /* node.learned list */
};

/* Entries learned from requests: why one was or was not created, and expiries. */
enum learn_result {
	LEARN_CREATED,
	LEARN_REFUSED_LIMIT,	 /* learn.max_entries (or the issuer cap) reached */
	LEARN_REFUSED_NO_ORIGIN, /* no parent, and no origin known for it */
	LEARN_REFUSED_ORIGIN,	 /* the origin named is not in learn.allowed_origins */
	LEARN_REFUSED_LOOP,	 /* forwarded through too many stapled nodes */
	LEARN_REFUSED_NO_ISSUER, /* no parent, and no issuer certificate to check answers with */
	LEARN_EVICTED,		 /* dropped unanswered to make room for a new one */
	LEARN_EXPIRED,		 /* dropped after learn.idle_expiry without a request */
	LEARN_RESULT_COUNT,
};
extern const char *const learn_result_names[LEARN_RESULT_COUNT];
/* Stapled-Hops at which a node stops forwarding (a loop of parents). */
#define LEARN_MAX_HOPS 8
/* Largest Stapled-Issuer header value sent to a parent (base64 of the issuer certificate):
 * well inside a parent's default 8 KiB header limit. */
#define STAPLED_ISSUER_HEADER_MAX 6144

struct node {
	uv_loop_t *loop;
	struct config cfg;
	struct ocsp_policy policy;
	struct cache *cache;
	struct fetcher *fetcher;
	struct store *store; /* cache dir, or outputs only */
	bool store_has_dir;
	struct server *server;
	size_t conn_budget;	 /* responder connections the descriptor limit leaves room for */
	struct tls_ctx *tls_ctx; /* tls.listen addresses (NULL without) */
	struct inventory *inv;
	struct cluster *cluster; /* NULL without cluster.bind (node/cluster.c) */
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
	size_t fetches_learned; /* of which for learned entries (at most half of max_parallel) */
	uint64_t store_failures_seen; /* store write failures already logged */
	bool ready;
	bool stopping;
	int exit_code;
	uint64_t rng[2];	    /* xorshift128+ state, seeded from getrandom */
	struct hook *hooks;	    /* background commands running (alerts, outputs) */
	struct outputs *outputs;    /* files, pushes, commands for web servers (output.c) */
	void *req_memo;		    /* responder.c: request bytes -> CertID memo */
	struct entry_info *learned; /* learned entries, most recently asked first (learn.c) */
	struct entry_info *learned_tail;
	size_t n_learned;
	struct issuer_info *issuer_infos; /* node data of issuers (learn.c) */
	uint64_t learn_results[LEARN_RESULT_COUNT];
	uint64_t proxy_requests, proxy_refused;

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

/*
 * Runs `command` with /bin/sh -c in the background; its environment is PATH plus `env` (a
 * NULL-terminated list of "NAME=value", read during the call only; at most 30). on_exit (may be
 * NULL: a failure is then logged in `group`, a static string) is called once with the exit
 * status and signal, unless node_hook_detach() was called first. A command still running after
 * 60 s is killed, and all are at shutdown. Returns the hook, owned by the node and valid until
 * on_exit runs, or NULL (logged) if the command could not be started.
 */
struct hook *node_spawn(struct node *n, const char *group, const char *command, char *const *env,
			void (*on_exit)(int64_t status, int sig, void *ud), void *ud);
/* on_exit will not be called: the caller is going away (the command runs on). */
void node_hook_detach(struct hook *h);

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
/* Pulls a slot's response from a cluster peer's responder at url (an announcement or digest said
 * it holds a newer one, or our miss goes to the entry's owner); sent with Stapled-Forwarded so
 * the peer never forwards it; validated like any answer; no fallback to upstreams on failure;
 * timeout_ms 0 is the configured fetch timeout.
 * Errors: -EBUSY a fetch for the slot is in flight; -ECANCELED stopping; those of fetcher_start. */
int refresher_pull(struct node *n, struct entry_info *ei, enum certid_alg alg, const char *url,
		   uint64_t timeout_ms);
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

/* ---- learning (node/learn.c) ---- */
/*
 * A learned entry for a request's CertID that the node has no entry for, or NULL (counted in
 * learn_results) when learning is off, over its limits, looping, or nobody is known to ask.
 * `origin` is the responder the request named (already checked with learn_origin_allowed), or
 * NULL; `hops` its Stapled-Hops. The entry's slot for id->alg is due now.
 */
struct entry_info *learn_entry(struct node *n, const struct certid *id, const char *origin,
			       unsigned hops);
/* A learned entry for a response found in the cache directory (no origin, no checks). */
struct entry_info *learn_from_disk(struct node *n, const struct certid *id);
/* Whether an origin named by a request may be used (http(s) and learn.allowed_origins). */
bool learn_origin_allowed(const struct node *n, const char *url);
/* The origin responder for an entry: its own, its certificate's AIA, its issuer's, the default;
 * NULL if none. */
const char *learn_origin(const struct node *n, const struct entry_info *ei);
/* Remembers an origin for the issuer's certificates (the first one seen stays). */
void learn_note_issuer_origin(struct node *n, struct cache_issuer *ci, const char *url);
/* The inventory now has the certificate of a learned entry: it becomes an ordinary entry. */
void learn_adopt(struct node *n, struct entry_info *ei, struct pki_cert *cert);
/* A Stapled-Issuer header (from a parent's answer or a child's request): the issuer
 * certificate of `id`, accepted only if its name and key hash to id's issuer hashes; then known
 * to the cache and the inventory pool (persisted). `who` names the subject in logs. */
bool learn_issuer_add(struct node *n, const struct certid *id, const char *b64, size_t len,
		      const char *who);
/* A request for a learned entry: it stays alive and moves to the front of the LRU list. */
void learn_touch(struct node *n, struct entry_info *ei, int64_t now);
/* Drops learned entries idle too long and the issuers left without entries. */
void learn_sweep(struct node *n, int64_t now);
void learn_issuer_removed(struct cache_issuer *ci, void *ud);
/* Takes a learned entry off the learned list (before it is freed). */
void learn_unlink(struct node *n, struct entry_info *ei);
/* Frees every learned entry's node data and the issuers' (shutdown). */
void learn_close(struct node *n);

/* Removes an entry: its fetches, files, cache entry; parked requests are answered. Frees ei. */
void node_entry_remove(struct node *n, struct entry_info *ei);
/* Frees an entry_info (its cache entry must already be gone or detached). */
void entry_info_free(struct node *n, struct entry_info *ei);

/* ---- metrics and admin (node/metrics.c, node/admin.c) ---- */
struct upstream_stats *metrics_upstream(struct metrics *m, const char *url);
void metrics_render(struct node *n, struct buf *out);
/* Appends a Prometheus label value, escaped (backslash, double quote, newline). */
void metrics_label_value(struct buf *out, const char *s);
void metrics_done(struct metrics *m);
void admin_entries_json(struct node *n, struct buf *out);
/* Appends s as a JSON string (quoted, escaped). */
void admin_json_str(struct buf *out, const char *s);
void admin_refresh_all(struct node *n);
bool node_is_ready(struct node *n);
