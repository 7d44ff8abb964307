"""One frame -> coloured points: pure functions of depth + RGB + K, and their slow twin.

Steps (:func:`frame_points`: vectorized numpy on the CPU, or torch; :func:`frame_points_torch`:
torch, result kept on the device; slow per-pixel twin of both :func:`frame_points_reference`):

1. keep every ``stride``-th pixel (pixel centres at +0.5 in the *full* image, so K is unchanged);
2. keep valid depth (finite, > 0) inside ``[depth_min, depth_max]``, confidence at or above the
   ``p``-th percentile (method "lower": an actual value of the frame), and the optional selection
   mask (e.g. dynamic pixels only);
3. unproject ``p_camera = z * K^-1 [u + 0.5, v + 0.5, 1]``;
4. keep an evenly spaced subset of at most ``max_points`` (stable from frame to frame: no flicker);
5. optionally drop statistical outliers (:func:`~vid3d.viewer.points.outliers.statistical_outlier_mask`).

Points are in **camera coordinates**; :func:`~vid3d.viewer.points.world.to_world` moves them.
torch is imported only by the torch path (its import alone costs seconds).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from vid3d.formats.conventions import pixel_grid, unproject_depth
from vid3d.formats.errors import ShapeError
from vid3d.viewer.points.filter import PointFilter
from vid3d.viewer.points.outliers import statistical_outlier_mask, statistical_outlier_mask_reference


class FramePoints(NamedTuple):
    """A coloured point set: numpy arrays, or torch tensors on one device (:func:`frame_points_torch`).

    Fields:
        points: ``(N, 3)`` float32 (camera coordinates from the frame functions, world after ``to_world``).
        colors: ``(N, 3)`` uint8 RGB.
        pixels: ``(N,)`` int64 flat index ``v * W + u`` into the full-resolution frame (-1 when fused).
    """

    points: Any
    colors: Any
    pixels: Any

    @staticmethod
    def empty(device: Any = None) -> FramePoints:
        """No points: numpy arrays, or torch tensors on ``device`` when one is given."""
        if device is None:
            return FramePoints(np.zeros((0, 3), np.float32), np.zeros((0, 3), np.uint8), np.zeros((0,), np.int64))
        import torch

        return FramePoints(torch.zeros((0, 3), device=device), torch.zeros((0, 3), dtype=torch.uint8, device=device),
                           torch.zeros((0,), dtype=torch.int64, device=device))

    @staticmethod
    def concat(parts: list[FramePoints]) -> FramePoints:
        """All ``parts`` (non-empty list, all numpy or all torch on one device) as one set."""
        if isinstance(parts[0].points, np.ndarray):
            return FramePoints(*(np.concatenate([p[i] for p in parts]) for i in range(3)))
        import torch

        return FramePoints(*(torch.cat([p[i] for p in parts]) for i in range(3)))

    def __len__(self) -> int:  # noqa: D105 (number of points, not of fields)
        return int(self.points.shape[0])

    def take(self, index: Any) -> FramePoints:
        """The subset ``index`` (bool mask ``(N,)`` or integer indices ``(M,)``, same kind as the arrays)."""
        return FramePoints(self.points[index], self.colors[index], self.pixels[index])

    def numpy(self) -> FramePoints:
        """The same points as numpy arrays (a no-op when they already are)."""
        if isinstance(self.points, np.ndarray):
            return self
        return FramePoints(self.points.cpu().numpy(), self.colors.cpu().numpy(),
                           self.pixels.cpu().numpy().astype(np.int64, copy=False))


# ---------------------------------------------------------------------------------------------
# Input checks and small shared pieces (numpy and torch)
# ---------------------------------------------------------------------------------------------


def _check_frame(depth: Any, rgb: Any, K: Any, confidence: Any, select: Any) -> tuple[int, int]:
    if depth.ndim != 2:
        raise ShapeError(f"depth must be (H, W), got {tuple(depth.shape)}")
    H, W = depth.shape
    if tuple(rgb.shape) != (H, W, 3):
        raise ShapeError(f"rgb must be ({H}, {W}, 3) like depth, got {tuple(rgb.shape)}")
    if np.shape(K) != (3, 3):
        raise ShapeError(f"K must be (3, 3), got {np.shape(K)}")
    for name, arr in (("confidence", confidence), ("select", select)):
        if arr is not None and tuple(arr.shape) != (H, W):
            raise ShapeError(f"{name} must be ({H}, {W}) like depth, got {tuple(arr.shape)}")
    return H, W


def evenly_spaced(n: int, k: int) -> np.ndarray:
    """Indices ``(min(n, k),)`` of an evenly spaced subset of ``range(n)``: ``i * n // k``."""
    if n <= k:
        return np.arange(n, dtype=np.int64)
    return (np.arange(k, dtype=np.int64) * n) // k


