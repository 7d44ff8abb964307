"""Points from a capture: pure functions from depth + RGB + K (+ pose) to coloured point sets.

Per frame (:func:`frame_points`: torch on the GPU when present, vectorized numpy on the CPU; slow
per-pixel twin :func:`frame_points_reference`):

1. keep every ``stride``-th pixel (pixel centres at +0.5 in the *full* image, so K is unchanged);
2. keep valid depth (finite, > 0) inside ``[depth_min, depth_max]``, confidence at or above the
   ``p``-th percentile (method "lower": an actual value of the frame), and the optional selection
   mask (e.g. dynamic pixels only);
3. unproject ``p_camera = z * K^-1 [u + 0.5, v + 0.5, 1]``;
4. keep an evenly spaced subset of at most ``max_points`` (stable from frame to frame: no flicker);
5. optionally drop statistical outliers (:func:`statistical_outlier_mask`, scipy cKDTree; brute-force
   twin :func:`statistical_outlier_mask_reference`).

Points stay in **camera coordinates**; the viewer places the cloud at the camera's pose, so float16
on the wire keeps the depth's own relative precision. :func:`to_world` moves them when needed, and
:func:`fuse_points` merges many frames into one voxel-deduplicated cloud (the static background).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from vid3d.formats.conventions import pixel_grid, transform_points, unproject_depth
from vid3d.formats.errors import ShapeError
from vid3d.viewer.app.config import PointFilter


class FramePoints(NamedTuple):
    """A coloured point set.

    Fields:
        points: ``(N, 3)`` float32 (camera coordinates from :func:`frame_points`, world after :func:`to_world`).
        colors: ``(N, 3)`` uint8 RGB.
        pixels: ``(N,)`` int64 flat index ``v * W + u`` into the full-resolution frame (-1 when fused).
    """

    points: np.ndarray
    colors: np.ndarray
    pixels: np.ndarray

    @staticmethod
    def empty() -> FramePoints:
        return FramePoints(np.zeros((0, 3), np.float32), np.zeros((0, 3), np.uint8), np.zeros((0,), np.int64))

    def __len__(self) -> int:  # noqa: D105 (number of points, not of fields)
        return int(self.points.shape[0])

    def take(self, index: np.ndarray) -> FramePoints:
        """The subset ``index`` (bool mask ``(N,)`` or integer indices ``(M,)``)."""
        return FramePoints(self.points[index], self.colors[index], self.pixels[index])


# ---------------------------------------------------------------------------------------------
# Input checks
# ---------------------------------------------------------------------------------------------


def _check_frame(depth: np.ndarray, rgb: np.ndarray, K: np.ndarray, confidence: Any, select: Any) -> tuple[int, int]:
    if depth.ndim != 2:
        raise ShapeError(f"depth must be (H, W), got {depth.shape}")
    H, W = depth.shape
    if rgb.shape != (H, W, 3):
        raise ShapeError(f"rgb must be ({H}, {W}, 3) like depth, got {rgb.shape}")
    if np.shape(K) != (3, 3):
        raise ShapeError(f"K must be (3, 3), got {np.shape(K)}")
    for name, arr in (("confidence", confidence), ("select", select)):
        if arr is not None and tuple(arr.shape) != (H, W):
            raise ShapeError(f"{name} must be ({H}, {W}) like depth, got {tuple(arr.shape)}")
    return H, W


# ---------------------------------------------------------------------------------------------
# Small shared pieces (numpy and torch)
# ---------------------------------------------------------------------------------------------


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


def pixel_rays(H: int, W: int, K: np.ndarray, stride: int) -> np.ndarray:
    """Rays ``K^-1 [u + 0.5, v + 0.5, 1]`` of every ``stride``-th pixel: ``(ceil(H/s), ceil(W/s), 3)`` float32."""
    uv = pixel_grid(H, W)[::stride, ::stride].astype(np.float64)
    uv1 = np.concatenate([uv, np.ones(uv.shape[:-1] + (1,))], axis=-1)
    return (uv1 @ np.linalg.inv(np.asarray(K, np.float64)).T).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# Frame -> points: fast path (torch) and slow twin (numpy loops)
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
    """Coloured points of one frame in camera coordinates (see the module docstring for the steps).

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
        :class:`FramePoints` with ``points (N, 3)`` float32 in the camera frame.
    """
    H, W = _check_frame(depth, rgb, K, confidence, select)
    s = int(flt.stride)
    if rays is None:
        rays = pixel_rays(H, W, K, s)
    if isinstance(device, str) and device == "cpu":
        out = _frame_points_numpy(depth, rgb, flt, confidence, select, rays, W)
    else:
        out = _frame_points_torch(depth, rgb, flt, confidence, select, rays, W,
                                  "cpu" if device == "torch-cpu" else device)
    if flt.remove_outliers and len(out) > flt.outlier_neighbors:
        out = out.take(statistical_outlier_mask(out.points, neighbors=flt.outlier_neighbors,
                                                std_ratio=flt.outlier_std_ratio))
    return out


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


def _frame_points_torch(depth, rgb, flt, confidence, select, rays, W, device) -> FramePoints:
    import torch

    s = int(flt.stride)
    dev = torch.device(device)
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
    p_camera = torch.from_numpy(rays.reshape(-1, 3)).to(dev)[idx] * z[idx, None]
    colors = to_dev(rgb).reshape(-1, 3)[idx]
    pixels = (idx // w) * s * W + (idx % w) * s
    return FramePoints(p_camera.cpu().numpy(), colors.cpu().numpy(), pixels.cpu().numpy().astype(np.int64))


def frame_points_reference(
    depth: np.ndarray,
    rgb: np.ndarray,
    K: np.ndarray,
    *,
    flt: PointFilter,
    confidence: np.ndarray | None = None,
    select: np.ndarray | None = None,
) -> FramePoints:
    """Slow twin of :func:`frame_points`: per-pixel loops, :func:`unproject_depth`, brute-force outliers.

    Same arguments and result (for tiny inputs only).
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


