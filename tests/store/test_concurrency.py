"""8 threads search while 2 threads enroll and delete, for 10 seconds.

Each enrollment adds two faces with the same vector, so a search sees a write whole or not
at all: a query near that vector finds both faces or neither. After a deletion returns, no
search that starts later may return the deleted faces.
"""

from __future__ import annotations

import threading
import time
from collections import deque

import numpy as np

from facedb.storage.catalog import Catalog, NewFace
from tests.store.conftest import make_gallery, unit_vectors

DURATION_S = 10.0
SEARCHERS, WRITERS = 8, 2


class Shared:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.deleted: set[int] = set()
        self.recent: deque[tuple[np.ndarray, tuple[int, int]]] = deque(maxlen=64)
        self.errors: list[str] = []
        self.searches = 0
        self.deletions = 0


def test_searches_during_writes(catalog: Catalog) -> None:
    name = make_gallery(catalog)
    background = unit_vectors(500, seed=21)
    for start in range(0, 500, 250):
        catalog.add_faces(
            name, f"bg-{start}", [NewFace(v) for v in background[start : start + 250]]
        )
    shared = Shared()
    deadline = time.monotonic() + DURATION_S
    threads = [
        threading.Thread(target=_guard, args=(shared, _write, catalog, name, shared, deadline, w))
        for w in range(WRITERS)
    ] + [
        threading.Thread(target=_guard, args=(shared, _search, catalog, name, shared, deadline, s))
        for s in range(SEARCHERS)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert shared.errors == []
    assert shared.searches > 100 and shared.deletions > 10
    assert sorted(catalog.index_ids(name).tolist()) == catalog.face_ids(name)


def _guard(shared: Shared, work, *args) -> None:
    try:
        work(*args)
    except Exception as error:  # any exception in any thread fails the test
        with shared.lock:
            shared.errors.append(f"{work.__name__}: {error!r}")


def _write(catalog: Catalog, name: str, shared: Shared, deadline: float, worker: int) -> None:
    rng = np.random.default_rng(100 + worker)
    alive: deque[tuple[str, tuple[int, int]]] = deque()
    number = 0
    while time.monotonic() < deadline:
        vector = rng.standard_normal(512).astype(np.float32)
        external_id = f"w{worker}-{number}"
        number += 1
        pair = tuple(catalog.add_faces(name, external_id, [NewFace(vector), NewFace(vector)]))
        alive.append((external_id, pair))
        with shared.lock:
            shared.recent.append((vector, pair))
        if len(alive) > 5:
            doomed_id, doomed_pair = alive.popleft()
            assert catalog.delete_identity(name, doomed_id) == 2
            with shared.lock:  # only now has the deletion returned
                shared.deleted.update(doomed_pair)
                shared.deletions += 1


def _search(catalog: Catalog, name: str, shared: Shared, deadline: float, worker: int) -> None:
    rng = np.random.default_rng(200 + worker)
    while time.monotonic() < deadline:
        with shared.lock:
            if not shared.recent:
                continue
            picks = [shared.recent[i] for i in rng.integers(len(shared.recent), size=4)]
            deleted_before = set(shared.deleted)
        results = catalog.search(name, np.stack([vector for vector, _ in picks]), k=5)
        for (_, pair), hits in zip(picks, results, strict=True):
            found = {hit.face_id for hit in hits if hit.score > 0.99}
            if found & deleted_before:
                shared.errors.append(f"deleted faces {found & deleted_before} returned")
            if found and found != set(pair):
                shared.errors.append(f"half a write visible: {found} of {pair}")
        with shared.lock:
            shared.searches += 1
