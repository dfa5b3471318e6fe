#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""A fault-injecting OCSP upstream for tests (stdlib only, Python >= 3.9).

It binds 127.0.0.1 only, speaks HTTP/1.0 and HTTP/1.1 (keep-alive), answers GET
(/<url-encoded base64>, any prefix) and POST. In the default mode "openssl" every request is
answered by running `openssl ocsp -index ... -reqin ... -respout ...` once, so answers are real,
signed and reflect the current index.txt. Other modes misbehave on demand (see MODES).

Control API on the same port:
  GET  /_control/stats   -> {"total": n, "by_serial": {"2001": n}, "by_mode": {...}, "mode": ...}
  POST /_control/mode    <- {"mode": "...", "seconds": n, "file": path, "serials": ["2001"],
                             "count": n, "retry_after": n or "HTTP-date", "cache_control": "...",
                             "validity_sec": n, "etag": "..."}
     "serials" limits the mode to those serials (others keep the global mode); "count" makes the
     mode expire after that many requests (then the previous setting applies again).
  POST /_control/reset   -> clears the counters (the first-response memory of replay_oldest stays)
Files: GET /int.der, /root.der (caIssuers) are served from the PKI directory (and logged).

With an "etag" (--etag), answers carrying a response send that ETag, and a request whose
If-None-Match names it gets 304 Not Modified instead (modes openssl, delay, cached, dir, crafted).

Every request is appended as one JSON line to --log: method, path, version, headers, the CertID
serial(s) and hash algorithm, the mode used and the status sent.

