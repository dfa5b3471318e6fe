/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <malloc.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cache/cache.h"
#include "proto/macro.h"
#include "proto/mem.h"

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif

/* ---- helpers ---- */

static void fill(uint8_t *p, size_t n, uint32_t seed)
{
	for (size_t i = 0; i < n; i++) {
		seed = seed * 1103515245u + 12345u;
		p[i] = (uint8_t)(seed >> 16);
	}
}

/* A hashes-only issuer whose name/key hashes are derived from `seed`. */
static struct cache_issuer *hissuer(struct cache *c, enum certid_alg alg, uint32_t seed,
				    uint8_t name[CERTID_HASH_MAX], uint8_t key[CERTID_HASH_MAX])
{
	uint8_t n[CERTID_HASH_MAX], k[CERTID_HASH_MAX];
	fill(n, sizeof(n), seed * 2 + 1);
	fill(k, sizeof(k), seed * 2 + 2);
	if (name)
		memcpy(name, n, sizeof(n));
	if (key)
		memcpy(key, k, sizeof(k));
	return cache_issuer_add_hashes(c, alg, n, k);
}

static struct ocsp_info info_at(int64_t this_update, int64_t next_update)
{
	struct ocsp_info i = {
		.response_status = 0,
		.cert_status = OCSP_CERT_GOOD,
		.revocation_reason = -1,
		.produced_at_unix = this_update,
		.this_update_unix = this_update,
		.next_update_unix = next_update,
		.next_update_present = true,
		.single_count = 1,
	};
	return i;
}

static struct cache *new_cache(void)
{
	struct cache_config cfg;
	struct cache *c;
	cache_config_default(&cfg);
	assert_int_equal(cache_new(&cfg, &c), 0);
	return c;
}

static struct cache *new_cache_cfg(const struct cache_config *cfg)
{
	struct cache *c;
	assert_int_equal(cache_new(cfg, &c), 0);
	return c;
}

static struct cache_entry *add_entry(struct cache *c, struct cache_issuer *i, uint32_t serial,
				     unsigned flags, int64_t now)
{
	uint8_t s[4] = {serial >> 24, serial >> 16, serial >> 8, serial};
	struct cache_entry *e = NULL;
	assert_int_equal(cache_entry_add(c, i, s, sizeof(s), flags, now, &e), 0);
	assert_non_null(e);
	return e;
}

static int store(struct cache *c, struct cache_entry *e, enum certid_alg alg, uint8_t fillbyte,
		 size_t len, int64_t this_update, int64_t next_update, int64_t now, int64_t max_age)
{
	uint8_t *der = xmalloc(len);
	memset(der, fillbyte, len);
	struct ocsp_info info = info_at(this_update, next_update);
	int r = cache_store(c, e, alg, der, len, &info, now, max_age);
	free(der);
	return r;
}

/* ---- certificate fixtures ---- */

static uint8_t *load_file(const char *name, size_t *ret_len)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%s", FIXTURES, name);
	FILE *f = fopen(path, "rb");
	if (!f)
		fail_msg("cannot open fixture %s", path);
	uint8_t *data = NULL;
	size_t len = 0, cap = 0, n;
	do {
		data = xgrow(data, &cap, len + 4096, 1);
		n = fread(data + len, 1, cap - len, f);
		len += n;
	} while (n > 0);
	fclose(f);
	*ret_len = len;
	return data;
}

/* The first certificate of a fixture file (a new reference). */
static struct pki_cert *load_cert(const char *name)
{
	size_t len, n;
	struct pki_cert **certs;
	_cleanup_free_ uint8_t *data = load_file(name, &len);
	assert_int_equal(pki_certs_parse(data, len, &certs, &n), 0);
	struct pki_cert *c = pki_cert_ref(certs[0]);
	pki_certs_free(certs, n);
	return c;
}

static struct ocsp_request load_request(const char *name)
{
	size_t len;
	struct ocsp_request req;
	_cleanup_free_ uint8_t *der = load_file(name, &len);
	assert_int_equal(ocsp_request_parse(der, len, &req), 0);
	return req;
}

static const char *const req_files[CERTID_ALG_COUNT] = {
	"req-sha1.der",
	"req-sha256.der",
	"req-sha384.der",
	"req-sha512.der",
};

/* ---- config ---- */

static void test_config(void **state)
{
	struct cache_config cfg;
	struct cache *c = NULL;

	cache_config_default(&cfg);
	assert_int_equal(cfg.max_bytes, 256u << 20);
	assert_true(cfg.refresh_lo == 0.5 && cfg.refresh_hi == 0.75);

	struct cache_config bad = cfg;
	bad.refresh_lo = 0.8;
	assert_int_equal(cache_new(&bad, &c), -EINVAL);
	bad = cfg;
	bad.refresh_hi = 1.5;
	assert_int_equal(cache_new(&bad, &c), -EINVAL);
	bad = cfg;
	bad.refresh_lo = -0.1;
	assert_int_equal(cache_new(&bad, &c), -EINVAL);
	bad = cfg;
	bad.alert_fraction[1] = 0.6;
	assert_int_equal(cache_new(&bad, &c), -EINVAL);
	bad = cfg;
	bad.alert_fraction[2] = 0.25;
	assert_int_equal(cache_new(&bad, &c), -EINVAL);
	assert_null(c);

	assert_int_equal(cache_new(&cfg, &c), 0);
	assert_non_null(c);
	cache_free(c);
	cache_free(NULL);
}

/* ---- issuers, entries, lookup ---- */

static void test_lookup_hashes_only(void **state)
{
	struct cache *c = new_cache();
	uint8_t name[CERTID_HASH_MAX], key[CERTID_HASH_MAX];
	struct cache_issuer *i = hissuer(c, CERTID_SHA1, 1, name, key);

	assert_non_null(i);
	assert_ptr_equal(hissuer(c, CERTID_SHA1, 1, NULL, NULL), i); /* idempotent */
	assert_ptr_equal(cache_issuer_find(c, CERTID_SHA1, name, key), i);
	assert_null(cache_issuer_find(c, CERTID_SHA256, name, key));
	assert_null(cache_issuer_cert(i));
	assert_true(cache_issuer_has_alg(i, CERTID_SHA1));
	assert_false(cache_issuer_has_alg(i, CERTID_SHA256));

	uint8_t serial[20];
	fill(serial, sizeof(serial), 99);
	struct cache_entry *e = NULL, *e2 = NULL;
	assert_int_equal(
		cache_entry_add(c, i, serial, sizeof(serial), CACHE_ENTRY_LEARNED, 100, &e), 0);
	assert_int_equal(
		cache_entry_add(c, i, serial, sizeof(serial), CACHE_ENTRY_MUST_STAPLE, 100, &e2),
		0);
	assert_ptr_equal(e, e2);
	assert_int_equal(cache_entry_flags(e), CACHE_ENTRY_LEARNED | CACHE_ENTRY_MUST_STAPLE);
	assert_ptr_equal(cache_entry_issuer(e), i);
	size_t len = 0;
	const uint8_t *s = cache_entry_serial(e, &len);
	assert_int_equal(len, sizeof(serial));
	assert_memory_equal(s, serial, len);

	uint8_t big[CERTID_SERIAL_MAX + 1] = {1};
	assert_int_equal(cache_entry_add(c, i, big, sizeof(big), 0, 0, &e2), -EMSGSIZE);
	assert_int_equal(cache_entry_add(c, i, big, 0, 0, 0, &e2), -EINVAL);
	assert_int_equal(cache_entry_add(c, i, big, CERTID_SERIAL_MAX, 0, 0, &e2), 0);
	assert_ptr_not_equal(e2, e);

	struct certid id;
	assert_int_equal(cache_entry_certid(e, CERTID_SHA1, &id), 0);
	assert_int_equal(id.alg, CERTID_SHA1);
	assert_memory_equal(id.name_hash, name, 20);
	assert_memory_equal(id.key_hash, key, 20);
	assert_int_equal(id.serial_len, sizeof(serial));
	assert_ptr_equal(cache_lookup(c, &id), e);
	assert_int_equal(cache_entry_certid(e, CERTID_SHA256, &id), -ENOENT);

	/* Near misses: other serial, other key hash, other alg with the same bytes. */
	assert_int_equal(cache_entry_certid(e, CERTID_SHA1, &id), 0);
	id.serial[19] ^= 1;
	assert_null(cache_lookup(c, &id));
	id.serial[19] ^= 1;
	id.serial_len--;
	assert_null(cache_lookup(c, &id));
	id.serial_len++;
	id.key_hash[3] ^= 0x80;
	assert_null(cache_lookup(c, &id));
	id.key_hash[3] ^= 0x80;
	id.alg = CERTID_SHA256;
	assert_null(cache_lookup(c, &id));
	id.alg = 17;
	assert_null(cache_lookup(c, &id));

	/* An issuer known only under SHA-256 gets SHA-256 as its entries' default slot. */
	struct cache_issuer *i256 = hissuer(c, CERTID_SHA256, 2, NULL, NULL);
	assert_ptr_not_equal(i256, i);
	assert_int_equal(cache_slot_schedule(c, e, CERTID_SHA1, 1000), 0);
	assert_int_equal(cache_slot_schedule(c, e2, CERTID_SHA1, 1000), 0);
	struct cache_entry *f = add_entry(c, i256, 7, 0, 50);
	enum certid_alg alg = CERTID_SHA1;
	assert_int_equal(cache_next_due(c), 50);
	assert_ptr_equal(cache_due_pop(c, 60, &alg), f);
	assert_int_equal(alg, CERTID_SHA256);
	assert_int_equal(cache_entry_certid(f, CERTID_SHA256, &id), 0);
	assert_ptr_equal(cache_lookup(c, &id), f);

	int x = 5;
	assert_null(cache_entry_user(f));
	cache_entry_set_user(f, &x);
	assert_ptr_equal(cache_entry_user(f), &x);

	struct cache_stats st;
	cache_stats(c, 0, &st);
	assert_int_equal(st.entries, 3);
	assert_int_equal(st.issuers, 2);
	cache_free(c);
}

