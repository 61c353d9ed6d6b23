"""API keys managed at run time, on two `facedb serve` processes sharing one PostgreSQL
database: create → use → revoke → refused on the other process within seconds; rotation,
expiry, per-key rate limits on both transports, who may manage keys, and the audit log."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
import requests

from facedb.cli import main
from facedb.storage.db import migrate
from tests.http.support import start_http_server
from tests.paths import ARCFACE, LFW, REPO, SCRFD
from tests.service.support import ADMIN_KEY, ServerProcess, client
from tests.store.conftest import DatabaseFactory

ALICE = LFW / "images" / "Aaron_Peirsol" / "Aaron_Peirsol_0001.jpg"
ALICE_AGAIN = LFW / "images" / "Aaron_Peirsol" / "Aaron_Peirsol_0002.jpg"
REVOCATION_BOUND_S = 5.0  # the key cache holds entries for 2 s


def _postgres() -> str:
    url = os.environ.get("FACEDB_TEST_POSTGRES_URL")
    if url:
        return url
    started = subprocess.run(
        [str(REPO / ".ci" / "start-postgres")], capture_output=True, text=True, check=False
    )
    if started.returncode != 0:
        pytest.fail(f"PostgreSQL unavailable: {started.stderr[-2000:]}")
    return started.stdout.strip().splitlines()[-1]


class Replica:
    def __init__(self, process: ServerProcess, base: str, audit: Path):
        self.process, self.base, self.audit = process, base, audit
        self.address = process.address

    def audit_lines(self) -> list[dict]:
        return [json.loads(line) for line in self.audit.read_text().splitlines()]


@pytest.fixture(scope="module")
def replicas(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Replica, Replica]]:
    root = tmp_path_factory.mktemp("keys")
    databases = DatabaseFactory("postgresql", root, _postgres)
    url = databases.create()
    migrate(url)
    started: list[Replica] = []
    try:
        for name in ("a", "b"):
            audit = root / f"audit-{name}.jsonl"
            process, base = start_http_server(
                root / name,
                root / f"{name}.log",
                "--database-url",
                url,
                "--audit-log",
                str(audit),
            )
            started.append(Replica(process, base, audit))
        with client(started[0].address) as admin:
            admin.create_gallery("people")
            admin.create_gallery("other")
        yield started[0], started[1]
    finally:
        for replica in started:
            assert replica.process.stop() == 0
        databases.drop_all()


def cli(replica: Replica, capsys: pytest.CaptureFixture[str], *args: str) -> dict:
    code = main([*args, "--server", replica.address, "--api-key", ADMIN_KEY, "--json"])
    out = capsys.readouterr().out
    assert code == 0, out
    return json.loads(out)


def http_status(replica: Replica, key: str, path: str = "/v1/galleries") -> requests.Response:
    return requests.get(replica.base + path, headers={"x-api-key": key}, timeout=30)


def refused_within(replica: Replica, key: str, seconds: float) -> tuple[float, str]:
    """Seconds until `key` is refused by `replica` (polling), and the refusal's message."""
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        response = http_status(replica, key)
        if response.status_code == 401:
            return time.monotonic() - start, response.json()["error"]["message"]
        time.sleep(0.1)
    pytest.fail(f"key still accepted after {seconds} s")


def test_create_use_revoke_across_processes(
    replicas: tuple[Replica, Replica], capsys: pytest.CaptureFixture[str]
) -> None:
    a, b = replicas
    issued = cli(a, capsys, "keys", "create", "--role", "enroll", "--gallery", "people",
                 "--name", "door")  # fmt: skip
    secret, key_id = issued["key"], issued["api_key"]["key_id"]
    assert secret.startswith("fdb_") and issued["api_key"]["galleries"] == ["people"]

    with client(b.address, secret) as on_b:  # created on A, used on B
        enrolled = on_b.enroll("people", "alice", [ALICE], allow_multiple_faces=True)
        assert enrolled.created
        with pytest.raises(grpc.RpcError) as denied:
            on_b.create_gallery("mine")
        assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with ALICE_AGAIN.open("rb") as photo:
        found = requests.post(
            a.base + "/v1/galleries/people/identify",
            files={"image": photo},
            headers={"x-api-key": secret},
            timeout=120,
        )
    assert found.json()["faces"][0]["candidates"][0]["external_id"] == "alice"
    assert http_status(a, secret, "/v1/galleries/other").status_code == 403

    listed = cli(b, capsys, "keys", "list")["api_keys"]
    mine = next(k for k in listed if k["key_id"] == key_id)
    assert mine["role"] == "enroll" and mine["last_used_at"]
    assert "key" not in mine and secret not in json.dumps(listed)

    revoked = cli(b, capsys, "keys", "revoke", key_id)
    assert revoked["revoked_at"]
    assert http_status(b, secret).status_code == 401  # at once where it was revoked
    seconds, message = refused_within(a, secret, REVOCATION_BOUND_S)
    assert message == f"API key {key_id} was revoked"
    with client(a.address, secret) as on_a, pytest.raises(grpc.RpcError) as refused:
        on_a.stats()
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    remaining = cli(a, capsys, "keys", "list").get("api_keys", [])
    assert key_id not in [k["key_id"] for k in remaining]
    print(f"revocation reached the other process after {seconds:.2f} s")


