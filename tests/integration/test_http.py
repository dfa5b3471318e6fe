#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""HTTP behaviour of the responder: keep-alive, pipelining, HTTP/1.0, malformed requests while
other clients are served, non-HTTP garbage, oversize bodies, slow clients, connection limit."""

import socket
import threading
import time

import stapledtest as st

MALFORMED = bytes.fromhex("3003 0a01 01")


def start(t, config=None):
    env = t.env(upstream="python")
    node = env.stapled(certificates=[env.pki.path("good-chain.crt"),
                                     env.pki.path("revoked-chain.crt")], config=config)
    node.wait_ready()
    return env, node


def case_descriptor_limit(t):
    """A descriptor limit far below limits.max_connections (4096): with room in the hard limit
    stapled raises its soft limit; without, it serves as many connections as fit, says so at
    start, and refuses and counts the others rather than let accept() fail with EMFILE, where
    libuv closes waiting clients unseen."""
    env = t.env(upstream="python")

    def limited(name, nofile):
        """A node started under `prlimit --nofile=SOFT:HARD`, and the connection limit it uses."""
        node = env.stapled(certificates=[env.pki.path("good-chain.crt")], name=name,
                           wrapper=["prlimit", "--nofile=" + nofile, "--"])
        node.wait_ready()
        return node, node.metric("stapled_connections_limit", listener="ocsp")

    roomy, limit = limited("roomy", "300:8192")
    t.eq(limit, 4096, "soft limit 300, hard 8192: all of max_connections served")
    t.ok("descriptor limit raised from 300 to 4352" in roomy.proc.log(),
         "... after raising the soft limit (said in the log)")
    roomy.stop()

    node, limit = limited("tight", "64:64")
    t.eq(limit, 16, "hard limit 64: stapled_connections_limit{listener=ocsp} is 16 (a quarter)")
    t.ok("leaves room for 16 client connections" in node.proc.log(),
         "a warning at start says how many connections fit and how to raise the limit")
    good = env.pki.request_der("good")
    held, refused = [], 0
    for _ in range(40):
        c = st.Conn(node.port, timeout=3)
        try:
            c.send(st.http_post_bytes(good))
            if c.read_response().status == 200:
                held.append(c)
                continue
        except (socket.timeout, EOFError, ConnectionResetError, BrokenPipeError):
            pass
        refused += 1
        c.close()
    t.ok(len(held) == 16 and refused == 24,
         "40 clients held open: 16 answered, 24 refused at once (got %d, %d)"
         % (len(held), refused))
    t.eq(node.metric("stapled_connections_refused_total", listener="ocsp"), 24,
         "the refusals are counted (the admin listener still answers)")
    log = node.proc.log()
    t.ok(log.count("connection limit (16) reached") == 1,
         "one log line for the burst of refusals, not one per client")
    for c in held:
        c.close()
    r = env.query(node, "good")
    t.ok(r.ok_good, "served again once the held connections are closed", r)


def case_keepalive_pipelining(t):
    env, node = start(t)
    good = env.pki.request_der("good")
    revoked = env.pki.request_der("revoked")

    c = st.Conn(node.port)
    c.send(st.http_post_bytes(good))
    a = c.read_response()
    t.ok(a.status == 200 and env.check_der(a.body, "good").ok_good, "keep-alive: first answer")
    t.ok(a.headers.get("connection", "").lower() != "close", "HTTP/1.1: no Connection: close")
    c.send(st.http_get_bytes(env.get_path("revoked")))
    b = c.read_response()
    t.ok(b.status == 200 and env.check_der(b.body, "revoked").status == "revoked",
         "keep-alive: second request on the same connection")

    # Pipelining: three requests in one write, answers in order.
    c.send(st.http_post_bytes(revoked) + st.http_get_bytes(env.get_path("good")) +
           st.http_post_bytes(revoked))
    r1, r2, r3 = c.read_response(), c.read_response(), c.read_response()
    got = [env.check_der(r.body, n).status for r, n in ((r1, "revoked"), (r2, "good"),
                                                          (r3, "revoked"))]
    t.eq(got, ["revoked", "good", "revoked"], "pipelined requests answered in order")
    c.close()

    # A pipelined batch split at awkward places (inside the request line and the body).
    data = st.http_post_bytes(good) + st.http_post_bytes(revoked)
    c = st.Conn(node.port)
    for chunk in (data[:7], data[7:60], data[60:130], data[130:]):
        c.send(chunk)
        time.sleep(0.02)
    r1, r2 = c.read_response(), c.read_response()
    t.eq([env.check_der(r1.body, "good").status, env.check_der(r2.body, "revoked").status],
         ["good", "revoked"], "requests split across writes")
    c.close()

    # HTTP/1.0 without keep-alive: one answer, then close.
    c = st.Conn(node.port)
    c.send(st.http_post_bytes(good, version="HTTP/1.0"))
    r = c.read_response()
    t.ok(r.status == 200,
         "HTTP/1.0 request answered (%s %d)" % (r.version, r.status))
    t.ok(c.is_closed(5), "HTTP/1.0 connection closed after the answer")
    c.close()

    # HTTP/1.1 with Connection: close.
    c = st.Conn(node.port)
    c.send(st.http_post_bytes(good, extra="Connection: close\r\n"))
    r = c.read_response()
    t.eq(r.status, 200, "Connection: close request answered")
    t.ok(c.is_closed(5), "closed after Connection: close")
    c.close()

    # HTTP/1.0 with keep-alive requested explicitly: either honoured or closed, never stuck.
    c = st.Conn(node.port)
    c.send(st.http_post_bytes(good, version="HTTP/1.0", extra="Connection: keep-alive\r\n"))
    r = c.read_response()
    t.eq(r.status, 200, "HTTP/1.0 keep-alive request answered")
    c.close()


def _client_loop(port, der, n, results, idx):
    ok = 0
    try:
        c = st.Conn(port)
        for i in range(n):
            if i % 5 == 4:  # mix new connections with keep-alive ones
                c.close()
                c = st.Conn(port)
            c.send(st.http_post_bytes(der))
            r = c.read_response()
            if r.status == 200 and st.ocsp_response_status(r.body) == 0:
                ok += 1
        c.close()
    except Exception as e:  # noqa: BLE001 - counted as a failure below
        results[idx] = (ok, repr(e))
        return
    results[idx] = (ok, None)


def case_garbage(t):
    env, node = start(t)
    good = env.pki.request_der("good")
    stop = threading.Event()
    garbage_answers = {"malformed": 0, "other": 0}

    def garbage_poster():
        # Syntactically fine HTTP, bodies that are not OCSP requests: malformedRequest each time.
        bodies = [b"\x30\x03\x02\x01\x05", b"hello", b"\x30\x80\x30\x80", good[:-5],
                  good + b"\x00", b"\xff" * 64]
        # They are valid HTTP exchanges, so the connection stays open between them.
        c = st.Conn(node.port)
        i = 0
        while not stop.is_set():
            try:
                c.send(st.http_post_bytes(bodies[i % len(bodies)]))
                r = c.read_response()
                key = "malformed" if r.status == 200 and r.body == MALFORMED else "other"
            except (OSError, EOFError):
                key = "other"
                c.close()
                c = st.Conn(node.port)
            garbage_answers[key] += 1
            i += 1
        c.close()

    def raw_junk():
        # Not HTTP at all: a TLS ClientHello-looking blob, then random-ish bytes.
        while not stop.is_set():
            try:
                s = socket.create_connection(("127.0.0.1", node.port), timeout=5)
                s.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(range(256)))
                s.recv(4096)
                s.close()
            except OSError:
                pass

    threads = [threading.Thread(target=garbage_poster), threading.Thread(target=raw_junk)]
    for th in threads:
        th.start()
    results = [None] * 4
    clients = [threading.Thread(target=_client_loop, args=(node.port, good, 25, results, i))
               for i in range(4)]
    for th in clients:
        th.start()
    for th in clients:
        th.join(60)
    stop.set()
    for th in threads:
        th.join(30)
    t.eq([r[0] if r else None for r in results], [25] * 4,
         "4 parallel clients all answered while garbage flowed (errors: %s)"
         % [r[1] for r in results if r])
    t.ok(garbage_answers["malformed"] > 0 and garbage_answers["other"] == 0,
         "every non-OCSP body got malformedRequest (%r)" % garbage_answers)
    t.ok(node.metric("stapled_requests_total", result="malformed") >= garbage_answers["malformed"],
         "malformed requests counted")

    # Non-HTTP bytes: 400 and close.
    c = st.Conn(node.port)
    c.send(b"\x16\x03\x01\x00\x05hello\r\n\r\n")
    try:
        r = c.read_response()
        t.eq(r.status, 400, "non-HTTP garbage: 400")
    except EOFError:
        t.ok(False, "non-HTTP garbage: 400 before close (got a bare close)")
    t.ok(c.is_closed(5), "non-HTTP garbage: connection closed")
    c.close()
    for bad in (b"GET\r\n\r\n", b"POST / HTTP/1.1\r\nContent-Length: -5\r\n\r\n",
                b"POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello",
                b"GET / HTTP/9.9\r\n\r\n", b"GET / HTTP/1.1\r\nBad Header\r\n\r\n"):
        c = st.Conn(node.port)
        c.send(bad)
        try:
            r = c.read_response()
            t.ok(400 <= r.status < 600, "bad request %r -> %d" % (bad[:30], r.status))
        except EOFError:
            t.ok(True, "bad request %r -> closed" % bad[:30])
        c.close()
    r = env.query(node, "good")
    t.ok(r.ok_good, "good still served after all the garbage", r)


def case_limits(t):
    env, node = start(t, config={"limits": {"request_timeout": "1s", "max_connections": 8,
                                            "max_body_bytes": "16KiB"}})
    good = env.pki.request_der("good")

    # Oversize body: 413 (the server must not read 1 MB first).
    c = st.Conn(node.port)
    c.send(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/ocsp-request\r\n"
           b"Content-Length: 1000000\r\n\r\n" + b"\x30" * 1000)
    try:
        r = c.read_response()
        t.eq(r.status, 413, "oversize body: 413")
    except EOFError:
        t.ok(False, "oversize body: 413 expected, got a bare close")
    c.close()
    # Oversize header block: 431 or 400.
    c = st.Conn(node.port)
    c.send(b"GET /x HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 70000 + b"\r\n\r\n")
    try:
        r = c.read_response()
        t.ok(r.status in (400, 413, 431), "oversize headers: %d" % r.status)
    except (EOFError, ConnectionResetError, BrokenPipeError):
        t.ok(True, "oversize headers: closed")
    c.close()

    # Slow client: half a request, then silence; the server must give up after about 1 s.
    c = st.Conn(node.port, timeout=10)
    t0 = time.monotonic()
    c.send(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 69\r\n")
    # Meanwhile everyone else is served.
    t.ok(env.query(node, "good").ok_good, "served while a slow client dawdles")
    closed = False
    try:
        r = c.read_response()
        closed = r.status in (408, 400) and c.is_closed(5)
    except (EOFError, ConnectionResetError):
        closed = True
    took = time.monotonic() - t0
    t.ok(closed and 0.8 <= took <= 5, "slow client timed out after %.2fs" % took)
    c.close()
    # Slow body (headers complete, body never finishes).
    c = st.Conn(node.port, timeout=10)
    t0 = time.monotonic()
    c.send(st.http_post_bytes(good)[:-10])
    try:
        r = c.read_response()
        closed = r.status in (408, 400) and c.is_closed(5)
    except (EOFError, ConnectionResetError):
        closed = True
    took = time.monotonic() - t0
    t.ok(closed and 0.8 <= took <= 5, "slow body timed out after %.2fs" % took)
    c.close()

    # Connection limit: 8 held connections; a 9th gets no answer until one is released.
    held = []
    for _ in range(8):
        c = st.Conn(node.port)
        c.send(st.http_post_bytes(good))
        t.ok(c.read_response().status == 200, "held connection %d answered" % (len(held) + 1))
        held.append(c)
    # The admin listener must stay reachable while the responder is saturated: health probes
    # and metrics matter most then.
    try:
        active = node.metric("stapled_connections_active", listener="ocsp")
        t.ok(active == 8, "stapled_connections_active{listener=ocsp} = 8 (got %s)" % active)
    except OSError as e:
        t.ok(False, "admin API reachable while the responder has max_connections open (%r)" % e)
    extra = st.Conn(node.port, timeout=2)
    refused = False
    try:
        extra.send(st.http_post_bytes(good))
        r = extra.read_response()
        refused = r.status == 503
    except (socket.timeout, EOFError, ConnectionResetError, BrokenPipeError):
        refused = True
    t.ok(refused, "9th connection is not served while 8 are open")
    extra.close()
    held.pop().close()

    def served():
        c = st.Conn(node.port, timeout=3)
        try:
            c.send(st.http_post_bytes(good))
            return c.read_response().status == 200
        finally:
            c.close()
    t.ok(st.poll(served, 10, what="a free connection slot"), "served again once one is closed")
    for c in held:
        c.close()
    # The scrape's own connection is counted on the admin listener, not here.
    back = st.poll(lambda: node.metric("stapled_connections_active", listener="ocsp") == 0, 10,
                   what="connections_active back to 0")
    t.ok(back, "stapled_connections_active{listener=ocsp} back to 0")


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def case_pipelining_without_reading(t):
    # A client pipelines requests for seconds and never reads an answer: the server must stop
    # reading (backpressure) instead of queueing answers without bound.
    env = t.env(upstream="python")
    node = env.stapled(certificates=[env.pki.path("good-chain.crt")])
    node.wait_ready()
    before = rss_kb(node.proc.pid)
    req = ("GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % env.get_path("good")).encode()
    burst = req * 200
    s = socket.create_connection(("127.0.0.1", node.port))
    s.setblocking(False)
    sent, deadline = 0, time.monotonic() + 4
    while time.monotonic() < deadline:
        try:
            sent += s.send(burst)
        except BlockingIOError:
            time.sleep(0.01)
    grown = rss_kb(node.proc.pid) - before
    t.ok(sent > 0, "sent %d bytes of pipelined requests without reading" % sent)
    t.ok(grown < 16 * 1024, "server memory grew by %d KiB only (bounded)" % grown)
    s.close()
    r = env.query(node, "good")
    t.ok(r.ok_good, "the node keeps answering others", r)


if __name__ == "__main__":
    t = st.Test(__file__)
    t.run(case_keepalive_pipelining, case_garbage, case_limits, case_descriptor_limit,
          case_pipelining_without_reading)
