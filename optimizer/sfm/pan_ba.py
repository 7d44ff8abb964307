"""Rotation-only bundle adjustment of a panning camera: every frame's rotation and the shared focal
from every verified match at once.

A camera that only turns sees the scene as a sphere of directions: a keypoint ``x_i`` of frame i and
its match ``x_j`` in frame j are one direction, so (pixel centres +0.5, principal point fixed)

    x_j ~ K R_camj_world R_world_cami K^-1 x_i.

The homography chain (``fill.fill_missing(rotation_only=True)``) poses frame after frame from one
pair each, so its errors add up along the pan. Here every verified pair counts: the rotations (frame
0 held as the gauge) and the focal minimise the symmetric transfer error in pixels under a Huber loss
(a hand-held pan keeps a little parallax), by Levenberg-Marquardt from the chain's solution. This is
the structure from motion of a rotating camera, whose structure lies at infinity.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from vid3d.formats.errors import InputError, ShapeError

HUBER_PX = 2.0


@dataclass(frozen=True)
class PanMatches:
    """Matched keypoints of frame pairs of one clip.

    Attributes:
        frame_i, frame_j: (M,) int64 frames of each match (i != j).
        x_i, x_j: (M, 2) float64 pixel positions (pixel centres +0.5) in frame i and in frame j.
    """

    frame_i: np.ndarray
    frame_j: np.ndarray
    x_i: np.ndarray
    x_j: np.ndarray

    def __post_init__(self) -> None:
        m = len(self.frame_i)
        if not (len(self.frame_j) == m and np.shape(self.x_i) == (m, 2) and np.shape(self.x_j) == (m, 2)):
            raise ShapeError(f"PanMatches: frame_i, frame_j (M,) and x_i, x_j (M, 2) must agree, got "
                             f"{np.shape(self.frame_i)} {np.shape(self.frame_j)} {np.shape(self.x_i)} {np.shape(self.x_j)}")

    @property
    def num_matches(self) -> int:
        return int(len(self.frame_i))


@dataclass(frozen=True)
class PanRefinement:
    """Result of :func:`refine_pan`.

    Attributes:
        R_world_camera: (T, 3, 3) float64 camera-to-world rotations (frame 0 unchanged).
        focal: the shared focal in pixels.
        frames_in_ba: (T,) bool, frames with at least ``min_matches_per_frame`` matches (posed by the
            adjustment; the others keep their initial rotation).
        report: JSON-able: matches, pairs, RMS / median transfer error before and after (px), focal
            before and after, iterations, seconds, whether the result was kept.
    """

    R_world_camera: np.ndarray
    focal: float
    frames_in_ba: np.ndarray
    report: dict


def pan_matches_from_graph(graph, *, max_per_pair: int = 200, seed: int = 0) -> PanMatches:
    """Up to ``max_per_pair`` verified matches of every pair of ``graph`` (a ``colmap.MatchGraph``),
    drawn at random (seeded) where a pair has more."""
    rng = np.random.default_rng(seed)
    fi, fj, xi, xj = [], [], [], []
    for i, j, idx in graph.matches:
        if len(idx) > max_per_pair:
            idx = idx[np.sort(rng.choice(len(idx), max_per_pair, replace=False))]
        fi.append(np.full(len(idx), i, np.int64))
        fj.append(np.full(len(idx), j, np.int64))
        xi.append(graph.kps[i][idx[:, 0]])
        xj.append(graph.kps[j][idx[:, 1]])
    if not fi:
        return PanMatches(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, 2)), np.zeros((0, 2)))
    return PanMatches(np.concatenate(fi), np.concatenate(fj), np.concatenate(xi).astype(np.float64),
                      np.concatenate(xj).astype(np.float64))


def so3_exp(omega: np.ndarray) -> np.ndarray:
    """Rotation matrices (..., 3, 3) from axis-angle vectors (..., 3) (Rodrigues)."""
    omega = np.asarray(omega, np.float64)
    theta2 = (omega * omega).sum(-1)[..., None, None]
    small = theta2 < 1e-12
    theta = np.sqrt(np.where(small, 1.0, theta2))
    a = np.where(small, 1 - theta2 / 6, np.sin(theta) / theta)
    b = np.where(small, 0.5 - theta2 / 24, (1 - np.cos(theta)) / np.where(small, 1.0, theta2))
    x, y, z = np.moveaxis(omega, -1, 0)
    zero = np.zeros_like(x)
    W = np.stack([zero, -z, y, z, zero, -x, -y, x, zero], -1).reshape(*omega.shape[:-1], 3, 3)
    return np.eye(3) + a * W + b * (W @ W)


def transfer(R_src: np.ndarray, R_dst: np.ndarray, focal, principal_point: np.ndarray, x_src: np.ndarray
             ) -> tuple[np.ndarray, np.ndarray]:
    """Where the directions of keypoints ``x_src`` (M, 2) seen by cameras ``R_src`` (M, 3, 3)
    (camera-to-world rotations) land in cameras ``R_dst`` (M, 3, 3) of a rotating camera: pixels
    (M, 2) and the depth of the direction there (M,) (<= 0: behind the destination camera).
    ``focal``: scalar or (M,); ``principal_point``: (2,)."""
    f = np.asarray(focal, np.float64)[..., None] if np.ndim(focal) else float(focal)
    c = np.asarray(principal_point, np.float64)
    d = np.concatenate([(x_src - c) / f, np.ones((len(x_src), 1))], axis=1)
    p = np.einsum("mji,mjk,mk->mi", R_dst, R_src, d)  # R_dst^T R_src d
    z = p[:, 2]
    z_safe = np.where(z > 1e-6, z, 1.0)
    return f * p[:, :2] / z_safe[:, None] + c, z


def transfer_residuals(R_world_camera: np.ndarray, focal: float, principal_point: np.ndarray,
                       matches: PanMatches) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric transfer residuals (M, 4) px of ``matches`` (columns: i -> j in x, y, then j -> i)
    and a (M, 2) bool mask of the directions in front of their destination camera."""
    R = np.asarray(R_world_camera, np.float64)
    return _residuals(R[matches.frame_i], R[matches.frame_j], focal, principal_point, matches.x_i, matches.x_j)


