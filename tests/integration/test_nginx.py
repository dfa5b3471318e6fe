#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""nginx 1.22 (Debian's) stapling through stapled as its responder (ssl_stapling_responder).

nginx asks with GET over HTTP/1.0, a Host header without the port and the url-encoded base64
request appended to the URL path. It starts the fetch on the first handshake and staples from a
later one, verifies the response (ssl_stapling_verify with ca-chain.crt) and staples only a good
one; it keeps a staple for at least 5 minutes, so a test sees a new answer only after a reload
(SIGHUP: a new worker with an empty staple) or a restart. TESTING.md §3.2.

Cases: a good staple within a few handshakes, verified by curl and gnutls-cli, and a revoked one
never stapled; a revocation reaching stapled, after which the reloaded nginx staples nothing (not
the stale good response); a bad upstream (bad signature, expired, garbage, down) after which the
reloaded nginx still gets the last good response; and stapled restarted with the upstream down,
then nginx restarted, stapling from stapled's disk cache."""

import re
import time

import stapledtest as st
import webservers as ws

REVOKED_LOG = 'certificate status "revoked" in the OCSP response'
HANDSHAKES = 30  # wait_staple's bound, 0.3 s apart


# --- helpers -------------------------------------------------------------------------------------

def root(env):
    return env.pki.path("root.crt")


def leaf_path(env, cert):
    return ws.cert_files(env.pki, cert)[2]


def serial(env, cert):
    return env.pki.serial(leaf_path(env, cert))


def expect_good(t, env, ng, name, cert, what, der=None):
    """After wait_staple: curl and gnutls-cli verify the staple, openssl ocsp says good (the
    very response der when given). Returns the staple's DER."""
    port, ca = ng.port(name), root(env)
    c = ws.check_curl(port, ca)
    t.ok(c.ok, "%s: curl --cert-status accepts the staple" % what, c)
    g = ws.check_gnutls(port, ca, tmpdir=env.dir)
    chk = env.check_der(g.der, leaf_path(env, cert)) if g.stapled else None
    t.ok(g.ok and g.stapled and chk.ok_good,
         "%s: gnutls-cli --ocsp verifies the staple, openssl ocsp: good" % what,
         "%r\n%r" % (g, chk))
    if der is not None:
        t.ok(g.der == der, "%s: the very response stapled before (thisUpdate %s)"
             % (what, chk.this_update if chk else None))
    return g.der


def staple(t, env, ng, name, what):
    n = ws.wait_staple(ng.port(name), root(env), want="good", tries=HANDSHAKES)
    t.ok(n is not None, "%s: nginx staples good from handshake %s on" % (what, n))
    return n


def revoked_refusals(ng):
    return ng.error_log().count(REVOKED_LOG)


def expect_no_staple(t, env, ng, name, what, before):
    """Handshakes until nginx logged that it refused a revoked answer from stapled (a refusal
    more than before), then a few more: not one of them may carry a staple."""
    port, ca = ng.port(name), root(env)
    stapled = []
    refused = False
    for _ in range(HANDSHAKES):
        o = ws.check_openssl(port, ca)
        if o.stapled:
            stapled.append(o)
        if revoked_refusals(ng) > before:
            refused = True
            break
        time.sleep(0.3)
    t.ok(refused, "%s: nginx got the revoked answer from stapled and refused it (error log)"
         % what, ng.error_log()[-1500:])
    for _ in range(3):
        o = ws.check_openssl(port, ca)
        if o.stapled:
            stapled.append(o)
    t.ok(not stapled, "%s: no handshake carries a staple (neither revoked nor a stale good one)"
         % what, stapled[0] if stapled else None)
    c = ws.check_curl(port, ca)
    t.ok(c.rc == 91, "%s: curl --cert-status fails without a staple (rc %d)" % (what, c.rc), c)
    g = ws.check_gnutls(port, ca, tmpdir=env.dir)
    t.ok(not g.stapled, "%s: gnutls-cli received no staple" % what, g)


# --- responder mode ------------------------------------------------------------------------------

def case_good_and_revoked(t):
    env = t.env(upstream="python")
    node = env.stapled(certificates=[env.pki.path("good-chain.crt"),
                                     env.pki.path("revoked-chain.crt")])
    node.wait_ready()
    h10 = node.metric("stapled_http_requests_total", protocol="http/1.0")
    ng = ws.Nginx(env, [{"cert": "good", "responder": node.url},
                        {"cert": "revoked", "responder": node.url}])
    staple(t, env, ng, "good", "good certificate")
    expect_good(t, env, ng, "good", "good", "good certificate")
    # nginx's request: GET, HTTP/1.0, "Host: 127.0.0.1" without the port. stapled keeps no
    # request log; the HTTP/1.0 counter and the staple itself show it was understood.
    t.ok(node.metric("stapled_http_requests_total", protocol="http/1.0") > h10,
         "nginx asked over HTTP/1.0 and was answered")
    t.eq(node.metric("stapled_requests_total", result="malformed"), 0.0,
         "stapled found nothing malformed in nginx's GET")
    expect_no_staple(t, env, ng, "revoked", "revoked certificate", 0)


