#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Builds the stapled image in one command, whatever this Docker engine can reach:
#
#   1. the base: --base if given; else debian:bookworm-slim if present or pullable; else a local
#      one made by mkbase.sh (stapled-base:bookworm);
#   2. the way to packages: the build's containers fetch them from the base's Debian mirror when
#      they can; else with --network host when that can; else from bases that already hold them
#      (mkbase.sh --offline) and no network at all;
#   3. docker build -f deploy/docker/Dockerfile from the repository root, timed; prints the size.
#
# Usage: deploy/docker/build.sh [--tag IMAGE] [--base IMAGE] [--offline] [--network MODE]
#                               [--quiet] [-- DOCKER-BUILD-ARGS...]
#   --tag IMAGE     the result (default $STAPLED_IMAGE or stapled:latest)
#   --base IMAGE    the Debian 12 base of both stages (skips step 1)
#   --offline       use mkbase.sh --offline bases and build with --network none (skips the probe)
#   --network MODE  the build's network, e.g. host (skips the probe)
#   --quiet         build output to a log file, shown only when the build fails
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
tag=${STAPLED_IMAGE:-stapled:latest}
base=
offline=0
network=
quiet=0
extra=()

usage() { sed -n '4,/^[^#]/{/^#/s/^# \{0,1\}//p}' "${BASH_SOURCE[0]}"; }
die() {
	echo "build: $*" >&2
	exit 1
}

while [ $# -gt 0 ]; do
	case $1 in
	--tag) tag=${2:?--tag needs a value}; shift 2 ;;
	--base) base=${2:?--base needs a value}; shift 2 ;;
	--offline) offline=1; shift ;;
	--network) network=${2:?--network needs a value}; shift 2 ;;
	--quiet) quiet=1; shift ;;
	--) shift; extra=("$@"); break ;;
	-h | --help) usage; exit 0 ;;
	*) usage >&2; exit 2 ;;
	esac
done

command -v docker >/dev/null || die "docker is not installed"
docker info >/dev/null 2>&1 || die "the Docker engine does not answer (docker info)"

have() { docker image inspect "$1" >/dev/null 2>&1; }

# Can a container of IMAGE, on NETWORK, reach its Debian mirror? apt-get update says, bounded.
mirror_reachable() { # IMAGE [NETWORK]
	timeout 90 docker run --rm ${2:+--network "$2"} --user 0 --entrypoint /bin/sh "$1" \
		-c 'out=$(apt-get -q -o Acquire::Languages=none -o Acquire::http::Timeout=10 update 2>&1) &&
			case $out in *Err:* | *"E: "*) exit 1 ;; esac' >/dev/null 2>&1
}

build_args=()
if [ $offline = 1 ]; then
	"$here/mkbase.sh" --offline
	base=${STAPLED_BASE_IMAGE:-stapled-base:bookworm}
	build_args+=(--build-arg "BUILD_BASE=${STAPLED_BUILD_BASE_IMAGE:-stapled-build-base:bookworm}")
	network=none
else
	if [ -z "$base" ]; then
		if have debian:bookworm-slim; then
			base=debian:bookworm-slim
		elif timeout 120 docker pull -q debian:bookworm-slim >/dev/null 2>&1; then
			base=debian:bookworm-slim
		else
			echo "build: debian:bookworm-slim is neither here nor pullable: building a local base"
			"$here/mkbase.sh"
			base=${STAPLED_BASE_IMAGE:-stapled-base:bookworm}
		fi
	elif ! have "$base"; then
		timeout 120 docker pull -q "$base" >/dev/null || die "no image $base, and it cannot be pulled"
	fi
	if [ -z "$network" ]; then
		if mirror_reachable "$base"; then
			: # the default network
		elif mirror_reachable "$base" host; then
			echo "build: containers reach the Debian mirror only on the host network: --network host"
			network=host
		else
			echo "build: containers cannot reach a Debian mirror: bases with the packages preinstalled"
			"$here/mkbase.sh" --offline
			base=${STAPLED_BASE_IMAGE:-stapled-base:bookworm}
			build_args+=(--build-arg "BUILD_BASE=${STAPLED_BUILD_BASE_IMAGE:-stapled-build-base:bookworm}")
			network=none
		fi
	fi
fi

build_args+=(--build-arg "BASE=$base")
[ -z "$network" ] || build_args+=(--network "$network")
echo "build: docker build ${build_args[*]} -t $tag"
old_id=$(docker image inspect --format '{{.Id}}' "$tag" 2>/dev/null || true)
log=$(mktemp "${TMPDIR:-/tmp}/stapled-build.XXXXXX")
trap 'rm -f "$log"' EXIT
start=$(date +%s%N)
status=0
if [ $quiet = 1 ]; then
	docker build -f "$here/Dockerfile" "${build_args[@]}" "${extra[@]}" -t "$tag" "$repo" \
		>"$log" 2>&1 || status=$?
else
	docker build -f "$here/Dockerfile" "${build_args[@]}" "${extra[@]}" -t "$tag" "$repo" || status=$?
fi
end=$(date +%s%N)
if [ $status != 0 ]; then
	[ $quiet = 0 ] || tail -n 40 "$log" >&2
	die "docker build failed (exit $status)"
fi
# The legacy builder leaves every build stage behind as an untagged image: keep the newest (the
# next build's cache), drop the older ones, and the image this build replaced if nothing else uses
# it (docker rmi refuses images that are tagged or used by a container).
docker images -q --filter dangling=true --filter label=org.stapled.stage=build | tail -n +2 |
	xargs -r docker rmi >/dev/null 2>&1 || true
new_id=$(docker image inspect --format '{{.Id}}' "$tag")
if [ -n "$old_id" ] && [ "$old_id" != "$new_id" ]; then
	docker rmi "$old_id" >/dev/null 2>&1 || true
fi
size=$(docker image inspect --format '{{.Size}}' "$tag")
awk -v t="$tag" -v b="$base" -v s="$size" -v d="$(((end - start) / 1000000))" \
	'BEGIN { printf "build: %s (base %s): %.1f MB, built in %.1f s\n", t, b, s / 1e6, d / 1000 }'
