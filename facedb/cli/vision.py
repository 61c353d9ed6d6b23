"""`facedb` vision commands: run the face pipeline's stages on local image files."""

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

from facedb.cli.errors import EXIT_NO_FACE
from facedb.vision.types import Face

if TYPE_CHECKING:
    from facedb.vision.analysis import FaceAnalyzer
    from facedb.vision.gates import FaceAssessment

DEFAULT_DETECTOR = "SCRFD_500M_KPS"
DEFAULT_RECOGNIZER = "ARCFACE_MNET"
# Box colours (BGR): faces the gates accept, and faces they refuse (labelled with the reason).
ACCEPTED_COLOUR = (0, 255, 0)
REFUSED_COLOUR = (0, 0, 255)
# One colour per landmark (BGR): eyes blue/green, nose red, mouth corners cyan/magenta.
LANDMARK_COLOURS = ((255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0), (255, 0, 255))


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add this group's commands to the `facedb` parser."""
    _register_detect(subparsers)
    _register_compare(subparsers)


# ======================================================================================
# detect
# ======================================================================================


def _register_detect(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("detect", help="detect faces in an image")
    parser.add_argument("image", type=Path, help="image file")
    parser.add_argument(
        "--detector",
        default=None,
        help=f"model spec: registry name or FAMILY:PATH (default: $FACEDB_DETECTOR or "
        f"{DEFAULT_DETECTOR})",
    )
    parser.add_argument(
        "--score-threshold",
        type=float,
        default=0.5,
        metavar="X",
        help="lowest detector score kept (default 0.5)",
    )
    parser.add_argument(
        "--nms-threshold",
        type=float,
        default=0.4,
        metavar="X",
        help="box overlap (IoU) above which the weaker box is dropped (default 0.4)",
    )
    parser.add_argument(
        "--input-size", type=parse_size, default=None, metavar="WxH", help="dynamic models only"
    )
    parser.add_argument("--max-faces", type=int, default=0, help="keep the N largest (0 = all)")
    parser.add_argument("--upscale", action="store_true", help="enlarge small images to fit")
    parser.add_argument("--threads", type=int, default=None, help="onnxruntime threads")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument(
        "--draw",
        type=Path,
        default=None,
        metavar="OUT.png",
        help="write the image with each face drawn: green if the --policy gates accept it, "
        "red with the reason code if they refuse it",
    )
    _add_gate_options(parser)
    _add_attribute_options(parser)
    parser.set_defaults(handler=run_detect)


def _add_attribute_options(parser: argparse.ArgumentParser) -> None:
    from facedb.cli.analysis import add_model_options

    parser.add_argument(
        "--attributes",
        default=None,
        metavar="A,B,...",
        help="also measure these attributes on every face, as `facedb analyze` does (age, "
        "gender, emotion, ...): in the output, --json and --draw",
    )
    add_model_options(parser)


def parse_size(text: str) -> tuple[int, int]:
    """`640x480` → (640, 480), width first."""
    width, sep, height = text.lower().partition("x")
    try:
        size = (int(width), int(height))
    except ValueError:
        size = (0, 0)
    if not sep or min(size) <= 0:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT such as 640x640, got {text!r}")
    return size


def run_detect(args: argparse.Namespace) -> int:
    from facedb.models import ModelUnavailableError
    from facedb.vision.detect import DetectorConfig, load_detector
    from facedb.vision.image import decode_image

    config = DetectorConfig(
        score_threshold=args.score_threshold,
        nms_threshold=args.nms_threshold,
        input_size=args.input_size,
        max_faces=args.max_faces,
        upscale=args.upscale,
    )
    spec = args.detector or os.environ.get("FACEDB_DETECTOR") or DEFAULT_DETECTOR
    try:
        # The attribute models are checked first: a mistake there costs no detection.
        names, analyzer = _attribute_request(args)
        image = decode_image(args.image)  # EXIF orientation, formats, pixel limits
        detector = load_detector(spec, config, threads=args.threads)
    except (ValueError, OSError, ModelUnavailableError) as error:
        print(f"facedb detect: {error}", file=sys.stderr)
        return 2
    faces = detector.detect(image)
    measured = [r.to_dict() for r in analyzer.analyze(image, faces, names)] if names else []
    assessments = assess_faces(args, image, faces) if args.json or args.draw else []
    if args.draw is None:
        drawn = True
    else:
        drawn = cv2.imwrite(str(args.draw), draw_faces(image, faces, assessments, measured))
    if not drawn:
        print(f"facedb detect: cannot write {args.draw}", file=sys.stderr)
        return 2
    if args.json:
        verdicts = [a.to_dict() for a in assessments]
        report = {
            "image": str(args.image),
            "width": int(image.shape[1]),
            "height": int(image.shape[0]),
            "detector": detector.name,
            "family": detector.family,
            "policy": args.policy,
            "faces": [face_to_json(f) | a for f, a in zip(faces, verdicts, strict=True)],
        }
        if names:
            report["attributes"] = list(names)
            report["models"] = {kind: model.name for kind, model in analyzer.models.items()}
            for face_report, values in zip(report["faces"], measured, strict=True):
                face_report["attributes"] = values
        print(json.dumps(report, indent=2))
    else:
        from facedb.cli.analysis import summary

        print(f"{args.image}: {len(faces)} face(s) [{detector.name}]")
        for number, face in enumerate(faces, 1):
            extra = f" {summary(measured[number - 1])}" if measured else ""
            print(describe_face(number, face) + extra)
    return 0


def _attribute_request(args: argparse.Namespace) -> tuple[tuple[str, ...], FaceAnalyzer]:
    """The --attributes asked for and the analyzer with their models (checked here)."""
    from facedb.cli.analysis import load_analyzer
    from facedb.vision.analysis import FaceAnalyzer, parse_attributes

    if args.attributes is None:
        return (), FaceAnalyzer({})
    names = parse_attributes(args.attributes)
    if not names:
        raise ValueError("--attributes is empty: name at least one, e.g. age,gender")
    analyzer = load_analyzer(args)
    analyzer.kinds_for(names)  # every attribute has its model, or one line says which
    return names, analyzer


def _add_gate_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--liveness",
        action="append",
        default=None,
        metavar="SPEC",
        help="liveness model for --json, repeat to fuse several (default: $FACEDB_LIVENESS, "
        "';'-separated; none: no liveness score)",
    )
    parser.add_argument(
        "--quality-model",
        default=None,
        metavar="SPEC",
        help="learned quality model for --json (default: $FACEDB_QUALITY_MODEL)",
    )
    parser.add_argument(
        "--policy",
        choices=("enrollment", "search", "none"),
        default="enrollment",
        help="gate policy whose verdict --json reports per face (default: enrollment)",
    )


