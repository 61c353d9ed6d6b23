"""`facedb analyze` and `facedb cluster` on real photos, as a user runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2

from facedb.cli import main
from tests.paths import ARCFACE, EDGE, REPO, SCRFD
from tests.vision.analysis.support import AGEGENDER, EMOTION, lfw_path

SMILE = lfw_path("Tiger_Woods", 2)
GROUP = EDGE / "group" / "openface_longoria_cooper.jpg"  # a woman and a man


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    environment = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "facedb", *args],
        capture_output=True, text=True, timeout=120, env=environment, cwd=REPO,
    )  # fmt: skip


def test_analyze_json_in_a_subprocess(tmp_path: Path) -> None:
    out = tmp_path / "drawn.png"
    result = run_cli(
        "analyze", str(SMILE), "--attributes", "age,gender,emotion", "--json",
        "--draw", str(out), "--detector", SCRFD, "--emotion", EMOTION,
        env={"FACEDB_AGEGENDER_MODEL": AGEGENDER},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["attributes"] == ["age", "gender", "emotion"]
    assert set(report["models"]) == {"agegender", "emotion"}
    (face,) = report["faces"]
    attributes = face["attributes"]
    assert attributes["gender"] == "male" and attributes["gender_confidence"] > 0.9
    assert 15 < attributes["age"] < 50 and attributes["emotion"]["label"] == "happy"
    assert len(face["box"]) == 4 and len(face["landmarks"]) == 5
    drawn = cv2.imread(str(out))
    assert drawn.shape == cv2.imread(str(SMILE)).shape


def test_analyze_every_configured_attribute_by_default(capsys) -> None:
    args = ["analyze", str(GROUP), "--detector", SCRFD, "--agegender", AGEGENDER]
    assert main([*args, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["attributes"] == ["age", "gender"]
    assert sorted(f["attributes"]["gender"] for f in report["faces"]) == ["female", "male"]
    assert main(args) == 0
    assert "2 face(s)" in capsys.readouterr().out


def test_analyze_mistakes_are_one_line_and_exit_2(tmp_path: Path, capsys) -> None:
    for args in (
        ["--attributes", "shoe_size", "--agegender", AGEGENDER],
        ["--attributes", "occlusion", "--agegender", AGEGENDER],
        [],  # no model configured at all
        ["--agegender", str(tmp_path / "missing.onnx")],
    ):
        assert main(["analyze", str(SMILE), "--detector", SCRFD, *args]) == 2, args
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("facedb analyze: "), lines


def test_cluster_groups_a_folder_of_lfw_photos(tmp_path: Path, capsys) -> None:
    people = ("Colin_Powell", "Serena_Williams", "Tony_Blair")
    for name in people:
        for number in (1, 2, 3):
            (tmp_path / f"{name}_{number}.jpg").symlink_to(lfw_path(name, number))
    args = ["cluster", str(tmp_path), "--detector", SCRFD, "--recognizer", ARCFACE, "--json"]
    assert main(args) == 0
    report = json.loads(capsys.readouterr().out)
    clusters = report["clusters"]
    names = [sorted({Path(m["image"]).name.rsplit("_", 1)[0] for m in c}) for c in clusters]
    # Some photos hold bystanders; every group of two or more is one person, and each of
    # the three people has one group holding all three of their photos.
    sized = list(zip(names, clusters, strict=True))
    assert all(len(n) == 1 for n, c in sized if len(c) > 1)
    assert sorted(n[0] for n, c in sized if len(c) >= 3) == list(people)
    assert main(["cluster", str(tmp_path / "nope"), "--recognizer", ARCFACE]) == 2


def test_analyze_an_image_without_a_face_exits_3(capsys) -> None:
    empty = EDGE / "no_face"
    photo = sorted(p for p in empty.iterdir() if p.suffix.lower() in {".jpg", ".png"})[0]
    args = ["analyze", str(photo), "--detector", SCRFD, "--agegender", AGEGENDER, "--json"]
    assert main(args) == 3
    assert json.loads(capsys.readouterr().out)["faces"] == []
