"""5-point similarity alignment to the ArcFace template.

Every recognizer here was trained on crops made this way, so the template, the transform
(uniform scale + rotation + translation, never a mirror) and the black border all matter
for accuracy.
"""

from __future__ import annotations

import cv2
import numpy as np

# Landmark positions in a 112x112 crop, in the detectors' order: viewer-left eye,
# viewer-right eye, nose tip, viewer-left mouth corner, viewer-right mouth corner.
ARCFACE_TEMPLATE = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ],
    dtype=np.float64,
)

BASE_SIZE = 112


def template_for(size: int = BASE_SIZE) -> np.ndarray:
    """The template for a `size`x`size` crop: multiples of 112 scale it, multiples of 128
    scale it and shift x by 8 px per 128 (the 112-wide face centred in a wider square)."""
    if size > 0 and size % 112 == 0:
        return ARCFACE_TEMPLATE * (size / 112)
    if size > 0 and size % 128 == 0:
        scaled = ARCFACE_TEMPLATE * (size / 128)
        scaled[:, 0] += 8.0 * (size / 128)
        return scaled
    raise ValueError(f"aligned size must be a positive multiple of 112 or 128, got {size}")


def estimate_similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity transform (Umeyama 1991) taking `src` points onto `dst`.

    Returns the 2x3 forward matrix [sR | t]. A reflection is never returned: when the best
    orthogonal fit would mirror, the rotation's last singular direction is flipped instead.
    """
    src = np.asarray(src, dtype=np.float64).reshape(-1, 2)
    dst = np.asarray(dst, dtype=np.float64).reshape(-1, 2)
    if src.shape != dst.shape or len(src) < 2:
        raise ValueError(f"need two matching sets of >= 2 points, got {src.shape}, {dst.shape}")
    src_mean, dst_mean = src.mean(axis=0), dst.mean(axis=0)
    src_centred, dst_centred = src - src_mean, dst - dst_mean
    src_variance = float((src_centred**2).sum(axis=1).mean())
    if not np.isfinite(src_variance) or src_variance < 1e-12:
        raise ValueError("source points are degenerate (all at one place or not finite)")

    covariance = dst_centred.T @ src_centred / len(src)
    u, singular, vt = np.linalg.svd(covariance)
    signs = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:  # the plain fit would be a mirror image
        signs[-1] = -1.0
    rotation = u @ np.diag(signs) @ vt
    scale = float(singular @ signs) / src_variance
    translation = dst_mean - scale * rotation @ src_mean

    matrix = np.empty((2, 3), dtype=np.float64)
    matrix[:, :2] = scale * rotation
    matrix[:, 2] = translation
    return matrix


def alignment_matrix(landmarks: np.ndarray, size: int = BASE_SIZE) -> np.ndarray:
    """The 2x3 matrix taking image pixels to the aligned `size`x`size` crop."""
    return estimate_similarity(np.asarray(landmarks).reshape(5, 2), template_for(size))


def align_face(image_bgr: np.ndarray, landmarks: np.ndarray, size: int = BASE_SIZE) -> np.ndarray:
    """Warp the face with these 5 landmarks to a (size, size, 3) uint8 crop, black outside."""
    matrix = alignment_matrix(landmarks, size)
    return cv2.warpAffine(
        image_bgr,
        matrix,
        (size, size),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=(0, 0, 0),
    )


def align_faces(
    image_bgr: np.ndarray, landmarks: list[np.ndarray], size: int = BASE_SIZE
) -> np.ndarray:
    """Aligned crops for several faces of one image, stacked to (N, size, size, 3)."""
    crops = [align_face(image_bgr, points, size) for points in landmarks]
    if not crops:
        return np.zeros((0, size, size, 3), dtype=np.uint8)
    return np.stack(crops)
