"""Every known model: name → family, task, URL, SHA-256, preprocessing, licence (MODEL_FACTS.md §7).

TODO(models helper): fill in the complete seed table.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from facedb.models.spec import ModelSpecError


@dataclass(frozen=True)
class RegistryEntry:
    name: str  # e.g. "SCRFD_500M_KPS" (case-insensitive on lookup)
    family: str  # one of facedb.models.spec.FAMILIES
    url: str
    sha256: str
    filename: str  # name in the cache directory
    license: str
    embedding_size: int | None = None
    options: dict[str, str] = field(default_factory=dict)  # family-specific, e.g. crop scale


REGISTRY: dict[str, RegistryEntry] = {}


def lookup(name: str) -> RegistryEntry:
    entry = REGISTRY.get(name.upper())
    if entry is None:
        known = ", ".join(sorted(REGISTRY))
        raise ModelSpecError(
            f"unknown model {name!r}: use a registry name ({known}) or FAMILY:PATH"
        )
    return entry
