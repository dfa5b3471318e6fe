#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""A three-tier tree on loopback: a counting CA responder, two regional nodes without
certificates or parents (r1, r2), and a leaf that holds half of the certificates and asks
[r1, r2]. Nodes learn the CertIDs they are asked about: the leaf passes the origin it knows
(Stapled-Origin), a regional node remembers it per issuer, a node without the issuer gets it from
its parent (Stapled-Want-Issuer / Stapled-Issuer). Checked: every certificate answered, as nginx
and Apache ask, with ONE request to the CA per certificate; concurrent misses coalesced; failover
to r2 when r1 dies; idle learned entries dropped; a parent without origin knowledge refuses
(unauthorized) unless it has a default origin."""

import base64
import os
import re
import signal
import tempfile
import threading
import time
import traceback
import urllib.parse

import stapledtest as st

KNOWN = range(1, 51)  # the leaf holds these certificates
UNKNOWN = range(51, 101)  # known to nobody
COALESCE = 101  # 30 concurrent requests before anyone has it
LOOP_NEW = range(102, 106)  # first asked during the failover loop
AFTER_KILL = range(106, 110)  # first asked once r1 is dead
BARE = 110  # asked at a leaf without certificates
IDLE = 111  # learned then expired for idleness
NO_ORIGIN = 112  # asked at a parent that knows no origin
DEFAULT_ORIGIN = 113  # asked at a parent with learn.default_origin
PRIME = 114  # tells r2 the issuer's origin (a Stapled-Origin request, as a leaf sends it)
N_EXTRA = 114

UNAUTHORIZED = 6


# --- helpers ------------------------------------------------------------------------------------

class Certs:
    """Paths, serials and request DERs of the extra-N leaves."""

    def __init__(self, env):
        self.env = env
        self.dir = os.path.join(env.pki.dir, "extra")
        self._der = {}
        self._serial = {}
        # intdb/index.txt: status, expiry, revocation, SERIAL, file, subject (/CN=extra-N.test)
        with open(env.pki.path("intdb/index.txt")) as f:
            for line in f:
                cols = line.rstrip("\n").split("\t")
                m = re.search(r"CN=extra-(\d+)\.test", cols[-1]) if len(cols) >= 6 else None
                if m:
                    self._serial[int(m.group(1))] = cols[3].upper().lstrip("0") or "0"
        self._lock = threading.Lock()

    def crt(self, i):
        return os.path.join(self.dir, "extra-%d.crt" % i)

    def chain(self, i):
        return os.path.join(self.dir, "extra-%d-chain.crt" % i)

    def serial(self, i):
        if i not in self._serial:
            self._serial[i] = self.env.pki.serial(self.crt(i)).lstrip("0")
        return self._serial[i]

    def der(self, i):
        with self._lock:
            if i not in self._der:
                self._der[i] = self.env.pki.request_der(self.crt(i))
            return self._der[i]

    def get_path(self, i):
        return "/" + urllib.parse.quote(base64.b64encode(self.der(i)).decode(), safe="")


def nginx_get(certs, i, port):
    """As nginx 1.22 asks: GET, HTTP/1.0, Host without the port, url-encoded base64."""
    return st.exchange(port, ("GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n"
                           % certs.get_path(i)).encode())


def apache_post(certs, i, port, extra_headers=""):
    """As Apache mod_ssl asks: POST, HTTP/1.0, Connection: close."""
    der = certs.der(i)
    return st.exchange(port, ("POST / HTTP/1.0\r\nHost: 127.0.0.1:%d\r\n"
                           "Content-Type: application/ocsp-request\r\nConnection: close\r\n"
                           "%sContent-Length: %d\r\n\r\n"
                           % (port, extra_headers, len(der))).encode() + der)


_check_lock = threading.Lock()


def check(env, certs, resp, i):
    """(ok, detail): HTTP 200, application/ocsp-response, signature and chain verified against
    root.crt, status good, for exactly extra-i's serial. Thread-safe."""
    if resp.status != 200:
        return False, "HTTP %d %r" % (resp.status, resp.body[:200])
    fd, path = tempfile.mkstemp(dir=env.dir, prefix="check-", suffix=".der")
    with os.fdopen(fd, "wb") as f:
        f.write(resp.body)
    try:
        r = st.run(["openssl", "ocsp", "-respin", path, "-issuer", env.pki.path("int.crt"),
                    "-cert", certs.crt(i), "-CAfile", env.pki.path("root.crt"), "-no_nonce",
                    "-resp_text"])
    finally:
        os.unlink(path)
    res = st.OcspResult(r.returncode, (r.stdout + r.stderr).decode("utf-8", "replace"),
                        resp.body)
    m = re.search(r"Serial Number: ([0-9A-Fa-f]+)", res.text)
    serial_ok = bool(m) and m.group(1).upper().lstrip("0") == certs.serial(i)
    ctype_ok = resp.headers.get("content-type", "") == "application/ocsp-response"
    if res.ok_good and serial_ok and ctype_ok:
        return True, None
    return False, "ocsp status byte=%s content-type=%r serial_ok=%s\n%r" % (
        st.ocsp_response_status(resp.body), resp.headers.get("content-type"), serial_ok, res)


