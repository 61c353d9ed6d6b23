"""Write an IJB-B/C style template protocol derived from LFW (deterministic for a given seed).

IJB-B/C evaluate *templates* (a set of media, a media being a still or a video's frames)
rather than single images. LFW has no video, so a template here is one to three images
grouped into media of one image or pseudo-media of two. The layout (all CSV with a header):

    templates.csv      template_id,subject_id             template → subject
    media.csv          template_id,media_id,path          template → media → image (path
                                                          relative to `data_root`)
    verify_pairs.csv   template_a,template_b,label        1:1 list, label 1 = mated
    gallery_G1.csv     template_id,subject_id             1:N gallery set 1
    gallery_G2.csv     template_id,subject_id             1:N gallery set 2 (disjoint subjects)
    probes.csv         template_id,subject_id             1:N probes (mixed)
    protocol.json      data_root, seed, counts

As in IJB-C, every person with two or more LFW images is enrolled in exactly one of G1 / G2,
so searching G1 the probes of G2's people are non-mated (and vice versa). The single-image
LFW people are added as probes enrolled in neither gallery (open-set distractors).

    python -m benchmarks.make_protocol [--small] [--out DIR] [--seed N]
"""

from __future__ import annotations

import argparse
import csv
import json
import random
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from benchmarks.paths import BENCH_OUT, shared_dir

SHARED = shared_dir()
LFW_DIR = SHARED / "data" / "lfw"
LAYOUT_VERSION = 1
MAX_TEMPLATE_IMAGES = 3


@dataclass(frozen=True)
class Person:
    name: str
    paths: tuple[str, ...]  # relative to the data root, e.g. lfw/images/X/X_0001.jpg


@dataclass(frozen=True)
class SizeProfile:
    """How much of LFW a protocol uses."""

    people_per_gallery: int | None  # None: every person with >= 2 images
    distractors: int | None  # None: every single-image person
    max_images_per_person: int | None
    nonmated_pairs: int
    min_images: int = 2


FULL = SizeProfile(None, None, None, nonmated_pairs=2_000_000)
SMALL = SizeProfile(24, 48, 5, nonmated_pairs=20_000, min_images=3)


@dataclass
class Protocol:
    templates: list[tuple[int, str]] = field(default_factory=list)
    media: list[tuple[int, int, str]] = field(default_factory=list)
    gallery: dict[str, list[int]] = field(default_factory=lambda: {"G1": [], "G2": []})
    probes: list[int] = field(default_factory=list)
    pairs: np.ndarray = field(default_factory=lambda: np.zeros((0, 3), np.int64))

    def subject_of(self) -> dict[int, str]:
        return dict(self.templates)


def read_people(lfw_dir: Path) -> list[Person]:
    """Every LFW person of gallery_probe.csv with their image paths, sorted by name."""
    paths: dict[str, list[str]] = defaultdict(list)
    with (lfw_dir / "gallery_probe.csv").open(newline="") as handle:
        for row in csv.DictReader(handle):
            paths[row["identity"]].append(row["path"])
    return [Person(name, tuple(sorted(paths[name]))) for name in sorted(paths)]


def _chunks(items: list[str], rng: random.Random, max_size: int) -> list[list[str]]:
    """Split items into consecutive chunks of random size 1..max_size."""
    chunks: list[list[str]] = []
    start = 0
    while start < len(items):
        size = rng.randint(1, max_size)
        chunks.append(items[start : start + size])
        start += size
    return chunks


