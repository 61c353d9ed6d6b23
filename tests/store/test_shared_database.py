"""Two `facedb serve` processes on one database: the duplicate check holds across them.

Each server keeps its own FAISS index; only the database is shared. A face one server
accepted must be a duplicate for the other at once, also when both get it at the same time.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from facedb.client import FaceDBClient
from facedb.storage.db import migrate
from facedb.v1 import facedb_pb2 as pb
from tests.paths import LFW
from tests.service.support import ServerProcess, client, start_server_process
from tests.store.conftest import DatabaseFactory

GALLERY = "shared"
AT_ONCE = ["Tony_Blair", "Donald_Rumsfeld", "Gerhard_Schroeder"]


def photo(name: str, number: int = 1) -> Path:
    return LFW / "images" / name / f"{name}_{number:04d}.jpg"


def test_duplicate_check_holds_across_processes(databases: DatabaseFactory, tmp_path: Path) -> None:
    url = databases.create()
    migrate(url)
    with ThreadPoolExecutor(2) as pool:
        starting = [pool.submit(_serve, tmp_path, side, url) for side in ("a", "b")]
        servers = [future.result() for future in starting if future.exception() is None]
        try:
            assert len(servers) == 2, [future.exception() for future in starting]
            a, b = (client(server.address) for server in servers)
            a.create_gallery(GALLERY)
            # Both servers load the gallery's index before the other one writes to it.
            assert _accepted(_enroll(a, "warm-a", photo("Ariel_Sharon")))
            assert _accepted(_enroll(b, "warm-b", photo("Hugo_Chavez")))
            # One after the other: server b must see the face server a has just written.
            assert _accepted(_enroll(a, "colin", photo("Colin_Powell")))
            second = _enroll(b, "impostor", photo("Colin_Powell"))
            assert not _accepted(second)
            rejection = second.outcomes[0].rejection
            assert rejection.reason == pb.DUPLICATE and rejection.duplicate_of == "colin"
            # At the same time: exactly one of the two identities gets the face.
            for person in AT_ONCE:
                sent = [
                    pool.submit(_enroll, side, f"{person}-{tag}", photo(person))
                    for side, tag in ((a, "a"), (b, "b"))
                ]
                assert sorted(_accepted(future.result()) for future in sent) == [False, True]
            holders = {identity.external_id for identity in a.iter_identities(GALLERY)}
            assert len(holders) == 3 + len(AT_ONCE)
        finally:
            codes = [server.stop() for server in servers]
    assert codes == [0, 0]


def _serve(tmp_path: Path, side: str, url: str) -> ServerProcess:
    return start_server_process(tmp_path / side, tmp_path / f"{side}.log", "--database-url", url)


def _enroll(side: FaceDBClient, external_id: str, image: Path) -> pb.EnrollResponse:
    return side.enroll(GALLERY, external_id, [image], allow_multiple_faces=True)


def _accepted(response: pb.EnrollResponse) -> bool:
    return bool(response.outcomes) and all(outcome.accepted for outcome in response.outcomes)