def part(t, fn, *args):
    """Runs one part of the scenario; an exception fails it and the next part still runs."""
    print("# part: %s" % fn.__name__, flush=True)
    try:
        return fn(t, *args)
    except Exception:  # noqa: BLE001 - report and go on
        t.ok(False, "%s raised" % fn.__name__, traceback.format_exc())
        return None


def learn_count(node, result):
    return node.metric("stapled_learn_total", result=result)


def upstream_label_fetches(node, prefix):
    """stapled_upstream_fetches_total summed over upstreams whose URL starts with prefix."""
    total = 0.0
    for (name, labels), v in node.metrics().items():
        if name == "stapled_upstream_fetches_total" and \
                dict(labels).get("upstream", "").startswith(prefix):
            total += v
    return total


def same_url(a, b):
    return isinstance(a, str) and isinstance(b, str) and a.rstrip("/") == b.rstrip("/")


# --- the scenario -------------------------------------------------------------------------------

class Tree:
    pass


def build(t):
    # validity 10 h: no refresh can fall inside the test and spoil the per-serial counts.
    env = t.env(upstream="python", extra_leaves=N_EXTRA, validity_min=600)
    tr = Tree()
    tr.env = env
    tr.certs = Certs(env)
    tr.origin = env.pki.ocsp_url  # every extra leaf's AIA OCSP URL: the counting upstream
    t.ok(same_url(tr.origin, env.upstream.url), "the certificates' AIA points at the upstream")
    # An issuer directory (int.crt only): lets r2 answer Stapled-Want-Issuer. r1 has nothing.
    tr.issuer_dir = os.path.join(env.dir, "issuers")
    os.mkdir(tr.issuer_dir)
    with open(env.pki.path("int.crt"), "rb") as src, \
            open(os.path.join(tr.issuer_dir, "int.crt"), "wb") as dst:
        dst.write(src.read())
    tr.r1 = env.stapled(name="r1")
    tr.r2 = env.stapled(name="r2", config={"issuer_dirs": [tr.issuer_dir]})
    tr.r1.wait_ready()
    tr.r2.wait_ready()
    tr.leaf = env.stapled(name="leaf", certificates=[tr.certs.chain(i) for i in KNOWN],
                          config={"parents": [tr.r1.url, tr.r2.url]})
    tr.leaf.wait_ready(30)
    return tr


def all_certs_as_nginx_and_apache(t, tr):
    env, certs, leaf = tr.env, tr.certs, tr.leaf
    failed = {"nginx": [], "apache": []}
    details = []
    for i in list(KNOWN) + list(UNKNOWN):
        for who, ask in (("nginx", nginx_get), ("apache", apache_post)):
            try:
                ok, detail = check(env, certs, ask(certs, i, leaf.port), i)
            except Exception as e:  # noqa: BLE001 - counted as a failure
                ok, detail = False, repr(e)
            if not ok:
                failed[who].append(i)
                if len(details) < 4:
                    details.append("extra-%d (%s): %s" % (i, who, detail))
    for who in ("nginx", "apache"):
        for label, rng in (("known", KNOWN), ("unknown", UNKNOWN)):
            bad = [i for i in failed[who] if i in rng]
            t.ok(not bad, "%s-style requests at the leaf, %d %s certificates: all verified good "
                 "(failed: %s)" % (who, len(rng), label, bad[:20]), "\n".join(details))


