"""The synthetic world: room layout, object motions and the camera path, all from a SceneConfig.

World axes follow the OpenCV camera at rest: x right, y *down*, z forward (into the room). The
room spans x in [-3, 3], y in [-1.8, 1.2] (floor at y = ``FLOOR_Y`` = 1.2), z in [-1.5, 6.5]. Time is
the clip fraction ``s = t / (T - 1)`` in [0, 1], so every preset shows the same motion, sampled more
or less densely.

``cfg.room`` picks the furniture (``default``: four boxes and spheres; ``planar``: none, the six
planes of the room only), ``cfg.mover`` the moving objects (``rigid``: a rolling sphere and a
tumbling box; ``walker``: :mod:`~vid3d.synthetic.walkers`), ``cfg.camera_motion`` the camera path
(:mod:`~vid3d.synthetic.camera`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vid3d.formats.conventions import make_K, make_T
from vid3d.synthetic.camera import camera_path, rot_x, rot_y
from vid3d.synthetic.config import SceneConfig
from vid3d.synthetic.primitives import BOX, ROOM, SPHERE, WALKER, Primitive
from vid3d.synthetic.textures import random_rotation
from vid3d.synthetic.walkers import walker_poses

__all__ = ["FLOOR_Y", "LIGHT_TO", "ROOM_HI", "ROOM_LO", "Scene", "build_scene", "rot_x", "rot_y"]

ROOM_LO = np.array([-3.0, -1.8, -1.5])
ROOM_HI = np.array([3.0, 1.2, 6.5])
FLOOR_Y = float(ROOM_HI[1])  # the floor is the plane y = FLOOR_Y (y points down)
LIGHT_TO = np.array([-0.35, -1.0, -0.55]) / np.linalg.norm([-0.35, -1.0, -0.55])  # unit vector towards the light


@dataclass(frozen=True)
class Scene:
    """Geometry and motion of a clip.

    Attributes:
        primitives: the M objects; index 0 is the room.
        T_world_object: ``(M, T, 4, 4)`` float64 pose of each object at each frame (constant for static ones).
        T_world_camera: ``(T, 4, 4)`` float64 camera-to-world poses (OpenCV axes).
        K: ``(3, 3)`` float64 intrinsics.
        height: image height H. width: image width W.
    """

    primitives: list[Primitive]
    T_world_object: np.ndarray
    T_world_camera: np.ndarray
    K: np.ndarray
    height: int
    width: int

    @property
    def dynamic_ids(self) -> np.ndarray:
        """Indices ``(D,)`` of the moving objects."""
        return np.array([k for k, p in enumerate(self.primitives) if p.dynamic], dtype=np.int32)


def build_scene(cfg: SceneConfig) -> Scene:
    """Lay out the room, objects, motions and camera path of ``cfg`` (deterministic for ``cfg.seed``)."""
    rng = np.random.default_rng(cfg.seed)
    T = cfg.num_frames
    s = np.linspace(0.0, 1.0, T)
    prims: list[Primitive] = []
    poses: list[np.ndarray] = []

    def add(kind, size, T_wo, dynamic=False):
        prims.append(
            Primitive(
                kind=kind,
                size=np.asarray(size, dtype=np.float64),
                dynamic=dynamic,
                texture_seed=int(rng.integers(0, 2**31 - 1)),
                texture_rotation=random_rotation(rng),
                tint=rng.uniform(0.15, 0.95, size=3),
            )
        )
        T_wo = np.asarray(T_wo, dtype=np.float64)
        poses.append(np.broadcast_to(T_wo, (T, 4, 4)).copy() if T_wo.ndim == 2 else T_wo)

    def jitter(scale=0.15):
        return rng.uniform(-scale, scale, size=3) * np.array([1.0, 0.0, 1.0])

    # room (static, world frame)
    add(ROOM, np.stack([ROOM_LO, ROOM_HI]), np.eye(4))
    if cfg.room == "default":  # static furniture, resting on the floor (y = 1.2) or hanging on a wall
        add(BOX, [0.5, 0.45, 0.5], make_T(rot_y(np.deg2rad(20 + 20 * rng.uniform())), np.array([-1.6, 0.75, 4.2]) + jitter()))
        add(SPHERE, [0.6], make_T(np.eye(3), np.array([1.7, 0.6, 3.8]) + jitter()))
        add(BOX, [0.35, 1.2, 0.35], make_T(rot_y(np.deg2rad(35 + 20 * rng.uniform())), np.array([0.6, 0.0, 5.6]) + jitter()))
        add(BOX, [0.3, 0.3, 0.3], make_T(random_rotation(rng), np.array([-2.5, -0.5, 2.8]) + jitter(0.1)))

    # moving objects: their per-frame rigid motion never has a fixed point (scene flow != 0 everywhere)
    k = cfg.object_speed
    if cfg.mover == "walker":  # people on the floor: soles exactly at FLOOR_Y, rigid stride with a sway
        for i in range(cfg.num_moving):
            height = float(rng.uniform(1.62, 1.82))
            offset, phase = jitter(0.1), float(rng.uniform(0, 2 * np.pi))
            T_wo = walker_poses(i, s, height=height, floor_y=FLOOR_Y, speed=k, offset=offset, phase=phase)
            add(WALKER, [height], T_wo, dynamic=True)
    else:
        if cfg.num_moving >= 1:  # a sphere on an ellipse (constant speed in x-z) with a vertical bob
            phi0 = rng.uniform(0, 2 * np.pi)
            phi = phi0 + 0.5 * np.pi * k * s
            c0 = np.array([-0.5, 0.2, 3.2]) + jitter(0.1)
            centres = c0 + np.stack([0.6 * np.sin(phi), -0.1 * np.sin(2 * phi), 0.45 * np.cos(phi)], axis=-1)
            spin = rot_x(0.3) @ rot_y(0.0)
            Rs = np.stack([rot_y(1.5 * (p - phi0)) @ spin for p in phi])  # rolls, so its texture moves too
            add(SPHERE, [0.34], make_T(Rs, centres), dynamic=True)
        if cfg.num_moving >= 2:  # a box rotating about a tilted axis while rising and drifting right
            yaw0 = rng.uniform(0, 2 * np.pi)
            tilt = rot_x(np.deg2rad(15))
            c0 = np.array([0.9, -0.1, 2.9]) + jitter(0.1)
            centres = c0 + k * s[:, None] * np.array([0.3, -0.3, 0.0])
            Rs = np.stack([tilt @ rot_y(yaw0 + np.deg2rad(60) * k * si) for si in s])
            add(BOX, [0.25, 0.2, 0.25], make_T(Rs, centres), dynamic=True)

    # camera: one draw of the wobble phase, then the path of cfg.camera_motion
    ph = rng.uniform(0, 2 * np.pi)
    T_world_camera = camera_path(
        cfg.camera_motion, s, ph, travel=cfg.camera_travel, yaw_deg=cfg.camera_yaw, pitch_deg=cfg.camera_pitch, room=cfg.room
    )

    W, H = cfg.width, cfg.height
    f = cfg.focal_scale * W
    K = make_K(f, f, W / 2 + cfg.principal_offset[0], H / 2 + cfg.principal_offset[1])
    return Scene(primitives=prims, T_world_object=np.stack(poses, axis=0), T_world_camera=T_world_camera, K=K, height=H, width=W)
