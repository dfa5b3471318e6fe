#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Inventory changes at run time: certificates dropped into a watched directory are served
without a restart; SIGHUP reloads the config without dropping a single request; output files
(write_ocsp_files, ocsp_file) are written."""

import os
import shutil
import signal
import threading
import time

import stapledtest as st


def extra(env, i, suffix="-chain.crt"):
    return os.path.join(env.pki.dir, "extra", "extra-%d%s" % (i, suffix))


def case_watched_dir(t):
    env = t.env(upstream="python", extra_leaves=3)
    watched = os.path.join(env.dir, "certs")
    os.mkdir(watched)
    shutil.copy(env.pki.path("good-chain.crt"), os.path.join(watched, "good.pem"))
    # Learning off: this is about the directory watch, and a learned entry would answer
    # before the inventory picked the file up.
    node = env.stapled(config={"cert_dirs": [watched], "learn": {"enabled": False}})
    node.wait_ready()
    t.ok(env.query(node, "good").ok_good, "certificate present at start is served")
    t.eq(env.query(node, extra(env, 1, ".crt")).error, "unauthorized",
         "extra-1 not yet known: unauthorized")

    # Atomic drop (rename into the directory), as deployment tools do.
    tmp = os.path.join(env.dir, "extra-1.tmp")
    shutil.copy(extra(env, 1), tmp)
    os.rename(tmp, os.path.join(watched, "extra-1.pem"))
    r = st.poll(lambda: (lambda r: r if r.ok_good else None)(
        env.query(node, extra(env, 1, ".crt"))), 20, interval=0.3,
        what="extra-1 served after dropping it into the watched dir")
    t.ok(r.ok_good, "dropped certificate served without a restart")

    # A plain copy (written in place) and a DER file work too.
    shutil.copy(extra(env, 2), os.path.join(watched, "extra-2.crt"))
    der = os.path.join(watched, "extra-3.der")
    st.run(["openssl", "x509", "-in", extra(env, 3, ".crt"), "-outform", "DER", "-out", der])
    shutil.copy(env.pki.path("int.crt"), os.path.join(watched, "zz-issuer.pem"))
    for i in (2, 3):
        r = st.poll(lambda: (lambda r: r if r.ok_good else None)(
            env.query(node, extra(env, i, ".crt"))), 20, interval=0.3,
            what="extra-%d served" % i)
        t.ok(r.ok_good, "extra-%d (%s) served" % (i, "PEM copy" if i == 2 else "DER"))
    t.eq(node.metric("stapled_entries"), 4.0, "four entries")

    # Removing a file stops the entry.
    os.unlink(os.path.join(watched, "extra-2.crt"))
    st.poll(lambda: node.metric("stapled_entries") == 3.0, 20, interval=0.3,
            what="entries back to 3 after removing a file")
    t.ok(True, "removed file: entry dropped")
    node.wait_ready(10)
    t.ok(True, "ready after the changes")


def case_learned_then_adopted(t):
    """A certificate first learned from a request, then dropped into a watched directory,
    becomes an ordinary inventory entry without a second fetch; removing the file drops it."""
    env = t.env(upstream="python", extra_leaves=1)
    watched = os.path.join(env.dir, "certs")
    os.mkdir(watched)
    shutil.copy(env.pki.path("good-chain.crt"), os.path.join(watched, "good.pem"))
    node = env.stapled(config={"cert_dirs": [watched]})
    node.wait_ready()
    serial = env.pki.serial(extra(env, 1, ".crt"))
    t.ok(env.query(node, extra(env, 1, ".crt"), sha256=True).ok_good,
         "extra-1 learned by a SHA-256 CertID (issuer and origin known from good.pem)")
    e = node.entry(serial)
    t.ok(e and e["learned"], "listed as learned", e)
    shutil.copy(extra(env, 1), os.path.join(watched, "extra-1.pem"))
    st.poll(lambda: not node.entry(serial)["learned"], 20, interval=0.3,
            what="extra-1 adopted by the inventory")
    t.ok(True, "the file dropped in: now an inventory entry")
    t.eq(node.metric("stapled_learned_entries"), 0.0, "no learned entry left")
    # Web servers ask by SHA-1: adopted, the entry fetches that form too (once).
    st.poll(lambda: "sha1" in node.entry(serial)["forms"], 20, interval=0.3,
            what="the SHA-1 form fetched after adoption")
    t.eq(env.upstream.fetches(serial), 2, "one fetch per form, no more")
    t.ok(env.query(node, extra(env, 1, ".crt")).ok_good, "still served")
    os.unlink(os.path.join(watched, "extra-1.pem"))
    st.poll(lambda: node.entry(serial) is None, 20, interval=0.3,
            what="extra-1 dropped with its file")
    t.ok(True, "file removed: the entry goes like any inventory entry")


def case_sighup(t):
    env = t.env(upstream="python", extra_leaves=2)
    node = env.stapled(certificates=[env.pki.path("good-chain.crt")])
    node.wait_ready()
    good = env.pki.request_der("good")
    stop = threading.Event()
    stats = {"ok": 0, "fail": []}

    def client(keepalive):
        c = st.Conn(node.port) if keepalive else None
        while not stop.is_set():
            try:
                if not keepalive:
                    c = st.Conn(node.port)
                c.send(st.http_post_bytes(good))
                r = c.read_response()
                if r.status == 200 and st.ocsp_response_status(r.body) == 0:
                    stats["ok"] += 1
                else:
                    stats["fail"].append("%d %r" % (r.status, r.body[:10]))
                if not keepalive:
                    c.close()
            except Exception as e:  # noqa: BLE001 - every failure is reported
                stats["fail"].append(repr(e))
                if keepalive:
                    c = st.Conn(node.port)
            time.sleep(0.005)
        c.close()

    threads = [threading.Thread(target=client, args=(ka,)) for ka in (True, False, False)]
    for th in threads:
        th.start()
    try:
        st.poll(lambda: stats["ok"] >= 20, 15, what="client loop running")
        reloads0 = node.metric("stapled_reloads_total")
        cfg = dict(node.config)
        cfg["certificates"] = [env.pki.path("good-chain.crt"), extra(env, 1)]
        node.write_config(cfg)
        node.proc.kill(signal.SIGHUP)
        r = st.poll(lambda: (lambda r: r if r.ok_good else None)(
            env.query(node, extra(env, 1, ".crt"))), 20, interval=0.3,
            what="extra-1 served after SIGHUP")
        t.ok(r.ok_good, "certificate added to the config is served after SIGHUP")
        t.ok(node.metric("stapled_reloads_total") >= reloads0 + 1, "reload counted")

        # Second HUP: remove extra-1, add extra-2 (entries keyed by content).
        cfg["certificates"] = [env.pki.path("good-chain.crt"), extra(env, 2)]
        node.write_config(cfg)
        node.proc.kill(signal.SIGHUP)
        r = st.poll(lambda: (lambda r: r if r.ok_good else None)(
            env.query(node, extra(env, 2, ".crt"))), 20, interval=0.3,
            what="extra-2 served after the second SIGHUP")
        t.ok(r.ok_good, "second reload: extra-2 served")
        st.poll(lambda: node.metric("stapled_entries") == 2.0, 10,
                what="extra-1 dropped from entries")
        t.ok(True, "second reload: extra-1 dropped")

        # A broken config on HUP keeps the running one.
        with open(node.config_path, "w") as f:
            f.write("listen: [\nthis is: not: yaml\n")
        n0 = stats["ok"]
        node.proc.kill(signal.SIGHUP)
        st.poll(lambda: stats["ok"] >= n0 + 20, 15, what="requests after a bad reload")
        t.ok(node.proc.alive(), "bad config on SIGHUP: still running")
        t.ok(env.query(node, extra(env, 2, ".crt")).ok_good, "bad config: old inventory kept")
        n0 = stats["ok"]
        st.poll(lambda: stats["ok"] >= n0 + 20, 15, what="more requests after the reloads")
    finally:
        stop.set()
        for th in threads:
            th.join(20)
    t.ok(not stats["fail"], "no request failed during the reloads (%d ok, failures: %s)"
         % (stats["ok"], stats["fail"][:5]))


def case_output_files(t):
    env = t.env(upstream="python")
    site = os.path.join(env.dir, "site")
    os.mkdir(site)
    pem = os.path.join(site, "good.pem")
    shutil.copy(env.pki.path("good-chain.crt"), pem)
    nginx_file = os.path.join(env.dir, "nginx-revoked.der")
    node = env.stapled(config={
        "write_ocsp_files": True,
        "certificates": [pem, {"path": env.pki.path("revoked.crt"),
                               "issuer": env.pki.path("int.crt"),
                               "upstreams": [env.upstream.url],
                               "ocsp_file": nginx_file}]})
    node.wait_ready()
    for path, cert, status in ((pem + ".ocsp", "good", "good"),
                               (nginx_file, "revoked", "revoked")):
        st.poll(lambda: os.path.exists(path) and os.path.getsize(path) > 0, 10,
                what=path)
        with open(path, "rb") as f:
            r = env.check_der(f.read(), cert)
        t.ok(r.verify_ok and r.status == status, "%s holds a verified %s response"
             % (os.path.basename(path), status), r)
    t.eq(env.query(node, "revoked").status, "revoked",
         "certificate with explicit issuer and upstream: served")


def case_check_config(t):
    env = t.env(upstream=None)
    good_cfg = os.path.join(env.dir, "ok.yaml")
    with open(good_cfg, "w") as f:
        f.write(st.yaml_dump({"certificates": [env.pki.path("good-chain.crt")],
                              "refresh": {"window": [0.5, 0.75]}}) + "\n")
    r = st.run([t.stapled_exe, "--config", good_cfg, "--check-config"])
    t.eq(r.returncode, 0, "--check-config on a valid file: 0 (%s)" % r.stderr.decode()[-300:])
    bad = os.path.join(env.dir, "bad.yaml")
    with open(bad, "w") as f:
        f.write("refresh:\n  window: [0.9, 0.1]\nno_such_key: 1\n")
    r = st.run([t.stapled_exe, "--config", bad, "--check-config"])
    t.ok(r.returncode != 0 and r.stderr, "--check-config on a bad file fails with a message")
    r = st.run([t.stapled_exe, "--version"])
    t.ok(r.returncode == 0 and b"stapled" in (r.stdout + r.stderr), "--version")
    r = st.run([t.stapled_exe, "--help"])
    t.ok(r.returncode == 0 and b"--config" in (r.stdout + r.stderr), "--help")


if __name__ == "__main__":
    t = st.Test(__file__)
    t.run(case_watched_dir, case_learned_then_adopted, case_sighup, case_output_files, case_check_config)
