"""ArcFace (insightface w600k MBF / R50): RGB, (x - 127.5) / 127.5, 512-d, any batch."""

from __future__ import annotations

from facedb.vision.embed.base import Embedder


class ArcFaceEmbedder(Embedder):
    """insightface's recognizers take RGB; everything else is read from the file.

    Legacy MXNet exports that normalise inside the graph want mean 0 / std 1: pass
    `?mean=0&std=1` in the spec for those rather than guessing from the graph here.
    """

    family = "arcface"
