#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# The demo PKI of the compose cluster, made once by the `pki` service into the `pki` volume
# (mounted at /pki) with tests/pki/mkpki.sh (mounted at /tools): a root, an intermediate, a
# delegated OCSP signer for the CA's responder, and one certificate per web server, its AIA OCSP
# URL pointing at the `ca` service. Laid out for the other services:
#
#   /pki/ca/             the CA: intdb/index.txt, int.crt, ocsp.crt, ocsp.key (the responder's)
#   /pki/root.crt        the trust anchor clients check staples against
#   /pki/ca-chain.crt    intermediate and root, for nginx's ssl_stapling_verify
#   /pki/fleet/          every web server's certificate chain: what the regional nodes keep fresh
#   /pki/sites/SITE/certs/chain.pem   the site's chain, the only file its sidecar watches
#   /pki/sites/SITE/key.pem           the site's key, for its web server
#   /pki/serials.txt     "SERIAL SITE" lines, for the chaos test's counts at the CA
#
# SITES (space-separated) names the web servers. A volume that already holds a PKI is kept, so
# that `docker-compose up` after a `stop` serves the certificates the caches know.
set -euo pipefail

sites=${SITES:-dc1-apache dc1-nginx dc2-apache dc2-nginx}
url=${OCSP_URL:-http://ca:8888/}

if [ -s /pki/serials.txt ]; then
	echo "pki: /pki already holds the demo PKI (docker-compose down -v makes a new one)"
	exit 0
fi
n=0
for _ in $sites; do n=$((n + 1)); done
work=$(mktemp -d)
EXTRA_LEAVES=$n bash /tools/mkpki.sh "$work" "$url"

# Build the tree aside, then move it in, so that a half-made PKI is never seen.
stage=/pki/.new
rm -rf "$stage"
mkdir -p "$stage/ca" "$stage/fleet" "$stage/sites"
cp -r "$work/intdb" "$stage/ca/"
cp "$work/int.crt" "$work/ocsp.crt" "$work/ocsp.key" "$stage/ca/"
cp "$work/root.crt" "$work/int.crt" "$work/ca-chain.crt" "$stage/"
i=0
for site in $sites; do
	i=$((i + 1))
	mkdir -p "$stage/sites/$site/certs"
	cp "$work/extra/extra-$i-chain.crt" "$stage/sites/$site/certs/chain.pem"
	cp "$work/extra/extra-$i-chain.crt" "$stage/fleet/$site.pem"
	cp "$work/extra/extra.key" "$stage/sites/$site/key.pem"
	serial=$(openssl x509 -in "$work/extra/extra-$i.crt" -noout -serial | cut -d= -f2)
	echo "$serial $site" >>"$stage/serials.txt"
done
# Everything readable by the unprivileged users of the other containers (stapled runs as uid
# 8889, the web servers' masters as root): this is a throw-away demo PKI. The CA's signing key
# stays with the CA (root) only.
chmod -R a+rX "$stage"
chmod 0600 "$stage/ca/ocsp.key"
for f in ca fleet sites root.crt int.crt ca-chain.crt; do
	rm -rf "/pki/$f"
	mv "$stage/$f" /pki/
done
mv "$stage/serials.txt" /pki/ # last: its presence says the PKI is complete
rmdir "$stage"
rm -rf "$work"
echo "pki: made a demo PKI for: $sites"
cat /pki/serials.txt
