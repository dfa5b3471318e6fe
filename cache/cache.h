/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The response cache: what stapled knows, what it can serve, and when each response must be
 * refreshed. Pure: no I/O, no clock, no randomness, no logging — "now" and random numbers are
 * arguments, and everything the node must act on is returned or polled.
 *
 * Glossary
 *   issuer     a CA certificate (or, for entries learned from requests, just the name/key hashes
 *              of one CertID form). Issuers are few and shared by many entries.
 *   entry      one certificate: an issuer plus a serial. An entry answers a request with a CertID
 *              of any of the four hash algs its issuer has hashes for.
 *   slot       the response held for one alg of an entry. Most entries only ever use the SHA-1
 *              slot (what web servers ask for); other slots fill when a client asks in that form,
 *              because a response signed for a SHA-1 CertID does not answer a SHA-256 request.
 *   due        the time a slot must next be fetched: its refresh time, a retry after failure, or
 *              "now" for a slot that has no response yet. A slot being fetched has no due time
 *              until cache_store() or cache_fetch_failed() says how the fetch ended.
 *   refresh    the one time per stored response, drawn when it is stored, at which it is
 *              refreshed: thisUpdate + validity × (lo + (hi − lo) × u), where u ∈ [0, 1) comes
 *              from the entry's key hash, so every node of a cluster computes the same time.
 *              Computed in 32.32 fixed point (identical on every architecture):
 *              u = key_hash >> 32, f = lo + (hi − lo)·u / 2^32, t = this + ⌊validity·f / 2^32⌋.
 *   key hash   FNV-1a 64 over K then the serial bytes, finished with the splitmix64 mixer, where
 *              K is the issuer's SHA-1 key hash (or, for an issuer known only by another form,
 *              the key hash of its lowest-numbered alg).
 *
 * Invariants
 *   - A slot's response never goes back to an older thisUpdate (no rollback).
 *   - A failed fetch never removes or replaces a response (never downgrade).
 *   - The bytes accounted (DER plus fixed per-object overhead) never exceed max_bytes.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/certid.h"
#include "proto/ocsp.h"
#include "proto/ocsp_http.h"
#include "proto/pki.h"

struct cache;
struct cache_issuer;
struct cache_entry;

struct cache_config {
	size_t max_bytes;		/* bound on accounted bytes (default 256 MiB) */
	double refresh_lo, refresh_hi;	/* refresh window as fractions of validity (0.5, 0.75) */
	int64_t min_refresh_interval_s; /* never refresh sooner than this after a store (60) */
	int64_t backoff_base_s;		/* first retry delay ceiling after a failure (10) */
	int64_t backoff_max_s;		/* retry delay cap (3600) */
	double alert_fraction[3]; /* validity left that raises alert levels 1..3 (.5 .25 .1) */
	/* Keys the entry index's layout (not the entry key hash, which every node shares): a
	 * random seed keeps request-chosen serials of learned entries from being picked to
	 * collide. Fixed at cache_new; cache_set_config keeps the first one. Default 0. */
	uint64_t hash_seed;
};
void cache_config_default(struct cache_config *c);

/* A response held in a slot. Immutable once stored; replaced as a whole. */
struct cache_resp {
	struct ocsp_http_meta meta; /* thisUpdate, nextUpdate (effective), ETag */
	int64_t produced_at_unix;
	int64_t stored_unix;  /* when this node stored it */
	int64_t refresh_unix; /* the refresh time drawn at store */
	uint8_t status;	      /* enum ocsp_cert_status */
	uint32_t der_len;
	uint8_t der[]; /* the DER OCSPResponse, served as is */
};

/* Errors: -EINVAL bad config (lo/hi outside [0,1] or lo > hi, thresholds not in (0,1] and
 * strictly decreasing (unused ones 0, last),
 * backoff_base_s < 1, backoff_max_s < backoff_base_s, negative min interval, max_bytes 0). */
int cache_new(const struct cache_config *cfg, struct cache **ret);
void cache_free(struct cache *c);
/*
 * Replaces the configuration (SIGHUP). Responses already stored keep the refresh time drawn for
 * them; the new window, intervals, backoff and thresholds apply from the next store or failure.
 * A lower max_bytes refuses new stores until enough is removed. Errors: -EINVAL as cache_new.
 */
int cache_set_config(struct cache *c, const struct cache_config *cfg);

/* ---- issuers ---- */

