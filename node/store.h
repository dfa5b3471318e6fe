/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Disk persistence: the cache directory (one DER OCSPResponse per file) and output files for
 * consumers (<cert>.ocsp for HAProxy, ssl_stapling_file targets for nginx).
 *
 * Every write is atomic and durable: write to a temporary file in the same directory, fsync it,
 * rename over the target, fsync the directory. A crash (kill -9, power loss) at any moment leaves
 * either the old or the new file, never a torn one; stale temporaries are removed at open.
 * Writes run on the libuv thread pool so the loop never blocks on the disk; writes to the same
 * path are applied in submission order, and a newer pending write to a path supersedes an older
 * one that has not started. A failed write (disk full, read-only) is reported and counted; the
 * node keeps serving from memory.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "proto/buf.h"

struct store;

struct store_stats {
	uint64_t writes_ok;
	uint64_t writes_unchanged; /* output files that already held the bytes: not rewritten */
	uint64_t writes_failed;
	uint64_t removes;
	uint64_t writes_pending;
	int last_error; /* -errno of the last failure, 0 if none */
};

/*
 * Opens (creating with mode 0700 if missing, parents too) the cache directory `dir` and removes
 * leftover temporary files from an interrupted write.
 * Errors: -errno from mkdir/open (e.g. -EACCES, -ENOTDIR).
 */
int store_open(uv_loop_t *loop, const char *dir, struct store **ret);

/*
 * Reads every entry file (*.der) of the directory synchronously (start-up only, before the node
 * serves), calling fn with its name and bytes (borrowed for the call). Files over 1 MiB,
 * unreadable files and non-regular files are skipped and counted in *ret_skipped.
 * Returns the number of files passed to fn, or -errno if the directory cannot be read.
 */
int store_load(struct store *s,
	       void (*fn)(const char *name, const uint8_t *data, size_t len, void *ud), void *ud,
	       size_t *ret_skipped);

/*
 * Reads one entry file of the directory (same rules as store_load: a valid name, a regular file,
 * no symlink, at most 1 MiB), appending its bytes to `out`; *ret_mtime (may be NULL) receives its
 * modification time. Synchronous: for start-up and on-demand loading.
 * Errors: -EINVAL bad name or outputs-only store; -EMSGSIZE not regular or too large; -errno.
 */
int store_read(struct store *s, const char *name, struct buf *out, int64_t *ret_mtime);

/*
 * Queues an atomic write of `data` (copied) to <dir>/<name>. `name` must be a plain file name
 * ([A-Za-z0-9._-], no '/', no leading '.', at most 200 bytes), ending in ".der". A newer put or
 * del of the same name replaces one still queued. Errors: -EINVAL bad name, or an outputs-only
 * store; -EMSGSIZE data over 1 MiB (store_load would skip it); -ENOBUFS 100,000 operations
 * already pending; -ECANCELED closing.
 */
int store_put(struct store *s, const char *name, const uint8_t *data, size_t len);
/* Queues removal of <dir>/<name> (missing is fine). Errors as store_put (but -EMSGSIZE). */
int store_del(struct store *s, const char *name);

/*
 * Queues an atomic write of `data` to an arbitrary absolute path (an output file); `mode` is the
 * file mode (e.g. 0644); missing parent directories are made (mode 0755). A regular file at
 * `path` that already holds exactly these bytes with
 * this mode is left alone (its consumers see no change). on_done (may be NULL) is called on the
 * loop once the write has completed or failed, with 0 (written), 1 (already identical, not
 * rewritten) or -errno (a write replaced by a newer one to the same path reports the newer
 * one's result). Errors: -EINVAL relative path, a path ending in '/', '.' or '..', or
 * mode bits outside 07777; -ENOBUFS too many pending; -ECANCELED closing. The temporary file
 * is made next to `path`; a symlink at `path` is replaced, not followed.
 */
int store_write_file(struct store *s, const char *path, const uint8_t *data, size_t len,
		     unsigned mode, void (*on_done)(int err, void *ud), void *ud);

void store_get_stats(const struct store *s, struct store_stats *ret);

/*
 * Waits for queued writes to finish (they are not cancelled: SIGTERM persists), then frees the
 * store and calls on_closed once. No calls may be made after store_close.
 */
void store_close(struct store *s, void (*on_closed)(void *ud), void *ud);

/*
 * A store with no directory: only store_write_file works (output files for a memory-only node).
 */
int store_open_outputs_only(uv_loop_t *loop, struct store **ret);
