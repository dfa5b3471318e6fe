#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""`stapled verify RESPONSE.der --issuer ISSUER.pem [--cert CERT.pem] [--at TIME]`: exit 0 only
for a response the daemon would serve at that time."""

import os
import time

import stapledtest as st


def fetch(env, cert, mode, name):
    env.upstream.set_mode(mode)
    r = env.query(env.upstream.url, cert)
    path = os.path.join(env.dir, name)
    with open(path, "wb") as f:
        f.write(r.der)
    return path


def case_verify(t):
    env = t.env(upstream="python", validity_min=60)
    good = fetch(env, "good", "openssl", "good.der")
    revoked = fetch(env, "revoked", "openssl", "revoked.der")
    expired = fetch(env, "good", "expired", "expired.der")
    future = fetch(env, "good", "notyetvalid", "future.der")
    badsig = fetch(env, "good", "badsig", "badsig.der")
    trylater = fetch(env, "good", "trylater", "trylater.der")
    garbage = os.path.join(env.dir, "garbage.der")
    with open(garbage, "wb") as f:
        f.write(b"\x30\x82\x01\x00garbage")
    issuer = env.pki.path("int.crt")

    def verify(resp, *extra):
        r = st.run([t.stapled_exe, "verify", resp, "--issuer", issuer] + list(extra))
        return r.returncode, (r.stdout + r.stderr).decode("utf-8", "replace")

    rc, out = verify(good)
    t.ok(rc == 0, "good response: exit 0", out)
    t.ok("good" in out.lower(), "prints the status", out)
    t.ok("ocsp responder" in out.lower() or "CN=" in out or "signer" in out.lower(),
         "prints the signer", out)
    rc, out = verify(good, "--cert", env.pki.cert("good"))
    t.ok(rc == 0, "good response with --cert good.crt: exit 0", out)
    rc, out = verify(good, "--cert", env.pki.cert("revoked"))
    t.ok(rc != 0, "good.crt's response checked against revoked.crt: CertID mismatch", out)
    rc, out = verify(revoked, "--cert", env.pki.cert("revoked"))
    t.ok(rc == 0 and "revoked" in out.lower(), "revoked response: served by default, exit 0",
         out)
    rc, out = verify(expired)
    t.ok(rc != 0, "expired response: non-zero exit", out)
    rc, out = verify(future)
    t.ok(rc != 0, "not yet valid response: non-zero exit", out)
    rc, out = verify(badsig)
    t.ok(rc != 0, "flipped signature byte: non-zero exit", out)
    rc, out = verify(trylater)
    t.ok(rc != 0, "tryLater response: non-zero exit", out)
    rc, out = verify(garbage)
    t.ok(rc != 0, "garbage file: non-zero exit", out)
    rc, out = verify(os.path.join(env.dir, "missing.der"))
    t.ok(rc != 0, "missing file: non-zero exit", out)
    rc, out = verify(good, "--issuer", env.pki.path("root.crt"))
    t.ok(rc != 0, "wrong issuer (root.crt): rejected", out)

    now = int(time.time())
    rc, out = verify(good, "--at", str(now + 2 * 3600))
    t.ok(rc != 0, "good response at now+2h (after nextUpdate): non-zero exit", out)
    rc, out = verify(good, "--at", str(now + 600))
    t.ok(rc == 0, "good response at now+10min: exit 0", out)
    rc, out = verify(expired, "--at", time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                    time.gmtime(now - 5400)))
    t.ok(rc == 0, "expired response at a time inside its validity (ISO 8601): exit 0", out)
    rc, out = verify(good, "--at", "yesterday")
    t.ok(rc != 0, "unparsable --at: non-zero exit", out)


if __name__ == "__main__":
    t = st.Test(__file__)
    t.run(case_verify)
