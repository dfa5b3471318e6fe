#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""How one node keeps its responses fresh: upstreams tried in order (failover), issuers fetched
from AIA caIssuers and kept on disk, Retry-After and upstream max-age obeyed, alerts as validity
runs out (and never an expired answer), ETag/304 renewals."""

import email.utils
import os
import shutil
import socket
import time

import stapledtest as st

TRYLATER = bytes.fromhex("3003 0a01 03")


def fetches(node, url, result):
    return node.metric("stapled_upstream_fetches_total", upstream=url, result=result)


def refused_url(held):
    """A URL where connections are refused: a socket keeps the port bound without listening, so
    no test running in parallel can take the port meanwhile."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    held.append(s)
    return "http://127.0.0.1:%d/" % s.getsockname()[1]


def requests_for(up, serial):
    return [q for q in up.requests() if serial in q.get("serials", ())]


def header(rec, name):
    for k, v in rec.get("headers", {}).items():
        if k.lower() == name.lower():
            return v
    return None


def stop_nodes(t, env):
    """Stops every node of env and checks each exits 0 (under ASan, also leak-free)."""
    for n in env.nodes:
        if n.proc and n.proc.alive():
            t.eq(n.stop(), 0, "%s exits 0 on SIGTERM" % n.name)


def extra(env, i):
    return os.path.join(env.pki.dir, "extra", "extra-%d-chain.crt" % i)


def case_failover(t):
    held = []
    try:
        failover(t, held)
    finally:
        for s in held:
            s.close()


def failover(t, held):
    env = t.env(upstream="python", extra_leaves=3)
    up = env.upstream.url
    # A second responder misbehaving per serial: HTTP 500 for one certificate, a bad signature
    # for another. Distinct URL prefixes give each role its own metrics label.
    faulty = env.add_upstream()
    s500, sbad = env.pki.serial(extra(env, 1)), env.pki.serial(extra(env, 2))
    faulty.set_mode("http500", serials=[s500])
    faulty.set_mode("badsig", serials=[sbad])
    down, u500, ubad = refused_url(held), faulty.url + "e500/", faulty.url + "badsig/"

    # Per-certificate upstreams.
    n1 = env.stapled(name="percert", certificates=[
        {"path": env.pki.path("good-chain.crt"), "upstreams": [down, up]},
        {"path": extra(env, 1), "upstreams": [u500, up]},
        {"path": extra(env, 2), "upstreams": [ubad, up]},
    ])
    # The global list, from the file and from --upstream flags.
    down2, down3 = refused_url(held), refused_url(held)
    n2 = env.stapled(name="global", certificates=[env.pki.path("good-chain.crt")],
                     config={"fetch": {"upstreams": [down2, up]}})
    n3 = env.stapled(name="flags", certificates=[extra(env, 3)],
                     extra_args=["--upstream", down3, "--upstream", up])
    for n in (n1, n2, n3):
        n.wait_ready()

    r = env.query(n1, "good")
    t.ok(r.ok_good, "per-cert [refused, up]: the second upstream's response is served", r)
    t.ok(fetches(n1, down, "network_error") >= 1, "refused upstream counted as network_error")
    t.eq(fetches(n1, down, "ok"), 0.0, "refused upstream: no ok")
    r = env.query(n1, extra(env, 1))
    t.ok(r.ok_good, "per-cert [http500, up]: the second upstream's response is served", r)
    t.ok(fetches(n1, u500, "http_error") >= 1, "HTTP 500 upstream counted as http_error")
    t.ok(faulty.fetches(s500) >= 1, "the HTTP 500 upstream was asked")
    r = env.query(n1, extra(env, 2))
    t.ok(r.ok_good, "per-cert [badsig, up]: the second upstream's (valid) response is served", r)
    t.ok(fetches(n1, ubad, "invalid") >= 1, "bad signature counted as invalid")
    t.eq(fetches(n1, u500, "ok") + fetches(n1, ubad, "ok"), 0.0, "faulty upstream: no ok")
    t.ok(fetches(n1, up, "ok") >= 3, "good upstream: ok for all three certificates (%s)"
         % fetches(n1, up, "ok"))
    for c in ("good", extra(env, 1), extra(env, 2)):
        t.ok(env.upstream.fetches(env.pki.serial(c)) >= 1,
             "the good upstream was asked for %s" % os.path.basename(c))

    r = env.query(n2, "good")
    t.ok(r.ok_good, "fetch.upstreams [refused, up]: served", r)
    t.ok(fetches(n2, down2, "network_error") >= 1 and fetches(n2, up, "ok") >= 1,
         "fetch.upstreams: network_error on the first, ok on the second")
    r = env.query(n3, extra(env, 3))
    t.ok(r.ok_good, "--upstream refused --upstream up: served", r)
    t.ok(fetches(n3, down3, "network_error") >= 1 and fetches(n3, up, "ok") >= 1,
         "--upstream flags: network_error on the first, ok on the second")
    stop_nodes(t, env)


