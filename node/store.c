/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Disk persistence. The loop thread owns all bookkeeping (per-path slots, the ready queue, the
 * counters); the thread pool only performs system calls on operations handed to it in a batch
 * and writes back each operation's result. A batch of cache-directory operations shares one
 * fsync of the directory: persisting many entries at once (start-up fetches, shutdown) costs one
 * file fsync each, not two.
 */
/* Before uv.h: its <sys/param.h> then keeps our MIN/MAX without a redefinition warning. */
#include "proto/macro.h"
#include "node/store.h"

#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "proto/mem.h"

#define STORE_NAME_MAX	      200
#define STORE_ENTRY_MAX_BYTES (1024 * 1024)
#define STORE_PENDING_MAX     100000
/* Batches in the thread pool at once: leaves threads for other users of the pool (DNS). */
#define STORE_BATCHES_INFLIGHT 2
#define STORE_BATCH_MAX	       64
#define STORE_DIR_MODE	       0700
#define STORE_ENTRY_MODE       0600
#define STORE_TMP_MARKER       ".tmp."
/* Base names longer than this are shortened in temporary names so they fit in NAME_MAX. */
#define STORE_TMP_BASE_MAX 200
#define STORE_TMP_TRIES	   16

enum store_op_kind {
	STORE_OP_WRITE,
	STORE_OP_REMOVE,
};

struct store_waiter {
	void (*on_done)(int err, void *ud);
	void *ud;
};

struct store_op {
	enum store_op_kind kind;
	uint8_t *data;
	size_t len;
	unsigned mode;
	int result;
	/* Callers to notify: more than one when newer writes superseded older queued ones. */
	struct store_waiter *waiters;
	size_t n_waiters, cap_waiters;
};

/*
 * One per path with work queued or running. `in_dir` slots are cache entries (key = file name
 * inside the cache directory); the others are output files (key = absolute path).
 */
struct store_slot {
	struct store_slot *hash_next;
	struct store_slot *ready_next;
	uint32_t hash;
	bool in_dir;
	struct store_op *cur;  /* in the thread pool */
	struct store_op *next; /* queued, not started; a newer submission replaces it */
	char key[];
};

struct store_batch {
	uv_work_t req;
	struct store *s;
	size_t n;
	struct store_slot *slots[STORE_BATCH_MAX];
};

struct store {
	uv_loop_t *loop;
	int dirfd; /* -1 for an outputs-only store */
	struct store_slot **buckets;
	size_t n_buckets, n_slots;
	struct store_slot *ready_head, *ready_tail;
	unsigned batches_inflight;
	struct store_stats stats;
	bool closing, finishing;
	void (*on_closed)(void *ud);
	void *closed_ud;
	/* Initialised only to be closed: its close callback frees the store, one iteration later.
	 */
	uv_idle_t closer;
};

static uint64_t store_tmp_seq;

static void store_tmp_seq_seed(void)
{
	uint64_t seed;

	if (__atomic_load_n(&store_tmp_seq, __ATOMIC_RELAXED))
		return;
	/*
	 * A random start: temporaries of a crashed run may linger in output directories (only the
	 * cache directory is swept), and a restarted process may get the same pid (pid 1 in a
	 * container), so pid + counter alone could collide with them.
	 */
	if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) != (ssize_t)sizeof(seed))
		seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
	seed |= 1;
	__atomic_store_n(&store_tmp_seq, seed, __ATOMIC_RELAXED);
}

static bool store_name_ok(const char *name)
{
	size_t n = strnlen(name, STORE_NAME_MAX + 1);

	if (n == 0 || n > STORE_NAME_MAX || name[0] == '.')
		return false;
	if (n < 5 || memcmp(name + n - 4, ".der", 4) != 0)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return false;
	}
	return true;
}

static bool store_is_tmp_name(const char *name)
{
	return name[0] == '.' && strstr(name, STORE_TMP_MARKER);
}

