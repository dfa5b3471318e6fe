#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Builds the two images of the compose cluster, on a machine without a registry too:
#   stapled:latest      deploy/docker/build.sh (which makes a local Debian base when it must)
#   stapled-web:latest  Apache httpd and nginx from Debian packages (web.Dockerfile), on the same
#                       base: debian:bookworm-slim when the engine has it, else the local base
# Usage: deploy/compose/build.sh [--quiet]
#   STAPLED_IMAGE, STAPLED_WEB_IMAGE, STAPLED_BASE_IMAGE change the tags.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
image=${STAPLED_IMAGE:-stapled:latest}
web=${STAPLED_WEB_IMAGE:-stapled-web:latest}
quiet=()
[ "${1:-}" = --quiet ] && quiet=(--quiet)

"$repo/deploy/docker/build.sh" "${quiet[@]}" --tag "$image"

base=${STAPLED_BASE_IMAGE:-stapled-base:bookworm}
docker image inspect debian:bookworm-slim >/dev/null 2>&1 && base=debian:bookworm-slim
docker image inspect "$base" >/dev/null 2>&1 || {
	echo "build: no base image $base" >&2
	exit 1
}

log=$(mktemp "${TMPDIR:-/tmp}/stapled-web-build.XXXXXX")
trap 'rm -f "$log"' EXIT
# build_web [NETWORK]: the packages come from the base's Debian mirror, over the default network,
# else over the host's (for engines whose containers reach the mirror only that way).
build_web() {
	docker build -f "$here/web.Dockerfile" --build-arg "BASE=$base" ${1:+--network "$1"} \
		-t "$web" "$here" >"$log" 2>&1
}
start=$SECONDS
if ! build_web && ! build_web host; then
	tail -n 30 "$log" >&2
	echo "build: building $web failed" >&2
	exit 1
fi
[ ${#quiet[@]} -gt 0 ] || tail -n 3 "$log"
size=$(docker image inspect --format '{{.Size}}' "$web")
awk -v t="$web" -v b="$base" -v s="$size" -v d="$((SECONDS - start))" \
	'BEGIN { printf "build: %s (base %s): %.1f MB, built in %d s\n", t, b, s / 1e6, d }'
