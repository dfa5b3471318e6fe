/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Configuration: defaults, the YAML file (docs/configuration.md) and validation. The schema is a
 * table per section: each key names its type, the field it fills and the accepted range, so that
 * the loader, its error messages and the documentation stay one list. A file is applied to a copy
 * of the current configuration and swapped in only when every key was accepted: a bad reload
 * leaves the running configuration untouched.
 */
#include "node/config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <syslog.h>
#include <unistd.h>

#include "proto/buf.h"
#include "proto/macro.h"
#include "proto/mem.h"
#include "proto/outrule.h"
#include "proto/yaml.h"

#define CONFIG_MAX_FILE_BYTES (1024 * 1024)

#define KIB    ((uint64_t)1024)
#define MIB    (1024 * KIB)
#define GIB    (1024 * MIB)
#define SEC    ((uint64_t)1000)
#define MINUTE (60 * SEC)
#define HOUR   (60 * MINUTE)
#define DAY    (24 * HOUR)

void str_list_add(struct str_list *l, const char *s)
{
	l->v = xrealloc(l->v, (l->n + 1) * sizeof(*l->v));
	l->v[l->n++] = xstrdup(s);
}

void str_list_clear(struct str_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

/* Sized at once: str_list_add reallocates per item, quadratic for a file's long lists. */
static void str_list_copy(struct str_list *dst, const struct str_list *src)
{
	dst->v = src->n ? xcalloc(src->n, sizeof(*dst->v)) : NULL;
	for (size_t i = 0; i < src->n; i++)
		dst->v[i] = xstrdup(src->v[i]);
	dst->n = src->n;
}

static char *strdup_or_null(const char *s)
{
	return s ? xstrdup(s) : NULL;
}

static void config_cert_done(struct config_cert *cc)
{
	free(cc->path);
	free(cc->issuer);
	str_list_clear(&cc->upstreams);
	free(cc->ocsp_file);
	*cc = (struct config_cert){0};
}

static void certs_free(struct config_cert *certs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		config_cert_done(&certs[i]);
	free(certs);
}

static void config_output_done(struct config_output *o)
{
	free(o->name);
	str_list_clear(&o->match);
	free(o->ocsp_file);
	free(o->issuer_file);
	str_list_clear(&o->haproxy_sockets);
	free(o->command);
	*o = (struct config_output){0};
}

static void outputs_free(struct config_output *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		config_output_done(&v[i]);
	free(v);
}

void config_init(struct config *c)
{
	*c = (struct config){
		.max_connections = 4096,
		.max_header_bytes = 8192,
		.max_body_bytes = 16384,
		.idle_timeout_ms = 60000,
		.request_timeout_ms = 10000,
		.fetch_ca_issuers = true,
		.write_ocsp_files = false,
		.cache_max_bytes = 256 * MIB,
		.connect_timeout_ms = 5000,
		.fetch_timeout_ms = 15000,
		.max_response_bytes = 65536,
		.backoff_base_s = 10,
		.backoff_max_s = 3600,
		.max_parallel_fetches = 16,
		.refresh_lo = 0.5,
		.refresh_hi = 0.75,
		.min_refresh_interval_s = 60,
		.alert_fraction = {0.5, 0.25, 0.1},
		.max_clock_skew_s = 300,
		.default_validity_s = 0,
		.allow_revoked = true,
		.learn = true,
		.learn_idle_ms = DAY,
		.learn_max_entries = 100000,
		.cluster_compress = true,
		.cluster_stable_ms = 10000,
		.cluster_fallback_ms = 60000,
		.log_level = LOG_INFO,
	};
	str_list_add(&c->listen, "127.0.0.1:8889");
	str_list_add(&c->admin_listen, "127.0.0.1:8890");
}

void config_done(struct config *c)
{
	free(c->path);
	str_list_clear(&c->listen);
	str_list_clear(&c->admin_listen);
	str_list_clear(&c->tls_listen);
	str_list_clear(&c->parents);
	free(c->ca_file);
	free(c->tls_cert);
	free(c->tls_key);
	certs_free(c->certs, c->n_certs);
	outputs_free(c->outputs, c->n_outputs);
	str_list_clear(&c->cert_dirs);
	str_list_clear(&c->issuer_dirs);
	free(c->cache_dir);
	str_list_clear(&c->upstreams);
	free(c->proxy);
	free(c->alert_command);
	free(c->learn_default_origin);
	str_list_clear(&c->learn_allowed_origins);
	free(c->node_name);
	free(c->cluster_bind);
	free(c->cluster_advertise);
	str_list_clear(&c->cluster_join);
	free(c->cluster_keyring);
	free(c->cluster_profile);
	free(c->cluster_delegate_version);
	free(c->cluster_http_url);
	*c = (struct config){0};
}

/* A deep copy, so that a load can fail half-way without touching the original. */
static void config_copy(struct config *dst, const struct config *src)
{
	*dst = *src;
	dst->path = strdup_or_null(src->path);
	str_list_copy(&dst->listen, &src->listen);
	str_list_copy(&dst->admin_listen, &src->admin_listen);
	str_list_copy(&dst->tls_listen, &src->tls_listen);
	str_list_copy(&dst->parents, &src->parents);
	dst->fallback_to_origin = src->fallback_to_origin;
	dst->ca_file = strdup_or_null(src->ca_file);
	dst->tls_cert = strdup_or_null(src->tls_cert);
	dst->tls_key = strdup_or_null(src->tls_key);
	dst->certs = src->n_certs ? xcalloc(src->n_certs, sizeof(*dst->certs)) : NULL;
	for (size_t i = 0; i < src->n_certs; i++) {
		dst->certs[i].path = strdup_or_null(src->certs[i].path);
		dst->certs[i].issuer = strdup_or_null(src->certs[i].issuer);
		str_list_copy(&dst->certs[i].upstreams, &src->certs[i].upstreams);
		dst->certs[i].ocsp_file = strdup_or_null(src->certs[i].ocsp_file);
	}
	dst->outputs = src->n_outputs ? xcalloc(src->n_outputs, sizeof(*dst->outputs)) : NULL;
	for (size_t i = 0; i < src->n_outputs; i++) {
		const struct config_output *so = &src->outputs[i];
		struct config_output *d = &dst->outputs[i];
		*d = *so;
		d->name = strdup_or_null(so->name);
		str_list_copy(&d->match, &so->match);
		d->ocsp_file = strdup_or_null(so->ocsp_file);
		d->issuer_file = strdup_or_null(so->issuer_file);
		str_list_copy(&d->haproxy_sockets, &so->haproxy_sockets);
		d->command = strdup_or_null(so->command);
	}
	str_list_copy(&dst->cert_dirs, &src->cert_dirs);
	str_list_copy(&dst->issuer_dirs, &src->issuer_dirs);
	dst->cache_dir = strdup_or_null(src->cache_dir);
	str_list_copy(&dst->upstreams, &src->upstreams);
	dst->proxy = strdup_or_null(src->proxy);
	dst->alert_command = strdup_or_null(src->alert_command);
	dst->learn_default_origin = strdup_or_null(src->learn_default_origin);
	str_list_copy(&dst->learn_allowed_origins, &src->learn_allowed_origins);
	dst->node_name = strdup_or_null(src->node_name);
	dst->cluster_bind = strdup_or_null(src->cluster_bind);
	dst->cluster_advertise = strdup_or_null(src->cluster_advertise);
	str_list_copy(&dst->cluster_join, &src->cluster_join);
	dst->cluster_keyring = strdup_or_null(src->cluster_keyring);
	dst->cluster_profile = strdup_or_null(src->cluster_profile);
	dst->cluster_delegate_version = strdup_or_null(src->cluster_delegate_version);
	dst->cluster_http_url = strdup_or_null(src->cluster_http_url);
}

/* ---- scalar parsers ---- */

/* Decimal digits only, no sign, no blanks; -ERANGE past UINT64_MAX. */
static int parse_u64(const char *s, size_t len, uint64_t *ret)
{
	uint64_t v = 0;
	if (len == 0)
		return -EINVAL;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		unsigned d = (unsigned)(s[i] - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -ERANGE;
		v = v * 10 + d;
	}
	*ret = v;
	return 0;
}

static size_t digits_len(const char *s)
{
	size_t n = 0;
	while (s[n] >= '0' && s[n] <= '9')
		n++;
	return n;
}

struct unit {
	const char *suffix;
	uint64_t mult;
};

/* Digits, then one of the suffixes (exact, or ignoring case), scaled by its multiplier without
 * exceeding max. Errors: -EINVAL malformed or unknown suffix; -ERANGE overflow. */
static int parse_scaled(const char *s, const struct unit *units, size_t n_units, bool nocase,
			uint64_t max, uint64_t *ret)
{
	size_t n = digits_len(s);
	uint64_t v;
	int r = parse_u64(s, n, &v);
	if (r < 0)
		return r;
	for (size_t i = 0; i < n_units; i++) {
		if ((nocase ? strcasecmp(s + n, units[i].suffix) : strcmp(s + n, units[i].suffix)))
			continue;
		if (v > max / units[i].mult)
			return -ERANGE;
		*ret = v * units[i].mult;
		return 0;
	}
	return -EINVAL;
}

int config_parse_duration_ms(const char *s, uint64_t *ret_ms)
{
	static const struct unit units[] = {
		{"ms", 1}, {"", SEC}, {"s", SEC}, {"m", MINUTE}, {"h", HOUR}, {"d", DAY},
	};
	return parse_scaled(s, units, ARRAY_SIZE(units), false, UINT64_MAX, ret_ms);
}

int config_parse_size(const char *s, size_t *ret)
{
	static const struct unit units[] = {
		{"", 1},     {"b", 1},	   {"k", KIB}, {"kb", KIB}, {"kib", KIB}, {"m", MIB},
		{"mb", MIB}, {"mib", MIB}, {"g", GIB}, {"gb", GIB}, {"gib", GIB},
	};
	uint64_t v;
	int r = parse_scaled(s, units, ARRAY_SIZE(units), true, SIZE_MAX, &v);
	if (r == 0)
		*ret = (size_t)v;
	return r;
}

int config_parse_log_level(const char *s, int *ret)
{
	static const struct {
		const char *name;
		int level;
	} names[] = {
		{"emerg", LOG_EMERG},  {"alert", LOG_ALERT},   {"crit", LOG_CRIT},
		{"err", LOG_ERR},      {"error", LOG_ERR},     {"warning", LOG_WARNING},
		{"warn", LOG_WARNING}, {"notice", LOG_NOTICE}, {"info", LOG_INFO},
		{"debug", LOG_DEBUG},
	};
	if (s[0] >= '0' && s[0] <= '7' && s[1] == 0) {
		*ret = s[0] - '0';
		return 0;
	}
	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		if (strcasecmp(s, names[i].name) == 0) {
			*ret = names[i].level;
			return 0;
		}
	}
	return -EINVAL;
}

