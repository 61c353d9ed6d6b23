"""The process the crash test kills: it enrolls (and sometimes deletes) faces forever."""

from __future__ import annotations

import hashlib
from multiprocessing.connection import Connection

import faiss
import numpy as np

from facedb.index.backend import open_backend
from facedb.storage.catalog import Catalog, NewFace

DIM = 512


def vector_for(external_id: str, position: int) -> np.ndarray:
    """The embedding of face `position` of an identity: a pure function of both."""
    seed = int.from_bytes(hashlib.sha256(f"{external_id}/{position}".encode()).digest()[:8])
    vector = np.random.default_rng(seed).standard_normal(DIM).astype(np.float32)
    return vector / np.linalg.norm(vector)


def enroll_forever(
    url: str,
    index_dir: str,
    gallery: str,
    round_no: int,
    pipe: Connection,
    backend: tuple[str, str | None] = ("faiss", None),
):
    faiss.omp_set_num_threads(1)
    # Frequent snapshots, so that some kills land in the middle of writing one.
    catalog = Catalog.open(
        url, index_dir, migrate=False, snapshot_interval=0.05, backend=open_backend(*backend)
    )
    catalog.search(gallery, vector_for("warm-up", 0), k=1)  # load (and repair) the index
    rng = np.random.default_rng(round_no)
    pipe.send("ready")
    enrolled: list[str] = []
    for number in range(1_000_000):
        external_id = f"r{round_no}-{number}"
        count = int(rng.integers(1, 4))
        faces = [NewFace(vector_for(external_id, j), crop=b"c" * 64) for j in range(count)]
        catalog.add_faces(gallery, external_id, faces)
        enrolled.append(external_id)
        if number % 5 == 4:  # removals must survive the crash as well
            catalog.delete_identity(gallery, enrolled.pop(int(rng.integers(len(enrolled)))))


def enroll_and_acknowledge(
    url: str,
    index_dir: str,
    gallery: str,
    round_no: int,
    pipe: Connection,
    backend: tuple[str, str | None] = ("faiss", None),
):
    """Enroll (and now and then delete) until the database goes away; every call that
    returned is reported on `pipe`: ("added", external_id, face ids) / ("deleted", id)."""
    faiss.omp_set_num_threads(1)
    catalog = Catalog.open(
        url, index_dir, migrate=False, snapshot_interval=0.05, backend=open_backend(*backend)
    )
    catalog.search(gallery, vector_for("warm-up", 0), k=1)
    pipe.send(("ready",))
    enrolled: list[str] = []
    try:
        for number in range(1_000_000):
            external_id = f"p{round_no}-{number}"
            faces = [NewFace(vector_for(external_id, j)) for j in range(2)]
            pipe.send(("added", external_id, catalog.add_faces(gallery, external_id, faces)))
            enrolled.append(external_id)
            if number % 5 == 4:
                doomed = enrolled.pop(0)
                catalog.delete_identity(gallery, doomed)
                pipe.send(("deleted", doomed))
    except Exception as error:  # the primary died: report and stop
        pipe.send(("error", f"{type(error).__name__}: {error}"[:300]))