def assess_faces(
    args: argparse.Namespace, image: np.ndarray, faces: list[Face]
) -> list[FaceAssessment]:
    """Each face's quality report, liveness score and gate verdict under --policy."""
    import dataclasses

    from facedb.vision.align import align_face
    from facedb.vision.gates import FaceGates, GatePolicy

    env_liveness = (os.environ.get("FACEDB_LIVENESS") or "").split(";")
    liveness = args.liveness or [spec for spec in env_liveness if spec.strip()]
    quality = args.quality_model or os.environ.get("FACEDB_QUALITY_MODEL") or None
    gates = FaceGates.from_specs(liveness, quality, threads=args.threads)
    policy = getattr(GatePolicy, args.policy)()
    if gates.liveness is None:
        # No liveness model: report the quality verdict alone ("liveness": null says so).
        policy = dataclasses.replace(policy, require_liveness=False)
    crops = [align_face(image, face.landmarks) for face in faces]
    return list(gates.assess_batch(image, faces, crops, policy))


def face_to_json(face: Face) -> dict[str, Any]:
    return {
        "box": [round(float(v), 2) for v in face.box],
        "score": round(face.score, 4),
        "landmarks": [[round(float(x), 2), round(float(y), 2)] for x, y in face.landmarks],
    }


def describe_face(number: int, face: Face) -> str:
    box = ", ".join(f"{v:.1f}" for v in face.box)
    points = " ".join(f"({x:.1f}, {y:.1f})" for x, y in face.landmarks)
    return f"  #{number} score {face.score:.3f} box [{box}] landmarks {points}"


