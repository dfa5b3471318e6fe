#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Apache httpd 2.4 (Debian's) stapling through stapled, in both of its modes: stapled as the
responder (SSLStaplingForceURL) and stapled as the HTTP proxy to the certificate's AIA URL
(SSLOCSPProxyURL, absolute-form requests).

Apache fetches inside the handshake and staples whatever it gets (it checks no signature), so
stapled is the only gatekeeper: every staple is checked by curl --cert-status and gnutls-cli
--ocsp (both verify it) and read with openssl s_client -status. Apache keeps a staple for
SSLStaplingStandardCacheTimeout (2 s here), then asks stapled again on the next handshake.

Cases: the tree CA <- regional node (learns) <- leaf node (parents, certificates) <- Apache:
staple on the first handshake, a revocation reaching Apache, a bad upstream (bad signature,
expired, garbage, down) never replacing the last good staple, a leaf restarted with everything
upstream down serving from disk; the same restart for a lone node; proxy mode; and web servers
that trickle or send garbage never delaying another's staple."""

import os
import shutil
import socket
import threading
import time

import stapledtest as st
import webservers as ws

CACHE_TIMEOUT = 2  # Apache's SSLStaplingStandardCacheTimeout / ErrorCacheTimeout, seconds
TRICKLERS = 10


# --- helpers -------------------------------------------------------------------------------------

def root(env):
    return env.pki.path("root.crt")


def serial(env, cert):
    _, _, leaf = ws.cert_files(env.pki, cert)
    return env.pki.serial(leaf)


def leaf_path(env, cert):
    return ws.cert_files(env.pki, cert)[2]


def expect_good(t, env, ap, cert, what, der=None):
    """curl, gnutls-cli and s_client on the vhost of cert: a verified good staple (the same
    response as der when given). Returns the staple's DER (from gnutls-cli)."""
    port, ca = ap.port(cert), root(env)
    c = ws.check_curl(port, ca)
    t.ok(c.ok, "%s: curl --cert-status accepts the staple (%s)" % (what, cert), c)
    g = ws.check_gnutls(port, ca, tmpdir=env.dir)
    chk = env.check_der(g.der, leaf_path(env, cert)) if g.stapled else None
    t.ok(g.ok and g.stapled and chk.ok_good,
         "%s: gnutls-cli --ocsp verifies the staple, openssl ocsp: good (%s)" % (what, cert),
         "%r\n%r" % (g, chk))
    if der is not None:
        t.ok(g.der == der, "%s: the very response stapled before (thisUpdate %s)"
             % (what, chk.this_update if chk else None),
             "now: %s" % (chk.this_update if chk else None))
    o = ws.check_openssl(port, ca)
    t.ok(o.stapled and o.response_status == "successful" and o.cert_status == "good",
         "%s: s_client -status shows good (%s)" % (what, cert), o)
    return g.der


def expect_revoked(t, env, ap, cert, what):
    port, ca = ap.port(cert), root(env)
    c = ws.check_curl(port, ca)
    t.ok(c.rc == 91 and "revocation" in c.text,
         "%s: curl --cert-status exits 91, revoked (%s)" % (what, cert), c)
    g = ws.check_gnutls(port, ca, tmpdir=env.dir)
    chk = env.check_der(g.der, leaf_path(env, cert)) if g.stapled else None
    t.ok(g.rc != 0 and "revoked" in g.text and g.stapled and chk.verify_ok
         and chk.status == "revoked",
         "%s: gnutls-cli --ocsp: revoked, staple signed and verified (%s)" % (what, cert),
         "%r\n%r" % (g, chk))
    o = ws.check_openssl(port, ca)
    t.ok(o.stapled and o.cert_status == "revoked",
         "%s: s_client -status shows revoked (%s)" % (what, cert), o)


def hold_steady(t, env, ap, cert, this_update, what, asked_node):
    """Handshakes until Apache's cache has certainly expired (CACHE_TIMEOUT after now) and it
    asked stapled again: every staple on the way must be the good one with this_update."""
    hits0 = asked_node.metric("stapled_requests_total", result="hit")
    until = time.monotonic() + CACHE_TIMEOUT + 1.0
    seen, bad = 0, None
    while time.monotonic() < until or seen < 2:
        o = ws.check_openssl(ap.port(cert), root(env))
        seen += 1
        if not (o.stapled and o.cert_status == "good" and o.this_update == this_update):
            bad = o
            break
        time.sleep(0.3)
    t.ok(bad is None, "%s: %d handshakes over %ss, each stapled good, thisUpdate %s"
         % (what, seen, CACHE_TIMEOUT + 1, this_update), bad)
    t.ok(asked_node.metric("stapled_requests_total", result="hit") > hits0,
         "%s: Apache's cache expired and it asked stapled again" % what)


