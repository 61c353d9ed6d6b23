"""`facedb compare`: cosine similarity of two photos' main faces, through the real CLI."""

from __future__ import annotations

import json

import pytest

from facedb.cli import main
from tests.paths import ARCFACE, EDGE, LFW, SCRFD

BLAIR = LFW / "images" / "Tony_Blair"
POWELL = LFW / "images" / "Colin_Powell"


def compare(capsys: pytest.CaptureFixture[str], a: object, b: object) -> dict:
    code = main(["compare", str(a), str(b), "--detector", SCRFD, "--recognizer", ARCFACE, "--json"])
    assert code == 0
    return json.loads(capsys.readouterr().out)


def test_same_person_scores_above_different_people(capsys: pytest.CaptureFixture[str]) -> None:
    same = compare(capsys, BLAIR / "Tony_Blair_0001.jpg", BLAIR / "Tony_Blair_0002.jpg")
    other = compare(capsys, BLAIR / "Tony_Blair_0001.jpg", POWELL / "Colin_Powell_0002.jpg")
    assert same["similarity"] > 0.3 > other["similarity"]
    assert same["recognizer"] == "arcface_w600k_mbf_int8-float32"  # the default graph
    assert len(same["faces"]) == 2


def test_no_face_is_reported_with_exit_code_3(capsys: pytest.CaptureFixture[str]) -> None:
    coffee = EDGE / "no_face" / "skimage_coffee.png"
    args = ["compare", str(coffee), str(BLAIR / "Tony_Blair_0001.jpg")]
    assert main([*args, "--detector", SCRFD, "--recognizer", ARCFACE]) == 3
    assert "no face found" in capsys.readouterr().err


def test_unreadable_image_is_exit_code_2(capsys: pytest.CaptureFixture[str]) -> None:
    broken = EDGE / "corrupt" / "thumbor_image_invalid_1byte.jpg"
    args = ["compare", str(broken), str(BLAIR / "Tony_Blair_0001.jpg")]
    assert main([*args, "--detector", SCRFD, "--recognizer", ARCFACE]) == 2
    assert "facedb compare:" in capsys.readouterr().err
