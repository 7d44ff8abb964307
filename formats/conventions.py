"""The one place where vid3d's geometric conventions are written down and converted.

Conventions (stored as attributes in every bundle, see ``ROOT_CONVENTIONS``):

- Camera axes: **OpenCV** -- x right, y down, z forward (what viser expects; no flip needed).
- Poses: ``T_world_camera`` is **camera-to-world**, ``p_world = R @ p_camera + t``.
  ``T_camera_world`` is its inverse. Transforms are named after their frames, so
  ``T_world_camera @ T_camera_object`` reads as ``T_world_object``.
- Quaternions: **wxyz** (scalar first).
- Depth: **z-depth** along the optical axis (not ray length); 0 = invalid.
- Pixels: the centre of pixel (u, v) is at (u + 0.5, v + 0.5); K maps camera points to these
  continuous coordinates. Resizing an image by (sx, sy) therefore scales K's first two rows by
  (sx, sy) exactly (:func:`scale_intrinsics`).
- Scene flow: world units per frame step, forward in time.

Conversions from COLMAP (world-to-camera, wxyz + t), OpenGL (y up, z backward), TUM (xyzw) and
Redwood logs happen only here.

Functions accept numpy arrays, and the geometry ones also torch tensors (same code path).
Shapes use one alphabet: ``T`` frames, ``H``, ``W``, ``N`` points, ``...`` batch.
"""

from __future__ import annotations

from typing import Any

import numpy as np

CAMERA_CONVENTION = "opencv"
POSE_CONVENTION = "T_world_camera"
DEPTH_KIND = "z"
PIXEL_CENTER = 0.5
QUATERNION_ORDER = "wxyz"
SCENE_FLOW_KIND = "world_displacement_per_frame_forward"

ROOT_CONVENTIONS: dict[str, Any] = {
    "camera_convention": CAMERA_CONVENTION,
    "pose_convention": POSE_CONVENTION,
    "depth_kind": DEPTH_KIND,
    "pixel_center": PIXEL_CENTER,
    "quaternion_order": QUATERNION_ORDER,
}

# OpenGL camera axes (x right, y up, z backward) <-> OpenCV (x right, y down, z forward).
GL_FROM_CV = np.diag([1.0, -1.0, -1.0, 1.0])


def _is_torch(x: Any) -> bool:
    return type(x).__module__.startswith("torch")


def _xp(x: Any):
    """The array module (numpy or torch) of ``x``."""
    if _is_torch(x):
        import torch

        return torch
    return np


# ---------------------------------------------------------------------------------------------
# Rigid transforms
# ---------------------------------------------------------------------------------------------


def make_T(R: Any, t: Any) -> Any:
    """Build 4x4 transforms from rotations ``(..., 3, 3)`` and translations ``(..., 3)``."""
    xp = _xp(R)
    batch = tuple(R.shape[:-2])
    if xp is np:
        T = np.zeros(batch + (4, 4), dtype=np.result_type(R, t, np.float32))
    else:
        T = xp.zeros(batch + (4, 4), dtype=R.dtype, device=R.device)
    T[..., :3, :3] = R
    T[..., :3, 3] = t
    T[..., 3, 3] = 1
    return T


def invert_T(T: Any) -> Any:
    """Inverse of rigid transforms ``(..., 4, 4)``: ``T_camera_world = invert_T(T_world_camera)``."""
    R = T[..., :3, :3]
    t = T[..., :3, 3:]
    Rt = R.swapaxes(-1, -2) if _xp(T) is np else R.transpose(-1, -2)
    return make_T(Rt, -(Rt @ t)[..., 0])


def transform_points(T_a_b: Any, p_b: Any) -> Any:
    """Map points ``(..., N, 3)`` in frame b to frame a with ``T_a_b`` ``(..., 4, 4)``."""
    R = T_a_b[..., :3, :3]
    t = T_a_b[..., None, :3, 3]
    Rt = R.swapaxes(-1, -2) if _xp(T_a_b) is np else R.transpose(-1, -2)
    return p_b @ Rt + t


def rigidity_error(T: np.ndarray) -> np.ndarray:
    """How far each ``(..., 4, 4)`` is from a proper rigid transform (0 = exact).

    Max of |R^T R - I|, |det R - 1| and |last row - [0, 0, 0, 1]|, per transform ``(...)``.
    """
    T = np.asarray(T, dtype=np.float64)
    R = T[..., :3, :3]
    ortho = np.abs(R.swapaxes(-1, -2) @ R - np.eye(3)).max(axis=(-1, -2))
    det = np.abs(np.linalg.det(R) - 1.0)
    last = np.abs(T[..., 3, :] - np.array([0.0, 0.0, 0.0, 1.0])).max(axis=-1)
    return np.maximum(np.maximum(ortho, det), last)


