"""The one LFW pairs parser and fold definition: `facedb calibrate` and every benchmark use it.

`pairs.txt` (View 2) starts with `10 300`: ten folds, each 300 same-person pairs followed
by 300 different-person pairs, written fold after fold, so pair i belongs to fold i // 600.
Benchmarks choose each fold's threshold on the other nine; calibration fits on some folds and
holds the others out.
A single-count header (View 1's `pairsDevTest.txt`: `500`, then 500 same and 500
different pairs) has no folds; those pairs get DEFAULT_FOLDS interleaved folds (i % 10),
so each fold still holds both kinds.

A same pair is `Name i j`; a different pair is `NameA i NameB j`; image i of Name is
`images/Name/Name_%04d.jpg` beside the pairs file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

DEFAULT_FOLDS = 10


@dataclass(frozen=True)
class Pairs:
    first: np.ndarray  # (P,) int: index into `images`
    second: np.ndarray  # (P,) int
    same: np.ndarray  # (P,) bool
    fold: np.ndarray  # (P,) int, 0-based
    images: list[Path]  # unique images in order of first mention

    def unique_images(self) -> list[Path]:
        """The images sorted by path (a stable order for sampling)."""
        return sorted(self.images)


def lfw_image(lfw_dir: Path, name: str, number: str | int) -> Path:
    return lfw_dir / "images" / name / f"{name}_{int(number):04d}.jpg"


def pair_folds(header: list[str], count: int) -> np.ndarray:
    """Fold of each pair: View 2's consecutive blocks of 2 x per-class pairs, else interleaved."""
    if len(header) == 2:
        return np.arange(count) // (2 * int(header[1]))
    return np.arange(count) % DEFAULT_FOLDS


def read_pairs(pairs_file: Path) -> Pairs:
    lines = [line.split() for line in pairs_file.read_text().splitlines() if line.strip()]
    header, rows = lines[0], lines[1:]
    index: dict[Path, int] = {}

    def image(name: str, number: str) -> int:
        return index.setdefault(lfw_image(pairs_file.parent, name, number), len(index))

    first, second = [], []
    for fields in rows:
        if len(fields) == 3:
            first.append(image(fields[0], fields[1]))
            second.append(image(fields[0], fields[2]))
        elif len(fields) == 4:
            first.append(image(fields[0], fields[1]))
            second.append(image(fields[2], fields[3]))
        else:
            raise ValueError(f"{pairs_file}: cannot read pair {fields}")
    same = np.array([len(fields) == 3 for fields in rows])
    return Pairs(
        np.array(first), np.array(second), same, pair_folds(header, len(rows)), list(index)
    )