int config_parse_addr(const char *s, struct sockaddr_storage *ret)
{
	struct sockaddr_storage ss = {0};
	char host[INET6_ADDRSTRLEN];
	const char *port_s;
	size_t hlen;
	bool v6 = false;

	if (s[0] == '[') {
		const char *close = strchr(s, ']');
		if (!close || close[1] != ':')
			return -EINVAL;
		hlen = (size_t)(close - s - 1);
		if (hlen == 0 || hlen >= sizeof(host))
			return -EINVAL;
		memcpy(host, s + 1, hlen);
		port_s = close + 2;
		v6 = true;
	} else {
		const char *colon = strrchr(s, ':');
		if (!colon)
			return -EINVAL;
		hlen = (size_t)(colon - s);
		if (hlen >= sizeof(host) || memchr(s, ':', hlen))
			return -EINVAL; /* a bare IPv6 address needs brackets */
		memcpy(host, s, hlen);
		port_s = colon + 1;
	}
	host[hlen] = 0;

	uint64_t port;
	size_t plen = strlen(port_s);
	if (plen > 5 || parse_u64(port_s, plen, &port) < 0 || port > 65535)
		return -EINVAL;

	if (v6) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
		if (inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1)
			return -EINVAL;
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)port);
	} else {
		struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
		if (hlen == 0)
			sin->sin_addr.s_addr = htonl(INADDR_ANY);
		else if (inet_pton(AF_INET, host, &sin->sin_addr) != 1)
			return -EINVAL;
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)port);
	}
	*ret = ss;
	return 0;
}

/*
 * A fraction written as decimal digits ("0.5", ".25", "1"), parsed without strtod so that the
 * locale cannot change what a config file means.
 */
static int parse_fraction(const char *s, double *ret)
{
	size_t ni = digits_len(s), nf = 0;
	double v = 0;

	for (size_t i = 0; i < ni; i++) {
		if (i >= 15)
			return -EINVAL;
		v = v * 10 + (s[i] - '0');
	}
	if (s[ni] == '.') {
		nf = digits_len(s + ni + 1);
		if (nf > 15)
			return -EINVAL;
		double scale = 1;
		for (size_t i = 0; i < nf; i++) {
			scale *= 10;
			v += (s[ni + 1 + i] - '0') / scale;
		}
		if (s[ni + 1 + nf] != 0)
			return -EINVAL;
	} else if (s[ni] != 0) {
		return -EINVAL;
	}
	if (ni == 0 && nf == 0)
		return -EINVAL;
	*ret = v;
	return 0;
}

