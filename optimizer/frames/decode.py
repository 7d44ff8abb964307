"""Reading frames: video containers (PyAV, display-matrix rotation) and image folders (natural order)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from vid3d.formats.errors import InputError

from .config import FramesConfig

VIDEO_SUFFIXES = (".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv", ".3gp", ".ts")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
BLACK_LEVEL = 8  # a frame whose brightest pixel is <= this (of 255) carries no usable image content

def working_size(height: int, width: int, max_side: int) -> tuple[int, int]:
    """Working ``(H, W)`` for a ``height x width`` source: long side <= max_side, never upscaled.

    Each side is rounded on its own (no multiple-of-8/64 rounding), so the aspect ratio is kept as
    exactly as integer sizes allow (error < 1 pixel on the short side).
    """
    s = min(1.0, max_side / max(height, width))
    return max(1, int(round(height * s))), max(1, int(round(width * s)))


def natural_key(name: str) -> list:
    """Sort key that orders ``frame2.png`` before ``frame10.png``."""
    return [int(tok) if tok.isdigit() else tok.lower() for tok in re.split(r"(\d+)", name)]


def list_images(folder: Path) -> list[Path]:
    """Image files of ``folder`` in natural name order (hidden files ignored)."""
    files = [p for p in Path(folder).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")]
    return sorted(files, key=lambda p: natural_key(p.name))


def read_image_folder(folder: Path, config: FramesConfig, *, progress: bool):
    import cv2

    files = list_images(folder)
    if not files:
        raise InputError(f"folder {folder} holds no images ({', '.join(IMAGE_SUFFIXES)}); expected one image per frame")
    keep = [i for i in range(len(files)) if config.selects(i)][: config.max_frames]
    rgb, size = [], None
    for i in progress_bar(keep, progress, "frames"):
        im = cv2.imread(str(files[i]), cv2.IMREAD_COLOR)
        if im is None:
            raise InputError(f"image {files[i].name} (frame {i}) cannot be read")
        if size is None:
            size = im.shape[:2]
        elif im.shape[:2] != size:
            raise InputError(f"image {files[i].name} is {im.shape[1]}x{im.shape[0]}, the first is {size[1]}x{size[0]}; "
                             "all frames must have one size")
        rgb.append(np.ascontiguousarray(im[..., ::-1]))
    fps = 30.0
    return rgb, keep, [i / fps for i in keep], fps, 0


def read_video(path: Path, config: FramesConfig, *, progress: bool):
    import av

    try:
        container = av.open(str(path))
    except (av.error.InvalidDataError, av.error.FFmpegError, UnicodeDecodeError) as exc:
        raise InputError(f"{path} is not a readable video ({type(exc).__name__}); expected mp4, mov, avi, mkv or webm") from None
    with container:
        if not container.streams.video:
            raise InputError(f"{path} has no video stream; expected a video file or a folder of images")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        fps = float(rate) if rate else 30.0
        total = int(stream.frames or 0)
        rgb, indices, times = [], [], []
        rotation = 0
        index = -1
        frames_iter = container.decode(stream)
        bar = progress_bar(None, progress, "frames", total=total or None)
        while True:
            try:
                frame = next(frames_iter)
            except StopIteration:
                break
            except (av.error.FFmpegError, ValueError) as exc:
                raise InputError(f"{path}: frame {index + 1} cannot be decoded ({type(exc).__name__}: {exc}); "
                                 f"{len(rgb)} frames were read before it") from None
            index += 1
            if bar is not None:
                bar.update(1)
            if config.end is not None and index >= config.end:
                break
            if not config.selects(index):
                continue
            rotation = int(round((frame.rotation or 0) / 90.0)) * 90 % 360
            im = frame.to_ndarray(format="rgb24")
            if rotation:
                im = np.rot90(im, k=rotation // 90)  # display matrix: counter-clockwise degrees
            rgb.append(np.ascontiguousarray(im))
            indices.append(index)
            times.append(float(frame.time) if frame.time is not None else index / fps)
            if config.max_frames is not None and len(rgb) >= config.max_frames:
                break
        if bar is not None:
            bar.close()
    if index < 0:
        raise InputError(f"{path} contains zero decodable frames")
    return rgb, indices, times, fps, rotation


def progress_bar(items, enabled: bool, desc: str, total: int | None = None):
    if not enabled:
        return items
    from tqdm import tqdm

    if items is None:
        return tqdm(total=total, desc=desc, unit="frame", leave=False)
    return tqdm(items, desc=desc, unit="frame", leave=False)
