"""``OptimizeConfig``: every stage's config in one frozen dataclass, built from one presets table.

:data:`PRESETS` holds ``draft``, ``standard`` and ``best``; each entry names every stage's config
(a field left out is that config's default, which is the ``standard`` value). The CLI starts from
``OptimizeConfig.preset(name)`` and applies the user's options with :meth:`OptimizeConfig.replace`
and the stage configs' own ``replace``; no stage reads options from anywhere else.

What the prior changes in training is part of the training config: ``TrainConfig.geometric_prior``,
``hybrid_prior`` and ``learned_prior`` (:class:`~vid3d.optimizer.train.config.PriorTerms`); the training
stage picks one by the backend that made the prior.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from vid3d.formats.bundle.schema import CODECS
from vid3d.formats.errors import InputError
from vid3d.optimizer.flow.config import FlowConfig
from vid3d.optimizer.frames.config import FramesConfig
from vid3d.optimizer.masks.config import MaskConfig
from vid3d.optimizer.prior.config import PriorConfig
from vid3d.optimizer.sfm.config import SfmConfig
from vid3d.optimizer.train.config import TrainConfig
from vid3d.runtime.device import DEVICES

STAGES = ("frontend", "all")
DEFAULT_PRESET = "standard"


@dataclass(frozen=True)
class OptimizeConfig:
    """All knobs of ``vid3d optimize``.

    Attributes:
        label: the preset this config started from (``draft``, ``standard``, ``best``); a label
            only, recorded in the bundle: the stage configs below are what runs.
        stages: ``frontend`` (frames, flow, masks, poses, prior -> bundle without /depth/z) or
            ``all`` (plus consistent-depth training).
        frames: :class:`~vid3d.optimizer.frames.FramesConfig` (resolution, stride, range).
        flow: :class:`~vid3d.optimizer.flow.FlowConfig` (gaps, backend).
        masks: :class:`~vid3d.optimizer.masks.MaskConfig` (motion-mask decisions, user masks).
        sfm: :class:`~vid3d.optimizer.sfm.SfmConfig` (camera poses + intrinsics).
        prior: :class:`~vid3d.optimizer.prior.PriorConfig` (initial depth, its backend).
        train: :class:`~vid3d.optimizer.train.TrainConfig` (consistency training; its gaps are
            limited to the flow gaps by :meth:`train_gaps`).
        device: ``auto``, ``cpu`` or ``cuda`` for every torch stage.
        codec: bundle compression (``gzip`` by default).
        compact: write the bundle for sharing (storage ``compact``: JPEG colour, coarser depth and
            scene-flow steps; see :data:`vid3d.formats.bundle.STORAGE_PRESETS`); no stage depends on it.
    """

    label: str = DEFAULT_PRESET
    stages: str = "all"
    frames: FramesConfig = field(default_factory=FramesConfig)
    flow: FlowConfig = field(default_factory=FlowConfig)
    masks: MaskConfig = field(default_factory=MaskConfig)
    sfm: SfmConfig = field(default_factory=SfmConfig)
    prior: PriorConfig = field(default_factory=PriorConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    device: str = "auto"
    codec: str = "gzip"
    compact: bool = False

    def __post_init__(self) -> None:
        if self.stages not in STAGES:
            raise InputError(f"--stages must be one of {', '.join(STAGES)}, got {self.stages!r}")
        if self.device not in DEVICES:
            raise InputError(f"--device must be one of {', '.join(DEVICES)}, got {self.device!r}")
        if self.codec not in CODECS:
            raise InputError(f"--codec must be one of {', '.join(CODECS)}, got {self.codec!r}")

    @staticmethod
    def preset(name: str, **changes: Any) -> "OptimizeConfig":
        """The :data:`PRESETS` entry ``name``, then ``changes`` applied (fields of this class)."""
        if name not in PRESETS:
            raise InputError(f"--quality must be one of {', '.join(PRESETS)}, got {name!r}")
        return PRESETS[name].replace(**changes) if changes else PRESETS[name]

    def replace(self, **changes: Any) -> "OptimizeConfig":
        """A copy with some fields changed (configs are never mutated)."""
        return dataclasses.replace(self, **changes)

    def train_gaps(self) -> TrainConfig:
        """The training config with its gaps limited to the flow gaps (all flow gaps if none is left)."""
        kept = tuple(g for g in self.train.gaps if g in self.flow.gaps) or tuple(self.flow.gaps)
        return self.train if kept == self.train.gaps else self.train.replace(gaps=kept)


# The one presets table. ``standard`` is every config's defaults; the others change only what differs.
PRESETS: dict[str, OptimizeConfig] = {
    "draft": OptimizeConfig(
        label="draft",
        frames=FramesConfig(max_side=384),
        flow=FlowConfig(dis_preset="fast"),
        masks=MaskConfig(max_points=800),
        sfm=SfmConfig(max_num_features=2048, matcher="sequential", sequential_overlap=6),
        prior=PriorConfig(num_planes=32, max_sources=2, top_k=1, fill_iterations=1),
        train=TrainConfig(warmup_steps=60, joint_steps=140, pairs_per_step=2, train_long_side=64,
                          pixels_per_pair=256, checkpoint_every=50),
    ),
    "standard": OptimizeConfig(label="standard"),
    "best": OptimizeConfig(
        label="best",
        flow=FlowConfig(backend="auto"),
        masks=MaskConfig(segmenter="auto"),
        sfm=SfmConfig(max_num_features=8192, try_both_focal_inits=True, sequential_overlap=15),
        prior=PriorConfig(num_planes=96, max_sources=6, top_k=3, fill_iterations=3),
        train=TrainConfig(warmup_steps=600, joint_steps=3000, pairs_per_step=6, train_long_side=192,
                          finetune_long_side=192, pixels_per_pair=1024, checkpoint_every=200),
    ),
}
