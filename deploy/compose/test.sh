#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# The chaos test of the compose cluster (docs/deployment.md, "docker-compose test cluster").
#
# Builds the images (deploy/compose/build.sh), starts the whole cluster under a project name of
# its own (stapled-ctest-<pid>, subnets $STAPLED_NET, default 10.232, so that it does not clash
# with a demo cluster on 10.231), then, while a sampler handshakes with every web server once a
# second through its port published on 127.0.0.1 (curl --cert-status checks the staple's
# signature and times; openssl s_client -status reads thisUpdate and nextUpdate):
#
#   1. every web server of both datacenters staples a valid response;
#   2. steady state until every entry was refreshed once (the CA's log counts the requests);
#   3. the regional node owning the most entries is killed (SIGKILL); the entries it owned are
#      refreshed by the others; it is started again and the cluster is whole again;
#   4. the link between the datacenters is cut (iptables in datacenter 2's regional nodes'
#      network namespaces drops datacenter 1's wan addresses) for longer than the gossip reap
#      time (30 s), then restored; each side goes on alone, and the cluster heals by itself;
#   5. a sidecar is restarted and serves from its disk cache at once;
#   6. steady state until every entry was refreshed once more.
#
# Checked: no handshake without a valid staple, no expired staple, every member seeing every
# other again after each fault, and the CA's requests per entry per refresh window: exactly 1
# in steady state, at most 2 while an owner is dead or the datacenters are apart (one per side),
# and no entry left unrefreshed for longer than a window plus the fallback delay.
#
# Usage: deploy/compose/test.sh [--no-build]     (as root: the cut uses nsenter and iptables)
#   KEEP_TMP=1 keeps the temporary directory (samples, CA log, container logs).
# Prints "N passed, N failed"; exits 1 when a check failed, 0 with "SKIP: reason" without a
# Docker engine or docker-compose. Everything it starts is removed at the end, whatever happened.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
build=1
[ "${1:-}" = --no-build ] && build=0

command -v docker >/dev/null || { echo "SKIP: docker is not installed"; exit 0; }
timeout 30 docker info >/dev/null 2>&1 || { echo "SKIP: the Docker engine does not answer"; exit 0; }
if docker compose version >/dev/null 2>&1; then
	compose_cmd=(docker compose)
elif command -v docker-compose >/dev/null; then
	compose_cmd=(docker-compose)
else
	echo "SKIP: neither docker compose nor docker-compose is installed"
	exit 0
fi
[ "$(id -u)" = 0 ] || { echo "SKIP: the partition needs root (nsenter, iptables)"; exit 0; }
for tool in openssl curl python3 nsenter iptables; do
	command -v $tool >/dev/null || { echo "SKIP: $tool is not installed"; exit 0; }
done

export STAPLED_NET=${STAPLED_NET:-10.232}
project=stapled-ctest-$$
tmp=$(mktemp -d "${TMPDIR:-/tmp}/stapled-ctest.XXXXXX")
events=$tmp/events.txt # "EPOCH NAME": the phases, for the analysis
samples=$tmp/samples.txt
sites=(dc1-apache dc1-nginx dc2-apache dc2-nginx)
regionals=(dc1-r1 dc1-r2 dc1-r3 dc2-r1 dc2-r2 dc2-r3)
sampler_pid=

compose() { timeout 300 "${compose_cmd[@]}" -p "$project" -f "$here/docker-compose.yml" "$@"; }
# shellcheck source=../checks.sh
. "$here/../checks.sh"
event() { echo "$(date +%s.%N) $1" >>"$events"; }