def percentile_lower(values: Any, percentile: float) -> float:
    """``np.percentile(values, p, method="lower")`` for a 1-D numpy array or torch tensor ``(M,)``."""
    n = int(values.shape[0])
    if n == 0:
        return float("-inf")
    k = int(np.floor(percentile / 100.0 * (n - 1)))
    if isinstance(values, np.ndarray):
        return float(np.partition(values, k)[k])
    return float(values.kthvalue(k + 1).values)


def pixel_rays(H: int, W: int, K: np.ndarray, stride: int, *, like: Any = None) -> Any:
    """Rays ``K^-1 [u + 0.5, v + 0.5, 1]`` of every ``stride``-th pixel: ``(ceil(H/s), ceil(W/s), 3)`` float32.

    Numpy (float64 math), or a torch tensor on ``like``'s device when ``like`` is a tensor: then
    :func:`~vid3d.formats.conventions.unproject_depth`'s float32 math of unit depth, so the renderer's
    points are bit for bit what they were when it unprojected with that function.
    """
    if like is None or isinstance(like, np.ndarray):
        uv = pixel_grid(H, W)[::stride, ::stride].astype(np.float64)
        uv1 = np.concatenate([uv, np.ones(uv.shape[:-1] + (1,))], axis=-1)
        return (uv1 @ np.linalg.inv(np.asarray(K, np.float64)).T).astype(np.float32)
    import torch

    K_t = torch.from_numpy(np.asarray(K, np.float64)).to(like.device)
    ones = torch.ones((H, W), dtype=torch.float32, device=like.device)
    return unproject_depth(ones, K_t)[::stride, ::stride]  # z = 1: x * 1 = x exactly


def _drop_outliers(fp: FramePoints, flt: PointFilter) -> FramePoints:
    if not (flt.remove_outliers and len(fp) > flt.outlier_neighbors):
        return fp
    pts = fp.points if isinstance(fp.points, np.ndarray) else fp.points.cpu().numpy()
    keep = statistical_outlier_mask(pts, neighbors=flt.outlier_neighbors, std_ratio=flt.outlier_std_ratio)
    if not isinstance(fp.points, np.ndarray):
        import torch

        keep = torch.from_numpy(keep).to(fp.points.device)
    return fp.take(keep)


# ---------------------------------------------------------------------------------------------
# Fast paths: numpy and torch
# ---------------------------------------------------------------------------------------------