/*
 * Registers an issuer certificate (takes a new reference), computing its name/key hashes for all
 * four algs. Idempotent: the same certificate (by fingerprint) returns the existing issuer, and
 * a hashes-only issuer with matching hashes is upgraded to carry the certificate.
 * Errors: -EINVAL hashes could not be computed.
 */
int cache_issuer_add(struct cache *c, struct pki_cert *issuer_cert, struct cache_issuer **ret);
/*
 * Registers (or finds) an issuer known only by one CertID form's hashes, as seen in a request
 * (leaf and proxy modes). It answers only that alg until a certificate is added for it.
 */
struct cache_issuer *cache_issuer_add_hashes(struct cache *c, enum certid_alg alg,
					     const uint8_t *name_hash, const uint8_t *key_hash);
/* The issuer whose hashes under `alg` are these, or NULL. */
struct cache_issuer *cache_issuer_find(struct cache *c, enum certid_alg alg,
				       const uint8_t *name_hash, const uint8_t *key_hash);
/* The issuer certificate (borrowed), or NULL for a hashes-only issuer. */
struct pki_cert *cache_issuer_cert(const struct cache_issuer *i);
bool cache_issuer_has_alg(const struct cache_issuer *i, enum certid_alg alg);
/* Number of issuers registered (with a certificate or hashes only). */
size_t cache_issuer_count(const struct cache *c);
/* The node's own data for this issuer (borrowed; the cache never touches it but see gc). */
void *cache_issuer_user(const struct cache_issuer *i);
void cache_issuer_set_user(struct cache_issuer *i, void *user);
/* Number of entries of this issuer. */
size_t cache_issuer_entries(const struct cache_issuer *i);
/*
 * Removes issuers that answer nothing any more: hashes-only issuers without entries (learned
 * from requests whose entries have all been removed) and issuers merged into another one once
 * their last entry is gone. on_remove (may be NULL) is called for each before it is freed, so
 * the caller can release its user data. Issuers with a certificate are kept. Returns how many
 * were removed. Issuer pointers other than the removed ones stay valid.
 */
size_t cache_issuer_gc(struct cache *c, void (*on_remove)(struct cache_issuer *i, void *ud),
		       void *ud);

/* ---- entries ---- */

enum cache_entry_flags {
	CACHE_ENTRY_MUST_STAPLE = 1u << 0, /* refreshed first, alerts louder */
	CACHE_ENTRY_LEARNED = 1u << 1,	   /* learned from a request, not from the inventory */
};

/*
 * Adds the entry (issuer, serial), or returns the existing one (its flags are OR-ed). A new entry
 * has its default slot (SHA-1, or the issuer's only alg) due at `now_unix`.
 * Errors: -EMSGSIZE serial longer than CERTID_SERIAL_MAX; -EINVAL empty serial.
 */
int cache_entry_add(struct cache *c, struct cache_issuer *issuer, const uint8_t *serial,
		    size_t serial_len, unsigned flags, int64_t now_unix, struct cache_entry **ret);
/* Removes an entry and its responses. The pointer is invalid afterwards. */
void cache_entry_remove(struct cache *c, struct cache_entry *e);

/*
 * The entry that answers a request's CertID, or NULL (unknown issuer or serial). The slot that
 * answers it is id->alg's.
 */
struct cache_entry *cache_lookup(struct cache *c, const struct certid *id);

struct cache_issuer *cache_entry_issuer(const struct cache_entry *e);
const uint8_t *cache_entry_serial(const struct cache_entry *e, size_t *ret_len);
unsigned cache_entry_flags(const struct cache_entry *e);
/* The CertID of the entry under alg. Errors: -ENOENT the issuer has no hashes for alg. */
int cache_entry_certid(const struct cache_entry *e, enum certid_alg alg, struct certid *ret);
/* A stable 64-bit hash of the entry's identity (issuer key hash + serial), equal on every node. */
uint64_t cache_entry_key_hash(const struct cache_entry *e);
/* The node's own data for this entry (borrowed; the cache never touches it). */
void *cache_entry_user(const struct cache_entry *e);
void cache_entry_set_user(struct cache_entry *e, void *user);

/* The response held for alg, or NULL. It may be expired: callers check before serving. */
const struct cache_resp *cache_entry_resp(const struct cache_entry *e, enum certid_alg alg);
/* The response for alg if one is held and nextUpdate > now, else NULL. */
const struct cache_resp *cache_entry_servable(const struct cache_entry *e, enum certid_alg alg,
					      int64_t now_unix);

