#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""stapled under systemd, without systemd: the test binds the notification socket itself (a
path, and an abstract @name) and checks what sd_notify(3) would tell the manager.

- READY=1 arrives once the listeners are open, with the CA down (a start must not depend on it),
  for a daemon started with the unit's own ExecStart= arguments;
- STATUS= lines carry the counts and follow them;
- SIGHUP: RELOADING=1 with MONOTONIC_USEC (CLOCK_MONOTONIC), then READY=1, also after a refused
  configuration; SIGTERM: STOPPING=1, exit 0;
- WATCHDOG=1 pings when WATCHDOG_USEC is set and WATCHDOG_PID is unset or ours; none when it names
  another process;
- every datagram comes from the main process (NotifyAccess=main);
- `meson install` to a DESTDIR installs the binary, man page, unit and configuration, and
  `systemd-analyze verify` accepts the installed unit (skipped without systemd-analyze)."""

import contextlib
import os
import re
import shlex
import shutil
import signal
import socket
import struct
import time
import urllib.error
import urllib.request

import stapledtest as st


class Msg:
    def __init__(self, pid, raw):
        self.pid = pid
        self.raw = raw
        self.fields = dict(line.split("=", 1) for line in raw.split("\n") if "=" in line)

    def __repr__(self):
        return "Msg(pid=%s, %r)" % (self.pid, self.raw)


class NotifySocket:
    """A datagram socket standing in for systemd's: records every message with its sender's pid
    (SCM_CREDENTIALS, as systemd checks NotifyAccess=)."""

    def __init__(self, name):
        self.name = name
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        self.s.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.s.bind("\0" + name[1:] if name.startswith("@") else name)
        self.s.setblocking(False)
        self.msgs = []
        self.cursor = 0

    def drain(self):
        while True:
            try:
                data, anc, _, _ = self.s.recvmsg(4096, socket.CMSG_SPACE(12))
            except BlockingIOError:
                return self.msgs
            pid = None
            for level, typ, cdata in anc:
                if level == socket.SOL_SOCKET and typ == socket.SCM_CREDENTIALS:
                    pid = struct.unpack("iII", cdata[:12])[0]
            self.msgs.append(Msg(pid, data.decode("utf-8", "replace")))

    def next(self, pred, timeout, what):
        """The first message after the cursor that pred accepts; the cursor moves past it."""
        def find():
            self.drain()
            for i in range(self.cursor, len(self.msgs)):
                if pred(self.msgs[i]):
                    self.cursor = i + 1
                    return self.msgs[i]
            return None
        try:
            return st.poll(find, timeout, what=what)
        except TimeoutError as e:
            raise TimeoutError("%s; received: %r" % (e, self.msgs)) from None

    def state_msgs(self):
        """Messages other than watchdog pings and bare STATUS lines."""
        return [m for m in self.drain() if set(m.fields) - {"STATUS", "WATCHDOG"}]

    def close(self):
        self.s.close()
        if not self.name.startswith("@"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.name)


@contextlib.contextmanager
def environ(**kw):
    """Variables for the processes started inside (the harness's Proc inherits os.environ)."""
    old = {k: os.environ.get(k) for k in kw}
    os.environ.update({k: v for k, v in kw.items() if v is not None})
    for k, v in kw.items():
        if v is None:
            os.environ.pop(k, None)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def no_manager_env():
    """None of the manager's variables leak in from whoever runs the tests."""
    return {"NOTIFY_SOCKET": None, "WATCHDOG_USEC": None, "WATCHDOG_PID": None}


def build_dir():
    """The meson build directory of $STAPLED (…/cmd/stapled), or None."""
    exe = os.path.realpath(os.environ.get("STAPLED", ""))
    d = os.path.dirname(os.path.dirname(exe))
    return d if os.path.exists(os.path.join(d, "meson-private")) else None


def exec_start(unit_text):
    m = re.search(r"^ExecStart=(.+)$", unit_text, re.M)
    return shlex.split(m.group(1)) if m else None


def admin_get(port, path):
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=5) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except OSError:
        return 0


