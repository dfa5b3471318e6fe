#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""A leaf node with parent stapled nodes: fetches go to the parents in order, never to the CA
(unless fallback_to_origin), a dead parent is failed over and set aside (circuit breaker), and an
https:// parent is used over HTTP/2."""

import signal

import stapledtest as st

CERTS = ("good", "revoked")


def origin_fetches(node, env):
    return node.metric("stapled_upstream_fetches_total", upstream=env.upstream_url)


def start_tree(t, leaf_config=None):
    env = t.env(upstream="python")
    env.upstream_url = "http://127.0.0.1:%d/" % env.upstream.port
    certs = [env.pki.path(c + "-chain.crt") for c in CERTS]
    p1 = env.stapled(certificates=certs, name="parent1")
    p2 = env.stapled(certificates=certs, name="parent2")
    p1.wait_ready()
    p2.wait_ready()
    cfg = {"parents": [p1.url, p2.url]}
    cfg.update(leaf_config or {})
    leaf = env.stapled(certificates=certs, name="leaf", config=cfg)
    leaf.wait_ready()
    return env, p1, p2, leaf


def refresh_and_wait(leaf, what):
    """Forces a refresh and waits until every forced fetch has ended."""
    before = leaf.metric("stapled_upstream_fetches_total")
    leaf.refresh()
    st.poll(lambda: leaf.metric("stapled_upstream_fetches_total") >= before + len(CERTS)
            and leaf.metric("stapled_upstream_fetches_in_flight") == 0, 20, what=what)


def case_failover(t):
    env, p1, p2, leaf = start_tree(t)
    for c in CERTS:
        r = env.query(leaf, c)
        t.ok(r.verify_ok and r.status == ("good" if c == "good" else "revoked"),
             "leaf serves %s, verified" % c, r)
    t.eq(leaf.metric("stapled_upstream_fetches_total", upstream=p1.url, result="ok"),
         float(len(CERTS)), "the leaf asked the first parent")
    t.eq(origin_fetches(leaf, env), 0.0, "the leaf never asked the CA")

    p1.proc.kill(signal.SIGKILL)
    for i in range(3):
        refresh_and_wait(leaf, "refresh %d with the first parent dead" % (i + 1))
    t.ok(leaf.metric("stapled_upstream_fetches_total", upstream=p1.url,
                     result="network_error") >= 3, "first parent: network errors counted")
    t.ok(leaf.metric("stapled_upstream_fetches_total", upstream=p2.url) >= len(CERTS),
         "the second parent answered")
    t.eq(leaf.metric("stapled_upstream_set_aside", upstream=p1.url), 1.0,
         "the dead parent is set aside (circuit breaker)")
    for c in CERTS:
        r = env.query(leaf, c)
        t.ok(r.verify_ok, "still served (%s)" % c, r)

    # Both parents down: no fallback to the CA by default; the held responses stay.
    p2.proc.kill(signal.SIGKILL)
    refresh_and_wait(leaf, "refresh with both parents dead")
    t.eq(origin_fetches(leaf, env), 0.0, "both parents down: still no fetch from the CA")
    r = env.query(leaf, "good")
    t.ok(r.ok_good, "the held response is still served", r)


def case_fallback_to_origin(t):
    env, p1, p2, leaf = start_tree(t, {"fallback_to_origin": True})
    p1.proc.kill(signal.SIGKILL)
    p2.proc.kill(signal.SIGKILL)
    refresh_and_wait(leaf, "refresh with both parents dead")
    # The CA's answer may be the very response the parents relayed ("unchanged").
    answered = sum(leaf.metric("stapled_upstream_fetches_total", upstream=env.upstream_url,
                               result=res) for res in ("ok", "unchanged"))
    t.ok(answered >= len(CERTS), "fallback_to_origin: the CA answered when no parent did (%d)"
         % answered)


def case_https_parent_http2(t):
    env = t.env(upstream="python")
    certs = [env.pki.path(c + "-chain.crt") for c in CERTS]
    tls_port = st.free_port()
    parent = env.stapled(certificates=certs, name="tlsparent",
                         config={"tls": {"listen": ["127.0.0.1:%d" % tls_port],
                                         "cert": env.pki.path("good-chain.crt"),
                                         "key": env.pki.path("good.key")}})
    parent.wait_ready()
    url = "https://localhost:%d/" % tls_port
    leaf = env.stapled(certificates=certs, name="leaf",
                       config={"parents": [url], "fetch": {"ca_file": env.pki.path("root.crt")}})
    leaf.wait_ready()
    t.eq(leaf.metric("stapled_upstream_fetches_total", upstream=url, result="ok"),
         float(len(CERTS)), "the leaf fetched from the https:// parent")
    t.ok(parent.metric("stapled_http_requests_total", protocol="h2") >= len(CERTS),
         "over HTTP/2 (ALPN)")
    r = env.query(leaf, "revoked")
    t.eq(r.status, "revoked", "leaf serves the verified revoked response")

    # A bare leaf learns over HTTP/2: the Stapled-* headers and the issuer travel as h2 fields.
    bare = env.stapled(name="bare", config={"parents": [url],
                                            "fetch": {"ca_file": env.pki.path("root.crt")}})
    bare.wait_ready()
    h2_before = parent.metric("stapled_http_requests_total", protocol="h2")
    r = env.query(bare, "good")
    t.ok(r.ok_good, "a leaf without certificates learns 'good' from the https:// parent", r)
    e = bare.entry(env.pki.serial("good"))
    t.ok(e and e["learned"] and e["issuer_known"],
         "... with the issuer handed over in Stapled-Issuer (signature checked)", e)
    t.ok(parent.metric("stapled_http_requests_total", protocol="h2") > h2_before,
         "... over HTTP/2")


if __name__ == "__main__":
    t = st.Test(__file__)
    t.run(case_failover, case_fallback_to_origin, case_https_parent_http2)
