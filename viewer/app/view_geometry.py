"""Small pure helpers between capture poses and viser's camera (OpenCV axes on both sides).

viser's client camera is ``P_world = [R | t] p_camera`` with OpenCV axes: exactly our
``T_world_camera``, so nothing flips. Its ``fov`` is vertical, in radians.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from vid3d.formats.conventions import R_to_quat_wxyz, fov_y_from_K, make_K, make_T, quat_wxyz_to_R
from vid3d.formats.errors import ShapeError


class ViewPose(NamedTuple):
    """A viser-style camera placement.

    Fields: position ``(3,)``, look_at ``(3,)``, up ``(3,)`` (the camera's -y axis in the world),
    wxyz ``(4,)`` rotation of ``T_world_camera``, fov_y (radians).
    """

    position: np.ndarray
    look_at: np.ndarray
    up: np.ndarray
    wxyz: np.ndarray
    fov_y: float


def _check_T(T: np.ndarray) -> np.ndarray:
    T = np.asarray(T, np.float64)
    if T.shape[-2:] != (4, 4):
        raise ShapeError(f"T_world_camera must be (..., 4, 4), got {T.shape}")
    return T


def world_up_from_trajectory(T_world_camera: np.ndarray) -> np.ndarray:
    """World up ``(3,)``: the mean of the cameras' up axes (-y in OpenCV) over ``(T, 4, 4)`` poses, unit length.

    Falls back to -y of the world (the first camera's convention) when the mean cancels out.
    """
    T = _check_T(T_world_camera).reshape(-1, 4, 4)
    up = -T[:, :3, 1].mean(axis=0)
    n = float(np.linalg.norm(up))
    return up / n if n > 1e-6 else np.array([0.0, -1.0, 0.0])


def view_from_pose(T_world_camera: np.ndarray, K: np.ndarray, height: int, look_distance: float) -> ViewPose:
    """Where a viewer camera must be to look exactly through a recorded camera ``(4, 4)`` with ``K (3, 3)``."""
    T = _check_T(T_world_camera)
    R, t = T[:3, :3], T[:3, 3]
    return ViewPose(
        position=t.copy(),
        look_at=t + R[:, 2] * float(look_distance),
        up=-R[:, 1],
        wxyz=R_to_quat_wxyz(R),
        fov_y=fov_y_from_K(np.asarray(K), int(height)),
    )


def T_world_camera_from_view(wxyz: np.ndarray, position: np.ndarray) -> np.ndarray:
    """``(4, 4)`` camera-to-world pose of a viser camera (``wxyz (4,)``, ``position (3,)``)."""
    return make_T(quat_wxyz_to_R(np.asarray(wxyz, np.float64)), np.asarray(position, np.float64))


def K_from_fov(fov_y: float, height: int, width: int) -> np.ndarray:
    """Intrinsics ``(3, 3)`` of a centred pinhole with vertical field of view ``fov_y`` (radians)."""
    f = height / (2.0 * np.tan(fov_y / 2.0))
    return make_K(f, f, width / 2.0, height / 2.0)


_VIRIDIS = np.array([
    [68, 1, 84], [72, 40, 120], [62, 74, 137], [49, 104, 142], [38, 130, 142],
    [31, 158, 137], [53, 183, 121], [109, 205, 89], [180, 222, 44], [253, 231, 37],
], np.float64)


def time_colors(n: int) -> np.ndarray:
    """``(n, 3)`` uint8 viridis colours from the first (purple) to the last (yellow) frame."""
    if n <= 0:
        return np.zeros((0, 3), np.uint8)
    x = np.linspace(0.0, 1.0, n) * (len(_VIRIDIS) - 1)
    i0 = np.minimum(np.floor(x).astype(int), len(_VIRIDIS) - 2)
    a = (x - i0)[:, None]
    return np.round(_VIRIDIS[i0] * (1 - a) + _VIRIDIS[i0 + 1] * a).astype(np.uint8)


def ray_pick(points: np.ndarray, ray_origin: np.ndarray, ray_direction: np.ndarray, *, max_angle: float = 0.01) -> int | None:
    """Index of the point ``points (N, 3)`` nearest the ray origin among those within ``max_angle``
    radians of the ray; None when no point is that close."""
    d = np.asarray(ray_direction, np.float64)
    d = d / np.linalg.norm(d)
    v = np.asarray(points, np.float64) - np.asarray(ray_origin, np.float64)
    along = v @ d
    dist = np.linalg.norm(v, axis=1)
    ok = (along > 0) & (along >= np.cos(max_angle) * dist)
    if not ok.any():
        return None
    cand = np.nonzero(ok)[0]
    return int(cand[np.argmin(along[cand])])