static int parse_bool(const char *s, bool *ret)
{
	static const char *const yes[] = {"true", "yes", "on"};
	static const char *const no[] = {"false", "no", "off"};
	for (size_t i = 0; i < ARRAY_SIZE(yes); i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*ret = true;
			return 0;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*ret = false;
			return 0;
		}
	}
	return -EINVAL;
}

/* ---- the schema ---- */

enum opt_type {
	OPT_STR,       /* char *; "" means unset (NULL) */
	OPT_LIST,      /* struct str_list; a string or a list of strings; replaces */
	OPT_BOOL,      /* bool */
	OPT_COUNT,     /* size_t, decimal integer */
	OPT_COUNT_U64, /* uint64_t, decimal integer */
	OPT_SIZE,      /* size_t, with size units */
	OPT_MS,	       /* uint64_t milliseconds from a duration */
	OPT_SEC,       /* uint64_t whole seconds from a duration */
	OPT_SEC_I64,   /* int64_t whole seconds from a duration */
	OPT_LEVEL,     /* int syslog level */
	OPT_WINDOW,    /* refresh_lo/refresh_hi */
	OPT_ALERTS,    /* alert_fraction[3] */
	OPT_CERTS,     /* certs/n_certs */
	OPT_OUTPUTS,   /* outputs/n_outputs */
	OPT_SECTION,   /* a nested mapping of further options */
};

struct opt {
	const char *key;
	enum opt_type type;
	size_t off;
	uint64_t min, max; /* in the field's unit (bytes, ms, s, count) */
	const struct opt *section;
};

#define F(field) offsetof(struct config, field)

static const struct opt limits_opts[] = {
	{"max_connections", OPT_COUNT, F(max_connections), 1, 1000000, NULL},
	{"max_header_bytes", OPT_SIZE, F(max_header_bytes), 1 * KIB, 1 * MIB, NULL},
	{"max_body_bytes", OPT_SIZE, F(max_body_bytes), 1 * KIB, 16 * MIB, NULL},
	{"idle_timeout", OPT_MS, F(idle_timeout_ms), 1, DAY, NULL},
	{"request_timeout", OPT_MS, F(request_timeout_ms), 1, DAY, NULL},
	{NULL, 0, 0, 0, 0, NULL},
};

static const struct opt cache_opts[] = {
	{"dir", OPT_STR, F(cache_dir), 0, 0, NULL},
	{"max_bytes", OPT_SIZE, F(cache_max_bytes), 64 * KIB, SIZE_MAX, NULL},
	{NULL, 0, 0, 0, 0, NULL},
};

static const struct opt fetch_opts[] = {
	{"upstreams", OPT_LIST, F(upstreams), 0, 0, NULL},
	{"proxy", OPT_STR, F(proxy), 0, 0, NULL},
	{"ca_file", OPT_STR, F(ca_file), 0, 0, NULL},
	{"connect_timeout", OPT_MS, F(connect_timeout_ms), 1, DAY, NULL},
	{"timeout", OPT_MS, F(fetch_timeout_ms), 1, DAY, NULL},
	{"max_response_bytes", OPT_SIZE, F(max_response_bytes), 1 * KIB, 16 * MIB, NULL},
	{"backoff_base", OPT_SEC, F(backoff_base_s), 1, DAY / SEC, NULL},
	{"backoff_max", OPT_SEC, F(backoff_max_s), 1, 7 * DAY / SEC, NULL},
	{"max_parallel", OPT_COUNT_U64, F(max_parallel_fetches), 1, 4096, NULL},
	{NULL, 0, 0, 0, 0, NULL},
};

static const struct opt refresh_opts[] = {
	{"window", OPT_WINDOW, 0, 0, 0, NULL},
	{"min_interval", OPT_SEC, F(min_refresh_interval_s), 1, 7 * DAY / SEC, NULL},
	{"alert_thresholds", OPT_ALERTS, 0, 0, 0, NULL},
	{"alert_command", OPT_STR, F(alert_command), 0, 0, NULL},
	{NULL, 0, 0, 0, 0, NULL},
};

static const struct opt validation_opts[] = {
	{"max_clock_skew", OPT_SEC_I64, F(max_clock_skew_s), 0, DAY / SEC, NULL},
	{"default_validity", OPT_SEC_I64, F(default_validity_s), 0, 366 * DAY / SEC, NULL},
	{"allow_revoked", OPT_BOOL, F(allow_revoked), 0, 0, NULL},
	{NULL, 0, 0, 0, 0, NULL},
};

static const struct opt tls_opts[] = {
	{"listen", OPT_LIST, F(tls_listen), 0, 0, NULL},
	{"cert", OPT_STR, F(tls_cert), 0, 0, NULL},
	{"key", OPT_STR, F(tls_key), 0, 0, NULL},
	{NULL, 0, 0, 0, 0, NULL},
};

static const struct opt learn_opts[] = {
	{"enabled", OPT_BOOL, F(learn), 0, 0, NULL},
	{"idle_expiry", OPT_MS, F(learn_idle_ms), 1000, 366 * DAY, NULL},
	{"max_entries", OPT_COUNT, F(learn_max_entries), 0, 100000000, NULL},
	{"default_origin", OPT_STR, F(learn_default_origin), 0, 0, NULL},
	{"allowed_origins", OPT_LIST, F(learn_allowed_origins), 0, 0, NULL},
	{NULL, 0, 0, 0, 0, NULL},
};

static const struct opt cluster_opts[] = {
	{"node_name", OPT_STR, F(node_name), 0, 0, NULL},
	{"bind", OPT_STR, F(cluster_bind), 0, 0, NULL},
	{"advertise", OPT_STR, F(cluster_advertise), 0, 0, NULL},
	{"join", OPT_LIST, F(cluster_join), 0, 0, NULL},
	{"keyring_file", OPT_STR, F(cluster_keyring), 0, 0, NULL},
	{"profile", OPT_STR, F(cluster_profile), 0, 0, NULL},
	{"delegate_version", OPT_STR, F(cluster_delegate_version), 0, 0, NULL},
	{"compress", OPT_BOOL, F(cluster_compress), 0, 0, NULL},
	{"http_url", OPT_STR, F(cluster_http_url), 0, 0, NULL},
	{"stable_after", OPT_MS, F(cluster_stable_ms), 0, DAY, NULL},
	{"fallback_delay", OPT_MS, F(cluster_fallback_ms), 1000, DAY, NULL},
	{NULL, 0, 0, 0, 0, NULL},
};