def _residuals(R_i, R_j, focal, c, x_i, x_j):
    fwd, z_f = transfer(R_i, R_j, focal, c, x_i)
    bwd, z_b = transfer(R_j, R_i, focal, c, x_j)
    return np.concatenate([fwd - x_j, bwd - x_i], axis=1), np.stack([z_f > 1e-6, z_b > 1e-6], axis=1)


def transfer_residuals_reference(R_world_camera: np.ndarray, focal: float, principal_point: np.ndarray,
                                 matches: PanMatches) -> np.ndarray:
    """Slow twin of :func:`transfer_residuals`, one match at a time: (M, 4) px (nan where a direction
    falls behind its destination camera)."""
    K = np.array([[focal, 0, principal_point[0]], [0, focal, principal_point[1]], [0, 0, 1.0]])
    Kinv = np.linalg.inv(K)

    def one(src, x, dst):
        p = K @ R_world_camera[dst].T @ R_world_camera[src] @ Kinv @ np.array([x[0], x[1], 1.0])
        return p[:2] / p[2] if p[2] > 1e-6 else np.full(2, np.nan)

    rows = [np.concatenate([one(i, x, j) - y, one(j, y, i) - x])
            for i, j, x, y in zip(matches.frame_i, matches.frame_j, matches.x_i, matches.x_j)]
    return np.array(rows, np.float64).reshape(-1, 4)


def _stats(r: np.ndarray, ok: np.ndarray) -> tuple[float, float]:
    e = np.concatenate([np.hypot(r[:, 0], r[:, 1])[ok[:, 0]], np.hypot(r[:, 2], r[:, 3])[ok[:, 1]]])
    return (float(np.sqrt(np.mean(e ** 2))), float(np.median(e))) if len(e) else (float("nan"), float("nan"))


