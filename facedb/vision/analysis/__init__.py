"""Face analysis: attributes, landmarks, gaze, parsing, masks and the signals derived from them.

One module per model family; `FaceAnalyzer` (analyzer.py) serves attributes by name.
"""

from facedb.vision.analysis.analyzer import (
    ATTRIBUTES,
    AttributeRequestError,
    FaceAnalyzer,
    FaceAttributes,
    load_analysis_model,
    parse_attributes,
)

__all__ = [
    "ATTRIBUTES",
    "AttributeRequestError",
    "FaceAnalyzer",
    "FaceAttributes",
    "load_analysis_model",
    "parse_attributes",
]
