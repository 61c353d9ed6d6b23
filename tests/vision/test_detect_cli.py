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


def test_drawing_marks_refused_faces_red_with_the_reason(tmp_path: Path, capsys) -> None:
    """Two faces the enrollment gates accept and one too small: green boxes vs a red one."""
    photo = EDGE / "group" / "uniface_src_friends.jpg"
    out = tmp_path / "faces.png"
    assert main(["detect", str(photo), "--detector", SCRFD, "--json", "--draw", str(out)]) == 0
    faces = json.loads(capsys.readouterr().out)["faces"]
    reasons = [(f["rejection"] or {}).get("reason") for f in faces]
    assert reasons.count(None) == 2 and reasons.count("FACE_TOO_SMALL") == 1
    drawn = cv2.imread(str(out))
    thickness = max(1, round(max(drawn.shape[:2]) / 500))
    for face, reason in zip(faces, reasons, strict=True):
        colour = GREEN if reason is None else RED
        x1, y1, x2, _ = (round(v) for v in face["box"])
        top_edge = drawn[y1, x1 + thickness : x2 - thickness]
        assert (top_edge == colour).all(axis=1).mean() > 0.9, (reason, face["box"])
        label = reason or f"{face['score']:.2f}"
        # The ink of the label spans about the rendered text's width (side bearings aside):
        # "FACE_TOO_SMALL" is about four times as wide as a score such as "0.86".
        expected = _text_width(label, thickness)
        assert 0.85 * expected <= _label_width(drawn, x1, y1, colour) <= expected


GREEN, RED = (0, 255, 0), (0, 0, 255)  # BGR


def _label_width(drawn, x1: int, y1: int, colour: tuple[int, int, int]) -> int:
    """Width of the run of `colour` pixels in the label band just above a box."""
    band = drawn[max(y1 - 40, 0) : y1 - 3, max(x1 - 2, 0) : x1 + 400]
    columns = (band == colour).all(axis=2).any(axis=0).nonzero()[0]
    return int(columns.max() - columns.min() + 1) if columns.size else 0


def _text_width(label: str, thickness: int) -> int:
    (width, _), _ = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, 0.4 * thickness, thickness)
    return width
