"""Aligning a depth prior to the SfM scale at static sparse points.

- Depth predictions (metric-up-to-scale, or the geometric prior): one scale, the median of ratios
  ``s = median(z_sfm / z_pred)`` (robust to outliers and moving points).
- Disparity predictions (MiDaS, Depth Anything): affine in inverse depth,
  ``1 / z_sfm ~ s * disp + b``, fitted by iteratively reweighted least squares (Huber).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vid3d.formats.conventions import invert_T, transform_points
from vid3d.formats.errors import ShapeError


@dataclass(frozen=True)
class Alignment:
    """A fitted alignment. ``scale``, ``shift`` (0 for scale-only), ``num_points`` used, ``residual``
    (median relative depth error after alignment)."""

    scale: float
    shift: float
    num_points: int
    residual: float


def fit_scale(pred: np.ndarray, target: np.ndarray) -> Alignment:
    """Scale s with s * pred ~ target: median of ratios over (N,) positive samples."""
    pred = np.asarray(pred, np.float64)
    target = np.asarray(target, np.float64)
    if pred.shape != target.shape or pred.ndim != 1:
        raise ShapeError(f"fit_scale expects two (N,) arrays, got {pred.shape} and {target.shape}")
    ok = (pred > 0) & (target > 0) & np.isfinite(pred) & np.isfinite(target)
    if ok.sum() == 0:
        return Alignment(1.0, 0.0, 0, float("nan"))
    r = target[ok] / pred[ok]
    s = float(np.median(r))
    return Alignment(s, 0.0, int(ok.sum()), float(np.median(np.abs(s * pred[ok] - target[ok]) / target[ok])))


def fit_scale_shift_disparity(disp: np.ndarray, target_depth: np.ndarray, *, iters: int = 10) -> Alignment:
    """(s, b) with s * disp + b ~ 1 / target_depth, (N,) samples, Huber IRLS; scale-only fallback < 3 samples."""
    disp = np.asarray(disp, np.float64)
    target_depth = np.asarray(target_depth, np.float64)
    if disp.shape != target_depth.shape or disp.ndim != 1:
        raise ShapeError(f"fit_scale_shift_disparity expects two (N,) arrays, got {disp.shape} and {target_depth.shape}")
    ok = np.isfinite(disp) & np.isfinite(target_depth) & (target_depth > 0)
    x, y = disp[ok], 1.0 / target_depth[ok]
    if len(x) < 3 or np.ptp(x) == 0:
        a = fit_scale(x, y)
        return Alignment(a.scale, 0.0, a.num_points, a.residual)
    w = np.ones_like(x)
    s, b = 1.0, 0.0
    for _ in range(iters):
        A = np.stack([x, np.ones_like(x)], 1) * np.sqrt(w)[:, None]
        s, b = np.linalg.lstsq(A, y * np.sqrt(w), rcond=None)[0]
        r = s * x + b - y
        delta = 1.4826 * np.median(np.abs(r)) + 1e-12
        w = np.where(np.abs(r) <= delta, 1.0, delta / np.abs(r))
    z = 1.0 / np.clip(s * x + b, 1e-9, None)
    return Alignment(float(s), float(b), len(x), float(np.median(np.abs(z - 1.0 / y) * y)))


def sparse_samples(poses, *, masks: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """SfM depth samples from the observations in a PoseResult.

    Returns (frame (M,) int, uv (M, 2) float pixel positions, z (M,) z-depth in that frame), dropping
    points behind the camera and observations inside ``masks`` (T, H, W) bool (moving).
    """
    f = np.asarray(poses.obs_frame, np.int64)
    if len(f) == 0:
        return f, np.zeros((0, 2)), np.zeros(0)
    p = np.asarray(poses.points_world)[np.asarray(poses.obs_point, np.int64)]
    T_cw = invert_T(np.asarray(poses.T_world_camera, np.float64))
    z = transform_points(T_cw[f], p[:, None, :])[:, 0, 2]
    uv = np.asarray(poses.obs_uv, np.float64)
    keep = z > 0
    if masks is not None:
        H, W = masks.shape[1:]
        ui = np.clip(np.floor(uv[:, 0]).astype(int), 0, W - 1)
        vi = np.clip(np.floor(uv[:, 1]).astype(int), 0, H - 1)
        keep &= ~np.asarray(masks, bool)[f, vi, ui]
    return f[keep], uv[keep], z[keep]


def sample_at(maps: np.ndarray, frame: np.ndarray, uv: np.ndarray) -> np.ndarray:
    """Values of ``maps`` (T, H, W) at pixel positions uv (M, 2) of frames (M,) (nearest pixel)."""
    H, W = maps.shape[1:]
    ui = np.clip(np.floor(uv[:, 0]).astype(int), 0, W - 1)
    vi = np.clip(np.floor(uv[:, 1]).astype(int), 0, H - 1)
    return maps[frame, vi, ui]


def align_depth_to_sfm(depth: np.ndarray, poses, *, masks: np.ndarray | None = None) -> tuple[np.ndarray, Alignment]:
    """Scale (T, H, W) depth so it matches the SfM points (one scale for the sequence)."""
    f, uv, z = sparse_samples(poses, masks=masks)
    a = fit_scale(sample_at(depth, f, uv), z)
    return (depth * a.scale).astype(np.float32), a


def align_disparity_to_sfm(disp: np.ndarray, poses, *, masks: np.ndarray | None = None,
                           min_points: int = 20) -> tuple[np.ndarray, list[Alignment]]:
    """Depth (T, H, W) from disparity (T, H, W): per-frame (s, b) in inverse depth, falling back to the
    sequence fit for frames with fewer than ``min_points`` SfM samples."""
    f, uv, z = sparse_samples(poses, masks=masks)
    d = sample_at(disp, f, uv)
    global_fit = fit_scale_shift_disparity(d, z)
    out = np.empty(disp.shape, np.float32)
    fits = []
    for t in range(disp.shape[0]):
        sel = f == t
        a = fit_scale_shift_disparity(d[sel], z[sel]) if sel.sum() >= min_points else global_fit
        if a.scale <= 0:
            a = global_fit
        inv = a.scale * disp[t] + a.shift
        # a shift can make far pixels' inverse depth <= 0: cap depth at 50x the frame's median depth
        floor = 0.02 * float(np.median(inv[inv > 0])) if np.any(inv > 0) else 1e-3
        out[t] = 1.0 / np.maximum(inv, floor)
        fits.append(a)
    return out, fits