static void test_want_other_alg(void **state)
{
	struct cache *c = new_cache();
	struct cache_issuer *i = hissuer(c, CERTID_SHA1, 3, NULL, NULL);
	struct cache_entry *e = add_entry(c, i, 1, 0, 10);
	enum certid_alg alg;

	assert_ptr_equal(cache_due_pop(c, 10, &alg), e);
	assert_int_equal(alg, CERTID_SHA1);
	assert_int_equal(cache_next_due(c), INT64_MAX); /* being fetched: no due time */
	assert_null(cache_due_pop(c, INT64_MAX - 1, &alg));

	/* The issuer has no SHA-256 hashes: that slot does not exist. */
	assert_int_equal(cache_entry_want(c, e, CERTID_SHA256, 20), -ENOENT);
	assert_int_equal(cache_slot_schedule(c, e, CERTID_SHA256, 20), -ENOENT);
	assert_null(cache_entry_resp(e, CERTID_SHA256));

	/* Wanting the default slot while it is fetched changes nothing. */
	assert_int_equal(cache_entry_want(c, e, CERTID_SHA1, 20), 0);
	assert_int_equal(cache_next_due(c), INT64_MAX);
	assert_int_equal(cache_slot_schedule(c, e, CERTID_SHA1, 500), 0);
	assert_int_equal(cache_next_due(c), 500);
	cache_free(c);
}

/* ---- responses ---- */

static void test_store_rollback_unchanged(void **state)
{
	struct cache *c = new_cache();
	struct cache_issuer *i = hissuer(c, CERTID_SHA1, 4, NULL, NULL);
	struct cache_entry *e = add_entry(c, i, 1, 0, 0);
	const struct cache_resp *r;

	assert_null(cache_entry_resp(e, CERTID_SHA1));
	assert_int_equal(store(c, e, CERTID_SHA1, 0xaa, 300, 1000, 1000 + 86400, 1000, -1),
			 CACHE_STORED);
	r = cache_entry_resp(e, CERTID_SHA1);
	assert_non_null(r);
	assert_int_equal(r->der_len, 300);
	assert_int_equal(r->der[0], 0xaa);
	assert_int_equal(r->meta.this_update_unix, 1000);
	assert_int_equal(r->meta.next_update_unix, 1000 + 86400);
	assert_int_equal(r->stored_unix, 1000);
	assert_int_equal(r->status, OCSP_CERT_GOOD);
	uint8_t der[300];
	memset(der, 0xaa, sizeof(der));
	assert_true(r->meta.etag == ocsp_http_etag(der, sizeof(der)));

	/* An older thisUpdate never replaces the held response, whatever its bytes. */
	assert_int_equal(store(c, e, CERTID_SHA1, 0xbb, 300, 999, 999 + 86400, 2000, -1), -ESTALE);
	assert_ptr_equal(cache_entry_resp(e, CERTID_SHA1), r);
	assert_int_equal(r->der[0], 0xaa);

	/* Same bytes: unchanged, the refresh drawn again over what is left from now. */
	int64_t first_refresh = r->refresh_unix;
	assert_true(first_refresh >= 1000 + 43200 && first_refresh < 1000 + 64800);
	int64_t now = 1000 + 80000;
	assert_int_equal(store(c, e, CERTID_SHA1, 0xaa, 300, 1000, 1000 + 86400, now, -1),
			 CACHE_UNCHANGED);
	assert_ptr_equal(cache_entry_resp(e, CERTID_SHA1), r);
	int64_t expect =
		cache_refresh_time(&(struct cache_config){.refresh_lo = 0.5, .refresh_hi = 0.75},
				   cache_entry_key_hash(e), now, 1000 + 86400);
	assert_int_equal(r->refresh_unix, MAX(expect, now + 60));
	assert_true(r->refresh_unix > now && r->refresh_unix < 1000 + 86400);
	assert_int_equal(cache_next_due(c), r->refresh_unix);

	/* Same thisUpdate, other bytes: stored. Newer thisUpdate: stored. */
	assert_int_equal(store(c, e, CERTID_SHA1, 0xcc, 310, 1000, 1000 + 86400, now, -1),
			 CACHE_STORED);
	r = cache_entry_resp(e, CERTID_SHA1);
	assert_int_equal(r->der[0], 0xcc);
	assert_int_equal(r->der_len, 310);
	assert_int_equal(store(c, e, CERTID_SHA1, 0xdd, 320, 5000, 5000 + 86400, now, -1),
			 CACHE_STORED);
	r = cache_entry_resp(e, CERTID_SHA1);
	assert_int_equal(r->der[0], 0xdd);
	assert_int_equal(store(c, e, CERTID_SHA1, 0xcc, 310, 1000, 1000 + 86400, now, -1), -ESTALE);

	assert_int_equal(store(c, e, CERTID_SHA256, 0xcc, 310, 1000, 1000 + 86400, now, -1),
			 -ENOENT);
	uint8_t one = 0;
	struct ocsp_info info = info_at(6000, 9000);
	assert_int_equal(cache_store(c, e, CERTID_SHA1, &one, (1u << 20) + 1, &info, now, -1),
			 -EMSGSIZE);

	struct cache_stats st;
	cache_stats(c, now, &st);
	assert_int_equal(st.responses, 1);
	assert_int_equal(st.servable, 1);
	assert_int_equal(st.earliest_next_update, 5000 + 86400);
	cache_free(c);
}

static void test_never_downgrade(void **state)
{
	struct cache *c = new_cache();
	struct cache_issuer *i = hissuer(c, CERTID_SHA1, 5, NULL, NULL);
	struct cache_entry *e = add_entry(c, i, 1, 0, 0);
	enum certid_alg alg;

	assert_int_equal(store(c, e, CERTID_SHA1, 1, 100, 0, 10000, 0, -1), CACHE_STORED);
	const struct cache_resp *r = cache_entry_resp(e, CERTID_SHA1);
	assert_ptr_equal(cache_due_pop(c, r->refresh_unix, &alg), e);
	for (int k = 0; k < 20; k++) {
		int64_t due =
			cache_fetch_failed(c, e, CERTID_SHA1, 6000 + k, -1, 0x123456789abcdefull);
		assert_true(due > 6000 + k);
		assert_ptr_equal(cache_entry_resp(e, CERTID_SHA1), r);
		assert_ptr_equal(cache_entry_servable(e, CERTID_SHA1, 6000 + k), r);
	}
	assert_int_equal(cache_slot_failures(e, CERTID_SHA1), 20);
	/* A success clears the failure count. */
	assert_int_equal(store(c, e, CERTID_SHA1, 2, 100, 100, 10100, 6100, -1), CACHE_STORED);
	assert_int_equal(cache_slot_failures(e, CERTID_SHA1), 0);
	cache_free(c);
}

/* Reference implementation of the documented key hash, written independently of cache.c. */
static uint64_t ref_key_hash(const uint8_t *key, size_t key_len, const uint8_t *serial,
			     size_t serial_len)
{
	uint64_t h = 0xcbf29ce484222325ull;
	for (size_t k = 0; k < key_len + serial_len; k++) {
		h ^= k < key_len ? key[k] : serial[k - key_len];
		h *= 0x100000001b3ull;
	}
	h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9ull;
	h = (h ^ (h >> 27)) * 0x94d049bb133111ebull;
	return h ^ (h >> 31);
}

static void test_key_hash_and_refresh(void **state)
{
	struct cache *a = new_cache(), *b = new_cache();
	uint8_t key[CERTID_HASH_MAX];
	/* Different issuer creation order in the two caches: the hash must not care. */
	hissuer(b, CERTID_SHA1, 77, NULL, NULL);
	struct cache_issuer *ia = hissuer(a, CERTID_SHA1, 6, NULL, key);
	struct cache_issuer *ib = hissuer(b, CERTID_SHA1, 6, NULL, NULL);
	struct cache_entry *ea = add_entry(a, ia, 0x01020304, 0, 0);
	struct cache_entry *eb = add_entry(b, ib, 0x01020304, 0, 0);
	uint8_t serial[4] = {1, 2, 3, 4};

	assert_true(cache_entry_key_hash(ea) == cache_entry_key_hash(eb));
	assert_true(cache_entry_key_hash(ea) == ref_key_hash(key, 20, serial, 4));
	struct cache_entry *other = add_entry(a, ia, 0x01020305, 0, 0);
	assert_true(cache_entry_key_hash(other) != cache_entry_key_hash(ea));

	/* A SHA-256-only issuer hashes its SHA-256 key hash. */
	struct cache_issuer *i256 = hissuer(a, CERTID_SHA256, 8, NULL, key);
	struct cache_entry *e256 = add_entry(a, i256, 0x01020304, 0, 0);
	assert_true(cache_entry_key_hash(e256) == ref_key_hash(key, 32, serial, 4));

	/* Same key, same response → same refresh time on both nodes. */
	assert_int_equal(store(a, ea, CERTID_SHA1, 1, 50, 1000, 1000 + 7 * 86400, 1001, -1),
			 CACHE_STORED);
	assert_int_equal(store(b, eb, CERTID_SHA1, 1, 50, 1000, 1000 + 7 * 86400, 1500, -1),
			 CACHE_STORED);
	assert_int_equal(cache_entry_resp(ea, CERTID_SHA1)->refresh_unix,
			 cache_entry_resp(eb, CERTID_SHA1)->refresh_unix);

	struct cache_config cfg;
	cache_config_default(&cfg);
	int64_t v = 7 * 86400, t0 = 1700000000;
	int64_t min = INT64_MAX, max = INT64_MIN;
	uint64_t x = 1;
	for (int k = 0; k < 20000; k++) {
		x = x * 6364136223846793005ull + 1442695040888963407ull;
		int64_t t = cache_refresh_time(&cfg, x, t0, t0 + v);
		assert_true(t >= t0 + v / 2);
		assert_true(t < t0 + v * 3 / 4);
		assert_int_equal(t, cache_refresh_time(&cfg, x, t0, t0 + v));
		min = MIN(min, t);
		max = MAX(max, t);
	}
	/* The draws spread over the window rather than clustering. */
	assert_true(min < t0 + v / 2 + v / 100);
	assert_true(max > t0 + v * 3 / 4 - v / 100);
	assert_int_equal(cache_refresh_time(&cfg, 0, t0, t0 + v), t0 + v / 2);
	/* u = key_hash >> 32: the top of the range maps just below hi. */
	int64_t top = cache_refresh_time(&cfg, UINT64_MAX, t0, t0 + v);
	assert_true(top < t0 + v * 3 / 4 && top >= t0 + v * 3 / 4 - 1);

	/* Degenerate and extreme validity: never before this, never after next, no overflow. */
	assert_int_equal(cache_refresh_time(&cfg, x, t0, t0), t0);
	assert_int_equal(cache_refresh_time(&cfg, x, t0, t0 - 5), t0);
	int64_t far = cache_refresh_time(&cfg, UINT64_MAX, INT64_MIN + 10, INT64_MAX - 10);
	assert_true(far > 0 && far < INT64_MAX - 10);
	cfg.refresh_lo = cfg.refresh_hi = 1;
	assert_int_equal(cache_refresh_time(&cfg, UINT64_MAX, 0, INT64_MAX), INT64_MAX);
	cfg.refresh_lo = cfg.refresh_hi = 0;
	assert_int_equal(cache_refresh_time(&cfg, UINT64_MAX, 5, INT64_MAX), 5);

	cache_free(a);
	cache_free(b);
}

