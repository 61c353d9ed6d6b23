"""Where registry models come from: the cache, local model directories, or a download.

A file is trusted only after its SHA-256 matches the registry. `FACEDB_MODEL_DIR` is one
directory or several joined with `os.pathsep` (default `~/.facedb/models`); the first is the
cache that downloads and `facedb models import` write to, and every one is searched by
content, so `det_500m.onnx` (insightface) or `scrfd_500m_kps.onnx` (uniface) is
SCRFD_500M_KPS whatever it is called, without the network. Only `*.onnx` files directly in
a directory count (symlinks followed, hidden and partial files skipped). Digests are
remembered per (path, size, mtime), in memory and across processes (`digests.py`).

Downloads stream into a temporary file beside the destination and are moved into place
with `os.replace`, so a reader never sees a half-written model, even when several processes
fetch the same file.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from http.client import HTTPException
from pathlib import Path
from typing import IO
from urllib.parse import urlsplit

from tqdm import tqdm

from facedb.models.digests import Version, file_version, index_dir, read_index, write_index
from facedb.models.errors import ModelUnavailableError
from facedb.models.registry import REGISTRY, RegistryEntry

log = logging.getLogger(__name__)

CHUNK = 1 << 20  # hashing reads 1 MiB at a time
DOWNLOAD_CHUNK = 256 << 10
ATTEMPTS = 3
BACKOFF_SECONDS = 1.0  # sleeps 1 s then 2 s between the three attempts
TIMEOUT_SECONDS = 60.0

DEFAULT_MODEL_DIR = "~/.facedb/models"
MODEL_FILE_MODE = 0o644

# (path, size, mtime_ns) → SHA-256: a file that has not changed is not hashed twice.
_digests: dict[Version, str] = {}
_digests_lock = threading.Lock()
_index_loaded = False
_hash_count = 0  # files hashed by this process (scan saves the index when it grew)
# One lock per destination so two threads asking for the same model download it once.
_path_locks: dict[str, threading.Lock] = {}


class _ChecksumError(Exception):
    """Downloaded bytes differ from the registry's SHA-256 (retrying will not help)."""


def model_dirs() -> list[Path]:
    """Every model directory (FACEDB_MODEL_DIR, `os.pathsep`-separated), the cache first."""
    text = os.environ.get("FACEDB_MODEL_DIR", "").strip() or DEFAULT_MODEL_DIR
    return [Path(part).expanduser() for part in text.split(os.pathsep) if part.strip()]


def model_dir() -> Path:
    """The cache: where downloads and imports go."""
    return model_dirs()[0]


def cached_path(entry: RegistryEntry) -> Path:
    return model_dir() / entry.filename


def model_url(entry: RegistryEntry) -> str:
    """The upstream URL, or the same file name under FACEDB_MODEL_MIRROR when that is set."""
    mirror = os.environ.get("FACEDB_MODEL_MIRROR", "").strip()
    if not mirror:
        return entry.url
    basename = urlsplit(entry.url).path.rsplit("/", 1)[-1]
    return f"{mirror.rstrip('/')}/{basename}"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def file_digest(path: Path, *, rehash: bool = False) -> str:
    """SHA-256 of `path`, remembered per (path, size, mtime) unless `rehash` is set."""
    key = file_version(path)
    _load_index()
    with _digests_lock:
        known = None if rehash else _digests.get(key)
    if known is not None:
        return known
    global _hash_count
    digest = sha256_file(path)
    _remember(path, digest)
    with _digests_lock:
        _hash_count += 1
    return digest


def _remember(path: Path, digest: str) -> None:
    key = file_version(path)
    with _digests_lock:
        _digests[key] = digest


def _load_index() -> None:
    """Merge the cross-process index into the memo, once per process."""
    global _index_loaded
    with _digests_lock:
        if _index_loaded:
            return
        _index_loaded = True
    rows = read_index(index_dir())
    with _digests_lock:
        for key, digest in rows.items():
            _digests.setdefault(key, digest)


def save_digests() -> None:
    """Write the memo to the cross-process index (best effort)."""
    with _digests_lock:
        known = dict(_digests)
    write_index(index_dir(), known)


