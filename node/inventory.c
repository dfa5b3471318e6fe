/* SPDX-License-Identifier: Apache-2.0 */
#include "node/inventory.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "node/fetch.h"
#include "node/log.h"
#include "node/node.h"
#include "node/store.h"
#include "proto/hmap.h"
#include "proto/mem.h"
#include "proto/pki.h"

#define MAX_CERT_FILE_BYTES (1024 * 1024)
#define RESCAN_DEBOUNCE_MS  250

/* A file read once and kept while its identity (dev, inode, size, mtime) does not change. */
struct inv_file {
	char *path;
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime;
	struct pki_cert **certs;
	size_t n_certs;
	bool seen; /* touched by the current scan */
	struct inv_file *next;
};

/* A leaf certificate wanted by the current scan, keyed by fingerprint. */
struct inv_leaf {
	struct pki_cert *cert;
	struct pki_cert *chain_issuer; /* issuer found next to it (chain or config), if any */
	struct entry_info *ei;	       /* NULL until its issuer is known */
	struct str_list upstreams;     /* per-certificate override */
	struct out_bindings outs;
	bool seen;
	bool skipped_logged;
	bool issuer_fetching;
	bool issuer_failed;
	struct inv_leaf *next;
};

struct inv_watch {
	uv_fs_event_t ev;
	struct inventory *inv;
	char *dir;
	struct inv_watch *next;
};

struct inv_issuer_fetch {
	struct inventory *inv;
	struct fetch *f;
	char *url;
	struct inv_issuer_fetch *next;
};

struct inventory {
	struct node *n;
	struct inv_file *files;
	struct inv_leaf *leaves;
	struct hmap files_by_path; /* struct inv_file by path */
	struct hmap leaves_by_fp;  /* struct inv_leaf by certificate fingerprint */
	struct pki_cert **pool;	   /* issuer candidates */
	size_t n_pool, cap_pool;
	struct inv_watch *watches;
	struct inv_issuer_fetch *issuer_fetches;
	uv_timer_t debounce;
	int open_handles;
	bool closing;
	void (*on_closed)(void *ud);
	void *on_closed_ud;
};

static void watches_update(struct inventory *inv);

static const void *file_key(const void *v, size_t *len)
{
	const struct inv_file *f = v;
	*len = strlen(f->path);
	return f->path;
}

static const void *leaf_key(const void *v, size_t *len)
{
	const struct inv_leaf *l = v;
	*len = 32;
	return pki_cert_fingerprint(l->cert);
}

/* ---- issuer pool ---- */

static struct pki_cert *pool_find(struct inventory *inv, const struct pki_cert *c)
{
	for (size_t i = 0; i < inv->n_pool; i++)
		if (memcmp(pki_cert_fingerprint(inv->pool[i]), pki_cert_fingerprint(c), 32) == 0)
			return inv->pool[i];
	return NULL;
}

static bool pool_has(struct inventory *inv, struct pki_cert *c)
{
	return pool_find(inv, c) != NULL;
}

/* ---- files ---- */

static void inv_file_free(struct inv_file *f)
{
	pki_certs_free(f->certs, f->n_certs);
	free(f->path);
	free(f);
}

/* Returns the certificates of a file (borrowed from the file cache), reading it if it changed.
 * Returns -errno if it cannot be read, -EBADMSG if it holds no certificate. */
