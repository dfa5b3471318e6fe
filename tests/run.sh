#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# THE test command (CI runs it through .ci/run in a fresh clone):
#   1. installs missing packages (deploy/install-deps.sh, apt-get only when needed);
#   2. builds ./build with --werror and runs every meson suite;
#   3. builds ./build-asan with ASan+UBSan and --werror, runs the unit, fuzz, sim and integration
#      suites;
#   4. checks formatting with clang-format, builds the libFuzzer targets with clang and fuzzes each
#      for FUZZ_SECONDS (default 15);
#   5. with a Docker engine, builds the images and runs deploy/docker/test.sh and the compose
#      cluster's chaos test deploy/compose/test.sh (skipped, and said so, without one);
#   6. prints a summary; the last line is exactly "N passed, N failed" (", N skipped" if any).
# Exits non-zero if a build or a test failed.
# Environment: JOBS (parallel tests, default nproc), SKIP_ASAN=1 (only the first tree),
#              SKIP_FUZZ=1 (no libFuzzer stage), SKIP_DOCKER=1 (no image and compose tests),
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

# Deployment, with a Docker engine: the image (deploy/docker/test.sh) and the compose cluster's
# chaos test (deploy/compose/test.sh). They mostly wait (on Docker, on refresh windows), so they
# overlap the other stages: the images build in the background from here, the two scripts run
# during the libFuzzer stage. Without an engine (or with SKIP_DOCKER=1) both are reported as
# skipped, with the reason.
deploy_logs=$root/deploy-logs
deploy_skip=
deploy_pids=()
if [ "${SKIP_DOCKER:-0}" = 1 ]; then
	deploy_skip="SKIP_DOCKER=1"
elif ! command -v docker >/dev/null 2>&1 || ! timeout 30 docker info >/dev/null 2>&1; then
	deploy_skip="no Docker engine answers here (docker info)"
else
	rm -rf "$deploy_logs"
	mkdir -p "$deploy_logs"
	log "deployment: building the images in the background (deploy/compose/build.sh)"
	bash deploy/compose/build.sh --quiet >"$deploy_logs/build.log" 2>&1 &
	deploy_pids=($!)
fi
# Whatever happens, stop what runs in the background: each script then removes its containers.
stop_deploy() {
	local p
	for p in "${deploy_pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
	for p in "${deploy_pids[@]}"; do wait "$p" 2>/dev/null; done
}
trap stop_deploy EXIT

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
		run_tree "asan+ubsan" "${ASAN_BUILD_DIR:-build-asan}" "unit fuzz sim integration" \
		-Db_sanitize=address,undefined -Db_lundef=false
fi