def asn1_time(unix):
    """A time as openssl prints it ("Nov  3 20:26:34 2026 GMT")."""
    g = time.gmtime(unix)
    return "%s %2d %02d:%02d:%02d %d GMT" % (time.strftime("%b", g), g.tm_mday, g.tm_hour,
                                             g.tm_min, g.tm_sec, g.tm_year)


def wait_this_update(t, env, ap, cert, this_unix, what):
    """Handshakes until Apache staples the response with this thisUpdate (its cache may hold an
    older one for CACHE_TIMEOUT)."""
    want = asn1_time(this_unix)
    o = None
    deadline = time.monotonic() + CACHE_TIMEOUT + 20
    while time.monotonic() < deadline:
        o = ws.check_openssl(ap.port(cert), root(env))
        if o.this_update == want:
            break
        time.sleep(0.3)
    t.ok(o is not None and o.this_update == want and o.cert_status == "good",
         "%s: Apache staples the response stapled holds (thisUpdate %s)" % (what, want), o)
    return o


def issuer_dir(env):
    d = os.path.join(env.dir, "issuers")
    if not os.path.isdir(d):
        os.mkdir(d)
        shutil.copy(env.pki.path("int.crt"), os.path.join(d, "int.crt"))
    return d


# --- the tree: CA <- regional <- leaf <- Apache --------------------------------------------------

def case_tree(t):
    env = t.env(upstream="python", extra_leaves=1)
    regional = env.stapled(name="regional")  # no certificates, no parents: learns from requests
    regional.wait_ready()
    certs = ["good", "revoked", "extra-1"]
    leaf = env.stapled(name="leaf", certificates=[ws.cert_files(env.pki, c)[0] for c in certs],
                       config={"parents": [regional.url]})
    leaf.wait_ready()
    t.eq(regional.metric("stapled_learned_entries"), 3.0,
         "the regional node learned the leaf's three certificates")
    ap = ws.Apache(env, certs, leaf.url, cache_timeout=CACHE_TIMEOUT,
                   error_cache_timeout=CACHE_TIMEOUT)

    # a. Fresh Apache, empty shmcb: curl is the very first handshake on the good vhost.
    expect_good(t, env, ap, "good", "first handshake")
    expect_good(t, env, ap, "extra-1", "first handshake")
    expect_revoked(t, env, ap, "revoked", "first handshake")
    t.eq(leaf.metric("stapled_upstream_fetches_total", upstream=env.upstream.url), 0.0,
         "the leaf never asked the CA itself")

    # b. Revocation at the CA reaches Apache once stapled refreshed (parent, then leaf).
    env.pki.revoke(leaf_path(env, "extra-1"))
    s1 = serial(env, "extra-1")
    regional.refresh_and_wait("regional refresh after the revocation")
    t.eq((regional.entry(s1) or {}).get("status"), "revoked", "regional: extra-1 now revoked")
    leaf.refresh_and_wait("leaf refresh after the revocation")
    t.eq((leaf.entry(s1) or {}).get("status"), "revoked", "leaf: extra-1 now revoked")
    n = ws.wait_staple(ap.port("extra-1"), root(env), want="revoked",
                       tries=int((CACHE_TIMEOUT + 20) / 0.5), interval=0.5)
    t.ok(n is not None, "Apache staples revoked for extra-1 after its cache timeout (%s "
         "handshakes)" % n)
    expect_revoked(t, env, ap, "extra-1", "after the revocation")

    # c. The CA turns bad: each forced refresh fails at the regional node, the leaf's refresh
    # brings nothing new, and Apache keeps stapling the last good response.
    # The refresh in b fetched a newer good response too: wait until Apache staples it.
    gs = serial(env, "good")
    this_unix = leaf.entry(gs)["this_update"]
    ref = wait_this_update(t, env, ap, "good", this_unix, "before the CA turns bad")
    good = expect_good(t, env, ap, "good", "before the CA turns bad")
    for mode in ("badsig", "expired", "garbage", "down"):
        if mode == "down":
            env.upstream.stop()
        else:
            env.upstream.set_mode(mode)
        failed = regional.refresh_and_wait("regional refresh, upstream %s" % mode)
        e = regional.entry(gs) or {}
        t.ok(failed >= 3 and e.get("failures", 0) >= 1,
             "upstream %s: the regional node's refresh failed (%d failed fetches, entry "
             "failures %s)" % (mode, failed, e.get("failures")))
        t.ok(e.get("status") == "good" and e.get("this_update") == this_unix,
             "upstream %s: the regional node still holds the good response" % mode, e)
        leaf.refresh_and_wait("leaf refresh, upstream %s" % mode)
        e = leaf.entry(gs) or {}
        t.ok(e.get("status") == "good" and e.get("this_update") == this_unix,
             "upstream %s: the leaf still holds the good response" % mode, e)
        hold_steady(t, env, ap, "good", ref.this_update, "upstream %s" % mode, leaf)
        expect_good(t, env, ap, "good", "upstream %s" % mode, der=good)
    expect_revoked(t, env, ap, "revoked", "upstream down")

    # d. The leaf restarted with everything above it down (CA and regional node): Apache,
    # restarted with an empty cache, gets the same staples from the leaf's disk cache.
    regional.stop()
    leaf.restart()
    leaf.wait_ready(timeout=10)
    t.ok(leaf.metric("stapled_store_loaded_total", result="ok") >= 3,
         "the restarted leaf loaded its responses from disk")
    ap.restart()
    expect_good(t, env, ap, "good", "leaf restarted, CA and regional down", der=good)
    expect_revoked(t, env, ap, "revoked", "leaf restarted, CA and regional down")
    expect_revoked(t, env, ap, "extra-1", "leaf restarted, CA and regional down")


