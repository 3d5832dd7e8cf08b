"""A bench daemon reached over TCP with mutual TLS, as a student's machine on the network."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import docker
import pytest
from bench.daemon import BenchDaemon
from bench.tls import TlsFiles, make_tls
from conftest import start_daemon

pytestmark = pytest.mark.docker


@pytest.fixture(autouse=True)
def _sdk_uses_the_given_ca(monkeypatch: pytest.MonkeyPatch) -> None:
    # requests lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE override the session's CA file, so the SDK
    # would ignore TLSConfig(ca_cert=...) (docker/docker-py#2433); this machine sets both.
    for var in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture(scope="module")
def remote() -> BenchDaemon:
    return start_daemon(f"tls{os.getpid()}", tls=True)


def tls_config(ca: Path, client: TlsFiles | None) -> docker.tls.TLSConfig:
    cert = (str(client.client_cert), str(client.client_key)) if client else None
    return docker.tls.TLSConfig(client_cert=cert, ca_cert=str(ca), verify=True)


def connect(daemon: BenchDaemon, tls: docker.tls.TLSConfig | bool) -> docker.DockerClient:
    return docker.DockerClient(base_url=daemon.tcp_host, tls=tls, version="auto", timeout=10)


def test_client_certificate_reaches_the_daemon(remote: BenchDaemon) -> None:
    assert remote.tls_files is not None
    remote.docker("create", "--name", "made-over-unix-socket", "alpine", "true")
    try:
        client = connect(remote, tls_config(remote.tls_files.ca, remote.tls_files))
        assert client.ping()
        assert [c.name for c in client.containers.list(all=True)] == ["made-over-unix-socket"]
    finally:
        remote.reset()


def test_cert_folder_serves_as_docker_cert_path(remote: BenchDaemon) -> None:
    files = remote.tls_files
    assert files is not None
    env = {"DOCKER_HOST": remote.tcp_host, "DOCKER_TLS_VERIFY": "1", "DOCKER_CERT_PATH": str(files.cert_path)}
    api = docker.from_env(environment=env, version="auto").version()["ApiVersion"]
    cli = subprocess.run(
        ["docker", "version", "--format", "{{.Server.APIVersion}}"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=True,
    )
    assert cli.stdout.strip() == api


@pytest.mark.parametrize(
    ("case", "error"),
    [
        ("plain HTTP", "Client sent an HTTP request to an HTTPS server"),
        ("no client certificate", "SSLError"),
        ("client certificate of another CA", "SSLError"),
        ("daemon certificate of another CA", "CERTIFICATE_VERIFY_FAILED"),
    ],
)
def test_untrusted_peers_are_refused(remote: BenchDaemon, tmp_path: Path, case: str, error: str) -> None:
    own = remote.tls_files
    assert own is not None
    other = make_tls(tmp_path, str(remote.address))  # an unrelated CA and its client certificate
    tls = {
        "plain HTTP": False,
        "no client certificate": tls_config(own.ca, None),
        "client certificate of another CA": tls_config(own.ca, other),
        "daemon certificate of another CA": tls_config(other.ca, own),
    }[case]
    with pytest.raises(docker.errors.DockerException, match=error):
        connect(remote, tls)
