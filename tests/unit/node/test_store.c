/* SPDX-License-Identifier: Apache-2.0 */
/*
 * node/store: real files in a fresh directory, a real loop. The crash test re-executes this
 * binary as a writer child (--crash-child) and kills it with SIGKILL at random moments.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "proto/macro.h"
#include "node/store.h"
#include "proto/mem.h"

/* ---- helpers ---- */

struct fixture {
	uv_loop_t loop;
	char dir[64];
	struct store *s;
	int closed;
};

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (flag == FTW_DP)
		return rmdir(path);
	return unlink(path);
}

static void rm_rf(const char *dir)
{
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static int setup(void **state)
{
	struct fixture *f = xcalloc(1, sizeof(*f));

	strcpy(f->dir, "/tmp/test-store-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	assert_int_equal(uv_loop_init(&f->loop), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	rm_rf(f->dir);
	free(f);
	return 0;
}

static void on_closed(void *ud)
{
	(*(int *)ud)++;
}

/* Every test ends here: the store closes exactly once and leaves no handle or request behind. */
static void close_store(struct fixture *f)
{
	f->closed = 0;
	store_close(f->s, on_closed, &f->closed);
	/* Deferred: never called from inside store_close. */
	assert_int_equal(f->closed, 0);
	uv_run(&f->loop, UV_RUN_DEFAULT);
	assert_int_equal(f->closed, 1);
	assert_int_equal(uv_loop_close(&f->loop), 0);
}

static void path_in(char *out, size_t size, const char *dir, const char *name)
{
	int n = snprintf(out, size, "%s/%s", dir, name);
	assert_true(n > 0 && (size_t)n < size);
}

/* Reads a whole file; returns its length or -errno. */
static ssize_t slurp(const char *path, uint8_t *buf, size_t cap)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t len = 0;

	if (fd < 0)
		return -errno;
	for (;;) {
		ssize_t n = read(fd, buf + len, cap - len);
		if (n < 0) {
			int r = -errno;
			close(fd);
			return r;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len == cap)
			break;
	}
	close(fd);
	return (ssize_t)len;
}

static void write_plain(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	assert_int_equal(close(fd), 0);
}

static void assert_file(const char *dir, const char *name, const void *data, size_t len)
{
	char path[PATH_MAX];
	_cleanup_free_ uint8_t *buf = xmalloc(len + 16);

	path_in(path, sizeof(path), dir, name);
	ssize_t n = slurp(path, buf, len + 16);
	assert_int_equal(n, (ssize_t)len);
	assert_memory_equal(buf, data, len);
}

static bool file_exists(const char *dir, const char *name)
{
	char path[PATH_MAX];
	struct stat st;

	path_in(path, sizeof(path), dir, name);
	return lstat(path, &st) == 0;
}

/* Names in dir that look like a temporary of an atomic write. */
static size_t count_temporaries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	size_t n = 0;

	assert_non_null(d);
	while ((de = readdir(d)))
		if (de->d_name[0] == '.' && strstr(de->d_name, ".tmp."))
			n++;
	closedir(d);
	return n;
}

struct loaded_entry {
	char *name;
	uint8_t *data;
	size_t len;
};

struct loaded {
	struct loaded_entry *v;
	size_t n, cap;
};

static void on_load(const char *name, const uint8_t *data, size_t len, void *ud)
{
	struct loaded *l = ud;

	l->v = xgrow(l->v, &l->cap, l->n + 1, sizeof(*l->v));
	l->v[l->n++] = (struct loaded_entry){xstrdup(name), xmemdup(data, len ? len : 1), len};
}

static const struct loaded_entry *loaded_find(const struct loaded *l, const char *name)
{
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->v[i].name, name) == 0)
			return &l->v[i];
	return NULL;
}

static void loaded_done(struct loaded *l)
{
	for (size_t i = 0; i < l->n; i++) {
		free(l->v[i].name);
		free(l->v[i].data);
	}
	free(l->v);
	*l = (struct loaded){0};
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- versioned payloads: a torn or mixed file fails the check ---- */

static uint32_t fnv1a(const uint8_t *p, size_t n)
{
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < n; i++) {
		h ^= p[i];
		h *= 16777619u;
	}
	return h;
}

/* [len u32][version u32][fnv of payload u32][payload]; sizes vary from 1 to 64 KiB. */
static size_t make_version(uint8_t *buf, uint32_t version)
{
	uint32_t x = version * 2654435761u + 1;
	uint32_t plen = 1 + (x % 65536);

	for (uint32_t i = 0; i < plen; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		buf[12 + i] = (uint8_t)x;
	}
	uint32_t h = fnv1a(buf + 12, plen);
	memcpy(buf, &plen, 4);
	memcpy(buf + 4, &version, 4);
	memcpy(buf + 8, &h, 4);
	return 12 + plen;
}

static bool version_valid(const uint8_t *buf, size_t len)
{
	uint32_t plen, version, h;
	uint8_t *ref;
	bool ok;

	if (len < 12)
		return false;
	memcpy(&plen, buf, 4);
	memcpy(&version, buf + 4, 4);
	memcpy(&h, buf + 8, 4);
	if (len != 12 + (size_t)plen || fnv1a(buf + 12, plen) != h)
		return false;
	/* The checksum proves integrity; regenerating proves it is the version it claims to be. */
	ref = xmalloc(12 + 65536);
	ok = make_version(ref, version) == len && memcmp(ref, buf, len) == 0;
	free(ref);
	return ok;
}

