"""Stage 1, frames: decode a video file or an image folder into RGB frames at the working resolution.

    video / image folder -> select (start, end, stride, max_frames) -> rotate (display matrix)
      -> drop all-black frames -> resize (long side <= max_side, aspect kept, never upscale) -> Frames

Config :class:`FramesConfig`, result :class:`Frames`, entry :func:`run`. The working size keeps the
aspect ratio as exactly as integers allow (each side rounded on its own, no multiple-of-64
rounding), and every intrinsics matrix of the source maps to the working resolution with
:func:`vid3d.formats.conventions.scale_intrinsics` (``Frames.scale_K``).
"""

from .config import Frames, FramesConfig
from .decode import IMAGE_SUFFIXES, VIDEO_SUFFIXES, list_images, natural_key, working_size
from .stage import frames_from_array, run

__all__ = ["IMAGE_SUFFIXES", "VIDEO_SUFFIXES", "Frames", "FramesConfig", "frames_from_array", "list_images",
           "natural_key", "run", "working_size"]
