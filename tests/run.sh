#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# THE test command (CI runs it through .ci/run in a fresh clone):
#   1. installs missing packages (deploy/install-deps.sh, apt-get only when needed);
#   2. builds ./build with --werror and runs every meson suite;
#   3. builds ./build-asan with ASan+UBSan and --werror, runs the unit, fuzz and integration suites;
#   4. prints a summary; the last line is exactly "N passed, N failed" (", N skipped" if any).
# Exits non-zero if a build or a test failed.
# Environment: JOBS (parallel tests, default nproc), SKIP_ASAN=1 (only the first tree),
#              BUILD_DIR / ASAN_BUILD_DIR (default build / build-asan),
#              WERROR=0 (local triage only: build without --werror),
#              MESON_TEST_ARGS (extra arguments for both `meson test` runs).
set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
jobs=${JOBS:-$(nproc 2>/dev/null || echo 2)}
werror=true
[ "${WERROR:-1}" = 0 ] && werror=false
start_s=$(date +%s)
build_failures=0
summary=()
tested_dirs=()

log() { printf '\n=== %s ===\n' "$*"; }

if ! bash deploy/install-deps.sh; then
	echo "run.sh: installing dependencies failed" >&2
	echo "0 passed, 1 failed"
	exit 1
fi

# setup_tree DIR [meson options...]: configures (or reconfigures) a build tree.
setup_tree() {
	local dir=$1
	shift
	if [ -f "$dir/meson-private/coredata.dat" ]; then
		meson setup --reconfigure "$dir" -Dwerror="$werror" "$@" >"$dir.setup.log" 2>&1
	else
		rm -rf "$dir"
		meson setup "$dir" -Dwerror="$werror" "$@" >"$dir.setup.log" 2>&1
	fi
	local rc=$?
	[ $rc -eq 0 ] || { cat "$dir.setup.log"; rm -f "$dir.setup.log"; return $rc; }
	rm -f "$dir.setup.log"
}

# run_tree NAME DIR "SUITES" [meson options...]
run_tree() {
	local name=$1 dir=$2 suites=$3
	shift 3
	log "$name: configure and build ($dir)"
	rm -f "$dir/meson-logs/testlog.json"
	if ! setup_tree "$dir" "$@" || ! ninja -C "$dir"; then
		echo "run.sh: $name build FAILED" >&2
		build_failures=$((build_failures + 1))
		summary+=("$name: build FAILED")
		return
	fi
	log "$name: meson test ${suites:-(all suites)}"
	local args=(--num-processes "$jobs" --print-errorlogs)
	for s in $suites; do
		args+=(--suite "$s")
	done
	# shellcheck disable=SC2086
	meson test -C "$dir" "${args[@]}" ${MESON_TEST_ARGS:-}
	tested_dirs+=("$dir/meson-logs/testlog.json")
	summary+=("$name: $(count "$dir/meson-logs/testlog.json")")
}

# count TESTLOG: "P passed, F failed, S skipped" from meson's JSON-lines test log.
count() {
	python3 - "$1" <<'PY'
import json, sys
p = f = s = 0
names = []
try:
    with open(sys.argv[1]) as fh:
        for line in fh:
            if not line.strip():
                continue
            r = json.loads(line)["result"]
            if r in ("OK", "EXPECTEDFAIL"):
                p += 1
            elif r == "SKIP":
                s += 1
            else:
                f += 1
                names.append(json.loads(line)["name"])
except FileNotFoundError:
    f += 1
    names.append("(no test log)")
failed = (" [" + ", ".join(names) + "]") if names else ""
print("%d passed, %d failed, %d skipped%s" % (p, f, s, failed))
PY
}

run_tree "gcc" "${BUILD_DIR:-build}" ""
if [ "${SKIP_ASAN:-0}" != 1 ]; then
	# ASan/UBSan slow everything down; give the timeouts room.
	MESON_TEST_ARGS="${MESON_TEST_ARGS:-} --timeout-multiplier 3" \
		run_tree "asan+ubsan" "${ASAN_BUILD_DIR:-build-asan}" "unit fuzz integration" \
		-Db_sanitize=address,undefined -Db_lundef=false
fi

log "summary ($(($(date +%s) - start_s)) s)"
for line in "${summary[@]}"; do
	echo "$line"
done
python3 - "$build_failures" "${tested_dirs[@]}" <<'PY'
import json, os, sys
p = f = s = 0
f += int(sys.argv[1])
for path in sys.argv[2:]:
    if not os.path.exists(path):
        f += 1  # `meson test` itself failed before writing its log
        continue
    with open(path) as fh:
        for line in fh:
            if not line.strip():
                continue
            r = json.loads(line)["result"]
            if r in ("OK", "EXPECTEDFAIL"):
                p += 1
            elif r == "SKIP":
                s += 1
            else:
                f += 1
print("%d passed, %d failed%s" % (p, f, ", %d skipped" % s if s else ""))
sys.exit(1 if f else 0)
PY
