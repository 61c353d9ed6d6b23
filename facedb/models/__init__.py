"""Model zoo: families, registry, cache and local files, onnxruntime sessions, `OnnxModel`.

Dependency order inside the package (each imports only from those before it):
errors, families, digests, session → registry → store → spec → onnx_model.
"""

from facedb.models.errors import ModelSpecError, ModelUnavailableError
from facedb.models.families import FAMILIES, Family, Preprocessing, default_preprocessing
from facedb.models.onnx_model import OnnxModel
from facedb.models.session import ModelIO, SessionSettings, get_session, inspect_model
from facedb.models.spec import ModelSpec, resolve_model

__all__ = [
    "FAMILIES",
    "Family",
    "ModelIO",
    "ModelSpec",
    "ModelSpecError",
    "ModelUnavailableError",
    "OnnxModel",
    "Preprocessing",
    "SessionSettings",
    "default_preprocessing",
    "get_session",
    "inspect_model",
    "resolve_model",
]