/*
 * Marks a slot as wanted: a slot without a response becomes due at now (if it is not already
 * due or being fetched). Used when a client asks for a form that was never fetched.
 * Errors: -ENOENT the issuer has no hashes for alg.
 */
int cache_entry_want(struct cache *c, struct cache_entry *e, enum certid_alg alg, int64_t now_unix);

/* ---- responses ---- */

enum cache_store_result {
	CACHE_STORED = 1,    /* new response (newer thisUpdate, or different bytes at same time) */
	CACHE_UNCHANGED = 0, /* same bytes as held: only the refresh schedule was renewed */
};

/*
 * Offers a response that the caller has validated (info from ocsp_response_check). Rules:
 * - info->this_update_unix older than the held response's → -ESTALE (no rollback);
 * - the same DER as held → CACHE_UNCHANGED, refresh time drawn again from now;
 * - otherwise the response replaces the held one → CACHE_STORED.
 * The refresh time is drawn as the glossary says and then lowered to stored + max_age_s when
 * max_age_s ≥ 0 (upstream Cache-Control), and raised to at least now + min_refresh_interval_s.
 * `now_unix` is when the response was received (for responses loaded from disk at start, the
 * load time). Also clears the slot's failure count.
 * Errors: -ESTALE as above; -ENOSPC storing would exceed max_bytes (the old response stays);
 *         -ENOENT the issuer has no hashes for alg; -EMSGSIZE der over 1 MiB.
 */
int cache_store(struct cache *c, struct cache_entry *e, enum certid_alg alg, const uint8_t *der,
		size_t len, const struct ocsp_info *info, int64_t now_unix, int64_t max_age_s);

/*
 * Records that a fetch for (e, alg) failed: the slot becomes due again after a delay drawn with
 * exponential backoff and full jitter: uniform in [0, min(backoff_max, base × 2^failures)] from
 * `random` (any 64 random bits), but at least 1 s; or exactly retry_after_s when that is ≥ 0
 * (Retry-After), capped at backoff_max. Returns the new due time.
 */
int64_t cache_fetch_failed(struct cache *c, struct cache_entry *e, enum certid_alg alg,
			   int64_t now_unix, int64_t retry_after_s, uint64_t random);
/* Consecutive failures of the slot since its last successful store. */
unsigned cache_slot_failures(const struct cache_entry *e, enum certid_alg alg);

/*
 * Reschedules the slot to be due at `when_unix` (used by the node, e.g. an admin "refresh now",
 * or a fetch that was cancelled and must be retried); INT64_MAX makes it not due at all until
 * wanted or rescheduled. Errors: -ENOENT no such slot.
 */
int cache_slot_schedule(struct cache *c, struct cache_entry *e, enum certid_alg alg,
			int64_t when_unix);

/* ---- scheduling ---- */

/* The earliest due time over all slots; INT64_MAX if nothing is due ever. */
int64_t cache_next_due(const struct cache *c);
/*
 * Takes one slot due at or before now (must-staple entries first among those due, then earliest
 * due). The slot has no due time until cache_store / cache_fetch_failed / cache_slot_schedule.
 * Returns NULL when nothing is due.
 */
struct cache_entry *cache_due_pop(struct cache *c, int64_t now_unix, enum certid_alg *ret_alg);

/* The refresh time the cache draws for a response (exposed for tests and `stapled verify`). */
int64_t cache_refresh_time(const struct cache_config *cfg, uint64_t key_hash, int64_t this_update,
			   int64_t next_update);

/*
 * Alert level of a slot at now: 0 when its refresh is not yet overdue; otherwise the number of
 * alert_fraction thresholds that the validity left has fallen below (1..3); 4 when expired.
 */
int cache_alert_level(const struct cache *c, const struct cache_entry *e, enum certid_alg alg,
		      int64_t now_unix);

/* ---- whole-cache views ---- */

struct cache_stats {
	size_t entries;
	size_t issuers;
	size_t responses;	      /* slots holding a response */
	size_t servable;	      /* responses with nextUpdate > now */
	size_t bytes;		      /* accounted bytes */
	int64_t earliest_next_update; /* over servable responses; INT64_MAX if none */
	size_t alerts[5];	      /* slots per alert level */
};
void cache_stats(const struct cache *c, int64_t now_unix, struct cache_stats *ret);

/* Calls fn for every entry (in no particular order). fn must not add or remove entries. */
void cache_foreach(struct cache *c, void (*fn)(struct cache_entry *e, void *ud), void *ud);
