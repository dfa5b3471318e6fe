#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""A real `openssl ocsp` upstream goes away: stapled keeps serving from memory, keeps failed
refreshes from replacing good responses, persists its cache, and after a restart with the
upstream still down serves from disk at once. SIGTERM exits 0."""

import glob
import os
import signal
import time

import stapledtest as st


def case_upstream_killed(t):
    env = t.env(upstream="openssl")
    node = env.stapled(certificates=[env.pki.path("good-chain.crt"),
                                     env.pki.path("revoked-chain.crt")])
    node.wait_ready()
    before = env.query(node, "good")
    t.ok(before.ok_good, "good served while the upstream is up", before)
    rev = env.query(node, "revoked")
    t.eq(rev.status, "revoked", "revoked served while the upstream is up")

    env.upstream.stop()
    r = env.query(node, "good")
    t.ok(r.ok_good and r.der == before.der, "upstream killed: same good response still served", r)

    # Forced refreshes fail (connection refused) and leave the good response in place.
    errors0 = node.metric("stapled_upstream_fetches_total", result="network_error")
    node.refresh()
    st.poll(lambda: node.metric("stapled_upstream_fetches_total", result="network_error")
            > errors0, 20, what="a network_error fetch")
    t.ok(True, "refresh against a dead upstream counted as network_error")
    r = env.query(node, "good")
    t.ok(r.ok_good and r.der == before.der, "after failed refresh: same good response", r)
    t.eq(env.query(node, "revoked").status, "revoked", "after failed refresh: revoked kept")
    t.ok(node.ready(), "still ready: every entry has a valid response")
    e = node.entry(env.pki.serial("good"))
    t.ok(e and e["failures"] >= 1, "/admin/entries counts the failure", e)

    # SIGTERM: exit 0, cache directory holds one file per entry.
    rc = node.stop(signal.SIGTERM)
    t.eq(rc, 0, "SIGTERM: exit status 0")
    cache = node.config["cache"]["dir"]
    files = glob.glob(os.path.join(cache, "**", "*.der"), recursive=True)
    t.eq(len(files), 2, "cache dir has one .der per entry (%s)" % files)
    statuses = []
    for f in files:
        with open(f, "rb") as fh:
            der = fh.read()
        for c in ("good", "revoked"):
            r = env.check_der(der, c)
            if r.verify_ok and r.status in ("good", "revoked"):
                statuses.append(r.status)
    statuses.sort()
    t.ok("good" in statuses and "revoked" in statuses,
         "cache files are valid responses for both certificates (%s)" % statuses)

    # Restart with the upstream still down: serving from disk at once.
    t0 = time.monotonic()
    node.start()
    node.wait_ready(timeout=5)
    r = env.query(node, "good")
    took = time.monotonic() - t0
    t.ok(r.ok_good and r.der == before.der, "restarted with upstream down: good from disk", r)
    t.ok(took < 5, "ready and serving %.2fs after start" % took)
    t.eq(env.query(node, "revoked").status, "revoked", "restarted: revoked from disk")
    t.eq(node.metric("stapled_responses_servable"), 2.0, "both responses servable after restart")

    # A corrupt cache file is skipped, never fatal.
    node.stop()
    with open(files[0], "r+b") as f:
        f.seek(len(f.read()) // 2)
        f.write(b"\xff\xff\xff\xff")
    with open(os.path.join(cache, "junk.der"), "wb") as f:
        f.write(b"not a response")
    node.start()
    t.ok(node.proc.alive(), "starts with a corrupt file in the cache dir")
    r = env.query(node, "good")
    r2 = env.query(node, "revoked")
    served = [x for x in (r.status, r2.status) if x]
    t.ok(len(served) >= 1 and all(x in ("good", "revoked") for x in served) and
         (r.ok_good or r2.status == "revoked"),
         "the intact cache file is still served (%s)" % served)
    rc = node.stop(signal.SIGTERM)
    t.eq(rc, 0, "second SIGTERM: exit status 0")


def case_upstream_recovers(t):
    env = t.env(upstream="python", validity_min=60)
    node = env.stapled(certificates=[env.pki.path("good-chain.crt")])
    node.wait_ready()
    serial = env.pki.serial("good")
    first = env.query(node, "good")
    t.ok(first.ok_good, "good served", first)
    env.upstream.set_mode("hang")
    n0 = env.upstream.fetches(serial)
    node.refresh()
    st.poll(lambda: env.upstream.fetches(serial) > n0, 10, what="a fetch to the hung upstream")
    r = env.query(node, "good", timeout=5)
    t.ok(r.ok_good and r.der == first.der, "hung upstream: requests are still answered at once", r)
    env.upstream.set_mode("openssl")
    time.sleep(1.1)  # a new thisUpdate needs the next second
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        node.refresh()
        r = env.query(node, "good")
        if r.ok_good and r.der != first.der:
            break
        time.sleep(0.3)
    t.ok(r.ok_good and r.der != first.der, "upstream back: a newer response is served", r)
    t.ok(node.metric("stapled_upstream_fetches_total", result="ok") >= 2,
         "the recovery fetch is counted ok")


if __name__ == "__main__":
    t = st.Test(__file__)
    t.run(case_upstream_killed, case_upstream_recovers)
