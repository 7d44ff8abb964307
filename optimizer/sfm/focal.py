"""Focal length from fundamental matrices (self-calibration), to initialise the mapper.

Mendonca & Cipolla (1999): with the right intrinsics K, every essential matrix E = K^T F K has two
equal non-zero singular values. We sweep a shared focal f (principal point at the image centre, which
the criterion is insensitive to) and minimise

    C(f) = sum_pairs w_ij * (s1 - s2) / (s1 + s2),   (s1 >= s2 the singular values of K^T F_ij K)

over a log-spaced grid, then refine around the minimum. Pairs whose matches a homography explains
almost as well as F (rotation-only or planar) carry no focal information and are skipped.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class FocalEstimate:
    """Self-calibrated focal.

    Attributes:
        focal: the estimated focal in pixels (nan when no informative pair).
        num_pairs: informative pairs used.
        sharpness: C(f) at 2x or 0.5x the optimum over C(optimum), higher = better constrained.
    """

    focal: float
    num_pairs: int
    sharpness: float


def fundamental_pairs(
    kps: dict[int, np.ndarray], matches: list[tuple[int, int, np.ndarray]], *, max_pairs: int = 200, seed: int = 0
) -> tuple[list[np.ndarray], list[float]]:
    """Fundamental matrices of informative pairs.

    Args:
        kps: frame index -> keypoints (N, 2) float pixel positions.
        matches: (i, j, idx (M, 2) int) matched keypoint indices between frames i and j.
    Returns:
        (F list of (3, 3), weights list): weight = number of F inliers that H does not explain.
    """
    rng = np.random.default_rng(seed)
    order = np.argsort([-len(m[2]) for m in matches])[: max_pairs * 3]
    Fs, ws = [], []
    for k in order:
        i, j, idx = matches[k]
        if len(idx) < 30:
            continue
        x1 = kps[i][idx[:, 0]].astype(np.float64)
        x2 = kps[j][idx[:, 1]].astype(np.float64)
        F, inl_f = cv2.findFundamentalMat(x1, x2, cv2.FM_RANSAC, 1.0, 0.999, 2000)
        if F is None or F.shape != (3, 3):
            continue
        H, inl_h = cv2.findHomography(x1, x2, cv2.RANSAC, 2.0)
        nf = int(inl_f.sum())
        nh = int(inl_h.sum()) if inl_h is not None else 0
        if nf < 30 or nh > 0.8 * nf:  # planar / rotation-only: no focal information
            continue
        Fs.append(F)
        ws.append(float(nf - nh) if nh else float(nf))
        if len(Fs) >= max_pairs:
            break
    del rng
    return Fs, ws


def mendonca_cipolla_cost(Fs: list[np.ndarray], ws: list[float], focals: np.ndarray, cx: float, cy: float) -> np.ndarray:
    """C(f) for each candidate focal (F,) -> (F,) (see module docstring)."""
    F = np.stack(Fs)  # (P, 3, 3)
    w = np.asarray(ws, dtype=np.float64)
    w = w / w.sum()
    out = np.empty(len(focals))
    for n, f in enumerate(focals):
        K = np.array([[f, 0, cx], [0, f, cy], [0, 0, 1.0]])
        E = K.T[None] @ F @ K[None]
        s = np.linalg.svd(E, compute_uv=False)  # (P, 3)
        out[n] = float(np.sum(w * (s[:, 0] - s[:, 1]) / (s[:, 0] + s[:, 1] + 1e-300)))
    return out


def estimate_focal(Fs: list[np.ndarray], ws: list[float], height: int, width: int) -> FocalEstimate:
    """Sweep f in [0.3, 4] x max(H, W) and refine: the focal minimising C(f)."""
    if len(Fs) < 3:
        return FocalEstimate(float("nan"), len(Fs), 0.0)
    cx, cy = width / 2.0, height / 2.0
    side = float(max(height, width))
    grid = side * np.exp(np.linspace(np.log(0.3), np.log(4.0), 120))
    cost = mendonca_cipolla_cost(Fs, ws, grid, cx, cy)
    k = int(np.argmin(cost))
    lo, hi = grid[max(k - 1, 0)], grid[min(k + 1, len(grid) - 1)]
    fine = np.linspace(lo, hi, 41)
    cfine = mendonca_cipolla_cost(Fs, ws, fine, cx, cy)
    f = float(fine[int(np.argmin(cfine))])
    c_at = mendonca_cipolla_cost(Fs, ws, np.array([f, 2 * f, 0.5 * f]), cx, cy)
    sharp = float(min(c_at[1], c_at[2]) / max(c_at[0], 1e-12))
    if k == 0 or k == len(grid) - 1:  # minimum on the border of the sweep: not trustworthy
        sharp = 0.0
    return FocalEstimate(f, len(Fs), sharp)
