"""Robust two-view estimators, guarded: a degenerate pair is skipped, never a crash.

OpenCV's RANSAC/USAC estimators raise ``cv2.error`` on some degenerate inputs (USAC's
``!model.empty()`` assertion on correspondences that admit no model: points on a line, a frozen
frame, repeated texture) and return ``None`` or stacked ``(3k, 3)`` solutions on others. Every
call site in the optimizer goes through :func:`robust_fit`, which turns all of these into
``(None, None)`` so the caller skips the pair and counts it in its report.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np


def robust_fit(estimator: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[np.ndarray | None, np.ndarray | None]:
    """``estimator(*args, **kwargs)`` (``cv2.findFundamentalMat`` / ``cv2.findHomography`` ...) ->
    ``(model (3, 3) float64, inlier mask (N,) bool)``, or ``(None, None)`` when the estimator fails,
    raises, or returns no single 3x3 model."""
    import cv2

    try:
        model, inliers = estimator(*args, **kwargs)
    except cv2.error:
        return None, None
    if model is None or inliers is None or np.shape(model) != (3, 3) or not np.all(np.isfinite(model)):
        return None, None
    return np.asarray(model, np.float64), np.asarray(inliers).reshape(-1).astype(bool)
