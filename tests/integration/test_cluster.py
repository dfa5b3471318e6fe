#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Five regional nodes gossiping on loopback elect one refresher per entry (docs/cluster.md).

A counting upstream (tests/tools/ocsp_upstream.py over the test PKI) answers with one-minute
validity; every node holds the same 200 certificates. Checked, with the upstream's request log
as the oracle:
  - over three refresh windows the upstream sees exactly one request per certificate per window
    (consecutive requests for a certificate are never closer than half the validity);
  - every node serves the newest response within seconds of the fetch (announcement + pull);
  - the owner killed with SIGKILL mid-run costs at most one extra fetch per entry it owned;
  - a node restarted after SIGKILL serves from its disk cache at once and rejoins.
"""

import collections
import os
import signal
import time

import stapledtest as st

N_NODES = 5
N_CERTS = 200
VALIDITY_S = 60
FALLBACK_S = 10
STABLE_S = 2

t = st.Test(__file__)
env = t.env(upstream="python", validity_min=1, extra_leaves=N_CERTS)
extra_dir = env.pki.path("extra")

issuers = os.path.join(env.dir, "issuers")
os.makedirs(issuers)
with open(env.pki.path("int.crt"), "rb") as f, open(os.path.join(issuers, "int.crt"), "wb") as o:
    o.write(f.read())
gossip_ports = [st.free_port() for _ in range(N_NODES)]
nodes = []
for i in range(N_NODES):
    cluster = {
        "node_name": "n%d" % i,
        "bind": "127.0.0.1:%d" % gossip_ports[i],
        "profile": "local",
        "stable_after": "%ds" % STABLE_S,
        "fallback_delay": "%ds" % FALLBACK_S,
    }
    if i > 0:
        cluster["join"] = ["127.0.0.1:%d" % gossip_ports[0]]
    nodes.append(env.stapled(config={"cert_dirs": [extra_dir], "cluster": cluster,
                                     "issuer_dirs": [issuers],
                                     "learn": {"default_origin": env.upstream.url},
                                     "log_level": "info"}, name="n%d" % i))


def alive_count(node):
    return sum(1 for m in node.cluster_members() if m["state"] == "alive")


def wait_full_views(nodes_up, what):
    start = time.monotonic()
    st.poll(lambda: all(alive_count(n) == len(nodes_up) for n in nodes_up), 60, what=what)
    return time.monotonic() - start


took = wait_full_views(nodes, "5 alive members in every view")
t.ok(True, "cluster formed: every node sees %d alive members (%.1f s)" % (N_NODES, took))

serials = None


def all_good(node):
    es = [e for e in node.entries() if not e.get("learned")]
    return len(es) == N_CERTS and all(e.get("status") == "good" for e in es)


start = time.monotonic()
st.poll(lambda: all(all_good(n) for n in nodes), 120, interval=0.5,
        what="every node serving all %d certificates" % N_CERTS)
t.ok(True, "all %d nodes serve all %d certificates (%.1f s after the cluster formed)"
     % (N_NODES, N_CERTS, time.monotonic() - start))

owners = collections.Counter(e.get("owner") for e in nodes[0].entries())
t.ok(len(owners) == N_NODES and min(owners.values()) >= N_CERTS // N_NODES // 3,
     "ownership spread over the nodes: %s" % dict(sorted(owners.items())))


GOOD = env.pki.serial("good").lstrip("0")


def requests_by_serial(since=0.0, until=1e18):
    out = collections.defaultdict(list)
    for r in env.upstream.requests():
        if since <= r["time"] < until:
            for s in r.get("serials", []):
                if s.lstrip("0") == GOOD:
                    continue
                out[s.lstrip("0") or "0"].append(r["time"])
    return out


# A certificate no node was given: the node asked forwards its miss once to the entry's owner,
# which fetches it; a second node asked later gets it from the owner too. One upstream request.
r3 = env.query(nodes[3], "good")
r4 = env.query(nodes[4], "good")
good_reqs = sum(1 for r in env.upstream.requests()
                if any(s.lstrip("0") == GOOD for s in r.get("serials", [])))
fwd = sum(n.metric("stapled_cluster_misses_forwarded_total") for n in nodes)
t.ok(r3.ok_good and r4.ok_good and good_reqs == 1 and fwd >= 1,
     "a miss goes to the owner once: two nodes asked, %d upstream request(s), %d miss(es) "
     "forwarded" % (good_reqs, fwd))

# Three windows: wait until every certificate has been fetched three times.
deadline_windows = 3
st.poll(lambda: len(requests_by_serial()) == N_CERTS and
        min(len(v) for v in requests_by_serial().values()) >= deadline_windows,
        5 * VALIDITY_S, interval=1, what="three refresh windows")
reqs = requests_by_serial()
min_gap = min((b - a) for v in reqs.values() for a, b in zip(sorted(v), sorted(v)[1:]))
counts = collections.Counter(len(v) for v in reqs.values())
t.ok(min_gap >= VALIDITY_S / 2 - 2,
     "one upstream request per certificate per window: closest two requests for one "
     "certificate %.1f s apart (validity %d s, fallback %d s); requests per certificate: %s"
     % (min_gap, VALIDITY_S, FALLBACK_S, dict(sorted(counts.items()))))
t.ok(max(len(v) for v in reqs.values()) <= deadline_windows + 1,
     "no certificate asked more than once per window (max %d requests over %d windows)"
     % (max(len(v) for v in reqs.values()), deadline_windows))


def this_updates(node):
    return {e["serial"].lower().lstrip("0"): e.get("this_update", 0) for e in node.entries()}


def spread_ok():
    views = [this_updates(n) for n in nodes if n.proc.alive()]
    newest = {}
    for v in views:
        for k, tu in v.items():
            newest[k] = max(newest.get(k, 0), tu)
    common = set.intersection(*(set(v) for v in views))  # learned entries live on some nodes
    return all(v[k] == newest[k] for v in views for k in common)


# Every node serves the newest response within seconds: sample the views repeatedly; whenever
# they disagree, the disagreement must be gone within a few seconds.
lag_max = 0.0
sample_end = time.monotonic() + 40
while time.monotonic() < sample_end:
    if not spread_ok():
        t0 = time.monotonic()
        st.poll(spread_ok, 15, interval=0.2, what="nodes agreeing on the newest responses")
        lag_max = max(lag_max, time.monotonic() - t0)
    time.sleep(0.5)
t.ok(lag_max <= 10, "every node serves each new response within %.1f s of the first" % lag_max)

# Owner killed mid-run: entries it owned cost at most one extra fetch.
victim = nodes[2]
owned = {e["serial"].upper().lstrip("0") for e in nodes[0].entries() if e.get("owner") == "n2"}
kill_at = time.time()
victim.proc.kill(signal.SIGKILL)
victim.proc.wait(5)
others = [n for n in nodes if n is not victim]
st.poll(lambda: all(alive_count(n) == N_NODES - 1 for n in others), 60,
        what="the killed node marked failed")
t.ok(True, "SIGKILLed node n2 marked failed by all others in %.1f s" % (time.time() - kill_at))
time.sleep(VALIDITY_S + FALLBACK_S)
# A duplicate is a second request within the same window: closer than half the validity to the
# one before (refreshes are 30-45 s apart).
around = requests_by_serial(since=kill_at - VALIDITY_S)
dups = collections.Counter()
refreshed = 0
for sn in owned:
    times = sorted(around.get(sn, []))
    dups[sn] = sum(1 for a, b in zip(times, times[1:]) if b - a < VALIDITY_S / 2 - 2)
    refreshed += any(x > kill_at for x in times)
served = all(all_good(n) for n in others)
t.ok(owned and refreshed == len(owned) and max(dups.values()) <= 1 and served,
     "owner n2 killed: all %d of its entries refreshed by the others, %d extra fetch(es) in all "
     "(at most %d per entry), every node still serving them"
     % (len(owned), sum(dups.values()), max(dups.values()) if dups else 0))

# Restarted after SIGKILL: serves from disk at once, rejoins.
victim.start()
r = env.query(victim, os.path.join(extra_dir, "extra-1.crt"))
t.ok(r.ok_good, "restarted node answers from its disk cache at once: %s" % r.status)
took = wait_full_views(nodes, "the restarted node back in every view")
t.ok(True, "restarted node rejoined: all %d views full again in %.1f s" % (N_NODES, took))
t.done()
