"""People-like movers (``SceneConfig.mover = "walker"``): rigid walkers striding across the floor.

A walker (:func:`vid3d.synthetic.primitives.walker_parts`: legs box, torso box, head sphere, about
0.46 x 1.7 m) walks a straight line at a constant pace, ``WALK_DISTANCE * object_speed`` metres over
the clip (a walking pace for a clip of about a second), facing where it goes. It sways from one foot
to the other (a roll about its walking direction, once per two steps) while its lowest point stays
*exactly* on the floor, so its centre bobs up and down by about a centimetre once per step. The
motion is rigid, so the scene flow of every point is exact.
"""

from __future__ import annotations

import numpy as np

from vid3d.formats.conventions import make_T
from vid3d.synthetic.camera import rot_y, rot_z
from vid3d.synthetic.primitives import BOX, SPHERE, walker_parts

WALK_DISTANCE = 1.4  # metres per clip at object_speed 1
STRIDE = 1.4  # metres per sway cycle (two steps of 0.7 m)
SWAY_DEG = 4.0  # peak roll of the sway
# (start x, start z, heading about y in degrees: 0 = +z, 90 = +x) of the walkers, on the floor between
# the furniture and at least 3.5 m from the default camera (its feet stay in view): the first comes
# diagonally towards the camera from the left, the second walks leftwards at the back
WALKER_PATHS = ((-0.5, 4.6, 130.0), (1.0, 4.6, -78.0))


def support_depth(height: float, R: np.ndarray) -> float:
    """How far below the walker's origin (world +y, metres) its lowest point lies when rotated by ``R`` (3, 3).

    Each box part reaches ``(R c)_y + sum_j |R[1, j]| h_j`` (its lowest corner), the head ``(R c)_y + r``.
    """
    reach = []
    for kind, c, size in walker_parts(height):
        if kind == BOX:
            reach.append(float(R[1] @ c + np.abs(R[1]) @ size))
        elif kind == SPHERE:
            reach.append(float(R[1] @ c + size[0]))
    return max(reach)


def walker_poses(
    index: int, s: np.ndarray, *, height: float, floor_y: float, speed: float, offset: np.ndarray, phase: float
) -> np.ndarray:
    """``(T, 4, 4)`` float64 world poses of walker ``index`` (0 or 1) at clip fractions ``s`` ``(T,)``.

    Args:
        height: the walker's height, metres. floor_y: the floor plane's world y (y is down).
        speed: ``SceneConfig.object_speed``. offset: (3,) jitter of the start point (y ignored).
        phase: phase of the sway, radians.
    """
    x0, z0, heading_deg = WALKER_PATHS[index]
    psi = np.deg2rad(heading_deg)
    forward = np.array([np.sin(psi), 0.0, np.cos(psi)])  # rot_y(psi) applied to the walker's +z
    distance = WALK_DISTANCE * speed * s
    roll = np.deg2rad(SWAY_DEG) * np.sin(2 * np.pi * distance / STRIDE + phase)
    Rs = np.stack([rot_y(psi) @ rot_z(r) for r in roll])
    feet = np.array([x0 + offset[0], 0.0, z0 + offset[2]]) + distance[:, None] * forward
    # lowest point on the floor: centre_y + support_depth = floor_y
    centre_y = np.array([floor_y - support_depth(height, R) for R in Rs])
    centres = feet + centre_y[:, None] * np.array([0.0, 1.0, 0.0])
    return make_T(Rs, centres)