static uint32_t store_hash(const char *key, bool in_dir)
{
	uint32_t h = in_dir ? 2166136261u : 2166136261u ^ 0x5bd1e995u;

	for (const unsigned char *p = (const unsigned char *)key; *p; p++) {
		h ^= *p;
		h *= 16777619u;
	}
	return h;
}

static struct store_slot *store_slot_find(struct store *s, const char *key, bool in_dir, uint32_t h)
{
	for (struct store_slot *e = s->buckets[h & (s->n_buckets - 1)]; e; e = e->hash_next)
		if (e->hash == h && e->in_dir == in_dir && strcmp(e->key, key) == 0)
			return e;
	return NULL;
}

static void store_rehash(struct store *s, size_t n_buckets)
{
	struct store_slot **nb = xcalloc(n_buckets, sizeof(*nb));

	for (size_t i = 0; i < s->n_buckets; i++) {
		struct store_slot *e = s->buckets[i];
		while (e) {
			struct store_slot *next = e->hash_next;
			size_t b = e->hash & (n_buckets - 1);
			e->hash_next = nb[b];
			nb[b] = e;
			e = next;
		}
	}
	free(s->buckets);
	s->buckets = nb;
	s->n_buckets = n_buckets;
}

static struct store_slot *store_slot_add(struct store *s, const char *key, bool in_dir, uint32_t h)
{
	size_t klen = strlen(key);
	struct store_slot *e = xcalloc(1, sizeof(*e) + klen + 1);

	memcpy(e->key, key, klen + 1);
	e->hash = h;
	e->in_dir = in_dir;
	if (s->n_slots + 1 > s->n_buckets)
		store_rehash(s, s->n_buckets * 2);
	size_t b = h & (s->n_buckets - 1);
	e->hash_next = s->buckets[b];
	s->buckets[b] = e;
	s->n_slots++;
	return e;
}

static void store_slot_remove(struct store *s, struct store_slot *e)
{
	struct store_slot **pp = &s->buckets[e->hash & (s->n_buckets - 1)];

	while (*pp != e)
		pp = &(*pp)->hash_next;
	*pp = e->hash_next;
	s->n_slots--;
	free(e);
}

static void store_ready_push(struct store *s, struct store_slot *e)
{
	e->ready_next = NULL;
	if (s->ready_tail)
		s->ready_tail->ready_next = e;
	else
		s->ready_head = e;
	s->ready_tail = e;
}

static struct store_slot *store_ready_pop(struct store *s)
{
	struct store_slot *e = s->ready_head;

	if (!e)
		return NULL;
	s->ready_head = e->ready_next;
	if (!s->ready_head)
		s->ready_tail = NULL;
	e->ready_next = NULL;
	return e;
}

static void store_op_free(struct store_op *op)
{
	if (!op)
		return;
	free(op->data);
	free(op->waiters);
	free(op);
}

static void store_op_add_waiter(struct store_op *op, void (*on_done)(int, void *), void *ud)
{
	op->waiters = xgrow(op->waiters, &op->cap_waiters, op->n_waiters + 1, sizeof(*op->waiters));
	op->waiters[op->n_waiters++] = (struct store_waiter){on_done, ud};
}

/* ---- worker thread: system calls only, no shared state touched besides op->result ---- */

static int store_write_all(int fd, const uint8_t *p, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EIO;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Writes `op` to dfd/base through a temporary file; the caller fsyncs the directory. */
static int store_do_write(int dfd, const char *base, const struct store_op *op)
{
	char tmp[NAME_MAX + 1];
	int fd = -1, r;

	for (int tries = 0;; tries++) {
		uint64_t seq = __atomic_fetch_add(&store_tmp_seq, 1, __ATOMIC_RELAXED);
		snprintf(tmp, sizeof(tmp), ".%.*s" STORE_TMP_MARKER "%d.%016" PRIx64,
			 STORE_TMP_BASE_MAX, base, (int)getpid(), seq);
		fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
			    op->mode);
		if (fd >= 0)
			break;
		if (errno != EEXIST || tries + 1 >= STORE_TMP_TRIES)
			return -errno;
	}

	/* The umask must not narrow an output file's mode: the web server has to read it. */
	if (fchmod(fd, op->mode) < 0) {
		r = -errno;
		goto fail;
	}
	r = store_write_all(fd, op->data, op->len);
	if (r < 0)
		goto fail;
	if (fsync(fd) < 0) {
		r = -errno;
		goto fail;
	}
	r = close(fd);
	fd = -1;
	if (r < 0 && errno != EINTR) {
		r = -errno;
		goto fail;
	}
	if (renameat(dfd, tmp, dfd, base) < 0) {
		r = -errno;
		goto fail;
	}
	return 0;

fail:
	if (fd >= 0)
		close(fd);
	unlinkat(dfd, tmp, 0);
	return r;
}

