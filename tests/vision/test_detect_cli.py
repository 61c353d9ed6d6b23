"""`facedb detect` on real photos."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import pytest

from facedb.cli import main
from tests.paths import EDGE, SCRFD

PHOTO = EDGE / "group" / "openface_longoria_cooper.jpg"


def test_detect_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["detect", str(PHOTO), "--detector", SCRFD, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["family"] == "scrfd" and (report["width"], report["height"]) == (293, 473)
    assert len(report["faces"]) == 2
    first = report["faces"][0]
    assert len(first["box"]) == 4 and len(first["landmarks"]) == 5 and first["score"] > 0.5


def test_detect_text_and_drawing(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("FACEDB_DETECTOR", SCRFD)  # the default detector comes from the env
    out = tmp_path / "faces.png"
    assert main(["detect", str(PHOTO), "--draw", str(out), "--score-threshold", "0.6"]) == 0
    text = capsys.readouterr().out
    assert "2 face(s)" in text and text.count("landmarks") == 2
    drawn, original = cv2.imread(str(out)), cv2.imread(str(PHOTO))
    assert drawn.shape == original.shape and (drawn != original).any()


def test_detect_input_size_and_threshold(capsys) -> None:
    args = ["detect", str(PHOTO), "--detector", SCRFD, "--json", "--input-size", "160x160"]
    assert main([*args, "--score-threshold", "0.99"]) == 0
    assert json.loads(capsys.readouterr().out)["faces"] == []


def test_detect_unreadable_image(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"x")
    assert main(["detect", str(bad), "--detector", SCRFD]) == 2
    assert "facedb detect" in capsys.readouterr().err


def test_detect_rejects_a_bad_size(capsys) -> None:
    assert main(["detect", str(PHOTO), "--input-size", "640"]) == 2
    assert "expected WIDTHxHEIGHT" in capsys.readouterr().err