def _robust(r: np.ndarray, ok: np.ndarray) -> tuple[float, np.ndarray]:
    """Huber cost (mean over directions in front) and IRLS weights (M, 4) of residuals (M, 4)."""
    e = np.stack([np.hypot(r[:, 0], r[:, 1]), np.hypot(r[:, 2], r[:, 3])], axis=1)
    rho = np.where(e < HUBER_PX, 0.5 * e ** 2, HUBER_PX * (e - 0.5 * HUBER_PX))
    w = np.where(ok, np.where(e < HUBER_PX, 1.0, HUBER_PX / np.maximum(e, 1e-12)), 0.0)
    n = max(int(ok.sum()), 1)
    return float(rho[ok].sum() / n), np.repeat(w, 2, axis=1)


def _jacobian(R_i, R_j, focal, c, x_i, x_j, h=1e-6):
    """(M, 4, 7) derivatives of each match's residuals with respect to a world-frame rotation
    increment of frame i (3), of frame j (3) and the log of the focal (1); central differences."""
    M = len(x_i)
    J = np.empty((M, 4, 7))
    for k in range(7):
        step = np.zeros((M, 3))
        if k < 6:
            step[:, k % 3] = h
            dR = so3_exp(step), so3_exp(-step)
            Rp = (dR[0] @ R_i, R_j) if k < 3 else (R_i, dR[0] @ R_j)
            Rm = (dR[1] @ R_i, R_j) if k < 3 else (R_i, dR[1] @ R_j)
            rp = _residuals(*Rp, focal, c, x_i, x_j)[0]
            rm = _residuals(*Rm, focal, c, x_i, x_j)[0]
        else:
            rp = _residuals(R_i, R_j, focal * np.exp(h), c, x_i, x_j)[0]
            rm = _residuals(R_i, R_j, focal * np.exp(-h), c, x_i, x_j)[0]
        J[:, :, k] = (rp - rm) / (2 * h)
    return J


