"""TLS on both transports of one real server on loopback: gRPC (client and CLI) and HTTP
talk TLS, plaintext clients are refused, and plaintext beyond loopback is refused."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest
import requests

from facedb.cli import main
from facedb.client import FaceDBClient
from facedb.config import ConfigError, load_settings
from facedb.service.tls import check_transport_security
from tests.service.certs import Pki, make_pki
from tests.service.support import ADMIN_KEY, running_server


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, pki: Pki) -> Iterator[tuple[str, str]]:
    """(gRPC address, HTTPS base URL) of a server with a certificate from the test CA."""
    options = {"tls_cert": str(pki.server_cert), "tls_key": str(pki.server_key), "http_port": 0}
    with running_server(tmp_path_factory.mktemp("tls-data"), **options) as (server, address):
        assert server.http is not None
        yield address, f"https://127.0.0.1:{server.http.port}"


def test_grpc_over_tls_verified_against_the_ca(served: tuple[str, str], pki: Pki) -> None:
    with FaceDBClient(served[0], api_key=ADMIN_KEY, ca=pki.ca, timeout=30) as db:
        db.create_gallery("tls")
        assert [g.name for g in db.list_galleries()] == ["tls"]


def test_grpc_plaintext_or_unverified_client_is_refused(served: tuple[str, str]) -> None:
    plaintext = FaceDBClient(served[0], api_key=ADMIN_KEY, timeout=5)
    with plaintext, pytest.raises(grpc.RpcError) as refused:
        plaintext.stats()
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    system_roots = FaceDBClient(served[0], api_key=ADMIN_KEY, tls=True, timeout=5)
    with system_roots, pytest.raises(grpc.RpcError) as untrusted:
        system_roots.stats()  # the test CA is not among the system's
    assert untrusted.value.code() == grpc.StatusCode.UNAVAILABLE


def test_cli_takes_ca(served: tuple[str, str], pki: Pki, capsys: pytest.CaptureFixture) -> None:
    code = main(["stats", "--server", served[0], "--api-key", ADMIN_KEY, "--ca", str(pki.ca)])
    assert code == 0 and "total" in capsys.readouterr().out


def test_https_verified_and_plain_http_refused(served: tuple[str, str], pki: Pki) -> None:
    headers = {"x-api-key": ADMIN_KEY}
    ok = requests.get(served[1] + "/v1/galleries", headers=headers, verify=pki.ca, timeout=30)
    assert ok.status_code == 200 and ok.json()["galleries"][0]["name"] == "tls"
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(served[1] + "/v1/galleries", headers=headers, timeout=30)  # system CAs
    plain = served[1].replace("https://", "http://")
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(plain + "/v1/galleries", headers=headers, timeout=30)


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.1", "example.com"])
def test_plaintext_beyond_loopback_is_refused_before_starting(
    host: str, caplog: pytest.LogCaptureFixture
) -> None:
    code = main(["serve", "--text-logs", "--insecure-no-auth", "--host", host, "--port", "0"])
    assert code == 2
    assert [r.getMessage() for r in caplog.records if "without TLS" in r.getMessage()]


def test_plaintext_beyond_loopback_only_when_asked(pki: Pki) -> None:
    assert check_transport_security(load_settings(host="0.0.0.0", insecure_plaintext=True)) is None
    tls = load_settings(host="0.0.0.0", tls_cert=str(pki.server_cert), tls_key=str(pki.server_key))
    assert check_transport_security(tls) is not None
    with pytest.raises(ConfigError, match="both"):
        check_transport_security(load_settings(tls_cert=str(pki.server_cert)))