static void test_max_age_and_min_interval(void **state)
{
	struct cache_config cfg;
	cache_config_default(&cfg);
	cfg.refresh_lo = cfg.refresh_hi = 0.5; /* refresh = middle of validity, for exact checks */
	cfg.min_refresh_interval_s = 300;
	struct cache *c = new_cache_cfg(&cfg);
	struct cache_issuer *i = hissuer(c, CERTID_SHA1, 9, NULL, NULL);
	struct cache_entry *e = add_entry(c, i, 1, 0, 0);
	const struct cache_resp *r;

	/* Without max-age: the middle of the validity. */
	assert_int_equal(store(c, e, CERTID_SHA1, 1, 64, 0, 100000, 10, -1), CACHE_STORED);
	r = cache_entry_resp(e, CERTID_SHA1);
	assert_int_equal(r->refresh_unix, 50000);
	assert_int_equal(cache_next_due(c), 50000);

	/* max-age lowers it to stored + max-age. */
	assert_int_equal(store(c, e, CERTID_SHA1, 2, 64, 10, 100010, 20, 3600), CACHE_STORED);
	r = cache_entry_resp(e, CERTID_SHA1);
	assert_int_equal(r->refresh_unix, 20 + 3600);
	assert_int_equal(cache_next_due(c), 20 + 3600);

	/* A max-age larger than the drawn time changes nothing. */
	assert_int_equal(store(c, e, CERTID_SHA1, 3, 64, 20, 100020, 30, 10000000), CACHE_STORED);
	assert_int_equal(cache_entry_resp(e, CERTID_SHA1)->refresh_unix, 50020);

	/* max-age 0, or a drawn time already past, is raised to now + min interval. */
	assert_int_equal(store(c, e, CERTID_SHA1, 4, 64, 30, 100030, 40, 0), CACHE_STORED);
	assert_int_equal(cache_entry_resp(e, CERTID_SHA1)->refresh_unix, 40 + 300);
	assert_int_equal(store(c, e, CERTID_SHA1, 5, 64, 40, 1040, 900, -1), CACHE_STORED);
	assert_int_equal(cache_entry_resp(e, CERTID_SHA1)->refresh_unix, 900 + 300);
	assert_int_equal(cache_next_due(c), 1200);
	cache_free(c);
}

static void test_backoff(void **state)
{
	struct cache_config cfg;
	cache_config_default(&cfg); /* base 10, max 3600 */
	struct cache *c = new_cache_cfg(&cfg);
	struct cache_issuer *i = hissuer(c, CERTID_SHA1, 10, NULL, NULL);
	struct cache_entry *e = add_entry(c, i, 1, 0, 0);
	enum certid_alg alg;
	int64_t now = 1000000;

	/* The highest random value reaches the ceiling base × 2^failures, then the cap. */
	for (unsigned n = 0; n < 80; n++) {
		assert_int_equal(cache_slot_failures(e, CERTID_SHA1), n);
		int64_t ceiling = n < 9 ? (10 << n) : 3600;
		int64_t due = cache_fetch_failed(c, e, CERTID_SHA1, now, -1, UINT64_MAX);
		assert_int_equal(due, now + MIN(ceiling, 3600));
		assert_int_equal(cache_next_due(c), due);
	}
	assert_int_equal(store(c, e, CERTID_SHA1, 1, 64, now, now + 86400, now, -1), CACHE_STORED);
	assert_int_equal(cache_slot_failures(e, CERTID_SHA1), 0);

	/* Zero random bits still wait a second; in between, the delay is uniform in [1, ceil]. */
	assert_int_equal(cache_fetch_failed(c, e, CERTID_SHA1, now, -1, 0), now + 1);
	assert_int_equal(cache_fetch_failed(c, e, CERTID_SHA1, now, -1, 1ull << 63), now + 10);
	/* failures = 2 → ceiling 40: half the range is 20. */
	assert_int_equal(cache_fetch_failed(c, e, CERTID_SHA1, now, -1, 1ull << 63), now + 20);

	uint64_t x = 42;
	int64_t lo = INT64_MAX, hi = 0;
	for (int k = 0; k < 2000; k++) {
		x = x * 6364136223846793005ull + 1442695040888963407ull;
		assert_int_equal(store(c, e, CERTID_SHA1, 1, 64, now, now + 86400, now, -1),
				 CACHE_UNCHANGED);
		cache_fetch_failed(c, e, CERTID_SHA1, now, -1, x); /* ceiling 10 */
		int64_t d = cache_fetch_failed(c, e, CERTID_SHA1, now, -1, x * 31) - now; /* 20 */
		assert_true(d >= 1 && d <= 20);
		lo = MIN(lo, d);
		hi = MAX(hi, d);
	}
	assert_int_equal(lo, 1);
	assert_int_equal(hi, 20);

	/* Retry-After is obeyed exactly, capped at the maximum. */
	assert_int_equal(cache_fetch_failed(c, e, CERTID_SHA1, now, 120, UINT64_MAX), now + 120);
	assert_int_equal(cache_fetch_failed(c, e, CERTID_SHA1, now, 0, UINT64_MAX), now);
	assert_int_equal(cache_fetch_failed(c, e, CERTID_SHA1, now, 99999, 0), now + 3600);
	assert_null(cache_due_pop(c, now + 3599, &alg));
	assert_ptr_equal(cache_due_pop(c, now + 3600, &alg), e);
	cache_free(c);
}

/* ---- scheduling ---- */

static void test_due_order_must_staple(void **state)
{
	struct cache *c = new_cache();
	struct cache_issuer *i = hissuer(c, CERTID_SHA1, 11, NULL, NULL);
	enum certid_alg alg;

	assert_int_equal(cache_next_due(c), INT64_MAX);
	assert_null(cache_due_pop(c, INT64_MAX - 1, &alg));

	struct cache_entry *a = add_entry(c, i, 1, 0, 100);
	struct cache_entry *b = add_entry(c, i, 2, 0, 50);
	struct cache_entry *ms = add_entry(c, i, 3, CACHE_ENTRY_MUST_STAPLE, 150);
	struct cache_entry *ms_late = add_entry(c, i, 4, CACHE_ENTRY_MUST_STAPLE, 300);

	assert_int_equal(cache_next_due(c), 50);
	assert_null(cache_due_pop(c, 49, &alg));
	/* Only b is due at 60. */
	assert_ptr_equal(cache_due_pop(c, 60, &alg), b);
	assert_int_equal(cache_next_due(c), 100);
	/* At 200, a (due 100) and ms (due 150) are due: must-staple first although a is due
	 * earlier; then a. ms_late (300) is not due yet and must not jump the queue. */
	assert_ptr_equal(cache_due_pop(c, 200, &alg), ms);
	assert_ptr_equal(cache_due_pop(c, 200, &alg), a);
	assert_null(cache_due_pop(c, 200, &alg));
	assert_int_equal(cache_next_due(c), 300);

	/* Must-staple wins even when a normal entry has been due for longer. */
	cache_slot_schedule(c, a, CERTID_SHA1, 10);
	assert_int_equal(cache_next_due(c), 10);
	assert_ptr_equal(cache_due_pop(c, 400, &alg), ms_late);
	assert_ptr_equal(cache_due_pop(c, 400, &alg), a);

	/* An entry gaining must-staple later moves ahead. */
	cache_slot_schedule(c, a, CERTID_SHA1, 500);
	cache_slot_schedule(c, b, CERTID_SHA1, 400);
	struct cache_entry *again = NULL;
	uint8_t s1[4] = {0, 0, 0, 1};
	assert_int_equal(cache_entry_add(c, i, s1, 4, CACHE_ENTRY_MUST_STAPLE, 0, &again), 0);
	assert_ptr_equal(again, a);
	assert_ptr_equal(cache_due_pop(c, 600, &alg), a);
	assert_ptr_equal(cache_due_pop(c, 600, &alg), b);
	assert_null(cache_due_pop(c, 600, &alg));

	/* A hashes-only issuer has one form: wanting another leaves the schedule alone (the
	 * multi-form cases are in test_slots_per_alg). */
	struct cache_issuer *other = hissuer(c, CERTID_SHA1, 12, NULL, NULL);
	struct cache_entry *e = add_entry(c, other, 9, 0, 1000);
	assert_int_equal(cache_entry_want(c, e, CERTID_SHA256, 900), -ENOENT);
	assert_int_equal(cache_next_due(c), 1000);
	assert_ptr_equal(cache_due_pop(c, 1000, &alg), e);
	assert_int_equal(alg, CERTID_SHA1);
	cache_free(c);
}

