#!/bin/sh
# Build tests/interop/mlpeer (a real memberlist 0.2.2 node for interop tests).
#
#   tests/interop/build-mlpeer.sh OUTPUT_BINARY
#
# Tries, in order:
#   (a) Debian packages, offline: golang-github-hashicorp-memberlist-dev
#       (installed here with apt-get if missing) built in GOPATH mode against
#       /usr/share/gocode;
#   (b) Go modules from the module proxy, pinned by mlpeer/go.mod + go.sum.
# Prints "mlpeer: built with <way> ..." on stdout on success. Exits 77 if
# neither works so that callers can skip. MLPEER_BUILD_WAY=debian or
# MLPEER_BUILD_WAY=modules restricts the script to one way; MLPEER_GO picks
# the go command (default /usr/local/go/bin/go, then go in PATH). Safe to run
# repeatedly (Go's build cache makes a rebuild take about a second).
set -u

if [ $# -ne 1 ]; then
    echo "usage: $0 OUTPUT_BINARY" >&2
    exit 2
fi

here=$(cd "$(dirname "$0")" && pwd)
src="$here/mlpeer"
case "$1" in
    /*) out="$1" ;;
    *) out="$(pwd)/$1" ;;
esac
mkdir -p "$(dirname "$out")" || exit 2
tmp="$out.tmp.$$"
trap 'rm -f "$tmp"' EXIT INT TERM

log() { echo "mlpeer: $*" >&2; }

# Go needs a cache directory; HOME may be unset under some harnesses.
if [ -z "${GOCACHE:-}" ] && [ -z "${XDG_CACHE_HOME:-}" ] && [ -z "${HOME:-}" ]; then
    export GOCACHE=/tmp/mlpeer-gocache
fi
if [ -z "${GOMODCACHE:-}" ] && [ -z "${GOPATH:-}" ] && [ -z "${HOME:-}" ]; then
    export GOMODCACHE=/tmp/mlpeer-gomodcache
fi
# Never let the go command download a different toolchain; build a static
# binary without a C compiler; do not stamp VCS data (git may be unusable).
export GOTOOLCHAIN=local CGO_ENABLED=0

apt_install() {
    # Install the given Debian packages if any is missing (needs root).
    missing=""
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
            missing="$missing $p"
    done
    [ -z "$missing" ] && return 0
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
        log "cannot install$missing (not root or no apt-get)"
        return 1
    fi
    log "installing$missing"
    export DEBIAN_FRONTEND=noninteractive
    # Try without refreshing the package lists first.
    # shellcheck disable=SC2086
    apt-get install -y -q --no-install-recommends $missing >/dev/null 2>&1 && return 0
    apt-get update -q >/dev/null 2>&1 || true
    # shellcheck disable=SC2086
    apt-get install -y -q --no-install-recommends $missing >/dev/null 2>&1
}

find_go() {
    if [ -n "${MLPEER_GO:-}" ]; then
        echo "$MLPEER_GO"
    elif [ -x /usr/local/go/bin/go ]; then
        echo /usr/local/go/bin/go
    elif command -v go >/dev/null 2>&1; then
        command -v go
    elif [ -x /usr/lib/go/bin/go ]; then
        echo /usr/lib/go/bin/go
    else
        return 1
    fi
}

go=$(find_go) || { apt_install golang-go && go=$(find_go); } || {
    log "no Go toolchain available"
    exit 77
}
log "using $go ($("$go" version 2>/dev/null))"

start=$(date +%s)

way=${MLPEER_BUILD_WAY:-any}

# (a) Debian's packaged sources, GOPATH mode, no network.
if [ "$way" != modules ] && apt_install golang-github-hashicorp-memberlist-dev &&
    [ -d /usr/share/gocode/src/github.com/hashicorp/memberlist ]; then
    if (cd "$src" && GO111MODULE=off GOPATH=/usr/share/gocode GOFLAGS=-buildvcs=false GOPROXY=off \
        "$go" build -o "$tmp" .); then
        mv -f "$tmp" "$out" || exit 2
        echo "mlpeer: built with debian-gopath (golang-github-hashicorp-memberlist-dev, GO111MODULE=off) in $(($(date +%s) - start)) s -> $out"
        exit 0
    fi
    log "GOPATH-mode build against Debian packages failed; trying the module proxy"
fi

# (b) Modules pinned by go.mod/go.sum, fetched from the module proxy.
if [ "$way" != debian ] && (cd "$src" && GO111MODULE=on GOFLAGS="-mod=readonly -buildvcs=false" \
    "$go" build -o "$tmp" .); then
    mv -f "$tmp" "$out" || exit 2
    echo "mlpeer: built with go-modules (memberlist v0.2.2 from ${GOPROXY:-$("$go" env GOPROXY)}) in $(($(date +%s) - start)) s -> $out"
    exit 0
fi

log "could not build mlpeer either way"
exit 77
