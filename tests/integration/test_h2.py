#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""HTTP/2 with prior knowledge (h2c) on the responder port, next to HTTP/1: nghttp exchanges,
h2load with many concurrent streams, many streams parked on one upstream fetch, and malformed
frames that end only their own connection. TLS listeners: ALPN h2 and http/1.1 with curl,
h2load over TLS, old protocol versions refused."""

import os
import shutil
import socket
import struct
import sys

import stapledtest as st

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
EMPTY_SETTINGS = b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"


def start(t):
    env = t.env(upstream="python")
    node = env.stapled(certificates=[env.pki.path(c + "-chain.crt") for c in ("good", "revoked")])
    node.wait_ready()
    return env, node


def write(env, name, data):
    path = os.path.join(env.dir, name)
    with open(path, "wb") as f:
        f.write(data)
    return path


def case_nghttp(t):
    env, node = start(t)
    url = "http://127.0.0.1:%d" % node.port
    # GET: the frames show an HTTP/2 exchange with the RFC 5019 headers.
    r = st.run(["nghttp", "-v", url + env.get_path("good")], timeout=20)
    out = r.stdout.decode("utf-8", "replace")
    t.ok(r.returncode == 0 and "recv SETTINGS frame" in out and ":status: 200" in out,
         "nghttp GET: an HTTP/2 exchange answered 200", out[-600:])
    t.ok("content-type: application/ocsp-response" in out and "cache-control: max-age=" in out
         and "etag:" in out, "nghttp GET: RFC 5019 headers", out[-600:])
    # POST: the body is the verified response.
    for cert in ("good", "revoked"):
        req = write(env, cert + ".req", env.pki.request_der(cert))
        r = st.run(["nghttp", "-d", req, "-H", "content-type: application/ocsp-request",
                    url + "/"], timeout=20)
        res = env.check_der(r.stdout, cert)
        t.ok(res.verify_ok and res.status == ("good" if cert == "good" else "revoked"),
             "nghttp POST %s: verified %s" % (cert, res.status), res)
    # The same port still speaks HTTP/1.
    r = env.query(node, "good")
    t.ok(r.ok_good, "HTTP/1 on the same port", r)


def h2load(args, timeout=60):
    r = st.run(["h2load"] + args, timeout=timeout)
    return r.returncode, (r.stdout + r.stderr).decode("utf-8", "replace")


def case_h2load(t):
    env, node = start(t)
    url = "http://127.0.0.1:%d" % node.port
    rc, out = h2load(["-n", "4000", "-c", "4", "-m", "32", url + env.get_path("good")])
    t.ok(rc == 0 and "status codes: 4000 2xx" in out and " 0 failed" in out,
         "h2load GET, 4 connections x 32 streams: 4000 x 2xx", out[-500:])
    req = write(env, "good.req", env.pki.request_der("good"))
    rc, out = h2load(["-n", "4000", "-c", "4", "-m", "32", "-d", req, "-H",
                      "content-type: application/ocsp-request", url + "/"])
    t.ok(rc == 0 and "status codes: 4000 2xx" in out and " 0 failed" in out,
         "h2load POST, 4 connections x 32 streams: 4000 x 2xx", out[-500:])
    t.eq(env.upstream.fetches(env.pki.serial("good")), 1,
         "served from the cache: still one upstream fetch")


def case_parked_streams(t):
    # A SHA-256 CertID form is fetched on first demand: 200 concurrent streams for it wait on
    # one fetch (each stream its own waiter) and all get the verified response.
    env, node = start(t)
    url = "http://127.0.0.1:%d" % node.port
    before = env.upstream.fetches(env.pki.serial("revoked"))
    req = write(env, "rv256.req", env.pki.request_der("revoked", sha256=True))
    rc, out = h2load(["-n", "200", "-c", "2", "-m", "100", "-d", req, "-H",
                      "content-type: application/ocsp-request", url + "/"])
    t.ok(rc == 0 and "status codes: 200 2xx" in out, "200 parked streams answered", out[-500:])
    t.eq(env.upstream.fetches(env.pki.serial("revoked")) - before, 1,
         "one upstream fetch for the 200 streams")
    t.eq(node.metric("stapled_requests_total", result="unavailable"), 0.0,
         "none answered tryLater")
    r = st.run(["nghttp", "-d", req, "-H", "content-type: application/ocsp-request", url + "/"],
               timeout=20)
    res = env.check_der(r.stdout, "revoked", sha256=True)
    t.ok(res.verify_ok and res.status == "revoked", "SHA-256 form: verified revoked", res)


def raw_exchange(port, payload):
    """Sends bytes, reads until the server closes; returns the frame types received."""
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(payload)
    data = b""
    try:
        while True:
            d = s.recv(65536)
            if not d:
                break
            data += d
    except socket.timeout:
        return None  # not closed
    finally:
        s.close()
    types, i = [], 0
    while i + 9 <= len(data):
        length = int.from_bytes(data[i:i + 3], "big")
        types.append(data[i + 3])
        i += 9 + length
    return types


def case_bad_frames(t):
    env, node = start(t)
    cases = {
        "unknown frame with a bad length": PREFACE + b"\x00\x00\x04\x99\x00\x00\x00\x00\x00xxxx"
        + b"garbage",
        "undecodable HPACK": PREFACE + EMPTY_SETTINGS
        + b"\x00\x00\x05\x01\x05\x00\x00\x00\x01\xff\xff\xff\xff\xff",
        "DATA on stream 0": PREFACE + EMPTY_SETTINGS + b"\x00\x00\x04\x00\x01\x00\x00\x00\x00xxxx",
        "SETTINGS with a bad length": PREFACE + b"\x00\x00\x05\x04\x00\x00\x00\x00\x00" + b"\x00" * 5,
    }
    for name, payload in cases.items():
        types = raw_exchange(node.port, payload)
        t.ok(types is not None and 7 in types, "%s: GOAWAY, then closed" % name, types)
    # Rapid reset (CVE-2023-44487): 1,100 streams opened (HEADERS without END_STREAM, so each
    # request stays unanswered) and reset at once; past the budget of 1,000 the connection gets
    # GOAWAY and is closed, and only that connection.
    hdr_block = b"\x83\x84\x86\x41\x09127.0.0.1"  # :method POST, :path /, :scheme http, :authority
    flood = PREFACE + EMPTY_SETTINGS
    for sid in range(1, 2201, 2):
        flood += struct.pack(">I", len(hdr_block))[1:] + b"\x01\x04" + struct.pack(">I", sid)
        flood += hdr_block
        flood += b"\x00\x00\x04\x03\x00" + struct.pack(">I", sid) + b"\x00\x00\x00\x08"
    types = raw_exchange(node.port, flood)
    t.ok(types is not None and 7 in types, "rapid-reset flood: GOAWAY, connection closed", types)
    r = env.query(node, "good")
    t.ok(r.ok_good, "the node keeps answering others", r)
    t.ok(node.proc.alive(), "node alive")


def case_tls(t):
    env = t.env(upstream="python")
    tls_port = st.free_port()
    node = env.stapled(
        certificates=[env.pki.path("good-chain.crt")],
        config={"tls": {"listen": ["127.0.0.1:%d" % tls_port],
                        "cert": env.pki.path("good-chain.crt"),
                        "key": env.pki.path("good.key")}})
    node.wait_ready()
    base = "https://localhost:%d" % tls_port
    common = ["curl", "-sS", "-m", "10", "--cacert", env.pki.path("root.crt"),
              "--resolve", "localhost:%d:127.0.0.1" % tls_port, "-w", "%{http_version}"]
    out = os.path.join(env.dir, "tls.der")
    r = st.run(common + ["--http2", "-o", out, base + env.get_path("good")], timeout=20)
    with open(out, "rb") as f:
        res = env.check_der(f.read(), "good")
    t.ok(r.returncode == 0 and r.stdout == b"2" and res.ok_good,
         "curl --http2 over TLS: ALPN h2, verified good (http_version %s)" % r.stdout, res)
    req = write(env, "good.req", env.pki.request_der("good"))
    r = st.run(common + ["--http1.1", "--data-binary", "@" + req, "-H",
                         "Content-Type: application/ocsp-request", "-o", out, base + "/"],
               timeout=20)
    with open(out, "rb") as f:
        res = env.check_der(f.read(), "good")
    t.ok(r.returncode == 0 and r.stdout == b"1.1" and res.ok_good,
         "curl --http1.1 POST over TLS: verified good", res)
    r = st.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % tls_port, "-alpn",
                "http/1.1,h2", "-CAfile", env.pki.path("root.crt")], input=b"", timeout=20)
    text = r.stdout.decode("utf-8", "replace")
    t.ok("ALPN protocol: h2" in text, "the server prefers h2 when both are offered")
    rc, out2 = h2load(["-n", "1000", "-c", "2", "-m", "16",
                       "https://127.0.0.1:%d" % tls_port + env.get_path("good")])
    t.ok(rc == 0 and "status codes: 1000 2xx" in out2 and "Application protocol: h2" in out2,
         "h2load over TLS: 1000 x 2xx", out2[-400:])
    r = st.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % tls_port, "-tls1_1"],
               input=b"", timeout=20)
    text = (r.stdout + r.stderr).decode("utf-8", "replace")
    t.ok("Cipher is (NONE)" in text or "alert protocol version" in text,
         "TLS 1.1 is refused", text[-300:])
    r = env.query(node, "good")
    t.ok(r.ok_good, "the plain listener still answers", r)


if __name__ == "__main__":
    t = st.Test(__file__)
    for tool in ("nghttp", "h2load"):
        if not shutil.which(tool):
            print("1..0 # SKIP %s not installed (nghttp2-client)" % tool)
            sys.exit(0)
    t.run(case_nghttp, case_h2load, case_parked_streams, case_bad_frames, case_tls)
