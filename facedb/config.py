"""Settings: where data lives, which database and models to use, how the server behaves.

Every field reads an environment variable by default (`FACEDB_<FIELD>`); `load_settings()`
layers a JSON config file under the environment and explicit overrides (CLI flags) over
both, so the precedence is: flag > environment > config file > built-in default.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

DEFAULT_DETECTOR = "SCRFD_500M_KPS"
DEFAULT_RECOGNIZER = "ARCFACE_MNET"
DEFAULT_RECOGNIZER_GRAPH = "float32"  # faster and batch-safe: docs/DESIGN.md "Recognizer graphs"

# Measured on the fixture ArcFace int8 file with LFW: about 0.36 for 1:N at
# FPIR 1% with 1,680 enrolled, about 0.22 for 1:1 verification. The usual 0.4-0.6 quoted for
# other models would reject most genuine matches here. Used when no calibration file for the
# model is found (facedb.calibration; FACEDB_CALIBRATION_DIRS).
DEFAULT_IDENTIFY_THRESHOLD = 0.36
DEFAULT_VERIFY_THRESHOLD = 0.22
# A new face this close to another identity's face is almost surely the same person: above
# the 1:N threshold, with margin, so that look-alikes are not refused.
DEFAULT_DUPLICATE_THRESHOLD = 0.5


class ConfigError(ValueError):
    """A setting that cannot be understood (bad JSON, unknown key, wrong type)."""


def _env(name: str) -> str | None:
    return os.environ.get(f"FACEDB_{name.upper()}")


def _env_path(name: str, default: str) -> Path:
    return Path(_env(name) or default).expanduser()


def _env_int(name: str, default: int) -> int:
    value = _env(name)
    return int(value) if value else default


def _env_optional_int(name: str) -> int | None:
    value = _env(name)
    return int(value) if value else None


def _env_optional_path(name: str) -> Path | None:
    value = _env(name)
    return Path(value).expanduser() if value else None


def _env_bool(name: str, default: bool = False) -> bool:
    value = _env(name)
    return default if not value else value.lower() in ("1", "true", "yes", "on")


def _env_float(name: str, default: float) -> float:
    value = _env(name)
    return float(value) if value else default


def _env_keys() -> dict[str, dict[str, Any]]:
    text = _env("api_keys")
    return parse_api_keys(text) if text else {}


def parse_api_keys(text: str) -> dict[str, dict[str, Any]]:
    """`{"key": {"role": "admin|enroll|search", "galleries": ["*"], "view_crops": bool}}`
    → validated dict (view_crops: may read stored face crops; default off for search keys;
    optional "rate_limit": requests per second)."""
    try:
        keys = json.loads(text)
    except json.JSONDecodeError as error:
        raise ConfigError(f"API keys are not valid JSON: {error}") from None
    if not isinstance(keys, dict):
        raise ConfigError(
            'API keys must be a JSON object {"key": {"role": ..., "galleries": [...]}}'
        )
    for key, grant in keys.items():
        if not isinstance(grant, dict) or grant.get("role") not in ("admin", "enroll", "search"):
            raise ConfigError(f"API key {key[:4]}…: role must be admin, enroll or search")
        galleries = grant.get("galleries", ["*"])
        if not isinstance(galleries, list) or not all(isinstance(g, str) for g in galleries):
            raise ConfigError(f"API key {key[:4]}…: galleries must be a list of names or ['*']")
        if not isinstance(grant.get("view_crops", False), bool):
            raise ConfigError(f"API key {key[:4]}…: view_crops must be true or false")
        rate = grant.get("rate_limit", 0)
        if isinstance(rate, bool) or not isinstance(rate, int | float) or rate < 0:
            raise ConfigError(f"API key {key[:4]}…: rate_limit must be requests per second >= 0")
    return keys


@dataclass(frozen=True)
class Settings:
    data_dir: Path = field(default_factory=lambda: _env_path("data_dir", "~/.facedb/data"))
    database_url: str | None = field(default_factory=lambda: _env("database_url"))

    # Models: registry names or FAMILY:PATH specs; an empty liveness spec disables liveness.
    detector: str = field(default_factory=lambda: _env("detector") or DEFAULT_DETECTOR)
    recognizer: str = field(default_factory=lambda: _env("recognizer") or DEFAULT_RECOGNIZER)
    # "float32": a dynamic-int8 recognizer file runs as its batch-safe float32 rewrite
    # (facedb.models.graphs, written once into the model cache); "int8": as given.
    recognizer_graph: str = field(
        default_factory=lambda: _env("recognizer_graph") or DEFAULT_RECOGNIZER_GRAPH
    )
    liveness: str = field(default_factory=lambda: _env("liveness") or "")  # ";"-separated
    quality_model: str = field(default_factory=lambda: _env("quality_model") or "")

    # Server.
    host: str = field(default_factory=lambda: _env("host") or "127.0.0.1")
    port: int = field(default_factory=lambda: _env_int("port", 50051))
    metrics_port: int = field(default_factory=lambda: _env_int("metrics_port", 0))  # 0: off
    # /metrics has no authentication: loopback unless told otherwise, and no gallery names
    # in its labels unless the operator opts in.
    metrics_host: str = field(default_factory=lambda: _env("metrics_host") or "127.0.0.1")
    metrics_gallery_labels: bool = field(
        default_factory=lambda: _env_bool("metrics_gallery_labels")
    )
    # HTTP/JSON API and console beside gRPC; None: off, 0: a free port.
    http_port: int | None = field(default_factory=lambda: _env_optional_int("http_port"))
    # TLS for gRPC and HTTP: PEM certificate and key; with a client CA, clients must present
    # a certificate it signed (mutual TLS). Without TLS only loopback addresses are bound,
    # unless insecure_plaintext says otherwise.
    tls_cert: str | None = field(default_factory=lambda: _env("tls_cert"))
    tls_key: str | None = field(default_factory=lambda: _env("tls_key"))
    tls_client_ca: str | None = field(default_factory=lambda: _env("tls_client_ca"))
    insecure_plaintext: bool = field(default_factory=lambda: _env_bool("insecure_plaintext"))
    api_keys: dict[str, dict[str, Any]] = field(default_factory=_env_keys)
    insecure_no_auth: bool = field(default_factory=lambda: _env_bool("insecure_no_auth"))
    # Audit log (JSON lines: who enrolled, deleted, searched what); None: the process log.
    audit_log: Path | None = field(default_factory=lambda: _env_optional_path("audit_log"))

    # Limits. workers 0: one per core; queue: requests waiting for a worker beyond that.
    workers: int = field(default_factory=lambda: _env_int("workers", 0))
    max_queue: int = field(default_factory=lambda: _env_int("max_queue", 16))
    # One image's bytes are checked by the engine (INVALID_ARGUMENT naming the image); the
    # message limit is gRPC's own (RESOURCE_EXHAUSTED) and must hold several images.
    max_image_bytes: int = field(
        default_factory=lambda: _env_int("max_image_bytes", 20 * 1024 * 1024)
    )
    max_message_bytes: int = field(
        default_factory=lambda: _env_int("max_message_bytes", 64 * 1024 * 1024)
    )
    max_image_pixels: int = field(default_factory=lambda: _env_int("max_image_pixels", 40_000_000))
    # One Enroll: its images are decoded one at a time; these bound its count and total work.
    max_images_per_request: int = field(
        default_factory=lambda: _env_int("max_images_per_request", 32)
    )
    max_request_pixels: int = field(
        default_factory=lambda: _env_int("max_request_pixels", 100_000_000)
    )

    # Micro-batching (facedb.vision.batching): concurrent requests' faces share recognizer
    # runs, for graphs that batch safely; a run waits at most batch_wait_ms for more faces.
    micro_batching: bool = field(default_factory=lambda: _env_bool("micro_batching", True))
    batch_wait_ms: float = field(default_factory=lambda: _env_float("batch_wait_ms", 2.0))
    # onnxruntime threads of the shared recognizer runs (0: every core): while a run goes,
    # the callers whose faces it holds are idle, so it may use their cores.
    batch_threads: int = field(default_factory=lambda: _env_int("batch_threads", 0))
    # Index backend: "faiss" (in process, snapshots in data_dir/index) or "milvus" (a
    # collection per gallery on the Milvus server at milvus_uri; see facedb.index.backend).
    index_backend: str = field(default_factory=lambda: _env("index_backend") or "faiss")
    milvus_uri: str | None = field(default_factory=lambda: _env("milvus_uri"))
    milvus_consistency: str = field(default_factory=lambda: _env("milvus_consistency") or "Bounded")
    # Seconds one Milvus request may take, retries of an unreachable server included; then
    # the request fails with UNAVAILABLE (retryable).
    milvus_timeout: float = field(default_factory=lambda: _env_float("milvus_timeout", 30.0))
    # Servers sharing a database follow each other's writes from the change log: woken by
    # PostgreSQL NOTIFY at each commit, and polling every this many seconds (0: off).
    change_poll_interval: float = field(
        default_factory=lambda: float(_env("change_poll_interval") or 1.0)
    )

    # Thresholds used when a gallery does not set its own and no calibration is available.
    identify_threshold: float = DEFAULT_IDENTIFY_THRESHOLD
    verify_threshold: float = DEFAULT_VERIFY_THRESHOLD
    duplicate_threshold: float = DEFAULT_DUPLICATE_THRESHOLD

    @property
    def resolved_database_url(self) -> str:
        """The configured URL, else a SQLite file in the data directory (the embedded default)."""
        return self.database_url or f"sqlite:///{self.data_dir / 'facedb.sqlite3'}"

    @property
    def index_dir(self) -> Path:
        return self.data_dir / "index"

    @property
    def worker_count(self) -> int:
        return self.workers or (os.cpu_count() or 1)

    @property
    def ort_threads(self) -> int:
        """onnxruntime threads per session: FACEDB_ORT_THREADS, else as many as keep
        workers x threads within the cores (more would only oversubscribe them)."""
        return _env_int("ort_threads", 0) or max(1, (os.cpu_count() or 1) // self.worker_count)

    @property
    def batch_run_threads(self) -> int:
        """onnxruntime threads of the micro-batcher's recognizer session (0: every core)."""
        return self.batch_threads or (os.cpu_count() or 1)


