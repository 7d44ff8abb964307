"""Configuration of a synthetic clip: one frozen dataclass with named presets.

A clip is a closed textured room (floor, walls, ceiling: every ray hits something at finite depth),
a few static boxes and spheres, optionally 1-2 moving rigid objects, and a smoothly moving camera.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from vid3d.formats.errors import InputError


@dataclass(frozen=True)
class SceneConfig:
    """What to render. Lengths in metres, angles in degrees.

    Attributes:
        height: image height H in pixels.
        width: image width W in pixels.
        num_frames: number of frames T (>= 2).
        fps: frame rate of the clip (timestamps are ``t / fps``).
        num_moving: number of moving rigid objects (0 = static scene, at most 2).
        seed: seeds every random choice (layout jitter, textures, camera path phase): same seed, same clip.
        supersample: RGB is averaged over ``supersample**2`` rays per pixel (anti-aliasing); depth,
            masks and flow always come from the pixel-centre ray.
        focal_scale: fx = fy = focal_scale * W (0.9 gives a horizontal field of view of about 58 deg).
        principal_offset: (cx, cy) = (W/2, H/2) + principal_offset, pixels; not centred on purpose.
        camera_travel: length of the camera's translation over the whole clip, metres (room is 6 m wide).
        camera_yaw: peak-to-peak yaw of the camera over the clip, degrees.
        camera_pitch: peak-to-peak pitch of the camera over the clip, degrees.
        object_speed: scales the motion of the moving objects over the clip (1 = default).
        texture_scale: multiplies every texture frequency (> 1 = finer texture).
    """

    height: int = 180
    width: int = 320
    num_frames: int = 24
    fps: float = 30.0
    num_moving: int = 2
    seed: int = 0
    supersample: int = 2
    focal_scale: float = 0.9
    principal_offset: tuple[float, float] = (1.5, -1.0)
    camera_travel: float = 0.9
    camera_yaw: float = 10.0
    camera_pitch: float = 4.0
    object_speed: float = 1.0
    texture_scale: float = 1.0

    def __post_init__(self) -> None:
        if self.height < 8 or self.width < 8:
            raise InputError(f"synthetic clip needs height and width >= 8, got {self.height}x{self.width}")
        if self.num_frames < 2:
            raise InputError(f"synthetic clip needs num_frames >= 2, got {self.num_frames}")
        if not 0 <= self.num_moving <= 2:
            raise InputError(f"num_moving must be 0, 1 or 2, got {self.num_moving}")
        if self.supersample < 1:
            raise InputError(f"supersample must be >= 1, got {self.supersample}")
        if self.fps <= 0:
            raise InputError(f"fps must be > 0, got {self.fps}")

    @property
    def is_dynamic(self) -> bool:
        """True when something other than the camera moves."""
        return self.num_moving > 0

    @staticmethod
    def preset(name: str) -> "SceneConfig":
        """A named configuration: ``tiny_static``, ``tiny_dynamic`` (64x96, 8 frames, well under 1 s),
        ``static``, ``dynamic`` (180x320, 24 frames, a few s) and ``demo`` (dynamic, 180x320, 30 frames)."""
        if name not in PRESETS:
            raise InputError(f"unknown synthetic preset {name!r}; expected one of {sorted(PRESETS)}")
        return PRESETS[name]

    def replace(self, **changes) -> "SceneConfig":
        """A copy with some fields changed (``dataclasses.replace``)."""
        return dataclasses.replace(self, **changes)


PRESETS: dict[str, SceneConfig] = {
    "tiny_static": SceneConfig(height=64, width=96, num_frames=8, num_moving=0),
    "tiny_dynamic": SceneConfig(height=64, width=96, num_frames=8, num_moving=2),
    "static": SceneConfig(height=180, width=320, num_frames=24, num_moving=0),
    "dynamic": SceneConfig(height=180, width=320, num_frames=24, num_moving=2),
    "demo": SceneConfig(height=180, width=320, num_frames=30, num_moving=2),
}