def frame_points(
    depth: np.ndarray,
    rgb: np.ndarray,
    K: np.ndarray,
    *,
    flt: PointFilter,
    confidence: np.ndarray | None = None,
    select: np.ndarray | None = None,
    device: Any = "cpu",
    rays: np.ndarray | None = None,
) -> FramePoints:
    """Coloured points of one frame in camera coordinates, as numpy (see the module docstring).

    Args:
        depth: ``(H, W)`` z-depth (0 or non-finite = invalid).
        rgb: ``(H, W, 3)`` uint8.
        K: ``(3, 3)`` intrinsics of this resolution.
        flt: the filter.
        confidence: ``(H, W)`` in [0, 1] or None.
        select: ``(H, W)`` bool, keep only these pixels (None = all).
        device: "cpu" (vectorized numpy: no torch import, fast start-up) or a torch device
            ("cuda", "cuda:0", a ``torch.device``; "torch-cpu" runs the torch path on the CPU).
        rays: precomputed :func:`pixel_rays` ``(h, w, 3)`` for this K and stride (a cache), or None.
    Returns:
        :class:`FramePoints` of numpy arrays, ``points (N, 3)`` float32 in the camera frame.
    """
    H, W = _check_frame(depth, rgb, K, confidence, select)
    if not (isinstance(device, str) and device == "cpu"):
        dev = "cpu" if isinstance(device, str) and device == "torch-cpu" else device
        return frame_points_torch(depth, rgb, K, flt=flt, confidence=confidence, select=select, device=dev,
                                  rays=rays).numpy()
    if rays is None:
        rays = pixel_rays(H, W, K, int(flt.stride))
    return _drop_outliers(_frame_points_numpy(depth, rgb, flt, confidence, select, rays, W), flt)


