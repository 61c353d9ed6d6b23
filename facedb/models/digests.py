"""The on-disk index of model files' SHA-256, so the next process need not hash them again.

A JSON list of [resolved path, size, mtime_ns, sha256] rows in the user's cache directory
(`$XDG_CACHE_HOME/facedb`, default `~/.cache/facedb`), kept out of the model directories so
they hold models only. It only saves time: a row counts only while its file still has that
size and mtime, and `facedb models verify` ignores it and re-hashes every file.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path

log = logging.getLogger(__name__)

INDEX_NAME = "model-sha256.json"

Version = tuple[str, int, int]  # (resolved path, size, mtime_ns)


def file_version(path: Path) -> Version:
    stat = path.stat()  # follows symlinks: the version of the bytes actually read
    return (str(path.resolve()), stat.st_size, stat.st_mtime_ns)


def index_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME", "").strip() or "~/.cache"
    return Path(base).expanduser() / "facedb"


def read_index(directory: Path) -> dict[Version, str]:
    """The rows of `directory`'s index; none when it is missing or unreadable."""
    index = directory / INDEX_NAME
    try:
        rows = json.loads(index.read_text())
        return {(str(p), int(size), int(mtime)): str(sha) for p, size, mtime, sha in rows}
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, TypeError) as exc:
        log.warning("ignoring unreadable digest index %s: %s", index, exc)
        return {}


def write_index(directory: Path, digests: dict[Version, str]) -> None:
    """Replace `directory`'s index with the rows whose file is unchanged, atomically.

    Best effort: a read-only directory only loses the cross-process memo.
    """
    rows = []
    for version, digest in digests.items():
        try:
            if file_version(Path(version[0])) == version:
                rows.append([*version, digest])
        except OSError:
            continue  # gone since it was hashed
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(prefix=f"{INDEX_NAME}.", suffix=".part", dir=directory)
    except OSError as exc:
        log.debug("digest index not saved in %s: %s", directory, exc)
        return
    try:
        with os.fdopen(fd, "w") as out:
            json.dump(sorted(rows), out)
        os.replace(temp, directory / INDEX_NAME)
    except OSError as exc:
        log.debug("digest index not saved in %s: %s", directory, exc)
    finally:
        Path(temp).unlink(missing_ok=True)