class Other:
    """A process the harness stops at cleanup, showing its log when the test failed."""

    def __init__(self, proc):
        self.name = proc.name
        self.proc = proc


def bare_env(t):
    env = st.BareEnv(t)
    t.envs.append(env)
    return env


def start(env, name, argv, **variables):
    """stapled (or a wrapper) with the manager's variables, tracked by env."""
    with environ(**dict(no_manager_env(), **variables)):
        proc = st.Proc(name, argv, env.dir)
    env.others.append(Other(proc))
    return proc


def status_counts(msg):
    m = re.search(r"(\d+) certificates, (\d+) servable responses", msg.fields.get("STATUS", ""))
    return (int(m.group(1)), int(m.group(2))) if m else None


def case_ready_with_ca_down(t):
    """Started with the unit's ExecStart= arguments; READY=1 once listening, the CA down."""
    env = t.env()
    # The CA accepts and never answers: the first fetch cannot end before its 60 s timeout, so
    # READY=1 cannot be waiting for it.
    env.upstream.set_mode("hang")
    ns = NotifySocket(os.path.join(env.dir, "notify.sock"))
    port, admin = st.free_port(), st.free_port()
    cfg = os.path.join(env.dir, "stapled.yaml")
    with open(cfg, "w") as f:
        f.write(st.yaml_dump({
            "listen": ["127.0.0.1:%d" % port], "admin_listen": ["127.0.0.1:%d" % admin],
            "certificates": [env.pki.path("good-chain.crt")], "log_level": "debug",
            "fetch": {"timeout": "60s"},
        }) + "\n")
    cache = os.path.join(env.dir, "cache")

    argv = None
    bd = build_dir()
    unit = os.path.join(bd, "deploy", "systemd", "stapled.service") if bd else None
    if unit and os.path.exists(unit):
        with open(unit) as f:
            argv = exec_start(f.read())
    if argv:
        t.ok(os.path.basename(argv[0]) == "stapled" and "--config" in argv
             and "--cache-dir" in argv, "the unit runs stapled --config … --cache-dir …", argv)
        # The unit's arguments, its paths moved into the test's directory.
        argv = [t.stapled_exe] + argv[1:]
        argv[argv.index("--config") + 1] = cfg
        argv[argv.index("--cache-dir") + 1] = cache
    else:
        print("# no generated unit next to $STAPLED: using the same flags by hand")
        argv = [t.stapled_exe, "--config", cfg, "--cache-dir", cache]

    proc = start(env, "stapled-unit", argv, NOTIFY_SOCKET=ns.name)
    try:
        ready = ns.next(lambda m: "READY" in m.fields, 20, "READY=1")
        listening = admin_get(admin, "/healthz")
        fetching = admin_get(admin, "/readyz")
        t.eq(ready.fields.get("READY"), "1", "READY=1 arrives with the CA down")
        t.eq(listening, 200, "the listeners were open when READY=1 came")
        t.eq(fetching, 503, "while the first fetch still hangs (/readyz 503)")
        t.eq(ready.pid, proc.pid, "sent by the main process")
        t.eq(status_counts(ready), (1, 0), "READY=1 carries STATUS: 1 certificate, 0 served")
        t.ok(proc.alive(), "still running with the CA down")
        t.eq(ns.state_msgs()[0].raw, ready.raw, "nothing but READY=1 changed the state first")

        proc.kill(signal.SIGTERM)
        stopping = ns.next(lambda m: "STOPPING" in m.fields, 15, "STOPPING=1")
        t.eq(stopping.fields.get("STOPPING"), "1", "SIGTERM: STOPPING=1")
        t.eq(proc.wait(20), 0, "exit status 0")
        t.ok(all(m.pid == proc.pid for m in ns.drain()), "every message from the main process",
             ns.msgs)
    finally:
        ns.close()