static void test_byte_bound(void **state)
{
	struct cache_config cfg;
	cache_config_default(&cfg);
	cfg.max_bytes = 4096;
	struct cache *c = new_cache_cfg(&cfg);
	struct cache_issuer *i = hissuer(c, CERTID_SHA1, 13, NULL, NULL);
	struct cache_entry *a = add_entry(c, i, 1, 0, 0);
	struct cache_entry *b = add_entry(c, i, 2, 0, 0);
	struct cache_stats st;

	assert_int_equal(store(c, a, CERTID_SHA1, 1, 1000, 0, 1000, 0, -1), CACHE_STORED);
	cache_stats(c, 0, &st);
	size_t per = st.bytes - 1000; /* the fixed per-response overhead */
	assert_true(per >= sizeof(struct cache_resp) && per <= sizeof(struct cache_resp) + 64);

	/* b fills what is left exactly: allowed. */
	size_t rest = 4096 - st.bytes - per;
	assert_int_equal(store(c, b, CERTID_SHA1, 2, rest, 0, 1000, 0, -1), CACHE_STORED);
	cache_stats(c, 0, &st);
	assert_int_equal(st.bytes, 4096);

	/* One more byte for a: refused, the old response stays and is still served. */
	const struct cache_resp *old = cache_entry_resp(a, CERTID_SHA1);
	assert_int_equal(store(c, a, CERTID_SHA1, 3, 1001, 10, 1010, 10, -1), -ENOSPC);
	assert_ptr_equal(cache_entry_resp(a, CERTID_SHA1), old);
	assert_ptr_equal(cache_entry_servable(a, CERTID_SHA1, 10), old);
	cache_stats(c, 0, &st);
	assert_int_equal(st.bytes, 4096);
	/* A replacement of the same size or smaller fits, since the old one is released. */
	assert_int_equal(store(c, a, CERTID_SHA1, 3, 1000, 10, 1010, 10, -1), CACHE_STORED);
	assert_int_equal(store(c, a, CERTID_SHA1, 4, 500, 20, 1020, 20, -1), CACHE_STORED);
	cache_stats(c, 0, &st);
	assert_int_equal(st.bytes, 4096 - 500);

	/* Removing an entry releases its bytes. */
	cache_entry_remove(c, b);
	cache_stats(c, 0, &st);
	assert_int_equal(st.bytes, 500 + per);
	assert_int_equal(st.responses, 1);
	assert_int_equal(st.entries, 1);
	cache_free(c);
}

static void test_remove(void **state)
{
	struct cache *c = new_cache();
	struct cache_issuer *i = hissuer(c, CERTID_SHA1, 14, NULL, NULL);
	struct cache_entry *e[64];
	struct certid id[64];
	enum certid_alg alg;

	for (uint32_t k = 0; k < 64; k++) {
		e[k] = add_entry(c, i, k, k % 3 ? 0 : CACHE_ENTRY_MUST_STAPLE, 1000 + k);
		assert_int_equal(cache_entry_certid(e[k], CERTID_SHA1, &id[k]), 0);
		if (k % 2)
			assert_int_equal(
				store(c, e[k], CERTID_SHA1, (uint8_t)k, 100 + k, 0, 5000, 0, -1),
				CACHE_STORED);
	}
	for (uint32_t k = 0; k < 64; k += 2)
		cache_entry_remove(c, e[k]);
	for (uint32_t k = 0; k < 64; k++)
		assert_ptr_equal(cache_lookup(c, &id[k]), k % 2 ? e[k] : NULL);

	struct cache_stats st;
	cache_stats(c, 0, &st);
	assert_int_equal(st.entries, 32);
	assert_int_equal(st.responses, 32);
	size_t expect = 0;
	for (uint32_t k = 1; k < 64; k += 2)
		expect += 100 + k;
	assert_true(st.bytes > expect);
	assert_int_equal((st.bytes - expect) % 32, 0);

	/* Nothing removed is ever popped again. */
	size_t popped = 0;
	struct cache_entry *p;
	while ((p = cache_due_pop(c, INT64_MAX - 1, &alg))) {
		bool live = false;
		for (uint32_t k = 1; k < 64; k += 2)
			live |= p == e[k];
		assert_true(live);
		popped++;
	}
	assert_int_equal(popped, 32);
	cache_free(c);
}

/* Times at the ends of int64: no overflow (UBSan), no confusion with "not due" or "fetching". */
static void test_extreme_times(void **state)
{
	struct cache *c = new_cache();
	struct cache_issuer *i = hissuer(c, CERTID_SHA1, 21, NULL, NULL);
	enum certid_alg alg;

	struct cache_entry *lo = add_entry(c, i, 1, 0, INT64_MIN);
	assert_int_equal(cache_next_due(c), INT64_MIN + 1);
	assert_ptr_equal(cache_due_pop(c, INT64_MIN + 1, &alg), lo);
	struct cache_entry *hi = add_entry(c, i, 2, 0, INT64_MAX);
	assert_int_equal(cache_next_due(c), INT64_MAX - 1);
	assert_ptr_equal(cache_due_pop(c, INT64_MAX - 1, &alg), hi);

	assert_int_equal(cache_fetch_failed(c, hi, CERTID_SHA1, INT64_MAX - 5, -1, UINT64_MAX),
			 INT64_MAX - 1);
	assert_int_equal(cache_fetch_failed(c, lo, CERTID_SHA1, INT64_MIN, 0, 0), INT64_MIN + 1);
	assert_int_equal(store(c, hi, CERTID_SHA1, 1, 10, INT64_MAX - 100, INT64_MAX,
			       INT64_MAX - 50, INT64_MAX),
			 CACHE_STORED);
	assert_int_equal(cache_entry_resp(hi, CERTID_SHA1)->refresh_unix, INT64_MAX - 1);
	assert_int_equal(cache_alert_level(c, hi, CERTID_SHA1, INT64_MAX - 1), 3);
	assert_int_equal(
		store(c, lo, CERTID_SHA1, 1, 10, INT64_MIN, INT64_MIN + 100, INT64_MIN, INT64_MAX),
		CACHE_STORED);
	int64_t r = cache_entry_resp(lo, CERTID_SHA1)->refresh_unix;
	assert_true(r >= INT64_MIN + 60 && r < INT64_MIN + 75);
	assert_int_equal(cache_next_due(c), r);
	cache_free(c);
}

/* ---- alert levels and serving ---- */

static void test_alert_levels(void **state)
{
	struct cache_config cfg;
	cache_config_default(&cfg); /* .5 .25 .1 */
	cfg.refresh_lo = cfg.refresh_hi = 0.5;
	cfg.min_refresh_interval_s = 0;
	struct cache *c = new_cache_cfg(&cfg);
	struct cache_issuer *i = hissuer(c, CERTID_SHA1, 15, NULL, NULL);
	struct cache_entry *e = add_entry(c, i, 1, 0, 0);

	assert_int_equal(cache_alert_level(c, e, CERTID_SHA1, 0), 0); /* nothing held */
	assert_int_equal(store(c, e, CERTID_SHA1, 1, 64, 0, 1000, 0, -1), CACHE_STORED);
	assert_int_equal(cache_entry_resp(e, CERTID_SHA1)->refresh_unix, 500);

	static const struct {
		int64_t now;
		int level;
	} cases[] = {
		{0, 0},	  {499, 0}, {500, 0}, /* refresh due, 50 % left: not below yet */
		{501, 1}, {750, 1}, {751, 2}, {900, 2}, {901, 3}, {999, 3}, {1000, 4}, {5000, 4},
	};
	for (size_t k = 0; k < ARRAY_SIZE(cases); k++) {
		int got = cache_alert_level(c, e, CERTID_SHA1, cases[k].now);
		if (got != cases[k].level)
			fail_msg("now %lld: level %d, expected %d", (long long)cases[k].now, got,
				 cases[k].level);
	}

	/* While the refresh is not yet overdue (here the minimum interval pushed it to 950) the
	 * level stays 0 however little validity is left. */
	cfg.min_refresh_interval_s = 950;
	struct cache *c2 = new_cache_cfg(&cfg);
	struct cache_issuer *i2 = hissuer(c2, CERTID_SHA1, 15, NULL, NULL);
	struct cache_entry *e2 = add_entry(c2, i2, 1, 0, 0);
	assert_int_equal(store(c2, e2, CERTID_SHA1, 1, 64, 0, 1000, 0, -1), CACHE_STORED);
	assert_int_equal(cache_alert_level(c2, e2, CERTID_SHA1, 940), 0);
	assert_int_equal(cache_alert_level(c2, e2, CERTID_SHA1, 950), 3);

	struct cache_stats st;
	cache_stats(c, 800, &st);
	assert_int_equal(st.alerts[2], 1);
	assert_int_equal(st.alerts[0] + st.alerts[1] + st.alerts[3] + st.alerts[4], 0);
	cache_stats(c, 1000, &st);
	assert_int_equal(st.alerts[4], 1);
	assert_int_equal(st.servable, 0);
	assert_int_equal(st.earliest_next_update, INT64_MAX);
	cache_free(c);
	cache_free(c2);
}

static void test_servable(void **state)
{
	struct cache *c = new_cache();
	struct cache_issuer *i = hissuer(c, CERTID_SHA1, 16, NULL, NULL);
	struct cache_entry *e = add_entry(c, i, 1, 0, 0);

	assert_null(cache_entry_servable(e, CERTID_SHA1, 0));
	assert_int_equal(store(c, e, CERTID_SHA1, 1, 64, 100, 2000, 100, -1), CACHE_STORED);
	const struct cache_resp *r = cache_entry_resp(e, CERTID_SHA1);
	assert_ptr_equal(cache_entry_servable(e, CERTID_SHA1, 100), r);
	assert_ptr_equal(cache_entry_servable(e, CERTID_SHA1, 1999), r);
	assert_null(cache_entry_servable(e, CERTID_SHA1, 2000)); /* nextUpdate ≤ now: expired */
	assert_null(cache_entry_servable(e, CERTID_SHA1, 3000));
	assert_ptr_equal(cache_entry_resp(e, CERTID_SHA1), r); /* still held, for stats/alerts */
	assert_null(cache_entry_servable(e, CERTID_SHA256, 100));
	cache_free(c);
}

