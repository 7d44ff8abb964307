"""Stage 1 entry: ``run(path, config) -> Frames``; :func:`frames_from_array` for in-memory clips."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from vid3d.formats.errors import InputError

from .config import Frames, FramesConfig
from .decode import BLACK_LEVEL, read_image_folder, read_video, working_size

log = logging.getLogger("vid3d.frames")


def run(path: str | Path, config: FramesConfig = FramesConfig(), *, progress: bool = False) -> Frames:
    """Decode ``path`` (video file or image folder) into :class:`Frames` at the working resolution.

    Raises:
        InputError: missing path, not a video, zero or one usable frame, a frame that cannot be
            decoded (says which), frames of different sizes in a folder, all frames black.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"input {path} does not exist; expected a video file or a folder of images")
    if path.is_dir():
        rgb, indices, times, fps, rotation = read_image_folder(path, config, progress=progress)
    else:
        rgb, indices, times, fps, rotation = read_video(path, config, progress=progress)
    if len(rgb) == 0:
        raise InputError(f"{path}: no frame selected (start={config.start}, end={config.end}, stride={config.stride})")
    return _finish(rgb, indices, times, fps / config.stride, str(path), rotation, config)


def frames_from_array(rgb: np.ndarray, *, fps: float = 30.0, config: FramesConfig = FramesConfig(),
                      source: str = "array") -> Frames:
    """:class:`Frames` from an in-memory clip ``(N, H0, W0, 3)`` uint8 (selection and resizing as for files)."""
    rgb = np.asarray(rgb)
    if rgb.ndim != 4 or rgb.shape[-1] != 3 or rgb.dtype != np.uint8:
        raise InputError(f"frames must be (N, H, W, 3) uint8, got {rgb.shape} {rgb.dtype}")
    keep = [i for i in range(len(rgb)) if config.selects(i)][: config.max_frames]
    return _finish(list(rgb[keep]), keep, [i / fps for i in keep], fps / config.stride, source, 0, config)


def _finish(rgb: list[np.ndarray], indices: list[int], times: list[float], fps: float, source: str, rotation: int,
            config: FramesConfig) -> Frames:
    import cv2

    black = [k for k, im in enumerate(rgb) if int(im.max()) <= BLACK_LEVEL]
    if len(black) == len(rgb):
        raise InputError(f"{source}: all {len(rgb)} selected frames are black; nothing to reconstruct")
    dropped = tuple(int(indices[k]) for k in black)
    if black:
        log.warning("frames: dropped %d all-black frame(s): source frames %s", len(black), list(dropped))
        keep = [k for k in range(len(rgb)) if k not in set(black)]
        rgb, indices, times = [rgb[k] for k in keep], [indices[k] for k in keep], [times[k] for k in keep]
    if len(rgb) < 2:
        raise InputError(f"{source}: only one usable frame; depth from motion needs at least 2 frames")
    H0, W0 = rgb[0].shape[:2]
    H, W = working_size(H0, W0, config.max_side)
    if (H, W) != (H0, W0):
        rgb = [cv2.resize(im, (W, H), interpolation=cv2.INTER_AREA) for im in rgb]
    frames = Frames(
        rgb=np.ascontiguousarray(np.stack(rgb)),
        timestamps_s=np.asarray(times, dtype=np.float64),
        source_frames=np.asarray(indices, dtype=np.int32),
        fps=float(fps),
        source=source,
        source_size=(int(H0), int(W0)),
        rotation=int(rotation),
        dropped_black=dropped,
    )
    log.info("frames: %d frames (source %s..%s, stride %d) at %dx%d (source %dx%d%s), %.3g fps",
             frames.num_frames, indices[0], indices[-1], config.stride, W, H, W0, H0,
             f", rotated {rotation} deg" if rotation else "", frames.fps)
    return frames