# ---------------------------------------------------------------------------------------------
# Quaternions (wxyz) and foreign pose conventions
# ---------------------------------------------------------------------------------------------


def quat_wxyz_to_R(q: np.ndarray) -> np.ndarray:
    """Unit quaternions ``(..., 4)`` in wxyz order to rotation matrices ``(..., 3, 3)``."""
    q = np.asarray(q, dtype=np.float64)
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    w, x, y, z = np.moveaxis(q, -1, 0)
    R = np.stack(
        [
            1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
            2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
            2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
        ],
        axis=-1,
    )
    return R.reshape(q.shape[:-1] + (3, 3))


def R_to_quat_wxyz(R: np.ndarray) -> np.ndarray:
    """Rotation matrices ``(..., 3, 3)`` to unit quaternions ``(..., 4)`` wxyz with w >= 0."""
    R = np.asarray(R, dtype=np.float64)
    batch = R.shape[:-2]
    R = R.reshape(-1, 3, 3)
    q = np.empty((R.shape[0], 4))
    for i, m in enumerate(R):
        tr = m[0, 0] + m[1, 1] + m[2, 2]
        if tr > 0:
            s = 2.0 * np.sqrt(tr + 1.0)
            q[i] = [0.25 * s, (m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s]
        elif m[0, 0] > m[1, 1] and m[0, 0] > m[2, 2]:
            s = 2.0 * np.sqrt(1.0 + m[0, 0] - m[1, 1] - m[2, 2])
            q[i] = [(m[2, 1] - m[1, 2]) / s, 0.25 * s, (m[0, 1] + m[1, 0]) / s, (m[0, 2] + m[2, 0]) / s]
        elif m[1, 1] > m[2, 2]:
            s = 2.0 * np.sqrt(1.0 + m[1, 1] - m[0, 0] - m[2, 2])
            q[i] = [(m[0, 2] - m[2, 0]) / s, (m[0, 1] + m[1, 0]) / s, 0.25 * s, (m[1, 2] + m[2, 1]) / s]
        else:
            s = 2.0 * np.sqrt(1.0 + m[2, 2] - m[0, 0] - m[1, 1])
            q[i] = [(m[1, 0] - m[0, 1]) / s, (m[0, 2] + m[2, 0]) / s, (m[1, 2] + m[2, 1]) / s, 0.25 * s]
    q /= np.linalg.norm(q, axis=-1, keepdims=True)
    q[q[:, 0] < 0] *= -1
    return q.reshape(batch + (4,))


def T_world_camera_from_colmap(qvec_wxyz: np.ndarray, tvec: np.ndarray) -> np.ndarray:
    """COLMAP's world-to-camera ``(qw, qx, qy, qz), (tx, ty, tz)`` to ``T_world_camera`` (4, 4)."""
    T_camera_world = make_T(quat_wxyz_to_R(qvec_wxyz), np.asarray(tvec, dtype=np.float64))
    return invert_T(T_camera_world)


def colmap_from_T_world_camera(T_world_camera: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``T_world_camera`` (4, 4) to COLMAP's world-to-camera ``(qvec_wxyz (4,), tvec (3,))``."""
    T_camera_world = invert_T(np.asarray(T_world_camera, dtype=np.float64))
    return R_to_quat_wxyz(T_camera_world[:3, :3]), T_camera_world[:3, 3].copy()


def T_world_camera_from_opengl(T_world_glcamera: np.ndarray) -> np.ndarray:
    """Camera-to-world with OpenGL camera axes (y up, z back) ``(..., 4, 4)`` to OpenCV axes."""
    return np.asarray(T_world_glcamera, dtype=np.float64) @ GL_FROM_CV


def tum_line_from_T_world_camera(timestamp: float, T_world_camera: np.ndarray) -> str:
    """One TUM trajectory line ``timestamp tx ty tz qx qy qz qw`` (camera-to-world)."""
    q = R_to_quat_wxyz(np.asarray(T_world_camera)[:3, :3])
    t = np.asarray(T_world_camera)[:3, 3]
    vals = [timestamp, *t, q[1], q[2], q[3], q[0]]
    return " ".join(f"{v:.9g}" for v in vals)


# ---------------------------------------------------------------------------------------------
# Intrinsics, pixels, projection
# ---------------------------------------------------------------------------------------------


def make_K(fx: float, fy: float, cx: float, cy: float) -> np.ndarray:
    """Pinhole intrinsics (3, 3), float64, in continuous pixel coordinates (centres at +0.5)."""
    return np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])