/* ---- tests ---- */

static void test_put_load_roundtrip(void **state)
{
	struct fixture *f = *state;
	char dir[PATH_MAX];
	struct store_stats st;
	struct loaded l = {0};
	size_t skipped = 99;
	struct stat sb;
	uint8_t big[3000];

	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (uint8_t)(i * 7);
	/* Parents are created too. */
	path_in(dir, sizeof(dir), f->dir, "a/b/cache");
	assert_int_equal(store_open(&f->loop, dir, &f->s), 0);
	assert_int_equal(stat(dir, &sb), 0);
	assert_int_equal(sb.st_mode & 07777, 0700);

	assert_int_equal(store_put(f->s, "one.der", (const uint8_t *)"first", 5), 0);
	assert_int_equal(store_put(f->s, "two-2_x.der", big, sizeof(big)), 0);
	assert_int_equal(store_put(f->s, "empty.der", NULL, 0), 0);
	store_get_stats(f->s, &st);
	assert_int_equal(st.writes_pending, 3);
	uv_run(&f->loop, UV_RUN_DEFAULT);
	store_get_stats(f->s, &st);
	assert_int_equal(st.writes_ok, 3);
	assert_int_equal(st.writes_failed, 0);
	assert_int_equal(st.writes_pending, 0);
	assert_int_equal(st.last_error, 0);

	assert_file(dir, "one.der", "first", 5);
	assert_file(dir, "two-2_x.der", big, sizeof(big));
	assert_file(dir, "empty.der", "", 0);
	char p[PATH_MAX];
	path_in(p, sizeof(p), dir, "one.der");
	assert_int_equal(stat(p, &sb), 0);
	assert_int_equal(sb.st_mode & 07777, 0600);
	assert_int_equal(count_temporaries(dir), 0);

	assert_int_equal(store_load(f->s, on_load, &l, &skipped), 3);
	assert_int_equal(skipped, 0);
	assert_int_equal(l.n, 3);
	const struct loaded_entry *e = loaded_find(&l, "two-2_x.der");
	assert_non_null(e);
	assert_int_equal(e->len, sizeof(big));
	assert_memory_equal(e->data, big, sizeof(big));
	e = loaded_find(&l, "one.der");
	assert_non_null(e);
	assert_int_equal(e->len, 5);
	assert_memory_equal(e->data, "first", 5);
	e = loaded_find(&l, "empty.der");
	assert_non_null(e);
	assert_int_equal(e->len, 0);
	loaded_done(&l);
	close_store(f);

	/* A second open of the existing directory sees the same entries. */
	assert_int_equal(uv_loop_init(&f->loop), 0);
	assert_int_equal(store_open(&f->loop, dir, &f->s), 0);
	assert_int_equal(store_load(f->s, on_load, &l, NULL), 3);
	assert_non_null(loaded_find(&l, "one.der"));
	loaded_done(&l);
	close_store(f);
}

static void test_overwrite_order(void **state)
{
	struct fixture *f = *state;
	struct store_stats st;
	char buf[32];

	assert_int_equal(store_open(&f->loop, f->dir, &f->s), 0);
	for (int i = 0; i < 1000; i++) {
		int n = snprintf(buf, sizeof(buf), "version %d", i);
		assert_int_equal(store_put(f->s, "x.der", (const uint8_t *)buf, (size_t)n), 0);
	}
	store_get_stats(f->s, &st);
	/* One running, one queued: the queued one keeps being replaced. */
	assert_int_equal(st.writes_pending, 2);
	uv_run(&f->loop, UV_RUN_DEFAULT);
	assert_file(f->dir, "x.der", "version 999", 11);
	store_get_stats(f->s, &st);
	assert_int_equal(st.writes_ok, 2);
	assert_int_equal(st.writes_pending, 0);

	/* The last operation wins also across put/del. */
	assert_int_equal(store_put(f->s, "y.der", (const uint8_t *)"a", 1), 0);
	assert_int_equal(store_put(f->s, "y.der", (const uint8_t *)"b", 1), 0);
	assert_int_equal(store_del(f->s, "y.der"), 0);
	assert_int_equal(store_del(f->s, "z.der"), 0);
	assert_int_equal(store_put(f->s, "z.der", (const uint8_t *)"c", 1), 0);
	assert_int_equal(store_put(f->s, "z.der", (const uint8_t *)"d", 1), 0);
	uv_run(&f->loop, UV_RUN_DEFAULT);
	assert_false(file_exists(f->dir, "y.der"));
	assert_file(f->dir, "z.der", "d", 1);

	/* Interleaved with the loop running between submissions, order still holds. */
	for (int i = 0; i < 50; i++) {
		int n = snprintf(buf, sizeof(buf), "v%d", i);
		assert_int_equal(store_put(f->s, "w.der", (const uint8_t *)buf, (size_t)n), 0);
		if (i % 3 == 0)
			uv_run(&f->loop, UV_RUN_NOWAIT);
	}
	uv_run(&f->loop, UV_RUN_DEFAULT);
	assert_file(f->dir, "w.der", "v49", 3);
	assert_int_equal(count_temporaries(f->dir), 0);
	close_store(f);
}

