"""Configuration and result of the motion-mask stage."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from vid3d.formats.errors import InputError

MAD_TO_SIGMA = 1.4826



@dataclass(frozen=True)
class MaskConfig:
    """How motion masks are decided.

    Attributes:
        k_sigma: a residual above ``median + k_sigma * robust sigma`` of its pair is "moving".
        floor_px: lower bound of the residual threshold in pixels (the flow's own noise level; the
            same 1 px as the forward-backward validity test).
        min_texture: pixels whose image structure (:func:`.texture.structure`, grey levels per pixel)
            is below this have no flow residual after poses: their moving score is filled in from the
            textured pixels around them (blank walls and sky are not "moving"). 0 = off.
        vote: fraction of a pixel's valid pairs that must call it moving (0.4: on HoloLens, a static
            real clip, 0.3 flags 5.7 % of the pixels and 0.4 1.9 %; synthetic movers' IoU 0.77 -> 0.73).
        fill_max_area_fraction: an unknown region (textureless, or no valid flow) larger than this
            fraction of the frame is static whatever the scores on its rim (``vote.fill_missing``).
        prepose_vote: the vote of the masks before poses (lower: they only keep SfM features off movers,
            recall matters more than precision).
        temporal_radius: frames on each side averaged (after flow warping) into a frame's score.
        min_area_fraction: connected moving regions smaller than this fraction of the image are dropped.
        max_points: correspondences sampled per pair for the RANSAC fits.
        prepose_dilate_fraction: the pre-pose masks are dilated by this fraction of the image
            diagonal (they only keep SfM features off movers: recall matters more than precision).
        segmenter: ``"none"`` or ``"auto"`` (a learned segmenter joins when its weights are local).
        seed: RANSAC sampling seed.
        user_masks: a folder of user masks (one image per frame, non-zero = moving) that replace the
            geometric masks before and after poses; None = decide them from the flow.
    """

    k_sigma: float = 3.0
    floor_px: float = 1.0
    min_texture: float = 1.0
    vote: float = 0.4
    fill_max_area_fraction: float = 1 / 3
    prepose_vote: float = 0.3
    temporal_radius: int = 1
    min_area_fraction: float = 0.002
    max_points: int = 1500
    prepose_dilate_fraction: float = 0.01
    segmenter: str = "none"
    seed: int = 0
    user_masks: str | None = None

    def __post_init__(self) -> None:
        if not 0 < self.fill_max_area_fraction <= 1:
            raise InputError(f"MaskConfig.fill_max_area_fraction must be in (0, 1], got {self.fill_max_area_fraction}")
        if not self.k_sigma > 0 or not self.floor_px > 0:
            raise InputError(f"MaskConfig: k_sigma and floor_px must be > 0, got {self.k_sigma}, {self.floor_px}")
        if not (0 < self.vote < 1 and 0 < self.prepose_vote < 1):
            raise InputError(f"MaskConfig.vote and prepose_vote must be in (0, 1), got {self.vote}, {self.prepose_vote}")
        if self.segmenter not in ("none", "auto"):
            raise InputError(f"MaskConfig.segmenter must be 'none' or 'auto', got {self.segmenter!r}")

    def replace(self, **changes) -> "MaskConfig":
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class MaskResult:
    """Motion masks of a clip.

    Attributes:
        masks: ``(T, H, W)`` bool, True = moving.
        method: how they were made (``epipolar``, ``reprojection``, ``user``, plus ``+learned``).
        report: what was decided (JSON-able).
    """

    masks: np.ndarray
    method: str
    report: dict = dataclasses.field(default_factory=dict)
