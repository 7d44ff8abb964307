"""A pinhole camera for rendering (OpenCV conventions, see :mod:`vid3d.formats.conventions`).

``Camera`` is a frozen value: ``K`` (3, 3) and ``T_world_camera`` (4, 4, camera-to-world) are kept as
float64 CPU tensors; renderers move them to the points' device. Helpers build new cameras
(resized, moved along the optical axis, looking at a point) instead of mutating one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from vid3d.formats.conventions import invert_T, make_T, scale_intrinsics
from vid3d.formats.errors import InputError, ShapeError


def _as_tensor64(x: Any, shape: tuple[int, ...], name: str) -> torch.Tensor:
    t = x.detach() if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x, dtype=np.float64))
    t = t.to(device="cpu", dtype=torch.float64)
    if tuple(t.shape) != shape:
        raise ShapeError(f"Camera.{name}: expected shape {shape}, got {tuple(t.shape)}")
    if not bool(torch.isfinite(t).all()):
        raise ShapeError(f"Camera.{name}: expected finite values, got NaN or inf")
    return t


@dataclass(frozen=True, eq=False)
class Camera:
    """A pinhole camera in OpenCV axes (x right, y down, z forward).

    Fields:
        K: intrinsics (3, 3) in continuous pixel coordinates (pixel centres at +0.5); float64 tensor.
        T_world_camera: camera-to-world pose (4, 4); float64 tensor.
        height, width: image size in pixels.
    Arrays or tensors of any float dtype are accepted and stored as float64 CPU tensors.
    """

    K: Any
    T_world_camera: Any
    height: int
    width: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "K", _as_tensor64(self.K, (3, 3), "K"))
        object.__setattr__(self, "T_world_camera", _as_tensor64(self.T_world_camera, (4, 4), "T_world_camera"))
        for name in ("height", "width"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or int(v) < 1:
                raise InputError(f"Camera.{name}: expected a positive integer, got {v!r}")
            object.__setattr__(self, name, int(v))
        if float(self.K[0, 0]) <= 0 or float(self.K[1, 1]) <= 0:
            raise InputError(f"Camera.K: expected positive focal lengths, got fx={float(self.K[0, 0])}, fy={float(self.K[1, 1])}")

    # -- derived quantities ---------------------------------------------------------------------

    @property
    def T_camera_world(self) -> torch.Tensor:
        """World-to-camera (4, 4), float64."""
        return invert_T(self.T_world_camera)

    @property
    def center(self) -> torch.Tensor:
        """Camera centre in world coordinates (3,), float64."""
        return self.T_world_camera[:3, 3].clone()

    @property
    def forward(self) -> torch.Tensor:
        """Optical axis (camera +z) in world coordinates (3,), unit, float64."""
        return self.T_world_camera[:3, 2].clone()

    @property
    def focal_px(self) -> float:
        """Mean focal length in pixels, (fx + fy) / 2."""
        return 0.5 * float(self.K[0, 0] + self.K[1, 1])

    @property
    def fov_y(self) -> float:
        """Vertical field of view in radians."""
        return 2.0 * math.atan(self.height / (2.0 * float(self.K[1, 1])))

    # -- new cameras ----------------------------------------------------------------------------

    def resized(self, width: int, height: int) -> "Camera":
        """The same camera rendering a ``height`` x ``width`` image (intrinsics scaled exactly)."""
        K = scale_intrinsics(self.K, width / self.width, height / self.height)
        return Camera(K=K, T_world_camera=self.T_world_camera, height=height, width=width)

    def with_pose(self, T_world_camera: Any) -> "Camera":
        """The same intrinsics at another pose (4, 4)."""
        return Camera(K=self.K, T_world_camera=T_world_camera, height=self.height, width=self.width)

    def with_K(self, K: Any) -> "Camera":
        """The same pose with other intrinsics (3, 3)."""
        return Camera(K=K, T_world_camera=self.T_world_camera, height=self.height, width=self.width)

    def look_at(self, eye: Any, target: Any, up_hint: Any | None = None) -> "Camera":
        """Same intrinsics, centre at ``eye`` (3,) looking at ``target`` (3,) (world coordinates).

        The camera's down axis (+y) stays as close as possible to this camera's current +y
        (or to ``up_hint`` negated, if given), so orbits do not roll.
        """
        eye = _as_tensor64(eye, (3,), "look_at eye")
        target = _as_tensor64(target, (3,), "look_at target")
        z = target - eye
        if float(z.norm()) <= 0:
            raise InputError("Camera.look_at: eye and target coincide")
        z = z / z.norm()
        down = self.T_world_camera[:3, 1] if up_hint is None else -_as_tensor64(up_hint, (3,), "up_hint")
        x = torch.linalg.cross(down, z)
        if float(x.norm()) < 1e-9:  # looking along the down axis: pick any perpendicular
            x = torch.linalg.cross(self.T_world_camera[:3, 0] + 0.1, z)
        x = x / x.norm()
        y = torch.linalg.cross(z, x)
        R = torch.stack([x, y, z], dim=1)
        return self.with_pose(make_T(R, eye))


def cameras_from_bundle(K: Any, T_world_camera: Any, height: int, width: int) -> list[Camera]:
    """One :class:`Camera` per frame from ``K`` (T, 3, 3) or (3, 3) and ``T_world_camera`` (T, 4, 4)."""
    T_all = np.asarray(T_world_camera, dtype=np.float64)
    K_all = np.asarray(K, dtype=np.float64)
    if K_all.ndim == 2:
        K_all = np.broadcast_to(K_all, (len(T_all), 3, 3))
    return [Camera(K=K_all[i], T_world_camera=T_all[i], height=height, width=width) for i in range(len(T_all))]