static const struct opt root_opts[] = {
	{"listen", OPT_LIST, F(listen), 0, 0, NULL},
	{"admin_listen", OPT_LIST, F(admin_listen), 0, 0, NULL},
	{"tls", OPT_SECTION, 0, 0, 0, tls_opts},
	{"parents", OPT_LIST, F(parents), 0, 0, NULL},
	{"fallback_to_origin", OPT_BOOL, F(fallback_to_origin), 0, 0, NULL},
	{"log_level", OPT_LEVEL, F(log_level), 0, 0, NULL},
	{"limits", OPT_SECTION, 0, 0, 0, limits_opts},
	{"certificates", OPT_CERTS, 0, 0, 0, NULL},
	{"cert_dirs", OPT_LIST, F(cert_dirs), 0, 0, NULL},
	{"issuer_dirs", OPT_LIST, F(issuer_dirs), 0, 0, NULL},
	{"fetch_ca_issuers", OPT_BOOL, F(fetch_ca_issuers), 0, 0, NULL},
	{"write_ocsp_files", OPT_BOOL, F(write_ocsp_files), 0, 0, NULL},
	{"outputs", OPT_OUTPUTS, 0, 0, 0, NULL},
	{"cache", OPT_SECTION, 0, 0, 0, cache_opts},
	{"fetch", OPT_SECTION, 0, 0, 0, fetch_opts},
	{"refresh", OPT_SECTION, 0, 0, 0, refresh_opts},
	{"validation", OPT_SECTION, 0, 0, 0, validation_opts},
	{"learn", OPT_SECTION, 0, 0, 0, learn_opts},
	{"cluster", OPT_SECTION, 0, 0, 0, cluster_opts},
	{NULL, 0, 0, 0, 0, NULL},
};

#undef F

/* ---- loading ---- */

struct loader {
	const char *name;
	char *errbuf;
	size_t errlen;
};

static int lfail(struct loader *l, int err, int line, const char *fmt, ...) _printf_(4, 5);
static int lfail(struct loader *l, int err, int line, const char *fmt, ...)
{
	if (l->errbuf && l->errlen) {
		int n = snprintf(l->errbuf, l->errlen, "%s: line %d: ", l->name, line);
		if (n >= 0 && (size_t)n < l->errlen) {
			va_list ap;
			va_start(ap, fmt);
			vsnprintf(l->errbuf + n, l->errlen - (size_t)n, fmt, ap);
			va_end(ap);
		}
	}
	return err;
}

static const char *kind_name(const struct yaml_node *v)
{
	switch (v->kind) {
	case YAML_MAP:
		return "a mapping";
	case YAML_SEQ:
		return "a list";
	case YAML_SCALAR:
	default:
		return "a scalar";
	}
}

/* The scalar of v, or an error naming `what` was expected. */
static int want_scalar(struct loader *l, const struct yaml_node *v, const char *key,
		       const char *what, const char **ret)
{
	if (v->kind != YAML_SCALAR)
		return lfail(l, -EINVAL, v->line, "%s: expected %s, got %s", key, what,
			     kind_name(v));
	*ret = v->scalar;
	return 0;
}

/* A plain empty value ("key:" or "~") is an empty list; quoted "" is an (invalid) empty item. */
static int load_list(struct loader *l, const struct yaml_node *v, const char *key,
		     struct str_list *ret)
{
	struct str_list list = {0};

	if (v->kind == YAML_MAP)
		return lfail(l, -EINVAL, v->line,
			     "%s: expected a string or a list of strings, got "
			     "a mapping",
			     key);
	if (v->kind == YAML_SCALAR) {
		if (v->scalar[0] == 0 && !v->quoted) {
			str_list_clear(ret);
			return 0;
		}
		if (v->scalar[0] == 0)
			return lfail(l, -EINVAL, v->line, "%s: empty string", key);
		str_list_clear(ret);
		str_list_add(ret, v->scalar);
		return 0;
	}
	list.v = v->n ? xcalloc(v->n, sizeof(*list.v)) : NULL;
	for (size_t i = 0; i < v->n; i++) {
		const struct yaml_node *it = v->items[i];
		int r = 0;
		if (it->kind != YAML_SCALAR)
			r = lfail(l, -EINVAL, it->line, "%s[%zu]: expected a string, got %s", key,
				  i, kind_name(it));
		else if (it->scalar[0] == 0)
			r = lfail(l, -EINVAL, it->line, "%s[%zu]: empty string", key, i);
		if (r < 0) {
			str_list_clear(&list);
			return r;
		}
		list.v[list.n++] = xstrdup(it->scalar);
	}
	str_list_clear(ret);
	*ret = list;
	return 0;
}

static int load_str(struct loader *l, const struct yaml_node *v, const char *key, char **ret)
{
	const char *s = NULL;
	int r = want_scalar(l, v, key, "a string", &s);
	if (r < 0)
		return r;
	free(*ret);
	*ret = s[0] ? xstrdup(s) : NULL;
	return 0;
}

static int load_fraction(struct loader *l, const struct yaml_node *v, const char *key, double *ret)
{
	const char *s = NULL;
	double d = 0;
	int r = want_scalar(l, v, key, "a number", &s);
	if (r < 0)
		return r;
	if (parse_fraction(s, &d) < 0)
		return lfail(l, -EINVAL, v->line, "%s: '%s' is not a decimal number", key, s);
	if (!(d > 0 && d < 1))
		return lfail(l, -EINVAL, v->line, "%s: %s is out of range (0 < x < 1)", key, s);
	*ret = d;
	return 0;
}

static int load_window(struct loader *l, const struct yaml_node *v, const char *key,
		       struct config *c)
{
	double w[2];
	if (v->kind != YAML_SEQ || v->n != 2)
		return lfail(l, -EINVAL, v->line, "%s: expected a list of two fractions [lo, hi]",
			     key);
	for (size_t i = 0; i < 2; i++) {
		int r = load_fraction(l, v->items[i], key, &w[i]);
		if (r < 0)
			return r;
	}
	if (w[0] > w[1])
		return lfail(l, -EINVAL, v->line, "%s: lo must not be greater than hi", key);
	c->refresh_lo = w[0];
	c->refresh_hi = w[1];
	return 0;
}

