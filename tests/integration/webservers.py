# SPDX-License-Identifier: Apache-2.0
"""Real web servers in front of stapled: Apache httpd 2.4, nginx 1.22 and HAProxy 2.6 as Debian
ships them, plus the TLS clients that check what they staple (curl, gnutls-cli, openssl).

Each server runs daemonised, on free 127.0.0.1 ports, with its configuration, pid file and error
log in a directory of the test's environment (env.dir). It is registered twice for cleanup: with
stapledtest's process list (stopped at exit, on SIGTERM from meson and on SIGINT) and with the
environment (stopped when the test case ends, even when it raised; its error log is shown when the
case failed or KEEP_TMP=1). Stopping signals the pid from the server's own pid file and waits
until that process is gone; whatever of the server's session is left gets SIGKILL.

Behaviour these servers show, and that the tests rely on, is described in TESTING.md §3:
Apache fetches inside the handshake and staples anything (it verifies nothing), nginx staples
from the second handshake on and only a verified "good" response, HAProxy never fetches.

    import webservers as ws
    ws.require(("apache2", "apache2"), ("curl", "curl"))      # or "1..0 # SKIP" and exit 0
    ap = ws.Apache(env, ["good", "revoked"], node.url)
    r = ws.check_curl(ap.port("good"), env.pki.path("root.crt"))
"""

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time

import stapledtest as st

CLIENT_TIMEOUT = 20  # seconds for one TLS client run (slow under ASan, never reached normally)


# --- installing what a test needs ----------------------------------------------------------------

def _which(binary):
    return shutil.which(binary) or next(
        (p for p in (os.path.join(d, binary) for d in ("/usr/sbin", "/sbin"))
         if os.access(p, os.X_OK)), None)


def ensure_installed(binary, package):
    """The path of binary, installing Debian's package when it is missing (root only, no
    recommends, `apt-get update` only when a plain install fails). None if it is still missing."""
    path = _which(binary)
    if path or os.geteuid() != 0 or not shutil.which("apt-get"):
        return path
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", package]
    for argv in ([install], [["apt-get", "update", "-q"], install]):
        try:
            for a in argv:
                subprocess.run(a, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, timeout=600, check=False)
        except (OSError, subprocess.TimeoutExpired):
            pass
        path = _which(binary)
        if path:
            return path
    return None


def require(*pairs):
    """ensure_installed() for each (binary, package); prints a TAP skip plan and exits 0 when one
    is still missing (meson counts exit 77 of a TAP test as an error). Call before any output."""
    for binary, package in pairs:
        if not ensure_installed(binary, package):
            print("1..0 # SKIP %s not available (package %s)" % (binary, package))
            sys.exit(0)


def nginx_binary():
    """Any nginx will do: nginx-light is only what gets installed when there is none."""
    return ensure_installed("nginx", "nginx-light")


# --- daemonised processes ------------------------------------------------------------------------

def _proc_stat(pid):
    """(state, ppid, session id) of a process from /proc, or None when it is gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            data = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name is in parentheses and may contain anything: split after the last ')'.
    fields = data[data.rindex(")") + 2:].split()
    return fields[0], int(fields[1]), int(fields[3])


def pid_alive(pid):
    s = _proc_stat(pid)
    return s is not None and s[0] not in ("Z", "X")


def children(pid):
    """Live processes whose parent is pid."""
    out = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            s = _proc_stat(int(name))
            if s and s[1] == pid and s[0] not in ("Z", "X"):
                out.append(int(name))
    return sorted(out)


def _session(sid):
    out = []
    for name in os.listdir("/proc"):
        if name.isdigit() and int(name) != os.getpid():
            s = _proc_stat(int(name))
            if s and s[2] == sid and s[0] not in ("Z", "X"):
                out.append(int(name))
    return out


def _become_subreaper():
    """Daemons fork away from their launcher and are re-parented: with this process as a child
    subreaper (Linux) they come to us, and stop() reaps them instead of leaving zombies under a
    container's init that may never reap."""
    try:
        import ctypes  # pylint: disable=import-outside-toplevel
        ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        pass