static int store_do_op(int dfd, const char *base, const struct store_op *op)
{
	if (op->kind == STORE_OP_WRITE)
		return store_do_write(dfd, base, op);
	if (unlinkat(dfd, base, 0) < 0 && errno != ENOENT)
		return -errno;
	return 0;
}

static int store_fsync_dir(int dfd)
{
	/* Some file systems cannot sync a directory (EINVAL); the rename is all they offer. */
	if (fsync(dfd) < 0 && errno != EINVAL)
		return -errno;
	return 0;
}

/* mkdir -p with mode 0755 (web servers read output files as another user). */
static int store_mkdirs(const char *dir)
{
	_cleanup_free_ char *p = xstrdup(dir);
	for (char *c = p + 1;; c++) {
		if (*c != '/' && *c != 0)
			continue;
		char keep = *c;
		*c = 0;
		if (mkdir(p, 0755) < 0 && errno != EEXIST)
			return -errno;
		*c = keep;
		if (!keep)
			return 0;
	}
}

/* True when dfd/base already is a regular file with exactly these bytes and this mode. */
static bool store_same_file(int dfd, const char *base, const struct store_op *op)
{
	struct stat st;
	uint8_t chunk[4096];
	size_t off = 0;
	bool same = false;
	int fd = openat(dfd, base, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);

	if (fd < 0)
		return false;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (size_t)st.st_size != op->len ||
	    (st.st_mode & 07777) != op->mode)
		goto out;
	for (;;) {
		ssize_t n = read(fd, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			goto out;
		if (n == 0)
			break;
		if (off + (size_t)n > op->len || memcmp(chunk, op->data + off, (size_t)n) != 0)
			goto out;
		off += (size_t)n;
	}
	same = off == op->len;
out:
	close(fd);
	return same;
}

static int store_do_output(const char *path, const struct store_op *op)
{
	const char *slash = strrchr(path, '/');
	_cleanup_free_ char *parent = NULL;
	int dfd, r;

	assert(slash);
	parent = slash == path ? xstrdup("/") : xstrndup(path, (size_t)(slash - path));
	dfd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0 && errno == ENOENT) {
		/* A directory only for our outputs (e.g. nginx's ssl_stapling_file targets) is
		 * made as the cache directory is; the next write would otherwise fail too. */
		r = store_mkdirs(parent);
		if (r < 0)
			return r;
		dfd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	}
	if (dfd < 0)
		return -errno;
	/* Consumers react to a changed file (a reload): rewriting the same bytes is no change. */
	if (op->kind == STORE_OP_WRITE && store_same_file(dfd, slash + 1, op)) {
		close(dfd);
		return 1;
	}
	r = store_do_op(dfd, slash + 1, op);
	if (r == 0)
		r = store_fsync_dir(dfd);
	close(dfd);
	return r;
}

static void store_batch_work(uv_work_t *req)
{
	struct store_batch *b = req->data;
	bool dir_touched = false;

	for (size_t i = 0; i < b->n; i++) {
		struct store_slot *e = b->slots[i];
		if (e->in_dir) {
			e->cur->result = store_do_op(b->s->dirfd, e->key, e->cur);
			dir_touched = true;
		} else {
			e->cur->result = store_do_output(e->key, e->cur);
		}
	}
	if (!dir_touched)
		return;
	int r = store_fsync_dir(b->s->dirfd);
	if (r == 0)
		return;
	for (size_t i = 0; i < b->n; i++)
		if (b->slots[i]->in_dir && b->slots[i]->cur->result == 0)
			b->slots[i]->cur->result = r;
}

