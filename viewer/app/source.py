"""The capture as the viewer reads it: an open bundle, a small LRU of decoded frames, ray caches.

Reads only the datasets the viewer draws (depth or prior, rgb, confidence, dynamic mask), one frame
at a time, under a lock (h5py handles are not safe to share between threads).
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from typing import NamedTuple

import numpy as np

from vid3d.formats.bundle import open_bundle
from vid3d.formats.errors import InputError
from vid3d.viewer.app.scene_data import pixel_rays


class FrameArrays(NamedTuple):
    """Decoded arrays of one frame: depth ``(H, W)`` f32, rgb ``(H, W, 3)`` u8, confidence ``(H, W)`` f32
    or None, dynamic ``(H, W)`` bool or None."""

    depth: np.ndarray
    rgb: np.ndarray
    confidence: np.ndarray | None
    dynamic: np.ndarray | None


class CaptureSource:
    """An opened capture. Raises BundleFormatError (one line) when ``path`` is not a valid bundle.

    Attributes: num_frames, height, width, fps, K ``(T, 3, 3)``, T_world_camera ``(T, 4, 4)``,
    timestamps_s ``(T,)``, attrs (root attributes), depth_name ("depth" or "prior"), note (a
    user-visible remark, e.g. that the prior depth is shown), has_confidence, has_dynamic.
    """

    def __init__(self, path: str | os.PathLike, *, cache_frames: int = 8) -> None:
        if not os.path.exists(path):
            raise InputError(f"no such bundle: {path}")
        self.path = path
        self.bundle = open_bundle(path)
        b = self.bundle
        self.num_frames, self.height, self.width, self.fps = b.num_frames, b.height, b.width, b.fps
        self.K, self.T_world_camera, self.timestamps_s = b.K, b.T_world_camera, b.timestamps_s
        self.attrs = dict(b.attrs)
        self.depth_name = b.depth_field()
        self.note = ("no refined depth (/depth/z) in this bundle: showing the prior depth (/depth/prior)"
                     if self.depth_name == "prior" else "")
        self.has_confidence = b.has("confidence") and self.depth_name == "depth"
        self.has_dynamic = b.has("dynamic_mask")
        self._lock = threading.Lock()
        self._cache: OrderedDict[int, FrameArrays] = OrderedDict()
        self._cache_frames = max(1, int(cache_frames))
        self._rays: dict[tuple[bytes, int], np.ndarray] = {}

    def _read(self, name: str, t: int) -> np.ndarray:
        return self.bundle.read(name, slice(t, t + 1))[0]

    def frame(self, t: int) -> FrameArrays:
        """Decoded arrays of frame ``t`` (cached)."""
        t = int(t)
        if not 0 <= t < self.num_frames:
            raise InputError(f"frame {t} out of range: the capture has {self.num_frames} frames")
        with self._lock:
            if t in self._cache:
                self._cache.move_to_end(t)
                return self._cache[t]
            arrays = FrameArrays(
                depth=self._read(self.depth_name, t),
                rgb=self._read("rgb", t),
                confidence=self._read("confidence", t) if self.has_confidence else None,
                dynamic=self._read("dynamic_mask", t) if self.has_dynamic else None,
            )
            self._cache[t] = arrays
            while len(self._cache) > self._cache_frames:
                self._cache.popitem(last=False)
            return arrays

    def rays(self, t: int, stride: int) -> np.ndarray:
        """Cached :func:`pixel_rays` ``(h, w, 3)`` of frame ``t``'s K at ``stride``."""
        K = np.ascontiguousarray(self.K[t], np.float64)
        key = (K.tobytes(), int(stride))
        if key not in self._rays:
            if len(self._rays) > 16:
                self._rays.clear()
            self._rays[key] = pixel_rays(self.height, self.width, K, int(stride))
        return self._rays[key]

    def thumbnail(self, t: int, max_side: int) -> np.ndarray:
        """RGB of frame ``t`` shrunk (by an integer step) to at most ``max_side`` pixels: ``(h, w, 3)`` u8."""
        with self._lock:
            rgb = self._cache[t].rgb if t in self._cache else self._read("rgb", t)
        step = max(1, int(np.ceil(max(self.height, self.width) / max(1, max_side))))
        return np.ascontiguousarray(rgb[::step, ::step])

    def median_depth(self, t: int = 0) -> float:
        """Median valid depth of frame ``t`` (1.0 if none is valid)."""
        d = self.frame(t).depth
        d = d[np.isfinite(d) & (d > 0)]
        return float(np.median(d)) if d.size else 1.0

    def close(self) -> None:
        with self._lock:
            self._cache.clear()
            self.bundle.close()
