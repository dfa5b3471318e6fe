/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `stapled verify`: the daemon's own validator applied to a file, for operators asking "would
 * stapled serve this?" — it prints what the response says and every check that failed, and
 * exits 0 only for a response the daemon would serve at the given time.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "proto/buf.h"
#include "proto/ocsp.h"
#include "proto/pki.h"

int verify_main(int argc, char **argv);

static int read_file(const char *path, struct buf *out)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return -errno;
	uint8_t chunk[65536];
	size_t n;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
		buf_append(out, chunk, n);
		if (out->len > 16 * 1024 * 1024) {
			fclose(f);
			return -EFBIG;
		}
	}
	int err = ferror(f) ? -EIO : 0;
	fclose(f);
	return err;
}

static int load_cert(const char *path, const char *what, struct pki_cert **ret)
{
	struct buf b = BUF_INIT;
	int r = read_file(path, &b);
	if (r < 0) {
		fprintf(stderr, "stapled verify: %s %s: %s\n", what, path, strerror(-r));
		buf_done(&b);
		return r;
	}
	struct pki_cert **certs;
	size_t n;
	r = pki_certs_parse(b.data, b.len, &certs, &n);
	buf_done(&b);
	if (r < 0) {
		fprintf(stderr, "stapled verify: %s %s: no certificate found\n", what, path);
		return r;
	}
	*ret = pki_cert_ref(certs[0]);
	pki_certs_free(certs, n);
	return 0;
}

static int parse_time(const char *s, int64_t *ret)
{
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (!errno && *s && !*end) {
		*ret = v;
		return 0;
	}
	struct tm tm = {0};
	end = strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm);
	if (!end || *end)
		return -EINVAL;
	*ret = (int64_t)timegm(&tm);
	return 0;
}

static const char *fmt_time(int64_t t, char out[32])
{
	time_t tt = (time_t)t;
	struct tm tm;
	gmtime_r(&tt, &tm);
	strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
	return out;
}

int verify_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"issuer", required_argument, NULL, 'i'},
		{"cert", required_argument, NULL, 'c'},
		{"at", required_argument, NULL, 't'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	const char *issuer_path = NULL, *cert_path = NULL, *at = NULL;
	int c;
	while ((c = getopt_long(argc, argv, "i:c:t:h", opts, NULL)) != -1) {
		switch (c) {
		case 'i':
			issuer_path = optarg;
			break;
		case 'c':
			cert_path = optarg;
			break;
		case 't':
			at = optarg;
			break;
		case 'h':
			printf("Usage: stapled verify RESPONSE.der --issuer ISSUER.pem [--cert "
			       "CERT.pem] "
			       "[--at TIME]\n"
			       "TIME: Unix seconds or YYYY-MM-DDTHH:MM:SSZ (default: now).\n"
			       "Exit status: 0 servable, 1 not servable, 2 usage or unreadable "
			       "input.\n");
			return 0;
		default:
			return 2;
		}
	}
	if (optind + 1 != argc || !issuer_path) {
		fprintf(stderr, "Usage: stapled verify RESPONSE.der --issuer ISSUER.pem "
				"[--cert CERT.pem] [--at TIME]\n");
		return 2;
	}
	int64_t now = (int64_t)time(NULL);
	if (at && parse_time(at, &now) < 0) {
		fprintf(stderr,
			"stapled verify: --at: expected Unix seconds or "
			"YYYY-MM-DDTHH:MM:SSZ, got \"%s\"\n",
			at);
		return 2;
	}
	struct pki_cert *issuer = NULL, *cert = NULL;
	if (load_cert(issuer_path, "issuer", &issuer) < 0)
		return 2;
	if (cert_path && load_cert(cert_path, "certificate", &cert) < 0) {
		pki_cert_unref(issuer);
		return 2;
	}
	struct buf der = BUF_INIT;
	int r = read_file(argv[optind], &der);
	if (r < 0) {
		fprintf(stderr, "stapled verify: %s: %s\n", argv[optind], strerror(-r));
		pki_cert_unref(issuer);
		if (cert)
			pki_cert_unref(cert);
		buf_done(&der);
		return 2;
	}

	struct ocsp_policy policy;
	ocsp_policy_default(&policy);
	struct ocsp_info info;
	uint32_t fails = 0;
	/* Learn the response's CertID form first, then check against the expected CertID. */
	ocsp_response_check(der.data, der.len, issuer, NULL, now, &policy, &info, &fails);
	struct certid want;
	bool have_want = false;
	if (info.has_id) {
		if (cert) {
			have_want = pki_certid(cert, issuer, info.id.alg, &want) == 0;
		} else {
			/* No certificate: at least the CertID must name this issuer. */
			want = info.id;
			have_want = pki_issuer_hashes(issuer, info.id.alg, want.name_hash,
						      want.key_hash) == 0;
		}
	}
	r = ocsp_response_check(der.data, der.len, issuer, have_want ? &want : NULL, now, &policy,
				&info, &fails);

	char t[32];
	printf("file:            %s\n", argv[optind]);
	printf("checked at:      %s\n", fmt_time(now, t));
	if (info.response_status < 0) {
		printf("response:        not an OCSP response\n");
	} else {
		printf("response status: %s\n", ocsp_response_status_name(info.response_status));
	}
	if (info.has_id) {
		char id[CERTID_SHORT_MAX];
		printf("certid:          %s %s\n", certid_alg_name(info.id.alg),
		       certid_short(&info.id, id));
		printf("cert status:     %s", ocsp_cert_status_name(info.cert_status));
		if (info.cert_status == OCSP_CERT_REVOKED)
			printf(" (reason %d, at %s)", info.revocation_reason,
			       fmt_time(info.revocation_unix, t));
		printf("\n");
		printf("produced at:     %s\n", fmt_time(info.produced_at_unix, t));
		printf("this update:     %s\n", fmt_time(info.this_update_unix, t));
		if (info.next_update_present)
			printf("next update:     %s\n", fmt_time(info.next_update_unix, t));
		else
			printf("next update:     (absent)\n");
		printf("signer:          %s%s\n", info.signer[0] ? info.signer : "(unknown)",
		       info.signer_is_issuer   ? " (the issuer)"
		       : info.signer_delegated ? " (delegated responder)"
					       : "");
	}
	if (r == 0) {
		printf("checks:          all passed: stapled would serve this response\n");
	} else {
		printf("checks failed:  ");
		for (unsigned bit = 1; bit; bit <<= 1)
			if (fails & bit)
				printf(" %s", ocsp_check_name(bit));
		printf("\n");
	}
	pki_cert_unref(issuer);
	if (cert)
		pki_cert_unref(cert);
	buf_done(&der);
	return r == 0 ? 0 : 1;
}
