/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The daemon's configuration: defaults, the YAML file (docs/configuration.md documents every key),
 * and command-line flags that override it. Loading a config does no I/O beyond reading the file.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct str_list {
	char **v;
	size_t n;
};

/* A certificate named in the config, with per-certificate options. */
struct config_cert {
	char *path;   /* PEM/DER file: the leaf, optionally followed by its chain */
	char *issuer; /* issuer certificate file (optional; else chain, issuer dirs, AIA) */
	struct str_list
		upstreams; /* override of the AIA OCSP URLs for this certificate, in order */
	char *ocsp_file;   /* write each new response here (optional) */
};

/* One `outputs:` item: what to hand web servers for the certificates it matches. */
struct config_output {
	char *name;	       /* for logs and metrics (default "output-N", N from 1) */
	struct str_list match; /* certificate files, or directories (everything below them) */
	char *ocsp_file;       /* template of the response file to write (proto/outrule.h) */
	char *issuer_file;     /* template of the issuer PEM, written when the file lacks it */
	struct str_list haproxy_sockets; /* admin sockets: "/path" (unix) or "ADDR:PORT" */
	char *command;			 /* run with /bin/sh -c after a written file changed */
	uint64_t command_interval_ms;	 /* at least this long between two runs (30 s) */
};

struct config {
	char *path; /* the file loaded, NULL if none */

	/* serving */
	struct str_list listen;	      /* "ADDR:PORT", "[v6]:PORT" (default 127.0.0.1:8889) */
	struct str_list admin_listen; /* /metrics, /healthz, /readyz (default 127.0.0.1:8890) */
	struct str_list tls_listen;   /* OCSP over TLS (ALPN h2, http/1.1); needs tls_cert/key */
	char *tls_cert;		      /* PEM chain, leaf first */
	char *tls_key;		      /* PEM private key */
	size_t max_connections;	      /* 4096 */
	size_t max_header_bytes;      /* 8192 */
	size_t max_body_bytes;	      /* 16384 */
	uint64_t idle_timeout_ms;     /* keep-alive idle (60000) */
	uint64_t request_timeout_ms;  /* whole request must arrive within this (10000) */

	/* inventory */
	struct config_cert *certs;
	size_t n_certs;
	struct str_list cert_dirs;   /* watched directories */
	struct str_list issuer_dirs; /* directories of issuer certificates */
	bool fetch_ca_issuers;	     /* fetch issuers from AIA caIssuers (true) */
	bool write_ocsp_files;	     /* write <cert>.ocsp next to each certificate (false) */

	/* outputs for web servers (docs/integrations/) */
	struct config_output *outputs;
	size_t n_outputs;

	/* storage */
	char *cache_dir;	/* NULL = memory only */
	size_t cache_max_bytes; /* 256 MiB */

	/* fetching */
	struct str_list upstreams; /* global override, in order, tried before AIA URLs */
	struct str_list parents; /* stapled parent nodes, in order (HTTP/2); replace the AIA URLs */
	bool fallback_to_origin; /* with parents: also ask the origin when every parent fails */
	char *ca_file;		 /* CA bundle for https:// upstreams and parents (NULL: system) */
	char *proxy;		 /* forward HTTP proxy for upstream fetches */
	uint64_t connect_timeout_ms;   /* 5000 */
	uint64_t fetch_timeout_ms;     /* 15000 */
	size_t max_response_bytes;     /* 65536 */
	uint64_t backoff_base_s;       /* 10 */
	uint64_t backoff_max_s;	       /* 3600 */
	uint64_t max_parallel_fetches; /* 16 */

	/* refresh and validation */
	double refresh_lo, refresh_hi;	 /* 0.5, 0.75 */
	uint64_t min_refresh_interval_s; /* 60 */
	double alert_fraction[3];	 /* 0.5, 0.25, 0.1 */
	char *alert_command;		 /* run with the alert in its environment (optional) */
	int64_t max_clock_skew_s;	 /* 300 */
	int64_t default_validity_s;	 /* 0: nextUpdate required */
	bool allow_revoked;		 /* true */