def case_status_and_reload(t):
    env = t.env()
    ns = NotifySocket("@stapled-test-%d-%d" % (os.getpid(), time.monotonic_ns() % 1000000))
    try:
        with environ(**dict(no_manager_env(), NOTIFY_SOCKET=ns.name)):
            node = env.stapled(certificates=[env.pki.path("good-chain.crt")])
        ready = ns.next(lambda m: "READY" in m.fields, 20, "READY=1")
        t.eq(ready.pid, node.proc.pid, "abstract socket: READY=1 from the main process")

        # The fetch completes after READY=1; the STATUS line follows the counts.
        st.poll(lambda: env.query(node, "good").ok_good, 20, what="good served")
        status = ns.next(lambda m: status_counts(m) == (1, 1), 30, "STATUS with 1 servable")
        t.ok(set(status.fields) == {"STATUS"}, "the counts changed: a STATUS= line alone", status)

        # A reload: RELOADING=1 stamped with CLOCK_MONOTONIC (Python's monotonic clock), then
        # READY=1.
        before = time.monotonic_ns() // 1000
        node.proc.kill(signal.SIGHUP)
        rel = ns.next(lambda m: set(m.fields) - {"STATUS", "WATCHDOG"}, 15, "RELOADING=1")
        after = time.monotonic_ns() // 1000
        t.ok(rel.fields.get("RELOADING") == "1", "SIGHUP: RELOADING=1 first", rel)
        usec = int(rel.fields.get("MONOTONIC_USEC", "0"))
        t.ok(before <= usec <= after, "MONOTONIC_USEC is the reload's CLOCK_MONOTONIC time",
             "%d <= %d <= %d" % (before, usec, after))
        done = ns.next(lambda m: "READY" in m.fields, 15, "READY=1 after the reload")
        t.ok(done.fields.get("READY") == "1" and status_counts(done) == (1, 1)
             and not done.fields["STATUS"].startswith("reload failed"),
             "then READY=1 with the counts", done)

        # A configuration the reload refuses: still RELOADING=1 then READY=1, and STATUS says so.
        with open(node.config_path, "w") as f:
            f.write("listen: [\n")
        node.proc.kill(signal.SIGHUP)
        rel = ns.next(lambda m: "RELOADING" in m.fields, 15, "RELOADING=1 (bad file)")
        done = ns.next(lambda m: "READY" in m.fields, 15, "READY=1 (bad file)")
        t.ok(done.fields.get("STATUS", "").startswith("reload failed, configuration kept"),
             "refused reload: READY=1, STATUS says the configuration was kept", done)
        t.ok(env.query(node, "good").ok_good, "still serving")
        node.write_config()

        t.eq(node.stop(), 0, "SIGTERM: exit status 0")
        stopping = ns.next(lambda m: "STOPPING" in m.fields, 5, "STOPPING=1")
        t.eq(stopping.fields.get("STOPPING"), "1", "STOPPING=1 before exiting")
        t.ok(all(m.pid == node.proc.pid for m in ns.drain()), "all from the main process")
        t.eq([m for m in ns.msgs if "WATCHDOG" in m.fields], [], "no watchdog asked: no pings")
    finally:
        ns.close()


