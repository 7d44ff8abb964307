"""Focal length from fundamental matrices (self-calibration), to initialise the mapper.

Mendonca & Cipolla (1999): with the right intrinsics K, every essential matrix E = K^T F K has two
equal non-zero singular values. We sweep a shared focal f (principal point at the image centre, which
the criterion is insensitive to) and minimise

    C(f) = sum_pairs w_ij * (s1 - s2) / (s1 + s2),   (s1 >= s2 the singular values of K^T F_ij K)

over a log-spaced grid, then refine around the minimum. Pairs whose matches a homography explains
almost as well as F carry no Mendonca-Cipolla information. A homography fits two kinds of pairs: a
rotating camera (H = K R K^-1) and a translating camera that sees mostly one plane (a wall, a floor,
a table top). Only the first constrains the focal (Hartley 1994: K^-1 H K is a rotation for the
right K), so a homography pair counts as a rotation only when K^-1 H K is one, within
``ROTATION_RESIDUAL_MAX``, at the focal fitted to the homographies; the rest are planar pairs.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from vid3d.optimizer.robust import robust_fit

ROTATION_RESIDUAL_MAX = 0.01  # (s1 - s3) / (s1 + s3) of K^-1 H K; ~0.001-0.005 for a real rotation
ROTATION_PX = 3.0  # ... or up to this many pixels of deviation (~ residual x focal): keypoint noise on small images
MIN_PAIRS = 3


@dataclass(frozen=True)
class FocalEstimate:
    """Self-calibrated focal.

    Attributes:
        focal: the estimated focal in pixels (nan when no informative pair).
        num_pairs: informative pairs used.
        sharpness: C(f) at 2x or 0.5x the optimum over C(optimum), higher = better constrained.
        source: ``"fundamental"`` (pairs with parallax), ``"rotation"`` (homographies of a rotating
            camera) or ``"none"`` (neither: e.g. a translating camera facing one plane, a tripod).
        rotation_pairs: homography pairs that are rotations (K^-1 H K a rotation at the fitted focal).
        planar_pairs: homography pairs that are not (one dominant plane seen by a translating camera).
    """

    focal: float
    num_pairs: int
    sharpness: float
    source: str = "none"
    rotation_pairs: int = 0
    planar_pairs: int = 0


@dataclass
class PairGeometries:
    """Two-view geometries of the best-matched frame pairs.

    Attributes:
        Fs, F_weights: fundamental matrices (3, 3) of pairs with parallax (H explains < 80% of F
            inliers) and their weights (F inliers not explained by H).
        Hs, H_weights: homographies (3, 3) (x_j ~ H x_i) of pairs that H explains (>= 80% of the F
            inliers): rotations or planar scenes; :func:`estimate_focal` tells them apart.
        num_pairs: pairs examined.
    """

    Fs: list
    F_weights: list
    Hs: list
    H_weights: list
    num_pairs: int



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
        if nh > 0.8 * nf:  # a rotation (H ~ K R K^-1) or one dominant plane
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


def rotation_residuals(Hs: list[np.ndarray], focal: float, cx: float, cy: float) -> np.ndarray:
    """(s1 - s3) / (s1 + s3) of K^-1 H K per homography (P,) for one focal: ~0 for a rotation."""
    K = np.array([[focal, 0, cx], [0, focal, cy], [0, 0, 1.0]])
    s = np.linalg.svd(np.linalg.inv(K)[None] @ np.stack(Hs) @ K[None], compute_uv=False)
    return (s[:, 0] - s[:, 2]) / (s[:, 0] + s[:, 2] + 1e-300)


def _sweep(cost_fn, side: float) -> tuple[float, float]:
    """Focal minimising ``cost_fn`` over [0.3, 4] x side (log grid, then refined) and its sharpness
    (0 when the minimum is on the border of the sweep: not trustworthy)."""
    grid = side * np.exp(np.linspace(np.log(0.3), np.log(4.0), 120))
    cost = cost_fn(grid)
    k = int(np.argmin(cost))
    fine = np.linspace(grid[max(k - 1, 0)], grid[min(k + 1, len(grid) - 1)], 41)
    f = float(fine[int(np.argmin(cost_fn(fine)))])
    c_at = cost_fn(np.array([f, 2 * f, 0.5 * f]))
    sharp = float(min(c_at[1], c_at[2]) / max(c_at[0], 1e-12))
    return f, (0.0 if k in (0, len(grid) - 1) else sharp)


def estimate_focal(geoms: PairGeometries, height: int, width: int) -> FocalEstimate:
    """The shared focal that best explains the pairs' two-view geometry (principal point at the centre).

    Uses the fundamental matrices (Mendonca-Cipolla) when at least 3 pairs have parallax. Otherwise
    the homographies: the focal is fitted to all of them, the pairs whose K^-1 H K is a rotation at that
    focal are kept (planar pairs are not rotations) and, when at least 3 (and half of them) are, the
    focal is fitted again on those alone. nan (source ``"none"``) when neither gives 3 pairs.
    """
    cx, cy = width / 2.0, height / 2.0
    side = float(max(height, width))
    if len(geoms.Fs) >= MIN_PAIRS:
        f, sharp = _sweep(lambda fs: mendonca_cipolla_cost(geoms.Fs, geoms.F_weights, fs, cx, cy), side)
        return FocalEstimate(f, len(geoms.Fs), sharp, "fundamental", 0, len(geoms.Hs))
    if len(geoms.Hs) < MIN_PAIRS:
        return FocalEstimate(float("nan"), 0, 0.0, "none", 0, len(geoms.Hs))
    f, _ = _sweep(lambda fs: rotation_cost(geoms.Hs, geoms.H_weights, fs, cx, cy), side)
    tol = max(ROTATION_RESIDUAL_MAX, ROTATION_PX / f)
    is_rot = rotation_residuals(geoms.Hs, f, cx, cy) < tol
    n_rot = int(is_rot.sum())
    if n_rot < MIN_PAIRS or n_rot < 0.5 * len(geoms.Hs):
        return FocalEstimate(float("nan"), 0, 0.0, "none", n_rot, len(geoms.Hs) - n_rot)
    Hs = [h for h, r in zip(geoms.Hs, is_rot) if r]
    ws = [w for w, r in zip(geoms.H_weights, is_rot) if r]
    f, sharp = _sweep(lambda fs: rotation_cost(Hs, ws, fs, cx, cy), side)
    return FocalEstimate(f, n_rot, sharp, "rotation", n_rot, len(geoms.Hs) - n_rot)
