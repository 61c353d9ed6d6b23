"""`facedb detect --attributes`: the detections carry the asked attributes (real SCRFD and
AgeGender on a real photo of a woman and a man), in the text, JSON and drawn outputs."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from facedb.cli import main
from facedb.cli.analysis import LABEL_COLOUR
from tests.paths import EDGE, SCRFD
from tests.vision.analysis.support import AGEGENDER

GROUP = EDGE / "group" / "openface_longoria_cooper.jpg"  # a woman and a man
DETECT = ["detect", str(GROUP), "--detector", SCRFD]


@pytest.fixture(autouse=True)
def no_configured_models(monkeypatch: pytest.MonkeyPatch) -> None:
    for kind in ("AGEGENDER", "FAIRFACE", "EMOTION", "LANDMARKS", "GAZE", "PARSING", "XSEG"):
        monkeypatch.delenv(f"FACEDB_{kind}_MODEL", raising=False)


def test_detect_json_carries_the_asked_attributes(capsys, monkeypatch) -> None:
    monkeypatch.setenv("FACEDB_AGEGENDER_MODEL", AGEGENDER)  # the model from the environment
    assert main([*DETECT, "--json", "--attributes", "gender,age"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["attributes"] == ["gender", "age"] and list(report["models"]) == ["agegender"]
    faces = report["faces"]
    assert sorted(f["attributes"]["gender"] for f in faces) == ["female", "male"]
    for face in faces:
        assert set(face["attributes"]) == {"gender", "gender_confidence", "age"}
        assert 15 < face["attributes"]["age"] < 70 and len(face["box"]) == 4
        assert "rejection" in face  # the gate verdict is still there

    assert main([*DETECT, "--json"]) == 0  # not asked: no attributes at all
    plain = json.loads(capsys.readouterr().out)
    assert "attributes" not in plain and all("attributes" not in f for f in plain["faces"])


def test_detect_text_and_drawing_show_the_attributes(tmp_path: Path, capsys) -> None:
    labelled, plain = tmp_path / "labelled.png", tmp_path / "plain.png"
    args = [*DETECT, "--attributes", "age,gender", "--agegender", AGEGENDER]
    assert main([*args, "--draw", str(labelled)]) == 0
    text = capsys.readouterr().out
    assert "gender=female" in text and "gender=male" in text and text.count("age=") == 2
    assert main([*DETECT, "--draw", str(plain)]) == 0
    capsys.readouterr()
    label_pixels = [
        int(np.all(cv2.imread(str(path)) == LABEL_COLOUR, axis=2).sum())
        for path in (labelled, plain)
    ]
    assert label_pixels[0] > 50 and label_pixels[1] == 0  # the labels under the boxes


def test_detect_attribute_mistakes_are_one_line_and_exit_2(tmp_path: Path, capsys) -> None:
    for args, words in (
        (["--attributes", "shoe_size", "--agegender", AGEGENDER], "unknown attribute"),
        (["--attributes", "emotion", "--agegender", AGEGENDER], "FACEDB_EMOTION_MODEL"),
        (["--attributes", " , "], "--attributes is empty"),
        (["--attributes", "age", "--agegender", str(tmp_path / "missing.onnx")], "missing"),
    ):
        assert main([*DETECT, *args]) == 2, args
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("facedb detect: "), lines
        assert words in lines[0], lines
