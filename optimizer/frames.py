"""Stage 1: frames. Decode a video file or an image folder into RGB frames at the working resolution.

    video / image folder -> select (start, end, stride, max_frames) -> rotate (display matrix)
      -> drop all-black frames -> resize (long side <= max_side, aspect kept, never upscale) -> Frames

The working size keeps the aspect ratio as exactly as integers allow (each side rounded on its own,
no multiple-of-64 rounding), and every intrinsics matrix of the source maps to the working
resolution with :func:`vid3d.formats.conventions.scale_intrinsics` (``Frames.scale_K``).
"""

from __future__ import annotations

import dataclasses
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vid3d.formats.conventions import scale_intrinsics
from vid3d.formats.errors import InputError

log = logging.getLogger("vid3d.frames")

VIDEO_SUFFIXES = (".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv", ".3gp", ".ts")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
BLACK_LEVEL = 8  # a frame whose brightest pixel is <= this (of 255) carries no usable image content


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

    @staticmethod
    def preset(name: str) -> "FramesConfig":
        """``draft`` (long side 384), ``standard`` (512) or ``best`` (512)."""
        presets = {"draft": FramesConfig(max_side=384), "standard": FramesConfig(), "best": FramesConfig()}
        if name not in presets:
            raise InputError(f"unknown FramesConfig preset {name!r}; expected one of {sorted(presets)}")
        return presets[name]

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


def load_frames(path: str | Path, config: FramesConfig = FramesConfig(), *, progress: bool = False) -> Frames:
    """Decode ``path`` (video file or image folder) into :class:`Frames` at the working resolution.

    Raises:
        InputError: missing path, not a video, zero or one usable frame, a frame that cannot be
            decoded (says which), frames of different sizes in a folder, all frames black.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"input {path} does not exist; expected a video file or a folder of images")
    if path.is_dir():
        rgb, indices, times, fps, rotation = _read_image_folder(path, config, progress=progress)
    else:
        rgb, indices, times, fps, rotation = _read_video(path, config, progress=progress)
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


def _read_image_folder(folder: Path, config: FramesConfig, *, progress: bool):
    import cv2

    files = list_images(folder)
    if not files:
        raise InputError(f"folder {folder} holds no images ({', '.join(IMAGE_SUFFIXES)}); expected one image per frame")
    keep = [i for i in range(len(files)) if config.selects(i)][: config.max_frames]
    rgb, size = [], None
    for i in _progress(keep, progress, "frames"):
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


def _read_video(path: Path, config: FramesConfig, *, progress: bool):
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
        bar = _progress(None, progress, "frames", total=total or None)
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


def _progress(items, enabled: bool, desc: str, total: int | None = None):
    if not enabled:
        return items
    from tqdm import tqdm

    if items is None:
        return tqdm(total=total, desc=desc, unit="frame", leave=False)
    return tqdm(items, desc=desc, unit="frame", leave=False)
