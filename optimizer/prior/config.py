"""Configuration and result of the depth-prior stage."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vid3d.formats.errors import InputError

BACKENDS = ("auto", "geometric", "depth_anything", "midas", "pydnet")


@dataclass(frozen=True)
class PriorConfig:
    """How the initial per-frame depth is made.

    Attributes:
        backend: ``"geometric"`` (plane sweep over neighbouring frames with the SfM poses; weight-free,
            offline), ``"depth_anything"`` / ``"midas"`` (learned monocular, need cached weights),
            ``"pydnet"`` (PyDNet v2 from its TFLite file: ``weights``, ``$VID3D_MODELS`` or the user cache) or
            ``"auto"`` (the best available: depth_anything > midas > pydnet > geometric).
        num_planes: depth hypotheses of the plane sweep, uniform in inverse depth.
        max_sources: neighbouring frames compared with each reference frame.
        max_gap: neighbours are taken within +-max_gap frames.
        target_baseline: preferred baseline / median scene depth of a neighbour (chosen closest in log).
        patch_radius: ZNCC window radius (window = 2r+1 squared).
        exact_zncc: exact ZNCC per plane (5 box filters) instead of the fast approximation (source
            normalised once before warping, 1 box filter per plane).
        top_k: photo-consistency costs of the k best sources are averaged (robust to occlusion).
        min_confidence: pixels below this confidence (and masked moving pixels) are filled edge-aware.
        consistency_rel_tol: relative depth disagreement allowed by the multi-view consistency check.
        depth_margin: near/far bounds = SfM point depth percentiles (2, 98) divided/multiplied by this.
        fill_sigma_color: colour scale (0-255) of the edge-aware (joint bilateral) fill.
        fill_iterations: propagation sweeps of the fill (each sweep: dilations 16, 8, 4, 2, 1).
        allow_download: learned backends may download weights (never in tests).
        hybrid: a learned prior is combined with the plane sweep: geometric where the sweep is
            confident, aligned learned elsewhere (False: learned everywhere, aligned the same way).
        movers_from_contact: the geometric prior gives moving regions the depth of the ground where they
            stand (:mod:`.movers`) instead of the filled-in background behind them.
        weights: explicit path of the pydnet weights (a ``pydnet*.tflite`` file, a folder holding one, or
            a ``.npz`` saved by ``PyDNet.save``); None: looked for in ``$VID3D_MODELS`` and the user cache.
    """

    backend: str = "auto"
    num_planes: int = 64
    max_sources: int = 4
    max_gap: int = 8
    target_baseline: float = 0.08
    patch_radius: int = 2
    exact_zncc: bool = False
    top_k: int = 2
    min_confidence: float = 0.35
    consistency_rel_tol: float = 0.05
    depth_margin: float = 1.3
    fill_sigma_color: float = 12.0
    fill_iterations: int = 2
    allow_download: bool = False
    weights: str | None = None
    hybrid: bool = True
    movers_from_contact: bool = True

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise InputError(f"PriorConfig.backend must be one of {BACKENDS}, got {self.backend!r}")
        if self.num_planes < 4:
            raise InputError(f"PriorConfig.num_planes must be >= 4, got {self.num_planes}")
        if self.max_sources < 1 or self.top_k < 1:
            raise InputError(f"PriorConfig.max_sources and top_k must be >= 1, got {self.max_sources}, {self.top_k}")
        if self.weights is not None and not Path(self.weights).expanduser().exists():
            raise InputError(f"depth prior weights {self.weights} do not exist (give a PyDNet .tflite file)")

    def replace(self, **changes: Any) -> "PriorConfig":
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class PriorResult:
    """Initial depth of every frame.

    Attributes:
        depth: (T, H, W) float32 z-depth in the SfM units (same as the poses), > 0 everywhere.
        confidence: (T, H, W) float32 in [0, 1] (0 = filled in / moving / unreliable).
        backend: the backend that produced it.
        report: what happened (depth range, scale alignment, fraction filled, seconds) -- JSON-able.
    """

    depth: np.ndarray
    confidence: np.ndarray
    backend: str
    report: dict = field(default_factory=dict)
