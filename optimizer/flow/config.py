"""Configuration and result of the optical-flow stage; the frame pairs a clip gets."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from vid3d.formats.errors import InputError


BACKENDS = ("auto", "dis", "raft")
DIS_PRESETS = ("ultrafast", "fast", "medium")
DEFAULT_GAPS = (1, 2, 4, 6, 8)


@dataclass(frozen=True)
class FlowConfig:
    """How optical flow is computed.

    Attributes:
        gaps: frame gaps g of the pairs (i, i+g); every pair is computed in both directions.
        backend: ``"dis"`` (OpenCV DIS, no weights), ``"raft"`` (torchvision RAFT; only with local
            weights, otherwise an InputError) or ``"auto"`` (RAFT when available, else DIS).
        dis_preset: DIS speed/quality preset: ``ultrafast``, ``fast`` or ``medium``.
        fb_threshold: forward-backward inconsistency (px) above which a pixel is invalid.
    """

    gaps: tuple[int, ...] = DEFAULT_GAPS
    backend: str = "dis"
    dis_preset: str = "medium"
    fb_threshold: float = 1.0

    def __post_init__(self) -> None:
        gaps = tuple(int(g) for g in self.gaps)
        if not gaps or min(gaps) < 1 or len(set(gaps)) != len(gaps):
            raise InputError(f"--gaps must be distinct positive integers like 1,2,4,6,8, got {self.gaps}")
        object.__setattr__(self, "gaps", tuple(sorted(gaps)))
        if self.backend not in BACKENDS:
            raise InputError(f"flow backend must be one of {BACKENDS}, got {self.backend!r}")
        if self.dis_preset not in DIS_PRESETS:
            raise InputError(f"DIS preset must be one of {DIS_PRESETS}, got {self.dis_preset!r}")
        if not self.fb_threshold > 0:
            raise InputError(f"fb_threshold must be > 0 pixels, got {self.fb_threshold}")


    def replace(self, **changes) -> "FlowConfig":
        return dataclasses.replace(self, **changes)

    def min_frames(self) -> int:
        """Frames a clip needs so that every gap has at least one pair: ``max(gaps) + 1``."""
        return max(self.gaps) + 1


@dataclass(frozen=True)
class FlowSet:
    """Optical flow of every pair.

    Attributes:
        pairs: ``(P, 2)`` int32 ``(i, j)``: flow from frame i to frame j (both directions present).
        flow: ``(P, H, W, 2)`` float32, pixels at the working resolution: pixel x of frame i lands at
            ``x + flow`` in frame j.
        valid: ``(P, H, W)`` bool, forward-backward consistent and inside frame j.
        backend: the backend that produced it (``"dis:medium"``, ``"raft"``).
        report: timings and statistics (JSON-able).
    """

    pairs: np.ndarray
    flow: np.ndarray
    valid: np.ndarray
    backend: str
    report: dict = field(default_factory=dict)

    def index(self, i: int, j: int) -> int:
        """Row of pair (i, j) in ``pairs``; KeyError when absent."""
        hits = np.flatnonzero((self.pairs[:, 0] == i) & (self.pairs[:, 1] == j))
        if not len(hits):
            raise KeyError(f"no flow for pair ({i}, {j})")
        return int(hits[0])

    def get(self, i: int, j: int) -> tuple[np.ndarray, np.ndarray]:
        """``(flow (H, W, 2), valid (H, W))`` from frame i to frame j."""
        k = self.index(i, j)
        return self.flow[k], self.valid[k]

    def as_dict(self) -> dict[tuple[int, int], tuple[np.ndarray, np.ndarray]]:
        """``{(i, j): (flow (H, W, 2) f32, valid (H, W) bool)}`` (the training stage's input)."""
        return {(int(i), int(j)): (self.flow[k], self.valid[k]) for k, (i, j) in enumerate(self.pairs)}


def frame_pairs(num_frames: int, gaps: tuple[int, ...]) -> list[tuple[int, int]]:
    """Ordered pairs ``[(i, i+g), (i+g, i), ...]`` for every gap with ``i + g < num_frames``."""
    pairs = []
    for g in gaps:
        for i in range(num_frames - g):
            pairs += [(i, i + g), (i + g, i)]
    return pairs


def gaps_that_fit(num_frames: int, gaps: tuple[int, ...]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """``(kept, dropped)``: the gaps with at least one pair in a clip of ``num_frames`` (g < T), and
    the others. A short clip keeps the gaps it can hold; InputError only when none fits."""
    kept = tuple(g for g in gaps if g < num_frames)
    dropped = tuple(g for g in gaps if g >= num_frames)
    if not kept:
        raise InputError(f"the clip has {num_frames} frames but every flow gap ({','.join(map(str, gaps))}) needs "
                         f"at least {min(gaps) + 1}; use a longer clip, a smaller --stride, or --gaps 1")
    return kept, dropped


# ---------------------------------------------------------------------------------------------
# Pure helpers (fast path + slow reference twin)
# ---------------------------------------------------------------------------------------------
