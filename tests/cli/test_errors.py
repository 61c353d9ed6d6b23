"""A user mistake anywhere in the CLI is one line saying what and what to do, exit 2.

Each case runs the real `facedb` command as a subprocess and checks that stderr holds no
traceback, only log records and one error line naming the problem.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from facedb.cli import main
from tests.cli.support import Result, closed_port, facedb
from tests.paths import ARCFACE, LFW, MODELS, SCRFD
from tests.service.support import client, running_server

PHOTO = LFW / "images" / "Tony_Blair" / "Tony_Blair_0001.jpg"


def assert_one_line(result: Result, command: str, *expected: str) -> str:
    assert result.code == 2, result.err
    assert "Traceback" not in result.err
    lines = result.error_lines()
    assert len(lines) == 1, lines
    line = lines[0]
    assert line.startswith(f"facedb {command}: "), line
    for text in expected:
        assert text in line, line
    return line


def test_detect_with_a_registry_model_that_cannot_be_fetched(tmp_path: Path) -> None:
    offline = {
        "FACEDB_MODEL_DIR": str(tmp_path / "empty-cache"),
        "FACEDB_MODEL_MIRROR": f"http://127.0.0.1:{closed_port()}",
    }
    result = facedb("detect", str(PHOTO), "--detector", "SCRFD_500M_KPS", env=offline)
    # What: the model is not available; what to do: where to put which file.
    assert_one_line(result, "detect", "SCRFD_500M_KPS is not available", "place it at")


def test_compare_with_a_registry_model_that_cannot_be_fetched(tmp_path: Path) -> None:
    offline = {
        "FACEDB_MODEL_DIR": str(tmp_path / "empty-cache"),
        "FACEDB_MODEL_MIRROR": f"http://127.0.0.1:{closed_port()}",
    }
    args = ("compare", str(PHOTO), str(PHOTO), "--detector", SCRFD, "--recognizer", "ARCFACE_MNET")
    result = facedb(*args, env=offline)
    assert_one_line(result, "compare", "ARCFACE_MNET is not available", "place it at")


def test_compare_with_a_missing_model_file() -> None:
    missing = f"arcface:{MODELS / 'no_such_model.onnx'}"
    result = facedb("compare", str(PHOTO), str(PHOTO), "--detector", SCRFD, "--recognizer", missing)
    assert_one_line(result, "compare", "no_such_model.onnx", "not found")


def test_identify_a_file_that_does_not_exist(tmp_path: Path) -> None:
    result = facedb("identify", "nofile.jpg", "--gallery", "staff", cwd=tmp_path)
    assert_one_line(result, "identify", "nofile.jpg", "No such file")


def test_reindex_with_a_bad_model_spec(tmp_path: Path) -> None:
    with running_server(tmp_path) as (_server, address), client(address) as db:
        db.create_gallery("staff")  # a gallery to re-embed, made through the real service
    args = ("--data-dir", str(tmp_path), "--gallery", "staff", "--model", "nofamily:x.onnx")
    result = facedb("reindex", *args)
    assert_one_line(result, "reindex", "unknown model 'nofamily:x.onnx'", "FAMILY:PATH")


def test_serve_with_postgresql_down(tmp_path: Path) -> None:
    url = f"postgresql+psycopg://postgres@127.0.0.1:{closed_port()}/postgres"
    result = facedb(
        "serve",
        "--database-url",
        url,
        "--insecure-no-auth",
        "--port",
        "0",
        "--detector",
        SCRFD,
        "--recognizer",
        ARCFACE,
        "--liveness",
        "",
    )
    assert result.code == 2 and "Traceback" not in result.err
    records = [json.loads(line) for line in result.err.splitlines()]  # JSON logs, one a line
    errors = [r["msg"] for r in records if r["level"] == "ERROR"]
    assert len(errors) == 1, errors
    assert "cannot use the database" in errors[0] and "Connection refused" in errors[0]
    assert "--database-url" in errors[0]  # what to do


def test_migrate_with_an_unknown_database_scheme() -> None:
    result = facedb("migrate", "--database-url", "nosuchdb://x")
    assert_one_line(result, "migrate", "bad database URL", "nosuchdb")


def test_enroll_a_folder_that_does_not_exist(tmp_path: Path) -> None:
    result = facedb("enroll", str(tmp_path / "nobody"), "--gallery", "staff")
    assert_one_line(result, "enroll", "is not a directory")


@pytest.mark.parametrize(
    ("args", "command", "expected"),
    [
        (["detect"], "facedb detect", "required: image"),
        (["identify", "x.jpg", "--gallery", "g", "--top-k", "many"], "facedb identify", "int"),
        (["nosuchcommand"], "facedb", "invalid choice"),
    ],
)
def test_argument_mistakes_are_one_line(
    args: list[str], command: str, expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(args) == 2  # in-process: argparse's handling needs no subprocess to show
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{command}: ") and expected in lines[0]
    assert "--help" in lines[0]  # where to read more


def test_the_safety_net_turns_a_known_error_into_one_line(tmp_path: Path) -> None:
    # A data directory that is a file: the store cannot open its database.
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    result = facedb("migrate", "--data-dir", str(not_a_dir))
    assert result.code == 2 and "Traceback" not in result.err
    assert len(result.error_lines()) == 1
    assert result.error_lines()[0].startswith("facedb migrate: ")