/* ---- loop thread ---- */

static void store_batch_done(uv_work_t *req, int status);

static bool store_is_idle(const struct store *s)
{
	return s->stats.writes_pending == 0 && s->batches_inflight == 0;
}

static void store_dispatch(struct store *s)
{
	while (s->batches_inflight < STORE_BATCHES_INFLIGHT && s->ready_head) {
		struct store_batch *b = xcalloc(1, sizeof(*b));
		b->s = s;
		b->req.data = b;
		while (b->n < STORE_BATCH_MAX && s->ready_head) {
			struct store_slot *e = store_ready_pop(s);
			e->cur = e->next;
			e->next = NULL;
			b->slots[b->n++] = e;
		}
		int r = uv_queue_work(s->loop, &b->req, store_batch_work, store_batch_done);
		/* Fails only for a NULL work callback. */
		assert(r == 0);
		(void)r;
		s->batches_inflight++;
	}
}

static void store_on_closer_closed(uv_handle_t *h)
{
	struct store *s = h->data;
	void (*on_closed)(void *) = s->on_closed;
	void *ud = s->closed_ud;

	assert(s->n_slots == 0);
	if (s->dirfd >= 0)
		close(s->dirfd);
	free(s->buckets);
	free(s);
	if (on_closed)
		on_closed(ud);
}

static void store_maybe_finish(struct store *s)
{
	if (!s->closing || s->finishing || !store_is_idle(s))
		return;
	s->finishing = true;
	/* Freed in the close callback, a later iteration: callers up the stack may still use s. */
	uv_idle_init(s->loop, &s->closer);
	s->closer.data = s;
	uv_close((uv_handle_t *)&s->closer, store_on_closer_closed);
}

static void store_batch_done(uv_work_t *req, int status)
{
	struct store_batch *b = req->data;
	struct store *s = b->s;
	struct store_op *done[STORE_BATCH_MAX];
	size_t n = b->n;

	/* Work queued with uv_queue_work is never cancelled by us, so status is always 0. */
	assert(status == 0);
	(void)status;
	for (size_t i = 0; i < n; i++) {
		struct store_slot *e = b->slots[i];
		struct store_op *op = e->cur;
		if (op->result < 0) {
			s->stats.writes_failed++;
			s->stats.last_error = op->result;
		} else if (op->result > 0) {
			s->stats.writes_unchanged++;
		} else if (op->kind == STORE_OP_WRITE) {
			s->stats.writes_ok++;
		} else {
			s->stats.removes++;
		}
		s->stats.writes_pending--;
		done[i] = op;
		e->cur = NULL;
		if (e->next)
			store_ready_push(s, e);
		else
			store_slot_remove(s, e);
	}
	s->batches_inflight--;
	free(b);
	store_dispatch(s);

	/* Bookkeeping is consistent before callbacks run: they may submit writes or close. */
	for (size_t i = 0; i < n; i++) {
		for (size_t w = 0; w < done[i]->n_waiters; w++)
			done[i]->waiters[w].on_done(done[i]->result, done[i]->waiters[w].ud);
		store_op_free(done[i]);
	}
	store_maybe_finish(s);
}

static int store_submit(struct store *s, const char *key, bool in_dir, struct store_op *op)
{
	uint32_t h = store_hash(key, in_dir);
	struct store_slot *e = store_slot_find(s, key, in_dir, h);

	if (e && e->next) {
		/* Superseded before it started: its callers get the outcome of the newer write. */
		struct store_op *old = e->next;
		if (old->n_waiters) {
			struct store_waiter *w = op->waiters;
			size_t nw = op->n_waiters;
			op->waiters = old->waiters;
			op->n_waiters = old->n_waiters;
			op->cap_waiters = old->cap_waiters;
			old->waiters = NULL;
			for (size_t i = 0; i < nw; i++)
				store_op_add_waiter(op, w[i].on_done, w[i].ud);
			free(w);
		}
		store_op_free(old);
		e->next = op;
		return 0;
	}
	if (s->stats.writes_pending >= STORE_PENDING_MAX) {
		store_op_free(op);
		return -ENOBUFS;
	}
	if (!e)
		e = store_slot_add(s, key, in_dir, h);
	e->next = op;
	s->stats.writes_pending++;
	if (!e->cur)
		store_ready_push(s, e);
	store_dispatch(s);
	return 0;
}

