"""The two ways getting a model can fail: a spec that makes no sense, a file that is not here."""

from __future__ import annotations


class ModelSpecError(ValueError):
    """A model specification that cannot be understood or resolved."""


class ModelUnavailableError(RuntimeError):
    """A registry model is neither in the cache nor downloadable right now."""
