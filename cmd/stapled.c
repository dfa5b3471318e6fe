/* SPDX-License-Identifier: Apache-2.0 */
/*
 * stapled: argv → config → node_run → exit code. Flags override the config file; the same
 * function rebuilds the config on SIGHUP, so a reload sees the file's new contents with the
 * command line still applied on top.
 */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config-build.h"
#include "node/config.h"
#include "node/node.h"

int verify_main(int argc, char **argv);
int health_main(int argc, char **argv);

struct cli {
	const char *config_path;
	struct str_list listen, admin_listen, certs, cert_dirs, issuer_dirs, upstreams;
	struct str_list tls_listen, parents, join;
	const char *node_name, *cluster_bind, *keyring, *profile;
	const char *tls_cert, *tls_key;
	const char *cache_dir;
	const char *proxy;
	const char *log_level;
	bool check_config;
};

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: stapled [OPTIONS]\n"
		"       stapled verify RESPONSE.der --issuer ISSUER.pem [--cert CERT.pem] [--at "
		"TIME]\n"
		"       stapled health [--timeout SECONDS] [URL]\n"
		"\n"
		"A caching OCSP responder that keeps a verified, fresh OCSP response ready for "
		"every\n"
		"certificate it knows, for web servers to staple.\n"
		"\n"
		"Options (flags override the configuration file):\n"
		"  -c, --config FILE         YAML configuration file (see stapled(8))\n"
		"  -l, --listen ADDR:PORT    OCSP responder address (repeatable; default "
		"127.0.0.1:8889)\n"
		"      --admin-listen ADDR:PORT  metrics/health/admin address (repeatable;\n"
		"                            default 127.0.0.1:8890)\n"
		"      --tls-listen ADDR:PORT  OCSP over TLS with ALPN h2 and http/1.1 "
		"(repeatable;\n"
		"                            needs --tls-cert and --tls-key)\n"
		"      --tls-cert FILE       PEM certificate chain (leaf first) for TLS listeners\n"
		"      --tls-key FILE        PEM private key for TLS listeners\n"
		"      --cert FILE           a certificate (PEM/DER, chain allowed) to keep "
		"fresh (repeatable)\n"
		"  -d, --cert-dir DIR        a watched directory of certificates (repeatable)\n"
		"      --issuer-dir DIR      a directory of issuer certificates (repeatable)\n"
		"      --cache-dir DIR       persist responses here (default: memory only)\n"
		"  -u, --upstream URL        OCSP responder to ask instead of the certificates' "
		"AIA URLs\n"
		"                            (repeatable, tried in order)\n"
		"      --parent URL          a stapled parent node to ask instead of the CA "
		"(repeatable,\n"
		"                            tried in order, HTTP/2)\n"
		"      --proxy URL           forward HTTP proxy for upstream fetches\n"
		"      --node-name NAME      this node's name in the cluster (default: host name)\n"
		"      --cluster-bind ADDR:PORT  gossip with other nodes here (UDP and TCP)\n"
		"      --join ADDR:PORT      a cluster member to join through (repeatable)\n"
		"      --keyring FILE        encrypt gossip: base64 keys, one per line, first "
		"primary\n"
		"      --profile PROFILE     gossip timings: lan (default), wan or local\n"
		"      --log-level LEVEL     debug, info, notice, warning, err (default info)\n"
		"      --check-config        validate the configuration and exit\n"
		"  -V, --version             print the version and exit\n"
		"  -h, --help                print this help and exit\n");
}

/* A list given on the command line replaces the file's (flags override the file). */
static void replace_list(struct str_list *dst, const struct str_list *flags)
{
	if (!flags->n)
		return;
	str_list_clear(dst);
	for (size_t i = 0; i < flags->n; i++)
		str_list_add(dst, flags->v[i]);
}

