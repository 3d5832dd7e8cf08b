"""Throwaway TLS material for a bench daemon's TCP listener, made with the ``openssl`` CLI.

One call makes a CA, a server certificate for the daemon's IP address and a client
certificate, named as Docker names them, so the folder also serves as ``DOCKER_CERT_PATH``
(``ca.pem``, ``cert.pem``, ``key.pem``). Calling it again into another folder makes an
unrelated CA: its client certificate is one the first daemon does not trust.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .system import run


@dataclass(frozen=True)
class TlsFiles:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path

    @property
    def cert_path(self) -> Path:
        """The folder to give as ``DOCKER_CERT_PATH``."""
        return self.ca.parent


CA = ("basicConstraints=critical,CA:TRUE", "keyUsage=critical,keyCertSign")
LEAF = ("basicConstraints=critical,CA:FALSE", "keyUsage=critical,digitalSignature", "authorityKeyIdentifier=keyid")


def make_tls(directory: Path, server_ip: str) -> TlsFiles:
    directory.mkdir(parents=True, exist_ok=True)
    files = TlsFiles(
        ca=directory / "ca.pem",
        server_cert=directory / "server-cert.pem",
        server_key=directory / "server-key.pem",
        client_cert=directory / "cert.pem",
        client_key=directory / "key.pem",
    )
    ca_key = directory / "ca-key.pem"
    _certificate(files.ca, ca_key, "grader-bench CA", CA)
    server = (*LEAF, "extendedKeyUsage=serverAuth", f"subjectAltName=IP:{server_ip}")
    _certificate(files.server_cert, files.server_key, server_ip, server, signer=(files.ca, ca_key))
    client = (*LEAF, "extendedKeyUsage=clientAuth")
    _certificate(files.client_cert, files.client_key, "grader", client, signer=(files.ca, ca_key))
    return files


def _certificate(
    cert: Path, key: Path, subject: str, extensions: tuple[str, ...], signer: tuple[Path, Path] | None = None
) -> None:
    """A P-256 key and its certificate, valid two days; self-signed unless a CA ``signer`` is given."""
    args = ["openssl", "req", "-x509", "-config", "/dev/null", "-noenc", "-days", "2", "-subj", f"/CN={subject}"]
    args += ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-keyout", str(key), "-out", str(cert)]
    if signer:
        args += ["-CA", str(signer[0]), "-CAkey", str(signer[1])]
    for extension in extensions:
        args += ["-addext", extension]
    run(*args)
