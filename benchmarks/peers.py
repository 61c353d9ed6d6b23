"""facedb against a peer library (uniface) and against the floor, on the same LFW photos.

    pip install -e '.[peers]'      # uniface, a benchmark-only extra
    python -m benchmarks.peers                     # 200 photos, 3 rounds, 1 thread
    python -m benchmarks.peers --images 100 --rounds 5 --threads 2

Both libraries get the same ONNX files (SCRFD-500M from ../shared/models, found by uniface
through UNIFACE_CACHE_DIR pointing at a scratch folder that links to it; the recognizer
loaded from the file), onnxruntime sessions built with the same options and thread count,
and the same JPEG bytes already in memory. Each photo is decoded, every face detected,
aligned and embedded. The contenders run interleaved photo by photo (their order swapped
every photo and round), so a noisy shared machine slows them alike.

Rows per setting (recognizer file x uniface's detector canvas):
- facedb: `decode_image` + `FacePipeline.analyze` (native-scale canvas, never upscaled);
- uniface: `cv2.imdecode` + `SCRFD.detect` at its canvas + one `get_normalized_embedding`
  per face (uniface's default canvas is 640x640; `native` gives it facedb's canvas);
- floor: the graphs facedb ran, in bare onnxruntime on tensors prepared beforehand (facedb's
  canvas and crops), one run for the detector and one per face, or one per photo when the
  recognizer batches safely: what is left is model time only.

`--threads 0` compares the libraries as shipped instead: facedb's own sessions (every core,
its spinning default: FACEDB_ORT_SPINNING) and uniface's (onnxruntime's defaults); the floor
then uses every core without spinning. Recognizer rows: `int8` / `float32` give both
libraries that graph's file (facedb runs it as given); `shipped` gives both the int8 file,
and facedb runs it as it does by default (its float32 rewrite, `facedb.models.graphs`).

Printed: images/s (median over rounds), p50 ms per photo, CPU ms per photo (process CPU,
onnxruntime's threads included), and per setting facedb / uniface and floor / facedb ratios
(median over rounds; by wall clock in the images/s column, by CPU time in the CPU column).
Figures depend on the machine; they are printed, never asserted.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import onnxruntime as ort

from benchmarks.paths import shared_dir, shared_model
from benchmarks.sessions import float32_recognizer, ort_session
from facedb.lfw_pairs import read_pairs
from facedb.models.onnx_model import quantizes_per_batch
from facedb.models.session import default_threads
from facedb.vision.align import align_faces
from facedb.vision.image import decode_image
from facedb.vision.pipeline import FacePipeline

WARMUP = 3
SCRFD_FILE = "scrfd_500m_kps.onnx"
INT8_FILE = "arcface_w600k_mbf_int8.onnx"
UNIFACE_CANVAS = (640, 640)  # uniface's SCRFD default input_size


def sample_images(count: int) -> list[bytes]:
    """`count` LFW photos spread evenly over the sorted pairs.txt images, as JPEG bytes."""
    images = read_pairs(shared_dir() / "data/lfw/pairs.txt").unique_images()
    chosen = np.linspace(0, len(images) - 1, num=min(count, len(images))).astype(int)
    return [images[i].read_bytes() for i in chosen]


# ---- contenders: each runs photo i completely -------------------------------------------------


class Facedb:
    name = "facedb"

    def __init__(
        self, photos: list[bytes], recognizer: Path, threads: int, graph: str | None
    ) -> None:
        self.photos = photos
        self.pipeline = FacePipeline.from_specs(
            f"scrfd:{shared_model(SCRFD_FILE)}",
            f"arcface:{recognizer}",
            threads=threads or None,
            recognizer_graph=graph,  # "int8": the file as given; None: facedb's default
        )

    def __call__(self, i: int) -> int:
        analysis = self.pipeline.analyze(decode_image(self.photos[i]), select="all")
        return len(analysis.accepted)


class Uniface:
    name = "uniface"

    def __init__(
        self, photos: list[bytes], recognizer: Path, threads: int, canvas: tuple[int, int]
    ) -> None:
        from uniface.constants import SCRFDWeights
        from uniface.detection import SCRFD
        from uniface.recognition import BaseRecognizer
        from uniface.recognition.base import PreprocessConfig

        class FileArcFace(BaseRecognizer):
            """uniface's ArcFace preprocessing on a file of our choosing."""

            def __init__(self, path: str) -> None:
                config = PreprocessConfig(input_mean=127.5, input_std=127.5, input_size=(112, 112))
                super().__init__(model_path=path, preprocessing=config)

        self.photos = photos
        self.detector = SCRFD(model_name=SCRFDWeights.SCRFD_500M_KPS, input_size=canvas)
        self.recognizer = FileArcFace(str(recognizer))
        if threads:  # same file, same session options and threads as facedb's
            self.detector.session = ort_session(shared_model(SCRFD_FILE), threads)
            self.recognizer.session = ort_session(recognizer, threads)

    def __call__(self, i: int) -> int:
        image = cv2.imdecode(np.frombuffer(self.photos[i], np.uint8), cv2.IMREAD_COLOR)
        assert image is not None  # LFW JPEGs
        faces = self.detector.detect(image)
        for face in faces:
            self.recognizer.get_normalized_embedding(image, face.landmarks)
        return len(faces)


