"""Camera paths of a synthetic clip, one per ``SceneConfig.camera_motion``.

Every path is a function of the clip fraction ``s = t / (T - 1)`` in [0, 1] and one random phase
``ph``, and returns camera-to-world poses (OpenCV axes; world y is down, so "pitch down" turns the
optical axis towards +y). Orientations are ``R = rot_y(yaw) @ rot_x(-pitch_down)``: no roll, and the
yaw of a pose reads back as ``atan2(R[0, 2], R[2, 2])``.

| motion | translation | rotation |
|---|---|---|
| ``default`` | ``camera_travel`` along a slanted lateral line, 4 cm vertical wobble | yaw sweep ``camera_yaw``, pitch wave ``camera_pitch`` |
| ``orbit`` | an arc of length ``camera_travel`` at 3 m around :data:`SCENE_CENTRE` | always looks at :data:`SCENE_CENTRE` |
| ``walk`` | ``camera_travel`` forward (+z), 2 cm step bob, 3 cm sway | yaw wobble ``camera_yaw``, pitch wave ``camera_pitch`` |
| ``pan`` | none (exactly) | linear yaw sweep of ``camera_yaw``, pitch wave ``camera_pitch`` |
| ``tripod`` | none (exactly) | wobble of ``camera_yaw`` / ``camera_pitch`` (0 = fixed camera) |
| ``sideways`` | ``camera_travel`` straight along world x, facing the far wall | wobble of ``camera_yaw`` / ``camera_pitch`` |
"""

from __future__ import annotations

import numpy as np

from vid3d.formats.conventions import make_T
from vid3d.synthetic.config import CAMERA_MOTIONS

SCENE_CENTRE = np.array([0.0, 0.3, 3.7])  # the middle of the furniture and movers: what ``orbit`` looks at
ORBIT_RADIUS = 3.0  # horizontal distance of the orbiting camera from SCENE_CENTRE, metres
EYE_Y = -0.3  # eye height of the orbit, walk and planar sideways paths: 1.5 m above the floor (y = 1.2)
REST_CENTRE = np.array([0.0, -0.1, 0.2])  # where the pan and tripod cameras stand (the default path's middle)
PITCH_DOWN_DEG = 6.0  # resting downward pitch of the default, walk, pan, tripod and sideways paths
# sideways: the camera's distance to the far wall (z = 6.5): in the planar room close enough that the
# wall fills the whole view over a 3 m sweep, elsewhere in front of the furniture
SIDEWAYS_Z = {"planar": 4.1, "default": 1.0}


def rot_x(a: float) -> np.ndarray:
    """Rotation (3, 3) by ``a`` radians about x."""
    c, s = np.cos(a), np.sin(a)
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]], dtype=np.float64)


def rot_y(a: float) -> np.ndarray:
    """Rotation (3, 3) by ``a`` radians about y."""
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]], dtype=np.float64)


def rot_z(a: float) -> np.ndarray:
    """Rotation (3, 3) by ``a`` radians about z."""
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]], dtype=np.float64)


def _poses(centres: np.ndarray, yaw: np.ndarray, pitch_down: np.ndarray) -> np.ndarray:
    """``(T, 4, 4)`` camera-to-world from centres ``(T, 3)`` and yaw / downward pitch ``(T,)`` radians."""
    Rc = np.stack([rot_y(a) @ rot_x(-b) for a, b in zip(yaw, pitch_down)])
    return make_T(Rc, centres)


