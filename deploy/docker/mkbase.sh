#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Builds a minimal Debian 12 (bookworm) base image locally, for Docker engines that cannot pull
# debian:bookworm-slim: debootstrap --variant=minbase from the host's Debian mirror, updates from
# bookworm-updates and bookworm-security, docs/man pages/locales/apt lists dropped, then
# `docker import`. Nothing happens when the image is already there (unless --force).
#
#   deploy/docker/mkbase.sh                 stapled-base:bookworm
#   deploy/docker/mkbase.sh --offline       also stapled-build-base:bookworm, and both with the
#                                           packages of deploy/docker/Dockerfile preinstalled, for
#                                           engines whose containers cannot reach a Debian mirror
#
# Options:
#   --tag TAG          the base image (default $STAPLED_BASE_IMAGE or stapled-base:bookworm)
#   --build-tag TAG    with --offline, the build stage's base
#                      (default $STAPLED_BUILD_BASE_IMAGE or stapled-build-base:bookworm)
#   --offline          preinstall the runtime packages into the base, and build the build base
#   --mirror URL       Debian mirror (default: the host's apt source for bookworm, else
#                      http://deb.debian.org/debian)
#   --security-mirror URL   (default: the host's source for bookworm-security, else
#                      http://deb.debian.org/debian-security)
#   --force            rebuild even when the images exist
#
# Needs root (debootstrap, chroot) and a Docker engine; installs debootstrap with apt-get when it
# is missing. The host needs the mirror; the containers do not.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
dockerfile=$here/Dockerfile
suite=bookworm
tag=${STAPLED_BASE_IMAGE:-stapled-base:bookworm}
build_tag=${STAPLED_BUILD_BASE_IMAGE:-stapled-build-base:bookworm}
offline=0
force=0
mirror=
security_mirror=

usage() { sed -n '4,/^[^#]/{/^#/s/^# \{0,1\}//p}' "${BASH_SOURCE[0]}"; }
die() {
	echo "mkbase: $*" >&2
	exit 1
}

while [ $# -gt 0 ]; do
	case $1 in
	--tag) tag=${2:?--tag needs a value}; shift 2 ;;
	--build-tag) build_tag=${2:?--build-tag needs a value}; shift 2 ;;
	--offline) offline=1; shift ;;
	--mirror) mirror=${2:?--mirror needs a URL}; shift 2 ;;
	--security-mirror) security_mirror=${2:?--security-mirror needs a URL}; shift 2 ;;
	--force) force=1; shift ;;
	-h | --help) usage; exit 0 ;;
	*) usage >&2; exit 2 ;;
	esac
done

command -v docker >/dev/null || die "docker is not installed"
docker info >/dev/null 2>&1 || die "the Docker engine does not answer (docker info)"

# The packages the Dockerfile's stages install, read from it so that there is one list.
dockerfile_packages() {
	sed -n "s/^ARG $1=\"\(.*\)\"$/\1/p" "$dockerfile"
}
runtime_pkgs=
build_pkgs=
if [ $offline = 1 ]; then
	runtime_pkgs=$(dockerfile_packages RUNTIME_PACKAGES)
	build_pkgs=$(dockerfile_packages BUILD_PACKAGES)
	[ -n "$runtime_pkgs" ] && [ -n "$build_pkgs" ] ||
		die "cannot read RUNTIME_PACKAGES and BUILD_PACKAGES from $dockerfile"
fi