def is_valid(entry: RegistryEntry, path: Path, *, rehash: bool = False) -> bool:
    return path.is_file() and file_digest(path, rehash=rehash) == entry.sha256


def _unavailable(entry: RegistryEntry, path: Path, reason: str) -> ModelUnavailableError:
    return ModelUnavailableError(
        f"model {entry.name} is not available: {reason}. "
        f"Download {model_url(entry)} and place it at {path}, or put the file under any "
        f"name in a FACEDB_MODEL_DIR directory or run `facedb models import DIR` "
        f"(expected SHA-256 {entry.sha256})"
    )


# ---- local model directories -------------------------------------------------------------


def onnx_files(directory: Path) -> list[Path]:
    """The candidate model files directly in `directory`, by name."""
    try:
        names = sorted(directory.iterdir()) if directory.is_dir() else []
    except OSError as exc:  # an unreadable directory holds no usable model
        log.warning("cannot list model directory %s: %s", directory, exc)
        return []
    return [
        path
        for path in names
        if path.suffix.lower() == ".onnx" and not path.name.startswith(".") and path.is_file()
    ]


def scan(directory: Path) -> dict[str, Path]:
    """SHA-256 → file for every model file in `directory` (the first name wins)."""
    found: dict[str, Path] = {}
    hashed_before = _hash_count
    for path in onnx_files(directory):
        try:
            found.setdefault(file_digest(path), path)
        except OSError:
            continue  # unreadable or vanished: not a candidate
    if _hash_count != hashed_before:  # only new digests are worth writing down
        save_digests()
    return found


def find_local(entry: RegistryEntry) -> Path | None:
    """A file with `entry`'s SHA-256 in a model directory: each directory's file of the
    registry's name first, then every file by content."""
    directories = model_dirs()
    for directory in directories:
        path = directory / entry.filename
        if path.is_file() and file_digest(path) == entry.sha256:
            return path
    for directory in directories:
        found = scan(directory).get(entry.sha256)
        if found is not None:
            return found
    return None


@dataclass(frozen=True)
class Imported:
    entry: RegistryEntry
    source: Path
    destination: Path
    copied: bool  # False: the cache already held this model


def import_models(source: Path) -> list[Imported]:
    """Copy every registry model found in `source` (by SHA-256) into the cache under its
    registry filename; files that match no registry model are left alone."""
    if not source.is_dir():
        raise NotADirectoryError(f"not a directory: {source}")
    by_digest = {entry.sha256: entry for entry in REGISTRY.values()}
    matches = [(by_digest[d], path) for d, path in scan(source).items() if d in by_digest]
    return [_import_one(entry, path) for entry, path in sorted(matches, key=lambda m: m[0].name)]


def _import_one(entry: RegistryEntry, source: Path) -> Imported:
    destination = cached_path(entry)
    with _lock_for(destination):
        if is_valid(entry, destination):
            return Imported(entry, source, destination, copied=False)
        with written_in_place(destination) as temp:
            shutil.copyfile(source, temp)
            if sha256_file(temp) != entry.sha256:
                raise OSError(f"{source} changed while it was being copied")
        _remember(destination, entry.sha256)  # a rename keeps size and mtime
    save_digests()
    return Imported(entry, source, destination, copied=True)


# ---- download ------------------------------------------------------------------------------


def _stream(response: IO[bytes], out: IO[bytes], total: int | None, label: str) -> None:
    bar = tqdm(
        total=total,
        unit="B",
        unit_scale=True,
        desc=label,
        file=sys.stderr,
        disable=not sys.stderr.isatty(),  # no progress noise in logs and CI
    )
    with bar:
        while chunk := response.read(DOWNLOAD_CHUNK):
            out.write(chunk)
            bar.update(len(chunk))


def _fetch_once(entry: RegistryEntry, url: str, dest: Path) -> None:
    """Download to a temp file beside `dest`, check SHA-256, move into place; temp never kept."""
    fd, temp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    temp = Path(temp_name)
    try:
        request = urllib.request.Request(url, headers={"User-Agent": "facedb"})
        with (
            os.fdopen(fd, "wb") as out,
            urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response,
        ):
            length = response.headers.get("Content-Length")
            _stream(response, out, int(length) if length else None, dest.name)
        digest = sha256_file(temp)
        if digest != entry.sha256:
            raise _ChecksumError(f"SHA-256 mismatch for {url}: got {digest}")
        _publish(temp, dest)
        _remember(dest, digest)  # a rename keeps size and mtime: no need to hash it again
    finally:
        temp.unlink(missing_ok=True)


