"""Two `facedb serve` processes on one database: the duplicate check holds across them.

Each server keeps its own FAISS index; only the database is shared. A face one server
accepted must be a duplicate for the other at once, also when both get it at the same time.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

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
        servers = list(pool.map(lambda side: _serve(tmp_path, side, url), ["a", "b"]))
        try:
            a, b = (client(server.address) for server in servers)
            a.create_gallery(GALLERY)
            # Both servers load the gallery's index before the other one writes to it.
            assert _accepted(a.enroll(GALLERY, "warm-a", [photo("Ariel_Sharon")]))
            assert _accepted(b.enroll(GALLERY, "warm-b", [photo("Hugo_Chavez")]))
            # One after the other: server b must see the face server a has just written.
            assert _accepted(a.enroll(GALLERY, "colin", [photo("Colin_Powell")]))
            second = b.enroll(GALLERY, "impostor", [photo("Colin_Powell")])
            assert not _accepted(second)
            rejection = second.outcomes[0].rejection
            assert rejection.reason == pb.DUPLICATE and rejection.duplicate_of == "colin"
            # At the same time: exactly one of the two identities gets the face.
            for person in AT_ONCE:
                sent = [
                    pool.submit(side.enroll, GALLERY, f"{person}-{tag}", [photo(person)])
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


def _accepted(response: pb.EnrollResponse) -> bool:
    return bool(response.outcomes) and all(outcome.accepted for outcome in response.outcomes)
