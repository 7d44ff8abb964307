"""Stage 8, consistent depth + scene flow by test-time training (Zhang et al. 2021).

Config :class:`TrainConfig` (with :class:`PriorTerms`), inputs :class:`TrainInputs`, result
:class:`TrainResult`, entry :func:`run`::

    from vid3d.optimizer import train
    result = train.run(inputs, OptimizeConfig.preset("standard").train, device="auto",
                       checkpoint_dir=work / "train", resume=True)

Modules: ``config`` (knobs), ``data`` (inputs/outputs, preparation), ``depth_net`` (residual over the
prior), ``finetune`` (the prior network itself fine-tuned, ``TrainConfig.depth_model``), ``scene_flow``
(the reference MLP + chaining), ``losses`` (pure), ``pairs`` (pairs, batches, pixel sampling),
``trainer`` (the loop's state), ``stage`` (the entry ``run``: checkpoints, resume), ``fuse`` (final depth,
confidence, scene flow), ``multiview`` (fusion of static depth across frames).
"""

from vid3d.optimizer.train.config import HYBRID, PriorTerms, TrainConfig
from vid3d.optimizer.train.data import TrainInputs, TrainResult


def __getattr__(name: str):
    """``run`` and ``CHECKPOINT_NAME`` load the torch modules on first use, so that importing the
    configs (the CLI builds its options from them at start-up) does not import torch."""
    if name in ("run", "CHECKPOINT_NAME"):
        from vid3d.optimizer.train import stage

        return getattr(stage, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["CHECKPOINT_NAME", "HYBRID", "PriorTerms", "TrainConfig", "TrainInputs", "TrainResult", "run"]
