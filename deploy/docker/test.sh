#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Checks the stapled image for real: builds it (deploy/docker/build.sh, so the current sources),
# then on a network of its own runs an `openssl ocsp` responder for a test PKI and a stapled
# container with the image's own configuration, a named cache volume and its ports published on
# 127.0.0.1 only, and checks: /healthz through the published admin port, the health status turning
# healthy, the uid the daemon runs as, a response fetched from the CA and written to the volume by
# that uid, OCSP answers through the published port, a clean `docker stop` (exit 0), and a new
# container on the same volume serving the same response with the CA gone.
#
# Usage: deploy/docker/test.sh [--no-build]
#   STAPLED_IMAGE  the image (default stapled:latest); --no-build uses it as it is
#   KEEP_TMP=1     keep the temporary directory (PKI, responses)
# Prints "N passed, N failed"; exits 1 when a check failed, and 0 with "SKIP: reason" when there
# is no Docker engine. Everything it creates is named stapled-dtest-<pid>-* and removed at the end.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
image=${STAPLED_IMAGE:-stapled:latest}
build=1
[ "${1:-}" = --no-build ] && build=0

command -v docker >/dev/null || { echo "SKIP: docker is not installed"; exit 0; }
timeout 30 docker info >/dev/null 2>&1 || { echo "SKIP: the Docker engine does not answer"; exit 0; }
for tool in openssl curl; do
	command -v $tool >/dev/null || { echo "SKIP: $tool is not installed"; exit 0; }
done

prefix=stapled-dtest-$$
net=$prefix-net
vol=$prefix-cache
ca=$prefix-ca
node1=$prefix-node1
node2=$prefix-node2
containers=("$ca" "$node1" "$node2")
stop_timeout=20 # more than stapled's drain (3 s cluster leave + 5 s connections)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/stapled-dtest.XXXXXX")
# shellcheck source=../checks.sh
. "$here/../checks.sh"
WAIT_STEP=0.5