def case_issuer_from_aia(t):
    env = t.env(upstream="python")
    certdir = os.path.join(env.dir, "leaf-only")
    os.makedirs(certdir)
    shutil.copy(env.pki.path("good.crt"), os.path.join(certdir, "good.crt"))
    node = env.stapled(name="aia", config={"cert_dirs": [certdir]})
    r = st.poll(lambda: (lambda r: r if r.ok_good else None)(env.query(node, "good")), 20,
                what="a verified response for a leaf without chain")
    t.ok(r.ok_good, "leaf only: the issuer came from caIssuers and the response verifies", r)
    t.ok(any(q["path"] == "/int.der" for q in env.upstream.requests()),
         "the node fetched /int.der from the AIA caIssuers URL")
    cache_dir = node.config["cache"]["dir"]

    def issuer_files():
        return [f for f in os.listdir(cache_dir) if f.startswith("issuer-") and
                f.endswith(".der")]
    files = st.poll(issuer_files, 10, what="issuer-*.der in the cache directory")
    with open(env.pki.path("int.der"), "rb") as f:
        int_der = f.read()
    with open(os.path.join(cache_dir, files[0]), "rb") as f:
        t.ok(len(files) == 1 and f.read() == int_der, "issuer persisted as %s" % files)
    st.poll(lambda: [f for f in os.listdir(cache_dir) if f.startswith("ocsp-")], 10,
            what="the response in the cache directory")

    # Restart with the OCSP side down (the upstream still serves /int.der, so a refetch would
    # show in its log): everything comes from the disk.
    node.stop()
    env.upstream.set_mode("close")
    mark = time.time()
    node.start()
    r2 = env.query(node, "good")
    t.ok(r2.ok_good and r2.der == r.der, "after a restart the response is served from disk", r2)
    t.ok(node.metric("stapled_store_loaded_total", result="ok") >= 1, "loaded from disk")
    again = [q for q in env.upstream.requests() if q["time"] >= mark and q["path"] == "/int.der"]
    t.eq(again, [], "the issuer was not fetched again after the restart")

    # And with the upstream gone entirely.
    node.stop()
    env.upstream.stop()
    node.start()
    r3 = env.query(node, "good")
    t.ok(r3.ok_good and r3.der == r.der, "upstream stopped: still served from disk", r3)
    stop_nodes(t, env)


def case_retry_after_in_the_past(t):
    # An upstream whose clock is behind ours sends a Retry-After date already past (parsed as
    # 0 s): the retry must still wait the backoff base (1 s in these tests), never loop.
    env = t.env(upstream="python")
    good = env.pki.serial("good")
    env.upstream.set_mode("http503", serials=[good],
                          retry_after=email.utils.formatdate(time.time() - 30, usegmt=True))
    node = env.stapled(certificates=[env.pki.path("good-chain.crt")])
    st.poll(lambda: len(requests_for(env.upstream, good)) >= 1, 10, what="a first request")
    time.sleep(4)
    n = len(requests_for(env.upstream, good))
    t.ok(2 <= n <= 8, "Retry-After in the past: %d upstream requests in ~4 s (not a loop)" % n)
    t.ok(node.proc.alive(), "node alive")
    stop_nodes(t, env)