@contextmanager
def written_in_place(destination: Path) -> Iterator[Path]:
    """A temporary file beside `destination` for the caller to fill; moved into place when
    the block ends without an error (a reader never sees half a model), else removed."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    fd, temp_name = tempfile.mkstemp(
        prefix=f".{destination.name}.", suffix=".part", dir=destination.parent
    )
    os.close(fd)
    temp = Path(temp_name)
    try:
        yield temp
        _publish(temp, destination)
    finally:
        temp.unlink(missing_ok=True)


def _publish(temp: Path, dest: Path) -> None:
    """Move a complete temporary file into place, readable like any model file (mkstemp
    makes it owner-only, which would lock other service accounts out of a shared cache)."""
    os.chmod(temp, MODEL_FILE_MODE)
    os.replace(temp, dest)


def _retryable(exc: Exception) -> bool:
    # A 4xx answer (e.g. 404) or a malformed URL will be the same next time; network trouble,
    # a cut-off body and 5xx answers may not.
    if isinstance(exc, urllib.error.HTTPError):
        return exc.code >= 500
    return isinstance(exc, OSError | HTTPException)


def _download(entry: RegistryEntry, dest: Path) -> None:
    url = model_url(entry)
    dest.parent.mkdir(parents=True, exist_ok=True)
    for attempt in range(1, ATTEMPTS + 1):
        try:
            log.info("downloading %s from %s", entry.name, url)
            _fetch_once(entry, url, dest)
            return
        except _ChecksumError as exc:
            raise _unavailable(entry, dest, str(exc)) from exc
        except (OSError, HTTPException, ValueError) as exc:
            if attempt == ATTEMPTS or not _retryable(exc):
                reason = f"download from {url} failed after {attempt} attempt(s): {exc}"
                raise _unavailable(entry, dest, reason) from exc
            log.warning("download of %s failed (%s); retrying", entry.name, exc)
            time.sleep(BACKOFF_SECONDS * 2 ** (attempt - 1))


def _lock_for(path: Path) -> threading.Lock:
    with _digests_lock:
        return _path_locks.setdefault(str(path), threading.Lock())


def ensure_model(entry: RegistryEntry, *, download: bool = True) -> Path:
    """The verified file for `entry`: the cache's, else one found by SHA-256 in a model
    directory, else downloaded into the cache (when `download`)."""
    path = cached_path(entry)
    with _lock_for(path):
        if path.is_file():
            if is_valid(entry, path):
                return path
            log.warning("cached %s fails its SHA-256 check; removing it", path)
            reason = "the cached file failed its SHA-256 check and was removed"
            try:
                path.unlink(missing_ok=True)
            except OSError as exc:  # a read-only cache: a local copy may still be found
                reason = f"the cached file failed its SHA-256 check ({exc})"
        else:
            reason = "it is not in the model cache"
        local = find_local(entry)
        if local is not None:
            return local
        if not download:
            where = ", ".join(str(d) for d in model_dirs())
            raise _unavailable(
                entry,
                path,
                f"{reason}, no file in {where} has its SHA-256, and downloads are disabled",
            )
        _download(entry, path)
        return path


def download_models(entries: Iterable[RegistryEntry], workers: int = 4) -> list[Path]:
    """Ensure every entry in parallel; one error lists every model that could not be had."""
    entries = list(entries)
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        futures = [pool.submit(ensure_model, entry) for entry in entries]
    paths: list[Path] = []
    failures: list[str] = []
    for future in futures:
        try:
            paths.append(future.result())
        except ModelUnavailableError as exc:
            failures.append(str(exc))
    if failures:
        raise ModelUnavailableError(
            f"{len(failures)} of {len(entries)} models unavailable:\n  " + "\n  ".join(failures)
        )
    return paths
