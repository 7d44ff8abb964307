"""``ClipShape``: the frame count and image size of anything holding ``rgb`` ``(T, H, W, 3)``."""

from __future__ import annotations


class ClipShape:
    """Mixin for clip-like dataclasses with an ``rgb`` field ``(T, H, W, 3)``: ``num_frames``,
    ``height`` and ``width`` read off it."""

    rgb: object

    @property
    def num_frames(self) -> int:
        return int(self.rgb.shape[0])

    @property
    def height(self) -> int:
        return int(self.rgb.shape[1])

    @property
    def width(self) -> int:
        return int(self.rgb.shape[2])
