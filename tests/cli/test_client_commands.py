"""The client commands cover the API, with exit codes a script can use.

A real server on a loopback port (fixture SCRFD + ArcFace models), real LFW photos, the real
`facedb` argument parser and handlers.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from facedb.cli import main
from facedb.client import FaceDBClient
from tests.paths import EDGE, LFW
from tests.service.support import ADMIN_KEY, running_server

PEOPLE = ("Colin_Powell", "Tony_Blair", "Gray_Davis")
COFFEE = EDGE / "no_face" / "skimage_coffee.png"
STRANGER = LFW / "images" / "Aaron_Eckhart" / "Aaron_Eckhart_0001.jpg"  # a distractor


def lfw(name: str, number: int) -> Path:
    return LFW / "images" / name / f"{name}_{number:04d}.jpg"


@pytest.fixture(scope="module")
def address(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_server(tmp_path_factory.mktemp("cli-data")) as (_server, address):
        yield address


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One folder per identity, plus `coffee` (no face) and a file that is no image."""
    root = tmp_path_factory.mktemp("people")
    for name in PEOPLE:
        (root / name).mkdir()
        for number in (1, 2):
            (root / name / lfw(name, number).name).symlink_to(lfw(name, number))
    (root / "coffee").mkdir()
    (root / "coffee" / "cup.png").symlink_to(COFFEE)
    return root


@pytest.fixture(scope="module")
def staff(address: str, root: Path) -> str:
    """A gallery with the three people enrolled through the CLI."""
    assert main(["gallery", "create", "staff", "--server", address, "--api-key", ADMIN_KEY]) == 0
    enroll = ["enroll", str(root), "--gallery", "staff", "--allow-multiple-faces"]
    assert main([*enroll, "--server", address, "--api-key", ADMIN_KEY]) == 0
    return "staff"


def run(
    address: str, capsys: pytest.CaptureFixture[str], *args: str, key: str = ADMIN_KEY
) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main([*args, "--server", address, "--api-key", key])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# ----------------------------------------------------------------------- enroll report


