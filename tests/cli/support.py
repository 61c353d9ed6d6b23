"""Run the real `facedb` command as a subprocess (the tree under test on PYTHONPATH)."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from tests.paths import REPO

# A log record of the CLI's plain-text logging (anything else on stderr is the error line).
LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ (DEBUG|INFO|WARNING) ")
COMMAND_TIMEOUT_S = 300


@dataclass
class Result:
    code: int
    out: str
    err: str

    def error_lines(self) -> list[str]:
        """stderr without log records and progress bars: what the user is told."""
        lines = self.err.replace("\r", "\n").splitlines()
        return [
            line
            for line in lines
            if line.strip() and not LOG_LINE.match(line) and not _is_progress_bar(line)
        ]


def _is_progress_bar(line: str) -> bool:
    return bool(re.search(r"\d+/\d+ \[", line))


def facedb(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> Result:
    """`python -m facedb ARGS` with the tree under test importable."""
    environment = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "FACEDB_ORT_THREADS": "1",
        **(env or {}),
    }
    done = subprocess.run(
        [sys.executable, "-m", "facedb", *args],
        capture_output=True,
        text=True,
        env=environment,
        cwd=cwd or REPO,
        timeout=COMMAND_TIMEOUT_S,
    )
    return Result(done.returncode, done.stdout, done.stderr)


def closed_port() -> int:
    """A loopback port nothing listens on (bound once, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