cleanup() {
	local c
	if [ $failed -gt 0 ]; then
		for c in "${containers[@]}"; do
			docker container inspect "$c" >/dev/null 2>&1 || continue
			echo "# --- docker logs $c (last 20 lines)"
			docker logs --tail 20 "$c" 2>&1 | sed 's/^/# /'
		done
	fi
	for c in "${containers[@]}"; do
		timeout 60 docker rm -f -v "$c" >/dev/null 2>&1
	done
	timeout 60 docker network rm "$net" >/dev/null 2>&1
	timeout 60 docker volume rm "$vol" >/dev/null 2>&1
	if [ "${KEEP_TMP:-0}" = 1 ]; then
		echo "# kept $tmp"
	else
		rm -rf "$tmp"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM


# --- the image -----------------------------------------------------------------------------------
if [ $build = 1 ]; then
	if ! "$here/build.sh" --quiet --tag "$image"; then
		not_ok "the image builds"
		summary
		exit 1
	fi
	ok "the image builds"
elif ! docker image inspect "$image" >/dev/null 2>&1; then
	not_ok "image $image exists (--no-build)"
	summary
	exit 1
fi
check "the image runs as uid:gid 8889:8889" \
	test "$(docker image inspect --format '{{.Config.User}}' "$image")" = 8889:8889

# --- a CA: the test PKI and `openssl ocsp` from the image, on a network of our own --------------
if ! bash "$repo/tests/pki/mkpki.sh" "$tmp/pki" "http://$ca:8888/" >"$tmp/mkpki.log" 2>&1; then
	cat "$tmp/mkpki.log"
	not_ok "test PKI"
	summary
	exit 1
fi
pki=$tmp/pki
# The certificate directory the node watches: read by uid 8889 through a read-only bind mount.
mkdir -p "$tmp/certs"
cp "$pki/good-chain.crt" "$tmp/certs/good.pem"
chmod 0755 "$tmp/certs"
chmod 0644 "$tmp/certs/good.pem"

docker network create "$net" >/dev/null && docker volume create "$vol" >/dev/null ||
	{ not_ok "network and volume"; summary; exit 1; }
# openssl is in the image (ca-certificates needs it); the responder reads the CA's key: root.
timeout 60 docker run -d --name "$ca" --network "$net" --user 0 --no-healthcheck \
	--entrypoint openssl -v "$pki:/pki:ro" -w /pki "$image" \
	ocsp -index intdb/index.txt -CA int.crt -rsigner ocsp.crt -rkey ocsp.key -port 8888 \
	-nmin 60 -ignore_err -timeout 5 >/dev/null
# Ready when it logs ACCEPT: a bare connect would wedge its single-threaded loop.
ca_ready() { docker logs "$ca" 2>&1 | grep -q '^ACCEPT'; }
check "openssl ocsp responder up as $ca:8888" wait_for 30 ca_ready

# --- the node ------------------------------------------------------------------------------------
# start_node NAME: the image's own command and configuration; ports on 127.0.0.1 only.
start_node() {
	timeout 60 docker run -d --name "$1" --network "$net" --stop-timeout $stop_timeout \
		-p 127.0.0.1::8889 -p 127.0.0.1::8890 \
		-v "$vol:/var/lib/stapled" -v "$tmp/certs:/etc/stapled/certs:ro" "$image" >/dev/null
}
# host_port NAME PORT: the published address; fails unless every binding is on 127.0.0.1.
host_port() {
	local out
	out=$(docker port "$1" "$2/tcp" 2>/dev/null) || return 1
	[ -n "$out" ] && ! grep -qv '^127\.0\.0\.1:' <<<"$out" || return 1
	head -n 1 <<<"$out"
}
healthz() { # ADDR: 200 and "ok"
	[ "$(curl -s -m 5 -o "$tmp/healthz.body" -w '%{http_code}' "http://$1/healthz")" = 200 ] &&
		[ "$(cat "$tmp/healthz.body")" = ok ]
}
health_is() { # NAME STATUS
	[ "$(docker inspect --format '{{.State.Health.Status}}' "$1" 2>/dev/null)" = "$2" ]
}
ocsp_query() { # ADDR OUT.der: a good, verified response for good.crt
	openssl ocsp -issuer "$pki/int.crt" -cert "$pki/good.crt" -url "http://$1/" \
		-CAfile "$pki/root.crt" -no_nonce -timeout 10 -respout "$2" >"$2.log" 2>&1 &&
		grep -q ': good$' "$2.log" && grep -q '^Response verify OK' "$2.log"
}
cached_file() { # NAME: the cached response's path in the volume
	docker exec "$1" sh -c 'ls /var/lib/stapled/ocsp-*.der 2>/dev/null' | head -n 1 | grep .
}
# stop_node NAME: docker stop, then exit code 0 (not killed at the stop timeout).
stop_node() {
	local t0=$SECONDS code
	timeout $((stop_timeout + 30)) docker stop -t $stop_timeout "$1" >/dev/null || return 1
	code=$(docker inspect --format '{{.State.ExitCode}}' "$1")
	echo "# docker stop $1: exit $code after $((SECONDS - t0)) s (stop timeout $stop_timeout s)"
	[ "$code" = 0 ] && docker logs "$1" 2>&1 | grep -q 'node: stopped'
}

start_node "$node1" || { not_ok "docker run $node1"; summary; exit 1; }
admin=$(host_port "$node1" 8890)
ocsp=$(host_port "$node1" 8889)
check "ports published on 127.0.0.1 only (admin $admin, OCSP $ocsp)" test -n "$admin" -a -n "$ocsp"
check "/healthz answers 200 ok on the published admin port" wait_for 30 healthz "$admin"
status1=$(docker exec "$node1" cat /proc/1/status)
check "the daemon (pid 1) runs as uid and gid 8889" \
	grep -Eq '^Uid:\s+8889\s+8889\s+8889\s+8889$' <<<"$status1"
check "... with no capabilities" grep -Eq '^CapEff:\s+0+$' <<<"$status1"
check "/etc/stapled is not writable by it" \
	test "$(docker exec "$node1" sh -c 'touch /etc/stapled/x 2>/dev/null && echo yes')" != yes
t0=$SECONDS
if wait_for 60 health_is "$node1" healthy; then
	ok "docker health status turns healthy ($((SECONDS - t0)) s after /healthz answered)"
else
	not_ok "docker health status turns healthy (is: $(docker inspect --format '{{.State.Health.Status}}' "$node1"))"
fi
check "stapled health fails (exit 1) on a closed port" \
	test "$(docker exec "$node1" stapled health --timeout 2 http://127.0.0.1:9/ 2>/dev/null; echo $?)" = 1

if wait_for 30 cached_file "$node1" >/dev/null; then
	f=$(cached_file "$node1")
	ok "a response fetched from the CA is cached in the volume ($f)"
	check "... written by uid 8889" \
		test "$(docker exec "$node1" stat -c %u:%g "$f")" = 8889:8889
else
	not_ok "a response fetched from the CA is cached in the volume"
fi
check "OCSP through the published port: good, signature verified" \
	ocsp_query "$ocsp" "$tmp/resp1.der"
check "docker stop: exit code 0 within the stop timeout, drained" stop_node "$node1"

# --- restart from the volume with the CA gone -----------------------------------------------------
timeout 60 docker rm -f -v "$ca" >/dev/null # -v: its anonymous /var/lib/stapled volume
check "the CA responder is gone" \
	test -z "$(docker ps -q --filter "name=^/$ca\$")"
start_node "$node2" || { not_ok "docker run $node2"; summary; exit 1; }
admin=$(host_port "$node2" 8890)
ocsp=$(host_port "$node2" 8889)
check "a new container on the same volume answers /healthz" wait_for 30 healthz "$admin"
check "... serves good.crt with the CA down" ocsp_query "$ocsp" "$tmp/resp2.der"
check "... the very response cached before (same bytes)" cmp -s "$tmp/resp1.der" "$tmp/resp2.der"
check "... and stops with exit code 0" stop_node "$node2"

summary
