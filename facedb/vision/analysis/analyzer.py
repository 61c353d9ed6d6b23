"""FaceAnalyzer: the attributes asked for by name, from whichever analysis models they need.

Attribute names (the API's and the CLI's) and the model kind each needs:

| attribute | needs |
|---|---|
| age, gender | agegender (AgeGender) |
| race, age_group | fairface |
| emotion | emotion (AffectNet export or MiniXception) |
| landmarks_106 | landmarks (2D106) |
| gaze | gaze (MobileGaze) |
| parsing | parsing (BiSeNet) |
| segmentation | xseg |
| eyes_open, mouth_open | landmarks or parsing |
| head_pose | landmarks |
| occlusion, mask | parsing or xseg |
| glasses, sunglasses, hat | parsing |

A model runs once per image over all its faces, and only when an asked-for attribute
needs it. Asking for an attribute whose model is not configured is an error that names the
model kind and its environment variable.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from facedb.models import ModelSpec, ModelSpecError, SessionSettings, resolve_model
from facedb.vision.analysis.agegender import AgeGender, AgeGenderModel
from facedb.vision.analysis.base import AnalysisModel
from facedb.vision.analysis.emotion import AffectNetModel, Emotion, MiniXceptionModel
from facedb.vision.analysis.fairface import FairFaceModel, FairFaceResult
from facedb.vision.analysis.gaze import Gaze, GazeModel
from facedb.vision.analysis.landmarks106 import Landmark106Model, Landmarks106
from facedb.vision.analysis.parsing import BiSeNetModel, ParsingMask
from facedb.vision.analysis.signals import FaceSignals, SignalReadings, derive_signals
from facedb.vision.analysis.xseg import XSegMask, XSegModel
from facedb.vision.types import Face

MODEL_CLASSES: dict[str, type[AnalysisModel]] = {
    cls.family: cls
    for cls in (
        AgeGenderModel,
        FairFaceModel,
        AffectNetModel,
        MiniXceptionModel,
        Landmark106Model,
        GazeModel,
        BiSeNetModel,
        XSegModel,
    )
}
# Model kind → the families that can fill it.
KIND_FAMILIES: dict[str, tuple[str, ...]] = {
    "agegender": ("agegender",),
    "fairface": ("fairface",),
    "emotion": ("affectnet", "minixception"),
    "landmarks": ("landmark106",),
    "gaze": ("mobilegaze",),
    "parsing": ("bisenet",),
    "xseg": ("xseg",),
}
KIND_ENV = {kind: f"FACEDB_{kind.upper()}_MODEL" for kind in KIND_FAMILIES}
# Attribute → model kinds, any one of which can measure it.
ATTRIBUTE_KINDS: dict[str, tuple[str, ...]] = {
    "age": ("agegender",),
    "gender": ("agegender",),
    "race": ("fairface",),
    "age_group": ("fairface",),
    "emotion": ("emotion",),
    "landmarks_106": ("landmarks",),
    "gaze": ("gaze",),
    "parsing": ("parsing",),
    "segmentation": ("xseg",),
    "eyes_open": ("landmarks", "parsing"),
    "mouth_open": ("parsing", "landmarks"),
    "head_pose": ("landmarks",),
    "occlusion": ("parsing", "xseg"),
    "glasses": ("parsing",),
    "sunglasses": ("parsing",),
    "hat": ("parsing",),
    "mask": ("parsing", "xseg"),
}
ATTRIBUTES = tuple(ATTRIBUTE_KINDS)
SIGNAL_ATTRIBUTES = frozenset(
    {"eyes_open", "mouth_open", "head_pose", "occlusion", "glasses", "sunglasses", "hat", "mask"}
)


class AttributeRequestError(ValueError):
    """An unknown attribute name, or one whose model is not configured."""


def parse_attributes(text: str | Iterable[str]) -> tuple[str, ...]:
    """`"age,gender"` or names → validated, de-duplicated, in the order given."""
    names = text.split(",") if isinstance(text, str) else list(text)
    cleaned = [n.strip().lower() for n in names if n.strip()]
    unknown = [n for n in cleaned if n not in ATTRIBUTE_KINDS]
    if unknown:
        raise AttributeRequestError(
            f"unknown attribute(s) {', '.join(unknown)}; known: {', '.join(ATTRIBUTES)}"
        )
    return tuple(dict.fromkeys(cleaned))


def load_analysis_model(
    spec: str | ModelSpec, runtime: SessionSettings | None = None
) -> AnalysisModel:
    resolved = resolve_model(spec) if isinstance(spec, str) else spec
    cls = MODEL_CLASSES.get(resolved.family)
    if cls is None:
        raise ModelSpecError(
            f"{resolved.name} is a {resolved.family!r} model, not an analysis model "
            f"(known: {', '.join(sorted(MODEL_CLASSES))})"
        )
    return cls(resolved, runtime)


@dataclass
class FaceAttributes:
    """Everything measured about one face; fields stay None unless asked for."""

    age_gender: AgeGender | None = None
    fairface: FairFaceResult | None = None
    emotion: Emotion | None = None
    landmarks: Landmarks106 | None = None
    gaze: Gaze | None = None
    parsing: ParsingMask | None = None
    xseg: XSegMask | None = None
    signals: FaceSignals | None = None
    asked: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        """The asked-for attributes, by name, JSON-ready."""
        out: dict[str, Any] = {}
        for name in self.asked:
            out.update(self._one(name))
        return out

    def _one(self, name: str) -> dict[str, Any]:
        if name in ("age", "gender") and self.age_gender is not None:
            full = self.age_gender.to_dict()
            if name == "age":
                return {"age": full["age"]}
            return {"gender": full["gender"], "gender_confidence": full["gender_confidence"]}
        if name in ("race", "age_group") and self.fairface is not None:
            return {k: v for k, v in self.fairface.to_dict().items() if k.startswith(name)}
        simple = {
            "emotion": self.emotion,
            "landmarks_106": self.landmarks,
            "gaze": self.gaze,
            "parsing": self.parsing,
            "segmentation": self.xseg,
        }
        if name in simple:
            value = simple[name]
            return {name: None if value is None else value.to_dict()}
        return _signal(name, self.signals)


def _signal(name: str, signals: FaceSignals | None) -> dict[str, Any]:
    if signals is None:
        return {name: None}
    data = signals.to_dict()
    if name == "eyes_open":
        return {"eyes_open": data["eyes_open"], "eye_openness": data["eye_openness"]}
    if name == "mouth_open":
        return {"mouth_open": data["mouth_open"], "mouth_openness": data["mouth_openness"]}
    if name == "head_pose":
        return {"head_pose": data["pose"]}
    return {name: data[name]}


class FaceAnalyzer:
    """Analysis models by kind (see KIND_FAMILIES); any subset may be configured."""

    def __init__(self, models: Mapping[str, AnalysisModel]) -> None:
        for kind, model in models.items():
            families = KIND_FAMILIES.get(kind)
            if families is None or model.family not in families:
                raise ModelSpecError(f"a {model.family!r} model cannot serve as {kind!r}")
        self.models = dict(models)

    @classmethod
    def from_specs(
        cls, specs: Mapping[str, str | None], runtime: SessionSettings | None = None
    ) -> FaceAnalyzer:
        """{kind: spec}; None or "" leaves a kind unconfigured."""
        unknown = sorted(set(specs) - set(KIND_FAMILIES))
        if unknown:
            raise ModelSpecError(f"unknown analysis model kind(s): {', '.join(unknown)}")
        return cls({k: load_analysis_model(s, runtime) for k, s in specs.items() if s})

    @classmethod
    def from_env(
        cls, runtime: SessionSettings | None = None, **overrides: str | None
    ) -> FaceAnalyzer:
        """Specs from FACEDB_<KIND>_MODEL, overridden by keyword (kind=spec)."""
        specs = {kind: os.environ.get(env) or None for kind, env in KIND_ENV.items()}
        specs.update({k: v for k, v in overrides.items() if v})
        return cls.from_specs(specs, runtime)

    def kinds_for(self, attributes: Sequence[str]) -> set[str]:
        """The configured model kinds these attributes need; an error names what is missing."""
        needed: set[str] = set()
        for name in parse_attributes(attributes):
            options = ATTRIBUTE_KINDS[name]
            available = [kind for kind in options if kind in self.models]
            if not available:
                wanted = " or ".join(f"{k} (${KIND_ENV[k]})" for k in options)
                raise AttributeRequestError(f"attribute {name!r} needs a {wanted} model")
            # Signals use every configured model that measures them, the rest only one.
            needed.update(available if name in SIGNAL_ATTRIBUTES else available[:1])
        return needed

    def analyze(
        self, image: np.ndarray, faces: Sequence[Face], attributes: Sequence[str]
    ) -> list[FaceAttributes]:
        asked = parse_attributes(attributes)
        kinds = self.kinds_for(asked)
        results = [FaceAttributes(asked=asked) for _ in faces]
        if not faces:
            return results
        outputs = {kind: self.models[kind].predict(image, faces) for kind in kinds}
        slots = {
            "agegender": "age_gender",
            "fairface": "fairface",
            "emotion": "emotion",
            "landmarks": "landmarks",
            "gaze": "gaze",
            "parsing": "parsing",
            "xseg": "xseg",
        }
        for kind, values in outputs.items():
            for result, value in zip(results, values, strict=True):
                setattr(result, slots[kind], value)
        if SIGNAL_ATTRIBUTES & set(asked):
            for face, result in zip(faces, results, strict=True):
                readings = SignalReadings(result.landmarks, result.parsing, result.xseg)
                result.signals = derive_signals(face, readings)
        return results
