"""Face detectors on real photos: LFW detection rate, agreement with SCRFD, latency.

    python -m benchmarks.detect                      # every fixture detector, threads 1 and 2
    python -m benchmarks.detect --limit 200 --threads 1 --detectors scrfd_500m yunet

For each detector: the share of LFW `pairsDevTest.txt` images (1,549 unique 250x250 photos)
with at least one face; the share where one of its boxes overlaps the subject's box found by
SCRFD-500M (the face nearest the centre) with IoU > 0.5; the median and 90th-percentile wall
time of `detect()` per image (sequential, one image at a time, after one warm-up run); then
face counts on the `edge/group` photos.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from benchmarks.paths import shared_dir
from facedb.lfw_pairs import read_pairs
from facedb.vision.detect import Detector, load_detector
from facedb.vision.detect.base import iou_one_to_many

# name → spec template, the six fixture files of ../shared/models
FIXTURES: dict[str, str] = {
    "scrfd_500m": "scrfd:{models}/scrfd_500m_kps.onnx",
    "scrfd_2.5g": "scrfd:{models}/scrfd_2.5g_kps_640.onnx",
    "retinaface_mnet025": "retinaface:{models}/retinaface_mnet025_640.onnx",
    "yolov5n_0.5": "yolov5face:{models}/yolov5n_0.5_face_640.onnx",
    "yolov8_lite_t": "yolov8face:{models}/yolov8_lite_t_face_640.onnx",
    "yunet": "yunet:{models}/yunet_2023mar.onnx",
}


@dataclass
class Run:
    found: int = 0
    agree: int = 0
    total: int = 0
    millis: list[float] = field(default_factory=list)


def run_lfw(
    detector: Detector, images: Sequence[np.ndarray], reference: list[np.ndarray | None]
) -> Run:
    run = Run()
    for image, ref_box in zip(images, reference, strict=True):
        start = time.perf_counter()
        faces = detector.detect(image)
        run.millis.append((time.perf_counter() - start) * 1000)
        run.total += 1
        run.found += bool(faces)
        if faces and ref_box is not None:
            boxes = np.stack([f.box for f in faces])
            run.agree += bool(iou_one_to_many(ref_box, boxes).max() > 0.5)
    return run


def subject_boxes(detector: Detector, images: Iterable[np.ndarray]) -> list[np.ndarray | None]:
    """The box nearest each image's centre (LFW's subject; other faces are bystanders)."""
    boxes: list[np.ndarray | None] = []
    for image in images:
        faces = detector.detect(image)
        if not faces:
            boxes.append(None)
            continue
        middle = np.array([image.shape[1], image.shape[0]]) / 2
        distances = [float(np.linalg.norm((f.box[:2] + f.box[2:]) / 2 - middle)) for f in faces]
        boxes.append(faces[int(np.argmin(distances))].box)
    return boxes


def read_bgr(path: Path) -> np.ndarray:
    image = cv2.imread(str(path))
    if image is None:
        raise OSError(f"cannot read {path}")
    return np.asarray(image)


def group_counts(detector: Detector, group_dir: Path) -> dict[str, int]:
    return {
        path.stem: len(detector.detect(read_bgr(path))) for path in sorted(group_dir.glob("*.jpg"))
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--detectors", nargs="*", default=list(FIXTURES), choices=list(FIXTURES))
    parser.add_argument("--threads", nargs="*", type=int, default=[1, 2])
    parser.add_argument("--limit", type=int, default=0, help="first N LFW images only")
    parser.add_argument("--no-groups", action="store_true", help="skip edge/group counts")
    args = parser.parse_args(argv)

    shared = shared_dir()
    paths = read_pairs(shared / "data" / "lfw" / "pairsDevTest.txt").unique_images()
    paths = paths[: args.limit] if args.limit else paths
    images = [read_bgr(p) for p in paths]
    specs = {name: FIXTURES[name].format(models=shared / "models") for name in args.detectors}
    reference = subject_boxes(
        load_detector(FIXTURES["scrfd_500m"].format(models=shared / "models")), images
    )
    print(f"LFW pairsDevTest: {len(images)} unique images; agreement = IoU > 0.5 with SCRFD-500M")
    print(
        f"{'detector':<20}{'threads':>8}{'found %':>9}{'agree %':>9}{'median ms':>11}{'p90 ms':>8}"
    )
    for name, spec in specs.items():
        for threads in args.threads:
            detector = load_detector(spec, threads=threads)
            detector.detect(images[0])  # warm-up: first run allocates
            run = run_lfw(detector, images, reference)
            print(
                f"{name:<20}{threads:>8}{100 * run.found / run.total:>9.2f}"
                f"{100 * run.agree / run.total:>9.2f}{np.median(run.millis):>11.1f}"
                f"{np.percentile(run.millis, 90):>8.1f}"
            )
    if not args.no_groups:
        print("\nfaces found on edge/group (score >= 0.5)")
        for name, spec in specs.items():
            counts = group_counts(
                load_detector(spec, threads=max(args.threads)), shared / "data" / "edge" / "group"
            )
            print(f"{name:<20}" + " ".join(f"{k}={v}" for k, v in counts.items()))


if __name__ == "__main__":
    main()
