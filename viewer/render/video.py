"""H.264 video writing with PyAV (libx264), atomic: frames go to a temporary file beside the target,
which is renamed to the final name only when the writer closes cleanly.
"""

from __future__ import annotations

import os
import tempfile
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from vid3d.formats.errors import InputError, ShapeError

CODECS = ("libx264", "h264", "mpeg4")
"""Tried in order; the writer reports which one it used in ``codec``."""


def to_uint8(frame: Any) -> np.ndarray:
    """(H, W, 3) uint8 or float in [0, 1] (numpy or torch) -> (H, W, 3) uint8 numpy."""
    if hasattr(frame, "detach"):
        frame = frame.detach().cpu().numpy()
    frame = np.asarray(frame)
    if frame.dtype == np.uint8:
        return frame
    return (np.clip(frame, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


class VideoWriter:
    """``with VideoWriter(path, width=W, height=H, fps=30) as w: w.write(frame (H, W, 3))``.

    Width and height must be even (H.264 4:2:0). ``crf`` sets x264 quality (0 lossless .. 51, 18 ~
    visually lossless). The file appears under ``path`` only after a clean exit; on error the
    temporary file is removed. ``codec`` tells which encoder was used.
    """

    def __init__(self, path: str | os.PathLike, *, width: int, height: int, fps: float, crf: int = 18) -> None:
        if width < 2 or height < 2 or width % 2 or height % 2:
            raise InputError(f"video size: expected even width and height >= 2 (H.264 4:2:0), got {width}x{height}")
        if not (fps > 0 and np.isfinite(fps)):
            raise InputError(f"video fps: expected a positive number, got {fps!r}")
        self.path = Path(path)
        if self.path.suffix.lower() not in (".mp4", ".mov", ".mkv"):
            raise InputError(f"video output: expected a .mp4, .mov or .mkv name, got {self.path.name!r}")
        if not self.path.parent.exists():
            raise InputError(f"video output: folder {str(self.path.parent)!r} does not exist")
        self.width, self.height, self.fps, self.crf = int(width), int(height), float(fps), int(crf)
        self.codec: str | None = None
        self.frames_written = 0
        self._container = None
        self._stream = None
        self._tmp: str | None = None

    def __enter__(self) -> "VideoWriter":
        import av

        fd, self._tmp = tempfile.mkstemp(prefix=f".{self.path.stem}.", suffix=f".part{self.path.suffix}", dir=self.path.parent)
        os.close(fd)
        rate = Fraction(self.fps).limit_denominator(1001)
        last_err: Exception | None = None
        for codec in CODECS:
            container = av.open(self._tmp, mode="w")
            try:
                stream = container.add_stream(codec, rate=rate)
                stream.width, stream.height, stream.pix_fmt = self.width, self.height, "yuv420p"
                if codec in ("libx264", "h264"):
                    stream.options = {"crf": str(self.crf), "preset": "medium"}
                stream.codec_context.open()  # fail here (not on the first frame) if the codec is missing
            except Exception as exc:  # codec not available in this build: try the next
                last_err = exc
                container.close()
                continue
            self._container, self._stream, self.codec = container, stream, codec
            return self
        self._cleanup()
        raise InputError(f"video output: no usable encoder among {CODECS} in this PyAV build ({last_err})")

    def write(self, frame: Any) -> None:
        """Append one frame (H, W, 3) uint8 or float in [0, 1]."""
        import av

        img = to_uint8(frame)
        if img.shape != (self.height, self.width, 3):
            raise ShapeError(f"video frame: expected ({self.height}, {self.width}, 3), got {img.shape}")
        vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")
        for packet in self._stream.encode(vf):
            self._container.mux(packet)
        self.frames_written += 1

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None:
                for packet in self._stream.encode():
                    self._container.mux(packet)
            self._container.close()
        except BaseException:
            self._cleanup()
            raise
        if exc_type is None:
            os.replace(self._tmp, self.path)
            self._tmp = None
        else:
            self._cleanup()

    def _cleanup(self) -> None:
        if self._tmp and os.path.exists(self._tmp):
            os.remove(self._tmp)
        self._tmp = None


def read_video(path: str | os.PathLike) -> tuple[np.ndarray, str]:
    """Decode a whole video: ``(frames (T, H, W, 3) uint8, codec name)``. For tests and checks."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        codec = stream.codec_context.name
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
    return np.stack(frames) if frames else np.zeros((0, 0, 0, 3), np.uint8), codec
