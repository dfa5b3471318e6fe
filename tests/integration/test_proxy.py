#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Forward-proxy mode: a request whose target is an absolute URI (`GET http://ca/<b64>`,
`POST http://ca/`), as curl -x, Apache SSLOCSPProxyURL, mod_md MDHttpProxy and HAProxy send it,
names the origin responder. A node without certificates learns the CertID from that origin (or
through its parents, passing the origin along) and caches it. A proxy request that is not OCSP
gets 400, CONNECT gets 405, an origin outside learn.allowed_origins gets 403; none of them reaches
any upstream."""

import base64
import os
import shutil
import time
import urllib.parse

import stapledtest as st

N_EXTRA = 10


# --- helpers ------------------------------------------------------------------------------------

def crt(env, i):
    return os.path.join(env.pki.dir, "extra", "extra-%d.crt" % i)


def serial(env, i):
    return env.pki.serial(crt(env, i)).lstrip("0")


def b64_path(env, i):
    der = env.pki.request_der(crt(env, i))
    return urllib.parse.quote(base64.b64encode(der).decode(), safe="")


def curl_proxy(env, proxy_port, url, timeout=10):
    """curl -x http://127.0.0.1:PROXY URL; returns (http_code, {header: value}, body)."""
    tag = "%d" % time.monotonic_ns()
    hdr = os.path.join(env.dir, "curl-%s.hdr" % tag)
    body = os.path.join(env.dir, "curl-%s.body" % tag)
    r = st.run(["curl", "-sS", "-m", str(timeout), "-x", "http://127.0.0.1:%d" % proxy_port,
                "-D", hdr, "-o", body, "-w", "%{http_code}", url], timeout=timeout + 10)
    out = r.stdout.decode().strip()
    code = int(out) if out.isdigit() else 0
    headers = {}
    data = b""
    if os.path.exists(hdr):
        with open(hdr, "rb") as f:
            for line in f.read().decode("latin-1").split("\r\n")[1:]:
                k, sep, v = line.partition(":")
                if sep:
                    headers[k.strip().lower()] = v.strip()
        os.unlink(hdr)
    if os.path.exists(body):
        with open(body, "rb") as f:
            data = f.read()
        os.unlink(body)
    if code == 0:
        headers["curl-error"] = r.stderr.decode("utf-8", "replace").strip()
    return code, headers, data


def verified(env, code, headers, body, i):
    """(ok, detail): 200, application/ocsp-response, verified good for extra-i."""
    if code != 200:
        return False, "HTTP %d %r %r" % (code, headers, body[:200])
    if headers.get("content-type") != "application/ocsp-response":
        return False, "content-type %r" % headers.get("content-type")
    r = env.check_der(body, crt(env, i))
    return r.ok_good, r


def origin_fetches(node, up):
    """A node's stapled_upstream_fetches_total towards the upstream (any URL on its port)."""
    prefix = "http://127.0.0.1:%d/" % up.port
    total = 0.0
    for (name, labels), v in node.metrics().items():
        if name == "stapled_upstream_fetches_total" and \
                dict(labels).get("upstream", "").startswith(prefix):
            total += v
    return total


def same_origin(a, b):
    return (a or "").rstrip("/") == (b or "").rstrip("/")


def issuer_dir(env):
    """A directory holding the CA certificate: what a proxying node needs to check answers
    from an origin that a request named (it trusts no unverified answer from there)."""
    d = os.path.join(env.dir, "issuers")
    if not os.path.isdir(d):
        os.mkdir(d)
        shutil.copy(env.pki.path("int.crt"), os.path.join(d, "int.crt"))
    return d


def start(t, config=None, name="proxy", issuers=True):
    env = t.env(upstream="python", extra_leaves=N_EXTRA, validity_min=600)
    config = dict(config or {})
    if issuers:
        config["issuer_dirs"] = [issuer_dir(env)]
    node = env.stapled(name=name, config=config)
    node.wait_ready()
    return env, node


