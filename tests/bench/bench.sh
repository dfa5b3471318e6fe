#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Benchmarks stapled on loopback (not part of CI; see tests/bench/README.md):
#   1. throughput: wrk (HTTP/1.1 keep-alive) against stapled and against nginx serving the same
#      DER bytes as a static file, cached GET (url-encoded base64) and POST, alternating runs;
#      prints req/s, p99 and the stapled/nginx ratio;
#   2. memory: RSS of stapled with ENTRIES entries loaded (default 10000), per entry, and the
#      time a restart takes to serve them all from the disk cache with the upstream down.
# Usage: tests/bench/bench.sh [throughput|memory|all]
# Environment: STAPLED (binary; default build/cmd/stapled), ROUNDS (3), DURATION (10s),
#   CONNS (16), ENTRIES (10000; e.g. "10000 100000" for several), KEEP=1 keeps the work dir.
set -euo pipefail

what=${1:-all}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
bench=$root/tests/bench
stapled=${STAPLED:-$root/build/cmd/stapled}
rounds=${ROUNDS:-3}
duration=${DURATION:-10s}
conns=${CONNS:-16}
entries_list=${ENTRIES:-10000}

die() {
	echo "bench: $*" >&2
	exit 1
}
for tool in wrk nginx openssl curl python3 /usr/bin/python3; do
	command -v "$tool" >/dev/null || die "$tool is missing (deploy/install-deps.sh)"
done
[ -x "$stapled" ] || die "no stapled at $stapled (build first or set STAPLED)"

