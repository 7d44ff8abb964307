"""``OptimizeConfig``: every stage's config in one frozen dataclass, with presets draft/standard/best.

The CLI builds one of these from ``--quality`` and the explicit options, then passes it down; no
stage reads options from anywhere else. The stage configs of other modules (SfM, prior, training)
are imported lazily so that this module stays cheap and works while a stage is being built.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from vid3d.formats.errors import InputError
from vid3d.optimizer.flow import FlowConfig
from vid3d.optimizer.frames import FramesConfig
from vid3d.optimizer.masks import MaskConfig

QUALITIES = ("draft", "standard", "best")
STAGES = ("frontend", "all")
PRIOR_BACKENDS = ("auto", "geometric", "midas", "depth-anything")
DEVICES = ("auto", "cpu", "cuda")


def _sfm_preset(quality: str) -> Any:
    from vid3d.optimizer.sfm import SfmConfig

    return SfmConfig.preset(quality)


@dataclass(frozen=True)
class OptimizeConfig:
    """All knobs of ``vid3d optimize``.

    Attributes:
        quality: the preset the stage configs came from (``draft``, ``standard``, ``best``).
        stages: ``frontend`` (frames, flow, masks, poses, prior -> bundle without /depth/z) or
            ``all`` (plus consistent-depth training).
        frames: :class:`~vid3d.optimizer.frames.FramesConfig` (resolution, stride, range).
        flow: :class:`~vid3d.optimizer.flow.FlowConfig` (gaps, backend).
        masks: :class:`~vid3d.optimizer.masks.MaskConfig` (motion-mask decisions).
        sfm: ``vid3d.optimizer.sfm.SfmConfig`` (camera poses + intrinsics).
        prior_backend: depth prior backend: ``auto`` (best available), ``geometric``, ``midas``,
            ``depth-anything``.
        device: ``auto``, ``cpu`` or ``cuda`` for the torch stages.
        codec: bundle compression (``gzip`` by default).
        user_masks: a folder of user masks (one image per frame, non-zero = moving) or None.
    """

    quality: str = "standard"
    stages: str = "all"
    frames: FramesConfig = field(default_factory=FramesConfig)
    flow: FlowConfig = field(default_factory=FlowConfig)
    masks: MaskConfig = field(default_factory=MaskConfig)
    sfm: Any = None
    prior_backend: str = "auto"
    device: str = "auto"
    codec: str = "gzip"
    user_masks: str | None = None

    def __post_init__(self) -> None:
        if self.quality not in QUALITIES:
            raise InputError(f"--quality must be one of {QUALITIES}, got {self.quality!r}")
        if self.stages not in STAGES:
            raise InputError(f"--stages must be one of {STAGES}, got {self.stages!r}")
        if self.prior_backend not in PRIOR_BACKENDS:
            raise InputError(f"--prior must be one of {PRIOR_BACKENDS}, got {self.prior_backend!r}")
        if self.device not in DEVICES:
            raise InputError(f"--device must be one of {DEVICES}, got {self.device!r}")
        if self.sfm is None:
            object.__setattr__(self, "sfm", _sfm_preset(self.quality))

    @staticmethod
    def preset(quality: str, **changes: Any) -> "OptimizeConfig":
        """Stage configs from the same-named presets, then ``changes`` applied (fields of this class)."""
        if quality not in QUALITIES:
            raise InputError(f"--quality must be one of {QUALITIES}, got {quality!r}")
        base = OptimizeConfig(
            quality=quality,
            frames=FramesConfig.preset(quality),
            flow=FlowConfig.preset(quality),
            masks=MaskConfig.preset(quality),
            sfm=_sfm_preset(quality),
        )
        return base.replace(**changes) if changes else base

    def replace(self, **changes: Any) -> "OptimizeConfig":
        return dataclasses.replace(self, **changes)

    def prior_config(self) -> Any:
        """The ``PriorConfig`` for this quality and ``prior_backend`` (NotBuiltYetError while absent)."""
        PriorConfig = _import_stage("vid3d.optimizer.prior", "PriorConfig", "the depth prior")
        cfg = PriorConfig.preset(self.quality) if hasattr(PriorConfig, "preset") else PriorConfig()
        names = {f.name for f in dataclasses.fields(cfg)}
        if "backend" in names:  # the CLI spells depth-anything, the prior module depth_anything
            cfg = dataclasses.replace(cfg, backend=self.prior_backend.replace("-", "_"))
        elif self.prior_backend != "auto":
            raise InputError(f"--prior {self.prior_backend}: this PriorConfig has no backend choice")
        if "device" in names:
            cfg = dataclasses.replace(cfg, device=self.device)
        return cfg

    def train_config(self) -> Any:
        """The ``TrainConfig`` for this quality, its gaps limited to the flow gaps."""
        TrainConfig = _import_stage("vid3d.optimizer.train", "TrainConfig", "consistency training",
                                    hint="use --stages frontend")
        cfg = TrainConfig.preset(self.quality)
        gaps = getattr(cfg, "gaps", None)
        if gaps is not None:
            kept = tuple(g for g in gaps if g in self.flow.gaps) or tuple(self.flow.gaps)
            cfg = dataclasses.replace(cfg, gaps=kept)
        return cfg


def _import_stage(module: str, name: str, what: str, hint: str = "") -> Any:
    """``getattr(import module, name)`` or NotBuiltYetError when the stage has not landed."""
    import importlib

    from vid3d.formats.errors import NotBuiltYetError

    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name is None or not module.startswith(exc.name):  # a missing dependency, not the stage
            raise
        mod = None
    if mod is None or not hasattr(mod, name):
        suffix = f"; {hint}" if hint else ""
        raise NotBuiltYetError(f"{what} is not built yet ({module}.{name} is missing){suffix}")
    return getattr(mod, name)
