"""FAISS indexes per gallery: flat / IVF / HNSW, snapshots with a watermark, replay, rebuild."""

from facedb.index.manager import GalleryIndex, GalleryRef, open_index
from facedb.index.vector_index import AUTO, AUTO_FLAT_MAX, IndexKind, IndexParams, VectorIndex

__all__ = [
    "AUTO",
    "AUTO_FLAT_MAX",
    "GalleryIndex",
    "GalleryRef",
    "IndexKind",
    "IndexParams",
    "VectorIndex",
    "open_index",
]