# An image made here is one layer (docker import) with our labels; images built from it inherit
# the labels, not the single layer. It carries the packages it was given in a label: a plain base
# is satisfied by any image of ours, an --offline one only by one with exactly those packages.
label_of() { # IMAGE LABEL: its value, empty when unset; fails when there is no such image
	local v
	v=$(docker image inspect --format "{{ index .Config.Labels \"$2\" }}" "$1" 2>/dev/null) || return 1
	[ "$v" = "<no value>" ] || printf '%s\n' "$v"
}
ours() { # TAG
	[ "$(label_of "$1" org.stapled.base.suite)" = "$suite" ] &&
		[ "$(docker image inspect --format '{{len .RootFS.Layers}}' "$1" 2>/dev/null)" = 1 ]
}
have_image() { # TAG PACKAGES
	ours "$1" || return 1
	[ -z "$2" ] || [ "$(label_of "$1" org.stapled.base.packages)" = "$2" ]
}
if [ $force = 0 ] && have_image "$tag" "$runtime_pkgs" &&
	{ [ $offline = 0 ] || have_image "$build_tag" "$runtime_pkgs $build_pkgs"; }; then
	echo "mkbase: $tag already exists$([ $offline = 1 ] && echo " (and $build_tag)"); --force rebuilds"
	exit 0
fi
if [ $force = 0 ] && docker image inspect "$tag" >/dev/null 2>&1 && ! ours "$tag"; then
	die "$tag exists and was not made by this script; choose another --tag or use --force"
fi

[ "$(id -u)" = 0 ] || die "debootstrap and chroot need root"

# The host's mirror for a suite: deb822 .sources stanzas first, then one-line .list entries.
host_mirror() { # SUITE
	local f
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -r "$f" ] || continue
		awk -v suite="$1" '
			function flush() {
				if (types ~ /(^| )deb( |$)/ && (" " suites " ") ~ (" " suite " ") && uris != "") {
					split(uris, u, " "); print u[1]; found = 1; exit
				}
				types = suites = uris = ""
			}
			/^[ \t]*#/ { next }
			/^[ \t]*$/ { flush(); next }
			tolower($1) == "types:"  { $1 = ""; types = $0 }
			tolower($1) == "suites:" { $1 = ""; suites = $0 }
			tolower($1) == "uris:"   { $1 = ""; uris = $0 }
			END { if (!found) flush() }
		' "$f"
	done | head -n 1 | grep . && return 0
	cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
		awk -v suite="$1" '
			$1 == "deb" {
				i = 2 # past "[ options ]" to the URI
				if ($i ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
				if ($(i + 1) == suite) { print $i; exit }
			}
		' | grep .
}
[ -n "$mirror" ] || mirror=$(host_mirror "$suite") || mirror=http://deb.debian.org/debian
[ -n "$security_mirror" ] || security_mirror=$(host_mirror "$suite-security") ||
	security_mirror=http://deb.debian.org/debian-security
mirror=${mirror%/}
security_mirror=${security_mirror%/}

# debootstrap fetches with wget, which knows no apt configuration: pass apt's proxy on.
if [ -z "${http_proxy:-}" ]; then
	apt_proxy=
	eval "$(apt-config shell apt_proxy Acquire::http::Proxy 2>/dev/null || true)"
	if [ -n "$apt_proxy" ] && [ "$apt_proxy" != DIRECT ]; then
		export http_proxy=$apt_proxy
	fi
fi

if ! command -v debootstrap >/dev/null; then
	echo "mkbase: installing debootstrap"
	DEBIAN_FRONTEND=noninteractive apt-get install -y debootstrap >/dev/null 2>&1 || {
		apt-get update >/dev/null
		DEBIAN_FRONTEND=noninteractive apt-get install -y debootstrap >/dev/null
	}
fi