cleanup() {
	[ -z "$sampler_pid" ] || kill "$sampler_pid" 2>/dev/null
	if [ -f "$here/docker-compose.yml" ]; then
		compose logs --no-color -t >"$tmp/compose.log" 2>&1
		if [ $failed -gt 0 ]; then
			note "--- last log lines of each service"
			compose logs --no-color --tail 8 2>&1 | sed 's/^/# /'
		fi
		compose down -v --remove-orphans --timeout 20 >/dev/null 2>&1 ||
			note "docker-compose down failed"
	fi
	if [ "${KEEP_TMP:-0}" = 1 ]; then
		note "kept $tmp"
	else
		rm -rf "$tmp"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- images and cluster ---------------------------------------------------------------------------
if [ $build = 1 ]; then
	if ! "$here/build.sh" --quiet; then
		not_ok "the images build"
		summary
		exit 1
	fi
	ok "the images build (stapled, stapled-web)"
fi

t_up=$SECONDS
event up
if ! compose up -d >"$tmp/up.log" 2>&1; then
	cat "$tmp/up.log"
	not_ok "docker-compose up"
	summary
	exit 1
fi
ok "docker-compose up: 16 services on networks internet, wan, dc1, dc2 ($STAPLED_NET.*)"

# port SERVICE PORT: the host port published on 127.0.0.1.
port() { compose port "$1" "$2" 2>/dev/null | sed -n 's/^127\.0\.0\.1:\([0-9]*\)$/\1/p' | head -n 1; }
cid() { compose ps -q "$1" 2>/dev/null; }
declare -A webport admin
for s in "${sites[@]}"; do webport[$s]=$(port "$s" 443); done
for r in "${regionals[@]}"; do admin[$r]=$(port "$r" 8890); done
compose exec -T dc1-r1 cat /pki/root.crt >"$tmp/root.crt" 2>/dev/null
compose exec -T dc1-r1 cat /pki/serials.txt >"$tmp/serials.txt" 2>/dev/null
check "the demo PKI is made (root and one certificate per web server)" \
	test -s "$tmp/root.crt" -a "$(wc -l <"$tmp/serials.txt" 2>/dev/null)" = 4

# staple_ok SITE: one handshake whose staple curl verifies (signature, status good, times).
staple_ok() {
	local p=${webport[$1]}
	curl -s -m 5 --cert-status --cacert "$tmp/root.crt" --resolve "localhost:$p:127.0.0.1" \
		-o /dev/null "https://localhost:$p/"
}
all_stapled() {
	local s
	for s in "${sites[@]}"; do staple_ok "$s" || return 1; done
}
if wait_for 120 all_stapled; then
	ok "all four web servers staple a valid response ($((SECONDS - t_up)) s after up)"
else
	for s in "${sites[@]}"; do staple_ok "$s" || note "$s: no valid staple"; done
	not_ok "all four web servers staple a valid response within 120 s"
	summary
	exit 1
fi
event stapled

# --- the sampler: one verified handshake per web server per second ---------------------------------
# Each line: EPOCH SITE ok|fail THISUPDATE NEXTUPDATE (epoch seconds, "-" when not read).
sample() {
	local s p now text tu nu res
	while :; do
		for s in "${sites[@]}"; do
			p=${webport[$s]}
			now=$(date +%s.%N)
			if staple_ok "$s"; then res=ok; else res=fail; fi
			text=$(timeout 5 openssl s_client -connect "127.0.0.1:$p" -servername localhost \
				-status </dev/null 2>/dev/null)
			tu=$(sed -n 's/^ *This Update: //p' <<<"$text" | head -n 1)
			nu=$(sed -n 's/^ *Next Update: //p' <<<"$text" | head -n 1)
			tu=$([ -n "$tu" ] && date -d "$tu" +%s || echo -)
			nu=$([ -n "$nu" ] && date -d "$nu" +%s || echo -)
			echo "$now $s $res $tu $nu" >>"$samples"
		done
		sleep 1
	done
}
sample &
sampler_pid=$!

# --- cluster state ----------------------------------------------------------------------------------
# ca_count [SERIAL]: requests the CA received (for that serial).
ca_log() { docker logs -t "$(cid ca)" 2>&1 | grep 'Serial Number:' >"$tmp/ca.log"; }
ca_count() {
	ca_log
	if [ $# = 0 ]; then wc -l <"$tmp/ca.log"; else grep -c "Serial Number: $1\$" "$tmp/ca.log"; fi
}
# alive_seen_by NODE: how many members NODE sees alive (itself included).
alive_seen_by() {
	curl -s -m 3 "http://127.0.0.1:${admin[$1]}/admin/members" 2>/dev/null |
		python3 -c 'import json,sys; print(sum(m["state"] == "alive" for m in json.load(sys.stdin)["members"]))' \
			2>/dev/null || echo 0
}
# all_see N NODE...: every NODE sees exactly N members alive.
all_see() {
	local n=$1 r
	shift
	for r in "$@"; do [ "$(alive_seen_by "$r")" = "$n" ] || return 1; done
}
serials=()
while read -r serial site; do serials+=("$serial"); done <"$tmp/serials.txt"
# each_refreshed_since FILE: every serial has more CA requests than FILE ("SERIAL COUNT" lines) says.
counts_now() {
	local s
	ca_log
	for s in "${serials[@]}"; do echo "$s $(grep -c "Serial Number: $s\$" "$tmp/ca.log")"; done
}
each_refreshed_since() {
	local s c before
	ca_log
	while read -r s before; do
		c=$(grep -c "Serial Number: $s\$" "$tmp/ca.log")
		[ "$c" -gt "$before" ] || return 1
	done <"$1"
}

check "the six regional nodes see each other (6 alive members each)" \
	wait_for 60 all_see 6 "${regionals[@]}"
note "CA requests so far: $(ca_count) for ${#serials[@]} entries"

# --- 2. steady state ------------------------------------------------------------------------------
counts_now >"$tmp/counts.0"
check "steady state: every entry refreshed once (one refresh window)" \
	wait_for 100 each_refreshed_since "$tmp/counts.0"

# --- 3. kill the owner of the most entries ------------------------------------------------------------
victim=$(curl -s -m 3 "http://127.0.0.1:${admin[dc1-r2]}/admin/entries" | python3 -c '
import collections, json, sys
owners = collections.Counter(e.get("owner") for e in json.load(sys.stdin)["entries"])
print(owners.most_common(1)[0][0] if owners else "")')
case " ${regionals[*]} " in *" $victim "*) ;; *) victim=dc1-r1 ;; esac
others=()
for r in "${regionals[@]}"; do [ "$r" = "$victim" ] || others+=("$r"); done
owned=$(curl -s -m 3 "http://127.0.0.1:${admin[${others[0]}]}/admin/entries" |
	python3 -c 'import json,sys; print(" ".join(e["serial"] for e in json.load(sys.stdin)["entries"] if e.get("owner") == sys.argv[1]))' "$victim")
counts_now | grep -E "^(${owned// /|}) " >"$tmp/counts.kill"
event kill
docker kill "$(cid "$victim")" >/dev/null
t_kill=$SECONDS
check "$victim (owner of: ${owned:-nothing}) killed; the other five see 5 members alive" \
	wait_for 60 all_see 5 "${others[@]}"
note "failure detected in $((SECONDS - t_kill)) s"
if [ -s "$tmp/counts.kill" ]; then
	check "the entries $victim owned were refreshed by another node" \
		wait_for 100 each_refreshed_since "$tmp/counts.kill"
fi
event restart
compose start "$victim" >/dev/null 2>&1
admin[$victim]=$(port "$victim" 8890) # a new host port
t0=$SECONDS
if wait_for 90 all_see 6 "${regionals[@]}"; then
	ok "$victim started again: all six see 6 members alive ($((SECONDS - t0)) s)"
else
	not_ok "$victim started again: all six see 6 members alive within 90 s"
fi
event healed-kill

# --- 4. cut the link between the datacenters ---------------------------------------------------------
# In each of datacenter 2's regional nodes, packets from and to datacenter 1's regional nodes'
# wan addresses are dropped (iptables in the container's network namespace): gossip and pulls
# between the datacenters stop, while each datacenter's nodes still talk among themselves and
# to the CA, as when the link between two sites fails.
wan_addr() { # NODE: its address on the wan network
	docker inspect --format '{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{$v.IPAddress}}{{"\n"}}{{end}}' \
		"$(cid "$1")" | awk '$1 ~ /_wan$/ { print $2 }'
}
dc1_wan=()
for r in dc1-r1 dc1-r2 dc1-r3; do dc1_wan+=("$(wan_addr "$r")"); done
# link ACTION: -I cuts, -D restores.
link() {
	local r pid a
	for r in dc2-r1 dc2-r2 dc2-r3; do
		pid=$(docker inspect --format '{{.State.Pid}}' "$(cid "$r")")
		for a in "${dc1_wan[@]}"; do
			nsenter -t "$pid" -n iptables "$1" INPUT -s "$a" -j DROP || return 1
			nsenter -t "$pid" -n iptables "$1" OUTPUT -d "$a" -j DROP || return 1
		done
	done
}
event cut
t_cut=$SECONDS
check "the link between the datacenters is cut (dc2 drops dc1's ${dc1_wan[*]})" link -I
check "partition: each datacenter's nodes see only their own 3 members alive" \
	wait_for 60 all_see 3 "${regionals[@]}"
note "partition seen by every node after $((SECONDS - t_cut)) s"
# Failed members are forgotten (reaped) 30 s after they were declared failed: hold the cut that
# much longer, so that only the reconnect loop can heal it.
sleep 35
cut_len=$((SECONDS - t_cut))
check "the link is restored" link -D
event reconnect
t0=$SECONDS
if wait_for 150 all_see 6 "${regionals[@]}"; then
	heal=$((SECONDS - t0))
	ok "a cut of $cut_len s (reap time 30 s) healed by itself: all see 6 members $heal s after the link returned"
else
	not_ok "a cut of $cut_len s healed within 150 s after the link returned"
fi
event healed

# --- 5. restart a sidecar ----------------------------------------------------------------------------
sidecar=dc2-sidecar-apache
event sidecar-restart
compose restart -t 20 "$sidecar" >/dev/null 2>&1
sport=$(port "$sidecar" 8889)
serial_of_site() { awk -v s="$1" '$2 == s { print $1 }' "$tmp/serials.txt"; }
leaf_serves() {
	compose exec -T "$sidecar" cat /pki/sites/dc2-apache/certs/chain.pem >"$tmp/leaf.pem" 2>/dev/null
	openssl x509 -in "$tmp/leaf.pem" -out "$tmp/leaf.crt" 2>/dev/null
	compose exec -T "$sidecar" cat /pki/int.crt >"$tmp/int.crt" 2>/dev/null
	openssl ocsp -issuer "$tmp/int.crt" -cert "$tmp/leaf.crt" -url "http://127.0.0.1:$sport/" \
		-CAfile "$tmp/root.crt" -no_nonce -timeout 5 >"$tmp/leaf.ocsp" 2>&1 &&
		grep -q ': good$' "$tmp/leaf.ocsp" && grep -q 'Response verify OK' "$tmp/leaf.ocsp"
}
t0=$SECONDS
check "restarted $sidecar answers a verified good response (serial $(serial_of_site dc2-apache))" \
	wait_for 30 leaf_serves
note "$sidecar serving again $((SECONDS - t0)) s after the restart returned"
# Since its restart: the responses loaded from its cache directory, and whether that load came
# before its first answer from a parent.
from_disk=$(compose logs --no-color "$sidecar" 2>/dev/null | awk '
	/node: stapled .* started:/ { loaded = ""; fetched = 0 }
	/store: .* responses loaded/ && !fetched { match($0, /[0-9]+ responses loaded/); loaded = substr($0, RSTART, RLENGTH) }
	/fetch: .* good from/ { fetched = 1 }
	END { print loaded }')
check "... from its disk cache, before asking a parent (${from_disk:-nothing loaded})" \
	test "${from_disk%% *}" -ge 1 2>/dev/null

# --- 6. steady state again --------------------------------------------------------------------------
counts_now >"$tmp/counts.end"
check "after the faults: every entry refreshed once more" \
	wait_for 100 each_refreshed_since "$tmp/counts.end"
event end
sleep 2
kill "$sampler_pid" 2>/dev/null
wait "$sampler_pid" 2>/dev/null
sampler_pid=

# --- analysis -------------------------------------------------------------------------------------
ca_log
python3 - "$events" "$samples" "$tmp/ca.log" "$tmp/serials.txt" >"$tmp/analysis.txt" <<'PY'
import collections, datetime, sys

events = {}
for line in open(sys.argv[1]):
    t, name = line.split()
    events.setdefault(name, float(t))
site_of = dict(reversed(l.split()) for l in open(sys.argv[4]) if l.strip())
serial_site = {v: k for k, v in site_of.items()}

# Staples seen by the sampler.
by_site = collections.defaultdict(list)
for line in open(sys.argv[2]):
    t, site, res, tu, nu = line.split()
    by_site[site].append((float(t), res == "ok", None if tu == "-" else int(tu),
                          None if nu == "-" else int(nu)))
fails = expired = 0
total = 0
for site in sorted(by_site):
    s = by_site[site]
    total += len(s)
    bad = [x for x in s if not x[1]]
    exp = [x for x in s if x[3] is not None and x[3] < x[0]]
    fails += len(bad)
    expired += len(exp)
    # Longest time without a valid staple: from the last good sample before a failure to the next
    # good one (0 when no sample failed).
    longest, last_ok, in_gap = 0.0, s[0][0], False
    for t, good, _, _ in s:
        if good:
            if in_gap:
                longest = max(longest, t - last_ok)
            last_ok, in_gap = t, False
        else:
            in_gap = True
    if in_gap:
        longest = max(longest, s[-1][0] - last_ok)
    ages = [x[0] - x[2] for x in s if x[2] is not None]
    updates = len({x[2] for x in s if x[2] is not None})
    print("STAPLE %s samples=%d failed=%d expired=%d longest_without=%.1f max_age=%.0f "
          "distinct_responses=%d" % (site, len(s), len(bad), len(exp), longest,
                                     max(ages) if ages else -1, updates))
print("STAPLES total=%d failed=%d expired=%d" % (total, fails, expired))

# Requests at the CA, grouped per entry into refresh windows: a request more than 15 s after the
# first of the current window opens a new one (refreshes are 30 to 45 s apart).
reqs = collections.defaultdict(list)
for line in open(sys.argv[3]):
    ts, _, _, serial = line.split()
    t = datetime.datetime.strptime(ts[:26], "%Y-%m-%dT%H:%M:%S.%f").replace(
        tzinfo=datetime.timezone.utc).timestamp()
    reqs[serial].append(t)
kill, cut, healed = events.get("kill", 1e18), events.get("cut", 1e18), events.get("healed", 1e18)
restart = events.get("restart", 1e18)

def phase(t):
    if kill <= t < restart + 15:
        return "owner-killed"
    if cut <= t < healed + 45:  # the first window after the heal may still see both sides' fetches
        return "partition"
    return "steady"

limit = {"steady": 1, "owner-killed": 2, "partition": 2}
over = 0
worst = collections.defaultdict(int)
nwin = collections.Counter()
nreq = collections.Counter()
max_gap = 0.0
for serial, ts in sorted(reqs.items()):
    ts.sort()
    wins = []
    for t in ts:
        if wins and t - wins[-1][0] < 15:
            wins[-1].append(t)
        else:
            wins.append([t])
    desc = []
    for w in wins:
        p = phase(w[0])
        nwin[p] += 1
        nreq[p] += len(w)
        worst[p] = max(worst[p], len(w))
        if len(w) > limit[p]:
            over += 1
        desc.append("%d@%s%s" % (len(w), p, "" if len(w) <= limit[p] else "(OVER)"))
    for a, b in zip(wins, wins[1:]):
        max_gap = max(max_gap, b[0] - a[0])
    print("ENTRY %s %s requests=%d windows=%d: %s" % (
        serial, serial_site.get(serial, "?"), len(ts), len(wins), " ".join(desc)))
for p in ("steady", "owner-killed", "partition"):
    if nwin[p]:
        print("PHASE %s windows=%d requests=%d per_window=%.2f max=%d limit=%d" % (
            p, nwin[p], nreq[p], nreq[p] / nwin[p], worst[p], limit[p]))
print("FETCH over_limit=%d max_gap=%.0f" % (over, max_gap))
PY
sed 's/^/# /' "$tmp/analysis.txt"
field() { sed -n "s/^$1 .*$2=\([0-9.]*\).*/\1/p" "$tmp/analysis.txt" | head -n 1; }
check "every handshake stapled a valid response ($(field STAPLES total) sampled, $(field STAPLES failed) without)" \
	test "$(field STAPLES failed)" = 0 -a "$(field STAPLES total)" -gt 100
check "no expired staple was ever served" test "$(field STAPLES expired)" = 0
check "CA requests per entry per refresh window within bounds (1 steady, 2 with an owner dead or partitioned)" \
	test "$(field FETCH over_limit)" = 0
# A window is at most 45 s after the previous response (7.5 % of 10 min), plus Δ (20 s) when
# its owner died, plus a fetch and the spread of the news.
check "no entry went unrefreshed for longer than a window + Δ (max gap $(field FETCH max_gap) s ≤ 80 s)" \
	test "$(field FETCH max_gap)" -le 80
note "the whole run took $((SECONDS - t_up)) s after up"
summary
