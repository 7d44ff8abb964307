"""Inputs and outputs of training (numpy only; the clip at training resolution is in :mod:`.prepare`).

``TrainInputs`` is checked at the public boundary (:meth:`TrainInputs.validate`): wrong shapes or
values raise :class:`ShapeError` / :class:`InputError` with a one-line message.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vid3d.formats.conventions import rigidity_error
from vid3d.formats.errors import InputError, ShapeError

Flows = dict[tuple[int, int], tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class TrainInputs:
    """Everything training needs, at full (stored) resolution.

    - ``rgb`` (T, H, W, 3) uint8
    - ``K`` (3, 3) pixels of this resolution (centres at +0.5)
    - ``T_world_camera`` (T, 4, 4) camera-to-world, OpenCV axes, same units as ``prior_depth``
    - ``prior_depth`` (T, H, W) float32 z-depth (> 0 where known; <= 0 / non-finite = unknown)
    - ``flows``: ``(i, j) -> (flow (H, W, 2) float32 from i to j, valid (H, W) bool)``; forward pairs
      (i < j) are trained on, gaps from ``TrainConfig.gaps``
    - ``dynamic_mask`` (T, H, W) bool, True = moving, or None
    - ``prior_confidence`` (T, H, W) float32 in [0, 1], or None
    - ``prior_backend``: what made the prior (``geometric`` or a learned network's name); it picks
      :meth:`TrainConfig.prior_terms`
    - ``prior_weights``: path of the prior network's weights (e.g. the PyDNet ``.tflite``), or None;
      with them training can fine-tune that network (:meth:`TrainConfig.depth_model_for`)
    """

    rgb: np.ndarray
    K: np.ndarray
    T_world_camera: np.ndarray
    prior_depth: np.ndarray
    flows: Flows
    dynamic_mask: np.ndarray | None = None
    prior_confidence: np.ndarray | None = None
    prior_backend: str = "geometric"
    prior_weights: str | None = None

    @property
    def num_frames(self) -> int:
        return int(self.rgb.shape[0])

    def validate(self) -> None:
        """Raise ShapeError / InputError when any array does not match the documented shapes."""
        rgb = np.asarray(self.rgb)
        if rgb.ndim != 4 or rgb.shape[-1] != 3 or rgb.dtype != np.uint8:
            raise ShapeError(f"rgb must be uint8 (T, H, W, 3), got {rgb.dtype} {rgb.shape}")
        T, H, W = rgb.shape[:3]
        if T < 2:
            raise InputError(f"training needs at least 2 frames, got {T}")
        if np.shape(self.K) != (3, 3):
            raise ShapeError(f"K must be (3, 3), got {np.shape(self.K)}")
        if np.shape(self.T_world_camera) != (T, 4, 4):
            raise ShapeError(f"T_world_camera must be ({T}, 4, 4), got {np.shape(self.T_world_camera)}")
        if not np.all(np.isfinite(self.T_world_camera)) or rigidity_error(self.T_world_camera).max() > 1e-3:
            raise InputError("T_world_camera must hold finite rigid camera-to-world transforms")
        if np.shape(self.prior_depth) != (T, H, W):
            raise ShapeError(f"prior_depth must be ({T}, {H}, {W}), got {np.shape(self.prior_depth)}")
        good = np.isfinite(self.prior_depth) & (self.prior_depth > 0)
        if good.reshape(T, -1).mean(axis=1).min() < 0.05:
            raise InputError("prior_depth has a frame with fewer than 5% positive finite pixels")
        for name in ("dynamic_mask", "prior_confidence"):
            a = getattr(self, name)
            if a is not None and np.shape(a) != (T, H, W):
                raise ShapeError(f"{name} must be ({T}, {H}, {W}) or None, got {np.shape(a)}")
        if self.prior_weights is not None and not Path(self.prior_weights).expanduser().is_file():
            raise InputError(f"prior_weights {self.prior_weights} is not a file (the prior network's weights)")
        if not isinstance(self.flows, dict) or not self.flows:
            raise InputError("flows must be a non-empty dict (i, j) -> (flow (H, W, 2), valid (H, W))")
        for (i, j), fv in self.flows.items():
            if not (0 <= i < T and 0 <= j < T and i != j):
                raise InputError(f"flow key ({i}, {j}) is not a pair of distinct frames in 0..{T - 1}")
            if len(fv) != 2 or np.shape(fv[0]) != (H, W, 2) or np.shape(fv[1]) != (H, W):
                raise ShapeError(f"flows[({i}, {j})] must be (flow ({H}, {W}, 2), valid ({H}, {W})), "
                                 f"got {[np.shape(a) for a in fv]}")

    def fingerprint(self) -> str:
        """A short hash of the inputs (for checkpoints: resume only on the same clip)."""
        h = zlib.crc32(np.ascontiguousarray(self.T_world_camera, dtype=np.float32).tobytes())
        h = zlib.crc32(np.ascontiguousarray(self.K, dtype=np.float32).tobytes(), h)
        h = zlib.crc32(np.ascontiguousarray(self.prior_depth[:, ::7, ::7], dtype=np.float32).tobytes(), h)
        h = zlib.crc32(np.ascontiguousarray(self.rgb[:, ::7, ::7]).tobytes(), h)
        h = zlib.crc32(repr(sorted(self.flows)).encode(), h)
        h = zlib.crc32(self.prior_backend.encode(), h)
        if self.prior_weights is not None:  # the weights' content, not their path
            h = zlib.crc32(Path(self.prior_weights).expanduser().read_bytes(), h)
        return f"{h:08x}-{self.rgb.shape}"


@dataclass(frozen=True)
class TrainResult:
    """Output of training, full resolution.

    - ``depth`` (T, H, W) float32 fused refined z-depth
    - ``confidence`` (T, H, W) float32 in [0, 1] from flow/depth agreement across frames
    - ``scene_flow`` (T, H, W, 3) float32 world displacement to frame t+1 (last frame 0)
    - ``losses``: name -> (steps,) float32 per-step values (``total``, ``flow``, ``disp``, ...)
    - ``timings``: stage -> seconds; ``report``: JSON-able summary (device, steps, scales, ...)
    """

    depth: np.ndarray
    confidence: np.ndarray
    scene_flow: np.ndarray
    losses: dict[str, np.ndarray]
    timings: dict[str, float]
    report: dict = field(default_factory=dict)