def case_revocation(t):
    env = t.env(upstream="python", extra_leaves=1)
    node = env.stapled(certificates=[env.pki.path("good-chain.crt"),
                                     ws.cert_files(env.pki, "extra-1")[0]])
    node.wait_ready()
    ng = ws.Nginx(env, [{"cert": "good", "responder": node.url},
                        {"cert": "extra-1", "responder": node.url}])
    staple(t, env, ng, "extra-1", "before the revocation")
    expect_good(t, env, ng, "extra-1", "extra-1", "before the revocation")

    env.pki.revoke(leaf_path(env, "extra-1"))
    node.refresh_and_wait("refresh after the revocation")
    t.eq((node.entry(serial(env, "extra-1")) or {}).get("status"), "revoked",
         "stapled holds the revoked response")
    # Until it reloads, nginx keeps what it had (its own refresh is at least 5 minutes away):
    # that is nginx, not stapled. The reloaded worker asks again, gets "revoked", refuses it,
    # and from then on staples nothing for this certificate. What must never happen is a good
    # staple: stapled has no business handing out the older good response any more.
    before = revoked_refusals(ng)
    ng.reload()
    expect_no_staple(t, env, ng, "extra-1", "revoked, nginx reloaded", before)
    staple(t, env, ng, "good", "the other certificate after the reload")
    expect_good(t, env, ng, "good", "good", "the other certificate after the reload")


def case_bad_upstream_then_restart(t):
    env = t.env(upstream="python")
    node = env.stapled(certificates=[env.pki.path("good-chain.crt")])
    node.wait_ready()
    ng = ws.Nginx(env, [{"cert": "good", "responder": node.url}])
    staple(t, env, ng, "good", "upstream fine")
    ref = ws.check_openssl(ng.port("good"), root(env))
    der = expect_good(t, env, ng, "good", "good", "upstream fine")
    gs = serial(env, "good")
    this_unix = node.entry(gs)["this_update"]

    for mode in ("badsig", "expired", "garbage", "down"):
        if mode == "down":
            env.upstream.stop()
        else:
            env.upstream.set_mode(mode)
        failed = node.refresh_and_wait("refresh, upstream %s" % mode)
        e = node.entry(gs) or {}
        t.ok(failed >= 1 and e.get("failures", 0) >= 1,
             "upstream %s: stapled's refresh failed (%d failed fetches, entry failures %s)"
             % (mode, failed, e.get("failures")))
        t.ok(e.get("status") == "good" and e.get("this_update") == this_unix,
             "upstream %s: stapled still holds the good response" % mode, e)
        ng.reload()
        staple(t, env, ng, "good", "upstream %s, nginx reloaded" % mode)
        o = ws.check_openssl(ng.port("good"), root(env))
        t.eq(o.this_update, ref.this_update, "upstream %s: the same thisUpdate as before" % mode)
        expect_good(t, env, ng, "good", "good", "upstream %s, nginx reloaded" % mode, der=der)

    # stapled restarted with the upstream still down, then nginx restarted: from disk.
    node.restart()
    node.wait_ready(timeout=10)
    t.ok(node.metric("stapled_store_loaded_total", result="ok") >= 1,
         "the restarted node loaded its response from disk")
    ng.restart()
    staple(t, env, ng, "good", "stapled and nginx restarted, upstream down")
    expect_good(t, env, ng, "good", "good", "stapled and nginx restarted, upstream down",
                der=der)
    t.ok(re.search(r"\[(emerg|alert|crit)\]", ng.error_log()) is None,
         "nginx logged nothing critical")


RESPONDER_CASES = (case_good_and_revoked, case_revocation, case_bad_upstream_then_restart)


# File mode (stapled writes ssl_stapling_file targets and reloads nginx): test_nginx_files.py.


if __name__ == "__main__":
    t = st.Test(__file__)
    if not ws.nginx_binary():
        print("1..0 # SKIP nginx not available (package nginx-light)")
        raise SystemExit(0)
    ws.require(("gnutls-cli", "gnutls-bin"), ("curl", "curl"))
    t.run(*RESPONDER_CASES)
