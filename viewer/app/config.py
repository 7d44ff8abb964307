"""Viewer configuration: frozen dataclasses with named presets (built by the CLI, never mutated).

``PointFilter`` (defined in :mod:`vid3d.viewer.points.filter`, shared with the renderer) groups the knobs
that turn one depth frame into points (decimation, confidence, depth range, outliers); ``ViewerConfig``
holds everything the session needs. The GUI asks the session for a *copy* of the filter
(``dataclasses.replace``); the config itself stays as parsed.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Literal

from vid3d.formats.errors import InputError
from vid3d.runtime.device import DEVICES
from vid3d.viewer.points.filter import PointFilter

DisplayMode = Literal["current", "static_dynamic", "accumulated"]
DISPLAY_MODES: dict[str, str] = {
    "current": "Current frame only",
    "static_dynamic": "Static background + dynamic",
    "accumulated": "All frames (stride)",
}

__all__ = ["DISPLAY_MODES", "VIEWER_PRESETS", "DisplayMode", "PointFilter", "ViewerConfig", "free_port"]


@dataclass(frozen=True)
class ViewerConfig:
    """Everything ``vid3d view`` needs besides the bundle path.

    Fields:
        host, port: where to serve (port: the next free one is taken if busy).
        filter: per-frame point filter (see :class:`PointFilter`).
        mode: initial display mode, one of :data:`DISPLAY_MODES`.
        accumulate_stride: in "accumulated" mode, show every k-th frame up to the current one.
        accumulate_max_points: point budget of all accumulated frames together.
        background_max_points: point budget of the fused static background.
        point_size: world-space point size; None = from the scene (median depth * stride / focal).
        precision: wire precision of points. Per-frame points are sent in camera coordinates under
            the camera's pose, so float16 keeps the depth's own precision (the bundle stores f16) at
            9 B/point instead of 15; but numpy's f32 -> f16 cast costs ~2x the rest of a scrub step on
            the CPU (benchmarks/viewer_stream.py), so float32 is the default and "fast" uses float16.
        fps: playback rate; None = the bundle's fps.
        loop: playback wraps around at the end.
        follow_camera: start in "follow the recorded camera" mode.
        show_frustums: draw camera frustums (wireframes, time-coloured) and the trajectory.
        frustum_images: put each frame's image on its frustum (off by default: looking through a
            recorded camera, the image planes of it and its neighbours cover the view).
        max_frustums: most frustums drawn (evenly spaced over time).
        thumbnail_px: longest side of the frustum images.
        device: "auto" (CUDA when present), "cpu" or "cuda" for unprojection and effects.
        effect_max_side: longest side of effect renders when the camera rests.
        effect_moving_scale: resolution factor of effect renders while the camera moves.
    """

    host: str = "127.0.0.1"
    port: int = 8080
    filter: PointFilter = field(default_factory=PointFilter)
    mode: DisplayMode = "current"
    accumulate_stride: int = 5
    accumulate_max_points: int = 1_000_000
    background_max_points: int = 1_000_000
    point_size: float | None = None
    precision: Literal["float16", "float32"] = "float32"
    fps: float | None = None
    loop: bool = True
    follow_camera: bool = False
    show_frustums: bool = True
    frustum_images: bool = False
    max_frustums: int = 120
    thumbnail_px: int = 96
    device: str = "auto"
    effect_max_side: int = 640
    effect_moving_scale: float = 0.4

    def __post_init__(self) -> None:
        if self.mode not in DISPLAY_MODES:
            raise InputError(f"mode must be one of {list(DISPLAY_MODES)}, got {self.mode!r}")
        if not 0 <= int(self.port) < 65536:
            raise InputError(f"port must be in [0, 65535], got {self.port!r}")
        if self.accumulate_stride < 1:
            raise InputError(f"accumulate_stride must be >= 1, got {self.accumulate_stride!r}")
        if self.precision not in ("float16", "float32"):
            raise InputError(f"precision must be 'float16' or 'float32', got {self.precision!r}")
        if self.fps is not None and not self.fps > 0:
            raise InputError(f"fps must be > 0, got {self.fps!r}")
        if self.point_size is not None and not self.point_size > 0:
            raise InputError(f"point_size must be > 0, got {self.point_size!r}")
        if self.device not in DEVICES:
            raise InputError(f"device must be one of {list(DEVICES)}, got {self.device!r}")
        if not 0.05 <= self.effect_moving_scale <= 1.0:
            raise InputError(f"effect_moving_scale must be in [0.05, 1], got {self.effect_moving_scale!r}")

    @staticmethod
    def preset(name: str, **overrides) -> ViewerConfig:
        """A named preset (``fast``, ``standard``, ``full``) with optional field overrides."""
        if name not in VIEWER_PRESETS:
            raise InputError(f"unknown viewer preset {name!r}; expected one of {list(VIEWER_PRESETS)}")
        return dataclasses.replace(VIEWER_PRESETS[name], **overrides)


VIEWER_PRESETS: dict[str, ViewerConfig] = {
    # Remote machine / slow link: a quarter of the pixels per axis, 150k points a frame.
    "fast": ViewerConfig(filter=PointFilter(stride=4, max_points=150_000), background_max_points=400_000,
                         accumulate_max_points=400_000, max_frustums=60, precision="float16"),
    "standard": ViewerConfig(),
    # Local, fast GPU and link: every pixel, up to 2M points a frame.
    "full": ViewerConfig(filter=PointFilter(stride=1, max_points=2_000_000), background_max_points=3_000_000,
                         accumulate_max_points=3_000_000),
}


def free_port(host: str = "127.0.0.1", *, tries: int = 100) -> int:
    """A port that is free on ``host`` right now, drawn from 20000-60000 (tests and benchmarks serve there)."""
    import random
    import socket

    for _ in range(tries):
        port = random.randint(20000, 60000)
        with socket.socket() as s:
            try:
                s.bind((host, port))
                return port
            except OSError:
                continue
    raise RuntimeError(f"no free port on {host} after {tries} tries")
