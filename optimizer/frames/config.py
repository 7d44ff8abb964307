"""Configuration and result of the frames stage (decode a video at the working resolution)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from vid3d.formats.conventions import scale_intrinsics
from vid3d.formats.errors import InputError

@dataclass(frozen=True)
class FramesConfig:
    """Which frames to take from the input and at which resolution.

    Attributes:
        max_side: long side of the working resolution in pixels (frames are only ever shrunk;
            a 1920x1080 clip becomes 512x288 with the default).
        stride: keep every ``stride``-th frame of the selected range.
        max_frames: keep at most this many frames (after the stride); None = all.
        start: first source frame index to consider (inclusive).
        end: source frame index to stop before (exclusive); None = until the end.
    """

    max_side: int = 512
    stride: int = 1
    max_frames: int | None = None
    start: int = 0
    end: int | None = None

    def __post_init__(self) -> None:
        if self.max_side < 16:
            raise InputError(f"--max-side must be >= 16 pixels, got {self.max_side}")
        if self.stride < 1:
            raise InputError(f"--stride must be >= 1, got {self.stride}")
        if self.max_frames is not None and self.max_frames < 2:
            raise InputError(f"--max-frames must be >= 2 (depth from motion needs two frames), got {self.max_frames}")
        if self.start < 0:
            raise InputError(f"--start must be >= 0, got {self.start}")
        if self.end is not None and self.end <= self.start:
            raise InputError(f"--end must be greater than --start ({self.start}), got {self.end}")


    def replace(self, **changes) -> "FramesConfig":
        return dataclasses.replace(self, **changes)

    def selects(self, index: int) -> bool:
        """Whether source frame ``index`` lies in [start, end) on the stride (max_frames aside)."""
        if index < self.start or (self.end is not None and index >= self.end):
            return False
        return (index - self.start) % self.stride == 0


@dataclass(frozen=True)
class Frames:
    """Decoded frames at the working resolution.

    Attributes:
        rgb: ``(T, H, W, 3)`` uint8.
        timestamps_s: ``(T,)`` float64 presentation time of each frame in the source, seconds.
        source_frames: ``(T,)`` int32 index of each frame in the source (decode order / sorted images).
        fps: frame rate of the kept frames (source fps / stride), > 0.
        source: the input path as given.
        source_size: ``(H0, W0)`` of the decoded (rotated) source frames.
        rotation: counter-clockwise degrees applied from the container's display matrix (0, 90, 180, 270).
        dropped_black: source frame indices dropped because they were all black.
    """

    rgb: np.ndarray
    timestamps_s: np.ndarray
    source_frames: np.ndarray
    fps: float
    source: str
    source_size: tuple[int, int]
    rotation: int = 0
    dropped_black: tuple[int, ...] = ()

    @property
    def num_frames(self) -> int:
        return int(self.rgb.shape[0])

    @property
    def size(self) -> tuple[int, int]:
        """Working ``(H, W)``."""
        return int(self.rgb.shape[1]), int(self.rgb.shape[2])

    @property
    def scale(self) -> tuple[float, float]:
        """``(sx, sy) = (W / W0, H / H0)``: source pixels to working pixels."""
        H, W = self.size
        return W / self.source_size[1], H / self.source_size[0]

    def scale_K(self, K_source: np.ndarray) -> np.ndarray:
        """Intrinsics ``(3, 3)`` of the (rotated) source resolution -> working resolution ``(3, 3)``."""
        sx, sy = self.scale
        return scale_intrinsics(np.asarray(K_source, dtype=np.float64), sx, sy)
