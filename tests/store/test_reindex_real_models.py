"""End to end: a gallery enrolled with ArcFace is re-embedded with MobileFaceNet-512 by
`facedb reindex --model`, from the stored PNG crops of real LFW photos."""

from __future__ import annotations

import csv
from collections import defaultdict

import cv2
import numpy as np
import pytest

from facedb.cli import main as facedb_main
from facedb.storage.catalog import Catalog, GalleryConfig, NewFace
from facedb.vision.align import align_face
from facedb.vision.detect import load_detector
from facedb.vision.embed import load_embedder
from tests.paths import ARCFACE, DATA, LFW, MODELS, SCRFD
from tests.store.conftest import gallery_name

MOBILEFACENET = f"mobileface:{MODELS / 'mobilefacenet512.onnx'}"
PEOPLE = 10


@pytest.fixture(scope="module")
def lfw_crops(shared_dir) -> dict[str, dict[str, list[bytes]]]:
    """{person: {"gallery": [png crops], "probe": [png crops]}} for the first people that
    have both roles in the LFW gallery/probe split."""
    roles: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    with (LFW / "gallery_probe.csv").open() as stream:
        for row in csv.DictReader(stream):
            roles[row["identity"]][row["role"]].append(row["path"])
    people = [p for p, r in roles.items() if r["gallery"] and r["probe"]][:PEOPLE]
    detector = load_detector(SCRFD)
    return {
        person: {role: [_crop(detector, roles[person][role][0])] for role in ("gallery", "probe")}
        for person in people
    }


def _crop(detector, relative_path: str) -> bytes:
    image = cv2.imread(str(DATA / relative_path))
    face = detector.detect(image)[0]
    ok, png = cv2.imencode(".png", align_face(image, np.asarray(face.landmarks)))
    assert ok
    return png.tobytes()


def _embed(embedder, crops: list[bytes]) -> np.ndarray:
    images = [cv2.imdecode(np.frombuffer(crop, np.uint8), cv2.IMREAD_COLOR) for crop in crops]
    return embedder.embed(np.stack(images))


def test_cli_reindex_from_arcface_to_mobilefacenet(database_url, tmp_path, lfw_crops) -> None:
    arcface, mobile = load_embedder(ARCFACE), load_embedder(MOBILEFACENET)
    name = gallery_name("real")
    data_dir = tmp_path / "data"
    ids: dict[str, int] = {}
    with Catalog.open(database_url, data_dir / "index", snapshot_interval=None) as catalog:
        catalog.create_gallery(GalleryConfig(name, arcface.name, arcface.sha256, arcface.dim))
        for person, crops in lfw_crops.items():
            vectors = _embed(arcface, crops["gallery"])
            faces = [NewFace(vectors[0], crop=crops["gallery"][0])]
            (ids[person],) = catalog.add_faces(name, person, faces, display_name=person)

    args = ["reindex", "--database-url", database_url, "--data-dir", str(data_dir)]
    assert facedb_main([*args, "--gallery", name, "--model", MOBILEFACENET]) == 0

    with Catalog.open(database_url, data_dir / "index", snapshot_interval=None) as catalog:
        info = catalog.get_gallery(name)
        assert (info.model_sha256, info.dim) == (mobile.sha256, mobile.dim)
        people = list(lfw_crops)
        own = catalog.search(name, _embed(mobile, [lfw_crops[p]["gallery"][0] for p in people]))
        assert [row[0].face_id for row in own] == [ids[p] for p in people]
        assert all(row[0].score > 0.99 for row in own)
        probes = catalog.search(name, _embed(mobile, [lfw_crops[p]["probe"][0] for p in people]))
        right = [row[0].external_id == person for row, person in zip(probes, people, strict=True)]
        assert sum(right) >= 0.8 * PEOPLE, right  # another photo finds the same person
        assert catalog.get_identity(name, people[0]).display_name == people[0]