def one_ca_request_per_cert(t, tr):
    by_serial = tr.env.upstream.stats()["by_serial"]
    counts = {i: by_serial.get(tr.certs.serial(i), 0) for i in list(KNOWN) + list(UNKNOWN)}
    wrong = {"extra-%d" % i: n for i, n in counts.items() if n != 1}
    t.ok(not wrong, "the CA saw exactly one request per certificate (100 certificates)",
         "counts != 1: %r" % dict(list(wrong.items())[:30]))
    t.eq(tr.r2.metric("stapled_upstream_fetches_total"), 0.0, "r2 fetched nothing")
    t.eq(upstream_label_fetches(tr.leaf, tr.origin), 0.0,
         "the leaf never asked the CA itself")
    t.ok(tr.leaf.metric("stapled_upstream_fetches_total", upstream=tr.r1.url) >= 100,
         "the leaf asked r1 (%d fetches)"
         % tr.leaf.metric("stapled_upstream_fetches_total", upstream=tr.r1.url))
    # Metrics and /admin/entries of learned entries.
    t.eq(tr.r1.metric("stapled_learned_entries"), 100.0, "r1: 100 learned entries (gauge)")
    t.eq(learn_count(tr.r1, "created"), 100.0, "r1: stapled_learn_total{result=created} = 100")
    t.eq(tr.leaf.metric("stapled_learned_entries"), 50.0, "leaf: 50 learned entries (gauge)")
    e = tr.leaf.entry(tr.certs.serial(1))
    t.ok(e is not None and e.get("learned") is False and e.get("issuer_known") is True,
         "leaf /admin/entries: extra-1 (inventory) learned=false issuer_known=true", e)
    e = tr.leaf.entry(tr.certs.serial(51))
    t.ok(e is not None and e.get("learned") is True and e.get("issuer_known") is True
         and "origin" in e, "leaf /admin/entries: extra-51 learned=true issuer_known=true, "
         "has an origin field", e)
    e = tr.r1.entry(tr.certs.serial(1))
    t.ok(e is not None and e.get("learned") is True and same_url(e.get("origin"), tr.origin),
         "r1 /admin/entries: extra-1 learned with the origin the leaf passed (Stapled-Origin)", e)
    t.ok(e is not None and e.get("issuer_known") is True,
         "r1 checked the signature with the issuer the leaf sent along (Stapled-Issuer)", e)
    e = tr.r1.entry(tr.certs.serial(51))
    t.ok(e is not None and e.get("learned") is True and same_url(e.get("origin"), tr.origin),
         "r1 /admin/entries: extra-51 learned with the origin remembered for its issuer", e)