def case_watchdog(t):
    env = bare_env(t)
    ns = NotifySocket(os.path.join(env.dir, "wd.sock"))
    try:
        # WATCHDOG_PID names the daemon itself: sh exports its own pid, then becomes stapled.
        port, admin = st.free_port(), st.free_port()
        argv = ["/bin/sh", "-c", 'WATCHDOG_PID=$$; export WATCHDOG_PID; exec "$0" "$@"',
                t.stapled_exe, "--listen", "127.0.0.1:%d" % port,
                "--admin-listen", "127.0.0.1:%d" % admin]
        proc = start(env, "stapled-wd", argv, NOTIFY_SOCKET=ns.name, WATCHDOG_USEC="300000")
        ns.next(lambda m: "READY" in m.fields, 20, "READY=1")
        pings = [ns.next(lambda m: "WATCHDOG" in m.fields, 10, "WATCHDOG=1 #%d" % i)
                 for i in range(3)]
        t.ok(all(p.raw == "WATCHDOG=1" and p.pid == proc.pid for p in pings),
             "WATCHDOG_PID is ours: WATCHDOG=1 pings from the main process", pings)
        t.ok(re.search(r"watchdog: pinging every 150 ms", proc.log()),
             "every half WATCHDOG_USEC", proc.log()[-2000:])
        proc.kill(signal.SIGTERM)
        t.eq(proc.wait(20), 0, "exit status 0 (the watchdog timer closed with the rest)")

        # WATCHDOG_USEC without WATCHDOG_PID: ours too.
        with environ(**dict(no_manager_env(), NOTIFY_SOCKET=ns.name, WATCHDOG_USEC="300000")):
            node = env.stapled(name="unset-pid")
        ns.next(lambda m: "READY" in m.fields and m.pid == node.proc.pid, 20, "READY=1")
        ping = ns.next(lambda m: "WATCHDOG" in m.fields, 10, "WATCHDOG=1")
        t.eq(ping.pid, node.proc.pid, "WATCHDOG_PID unset: pings too")
        node.stop()

        # Another process's watchdog (a parent's, leaked into the environment): not ours.
        with environ(**dict(no_manager_env(), NOTIFY_SOCKET=ns.name, WATCHDOG_USEC="300000",
                            WATCHDOG_PID=str(os.getpid()))):
            other = env.stapled(name="other-pid")
        ns.next(lambda m: "READY" in m.fields and m.pid == other.proc.pid, 20, "READY=1")
        # Six ping intervals of silence, then the stop closes the window.
        time.sleep(0.9)
        other.stop()
        ns.next(lambda m: "STOPPING" in m.fields and m.pid == other.proc.pid, 5, "STOPPING=1")
        t.eq([m for m in ns.msgs if m.pid == other.proc.pid and "WATCHDOG" in m.fields], [],
             "WATCHDOG_PID names another process: no pings")
        t.ok("names another process" in other.proc.log(), "and the log says why")
    finally:
        ns.close()


