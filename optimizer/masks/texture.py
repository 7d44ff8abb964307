"""Where an image has the structure that optical flow needs.

On a textureless wall or sky, dense flow is an interpolation from the surroundings: its residual
against the camera motion says nothing about motion (it flags blank walls as "moving"). Such pixels
get an unknown residual, and their moving score is filled in from the textured pixels around them
(a textureless mover inherits the score of its textured edges, a blank wall that of the static room).
"""

from __future__ import annotations

import cv2
import numpy as np

from vid3d.formats.errors import ShapeError


def structure(rgb: np.ndarray, *, window: int = 7) -> np.ndarray:
    """Local image structure ``(H, W)`` float32 of a frame ``(H, W, 3)`` uint8: the square root of the
    smallest eigenvalue of the structure tensor (Sobel gradients of the grey image, averaged over a
    ``window`` square), in grey levels per pixel; ~0 on blank areas and along straight edges."""
    if rgb.ndim != 3 or rgb.shape[-1] != 3:
        raise ShapeError(f"structure expects a frame (H, W, 3), got {rgb.shape}")
    g = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY).astype(np.float32)
    gx = cv2.Sobel(g, cv2.CV_32F, 1, 0, ksize=3) / 8
    gy = cv2.Sobel(g, cv2.CV_32F, 0, 1, ksize=3) / 8
    a = cv2.blur(gx * gx, (window, window))
    b = cv2.blur(gx * gy, (window, window))
    c = cv2.blur(gy * gy, (window, window))
    lam = 0.5 * (a + c) - np.sqrt(0.25 * (a - c) ** 2 + b * b)
    return np.sqrt(np.maximum(lam, 0.0)).astype(np.float32)


def textured(rgb: np.ndarray, min_structure: float) -> np.ndarray:
    """``(T, H, W)`` bool: pixels of frames ``(T, H, W, 3)`` with ``structure >= min_structure``."""
    return np.stack([structure(f) >= min_structure for f in rgb])
