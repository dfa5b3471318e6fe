#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# The whole product on one machine, on loopback: installs what is missing, builds, creates a demo
# PKI, starts an `openssl ocsp` responder as the CA's upstream and a stapled node in front of it,
# asks stapled for the good and the revoked certificate with `openssl ocsp`, shows the verified
# answers, then stops everything (or, with --keep, keeps running until Ctrl-C).
# Usage: deploy/demo.sh [--keep] [--no-install]   (BUILD_DIR=dir to build elsewhere than ./build)
set -euo pipefail

keep=0
install=1
for a in "$@"; do
	case $a in
	--keep) keep=1 ;;
	--no-install) install=0 ;;
	-h | --help)
		sed -n '3,8p' "$0" | sed 's/^# \{0,1\}//'
		exit 0
		;;
	*)
		echo "demo: unknown argument $a" >&2
		exit 2
		;;
	esac
done

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
if [ -t 1 ]; then
	say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
else
	say() { printf '\n== %s\n' "$*"; }
fi

if [ $install = 1 ]; then
	say "dependencies"
	bash deploy/install-deps.sh
fi

build=${BUILD_DIR:-build}
say "build (./$build)"
if [ ! -f "$build/meson-private/coredata.dat" ]; then
	meson setup "$build" >/dev/null
fi
ninja -C "$build" cmd/stapled >/dev/null
stapled=$root/$build/cmd/stapled
"$stapled" --version

work=$(mktemp -d /tmp/stapled-demo.XXXXXX)
pids=()
cleanup() {
	local rc=$?
	for p in "${pids[@]}"; do
		# Each child leads its own process group (setsid): stop the whole group.
		kill -TERM -- "-$p" 2>/dev/null || true
	done
	for p in "${pids[@]}"; do
		for _ in $(seq 50); do
			kill -0 "$p" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL -- "-$p" 2>/dev/null || true
	done
	if [ $rc -ne 0 ]; then
		echo "demo: failed; logs are in $work" >&2
	elif [ $keep = 0 ]; then
		rm -rf "$work"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
# wait_for DESCRIPTION SECONDS COMMAND...: polls until COMMAND succeeds.
wait_for() {
	local what=$1 secs=$2
	shift 2
	local deadline=$(($(date +%s) + secs))
	until "$@" >/dev/null 2>&1; do
		if [ "$(date +%s)" -ge $deadline ]; then
			echo "demo: timed out waiting for $what" >&2
			return 1
		fi
		sleep 0.1
	done
}

upstream_port=$(free_port)
stapled_port=$(free_port)
admin_port=$(free_port)
pki=$work/pki

say "demo PKI in $pki (CA responder URL http://127.0.0.1:$upstream_port/)"
bash tests/pki/mkpki.sh "$pki" "http://127.0.0.1:$upstream_port/"
ls "$pki"

say "CA responder: openssl ocsp on port $upstream_port"
# openssl ocsp binds all interfaces and must never be probed by a bare TCP connect: its log line
# "ACCEPT" is the readiness signal. -ignore_err keeps it alive after a malformed request.
(cd "$pki" && exec setsid openssl ocsp -index intdb/index.txt -CA int.crt -rsigner ocsp.crt \
	-rkey ocsp.key -port "$upstream_port" -nmin 60 -ignore_err -timeout 5 \
	>"$work/ca-responder.log" 2>&1) &
pids+=($!)
wait_for "the CA responder" 10 grep -q ACCEPT "$work/ca-responder.log"

cat >"$work/stapled.yaml" <<YAML
listen: ["127.0.0.1:$stapled_port"]
admin_listen: ["127.0.0.1:$admin_port"]
certificates:
  - $pki/good-chain.crt
  - $pki/revoked-chain.crt
  - $pki/muststaple-chain.crt
cache:
  dir: $work/cache
YAML

say "stapled on 127.0.0.1:$stapled_port (admin 127.0.0.1:$admin_port)"
setsid "$stapled" --config "$work/stapled.yaml" >"$work/stapled.log" 2>&1 &
pids+=($!)
wait_for "stapled to be ready" 20 curl -sf "http://127.0.0.1:$admin_port/readyz"
echo "ready: every certificate has a verified response"

for cert in good revoked; do
	say "openssl ocsp -issuer int.crt -cert $cert.crt -url http://127.0.0.1:$stapled_port/"
	openssl ocsp -issuer "$pki/int.crt" -cert "$pki/$cert.crt" -CAfile "$pki/root.crt" \
		-url "http://127.0.0.1:$stapled_port/" -no_nonce -respout "$work/$cert.resp.der" 2>&1
done

say "the same over GET with RFC 5019 caching headers (curl)"
openssl ocsp -issuer "$pki/int.crt" -cert "$pki/good.crt" -no_nonce -reqout "$work/good.req.der"
enc=$(openssl base64 -A -in "$work/good.req.der" |
	python3 -c 'import sys,urllib.parse;print(urllib.parse.quote(sys.stdin.read().strip(),safe=""))')
curl -sS -D - -o /dev/null "http://127.0.0.1:$stapled_port/$enc" | tr -d '\r'

say "stapled verify $work/good.resp.der"
"$stapled" verify "$work/good.resp.der" --issuer "$pki/int.crt" --cert "$pki/good.crt"

say "entries (admin API)"
curl -sS "http://127.0.0.1:$admin_port/admin/entries"
echo
say "metrics (excerpt)"
curl -sS "http://127.0.0.1:$admin_port/metrics" |
	grep -E '^stapled_(entries|responses_servable|requests_total|upstream_fetches_total)' || true

say "where things are$([ $keep = 1 ] || echo ' (removed when the demo ends; --keep keeps them)')"
cat <<TXT
  work dir        $work
  PKI             $pki   (root.crt, int.crt, good.crt, revoked.crt, ...)
  CA responder    http://127.0.0.1:$upstream_port/   log: $work/ca-responder.log
  stapled         http://127.0.0.1:$stapled_port/   config: $work/stapled.yaml  log: $work/stapled.log
  admin API       http://127.0.0.1:$admin_port/   (/metrics /healthz /readyz /admin/entries)
  cache dir       $work/cache
TXT

if [ $keep = 1 ]; then
	say "running; Ctrl-C stops everything"
	echo "try: openssl ocsp -issuer $pki/int.crt -cert $pki/good.crt -CAfile $pki/root.crt -url http://127.0.0.1:$stapled_port/ -no_nonce"
	wait "${pids[1]}" || true
else
	say "stopping"
fi
