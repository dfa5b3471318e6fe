#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Generates N certificates of one issuer and a signed good OCSP response for each, fast.

`openssl ca` needs a process per certificate (~20 ms each) and `openssl ocsp` another per
response; 100,000 entries that way take over an hour. With python3-cryptography (Debian's
package, hence /usr/bin/python3) and P-256 keys it takes seconds per 10,000.

Output in OUTDIR:
  root.crt, int.crt           the chain (int.crt also in issuers/)
  certs/leaf-N.pem            the leaves (no chain; stapled finds the issuer in issuers/);
                              AIA OCSP = OCSP_URL
  responses/<SERIAL>.der      a good response per leaf (SHA-1 CertID, delegated signer,
                              validity 1 day), named as tests/tools/ocsp_upstream.py mode "dir"
                              expects (upper-case hex serial)
Usage: gen_entries.py OUTDIR N OCSP_URL
"""

import datetime
import os
import sys

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, AuthorityInformationAccessOID


def name(cn):
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "stapled bench"),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def write(path, data):
    with open(path, "wb") as f:
        f.write(data)


def pem(cert):
    return cert.public_bytes(serialization.Encoding.PEM)


def main():
    out, n, url = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    for d in ("certs", "responses", "issuers"):
        os.makedirs(os.path.join(out, d), exist_ok=True)
    now = datetime.datetime.utcnow().replace(microsecond=0)
    start, end = now - datetime.timedelta(days=2), now + datetime.timedelta(days=365)

    root_key = ec.generate_private_key(ec.SECP256R1())
    root = (x509.CertificateBuilder().subject_name(name("bench root")).issuer_name(
        name("bench root")).public_key(root_key.public_key()).serial_number(1)
        .not_valid_before(start).not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(root_key, hashes.SHA256()))
    int_key = ec.generate_private_key(ec.SECP256R1())
    inter = (x509.CertificateBuilder().subject_name(name("bench intermediate")).issuer_name(
        root.subject).public_key(int_key.public_key()).serial_number(2)
        .not_valid_before(start).not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(int_key.public_key()), False)
        .sign(root_key, hashes.SHA256()))
    resp_key = ec.generate_private_key(ec.SECP256R1())
    responder = (x509.CertificateBuilder().subject_name(name("bench responder")).issuer_name(
        inter.subject).public_key(resp_key.public_key()).serial_number(3)
        .not_valid_before(start).not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.OCSP_SIGNING]), critical=True)
        .add_extension(x509.OCSPNoCheck(), critical=False)
        .sign(int_key, hashes.SHA256()))
    write(os.path.join(out, "root.crt"), pem(root))
    write(os.path.join(out, "int.crt"), pem(inter))
    write(os.path.join(out, "issuers", "int.crt"), pem(inter))

    leaf_key = ec.generate_private_key(ec.SECP256R1())
    aia = x509.AuthorityInformationAccess([x509.AccessDescription(
        AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(url))])
    total_der = 0
    for i in range(n):
        serial = 0x100000 + i
        leaf = (x509.CertificateBuilder().subject_name(name("leaf-%d.bench" % i)).issuer_name(
            inter.subject).public_key(leaf_key.public_key()).serial_number(serial)
            .not_valid_before(start).not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(aia, critical=False)
            .sign(int_key, hashes.SHA256()))
        write(os.path.join(out, "certs", "leaf-%d.pem" % i), pem(leaf))
        resp = (ocsp.OCSPResponseBuilder().add_response(
            cert=leaf, issuer=inter, algorithm=hashes.SHA1(),
            cert_status=ocsp.OCSPCertStatus.GOOD, this_update=now,
            next_update=now + datetime.timedelta(days=1),
            revocation_time=None, revocation_reason=None)
            .responder_id(ocsp.OCSPResponderEncoding.HASH, responder)
            .certificates([responder]).sign(resp_key, hashes.SHA256()))
        der = resp.public_bytes(serialization.Encoding.DER)
        total_der += len(der)
        write(os.path.join(out, "responses", "%X.der" % serial), der)
    print("generated %d entries, %d response bytes (%.0f B each)" % (n, total_der,
                                                                     total_der / max(n, 1)))


if __name__ == "__main__":
    main()