static int load_alerts(struct loader *l, const struct yaml_node *v, const char *key,
		       struct config *c)
{
	double a[3] = {0, 0, 0};
	if (v->kind != YAML_SEQ || v->n < 1 || v->n > 3)
		return lfail(l, -EINVAL, v->line, "%s: expected a list of 1 to 3 fractions", key);
	for (size_t i = 0; i < v->n; i++) {
		int r = load_fraction(l, v->items[i], key, &a[i]);
		if (r < 0)
			return r;
		if (i > 0 && !(a[i] < a[i - 1]))
			return lfail(l, -EINVAL, v->items[i]->line,
				     "%s: thresholds must be strictly decreasing", key);
	}
	memcpy(c->alert_fraction, a, sizeof(a));
	return 0;
}

static int load_cert(struct loader *l, const struct yaml_node *v, size_t idx,
		     struct config_cert *cc)
{
	char key[64];

	snprintf(key, sizeof(key), "certificates[%zu]", idx);
	if (v->kind == YAML_SCALAR) {
		if (v->scalar[0] == 0)
			return lfail(l, -EINVAL, v->line, "%s: empty path", key);
		cc->path = xstrdup(v->scalar);
		return 0;
	}
	if (v->kind != YAML_MAP)
		return lfail(l, -EINVAL, v->line,
			     "%s: expected a path or a mapping with 'path', got a list", key);
	for (size_t i = 0; i < v->n; i++) {
		const char *k = v->keys[i];
		const struct yaml_node *it = v->items[i];
		char full[128];
		int r;

		snprintf(full, sizeof(full), "%s.%s", key, k);
		if (strcmp(k, "path") == 0)
			r = load_str(l, it, full, &cc->path);
		else if (strcmp(k, "issuer") == 0)
			r = load_str(l, it, full, &cc->issuer);
		else if (strcmp(k, "ocsp_file") == 0)
			r = load_str(l, it, full, &cc->ocsp_file);
		else if (strcmp(k, "upstreams") == 0)
			r = load_list(l, it, full, &cc->upstreams);
		else
			r = lfail(l, -EINVAL, v->key_lines[i], "unknown key '%s.%.64s'", key, k);
		if (r < 0)
			return r;
	}
	if (!cc->path)
		return lfail(l, -EINVAL, v->line, "%s: 'path' is required", key);
	return 0;
}

static int load_certs(struct loader *l, const struct yaml_node *v, struct config *c)
{
	struct config_cert *certs = NULL;
	size_t n = 0;

	if (v->kind == YAML_SCALAR && v->scalar[0] == 0 && !v->quoted)
		goto done; /* "certificates:" alone: none */
	if (v->kind != YAML_SEQ)
		return lfail(l, -EINVAL, v->line, "certificates: expected a list, got %s",
			     kind_name(v));
	certs = v->n ? xcalloc(v->n, sizeof(*certs)) : NULL;
	for (; n < v->n; n++) {
		int r = load_cert(l, v->items[n], n, &certs[n]);
		if (r < 0) {
			certs_free(certs, n + 1);
			return r;
		}
	}
done:
	certs_free(c->certs, c->n_certs);
	c->certs = certs;
	c->n_certs = n;
	return 0;
}

#define OUTPUT_INTERVAL_DEFAULT_MS (30 * SEC)

static int load_output(struct loader *l, const struct yaml_node *v, size_t idx,
		       struct config_output *o)
{
	char key[64];

	snprintf(key, sizeof(key), "outputs[%zu]", idx);
	o->command_interval_ms = OUTPUT_INTERVAL_DEFAULT_MS;
	if (v->kind != YAML_MAP)
		return lfail(l, -EINVAL, v->line, "%s: expected a mapping, got %s", key,
			     kind_name(v));
	for (size_t i = 0; i < v->n; i++) {
		const char *k = v->keys[i];
		const struct yaml_node *it = v->items[i];
		char full[128];
		const char *s = NULL;
		int r;

		snprintf(full, sizeof(full), "%s.%.40s", key, k);
		if (strcmp(k, "name") == 0) {
			r = load_str(l, it, full, &o->name);
		} else if (strcmp(k, "match") == 0) {
			/* One path or a list of them. */
			if (it->kind == YAML_SCALAR) {
				str_list_clear(&o->match);
				str_list_add(&o->match, it->scalar);
				r = 0;
			} else {
				r = load_list(l, it, full, &o->match);
			}
		} else if (strcmp(k, "ocsp_file") == 0) {
			r = load_str(l, it, full, &o->ocsp_file);
		} else if (strcmp(k, "issuer_file") == 0) {
			r = load_str(l, it, full, &o->issuer_file);
		} else if (strcmp(k, "haproxy_sockets") == 0) {
			r = load_list(l, it, full, &o->haproxy_sockets);
		} else if (strcmp(k, "command") == 0) {
			r = load_str(l, it, full, &o->command);
		} else if (strcmp(k, "command_interval") == 0) {
			r = want_scalar(l, it, full, "a duration", &s);
			if (r >= 0 && (config_parse_duration_ms(s, &o->command_interval_ms) < 0 ||
				       o->command_interval_ms > DAY))
				r = lfail(l, -EINVAL, it->line,
					  "%s: '%s' is not a duration from 0 to 1d (e.g. 30s)",
					  full, s);
		} else {
			r = lfail(l, -EINVAL, v->key_lines[i], "unknown key '%s.%.64s'", key, k);
		}
		if (r < 0)
			return r;
	}
	if (o->match.n == 0)
		return lfail(l, -EINVAL, v->line,
			     "%s: 'match' is required (certificate files or directories)", key);
	if (!o->ocsp_file && !o->issuer_file && o->haproxy_sockets.n == 0)
		return lfail(l, -EINVAL, v->line,
			     "%s: nothing to do: give ocsp_file, issuer_file or haproxy_sockets",
			     key);
	if (o->command && !o->ocsp_file && !o->issuer_file)
		return lfail(l, -EINVAL, v->line,
			     "%s: 'command' runs when a written file changes: give ocsp_file", key);
	if (!o->name) {
		char name[32];
		snprintf(name, sizeof(name), "output-%zu", idx + 1);
		o->name = xstrdup(name);
	}
	return 0;
}

static int load_outputs(struct loader *l, const struct yaml_node *v, struct config *c)
{
	struct config_output *outs = NULL;
	size_t n = 0;

	if (v->kind == YAML_SCALAR && v->scalar[0] == 0 && !v->quoted)
		goto done; /* "outputs:" alone: none */
	if (v->kind != YAML_SEQ)
		return lfail(l, -EINVAL, v->line, "outputs: expected a list, got %s", kind_name(v));
	outs = v->n ? xcalloc(v->n, sizeof(*outs)) : NULL;
	for (; n < v->n; n++) {
		int r = load_output(l, v->items[n], n, &outs[n]);
		if (r < 0) {
			outputs_free(outs, n + 1);
			return r;
		}
	}
done:
	outputs_free(c->outputs, c->n_outputs);
	c->outputs = outs;
	c->n_outputs = n;
	return 0;
}