static struct store_op *store_op_new(enum store_op_kind kind, const uint8_t *data, size_t len,
				     unsigned mode)
{
	struct store_op *op = xcalloc(1, sizeof(*op));

	op->kind = kind;
	op->mode = mode;
	if (kind == STORE_OP_WRITE) {
		op->data = xmemdup(len ? data : (const uint8_t *)"", len);
		op->len = len;
	}
	return op;
}

static struct store *store_alloc(uv_loop_t *loop, int dirfd)
{
	struct store *s = xcalloc(1, sizeof(*s));

	s->loop = loop;
	s->dirfd = dirfd;
	s->n_buckets = 64;
	s->buckets = xcalloc(s->n_buckets, sizeof(*s->buckets));
	store_tmp_seq_seed();
	return s;
}

static int store_mkdir_p(const char *dir)
{
	_cleanup_free_ char *p = xstrdup(dir);
	size_t n = strlen(p);

	/* Create each missing ancestor, then the directory itself. */
	for (size_t i = 1; i <= n; i++) {
		if (p[i] != '/' && p[i] != '\0')
			continue;
		if (p[i - 1] == '/')
			continue;
		char c = p[i];
		p[i] = '\0';
		if (mkdir(p, STORE_DIR_MODE) < 0 && errno != EEXIST)
			return -errno;
		p[i] = c;
	}
	return 0;
}

static int store_sweep_tmp(int dirfd)
{
	int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d;
	struct dirent *de;

	if (fd < 0)
		return -errno;
	d = fdopendir(fd);
	if (!d) {
		int r = -errno;
		close(fd);
		return r;
	}
	while ((errno = 0, de = readdir(d)))
		if (store_is_tmp_name(de->d_name))
			unlinkat(dirfd, de->d_name, 0);
	int r = errno ? -errno : 0;
	closedir(d);
	return r;
}

int store_open(uv_loop_t *loop, const char *dir, struct store **ret)
{
	int dirfd, r;

	if (!dir || !*dir)
		return -EINVAL;
	r = store_mkdir_p(dir);
	if (r < 0)
		return r;
	dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0)
		return -errno;
	r = store_sweep_tmp(dirfd);
	if (r < 0) {
		close(dirfd);
		return r;
	}
	*ret = store_alloc(loop, dirfd);
	return 0;
}

int store_open_outputs_only(uv_loop_t *loop, struct store **ret)
{
	*ret = store_alloc(loop, -1);
	return 0;
}

/* Reads one entry into buf; returns its length or -errno (-EMSGSIZE too large or not regular).
 * ret_mtime (may be NULL) receives the file's modification time. */
static ssize_t store_read_entry(int dirfd, const char *name, unsigned char d_type, uint8_t *buf,
				int64_t *ret_mtime)
{
	struct stat st;
	size_t len = 0;
	int fd;

	if (d_type != DT_REG && d_type != DT_UNKNOWN)
		return -EMSGSIZE;
	/* O_NONBLOCK: a FIFO planted in the directory must not hang start-up. */
	fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > STORE_ENTRY_MAX_BYTES) {
		close(fd);
		return -EMSGSIZE;
	}
	/*
	 * Entries are replaced by rename, never rewritten in place, so the size from fstat holds;
	 * stopping there saves the read that would only confirm EOF (start-up reads 100 k files).
	 */
	while (len < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + len, (size_t)st.st_size - len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			int r = -errno;
			close(fd);
			return r;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	if (ret_mtime)
		*ret_mtime = (int64_t)st.st_mtim.tv_sec;
	return (ssize_t)len;
}