# --- cases --------------------------------------------------------------------------------------

def case_curl_x(t):
    env, node = start(t)
    up = env.upstream
    url = "%s%s" % (up.url, b64_path(env, 1))
    code, headers, body = curl_proxy(env, node.port, url)
    ok, detail = verified(env, code, headers, body, 1)
    t.ok(ok, "curl -x NODE http://UP/<b64>: 200 application/ocsp-response, verified good",
         detail)
    t.eq(up.fetches(serial(env, 1)), 1, "the origin named in the URL was asked once")
    code, headers, body = curl_proxy(env, node.port, url)
    ok, detail = verified(env, code, headers, body, 1)
    t.ok(ok, "the same curl again: verified good", detail)
    t.eq(up.fetches(serial(env, 1)), 1, "... answered from the cache (still 1 origin request)")
    e = node.entry(serial(env, 1))
    t.ok(e is not None and e.get("learned") is True
         and (e.get("origin") or "").rstrip("/") == up.url.rstrip("/"),
         "/admin/entries: learned, origin = the proxied URL's responder", e)
    t.ok(node.metric("stapled_learn_total", result="created") >= 1,
         "stapled_learn_total{result=created} counted")


def case_absolute_post(t):
    env, node = start(t)
    up = env.upstream
    der = env.pki.request_der(crt(env, 2))
    req = ("POST %s HTTP/1.0\r\nHost: 127.0.0.1:%d\r\nContent-Type: application/ocsp-request\r\n"
           "Connection: close\r\nContent-Length: %d\r\n\r\n" % (up.url, up.port, len(der))
           ).encode() + der
    r = st.exchange(node.port, req)
    ok, detail = verified(env, r.status, r.headers, r.body, 2)
    t.ok(ok, "POST http://UP/ HTTP/1.0 (Apache style, Connection: close): verified good", detail)
    t.eq(up.fetches(serial(env, 2)), 1, "one origin request")
    r = st.exchange(node.port, req)
    ok, detail = verified(env, r.status, r.headers, r.body, 2)
    t.ok(ok, "the same POST again: verified good", detail)
    t.eq(up.fetches(serial(env, 2)), 1, "... from the cache")
    # An absolute-form GET over a raw socket (HTTP/1.1, as HAProxy ocsp-update sends it).
    r = st.exchange(node.port, ("GET %s%s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n"
                             "\r\n" % (up.url, b64_path(env, 3), up.port)).encode())
    ok, detail = verified(env, r.status, r.headers, r.body, 3)
    t.ok(ok, "GET http://UP/<b64> HTTP/1.1 over a raw socket: verified good", detail)
    t.eq(up.fetches(serial(env, 3)), 1, "one origin request")


