#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""nginx 1.22 (Debian's) in file mode: `ssl_stapling_file` is read only when nginx starts or
reloads, so stapled writes the file (atomically, only when its bytes change) and runs the
output's reload command, at most once per command_interval.

Checked with curl --cert-status and gnutls-cli --ocsp (both verify the staple) and openssl
s_client -status: stapled from the first handshake; a revocation reaching nginx through the file
and the reload command; the reload rate-limited; a bad upstream (bad signature, expired, garbage,
down) never touching the file nor reloading nginx; stapled restarted with the upstream down
rewriting nothing; a failing command counted and retried."""

import json
import os
import time

import stapledtest as st
import webservers as ws


def read(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        return None


def outputs(node):
    return json.loads(node.http_admin("GET", "/admin/outputs")[1])["outputs"]


def written(node):
    return node.metric("stapled_output_files_total", output="nginx", result="written")


def commands(node, result="ok"):
    return node.metric("stapled_output_commands_total", output="nginx", result=result)


class Setup:
    """stapled (good and revoked certificates) writing ssl_stapling_file targets and reloading
    nginx; nginx started once the files are there."""

    def __init__(self, t, interval="2s", command=None):
        self.env = env = t.env()
        self.out = os.path.join(env.dir, "nginx-ocsp")  # made by stapled
        self.pid_file = os.path.join(env.dir, "nginx", "nginx.pid")
        self.files = {c: os.path.join(self.out, "%s-chain.der" % c) for c in ("good", "revoked")}
        self.node = env.stapled(
            certificates=[env.pki.path("good-chain.crt"), env.pki.path("revoked-chain.crt")],
            config={"outputs": [{
                "name": "nginx",
                "match": [env.pki.path("good-chain.crt"), env.pki.path("revoked-chain.crt")],
                "ocsp_file": self.out + "/{stem}.der",
                # As `systemctl try-reload-or-restart nginx` does: nothing (and success) while
                # nginx does not run.
                "command": command or 'if [ -f %s ]; then kill -HUP "$(cat %s)"; fi' % (
                    self.pid_file, self.pid_file),
                "command_interval": interval,
            }]})
        self.node.wait_ready()
        st.poll(lambda: all(read(f) for f in self.files.values()), 20,
                what="ssl_stapling_file targets written")
        # The files' creation runs the command once (nginx is not there yet): let it finish so
        # that the cases count only what they cause.
        if command is None:
            st.poll(lambda: (lambda c: not c["pending"] and not c["running"])(
                outputs(self.node)[0]["command"]), 20, what="the first command run over")
        self.commands_at_start = commands(self.node)
        self.nginx = ws.Nginx(env, [{"cert": c, "stapling_file": f}
                                    for c, f in self.files.items()])

    def port(self, cert):
        return self.nginx.port(cert)

    def wait_reloaded(self, old_workers):
        """nginx's reload is over: every worker it had before is gone (until then an old worker
        may still accept a handshake and staple the old response)."""
        st.poll(lambda: (lambda w: w and not (set(w) & old_workers))(self.nginx.workers()), 20,
                what="nginx's old workers gone")


def expect(t, s, cert, status, what, der=None):
    env, port, ca = s.env, s.port(cert), s.env.pki.path("root.crt")
    c = ws.check_curl(port, ca)
    g = ws.check_gnutls(port, ca, tmpdir=env.dir)
    o = ws.check_openssl(port, ca)
    chk = env.check_der(g.der, env.pki.cert(cert)) if g.stapled else None
    if status == "good":
        t.ok(c.ok, "%s: curl --cert-status accepts the staple" % what, c)
        t.ok(g.ok and g.stapled and chk.ok_good,
             "%s: gnutls-cli --ocsp verifies the staple; openssl ocsp: good" % what,
             "%r\n%r" % (g, chk))
    else:
        t.ok(c.rc == 91 and "revo" in c.text.lower(),
             "%s: curl --cert-status refuses the revoked staple" % what, c)
        t.ok(g.rc != 0 and g.stapled and "revoked" in g.text.lower(),
             "%s: gnutls-cli --ocsp reports the revocation" % what, g)
    t.ok(o.stapled and o.cert_status == status,
         "%s: openssl s_client -status shows %s (first handshake)" % (what, status), o)
    if der is not None:
        t.ok(g.der == der, "%s: the same response as before" % what)
    return g.der


def case_first_handshake_and_revoke(t):
    s = Setup(t)
    expect(t, s, "good", "good", "nginx started on stapled's file")
    expect(t, s, "revoked", "revoked", "revoked certificate's file")
    t.eq(commands(s.node), s.commands_at_start,
         "no reload since nginx started: nothing changed")

    s.env.pki.revoke("good")
    w0, c0 = written(s.node), commands(s.node)
    workers = set(s.nginx.workers())
    s.node.refresh_and_wait("refresh after revoking")
    st.poll(lambda: commands(s.node) > c0, 30, what="the reload command run")
    s.wait_reloaded(workers)
    t.ok(written(s.node) >= w0 + 1, "the new response written (%d files)"
         % (written(s.node) - w0))
    t.ok(s.env.check_der(read(s.files["good"]), s.env.pki.cert("good")).status == "revoked",
         "the ssl_stapling_file now holds the revoked response")
    st.poll(lambda: ws.check_openssl(s.port("good"), s.env.pki.path("root.crt")).cert_status
            == "revoked", 20, what="nginx stapling the revoked response")
    expect(t, s, "good", "revoked", "after stapled's reload command")


def case_reload_rate_limited(t):
    s = Setup(t, interval="6s")
    c0 = commands(s.node)
    time.sleep(1.1)  # a new second: the upstream's next answers have a new thisUpdate
    s.node.refresh_and_wait("first refresh")
    st.poll(lambda: commands(s.node) > c0, 30, what="first reload")
    c1 = commands(s.node)
    time.sleep(1.1)  # a new second: the upstream's next answers have a new thisUpdate
    w1 = written(s.node)
    s.node.refresh_and_wait("second refresh")
    st.poll(lambda: written(s.node) >= w1 + len(s.files), 10, what="second responses written")
    o = outputs(s.node)[0]["command"]
    t.ok(commands(s.node) == c1 and o["pending"] and o["due_in_ms"] > 0,
         "a change within command_interval waits (due in %d ms), no second reload yet"
         % o["due_in_ms"], o)
    workers = set(s.nginx.workers())
    st.poll(lambda: commands(s.node) > c1, 30, what="the deferred reload")
    s.wait_reloaded(workers)
    t.eq(commands(s.node), c1 + 1, "then exactly one more reload for both changed files")
    expect(t, s, "good", "good", "after the deferred reload")


def case_pending_reload_survives_stop(t):
    """A change still waiting out command_interval when stapled stops is not lost: the command
    runs as stapled stops (the file already holds the new bytes; no later write would trigger
    it, and nginx would keep the old response)."""
    s = Setup(t, interval="1h")
    time.sleep(1.1)  # a new second: a new thisUpdate
    w0, c0 = written(s.node), commands(s.node)
    s.node.refresh_and_wait("refresh")
    # Both files: a write still on its way when stapled stops would run the command once more.
    st.poll(lambda: written(s.node) >= w0 + len(s.files), 10, what="new responses written")
    o = outputs(s.node)[0]["command"]
    t.ok(commands(s.node) == c0 and o["pending"],
         "the reload waits for its interval (due in %d s)" % (o["due_in_ms"] // 1000), o)
    workers = set(s.nginx.workers())
    s.node.stop()
    s.wait_reloaded(workers)
    t.ok(True, "stapled stopped: the pending reload ran, nginx's workers were replaced")
    g = ws.check_gnutls(s.port("good"), s.env.pki.path("root.crt"), tmpdir=s.env.dir)
    t.ok(g.ok and g.der == read(s.files["good"]),
         "nginx staples the response stapled wrote last", g)


def case_upstream_bad(t):
    s = Setup(t)
    good = expect(t, s, "good", "good", "before the upstream turns bad")
    file0 = read(s.files["good"])
    for mode in ("badsig", "expired", "garbage", "down"):
        w0, c0 = written(s.node), commands(s.node)
        if mode == "down":
            s.env.upstream.stop()
        else:
            s.env.upstream.set_mode(mode)
        failed = s.node.refresh_and_wait("refresh, upstream " + mode)
        t.ok(failed >= 2, "upstream %s: refreshes failed (%d)" % (mode, failed))
        time.sleep(1)  # a write and a command would be under way by now
        t.ok(written(s.node) == w0 and commands(s.node) == c0,
             "upstream %s: no file written, no reload" % mode,
             "written %d -> %d, commands %d -> %d" % (w0, written(s.node), c0, commands(s.node)))
        t.ok(read(s.files["good"]) == file0, "upstream %s: the file holds the good response"
             % mode)
        s.nginx.reload()
        expect(t, s, "good", "good", "upstream %s, nginx reloaded anyway" % mode, der=good)


def case_restart_upstream_down(t):
    s = Setup(t)
    good = expect(t, s, "good", "good", "before the restart")
    file0 = read(s.files["good"])
    s.env.upstream.stop()
    s.node.restart()
    s.node.wait_ready()
    st.poll(lambda: s.node.metric("stapled_output_files_total", output="nginx",
                                  result="unchanged") >= 2, 20,
            what="both files found already up to date")
    t.ok(True, "stapled restarted with the upstream down: files already up to date")
    time.sleep(1)
    t.ok(written(s.node) == 0 and commands(s.node) == 0,  # counters of the new process
         "nothing rewritten, nginx not reloaded")
    t.ok(read(s.files["good"]) == file0, "the file is unchanged")
    s.nginx.restart()
    expect(t, s, "good", "good", "nginx restarted, stapled's cache from disk", der=good)


def case_failing_command_retried(t):
    s = Setup(t, interval="1s", command="exit 3")
    s.node.refresh_and_wait("refresh")
    st.poll(lambda: commands(s.node, "failed") >= 2, 30, what="the failing command retried")
    o = outputs(s.node)[0]["command"]
    t.ok(o["last_status"] == 3 and o["pending"],
         "a failing reload command is counted, its status kept (3) and retried", o)
    expect(t, s, "good", "good", "nginx still staples what it read at start")


def main():
    t = st.Test(__file__)
    ws.require(("gnutls-cli", "gnutls-bin"), ("curl", "curl"))
    if not ws.nginx_binary():
        print("1..0 # SKIP nginx not available")
        return
    t.run(case_first_handshake_and_revoke, case_reload_rate_limited,
          case_pending_reload_survives_stop, case_upstream_bad,
          case_restart_upstream_down, case_failing_command_retried)


if __name__ == "__main__":
    main()