def case_lone_node_restart(t):
    """d, second variant: Apache talks to a node that asks the CA (`openssl ocsp`) itself."""
    env = t.env(upstream="openssl")
    node = env.stapled(name="lone", certificates=[env.pki.path("good-chain.crt"),
                                                  env.pki.path("revoked-chain.crt")])
    node.wait_ready()
    ap = ws.Apache(env, ["good", "revoked"], node.url, cache_timeout=CACHE_TIMEOUT,
                   error_cache_timeout=CACHE_TIMEOUT)
    good = expect_good(t, env, ap, "good", "first handshake")
    env.upstream.stop()
    failed = node.refresh_and_wait("refresh with the CA down")
    t.ok(failed >= 2, "CA down: the forced refresh failed (%d failed fetches)" % failed)
    node.restart()
    node.wait_ready(timeout=10)
    t.ok(node.metric("stapled_store_loaded_total", result="ok") >= 2,
         "restarted node loaded its responses from disk")
    ap.restart()
    expect_good(t, env, ap, "good", "node restarted with the CA down", der=good)
    expect_revoked(t, env, ap, "revoked", "node restarted with the CA down")


# --- proxy mode: Apache -> (SSLOCSPProxyURL) stapled -> the AIA URL ------------------------------

def case_proxy_mode(t):
    env = t.env(upstream="python", extra_leaves=1)
    # A node given no certificates: it learns each one from the origin Apache's request names,
    # and checks the answers with the issuer from issuer_dirs.
    node = env.stapled(name="proxy", config={"issuer_dirs": [issuer_dir(env)]})
    node.wait_ready()
    certs = ["good", "revoked", "extra-1"]
    ap = ws.Apache(env, certs, node.url, mode="proxy", cache_timeout=CACHE_TIMEOUT,
                   error_cache_timeout=CACHE_TIMEOUT)
    expect_good(t, env, ap, "good", "proxy mode, first handshake")
    expect_good(t, env, ap, "extra-1", "proxy mode, first handshake")
    expect_revoked(t, env, ap, "revoked", "proxy mode, first handshake")
    t.ok(node.metric("stapled_proxy_requests_total", result="ocsp") >= 3,
         "stapled saw absolute-form (proxy) OCSP requests")
    e = node.entry(serial(env, "good")) or {}
    t.ok(e.get("learned") is True and (e.get("origin") or "").rstrip("/") ==
         env.upstream.url.rstrip("/"), "learned, with the AIA URL Apache asked for as origin", e)
    t.eq(env.upstream.fetches(serial(env, "good").lstrip("0")), 1,
         "the CA was asked once for the good certificate")

    # Revocation.
    env.pki.revoke(leaf_path(env, "extra-1"))
    node.refresh_and_wait("refresh after the revocation")
    t.eq((node.entry(serial(env, "extra-1")) or {}).get("status"), "revoked",
         "stapled: extra-1 now revoked")
    n = ws.wait_staple(ap.port("extra-1"), root(env), want="revoked",
                       tries=int((CACHE_TIMEOUT + 20) / 0.5), interval=0.5)
    t.ok(n is not None, "proxy mode: Apache staples revoked for extra-1 (%s handshakes)" % n)
    expect_revoked(t, env, ap, "extra-1", "proxy mode, after the revocation")

    # A bad signature from the CA: refused, the last good response stays stapled. (The refresh
    # above fetched a newer good response: wait until Apache staples that one.)
    ref = wait_this_update(t, env, ap, "good", node.entry(serial(env, "good"))["this_update"],
                           "proxy mode, before the CA turns bad")
    good = expect_good(t, env, ap, "good", "proxy mode, before the CA turns bad")
    env.upstream.set_mode("badsig")
    failed = node.refresh_and_wait("refresh, upstream badsig")
    t.ok(failed >= 3 and node.fetch_count(("invalid",)) >= 3,
         "upstream badsig: the refresh is refused as invalid (%d failed)" % failed)
    hold_steady(t, env, ap, "good", ref.this_update, "proxy mode, upstream badsig", node)
    expect_good(t, env, ap, "good", "proxy mode, upstream badsig", der=good)


