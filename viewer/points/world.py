"""Point sets in world coordinates: :func:`to_world` (numpy or torch) and :func:`fuse_points` (many frames
-> one voxel-deduplicated cloud, the viewer's static background)."""

from __future__ import annotations

from typing import Any

import numpy as np

from vid3d.formats.conventions import transform_points
from vid3d.viewer.points.frame import FramePoints, evenly_spaced


def to_world(fp: FramePoints, T_world_camera: Any) -> FramePoints:
    """Points ``(N, 3)`` moved from the camera frame to the world: ``p_world = R p_camera + t``.

    ``T_world_camera`` ``(4, 4)``. Numpy points: float64 math, float32 result. Torch points: float32
    math on their device (the renderer's input; no host round trip), ``R @ p`` per point as in
    :func:`~vid3d.formats.conventions.unproject_depth`.
    """
    if isinstance(fp.points, np.ndarray):
        p = transform_points(np.asarray(T_world_camera, np.float64), fp.points.astype(np.float64))
        return FramePoints(p.astype(np.float32), fp.colors, fp.pixels)
    import torch

    T = torch.as_tensor(np.asarray(T_world_camera, np.float64)).to(fp.points.device, torch.float32)
    p_world = (T[:3, :3] @ fp.points[..., None])[..., 0] + T[:3, 3]  # p_world = R p_camera + t
    return FramePoints(p_world, fp.colors, fp.pixels)


def fuse_points(parts: list[FramePoints], *, voxel_size: float, max_points: int) -> FramePoints:
    """Merge world-space numpy point sets into one: keep the first point of each ``voxel_size`` voxel,
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