def _reap(pid):
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:  # not ours (no subreaper) or already reaped
        pass


class Daemon:
    """A server that forks into the background and writes a pid file. Looks enough like
    stapledtest.Proc (stop, alive, log, name, proc) to sit in its process list and in the
    cleanup of an environment."""

    def __init__(self, name, run_dir, pid_file, log_path, stop_signal=signal.SIGTERM):
        self.name = name
        self.run_dir = run_dir
        self.pid_file = pid_file
        self.log_path = log_path
        self.launch_log = os.path.join(run_dir, "launch.log")
        self.stop_signal = stop_signal
        self.pid = None
        self.proc = self  # BareEnv.others-style access: o.proc.stop(), o.proc.log()

    def launch(self, argv, env=None, timeout=30):
        """Runs the launcher (which forks the daemon and exits) and waits for a live pid in the
        pid file. The launcher's output goes to a file, never a pipe: a daemon keeping the pipe
        open would make us wait for its exit."""
        if self.pid is not None and pid_alive(self.pid):
            raise RuntimeError("%s is already running (pid %d)" % (self.name, self.pid))
        try:
            os.unlink(self.pid_file)
        except FileNotFoundError:
            pass
        _become_subreaper()
        with open(self.launch_log, "ab") as out:
            p = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=out)
            try:
                rc = p.wait(timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)
                raise RuntimeError("%s: launcher did not return in %ds" % (self.name, timeout))
        if rc != 0:
            raise RuntimeError("%s: %s exited %d\n%s" % (self.name, argv[0], rc, self.log()))
        st.track(self)
        try:
            self.pid = st.poll(self._pid_from_file, timeout, what=self.name + " pid file")
        except TimeoutError:
            raise RuntimeError("%s wrote no pid file\n%s" % (self.name, self.log()))
        return self.pid

    def _pid_from_file(self):
        try:
            with open(self.pid_file) as f:
                pid = int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            return None
        return pid if pid_alive(pid) else None

    def alive(self):
        return self.pid is not None and pid_alive(self.pid)

    def signal(self, sig):
        if self.pid is not None:
            os.kill(self.pid, sig)

    def stop(self, sig=None, timeout=15):
        """Signals the pid and waits until it is gone, then SIGKILLs what is left of its session
        (daemons call setsid(), so the session id is the pid). Idempotent; returns None."""
        pid, self.pid = self.pid, None
        st.untrack(self)
        if pid is None:
            return None
        try:
            os.kill(pid, sig or self.stop_signal)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + timeout
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if pid_alive(pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for _ in range(100):
            rest = [p for p in _session(pid) if p != pid] + ([pid] if pid_alive(pid) else [])
            if not rest:
                break
            for p in rest:
                try:
                    os.kill(p, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.05)
        _reap(pid)
        return None

    def log(self):
        out = ""
        for path in dict.fromkeys(p for p in (self.launch_log, self.log_path) if p):
            try:
                with open(path, "rb") as f:
                    out += f.read().decode("utf-8", "replace")
            except OSError:
                pass
        return out


def _attach(env, server):
    """Stops server when env is cleaned up (end of the test case, also after an exception), and
    shows its log first when the case failed."""
    server.proc = server.daemon
    env.others.append(server)


def _run_dir(env, name):
    """A directory for one server in env.dir, readable by the servers' unprivileged workers
    (mkdtemp makes env.dir 0700)."""
    os.chmod(env.dir, 0o755)
    if env.pki is not None:
        os.chmod(env.pki.dir, 0o755)
    d = os.path.join(env.dir, name)
    os.makedirs(d, exist_ok=True)
    os.chmod(d, 0o755)
    return d


def cert_files(pki, cert):
    """(chain, key, leaf) paths for a PKI certificate name: "good", "revoked", "muststaple",
    "unknown", or "extra-N" (EXTRA_LEAVES, which share one key)."""
    m = re.match(r"^extra-(\d+)$", cert)
    if m:
        d = os.path.join(pki.dir, "extra")
        return (os.path.join(d, cert + "-chain.crt"), os.path.join(d, "extra.key"),
                os.path.join(d, cert + ".crt"))
    return pki.path(cert + "-chain.crt"), pki.path(cert + ".key"), pki.path(cert + ".crt")


def _write(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


# --- Apache httpd 2.4 ----------------------------------------------------------------------------

# Apache cannot take values on its command line (-D only defines names), so every value comes from
# the environment as ${WS_...}; only the number of virtual hosts shapes the text.
APACHE_CONF = """\
# Apache httpd 2.4 stapling through stapled (tests/integration/webservers.py).
ServerName localhost
LoadModule mpm_event_module     /usr/lib/apache2/modules/mod_mpm_event.so
LoadModule authz_core_module    /usr/lib/apache2/modules/mod_authz_core.so
LoadModule dir_module           /usr/lib/apache2/modules/mod_dir.so
LoadModule socache_shmcb_module /usr/lib/apache2/modules/mod_socache_shmcb.so
LoadModule ssl_module           /usr/lib/apache2/modules/mod_ssl.so

User www-data
Group www-data
PidFile           ${WS_RUN}/apache.pid
DefaultRuntimeDir ${WS_RUN}
ErrorLog          ${WS_RUN}/error.log
LogLevel          warn ssl:info
DocumentRoot      ${WS_RUN}/htdocs
DirectoryIndex    index.html

# Small and quick to stop: one child process is plenty for a test.
StartServers        1
ServerLimit         2
ThreadsPerChild     8
MaxRequestWorkers   16
MinSpareThreads     1
MaxSpareThreads     16
GracefulShutdownTimeout 3

# Stapling: the cache lives in shared memory; restart() deletes its file to empty it.
SSLStaplingCache                 shmcb:${WS_RUN}/ssl_stapling(128000)
SSLStaplingResponderTimeout      ${WS_RESPONDER_TIMEOUT}
SSLStaplingReturnResponderErrors on
SSLStaplingFakeTryLater          off
SSLStaplingStandardCacheTimeout  ${WS_CACHE_TIMEOUT}
SSLStaplingErrorCacheTimeout     ${WS_ERROR_CACHE_TIMEOUT}
"""

# mode "responder": stapled is the OCSP responder (the certificate's AIA URL is ignored).
# mode "proxy": Apache asks the AIA URL, through stapled as its HTTP proxy (absolute-form URI).
APACHE_MODE = {
    "responder": "SSLStaplingForceURL ${WS_OCSP_URL}",
    "proxy": "SSLOCSPProxyURL ${WS_OCSP_URL}",
}

APACHE_VHOST = """
# {name}
Listen 127.0.0.1:${{WS_PORT_{i}}}
<VirtualHost 127.0.0.1:${{WS_PORT_{i}}}>
    SSLEngine             on
    SSLCertificateFile    ${{WS_CHAIN_{i}}}
    SSLCertificateKeyFile ${{WS_KEY_{i}}}
    SSLUseStapling        on
    {mode_line}
</VirtualHost>
"""


class Apache:
    """Apache httpd with one TLS virtual host per certificate, each on its own port, stapling
    through stapled at url. vhosts: certificate names (see cert_files)."""

    def __init__(self, env, vhosts, url, mode="responder", cache_timeout=2,
                 error_cache_timeout=2, responder_timeout=5, name="apache", start=True):
        if mode not in APACHE_MODE:
            raise ValueError("mode must be one of %s" % sorted(APACHE_MODE))
        self.exe = _which("apache2")
        self.env = env
        self.name = name
        self.mode = mode
        self.url = url
        self.run = _run_dir(env, name)
        self.conf = os.path.join(self.run, "httpd.conf")
        self.vhosts = list(vhosts)
        self.ports = {v: st.free_port() for v in self.vhosts}
        self.daemon = Daemon(name, self.run, os.path.join(self.run, "apache.pid"),
                             os.path.join(self.run, "error.log"))
        htdocs = os.path.join(self.run, "htdocs")
        os.makedirs(htdocs, exist_ok=True)
        with open(os.path.join(htdocs, "index.html"), "w") as f:
            f.write("hello\n")
        for p in (htdocs, os.path.join(htdocs, "index.html")):
            os.chmod(p, 0o755 if os.path.isdir(p) else 0o644)
        if os.geteuid() == 0:  # Apache's children run as www-data
            shutil.chown(self.run, "www-data", "www-data")
        self.environ = dict(os.environ, WS_RUN=self.run, WS_OCSP_URL=url,
                            WS_CACHE_TIMEOUT=str(int(cache_timeout)),
                            WS_ERROR_CACHE_TIMEOUT=str(int(error_cache_timeout)),
                            WS_RESPONDER_TIMEOUT=str(int(responder_timeout)))
        text = APACHE_CONF
        for i, v in enumerate(self.vhosts):
            chain, key, _ = cert_files(env.pki, v)
            self.environ.update({"WS_PORT_%d" % i: str(self.ports[v]),
                                 "WS_CHAIN_%d" % i: chain, "WS_KEY_%d" % i: key})
            text += APACHE_VHOST.format(name=v, i=i, mode_line=APACHE_MODE[mode])
        _write(self.conf, text)
        _attach(env, self)
        if start:
            self.start()

    def port(self, vhost):
        return self.ports[vhost]

    def start(self):
        r = st.run([self.exe, "-f", self.conf, "-t"], env=self.environ)
        if r.returncode != 0:
            raise RuntimeError("apache2 -t failed:\n" + (r.stdout + r.stderr).decode())
        # The listeners are open before the pid file is written; a handshake arriving before
        # the child process runs waits in the backlog.
        self.daemon.launch([self.exe, "-f", self.conf, "-k", "start"], env=self.environ)
        return self

    @property
    def pid(self):
        return self.daemon.pid

    def alive(self):
        return self.daemon.alive()

    def stop(self, sig=None, timeout=15):
        return self.daemon.stop(sig, timeout)

    def clear_cache(self):
        """Deletes the shmcb stapling cache file(s); only takes effect with a stopped server."""
        for f in os.listdir(self.run):
            if f.startswith("ssl_stapling"):
                os.unlink(os.path.join(self.run, f))

    def restart(self):
        """A full stop and start with the stapling cache emptied (TESTING.md §3.1): the next
        handshake on each vhost fetches from stapled again."""
        self.stop()
        self.clear_cache()
        self.start()

    def log(self):
        return self.daemon.log()


# --- nginx 1.22 ----------------------------------------------------------------------------------

# nginx expands nothing, so values are substituted here (@NAME@ placeholders).
NGINX_CONF = """\
# nginx stapling through stapled (tests/integration/webservers.py).
daemon on;
master_process on;
worker_processes 1;            # the staple is per worker: one makes tests deterministic
user root root;
pid @RUN@/nginx.pid;
error_log @RUN@/error.log info;
events { worker_connections 64; }

http {
    access_log off;
@TEMP_PATHS@
    ssl_trusted_certificate @CA_CHAIN@;    # int + root, for ssl_stapling_verify
    ssl_stapling on;
    ssl_stapling_verify on;
@SERVERS@
}
"""

NGINX_SERVER = """
    server {                    # @NAME@
        listen 127.0.0.1:@PORT@ ssl;
        server_name localhost;
        ssl_certificate     @CHAIN@;
        ssl_certificate_key @KEY@;
        @STAPLING@
        location / { return 200 "hello\\n"; }
    }
"""

_NGINX_TEMP = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")


def _nginx_temp_paths(exe, run):
    """Temp paths inside run (Debian's compiled-in ones are under /var/lib/nginx), only for the
    modules this nginx has: an unknown directive is a fatal configuration error."""
    try:
        built = st.run([exe, "-V"]).stderr.decode()
    except (OSError, subprocess.TimeoutExpired):
        built = ""
    lines = []
    for m in _NGINX_TEMP:
        if m != "client_body" and "--without-http_%s_module" % m in built:
            continue
        d = os.path.join(run, "tmp", m)
        os.makedirs(d, exist_ok=True)
        lines.append("    %s_temp_path %s;" % (m, d))
    return "\n".join(lines)


class Nginx:
    """nginx with one TLS server per entry of servers, each on its own port. An entry is a dict:
    {"cert": name, "responder": url} (ssl_stapling_responder) or {"cert": name,
    "stapling_file": path} (ssl_stapling_file); "name" defaults to the certificate name."""

    def __init__(self, env, servers, name="nginx", start=True):
        self.exe = nginx_binary()
        self.env = env
        self.name = name
        self.run = _run_dir(env, name)
        self.conf = os.path.join(self.run, "nginx.conf")
        self.servers = [dict(s) for s in servers]
        self.ports = {}
        blocks = []
        for s in self.servers:
            s.setdefault("name", s["cert"])
            self.ports[s["name"]] = st.free_port()
            chain, key, _ = cert_files(env.pki, s["cert"])
            if s.get("responder"):
                stapling = "ssl_stapling_responder %s;" % s["responder"]
            elif s.get("stapling_file"):
                stapling = "ssl_stapling_file %s;" % s["stapling_file"]
            else:
                stapling = "# no responder: the certificate's AIA URL"
            blocks.append(NGINX_SERVER.replace("@NAME@", s["name"])
                          .replace("@PORT@", str(self.ports[s["name"]]))
                          .replace("@CHAIN@", chain).replace("@KEY@", key)
                          .replace("@STAPLING@", stapling))
        text = (NGINX_CONF.replace("@TEMP_PATHS@", _nginx_temp_paths(self.exe, self.run))
                .replace("@CA_CHAIN@", env.pki.path("ca-chain.crt"))
                .replace("@SERVERS@", "".join(blocks)).replace("@RUN@", self.run))
        _write(self.conf, text)
        self.daemon = Daemon(name, self.run, os.path.join(self.run, "nginx.pid"),
                             os.path.join(self.run, "error.log"))
        _attach(env, self)
        if start:
            self.start()

    def port(self, name):
        return self.ports[name]

    def _argv(self, *extra):
        # -e: where errors go before the configuration is read (Debian's default is stderr).
        return [self.exe, "-p", self.run + "/", "-c", self.conf,
                "-e", os.path.join(self.run, "error.log")] + list(extra)

    def start(self):
        r = st.run(self._argv("-t"))
        if r.returncode != 0:
            raise RuntimeError("nginx -t failed:\n" + (r.stdout + r.stderr).decode())
        self.daemon.launch(self._argv())
        st.poll(self.workers, 15, what="an nginx worker")
        return self

    @property
    def pid(self):
        return self.daemon.pid

    def alive(self):
        return self.daemon.alive()

    def workers(self):
        return children(self.daemon.pid) if self.daemon.pid else []

    def reload(self, timeout=20):
        """SIGHUP, then waits until the old workers are gone and a new one runs: from then on
        every handshake meets the new configuration cycle (with an empty staple)."""
        old = set(self.workers())
        self.daemon.signal(signal.SIGHUP)
        st.poll(lambda: (lambda w: w and not (set(w) & old) and
                         not any(pid_alive(p) for p in old))(self.workers()),
                timeout, what="nginx workers replaced after SIGHUP")

    def stop(self, sig=None, timeout=15):
        return self.daemon.stop(sig, timeout)

    def restart(self):
        self.stop()
        self.start()

    def log(self):
        return self.daemon.log()

    def error_log(self):
        try:
            with open(os.path.join(self.run, "error.log"), "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""


# --- HAProxy 2.6 ---------------------------------------------------------------------------------

HAPROXY_CONF = """\
# HAProxy stapling what it is given over its runtime API (tests/integration/webservers.py).
global
@SOCKETS@
    tune.ssl.default-dh-param 2048

defaults
    mode http
    timeout connect 5s
    timeout client  10s
    timeout server  10s
@FRONTENDS@
"""

HAPROXY_FRONTEND = """
frontend fe_@I@
    bind 127.0.0.1:@PORT@ ssl crt "@PEM@" alpn http/1.1
    http-request return status 200 content-type text/plain string "hello"
"""


def make_haproxy_pem(env, leaf, with_issuer=True, ocsp=b""):
    """leaf + (issuer) + key in one PEM, as HAProxy wants it, under env.dir/haproxy-pem/. ocsp:
    the DER of <pem>.ocsp written beside it (b"" = an empty file, which lets the runtime API set
    a response later; None = no file). Returns the PEM path."""
    d = _run_dir(env, "haproxy-pem")
    _, key, crt = cert_files(env.pki, leaf)
    parts = [crt] + ([env.pki.path("int.crt")] if with_issuer else []) + [key]
    pem = os.path.join(d, "%s%s.pem" % (leaf, "" if with_issuer else "-noissuer"))
    text = ""
    for p in parts:
        with open(p) as f:
            text += f.read().rstrip("\n") + "\n"
    _write(pem, text)
    if ocsp is not None:
        with open(pem + ".ocsp", "wb") as f:
            f.write(ocsp)
    return pem


class Haproxy:
    """HAProxy with one TLS frontend per PEM (answering "hello") and admin_sockets runtime API
    sockets (run_dir/admin.sock, admin1.sock, ...)."""

    def __init__(self, env, crt_paths, admin_sockets=1, name="haproxy", start=True):
        self.exe = _which("haproxy")
        self.env = env
        self.name = name
        self.run = _run_dir(env, name)
        self.conf = os.path.join(self.run, "haproxy.cfg")
        self.crt_paths = list(crt_paths)
        self.ports = [st.free_port() for _ in self.crt_paths]
        self.sockets = [os.path.join(self.run, "admin%s.sock" % (i or ""))
                        for i in range(admin_sockets)]
        socks = "\n".join('    stats socket "%s" mode 600 level admin' % s for s in self.sockets)
        fronts = "".join(HAPROXY_FRONTEND.replace("@I@", str(i)).replace("@PORT@", str(p))
                         .replace("@PEM@", pem)
                         for i, (p, pem) in enumerate(zip(self.ports, self.crt_paths)))
        _write(self.conf, HAPROXY_CONF.replace("@SOCKETS@", socks)
               .replace("@FRONTENDS@", fronts))
        self.pid_file = os.path.join(self.run, "haproxy.pid")
        # No log file of its own: HAProxy logs to syslog only; start-up messages go to the
        # launcher's output (launch.log).
        self.daemon = Daemon(name, self.run, self.pid_file, None)
        _attach(env, self)
        if start:
            self.start()

    def port(self, i=0):
        return self.ports[i]

    def start(self):
        r = st.run([self.exe, "-c", "-f", self.conf])
        if r.returncode != 0:
            raise RuntimeError("haproxy -c failed:\n" + (r.stdout + r.stderr).decode())
        for sock in self.sockets:  # left by an earlier run: readiness is their reappearance
            if os.path.exists(sock):
                os.unlink(sock)
        self.daemon.launch([self.exe, "-f", self.conf, "-D", "-p", self.pid_file])
        st.poll(lambda: all(os.path.exists(s) for s in self.sockets), 15,
                what="haproxy admin sockets")
        return self

    @property
    def pid(self):
        return self.daemon.pid

    def alive(self):
        return self.daemon.alive()

    def restart(self):
        self.stop()
        self.start()

    def cli(self, cmd, sock=0, timeout=10):
        """One runtime API command on its own connection; the whole answer (read to EOF)."""
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        try:
            s.connect(self.sockets[sock])
            s.sendall(cmd.encode() + b"\n")
            out = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                out += chunk
        finally:
            s.close()
        return out.decode("utf-8", "replace")

    def stop(self, sig=None, timeout=15):
        return self.daemon.stop(sig, timeout)

    def log(self):
        return self.daemon.log()


# --- TLS clients: what did the server staple? ----------------------------------------------------

class ClientResult:
    def __init__(self, rc, text, der=b""):
        self.rc = rc
        self.ok = rc == 0
        self.text = text
        self.der = der

    def __repr__(self):
        return "%s(rc=%s)\n%s" % (type(self).__name__, self.rc, self.text[-2000:])


def _client(argv, timeout):
    try:
        r = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout)
        return r.returncode, (r.stdout + r.stderr).decode("utf-8", "replace")
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"") + (e.stderr or b"")
        return -1, "timed out after %ss\n%s" % (timeout, out.decode("utf-8", "replace"))


def check_curl(port, ca, host="localhost", timeout=CLIENT_TIMEOUT):
    """curl --cert-status: verifies the staple (signature, status, times); rc 91 when it fails
    or is missing, 0 when good. .text has curl's messages."""
    rc, text = _client(["curl", "-sS", "-m", str(timeout), "--cert-status", "--cacert", ca,
                        "--resolve", "%s:%d:127.0.0.1" % (host, port),
                        "https://%s:%d/" % (host, port)], timeout + 5)
    return ClientResult(rc, text)


_seq = [0]


def check_gnutls(port, ca, timeout=CLIENT_TIMEOUT, tmpdir=None):
    """gnutls-cli --ocsp: verifies the staple (rc 1 when revoked or stale). .der is the staple
    as received (b"" when there was none), .stapled says whether there was one. Without a staple
    gnutls-cli asks the certificate's AIA responder itself and may still exit 0, so a check of
    the staple wants .stapled as well as .ok."""
    _seq[0] += 1
    out = os.path.join(tmpdir or os.environ.get("TMPDIR", "/tmp"),
                       "gnutls-ocsp-%d-%d-%d.der" % (os.getpid(), port, _seq[0]))
    rc, text = _client(["gnutls-cli", "--port", str(port), "--x509cafile", ca, "--ocsp",
                        "--save-ocsp=" + out, "localhost"], timeout)
    der = b""
    if os.path.exists(out):
        with open(out, "rb") as f:
            der = f.read()
        os.unlink(out)
    r = ClientResult(rc, text, der)
    r.stapled = bool(der)
    return r


class OpensslResult(ClientResult):
    """openssl s_client -status: prints the staple without checking it."""

    def __init__(self, rc, text):
        super().__init__(rc, text)
        self.handshake = "Verify return code: 0 (ok)" in text or "Verification: OK" in text
        self.stapled = "OCSP response:" in text and "OCSP response: no response sent" not in text
        m = re.search(r"OCSP Response Status: (\w+)", text)
        self.response_status = m.group(1) if m else None
        m = re.search(r"Cert Status: (\w+)", text)
        self.cert_status = m.group(1) if m else None
        m = re.search(r"This Update: (.+)", text)
        self.this_update = m.group(1).strip() if m else None
        m = re.search(r"Next Update: (.+)", text)
        self.next_update = m.group(1).strip() if m else None

    def __repr__(self):
        return "OpensslResult(rc=%s stapled=%s status=%s this=%s next=%s)\n%s" % (
            self.rc, self.stapled, self.cert_status, self.this_update, self.next_update,
            self.text[-1500:])


def check_openssl(port, ca, timeout=CLIENT_TIMEOUT):
    rc, text = _client(["openssl", "s_client", "-connect", "127.0.0.1:%d" % port,
                        "-servername", "localhost", "-status", "-CAfile", ca], timeout)
    return OpensslResult(rc, text)


def wait_staple(port, ca, want="good", tries=30, interval=0.3):
    """Handshakes until the staple shows cert status want (nginx staples from its second
    handshake on). Returns the number of handshakes it took, or None if none showed it."""
    for i in range(1, tries + 1):
        if check_openssl(port, ca).cert_status == want:
            return i
        time.sleep(interval)
    return None
