"""Per-stage latency of the face pipeline on LFW photos: decode, detect, align, embed.

    python -m benchmarks.pipeline                      # SCRFD-500M + ArcFace int8, 200 images
    python -m benchmarks.pipeline --images 500 --threads 1 2 4 \\
        --recognizer mobileface:../shared/models/mobilefacenet128_relu6.onnx

Each image goes through the stages one at a time (a single request's path): decode from
bytes already in memory, detect, align every face found, embed them in one batch. Printed
per onnxruntime thread count: the median ms of each stage, the median total, and images/s
over the whole run. Sessions are per (file, threads), so each count gets its own.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from benchmarks.embedding_cache import shared_dir
from benchmarks.lfw import default_models, read_pairs
from facedb.vision.align import align_faces
from facedb.vision.detect import Detector, load_detector
from facedb.vision.embed import Embedder, load_embedder
from facedb.vision.image import decode_image

STAGES = ("decode", "detect", "align", "embed")
WARMUP = 3


def sample_images(count: int) -> list[bytes]:
    """`count` LFW photos spread evenly over the pairs.txt images, read into memory."""
    images = read_pairs(shared_dir() / "data/lfw/pairs.txt").images
    chosen = np.linspace(0, len(images) - 1, num=min(count, len(images))).astype(int)
    return [images[i].read_bytes() for i in chosen]


def time_one(data: bytes, detector: Detector, embedder: Embedder) -> dict[str, float]:
    """Seconds per stage for one image."""
    marks = [time.perf_counter()]
    image = decode_image(data)
    marks.append(time.perf_counter())
    faces = detector.detect(image)
    marks.append(time.perf_counter())
    crops = align_faces(image, [f.landmarks for f in faces])
    marks.append(time.perf_counter())
    embedder.embed(crops)
    marks.append(time.perf_counter())
    return {stage: marks[i + 1] - marks[i] for i, stage in enumerate(STAGES)}


def measure(
    images: list[bytes], detector_spec: str, recognizer_spec: str, threads: int, flip: bool
) -> dict[str, float]:
    detector = load_detector(detector_spec, threads=threads)
    embedder = load_embedder(recognizer_spec, flip=flip, threads=threads)
    for data in images[:WARMUP]:  # first runs allocate and tune; keep them out
        time_one(data, detector, embedder)
    start = time.perf_counter()
    rows = [time_one(data, detector, embedder) for data in images]
    wall = time.perf_counter() - start
    summary = {stage: 1000 * float(np.median([r[stage] for r in rows])) for stage in STAGES}
    summary["total"] = 1000 * float(np.median([sum(r.values()) for r in rows]))
    summary["images_per_s"] = len(images) / wall
    return summary


def print_table(results: dict[int, dict[str, float]]) -> None:
    header = " | ".join(f"{s} ms" for s in (*STAGES, "total"))
    print(f"| threads | {header} | images/s |")
    print("|---" * (len(STAGES) + 3) + "|")
    for threads, row in results.items():
        cells = " | ".join(f"{row[s]:.1f}" for s in (*STAGES, "total"))
        print(f"| {threads} | {cells} | {row['images_per_s']:.1f} |")


def main(argv: list[str] | None = None) -> int:
    defaults = default_models()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--detector", default=defaults["detector"])
    parser.add_argument("--recognizer", default=defaults["recognizer"])
    parser.add_argument("--images", type=int, default=200, help="LFW photos to time")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--flip", action="store_true", help="flip test-time augmentation")
    args = parser.parse_args(argv)

    images = sample_images(args.images)
    print(f"detector {args.detector}\nrecognizer {args.recognizer} flip={args.flip}")
    print(f"{len(images)} LFW images (250x250), medians per image, one image at a time\n")
    results = {
        threads: measure(images, args.detector, args.recognizer, threads, args.flip)
        for threads in args.threads
    }
    print_table(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
