#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""stapled is the gatekeeper: upstream answers with a bad signature, an expired or not yet valid
response, an older response (rollback), or any other fault never replace the good response."""

import time

import stapledtest as st

NON_OK = ("unchanged", "invalid", "http_error", "network_error")


def fetch_results(node):
    out = {}
    for (name, labels), v in node.metrics().items():
        if name == "stapled_upstream_fetches_total":
            res = dict(labels).get("result")
            out[res] = out.get(res, 0) + v
    return out


def force_fetch(env, node, serial, timeout=20):
    """Forces refreshes until the upstream saw one more request for serial and stapled counted
    the fetch's outcome. Returns the metric deltas."""
    before_up = env.upstream.fetches(serial)
    before = fetch_results(node)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        node.refresh()
        try:
            st.poll(lambda: env.upstream.fetches(serial) > before_up, 2,
                    what="an upstream fetch")
            break
        except TimeoutError:
            continue
    else:
        raise TimeoutError("no upstream fetch after forced refreshes")

    def counted():
        after = fetch_results(node)
        delta = {k: after.get(k, 0) - before.get(k, 0) for k in after}
        return delta if sum(delta.values()) >= 1 else None
    return st.poll(counted, timeout, what="the fetch outcome in metrics")


def case_bad_answers_never_replace(t):
    env = t.env(upstream="python", validity_min=60)
    node = env.stapled(certificates=[env.pki.path("good-chain.crt")])
    node.wait_ready()
    serial = env.pki.serial("good")
    r0 = env.query(node, "good")
    t.ok(r0.ok_good, "initial good response", r0)

    # A newer good response first, so that replay_oldest (the very first one) is a rollback.
    time.sleep(1.1)
    delta = force_fetch(env, node, serial)
    t.ok(delta.get("ok", 0) >= 1, "a forced refresh fetched a newer response (%r)" % delta)
    current = st.poll(lambda: (lambda r: r if r.ok_good and r.der != r0.der else None)(
        env.query(node, "good")), 10, what="the newer response served")
    t.ok(current.ok_good, "newer good response served")

    for mode, want in (("badsig", "invalid"), ("expired", "invalid"),
                       ("replay_oldest", "invalid"), ("notyetvalid", "invalid"),
                       ("garbage", "invalid"), ("truncated", "invalid"),
                       ("empty", None), ("trylater", None), ("unauthorized", None),
                       ("malformed", None), ("wrong_content_type", None),
                       ("http500", "http_error"), ("http404", "http_error"),
                       ("close", None), ("short_body", None)):
        env.upstream.set_mode(mode)
        delta = force_fetch(env, node, serial)
        if want:
            t.ok(delta.get(want, 0) >= 1 and delta.get("ok", 0) == 0,
                 "%s: counted as %s (%r)" % (mode, want, delta))
        else:
            t.ok(delta.get("ok", 0) == 0 and sum(delta.get(k, 0) for k in NON_OK) >= 1,
                 "%s: counted as a failed fetch (%r)" % (mode, delta))
        r = env.query(node, "good")
        t.ok(r.ok_good and r.der == current.der, "%s: the good response stays" % mode, r)
    t.ok(node.ready(), "still ready")
    e = node.entry(serial)
    t.ok(e and e["status"] == "good" and e["failures"] >= 1, "entry good, failures counted", e)

    # The upstream heals: the next refresh replaces the response.
    env.upstream.set_mode("openssl")
    time.sleep(1.1)
    force_fetch(env, node, serial)
    newest = st.poll(lambda: (lambda r: r if r.ok_good and r.der != current.der else None)(
        env.query(node, "good")), 20, what="a newer response after recovery")
    t.ok(newest.ok_good, "after recovery a newer good response is served")
    e = node.entry(serial)
    t.ok(e and e["failures"] == 0, "failures reset after a good fetch", e)


def case_revocation_propagates(t):
    env = t.env(upstream="python", validity_min=60)
    node = env.stapled(certificates=[env.pki.path("good-chain.crt")])
    node.wait_ready()
    t.ok(env.query(node, "good").ok_good, "good before revocation")
    env.pki.revoke("good")
    time.sleep(1.1)
    force_fetch(env, node, env.pki.serial("good"))
    r = st.poll(lambda: (lambda r: r if r.status == "revoked" else None)(
        env.query(node, "good")), 20, what="revoked status served")
    t.ok(r.verify_ok and r.status == "revoked", "a revocation replaces good (newer response)", r)


def case_first_fetch_invalid(t):
    # No good response ever: requests get tryLater, never the bad bytes; readyz turns 200 once
    # the entry has definitively failed or stays 503 — but never serves garbage.
    env = t.env(upstream="python", upstream_args=["--mode", "badsig"])
    node = env.stapled(certificates=[env.pki.path("good-chain.crt")])
    st.poll(lambda: env.upstream.fetches() >= 1, 15, what="the first fetch")
    r = env.query(node, "good")
    t.eq(r.error, "trylater", "no valid response yet: tryLater")
    t.eq(node.metric("stapled_responses_servable"), 0.0, "nothing servable")
    env.upstream.set_mode("openssl")
    r = st.poll(lambda: (lambda r: r if r.ok_good else None)(env.query(node, "good")), 30,
                what="good once the upstream answers correctly (backoff <= 5s)")
    t.ok(r.ok_good, "after backoff the valid response is fetched and served")
    node.wait_ready(10)
    t.ok(True, "ready")


def case_inflight(t):
    # Requests for a known certificate arriving before its first response wait for the fetch in
    # flight (single-flight: one upstream request however many clients ask), or get tryLater
    # when the upstream does not answer in time.
    env = t.env(upstream="python")
    good, revoked = env.pki.serial("good"), env.pki.serial("revoked")
    env.upstream.set_mode("delay", seconds=1.5, serials=[good])
    env.upstream.set_mode("hang", serials=[revoked])
    # A long fetch timeout keeps the hung fetch in flight for the whole case.
    node = env.stapled(certificates=[env.pki.path("good-chain.crt"),
                                     env.pki.path("revoked-chain.crt")],
                       config={"fetch": {"timeout": "60s"}})
    results = [None] * 6

    def ask(i):
        results[i] = env.query(node, "good")

    import threading
    t0 = time.monotonic()
    threads = [threading.Thread(target=ask, args=(i,)) for i in range(len(results))]
    for th in threads:
        th.start()
    for th in threads:
        th.join(30)
    took = time.monotonic() - t0
    t.ok(all(r is not None and r.ok_good for r in results),
         "6 concurrent first requests all got the good response once it arrived",
         [r for r in results if r is None or not r.ok_good][:1])
    t.ok(took < 6, "they waited for the fetch (%.2fs)" % took)
    t.eq(env.upstream.fetches(good), 1, "one upstream fetch for all of them (single-flight)")

    t0 = time.monotonic()
    r = env.query(node, "revoked", timeout=15)
    took = time.monotonic() - t0
    t.eq(r.error, "trylater", "upstream hangs: tryLater")
    t.ok(1 <= took <= 10, "tryLater after a bounded wait (%.2fs)" % took)
    t.ok(node.metric("stapled_requests_total", result="unavailable") >= 1,
         "counted as unavailable")
    t.ok(not node.ready(), "not ready while an entry has neither a response nor a final failure")


if __name__ == "__main__":
    t = st.Test(__file__)
    t.run(case_bad_answers_never_replace, case_revocation_propagates, case_first_fetch_invalid,
          case_inflight)
