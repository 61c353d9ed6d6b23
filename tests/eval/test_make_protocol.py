"""The LFW-derived IJB-style protocol: layout, disjoint galleries, open-set probes, pairs."""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from benchmarks.make_protocol import make_protocol
from tests.paths import LFW


def rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def protocol_dir(tmp_path_factory, shared_dir) -> Path:
    return make_protocol(tmp_path_factory.mktemp("protocol"), small=True, seed=3, lfw_dir=LFW)


def test_same_seed_same_protocol(protocol_dir: Path, tmp_path: Path):
    again = make_protocol(tmp_path / "again", small=True, seed=3, lfw_dir=LFW)
    for name in ("templates.csv", "media.csv", "verify_pairs.csv", "gallery_G1.csv"):
        assert (again / name).read_bytes() == (protocol_dir / name).read_bytes()
    other = make_protocol(tmp_path / "other", small=True, seed=4, lfw_dir=LFW)
    assert (other / "media.csv").read_bytes() != (protocol_dir / "media.csv").read_bytes()


def test_galleries_are_disjoint_and_probes_include_unenrolled_people(protocol_dir: Path):
    g1 = {r["subject_id"] for r in rows(protocol_dir / "gallery_G1.csv")}
    g2 = {r["subject_id"] for r in rows(protocol_dir / "gallery_G2.csv")}
    probes = rows(protocol_dir / "probes.csv")
    assert g1 and g2 and not g1 & g2
    unenrolled = [r for r in probes if r["subject_id"] not in g1 | g2]
    assert len(unenrolled) >= 40
    enrolled_templates = {r["template_id"] for r in rows(protocol_dir / "gallery_G1.csv")}
    assert not enrolled_templates & {r["template_id"] for r in probes}
    # Every enrolled person also has at least one probe template.
    assert g1 | g2 <= {r["subject_id"] for r in probes}


def test_templates_hold_one_to_three_images_in_media_of_one_or_two(protocol_dir: Path):
    media = rows(protocol_dir / "media.csv")
    per_template = Counter(r["template_id"] for r in media)
    per_media = Counter(r["media_id"] for r in media)
    assert set(per_template.values()) <= {1, 2, 3} and 2 in per_template.values()
    assert set(per_media.values()) == {1, 2}
    assert all((LFW.parent / r["path"]).is_file() for r in media)
    info = json.loads((protocol_dir / "protocol.json").read_text())
    assert 150 <= info["images"] <= 400  # "small": a few hundred images


def test_pair_labels_match_subjects(protocol_dir: Path):
    subject = {int(r["template_id"]): r["subject_id"] for r in rows(protocol_dir / "templates.csv")}
    pairs = np.loadtxt(protocol_dir / "verify_pairs.csv", delimiter=",", skiprows=1, dtype=int)
    same = np.array([subject[a] == subject[b] for a, b in pairs[:, :2]])
    assert np.array_equal(same, pairs[:, 2] == 1)
    assert 0 < same.sum() < len(same)
    assert len({(a, b) for a, b in pairs[:, :2]}) == len(pairs)
