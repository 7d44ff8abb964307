"""Configuration of a synthetic clip: one frozen dataclass with named presets.

A clip is a closed textured room (floor, walls, ceiling: every ray hits something at finite depth),
a few static boxes and spheres, optionally 1-2 moving rigid objects, and a smoothly moving camera.

Besides the layout the pipeline was tuned on (``room="default"``, ``mover="rigid"``,
``camera_motion="default"``), a clip can come from other *families*: camera motions (orbit, forward
walk, pure pan, fixed tripod, long sideways translation), a room of large planes, and people-like
walkers on the floor. :data:`FAMILIES` names a preset for each (and ``tiny_<name>`` for unit tests).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from vid3d.formats.errors import InputError

CAMERA_MOTIONS = ("default", "orbit", "walk", "pan", "tripod", "sideways")
ROOMS = ("default", "planar")
MOVERS = ("rigid", "walker")


@dataclass(frozen=True)
class SceneConfig:
    """What to render. Lengths in metres, angles in degrees.

    Attributes:
        height: image height H in pixels.
        width: image width W in pixels.
        num_frames: number of frames T (>= 2).
        fps: frame rate of the clip (timestamps are ``t / fps``).
        num_moving: number of moving rigid objects, of the kind ``mover`` (0 = static scene, at most 2).
        seed: seeds every random choice (layout jitter, textures, camera path phase): same seed, same clip.
        supersample: RGB is averaged over ``supersample**2`` rays per pixel (anti-aliasing); depth,
            masks and flow always come from the pixel-centre ray.
        focal_scale: fx = fy = focal_scale * W (0.9 gives a horizontal field of view of about 58 deg).
        principal_offset: (cx, cy) = (W/2, H/2) + principal_offset, pixels; not centred on purpose.
        camera_travel: length of the camera's translation over the whole clip, metres (room is 6 m wide):
            the line of ``default``, the arc of ``orbit``, the forward walk of ``walk``, the sweep of
            ``sideways``; unused by ``pan`` and ``tripod`` (no translation at all).
        camera_yaw: peak-to-peak yaw of the camera over the clip, degrees: the sweep of ``default`` and
            ``pan``, the hand-held wobble of ``walk``, ``tripod`` and ``sideways``; unused by ``orbit``
            (it always looks at the scene centre, so its yaw follows the arc).
        camera_pitch: peak-to-peak pitch of the camera over the clip, degrees (a wave about 6 deg down;
            about level for ``sideways`` in the planar room); unused by ``orbit``.
        object_speed: scales the motion of the moving objects over the clip (1 = default; walkers
            cover 1.4 m at 1).
        texture_scale: multiplies every texture frequency (> 1 = finer texture).
        camera_motion: the camera path (:mod:`vid3d.synthetic.camera`), one of :data:`CAMERA_MOTIONS`:
            ``default`` (slanted lateral travel with a yaw sweep: what the pipeline was tuned on),
            ``orbit`` (an arc at 3 m around the scene centre, looking at it: large parallax),
            ``walk`` (forward along the optical axis into the room, with step bob and sway),
            ``pan`` (pure rotation about a fixed centre: translation exactly 0),
            ``tripod`` (fixed centre, rotation only the ``camera_yaw`` / ``camera_pitch`` wobble, 0 =
            a still camera), ``sideways`` (a straight lateral translation facing the far wall).
        room: ``default`` (room plus four pieces of furniture) or ``planar`` (the room's six large
            textured planes only; ``sideways`` then stands 2.4 m from the far wall, which fills the view).
        mover: ``rigid`` (a rolling sphere and a tumbling box) or ``walker`` (people-like walkers,
            0.46 x 1.62-1.82 m, walking across the floor with their lowest point exactly on it).
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
    camera_motion: str = "default"
    room: str = "default"
    mover: str = "rigid"

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
        for name, allowed in (("camera_motion", CAMERA_MOTIONS), ("room", ROOMS), ("mover", MOVERS)):
            if getattr(self, name) not in allowed:
                raise InputError(f"{name} must be one of {allowed}, got {getattr(self, name)!r}")

    @property
    def is_dynamic(self) -> bool:
        """True when something other than the camera moves."""
        return self.num_moving > 0

    @staticmethod
    def preset(name: str) -> "SceneConfig":
        """A named configuration from :data:`PRESETS`.

        The layout the pipeline was tuned on: ``tiny_static``, ``tiny_dynamic`` (64x96, 8 frames, well
        under 1 s), ``static``, ``dynamic`` (180x320, 24 frames, a few s) and ``demo`` (dynamic,
        180x320, 30 frames).

        Other families (180x320, 32 frames; ``tiny_<name>``: 64x96, 10 frames, for unit tests), see
        :data:`FAMILIES`: ``orbit``, ``walk``, ``pan``, ``tripod``, ``sideways``, ``planar``,
        ``planar_sideways``, ``walkers``.
        """
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

FAMILIES: dict[str, str] = {
    "orbit": "static room; the camera orbits the scene centre on a 2.2 m arc (42 deg) looking at it: large parallax",
    "walk": "static room; forward walk of 1.6 m along the optical axis with step bob, sway and a 4 deg yaw wobble",
    "pan": "static room; pure rotation: a 36 deg yaw sweep about a fixed centre (translation exactly 0)",
    "tripod": "fixed camera (identical poses: focal not observable) watching two walkers cross the floor",
    "sideways": "static room; 3 m straight sideways translation facing the far wall, no rotation",
    "planar": "planar room: the six textured planes of the room, no furniture; default camera path",
    "planar_sideways": "planar room; 3 m sideways translation 2.4 m from the far wall, which fills the whole view",
    "walkers": "two people-like walkers (about 0.46 x 1.7 m) striding across the floor; default camera path",
}
"""Preset name -> one-line description of each family unlike the tuned-on layout. Every name ``n`` is a
preset at 180x320 with 32 frames, and ``tiny_n`` the same motion at 64x96 with 10 frames (< 1 s)."""

_FAMILY_CONFIGS: dict[str, dict] = {
    "orbit": dict(camera_motion="orbit", camera_travel=2.2, num_moving=0),
    "walk": dict(camera_motion="walk", camera_travel=1.6, camera_yaw=4.0, camera_pitch=2.0, num_moving=0),
    "pan": dict(camera_motion="pan", camera_yaw=36.0, camera_pitch=2.0, num_moving=0),
    "tripod": dict(camera_motion="tripod", camera_yaw=0.0, camera_pitch=0.0, num_moving=2, mover="walker"),
    "sideways": dict(camera_motion="sideways", camera_travel=3.0, camera_yaw=0.0, camera_pitch=0.0, num_moving=0),
    "planar": dict(room="planar", num_moving=0),
    # the wall is 2.4 m away instead of the usual 5-6 m: texture_scale 2.5 keeps about as many features
    "planar_sideways": dict(
        camera_motion="sideways", room="planar", camera_travel=3.0, camera_yaw=0.0, camera_pitch=0.0, num_moving=0,
        texture_scale=2.5,
    ),
    "walkers": dict(num_moving=2, mover="walker"),
}
for _name, _fields in _FAMILY_CONFIGS.items():
    PRESETS[_name] = SceneConfig(height=180, width=320, num_frames=32, **_fields)
    PRESETS[f"tiny_{_name}"] = SceneConfig(height=64, width=96, num_frames=10, **_fields)
del _name, _fields
