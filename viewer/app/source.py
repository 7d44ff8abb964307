"""The capture as the viewer reads it: an open bundle, a small LRU of decoded frames, a ray cache.

Frames are the reader's :class:`~vid3d.formats.bundle.Frame`, read with ``Bundle.frame(t, fields=...)``
holding only the datasets the viewer draws (rgb, the depth field, confidence, dynamic mask), one frame
at a time, under a lock (h5py handles are not safe to share between threads). State at the edge: the
point math itself is the pure :mod:`vid3d.viewer.points`.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict

import numpy as np

from vid3d.formats.bundle import Frame, open_bundle
from vid3d.formats.errors import InputError
from vid3d.viewer.points import frame_depth, pixel_rays, point_fields


class CaptureSource:
    """An opened capture. Raises BundleFormatError (one line) when ``path`` is not a valid bundle.

    Attributes: num_frames, height, width, fps, K ``(T, 3, 3)``, T_world_camera ``(T, 4, 4)``,
    timestamps_s ``(T,)``, attrs (root attributes), depth_field (``Bundle.depth_field()``: "depth" or
    "prior"), fields (the datasets read per frame), note (a user-visible remark, e.g. that the prior
    depth is shown), has_confidence, has_dynamic.
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
        self.depth_field = b.depth_field()
        self.note = ("no refined depth (/depth/z) in this bundle: showing the prior depth (/depth/prior)"
                     if self.depth_field == "prior" else "")
        self.has_confidence = b.has("confidence") and self.depth_field == "depth"
        self.has_dynamic = b.has("dynamic_mask")
        self.fields = point_fields(self.depth_field, confidence=self.has_confidence, dynamic=self.has_dynamic)
        self._lock = threading.Lock()
        self._cache: OrderedDict[int, Frame] = OrderedDict()
        self._cache_frames = max(1, int(cache_frames))
        self._rays: dict[tuple[bytes, int], np.ndarray] = {}

    def frame(self, t: int) -> Frame:
        """Frame ``t`` with the datasets in :attr:`fields` (the others None), cached."""
        t = int(t)
        if not 0 <= t < self.num_frames:
            raise InputError(f"frame {t} out of range: the capture has {self.num_frames} frames")
        with self._lock:
            if t in self._cache:
                self._cache.move_to_end(t)
                return self._cache[t]
            frame = self.bundle.frame(t, fields=self.fields)
            self._cache[t] = frame
            while len(self._cache) > self._cache_frames:
                self._cache.popitem(last=False)
            return frame

    def rays(self, t: int, stride: int) -> np.ndarray:
        """Cached :func:`~vid3d.viewer.points.pixel_rays` ``(h, w, 3)`` of frame ``t``'s K at ``stride``."""
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
            rgb = self._cache[t].rgb if t in self._cache else self.bundle.frame(t, fields=("rgb",)).rgb
        step = max(1, int(np.ceil(max(self.height, self.width) / max(1, max_side))))
        return np.ascontiguousarray(rgb[::step, ::step])

    def median_depth(self, t: int = 0) -> float:
        """Median valid depth of frame ``t`` (1.0 if none is valid)."""
        d = frame_depth(self.frame(t), self.depth_field)
        d = d[np.isfinite(d) & (d > 0)]
        return float(np.median(d)) if d.size else 1.0

    def clear_cache(self) -> None:
        """Forget the decoded frames (the next reads go to the file: benchmarks time cold reads)."""
        with self._lock:
            self._cache.clear()

    def close(self) -> None:
        with self._lock:
            self._cache.clear()
            self.bundle.close()
