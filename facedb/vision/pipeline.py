"""FacePipeline: detect → select → align → gates → embed (one batch per image).

The pipeline decides *which* faces go on, never whether a request succeeds: a refusal
(no face, several faces where one was required, a face failing a gate) is an outcome in
the returned `Analysis`, not an exception, so the engine can report it per image.

Each step runs inside `stage(name)` ("detect", "align", "gates", "embed"), a context
manager the caller passes in: the engine times the steps there and refuses to start one
after the request's deadline. The pipeline itself knows nothing of clocks or deadlines.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import numpy as np

from facedb.vision.align import align_faces
from facedb.vision.detect import Detector, DetectorConfig, load_detector
from facedb.vision.embed import Embedder, load_embedder
from facedb.vision.gates import Reason, Rejection
from facedb.vision.types import Face

Selection = Literal["all", "largest", "single"]
# stage(name) wraps one pipeline step; it may raise to stop the analysis before the step.
Stage = Callable[[str], AbstractContextManager[None]]
# (N, 112, 112, 3) crops → (N, dim) embeddings: the embedder's own `embed`, or a
# micro-batcher's that shares model runs between concurrent callers.
EmbedCrops = Callable[[np.ndarray], np.ndarray]


def no_stage(name: str) -> AbstractContextManager[None]:
    """The default stage hook: the step just runs."""
    return nullcontext()


class Assessment(Protocol):
    """What the pipeline needs from a gate verdict (FaceGates returns richer objects)."""

    @property
    def rejection(self) -> Rejection | None: ...


class BatchGates(Protocol):
    """Quality / liveness gates judged on all of an image's faces at once."""

    def assess_batch(
        self, image: np.ndarray, faces: Sequence[Face], aligned: np.ndarray, policy: Any
    ) -> Sequence[Assessment]: ...


@dataclass(frozen=True)
class AnalyzedFace:
    """One selected face: its detection, 112x112 crop, and either an embedding or a refusal."""

    face: Face
    aligned: np.ndarray  # (112, 112, 3) BGR uint8
    embedding: np.ndarray | None  # (dim,) float32 unit vector; None when not embedded
    assessment: Any | None = None  # the gates' verdict, when gates ran

    @property
    def rejection(self) -> Rejection | None:
        return None if self.assessment is None else self.assessment.rejection


@dataclass(frozen=True)
class Analysis:
    """The outcome for one image.

    `rejection` is set when the image yields no embedding at all: no face, several faces
    where one was required, or every selected face refused by the gates (then it is the
    first face's refusal). Otherwise it is None and `faces` holds at least one embedding.
    """

    faces: list[AnalyzedFace]
    rejection: Rejection | None
    image_size: tuple[int, int]  # (width, height) of the analysed image in pixels

    @property
    def accepted(self) -> list[AnalyzedFace]:
        return [f for f in self.faces if f.embedding is not None]

    @property
    def embeddings(self) -> np.ndarray:
        """(K, dim) embeddings of the accepted faces, in `faces` order."""
        vectors = [f.embedding for f in self.faces if f.embedding is not None]
        return np.stack(vectors) if vectors else np.zeros((0, 0), np.float32)


def no_face() -> Rejection:
    return Rejection(Reason.NO_FACE, 0.0, 1.0, "no face was found in the image")


# "single" asks for one main face. A face whose box side is under this fraction of the main
# face's is a bystander (news and event photos are full of them) and does not make the photo
# ambiguous; a face nearly as large does.
BYSTANDER_SIDE_RATIO = 0.5


def multiple_faces(count: int) -> Rejection:
    message = f"{count} faces of similar size were found; exactly one main face is required"
    return Rejection(Reason.MULTIPLE_FACES, float(count), 1.0, message)


def _comparable(faces: list[Face]) -> list[int]:
    """Indices of the faces of comparable size to the largest (the largest included)."""
    floor = max(f.area for f in faces) * BYSTANDER_SIDE_RATIO**2
    return [i for i, f in enumerate(faces) if f.area >= floor]


def _main_face(faces: list[Face]) -> tuple[Face, int]:
    """The largest face, and how many faces (itself included) are of comparable size."""
    return max(faces, key=lambda f: f.area), len(_comparable(faces))


def select_faces(faces: list[Face], select: Selection) -> tuple[list[Face], Rejection | None]:
    """Apply the selection rule; a refusal comes back with the faces that caused it."""
    if not faces:
        return [], no_face()
    if select == "single":
        main, comparable = _main_face(faces)
        return (faces, multiple_faces(comparable)) if comparable > 1 else ([main], None)
    if select == "largest":
        return [max(faces, key=lambda f: f.area)], None
    if select not in ("all", "single"):
        raise ValueError(f"select must be 'all', 'largest' or 'single', got {select!r}")
    return faces, None


