"""Per-stage latency of the face pipeline on LFW photos: decode, detect, align, embed.

    python -m benchmarks.pipeline                      # SCRFD-500M + ArcFace int8, 200 images
    python -m benchmarks.pipeline --images 500 --threads 1 2 4 \\
        --recognizer mobileface:../shared/models/mobilefacenet128_relu6.onnx

Each image goes through the stages one at a time (a single request's path): decode from
bytes already in memory, detect, align every face found, embed them in one batch. Printed
per onnxruntime thread count: the median ms of each stage, the median total, and images/s
over the whole run. Sessions are per (file, threads), so each count gets its own.

    python -m benchmarks.pipeline --grid               # workers x threads x spinning x graph

`--grid` times whole images (decode + detect + align + embed) under each setting: worker
threads sharing one detector and one recognizer session (as the server's workers do),
onnxruntime intra-op threads per session, `session.intra_op.allow_spinning` on or off,
and the int8 fixture recognizer or its float32 rewrite (`facedb models optimize`, which
embeds a photo's faces in one batch). Settings take turns in blocks of images, the order
rotated every round, so a shared machine's noise falls on all of them; printed are
images/s (median over rounds), CPU ms per image and the speed-up over 1 worker x 1 thread
with the int8 graph.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmarks.paths import fixture_models, shared_dir, shared_model
from benchmarks.sessions import float32_recognizer, ort_session
from facedb.lfw_pairs import read_pairs
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


# ---- the settings grid -----------------------------------------------------------------------

BLOCK = 20  # images per turn


@dataclass(frozen=True)
class Setting:
    workers: int
    threads: int
    spinning: bool
    graph: str  # "int8" or "float32"

    def label(self) -> str:
        spin = "on" if self.spinning else "off"
        return f"| {self.workers} | {self.threads} | {spin} | {self.graph} |"


GRID = [
    Setting(1, 1, True, "int8"),
    Setting(1, 1, True, "float32"),
    Setting(1, 2, True, "int8"),
    Setting(1, 2, False, "int8"),
    Setting(1, 2, True, "float32"),
    Setting(1, 2, False, "float32"),
    Setting(2, 1, True, "int8"),
    Setting(2, 1, True, "float32"),
    Setting(2, 2, False, "float32"),
]


class Contender:
    """A detector and a recognizer with sessions made for one setting."""

    def __init__(self, setting: Setting, files: dict[str, Path]) -> None:
        self.setting = setting
        detector_file, recognizer_file = files["detector"], files[setting.graph]
        self.detector = load_detector(f"scrfd:{detector_file}", threads=setting.threads)
        # graph "int8": the file as given (the grid names each graph's file itself).
        self.embedder = load_embedder(
            f"arcface:{recognizer_file}", threads=setting.threads, graph="int8"
        )
        # Own sessions with this setting's spinning (the shared factory caches per file).
        self.detector.session = ort_session(detector_file, setting.threads, setting.spinning)
        self.embedder.session = ort_session(recognizer_file, setting.threads, setting.spinning)
        self.pool = ThreadPoolExecutor(setting.workers) if setting.workers > 1 else None

    def one(self, data: bytes) -> None:
        image = decode_image(data)
        faces = self.detector.detect(image)
        self.embedder.embed(align_faces(image, [f.landmarks for f in faces]))

    def block(self, images: list[bytes]) -> tuple[float, float]:
        """(wall, CPU) seconds for the images, spread over the workers."""
        cpu, wall = time.process_time(), time.perf_counter()
        if self.pool is None:
            for data in images:
                self.one(data)
        else:
            list(self.pool.map(self.one, images))
        return time.perf_counter() - wall, time.process_time() - cpu


def run_grid(images: list[bytes], rounds: int) -> None:
    files = {
        "detector": shared_model("scrfd_500m_kps.onnx"),
        "int8": shared_model("arcface_w600k_mbf_int8.onnx"),
    }
    files["float32"] = float32_recognizer(files["int8"])
    contenders = [Contender(s, files) for s in GRID]
    for c in contenders:
        c.block(images[:WARMUP])
    blocks = [images[i : i + BLOCK] for i in range(0, len(images), BLOCK)]
    rates: list[list[float]] = [[] for _ in contenders]
    cpu_ms: list[list[float]] = [[] for _ in contenders]
    for round_ in range(rounds):
        wall_sum, cpu_sum = [0.0] * len(contenders), [0.0] * len(contenders)
        for b, block in enumerate(blocks):
            shift = (round_ + b) % len(contenders)
            for k in [*range(shift, len(contenders)), *range(shift)]:
                wall, cpu = contenders[k].block(block)
                wall_sum[k] += wall
                cpu_sum[k] += cpu
        for k in range(len(contenders)):
            rates[k].append(len(images) / wall_sum[k])
            cpu_ms[k].append(1000 * cpu_sum[k] / len(images))
    base = statistics.median(rates[0])
    print("| workers | intra-op threads | spinning | recognizer | images/s | CPU ms/image | x |")
    print("|---|---|---|---|---|---|---|")
    for c, rate, cpu in zip(contenders, rates, cpu_ms, strict=True):
        median = statistics.median(rate)
        print(
            f"{c.setting.label()} {median:.1f} | {statistics.median(cpu):.1f} "
            f"| {median / base:.2f} |"
        )


def main(argv: list[str] | None = None) -> int:
    defaults = fixture_models()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--detector", default=defaults["detector"])
    parser.add_argument("--recognizer", default=defaults["recognizer"])
    parser.add_argument("--images", type=int, default=200, help="LFW photos to time")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--flip", action="store_true", help="flip test-time augmentation")
    parser.add_argument("--grid", action="store_true", help="workers x threads x spinning table")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the --grid table")
    args = parser.parse_args(argv)

    images = sample_images(args.images)
    if args.grid:
        print(f"{len(images)} LFW images, SCRFD-500M + ArcFace w600k MBF, {args.rounds} rounds")
        run_grid(images, args.rounds)
        return 0
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