static int load_number(struct loader *l, const struct opt *o, const struct yaml_node *v,
		       const char *key, uint64_t *ret)
{
	const char *s = NULL;
	uint64_t x = 0;
	size_t sz;
	int r;

	r = want_scalar(l, v, key, "a value", &s);
	if (r < 0)
		return r;
	switch (o->type) {
	case OPT_COUNT:
	case OPT_COUNT_U64:
		r = parse_u64(s, strlen(s), &x);
		if (r == -EINVAL)
			return lfail(l, r, v->line, "%s: '%s' is not a whole number", key, s);
		break;
	case OPT_SIZE:
		r = config_parse_size(s, &sz);
		if (r == -EINVAL)
			return lfail(l, r, v->line,
				     "%s: '%s' is not a size (e.g. 4096, 64KiB, 256MiB)", key, s);
		x = sz;
		break;
	default:
		r = config_parse_duration_ms(s, &x);
		if (r == -EINVAL)
			return lfail(l, r, v->line,
				     "%s: '%s' is not a duration (e.g. 250ms, 10s, 5m, 2h, 1d)",
				     key, s);
		if (r >= 0 && o->type != OPT_MS) {
			if (x % SEC)
				return lfail(l, -EINVAL, v->line,
					     "%s: '%s' must be a whole number of seconds", key, s);
			x /= SEC;
		}
		break;
	}
	if (r < 0 || x < o->min || x > o->max)
		return lfail(l, -EINVAL, v->line, "%s: '%s' is out of range", key, s);
	*ret = x;
	return 0;
}

static int load_section(struct loader *l, struct config *c, const struct yaml_node *map,
			const struct opt *opts, const char *prefix);

static int load_opt(struct loader *l, struct config *c, const struct opt *o,
		    const struct yaml_node *v, const char *key)
{
	void *field = (char *)c + o->off;
	uint64_t x = 0;
	const char *s = NULL;
	int r;

	switch (o->type) {
	case OPT_STR:
		return load_str(l, v, key, field);
	case OPT_LIST:
		return load_list(l, v, key, field);
	case OPT_BOOL:
		r = want_scalar(l, v, key, "true or false", &s);
		if (r < 0)
			return r;
		if (parse_bool(s, field) < 0)
			return lfail(l, -EINVAL, v->line, "%s: '%s' is not a boolean (true/false)",
				     key, s);
		return 0;
	case OPT_LEVEL:
		r = want_scalar(l, v, key, "a log level", &s);
		if (r < 0)
			return r;
		if (config_parse_log_level(s, field) < 0)
			return lfail(l, -EINVAL, v->line,
				     "%s: '%s' is not a log level (debug, info, notice, warning, "
				     "err, crit, alert, emerg or 0-7)",
				     key, s);
		return 0;
	case OPT_WINDOW:
		return load_window(l, v, key, c);
	case OPT_ALERTS:
		return load_alerts(l, v, key, c);
	case OPT_CERTS:
		return load_certs(l, v, c);
	case OPT_OUTPUTS:
		return load_outputs(l, v, c);
	case OPT_SECTION:
		return load_section(l, c, v, o->section, key);
	case OPT_COUNT:
	case OPT_SIZE:
		r = load_number(l, o, v, key, &x);
		if (r >= 0)
			*(size_t *)field = (size_t)x;
		return r;
	case OPT_SEC_I64:
		r = load_number(l, o, v, key, &x);
		if (r >= 0)
			*(int64_t *)field = (int64_t)x;
		return r;
	case OPT_COUNT_U64:
	case OPT_MS:
	case OPT_SEC:
	default:
		r = load_number(l, o, v, key, &x);
		if (r >= 0)
			*(uint64_t *)field = x;
		return r;
	}
}

static int load_section(struct loader *l, struct config *c, const struct yaml_node *map,
			const struct opt *opts, const char *prefix)
{
	/* "limits:" with nothing under it is an empty section. */
	if (map->kind == YAML_SCALAR && map->scalar[0] == 0 && !map->quoted)
		return 0;
	if (map->kind != YAML_MAP)
		return lfail(l, -EINVAL, map->line, "%s: expected a mapping, got %s",
			     prefix ? prefix : "the document", kind_name(map));
	for (size_t i = 0; i < map->n; i++) {
		const struct opt *o = opts;
		char key[160];

		snprintf(key, sizeof(key), "%s%s%.100s", prefix ? prefix : "", prefix ? "." : "",
			 map->keys[i]);
		while (o->key && strcmp(o->key, map->keys[i]) != 0)
			o++;
		if (!o->key)
			return lfail(l, -EINVAL, map->key_lines[i], "unknown key '%s'", key);
		int r = load_opt(l, c, o, map->items[i], key);
		if (r < 0)
			return r;
	}
	return 0;
}

int config_load_string(struct config *c, const char *name, const char *text, size_t len,
		       char *errbuf, size_t errlen)
{
	struct loader l = {.name = name ? name : "<config>", .errbuf = errbuf, .errlen = errlen};
	struct yaml_node *root = NULL;
	char yerr[256];
	struct config tmp;
	int r;

	if (errbuf && errlen)
		errbuf[0] = 0;
	r = yaml_parse(text, len, &root, yerr, sizeof(yerr));
	if (r < 0) {
		if (errbuf && errlen)
			snprintf(errbuf, errlen, "%s: %s", l.name, yerr);
		return r;
	}
	config_copy(&tmp, c);
	r = load_section(&l, &tmp, root, root_opts, NULL);
	yaml_node_free(root);
	if (r < 0) {
		config_done(&tmp);
		return r;
	}
	config_done(c);
	*c = tmp;
	return 0;
}

int config_load_file(struct config *c, const char *path, char *errbuf, size_t errlen)
{
	_cleanup_buf_ struct buf b = BUF_INIT;
	struct stat st;
	int fd, r = 0;

	if (errbuf && errlen)
		errbuf[0] = 0;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		r = -errno;
		goto fail;
	}
	if (fstat(fd, &st) < 0) {
		r = -errno;
		goto fail;
	}
	if (S_ISDIR(st.st_mode)) {
		r = -EISDIR;
		goto fail;
	}
	for (;;) {
		buf_reserve(&b, 65536);
		ssize_t n = read(fd, b.data + b.len, 65536);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = -errno;
			goto fail;
		}
		if (n == 0)
			break;
		b.len += (size_t)n;
		if (b.len > CONFIG_MAX_FILE_BYTES) {
			close(fd);
			if (errbuf && errlen)
				snprintf(errbuf, errlen, "%s: larger than %d bytes", path,
					 CONFIG_MAX_FILE_BYTES);
			return -EMSGSIZE;
		}
	}
	close(fd);
	fd = -1;

	r = config_load_string(c, path, b.data ? (const char *)b.data : "", b.len, errbuf, errlen);
	if (r < 0)
		return r;
	free(c->path);
	c->path = xstrdup(path);
	return 0;