def case_install_and_verify(t):
    bd = build_dir()
    if not bd or not shutil.which("meson"):
        t.ok(True, "meson install # SKIP no meson, or $STAPLED not in a meson build directory")
        return
    env = bare_env(t)
    dest = os.path.join(env.dir, "destdir")
    r = st.run(["meson", "install", "-C", bd, "--no-rebuild", "--destdir", dest,
                "--tags", "runtime,man,doc"], timeout=120)
    if not t.eq(r.returncode, 0, "meson install --destdir"):
        print("# " + (r.stdout + r.stderr).decode()[-2000:].replace("\n", "\n# "))
        return
    files = sorted(os.path.relpath(os.path.join(d, f), dest)
                   for d, _, fs in os.walk(dest) for f in fs)
    print("# installed: " + " ".join(files))
    units = [f for f in files if f.endswith("systemd/system/stapled.service")]
    mans = [f for f in files if f.endswith("man8/stapled.8")]
    bins = [f for f in files if re.search(r"s?bin/stapled$", f)]
    examples = [f for f in files if f.endswith("doc/stapled/stapled.example.yaml")]
    configs = [f for f in files if f.endswith("stapled/stapled.yaml")]
    t.ok(len(units) == 1 and len(mans) == 1 and len(bins) == 1 and len(examples) == 1
         and len(configs) == 1, "binary, man page, unit, example and configuration installed",
         files)
    if not units:
        return
    unit_path = os.path.join(dest, units[0])
    with open(unit_path) as f:
        unit = f.read()
    for want in ("Type=notify\n", "NotifyAccess=main", "ExecReload=/bin/kill -HUP $MAINPID",
                 "Restart=on-failure", "DynamicUser=yes", "StateDirectory=stapled",
                 "ProtectSystem=strict", "NoNewPrivileges=yes", "CapabilityBoundingSet=\n",
                 "SystemCallFilter=@system-service", "WatchdogSec="):
        t.ok(want in unit, "the unit has %s" % want.strip())
    argv = exec_start(unit)
    exe = dest + argv[0]
    config = argv[argv.index("--config") + 1]
    t.ok("/" + bins[0] == argv[0] and os.access(exe, os.X_OK),
         "ExecStart= names the installed binary", argv)
    t.eq("/" + configs[0], config, "ExecStart= reads the installed configuration")
    # ExecReload='s check, run on the installed files: it passes, and fails on a broken file.
    checks = [shlex.split(line) for line in re.findall(r"^ExecReload=(.+)$", unit, re.M)]
    check_argv = next((a for a in checks if "--check-config" in a), None)
    t.ok(check_argv and checks[-1][0] == "/bin/kill", "ExecReload= checks the file, then signals",
         checks)
    if check_argv:
        check_argv = [dest + a if a in (argv[0], config) else a for a in check_argv]
        r = st.run(check_argv)
        t.eq(r.returncode, 0, "the installed binary accepts the installed configuration")
        broken = os.path.join(env.dir, "broken.yaml")
        with open(broken, "w") as f:
            f.write("listen: [\n")
        r = st.run([broken if a == dest + config else a for a in check_argv])
        t.ok(r.returncode != 0 and b"broken.yaml" in r.stderr,
             "a broken file fails the reload with the reason", r.stderr)

    # A second install keeps an edited configuration.
    with open(dest + config, "a") as f:
        f.write("# edited\n")
    r = st.run(["meson", "install", "-C", bd, "--no-rebuild", "--destdir", dest,
                "--tags", "runtime"], timeout=120)
    with open(dest + config) as f:
        t.ok(r.returncode == 0 and f.read().endswith("# edited\n"),
             "reinstalling keeps the existing configuration")

    if not shutil.which("systemd-analyze"):
        t.ok(True, "systemd-analyze verify # SKIP systemd-analyze not installed")
        return
    # verify checks that ExecStart= is executable and that man:stapled(8) opens: point both
    # into the DESTDIR. Anything it prints (an unknown key is only a warning) fails the check.
    check = os.path.join(env.dir, "stapled.service")
    in_dest = re.sub(r"^(Exec\w+=)" + re.escape(argv[0]) + " ", lambda m: m.group(1) + exe + " ",
                     unit, flags=re.M)
    with open(check, "w") as f:
        f.write(in_dest)
    mandir = os.path.join(dest, os.path.dirname(os.path.dirname(mans[0])))
    r = st.run(["systemd-analyze", "verify", check], env=dict(os.environ, MANPATH=mandir),
               timeout=60)
    out = (r.stdout + r.stderr).decode()
    t.ok(r.returncode == 0 and not out.strip(), "systemd-analyze verify: no complaint", out)
    # The check can fail: a misspelt key is reported.
    with open(check, "w") as f:
        f.write(in_dest.replace("NoNewPrivileges=", "NoNewPrivilege="))
    r = st.run(["systemd-analyze", "verify", check], env=dict(os.environ, MANPATH=mandir),
               timeout=60)
    t.ok(b"NoNewPrivilege" in r.stdout + r.stderr, "a misspelt key would be reported")

    r = st.run(["systemd-analyze", "security", "--offline=yes", "--no-pager", unit_path],
               timeout=60)
    m = re.search(r"Overall exposure level for \S+: ([0-9.]+) (\w+)", r.stdout.decode())
    if m:
        print("# systemd-analyze security: exposure %s %s" % (m.group(1), m.group(2)))
        t.ok(float(m.group(1)) < 2.0, "systemd-analyze security: exposure below 2.0",
             m.group(0))


t = st.Test(__file__)
t.run(case_ready_with_ca_down, case_status_and_reload, case_watchdog, case_install_and_verify)