static void test_del(void **state)
{
	struct fixture *f = *state;
	struct store_stats st;

	assert_int_equal(store_open(&f->loop, f->dir, &f->s), 0);
	assert_int_equal(store_put(f->s, "a.der", (const uint8_t *)"A", 1), 0);
	assert_int_equal(store_put(f->s, "b.der", (const uint8_t *)"B", 1), 0);
	uv_run(&f->loop, UV_RUN_DEFAULT);
	assert_true(file_exists(f->dir, "a.der"));
	assert_int_equal(store_del(f->s, "a.der"), 0);
	/* Missing is fine. */
	assert_int_equal(store_del(f->s, "never.der"), 0);
	uv_run(&f->loop, UV_RUN_DEFAULT);
	assert_false(file_exists(f->dir, "a.der"));
	assert_true(file_exists(f->dir, "b.der"));
	store_get_stats(f->s, &st);
	assert_int_equal(st.removes, 2);
	assert_int_equal(st.writes_ok, 2);
	assert_int_equal(st.writes_failed, 0);

	struct loaded l = {0};
	assert_int_equal(store_load(f->s, on_load, &l, NULL), 1);
	assert_string_equal(l.v[0].name, "b.der");
	loaded_done(&l);
	close_store(f);
}

static void test_bad_names(void **state)
{
	struct fixture *f = *state;
	const uint8_t d[] = {1};
	char name[256];
	struct store_stats st;

	assert_int_equal(store_open(&f->loop, f->dir, &f->s), 0);
	static const char *const bad[] = {
		"",	  ".der",  ".a.der",	"a/b.der", "../a.der", "a.txt", "a b.der",
		"a.der/", "a.DER", "a.der.tmp", "a\n.der", "ä.der",    "a.de",	"der",
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		assert_int_equal(store_put(f->s, bad[i], d, 1), -EINVAL);
		assert_int_equal(store_del(f->s, bad[i]), -EINVAL);
	}
	/* 200 characters is the limit. */
	memset(name, 'n', 196);
	strcpy(name + 196, ".der");
	assert_int_equal(strlen(name), 200);
	assert_int_equal(store_put(f->s, name, d, 1), 0);
	memset(name, 'n', 197);
	strcpy(name + 197, ".der");
	assert_int_equal(store_put(f->s, name, d, 1), -EINVAL);
	assert_int_equal(store_put(f->s, "A-z_0.9.der", d, 1), 0);

	/* Larger than store_load would accept. */
	_cleanup_free_ uint8_t *huge = xcalloc(1, 1024 * 1024 + 1);
	assert_int_equal(store_put(f->s, "huge.der", huge, 1024 * 1024 + 1), -EMSGSIZE);

	assert_int_equal(store_write_file(f->s, "relative/out.ocsp", d, 1, 0644, NULL, NULL),
			 -EINVAL);
	assert_int_equal(store_write_file(f->s, "", d, 1, 0644, NULL, NULL), -EINVAL);
	assert_int_equal(store_write_file(f->s, "/tmp/", d, 1, 0644, NULL, NULL), -EINVAL);
	assert_int_equal(store_write_file(f->s, "/tmp/..", d, 1, 0644, NULL, NULL), -EINVAL);
	assert_int_equal(store_write_file(f->s, "/tmp/x", d, 1, 010000, NULL, NULL), -EINVAL);

	uv_run(&f->loop, UV_RUN_DEFAULT);
	store_get_stats(f->s, &st);
	/* Rejected calls queue nothing. */
	assert_int_equal(st.writes_ok, 2);
	assert_int_equal(st.writes_failed, 0);
	assert_true(file_exists(f->dir, name) == false);
	memset(name, 'n', 196);
	strcpy(name + 196, ".der");
	assert_true(file_exists(f->dir, name));
	close_store(f);
}

static void test_stale_temporaries(void **state)
{
	struct fixture *f = *state;
	char p[PATH_MAX];
	struct loaded l = {0};
	size_t skipped = 99;

	static const char *const temps[] = {
		".a.der.tmp.1234.00000000000000ff",
		".out.ocsp.tmp.1.2",
		".x.tmp.y",
	};
	for (size_t i = 0; i < ARRAY_SIZE(temps); i++) {
		path_in(p, sizeof(p), f->dir, temps[i]);
		write_plain(p, "torn", 4);
	}
	path_in(p, sizeof(p), f->dir, "a.der");
	write_plain(p, "good", 4);
	/* A dotfile that is not a temporary: left alone, but never loaded. */
	path_in(p, sizeof(p), f->dir, ".hidden.der");
	write_plain(p, "hidden", 6);
	/* Not an entry: ignored, not counted. */
	path_in(p, sizeof(p), f->dir, "README");
	write_plain(p, "hello", 5);
	assert_int_equal(count_temporaries(f->dir), 3);

	assert_int_equal(store_open(&f->loop, f->dir, &f->s), 0);
	assert_int_equal(count_temporaries(f->dir), 0);
	assert_true(file_exists(f->dir, ".hidden.der"));
	assert_true(file_exists(f->dir, "a.der"));

	/* A temporary appearing after open (another writer's crash) is still never loaded. */
	path_in(p, sizeof(p), f->dir, ".b.der.tmp.9.9");
	write_plain(p, "torn", 4);
	path_in(p, sizeof(p), f->dir, ".c.der");
	write_plain(p, "dot", 3);
	assert_int_equal(store_load(f->s, on_load, &l, &skipped), 1);
	assert_int_equal(skipped, 0);
	assert_string_equal(l.v[0].name, "a.der");
	assert_memory_equal(l.v[0].data, "good", 4);
	loaded_done(&l);
	close_store(f);
}