def test_enroll_prints_a_line_per_file(
    address: str, root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run(address, capsys, "gallery", "create", "report")
    # (Tony_Blair_0001 shows a second face: take the largest, so every photo has one.)
    enroll = ("enroll", str(root), "--gallery", "report", "--allow-multiple-faces")
    code, out, _ = run(address, capsys, *enroll)
    assert code == 0
    lines = out.splitlines()
    refused = [line for line in lines if line.startswith("refused")]
    assert refused == [f"refused   {root / 'coffee' / 'cup.png'}  NO_FACE: {_no_face(out)}"]
    accepted = [line for line in lines if line.startswith("accepted")]
    assert len(accepted) == 6 and all("face " in line for line in accepted)
    assert str(root / "Tony_Blair" / "Tony_Blair_0002.jpg") in "\n".join(accepted)
    assert "4 identities, 3 created; 6 images accepted, 1 rejected" in out


def test_enrolling_the_same_folder_again_adds_nothing(
    address: str, root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each identity's request id names its photos: a re-run is answered from receipts."""
    run(address, capsys, "gallery", "create", "rerun")
    enroll = ("enroll", str(root), "--gallery", "rerun", "--allow-multiple-faces")
    first = run(address, capsys, *enroll)[1]
    code, again, _ = run(address, capsys, *enroll)
    assert code == 0
    accepted = sorted(line for line in first.splitlines() if line.startswith("accepted"))
    assert sorted(line for line in again.splitlines() if line.startswith("accepted")) == accepted
    with FaceDBClient(address, api_key=ADMIN_KEY) as db:
        assert db.get_gallery("rerun").face_count == len(accepted)


def _no_face(out: str) -> str:
    line = next(line for line in out.splitlines() if "NO_FACE:" in line)
    return line.split("NO_FACE: ", 1)[1]


def test_enroll_reports_unreadable_files_and_sends_nothing_for_them(
    address: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    run(address, capsys, "gallery", "create", "unreadable")
    root = tmp_path / "root"
    (root / "ghost").mkdir(parents=True)
    (root / "ghost" / "gone.jpg").symlink_to(tmp_path / "deleted.jpg")  # dangling
    (root / "Gray_Davis").mkdir()
    (root / "Gray_Davis" / "a.jpg").symlink_to(lfw("Gray_Davis", 1))
    code, out, _ = run(address, capsys, "enroll", str(root), "--gallery", "unreadable")
    assert code == 0
    assert f"refused   {root / 'ghost' / 'gone.jpg'}  UNREADABLE: No such file" in out
    assert "2 identities, 1 created; 1 images accepted, 1 rejected" in out
    code, out, _ = run(address, capsys, "identity", "list", "--gallery", "unreadable")
    assert out.split("\t")[0] == "Gray_Davis" and "ghost" not in out


def test_enroll_json_report(
    address: str, root: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    run(address, capsys, "gallery", "create", "json-report")
    small = tmp_path / "small"
    (small / "Gray_Davis").mkdir(parents=True)
    (small / "Gray_Davis" / "a.jpg").symlink_to(lfw("Gray_Davis", 1))
    (small / "Gray_Davis" / "cup.png").symlink_to(COFFEE)
    code, out, _ = run(address, capsys, "enroll", str(small), "--gallery", "json-report", "--json")
    report = json.loads(out)
    by_file = {Path(f["path"]).name: f for f in report["files"]}
    assert code == 0 and set(by_file) == {"a.jpg", "cup.png"}
    assert by_file["a.jpg"]["accepted"] and by_file["a.jpg"]["face_id"] > 0
    assert not by_file["cup.png"]["accepted"] and by_file["cup.png"]["reason"] == "NO_FACE"
    assert report["summary"]["images_accepted"] == 1
    assert report["summary"]["rejections_by_reason"] == {"NO_FACE": 1}


def test_enroll_into_a_missing_gallery_stops_at_the_first_refusal(
    address: str, root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(address, capsys, "enroll", str(root), "--gallery", "never-made")
    assert code == 2
    assert (out + err).count("NOT_FOUND") == 2  # the one refused file line + the error line
    assert "stopped, 3 identities not sent" in err
    # The bar counts results the server has processed (1 of 4), not requests sent.
    bars = [part for part in err.replace("\r", "\n").splitlines() if "identity/s" in part]
    assert bars and " 1/4 " in bars[-1], bars


# ---------------------------------------------------------------------- identities, faces


def test_identity_list_get_update_delete(
    address: str, staff: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(address, capsys, "identity", "list", "--gallery", staff)
    assert code == 0 and {line.split("\t")[0] for line in out.splitlines()} == set(PEOPLE)

    code, out, _ = run(
        address, capsys, "identity", "update", "Gray_Davis", "--gallery", staff,
        "--display-name", "Gray Davis", "--set", "role=governor",
    )  # fmt: skip
    assert code == 0 and "Gray Davis" in out and "role=governor" in out

    code, out, _ = run(
        address, capsys, "identity", "get", "Gray_Davis", "--gallery", staff, "--json"
    )
    identity = json.loads(out)
    assert identity["display_name"] == "Gray Davis" and identity["metadata"] == {"role": "governor"}
    assert len(identity["face_ids"]) == 2

    code, out, _ = run(
        address, capsys, "face", "delete", identity["face_ids"][0], "--gallery", staff
    )
    assert code == 0
    code, out, _ = run(
        address, capsys, "identity", "get", "Gray_Davis", "--gallery", staff, "--json"
    )
    assert json.loads(out)["face_ids"] == identity["face_ids"][1:]

    code, out, _ = run(address, capsys, "identity", "delete", "Gray_Davis", "--gallery", staff)
    assert code == 0 and "1 faces erased" in out
    code, _, err = run(address, capsys, "identity", "get", "Gray_Davis", "--gallery", staff)
    assert code == 2 and err.startswith("facedb identity: NOT_FOUND")

    code, out, _ = run(address, capsys, "identity", "list", "--gallery", staff, "--json")
    listed = {i["external_id"] for i in json.loads(out)["identities"]}
    assert listed == {"Colin_Powell", "Tony_Blair"}


def test_identity_update_needs_something_to_change(
    address: str, staff: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(address, capsys, "identity", "update", "Tony_Blair", "--gallery", staff)
    assert code == 2 and "nothing to update" in err
    code, _, err = run(
        address, capsys, "identity", "update", "Tony_Blair", "--gallery", staff, "--set", "x"
    )
    assert code == 2 and "KEY=VALUE" in err


# ---------------------------------------------------------------- identify / verify codes


def test_identify_exit_codes_and_target_fpir(
    address: str, staff: str, capsys: pytest.CaptureFixture[str]
) -> None:
    search = ("--gallery", staff, "--json")
    code, out, _ = run(address, capsys, "identify", str(lfw("Tony_Blair", 3)), *search)
    assert code == 0 and json.loads(out)["faces"][0]["candidates"][0]["external_id"] == "Tony_Blair"
    code, out, _ = run(address, capsys, "identify", str(STRANGER), *search)
    assert code == 1 and json.loads(out)["faces"][0].get("candidates", []) == []
    code, out, _ = run(address, capsys, "identify", str(COFFEE), "--gallery", staff)
    assert code == 3 and "no face found" in out

    # A stricter FPIR means a higher threshold; the server says which one it applied.
    loose = run(address, capsys, "identify", str(STRANGER), *search, "--target-fpir", "0.1")
    strict = run(address, capsys, "identify", str(STRANGER), *search, "--target-fpir", "0.001")
    assert json.loads(strict[1])["threshold"] > json.loads(loose[1])["threshold"]
    code, _, err = run(
        address, capsys, "identify", str(STRANGER), "--gallery", staff,
        "--threshold", "0.5", "--target-fpir", "0.01",
    )  # fmt: skip
    assert code == 2 and "not allowed with argument" in err


def test_verify_exit_codes_identity_and_target_far(
    address: str, staff: str, capsys: pytest.CaptureFixture[str]
) -> None:
    same = (str(lfw("Colin_Powell", 3)), str(lfw("Colin_Powell", 4)))
    code, out, _ = run(address, capsys, "verify", *same)
    assert code == 0 and out.startswith("same person")
    code, out, _ = run(address, capsys, "verify", same[0], str(lfw("Tony_Blair", 3)))
    assert code == 1 and out.startswith("different people")
    code, out, _ = run(address, capsys, "verify", str(COFFEE), same[0])
    assert code == 3 and out.startswith("cannot verify: NO_FACE")

    probe = str(lfw("Tony_Blair", 4))
    code, out, _ = run(
        address, capsys, "verify", probe, "--identity", "Tony_Blair", "--gallery", staff, "--json"
    )
    answer = json.loads(out)
    assert code == 0 and answer["match"] and int(answer["reference_face_id"]) > 0
    code, out, _ = run(
        address, capsys, "verify", probe, "--identity", "Colin_Powell", "--gallery", staff
    )
    assert code == 1

    loose = run(address, capsys, "verify", *same, "--json", "--target-far", "0.01")
    strict = run(address, capsys, "verify", *same, "--json", "--target-far", "0.0001")
    assert json.loads(strict[1])["threshold"] > json.loads(loose[1])["threshold"]

    code, _, err = run(address, capsys, "verify", probe, "--identity", "Tony_Blair")
    assert code == 2 and "--identity needs --gallery" in err
    code, _, err = run(address, capsys, "verify", probe)
    assert code == 2 and "REFERENCE image or --identity" in err


def test_refused_calls_exit_2_and_an_unreachable_server_4(
    address: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(address, capsys, "stats", key="wrong-key")
    assert code == 2 and "UNAUTHENTICATED" in err and "--api-key" in err
    code, _, err = run("127.0.0.1:1", capsys, "stats")
    assert code == 4 and "UNAVAILABLE" in err and "is a facedb server running" in err