def case_retry_after(t):
    env = t.env(upstream="python", extra_leaves=2)
    good, ext, dated = (env.pki.serial("good"), env.pki.serial(extra(env, 1)),
                        env.pki.serial(extra(env, 2)))
    # The first answer for each: HTTP 503 or OCSP tryLater with Retry-After: 4, or HTTP 503 with
    # Retry-After as an HTTP-date 5 s ahead (the backoff alone would retry within
    # backoff_base = 1 s).
    retry_at = int(time.time()) + 5
    env.upstream.set_mode("http503", serials=[good], count=1, retry_after=4)
    env.upstream.set_mode("trylater", serials=[ext], count=1, retry_after=4)
    env.upstream.set_mode("http503", serials=[dated], count=1,
                          retry_after=email.utils.formatdate(retry_at, usegmt=True))
    node = env.stapled(certificates=[env.pki.path("good-chain.crt"), extra(env, 1),
                                     extra(env, 2)])

    def two_requests(serial, what):
        reqs = st.poll(lambda: (lambda l: l if len(l) >= 2 else None)(
            requests_for(env.upstream, serial)), 20, what="a second request (%s)" % what)
        t.ok(reqs[0]["mode"] in ("http503", "trylater") and reqs[1]["mode"] == "openssl",
             "%s: the first answer was the fault, the second a response" % what, reqs[:2])
        return reqs

    for serial, what in ((good, "HTTP 503"), (ext, "tryLater")):
        reqs = two_requests(serial, what)
        gap = reqs[1]["time"] - reqs[0]["time"]
        t.ok(gap >= 4 - 0.5, "%s + Retry-After: 4: next request %.2fs later (>= 3.5)"
             % (what, gap))
        t.ok(gap <= 4 + 2.5, "%s + Retry-After: 4: and not much later (%.2fs)" % (what, gap))
    reqs = two_requests(dated, "HTTP 503, dated")
    late = reqs[1]["time"] - retry_at
    t.ok(-0.5 <= late <= 2.5, "Retry-After as an HTTP-date: next request %+.2fs from that date"
         % late)
    for c in ("good", extra(env, 1), extra(env, 2)):
        r = st.poll(lambda: (lambda r: r if r.ok_good else None)(env.query(node, c)), 15,
                    what="the response after the retry")
        t.ok(r.ok_good, "then the response is served (%s)" % os.path.basename(c))
    stop_nodes(t, env)


def case_upstream_max_age(t):
    env = t.env(upstream="python", validity_min=60, extra_leaves=1)
    good, ctl = env.pki.serial("good"), env.pki.serial(extra(env, 1))
    env.upstream.set_mode("openssl", serials=[good], cache_control="max-age=3")
    node = env.stapled(certificates=[env.pki.path("good-chain.crt"), extra(env, 1)],
                       config={"refresh": {"min_interval": "1s"}})
    firsts = st.poll(lambda: (lambda a, b: (a[0]["time"], b[0]["time"]) if a and b else None)(
        requests_for(env.upstream, good), requests_for(env.upstream, ctl)), 20,
        what="the first fetch of both certificates")
    window = 9.0
    time.sleep(max(0.0, max(firsts) + window - time.time()))  # a measurement window

    def within(serial, t0):
        return [q for q in requests_for(env.upstream, serial) if t0 < q["time"] <= t0 + window]
    n_good, n_ctl = len(within(good, firsts[0])), len(within(ctl, firsts[1]))
    t.ok(n_good >= 2, "max-age=3 (validity 1h): %d refreshes within %.1fs of the first fetch"
         % (n_good, window))
    t.eq(n_ctl, 0, "control without max-age: no refresh within %.1fs" % window)
    e_good, e_ctl = node.entry(good), node.entry(ctl)
    now = time.time()
    t.ok(e_good and e_good["refresh_at"] <= now + 4.5, "max-age: refresh_at within 4s", e_good)
    t.ok(e_ctl and e_ctl["refresh_at"] >= now + 1500,
         "control: refresh_at at 50-75% of the hour", e_ctl)
    t.ok(env.query(node, "good").ok_good, "max-age entry served")
    stop_nodes(t, env)