struct done_rec {
	int calls;
	int err;
	int order;
};

static int done_seq;

static void on_done_rec(int err, void *ud)
{
	struct done_rec *r = ud;

	r->calls++;
	r->err = err;
	r->order = ++done_seq;
}

struct chain {
	struct store *s;
	char path[PATH_MAX];
	struct done_rec second;
	int first_calls;
};

/* Submitting from a completion callback must work. */
static void on_done_chain(int err, void *ud)
{
	struct chain *c = ud;

	assert_int_equal(err, 0);
	c->first_calls++;
	assert_int_equal(store_write_file(c->s, c->path, (const uint8_t *)"chained", 7, 0600,
					  on_done_rec, &c->second),
			 0);
}

static void test_write_file(void **state)
{
	struct fixture *f = *state;
	char out[PATH_MAX], dir[PATH_MAX];
	struct done_rec r1 = {0}, r2 = {0}, r3 = {0}, r4 = {0};
	struct store_stats st;
	struct stat sb;

	path_in(dir, sizeof(dir), f->dir, "certs");
	assert_int_equal(mkdir(dir, 0755), 0);
	path_in(out, sizeof(out), dir, "site.pem.ocsp");
	/* A restrictive umask must not narrow the requested mode. */
	mode_t old_umask = umask(077);
	assert_int_equal(store_open(&f->loop, f->dir, &f->s), 0);
	done_seq = 0;
	assert_int_equal(
		store_write_file(f->s, out, (const uint8_t *)"v1", 2, 0644, on_done_rec, &r1), 0);
	/* v1 starts at once; v2 queues behind it and is superseded by v3. */
	assert_int_equal(
		store_write_file(f->s, out, (const uint8_t *)"v2", 2, 0644, on_done_rec, &r2), 0);
	assert_int_equal(
		store_write_file(f->s, out, (const uint8_t *)"v3!", 3, 0644, on_done_rec, &r3), 0);
	/* No callback before the loop runs. */
	assert_int_equal(r1.calls + r2.calls + r3.calls, 0);
	uv_run(&f->loop, UV_RUN_DEFAULT);
	umask(old_umask);
	assert_int_equal(r1.calls, 1);
	assert_int_equal(r2.calls, 1);
	assert_int_equal(r3.calls, 1);
	assert_int_equal(r1.err, 0);
	assert_int_equal(r2.err, 0);
	assert_int_equal(r3.err, 0);
	/* Callbacks in submission order. */
	assert_true(r1.order < r2.order && r2.order < r3.order);
	assert_file(dir, "site.pem.ocsp", "v3!", 3);
	assert_int_equal(stat(out, &sb), 0);
	assert_int_equal(sb.st_mode & 07777, 0644);
	assert_int_equal(count_temporaries(dir), 0);
	store_get_stats(f->s, &st);
	assert_int_equal(st.writes_ok, 2);

	/* Another mode over an existing file, without a callback. */
	assert_int_equal(store_write_file(f->s, out, (const uint8_t *)"v4", 2, 0640, NULL, NULL),
			 0);
	uv_run(&f->loop, UV_RUN_DEFAULT);
	assert_int_equal(stat(out, &sb), 0);
	assert_int_equal(sb.st_mode & 07777, 0640);
	assert_file(dir, "site.pem.ocsp", "v4", 2);

	struct chain c = {.s = f->s};
	path_in(c.path, sizeof(c.path), dir, "chained.ocsp");
	assert_int_equal(
		store_write_file(f->s, out, (const uint8_t *)"v5", 2, 0644, on_done_chain, &c), 0);
	uv_run(&f->loop, UV_RUN_DEFAULT);
	assert_int_equal(c.first_calls, 1);
	assert_int_equal(c.second.calls, 1);
	assert_int_equal(c.second.err, 0);
	assert_file(dir, "chained.ocsp", "chained", 7);

	/* Empty content is a valid file. */
	assert_int_equal(store_write_file(f->s, out, NULL, 0, 0644, on_done_rec, &r4), 0);
	uv_run(&f->loop, UV_RUN_DEFAULT);
	assert_int_equal(r4.calls, 1);
	assert_int_equal(r4.err, 0);
	assert_file(dir, "site.pem.ocsp", "", 0);
	close_store(f);
}

