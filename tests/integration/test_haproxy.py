#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""HAProxy 2.6 (Debian's) stapling what stapled hands it: HAProxy never fetches OCSP, it staples
<crt>.ocsp (read at start) and what arrives over its runtime API (`set ssl ocsp-response`).

stapled is a leaf of a regional stapled node (which asks the CA); an `outputs:` item matching
HAProxy's certificate directory writes <crt>.ocsp (and <crt>.issuer for a PEM without its issuer)
and pushes each new response to HAProxy's admin sockets. Every staple is checked with
curl --cert-status and gnutls-cli --ocsp (both verify it) and read with openssl s_client.

Cases: a push reaching a running HAProxy that had nothing to staple; a PEM without its issuer
stapled from the first handshake thanks to the files; a revocation pushed without a reload; a bad
upstream (bad signature, expired, garbage, down) never pushed nor written; stapled restarted with
everything upstream down pushing from its disk cache, and HAProxy restarted stapling from the
file; a hung admin socket and a garbage-speaking one never delaying the real one, a refused push
retried and counted."""

import os
import shutil
import signal
import socket
import tempfile
import threading
import time

import stapledtest as st
import webservers as ws


def pushes(node, result="accepted", **labels):
    return node.metric("stapled_output_pushes_total", result=result, **labels)


def read(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        return None


def wait_ocsp_file(tree, cert, status, timeout=30):
    """<crt>.ocsp once it holds a response for cert that verifies with the given status; None if
    it does not within timeout. stapled writes the file and pushes over the runtime API
    independently: an accepted push says nothing about the file (a slow disk finishes later)."""
    pem, leaf = tree.pems[cert], tree.env.pki.cert(cert)

    def holds():
        der = read(pem + ".ocsp")
        if not der:
            return None
        chk = tree.env.check_der(der, leaf)
        return der if chk.verify_ok and chk.status == status else None

    try:
        return st.poll(holds, timeout, interval=0.2, what="%s.ocsp holding a %s response"
                       % (os.path.basename(pem), status))
    except TimeoutError:
        return None


class Tree:
    """CA upstream <- regional stapled (learns) <- leaf stapled (HAProxy's certificates, outputs).
    """

    def __init__(self, t, certs=("good",), with_issuer=True, sockets=1, extra_sockets=(),
                 haproxy_first=True):
        self.t = t
        self.env = env = t.env()
        self.pems = {c: ws.make_haproxy_pem(env, c, with_issuer=with_issuer,
                                            ocsp=b"" if with_issuer else None)
                     for c in certs}
        self.dir = os.path.dirname(next(iter(self.pems.values())))
        self.regional = env.stapled(name="regional")
        self.haproxy = None
        if haproxy_first:
            self.haproxy = ws.Haproxy(env, list(self.pems.values()), admin_sockets=sockets)
            socks = list(self.haproxy.sockets)
        else:
            socks = [os.path.join(env.dir, "haproxy", "admin%s.sock" % (i or ""))
                     for i in range(sockets)]
        self.sockets = socks + list(extra_sockets)
        self.leaf = env.stapled(name="leaf", config={
            "parents": [self.regional.url],
            "cert_dirs": [self.dir],
            "outputs": [{
                "name": "haproxy",
                "match": self.dir,
                "ocsp_file": "{path}.ocsp",
                "issuer_file": "{path}.issuer",
                "haproxy_sockets": self.sockets,
            }],
        })
        self.leaf.wait_ready()
        if not haproxy_first:
            # As an operator would: HAProxy started once stapled has written its files. stapled
            # writes a .ocsp only once its .issuer is in place, so the .ocsp is enough to wait for.
            st.poll(lambda: all(read(p + ".ocsp") for p in self.pems.values()), 30,
                    what="the .ocsp files written")
            self.haproxy = ws.Haproxy(env, list(self.pems.values()), admin_sockets=sockets)

    def ca(self, with_chain=False):
        return self.env.pki.path("ca-chain.crt" if with_chain else "root.crt")

    def port(self, cert):
        return self.haproxy.port(list(self.pems).index(cert))

    def refresh_both(self, what):
        """The regional node first (it holds what the CA said), then the leaf."""
        f1 = self.regional.refresh_and_wait(what + " (regional)")
        f2 = self.leaf.refresh_and_wait(what + " (leaf)")
        return f1 + f2


def expect_staple(t, tree, cert, status, what, der=None, with_chain=False):
    """curl, gnutls-cli and s_client against HAProxy's frontend for cert."""
    env, port, ca = tree.env, tree.port(cert), tree.ca(with_chain)
    leaf = env.pki.cert(cert)
    c = ws.check_curl(port, ca)
    g = ws.check_gnutls(port, ca, tmpdir=env.dir)
    o = ws.check_openssl(port, ca)
    chk = env.check_der(g.der, leaf) if g.stapled else None
    if status == "good" and with_chain:
        # curl computes the CertID from the chain the server sends: without the intermediate
        # in it ("Error computing OCSP ID") curl can check no staple at all.
        t.ok(c.rc == 91 and "OCSP ID" in c.text,
             "%s: curl cannot check a staple without the served chain (as expected)" % what, c)
    if status == "good":
        if not with_chain:
            t.ok(c.ok, "%s: curl --cert-status accepts the staple" % what, c)
        t.ok(g.ok and g.stapled and chk.ok_good,
             "%s: gnutls-cli --ocsp verifies the staple; openssl ocsp: good" % what,
             "%r\n%r" % (g, chk))
    else:
        t.ok(c.rc == 91 and "revo" in c.text.lower(),
             "%s: curl --cert-status refuses the %s staple (exit 91)" % (what, status), c)
        t.ok(g.rc != 0 and g.stapled and "revoked" in g.text.lower() and chk.verify_ok
             and chk.status == "revoked",
             "%s: gnutls-cli --ocsp reports the revocation; staple verifies" % what,
             "%r\n%r" % (g, chk))
    t.ok(o.stapled and o.cert_status == status,
         "%s: openssl s_client -status shows %s (thisUpdate %s)" % (what, status, o.this_update),
         o)
    if der is not None:
        t.ok(g.der == der, "%s: the same response as before" % what)
    return g.der


# --- cases ---------------------------------------------------------------------------------------

def case_push_to_running_haproxy(t):
    """HAProxy runs with an empty .ocsp (nothing to staple); stapled starts and pushes."""
    tree = Tree(t, certs=("good", "revoked"))
    o = ws.check_openssl(tree.port("good"), tree.ca())
    # stapled may already have pushed by now; what matters is that the push lands.
    st.poll(lambda: pushes(tree.leaf) >= 2, 30, what="2 pushes accepted")
    t.ok(True, "both responses pushed over the runtime API and accepted by HAProxy")
    expect_staple(t, tree, "good", "good", "after the push, no reload")
    expect_staple(t, tree, "revoked", "revoked", "revoked certificate, after the push")
    for c, pem in tree.pems.items():
        t.ok(wait_ocsp_file(tree, c, "good" if c == "good" else "revoked") is not None,
             "%s.ocsp written with the validated response" % os.path.basename(pem),
             read(pem + ".ocsp"))
        t.eq(read(pem + ".issuer"), None, "%s: issuer in the PEM, no .issuer file" % c)
    t.ok(o.rc is not None, "first handshake before stapled ran completed (stapled %s)"
         % o.stapled)
    out = tree.haproxy.cli("show ssl ocsp-response")
    t.ok(out.count("Certificate ID key") == 2, "HAProxy lists two OCSP responses", out)
    # A reload rescans the unchanged PEMs: the placed leaves (their DER dropped) must still
    # know that their issuer is in the file, or an .issuer file would appear.
    reloads = tree.leaf.metric("stapled_reloads_total")
    tree.leaf.proc.kill(signal.SIGHUP)
    st.poll(lambda: tree.leaf.metric("stapled_reloads_total") > reloads, 15, what="the reload")
    time.sleep(1)  # a write would have landed by now
    t.ok(all(read(p + ".issuer") is None for p in tree.pems.values()),
         "after a reload (rescan of the unchanged PEMs): still no .issuer file")


def case_issuer_file_first_handshake(t):
    """A PEM without its issuer: HAProxy cannot even start with a .ocsp unless <crt>.issuer is
    there. stapled writes both before HAProxy starts; the first handshake is stapled."""
    tree = Tree(t, certs=("good",), with_issuer=False, haproxy_first=False)
    pem = tree.pems["good"]
    iss = read(pem + ".issuer") or b""
    t.ok(b"BEGIN CERTIFICATE" in iss, "%s.issuer written (PEM)" % os.path.basename(pem))
    with open(tree.env.pki.path("int.crt"), "rb") as f:
        t.eq(iss.strip(), f.read().strip(), ".issuer holds the intermediate certificate")
    # The PEM has no chain: the clients get the intermediate from their CA file.
    expect_staple(t, tree, "good", "good", "first handshake after HAProxy started",
                  with_chain=True)
    # The push that failed while HAProxy was down is retried and lands.
    st.poll(lambda: pushes(tree.leaf) >= 1, 90, what="the retried push accepted")
    t.ok(pushes(tree.leaf, "failed") >= 1,
         "pushes before HAProxy ran failed (%d) and were retried"
         % pushes(tree.leaf, "failed"))


def case_revoke_pushed(t):
    tree = Tree(t, certs=("good",))
    st.poll(lambda: pushes(tree.leaf) >= 1, 30, what="first push")
    expect_staple(t, tree, "good", "good", "before the revocation")
    tree.env.pki.revoke("good")
    accepted = pushes(tree.leaf)
    tree.refresh_both("refresh after revoking")
    st.poll(lambda: pushes(tree.leaf) > accepted, 30, what="the revoked response pushed")
    expect_staple(t, tree, "good", "revoked", "revoked at the CA, pushed, no HAProxy reload")
    t.ok(wait_ocsp_file(tree, "good", "revoked") is not None,
         ".ocsp file now holds the revoked response")


def case_upstream_bad(t):
    tree = Tree(t, certs=("good",))
    st.poll(lambda: pushes(tree.leaf) >= 1, 30, what="first push")
    good = expect_staple(t, tree, "good", "good", "before the upstream turns bad")
    pem = tree.pems["good"]
    file0 = wait_ocsp_file(tree, "good", "good")
    t.ok(file0 == good, ".ocsp holds the response HAProxy staples")
    for mode in ("badsig", "expired", "garbage", "down"):
        accepted = pushes(tree.leaf)
        written = tree.leaf.metric("stapled_output_files_total", result="written")
        if mode == "down":
            tree.env.upstream.stop()
        else:
            tree.env.upstream.set_mode(mode)
        failed = tree.regional.refresh_and_wait("regional refresh, upstream " + mode)
        t.ok(failed >= 1, "upstream %s: the regional node's refresh failed" % mode)
        tree.refresh_both("both refreshed, upstream " + mode)
        time.sleep(0.5)  # a push would be on its way by now
        t.eq(pushes(tree.leaf), accepted, "upstream %s: nothing new pushed" % mode)
        t.eq(tree.leaf.metric("stapled_output_files_total", result="written"), written,
             "upstream %s: .ocsp not rewritten" % mode)
        t.ok(read(pem + ".ocsp") == file0, "upstream %s: .ocsp holds the good response" % mode)
        expect_staple(t, tree, "good", "good", "upstream " + mode, der=good)


def case_restart_upstream_down(t):
    tree = Tree(t, certs=("good",))
    st.poll(lambda: pushes(tree.leaf) >= 1, 30, what="first push")
    good = expect_staple(t, tree, "good", "good", "before the restart")
    pem = tree.pems["good"]
    file0 = wait_ocsp_file(tree, "good", "good")
    t.ok(file0 == good, ".ocsp holds the response HAProxy staples")
    tree.env.upstream.stop()
    tree.regional.stop()
    tree.leaf.restart()
    # The restarted leaf loads its cache directory and pushes what it loaded.
    st.poll(lambda: pushes(tree.leaf) >= 1, 30, what="a push from the restarted leaf")
    t.ok(True, "stapled restarted with the CA and its parent down: pushed from disk")
    t.eq(tree.leaf.metric("stapled_output_files_total", result="written"), 0,
         "the .ocsp file already held that response: not rewritten")
    t.ok(read(pem + ".ocsp") == file0, ".ocsp unchanged")
    expect_staple(t, tree, "good", "good", "after the stapled restart", der=good)
    tree.haproxy.stop()
    tree.haproxy.start()
    expect_staple(t, tree, "good", "good", "HAProxy restarted too: stapled from the file",
                  der=good)


class FakeSocket:
    """A unix socket that accepts and then either never answers or answers garbage."""

    def __init__(self, path, mode):
        self.path, self.mode = path, mode
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.bind(path)
        self.s.listen(16)
        self.s.settimeout(0.2)
        self.conns = []
        self.accepted = 0
        self.stop = False
        self.th = threading.Thread(target=self.loop, daemon=True)
        self.th.start()

    def loop(self):
        while not self.stop:
            try:
                c, _ = self.s.accept()
            except (socket.timeout, OSError):
                continue
            self.accepted += 1
            if self.mode == "garbage":
                try:
                    c.recv(65536)
                    c.sendall(b"\x00\xffnot haproxy at all\r\n")
                except OSError:
                    pass
                c.close()
            else:
                self.conns.append(c)  # held open, never answered

    def close(self):
        self.stop = True
        self.th.join(5)
        for c in self.conns:
            c.close()
        self.s.close()


def case_slow_sockets_never_delay(t):
    hung = garbage = None
    d = tempfile.mkdtemp(prefix="stapled-fake-sock-")
    try:
        # Sockets that accept but misbehave, listed after HAProxy's real one.
        hung = FakeSocket(os.path.join(d, "hung.sock"), "hang")
        garbage = FakeSocket(os.path.join(d, "garbage.sock"), "garbage")
        tree = Tree(t, certs=("good",), extra_sockets=[hung.path, garbage.path])
        real = tree.sockets[0]
        st.poll(lambda: pushes(tree.leaf, socket=real) >= 1, 30, what="push to the real socket")
        t.ok(hung.accepted >= 1
             and tree.leaf.metric("stapled_output_pushes_pending", socket=hung.path) >= 1
             and pushes(tree.leaf, "failed", socket=hung.path) == 0,
             "the real socket got its push while the hung one still holds its first attempt")
        st.poll(lambda: pushes(tree.leaf, "rejected", socket=garbage.path) >= 2, 30,
                what="garbage answers counted as refusals and retried")
        t.ok(True, "a socket answering garbage: refused (%d), retried"
             % pushes(tree.leaf, "rejected", socket=garbage.path))
        st.poll(lambda: pushes(tree.leaf, "failed", socket=hung.path) >= 1, 30,
                what="the hung socket's attempt times out")
        t.ok(True, "the hung socket's attempt timed out and counts as failed")
        outputs = tree.leaf.http_admin("GET", "/admin/outputs")[1].decode()
        t.ok("no answer within" in outputs, "/admin/outputs names the hung socket's error",
             outputs)
        expect_staple(t, tree, "good", "good", "HAProxy behind the real socket")
        # A certificate HAProxy does not hold: the push is refused, retried, counted.
        extra = os.path.join(tree.dir, "other.pem")
        with open(tree.env.pki.path("revoked-chain.crt")) as f:
            chain = f.read()
        with open(extra, "w") as f:
            f.write(chain)
        tree.leaf.stop()
        tree.leaf.start()
        st.poll(lambda: pushes(tree.leaf, "rejected", socket=real) >= 1, 60,
                what="a push for a certificate HAProxy does not hold refused")
        t.ok(True, "HAProxy's refusal ('does not match any certificate') counted and retried")
        st.poll(lambda: pushes(tree.leaf, socket=real) >= 1, 30, what="good pushed after restart")
        t.ok(True, "pushes for other certificates went on meanwhile")
    finally:
        for f in (hung, garbage):
            if f:
                f.close()
        shutil.rmtree(d, ignore_errors=True)


def main():
    t = st.Test(__file__)
    ws.require(("haproxy", "haproxy"), ("gnutls-cli", "gnutls-bin"), ("curl", "curl"))
    t.run(case_push_to_running_haproxy, case_issuer_file_first_handshake, case_revoke_pushed,
          case_upstream_bad, case_restart_upstream_down, case_slow_sockets_never_delay)


if __name__ == "__main__":
    main()
