"""Small random captures for bundle tests (no dependency on the synthetic renderer)."""

import numpy as np

from vid3d.formats.conventions import make_K, make_T, quat_wxyz_to_R


def random_capture(T=4, H=12, W=16, seed=0, fields=("depth", "confidence", "prior", "dynamic_mask", "scene_flow")):
    rng = np.random.default_rng(seed)
    q = rng.normal(size=(T, 4))
    poses = np.stack([make_T(quat_wxyz_to_R(q[t]), rng.normal(size=3)) for t in range(T)])
    arrays = {
        "rgb": rng.integers(0, 256, (T, H, W, 3), dtype=np.uint8),
        "T_world_camera": poses,
        "K": make_K(20.0, 21.0, W / 2 + 0.3, H / 2 - 0.2),
        "depth": rng.uniform(0.5, 30.0, (T, H, W)).astype(np.float32),
        "confidence": rng.uniform(0, 1, (T, H, W)).astype(np.float32),
        "prior": rng.uniform(0.5, 30.0, (T, H, W)).astype(np.float32),
        "dynamic_mask": rng.uniform(size=(T, H, W)) > 0.7,
        "scene_flow": (rng.normal(size=(T, H, W, 3)) * 0.05).astype(np.float32),
    }
    arrays["depth"][:, 0, 0] = 0.0  # invalid pixels survive the round trip
    return {k: v for k, v in arrays.items() if k in ("rgb", "T_world_camera", "K") or k in fields}