static void test_write_failures(void **state)
{
	struct fixture *f = *state;
	char file[PATH_MAX], bad[PATH_MAX], cache[PATH_MAX], missing[PATH_MAX];
	struct done_rec r1 = {0}, r2 = {0};
	struct store_stats st;

	path_in(file, sizeof(file), f->dir, "regular");
	write_plain(file, "x", 1);
	path_in(bad, sizeof(bad), file, "out.ocsp");
	path_in(missing, sizeof(missing), f->dir, "no/such/dir/out.ocsp");
	path_in(cache, sizeof(cache), f->dir, "cache");

	assert_int_equal(store_open(&f->loop, cache, &f->s), 0);
	assert_int_equal(
		store_write_file(f->s, bad, (const uint8_t *)"d", 1, 0644, on_done_rec, &r1), 0);
	assert_int_equal(
		store_write_file(f->s, missing, (const uint8_t *)"d", 1, 0644, on_done_rec, &r2),
		0);
	uv_run(&f->loop, UV_RUN_DEFAULT);
	assert_int_equal(r1.calls, 1);
	assert_int_equal(r1.err, -ENOTDIR);
	/* Missing directories are made (mode 0755), as the cache directory is. */
	assert_int_equal(r2.calls, 1);
	assert_int_equal(r2.err, 0);
	char made[PATH_MAX];
	path_in(made, sizeof(made), f->dir, "no/such/dir");
	assert_file(made, "out.ocsp", "d", 1);
	struct stat dst;
	assert_int_equal(stat(made, &dst), 0);
	assert_int_equal(dst.st_mode & 07777, 0755);
	store_get_stats(f->s, &st);
	assert_int_equal(st.writes_failed, 1);
	assert_int_equal(st.writes_ok, 1);

	/* The cache directory removed under the store: writes fail, the store keeps working. */
	assert_int_equal(store_put(f->s, "a.der", (const uint8_t *)"A", 1), 0);
	uv_run(&f->loop, UV_RUN_DEFAULT);
	assert_int_equal(unlink(file), 0);
	char entry[PATH_MAX];
	path_in(entry, sizeof(entry), cache, "a.der");
	assert_int_equal(unlink(entry), 0);
	assert_int_equal(rmdir(cache), 0);
	assert_int_equal(store_put(f->s, "b.der", (const uint8_t *)"B", 1), 0);
	uv_run(&f->loop, UV_RUN_DEFAULT);
	store_get_stats(f->s, &st);
	assert_int_equal(st.writes_ok, 2);
	assert_int_equal(st.writes_failed, 2);
	assert_int_equal(st.last_error, -ENOENT);
	assert_int_equal(st.writes_pending, 0);

	/* Output files still work, and a success does not clear last_error. */
	char good[PATH_MAX];
	path_in(good, sizeof(good), f->dir, "ok.ocsp");
	r1 = (struct done_rec){0};
	assert_int_equal(
		store_write_file(f->s, good, (const uint8_t *)"ok", 2, 0644, on_done_rec, &r1), 0);
	uv_run(&f->loop, UV_RUN_DEFAULT);
	assert_int_equal(r1.err, 0);
	assert_file(f->dir, "ok.ocsp", "ok", 2);
	store_get_stats(f->s, &st);
	assert_int_equal(st.writes_ok, 3);
	assert_int_equal(st.last_error, -ENOENT);
	assert_int_equal(count_temporaries(f->dir), 0);
	close_store(f);
}

static void test_open_errors(void **state)
{
	struct fixture *f = *state;
	char file[PATH_MAX], under[PATH_MAX];
	struct store *s = (struct store *)(uintptr_t)1;

	path_in(file, sizeof(file), f->dir, "regular");
	write_plain(file, "x", 1);
	path_in(under, sizeof(under), file, "cache");
	assert_int_equal(store_open(&f->loop, under, &s), -ENOTDIR);
	assert_int_equal(store_open(&f->loop, file, &s), -ENOTDIR);
	/* ret is written only on success. */
	assert_ptr_equal(s, (struct store *)(uintptr_t)1);
	assert_int_equal(uv_loop_close(&f->loop), 0);
}

static void test_load_skips(void **state)
{
	struct fixture *f = *state;
	char p[PATH_MAX];
	struct loaded l = {0};
	size_t skipped = 0;
	_cleanup_free_ uint8_t *mib = xmalloc(1024 * 1024 + 1);

	for (size_t i = 0; i < 1024 * 1024 + 1; i++)
		mib[i] = (uint8_t)(i ^ (i >> 8));
	path_in(p, sizeof(p), f->dir, "limit.der");
	write_plain(p, mib, 1024 * 1024);
	path_in(p, sizeof(p), f->dir, "big.der");
	write_plain(p, mib, 1024 * 1024 + 1);
	path_in(p, sizeof(p), f->dir, "dir.der");
	assert_int_equal(mkdir(p, 0700), 0);
	path_in(p, sizeof(p), f->dir, "fifo.der");
	assert_int_equal(mkfifo(p, 0600), 0);
	path_in(p, sizeof(p), f->dir, "link.der");
	assert_int_equal(symlink("limit.der", p), 0);
	path_in(p, sizeof(p), f->dir, "small.der");
	write_plain(p, "s", 1);

	assert_int_equal(store_open(&f->loop, f->dir, &f->s), 0);
	assert_int_equal(store_load(f->s, on_load, &l, &skipped), 2);
	assert_int_equal(skipped, 4);
	const struct loaded_entry *e = loaded_find(&l, "limit.der");
	assert_non_null(e);
	assert_int_equal(e->len, 1024 * 1024);
	assert_memory_equal(e->data, mib, 1024 * 1024);
	e = loaded_find(&l, "small.der");
	assert_non_null(e);
	assert_int_equal(e->len, 1);
	assert_null(loaded_find(&l, "big.der"));
	loaded_done(&l);
	close_store(f);
}

