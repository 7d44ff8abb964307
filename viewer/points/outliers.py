"""Statistical outlier removal (open3d's ``remove_statistical_outlier``): scipy cKDTree, brute-force twin."""

from __future__ import annotations

import numpy as np

from vid3d.formats.errors import ShapeError


def _outlier_keep(mean_d: np.ndarray, std_ratio: float) -> np.ndarray:
    # open3d: threshold = mean(d_i) + std_ratio * std(d_i) (sample std), keep d_i <= threshold
    threshold = mean_d.mean() + std_ratio * mean_d.std(ddof=1)
    return mean_d <= threshold


def statistical_outlier_mask(points: np.ndarray, *, neighbors: int = 16, std_ratio: float = 2.0) -> np.ndarray:
    """Inliers ``(N,)`` bool of ``points (N, 3)``: mean distance to the ``neighbors`` nearest others
    at most mean + ``std_ratio`` * std over all points (open3d's ``remove_statistical_outlier``)."""
    from scipy.spatial import cKDTree

    points = np.asarray(points)
    if points.ndim != 2 or points.shape[1] != 3:
        raise ShapeError(f"points must be (N, 3), got {points.shape}")
    if len(points) <= neighbors:
        return np.ones(len(points), bool)
    p = points.astype(np.float64)
    dist, _ = cKDTree(p).query(p, k=neighbors + 1, workers=-1)
    return _outlier_keep(dist[:, 1:].mean(axis=1), std_ratio)


def statistical_outlier_mask_reference(points: np.ndarray, *, neighbors: int = 16, std_ratio: float = 2.0) -> np.ndarray:
    """Brute-force twin of :func:`statistical_outlier_mask` (all pairwise distances; tiny N only)."""
    p = np.asarray(points, np.float64)
    if len(p) <= neighbors:
        return np.ones(len(p), bool)
    d = np.sqrt(((p[:, None, :] - p[None, :, :]) ** 2).sum(-1))
    np.fill_diagonal(d, np.inf)
    nearest = np.sort(d, axis=1)[:, :neighbors]
    return _outlier_keep(nearest.mean(axis=1), std_ratio)
