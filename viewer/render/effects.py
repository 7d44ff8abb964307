"""Camera paths and image effects around a frame: orbit, pull-back view, depth colour map, side by side."""

from __future__ import annotations

import math
from typing import Sequence

import torch

from vid3d.formats.errors import InputError, ShapeError
from vid3d.viewer.render.camera import Camera

# Turbo colour map, polynomial fit (A. Mikhailov, Google, 2019): c(x) = v4 . k4 + v2 . k2.
_TURBO_K4 = torch.tensor([
    [0.13572138, 4.61539260, -42.66032258, 132.13108234],
    [0.09140261, 2.19418839, 4.84296658, -14.18503333],
    [0.10667330, 12.64194608, -60.58204836, 110.36276771],
])
_TURBO_K2 = torch.tensor([[-152.94239396, 59.28637943], [4.27729857, 2.82956604], [-89.90310912, 27.34824973]])


def turbo(x: torch.Tensor) -> torch.Tensor:
    """Turbo colour map of values ``x`` (...) in [0, 1] -> (..., 3) float32 in [0, 1]."""
    x = x.to(torch.float32).clamp(0, 1)[..., None]
    v4 = torch.cat([torch.ones_like(x), x, x * x, x * x * x], -1)
    v2 = torch.cat([v4[..., 3:4] * x, v4[..., 3:4] * x * x], -1)
    k4, k2 = _TURBO_K4.to(x.device), _TURBO_K2.to(x.device)
    return (v4 @ k4.T + v2 @ k2.T).clamp(0, 1)


def depth_range(depth: torch.Tensor, *, lo: float = 2.0, hi: float = 98.0) -> tuple[float, float]:
    """(near, far) percentiles of the valid values of ``depth`` (any shape); for a stable colour map
    over a whole clip pass every frame's depth (or a subsample) at once."""
    d = depth[(depth > 0) & torch.isfinite(depth)].to(torch.float32)
    if d.numel() == 0:
        return 1.0, 2.0
    if d.numel() > 1_000_000:
        d = d[:: d.numel() // 1_000_000 + 1]
    near = float(torch.quantile(d, lo / 100.0))
    far = float(torch.quantile(d, hi / 100.0))
    return near, max(far, near * (1 + 1e-6))


def colorize_depth(depth: torch.Tensor, *, near: float | None = None, far: float | None = None) -> torch.Tensor:
    """Depth (H, W) -> turbo colours (H, W, 3) float32, by inverse depth (near = red, far = blue); empty = black.

    ``near``/``far`` default to the 2nd/98th percentiles of this map.
    """
    if depth.ndim != 2:
        raise ShapeError(f"colorize_depth: expected depth (H, W), got {tuple(depth.shape)}")
    if near is None or far is None:
        n0, f0 = depth_range(depth)
        near = n0 if near is None else near
        far = f0 if far is None else far
    if not (0 < near < far):
        raise InputError(f"colorize_depth: expected 0 < near < far, got near={near}, far={far}")
    d = depth.to(torch.float32)
    valid = (d > 0) & torch.isfinite(d)
    inv = torch.where(valid, 1.0 / d.clamp_min(1e-12), torch.zeros_like(d))
    x = (inv - 1.0 / far) / (1.0 / near - 1.0 / far)  # 1 = near, 0 = far
    return torch.where(valid[..., None], turbo(x), torch.zeros(3, device=d.device))


def _rotate(v: torch.Tensor, axis: torch.Tensor, angle: float) -> torch.Tensor:
    """Rodrigues: rotate (3,) ``v`` about unit ``axis`` (3,) by ``angle`` radians."""
    c, s = math.cos(angle), math.sin(angle)
    return v * c + torch.linalg.cross(axis, v) * s + axis * (axis @ v) * (1 - c)


def orbit_cameras(cam: Camera, *, radius: float, degrees: float, num_frames: int) -> list[Camera]:
    """Cameras swinging around the point ``radius`` ahead of ``cam`` on its optical axis.

    The eye rotates about the camera's vertical (y) axis through that point by
    ``(degrees / 2) sin(2 pi i / num_frames)`` (a loop that starts and ends at ``cam``), always
    looking at the point, at constant distance ``radius``. Same intrinsics.
    """
    if not (math.isfinite(radius) and radius > 0):
        raise InputError(f"orbit: expected a positive radius (distance to the orbited point), got {radius!r}")
    if not (math.isfinite(degrees) and 0 <= degrees <= 360):
        raise InputError(f"orbit: expected degrees in [0, 360], got {degrees!r}")
    if num_frames < 1:
        raise InputError(f"orbit: expected at least one frame, got {num_frames}")
    target = cam.center + radius * cam.forward
    axis = cam.T_world_camera[:3, 1]
    out = []
    for i in range(num_frames):
        angle = math.radians(degrees / 2.0) * math.sin(2 * math.pi * i / num_frames)
        eye = target + _rotate(cam.center - target, axis, angle)
        out.append(cam.look_at(eye, target))
    return out


def pullback_camera(cam: Camera, *, target_distance: float, back: float = 0.6, up: float = 0.3) -> Camera:
    """A view from behind and above ``cam`` (by ``back``/``up`` times ``target_distance``) looking at the
    point ``target_distance`` ahead of it: shows a frame's points as a 3-D cloud with the camera's field."""
    if not (math.isfinite(target_distance) and target_distance > 0):
        raise InputError(f"pull-back view: expected a positive target distance, got {target_distance!r}")
    target = cam.center + target_distance * cam.forward
    eye = cam.center - back * target_distance * cam.forward - up * target_distance * cam.T_world_camera[:3, 1]
    return cam.look_at(eye, target)


def side_by_side(images: Sequence[torch.Tensor]) -> torch.Tensor:
    """Concatenate images (H, W_i, 3) left to right -> (H, sum W_i, 3) float32."""
    if not images:
        raise InputError("side_by_side: expected at least one image")
    H = images[0].shape[0]
    for im in images:
        if im.ndim != 3 or im.shape[0] != H or im.shape[2] != 3:
            raise ShapeError(f"side_by_side: expected images (H={H}, W, 3), got {tuple(im.shape)}")
    return torch.cat([im.to(torch.float32) for im in images], dim=1)
