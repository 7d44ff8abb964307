"""The slow, obviously correct twin of :func:`vid3d.viewer.render.splat.splat`: numpy float64, plain loops.

For tests on tiny inputs only. Same rules: a point covers its pixel ``floor(u), floor(v)`` (or the
(2r+1)^2 square around it), points with z <= NEAR_Z or non-finite projections are dropped, the
nearest point wins and equal depths go to the lower index. (Depth is compared here in float64 and
in float32 by the fast path; tests use depths that differ well above float32 precision, or equal.)
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from vid3d.viewer.render.camera import Camera
from vid3d.viewer.render.splat import NEAR_Z


def splat_reference(
    points: Any,
    colors: Any,
    cam: Camera,
    *,
    point_radius_px: int = 0,
    background: Sequence[float] = (0.0, 0.0, 0.0),
    peel_depth: Any | None = None,
    peel_margin: float = 0.05,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Loop z-buffer. ``points`` (N, 3), ``colors`` (N, 3) uint8 or float in [0, 1].

    ``peel_depth`` (H, W): a point is kept only if z > peel_depth * (1 + peel_margin) at its own
    pixel (no limit where that pixel is off the image or 0).

    Returns numpy ``(rgb (H, W, 3) float32, depth (H, W) float32 (0 = empty), index (H, W) int64 (-1 = empty))``.
    """
    P = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    C = np.asarray(colors)
    C = C.astype(np.float32) / 255.0 if C.dtype == np.uint8 else C.astype(np.float32)
    K = cam.K.numpy()
    T_cw = np.linalg.inv(cam.T_world_camera.numpy())
    H, W, r = cam.height, cam.width, point_radius_px
    zbuf = np.full((H, W), np.inf)
    index = np.full((H, W), -1, dtype=np.int64)
    for i in range(len(P)):
        x, y, z = T_cw[:3, :3] @ P[i] + T_cw[:3, 3]
        if not z > NEAR_Z:
            continue
        u = (K[0, 0] * x + K[0, 1] * y) / z + K[0, 2]
        v = K[1, 1] * y / z + K[1, 2]
        if not (math.isfinite(u) and math.isfinite(v)):
            continue
        ui, vi = math.floor(u), math.floor(v)
        if peel_depth is not None and 0 <= ui < W and 0 <= vi < H:
            if not z > float(np.float32(peel_depth[vi, ui]) * np.float32(1 + peel_margin)):
                continue
        for py in range(vi - r, vi + r + 1):
            for px in range(ui - r, ui + r + 1):
                if not (0 <= px < W and 0 <= py < H):
                    continue
                if z < zbuf[py, px] or (z == zbuf[py, px] and i < index[py, px]):
                    zbuf[py, px] = z
                    index[py, px] = i
    rgb = np.empty((H, W, 3), dtype=np.float32)
    rgb[:] = np.asarray(background, dtype=np.float32)
    hit = index >= 0
    rgb[hit] = C[index[hit]]
    depth = np.where(hit, zbuf, 0.0).astype(np.float32)
    return rgb, depth, index
