#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Creates the test PKI with the openssl CLI only:
#   root -> int (AIA) -> leaves good, revoked (keyCompromise), muststaple (tlsfeature
#   status_request), unknown (signed, then removed from the index);
#   int -> ocsp (delegated responder: EKU critical OCSPSigning, noCheck).
# Usage: mkpki.sh OUTDIR [OCSP_URL]
#   OCSP_URL defaults to http://127.0.0.1:8888/ and goes into the leaves' AIA.
#   EXTRA_LEAVES=N adds leaves extra-1 .. extra-N (good; they share one key to stay fast).
set -euo pipefail

out=${1:?usage: mkpki.sh OUTDIR [OCSP_URL]}
ocsp_url=${2:-http://127.0.0.1:8888/}
extra=${EXTRA_LEAVES:-0}
ca_issuers_url=${CAISSUERS_URL:-${ocsp_url%/}/int.der}

# Backdated so that crafted responses with a thisUpdate in the past (expired-response tests,
# `verify --at`) still fall inside the signer's validity.
start=$(date -u -d '2 days ago' +%Y%m%d%H%M%SZ)

mkdir -p "$out"
cd "$out"
mkdir -p rootdb/certs intdb/certs
: > rootdb/index.txt
: > intdb/index.txt
# Serials: distinct ranges per CA so a test can tell them apart at a glance.
echo 1000 > rootdb/serial
echo 2000 > intdb/serial
echo 'unique_subject = no' > rootdb/index.txt.attr
echo 'unique_subject = no' > intdb/index.txt.attr

cat > ca.cnf <<CNF
[ ca ]
default_ca = int_ca

[ root_ca ]
dir = ./rootdb
database = \$dir/index.txt
new_certs_dir = \$dir/certs
serial = \$dir/serial
certificate = ./root.crt
private_key = ./root.key
default_md = sha256
default_days = 3650
policy = policy_any
copy_extensions = none
email_in_dn = no

[ int_ca ]
dir = ./intdb
database = \$dir/index.txt
new_certs_dir = \$dir/certs
serial = \$dir/serial
certificate = ./int.crt
private_key = ./int.key
default_md = sha256
default_days = 825
default_crl_days = 30
policy = policy_any
copy_extensions = none
email_in_dn = no

[ policy_any ]
commonName = supplied
organizationName = optional

[ req ]
distinguished_name = dn
prompt = no
[ dn ]
CN = placeholder

[ v3_root ]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always

[ v3_int ]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign, digitalSignature
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
authorityInfoAccess = caIssuers;URI:${ocsp_url%/}/root.der

[ v3_leaf ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
authorityInfoAccess = OCSP;URI:${ocsp_url}, caIssuers;URI:${ca_issuers_url}

[ v3_muststaple ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
authorityInfoAccess = OCSP;URI:${ocsp_url}, caIssuers;URI:${ca_issuers_url}
tlsfeature = status_request

[ v3_ocsp ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = critical, OCSPSigning
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
noCheck = ignored
CNF

q() { "$@" >/dev/null 2>&1 || { echo "mkpki: failed: $*" >&2; "$@" >&2 || true; exit 1; }; }

# CAs and the responder get RSA keys (the common case for OCSP signatures); leaves get P-256 keys,
# which are much faster to generate and exercise a second key type in the chain.
key() { q openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$1"; }
eckey() { q openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1"; }

# csr NAME CN [KEYFILE]
csr() {
	q openssl req -new -config ca.cnf -key "${3:-$1.key}" -subj "/O=stapled test/CN=$2" \
		-out "$1.csr"
}

# Root: self-signed through `openssl ca` so rootdb records it.
key root.key
csr root "stapled test root"
q openssl ca -batch -config ca.cnf -name root_ca -selfsign -startdate "$start" -keyfile root.key \
	-in root.csr -out root.crt -extensions v3_root -notext

key int.key
csr int "stapled test intermediate"
q openssl ca -batch -config ca.cnf -name root_ca -startdate "$start" -in int.csr -out int.crt \
	-extensions v3_int -notext

# sign NAME CN EXT [KEYFILE]
sign() {
	csr "$1" "$2" "${4:-}"
	q openssl ca -batch -config ca.cnf -name int_ca -startdate "$start" -in "$1.csr" \
		-out "$1.crt" -extensions "$3" -notext
}

key ocsp.key
sign ocsp "stapled test OCSP responder" v3_ocsp
for leaf in good revoked muststaple unknown; do
	eckey "$leaf.key"
done
sign good "good.test" v3_leaf
sign revoked "revoked.test" v3_leaf
sign muststaple "muststaple.test" v3_muststaple
sign unknown "unknown.test" v3_leaf

q openssl ca -batch -config ca.cnf -name int_ca -revoke revoked.crt -crl_reason keyCompromise

# Unknown to the responder: signed by int, but absent from its index.
unknown_serial=$(openssl x509 -in unknown.crt -noout -serial | cut -d= -f2)
grep -v -P "\t${unknown_serial}\t" intdb/index.txt > intdb/index.txt.new
mv intdb/index.txt.new intdb/index.txt

if [ "$extra" -gt 0 ]; then
	mkdir -p extra
	eckey extra/extra.key
	for i in $(seq 1 "$extra"); do
		sign "extra/extra-$i" "extra-$i.test" v3_leaf extra/extra.key
		cat "extra/extra-$i.crt" int.crt > "extra/extra-$i-chain.crt"
		rm -f "extra/extra-$i.csr"
	done
fi

for leaf in good revoked muststaple unknown; do
	cat "$leaf.crt" int.crt > "$leaf-chain.crt"
done
cat int.crt root.crt > ca-chain.crt
q openssl x509 -in int.crt -outform DER -out int.der
q openssl x509 -in root.crt -outform DER -out root.der
rm -f ./*.csr
echo "$ocsp_url" > ocsp_url.txt
