"""Dolly zoom ("vertigo"): the camera moves along its optical axis while the focal length changes so
a subject at distance d keeps its projected size.

A point at depth d projects with size ~ f / d. Moving the camera back by ``delta`` (d' = d + delta)
and scaling the focal length ``f' = f d' / d`` keeps f'/d' = f/d for the subject, while a
background point at depth D changes scale by ``(f'/f) * D / (D + delta)``.

``strength`` is the relative move: d' = d (1 + strength). strength > 0 pulls back and zooms in (the
background looms larger), -1 < strength < 0 pushes in and widens (the background recedes).
"""

from __future__ import annotations

import math



from vid3d.formats.errors import InputError
from vid3d.viewer.render.camera import Camera


def dolly_zoom_camera(cam: Camera, *, subject_distance: float, strength: float) -> Camera:
    """``cam`` moved back along its optical axis by ``strength * subject_distance`` with f' = f d'/d.

    The principal point stays; fx, fy (and skew) scale by d'/d = 1 + strength.
    """
    d = subject_distance
    if not (isinstance(d, (int, float)) and math.isfinite(d) and d > 0):
        raise InputError(f"dolly zoom: expected a positive finite subject distance, got {d!r}")
    if not (isinstance(strength, (int, float)) and math.isfinite(strength) and strength > -1):
        raise InputError(f"dolly zoom: expected strength > -1 (camera stays in front of the subject), got {strength!r}")
    scale = 1.0 + strength  # d' / d
    T = cam.T_world_camera.clone()
    T[:3, 3] = T[:3, 3] - strength * d * T[:3, 2]  # back along the optical axis: d' = d + strength d
    K = cam.K.clone()
    K[0, :2] *= scale  # f' = f d' / d (skew too)
    K[1, 1] *= scale
    return Camera(K=K, T_world_camera=T, height=cam.height, width=cam.width)


def background_scale(*, subject_distance: float, background_distance: float, strength: float) -> float:
    """Predicted image-scale factor of a fronto-parallel background at depth D: (1 + s) D / (D + s d)."""
    d, D, s = subject_distance, background_distance, strength
    return (1 + s) * D / (D + s * d)


def dolly_zoom_path(cam: Camera, *, subject_distance: float, strength: float, num_frames: int) -> list[Camera]:
    """``num_frames`` cameras ramping the dolly strength smoothly (cosine ease) from 0 to ``strength``."""
    if num_frames < 1:
        raise InputError(f"dolly zoom path: expected at least one frame, got {num_frames}")
    out = []
    for i in range(num_frames):
        t = 0.0 if num_frames == 1 else i / (num_frames - 1)
        ease = 0.5 - 0.5 * math.cos(math.pi * t)
        out.append(dolly_zoom_camera(cam, subject_distance=subject_distance, strength=strength * ease))
    return out


