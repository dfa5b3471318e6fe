#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Installs what building and testing stapled needs on Debian 12, and nothing when all is there.
# Idempotent and non-interactive: `apt-get update` runs only when a package is missing.
# Usage: deploy/install-deps.sh [--build-only]
set -euo pipefail

build_pkgs=(meson ninja-build pkg-config gcc clang libclang-rt-14-dev libuv1-dev libnghttp2-dev
	libcurl4-openssl-dev libmsgpack-dev libssl-dev libcmocka-dev clang-format)
# apache2, nginx, haproxy: the web servers the integration tests put in front of stapled.
# serf: a real Serf agent, and memberlist's Go sources for the memberlist peer
# (tests/interop/build-mlpeer.sh, which installs golang-go itself only if no Go is found).
test_pkgs=(openssl curl python3 python3-cryptography gnutls-bin nghttp2-client wrk nginx-light apache2 haproxy serf
	golang-github-hashicorp-memberlist-dev)

pkgs=("${build_pkgs[@]}")
if [ "${1:-}" != "--build-only" ]; then
	pkgs+=("${test_pkgs[@]}")
	# With a Docker engine (not installed here: it is the machine's), the compose cluster's tests
	# need Compose and iptables (the chaos test's partition), and deploy/docker/mkbase.sh
	# debootstrap. Either Compose will do: the `docker compose` plugin or Debian's docker-compose.
	if command -v docker >/dev/null 2>&1; then
		pkgs+=(debootstrap iptables)
		docker compose version >/dev/null 2>&1 || pkgs+=(docker-compose)
	fi
fi

missing=()
for p in "${pkgs[@]}"; do
	# nginx-light is satisfied by any nginx flavour that is already installed.
	if [ "$p" = nginx-light ] && command -v nginx >/dev/null 2>&1; then
		continue
	fi
	status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
	if [ "$status" != installed ]; then
		missing+=("$p")
	fi
done

if [ ${#missing[@]} -eq 0 ]; then
	echo "install-deps: all ${#pkgs[@]} packages present"
	exit 0
fi

echo "install-deps: installing ${missing[*]}"
sudo=()
if [ "$(id -u)" -ne 0 ]; then
	if ! command -v sudo >/dev/null 2>&1; then
		echo "install-deps: need root (or sudo) to install: ${missing[*]}" >&2
		exit 1
	fi
	sudo=(sudo -n)
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -q </dev/null
"${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}" </dev/null