static void count_entries(struct cache_entry *e, void *ud)
{
	size_t len;
	cache_entry_serial(e, &len);
	assert_true(len > 0);
	(*(size_t *)ud)++;
}

static void test_stats_foreach(void **state)
{
	struct cache *c = new_cache();
	struct cache_issuer *i = hissuer(c, CERTID_SHA1, 17, NULL, NULL);
	struct cache_issuer *j = hissuer(c, CERTID_SHA384, 18, NULL, NULL);
	struct cache_entry *e1 = add_entry(c, i, 1, 0, 0);
	struct cache_entry *e2 = add_entry(c, i, 2, 0, 0);
	struct cache_entry *e3 = add_entry(c, j, 1, 0, 0); /* same serial, other issuer */
	struct cache_stats st;

	assert_ptr_not_equal(e1, e3);
	assert_int_equal(store(c, e1, CERTID_SHA1, 1, 100, 0, 3000, 0, -1), CACHE_STORED);
	assert_int_equal(store(c, e2, CERTID_SHA1, 1, 200, 0, 1000, 0, -1), CACHE_STORED);
	assert_int_equal(store(c, e3, CERTID_SHA384, 1, 300, 0, 2000, 0, -1), CACHE_STORED);
	assert_int_equal(store(c, e3, CERTID_SHA1, 1, 300, 0, 2000, 0, -1), -ENOENT);

	cache_stats(c, 500, &st);
	assert_int_equal(st.entries, 3);
	assert_int_equal(st.issuers, 2);
	assert_int_equal(st.responses, 3);
	assert_int_equal(st.servable, 3);
	assert_int_equal(st.earliest_next_update, 1000);
	size_t per = (st.bytes - 600) / 3;
	assert_int_equal(st.bytes, 600 + 3 * per);
	cache_stats(c, 1500, &st);
	assert_int_equal(st.servable, 2);
	assert_int_equal(st.earliest_next_update, 2000);
	assert_int_equal(st.alerts[4], 1);

	size_t n = 0;
	cache_foreach(c, count_entries, &n);
	assert_int_equal(n, 3);
	cache_free(c);
}

/* ---- issuers with certificates ---- */

static void test_cert_issuer_all_algs(void **state)
{
	struct cache *c = new_cache();
	_cleanup_(pki_cert_unrefp) struct pki_cert *intc = load_cert("int.crt");
	_cleanup_(pki_cert_unrefp) struct pki_cert *intd = load_cert("int.der");
	_cleanup_(pki_cert_unrefp) struct pki_cert *fake = load_cert("fakeint.crt");
	_cleanup_(pki_cert_unrefp) struct pki_cert *good = load_cert("good.crt");
	struct cache_issuer *i = NULL, *i2 = NULL, *f = NULL;

	assert_int_equal(cache_issuer_add(c, intc, &i), 0);
	assert_ptr_equal(cache_issuer_cert(i), intc);
	for (int a = 0; a < CERTID_ALG_COUNT; a++)
		assert_true(cache_issuer_has_alg(i, a));
	/* The same certificate from another file (DER) is the same issuer. */
	assert_int_equal(cache_issuer_add(c, intd, &i2), 0);
	assert_ptr_equal(i2, i);
	/* Same subject, other key: another issuer. */
	assert_int_equal(cache_issuer_add(c, fake, &f), 0);
	assert_ptr_not_equal(f, i);
	/* The cache took its own reference: ours can go (ASan would catch a use after free). */
	fake = pki_cert_unref(fake);
	assert_string_equal(pki_cert_subject(cache_issuer_cert(f)), pki_cert_subject(intc));

	struct certid gid;
	assert_int_equal(pki_certid(good, intc, CERTID_SHA1, &gid), 0);
	struct cache_entry *e = NULL;
	assert_int_equal(cache_entry_add(c, i, gid.serial, gid.serial_len, 0, 0, &e), 0);
	struct cache_entry *fe = NULL;
	assert_int_equal(cache_entry_add(c, f, gid.serial, gid.serial_len, 0, 0, &fe), 0);
	assert_ptr_not_equal(fe, e);

	/* Requests as a client sends them, in each of the four forms, find the entry. */
	for (int a = 0; a < CERTID_ALG_COUNT; a++) {
		struct ocsp_request req = load_request(req_files[a]);
		struct certid mine;
		assert_int_equal(req.id.alg, a);
		assert_ptr_equal(cache_lookup(c, &req.id), e);
		assert_int_equal(cache_entry_certid(e, a, &mine), 0);
		assert_true(certid_equal(&mine, &req.id));
		assert_ptr_equal(cache_issuer_find(c, a, req.id.name_hash, req.id.key_hash), i);
		/* The fake issuer's CertID for the same serial is another entry. */
		assert_int_equal(cache_entry_certid(fe, a, &mine), 0);
		assert_ptr_equal(cache_lookup(c, &mine), fe);
	}

	struct cache_stats st;
	cache_stats(c, 0, &st);
	assert_int_equal(st.issuers, 2);
	assert_int_equal(st.entries, 2);
	cache_free(c);
}

static void test_cert_upgrades_hashes_only(void **state)
{
	struct cache *c = new_cache();
	_cleanup_(pki_cert_unrefp) struct pki_cert *intc = load_cert("int.crt");
	uint8_t name[CERTID_HASH_MAX], key[CERTID_HASH_MAX];
	struct ocsp_request r256 = load_request("req-sha256.der");
	struct ocsp_request r1 = load_request("req-sha1.der");

	/* Leaf mode: a SHA-256 request taught us the issuer and the serial. */
	assert_int_equal(pki_issuer_hashes(intc, CERTID_SHA256, name, key), 0);
	struct cache_issuer *h = cache_issuer_add_hashes(c, CERTID_SHA256, name, key);
	assert_null(cache_issuer_cert(h));
	struct cache_entry *e = NULL;
	assert_int_equal(cache_entry_add(c, h, r256.id.serial, r256.id.serial_len,
					 CACHE_ENTRY_LEARNED, 0, &e),
			 0);
	assert_ptr_equal(cache_lookup(c, &r256.id), e);
	assert_null(cache_lookup(c, &r1.id)); /* the SHA-1 form is not known yet */
	assert_int_equal(store(c, e, CERTID_SHA256, 7, 90, 0, 1000, 0, -1), CACHE_STORED);
	uint64_t key_before = cache_entry_key_hash(e);

	struct cache_issuer *i = NULL;
	assert_int_equal(cache_issuer_add(c, intc, &i), 0);
	assert_ptr_equal(i, h); /* upgraded in place */
	assert_ptr_equal(cache_issuer_cert(h), intc);
	for (int a = 0; a < CERTID_ALG_COUNT; a++) {
		struct ocsp_request req = load_request(req_files[a]);
		assert_ptr_equal(cache_lookup(c, &req.id), e);
	}
	/* The entry kept its response and its default form. */
	assert_non_null(cache_entry_resp(e, CERTID_SHA256));
	assert_null(cache_entry_resp(e, CERTID_SHA1));
	/* Its key hash is now the SHA-1 one, what nodes holding the certificate compute. */
	assert_true(cache_entry_key_hash(e) != key_before);
	struct cache_stats st;
	cache_stats(c, 0, &st);
	assert_int_equal(st.issuers, 1);
	cache_free(c);
}

static void test_cert_merges_two_forms(void **state)
{
	struct cache *c = new_cache();
	_cleanup_(pki_cert_unrefp) struct pki_cert *intc = load_cert("int.crt");
	uint8_t n1[CERTID_HASH_MAX], k1[CERTID_HASH_MAX], n2[CERTID_HASH_MAX], k2[CERTID_HASH_MAX];
	struct ocsp_request r1 = load_request("req-sha1.der");
	struct ocsp_request r256 = load_request("req-sha256.der");

	assert_int_equal(pki_issuer_hashes(intc, CERTID_SHA1, n1, k1), 0);
	assert_int_equal(pki_issuer_hashes(intc, CERTID_SHA256, n2, k2), 0);
	struct cache_issuer *h1 = cache_issuer_add_hashes(c, CERTID_SHA1, n1, k1);
	struct cache_issuer *h2 = cache_issuer_add_hashes(c, CERTID_SHA256, n2, k2);
	assert_ptr_not_equal(h1, h2);

	struct cache_entry *same1 = NULL, *same2 = NULL, *only2 = NULL;
	assert_int_equal(cache_entry_add(c, h1, r1.id.serial, r1.id.serial_len, 0, 0, &same1), 0);
	assert_int_equal(cache_entry_add(c, h2, r1.id.serial, r1.id.serial_len, 0, 0, &same2), 0);
	uint8_t other[3] = {1, 2, 3};
	assert_int_equal(cache_entry_add(c, h2, other, 3, 0, 0, &only2), 0);

	struct cache_issuer *i = NULL;
	assert_int_equal(cache_issuer_add(c, intc, &i), 0);
	assert_ptr_equal(i, h1);
	/* Both forms of the good serial answer from one entry now. */
	assert_ptr_equal(cache_lookup(c, &r1.id), same1);
	assert_ptr_equal(cache_lookup(c, &r256.id), same1);
	/* The SHA-256-only entry with another serial moved to the merged issuer. */
	assert_ptr_equal(cache_entry_issuer(only2), h1);
	struct certid id;
	assert_int_equal(cache_entry_certid(only2, CERTID_SHA384, &id), 0);
	assert_ptr_equal(cache_lookup(c, &id), only2);
	/* The duplicate stays valid (the node holds it) but no longer answers lookups. */
	assert_ptr_equal(cache_entry_issuer(same2), h2);
	assert_ptr_equal(cache_issuer_find(c, CERTID_SHA256, n2, k2), h1);
	cache_entry_remove(c, same2);
	assert_ptr_equal(cache_lookup(c, &r256.id), same1);
	/* h2 is merged and empty now: gc frees it; the certificate issuer stays and still
	 * answers every form. */
	assert_int_equal(cache_issuer_entries(h1), 2);
	assert_int_equal(cache_issuer_gc(c, NULL, NULL), 1);
	assert_ptr_equal(cache_lookup(c, &r256.id), same1);
	assert_ptr_equal(cache_issuer_find(c, CERTID_SHA256, n2, k2), h1);
	cache_free(c);
}

