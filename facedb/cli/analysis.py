"""`facedb analyze` and `facedb cluster`: face analysis and grouping on local files, offline."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from facedb.cli.errors import EXIT_NO_FACE, EXIT_OK, EXIT_USAGE
from facedb.cli.vision import DEFAULT_DETECTOR, DEFAULT_RECOGNIZER, face_to_json
from facedb.vision.types import Face

if TYPE_CHECKING:
    from facedb.vision.analysis import FaceAnalyzer

KIND_OPTIONS = {
    "agegender": "AgeGender model (age, gender)",
    "fairface": "FairFace model (race, age_group)",
    "emotion": "emotion model: affectnet:PATH (ONNX export) or minixception:PATH",
    "landmarks": "2D106 model (landmarks_106, eyes_open, mouth_open, head_pose)",
    "gaze": "MobileGaze model (gaze)",
    "parsing": "BiSeNet model (parsing, occlusion, glasses, sunglasses, hat, mask, ...)",
    "xseg": "XSeg model (segmentation, occlusion, mask)",
}
BOX_COLOUR, POINT_COLOUR, LABEL_COLOUR = (0, 255, 0), (255, 255, 0), (0, 255, 255)  # BGR
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}


def register(subparsers: argparse._SubParsersAction) -> None:
    _register_analyze(subparsers)
    _register_cluster(subparsers)


def _fail(command: str, error: object) -> int:
    print(f"facedb {command}: {error}", file=sys.stderr)
    return EXIT_USAGE


# ======================================================================================
# analyze
# ======================================================================================


def add_model_options(parser: argparse.ArgumentParser) -> None:
    """--agegender SPEC, --emotion SPEC, ...: one option per analysis model kind."""
    from facedb.vision.analysis.analyzer import KIND_ENV

    for kind, text in KIND_OPTIONS.items():
        parser.add_argument(
            f"--{kind}", default=None, metavar="SPEC", help=f"{text} (default: ${KIND_ENV[kind]})"
        )


def load_analyzer(args: argparse.Namespace) -> FaceAnalyzer:
    """The analysis models the options (or else $FACEDB_<KIND>_MODEL) name."""
    from facedb.models import SessionSettings
    from facedb.vision.analysis import FaceAnalyzer

    overrides = {kind: getattr(args, kind) for kind in KIND_OPTIONS}
    return FaceAnalyzer.from_env(SessionSettings(args.threads), **overrides)


def _register_analyze(subparsers: argparse._SubParsersAction) -> None:
    from facedb.vision.analysis.analyzer import ATTRIBUTES

    parser = subparsers.add_parser("analyze", help="face attributes of every face in an image")
    parser.add_argument("image", type=Path, help="image file")
    parser.add_argument(
        "--attributes",
        default=None,
        metavar="A,B,...",
        help=f"attributes to measure (default: all the configured models give): "
        f"{', '.join(ATTRIBUTES)}",
    )
    parser.add_argument("--detector", default=None, help="default: $FACEDB_DETECTOR or SCRFD")
    add_model_options(parser)
    parser.add_argument("--max-faces", type=int, default=0, help="keep the N largest (0 = all)")
    parser.add_argument("--threads", type=int, default=None, help="onnxruntime threads")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument(
        "--draw", type=Path, default=None, metavar="OUT.png", help="write the faces and labels"
    )
    parser.set_defaults(handler=run_analyze)


def run_analyze(args: argparse.Namespace) -> int:
    from facedb.vision.analysis import parse_attributes
    from facedb.vision.analysis.analyzer import ATTRIBUTE_KINDS
    from facedb.vision.detect import DetectorConfig, load_detector
    from facedb.vision.image import decode_image

    if args.max_faces < 0:
        return _fail("analyze", f"--max-faces must be >= 0, got {args.max_faces}")
    try:
        analyzer = load_analyzer(args)
        if args.attributes is not None:
            attributes = parse_attributes(args.attributes)
        else:
            attributes = tuple(
                name
                for name, kinds in ATTRIBUTE_KINDS.items()
                if any(kind in analyzer.models for kind in kinds)
            )
        if not attributes:
            raise ValueError(
                "no analysis model is configured: give one, e.g. --agegender SPEC, "
                "or set $FACEDB_AGEGENDER_MODEL"
            )
        analyzer.kinds_for(attributes)  # every asked attribute has its model
        image = decode_image(args.image)
        spec = args.detector or os.environ.get("FACEDB_DETECTOR") or DEFAULT_DETECTOR
        detector = load_detector(spec, DetectorConfig(max_faces=args.max_faces), args.threads)
    except (ValueError, OSError) as error:
        return _fail("analyze", error)
    faces = detector.detect(image)
    results = [r.to_dict() for r in analyzer.analyze(image, faces, attributes)]
    if args.draw is not None and not cv2.imwrite(
        str(args.draw), draw_analysis(image, faces, results)
    ):
        return _fail("analyze", f"cannot write {args.draw}")
    if args.json:
        report = {
            "image": str(args.image),
            "width": int(image.shape[1]),
            "height": int(image.shape[0]),
            "detector": detector.name,
            "attributes": list(attributes),
            "models": {kind: model.name for kind, model in analyzer.models.items()},
            "faces": [
                face_to_json(f) | {"attributes": r} for f, r in zip(faces, results, strict=True)
            ],
        }
        print(json.dumps(report, indent=2))
    else:
        print(f"{args.image}: {len(faces)} face(s) [{detector.name}]")
        for number, (face, result) in enumerate(zip(faces, results, strict=True), 1):
            print(f"  #{number} score {face.score:.3f} {summary(result)}")
    return EXIT_OK if faces else EXIT_NO_FACE


def summary(attributes: dict[str, Any]) -> str:
    """One line per face: the scalar attributes, and the label of structured ones."""
    parts = []
    for key, value in attributes.items():
        if isinstance(value, dict) and "label" in value:
            parts.append(f"{key}={value['label']}({value['confidence']:.2f})")
        elif isinstance(value, float):
            parts.append(f"{key}={value:.2f}")
        elif isinstance(value, str | bool | int) or value is None:
            parts.append(f"{key}={value}")
        elif key == "gaze":
            parts.append(f"gaze=pitch {value['pitch_deg']:.0f}° yaw {value['yaw_deg']:.0f}°")
    return " ".join(parts)


def draw_analysis(
    image: np.ndarray, faces: Sequence[Face], results: Sequence[dict[str, Any]]
) -> np.ndarray:
    """Each box with its score and 5 landmarks, a short attribute label under it, and the
    106 points when they were asked for."""
    picture = image.copy()
    thickness = max(1, round(max(image.shape[:2]) / 500))
    scale = 0.4 * thickness
    for face, result in zip(faces, results, strict=True):
        x1, y1, x2, y2 = (round(float(v)) for v in face.box)
        cv2.rectangle(picture, (x1, y1), (x2, y2), BOX_COLOUR, thickness)
        cv2.putText(
            picture, f"{face.score:.2f}", (x1, max(y1 - 4, 10)), cv2.FONT_HERSHEY_SIMPLEX,
            scale, BOX_COLOUR, thickness,
        )  # fmt: skip
        for x, y in face.landmarks:
            if np.isfinite(x) and np.isfinite(y):
                cv2.circle(
                    picture, (round(float(x)), round(float(y))), thickness + 1, POINT_COLOUR, -1
                )
        label = attribute_label(result)
        if label:
            cv2.putText(
                picture, label, (x1, y2 + round(14 * thickness)), cv2.FONT_HERSHEY_SIMPLEX,
                scale, LABEL_COLOUR, thickness,
            )  # fmt: skip
        for x, y in (result.get("landmarks_106") or {}).get("points", []):
            cv2.circle(picture, (round(x), round(y)), 1, POINT_COLOUR, -1)
    return picture


def attribute_label(result: dict[str, Any]) -> str:
    """A short label for a picture: gender, age and emotion, those measured."""
    bits = []
    if "gender" in result:
        bits.append(str(result["gender"]))
    if "age" in result:
        bits.append(f"{result['age']:.0f}")
    emotion = result.get("emotion")
    if isinstance(emotion, dict):
        bits.append(str(emotion["label"]))
    return " ".join(bits)


# ======================================================================================
# cluster
# ======================================================================================


def _register_cluster(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("cluster", help="group the faces of a folder into people")
    parser.add_argument("folder", type=Path, help="folder of images (searched recursively)")
    parser.add_argument("--detector", default=None, help="default: $FACEDB_DETECTOR or SCRFD")
    parser.add_argument(
        "--recognizer", default=None, help=f"default: $FACEDB_RECOGNIZER or {DEFAULT_RECOGNIZER}"
    )
    parser.add_argument(
        "--threshold",
        type=float,
        default=None,
        metavar="COS",
        help="cosine above which two faces may be one person (default: the recognizer's "
        "calibrated 1:N threshold at FPIR 0.1%% for the number of faces, else 0.45)",
    )
    parser.add_argument(
        "--neighbours", type=int, default=10, metavar="K", help="k of the k-NN graph"
    )
    parser.add_argument("--max-images", type=int, default=10_000, help="refuse larger folders")
    parser.add_argument("--threads", type=int, default=None, help="onnxruntime threads")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.set_defaults(handler=run_cluster)


def image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)


def run_cluster(args: argparse.Namespace) -> int:
    from facedb.clustering import ClusterConfig, cluster_faces, default_threshold
    from facedb.vision.image import decode_image
    from facedb.vision.pipeline import FacePipeline

    if not args.folder.is_dir():
        return _fail("cluster", f"not a folder: {args.folder}")
    files = image_files(args.folder)
    if len(files) > args.max_images:
        return _fail("cluster", f"{len(files)} images, more than --max-images {args.max_images}")
    detector = args.detector or os.environ.get("FACEDB_DETECTOR") or DEFAULT_DETECTOR
    recognizer = args.recognizer or os.environ.get("FACEDB_RECOGNIZER") or DEFAULT_RECOGNIZER
    try:
        pipeline = FacePipeline.from_specs(detector, recognizer, threads=args.threads)
        if args.threshold is not None:
            ClusterConfig(threshold=args.threshold, neighbours=args.neighbours)  # validate
    except (ValueError, OSError) as error:
        return _fail("cluster", error)
    sources: list[tuple[Path, Face]] = []
    embeddings: list[np.ndarray] = []
    skipped = []
    for path in files:
        try:
            analysis = pipeline.analyze(decode_image(path))
        except (ValueError, OSError):
            skipped.append(path)
            continue
        for face in analysis.accepted:
            if face.embedding is not None:
                sources.append((path, face.face))
                embeddings.append(face.embedding)
    matrix = np.stack(embeddings) if embeddings else np.zeros((0, pipeline.embedder.dim))
    threshold = args.threshold
    if threshold is None:
        threshold = default_threshold(pipeline.embedder.sha256, len(matrix))
    config = ClusterConfig(threshold=threshold, neighbours=args.neighbours)
    clusters = cluster_faces(matrix.astype(np.float32), config)
    _print_clusters(args, sources, clusters, threshold, skipped)
    return EXIT_OK


def _print_clusters(
    args: argparse.Namespace,
    sources: Sequence[tuple[Path, Face]],
    clusters: Sequence[Sequence[int]],
    threshold: float,
    skipped: Sequence[Path],
) -> None:
    if args.json:
        report = {
            "folder": str(args.folder),
            "threshold": round(threshold, 4),
            "faces": len(sources),
            "skipped_images": [str(p) for p in skipped],
            "clusters": [
                [
                    {"image": str(sources[i][0]), "box": face_to_json(sources[i][1])["box"]}
                    for i in members
                ]
                for members in clusters
            ],
        }
        print(json.dumps(report, indent=2))
        return
    print(f"{len(sources)} face(s) in {len(clusters)} group(s), threshold {threshold:.3f}")
    for number, members in enumerate(clusters, 1):
        names = ", ".join(str(sources[i][0].relative_to(args.folder)) for i in members[:8])
        more = f" (+{len(members) - 8} more)" if len(members) > 8 else ""
        print(f"  #{number} {len(members)} face(s): {names}{more}")
