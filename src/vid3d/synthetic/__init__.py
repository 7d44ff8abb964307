"""Synthetic clips with exact ground truth: a numpy ray caster of a textured room with moving objects.

Serves as the embedded demo clip and as the fixture of every test::

    from vid3d.synthetic import make_clip, SceneConfig
    clip = make_clip(SceneConfig.preset("tiny_dynamic"))   # 64x96, 8 frames
    clip.rgb, clip.depth, clip.K, clip.T_world_camera, clip.dynamic_mask, clip.scene_flow
    flow, valid = clip.optical_flow(0, 3)

Families unlike the tuned-on layout (orbit, walk, pan, tripod, sideways, planar room, walkers) are
presets too: ``for name in FAMILIES: make_clip(f"tiny_{name}")``.

No downloads, deterministic for a seed.
"""

from vid3d.synthetic.clip import SyntheticClip, make_clip
from vid3d.synthetic.config import CAMERA_MOTIONS, FAMILIES, MOVERS, PRESETS, ROOMS, SceneConfig

__all__ = ["CAMERA_MOTIONS", "FAMILIES", "MOVERS", "PRESETS", "ROOMS", "SceneConfig", "SyntheticClip", "make_clip"]
