"""Consistent depth + scene flow by test-time training (Zhang et al. 2021), issue 4.

Public API::

    from vid3d.optimizer.train import TrainConfig, TrainInputs, TrainResult, train_consistent_depth
    result = train_consistent_depth(inputs, TrainConfig.preset("standard"), device="auto",
                                    checkpoint_dir=work / "train", resume=True)

Modules: ``config`` (knobs, presets), ``data`` (inputs/outputs, preparation), ``depth_net``,
``scene_flow`` (the reference MLP + chaining), ``losses`` (pure), ``pairs`` (pairs, batches, pixel
sampling), ``trainer`` (the loop, checkpoints), ``fuse`` (final depth, confidence, scene flow).
"""

from vid3d.optimizer.train.config import PRESETS, TrainConfig
from vid3d.optimizer.train.data import TrainInputs, TrainResult
from vid3d.optimizer.train.trainer import CHECKPOINT_NAME, resolve_device, train_consistent_depth

__all__ = ["CHECKPOINT_NAME", "PRESETS", "TrainConfig", "TrainInputs", "TrainResult", "resolve_device",
           "train_consistent_depth"]