work=$(mktemp -d /tmp/stapled-bench.XXXXXX)
chmod 755 "$work" # nginx workers may run as another user
pids=()
cleanup() {
	for p in "${pids[@]}"; do
		kill -TERM -- "-$p" 2>/dev/null || true
	done
	sleep 0.5
	for p in "${pids[@]}"; do
		kill -KILL -- "-$p" 2>/dev/null || true
	done
	if [ "${KEEP:-0}" = 1 ]; then echo "bench: work dir kept: $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
# wait_for WHAT SECONDS COMMAND...
wait_for() {
	local what=$1 secs=$2
	shift 2
	local deadline=$(($(date +%s) + secs))
	until "$@" >/dev/null 2>&1; do
		[ "$(date +%s)" -lt $deadline ] || { echo "bench: timed out waiting for $what" >&2; return 1; }
		sleep 0.1
	done
}
# spawn NAME CPUS COMMAND...: starts COMMAND in its own process group, pinned to CPUS.
spawn() {
	local name=$1 cpus=$2
	shift 2
	if [ -n "$cpus" ]; then
		setsid taskset -c "$cpus" "$@" >"$work/$name.log" 2>&1 &
	else
		setsid "$@" >"$work/$name.log" 2>&1 &
	fi
	pids+=($!)
	last_pid=$!
}
stop_pid() {
	kill -TERM -- "-$1" 2>/dev/null || true
	for _ in $(seq 100); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done
	kill -KILL -- "-$1" 2>/dev/null || true
}
metric() { # metric ADMIN_PORT NAME: value of an unlabelled metric
	curl -sf "http://127.0.0.1:$1/metrics" | awk -v n="$2" '$1 == n { print $2 }'
}
servable_is() { # servable_is ADMIN_PORT N
	[ "$(metric "$1" stapled_responses_servable)" = "$2" ]
}

# Servers on CPU 0, wrk on the others: both servers are single-threaded, so the comparison is
# one core against one core with the load generator out of their way.
ncpu=$(nproc)
if [ "$ncpu" -ge 2 ]; then
	server_cpus=0
	wrk_cpus=1-$((ncpu - 1))
	wrk_threads=$(((ncpu - 1) < 2 ? 2 : (ncpu - 1)))
else
	server_cpus=""
	wrk_cpus=""
	wrk_threads=1
fi

throughput() {
	local pki=$work/pki up_port sport aport nport
	up_port=$(free_port)
	sport=$(free_port)
	aport=$(free_port)
	nport=$(free_port)
	bash "$root/tests/pki/mkpki.sh" "$pki" "http://127.0.0.1:$up_port/" >/dev/null
	spawn upstream "" python3 "$root/tests/tools/ocsp_upstream.py" --pki "$pki" --port "$up_port" \
		--validity-days 1
	wait_for "the upstream" 10 grep -q PORT "$work/upstream.log"
	cat >"$work/stapled.yaml" <<-YAML
		certificates: ["$pki/good-chain.crt"]
		log_level: warning
	YAML
	spawn stapled "$server_cpus" "$stapled" --config "$work/stapled.yaml" \
		--listen "127.0.0.1:$sport" --admin-listen "127.0.0.1:$aport"
	wait_for "stapled" 20 curl -sf "http://127.0.0.1:$aport/readyz"

	local req=$work/good.req.der
	openssl ocsp -issuer "$pki/int.crt" -cert "$pki/good.crt" -no_nonce -reqout "$req" 2>/dev/null
	curl -sf --data-binary @"$req" -H 'Content-Type: application/ocsp-request' \
		-D "$work/stapled.headers" -o "$work/resp.der" "http://127.0.0.1:$sport/"
	openssl ocsp -respin "$work/resp.der" -issuer "$pki/int.crt" -cert "$pki/good.crt" \
		-CAfile "$pki/root.crt" -no_nonce 2>&1 | grep -q 'good.crt: good'

	# nginx: the same bytes as a static file with RFC 5019-like headers. POST is turned into a
	# GET of the same file through error_page 405 (the static module refuses POST).
	local ng=$work/nginx expires cc
	mkdir -p "$ng/html" "$ng/logs"
	cp "$work/resp.der" "$ng/html/resp.der"
	chmod -R a+rX "$ng"
	expires=$(grep -i '^expires:' "$work/stapled.headers" | cut -d' ' -f2- | tr -d '\r')
	cc=$(grep -i '^cache-control:' "$work/stapled.headers" | cut -d' ' -f2- | tr -d '\r')
	cat >"$ng/nginx.conf" <<-CONF
		$( [ "$(id -u)" = 0 ] && echo "user root root;" )
		worker_processes 1;
		daemon off;
		master_process on;
		pid $ng/nginx.pid;
		error_log $ng/logs/error.log warn;
		events { worker_connections 4096; }
		http {
		    access_log off;
		    server {
		        listen 127.0.0.1:$nport;
		        root $ng/html;
		        location / {
		            default_type application/ocsp-response;
		            try_files /resp.der =404;
		            error_page 405 =200 \$uri;
		            add_header Cache-Control "$cc";
		            add_header Expires "$expires";
		        }
		    }
		}
	CONF
	spawn nginx "$server_cpus" nginx -p "$ng" -c "$ng/nginx.conf" -e "$ng/logs/error.log"
	wait_for "nginx" 10 curl -sf -o /dev/null "http://127.0.0.1:$nport/x"
	curl -sf --data-binary @"$req" -H 'Content-Type: application/ocsp-request' \
		-o "$work/nginx-post.der" "http://127.0.0.1:$nport/"
	cmp -s "$work/resp.der" "$work/nginx-post.der" || { echo "bench: nginx POST differs" >&2; exit 1; }

	local results=$work/results.txt
	: >"$results"
	echo
	printf '%-8s %-5s %-6s %12s %10s\n' server req round "req/s" "p99 (ms)"
	for method in get post; do
		for r in $(seq "$rounds"); do
			for server in stapled nginx; do
				local port=$sport
				[ $server = nginx ] && port=$nport
				local out=$work/wrk-$server-$method-$r.txt
				OCSP_REQ=$req ${wrk_cpus:+taskset -c $wrk_cpus} wrk -t"$wrk_threads" -c"$conns" \
					-d"$duration" --latency -s "$bench/wrk-ocsp-$method.lua" \
					"http://127.0.0.1:$port/" >"$out"
				local rps p99 bad
				rps=$(awk '/^Requests\/sec:/ { print $2 }' "$out")
				p99=$(awk '$1 == "99%" { v = $2; if (v ~ /us$/) { sub(/us$/, "", v); v /= 1000 }
					else if (v ~ /ms$/) { sub(/ms$/, "", v) } else if (v ~ /s$/) { sub(/s$/, "", v); v *= 1000 }
					printf "%.3f", v }' "$out")
				bad=$(awk '/Non-2xx|Socket errors/ { print }' "$out")
				printf '%-8s %-5s %-6s %12s %10s %s\n' $server $method "$r" "$rps" "$p99" "$bad"
				echo "$server $method $rps $p99" >>"$results"
			done
		done
	done
	echo
	python3 - "$results" <<-'PY'
		import statistics, sys
		rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
		def med(server, method, col):
		    return statistics.median(float(r[col]) for r in rows if r[0] == server and r[1] == method)
		print("%-6s %14s %14s %8s %14s %14s" % ("median", "stapled req/s", "nginx req/s", "ratio",
		                                         "stapled p99ms", "nginx p99ms"))
		for m in ("get", "post"):
		    s, n = med("stapled", m, 2), med("nginx", m, 2)
		    print("%-6s %14.0f %14.0f %8.2f %14.3f %14.3f" % (m, s, n, s / n, med("stapled", m, 3),
		                                                       med("nginx", m, 3)))
	PY
	stop_pid "${pids[-1]}"
}

memory() {
	local n=$1 gen=$work/gen-$n up_port aport sport
	up_port=$(free_port)
	aport=$(free_port)
	sport=$(free_port)
	echo
	echo "== memory with $n entries"
	/usr/bin/python3 "$bench/gen_entries.py" "$gen" "$n" "http://127.0.0.1:$up_port/"
	spawn "upstream-$n" "" python3 "$root/tests/tools/ocsp_upstream.py" --port "$up_port" \
		--mode dir --dir "$gen/responses"
	local up_pid=$last_pid
	wait_for "the upstream" 10 grep -q PORT "$work/upstream-$n.log"
	mkdir -p "$gen/empty"
	cat >"$gen/stapled.yaml" <<-YAML
		cert_dirs: ["$gen/certs"]
		issuer_dirs: ["$gen/issuers"]
		fetch_ca_issuers: false
		cache:
		  dir: $gen/cache
		fetch:
		  max_parallel: 64
		log_level: warning
	YAML
	sed -e "s#$gen/certs#$gen/empty#" "$gen/stapled.yaml" >"$gen/empty.yaml"

	# Baseline: the same process with no entries.
	spawn "stapled-empty-$n" "" "$stapled" --config "$gen/empty.yaml" \
		--listen "127.0.0.1:$sport" --admin-listen "127.0.0.1:$aport"
	local pid=$last_pid
	wait_for "stapled (empty)" 20 curl -sf "http://127.0.0.1:$aport/readyz"
	local rss0
	rss0=$(awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status")
	stop_pid "$pid"

	local t0 t1
	t0=$(date +%s.%N)
	spawn "stapled-$n" "" "$stapled" --config "$gen/stapled.yaml" \
		--listen "127.0.0.1:$sport" --admin-listen "127.0.0.1:$aport"
	pid=$last_pid
	wait_for "$n servable responses" $((60 + n / 20)) servable_is "$aport" "$n"
	t1=$(date +%s.%N)
	sleep 2 # let the allocator settle after the fetch burst
	local rss
	rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status")
	stop_pid "$pid"
	stop_pid "$up_pid"

	# Restart with the upstream down: time until every entry is servable from the disk cache.
	local t2 t3
	t2=$(date +%s.%N)
	spawn "stapled-restart-$n" "" "$stapled" --config "$gen/stapled.yaml" \
		--listen "127.0.0.1:$sport" --admin-listen "127.0.0.1:$aport"
	pid=$last_pid
	wait_for "$n responses from disk" 120 servable_is "$aport" "$n"
	t3=$(date +%s.%N)
	local rss_restart
	rss_restart=$(awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status")
	stop_pid "$pid"

	local der_bytes
	der_bytes=$(find "$gen/responses" -name '*.der' -printf '%s\n' | awk '{ s += $1 } END { print s }')
	python3 - "$n" "$rss0" "$rss" "$rss_restart" "$der_bytes" "$t0" "$t1" "$t2" "$t3" <<-'PY'
		import sys
		n, rss0, rss, rss_r, der = (int(x) for x in sys.argv[1:6])
		t0, t1, t2, t3 = (float(x) for x in sys.argv[6:10])
		per = (rss - rss0) * 1024 / n
		per_r = (rss_r - rss0) * 1024 / n
		print("entries                %d" % n)
		print("RSS empty              %d KiB" % rss0)
		print("RSS loaded (fetched)   %d KiB  -> %.0f B per entry" % (rss, per))
		print("RSS loaded (from disk) %d KiB  -> %.0f B per entry" % (rss_r, per_r))
		print("raw DER per response   %.0f B  (target: <= DER + 256 B = %.0f B per entry)"
		      % (der / n, der / n + 256))
		print("fetch all from upstream %.1f s; restart to all servable from disk %.2f s"
		      % (t1 - t0, t3 - t2))
	PY
}

case $what in
throughput) throughput ;;
memory) for n in $entries_list; do memory "$n"; done ;;
all)
	throughput
	for n in $entries_list; do memory "$n"; done
	;;
*)
	echo "usage: $0 [throughput|memory|all]" >&2
	exit 2
	;;
esac