static void test_outputs_only(void **state)
{
	struct fixture *f = *state;
	char out[PATH_MAX];
	struct done_rec r = {0};
	size_t skipped = 7;
	struct store_stats st;

	assert_int_equal(store_open_outputs_only(&f->loop, &f->s), 0);
	assert_int_equal(store_put(f->s, "a.der", (const uint8_t *)"A", 1), -EINVAL);
	assert_int_equal(store_del(f->s, "a.der"), -EINVAL);
	assert_int_equal(store_load(f->s, on_load, NULL, &skipped), -EINVAL);
	assert_int_equal(skipped, 7);
	path_in(out, sizeof(out), f->dir, "x.ocsp");
	assert_int_equal(
		store_write_file(f->s, out, (const uint8_t *)"out", 3, 0644, on_done_rec, &r), 0);
	uv_run(&f->loop, UV_RUN_DEFAULT);
	assert_int_equal(r.calls, 1);
	assert_int_equal(r.err, 0);
	assert_file(f->dir, "x.ocsp", "out", 3);
	store_get_stats(f->s, &st);
	assert_int_equal(st.writes_ok, 1);

	/* The same bytes and mode again: reported as unchanged (1), the file left alone (its
	 * inode stays, so a web server watching it sees nothing). */
	struct stat before, after;
	assert_int_equal(stat(out, &before), 0);
	r = (struct done_rec){0};
	assert_int_equal(
		store_write_file(f->s, out, (const uint8_t *)"out", 3, 0644, on_done_rec, &r), 0);
	uv_run(&f->loop, UV_RUN_DEFAULT);
	assert_int_equal(r.calls, 1);
	assert_int_equal(r.err, 1);
	assert_int_equal(stat(out, &after), 0);
	assert_int_equal(before.st_ino, after.st_ino);
	/* Other bytes, or another mode, are a change. */
	const struct {
		const char *data;
		unsigned mode;
	} changes[] = {{"oux", 0644}, {"ouxx", 0644}, {"ouxx", 0640}, {"", 0640}};
	for (size_t i = 0; i < sizeof(changes) / sizeof(changes[0]); i++) {
		r = (struct done_rec){0};
		assert_int_equal(store_write_file(f->s, out, (const uint8_t *)changes[i].data,
						  strlen(changes[i].data), changes[i].mode,
						  on_done_rec, &r),
				 0);
		uv_run(&f->loop, UV_RUN_DEFAULT);
		assert_int_equal(r.err, 0);
		assert_file(f->dir, "x.ocsp", changes[i].data, strlen(changes[i].data));
	}
	store_get_stats(f->s, &st);
	assert_int_equal(st.writes_ok, 5);
	assert_int_equal(st.writes_unchanged, 1);
	close_store(f);
}

struct close_check {
	const char *dir;
	int n;
	int present;
	int calls;
};

static void on_closed_check(void *ud)
{
	struct close_check *c = ud;
	char name[32];

	c->calls++;
	for (int i = 0; i < c->n; i++) {
		snprintf(name, sizeof(name), "e%04d.der", i);
		c->present += file_exists(c->dir, name);
	}
}

/* SIGTERM persists: closing waits for everything queued, then reports once. */
static void test_close_persists(void **state)
{
	struct fixture *f = *state;
	struct close_check c = {.dir = f->dir, .n = 300};
	struct done_rec r = {0};
	char name[32], out[PATH_MAX];

	assert_int_equal(store_open(&f->loop, f->dir, &f->s), 0);
	for (int i = 0; i < c.n; i++) {
		snprintf(name, sizeof(name), "e%04d.der", i);
		assert_int_equal(store_put(f->s, name, (const uint8_t *)name, strlen(name)), 0);
	}
	path_in(out, sizeof(out), f->dir, "last.ocsp");
	assert_int_equal(
		store_write_file(f->s, out, (const uint8_t *)"L", 1, 0644, on_done_rec, &r), 0);
	store_close(f->s, on_closed_check, &c);
	assert_int_equal(c.calls, 0);
	uv_run(&f->loop, UV_RUN_DEFAULT);
	assert_int_equal(c.calls, 1);
	assert_int_equal(c.present, c.n);
	assert_int_equal(r.calls, 1);
	assert_int_equal(r.err, 0);
	assert_file(f->dir, "e0299.der", "e0299.der", 9);
	assert_int_equal(uv_loop_close(&f->loop), 0);
}