static int gc_seen;
static void gc_note(struct cache_issuer *i, void *ud)
{
	assert_ptr_equal(cache_issuer_user(i), ud);
	gc_seen++;
}

/* Hashes-only issuers learned from requests go once their last entry goes; others stay. */
static void test_issuer_gc(void **state)
{
	struct cache *c = new_cache();
	_cleanup_(pki_cert_unrefp) struct pki_cert *intc = load_cert("int.crt");
	struct cache_issuer *ci = NULL;
	assert_int_equal(cache_issuer_add(c, intc, &ci), 0);

	enum {
		N = 300
	};
	struct cache_issuer *h[N];
	struct cache_entry *e[N];
	uint8_t name[CERTID_HASH_MAX], key[CERTID_HASH_MAX], serial[4] = {7, 7, 7, 7};
	int token;
	for (int k = 0; k < N; k++) {
		h[k] = hissuer(c, CERTID_SHA1, 1000 + k, name, key);
		cache_issuer_set_user(h[k], &token);
		assert_int_equal(cache_entry_add(c, h[k], serial, 4, CACHE_ENTRY_LEARNED, 0, &e[k]),
				 0);
		assert_int_equal(cache_issuer_entries(h[k]), 1);
	}
	struct cache_entry *ce = NULL;
	assert_int_equal(cache_entry_add(c, ci, serial, 4, 0, 0, &ce), 0);
	assert_int_equal(cache_issuer_gc(c, gc_note, &token), 0);
	/* Drop the even ones: their issuers go, the odd ones still answer. */
	for (int k = 0; k < N; k += 2)
		cache_entry_remove(c, e[k]);
	gc_seen = 0;
	assert_int_equal(cache_issuer_gc(c, gc_note, &token), N / 2);
	assert_int_equal(gc_seen, N / 2);
	for (int k = 0; k < N; k++) {
		struct certid id = {.alg = CERTID_SHA1, .serial_len = 4};
		fill(id.name_hash, CERTID_HASH_MAX, (1000 + k) * 2 + 1);
		fill(id.key_hash, CERTID_HASH_MAX, (1000 + k) * 2 + 2);
		memcpy(id.serial, serial, 4);
		assert_ptr_equal(cache_lookup(c, &id), k % 2 ? e[k] : NULL);
	}
	/* The certificate issuer is never collected, even with no entries. */
	cache_entry_remove(c, ce);
	assert_int_equal(cache_issuer_gc(c, NULL, NULL), 0);
	struct cache_stats st;
	cache_stats(c, 0, &st);
	assert_int_equal(st.issuers, 1 + N / 2);
	cache_free(c);
}

/* The index seed changes the layout, never the answers or the shared key hash. */
static void test_hash_seed(void **state)
{
	struct cache_config cfg;
	cache_config_default(&cfg);
	uint64_t kh[2] = {0, 0};
	for (int run = 0; run < 2; run++) {
		cfg.hash_seed = run ? 0x5eed5eed12345678ull : 0;
		struct cache *c = NULL;
		assert_int_equal(cache_new(&cfg, &c), 0);
		uint8_t name[CERTID_HASH_MAX], key[CERTID_HASH_MAX];
		struct cache_issuer *i = hissuer(c, CERTID_SHA1, 5, name, key);
		struct cache_entry *e[500];
		for (uint32_t k = 0; k < 500; k++) {
			uint8_t serial[4];
			memcpy(serial, &k, 4);
			assert_int_equal(cache_entry_add(c, i, serial, 4, 0, 0, &e[k]), 0);
		}
		for (uint32_t k = 0; k < 500; k += 3)
			cache_entry_remove(c, e[k]);
		for (uint32_t k = 0; k < 500; k++) {
			struct certid id = {.alg = CERTID_SHA1, .serial_len = 4};
			memcpy(id.name_hash, name, 20);
			memcpy(id.key_hash, key, 20);
			memcpy(id.serial, &k, 4);
			assert_ptr_equal(cache_lookup(c, &id), k % 3 ? e[k] : NULL);
		}
		kh[run] = cache_entry_key_hash(e[1]);
		cfg.hash_seed = 99; /* set_config cannot re-key a live index */
		assert_int_equal(cache_set_config(c, &cfg), 0);
		struct certid id1;
		assert_int_equal(cache_entry_certid(e[1], CERTID_SHA1, &id1), 0);
		assert_ptr_equal(cache_lookup(c, &id1), e[1]);
		cache_free(c);
	}
	assert_true(kh[0] == kh[1]);
	(void)state;
}

static void test_slots_per_alg(void **state)
{
	struct cache *c = new_cache();
	_cleanup_(pki_cert_unrefp) struct pki_cert *intc = load_cert("int.crt");
	struct cache_issuer *i = NULL;
	struct ocsp_request r1 = load_request("req-sha1.der");
	enum certid_alg alg;

	assert_int_equal(cache_issuer_add(c, intc, &i), 0);
	struct cache_entry *e = NULL;
	assert_int_equal(cache_entry_add(c, i, r1.id.serial, r1.id.serial_len, 0, 1000, &e), 0);

	/* A refused store into a form never used before leaves the schedule as it was. */
	uint8_t byte = 0;
	struct ocsp_info big = info_at(0, 100);
	assert_int_equal(cache_store(c, e, CERTID_SHA256, &byte, (1u << 20) + 1, &big, 0, -1),
			 -EMSGSIZE);
	assert_int_equal(cache_next_due(c), 1000);
	assert_null(cache_due_pop(c, 999, &alg));

	/* A client asked in SHA-256 form at 900: that slot is due before the default one. */
	assert_int_equal(cache_entry_want(c, e, CERTID_SHA256, 900), 0);
	assert_int_equal(cache_next_due(c), 900);
	assert_ptr_equal(cache_due_pop(c, 2000, &alg), e);
	assert_int_equal(alg, CERTID_SHA256);
	assert_int_equal(cache_next_due(c), 1000);
	/* Wanting a slot that is being fetched does not queue it twice. */
	assert_int_equal(cache_entry_want(c, e, CERTID_SHA256, 950), 0);
	assert_ptr_equal(cache_due_pop(c, 2000, &alg), e);
	assert_int_equal(alg, CERTID_SHA1);
	assert_null(cache_due_pop(c, 2000, &alg));

	/* Each form holds its own response, its own schedule and its own failures. */
	assert_int_equal(store(c, e, CERTID_SHA256, 2, 200, 2000, 3000, 2000, -1), CACHE_STORED);
	assert_int_equal(cache_fetch_failed(c, e, CERTID_SHA1, 2000, 5, 0), 2005);
	assert_int_equal(cache_slot_failures(e, CERTID_SHA1), 1);
	assert_int_equal(cache_slot_failures(e, CERTID_SHA256), 0);
	assert_null(cache_entry_resp(e, CERTID_SHA1));
	assert_int_equal(cache_entry_resp(e, CERTID_SHA256)->der_len, 200);
	assert_null(cache_entry_resp(e, CERTID_SHA512));
	assert_int_equal(cache_next_due(c), 2005);
	assert_ptr_equal(cache_due_pop(c, 2005, &alg), e);
	assert_int_equal(alg, CERTID_SHA1);
	int64_t r256 = cache_entry_resp(e, CERTID_SHA256)->refresh_unix;
	assert_int_equal(cache_next_due(c), r256);
	assert_int_equal(store(c, e, CERTID_SHA1, 1, 100, 2000, 3000, 2010, -1), CACHE_STORED);
	/* Wanting a slot that holds a response leaves its refresh schedule alone. */
	assert_int_equal(cache_entry_want(c, e, CERTID_SHA256, 2010), 0);
	assert_true(cache_next_due(c) > 2010);
	assert_int_equal(cache_alert_level(c, e, CERTID_SHA256, 2999), 3);
	assert_int_equal(cache_alert_level(c, e, CERTID_SHA512, 2999), 0);

	struct cache_stats st;
	cache_stats(c, 2500, &st);
	assert_int_equal(st.responses, 2);
	assert_int_equal(st.servable, 2);
	cache_entry_remove(c, e);
	cache_stats(c, 2500, &st);
	assert_int_equal(st.responses, 0);
	assert_int_equal(st.bytes, 0);
	assert_int_equal(cache_next_due(c), INT64_MAX);
	cache_free(c);
}

