"""Every command block of README.md runs, in order, and does what the README says.

The blocks run as written, in bash, from a scratch folder laid out like a checkout beside
`../shared`: `facedb` on PATH is this tree's CLI, and the README's file names are real
photos placed in that folder (the mapping below). The README's `facedb serve` block is
the server the later blocks talk to; it is stopped before the "Offline tools" block
(reindex wants the server stopped). The only textual substitutions are the ports (free
loopback ports instead of 50051 / 8080 / 9100) and the calibration data (a tiny LFW-shaped folder
instead of five folds of LFW, which takes many minutes).

Commands that cannot run inside a test are skipped only by the explicit allow-list below,
and each allow-listed command that talks to the server is checked by sending the same
request through the Python client instead.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import grpc
import pytest
from google.protobuf.json_format import Parse

from facedb.client import FaceDBClient
from facedb.v1 import facedb_pb2 as pb
from tests.eval.test_calibrate_cli import tiny_lfw
from tests.paths import EDGE, LFW, MODELS, REPO, SHARED

README = REPO / "README.md"
SERVER_START_TIMEOUT_S = 180
COMMAND_TIMEOUT_S = 600


def lfw(name: str, number: int) -> Path:
    return LFW / "images" / name / f"{name}_{number:04d}.jpg"


# The README's file names -> real photos. alice is Tony Blair, bob is Colin Powell.
PHOTOS = {
    "people/alice/1.jpg": lfw("Tony_Blair", 2),
    "people/alice/2.jpg": lfw("Tony_Blair", 4),
    "people/bob/1.jpg": lfw("Colin_Powell", 1),
    "people/bob/2.jpg": lfw("Colin_Powell", 2),
    "alice.jpg": lfw("Tony_Blair", 5),
    "a.jpg": lfw("Colin_Powell", 3),
    "b.jpg": lfw("Colin_Powell", 4),
    "photo.jpg": EDGE / "group" / "uniface_src_friends.jpg",
}
# door.jpg: Tony Blair enlarged to a photo of normal size, larger than a shell argument may be.
DOOR = (lfw("Tony_Blair", 3), 1400)
# The registry's SCRFD_500M_KPS is byte-identical to the fixture file: a cache holding it lets
# `facedb models download SCRFD_500M_KPS` succeed without the network.
CACHED_MODELS = {"scrfd_500m.onnx": MODELS / "scrfd_500m_kps.onnx"}

# Commands the test does not run, each with the reason (a prefix of the logical command).
ALLOW_LIST = {
    "make serve": "installs the package, then runs `facedb serve` (the serve block runs)",
    "make test": "the test suite itself",
    "grpcurl": "grpcurl is not installable here: the same request goes through the client",
    "docker": "no Docker daemon here: tests/test_docker.py parses the Dockerfile and compose",
    "facedb serve --host 0.0.0.0": "needs a certificate: tests/service/test_tls.py and "
    "test_mtls.py serve TLS and mTLS on loopback with a throwaway CA",
    "facedb stats --server db.example": "a TLS server by name: see tests/service/test_tls.py",
    "curl --cacert": "a TLS server by name: see tests/service/test_tls.py",
}


@dataclass
class Block:
    heading: str
    language: str  # "sh" (an indented block) or the fence's language
    text: str

    def commands(self) -> list[str]:
        """Logical commands: continuation lines joined, blank lines dropped."""
        joined = re.sub(r"\\\n\s*", " ", self.text)
        return [line.strip() for line in joined.splitlines() if line.strip()]


def readme_blocks(text: str) -> list[Block]:
    """Indented (4-space) and fenced code blocks, with the heading they sit under."""
    blocks: list[Block] = []
    heading, fence, lines = "", None, []
    previous_blank = True
    for line in [*text.splitlines(), ""]:
        if fence is not None:
            if line.startswith("```"):
                blocks.append(Block(heading, fence, "\n".join(lines)))
                fence, lines = None, []
            else:
                lines.append(line)
            continue
        if line.startswith("    ") and (lines or previous_blank):
            lines.append(line[4:])
            continue
        if lines:
            blocks.append(Block(heading, "sh", "\n".join(lines)))
            lines = []
        if line.startswith("```"):
            fence = line[3:].strip()
        elif line.startswith("#"):
            heading = line.lstrip("#").strip()
        previous_blank = not line.strip()
    return blocks


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Workspace:
    root: Path
    work: Path
    env: dict[str, str]
    substitutions: dict[str, str]
    outputs: list[tuple[str, str]] = field(default_factory=list)  # (command block, stdout)
    server: subprocess.Popen | None = None
    server_log: Path | None = None

    def substitute(self, text: str) -> str:
        for old, new in self.substitutions.items():
            text = text.replace(old, new)
        return text

    def run(self, script: str, language: str = "sh") -> str:
        command = ["bash", "-e", "-o", "pipefail", "-c", script]
        if language == "python":
            command = [sys.executable, "-c", script]
        done = subprocess.run(
            command,
            cwd=self.work,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT_S,
        )
        assert done.returncode == 0, f"{script}\nexit {done.returncode}\n{done.stderr[-3000:]}"
        self.outputs.append((script, done.stdout))
        return done.stdout

    def start_server(self, script: str) -> None:
        self.server_log = self.root / "serve.log"
        with self.server_log.open("w") as log:
            self.server = subprocess.Popen(
                ["bash", "-e", "-c", script],
                cwd=self.work,
                env=self.env,
                stdout=log,
                stderr=log,
                start_new_session=True,  # SIGTERM to the group reaches `facedb serve`
            )
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while "facedb serving" not in self.server_log.read_text():
            assert self.server.poll() is None, self.server_log.read_text()[-3000:]
            assert time.monotonic() < deadline, "the README's server did not start"
            time.sleep(0.2)

    def stop_server(self) -> None:
        if self.server is None or self.server.poll() is not None:
            self.server = None
            return
        os.killpg(self.server.pid, signal.SIGTERM)
        self.server.wait(timeout=60)
        assert self.server_log is not None
        deadline = time.monotonic() + 60
        while "facedb stopped" not in self.server_log.read_text():
            assert time.monotonic() < deadline, self.server_log.read_text()[-3000:]
            time.sleep(0.2)
        self.server = None


def _place_photos(work: Path) -> None:
    for name, source in PHOTOS.items():
        (work / name).parent.mkdir(parents=True, exist_ok=True)
        (work / name).symlink_to(source)
    source, side = DOOR
    door = cv2.resize(cv2.imread(str(source)), (side, side), interpolation=cv2.INTER_CUBIC)
    assert cv2.imwrite(str(work / "door.jpg"), door, [cv2.IMWRITE_JPEG_QUALITY, 95])
    assert (work / "door.jpg").stat().st_size > 128 * 1024  # beyond one shell argument


def _facedb_on_path(bin_dir: Path) -> None:
    bin_dir.mkdir()
    wrapper = bin_dir / "facedb"
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m facedb "$@"\n')
    wrapper.chmod(0o755)


@pytest.fixture
def workspace(tmp_path: Path, shared_dir: Path) -> Iterator[Workspace]:
    work = tmp_path / "checkout"
    work.mkdir()
    (tmp_path / "shared").symlink_to(SHARED, target_is_directory=True)  # ../shared
    _place_photos(work)
    _facedb_on_path(tmp_path / "bin")
    models = tmp_path / "models"
    models.mkdir()
    for name, source in CACHED_MODELS.items():
        (models / name).symlink_to(source)
    (tmp_path / "home").mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FACEDB_")}
    env.update(
        PATH=f"{tmp_path / 'bin'}{os.pathsep}{env['PATH']}",
        PYTHONPATH=str(REPO),
        HOME=str(tmp_path / "home"),  # nothing goes to the real ~/.facedb
        FACEDB_MODEL_DIR=str(models),
        FACEDB_ORT_THREADS="1",
    )
    calibration_data = tiny_lfw(tmp_path)
    substitutions = {
        "50051": str(free_port()),
        "9100": str(free_port()),
        "8080": str(free_port()),
        "--lfw ../shared/data/lfw --folds 1-5": (
            f"--lfw {calibration_data} --folds 1 --detector-input 256x256 --threads 1"
        ),
    }
    space = Workspace(tmp_path, work, env, substitutions)
    try:
        yield space
    finally:
        space.stop_server()


# ------------------------------------------------------- checks of allow-listed commands


def _grpc_target(space: Workspace) -> str:
    return f"127.0.0.1:{space.substitutions['50051']}"


def check_health(space: Workspace, command: str) -> None:
    with FaceDBClient(_grpc_target(space)) as db:
        assert db.health() == "SERVING"


def check_identify_body(space: Workspace, command: str) -> None:
    """The JSON body grpcurl would send (`-d @ < identify.json`), sent with the same key."""
    body = (space.work / "identify.json").read_text()
    request = Parse(body, pb.IdentifyRequest())  # proto3 JSON, as grpcurl reads it
    assert request.image == (space.work / "door.jpg").read_bytes()
    key = re.search(r"-H 'x-api-key: (\S+)'", command)
    assert key is not None
    with grpc.insecure_channel(_grpc_target(space)) as channel:
        stub = FaceDBClient(channel=channel).stub
        answer = stub.Identify(request, metadata=(("x-api-key", key.group(1)),), timeout=120)
    assert answer.faces[0].candidates[0].external_id == "alice"


SERVER_CHECKS: dict[str, Callable[[Workspace, str], None]] = {
    "grpc.health.v1.Health/Check": check_health,
    "facedb.v1.FaceDB/Identify": check_identify_body,
}


def _allow_listed(command: str) -> str | None:
    return next((prefix for prefix in ALLOW_LIST if command.startswith(prefix)), None)


def _checks_for(command: str) -> Callable[[Workspace, str], None] | None:
    if not command.startswith("grpcurl"):
        return None
    found = [check for marker, check in SERVER_CHECKS.items() if marker in command]
    assert len(found) == 1, f"no check for allow-listed {command!r}"
    return found[0]


# -------------------------------------------------------------------------------- test


def test_every_readme_command_block_runs(workspace: Workspace) -> None:
    blocks = readme_blocks(README.read_text())
    assert len(blocks) >= 6
    skipped: set[str] = set()
    for block in blocks:
        if block.heading == "Offline tools":
            workspace.stop_server()  # reindex works on a stopped server's database
        text = workspace.substitute(block.text)
        if block.language == "python":
            out = workspace.run(text, "python")
            assert "'alice'" in out, out  # a candidate, not "no match"
            continue
        assert block.language == "sh", block
        runnable, later = [], []
        for command in Block(block.heading, "sh", text).commands():
            prefix = _allow_listed(command)
            if prefix is None:
                runnable.append(command)
                continue
            skipped.add(prefix)
            check = _checks_for(command)
            if check is not None:
                later.append((check, command))
        script = "\n".join(runnable)
        if any(c.startswith("facedb serve") for c in runnable):
            workspace.start_server(script)
        elif runnable:
            workspace.run(script)
        for check, command in later:
            check(workspace, command)
    assert skipped == set(ALLOW_LIST), "an allow-list entry matches nothing: remove it"
    _check_outputs(workspace)


def _output_of(space: Workspace, command: str) -> str:
    return next(out for script, out in space.outputs if command in script)


def _check_outputs(space: Workspace) -> None:
    """What the README promises each example prints."""
    identify = json.loads(_json_after(space, "facedb identify door.jpg"))
    assert identify["faces"][0]["candidates"][0]["external_id"] == "alice"
    cli = _output_of(space, "facedb gallery create staff")
    assert "created gallery staff" in cli
    assert "4 images accepted, 0 rejected" in cli
    assert "same person" in cli and "deleted identity bob" in cli
    offline = _output_of(space, "facedb detect photo.jpg")
    assert "cosine similarity" in offline and "SCRFD_500M_KPS:" in offline
    assert (space.work / "faces.png").is_file()
    assert list((space.work / "calibration").glob("*.json"))


def _json_after(space: Workspace, command: str) -> str:
    """The JSON document a command of a block printed (the first `{` ... matching `}`)."""
    out = _output_of(space, command)
    start = out.index("{", out.index(" created; ") if " created; " in out else 0)
    depth = 0
    for end, char in enumerate(out[start:], start):
        depth += {"{": 1, "}": -1}.get(char, 0)
        if depth == 0:
            return out[start : end + 1]
    raise AssertionError("no JSON document in the output")