static void test_queue_bound(void **state)
{
	struct fixture *f = *state;
	char name[32];
	struct store_stats st;
	double t0 = now_s();

	assert_int_equal(store_open(&f->loop, f->dir, &f->s), 0);
	/* Removals of missing files: cheap to execute, and they count toward the bound. */
	for (int i = 0; i < 100000; i++) {
		snprintf(name, sizeof(name), "n%06d.der", i);
		assert_int_equal(store_del(f->s, name), 0);
	}
	store_get_stats(f->s, &st);
	assert_int_equal(st.writes_pending, 100000);
	assert_int_equal(store_del(f->s, "n100000.der"), -ENOBUFS);
	assert_int_equal(store_put(f->s, "other.der", (const uint8_t *)"o", 1), -ENOBUFS);
	/* Replacing a queued operation adds nothing, so it is still accepted. */
	assert_int_equal(store_put(f->s, "n099999.der", (const uint8_t *)"last", 4), 0);
	store_get_stats(f->s, &st);
	assert_int_equal(st.writes_pending, 100000);
	close_store(f);
	print_message("# 100000 queued operations drained in %.2f s\n", now_s() - t0);
	assert_file(f->dir, "n099999.der", "last", 4);
}

static void test_stats_counters(void **state)
{
	struct fixture *f = *state;
	struct store_stats st;
	char bad[PATH_MAX], file[PATH_MAX];

	path_in(file, sizeof(file), f->dir, "regular");
	write_plain(file, "x", 1);
	path_in(bad, sizeof(bad), file, "x.ocsp");
	assert_int_equal(store_open(&f->loop, f->dir, &f->s), 0);
	store_get_stats(f->s, &st);
	assert_int_equal(st.writes_ok + st.writes_failed + st.removes + st.writes_pending, 0);
	assert_int_equal(st.last_error, 0);

	for (int i = 0; i < 3; i++) {
		char name[32];
		snprintf(name, sizeof(name), "s%d.der", i);
		assert_int_equal(store_put(f->s, name, (const uint8_t *)"v", 1), 0);
	}
	assert_int_equal(store_write_file(f->s, bad, (const uint8_t *)"v", 1, 0644, NULL, NULL), 0);
	assert_int_equal(store_del(f->s, "gone.der"), 0);
	store_get_stats(f->s, &st);
	assert_int_equal(st.writes_pending, 5);
	assert_int_equal(st.writes_ok, 0);
	uv_run(&f->loop, UV_RUN_DEFAULT);
	store_get_stats(f->s, &st);
	assert_int_equal(st.writes_ok, 3);
	assert_int_equal(st.writes_failed, 1);
	assert_int_equal(st.removes, 1);
	assert_int_equal(st.writes_pending, 0);
	assert_int_equal(st.last_error, -ENOTDIR);
	close_store(f);
}

struct load_sum {
	size_t n, bytes;
	uint64_t sum;
};

static void on_sum(const char *name, const uint8_t *data, size_t len, void *ud)
{
	struct load_sum *s = ud;
	char expect[32];
	int i;

	assert_int_equal(len, 1500);
	memcpy(&i, data, sizeof(i));
	snprintf(expect, sizeof(expect), "%08x.der", (unsigned)i);
	/* Each file holds its own index: names and contents are not mixed up. */
	assert_string_equal(name, expect);
	assert_int_equal(data[len - 1], (uint8_t)i);
	s->n++;
	s->bytes += len;
	s->sum += (uint64_t)i;
}

static void test_load_20000(void **state)
{
	struct fixture *f = *state;
	enum {
		N = 20000,
		SIZE = 1500
	};
	uint8_t buf[SIZE];
	char p[PATH_MAX], name[32];
	struct load_sum sum = {0};
	size_t skipped = 1;
	uint64_t expect = 0;

	for (int i = 0; i < N; i++) {
		memset(buf, (uint8_t)i, sizeof(buf));
		memcpy(buf, &i, sizeof(i));
		snprintf(name, sizeof(name), "%08x.der", (unsigned)i);
		path_in(p, sizeof(p), f->dir, name);
		write_plain(p, buf, sizeof(buf));
		expect += (uint64_t)i;
	}
	assert_int_equal(store_open(&f->loop, f->dir, &f->s), 0);

	double t0 = now_s();
	int r = store_load(f->s, on_sum, &sum, &skipped);
	double t = now_s() - t0;
	print_message("# store_load: %d files of %d bytes in %.3f s\n", r, SIZE, t);
	assert_int_equal(r, N);
	assert_int_equal(skipped, 0);
	assert_int_equal(sum.n, N);
	assert_int_equal(sum.bytes, (size_t)N * SIZE);
	assert_true(sum.sum == expect);
	close_store(f);
}

static void test_put_throughput(void **state)
{
	struct fixture *f = *state;
	enum {
		N = 2000
	};
	char name[32];
	uint8_t buf[1500];
	struct store_stats st;

	memset(buf, 0x5a, sizeof(buf));
	assert_int_equal(store_open(&f->loop, f->dir, &f->s), 0);
	double t0 = now_s();
	for (int i = 0; i < N; i++) {
		snprintf(name, sizeof(name), "p%05d.der", i);
		assert_int_equal(store_put(f->s, name, buf, sizeof(buf)), 0);
	}
	uv_run(&f->loop, UV_RUN_DEFAULT);
	print_message("# %d durable puts of 1500 bytes in %.2f s\n", N, now_s() - t0);
	store_get_stats(f->s, &st);
	assert_int_equal(st.writes_ok, N);
	struct loaded l = {0};
	assert_int_equal(store_load(f->s, on_load, &l, NULL), N);
	loaded_done(&l);
	close_store(f);
}