def scale_intrinsics(K: Any, sx: float, sy: float) -> Any:
    """Intrinsics ``(..., 3, 3)`` after resizing an image by (sx, sy) = (W'/W, H'/H).

    With pixel centres at +0.5 the continuous image coordinates scale exactly: u' = sx * u.
    """
    xp = _xp(K)
    S = xp.asarray([[sx, 0.0, 0.0], [0.0, sy, 0.0], [0.0, 0.0, 1.0]], dtype=K.dtype)
    if xp is not np:
        S = S.to(K.device)
    return S @ K


def pixel_grid(H: int, W: int, *, like: Any = None) -> Any:
    """Pixel-centre coordinates ``(H, W, 2)`` as (u + 0.5, v + 0.5), float32 (numpy or like's type)."""
    if like is not None and _is_torch(like):
        import torch

        v, u = torch.meshgrid(
            torch.arange(H, device=like.device, dtype=torch.float32),
            torch.arange(W, device=like.device, dtype=torch.float32),
            indexing="ij",
        )
        return torch.stack([u + PIXEL_CENTER, v + PIXEL_CENTER], dim=-1)
    v, u = np.mgrid[0:H, 0:W].astype(np.float32)
    return np.stack([u + PIXEL_CENTER, v + PIXEL_CENTER], axis=-1)


def unproject_depth(depth: Any, K: Any, T_world_camera: Any | None = None) -> Any:
    """Back-project z-depth ``(..., H, W)`` to 3-D points ``(..., H, W, 3)``.

    ``p_camera = z * K^-1 [u + 0.5, v + 0.5, 1]``; with ``T_world_camera`` ``(..., 4, 4)`` the points
    are returned in world coordinates ``p_world = R p_camera + t``. ``K`` is ``(..., 3, 3)``.
    Invalid depth (0) gives the camera centre; mask it with ``depth > 0``.
    """
    xp = _xp(depth)
    H, W = depth.shape[-2:]
    uv = pixel_grid(H, W, like=depth)
    if xp is np:
        uv = uv.astype(depth.dtype if depth.dtype.kind == "f" else np.float32)
        ones = np.ones(uv.shape[:-1] + (1,), dtype=uv.dtype)
        uv1 = np.concatenate([uv, ones], axis=-1)
        Kinv = np.linalg.inv(np.asarray(K, dtype=np.float64)).astype(uv.dtype)
        rays = np.einsum("...ij,hwj->...hwi", Kinv, uv1)
    else:
        uv = uv.to(depth.dtype)
        uv1 = xp.cat([uv, xp.ones_like(uv[..., :1])], dim=-1)
        Kinv = xp.linalg.inv(K.to(xp.float64)).to(depth.dtype)
        rays = xp.einsum("...ij,hwj->...hwi", Kinv, uv1)
    p_camera = rays * depth[..., None]
    if T_world_camera is None:
        return p_camera
    R = T_world_camera[..., None, None, :3, :3]
    t = T_world_camera[..., None, None, :3, 3]
    return (R @ p_camera[..., None])[..., 0] + t


def project_points(p_world: Any, K: Any, T_world_camera: Any | None = None) -> tuple[Any, Any]:
    """Project points ``(..., N, 3)`` to continuous pixel coordinates.

    Returns ``(uv (..., N, 2), z (..., N))``; ``uv`` uses the +0.5 pixel-centre convention, so the
    integer pixel containing a point is ``floor(uv)``. Points with z <= 0 get non-finite or
    meaningless uv: mask them with ``z > 0``.
    """
    p_camera = p_world if T_world_camera is None else transform_points(invert_T(T_world_camera), p_world)
    z = p_camera[..., 2]
    Kp = p_camera @ (K.swapaxes(-1, -2) if _xp(K) is np else K.transpose(-1, -2))
    uv = Kp[..., :2] / z[..., None]
    return uv, z


def fov_y_from_K(K: np.ndarray, height: int) -> float:
    """Vertical field of view in radians of a pinhole camera (3, 3) with image height ``height``."""
    return float(2.0 * np.arctan(height / (2.0 * float(K[1, 1]))))