_FIELD_TYPES = {f.name: f.type for f in fields(Settings)}


def _coerce(name: str, value: Any) -> Any:
    kind = _FIELD_TYPES[name]
    if value is None:
        return None
    if "Path" in kind:
        return Path(value).expanduser()
    if kind in ("int", "int | None"):
        return int(value)
    if kind == "float":
        return float(value)
    if kind == "bool":
        return bool(value)
    if name == "api_keys":
        return parse_api_keys(json.dumps(value))
    return value


def _file_values(path: Path) -> dict[str, Any]:
    try:
        values = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise ConfigError(f"cannot read config file {path}: {error}") from None
    unknown = sorted(set(values) - set(_FIELD_TYPES))
    if unknown:
        raise ConfigError(f"unknown settings in {path}: {', '.join(unknown)}")
    # The environment wins over the file: drop what it sets.
    return {k: v for k, v in values.items() if _env(k) is None}


def load_settings(config_file: Path | str | None = None, **overrides: Any) -> Settings:
    """Defaults < config file (JSON, same keys as Settings) < environment < `overrides`.

    Overrides that are None are ignored, so CLI flags that were not given fall through.
    """
    settings = Settings()
    path = config_file or _env("config")
    values = _file_values(Path(path).expanduser()) if path else {}
    values.update({k: v for k, v in overrides.items() if v is not None})
    return replace(settings, **{k: _coerce(k, v) for k, v in values.items()})