def refine_pan(R_world_camera: np.ndarray, K: np.ndarray, matches: PanMatches, *, refine_focal: bool = True,
               max_iterations: int = 30, min_matches_per_frame: int = 15) -> PanRefinement:
    """Rotation-only bundle adjustment (see the module docstring): Levenberg-Marquardt on the
    symmetric transfer error, Huber loss by reweighting, frame 0 held as the gauge.

    Args:
        R_world_camera: (T, 3, 3) initial camera-to-world rotations (the homography chain's).
        K: (3, 3) initial shared pinhole intrinsics; the principal point is held.
        matches: PanMatches over the clip's frames.
        refine_focal: also refine the focal (False where it is assumed, e.g. a tripod that hardly turns).
        max_iterations: Levenberg-Marquardt iterations at most.
        min_matches_per_frame: frames with fewer matches keep their initial rotation.
    Returns:
        PanRefinement; the initial rotations and focal when the adjustment does not lower the robust
        cost or ends with a focal outside 0.5-2x its start (``report["kept"]`` False, with the reason).
    Raises:
        ShapeError on malformed arrays; InputError on a match naming a frame outside [0, T).
    """
    R0 = np.asarray(R_world_camera, np.float64)
    if R0.ndim != 3 or R0.shape[1:] != (3, 3):
        raise ShapeError(f"R_world_camera must be (T, 3, 3), got {R0.shape}")
    K = np.asarray(K, np.float64)
    if K.shape != (3, 3):
        raise ShapeError(f"K must be (3, 3), got {K.shape}")
    T = len(R0)
    fi, fj = np.asarray(matches.frame_i, np.int64), np.asarray(matches.frame_j, np.int64)
    if matches.num_matches and (min(fi.min(), fj.min()) < 0 or max(fi.max(), fj.max()) >= T):
        raise InputError(f"pan matches name frames outside [0, {T})")
    counts = np.bincount(np.concatenate([fi, fj]), minlength=T) if matches.num_matches else np.zeros(T, np.int64)
    in_ba = counts >= min_matches_per_frame
    t0 = time.perf_counter()
    f0 = float(K[0, 0])
    c = K[:2, 2].copy()
    report: dict = {"matches": matches.num_matches, "pairs": int(len(set(zip(fi.tolist(), fj.tolist())))),
                    "frames": int(in_ba.sum()), "focal_before": f0, "refine_focal": bool(refine_focal), "kept": False}
    keep = in_ba[fi] & in_ba[fj]  # matches between frames that take part; the others are held
    fi, fj, x_i, x_j = fi[keep], fj[keep], matches.x_i[keep], matches.x_j[keep]
    r, ok = _residuals(R0[fi], R0[fj], f0, c, x_i, x_j)
    cost0, w = _robust(r, ok)
    report["rms_px_before"], report["median_px_before"] = _stats(r, ok)
    if len(fi) == 0 or int(in_ba.sum()) < 2:
        report["reason"] = "too few matches between frames"
        report["seconds"] = round(time.perf_counter() - t0, 3)
        return PanRefinement(R0.copy(), f0, in_ba, report)
    # unknowns: 3 per free frame (in the adjustment, not frame 0), then the log focal
    free = np.flatnonzero(in_ba & (np.arange(T) > 0))
    col = np.full(T, -1)
    col[free] = np.arange(len(free)) * 3
    n = 3 * len(free) + (1 if refine_focal else 0)
    cols = np.full((len(fi), 7), -1)
    for k in range(3):
        cols[:, k] = np.where(col[fi] >= 0, col[fi] + k, -1)
        cols[:, 3 + k] = np.where(col[fj] >= 0, col[fj] + k, -1)
    cols[:, 6] = n - 1 if refine_focal else -1
    R, f, cost, lam = R0.copy(), f0, cost0, 1e-3
    it = 0
    for it in range(1, max_iterations + 1):
        J = _jacobian(R[fi], R[fj], f, c, x_i, x_j) * np.sqrt(w)[:, :, None]
        rw = r * np.sqrt(w)
        Jm = np.where((cols >= 0)[:, None, :], J, 0.0)
        blocks = np.einsum("mra,mrb->mab", Jm, Jm)  # (M, 7, 7)
        grads = np.einsum("mra,mr->ma", Jm, rw)
        idx = np.where(cols >= 0, cols, n)  # n = a dump row/column, dropped below
        H = np.zeros((n + 1, n + 1))
        np.add.at(H, (np.repeat(idx, 7, axis=1), np.tile(idx, (1, 7))), blocks.reshape(len(fi), 49))
        g = np.zeros(n + 1)
        np.add.at(g, idx, grads)
        H, g = H[:n, :n], g[:n]
        improved = False
        for _ in range(8):
            A = H + lam * np.diag(np.maximum(np.diag(H), 1e-9))
            try:
                delta = np.linalg.solve(A, -g)
            except np.linalg.LinAlgError:
                lam *= 10
                continue
            R_new = R.copy()
            R_new[free] = so3_exp(delta[: 3 * len(free)].reshape(-1, 3)) @ R[free]
            f_new = f * float(np.exp(delta[-1])) if refine_focal else f
            r_new, ok_new = _residuals(R_new[fi], R_new[fj], f_new, c, x_i, x_j)
            cost_new, w_new = _robust(r_new, ok_new)
            if cost_new < cost:
                improved = True
                gain = (cost - cost_new) / max(cost, 1e-12)
                R, f, r, ok, cost, w = R_new, f_new, r_new, ok_new, cost_new, w_new
                lam = max(lam / 3, 1e-9)
                break
            lam *= 5
        if not improved or gain < 1e-9:
            break
    report["iterations"] = it
    report["rms_px_after"], report["median_px_after"] = _stats(r, ok)
    report["focal_after"] = f
    report["seconds"] = round(time.perf_counter() - t0, 3)
    if not cost < cost0:
        report["reason"] = f"the robust cost did not go down ({cost0:.4g} -> {cost:.4g})"
        return PanRefinement(R0.copy(), f0, in_ba, report)
    if not 0.5 < f / f0 < 2.0:
        report["reason"] = f"the focal ran away ({f0:.1f} -> {f:.1f} px)"
        return PanRefinement(R0.copy(), f0, in_ba, report)
    U, _, Vt = np.linalg.svd(R)  # exp is exact up to rounding
    report["kept"] = True
    return PanRefinement(U @ Vt, f, in_ba, report)