def case_alerts(t):
    # 40 s of validity, refreshed early (10-20 %), then the upstream goes away: with thresholds
    # 60/40/20 % the levels 1, 2, 3 and 4 (expired) each last 8 s, more than the 5 s tick.
    env = t.env(upstream="python", upstream_args=["--mode", "crafted", "--validity-sec", "40"])
    hook_out = os.path.join(env.dir, "alerts.txt")
    node = env.stapled(certificates=[env.pki.path("good-chain.crt")], config={
        "refresh": {"window": [0.1, 0.2], "min_interval": "1s",
                    "alert_thresholds": [0.6, 0.4, 0.2],
                    "alert_command": 'echo "$STAPLED_ALERT_LEVEL $STAPLED_ENTRY" >> ' + hook_out},
    })
    r0 = st.poll(lambda: (lambda r: r if r.ok_good else None)(env.query(node, "good")), 20,
                 what="the first response")
    env.upstream.set_mode("close")
    t.ok(r0.ok_good, "short-lived response served", r0)
    e = node.entry(env.pki.serial("good"))
    t.ok(e and 35 <= e["next_update"] - e["this_update"] <= 45, "validity is about 40s", e)
    next_update = e["next_update"]

    def levels():
        try:
            with open(hook_out) as f:
                return [int(line.split()[0]) for line in f if line.strip()]
        except FileNotFoundError:
            return []
    st.poll(lambda: 1 in levels() or 2 in levels(), next_update - time.time() + 10,
            what="a first alert")
    r = env.query(node, "good")
    t.ok(r.ok_good and r.der == r0.der, "while alerting, the held response is still served", r)
    st.poll(lambda: 4 in levels(), next_update - time.time() + 12, what="the expiry alert")
    got = levels()
    t.ok(all(a < b for a, b in zip(got, got[1:])), "alert command: levels increase %r" % got)
    t.eq(sorted(set(got)), [1, 2, 3, 4], "alert command ran for each level")
    with open(hook_out) as f:
        entries = {line.split(None, 1)[1].strip() for line in f if line.strip()}
    t.ok(len(entries) == 1 and "" not in entries, "STAPLED_ENTRY names the entry %r" % entries)
    for lvl in (1, 2, 3, 4):
        t.ok(node.metric("stapled_alerts_total", level=lvl) >= 1,
             "stapled_alerts_total{level=%d} counted" % lvl)
    t.ok(time.time() >= next_update, "nextUpdate has passed")
    r = env.query(node, "good", timeout=15)
    t.eq(r.error, "trylater", "expired: tryLater")
    t.eq(st.ocsp_response_status(r.der), 3, "the answer's OCSPResponseStatus is tryLater")
    t.eq(r.der, TRYLATER, "never the expired response")
    stop_nodes(t, env)


def case_etag(t):
    env = t.env(upstream="python", upstream_args=["--etag", '"v1"'])
    serial = env.pki.serial("good")
    node = env.stapled(certificates=[env.pki.path("good-chain.crt")])
    r0 = st.poll(lambda: (lambda r: r if r.ok_good else None)(env.query(node, "good")), 20,
                 what="the first response")
    url = env.upstream.url
    first = requests_for(env.upstream, serial)
    t.ok(len(first) == 1 and header(first[0], "If-None-Match") is None and
         first[0]["status"] == 200, "first fetch: unconditional, 200 with ETag", first)

    time.sleep(1.1)  # a refetch in the same second could not be told apart
    node.refresh()
    reqs = st.poll(lambda: (lambda l: l if len(l) >= 2 else None)(
        requests_for(env.upstream, serial)), 10, what="the forced refresh")
    t.eq(header(reqs[1], "If-None-Match"), '"v1"', "forced refresh sends If-None-Match")
    t.eq(reqs[1]["status"], 304, "upstream answered 304")
    st.poll(lambda: fetches(node, url, "unchanged") >= 1, 10, what="result=unchanged")
    t.eq(fetches(node, url, "ok"), 1.0, "the 304 is not counted as a new response")
    r = env.query(node, "good")
    t.ok(r.ok_good and r.der == r0.der, "the held response keeps being served", r)

    # A new ETag upstream: the next conditional refresh gets a 200 and a new response.
    env.upstream.set_mode("openssl", etag='"v2"')
    node.refresh()
    st.poll(lambda: fetches(node, url, "ok") >= 2, 10, what="result=ok after the ETag changed")
    reqs = requests_for(env.upstream, serial)
    t.ok(header(reqs[-1], "If-None-Match") == '"v1"' and reqs[-1]["status"] == 200,
         "changed ETag: 200", reqs[-1])
    r = st.poll(lambda: (lambda r: r if r.ok_good and r.der != r0.der else None)(
        env.query(node, "good")), 10, what="the new response served")
    t.ok(r.ok_good, "the new response is served")
    stop_nodes(t, env)


if __name__ == "__main__":
    t = st.Test(__file__)
    t.run(case_failover, case_issuer_from_aia, case_retry_after, case_retry_after_in_the_past, case_upstream_max_age,
          case_alerts, case_etag)
