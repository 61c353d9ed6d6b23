"""Decode time of large JPEGs: full-size decode against the reduced (libjpeg DCT-scaled) one.

    python -m benchmarks.decode                  # 12 MP photo + the 100 MP edge file, 15 rounds

The 12-megapixel photo is a real LFW face enlarged to 4000 x 3000 (JPEG quality 92). Both
variants go through `facedb.vision.image.load_image`: `min_side=None` (only the pixel limit
reduces, as before) and the default (`MIN_DECODE_SIDE`), interleaved round by round, the
order swapped each round; printed are the median and the minimum ms, CPU ms, and the decoded
size. Then SCRFD-500M's detect() on each decode, with the face's box mapped back to original
pixels, to show the reduced decode finds the same face. Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
from collections.abc import Callable

import numpy as np
from PIL import Image

from benchmarks.paths import fixture_models, shared_dir
from facedb.vision.detect import load_detector
from facedb.vision.image import DecodedImage, load_image

SOURCE = "data/lfw/images/Bill_Gates/Bill_Gates_0001.jpg"
HUGE = "data/edge/large/thumbor_9643x10328_no_face.jpg"


def twelve_megapixels() -> bytes:
    """The LFW photo cropped to 4:3 and enlarged to 4000 x 3000."""
    photo = Image.open(shared_dir() / SOURCE).convert("RGB").crop((0, 31, 250, 219))
    big = photo.resize((4000, 3000), Image.Resampling.BICUBIC)
    out = io.BytesIO()
    big.save(out, "JPEG", quality=92)
    return out.getvalue()


def timed(call: Callable[[], DecodedImage]) -> tuple[float, float, DecodedImage]:
    cpu, wall = time.process_time(), time.perf_counter()
    result = call()
    return time.perf_counter() - wall, time.process_time() - cpu, result


def compare(name: str, data: bytes, rounds: int) -> dict[str, DecodedImage]:
    variants: dict[str, Callable[[], DecodedImage]] = {
        "full (before)": lambda: load_image(data, min_side=None),
        "reduced (after)": lambda: load_image(data),
    }
    walls: dict[str, list[float]] = {k: [] for k in variants}
    cpus: dict[str, list[float]] = {k: [] for k in variants}
    decoded: dict[str, DecodedImage] = {}
    for round_ in range(rounds):
        order = list(variants) if round_ % 2 == 0 else list(reversed(variants))
        for key in order:
            wall, cpu, decoded[key] = timed(variants[key])
            walls[key].append(wall)
            cpus[key].append(cpu)
    for key in variants:
        shape = decoded[key].pixels.shape
        print(
            f"| {name} | {key} | {1000 * statistics.median(walls[key]):.0f} "
            f"| {1000 * min(walls[key]):.0f} | {1000 * statistics.median(cpus[key]):.0f} "
            f"| {shape[1]}x{shape[0]} |"
        )
    before, after = (statistics.median(walls[k]) for k in variants)
    print(f"| {name} | speed-up | {before / after:.1f}x | | | |")
    return decoded


def show_faces(decoded: dict[str, DecodedImage]) -> None:
    detector = load_detector(fixture_models()["detector"], threads=1)
    for key, image in decoded.items():
        faces = detector.detect(image.pixels)
        if not faces:
            print(f"{key}: no face")
            continue
        face = max(faces, key=lambda f: f.area).scaled(1.0 / image.scale)
        box = np.round(face.box).astype(int).tolist()
        print(f"{key}: face at {box} in original pixels (score {face.score:.3f})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args(argv)
    print("| photo | decode | median ms | min ms | CPU ms | decoded size |")
    print("|---|---|---|---|---|---|")
    photo = twelve_megapixels()
    decoded = compare("12 MP LFW enlarged", photo, args.rounds)
    compare("100 MP edge/large", (shared_dir() / HUGE).read_bytes(), max(3, args.rounds // 5))
    print()
    show_faces(decoded)
    return 0


if __name__ == "__main__":
    sys.exit(main())