/* ---- crash safety ---- */

/*
 * Child: rewrites one cache entry and one output file in a tight loop of atomic writes,
 * each write a different length, and says "started" on fd once both exist.
 */
static int crash_child(const char *dir, int fd)
{
	uv_loop_t loop;
	struct store *s;
	char out[PATH_MAX];
	uint8_t *buf = xmalloc(12 + 65536);
	uint32_t v = (uint32_t)getpid() * 1000003u;

	path_in(out, sizeof(out), dir, "out.ocsp");
	if (uv_loop_init(&loop) != 0 || store_open(&loop, dir, &s) != 0)
		return 1;
	for (uint32_t i = 0;; i++, v++) {
		size_t len = make_version(buf, v);
		if (store_put(s, "target.der", buf, len) != 0)
			return 1;
		if (store_write_file(s, out, buf, len, 0644, NULL, NULL) != 0)
			return 1;
		uv_run(&loop, UV_RUN_DEFAULT);
		if (i == 0 && write(fd, "s", 1) != 1)
			return 1;
	}
}

static void check_version_file(const char *dir, const char *name)
{
	char p[PATH_MAX];
	_cleanup_free_ uint8_t *buf = xmalloc(12 + 65536 + 16);

	path_in(p, sizeof(p), dir, name);
	ssize_t n = slurp(p, buf, 12 + 65536 + 16);
	/* Once a first version is complete, the file always holds a complete version. */
	assert_true(n > 0);
	assert_true(version_valid(buf, (size_t)n));
}

static void test_crash_safety(void **state)
{
	struct fixture *f = *state;
	unsigned seed = (unsigned)time(NULL) ^ (unsigned)getpid();
	size_t with_temporaries = 0;

	print_message("# crash seed %u\n", seed);
	srand(seed);
	for (int round = 0; round < 50; round++) {
		int pfd[2];
		char fdstr[16];

		assert_int_equal(pipe2(pfd, O_CLOEXEC), 0);
		/* Only the duplicate (no O_CLOEXEC) of the write end crosses exec. */
		int wfd = dup(pfd[1]);
		assert_true(wfd >= 0);
		snprintf(fdstr, sizeof(fdstr), "%d", wfd);
		char *const args[] = {"test_store", "--crash-child", f->dir, fdstr, NULL};
		pid_t pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			/* A fresh process: the libuv thread pool does not survive fork. */
			execv("/proc/self/exe", args);
			_exit(127);
		}
		close(wfd);
		close(pfd[1]);
		struct pollfd pf = {.fd = pfd[0], .events = POLLIN};
		assert_int_equal(poll(&pf, 1, 30000), 1);
		char c;
		assert_int_equal(read(pfd[0], &c, 1), 1);
		close(pfd[0]);

		struct timespec ts = {0, (long)(rand() % 20000) * 1000};
		nanosleep(&ts, NULL);
		assert_int_equal(kill(pid, SIGKILL), 0);
		int status;
		assert_int_equal(waitpid(pid, &status, 0), pid);
		assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);

		check_version_file(f->dir, "target.der");
		check_version_file(f->dir, "out.ocsp");
		with_temporaries += count_temporaries(f->dir) > 0;

		/* Opening sweeps the interrupted write's temporary; only the entry loads. */
		uv_loop_t loop;
		struct store *s;
		struct loaded l = {0};
		size_t skipped = 9;
		int closed = 0;
		assert_int_equal(uv_loop_init(&loop), 0);
		assert_int_equal(store_open(&loop, f->dir, &s), 0);
		assert_int_equal(count_temporaries(f->dir), 0);
		assert_int_equal(store_load(s, on_load, &l, &skipped), 1);
		assert_int_equal(skipped, 0);
		assert_string_equal(l.v[0].name, "target.der");
		assert_true(version_valid(l.v[0].data, l.v[0].len));
		loaded_done(&l);
		store_close(s, on_closed, &closed);
		uv_run(&loop, UV_RUN_DEFAULT);
		assert_int_equal(closed, 1);
		assert_int_equal(uv_loop_close(&loop), 0);
	}
	print_message("# 50 kills, %zu left a temporary behind (swept at open)\n",
		      with_temporaries);
	assert_int_equal(uv_loop_close(&f->loop), 0);
}

int main(int argc, char **argv)
{
	if (argc == 4 && strcmp(argv[1], "--crash-child") == 0)
		return crash_child(argv[2], atoi(argv[3]));

	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_put_load_roundtrip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_overwrite_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_del, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_names, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stale_temporaries, setup, teardown),
		cmocka_unit_test_setup_teardown(test_write_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_write_failures, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_load_skips, setup, teardown),
		cmocka_unit_test_setup_teardown(test_outputs_only, setup, teardown),
		cmocka_unit_test_setup_teardown(test_close_persists, setup, teardown),
		cmocka_unit_test_setup_teardown(test_queue_bound, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stats_counters, setup, teardown),
		cmocka_unit_test_setup_teardown(test_load_20000, setup, teardown),
		cmocka_unit_test_setup_teardown(test_put_throughput, setup, teardown),
		cmocka_unit_test_setup_teardown(test_crash_safety, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