# --- misbehaving web servers do not delay others -------------------------------------------------

class Trickler(threading.Thread):
    """A "web server" sending an Apache-style OCSP POST to stapled one byte at a time. Records
    when stapled closed the connection (EOF, reset or an answer)."""

    def __init__(self, port, data, interval=0.1):
        super().__init__(daemon=True)
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.data = data
        self.interval = interval
        self.stop_ev = threading.Event()
        self.closed_at = None
        self.sent = 0

    def run(self):
        try:
            for i in range(len(self.data)):
                if self.stop_ev.wait(self.interval):
                    return
                self.sock.sendall(self.data[i:i + 1])
                self.sent += 1
                self.sock.setblocking(False)
                try:
                    self.sock.recv(1, socket.MSG_PEEK)  # an answer or EOF: stapled is done
                    self.closed_at = time.monotonic()
                    return
                except BlockingIOError:
                    pass
                finally:
                    self.sock.setblocking(True)
        except OSError:
            self.closed_at = time.monotonic()

    def open(self):
        return self.is_alive() and self.closed_at is None

    def finish(self):
        self.stop_ev.set()
        self.join(5)
        self.sock.close()


def case_slow_and_garbage_clients(t):
    env = t.env(upstream="python")
    node = env.stapled(name="lone", certificates=[env.pki.path("good-chain.crt"),
                                                  env.pki.path("revoked-chain.crt")])
    node.wait_ready()
    der = env.pki.request_der("good")
    post = ("POST / HTTP/1.0\r\nHost: 127.0.0.1:%d\r\nContent-Type: application/ocsp-request\r\n"
            "Connection: close\r\nContent-Length: %d\r\n\r\n" % (node.port, len(der))).encode()
    # A byte every 0.1 s: about 18 s for the whole request, so stapled's 10 s request timeout,
    # not the end of the request, is what ends these connections.
    tricklers = [Trickler(node.port, post + der) for _ in range(TRICKLERS)]
    idle = []
    try:
        for tr in tricklers:
            tr.start()
        # Garbage, a header that never ends, a body that never comes, all left open.
        for data in (os.urandom(3000), b"GET /MEMw", post + der[:10],
                     b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + os.urandom(64)):
            s = socket.create_connection(("127.0.0.1", node.port), timeout=5)
            s.sendall(data)
            idle.append(s)
        # Well into the request line or headers of each (and still far from the timeout).
        st.poll(lambda: all(tr.sent >= 20 for tr in tricklers), 10,
                what="the trickling connections to be sending")
        # The two garbage ones are refused at once; the stalled ones wait for their timeout.
        t.ok(node.metric("stapled_connections_active", listener="ocsp") >= TRICKLERS + 2,
             "stapled holds the %d trickling and 2 stalled connections open" % TRICKLERS)
        t0 = time.monotonic()
        ap = ws.Apache(env, ["good", "revoked"], node.url, cache_timeout=CACHE_TIMEOUT,
                       error_cache_timeout=CACHE_TIMEOUT)
        o = ws.check_openssl(ap.port("good"), root(env))
        o2 = ws.check_openssl(ap.port("revoked"), root(env))
        took = time.monotonic() - t0
        still_open = [tr.open() for tr in tricklers]
        t.ok(o.stapled and o.cert_status == "good",
             "with slow and junk connections open: Apache's first handshake "
             "is stapled good", o)
        t.ok(o2.stapled and o2.cert_status == "revoked", "... and revoked on the other vhost",
             o2)
        t.ok(all(still_open), "... while every trickling connection is still open (%s, "
             "%d bytes sent each)" % (still_open, min(tr.sent for tr in tricklers)))
        t.ok(took < 8.0, "Apache start and both first handshakes took %.2fs, well under "
             "stapled's 10 s request timeout" % took)
        expect_good(t, env, ap, "good", "slow clients still open")
    finally:
        for tr in tricklers:
            tr.finish()
        for s in idle:
            s.close()
    t.ok(node.proc.alive(), "stapled is still running")


if __name__ == "__main__":
    t = st.Test(__file__)
    ws.require(("apache2", "apache2"), ("gnutls-cli", "gnutls-bin"), ("curl", "curl"))
    t.run(case_tree, case_lone_node_restart, case_proxy_mode, case_slow_and_garbage_clients)