	/* learning entries from requests (leaf, parent and forward-proxy modes) */
	bool learn;		    /* true */
	uint64_t learn_idle_ms;	    /* drop learned entries not asked for this long (24h) */
	size_t learn_max_entries;   /* 100000 */
	char *learn_default_origin; /* origin when neither request nor issuer names one */
	struct str_list learn_allowed_origins; /* URL prefixes an origin must start with (any) */

	/* cluster (gossip with other regional nodes; docs/cluster.md) */
	char *node_name;	 /* unique in the cluster (default: the host name) */
	char *cluster_bind;	 /* "ADDR:PORT", UDP and TCP: enables the cluster (NULL: none) */
	char *cluster_advertise; /* "ADDR:PORT" peers reach us at (default: cluster_bind) */
	struct str_list cluster_join; /* seeds "ADDR:PORT" */
	char *cluster_keyring;	      /* file of base64 AES keys, one per line, the first primary */
	char *cluster_profile;	      /* lan (default), wan, local */
	char *cluster_delegate_version; /* "min,max,cur": 0,0,0 (memberlist) or 2,5,5 (Serf) */
	bool cluster_compress;		/* LZW-compress gossip streams and large packets (true) */
	char *cluster_http_url;	      /* where peers pull responses from (default: first listen) */
	uint64_t cluster_stable_ms;   /* a member ranks in elections once alive this long (10 s) */
	uint64_t cluster_fallback_ms; /* Δ between successive ranks stepping in (60 s) */

	/* operations */
	int log_level; /* syslog level, default LOG_INFO (6) */
};

/* Fills defaults. */
void config_init(struct config *c);
void config_done(struct config *c);

/*
 * Loads a YAML file over the current values. Unknown keys, wrong types and out-of-range values
 * are errors naming the file, line and key, written to errbuf.
 * Errors: -errno reading the file; -EBADMSG / -EINVAL / -EMSGSIZE for its contents.
 */
int config_load_file(struct config *c, const char *path, char *errbuf, size_t errlen);
/* The same from memory (used by the fuzzer and tests); `name` labels messages. */
int config_load_string(struct config *c, const char *name, const char *text, size_t len,
		       char *errbuf, size_t errlen);

/*
 * Cross-field validation after file and flags are applied (e.g. refresh_lo ≤ refresh_hi, listen
 * addresses parse, thresholds decrease). Errors: -EINVAL with the reason in errbuf.
 */
int config_validate(const struct config *c, char *errbuf, size_t errlen);

/* Parses "ADDR:PORT", "[V6]:PORT" or ":PORT" into a sockaddr_storage. Errors: -EINVAL. */
struct sockaddr_storage;
int config_parse_addr(const char *s, struct sockaddr_storage *ret);

/* Whether two configs have the same `outputs:` (and write_ocsp_files). */
bool config_outputs_equal(const struct config *a, const struct config *b);

/* An admin socket: an absolute unix socket path, or "ADDR:PORT" (TCP). ret may be NULL (check
 * only). Errors: -EINVAL. */
int config_parse_socket(const char *s, struct sockaddr_storage *ret);

/* Parses durations "250ms", "10s", "5m", "2h", "1d" (bare numbers are seconds).
 * Errors: -EINVAL malformed or negative; -ERANGE overflow. (Same for sizes.) */
int config_parse_duration_ms(const char *s, uint64_t *ret_ms);
/* Parses sizes "512", "64k", "16KiB", "256MiB", "1g". */
int config_parse_size(const char *s, size_t *ret);
/* Parses a syslog level name ("debug" … "emerg") or number. */
int config_parse_log_level(const char *s, int *ret);
/* "MIN,MAX,CUR" (each 0..255, MIN <= CUR <= MAX) into ret. Errors: -EINVAL. */
int config_parse_delegate_version(const char *s, uint8_t ret[3]);

void str_list_add(struct str_list *l, const char *s);
void str_list_clear(struct str_list *l);
