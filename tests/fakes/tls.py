"""A private CA and a server certificate it signs for 127.0.0.1, made by the ``openssl`` command
(the tests that need them are skipped without it)."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

__all__ = ["Certs", "make_certs"]


@dataclass(frozen=True)
class Certs:
    ca: Path  # the CA certificate (PEM): what a client's ca_bundle names
    cert: Path  # the server's certificate (SAN IP:127.0.0.1, DNS:localhost)
    key: Path  # the server's private key

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert, self.key)
        return context


def make_certs(folder: Path) -> Certs:
    pki = Certs(folder / "ca.pem", folder / "server.pem", folder / "server.key")
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("needs the cryptography package or the openssl command")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    ca_key, csr, ext = folder / "ca.key", folder / "server.csr", folder / "server.ext"
    ext.write_text(
        "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n"
        "extendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n"
        "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid,issuer\n"
    )
    commands = [
        [*ec, "-x509", "-days", "2", "-subj", "/CN=sidecar test CA", "-keyout", ca_key, "-out", pki.ca]
        + ["-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign"],
        [*ec, "-subj", "/CN=127.0.0.1", "-keyout", pki.key, "-out", csr],
    ]
    for args in commands:
        subprocess.run([openssl, "req", *map(str, args)], check=True, capture_output=True)
    sign = ["x509", "-req", "-in", csr, "-CA", pki.ca, "-CAkey", ca_key, "-set_serial", "2"]
    sign += ["-days", "2", "-extfile", ext, "-out", pki.cert]
    subprocess.run([openssl, *map(str, sign)], check=True, capture_output=True)
    return pki
