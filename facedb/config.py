"""Settings: where data lives, which database and models to use. From environment variables.

TODO(service helper): extend (API keys, limits, thresholds, config file).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path


def _env_path(name: str, default: str) -> Path:
    return Path(os.environ.get(name, default)).expanduser()


@dataclass(frozen=True)
class Settings:
    data_dir: Path = field(default_factory=lambda: _env_path("FACEDB_DATA_DIR", "~/.facedb/data"))
    database_url: str | None = field(default_factory=lambda: os.environ.get("FACEDB_DATABASE_URL"))

    @property
    def resolved_database_url(self) -> str:
        """The configured URL, else a SQLite file in the data directory (the embedded default)."""
        return self.database_url or f"sqlite:///{self.data_dir / 'facedb.sqlite3'}"

    @property
    def index_dir(self) -> Path:
        return self.data_dir / "index"