int store_read(struct store *s, const char *name, struct buf *out, int64_t *ret_mtime)
{
	if (s->dirfd < 0 || !name || !store_name_ok(name))
		return -EINVAL;
	buf_reserve(out, STORE_ENTRY_MAX_BYTES);
	int64_t mtime = 0;
	ssize_t len = store_read_entry(s->dirfd, name, DT_UNKNOWN, out->data + out->len, &mtime);
	if (len < 0)
		return (int)len;
	out->len += (size_t)len;
	out->data[out->len] = 0;
	if (ret_mtime)
		*ret_mtime = mtime;
	return 0;
}

int store_load(struct store *s,
	       void (*fn)(const char *name, const uint8_t *data, size_t len, void *ud), void *ud,
	       size_t *ret_skipped)
{
	_cleanup_free_ uint8_t *buf = NULL;
	size_t skipped = 0;
	int loaded = 0, fd, r;
	struct dirent *de;
	DIR *d;

	if (s->dirfd < 0)
		return -EINVAL;
	fd = openat(s->dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	d = fdopendir(fd);
	if (!d) {
		r = -errno;
		close(fd);
		return r;
	}
	buf = xmalloc(STORE_ENTRY_MAX_BYTES);
	while ((errno = 0, de = readdir(d))) {
		const char *name = de->d_name;
		if (name[0] == '.')
			continue;
		size_t n = strlen(name);
		if (n < 4 || memcmp(name + n - 4, ".der", 4) != 0)
			continue;
		if (!store_name_ok(name)) {
			skipped++;
			continue;
		}
		ssize_t len = store_read_entry(s->dirfd, name, de->d_type, buf, NULL);
		if (len < 0) {
			skipped++;
			continue;
		}
		fn(name, buf, (size_t)len, ud);
		loaded++;
	}
	r = errno ? -errno : 0;
	closedir(d);
	if (r < 0)
		return r;
	if (ret_skipped)
		*ret_skipped = skipped;
	return loaded;
}

int store_put(struct store *s, const char *name, const uint8_t *data, size_t len)
{
	if (s->closing)
		return -ECANCELED;
	if (s->dirfd < 0 || !name || !store_name_ok(name) || (len && !data))
		return -EINVAL;
	/* store_load would skip it: writing it would only waste the disk. */
	if (len > STORE_ENTRY_MAX_BYTES)
		return -EMSGSIZE;
	return store_submit(s, name, true,
			    store_op_new(STORE_OP_WRITE, data, len, STORE_ENTRY_MODE));
}

int store_del(struct store *s, const char *name)
{
	if (s->closing)
		return -ECANCELED;
	if (s->dirfd < 0 || !name || !store_name_ok(name))
		return -EINVAL;
	return store_submit(s, name, true, store_op_new(STORE_OP_REMOVE, NULL, 0, 0));
}

static bool store_path_ok(const char *path)
{
	const char *base;
	size_t n;

	if (!path || path[0] != '/')
		return false;
	n = strnlen(path, PATH_MAX);
	if (n >= PATH_MAX)
		return false;
	base = strrchr(path, '/') + 1;
	return *base && strcmp(base, ".") != 0 && strcmp(base, "..") != 0 &&
	       strlen(base) <= NAME_MAX;
}

int store_write_file(struct store *s, const char *path, const uint8_t *data, size_t len,
		     unsigned mode, void (*on_done)(int err, void *ud), void *ud)
{
	struct store_op *op;

	if (s->closing)
		return -ECANCELED;
	if (!store_path_ok(path) || (len && !data) || (mode & ~07777u))
		return -EINVAL;
	op = store_op_new(STORE_OP_WRITE, data, len, mode);
	if (on_done)
		store_op_add_waiter(op, on_done, ud);
	return store_submit(s, path, false, op);
}

void store_get_stats(const struct store *s, struct store_stats *ret)
{
	*ret = s->stats;
}

void store_close(struct store *s, void (*on_closed)(void *ud), void *ud)
{
	assert(!s->closing);
	s->closing = true;
	s->on_closed = on_closed;
	s->closed_ud = ud;
	store_maybe_finish(s);
}