static int inv_read(struct inventory *inv, const char *path, struct inv_file **ret)
{
	struct stat st;
	if (stat(path, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return -EISDIR;
	struct inv_file *f = hmap_get(&inv->files_by_path, path, strlen(path));
	if (f && f->dev == st.st_dev && f->ino == st.st_ino && f->size == st.st_size &&
	    f->mtime.tv_sec == st.st_mtim.tv_sec && f->mtime.tv_nsec == st.st_mtim.tv_nsec) {
		f->seen = true;
		*ret = f;
		return f->n_certs ? 0 : -EBADMSG;
	}
	if (st.st_size > MAX_CERT_FILE_BYTES)
		return -EFBIG;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	struct buf b = BUF_INIT;
	for (;;) {
		buf_reserve(&b, 65536);
		ssize_t r = read(fd, b.data + b.len, b.cap - b.len - 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		b.len += (size_t)r;
		if (b.len > MAX_CERT_FILE_BYTES)
			break;
	}
	close(fd);
	if (!f) {
		f = xcalloc(1, sizeof(*f));
		f->path = xstrdup(path);
		f->next = inv->files;
		inv->files = f;
		hmap_put(&inv->files_by_path, f);
	} else {
		pki_certs_free(f->certs, f->n_certs);
		f->certs = NULL;
		f->n_certs = 0;
	}
	f->dev = st.st_dev;
	f->ino = st.st_ino;
	f->size = st.st_size;
	f->mtime = st.st_mtim;
	f->seen = true;
	int r = b.len <= MAX_CERT_FILE_BYTES
			? pki_certs_parse(b.data, b.len, &f->certs, &f->n_certs)
			: -EFBIG;
	buf_done(&b);
	if (r < 0) {
		f->certs = NULL;
		f->n_certs = 0;
	}
	/* The same CA certificate sits in every chain file: share the pool's copy. */
	for (size_t i = 0; i < f->n_certs; i++) {
		if (!pki_cert_is_ca(f->certs[i]))
			continue;
		struct pki_cert *pooled = pool_find(inv, f->certs[i]);
		if (pooled && pooled != f->certs[i]) {
			pki_cert_unref(f->certs[i]);
			f->certs[i] = pki_cert_ref(pooled);
		}
	}
	*ret = f;
	return f->n_certs ? 0 : -EBADMSG;
}

static void fp_hex(const struct pki_cert *c, char out[33])
{
	const uint8_t *fp = pki_cert_fingerprint(c);
	for (int i = 0; i < 16; i++)
		snprintf(out + 2 * i, 3, "%02x", fp[i]);
}

void inventory_add_issuer(struct inventory *inv, struct pki_cert *issuer, bool persist)
{
	if (pool_has(inv, issuer))
		return;
	inv->pool = xgrow(inv->pool, &inv->cap_pool, inv->n_pool + 1, sizeof(*inv->pool));
	inv->pool[inv->n_pool++] = pki_cert_ref(issuer);
	/* Known to the cache at once: entries learned from requests for its certificates get
	 * their signatures checked (and can hand the issuer on to child nodes). */
	struct cache_issuer *ci;
	if (cache_issuer_add(inv->n->cache, issuer, &ci) < 0)
		log_warning("inventory", "%s: unusable as an issuer", pki_cert_subject(issuer));
	if (persist && inv->n->store_has_dir) {
		char name[64];
		char hex[33];
		fp_hex(issuer, hex);
		snprintf(name, sizeof(name), "issuer-%s.der", hex);
		size_t len;
		const uint8_t *der = pki_cert_der(issuer, &len);
		int r = store_put(inv->n->store, name, der, len);
		if (r < 0)
			log_warning("store", "%s: cannot queue write: %s", name, strerror(-r));
	}
}

static struct pki_cert *find_issuer(struct inventory *inv, struct inv_leaf *l)
{
	if (l->chain_issuer)
		return l->chain_issuer; /* verified by scan_file */
	for (size_t i = 0; i < inv->n_pool; i++)
		if (pki_cert_issued_by(l->cert, inv->pool[i]))
			return inv->pool[i];
	return NULL;
}

/* ---- leaves ---- */

static void leaf_free(struct inv_leaf *l)
{
	str_list_clear(&l->upstreams);
	out_bindings_clear(&l->outs);
	if (l->chain_issuer)
		pki_cert_unref(l->chain_issuer);
	pki_cert_unref(l->cert);
	free(l);
}

static struct inv_leaf *leaf_find(struct inventory *inv, const struct pki_cert *c)
{
	return hmap_get(&inv->leaves_by_fp, pki_cert_fingerprint(c), 32);
}

static void str_list_add_unique(struct str_list *l, const char *s)
{
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->v[i], s) == 0)
			return;
	str_list_add(l, s);
}

/* Records one leaf found by the scan (creating or refreshing its record). `issuer_in_file`: the
 * file at `path` holds the issuer too (HAProxy then needs no issuer file). */
static struct inv_leaf *leaf_want(struct inventory *inv, struct pki_cert *cert,
				  struct pki_cert *chain_issuer, const struct config_cert *opts,
				  const char *path, bool issuer_in_file)
{
	struct inv_leaf *l = leaf_find(inv, cert);
	if (!l) {
		l = xcalloc(1, sizeof(*l));
		l->cert = pki_cert_ref(cert);
		l->next = inv->leaves;
		inv->leaves = l;
		hmap_put(&inv->leaves_by_fp, l);
	}
	if (!l->seen) {
		/* First sighting in this scan: options are rebuilt from the sources. */
		str_list_clear(&l->upstreams);
		out_bindings_clear(&l->outs);
		if (l->chain_issuer)
			l->chain_issuer = pki_cert_unref(l->chain_issuer);
	}
	l->seen = true;
	if (chain_issuer && !l->chain_issuer)
		l->chain_issuer = pki_cert_ref(chain_issuer);
	if (opts)
		for (size_t i = 0; i < opts->upstreams.n; i++)
			str_list_add_unique(&l->upstreams, opts->upstreams.v[i]);
	output_bind(inv->n, &l->outs, path, cert, issuer_in_file, opts ? opts->ocsp_file : NULL);
	return l;
}

static void leaf_resolve(struct inventory *inv, struct inv_leaf *l, bool may_fetch);

/* Adds the certificates of one file: CA certificates become chain issuer candidates for the
 * leaves of the same file. Returns the number of leaves. */
static size_t scan_file(struct inventory *inv, const char *path, const struct config_cert *opts,
			struct pki_cert *config_issuer, bool quiet)
{
	struct inv_file *f;
	int r = inv_read(inv, path, &f);
	if (r < 0) {
		if (quiet)
			log_debug("inventory", "%s: skipped: %s", path,
				  r == -EBADMSG ? "no certificate" : strerror(-r));
		else
			log_warning("inventory", "%s: %s", path,
				    r == -EBADMSG ? "no certificate found" : strerror(-r));
		return 0;
	}
	/* CA certificates in a chain file are issuer candidates for everyone. */
	for (size_t i = 0; i < f->n_certs; i++)
		if (pki_cert_is_ca(f->certs[i]))
			inventory_add_issuer(inv, f->certs[i], false);
	size_t leaves = 0;
	for (size_t i = 0; i < f->n_certs; i++) {
		struct pki_cert *c = f->certs[i];
		if (pki_cert_is_ca(c))
			continue;
		/* Verified here once: find_issuer trusts a chain issuer without checking again. */
		struct pki_cert *issuer = NULL;
		for (size_t j = 0; !issuer && j < f->n_certs; j++)
			if (j != i && pki_cert_is_ca(f->certs[j]) &&
			    pki_cert_issued_by(c, f->certs[j]))
				issuer = f->certs[j];
		bool in_file = issuer != NULL;
		if (!issuer && config_issuer && pki_cert_issued_by(c, config_issuer))
			issuer = config_issuer;
		/* Placing the leaf now (when its issuer is at hand) drops its parsed form before
		 * the next file is read, so a large inventory never holds thousands of them at
		 * once. */
		leaf_resolve(inv, leaf_want(inv, c, issuer, opts, path, in_file), false);
		leaves++;
	}
	return leaves;
}

static bool skip_dir_entry(const char *name)
{
	if (name[0] == '.')
		return true;
	/* Our own outputs and obvious non-certificates: not worth reading. */
	static const char *const suffixes[] = {".ocsp", ".issuer", ".key", ".tmp", ".swp", "~"};
	size_t n = strlen(name);
	for (size_t i = 0; i < ARRAY_SIZE(suffixes); i++) {
		size_t k = strlen(suffixes[i]);
		if (n >= k && strcmp(name + n - k, suffixes[i]) == 0)
			return true;
	}
	return false;
}

static void scan_dir(struct inventory *inv, const char *dir, bool issuers_only)
{
	DIR *d = opendir(dir);
	if (!d) {
		log_warning("inventory", "%s: cannot read directory: %s", dir, strerror(errno));
		return;
	}
	struct dirent *de;
	struct buf path = BUF_INIT;
	while ((de = readdir(d))) {
		if (skip_dir_entry(de->d_name))
			continue;
		buf_reset(&path);
		buf_printf(&path, "%s/%s", dir, de->d_name);
		if (issuers_only) {
			struct inv_file *f;
			if (inv_read(inv, (const char *)path.data, &f) == 0)
				for (size_t i = 0; i < f->n_certs; i++)
					inventory_add_issuer(inv, f->certs[i], false);
			continue;
		}
		scan_file(inv, (const char *)path.data, NULL, NULL, true);
	}
	buf_done(&path);
	closedir(d);
}

/* ---- issuer fetching (AIA caIssuers) ---- */

static void resolve_leaves(struct inventory *inv);

static void on_issuer_fetched(struct fetch *f, const struct fetch_result *r, void *ud)
{
	struct inv_issuer_fetch *fi = ud;
	struct inventory *inv = fi->inv;
	(void)f;
	struct inv_issuer_fetch **pp = &inv->issuer_fetches;
	while (*pp != fi)
		pp = &(*pp)->next;
	*pp = fi->next;

	bool ok = false;
	if (r->err == 0 && r->http_status == 200) {
		struct pki_cert **certs;
		size_t n;
		if (pki_certs_parse(r->body, r->body_len, &certs, &n) == 0) {
			for (size_t i = 0; i < n; i++)
				if (pki_cert_is_ca(certs[i])) {
					inventory_add_issuer(inv, certs[i], true);
					ok = true;
				}
			pki_certs_free(certs, n);
		}
		if (!ok)
			log_warning("inventory", "%s: caIssuers answer holds no CA certificate",
				    fi->url);
	} else {
		log_warning("inventory", "%s: caIssuers fetch failed: %s", fi->url,
			    r->err ? r->errmsg : "HTTP error");
	}
	for (struct inv_leaf *l = inv->leaves; l; l = l->next) {
		if (!l->issuer_fetching)
			continue;
		const char *const *urls;
		size_t nu = pki_cert_ca_issuers_urls(l->cert, &urls);
		for (size_t i = 0; i < nu; i++)
			if (strcmp(urls[i], fi->url) == 0) {
				l->issuer_fetching = false;
				l->issuer_failed = !ok;
			}
	}
	free(fi->url);
	free(fi);
	resolve_leaves(inv);
	refresher_pump(inv->n);
}

static void fetch_issuer(struct inventory *inv, struct inv_leaf *l)
{
	const char *const *urls;
	size_t nu = pki_cert_ca_issuers_urls(l->cert, &urls);
	for (size_t i = 0; i < nu; i++) {
		if (strncmp(urls[i], "http://", 7) != 0 && strncmp(urls[i], "https://", 8) != 0)
			continue;
		l->issuer_fetching = true;
		for (struct inv_issuer_fetch *fi = inv->issuer_fetches; fi; fi = fi->next)
			if (strcmp(fi->url, urls[i]) == 0)
				return; /* already on its way */
		struct inv_issuer_fetch *fi = xcalloc(1, sizeof(*fi));
		fi->inv = inv;
		fi->url = xstrdup(urls[i]);
		struct fetch_request req = {.url = urls[i]};
		if (fetcher_start(inv->n->fetcher, &req, on_issuer_fetched, fi, &fi->f) < 0) {
			free(fi->url);
			free(fi);
			l->issuer_fetching = false;
			continue;
		}
		fi->next = inv->issuer_fetches;
		inv->issuer_fetches = fi;
		log_info("inventory", "%s: fetching issuer from %s", pki_cert_subject(l->cert),
			 urls[i]);
		return;
	}
	l->issuer_failed = true;
}

/* ---- entries ---- */

static bool leaf_has_upstream(struct inventory *inv, struct inv_leaf *l)
{
	const char *const *urls;
	return l->upstreams.n > 0 || inv->n->cfg.upstreams.n > 0 ||
	       pki_cert_ocsp_urls(l->cert, &urls) > 0;
}

static void entry_drop(struct inventory *inv, struct entry_info *ei)
{
	struct node *n = inv->n;
	if (--ei->sources > 0)
		return;
	log_info("inventory", "%s: certificate gone, no longer refreshed", ei->name);
	node_entry_remove(n, ei);
}

static void leaf_attach(struct inventory *inv, struct inv_leaf *l, struct pki_cert *issuer_cert)
{
	struct node *n = inv->n;
	struct cache_issuer *ci;
	int r = cache_issuer_add(n->cache, issuer_cert, &ci);
	if (r < 0) {
		log_warning("inventory", "%s: unusable issuer: %s", pki_cert_subject(l->cert),
			    strerror(-r));
		return;
	}
	struct certid id;
	r = pki_certid(l->cert, issuer_cert, CERTID_SHA1, &id);
	if (r < 0) {
		log_warning("inventory", "%s: cannot compute CertID: %s", pki_cert_subject(l->cert),
			    strerror(-r));
		return;
	}
	struct cache_entry *e;
	unsigned flags = pki_cert_is_must_staple(l->cert) ? CACHE_ENTRY_MUST_STAPLE : 0;
	r = cache_entry_add(n->cache, ci, id.serial, id.serial_len, flags, node_now_unix(), &e);
	if (r < 0) {
		log_warning("inventory", "%s: cannot add entry: %s", pki_cert_subject(l->cert),
			    strerror(-r));
		return;
	}
	struct entry_info *ei = cache_entry_user(e);
	if (ei && ei->learned)
		learn_adopt(n, ei, l->cert);
	if (!ei) {
		ei = xcalloc(1, sizeof(*ei));
		ei->entry = e;
		ei->cert = pki_cert_ref(l->cert);
		certid_short(&id, ei->name);
		cache_entry_set_user(e, ei);
		log_info("inventory", "%s: tracking %s%s", ei->name, pki_cert_subject(l->cert),
			 flags ? " (must-staple)" : "");
	}
	ei->sources++;
	l->ei = ei;
	/* Certificates of this issuer that the node is asked about later can go there too. */
	learn_note_issuer_origin(n, ci, learn_origin(n, ei));
	/* Placed: neither its parsed form nor its DER is needed again (memory per entry, DESIGN
	 * §4); a rescan of its unchanged file recognises the issuer by fingerprint. */
	pki_cert_place(l->cert, issuer_cert);
}

/* Gives a leaf its entry once its issuer is known; with may_fetch, asks for a missing issuer. */
static void leaf_resolve(struct inventory *inv, struct inv_leaf *l, bool may_fetch)
{
	if (l->ei)
		return;
	if (!leaf_has_upstream(inv, l)) {
		if (!l->skipped_logged)
			log_info("inventory", "%s: no OCSP URL, skipped",
				 pki_cert_subject(l->cert));
		l->skipped_logged = true;
		pki_cert_compact(l->cert);
		return;
	}
	struct pki_cert *issuer = find_issuer(inv, l);
	if (issuer) {
		leaf_attach(inv, l, issuer);
		return;
	}
	if (!may_fetch || l->issuer_fetching || l->issuer_failed)
		return;
	if (inv->n->cfg.fetch_ca_issuers)
		fetch_issuer(inv, l);
	else
		l->issuer_failed = true;
	if (l->issuer_failed && !l->skipped_logged) {
		log_warning("inventory", "%s: issuer not found, cannot be refreshed",
			    pki_cert_subject(l->cert));
		l->skipped_logged = true;
	}
}

/* Resolves every wanted leaf (fetching missing issuers) and applies the scan's options. */
static void resolve_leaves(struct inventory *inv)
{
	for (struct inv_leaf *l = inv->leaves; l; l = l->next)
		leaf_resolve(inv, l, true);
	/* Options may have changed with the scan: apply them to the entries. Several leaves
	 * (files) may share one entry, so the new bindings are gathered before comparing. */
	for (struct inv_leaf *l = inv->leaves; l; l = l->next) {
		if (!l->ei)
			continue;
		struct entry_info *ei = l->ei;
		str_list_clear(&ei->upstreams);
		out_bindings_clear(&ei->outs_next);
		ei->outs_rebuilt = true;
	}
	for (struct inv_leaf *l = inv->leaves; l; l = l->next) {
		if (!l->ei)
			continue;
		for (size_t i = 0; i < l->upstreams.n; i++)
			str_list_add_unique(&l->ei->upstreams, l->upstreams.v[i]);
		out_bindings_merge(&l->ei->outs_next, &l->outs);
	}
	for (struct inv_leaf *l = inv->leaves; l; l = l->next) {
		struct entry_info *ei = l->ei;
		if (!ei || !ei->outs_rebuilt)
			continue;
		ei->outs_rebuilt = false;
		bool changed = !out_bindings_equal(&ei->outs, &ei->outs_next);
		out_bindings_clear(&ei->outs);
		ei->outs = ei->outs_next;
		ei->outs_next = (struct out_bindings){0};
		/* A new file or output for a response already held: hand it over now rather
		 * than at the next refresh (HAProxy reads the file at its next reload). */
		if (changed)
			output_publish(inv->n, ei, true);
	}
}

void inventory_scan(struct inventory *inv)
{
	struct node *n = inv->n;
	const struct config *cfg = &n->cfg;
	for (struct inv_file *f = inv->files; f; f = f->next)
		f->seen = false;
	for (struct inv_leaf *l = inv->leaves; l; l = l->next)
		l->seen = false;

	for (size_t i = 0; i < cfg->issuer_dirs.n; i++)
		scan_dir(inv, cfg->issuer_dirs.v[i], true);
	for (size_t i = 0; i < cfg->n_certs; i++) {
		const struct config_cert *cc = &cfg->certs[i];
		struct pki_cert *config_issuer = NULL;
		if (cc->issuer) {
			struct inv_file *f;
			int r = inv_read(inv, cc->issuer, &f);
			if (r < 0)
				log_warning("inventory", "%s: issuer file: %s", cc->issuer,
					    r == -EBADMSG ? "no certificate found" : strerror(-r));
			else
				config_issuer = f->certs[0];
			if (config_issuer)
				inventory_add_issuer(inv, config_issuer, false);
		}
		if (scan_file(inv, cc->path, cc, config_issuer, false) == 0)
			log_warning("inventory", "%s: no leaf certificate in it", cc->path);
	}
	for (size_t i = 0; i < cfg->cert_dirs.n; i++)
		scan_dir(inv, cfg->cert_dirs.v[i], false);

	/* Forget leaves no source names any more, and files no longer seen. */
	struct inv_leaf **lp = &inv->leaves;
	while (*lp) {
		struct inv_leaf *l = *lp;
		if (l->seen) {
			lp = &l->next;
			continue;
		}
		*lp = l->next;
		hmap_del(&inv->leaves_by_fp, pki_cert_fingerprint(l->cert), 32);
		if (l->ei)
			entry_drop(inv, l->ei);
		leaf_free(l);
	}
	struct inv_file **fp = &inv->files;
	while (*fp) {
		struct inv_file *f = *fp;
		if (f->seen) {
			fp = &f->next;
			continue;
		}
		*fp = f->next;
		hmap_del(&inv->files_by_path, f->path, strlen(f->path));
		inv_file_free(f);
	}
	resolve_leaves(inv);
	watches_update(inv);
}

/* ---- watches ---- */

static void on_debounce(uv_timer_t *t)
{
	struct inventory *inv = t->data;
	log_debug("inventory", "certificate directory changed, rescanning");
	inventory_scan(inv);
	refresher_pump(inv->n);
}

static void on_fs_event(uv_fs_event_t *ev, const char *filename, int events, int status)
{
	struct inv_watch *w = ev->data;
	(void)events;
	if (status < 0) {
		log_warning("inventory", "%s: watch error: %s", w->dir, uv_strerror(status));
		return;
	}
	if (filename && skip_dir_entry(filename))
		return;
	/* Editors and deploy tools touch files several times: one rescan after they settle. */
	uv_timer_start(&w->inv->debounce, on_debounce, RESCAN_DEBOUNCE_MS, 0);
}

static void inv_maybe_closed(struct inventory *inv)
{
	if (!inv->closing || inv->open_handles > 0)
		return;
	for (struct inv_leaf *l = inv->leaves, *next; l; l = next) {
		next = l->next;
		leaf_free(l);
	}
	for (struct inv_file *f = inv->files, *next; f; f = next) {
		next = f->next;
		inv_file_free(f);
	}
	for (size_t i = 0; i < inv->n_pool; i++)
		pki_cert_unref(inv->pool[i]);
	free(inv->pool);
	hmap_done(&inv->files_by_path);
	hmap_done(&inv->leaves_by_fp);
	void (*cb)(void *) = inv->on_closed;
	void *ud = inv->on_closed_ud;
	free(inv);
	if (cb)
		cb(ud);
}

static void on_watch_closed(uv_handle_t *h)
{
	struct inv_watch *w = h->data;
	struct inventory *inv = w->inv;
	free(w->dir);
	free(w);
	inv->open_handles--;
	inv_maybe_closed(inv);
}

static void on_debounce_closed(uv_handle_t *h)
{
	struct inventory *inv = h->data;
	inv->open_handles--;
	inv_maybe_closed(inv);
}

static void watches_update(struct inventory *inv)
{
	const struct config *cfg = &inv->n->cfg;
	/* Drop watches of directories no longer configured. */
	struct inv_watch **wp = &inv->watches;
	while (*wp) {
		struct inv_watch *w = *wp;
		bool keep = false;
		for (size_t i = 0; i < cfg->cert_dirs.n; i++)
			keep |= strcmp(cfg->cert_dirs.v[i], w->dir) == 0;
		if (keep && !inv->closing) {
			wp = &w->next;
			continue;
		}
		*wp = w->next;
		uv_close((uv_handle_t *)&w->ev, on_watch_closed);
	}
	if (inv->closing)
		return;
	for (size_t i = 0; i < cfg->cert_dirs.n; i++) {
		bool have = false;
		for (struct inv_watch *w = inv->watches; w; w = w->next)
			have |= strcmp(cfg->cert_dirs.v[i], w->dir) == 0;
		if (have)
			continue;
		struct inv_watch *w = xcalloc(1, sizeof(*w));
		w->inv = inv;
		w->dir = xstrdup(cfg->cert_dirs.v[i]);
		uv_fs_event_init(inv->n->loop, &w->ev);
		w->ev.data = w;
		inv->open_handles++;
		int r = uv_fs_event_start(&w->ev, on_fs_event, w->dir, 0);
		if (r < 0)
			log_warning("inventory", "%s: cannot watch: %s (changes need SIGHUP)",
				    w->dir, uv_strerror(r));
		w->next = inv->watches;
		inv->watches = w;
	}
}

int inventory_new(struct node *n, struct inventory **ret)
{
	struct inventory *inv = xcalloc(1, sizeof(*inv));
	inv->n = n;
	hmap_init(&inv->files_by_path, file_key);
	hmap_init(&inv->leaves_by_fp, leaf_key);
	uv_timer_init(n->loop, &inv->debounce);
	inv->debounce.data = inv;
	inv->open_handles = 1;
	*ret = inv;
	return 0;
}

size_t inventory_leaves(const struct inventory *inv)
{
	size_t k = 0;
	for (const struct inv_leaf *l = inv->leaves; l; l = l->next)
		k++;
	return k;
}

size_t inventory_pending_issuers(const struct inventory *inv)
{
	size_t k = 0;
	for (const struct inv_leaf *l = inv->leaves; l; l = l->next)
		k += !l->ei && l->issuer_fetching;
	return k;
}

void inventory_close(struct inventory *inv, void (*on_closed)(void *ud), void *ud)
{
	inv->closing = true;
	inv->on_closed = on_closed;
	inv->on_closed_ud = ud;
	while (inv->issuer_fetches) {
		struct inv_issuer_fetch *fi = inv->issuer_fetches;
		inv->issuer_fetches = fi->next;
		fetch_cancel(fi->f);
		free(fi->url);
		free(fi);
	}
	/* Entries are the cache's: the node frees the cache after the inventory. Only the
	 * node-side data hanging off them is ours. */
	for (struct inv_leaf *l = inv->leaves; l; l = l->next) {
		if (!l->ei)
			continue;
		if (--l->ei->sources == 0) {
			refresher_forget(inv->n, l->ei);
			cache_entry_set_user(l->ei->entry, NULL);
			entry_info_free(inv->n, l->ei);
		}
		l->ei = NULL;
	}
	watches_update(inv);
	uv_close((uv_handle_t *)&inv->debounce, on_debounce_closed);
}