fail:
	if (fd >= 0)
		close(fd);
	if (errbuf && errlen)
		snprintf(errbuf, errlen, "%s: %s", path, strerror(-r));
	return r;
}

/* ---- validation ---- */

static int vfail(char *errbuf, size_t errlen, const char *fmt, ...) _printf_(3, 4);
static int vfail(char *errbuf, size_t errlen, const char *fmt, ...)
{
	if (errbuf && errlen) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(errbuf, errlen, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

static bool url_ok(const char *u)
{
	return (strncmp(u, "http://", 7) == 0 && u[7]) || (strncmp(u, "https://", 8) == 0 && u[8]);
}

static int validate_addrs(const struct str_list *l, const char *what, char *errbuf, size_t errlen)
{
	for (size_t i = 0; i < l->n; i++) {
		struct sockaddr_storage ss;
		if (config_parse_addr(l->v[i], &ss) < 0)
			return vfail(errbuf, errlen,
				     "%s: '%s' is not ADDR:PORT, [IPV6]:PORT or :PORT", what,
				     l->v[i]);
	}
	return 0;
}

static int validate_urls(const struct str_list *l, const char *what, char *errbuf, size_t errlen)
{
	for (size_t i = 0; i < l->n; i++)
		if (!url_ok(l->v[i]))
			return vfail(errbuf, errlen, "%s: '%s' is not an http:// or https:// URL",
				     what, l->v[i]);
	return 0;
}

int config_parse_delegate_version(const char *s, uint8_t ret[3])
{
	unsigned v[3];
	char tail;
	if (!s || sscanf(s, "%u,%u,%u%c", &v[0], &v[1], &v[2], &tail) != 3 || v[0] > 255 ||
	    v[1] > 255 || v[2] > 255 || v[0] > v[1] || v[2] < v[0] || v[2] > v[1])
		return -EINVAL;
	for (int i = 0; i < 3; i++)
		ret[i] = (uint8_t)v[i];
	return 0;
}

static int validate_cluster(const struct config *c, char *errbuf, size_t errlen)
{
	struct sockaddr_storage ss;
	uint8_t dv[3];
	if (c->cluster_bind && config_parse_addr(c->cluster_bind, &ss) < 0)
		return vfail(errbuf, errlen, "cluster.bind: '%s' is not ADDR:PORT",
			     c->cluster_bind);
	if (c->cluster_advertise && config_parse_addr(c->cluster_advertise, &ss) < 0)
		return vfail(errbuf, errlen, "cluster.advertise: '%s' is not ADDR:PORT",
			     c->cluster_advertise);
	int r = validate_addrs(&c->cluster_join, "cluster.join", errbuf, errlen);
	if (r < 0)
		return r;
	if (c->cluster_profile && strcmp(c->cluster_profile, "lan") != 0 &&
	    strcmp(c->cluster_profile, "wan") != 0 && strcmp(c->cluster_profile, "local") != 0)
		return vfail(errbuf, errlen, "cluster.profile: '%s' is not lan, wan or local",
			     c->cluster_profile);
	if (c->cluster_delegate_version &&
	    config_parse_delegate_version(c->cluster_delegate_version, dv) < 0)
		return vfail(errbuf, errlen,
			     "cluster.delegate_version: '%s' is not MIN,MAX,CUR (0-255, "
			     "MIN <= CUR <= MAX)",
			     c->cluster_delegate_version);
	if (c->cluster_http_url && !url_ok(c->cluster_http_url))
		return vfail(errbuf, errlen, "cluster.http_url: '%s' is not an http(s):// URL",
			     c->cluster_http_url);
	if (c->node_name && (!c->node_name[0] || strlen(c->node_name) > 255))
		return vfail(errbuf, errlen, "cluster.node_name: must be 1 to 255 bytes");
	if ((c->cluster_join.n || c->cluster_keyring) && !c->cluster_bind)
		return vfail(errbuf, errlen, "cluster.join and keyring_file need cluster.bind");
	return 0;
}

static int validate_outputs(const struct config *c, char *errbuf, size_t errlen)
{
	for (size_t i = 0; i < c->n_outputs; i++) {
		const struct config_output *o = &c->outputs[i];
		const char *name = o->name ? o->name : "?";
		char why[300];

		for (size_t j = 0; j < i; j++)
			if (o->name && c->outputs[j].name &&
			    strcmp(o->name, c->outputs[j].name) == 0)
				return vfail(errbuf, errlen,
					     "outputs: two outputs are named '%.100s'", name);
		for (size_t j = 0; j < o->match.n; j++)
			if (o->match.v[j][0] != '/')
				return vfail(
					errbuf, errlen,
					"outputs '%.100s': match '%.200s' is not an absolute path",
					name, o->match.v[j]);
		const char *tmpl[2] = {o->ocsp_file, o->issuer_file};
		for (size_t j = 0; j < 2; j++)
			if (tmpl[j] && outrule_check(tmpl[j], why, sizeof(why)) < 0)
				return vfail(errbuf, errlen, "outputs '%.100s': %s: %s", name,
					     j == 0 ? "ocsp_file" : "issuer_file", why);
		for (size_t j = 0; j < o->haproxy_sockets.n; j++)
			if (config_parse_socket(o->haproxy_sockets.v[j], NULL) < 0)
				return vfail(
					errbuf, errlen,
					"outputs '%.100s': haproxy_sockets: '%.200s' is neither "
					"an absolute unix socket path (under 108 bytes) nor "
					"ADDR:PORT",
					name, o->haproxy_sockets.v[j]);
		if (o->command && !o->command[0])
			return vfail(errbuf, errlen, "outputs '%.100s': command is empty", name);
	}
	return 0;
}

static bool str_list_equal(const struct str_list *a, const struct str_list *b)
{
	if (a->n != b->n)
		return false;
	for (size_t i = 0; i < a->n; i++)
		if (strcmp(a->v[i], b->v[i]) != 0)
			return false;
	return true;
}

static bool opt_str_equal(const char *a, const char *b)
{
	return a == b || (a && b && strcmp(a, b) == 0);
}

bool config_outputs_equal(const struct config *a, const struct config *b)
{
	if (a->n_outputs != b->n_outputs || a->write_ocsp_files != b->write_ocsp_files)
		return false;
	for (size_t i = 0; i < a->n_outputs; i++) {
		const struct config_output *x = &a->outputs[i], *y = &b->outputs[i];
		if (!opt_str_equal(x->name, y->name) || !str_list_equal(&x->match, &y->match) ||
		    !opt_str_equal(x->ocsp_file, y->ocsp_file) ||
		    !opt_str_equal(x->issuer_file, y->issuer_file) ||
		    !str_list_equal(&x->haproxy_sockets, &y->haproxy_sockets) ||
		    !opt_str_equal(x->command, y->command) ||
		    x->command_interval_ms != y->command_interval_ms)
			return false;
	}
	return true;
}

int config_parse_socket(const char *s, struct sockaddr_storage *ret)
{
	struct sockaddr_storage ss;
	if (s[0] == '/') {
		struct sockaddr_un *un = (struct sockaddr_un *)&ss;
		size_t n = strlen(s);
		if (n >= sizeof(un->sun_path))
			return -EINVAL;
		memset(&ss, 0, sizeof(ss));
		un->sun_family = AF_UNIX;
		memcpy(un->sun_path, s, n + 1);
	} else if (config_parse_addr(s, &ss) < 0) {
		return -EINVAL;
	}
	if (ret)
		*ret = ss;
	return 0;
}

int config_validate(const struct config *c, char *errbuf, size_t errlen)
{
	int r;

	if (errbuf && errlen)
		errbuf[0] = 0;
	if (c->listen.n == 0)
		return vfail(errbuf, errlen, "listen: at least one address is required");
	r = validate_addrs(&c->listen, "listen", errbuf, errlen);
	if (r < 0)
		return r;
	r = validate_addrs(&c->tls_listen, "tls.listen", errbuf, errlen);
	if (r < 0)
		return r;
	if (c->tls_listen.n && (!c->tls_cert || !c->tls_key))
		return vfail(errbuf, errlen, "tls.listen needs tls.cert and tls.key");
	r = validate_addrs(&c->admin_listen, "admin_listen", errbuf, errlen);
	if (r < 0)
		return r;
	if (c->log_level < LOG_EMERG || c->log_level > LOG_DEBUG)
		return vfail(errbuf, errlen, "log_level: %d is not between 0 and 7", c->log_level);

	if (c->max_connections == 0)
		return vfail(errbuf, errlen, "limits.max_connections must be at least 1");
	if (c->max_header_bytes == 0 || c->max_body_bytes == 0)
		return vfail(errbuf, errlen, "limits: header and body limits must be positive");
	if (c->idle_timeout_ms == 0 || c->request_timeout_ms == 0)
		return vfail(errbuf, errlen, "limits: timeouts must be positive");

	for (size_t i = 0; i < c->n_certs; i++) {
		const struct config_cert *cc = &c->certs[i];
		char what[64];
		if (!cc->path || !cc->path[0])
			return vfail(errbuf, errlen, "certificates[%zu]: no path", i);
		snprintf(what, sizeof(what), "certificates[%zu].upstreams", i);
		r = validate_urls(&cc->upstreams, what, errbuf, errlen);
		if (r < 0)
			return r;
	}

	if (c->cache_max_bytes < c->max_response_bytes)
		return vfail(errbuf, errlen,
			     "cache.max_bytes (%zu) is smaller than fetch.max_response_bytes (%zu)",
			     c->cache_max_bytes, c->max_response_bytes);

	r = validate_urls(&c->upstreams, "fetch.upstreams", errbuf, errlen);
	if (r < 0)
		return r;
	if (c->learn_default_origin && !url_ok(c->learn_default_origin))
		return vfail(errbuf, errlen,
			     "learn.default_origin: '%s' is not an http:// or https:// URL",
			     c->learn_default_origin);
	r = validate_urls(&c->learn_allowed_origins, "learn.allowed_origins", errbuf, errlen);
	if (r < 0)
		return r;
	for (size_t i = 0; i < c->parents.n; i++)
		if (!url_ok(c->parents.v[i]))
			return vfail(errbuf, errlen,
				     "parents: '%s' is not an http:// or https:// URL",
				     c->parents.v[i]);
	if (c->proxy && !url_ok(c->proxy))
		return vfail(errbuf, errlen, "fetch.proxy: '%s' is not an http:// or https:// URL",
			     c->proxy);
	r = validate_cluster(c, errbuf, errlen);
	if (r < 0)
		return r;
	if (c->connect_timeout_ms == 0 || c->fetch_timeout_ms == 0)
		return vfail(errbuf, errlen, "fetch: timeouts must be positive");
	if (c->max_response_bytes == 0)
		return vfail(errbuf, errlen, "fetch.max_response_bytes must be positive");
	if (c->backoff_base_s < 1)
		return vfail(errbuf, errlen, "fetch.backoff_base must be at least 1s");
	if (c->backoff_max_s < c->backoff_base_s)
		return vfail(errbuf, errlen,
			     "fetch.backoff_max (%llus) is smaller than fetch.backoff_base (%llus)",
			     (unsigned long long)c->backoff_max_s,
			     (unsigned long long)c->backoff_base_s);
	if (c->max_parallel_fetches == 0)
		return vfail(errbuf, errlen, "fetch.max_parallel must be at least 1");

	if (!(c->refresh_lo > 0 && c->refresh_lo <= c->refresh_hi && c->refresh_hi < 1))
		return vfail(errbuf, errlen, "refresh.window: need 0 < lo <= hi < 1, got [%g, %g]",
			     c->refresh_lo, c->refresh_hi);
	if (c->min_refresh_interval_s < 1)
		return vfail(errbuf, errlen, "refresh.min_interval must be at least 1s");
	if (!(c->alert_fraction[0] > 0 && c->alert_fraction[0] < 1))
		return vfail(errbuf, errlen,
			     "refresh.alert_thresholds: the first threshold must be in (0, 1)");
	for (size_t i = 1; i < ARRAY_SIZE(c->alert_fraction); i++) {
		double a = c->alert_fraction[i], prev = c->alert_fraction[i - 1];
		/* 0 ends the list; an unused slot cannot be followed by a used one */
		if (a == 0)
			continue;
		if (!(a > 0 && a < prev))
			return vfail(errbuf, errlen,
				     "refresh.alert_thresholds: thresholds must be strictly "
				     "decreasing fractions in (0, 1)");
	}
	if (c->max_clock_skew_s < 0)
		return vfail(errbuf, errlen, "validation.max_clock_skew must not be negative");
	if (c->default_validity_s < 0)
		return vfail(errbuf, errlen, "validation.default_validity must not be negative");
	return validate_outputs(c, errbuf, errlen);
}