tmp=$(mktemp -d "${TMPDIR:-/var/tmp}/stapled-base.XXXXXX")
root=$tmp/rootfs
cleanup() {
	if mountpoint -q "$root/proc" 2>/dev/null; then
		umount "$root/proc" || umount -l "$root/proc" || true
	fi
	# --one-file-system: never descend into anything still mounted under the tree.
	rm -rf --one-file-system "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# quietly CMD...: its output goes to a log, shown when it fails.
quietly() {
	if ! "$@" >"$tmp/step.log" 2>&1; then
		tail -n 30 "$tmp/step.log" >&2
		die "failed: ${*: -3}"
	fi
}

in_root() {
	chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C \
		DEBIAN_FRONTEND=noninteractive ${http_proxy:+http_proxy="$http_proxy"} "$@"
}

echo "mkbase: debootstrap --variant=minbase $suite from $mirror"
start=$(date +%s)
if ! debootstrap --variant=minbase "$suite" "$root" "$mirror" >"$tmp/debootstrap.log" 2>&1; then
	tail -n 20 "$tmp/debootstrap.log" >&2
	[ -f "$root/debootstrap/debootstrap.log" ] && tail -n 20 "$root/debootstrap/debootstrap.log" >&2
	die "debootstrap failed"
fi

# What the image keeps out: docs (but the copyright files), man and info pages, translations.
# dpkg applies this to every later install too, the Dockerfile's among them.
cat >"$root/etc/dpkg/dpkg.cfg.d/90stapled-slim" <<'EOF'
# stapled-base: no documentation but licences, no manuals, no translations.
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
EOF
cat >"$root/etc/apt/apt.conf.d/90stapled-slim" <<'EOF'
// stapled-base: no translations, no downloaded .debs or package caches left in layers.
Acquire::Languages "none";
APT::Keep-Downloaded-Packages "false";
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
rm -f "$root/etc/apt/sources.list"
cat >"$root/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $mirror
Suites: $suite $suite-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $security_mirror
Suites: $suite-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
# No service may start inside the tree.
printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
chmod 0755 "$root/usr/sbin/policy-rc.d"
cp /etc/resolv.conf "$root/etc/resolv.conf"
mount -t proc proc "$root/proc"

slim() {
	quietly in_root apt-get clean
	rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb
	find "$root/usr/share/doc" -mindepth 1 ! -type d ! -name copyright -delete
	find "$root/usr/share/doc" -mindepth 1 -type d -empty -delete
	rm -rf "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/usr/share/groff/* \
		"$root"/usr/share/lintian/*
	find "$root/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} +
	rm -rf "$root"/var/log/*.log "$root"/var/log/apt/* "$root"/var/cache/debconf/*-old \
		"$root"/var/lib/dpkg/*-old "$root"/var/cache/ldconfig/aux-cache "$root/debootstrap"
}

# import_image TAG PACKAGES: the tree as it is, minus what only the build needed.
import_image() {
	local saved_resolv
	umount "$root/proc"
	rm -f "$root/usr/sbin/policy-rc.d" "$root/etc/hostname"
	saved_resolv=$(cat "$root/etc/resolv.conf")
	: >"$root/etc/resolv.conf" # Docker mounts its own
	tar --numeric-owner -C "$root" -c . | docker import \
		--change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
		--change 'CMD ["bash"]' \
		--change "LABEL org.stapled.base.suite=$suite" \
		--change "LABEL org.stapled.base.mirror=$mirror" \
		--change "LABEL org.stapled.base.packages=\"$2\"" \
		--message "stapled mkbase.sh: debootstrap --variant=minbase $suite $mirror" \
		- "$1" >/dev/null
	echo "mkbase: $1: $(docker image inspect --format '{{.Size}}' "$1" | awk '{printf "%.1f MB", $1 / 1e6}')"
	printf '%s\n' "$saved_resolv" >"$root/etc/resolv.conf"
	printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
	chmod 0755 "$root/usr/sbin/policy-rc.d"
	mount -t proc proc "$root/proc"
}

echo "mkbase: applying $suite-updates and $suite-security"
quietly in_root apt-get update -q
quietly in_root apt-get upgrade -y -q -o Dpkg::Options::=--force-confold
if [ $offline = 1 ]; then
	echo "mkbase: preinstalling $runtime_pkgs"
	# shellcheck disable=SC2086 # the lists are words
	quietly in_root apt-get install -y -q --no-install-recommends $runtime_pkgs
fi
slim
import_image "$tag" "$runtime_pkgs"

if [ $offline = 1 ]; then
	echo "mkbase: preinstalling $build_pkgs"
	quietly in_root apt-get update -q
	# shellcheck disable=SC2086
	quietly in_root apt-get install -y -q --no-install-recommends $build_pkgs
	slim
	import_image "$build_tag" "$runtime_pkgs $build_pkgs"
fi
echo "mkbase: done in $(($(date +%s) - start)) s"