def test_rotation_replaces_the_secret_everywhere(
    replicas: tuple[Replica, Replica], capsys: pytest.CaptureFixture[str]
) -> None:
    a, b = replicas
    issued = cli(a, capsys, "keys", "create", "--role", "search")
    old, key_id = issued["key"], issued["api_key"]["key_id"]
    assert not issued["api_key"].get("view_crops")  # search keys: off unless granted
    assert http_status(b, old).status_code == 200
    rotated = cli(a, capsys, "keys", "rotate", key_id)
    new = rotated["key"]
    assert rotated["api_key"]["key_id"] == key_id and new != old
    refused_within(b, old, REVOCATION_BOUND_S)
    assert http_status(b, new).status_code == 200


def test_expired_key_is_refused(replicas: tuple[Replica, Replica]) -> None:
    a, b = replicas
    with client(a.address) as admin:
        issued = admin.create_api_key("search", expires_in_seconds=1)
    assert http_status(b, issued.key).status_code == 200
    time.sleep(1.2)
    refused = http_status(b, issued.key)
    assert refused.status_code == 401
    assert refused.json()["error"]["message"] == f"API key {issued.api_key.key_id} has expired"


def test_rate_limit_is_429_with_retry_after_on_both_transports(
    replicas: tuple[Replica, Replica],
) -> None:
    a, _ = replicas
    with client(a.address) as admin:
        limited = admin.create_api_key("search", rate_limit=2).key
    statuses = [http_status(a, limited, "/v1/stats") for _ in range(6)]
    refused = [r for r in statuses if r.status_code == 429]
    assert refused and statuses[0].status_code == 200
    assert int(refused[0].headers["retry-after"]) >= 1
    assert refused[0].json()["error"]["status"] == "RESOURCE_EXHAUSTED"
    assert "rate limit of 2 requests/s" in refused[0].json()["error"]["message"]

    codes = []
    with client(a.address, limited) as db:
        for _ in range(6):
            try:
                db.stats()
                codes.append(grpc.StatusCode.OK)
            except grpc.RpcError as error:
                codes.append(error.code())
                trailing = dict(error.trailing_metadata() or ())
    assert grpc.StatusCode.RESOURCE_EXHAUSTED in codes
    assert int(trailing["retry-after"]) >= 1


def test_only_admins_of_every_gallery_manage_keys(replicas: tuple[Replica, Replica]) -> None:
    a, _ = replicas
    with client(a.address) as admin:
        scoped_admin = admin.create_api_key("admin", ["people"]).key
        with pytest.raises(grpc.RpcError) as bad_role:
            admin.create_api_key("root")
        assert bad_role.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        with pytest.raises(grpc.RpcError) as unknown:
            admin.revoke_api_key("nosuchkey")
        assert unknown.value.code() == grpc.StatusCode.NOT_FOUND
    for key in (scoped_admin, "enroll-a"):
        with client(a.address, key) as caller, pytest.raises(grpc.RpcError) as denied:
            caller.create_api_key("admin")
        assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
    response = requests.post(
        a.base + "/v1/keys", json={"role": "admin"}, headers={"x-api-key": scoped_admin}
    )
    assert response.status_code == 403 and "all galleries" in response.json()["error"]["message"]


def test_audit_log_says_who_did_what_without_keys_or_images(
    replicas: tuple[Replica, Replica],
) -> None:
    a, b = replicas
    with client(a.address) as admin:
        issued = admin.create_api_key("enroll", ["people"])
    secret, key_id = issued.key, issued.api_key.key_id
    with client(b.address, secret) as clerk:
        clerk.enroll("people", "carol", [ALICE], allow_multiple_faces=True, allow_duplicate=True)
        clerk.delete_identity("people", "carol")
        with pytest.raises(grpc.RpcError):
            clerk.delete_gallery("people")
    with ALICE_AGAIN.open("rb") as photo:
        requests.post(
            a.base + "/v1/galleries/people/identify",
            files={"image": photo},
            headers={"x-api-key": secret},
            timeout=120,
        )
    lines = a.audit_lines() + b.audit_lines()
    created = [e for e in a.audit_lines() if e["action"] == "CreateApiKey"]
    assert created[-1]["target"] == key_id and created[-1]["role"] == "admin"
    mine = sorted((e for e in lines if e["key_id"] == key_id), key=lambda e: e["ts"])
    assert [(e["transport"], e["action"], e["status"]) for e in mine] == [
        ("grpc", "Enroll", "OK"),
        ("grpc", "DeleteIdentity", "OK"),
        ("grpc", "DeleteGallery", "PERMISSION_DENIED"),  # refusals too
        ("http", "Identify", "OK"),
    ]
    assert all(e["role"] == "enroll" and e["gallery"] == "people" for e in mine)
    assert [e["target"] for e in mine[:2]] == ["carol", "carol"]
    text = a.audit.read_text() + b.audit.read_text()
    assert ADMIN_KEY not in text and "fdb_" not in text
    assert "/9j/" not in text  # no base64 JPEG data


def test_serve_without_any_key_refuses_to_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """No bootstrap key and no managed key in the database: nobody could ever call it."""
    monkeypatch.delenv("FACEDB_API_KEYS", raising=False)
    command = ["serve", "--text-logs", "--data-dir", str(tmp_path), "--port", "0"]
    assert main([*command, "--detector", SCRFD, "--recognizer", ARCFACE]) == 2
    assert any("no API keys configured" in r.getMessage() for r in caplog.records)