/* A real response, validated by proto/ocsp, stored as the node does it. */
static void test_store_real_response(void **state)
{
	struct cache *c = new_cache();
	_cleanup_(pki_cert_unrefp) struct pki_cert *intc = load_cert("int.crt");
	struct cache_issuer *i = NULL;
	struct ocsp_request r1 = load_request("req-sha1.der");
	struct ocsp_policy pol;
	struct ocsp_info info;
	uint32_t failures;
	size_t len;
	_cleanup_free_ uint8_t *der = load_file("resp-good-sha1.der", &len);

	ocsp_policy_default(&pol);
	assert_int_equal(cache_issuer_add(c, intc, &i), 0);
	struct cache_entry *e = NULL;
	assert_int_equal(cache_entry_add(c, i, r1.id.serial, r1.id.serial_len, 0, 0, &e), 0);
	struct certid expect;
	assert_int_equal(cache_entry_certid(e, CERTID_SHA1, &expect), 0);
	/* Learn the response's times, then validate it at its own thisUpdate. */
	ocsp_response_check(der, len, intc, &expect, 0, &pol, &info, &failures);
	int64_t now = info.this_update_unix + 10;
	assert_int_equal(ocsp_response_check(der, len, intc, &expect, now, &pol, &info, &failures),
			 0);

	assert_int_equal(cache_store(c, e, CERTID_SHA1, der, len, &info, now, -1), CACHE_STORED);
	const struct cache_resp *r = cache_entry_servable(e, CERTID_SHA1, now);
	assert_non_null(r);
	assert_int_equal(r->der_len, len);
	assert_memory_equal(r->der, der, len);
	assert_int_equal(r->meta.this_update_unix, info.this_update_unix);
	assert_int_equal(r->meta.next_update_unix, info.next_update_unix);
	assert_true(r->meta.etag == ocsp_http_etag(der, len));
	assert_int_equal(r->produced_at_unix, info.produced_at_unix);
	int64_t v = info.next_update_unix - info.this_update_unix;
	assert_true(r->refresh_unix >= info.this_update_unix + v / 2);
	assert_true(r->refresh_unix < info.this_update_unix + v * 3 / 4);
	assert_int_equal(cache_store(c, e, CERTID_SHA1, der, len, &info, now + 5, -1),
			 CACHE_UNCHANGED);
	cache_free(c);
}

/* ---- scale ---- */

static uint64_t rng_next(uint64_t *s)
{
	*s = *s * 6364136223846793005ull + 1442695040888963407ull;
	uint64_t z = *s;
	z = (z ^ (z >> 33)) * 0xff51afd7ed558ccdull;
	return z ^ (z >> 33);
}

/*
 * Random operations on entries with several forms (a certificate issuer answers all four algs),
 * checked after every step against a plain model of every slot: its due time, whether it is
 * being fetched, what response it holds. Catches heap keys going stale when a side slot changes.
 */
#define MODEL_N 600
enum model_state {
	M_IDLE,
	M_DUE,
	M_FETCHING
};
struct model_slot {
	enum model_state st;
	int64_t due;
	bool has_resp;
	int64_t this_update;
	size_t der_len;
};
struct model_entry {
	struct cache_entry *e;
	bool live, ms;
	struct cache_issuer *issuer;
	struct model_slot s[CERTID_ALG_COUNT];
};

static int64_t model_entry_min(const struct model_entry *m)
{
	int64_t t = INT64_MAX;
	for (int a = 0; a < CERTID_ALG_COUNT; a++)
		if (m->s[a].st == M_DUE)
			t = MIN(t, m->s[a].due);
	return t;
}

static void test_model(void **state)
{
	struct cache_config cfg;
	cache_config_default(&cfg);
	struct cache *c = new_cache_cfg(&cfg);
	_cleanup_(pki_cert_unrefp) struct pki_cert *intc = load_cert("int.crt");
	struct cache_issuer *iss[2];
	struct model_entry *m = xcalloc(MODEL_N, sizeof(*m));
	uint64_t rng = 12345;
	int64_t now = 1000000;
	size_t pops = 0, stores = 0;

	assert_int_equal(cache_issuer_add(c, intc, &iss[0]), 0);
	iss[1] = hissuer(c, CERTID_SHA1, 55, NULL, NULL);

	for (int step = 0; step < 60000; step++) {
		uint32_t k = (uint32_t)(rng_next(&rng) % MODEL_N);
		struct model_entry *me = &m[k];
		enum certid_alg alg = (enum certid_alg)(rng_next(&rng) % CERTID_ALG_COUNT);
		bool has_alg = me->live && cache_issuer_has_alg(me->issuer, alg);
		uint8_t serial[2] = {k >> 8, k & 0xff};
		unsigned op = (unsigned)(rng_next(&rng) % 10);

		now += (int64_t)(rng_next(&rng) % 50);
		switch (op) {
		case 0: { /* add, or re-add with more flags */
			bool ms = rng_next(&rng) % 4 == 0;
			struct cache_entry *e;
			if (!me->live)
				me->issuer = iss[k % 2];
			assert_int_equal(cache_entry_add(c, me->issuer, serial, 2,
							 ms ? CACHE_ENTRY_MUST_STAPLE : 0, now, &e),
					 0);
			if (me->live) {
				assert_ptr_equal(e, me->e);
				me->ms |= ms;
			} else {
				memset(me->s, 0, sizeof(me->s));
				me->e = e;
				me->live = true;
				me->ms = ms;
				me->s[CERTID_SHA1] = (struct model_slot){.st = M_DUE, .due = now};
			}
			break;
		}
		case 1:
			if (me->live && rng_next(&rng) % 3 == 0) {
				cache_entry_remove(c, me->e);
				me->live = false;
			}
			break;
		case 2:
			if (me->live) {
				int64_t when = now + (int64_t)(rng_next(&rng) % 5000) - 1000;
				assert_int_equal(cache_slot_schedule(c, me->e, alg, when),
						 has_alg ? 0 : -ENOENT);
				if (has_alg)
					me->s[alg] = (struct model_slot){
						.st = M_DUE,
						.due = when,
						.has_resp = me->s[alg].has_resp,
						.this_update = me->s[alg].this_update,
						.der_len = me->s[alg].der_len};
			}
			break;
		case 3:
			if (me->live) {
				assert_int_equal(cache_entry_want(c, me->e, alg, now),
						 has_alg ? 0 : -ENOENT);
				if (has_alg && !me->s[alg].has_resp && me->s[alg].st == M_IDLE) {
					me->s[alg].st = M_DUE;
					me->s[alg].due = now;
				}
			}
			break;
		case 4:
		case 5: {
			enum certid_alg got;
			struct cache_entry *e = cache_due_pop(c, now, &got);
			int64_t best[2] = {INT64_MAX, INT64_MAX};
			for (int x = 0; x < MODEL_N; x++)
				if (m[x].live)
					best[m[x].ms] = MIN(best[m[x].ms], model_entry_min(&m[x]));
			if (!e) {
				assert_true(best[0] > now && best[1] > now);
				break;
			}
			size_t len;
			const uint8_t *s = cache_entry_serial(e, &len);
			struct model_entry *pe = &m[s[0] << 8 | s[1]];
			assert_true(pe->live && pe->e == e);
			assert_true(pe->s[got].st == M_DUE && pe->s[got].due <= now);
			assert_int_equal(pe->s[got].due, model_entry_min(pe));
			if (best[1] <= now)
				assert_true(pe->ms); /* must-staple first among what is due */
			assert_int_equal(pe->s[got].due, best[pe->ms]);
			pe->s[got].st = M_FETCHING;
			pops++;
			break;
		}
		case 6:
			if (has_alg) {
				int64_t ra =
					rng_next(&rng) % 2 ? -1 : (int64_t)(rng_next(&rng) % 100);
				int64_t due =
					cache_fetch_failed(c, me->e, alg, now, ra, rng_next(&rng));
				if (ra >= 0)
					assert_int_equal(due, now + ra);
				else
					assert_true(due >= now + 1 &&
						    due <= now + cfg.backoff_max_s);
				me->s[alg].st = M_DUE;
				me->s[alg].due = due;
			}
			break;
		default:
			if (has_alg) {
				struct model_slot *ms = &me->s[alg];
				int64_t tu = now - (int64_t)(rng_next(&rng) % 3) * 100;
				size_t len = 50 + (size_t)(tu % 7);
				int r = store(c, me->e, alg, (uint8_t)tu, len, tu, tu + 7200, now,
					      -1);
				if (ms->has_resp && tu < ms->this_update) {
					assert_int_equal(r, -ESTALE);
					break;
				}
				/* Same bytes (fill byte and length) is "unchanged", whatever info
				 * says; the held response, thisUpdate included, then stays. */
				bool same = ms->has_resp &&
					    (uint8_t)tu == (uint8_t)ms->this_update &&
					    len == ms->der_len;
				if (same)
					tu = ms->this_update;
				assert_int_equal(r, same ? CACHE_UNCHANGED : CACHE_STORED);
				const struct cache_resp *resp = cache_entry_resp(me->e, alg);
				assert_true(resp->refresh_unix >= now + cfg.min_refresh_interval_s);
				*ms = (struct model_slot){.st = M_DUE,
							  .due = resp->refresh_unix,
							  .has_resp = true,
							  .this_update = tu,
							  .der_len = len};
				stores++;
			}
			break;
		}

		int64_t min = INT64_MAX;
		for (int x = 0; x < MODEL_N; x++)
			if (m[x].live)
				min = MIN(min, model_entry_min(&m[x]));
		assert_int_equal(cache_next_due(c), min);
	}

	size_t live = 0, responses = 0, der = 0;
	for (int x = 0; x < MODEL_N; x++) {
		if (!m[x].live)
			continue;
		live++;
		for (int a = 0; a < CERTID_ALG_COUNT; a++) {
			if (m[x].s[a].has_resp) {
				responses++;
				der += m[x].s[a].der_len;
				const struct cache_resp *r = cache_entry_resp(m[x].e, a);
				assert_int_equal(r->der_len, m[x].s[a].der_len);
				assert_int_equal(r->meta.this_update_unix, m[x].s[a].this_update);
			} else {
				assert_null(cache_entry_resp(m[x].e, a));
			}
		}
		struct certid id;
		assert_int_equal(
			cache_entry_certid(m[x].e, x % 2 ? CERTID_SHA1 : CERTID_SHA512, &id), 0);
		assert_ptr_equal(cache_lookup(c, &id), m[x].e);
	}
	struct cache_stats st;
	cache_stats(c, now, &st);
	assert_int_equal(st.entries, live);
	assert_int_equal(st.responses, responses);
	assert_true(responses > 0 && (st.bytes - der) % responses == 0);
	assert_true(pops > 1000 && stores > 1000);
	free(m);
	cache_free(c);
}

