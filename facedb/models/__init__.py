"""Model zoo: registry, cache and download, local files, onnxruntime sessions."""

from facedb.models.session import get_session, inspect_model
from facedb.models.spec import ModelSpec, Preprocessing, resolve_model

__all__ = ["ModelSpec", "Preprocessing", "get_session", "inspect_model", "resolve_model"]