Only the "expired", "notyetvalid" and "crafted" modes need python3-cryptography; when this
interpreter lacks it, the script re-runs itself under /usr/bin/python3 (Debian's package) to
craft that response.
"""

import argparse
import base64
import datetime
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MODES = (
    "openssl",  # a real answer from `openssl ocsp`
    "http500", "http404", "http503",  # HTTP errors
    "trylater", "unauthorized", "malformed", "internalerror",  # OCSP error statuses
    "garbage",  # 200 with random non-DER bytes
    "empty",  # 200 with an empty body
    "truncated",  # a real response cut in half (Content-Length matches the cut body)
    "short_body",  # a real response whose Content-Length promises more than is sent, then close
    "wrong_content_type",  # a real response labelled text/html
    "close",  # close the connection without an answer
    "hang",  # never answer (until the client gives up or the server stops)
    "delay",  # wait "seconds" (default 3), then answer as "openssl"
    "badsig",  # a real response with one byte of its signature flipped
    "expired",  # a correctly signed response whose nextUpdate is in the past
    "notyetvalid",  # a correctly signed response whose thisUpdate is an hour ahead
    "replay_oldest",  # the first response ever served for that serial (rollback)
    "cached",  # the DER file "file", whatever was asked
    "dir",  # "<dir>/<SERIALHEX>.der" (upper-case hex), unauthorized when absent
    "crafted",  # a correctly signed response valid from now for "validity_sec" seconds
)

OCSP_STATUS_BODY = {
    "malformed": bytes.fromhex("3003 0a01 01"),
    "internalerror": bytes.fromhex("3003 0a01 02"),
    "trylater": bytes.fromhex("3003 0a01 03"),
    "unauthorized": bytes.fromhex("3003 0a01 06"),
}

HASH_OIDS = {
    "2b0e03021a": "sha1",
    "608648016503040201": "sha256",
    "608648016503040202": "sha384",
    "608648016503040203": "sha512",
}


# --- minimal DER reading -------------------------------------------------------------------------

def der_tlv(buf, off):
    """Returns (tag, content_start, content_end) of the TLV at off; raises ValueError."""
    if off + 2 > len(buf):
        raise ValueError("short TLV")
    tag = buf[off]
    first = buf[off + 1]
    pos = off + 2
    if first < 0x80:
        length = first
    else:
        nbytes = first & 0x7F
        if nbytes == 0 or nbytes > 4 or pos + nbytes > len(buf):
            raise ValueError("bad length")
        length = int.from_bytes(buf[pos:pos + nbytes], "big")
        pos += nbytes
    if pos + length > len(buf):
        raise ValueError("TLV overruns buffer")
    return tag, pos, pos + length


def der_children(buf, start, end):
    out = []
    off = start
    while off < end:
        tag, cs, ce = der_tlv(buf, off)
        out.append((tag, cs, ce, off))
        off = ce
    return out


def parse_request(der):
    """Returns [(hash_name, serial_hex)] for every CertID of an OCSPRequest; raises ValueError."""
    tag, s, e = der_tlv(der, 0)
    if tag != 0x30 or e != len(der):
        raise ValueError("not a SEQUENCE")
    tbs = der_children(der, s, e)[0]
    if tbs[0] != 0x30:
        raise ValueError("no tbsRequest")
    items = der_children(der, tbs[1], tbs[2])
    req_list = [c for c in items if c[0] == 0x30]
    if not req_list:
        raise ValueError("no requestList")
    out = []
    for req in der_children(der, req_list[0][1], req_list[0][2]):
        certid = der_children(der, req[1], req[2])[0]
        alg, _name_hash, _key_hash, serial = der_children(der, certid[1], certid[2])[:4]
        oid = der_children(der, alg[1], alg[2])[0]
        hash_name = HASH_OIDS.get(der[oid[1]:oid[2]].hex(), "oid:" + der[oid[1]:oid[2]].hex())
        serial_bytes = der[serial[1]:serial[2]].lstrip(b"\x00") or b"\x00"
        out.append((hash_name, serial_bytes.hex().upper()))
    if not out:
        raise ValueError("empty requestList")
    return out


def flip_signature_byte(resp):
    """Flips the last byte of the BasicOCSPResponse signature; raises ValueError."""
    buf = bytearray(resp)
    _, s, e = der_tlv(buf, 0)
    kids = der_children(buf, s, e)
    if len(kids) < 2 or kids[0][0] != 0x0A or buf[kids[0][1]] != 0:
        raise ValueError("not a successful response")
    rb = der_children(buf, kids[1][1], kids[1][2])[0]  # ResponseBytes SEQUENCE
    octets = der_children(buf, rb[1], rb[2])[1]  # response OCTET STRING
    basic = der_children(buf, octets[1], octets[2])[0]
    parts = der_children(buf, basic[1], basic[2])
    sig = parts[2]
    if sig[0] != 0x03 or sig[2] - sig[1] < 2:
        raise ValueError("no signature BIT STRING")
    buf[sig[2] - 1] ^= 0x01
    return bytes(buf)


# --- response crafting with python3-cryptography (expired / notyetvalid) --------------------------

def craft_response(pki, index, serial_hex, hash_name, this_offset_s, validity_s):
    """Signs a response: thisUpdate = now + this_offset_s, nextUpdate = thisUpdate + validity_s."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509 import ocsp

    def load(name):
        with open(os.path.join(pki, name), "rb") as f:
            return f.read()

    issuer = x509.load_pem_x509_certificate(load("int.crt"))
    signer = x509.load_pem_x509_certificate(load("ocsp.crt"))
    key = serialization.load_pem_private_key(load("ocsp.key"), None)
    # `openssl ca` keeps every certificate it signed as <db>/certs/<SERIAL>.pem.
    cert = x509.load_pem_x509_certificate(load(os.path.join("intdb", "certs", serial_hex + ".pem")))
    status, rev_time, reason = ocsp.OCSPCertStatus.UNKNOWN, None, None
    with open(index) as f:
        for line in f:
            cols = line.rstrip("\n").split("\t")
            if len(cols) >= 4 and cols[3].upper() == serial_hex:
                if cols[0] == "V":
                    status = ocsp.OCSPCertStatus.GOOD
                elif cols[0] == "R":
                    status = ocsp.OCSPCertStatus.REVOKED
                    rev_time = datetime.datetime.strptime(cols[2].split(",")[0], "%y%m%d%H%M%SZ")
                    reason = x509.ReasonFlags.key_compromise
    algo = {"sha1": hashes.SHA1, "sha256": hashes.SHA256, "sha384": hashes.SHA384,
            "sha512": hashes.SHA512}[hash_name]()
    now = datetime.datetime.utcnow().replace(microsecond=0)
    this_update = now + datetime.timedelta(seconds=this_offset_s)
    builder = ocsp.OCSPResponseBuilder().add_response(
        cert=cert, issuer=issuer, algorithm=algo, cert_status=status,
        this_update=this_update, next_update=this_update + datetime.timedelta(seconds=validity_s),
        revocation_time=rev_time, revocation_reason=reason,
    ).responder_id(ocsp.OCSPResponderEncoding.HASH, signer).certificates([signer])
    resp = builder.sign(key, hashes.SHA256())
    return resp.public_bytes(serialization.Encoding.DER)


def craft_via_subprocess(pki, index, serial_hex, hash_name, this_offset_s, validity_s):
    try:
        import cryptography  # noqa: F401
        return craft_response(pki, index, serial_hex, hash_name, this_offset_s, validity_s)
    except ImportError:
        pass
    out = subprocess.run(
        ["/usr/bin/python3", os.path.abspath(__file__), "--craft", pki, index, serial_hex,
         hash_name, str(this_offset_s), str(validity_s)],
        capture_output=True, timeout=30, check=True)
    return out.stdout


# --- the server ----------------------------------------------------------------------------------

class State:
    def __init__(self, args):
        self.args = args
        self.lock = threading.Lock()
        self.mode = {"mode": args.mode, "seconds": args.delay, "file": args.file,
                     "dir": args.dir, "retry_after": args.retry_after,
                     "cache_control": args.cache_control, "validity_sec": args.validity_sec,
                     "etag": args.etag}
        self.by_serial_mode = {}  # serial -> (mode dict, remaining count or None)
        self.global_count = None
        self.global_prev = None
        self.total = 0
        self.by_serial = {}
        self.by_mode = {}
        self.first_response = {}
        self.log = open(args.log, "a", buffering=1) if args.log else None
        self.stopping = threading.Event()

    def pick_mode(self, serials):
        """Chooses the mode for a request and consumes one use of a counted mode."""
        with self.lock:
            for s in serials:
                if s in self.by_serial_mode:
                    m, count = self.by_serial_mode[s]
                    if count is not None:
                        if count <= 1:
                            del self.by_serial_mode[s]
                        else:
                            self.by_serial_mode[s] = (m, count - 1)
                    return dict(m)
            m = dict(self.mode)
            if self.global_count is not None:
                self.global_count -= 1
                if self.global_count <= 0:
                    self.mode, self.global_count = self.global_prev, None
            return m

    def set_mode(self, req):
        mode = req.get("mode")
        if mode not in MODES:
            raise ValueError("unknown mode %r" % mode)
        m = {"mode": mode, "seconds": float(req.get("seconds", self.args.delay)),
             "file": req.get("file", self.args.file),
             "dir": req.get("dir", self.args.dir),
             "retry_after": req.get("retry_after", self.args.retry_after),
             "cache_control": req.get("cache_control", self.args.cache_control),
             "validity_sec": int(req.get("validity_sec", self.args.validity_sec)),
             "etag": req.get("etag", self.args.etag)}
        count = req.get("count")
        with self.lock:
            if req.get("serials"):
                for s in req["serials"]:
                    self.by_serial_mode[s.upper().lstrip("0") or "0"] = (m, count)
            elif count is not None:
                self.global_prev = self.mode if self.global_count is None else self.global_prev
                self.mode, self.global_count = m, int(count)
            else:
                self.mode, self.global_count = m, None
                self.by_serial_mode.clear()

    def count(self, serials, mode):
        with self.lock:
            self.total += 1
            for s in serials:
                self.by_serial[s] = self.by_serial.get(s, 0) + 1
            self.by_mode[mode] = self.by_mode.get(mode, 0) + 1

    def write_log(self, rec):
        if self.log:
            with self.lock:
                self.log.write(json.dumps(rec, sort_keys=True) + "\n")


def openssl_answer(args, req_der, extra=()):
    with tempfile.TemporaryDirectory(prefix="ocsp-up-") as tmp:
        reqf = os.path.join(tmp, "req.der")
        respf = os.path.join(tmp, "resp.der")
        with open(reqf, "wb") as f:
            f.write(req_der)
        cmd = [args.openssl, "ocsp", "-index", args.index, "-CA", args.ca,
               "-rsigner", args.rsigner, "-rkey", args.rkey, "-reqin", reqf, "-respout", respf]
        if args.validity_days:
            cmd += ["-ndays", str(args.validity_days)]
        elif args.validity_min:
            cmd += ["-nmin", str(args.validity_min)]
        cmd += list(extra)
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30,
                       check=False)
        with open(respf, "rb") as f:
            return f.read()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "ocsp-upstream/1"
    sys_version = ""

    def log_message(self, fmt, *a):  # the JSON log replaces the stderr access log
        pass

    @property
    def st(self):
        return self.server.state

    def send_body(self, code, body, ctype="application/ocsp-response", extra=None,
                  length=None):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body) if length is None else length))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self.wfile.flush()

    def do_GET(self):
        self.handle_any(None)

    def do_HEAD(self):
        self.handle_any(None)

    def do_POST(self):
        length = self.headers.get("Content-Length")
        if length is None:
            self.send_body(411, b"length required\n", "text/plain")
            return
        body = self.rfile.read(int(length))
        self.handle_any(body)

    def control(self, body):
        path = self.path.split("?", 1)[0]
        if path == "/_control/stats":
            with self.st.lock:
                out = {"total": self.st.total, "by_serial": dict(self.st.by_serial),
                       "by_mode": dict(self.st.by_mode), "mode": self.st.mode["mode"]}
            self.send_body(200, json.dumps(out).encode(), "application/json")
        elif path == "/_control/mode" and body is not None:
            try:
                self.st.set_mode(json.loads(body or b"{}"))
            except (ValueError, TypeError) as e:
                self.send_body(400, (str(e) + "\n").encode(), "text/plain")
                return
            self.send_body(200, b"ok\n", "text/plain")
        elif path == "/_control/reset" and body is not None:
            with self.st.lock:
                self.st.total = 0
                self.st.by_serial.clear()
                self.st.by_mode.clear()
            self.send_body(200, b"ok\n", "text/plain")
        else:
            self.send_body(404, b"no such control\n", "text/plain")

    def request_der(self, body):
        if body is not None:
            return body
        raw = self.path.split("?", 1)[0]
        # The base64 may itself contain '/', so try every split point from the left.
        for i, ch in enumerate(raw):
            if ch != "/":
                continue
            cand = urllib.parse.unquote(raw[i + 1:])
            if not cand:
                continue
            try:
                der = base64.b64decode(cand, validate=True)
                parse_request(der)
                return der
            except (ValueError, base64.binascii.Error):
                continue
        return None

    def handle_any(self, body):
        if self.path.startswith("/_control/"):
            self.control(body)
            return
        if body is None and self.st.args.pki and self.path in ("/int.der", "/root.der"):
            with open(os.path.join(self.st.args.pki, self.path[1:]), "rb") as f:
                self.send_body(200, f.read(), "application/pkix-cert")
            self.st.write_log({"time": time.time(), "method": self.command, "path": self.path,
                               "version": self.request_version,
                               "headers": dict(self.headers.items()), "serials": [],
                               "hashes": [], "mode": "file", "peer": self.client_address[1],
                               "status": 200})
            return
        der = self.request_der(body)
        certids = []
        if der is not None:
            try:
                certids = parse_request(der)
            except ValueError:
                der = None
        serials = [s for _, s in certids]
        m = self.st.pick_mode(serials) if der is not None else {"mode": "malformed_request"}
        mode = m["mode"]
        self.st.count(serials, mode)
        rec = {"time": time.time(), "method": self.command, "path": self.path,
               "version": self.request_version, "headers": dict(self.headers.items()),
               "serials": serials, "hashes": [h for h, _ in certids], "mode": mode,
               "peer": self.client_address[1]}
        try:
            rec["status"] = self.answer(m, der, certids)
        finally:
            self.st.write_log(rec)

    def answer(self, m, der, certids):
        args = self.st.args
        mode = m["mode"]
        extra = {}
        if m.get("cache_control"):
            extra["Cache-Control"] = m["cache_control"]
        err_extra = {"Retry-After": str(m["retry_after"])} if m.get("retry_after") else {}
        if mode == "malformed_request":
            self.send_body(200, OCSP_STATUS_BODY["malformed"])
            return 200
        if m.get("etag") and mode in ("openssl", "delay", "cached", "dir", "crafted"):
            extra["ETag"] = m["etag"]
            inm = self.headers.get("If-None-Match", "")
            if m["etag"] in [v.strip() for v in inm.split(",")]:
                self.send_response(304)
                for k, v in extra.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.flush()
                return 304
        if mode == "http500":
            self.send_body(500, b"internal error\n", "text/plain", err_extra)
            return 500
        if mode == "http503":
            self.send_body(503, b"service unavailable\n", "text/plain", err_extra)
            return 503
        if mode == "http404":
            self.send_body(404, b"not found\n", "text/plain", err_extra)
            return 404
        if mode in OCSP_STATUS_BODY:
            self.send_body(200, OCSP_STATUS_BODY[mode], extra=err_extra if mode == "trylater"
                           else None)
            return 200
        if mode == "garbage":
            self.send_body(200, os.urandom(200))
            return 200
        if mode == "empty":
            self.send_body(200, b"")
            return 200
        if mode == "close":
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return 0
        if mode == "hang":
            self.st.stopping.wait(3600)
            self.close_connection = True
            return 0
        if mode == "delay":
            if self.st.stopping.wait(m.get("seconds") or 3):
                return 0
        if mode == "cached":
            with open(m["file"], "rb") as f:
                self.send_body(200, f.read(), extra=extra)
            return 200
        if mode == "dir":
            path = os.path.join(m["dir"], certids[0][1] + ".der")
            if not os.path.exists(path):
                self.send_body(200, OCSP_STATUS_BODY["unauthorized"])
                return 200
            with open(path, "rb") as f:
                self.send_body(200, f.read(), extra=extra)
            return 200
        if mode in ("expired", "notyetvalid", "crafted"):
            hash_name, serial = certids[0]
            offset, validity = {"expired": (-7200, 3600), "notyetvalid": (3600, 7200),
                                "crafted": (0, m.get("validity_sec") or 60)}[mode]
            resp = craft_via_subprocess(args.pki, args.index, serial, hash_name, offset, validity)
            self.send_body(200, resp, extra=extra)
            return 200
        serial = certids[0][1]
        if mode == "replay_oldest":
            with self.st.lock:
                resp = self.st.first_response.get(serial)
            if resp is None:
                resp = openssl_answer(args, der)
        else:
            resp = openssl_answer(args, der)
            with self.st.lock:
                if resp and len(resp) > 5:
                    self.st.first_response.setdefault(serial, resp)
        if not resp:
            self.send_body(500, b"openssl ocsp failed\n", "text/plain")
            return 500
        if mode == "badsig":
            resp = flip_signature_byte(resp)
        if mode == "truncated":
            resp = resp[:len(resp) // 2]
        if mode == "wrong_content_type":
            self.send_body(200, resp, "text/html", extra)
            return 200
        if mode == "short_body":
            self.close_connection = True
            self.send_body(200, resp[:len(resp) // 2], extra=extra, length=len(resp))
            return 200
        self.send_body(200, resp, extra=extra)
        return 200


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--craft":
        pki, index, serial, hash_name, off, validity = sys.argv[2:8]
        sys.stdout.buffer.write(craft_response(pki, index, serial, hash_name, int(off),
                                               int(validity)))
        return 0
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pki", help="test PKI directory (tests/pki/mkpki.sh); sets the defaults")
    ap.add_argument("--index", help="openssl ca index.txt (default PKI/intdb/index.txt)")
    ap.add_argument("--ca", help="issuer certificate (default PKI/int.crt)")
    ap.add_argument("--rsigner", help="responder certificate (default PKI/ocsp.crt)")
    ap.add_argument("--rkey", help="responder key (default PKI/ocsp.key)")
    ap.add_argument("--port", type=int, default=0, help="0: pick one, print 'PORT n'")
    ap.add_argument("--validity-min", type=int, default=60, help="nextUpdate - thisUpdate")
    ap.add_argument("--validity-days", type=int, default=0, help="overrides --validity-min")
    ap.add_argument("--validity-sec", type=int, default=60,
                    help="nextUpdate - thisUpdate of mode crafted (openssl counts minutes)")
    ap.add_argument("--mode", default="openssl", choices=MODES)
    ap.add_argument("--delay", type=float, default=3.0, help="seconds for mode delay")
    ap.add_argument("--file", help="DER file for mode cached")
    ap.add_argument("--dir", help="directory of <SERIAL>.der files for mode dir")
    ap.add_argument("--retry-after", type=int, default=0, help="Retry-After on errors")
    ap.add_argument("--cache-control", default="", help="Cache-Control on answers")
    ap.add_argument("--etag", default="", help='ETag on answers (quoted: \'"v1"\'); '
                    "a matching If-None-Match gets 304")
    ap.add_argument("--log", help="JSON-lines request log")
    ap.add_argument("--openssl", default=shutil.which("openssl") or "openssl")
    args = ap.parse_args()
    if args.pki:
        args.pki = os.path.abspath(args.pki)
        args.index = args.index or os.path.join(args.pki, "intdb", "index.txt")
        args.ca = args.ca or os.path.join(args.pki, "int.crt")
        args.rsigner = args.rsigner or os.path.join(args.pki, "ocsp.crt")
        args.rkey = args.rkey or os.path.join(args.pki, "ocsp.key")
    if args.mode in ("openssl", "badsig", "truncated") and not (args.index and args.ca):
        ap.error("--pki (or --index/--ca/--rsigner/--rkey) is required")

    srv = Server(("127.0.0.1", args.port), Handler)
    srv.state = State(args)
    print("PORT %d" % srv.server_address[1], flush=True)
    try:
        srv.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        srv.state.stopping.set()
    return 0


if __name__ == "__main__":
    import signal
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    sys.exit(main())