static int load_config(struct config *out, void *ud, char *err, size_t errlen)
{
	const struct cli *cli = ud;
	config_init(out);
	int r = 0;
	if (cli->config_path) {
		r = config_load_file(out, cli->config_path, err, errlen);
		if (r < 0)
			goto fail;
	}
	replace_list(&out->listen, &cli->listen);
	replace_list(&out->admin_listen, &cli->admin_listen);
	if (cli->certs.n) {
		out->certs =
			realloc(out->certs, (out->n_certs + cli->certs.n) * sizeof(*out->certs));
		if (!out->certs)
			abort();
		for (size_t i = 0; i < cli->certs.n; i++) {
			memset(&out->certs[out->n_certs], 0, sizeof(out->certs[0]));
			out->certs[out->n_certs++].path = strdup(cli->certs.v[i]);
		}
	}
	replace_list(&out->parents, &cli->parents);
	replace_list(&out->tls_listen, &cli->tls_listen);
	if (cli->tls_cert) {
		free(out->tls_cert);
		out->tls_cert = strdup(cli->tls_cert);
	}
	if (cli->tls_key) {
		free(out->tls_key);
		out->tls_key = strdup(cli->tls_key);
	}
	for (size_t i = 0; i < cli->cert_dirs.n; i++)
		str_list_add(&out->cert_dirs, cli->cert_dirs.v[i]);
	for (size_t i = 0; i < cli->issuer_dirs.n; i++)
		str_list_add(&out->issuer_dirs, cli->issuer_dirs.v[i]);
	replace_list(&out->upstreams, &cli->upstreams);
	if (cli->cache_dir) {
		free(out->cache_dir);
		out->cache_dir = cli->cache_dir[0] ? strdup(cli->cache_dir) : NULL;
	}
	if (cli->proxy) {
		free(out->proxy);
		out->proxy = strdup(cli->proxy);
	}
	replace_list(&out->cluster_join, &cli->join);
	if (cli->node_name) {
		free(out->node_name);
		out->node_name = strdup(cli->node_name);
	}
	if (cli->cluster_bind) {
		free(out->cluster_bind);
		out->cluster_bind = strdup(cli->cluster_bind);
	}
	if (cli->keyring) {
		free(out->cluster_keyring);
		out->cluster_keyring = strdup(cli->keyring);
	}
	if (cli->profile) {
		free(out->cluster_profile);
		out->cluster_profile = strdup(cli->profile);
	}
	if (cli->log_level && config_parse_log_level(cli->log_level, &out->log_level) < 0) {
		snprintf(err, errlen, "--log-level: unknown level \"%s\"", cli->log_level);
		r = -EINVAL;
		goto fail;
	}
	r = config_validate(out, err, errlen);
	if (r < 0)
		goto fail;
	return 0;
fail:
	config_done(out);
	return r;
}