# ---------------------------------------------------------------------------------------------
# Statistical outlier removal
# ---------------------------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------------------------
# World coordinates and fusion
# ---------------------------------------------------------------------------------------------


def to_world(fp: FramePoints, T_world_camera: np.ndarray) -> FramePoints:
    """Points ``(N, 3)`` moved from the camera frame to the world (``p_world = R p_camera + t``, float64 math)."""
    p = transform_points(np.asarray(T_world_camera, np.float64), fp.points.astype(np.float64))
    return FramePoints(p.astype(np.float32), fp.colors, fp.pixels)


def fuse_points(parts: list[FramePoints], *, voxel_size: float, max_points: int) -> FramePoints:
    """Merge world-space point sets into one: keep the first point of each ``voxel_size`` voxel,
    then an evenly spaced subset of at most ``max_points``. ``pixels`` of the result are -1."""
    if not parts or sum(len(p) for p in parts) == 0:
        return FramePoints.empty()
    points = np.concatenate([p.points for p in parts])
    colors = np.concatenate([p.colors for p in parts])
    if voxel_size > 0:
        q = np.floor(points.astype(np.float64) / voxel_size).astype(np.int64)
        q -= q.min(axis=0)
        ext = q.max(axis=0) + 1
        if float(np.prod(ext.astype(np.float64))) < 2**62:
            key = (q[:, 0] * ext[1] + q[:, 1]) * ext[2] + q[:, 2]
            _, first = np.unique(key, return_index=True)
        else:  # absurd extents: exact but slower
            _, first = np.unique(q, axis=0, return_index=True)
        first.sort()
        points, colors = points[first], colors[first]
    keep = evenly_spaced(len(points), int(max_points))
    return FramePoints(points[keep], colors[keep], np.full(len(keep), -1, np.int64))
