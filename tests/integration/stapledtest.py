# SPDX-License-Identifier: Apache-2.0
"""Harness for stapled integration tests: real processes on loopback.

Everything started here runs in its own process group and is stopped at exit (normal exit, an
exception, SIGTERM from meson's timeout, or SIGINT). Every wait is a bounded poll with a deadline.

A test file is a standalone script:

    import stapledtest as st
    t = st.Test(__file__)
    env = t.env(upstream="python")      # PKI + upstream + temp dir
    node = env.stapled(certificates=[env.pki.path("good-chain.crt")])
    node.wait_ready()
    r = env.query(node, "good")
    t.ok(r.status == "good", "good certificate is good")
    t.done()                            # exits 0 / 1, TAP output

Environment: STAPLED (path of the stapled binary), SRCDIR (source root), KEEP_TMP=1 to keep the
temporary directory for inspection.
"""

import atexit
import base64
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.error
import urllib.parse
import urllib.request

SRCDIR = os.environ.get("SRCDIR") or os.path.abspath(
    os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
MKPKI = os.path.join(SRCDIR, "tests", "pki", "mkpki.sh")
UPSTREAM = os.path.join(SRCDIR, "tests", "tools", "ocsp_upstream.py")
_procs = []


# --- processes ----------------------------------------------------------------------------------

class Proc:
    """A child in its own session (= process group), with output going to a log file."""

    def __init__(self, name, argv, logdir, cwd=None, env=None, stdout_pipe=False):
        self.name = name
        self.argv = argv
        self.log_path = os.path.join(logdir, name + ".log")
        self._log = open(self.log_path, "ab")
        self.p = subprocess.Popen(
            argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE if stdout_pipe else self._log, stderr=self._log,
            start_new_session=True)
        self.pid = self.p.pid
        _procs.append(self)

    def alive(self):
        return self.p.poll() is None

    def kill(self, sig):
        if self.alive():
            os.kill(self.pid, sig)

    def wait(self, timeout):
        """Returns the exit code, or None if it did not exit in time."""
        try:
            return self.p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, sig=signal.SIGTERM, timeout=10):
        """Stops the whole process group: sig, then SIGKILL after timeout. Returns the exit code."""
        if self.alive():
            try:
                os.killpg(self.pid, sig)
            except ProcessLookupError:
                pass
            if self.wait(timeout) is None:
                try:
                    os.killpg(self.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.wait(10)
        else:
            # The leader is gone; children of the group (e.g. openssl -multi) may remain.
            try:
                os.killpg(self.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        if self.p.stdout:
            self.p.stdout.close()
        self._log.close()
        return self.p.returncode

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""


def track(proc):
    """Stops proc (anything with .stop(timeout=...)) at exit and on SIGTERM/SIGINT, like the
    processes started with Proc: for daemons a test launches through a launcher."""
    if proc not in _procs:
        _procs.append(proc)


def untrack(proc):
    if proc in _procs:
        _procs.remove(proc)


def _stop_all():
    while _procs:
        p = _procs.pop()
        try:
            p.stop(timeout=3)
        except Exception:  # noqa: BLE001 - cleanup must go on
            pass


atexit.register(_stop_all)


def _on_signal(signum, _frame):
    _stop_all()
    sys.exit(128 + signum)


signal.signal(signal.SIGTERM, _on_signal)
signal.signal(signal.SIGINT, _on_signal)


_ports_given = set()


def _ephemeral_range():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            lo, hi = (int(x) for x in f.read().split())
            return lo, hi
    except (OSError, ValueError):
        return 32768, 60999


def _port_free(port):
    """Both TCP and UDP can bind port on 127.0.0.1 (gossip uses both on one port)."""
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
        with socket.socket(socket.AF_INET, kind) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                return False
    return True


def free_port():
    """A port free a moment ago on 127.0.0.1 for TCP and UDP, never handed out before by this
    process, and below the kernel's ephemeral range: a bind-probe on port 0 could return the
    same port twice before either user binds it (seen: a gossip port equal to the same node's
    HTTP port), and an outgoing connection may take an ephemeral port meanwhile."""
    lo, _ = _ephemeral_range()
    if lo > 12000:
        for _ in range(500):
            port = random.randint(10000, lo - 1)
            if port not in _ports_given and _port_free(port):
                _ports_given.add(port)
                return port
    while True:  # no room below the ephemeral range: the kernel's pick, still never twice
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _ports_given and _port_free(port):
            _ports_given.add(port)
            return port


def poll(pred, timeout, interval=0.05, what="condition"):
    """Calls pred() until it returns something truthy; returns it, or raises TimeoutError."""
    deadline = time.monotonic() + timeout
    last_exc = None
    while True:
        try:
            v = pred()
            if v:
                return v
        except Exception as e:  # noqa: BLE001 - the predicate may race with start-up
            last_exc = e
        if time.monotonic() >= deadline:
            raise TimeoutError("timed out after %.1fs waiting for %s%s" % (
                timeout, what, " (last error: %r)" % last_exc if last_exc else ""))
        time.sleep(interval)


def run(argv, timeout=30, **kw):
    return subprocess.run(argv, capture_output=True, timeout=timeout, **kw)


# --- PKI -----------------------------------------------------------------------------------------

class Pki:
    def __init__(self, dirpath, ocsp_url, extra_leaves=0):
        self.dir = dirpath
        self.ocsp_url = ocsp_url
        env = dict(os.environ, EXTRA_LEAVES=str(extra_leaves))
        r = run(["bash", MKPKI, dirpath, ocsp_url], timeout=120, env=env)
        if r.returncode != 0:
            raise RuntimeError("mkpki.sh failed: " + r.stderr.decode())

    def path(self, name):
        return os.path.join(self.dir, name)

    def cert(self, name):
        """'good' -> PKI/good.crt; a path is returned as is."""
        return name if os.sep in name else self.path(name + ".crt")

    def serial(self, name):
        out = run(["openssl", "x509", "-in", self.cert(name), "-noout", "-serial"]).stdout
        return out.decode().strip().split("=")[1].upper()

    def request_der(self, name, sha256=False):
        """The OCSP request DER for one certificate, without a nonce (as servers send it)."""
        out = os.path.join(self.dir, "req-%s%s.der" % (os.path.basename(name),
                                                       "-256" if sha256 else ""))
        argv = ["openssl", "ocsp", "-issuer", self.path("int.crt"), "-cert", self.cert(name),
                "-no_nonce", "-reqout", out]
        if sha256:
            argv.insert(2, "-sha256")
        r = run(argv)
        if r.returncode != 0:
            raise RuntimeError("openssl ocsp -reqout failed: " + r.stderr.decode())
        with open(out, "rb") as f:
            return f.read()

    def revoke(self, name):
        """Revokes a certificate and replaces the index with a new inode (TESTING.md §2.2.7)."""
        r = run(["openssl", "ca", "-batch", "-config", "ca.cnf", "-name", "int_ca",
                 "-revoke", self.cert(name), "-crl_reason", "keyCompromise"], cwd=self.dir)
        if r.returncode != 0:
            raise RuntimeError("revoke failed: " + r.stderr.decode())
        idx = self.path("intdb/index.txt")
        shutil.copy(idx, idx + ".tmp")
        os.replace(idx + ".tmp", idx)


# --- upstreams -----------------------------------------------------------------------------------

class PyUpstream:
    """tests/tools/ocsp_upstream.py: real answers by default, faults on demand, 127.0.0.1 only."""

    def __init__(self, env, port, validity_min=60, extra_args=()):
        self.port = port
        self.url = "http://127.0.0.1:%d/" % port
        self.log_path = os.path.join(env.dir, "upstream-%d.jsonl" % port)
        self.proc = Proc("upstream-%d" % port,
                         [sys.executable, UPSTREAM, "--pki", env.pki.dir, "--port", str(port),
                          "--validity-min", str(validity_min), "--log", self.log_path]
                         + list(extra_args), env.dir, stdout_pipe=True)
        line = _read_line(self.proc, 15)
        m = re.match(r"PORT (\d+)", line or "")
        if not m:
            raise RuntimeError("upstream did not start: %r\n%s" % (line, self.proc.log()))

    def _call(self, path, body=None):
        req = urllib.request.Request(self.url.rstrip("/") + path, data=body, method=(
            "POST" if body is not None else "GET"))
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.read()

    def set_mode(self, mode, **kw):
        kw["mode"] = mode
        self._call("/_control/mode", json.dumps(kw).encode())

    def stats(self):
        return json.loads(self._call("/_control/stats"))

    def fetches(self, serial=None):
        s = self.stats()
        return s["total"] if serial is None else s["by_serial"].get(serial, 0)

    def reset(self):
        self._call("/_control/reset", b"{}")

    def requests(self):
        try:
            with open(self.log_path) as f:
                return [json.loads(line) for line in f if line.strip()]
        except FileNotFoundError:
            return []

    def stop(self):
        self.proc.stop()


def _read_line(proc, timeout):
    """Reads one line of a piped stdout with a deadline (the child may die or stall)."""
    import selectors
    sel = selectors.DefaultSelector()
    sel.register(proc.p.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    buf = b""
    try:
        while time.monotonic() < deadline:
            if not sel.select(timeout=max(0.0, deadline - time.monotonic())):
                break
            ch = os.read(proc.p.stdout.fileno(), 1)
            if not ch:
                break
            if ch == b"\n":
                return buf.decode()
            buf += ch
    finally:
        sel.close()
    return None


class OpensslResponder:
    """`openssl ocsp -port` (TESTING.md §2.2): ready when its log shows ACCEPT, never probed by a
    bare TCP connect (that wedges it), always -ignore_err, stopped by process group. Note that it
    binds [::] (all interfaces) and answers HTTP/1.0 without keep-alive."""

    def __init__(self, env, port=0, validity_min=60, extra_args=()):
        self.proc = Proc("openssl-ocsp-%d" % (port or os.getpid()),
                         ["openssl", "ocsp", "-index", "intdb/index.txt", "-CA", "int.crt",
                          "-rsigner", "ocsp.crt", "-rkey", "ocsp.key", "-port", str(port),
                          "-nmin", str(validity_min), "-ignore_err", "-timeout", "5"]
                         + list(extra_args), env.dir, cwd=env.pki.dir)

        def accepted():
            m = re.search(r"ACCEPT \S*:(\d+) PID=\d+", self.proc.log())
            if not self.proc.alive():
                raise RuntimeError("openssl ocsp exited:\n" + self.proc.log())
            return m and int(m.group(1))

        self.port = poll(accepted, 15, what="openssl ocsp ACCEPT line")
        self.url = "http://127.0.0.1:%d/" % self.port

    def stop(self):
        self.proc.stop()


# --- stapled -------------------------------------------------------------------------------------

def yaml_dump(obj, indent=0):
    """Enough YAML for our configs: dicts, lists, strings, numbers, booleans."""
    pad = "  " * indent
    lines = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            if isinstance(v, (dict, list)) and v:
                if isinstance(v, list) and all(not isinstance(x, (dict, list)) for x in v):
                    lines.append("%s%s: [%s]" % (pad, k, ", ".join(_scalar(x) for x in v)))
                else:
                    lines.append("%s%s:" % (pad, k))
                    lines.append(yaml_dump(v, indent + 1))
            else:
                lines.append("%s%s: %s" % (pad, k, _scalar(v)))
    elif isinstance(obj, list):
        for v in obj:
            if isinstance(v, dict):
                sub = yaml_dump(v, indent + 1).split("\n")
                lines.append("%s- %s" % (pad, sub[0].strip()))
                lines.extend(sub[1:])
            else:
                lines.append("%s- %s" % (pad, _scalar(v)))
    return "\n".join(lines)


def _scalar(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return str(v)
    if v is None:
        return "null"
    if isinstance(v, (list, dict)) and not v:
        return "[]" if isinstance(v, list) else "{}"
    return json.dumps(str(v))  # a JSON string is a valid YAML double-quoted scalar


# stapled_upstream_fetches_total results that mean the upstream's answer was not taken.
FETCH_FAILED = ("invalid", "http_error", "network_error")


class Stapled:
    def __init__(self, env, config, name="stapled", extra_args=(), start=True, wrapper=()):
        self.env = env
        self.wrapper = list(wrapper)  # argv prefix that execs stapled (e.g. prlimit ... --)
        self.name = name
        self.exe = env.test.stapled_exe
        self.port = free_port()
        self.admin_port = free_port()
        self.url = "http://127.0.0.1:%d/" % self.port
        self.admin = "http://127.0.0.1:%d" % self.admin_port
        self.config = config
        self.config_path = os.path.join(env.dir, name + ".yaml")
        self.extra_args = list(extra_args)
        self.proc = None
        self.write_config()
        if start:
            self.start()

    def write_config(self, config=None):
        if config is not None:
            self.config = config
        tmp = self.config_path + ".tmp"
        with open(tmp, "w") as f:
            f.write(yaml_dump(self.config) + "\n")
        os.replace(tmp, self.config_path)

    def start(self):
        argv = self.wrapper + [self.exe, "--config", self.config_path,
                "--listen", "127.0.0.1:%d" % self.port,
                "--admin-listen", "127.0.0.1:%d" % self.admin_port] + self.extra_args
        self.proc = Proc(self.name, argv, self.env.dir)
        poll(lambda: self._check_alive() and self.http_admin("GET", "/healthz")[0] == 200, 15,
             what=self.name + " /healthz")

    def _check_alive(self):
        if not self.proc.alive():
            raise RuntimeError("%s exited with %s:\n%s" % (self.name, self.proc.p.returncode,
                                                         self.proc.log()[-4000:]))
        return True

    def http_admin(self, method, path, body=None, timeout=5):
        req = urllib.request.Request(self.admin + path, data=body, method=method)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def ready(self):
        return self.http_admin("GET", "/readyz")[0] == 200

    def wait_ready(self, timeout=20):
        poll(lambda: self._check_alive() and self.ready(), timeout, what=self.name + " /readyz")

    def metrics(self):
        """{(name, (("label","value"),...)): float} from /metrics."""
        code, body = self.http_admin("GET", "/metrics")
        if code != 200:
            raise RuntimeError("/metrics answered %d" % code)
        return parse_metrics(body.decode())

    def metric(self, name, **labels):
        """The sum of a metric over the series matching the given labels (0 when absent)."""
        total = 0.0
        for (n, lbls), v in self.metrics().items():
            d = dict(lbls)
            if n == name and all(d.get(k) == str(val) for k, val in labels.items()):
                total += v
        return total

    def entries(self):
        code, body = self.http_admin("GET", "/admin/entries")
        if code != 200:
            raise RuntimeError("/admin/entries answered %d" % code)
        return json.loads(body)["entries"]

    def entry(self, serial):
        serial = serial.lower().lstrip("0")
        for e in self.entries():
            if e.get("serial", "").lower().lstrip("0") == serial:
                return e
        return None

    def refresh(self):
        code, _ = self.http_admin("POST", "/admin/refresh", b"")
        if code != 200:
            raise RuntimeError("/admin/refresh answered %d" % code)

    def fetch_count(self, results=None):
        """Upstream fetches ended so far (stapled_upstream_fetches_total), all or of the given
        results (e.g. FETCH_FAILED)."""
        if results is None:
            return self.metric("stapled_upstream_fetches_total")
        return sum(self.metric("stapled_upstream_fetches_total", result=r) for r in results)

    def refresh_and_wait(self, what, timeout=30):
        """POST /admin/refresh, then waits until one fetch per entry has ended and none is in
        flight. Returns how many of them failed (FETCH_FAILED results)."""
        n = len(self.entries())
        before, failed0 = self.fetch_count(), self.fetch_count(FETCH_FAILED)
        self.refresh()
        poll(lambda: self.fetch_count() >= before + n
             and self.metric("stapled_upstream_fetches_in_flight") == 0, timeout, what=what)
        return self.fetch_count(FETCH_FAILED) - failed0

    def cluster_members(self):
        """The members in this node's gossip view (/admin/members); [] if it does not answer."""
        code, body = self.http_admin("GET", "/admin/members")
        return json.loads(body)["members"] if code == 200 else []

    def cluster_url(self):
        """The responder URL this node advertises to its cluster peers."""
        return next(m["http"] for m in self.cluster_members() if m["self"])

    def member_state(self, name):
        """alive, suspect, failed, left, or None when the member is not in the view."""
        return next((m["state"] for m in self.cluster_members() if m["name"] == name), None)

    def stop(self, sig=signal.SIGTERM, timeout=15):
        rc = self.proc.stop(sig, timeout)
        _procs.remove(self.proc) if self.proc in _procs else None
        return rc

    def restart(self):
        self.stop()
        self.start()


def parse_metrics(text):
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.match(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)', line)
        if not m:
            continue
        labels = tuple(sorted(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"',
                                         m.group(3) or "")))
        try:
            out[(m.group(1), labels)] = float(m.group(4))
        except ValueError:
            pass
    return out


# --- OCSP queries --------------------------------------------------------------------------------

class OcspResult:
    def __init__(self, rc, text, der):
        self.rc = rc
        self.text = text
        self.der = der
        m = re.search(r"^\S+: (good|revoked|unknown)\s*$", text, re.M)
        self.status = m.group(1) if m else None
        m = re.search(r"Responder Error: (\w+)", text)
        self.error = m.group(1) if m else None
        self.verify_ok = "Response verify OK" in text
        m = re.search(r"This Update: (.+)", text)
        self.this_update = m.group(1).strip() if m else None
        m = re.search(r"Next Update: (.+)", text)
        self.next_update = m.group(1).strip() if m else None
        self.warning = "WARNING" in text

    @property
    def ok_good(self):
        return self.status == "good" and self.verify_ok and not self.warning

    def __repr__(self):
        return "OcspResult(rc=%s status=%s error=%s verify=%s)\n%s" % (
            self.rc, self.status, self.error, self.verify_ok, self.text[-1500:])


def ocsp_response_status(der):
    """The OCSPResponseStatus byte of a response (0 successful, 1 malformed, 6 unauthorized)."""
    if len(der) >= 5 and der[0] == 0x30 and der[-3:-1] == b"\x0a\x01" and der[1] == 3:
        return der[-1]
    if len(der) >= 7 and der[0] == 0x30:
        i = 2 + (der[1] & 0x7F if der[1] & 0x80 else 0)
        if der[i:i + 2] == b"\x0a\x01":
            return der[i + 2]
    return None


class Env:
    """One test's world: a temp dir, a PKI, an upstream, and any stapled nodes."""

    def __init__(self, test, upstream="python", validity_min=60, extra_leaves=0,
                 upstream_args=()):
        self.test = test
        self.dir = tempfile.mkdtemp(prefix="stapled-it-%s-" % test.name)
        self.pki = None
        self.upstream = None
        up_port = free_port()
        self.pki = Pki(os.path.join(self.dir, "pki"), "http://127.0.0.1:%d/" % up_port,
                       extra_leaves)
        if upstream == "python":
            self.upstream = PyUpstream(self, up_port, validity_min, upstream_args)
        elif upstream == "openssl":
            self.upstream = OpensslResponder(self, up_port, validity_min, upstream_args)
        self.nodes = []
        self.extra_upstreams = []
        # Other processes of the test (web servers, gossip peers, agents): objects with .name and
        # .proc (.proc.stop(timeout=...), .proc.log()), stopped at cleanup, logs shown on failure.
        self.others = []

    def add_upstream(self, validity_min=60, extra_args=()):
        """One more tests/tools upstream on the same PKI (a second responder for failover
        tests), stopped with the environment."""
        up = PyUpstream(self, free_port(), validity_min, extra_args)
        self.extra_upstreams.append(up)
        return up

    def stapled(self, certificates=(), config=None, name=None, **kw):
        cfg = {
            "cache": {"dir": os.path.join(self.dir, (name or "stapled") + "-cache")},
            "refresh": {"window": [0.5, 0.75], "min_interval": "1s"},
            "fetch": {"backoff_base": "1s", "backoff_max": "5s", "timeout": "5s"},
            "log_level": "debug",
        }
        if certificates:
            cfg["certificates"] = list(certificates)
        for k, v in (config or {}).items():
            if isinstance(v, dict) and isinstance(cfg.get(k), dict):
                cfg[k] = dict(cfg[k], **v)
            else:
                cfg[k] = v
        node = Stapled(self, cfg, name=name or "stapled%d" % len(self.nodes), **kw)
        self.nodes.append(node)
        return node

    def query(self, node_or_url, cert, sha256=False, timeout=10, headers=()):
        """POST with `openssl ocsp` (HTTP/1.0, no nonce), verifying against root.crt."""
        url = node_or_url if isinstance(node_or_url, str) else node_or_url.url
        out = os.path.join(self.dir, "resp-%s-%d.der" % (os.path.basename(cert),
                                                         time.monotonic_ns()))
        argv = ["openssl", "ocsp", "-issuer", self.pki.path("int.crt"),
                "-cert", self.pki.cert(cert), "-url", url, "-CAfile", self.pki.path("root.crt"),
                "-no_nonce", "-resp_text", "-respout", out, "-timeout", str(timeout)]
        for h in headers:
            argv += ["-header", h]
        if sha256:
            argv.insert(2, "-sha256")
        r = run(argv, timeout=timeout + 10)
        der = b""
        if os.path.exists(out):
            with open(out, "rb") as f:
                der = f.read()
            os.unlink(out)
        return OcspResult(r.returncode, (r.stdout + r.stderr).decode("utf-8", "replace"), der)

    def check_der(self, der, cert, at=None, sha256=False):
        """Parses and verifies a response DER with `openssl ocsp -respin`."""
        path = os.path.join(self.dir, "check-%d.der" % time.monotonic_ns())
        with open(path, "wb") as f:
            f.write(der)
        argv = ["openssl", "ocsp", "-respin", path, "-issuer", self.pki.path("int.crt"),
                "-cert", self.pki.cert(cert), "-CAfile", self.pki.path("root.crt"), "-no_nonce",
                "-resp_text"]
        if at is not None:
            argv += ["-attime", str(int(at))]
        if sha256:  # the CertID looked up in the response must use the same hash
            argv.insert(2, "-sha256")
        r = run(argv)
        os.unlink(path)
        return OcspResult(r.returncode, (r.stdout + r.stderr).decode("utf-8", "replace"), der)

    def get_path(self, cert, sha256=False, prefix="/"):
        der = self.pki.request_der(cert, sha256)
        return prefix + urllib.parse.quote(base64.b64encode(der).decode(), safe="")

    def curl(self, url, headers=(), method=None, data_file=None, timeout=10):
        """curl -sS; returns (http_code, {lower-case header: value}, body bytes)."""
        tag = "%d" % time.monotonic_ns()
        hdr = os.path.join(self.dir, "curl-%s.hdr" % tag)
        body = os.path.join(self.dir, "curl-%s.body" % tag)
        argv = ["curl", "-sS", "-m", str(timeout), "-D", hdr, "-o", body, "-w", "%{http_code}"]
        for h in headers:
            argv += ["-H", h]
        if method:
            argv += ["-X", method] if method != "HEAD" else ["-I"]
        if data_file:
            argv += ["--data-binary", "@" + data_file, "-H",
                     "Content-Type: application/ocsp-request"]
        r = run(argv + [url], timeout=timeout + 10)
        code = int(r.stdout.decode() or 0) if r.stdout.decode().isdigit() else 0
        headers_out = {}
        try:
            with open(hdr, "rb") as f:
                for line in f.read().decode("latin-1").split("\r\n")[1:]:
                    k, sep, v = line.partition(":")
                    if sep:
                        headers_out[k.strip().lower()] = v.strip()
            os.unlink(hdr)
        except FileNotFoundError:
            pass
        data = b""
        if os.path.exists(body):
            with open(body, "rb") as f:
                data = f.read()
            os.unlink(body)
        return code, headers_out, data

    def cleanup(self, failed):
        for o in reversed(self.others):
            try:
                o.proc.stop(timeout=3)
            except Exception:  # noqa: BLE001 - cleanup must go on
                pass
        if failed or os.environ.get("KEEP_TMP"):
            for o in self.others:
                print("# --- %s log (tail) ---" % o.name)
                for line in o.proc.log()[-2500:].splitlines():
                    print("#   " + line)
        for n in self.nodes:
            if n.proc:
                n.stop()
        if self.upstream:
            self.upstream.stop()
        for up in getattr(self, "extra_upstreams", ()):
            up.stop()
        if failed or os.environ.get("KEEP_TMP"):
            print("# logs kept in %s" % self.dir)
            for n in self.nodes:
                if n.proc:
                    print("# --- %s log (tail) ---" % n.name)
                    for line in n.proc.log()[-3000:].splitlines():
                        print("#   " + line)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)


class BareEnv(Env):
    """A temporary directory for stapled nodes and other processes (gossip peers, agents): no
    PKI, no upstream."""

    def __init__(self, test):  # pylint: disable=super-init-not-called
        self.test = test
        self.dir = tempfile.mkdtemp(prefix="stapled-it-%s-" % test.name)
        self.pki = None
        self.upstream = None
        self.nodes = []
        self.extra_upstreams = []
        self.others = []


# --- raw HTTP ------------------------------------------------------------------------------------

class HttpResponse:
    def __init__(self, version, status, reason, headers, body):
        self.version, self.status, self.reason = version, status, reason
        self.headers = headers  # {lower-case name: value}
        self.body = body

    def __repr__(self):
        return "HttpResponse(%s %d %s, %r, %d bytes)" % (self.version, self.status, self.reason,
                                                          self.headers, len(self.body))


class Conn:
    """A raw TCP connection for keep-alive, pipelining and malformed-input tests."""

    def __init__(self, port, timeout=10):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""

    def send(self, data):
        self.s.sendall(data)

    def _fill(self):
        chunk = self.s.recv(65536)
        if not chunk:
            raise EOFError("connection closed")
        self.buf += chunk

    def read_response(self, head=False):
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        hdr, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = hdr.decode("latin-1").split("\r\n")
        version, status, *reason = lines[0].split(" ", 2)
        headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        n = 0 if head or status in ("204", "304") else int(headers.get("content-length", 0))
        while len(self.buf) < n:
            self._fill()
        body, self.buf = self.buf[:n], self.buf[n:]
        return HttpResponse(version, int(status), reason[0] if reason else "", headers, body)

    def is_closed(self, timeout=5):
        """True once the peer closed (EOF or reset) within timeout; False if data or silence."""
        self.s.settimeout(timeout)
        try:
            return self.s.recv(1) == b""
        except (ConnectionResetError, BrokenPipeError):
            return True
        except socket.timeout:
            return False

    def close(self):
        self.s.close()


def exchange(port, data, timeout=10):
    """One request on a new connection, one answer; a connection error or timeout is returned as
    status 0 with the error as the body, so that a check fails instead of aborting the case."""
    try:
        return _exchange(port, data, timeout)
    except (OSError, EOFError, ValueError) as e:
        return HttpResponse("", 0, "error", {}, repr(e).encode())


def _exchange(port, data, timeout=10):
    """One request on a new connection; reads one answer (Content-Length, or up to the close)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    deadline = time.monotonic() + timeout
    buf = b""
    try:
        s.sendall(data)
        while True:
            head_end = buf.find(b"\r\n\r\n")
            if head_end >= 0:
                m = re.search(r"(?im)^content-length:\s*(\d+)\s*$",
                              buf[:head_end].decode("latin-1"))
                if m and len(buf) >= head_end + 4 + int(m.group(1)):
                    break
            if time.monotonic() > deadline:
                raise TimeoutError("no complete answer within %ss" % timeout)
            s.settimeout(max(0.1, deadline - time.monotonic()))
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                break
            buf += chunk
    finally:
        s.close()
    head_end = buf.find(b"\r\n\r\n")
    if head_end < 0:
        raise EOFError("connection closed before a complete header (%r)" % buf[:200])
    lines = buf[:head_end].decode("latin-1").split("\r\n")
    version, status, *reason = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    body = buf[head_end + 4:]
    if "content-length" in headers:
        body = body[:int(headers["content-length"])]
    return HttpResponse(version, int(status), reason[0] if reason else "", headers, body)


def http_post_bytes(der, path="/", host="127.0.0.1", version="HTTP/1.1", extra=""):
    return ("POST %s %s\r\nHost: %s\r\nContent-Type: application/ocsp-request\r\n"
            "Content-Length: %d\r\n%s\r\n" % (path, version, host, len(der), extra)).encode() + der


def http_get_bytes(path, host="127.0.0.1", version="HTTP/1.1", extra=""):
    return ("GET %s %s\r\nHost: %s\r\n%s\r\n" % (path, version, host, extra)).encode()


def http(port, method, path, body=None, headers=None, timeout=10):
    """One request on a new connection (Connection: close)."""
    c = Conn(port, timeout)
    try:
        h = "".join("%s: %s\r\n" % kv for kv in (headers or {}).items())
        if body is not None:
            h += "Content-Length: %d\r\n" % len(body)
        c.send(("%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n%s\r\n"
                % (method, path, h)).encode() + (body or b""))
        return c.read_response(head=(method == "HEAD"))
    finally:
        c.close()


# --- TAP test runner -----------------------------------------------------------------------------

class Test:
    def __init__(self, file):
        self.name = os.path.splitext(os.path.basename(file))[0]
        self.n = 0
        self.failed = 0
        self.envs = []
        self.stapled_exe = os.environ.get("STAPLED") or os.path.join(SRCDIR, "build", "cmd",
                                                                     "stapled")
        if not os.access(self.stapled_exe, os.X_OK):
            print("1..0 # SKIP no stapled binary at %s (set STAPLED)" % self.stapled_exe)
            sys.exit(0)  # TAP: the plan says skipped; a non-zero status would be an error
        for tool in ("openssl", "curl"):
            if not shutil.which(tool):
                print("1..0 # SKIP %s not installed" % tool)
                sys.exit(0)

    def env(self, **kw):
        e = Env(self, **kw)
        self.envs.append(e)
        return e

    def ok(self, cond, desc, detail=None):
        self.n += 1
        if cond:
            print("ok %d - %s" % (self.n, desc), flush=True)
        else:
            self.failed += 1
            print("not ok %d - %s" % (self.n, desc), flush=True)
            if detail is not None:
                for line in str(detail).splitlines():
                    print("#   " + line)
        return bool(cond)

    def eq(self, got, want, desc):
        return self.ok(got == want, desc, "got:  %r\nwant: %r" % (got, want))

    def run(self, *cases):
        """Runs case(t) functions; an exception fails the case and the file, never hangs it."""
        for case in cases:
            print("# %s" % case.__name__, flush=True)
            try:
                case(self)
            except Exception:  # noqa: BLE001 - report and go on with the next case
                self.n += 1
                self.failed += 1
                print("not ok %d - %s raised" % (self.n, case.__name__))
                for line in traceback.format_exc().splitlines():
                    print("#   " + line)
            finally:
                for e in self.envs:
                    e.cleanup(self.failed > 0)
                self.envs = []
        self.done()

    def done(self):
        print("1..%d" % self.n)
        print("# %s: %d passed, %d failed" % (self.name, self.n - self.failed, self.failed))
        _stop_all()
        sys.exit(1 if self.failed or self.n == 0 else 0)