class Floor:
    """The graphs alone: tensors made beforehand by facedb's own preprocessing."""

    name = "floor"

    def __init__(self, prepared_by: Facedb, threads: int) -> None:
        detector, embedder = prepared_by.pipeline.detector, prepared_by.pipeline.embedder
        recognizer = embedder.spec.path  # the graph facedb runs
        threads = threads or default_threads()  # as facedb's own sessions, spinning off
        self.detector = ort_session(shared_model(SCRFD_FILE), threads, spinning=False)
        self.recognizer = ort_session(recognizer, threads, spinning=False)
        self.det_input = self.detector.get_inputs()[0].name
        self.rec_input = self.recognizer.get_inputs()[0].name
        self.batched = not quantizes_per_batch(recognizer)
        self.blobs: list[np.ndarray] = []
        self.crops: list[np.ndarray] = []
        for data in prepared_by.photos:
            image = decode_image(data)
            canvas, _ = detector.prepare(image)
            self.blobs.append(detector.to_tensor(canvas))
            faces = detector.detect(image)
            crops = align_faces(image, [f.landmarks for f in faces])
            self.crops.append(embedder.to_tensor(crops))

    def __call__(self, i: int) -> int:
        self.detector.run(None, {self.det_input: self.blobs[i]})
        crops = self.crops[i]
        if len(crops) and self.batched:
            self.recognizer.run(None, {self.rec_input: crops})
        else:
            for row in range(len(crops)):
                self.recognizer.run(None, {self.rec_input: crops[row : row + 1]})
        return len(crops)


# ---- timing -----------------------------------------------------------------------------------


@dataclass
class Figures:
    wall: list[list[float]] = field(default_factory=list)  # per round, per photo, seconds
    cpu: list[list[float]] = field(default_factory=list)

    def images_per_s(self) -> list[float]:
        return [len(r) / sum(r) for r in self.wall]

    def images_per_cpu_s(self) -> list[float]:
        return [len(r) / sum(r) for r in self.cpu]

    def row(self) -> dict[str, float]:
        walls = [w for r in self.wall for w in r]
        cpus = [c for r in self.cpu for c in r]
        return {
            "images_per_s": statistics.median(self.images_per_s()),
            "p50_ms": 1000 * statistics.median(walls),
            "cpu_ms": 1000 * statistics.mean(cpus),
        }


def interleaved(
    contenders: Sequence[Callable[[int], int]], photos: int, rounds: int
) -> list[Figures]:
    """Time every contender on every photo, photo by photo, the order rotated each photo."""
    for contender in contenders:
        for i in range(min(WARMUP, photos)):
            contender(i)  # first runs allocate and tune; keep them out
    figures = [Figures() for _ in contenders]
    for round_ in range(rounds):
        for f in figures:
            f.wall.append([])
            f.cpu.append([])
        for i in range(photos):
            shift = (i + round_) % len(contenders)
            for k in [*range(shift, len(contenders)), *range(shift)]:
                cpu, wall = time.process_time(), time.perf_counter()
                contenders[k](i)
                figures[k].wall[-1].append(time.perf_counter() - wall)
                figures[k].cpu[-1].append(time.process_time() - cpu)
    return figures


