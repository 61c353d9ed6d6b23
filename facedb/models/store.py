"""The model cache directory: download on first use, SHA-256 verified, written atomically.

A file in the cache is trusted only after its SHA-256 matches the registry. Downloads stream
into a temporary file beside the destination and are moved into place with `os.replace`, so a
reader never sees a half-written model, even when several processes fetch the same file.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from http.client import HTTPException
from pathlib import Path
from typing import IO
from urllib.parse import urlsplit

from tqdm import tqdm

from facedb.models.errors import ModelUnavailableError
from facedb.models.registry import RegistryEntry

log = logging.getLogger(__name__)

CHUNK = 1 << 20  # hashing reads 1 MiB at a time
DOWNLOAD_CHUNK = 256 << 10
ATTEMPTS = 3
BACKOFF_SECONDS = 1.0  # sleeps 1 s then 2 s between the three attempts
TIMEOUT_SECONDS = 60.0

# (path, size, mtime_ns) → SHA-256: a file that has not changed is not hashed twice.
_digests: dict[tuple[str, int, int], str] = {}
_digests_lock = threading.Lock()
# One lock per destination so two threads asking for the same model download it once.
_path_locks: dict[str, threading.Lock] = {}


class _ChecksumError(Exception):
    """Downloaded bytes differ from the registry's SHA-256 (retrying will not help)."""


def model_dir() -> Path:
    return Path(os.environ.get("FACEDB_MODEL_DIR", "~/.facedb/models")).expanduser()


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
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    with _digests_lock:
        known = None if rehash else _digests.get(key)
    if known is not None:
        return known
    digest = sha256_file(path)
    _remember(path, digest)
    return digest


def _remember(path: Path, digest: str) -> None:
    stat = path.stat()
    with _digests_lock:
        _digests[(str(path.resolve()), stat.st_size, stat.st_mtime_ns)] = digest


def is_valid(entry: RegistryEntry, path: Path, *, rehash: bool = False) -> bool:
    return path.is_file() and file_digest(path, rehash=rehash) == entry.sha256


def _unavailable(entry: RegistryEntry, path: Path, reason: str) -> ModelUnavailableError:
    return ModelUnavailableError(
        f"model {entry.name} is not available: {reason}. "
        f"Download {model_url(entry)} and place it at {path} "
        f"(expected SHA-256 {entry.sha256})"
    )


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
        os.replace(temp, dest)
        _remember(dest, digest)  # a rename keeps size and mtime: no need to hash it again
    finally:
        temp.unlink(missing_ok=True)


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
    """The verified cached file for `entry`, downloading it when missing or corrupt."""
    path = cached_path(entry)
    with _lock_for(path):
        if path.is_file():
            if is_valid(entry, path):
                return path
            log.warning("cached %s fails its SHA-256 check; removing it", path)
            path.unlink(missing_ok=True)
            reason = "the cached file failed its SHA-256 check and was removed"
        else:
            reason = "it is not in the model cache"
        if not download:
            raise _unavailable(entry, path, f"{reason} and downloads are disabled")
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