def coalescing(t, tr):
    env, certs, leaf = tr.env, tr.certs, tr.leaf
    serial = certs.serial(COALESCE)
    t.eq(env.upstream.fetches(serial), 0, "extra-%d not asked before" % COALESCE)
    certs.der(COALESCE)  # computed before the barrier
    n = 30
    barrier = threading.Barrier(n)
    results = [None] * n

    def one(k):
        try:
            barrier.wait(10)
            ask = nginx_get if k % 2 else apache_post
            results[k] = check(env, certs, ask(certs, COALESCE, leaf.port), COALESCE)
        except Exception as e:  # noqa: BLE001 - counted as a failure
            results[k] = (False, repr(e))

    threads = [threading.Thread(target=one, args=(k,)) for k in range(n)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(30)
    bad = [(k, r[1]) for k, r in enumerate(results) if not r or not r[0]]
    t.ok(not bad, "30 concurrent requests for a CertID nobody had: all verified good (%d failed)"
         % len(bad), "\n".join("#%d: %s" % b for b in bad[:3]))
    t.eq(env.upstream.fetches(serial), 1, "... and the CA saw ONE request for it")


def prime_r2(t, tr):
    """A leaf that holds a certificate sends Stapled-Origin: r2 learns the issuer's origin."""
    env, certs = tr.env, tr.certs
    r = apache_post(certs, PRIME, tr.r2.port, "Stapled-Origin: %s\r\n" % tr.origin)
    ok, detail = check(env, certs, r, PRIME)
    t.ok(ok, "r2 asked with Stapled-Origin for a new certificate: verified good", detail)
    e = tr.r2.entry(certs.serial(PRIME))
    t.ok(e is not None and e.get("learned") is True and same_url(e.get("origin"), tr.origin)
         and e.get("issuer_known") is True,
         "r2 /admin/entries: learned, origin from the header, issuer known (issuer_dirs)", e)


def bare_leaf(t, tr):
    env, certs = tr.env, tr.certs
    bare = env.stapled(name="bare", config={"parents": [tr.r2.url]})
    bare.wait_ready()
    ok, detail = check(env, certs, nginx_get(certs, BARE, bare.port), BARE)
    t.ok(ok, "a leaf without certificates serves extra-%d through r2, verified" % BARE, detail)
    e = bare.entry(certs.serial(BARE))
    t.ok(e is not None and e.get("learned") is True and e.get("issuer_known") is True,
         "bare leaf /admin/entries: learned=true, issuer_known=true (Stapled-Issuer from r2)", e)
    t.eq(upstream_label_fetches(bare, tr.origin), 0.0,
         "the bare leaf never asked the CA")
    t.eq(env.upstream.fetches(certs.serial(BARE)), 1, "the CA saw one request for it")
    ok, detail = check(env, certs, apache_post(certs, BARE, bare.port), BARE)
    t.ok(ok, "second ask (Apache-style) answered from the bare leaf's cache", detail)
    t.eq(env.upstream.fetches(certs.serial(BARE)), 1, "still one CA request")
    tr.bare = bare


def bare_leaf_restart(t, tr):
    """Learned entries and the issuer a parent handed over survive a restart in the cache
    directory: the bare leaf, restarted with every parent dead, still serves verified."""
    env, certs, bare = tr.env, tr.certs, tr.bare
    tr.r2.stop()
    bare.restart()
    bare.wait_ready()
    ok, detail = check(env, certs, nginx_get(certs, BARE, bare.port), BARE)
    t.ok(ok, "bare leaf restarted, parents down: extra-%d served from its disk cache" % BARE,
         detail)
    e = bare.entry(certs.serial(BARE))
    t.ok(e is not None and e.get("learned") is True and e.get("issuer_known") is True,
         "... still a learned entry, with the issuer kept on disk (signature checked at load)", e)
    t.eq(env.upstream.fetches(certs.serial(BARE)), 1, "still one CA request")


def failover(t, tr):
    env, certs, leaf = tr.env, tr.certs, tr.leaf
    cached = [1, 7, 23, 50, 51, 64, 88, 100, COALESCE]
    fresh = list(LOOP_NEW)
    records = []  # (t0, t1, cert, ok, detail)
    rec_lock = threading.Lock()
    stop = threading.Event()

    t_start = time.monotonic()

    def loop(k):
        j = 0
        fresh_due = 0.5 + 0.8 * k  # thread k asks fresh[k] then: two before the kill, two after
        asked_fresh = k >= len(fresh)
        while not stop.is_set():
            if not asked_fresh and time.monotonic() - t_start >= fresh_due:
                i = fresh[k]
                asked_fresh = True
            else:
                i = cached[(j + k) % len(cached)]
            ask = nginx_get if (j + k) % 2 else apache_post
            t0 = time.monotonic()
            try:
                ok, detail = check(env, certs, ask(certs, i, leaf.port), i)
            except Exception as e:  # noqa: BLE001 - recorded
                ok, detail = False, repr(e)
            with rec_lock:
                records.append((t0, time.monotonic(), i, ok, detail))
            j += 1

    threads = [threading.Thread(target=loop, args=(k,)) for k in range(4)]
    for th in threads:
        th.start()
    time.sleep(max(0.0, 1.5 - (time.monotonic() - t_start)))
    t_kill = time.monotonic()
    tr.r1.proc.kill(signal.SIGKILL)
    tr.r1.proc.wait(5)
    time.sleep(3.5)
    stop.set()
    for th in threads:
        th.join(20)
    in_flight = [r for r in records if not r[3] and r[0] <= t_kill <= r[1]]
    bad = [r for r in records if not r[3] and not (r[0] <= t_kill <= r[1])]
    print("# failover loop: %d requests, %d failed in flight at the kill, %d failed otherwise"
          % (len(records), len(in_flight), len(bad)))
    for r in in_flight:
        print("#   in flight at the kill: extra-%d: %s" % (r[2], str(r[4])[:200]))
    t.ok(len(records) > 20, "the loop ran (%d requests)" % len(records))
    t.ok(not bad, "no failed request except those in flight at the kill (%d other failures)"
         % len(bad), "\n".join("extra-%d at +%.2fs: %s" % (r[2], r[0] - t_kill, r[4])
                               for r in bad[:4]))
    asked = {r[2] for r in records}
    t.ok(all(i in asked for i in fresh), "the loop asked the not-yet-requested certificates %s"
         % fresh)
    for i in AFTER_KILL:
        ok, detail = check(env, certs, nginx_get(certs, i, leaf.port), i)
        t.ok(ok, "r1 dead: a new certificate (extra-%d) is served through r2, verified" % i,
             detail)
    t.ok(leaf.metric("stapled_upstream_fetches_total", upstream=tr.r2.url) >= len(AFTER_KILL),
         "the leaf fetched from r2")
    counts = {i: env.upstream.fetches(certs.serial(i)) for i in fresh + list(AFTER_KILL)}
    t.ok(all(n == 1 for n in counts.values()), "one CA request per new certificate", counts)


def idle_expiry(t, tr):
    env, certs = tr.env, tr.certs
    node = env.stapled(name="idle", config={"parents": [tr.r2.url],
                                            "issuer_dirs": [tr.issuer_dir],
                                            "learn": {"idle_expiry": "2s"}})
    node.wait_ready()
    serial = certs.serial(IDLE)
    ok, detail = check(env, certs, nginx_get(certs, IDLE, node.port), IDLE)
    t.ok(ok, "idle_expiry 2s: extra-%d learned and served" % IDLE, detail)
    e = node.entry(serial)
    t.ok(e is not None and e.get("learned") is True, "listed in /admin/entries as learned", e)
    t.eq(node.metric("stapled_learned_entries"), 1.0, "learned entries gauge: 1")
    created = learn_count(node, "created")
    t_last = time.monotonic()
    st.poll(lambda: node.entry(serial) is None, 8, interval=0.2,
            what="the idle learned entry to be dropped")
    gone_after = time.monotonic() - t_last
    t.ok(gone_after >= 1.5, "not dropped before its idle time (gone after %.1fs)" % gone_after)
    t.ok(learn_count(node, "expired") >= 1, "stapled_learn_total{result=expired} >= 1")
    t.eq(node.metric("stapled_learned_entries"), 0.0, "learned entries gauge back to 0")
    ok, detail = check(env, certs, apache_post(certs, IDLE, node.port), IDLE)
    t.ok(ok, "asked again after expiry: learned again and served", detail)
    t.eq(learn_count(node, "created"), created + 1, "... counted as a new created entry")


def origin_knowledge(t, tr):
    env, certs = tr.env, tr.certs
    p = env.stapled(name="noorigin")
    p.wait_ready()
    r = nginx_get(certs, NO_ORIGIN, p.port)
    t.ok(r.status == 200 and st.ocsp_response_status(r.body) == UNAUTHORIZED,
         "a parent without origin knowledge answers unauthorized for an unknown certificate",
         "HTTP %d body %r" % (r.status, r.body[:80]))
    t.eq(env.upstream.fetches(certs.serial(NO_ORIGIN)), 0, "... without asking anyone")
    t.ok(learn_count(p, "refused_no_origin") >= 1,
         "stapled_learn_total{result=refused_no_origin} >= 1")

    d = env.stapled(name="deforigin", config={"learn": {"default_origin": tr.origin},
                                              "issuer_dirs": [tr.issuer_dir]})
    d.wait_ready()
    ok, detail = check(env, certs, apache_post(certs, DEFAULT_ORIGIN, d.port), DEFAULT_ORIGIN)
    t.ok(ok, "with learn.default_origin the same kind of request is answered, verified", detail)
    t.eq(env.upstream.fetches(certs.serial(DEFAULT_ORIGIN)), 1, "one CA request for it")
    e = d.entry(certs.serial(DEFAULT_ORIGIN))
    t.ok(e is not None and e.get("learned") is True and same_url(e.get("origin"), tr.origin),
         "/admin/entries: learned, origin = default_origin", e)


def case_tree(t):
    t_start = time.monotonic()
    tr = build(t)
    print("# tree up after %.1fs" % (time.monotonic() - t_start), flush=True)
    part(t, all_certs_as_nginx_and_apache, tr)
    part(t, one_ca_request_per_cert, tr)
    part(t, coalescing, tr)
    part(t, prime_r2, tr)
    part(t, bare_leaf, tr)
    part(t, failover, tr)  # kills r1: after every part that needs it
    part(t, idle_expiry, tr)
    part(t, origin_knowledge, tr)
    part(t, bare_leaf_restart, tr)  # stops r2
    print("# scenario took %.1fs" % (time.monotonic() - t_start), flush=True)


if __name__ == "__main__":
    t = st.Test(__file__)
    t.run(case_tree)