def camera_path(
    motion: str, s: np.ndarray, ph: float, *, travel: float, yaw_deg: float, pitch_deg: float, room: str = "default"
) -> np.ndarray:
    """Camera-to-world poses ``(T, 4, 4)`` float64 of one camera motion.

    Args:
        motion: one of :data:`CAMERA_MOTIONS`.
        s: ``(T,)`` clip fractions in [0, 1].
        ph: random phase of the wobbles, radians.
        travel: ``SceneConfig.camera_travel`` (metres); yaw_deg / pitch_deg: ``camera_yaw`` /
            ``camera_pitch`` (peak-to-peak degrees). room: ``SceneConfig.room`` (sets where
            ``sideways`` stands).
    """
    T = s.shape[0]
    if motion == "default":  # lateral + forward travel (real parallax) with a small vertical wobble, yaw sweep, pitch wave
        u = np.array([1.0, -0.15, 0.5])
        u /= np.linalg.norm(u)
        centres = (
            np.array([0.0, -0.1, 0.2])
            + travel * (s[:, None] - 0.5) * u
            + 0.04 * np.sin(2 * np.pi * s + ph)[:, None] * np.array([0.0, 1.0, 0.0])
        )
        yaw = np.deg2rad(-yaw_deg * (s - 0.5))  # turns back towards the room centre as it moves right
        pitch_down = np.deg2rad(PITCH_DOWN_DEG + 0.5 * pitch_deg * np.sin(1.5 * np.pi * s + ph))
        return _poses(centres, yaw, pitch_down)
    if motion == "orbit":  # theta = arc length / radius; the camera at C + r (sin theta, 0, -cos theta) looks at C
        theta = (s - 0.5) * travel / ORBIT_RADIUS
        centres = np.stack(
            [
                SCENE_CENTRE[0] + ORBIT_RADIUS * np.sin(theta),
                EYE_Y + 0.03 * np.sin(2 * np.pi * s + ph),
                SCENE_CENTRE[2] - ORBIT_RADIUS * np.cos(theta),
            ],
            axis=-1,
        )
        to_c = SCENE_CENTRE - centres
        yaw = np.arctan2(to_c[:, 0], to_c[:, 2])
        pitch_down = np.arctan2(to_c[:, 1], np.hypot(to_c[:, 0], to_c[:, 2]))
        return _poses(centres, yaw, pitch_down)
    if motion == "walk":  # constant pace along +z; the head bobs once per step (2 steps), sways once per stride
        centres = np.stack(
            [
                0.03 * np.sin(2 * np.pi * s + ph),
                EYE_Y + 0.02 * np.sin(4 * np.pi * s + 2 * ph),
                -0.7 + travel * s,
            ],
            axis=-1,
        )
        yaw = np.deg2rad(0.5 * yaw_deg * np.sin(2 * np.pi * s + ph + 0.5))
        pitch_down = np.deg2rad(PITCH_DOWN_DEG + 0.5 * pitch_deg * np.sin(4 * np.pi * s + ph))
        return _poses(centres, yaw, pitch_down)
    if motion == "pan":  # yaw from -camera_yaw/2 to +camera_yaw/2 at constant rate, about a fixed centre
        centres = np.broadcast_to(REST_CENTRE, (T, 3))
        yaw = np.deg2rad(yaw_deg * (s - 0.5))
        pitch_down = np.deg2rad(PITCH_DOWN_DEG + 0.5 * pitch_deg * np.sin(2 * np.pi * s + ph))
        return _poses(centres, yaw, pitch_down)
    if motion == "tripod":
        centres = np.broadcast_to(REST_CENTRE, (T, 3))
        yaw = np.deg2rad(0.5 * yaw_deg * np.sin(2 * np.pi * s + ph))
        pitch_down = np.deg2rad(PITCH_DOWN_DEG + 0.5 * pitch_deg * np.sin(3 * np.pi * s + ph))
        return _poses(centres, yaw, pitch_down)
    if motion == "sideways":  # straight along +x, optical axis towards the far wall (level in the planar room)
        planar = room == "planar"
        x = travel * (s - 0.5)
        y = np.full(T, EYE_Y if planar else REST_CENTRE[1])
        z = np.full(T, SIDEWAYS_Z["planar" if planar else "default"])
        yaw = np.deg2rad(0.5 * yaw_deg * np.sin(2 * np.pi * s + ph))
        pitch_down = np.deg2rad((0.0 if planar else PITCH_DOWN_DEG) + 0.5 * pitch_deg * np.sin(2 * np.pi * s + ph))
        return _poses(np.stack([x, y, z], axis=-1), yaw, pitch_down)
    raise ValueError(f"unknown camera motion {motion!r}; expected one of {CAMERA_MOTIONS}")