/*
 * 100,000 entries over a few issuers with random due times, interleaved removals and
 * reschedules. The heap is checked from the outside: cache_next_due() must equal the true
 * minimum, and popping everything must yield must-staple entries first and each class in
 * non-decreasing due order, every live entry exactly once.
 */
#define STRESS_N 100000
struct stress_rec {
	struct cache_entry *e;
	int64_t due;
	bool live, ms;
	uint32_t serial;
	struct cache_issuer *issuer;
};

static void test_stress(void **state)
{
	struct cache *c = new_cache();
	struct cache_issuer *iss[5];
	struct stress_rec *rec = xcalloc(STRESS_N, sizeof(*rec));
	uint64_t rng = 7;

	for (int k = 0; k < 5; k++)
		iss[k] = hissuer(c, k == 4 ? CERTID_SHA512 : CERTID_SHA1, 100 + k, NULL, NULL);

	for (uint32_t k = 0; k < STRESS_N; k++) {
		struct stress_rec *r = &rec[k];
		r->issuer = iss[k % 5];
		r->serial = (uint32_t)rng_next(&rng);
		r->ms = rng_next(&rng) % 10 == 0;
		r->due = (int64_t)(rng_next(&rng) % 1000000);
		uint8_t s[8];
		memcpy(s, &k, 4);
		memcpy(s + 4, &r->serial, 4);
		assert_int_equal(cache_entry_add(c, r->issuer, s, 8,
						 r->ms ? CACHE_ENTRY_MUST_STAPLE : 0, r->due,
						 &r->e),
				 0);
		r->live = true;
	}
	/* Reschedule a third, remove a fifth. */
	for (uint32_t k = 0; k < STRESS_N; k += 3) {
		rec[k].due = (int64_t)(rng_next(&rng) % 2000000);
		assert_int_equal(
			cache_slot_schedule(c, rec[k].e,
					    cache_issuer_has_alg(rec[k].issuer, CERTID_SHA1)
						    ? CERTID_SHA1
						    : CERTID_SHA512,
					    rec[k].due),
			0);
	}
	size_t live = STRESS_N;
	for (uint32_t k = 0; k < STRESS_N; k += 5) {
		cache_entry_remove(c, rec[k].e);
		rec[k].live = false;
		live--;
	}

	int64_t min_due = INT64_MAX;
	for (uint32_t k = 0; k < STRESS_N; k++) {
		struct certid id;
		struct stress_rec *r = &rec[k];
		uint8_t s[8];
		memcpy(s, &k, 4);
		memcpy(s + 4, &r->serial, 4);
		id.alg = cache_issuer_has_alg(r->issuer, CERTID_SHA1) ? CERTID_SHA1 : CERTID_SHA512;
		size_t hl = id.alg == CERTID_SHA1 ? 20 : 64;
		uint8_t n[CERTID_HASH_MAX], kh[CERTID_HASH_MAX];
		uint32_t seed = 100 + k % 5;
		fill(n, sizeof(n), seed * 2 + 1);
		fill(kh, sizeof(kh), seed * 2 + 2);
		memcpy(id.name_hash, n, hl);
		memcpy(id.key_hash, kh, hl);
		id.serial_len = 8;
		memcpy(id.serial, s, 8);
		assert_ptr_equal(cache_lookup(c, &id), r->live ? r->e : NULL);
		if (r->live)
			min_due = MIN(min_due, r->due);
	}
	struct cache_stats st;
	cache_stats(c, 0, &st);
	assert_int_equal(st.entries, live);
	assert_int_equal(cache_next_due(c), min_due);

	/* Pop in two rounds to also check the "nothing due yet" boundary. */
	size_t popped = 0;
	int64_t last_due[2] = {INT64_MIN, INT64_MIN};
	bool normal_seen = false;
	enum certid_alg alg;
	for (int round = 0; round < 2; round++) {
		int64_t now = round == 0 ? 500000 : INT64_MAX - 1;
		struct cache_entry *e;
		while ((e = cache_due_pop(c, now, &alg))) {
			bool ms = cache_entry_flags(e) & CACHE_ENTRY_MUST_STAPLE;
			/* Find its record through the serial. */
			size_t len;
			const uint8_t *s = cache_entry_serial(e, &len);
			uint32_t k;
			memcpy(&k, s, 4);
			assert_true(k < STRESS_N && rec[k].live && rec[k].e == e);
			assert_true(rec[k].due <= now);
			assert_true(rec[k].due >= last_due[ms]);
			last_due[ms] = rec[k].due;
			/* Within one pass everything popped is due: must-staple ones first. */
			assert_false(ms && normal_seen);
			if (!ms)
				normal_seen = true;
			rec[k].live = false;
			popped++;
		}
		if (round == 0) {
			assert_true(cache_next_due(c) > 500000);
			last_due[0] = last_due[1] = INT64_MIN;
			normal_seen = false;
		}
	}
	assert_int_equal(popped, live);
	assert_int_equal(cache_next_due(c), INT64_MAX);
	free(rec);
	cache_free(c);
}

#ifdef UNDER_ASAN
/* From the sanitizer runtime (sanitizer/allocator_interface.h, not always installed). */
size_t __sanitizer_get_current_allocated_bytes(void);
#endif

/*
 * Heap bytes in use. With glibc's allocator these are whole chunks (headers and rounding
 * included); under ASan, which replaces the allocator, only the bytes asked for.
 */
static double heap_in_use(void)
{
#ifdef UNDER_ASAN
	return (double)__sanitizer_get_current_allocated_bytes();
#else
	struct mallinfo2 m = mallinfo2();
	return (double)m.uordblks + (double)m.hblkhd;
#endif
}

/*
 * Memory per entry holding one response: heap in use minus the DER bytes, divided by the number
 * of entries, so the entry, the response header, the index and heap slack all count. Budget:
 * 200 B of cache overhead per single-response entry. The layout gives ~180 with glibc at this
 * size (80-byte entry chunk; 56-byte struct cache_resp header + chunk cost; index and heap
 * arrays at their current load), ~177 at 1 M entries.
 */
static void test_overhead(void **state)
{
	enum {
		N = 200000,
		DER = 1000
	};
	uint8_t der[DER];
	memset(der, 0x30, sizeof(der));
	struct ocsp_info info = info_at(0, 86400);

	double before = heap_in_use();
	struct cache *c = new_cache();
	struct cache_issuer *i = hissuer(c, CERTID_SHA1, 20, NULL, NULL);
	for (uint32_t k = 0; k < N; k++) {
		uint8_t s[18];
		struct cache_entry *e;
		fill(s, sizeof(s), k);
		memcpy(s, &k, 4);
		assert_int_equal(cache_entry_add(c, i, s, sizeof(s), 0, 0, &e), 0);
		der[0] = (uint8_t)k;
		assert_int_equal(cache_store(c, e, CERTID_SHA1, der, sizeof(der), &info, 0, -1),
				 CACHE_STORED);
	}
	double per = (heap_in_use() - before - (double)N * DER) / N;
	printf("# cache overhead: %.1f B per single-response entry (%d entries, 18-byte serials)\n",
	       per, N);
	assert_true(per > sizeof(struct cache_resp));
	assert_true(per < 200);
	cache_free(c);
}

/* Fewer than three alert thresholds (unused ones 0, last) are valid; a gap or a rise is not.
 * cache_set_config applies the same rule and leaves the old configuration on failure. */
static void test_config_thresholds(void **state)
{
	(void)state;
	static const double ok[][3] = {{0.5, 0.25, 0.1}, {0.5, 0.25, 0}, {0.5, 0, 0}, {1, 0.9, 0}};
	static const double bad[][3] = {{0, 0, 0},     {0.5, 0, 0.1}, {0.25, 0.5, 0},
					{0.5, 0.5, 0}, {1.5, 0.5, 0}, {0.5, -0.1, 0}};
	struct cache_config cfg;
	struct cache *c;
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		cache_config_default(&cfg);
		memcpy(cfg.alert_fraction, ok[i], sizeof(cfg.alert_fraction));
		assert_int_equal(cache_new(&cfg, &c), 0);
		cache_free(c);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cache_config_default(&cfg);
		memcpy(cfg.alert_fraction, bad[i], sizeof(cfg.alert_fraction));
		assert_int_equal(cache_new(&cfg, &c), -EINVAL);
	}
	cache_config_default(&cfg);
	assert_int_equal(cache_new(&cfg, &c), 0);
	struct cache_config other = cfg;
	other.refresh_lo = 0.9;
	other.refresh_hi = 0.1;
	assert_int_equal(cache_set_config(c, &other), -EINVAL);
	other = cfg;
	other.refresh_lo = 0.1;
	other.refresh_hi = 0.2;
	assert_int_equal(cache_set_config(c, &other), 0);
	cache_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_config),
		cmocka_unit_test(test_lookup_hashes_only),
		cmocka_unit_test(test_want_other_alg),
		cmocka_unit_test(test_store_rollback_unchanged),
		cmocka_unit_test(test_never_downgrade),
		cmocka_unit_test(test_key_hash_and_refresh),
		cmocka_unit_test(test_max_age_and_min_interval),
		cmocka_unit_test(test_backoff),
		cmocka_unit_test(test_due_order_must_staple),
		cmocka_unit_test(test_byte_bound),
		cmocka_unit_test(test_remove),
		cmocka_unit_test(test_extreme_times),
		cmocka_unit_test(test_alert_levels),
		cmocka_unit_test(test_servable),
		cmocka_unit_test(test_stats_foreach),
		cmocka_unit_test(test_cert_issuer_all_algs),
		cmocka_unit_test(test_cert_upgrades_hashes_only),
		cmocka_unit_test(test_cert_merges_two_forms),
		cmocka_unit_test(test_issuer_gc),
		cmocka_unit_test(test_hash_seed),
		cmocka_unit_test(test_slots_per_alg),
		cmocka_unit_test(test_store_real_response),
		cmocka_unit_test(test_model),
		cmocka_unit_test(test_stress),
		cmocka_unit_test(test_overhead),
		cmocka_unit_test(test_config_thresholds),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