enum {
	OPT_ADMIN_LISTEN = 256,
	OPT_CERT,
	OPT_ISSUER_DIR,
	OPT_CACHE_DIR,
	OPT_PROXY,
	OPT_LOG_LEVEL,
	OPT_CHECK_CONFIG,
	OPT_TLS_LISTEN,
	OPT_PARENT,
	OPT_TLS_CERT,
	OPT_TLS_KEY,
	OPT_NODE_NAME,
	OPT_CLUSTER_BIND,
	OPT_JOIN,
	OPT_KEYRING,
	OPT_PROFILE,
};

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "verify") == 0)
		return verify_main(argc - 1, argv + 1);
	if (argc > 1 && strcmp(argv[1], "health") == 0)
		return health_main(argc - 1, argv + 1);

	static const struct option opts[] = {
		{"config", required_argument, NULL, 'c'},
		{"listen", required_argument, NULL, 'l'},
		{"admin-listen", required_argument, NULL, OPT_ADMIN_LISTEN},
		{"cert", required_argument, NULL, OPT_CERT},
		{"cert-dir", required_argument, NULL, 'd'},
		{"issuer-dir", required_argument, NULL, OPT_ISSUER_DIR},
		{"cache-dir", required_argument, NULL, OPT_CACHE_DIR},
		{"upstream", required_argument, NULL, 'u'},
		{"proxy", required_argument, NULL, OPT_PROXY},
		{"log-level", required_argument, NULL, OPT_LOG_LEVEL},
		{"check-config", no_argument, NULL, OPT_CHECK_CONFIG},
		{"tls-listen", required_argument, NULL, OPT_TLS_LISTEN},
		{"parent", required_argument, NULL, OPT_PARENT},
		{"tls-cert", required_argument, NULL, OPT_TLS_CERT},
		{"tls-key", required_argument, NULL, OPT_TLS_KEY},
		{"node-name", required_argument, NULL, OPT_NODE_NAME},
		{"cluster-bind", required_argument, NULL, OPT_CLUSTER_BIND},
		{"join", required_argument, NULL, OPT_JOIN},
		{"keyring", required_argument, NULL, OPT_KEYRING},
		{"profile", required_argument, NULL, OPT_PROFILE},
		{"version", no_argument, NULL, 'V'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	struct cli cli = {0};
	int c;
	while ((c = getopt_long(argc, argv, "c:l:d:u:Vh", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			cli.config_path = optarg;
			break;
		case 'l':
			str_list_add(&cli.listen, optarg);
			break;
		case OPT_ADMIN_LISTEN:
			str_list_add(&cli.admin_listen, optarg);
			break;
		case OPT_CERT:
			str_list_add(&cli.certs, optarg);
			break;
		case 'd':
			str_list_add(&cli.cert_dirs, optarg);
			break;
		case OPT_ISSUER_DIR:
			str_list_add(&cli.issuer_dirs, optarg);
			break;
		case OPT_CACHE_DIR:
			cli.cache_dir = optarg;
			break;
		case 'u':
			str_list_add(&cli.upstreams, optarg);
			break;
		case OPT_PROXY:
			cli.proxy = optarg;
			break;
		case OPT_LOG_LEVEL:
			cli.log_level = optarg;
			break;
		case OPT_CHECK_CONFIG:
			cli.check_config = true;
			break;
		case OPT_PARENT:
			str_list_add(&cli.parents, optarg);
			break;
		case OPT_TLS_LISTEN:
			str_list_add(&cli.tls_listen, optarg);
			break;
		case OPT_TLS_CERT:
			cli.tls_cert = optarg;
			break;
		case OPT_TLS_KEY:
			cli.tls_key = optarg;
			break;
		case OPT_NODE_NAME:
			cli.node_name = optarg;
			break;
		case OPT_CLUSTER_BIND:
			cli.cluster_bind = optarg;
			break;
		case OPT_JOIN:
			str_list_add(&cli.join, optarg);
			break;
		case OPT_KEYRING:
			cli.keyring = optarg;
			break;
		case OPT_PROFILE:
			cli.profile = optarg;
			break;
		case 'V':
			printf("stapled %s\n", STAPLED_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "stapled: unexpected argument \"%s\"\n", argv[optind]);
		usage(stderr);
		return 2;
	}
	int rc;
	if (cli.check_config) {
		struct config cfg;
		char err[512] = "";
		if (load_config(&cfg, &cli, err, sizeof(err)) < 0) {
			fprintf(stderr, "stapled: %s\n", err);
			rc = 1;
		} else {
			printf("%s: configuration OK\n",
			       cli.config_path ? cli.config_path : "defaults");
			config_done(&cfg);
			rc = 0;
		}
	} else {
		struct node_opts no = {.load_config = load_config, .ud = &cli};
		rc = node_run(&no);
	}
	str_list_clear(&cli.listen);
	str_list_clear(&cli.admin_listen);
	str_list_clear(&cli.tls_listen);
	str_list_clear(&cli.parents);
	str_list_clear(&cli.certs);
	str_list_clear(&cli.cert_dirs);
	str_list_clear(&cli.issuer_dirs);
	str_list_clear(&cli.upstreams);
	str_list_clear(&cli.join);
	return rc;
}
