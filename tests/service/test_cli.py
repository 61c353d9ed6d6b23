"""The client commands of `facedb` against a real server on a loopback port."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from facedb.cli import main
from tests.paths import ARCFACE, EDGE, LFW
from tests.service.support import ADMIN_KEY, running_server

PEOPLE = ("Colin_Powell", "Tony_Blair", "Gray_Davis")


@pytest.fixture(scope="module")
def address(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_server(tmp_path_factory.mktemp("cli-data")) as (_server, address):
        yield address


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One folder per identity (the folder name is the external id), and one without a face."""
    root = tmp_path_factory.mktemp("people")
    for name in PEOPLE:
        folder = root / name
        folder.mkdir()
        for number in (1, 2):
            image = LFW / "images" / name / f"{name}_{number:04d}.jpg"
            (folder / image.name).symlink_to(image)
    (root / "coffee").mkdir()
    (root / "coffee" / "cup.png").symlink_to(EDGE / "no_face" / "skimage_coffee.png")
    return root


def run(
    address: str, capsys: pytest.CaptureFixture[str], *args: str, key: str = ADMIN_KEY
) -> tuple[int, str, str]:
    code = main([*args, "--server", address, "--api-key", key])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_gallery_enroll_identify_verify_stats(
    address: str, root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(address, capsys, "gallery", "create", "people")
    assert code == 0 and "created gallery people" in out

    code, out, err = run(
        address, capsys, "enroll", str(root), "--gallery", "people", "--allow-multiple-faces"
    )
    assert code == 0, err
    assert "4 identities, 3 created" in out and "6 images accepted, 1 rejected" in out
    assert "NO_FACE" in out

    probe = LFW / "images" / "Tony_Blair" / "Tony_Blair_0003.jpg"
    code, out, _ = run(address, capsys, "identify", str(probe), "--gallery", "people", "--json")
    answer = json.loads(out)
    assert code == 0 and answer["faces"][0]["candidates"][0]["external_id"] == "Tony_Blair"

    code, out, _ = run(address, capsys, "identify", str(probe), "--gallery", "people")
    assert out.split("\t")[0].endswith("Tony_Blair")

    same = [str(LFW / "images" / "Colin_Powell" / f"Colin_Powell_000{n}.jpg") for n in (3, 4)]
    code, out, _ = run(address, capsys, "verify", *same, "--json")
    verdict = json.loads(out)
    assert code == 0 and verdict["match"] is True and verdict["score"] >= verdict["threshold"]

    code, out, _ = run(address, capsys, "stats", "--json")
    stats = json.loads(out)
    assert stats["galleries"][0]["name"] == "people"
    assert int(stats["identities"]) == 3 and int(stats["faces"]) == 6

    code, out, _ = run(address, capsys, "gallery", "list", "--json")
    assert json.loads(out)["galleries"][0]["identity_count"] == "3"  # int64 as JSON string

    reindex = ("gallery", "reindex", "people", "--model", ARCFACE, "--batch-size", "4")
    code, out, err = run(address, capsys, *reindex)
    assert code == 0, err
    assert out.splitlines()[:3] == [
        "embedding\t4/6 faces",
        "embedding\t6/6 faces",
        "building\t6/6 faces",
    ]
    assert "switched\t6/6 faces" in out and "gallery people: model arcface" in out
    code, _, err = run(address, capsys, "gallery", "reindex", "people", "--index", "btree")
    assert code == 2 and "INVALID_ARGUMENT" in err and "btree" in err

    code, out, _ = run(address, capsys, "gallery", "delete", "people")
    assert code == 0
    code, out, _ = run(address, capsys, "gallery", "list")
    assert "people" not in out


def test_errors_print_the_status_and_exit_2(
    address: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(address, capsys, "stats", key="wrong-key")
    assert code == 2 and "UNAUTHENTICATED" in err
    code, _, err = run(address, capsys, "gallery", "delete", "never-made")
    assert code == 2 and "NOT_FOUND" in err