class FacePipeline:
    """A detector and an embedder (and optional gates) used together on whole images."""

    def __init__(
        self,
        detector: Detector,
        embedder: Embedder,
        gates: BatchGates | None = None,
        stage: Stage = no_stage,
        embed: EmbedCrops | None = None,
    ):
        self.detector = detector
        self.embedder = embedder
        self.gates = gates
        self.stage = stage
        self.embed: EmbedCrops = embed or embedder.embed

    def with_stage(self, stage: Stage) -> FacePipeline:
        """The same models and gates, with steps run inside `stage(name)`."""
        return FacePipeline(self.detector, self.embedder, self.gates, stage, self.embed)

    @classmethod
    def from_specs(
        cls,
        detector_spec: str,
        recognizer_spec: str,
        *,
        detector_config: DetectorConfig | None = None,
        flip: bool = False,
        threads: int | None = None,
        gates: BatchGates | None = None,
        recognizer_graph: str | None = None,
    ) -> FacePipeline:
        detector = load_detector(detector_spec, detector_config, threads)
        embedder = load_embedder(
            recognizer_spec, flip=flip, threads=threads, graph=recognizer_graph
        )
        return cls(detector, embedder, gates)

    def analyze(
        self, image_bgr: np.ndarray, *, policy: Any | None = None, select: Selection = "all"
    ) -> Analysis:
        """Detect, select, align, gate (when gates and a policy are given) and embed."""
        size = (int(image_bgr.shape[1]), int(image_bgr.shape[0]))
        with self.stage("detect"):
            detected = self.detector.detect(image_bgr)
        faces, refusal = select_faces(detected, select)
        with self.stage("align"):
            crops = align_faces(image_bgr, [f.landmarks for f in faces])
        if refusal is not None and refusal.reason == Reason.MULTIPLE_FACES and policy is not None:
            return self._one_passing_face(image_bgr, faces, crops, policy, size)
        if refusal is not None:
            # Keep the faces that were found (a caller may show them) but embed none.
            analysed = [AnalyzedFace(f, c, None) for f, c in zip(faces, crops, strict=True)]
            return Analysis(analysed, refusal, size)
        assessments = self._assess(image_bgr, faces, crops, policy)
        analysed = self._embed_accepted(faces, crops, assessments)
        return Analysis(analysed, _image_refusal(analysed), size)

    def _one_passing_face(
        self,
        image: np.ndarray,
        faces: list[Face],
        crops: np.ndarray,
        policy: Any,
        size: tuple[int, int],
    ) -> Analysis:
        """Several comparable faces where one is required: a face that the gates would refuse
        on its own (a partial face at the border, a blurred or tiny passer-by) does not make
        the photo ambiguous. Exactly one passing face is the main face; otherwise the photo
        is refused as MULTIPLE_FACES, counting the passing faces (all comparable ones when
        none passes: the first thing to fix is then still the crowd)."""
        assessments = self._assess(image, faces, crops, policy)
        comparable = _comparable(faces)
        passing = [i for i in comparable if _passes(assessments[i])]
        if len(passing) == 1:
            chosen = passing[0]
            analysed = self._embed_accepted([faces[chosen]], crops[[chosen]], [assessments[chosen]])
            return Analysis(analysed, None, size)
        refused = [
            AnalyzedFace(face, crops[i], None, assessments[i]) for i, face in enumerate(faces)
        ]
        return Analysis(refused, multiple_faces(len(passing) or len(comparable)), size)

    def embed_aligned(self, crops: np.ndarray) -> np.ndarray:
        """Embeddings of crops aligned elsewhere (e.g. stored crops re-embedded)."""
        with self.stage("embed"):
            return self.embed(crops)

    def _assess(
        self, image: np.ndarray, faces: list[Face], crops: np.ndarray, policy: Any | None
    ) -> list[Assessment | None]:
        if self.gates is None or policy is None:
            return [None] * len(faces)
        with self.stage("gates"):
            judged = self.gates.assess_batch(image, faces, crops, policy)
        assessments: list[Assessment | None] = list(judged)
        if len(assessments) != len(faces):
            raise RuntimeError(f"gates judged {len(assessments)} of {len(faces)} faces")
        return assessments

    def _embed_accepted(
        self, faces: list[Face], crops: np.ndarray, assessments: list[Assessment | None]
    ) -> list[AnalyzedFace]:
        accepted = [i for i, a in enumerate(assessments) if _passes(a)]
        by_index: dict[int, np.ndarray] = {}
        if accepted:
            # One batch for all accepted faces; refused faces never reach the recognizer.
            with self.stage("embed"):
                vectors = self.embed(crops[accepted])
            by_index = {index: vectors[row] for row, index in enumerate(accepted)}
        return [
            AnalyzedFace(face, crops[i], by_index.get(i), assessments[i])
            for i, face in enumerate(faces)
        ]


def _passes(assessment: Assessment | None) -> bool:
    return assessment is None or assessment.rejection is None


def _image_refusal(faces: list[AnalyzedFace]) -> Rejection | None:
    if any(f.embedding is not None for f in faces):
        return None
    return next((f.rejection for f in faces if f.rejection is not None), no_face())
