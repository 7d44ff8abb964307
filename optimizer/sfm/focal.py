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

from vid3d.optimizer.robust import robust_fit


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


@dataclass
class PairGeometries:
    """Two-view geometries of the best-matched frame pairs.

    Attributes:
        Fs, F_weights: fundamental matrices (3, 3) of pairs with parallax (H explains < 80% of F
            inliers) and their weights (F inliers not explained by H).
        Hs, H_weights: homographies (3, 3) (x_j ~ H x_i) of rotation-like pairs (H explains >= 80%).
        num_pairs: pairs examined.
    """

    Fs: list
    F_weights: list
    Hs: list
    H_weights: list
    num_pairs: int

    @property
    def rotation_fraction(self) -> float:
        """Fraction of examined pairs that a homography explains (rotation-only or planar)."""
        n = len(self.Fs) + len(self.Hs)
        return len(self.Hs) / n if n else 0.0


def pair_geometries(
    kps: dict[int, np.ndarray], matches: list[tuple[int, int, np.ndarray]], *, max_pairs: int = 200
) -> PairGeometries:
    """F or H of up to ``max_pairs`` best-matched pairs (OpenCV RANSAC).

    Args:
        kps: frame index -> keypoints (N, 2) float pixel positions.
        matches: (i, j, idx (M, 2) int) matched keypoint indices between frames i and j.
    """
    order = np.argsort([-len(m[2]) for m in matches])[: max_pairs]
    Fs, ws, Hs, hws = [], [], [], []
    for k in order:
        i, j, idx = matches[k]
        if len(idx) < 30:
            continue
        x1 = kps[i][idx[:, 0]].astype(np.float64)
        x2 = kps[j][idx[:, 1]].astype(np.float64)
        F, inl_f = robust_fit(cv2.findFundamentalMat, x1, x2, cv2.FM_RANSAC, 1.0, 0.999, 2000)
        if F is None:
            continue
        H, inl_h = robust_fit(cv2.findHomography, x1, x2, cv2.RANSAC, 2.0)
        nf = int(inl_f.sum())
        nh = int(inl_h.sum()) if inl_h is not None else 0
        if nf < 30:
            continue
        if nh > 0.8 * nf:  # rotation-only or planar: H ~ K R K^-1 when the camera rotates
            Hs.append(H)
            hws.append(float(nh))
        else:
            Fs.append(F)
            ws.append(float(nf - nh) if nh else float(nf))
    return PairGeometries(Fs, ws, Hs, hws, len(Fs) + len(Hs))


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


def rotation_cost(Hs: list[np.ndarray], ws: list[float], focals: np.ndarray, cx: float, cy: float) -> np.ndarray:
    """Rotation-only criterion (Hartley 1994) per candidate focal (F,) -> (F,).

    With the right K, M = K^-1 H K is a scaled rotation: its singular values are equal, so
    C(f) = sum_pairs w_ij (s1 - s3) / (s1 + s3).
    """
    Hm = np.stack(Hs)
    w = np.asarray(ws, dtype=np.float64)
    w = w / w.sum()
    out = np.empty(len(focals))
    for n, f in enumerate(focals):
        K = np.array([[f, 0, cx], [0, f, cy], [0, 0, 1.0]])
        M = np.linalg.inv(K)[None] @ Hm @ K[None]
        s = np.linalg.svd(M, compute_uv=False)
        out[n] = float(np.sum(w * (s[:, 0] - s[:, 2]) / (s[:, 0] + s[:, 2] + 1e-300)))
    return out


def estimate_focal(geoms: PairGeometries, height: int, width: int) -> FocalEstimate:
    """Sweep f in [0.3, 4] x max(H, W) and refine: the focal minimising C(f).

    Uses the fundamental matrices (Mendonca-Cipolla) when at least 3 pairs have parallax, else the
    homographies of a rotating camera; nan when neither has 3 pairs.
    """
    if len(geoms.Fs) >= 3:
        def cost_fn(focals):
            return mendonca_cipolla_cost(geoms.Fs, geoms.F_weights, focals, cx, cy)
        n = len(geoms.Fs)
    elif len(geoms.Hs) >= 3:
        def cost_fn(focals):
            return rotation_cost(geoms.Hs, geoms.H_weights, focals, cx, cy)
        n = len(geoms.Hs)
    else:
        return FocalEstimate(float("nan"), 0, 0.0)
    cx, cy = width / 2.0, height / 2.0
    side = float(max(height, width))
    grid = side * np.exp(np.linspace(np.log(0.3), np.log(4.0), 120))
    cost = cost_fn(grid)
    k = int(np.argmin(cost))
    lo, hi = grid[max(k - 1, 0)], grid[min(k + 1, len(grid) - 1)]
    fine = np.linspace(lo, hi, 41)
    cfine = cost_fn(fine)
    f = float(fine[int(np.argmin(cfine))])
    c_at = cost_fn(np.array([f, 2 * f, 0.5 * f]))
    sharp = float(min(c_at[1], c_at[2]) / max(c_at[0], 1e-12))
    if k == 0 or k == len(grid) - 1:  # minimum on the border of the sweep: not trustworthy
        sharp = 0.0
    return FocalEstimate(f, n, sharp)