def _frame_points_numpy(depth, rgb, flt, confidence, select, rays, W) -> FramePoints:
    s = int(flt.stride)
    w = rays.shape[1]
    z = np.asarray(depth[::s, ::s], np.float32).reshape(-1)
    with np.errstate(invalid="ignore"):
        keep = np.isfinite(z) & (z > 0)
        if flt.depth_min is not None:
            keep &= z >= np.float32(flt.depth_min)
        if flt.depth_max is not None:
            keep &= z <= np.float32(flt.depth_max)
    if select is not None:
        keep &= np.asarray(select[::s, ::s], bool).reshape(-1)
    if confidence is not None and flt.confidence_percentile > 0:
        c = np.asarray(confidence[::s, ::s], np.float32).reshape(-1)
        keep &= c >= percentile_lower(c[keep], float(flt.confidence_percentile))
    rays_flat = rays.reshape(-1, 3)
    rgb_flat = np.ascontiguousarray(rgb[::s, ::s]).reshape(-1, 3)
    if keep.all() and z.size <= flt.max_points:  # nothing dropped: no gather (the common dense case)
        p_camera = rays_flat * z[:, None]  # p_camera = z * K^-1 [u + 0.5, v + 0.5, 1]
        idx = np.arange(z.size, dtype=np.int64)
        colors = rgb_flat.copy()
    else:
        idx = np.flatnonzero(keep)
        if idx.size > flt.max_points:
            idx = idx[evenly_spaced(idx.size, int(flt.max_points))]
        # np.take along axis 0 is several times faster than fancy indexing of (N, 3) rows
        p_camera = np.take(rays_flat, idx, axis=0) * np.take(z, idx)[:, None]
        colors = np.take(rgb_flat, idx, axis=0)
    pixels = idx if s == 1 else (idx // w) * s * W + (idx % w) * s
    return FramePoints(p_camera.astype(np.float32, copy=False), colors, pixels.astype(np.int64, copy=False))


def frame_points_torch(
    depth: np.ndarray,
    rgb: np.ndarray,
    K: np.ndarray,
    *,
    flt: PointFilter,
    confidence: np.ndarray | None = None,
    select: np.ndarray | None = None,
    device: Any = "cpu",
    rays: Any = None,
) -> FramePoints:
    """:func:`frame_points` on torch, the result left on ``device`` (a name or ``torch.device``).

    Same arguments (numpy inputs) and points; returns :class:`FramePoints` of tensors on ``device``:
    ``points (N, 3)`` float32, ``colors (N, 3)`` uint8, ``pixels (N,)`` int64. ``rays`` (numpy or
    tensor) defaults to :func:`pixel_rays` computed on the device.
    """
    import torch

    H, W = _check_frame(depth, rgb, K, confidence, select)
    s = int(flt.stride)
    dev = torch.device(device)
    if rays is None:
        rays = pixel_rays(H, W, K, s, like=torch.empty(0, device=dev))
    rays = torch.as_tensor(rays).to(dev)
    w = rays.shape[1]

    def to_dev(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(a[::s, ::s])).to(dev, non_blocking=True)

    z = to_dev(depth).float().reshape(-1)
    keep = torch.isfinite(z) & (z > 0)
    if flt.depth_min is not None:
        keep &= z >= float(np.float32(flt.depth_min))
    if flt.depth_max is not None:
        keep &= z <= float(np.float32(flt.depth_max))
    if select is not None:
        keep &= to_dev(select).reshape(-1).bool()
    if confidence is not None and flt.confidence_percentile > 0:
        c = to_dev(confidence).float().reshape(-1)
        keep &= c >= percentile_lower(c[keep], float(flt.confidence_percentile))
    idx = torch.nonzero(keep, as_tuple=False)[:, 0]
    if idx.numel() > flt.max_points:
        idx = idx[torch.from_numpy(evenly_spaced(int(idx.numel()), int(flt.max_points))).to(dev)]
    p_camera = rays.reshape(-1, 3)[idx] * z[idx, None]  # p_camera = z * K^-1 [u + 0.5, v + 0.5, 1]
    colors = to_dev(rgb).reshape(-1, 3)[idx]
    pixels = (idx // w) * s * W + (idx % w) * s
    return _drop_outliers(FramePoints(p_camera, colors, pixels), flt)


# ---------------------------------------------------------------------------------------------
# Slow twin
# ---------------------------------------------------------------------------------------------


def frame_points_reference(
    depth: np.ndarray,
    rgb: np.ndarray,
    K: np.ndarray,
    *,
    flt: PointFilter,
    confidence: np.ndarray | None = None,
    select: np.ndarray | None = None,
) -> FramePoints:
    """Slow twin of :func:`frame_points` and :func:`frame_points_torch`: per-pixel loops,
    :func:`~vid3d.formats.conventions.unproject_depth`, brute-force outliers. Numpy result; tiny inputs only.
    """
    H, W = _check_frame(depth, rgb, K, confidence, select)
    s = int(flt.stride)
    p_full = unproject_depth(np.asarray(depth, np.float64), np.asarray(K, np.float64))  # (H, W, 3)
    candidates: list[tuple[int, int]] = []
    for v in range(0, H, s):
        for u in range(0, W, s):
            z = float(depth[v, u])
            if not (np.isfinite(z) and z > 0):
                continue
            if flt.depth_min is not None and z < flt.depth_min:
                continue
            if flt.depth_max is not None and z > flt.depth_max:
                continue
            if select is not None and not bool(select[v, u]):
                continue
            candidates.append((v, u))
    if confidence is not None and flt.confidence_percentile > 0 and candidates:
        conf = np.array([float(np.float32(confidence[v, u])) for v, u in candidates], np.float32)
        cutoff = np.percentile(conf, flt.confidence_percentile, method="lower")
        candidates = [c for c, value in zip(candidates, conf) if value >= cutoff]
    chosen = [candidates[i] for i in evenly_spaced(len(candidates), int(flt.max_points))]
    out = FramePoints(
        np.array([p_full[v, u] for v, u in chosen], np.float32).reshape(-1, 3),
        np.array([rgb[v, u] for v, u in chosen], np.uint8).reshape(-1, 3),
        np.array([v * W + u for v, u in chosen], np.int64),
    )
    if flt.remove_outliers and len(out) > flt.outlier_neighbors:
        out = out.take(statistical_outlier_mask_reference(out.points, neighbors=flt.outlier_neighbors,
                                                          std_ratio=flt.outlier_std_ratio))
    return out