def case_not_ocsp(t):
    env, node = start(t)
    up = env.upstream
    before = up.fetches()
    r = st.exchange(node.port, b"GET http://example.invalid/index.html HTTP/1.1\r\n"
                            b"Host: example.invalid\r\nConnection: close\r\n\r\n")
    t.eq(r.status, 400, "non-OCSP proxy request: HTTP 400")
    t.ok(r.headers.get("content-type", "").startswith("text/plain") and len(r.body) > 0
         and st.ocsp_response_status(r.body) is None,
         "... with a text/plain body, not an OCSP answer",
         "%r %r" % (r.headers, r.body[:200]))
    r = st.exchange(node.port, b"CONNECT example.invalid:443 HTTP/1.1\r\n"
                            b"Host: example.invalid:443\r\n\r\n")
    t.eq(r.status, 405, "CONNECT: HTTP 405")
    # A proxy request whose path is not a decodable OCSP request, to the real upstream.
    r = st.exchange(node.port, ("GET %sindex.html HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                             "Connection: close\r\n\r\n" % (up.url, up.port)).encode())
    t.eq(r.status, 400, "non-OCSP proxy request to a reachable host: HTTP 400")
    t.eq(up.fetches() - before, 0, "none of them reached the upstream")
    t.eq(origin_fetches(node, up), 0.0, "the node fetched nothing")
    # Still serving afterwards.
    code, headers, body = curl_proxy(env, node.port, "%s%s" % (up.url, b64_path(env, 4)))
    ok, detail = verified(env, code, headers, body, 4)
    t.ok(ok, "a proper proxy request afterwards is served", detail)


def case_leaf_forwards_to_parent(t):
    env = t.env(upstream="python", extra_leaves=N_EXTRA, validity_min=600)
    up = env.upstream
    p = env.stapled(name="parent", config={"issuer_dirs": [issuer_dir(env)]})
    p.wait_ready()
    leaf = env.stapled(name="leaf", config={"parents": [p.url]})
    leaf.wait_ready()
    code, headers, body = curl_proxy(env, leaf.port, "%s%s" % (up.url, b64_path(env, 5)))
    ok, detail = verified(env, code, headers, body, 5)
    t.ok(ok, "proxy request at a leaf with a parent: verified good", detail)
    t.eq(origin_fetches(p, up), 1.0, "the parent fetched the origin once")
    t.eq(origin_fetches(leaf, up), 0.0, "the leaf did not fetch the origin itself")
    t.ok(leaf.metric("stapled_upstream_fetches_total", upstream=p.url) >= 1,
         "the leaf fetched from its parent")
    t.eq(up.fetches(serial(env, 5)), 1, "the origin saw one request")
    e = p.entry(serial(env, 5))
    t.ok(e is not None and (e.get("origin") or "").rstrip("/") == up.url.rstrip("/"),
         "the parent learned the origin the leaf passed (Stapled-Origin)", e)
    code, headers, body = curl_proxy(env, leaf.port, "%s%s" % (up.url, b64_path(env, 5)))
    ok, detail = verified(env, code, headers, body, 5)
    t.ok(ok and up.fetches(serial(env, 5)) == 1, "second request from the leaf's cache", detail)


def case_no_issuer(t):
    """Without the CA certificate a node cannot check what an origin answers, so it does not
    ask: a request naming an origin is refused (unauthorized), not passed through unchecked."""
    env, node = start(t, issuers=False)
    up = env.upstream
    code, headers, body = curl_proxy(env, node.port, "%s%s" % (up.url, b64_path(env, 7)))
    t.eq(code, 200, "proxy request without the issuer: an OCSP answer")
    t.eq(body, bytes.fromhex("30030a0106"), "... unauthorized")
    t.eq(up.fetches(serial(env, 7)), 0, "the origin was not asked")
    t.ok(node.metric("stapled_learn_total", result="refused_no_issuer") >= 1,
         "stapled_learn_total{result=refused_no_issuer} counted")


def case_poisoned_origin(t):
    """A client naming a rogue origin cannot poison the entry: the rogue's answer fails the
    signature check, and a later request naming the real origin replaces the rogue one."""
    env, node = start(t)
    up = env.upstream
    rogue = env.add_upstream(validity_min=600)
    rogue.set_mode("badsig")
    i = 8
    code, headers, body = curl_proxy(env, node.port, "%s%s" % (rogue.url, b64_path(env, i)))
    t.eq(body, bytes.fromhex("30030a0103"), "rogue origin with a bad signature: tryLater, "
         "nothing stored")
    t.eq(rogue.fetches(serial(env, i)), 1, "... after asking the rogue once")
    code, headers, body = curl_proxy(env, node.port, "%s%s" % (up.url, b64_path(env, i)))
    st.poll(lambda: up.fetches(serial(env, i)) >= 1 or None, 10, what="real origin asked")
    code, headers, body = curl_proxy(env, node.port, "%s%s" % (up.url, b64_path(env, i)))
    ok, detail = verified(env, code, headers, body, i)
    t.ok(ok, "the real origin named next replaces the rogue: verified good", detail)
    e = node.entry(serial(env, i))
    t.ok(e and same_origin(e.get("origin"), up.url), "entry's origin is the real one", e)


def case_hops_poisoning(t):
    """A client claiming many Stapled-Hops cannot make a leaf refuse everyone as a loop."""
    env = t.env(upstream="python", extra_leaves=N_EXTRA, validity_min=600)
    p = env.stapled(name="parent", config={"issuer_dirs": [issuer_dir(env)]})
    p.wait_ready()
    leaf = env.stapled(name="leaf", config={"parents": [p.url]})
    leaf.wait_ready()
    i = 9
    der = env.pki.request_der(crt(env, i))
    r = st.exchange(leaf.port, st.http_post_bytes(der, version="HTTP/1.0",
                                              extra="Stapled-Hops: 7\r\n"
                                              "Stapled-Origin: %s\r\n" % env.upstream.url))
    t.eq(r.body, bytes.fromhex("30030a0106"), "hops 7 at the leaf: its parent refuses the loop")
    st.poll(lambda: (lambda r: r if r.status == 200 and r.body != bytes.fromhex("30030a0106")
                     else None)(st.exchange(leaf.port, st.http_post_bytes(der, version="HTTP/1.0")
                                         )), 10, what="an honest request is served")
    r = st.exchange(leaf.port, st.http_post_bytes(der, version="HTTP/1.0"))
    ok, detail = verified(env, r.status, r.headers, r.body, i)
    t.ok(ok, "an honest request right after: served, verified good", detail)


def case_allowed_origins(t):
    env, node = start(t, config={"learn": {"allowed_origins": ["http://10.255.255.1/"]}})
    up = env.upstream
    before = up.fetches()
    code, headers, body = curl_proxy(env, node.port, "%s%s" % (up.url, b64_path(env, 6)))
    t.eq(code, 403, "origin not in learn.allowed_origins: HTTP 403")
    r = st.exchange(node.port, ("GET %s%s HTTP/1.0\r\nHost: 127.0.0.1:%d\r\n\r\n"
                             % (up.url, b64_path(env, 6), up.port)).encode())
    t.eq(r.status, 403, "... also for a raw HTTP/1.0 absolute-form GET")
    t.eq(up.fetches() - before, 0, "no upstream request")
    t.eq(origin_fetches(node, up), 0.0, "the node fetched nothing")
    t.ok(node.metric("stapled_learn_total", result="refused_origin") >= 1,
         "stapled_learn_total{result=refused_origin} counted")


def case_allowed_origins_bypass(t):
    """The allowlist compares scheme, host and port as parts: userinfo tricks and longer host
    names do not pass."""
    env, node = start(t, config={"learn": {"allowed_origins": ["http://localhost/"]}})
    up = env.upstream
    for url in ("http://localhost@127.0.0.1:%d/" % up.port, "http://localhost.evil:%d/" % up.port):
        code, _, _ = curl_proxy(env, node.port, url + b64_path(env, 10))
        t.ok(code in (400, 403), "proxy target %s refused (HTTP %d)" % (url, code))
    der = env.pki.request_der(crt(env, 10))
    st.exchange(node.port, st.http_post_bytes(
        der, version="HTTP/1.0", extra="Stapled-Origin: http://localhost@127.0.0.1:%d/\r\n"
        % up.port))
    t.eq(up.fetches(serial(env, 10)), 0, "Stapled-Origin with userinfo: the origin not asked")


if __name__ == "__main__":
    t = st.Test(__file__)
    t.run(case_curl_x, case_absolute_post, case_not_ocsp, case_leaf_forwards_to_parent,
          case_no_issuer, case_poisoned_origin, case_hops_poisoning, case_allowed_origins,
          case_allowed_origins_bypass)