# Formatting (STYLE.md §7): every C file as .clang-format says, with clang-format 14.
extra_pass=0
extra_fail=0
log "clang-format check"
if command -v clang-format >/dev/null 2>&1; then
	bad=()
	while IFS= read -r f; do
		clang-format --dry-run --Werror "$f" >/dev/null 2>&1 || bad+=("$f")
	done < <(git ls-files '*.c' '*.h' 2>/dev/null || find cmd node cache proto gossip tests -name '*.[ch]')
	if [ ${#bad[@]} -eq 0 ]; then
		extra_pass=$((extra_pass + 1))
		summary+=("clang-format: all files formatted")
	else
		extra_fail=$((extra_fail + 1))
		summary+=("clang-format: FAILED: ${bad[*]}")
	fi
else
	extra_fail=$((extra_fail + 1))
	summary+=("clang-format: not installed")
fi

extra_skip=0
deploy_scripts=(deploy/docker/test.sh deploy/compose/test.sh)
if [ -z "$deploy_skip" ]; then
	wait "${deploy_pids[0]}"
	build_rc=$?
	deploy_pids=()
	if [ $build_rc = 0 ]; then
		log "deployment: $(tail -n 1 "$deploy_logs/build.log"); ${deploy_scripts[*]} started"
		for script in "${deploy_scripts[@]}"; do
			bash "$script" --no-build >"$deploy_logs/${script//\//_}.log" 2>&1 &
			deploy_pids+=($!)
		done
	else
		log "deployment: building the images FAILED"
		cat "$deploy_logs/build.log"
		extra_fail=$((extra_fail + 1))
		summary+=("deployment images (deploy/compose/build.sh): FAILED")
	fi
fi

# libFuzzer: every fuzz target built with clang (-fsanitize=fuzzer on top of ASan+UBSan) and run
# for FUZZ_SECONDS from a scratch copy of its corpus. New crashes fail the run; the corpus replay
# in the suites above keeps them as regression tests once added to tests/fuzz/corpus/.
if [ "${SKIP_FUZZ:-0}" != 1 ]; then
	fuzz_dir=${FUZZ_BUILD_DIR:-build-fuzz}
	log "libFuzzer: configure and build ($fuzz_dir)"
	if CC=clang setup_tree "$fuzz_dir" -Dfuzzing=true -Db_sanitize=address,undefined \
		-Db_lundef=false -Dtests=true && ninja -C "$fuzz_dir" >"$fuzz_dir.build.log" 2>&1; then
		rm -f "$fuzz_dir.build.log"
		for bin in "$fuzz_dir"/tests/fuzz/fuzz_*; do
			[ -f "$bin" ] && [ -x "$bin" ] || continue
			name=${bin##*/fuzz_}
			scratch=$(mktemp -d)
			cp -r "tests/fuzz/corpus/$name/." "$scratch/" 2>/dev/null
			if (cd "$scratch" && "$root/$bin" -max_total_time="${FUZZ_SECONDS:-15}" \
				-rss_limit_mb=2048 -timeout=10 "$scratch" >"$scratch/log" 2>&1); then
				extra_pass=$((extra_pass + 1))
				summary+=("fuzz $name: $(grep -o 'Done [0-9]* runs' "$scratch/log" | tail -1)")
			else
				extra_fail=$((extra_fail + 1))
				tail -30 "$scratch/log"
				mkdir -p fuzz-findings && cp "$scratch"/crash-* "$scratch"/leak-* \
					"$scratch"/timeout-* fuzz-findings/ 2>/dev/null
				summary+=("fuzz $name: FAILED (inputs saved in fuzz-findings/)")
			fi
			rm -rf "$scratch"
		done
	else
		cat "$fuzz_dir.build.log" 2>/dev/null | tail -30
		extra_fail=$((extra_fail + 1))
		summary+=("libFuzzer build: FAILED")
	fi
fi

# The deployment scripts: each one pass, fail or skip, from its "N passed, N failed" line or its
# "SKIP: reason".
if [ -n "$deploy_skip" ]; then
	log "deployment tests"
	echo "SKIP: $deploy_skip: ${deploy_scripts[*]} do not run"
	extra_skip=$((extra_skip + ${#deploy_scripts[@]}))
	summary+=("${deploy_scripts[*]}: SKIP: $deploy_skip")
elif [ ${#deploy_pids[@]} -gt 0 ]; then
	for i in "${!deploy_scripts[@]}"; do
		script=${deploy_scripts[$i]}
		out=$deploy_logs/${script//\//_}.log
		wait "${deploy_pids[$i]}"
		rc=$?
		log "$script"
		cat "$out"
		tally=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$out" | tail -n 1)
		if grep -q '^SKIP:' "$out"; then
			extra_skip=$((extra_skip + 1))
			summary+=("$script: $(grep -m1 '^SKIP:' "$out")")
		elif [ $rc = 0 ]; then
			extra_pass=$((extra_pass + 1))
			summary+=("$script: $tally")
		else
			extra_fail=$((extra_fail + 1))
			summary+=("$script: FAILED (${tally:-exit $rc})")
		fi
	done
	deploy_pids=()
fi

# The failed checks again, next to the summary: a CI page that keeps only the tail of this output
# still says what failed and why, not just which test.
if [ ${#tested_dirs[@]} -gt 0 ]; then
	python3 - "${tested_dirs[@]}" <<'PY'
import json, os, re, sys
shown = 0
for path in sys.argv[1:]:
    if not os.path.exists(path):
        continue
    with open(path) as fh:
        for line in fh:
            if not line.strip():
                continue
            r = json.loads(line)
            if r["result"] in ("OK", "EXPECTEDFAIL", "SKIP"):
                continue
            if shown == 0:
                print("\n=== what failed ===")
            shown += 1
            print("--- %s (%s, %s, %.0f s)" % (r["name"], os.path.dirname(os.path.dirname(path)),
                                         r["result"], r.get("duration", 0)))
            lines = (r.get("stdout") or "").splitlines()
            picked = []
            for i, l in enumerate(lines):
                if l.startswith("not ok") or l.startswith("Bail out"):
                    picked.extend(lines[max(0, i - 2):i + 8])
                    # A raised case: its exception's own line ends the traceback below.
                    picked.extend(x[:1200] for x in lines[i + 8:i + 80]
                                  if re.match(r"^#\s+[\w.]*(Error|Exception|Exit)\b", x))
                    picked.append("  ...")
            if not picked:  # a crash or a timeout: the end of what it printed
                picked = lines[-25:]
            for l in picked[:80]:
                print("  " + l)
PY
fi

log "summary ($(($(date +%s) - start_s)) s)"
for line in "${summary[@]}"; do
	echo "$line"
done
python3 - "$build_failures" "$extra_pass" "$extra_fail" "$extra_skip" "${tested_dirs[@]}" <<'PY'
import json, os, sys
p = f = s = 0
f += int(sys.argv[1])
p += int(sys.argv[2])
f += int(sys.argv[3])
s += int(sys.argv[4])
for path in sys.argv[5:]:
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
