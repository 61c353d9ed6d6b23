"""Mutual TLS on both transports: a client certificate signed by the configured client CA
is required; none, or one from another CA, is refused."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest
import requests

from facedb.client import FaceDBClient
from tests.service.certs import Pki, make_pki
from tests.service.support import ADMIN_KEY, running_server


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, pki: Pki) -> Iterator[tuple[str, str]]:
    options = {
        "tls_cert": str(pki.server_cert),
        "tls_key": str(pki.server_key),
        "tls_client_ca": str(pki.ca),
        "http_port": 0,
    }
    with running_server(tmp_path_factory.mktemp("mtls-data"), **options) as (server, address):
        assert server.http is not None
        yield address, f"https://127.0.0.1:{server.http.port}"


def test_grpc_needs_a_client_certificate_from_the_ca(served: tuple[str, str], pki: Pki) -> None:
    mine = {"client_cert": pki.client_cert, "client_key": pki.client_key}
    with FaceDBClient(served[0], api_key=ADMIN_KEY, ca=pki.ca, timeout=30, **mine) as db:
        assert db.stats().faces == 0
    stranger = {"client_cert": pki.stranger_cert, "client_key": pki.stranger_key}
    for credentials in ({}, stranger):
        db = FaceDBClient(served[0], api_key=ADMIN_KEY, ca=pki.ca, timeout=5, **credentials)
        with db, pytest.raises(grpc.RpcError) as refused:
            db.stats()
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE


def test_https_needs_a_client_certificate_from_the_ca(served: tuple[str, str], pki: Pki) -> None:
    url, headers = served[1] + "/v1/stats", {"x-api-key": ADMIN_KEY}
    mine = (str(pki.client_cert), str(pki.client_key))
    ok = requests.get(url, headers=headers, verify=pki.ca, cert=mine, timeout=30)
    assert ok.status_code == 200 and ok.json()["faces"] == 0
    stranger = (str(pki.stranger_cert), str(pki.stranger_key))
    for cert in (None, stranger):
        with pytest.raises(requests.exceptions.ConnectionError):  # SSLError is one
            requests.get(url, headers=headers, verify=pki.ca, cert=cert, timeout=30)