def draw_faces(
    image: np.ndarray,
    faces: list[Face],
    assessments: list[FaceAssessment],
    attributes: Sequence[dict[str, Any]] = (),
) -> np.ndarray:
    """A copy of `image` with each box, its label and the five landmarks drawn.

    Accepted faces are green with their score; refused ones red with the reason code, so
    the picture shows at a glance which faces would be enrolled (or searched) and why not.
    With `attributes` (one dict per face), their short label goes under each box.
    """
    picture = image.copy()
    thickness = max(1, round(max(image.shape[:2]) / 500))
    if attributes:
        _label_attributes(picture, faces, attributes, thickness)
    for face, assessment in zip(faces, assessments, strict=True):
        refusal = assessment.rejection
        colour = ACCEPTED_COLOUR if refusal is None else REFUSED_COLOUR
        label = f"{face.score:.2f}" if refusal is None else str(refusal.reason)
        x1, y1, x2, y2 = (round(float(v)) for v in face.box)
        cv2.rectangle(picture, (x1, y1), (x2, y2), colour, thickness)
        cv2.putText(
            picture, label, (x1, max(y1 - 4, 10)), cv2.FONT_HERSHEY_SIMPLEX,
            0.4 * thickness, colour, thickness,
        )  # fmt: skip
        for (x, y), colour in zip(face.landmarks, LANDMARK_COLOURS, strict=True):
            if np.isfinite(x) and np.isfinite(y):
                cv2.circle(picture, (round(float(x)), round(float(y))), thickness + 1, colour, -1)
    return picture


def _label_attributes(
    picture: np.ndarray,
    faces: list[Face],
    attributes: Sequence[dict[str, Any]],
    thickness: int,
) -> None:
    from facedb.cli.analysis import LABEL_COLOUR, attribute_label

    for face, values in zip(faces, attributes, strict=True):
        label = attribute_label(values)
        if label:
            x1, _, _, y2 = (round(float(v)) for v in face.box)
            cv2.putText(
                picture, label, (x1, y2 + round(14 * thickness)), cv2.FONT_HERSHEY_SIMPLEX,
                0.4 * thickness, LABEL_COLOUR, thickness,
            )  # fmt: skip


# ======================================================================================
# compare
# ======================================================================================


def _register_compare(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("compare", help="cosine similarity of two photos' main faces")
    parser.add_argument("image_a", type=Path, help="first image file")
    parser.add_argument("image_b", type=Path, help="second image file")
    parser.add_argument(
        "--detector",
        default=None,
        help=f"model spec (default: $FACEDB_DETECTOR or {DEFAULT_DETECTOR})",
    )
    parser.add_argument(
        "--recognizer",
        default=None,
        help=f"model spec (default: $FACEDB_RECOGNIZER or {DEFAULT_RECOGNIZER})",
    )
    parser.add_argument("--flip", action="store_true", help="add the mirror image's embedding")
    parser.add_argument("--threads", type=int, default=None, help="onnxruntime threads")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.set_defaults(handler=run_compare)


def run_compare(args: argparse.Namespace) -> int:
    from facedb.vision.image import decode_image
    from facedb.vision.pipeline import FacePipeline

    detector = args.detector or os.environ.get("FACEDB_DETECTOR") or DEFAULT_DETECTOR
    recognizer = args.recognizer or os.environ.get("FACEDB_RECOGNIZER") or DEFAULT_RECOGNIZER
    try:
        pipeline = FacePipeline.from_specs(
            detector, recognizer, flip=args.flip, threads=args.threads
        )
        analyses = [
            pipeline.analyze(decode_image(path), select="largest")
            for path in (args.image_a, args.image_b)
        ]
    except (ValueError, OSError) as error:
        print(f"facedb compare: {error}", file=sys.stderr)
        return 2
    for path, analysis in zip((args.image_a, args.image_b), analyses, strict=True):
        if not analysis.accepted:
            print(f"facedb compare: no face found in {path}", file=sys.stderr)
            return EXIT_NO_FACE
    a, b = (analysis.accepted[0] for analysis in analyses)
    # An accepted face always carries its embedding (the pipeline embeds what it accepts).
    assert a.embedding is not None and b.embedding is not None
    score = float(np.dot(a.embedding, b.embedding))
    if args.json:
        report = {
            "similarity": round(score, 6),
            "recognizer": pipeline.embedder.name,
            "faces": [face_to_json(a.face), face_to_json(b.face)],
        }
        print(json.dumps(report, indent=2))
    else:
        print(f"cosine similarity {score:.4f} ({pipeline.embedder.name})")
    return 0