def ratio(a: Figures, b: Figures) -> tuple[float, float]:
    """Medians over rounds of a's images/s over b's (same round: same machine state), by
    wall clock and by CPU time (which other load on a shared machine does not inflate)."""
    wall = zip(a.images_per_s(), b.images_per_s(), strict=True)
    cpu = zip(a.images_per_cpu_s(), b.images_per_cpu_s(), strict=True)
    return statistics.median(x / y for x, y in wall), statistics.median(x / y for x, y in cpu)


# ---- command line -----------------------------------------------------------------------------


def uniface_cache(scratch: Path) -> None:
    """UNIFACE_CACHE_DIR with uniface's name for SCRFD-500M linking to the shared file
    (uniface checks its SHA-256, which is the shared file's)."""
    (scratch / "scrfd_500m.onnx").symlink_to(shared_model(SCRFD_FILE))
    os.environ["UNIFACE_CACHE_DIR"] = str(scratch)


def run_setting(
    photos: list[bytes],
    name: str,
    recognizer: Path,
    canvas: tuple[int, int],
    threads: int,
    rounds: int,
) -> list[tuple[str, dict[str, float]]]:
    # "shipped": both get the int8 file; facedb runs what it runs by default (its float32
    # rewrite), uniface the file. Otherwise each runs the named graph's file as given.
    ours = Facedb(photos, recognizer, threads, None if name == "shipped" else "int8")
    contenders: list[Any] = [ours, Uniface(photos, recognizer, threads, canvas)]
    contenders.append(Floor(ours, threads))
    figures = interleaved(contenders, len(photos), rounds)
    rows = [(c.name, f.row()) for c, f in zip(contenders, figures, strict=True)]
    for label, a, b in (("facedb / uniface", 0, 1), ("floor / facedb", 2, 0)):
        wall, cpu = ratio(figures[a], figures[b])
        rows.append((label, {"ratio": wall, "cpu_ratio": cpu}))
    return rows


def print_rows(setting: str, rows: list[tuple[str, dict[str, float]]]) -> None:
    for name, row in rows:
        if "ratio" in row:
            print(f"| {setting} | {name} | {row['ratio']:.2f}x | | {row['cpu_ratio']:.2f}x |")
        else:
            print(
                f"| {setting} | {name} | {row['images_per_s']:.1f} | {row['p50_ms']:.1f} "
                f"| {row['cpu_ms']:.1f} |"
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=200, help="LFW photos")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="onnxruntime intra-op threads for both; 0: each library's own default sessions",
    )
    parser.add_argument(
        "--recognizers",
        nargs="+",
        choices=("int8", "float32", "shipped"),
        default=["int8", "float32", "shipped"],
        help="int8 / float32: both libraries run that graph; shipped: both are given the "
        "int8 file and facedb runs its default graph (the float32 rewrite)",
    )
    args = parser.parse_args(argv)
    try:
        import uniface
    except ImportError:
        print("error: uniface is not installed (pip install -e '.[peers]')", file=sys.stderr)
        return 2
    photos = sample_images(args.images)
    files = {"int8": shared_model(INT8_FILE), "shipped": shared_model(INT8_FILE)}
    if "float32" in args.recognizers:
        files["float32"] = float32_recognizer(files["int8"])
    print(f"uniface {uniface.__version__}, onnxruntime {ort.__version__}, {os.cpu_count()} cores")
    print(f"{len(photos)} LFW photos (250x250), {args.rounds} rounds, {args.threads} thread(s)\n")
    print("| recognizer, uniface canvas | pipeline | images/s | p50 ms | CPU ms/image |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as scratch:
        uniface_cache(Path(scratch))
        for name in args.recognizers:
            for canvas_name, canvas in (("640", UNIFACE_CANVAS), ("native 256", (256, 256))):
                rows = run_setting(photos, name, files[name], canvas, args.threads, args.rounds)
                print_rows(f"{name}, {canvas_name}", rows)
                sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
