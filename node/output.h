/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Outputs: handing each new validated response to the web servers that staple it
 * (docs/integrations/). The config's `outputs:` items say, per certificate file or directory,
 * which files to write (HAProxy's <crt>.ocsp and <crt>.issuer, nginx's ssl_stapling_file), which
 * HAProxy admin sockets to push the response to (`set ssl ocsp-response`), and which command to
 * run when a written file changed (an nginx reload), at most once per interval.
 *
 * Glossary: a "binding" ties one entry to one output for one certificate file (the file names
 * are expanded when the inventory finds the certificate); an output's "target" is its runtime
 * state (command gate, sockets and their push queues). The pure parts (matching, templates, the
 * command gate, HAProxy's CLI) live in proto/outrule.h and proto/haproxy_cli.h.
 *
 * Only the SHA-1 CertID slot's response is handed out: it is what web servers ask for and staple.
 * Files are written atomically and only when their bytes change (node/store.h); a command runs
 * only after a file of its output really changed. Pushes use one short-lived connection per
 * command, one at a time per socket, so a slow or dead socket delays nobody else; a failed push
 * is retried with backoff a few times, then given up (the .ocsp file carries the response to the
 * next HAProxy start or reload).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

struct node;
struct entry_info;
struct pki_cert;
struct buf;

struct out_binding {
	char *file;	   /* response file to write (absolute), or NULL */
	char *issuer_file; /* issuer PEM file to write (absolute), or NULL */
	int output;	   /* index in cfg.outputs, or -1: a certificate item's own ocsp_file */
};

struct out_bindings {
	struct out_binding *v;
	size_t n;
};

void out_bindings_clear(struct out_bindings *b);
/* Adds every binding of src that dst lacks (copies). */
void out_bindings_merge(struct out_bindings *dst, const struct out_bindings *src);
bool out_bindings_equal(const struct out_bindings *a, const struct out_bindings *b);

/*
 * Adds to b the bindings the config gives a certificate found in the file `path`: every output
 * whose match takes the path, `write_ocsp_files` ({path}.ocsp), and `own_ocsp_file` (the
 * certificate item's ocsp_file, may be NULL). issuer_in_file: the file holds the issuer, so no
 * issuer file is written for it. A template that does not expand for this path is logged.
 */
void output_bind(struct node *n, struct out_bindings *b, const char *path,
		 const struct pki_cert *cert, bool issuer_in_file, const char *own_ocsp_file);

/* Sets up n->outputs from n->cfg (before the inventory's first scan). */
void output_start(struct node *n);
/* After a reload whose `outputs:` changed: the old targets are dropped (queued pushes with
 * them, running commands left to finish), new ones built; the caller republishes. */
void output_restart(struct node *n);
/* Shutdown: timers and sockets closed, queued pushes dropped. */
void output_close(struct node *n);

/*
 * Hands the entry's SHA-1 response to its bindings: files written (if changed), issuer files,
 * and, if `push`, a push queued on every admin socket of its outputs (replacing one still queued
 * for the entry). No-op without a response or bindings.
 */
void output_publish(struct node *n, struct entry_info *ei, bool push);
/* Publishes every entry (after the outputs changed). */
void output_publish_all(struct node *n);
/* The entry is going away: pushes queued for it are dropped. */
void output_forget(struct node *n, struct entry_info *ei);

/* Prometheus lines (stapled_output_*) and the /admin/outputs document. */
void output_metrics(struct node *n, struct buf *out);
void output_admin_json(struct node *n, struct buf *out);