class _Builder:
    """Assigns template and media ids in creation order."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.protocol = Protocol()
        self._next_template = 1
        self._next_media = 1

    def add_template(self, subject: str, paths: list[str]) -> int:
        template_id = self._next_template
        self._next_template += 1
        self.protocol.templates.append((template_id, subject))
        # Pseudo-media: one image, or two images of the person treated as one "sighting".
        for media_paths in _chunks(paths, self.rng, 2):
            for path in media_paths:
                self.protocol.media.append((template_id, self._next_media, path))
            self._next_media += 1
        return template_id


def _gallery_image_count(n_images: int) -> int:
    """Images in the enrolled template: about half, one to three, always leaving a probe."""
    return min(MAX_TEMPLATE_IMAGES, max(1, n_images // 2))


def _add_enrolled_person(builder: _Builder, person: Person, gallery: str, cap: int | None) -> None:
    paths = list(person.paths)
    builder.rng.shuffle(paths)
    paths = paths[:cap] if cap else paths
    n_gallery = _gallery_image_count(len(paths))
    builder.protocol.gallery[gallery].append(builder.add_template(person.name, paths[:n_gallery]))
    for chunk in _chunks(paths[n_gallery:], builder.rng, MAX_TEMPLATE_IMAGES):
        builder.protocol.probes.append(builder.add_template(person.name, chunk))


def _mated_pairs(protocol: Protocol) -> list[tuple[int, int]]:
    """Every pair of templates of the same subject (enrolled vs probe and probe vs probe)."""
    by_subject: dict[str, list[int]] = defaultdict(list)
    for template_id, subject in protocol.templates:
        by_subject[subject].append(template_id)
    return [
        (ids[i], ids[j])
        for ids in by_subject.values()
        for i in range(len(ids))
        for j in range(i + 1, len(ids))
    ]


def _nonmated_pairs(protocol: Protocol, count: int, seed: int) -> np.ndarray:
    """`count` distinct random template pairs of different subjects (or all, if fewer)."""
    ids = np.array([t for t, _ in protocol.templates], dtype=np.int64)
    _, subject_index = np.unique([s for _, s in protocol.templates], return_inverse=True)
    n = len(ids)
    rng = np.random.default_rng(seed)
    chosen = np.zeros(0, dtype=np.int64)
    # Oversample, drop same-subject and repeated pairs, repeat until enough (a few rounds).
    while len(chosen) < count:
        a = rng.integers(0, n, size=2 * count)
        b = rng.integers(0, n, size=2 * count)
        keep = subject_index[a] != subject_index[b]
        lo, hi = np.minimum(a, b)[keep], np.maximum(a, b)[keep]
        chosen = np.unique(np.concatenate([chosen, lo * n + hi]))
        if len(chosen) >= n * (n - 1) // 2 - len(_mated_pairs(protocol)):
            break
    chosen = rng.permutation(chosen)[:count]
    chosen.sort()
    return np.stack([ids[chosen // n], ids[chosen % n]], axis=1)


def build_protocol(people: list[Person], profile: SizeProfile, seed: int) -> Protocol:
    rng = random.Random(seed)
    enrolled = [p for p in people if len(p.paths) >= profile.min_images]
    singles = [p for p in people if len(p.paths) == 1]
    rng.shuffle(enrolled)
    rng.shuffle(singles)
    if profile.people_per_gallery is not None:
        enrolled = enrolled[: 2 * profile.people_per_gallery]
    if profile.distractors is not None:
        singles = singles[: profile.distractors]
    builder = _Builder(rng)
    for index, person in enumerate(sorted(enrolled, key=lambda p: p.name)):
        gallery = "G1" if index % 2 == 0 else "G2"
        _add_enrolled_person(builder, person, gallery, profile.max_images_per_person)
    for person in sorted(singles, key=lambda p: p.name):
        builder.protocol.probes.append(builder.add_template(person.name, list(person.paths)))
    protocol = builder.protocol
    mated = np.array(_mated_pairs(protocol), dtype=np.int64).reshape(-1, 2)
    nonmated = _nonmated_pairs(protocol, profile.nonmated_pairs, seed)
    protocol.pairs = np.concatenate(
        [
            np.column_stack([mated, np.ones(len(mated), np.int64)]),
            np.column_stack([nonmated, np.zeros(len(nonmated), np.int64)]),
        ]
    )
    return protocol


def _write_rows(path: Path, header: list[str], rows: list[tuple]) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


def write_protocol(protocol: Protocol, out_dir: Path, data_root: Path, seed: int) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    subject_of = protocol.subject_of()
    _write_rows(out_dir / "templates.csv", ["template_id", "subject_id"], protocol.templates)
    _write_rows(out_dir / "media.csv", ["template_id", "media_id", "path"], protocol.media)
    for name, ids in protocol.gallery.items():
        rows = [(t, subject_of[t]) for t in ids]
        _write_rows(out_dir / f"gallery_{name}.csv", ["template_id", "subject_id"], rows)
    probe_rows = [(t, subject_of[t]) for t in protocol.probes]
    _write_rows(out_dir / "probes.csv", ["template_id", "subject_id"], probe_rows)
    # np.savetxt is much faster than csv.writer for millions of integer rows.
    np.savetxt(
        out_dir / "verify_pairs.csv",
        protocol.pairs,
        fmt="%d",
        delimiter=",",
        header="template_a,template_b,label",
        comments="",
    )
    summary = {
        "layout_version": LAYOUT_VERSION,
        "source": "LFW gallery_probe.csv",
        "data_root": str(data_root),
        "seed": seed,
        "templates": len(protocol.templates),
        "images": len(protocol.media),
        "media": len({m for _, m, _ in protocol.media}),
        "gallery_G1": len(protocol.gallery["G1"]),
        "gallery_G2": len(protocol.gallery["G2"]),
        "probes": len(protocol.probes),
        "mated_pairs": int(protocol.pairs[:, 2].sum()),
        "nonmated_pairs": int((protocol.pairs[:, 2] == 0).sum()),
    }
    (out_dir / "protocol.json").write_text(json.dumps(summary, indent=2) + "\n")


def make_protocol(
    out_dir: Path, *, small: bool = False, seed: int = 0, lfw_dir: Path = LFW_DIR
) -> Path:
    """Build and write the protocol; returns `out_dir`."""
    protocol = build_protocol(read_people(lfw_dir), SMALL if small else FULL, seed)
    write_protocol(protocol, out_dir, lfw_dir.parent, seed)
    return out_dir


def default_protocol_dir(small: bool) -> Path:
    return BENCH_OUT / ("protocol-small" if small else "protocol")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="a few hundred images (tests)")
    parser.add_argument("--out", type=Path, help="default bench-out/protocol[-small]")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--lfw", type=Path, default=LFW_DIR, help="LFW folder")
    args = parser.parse_args(argv)
    out_dir = make_protocol(
        args.out or default_protocol_dir(args.small),
        small=args.small,
        seed=args.seed,
        lfw_dir=args.lfw,
    )
    print((out_dir / "protocol.json").read_text(), end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
