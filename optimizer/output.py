"""The optimizer's output: every stage's result written as one 4D capture bundle, atomically."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vid3d.formats.bundle import BundleWriter
from vid3d.optimizer.config import OptimizeConfig
from vid3d.optimizer.frames import Frames
from vid3d.optimizer.masks import MaskResult
from vid3d.optimizer.prior import PriorResult
from vid3d.optimizer.sfm import PoseResult
from vid3d.optimizer.train import TrainResult
from vid3d.optimizer.workdir import to_jsonable


def write_result_bundle(output: Path, frames: Frames, poses: PoseResult, masks: MaskResult, prior: PriorResult,
                        trained: TrainResult | None, *,
                        config: OptimizeConfig, timings: dict, decisions: dict) -> Path:
    """Write the bundle atomically: rgb, cameras, time, dynamic mask, prior (and the trained depth,
    confidence and scene flow when training ran). No /depth/z without training.

    Storage ``default`` (depth to half float16's bound, lossless colour) or, with ``config.compact``,
    ``compact``. The writer keeps scene flow on the moving pixels (the dynamic mask) only: on static
    ones it is 0 by definition, and the trained field's small output there is not stored."""
    fields = ["dynamic_mask", "prior"]
    if trained is not None:
        fields += ["depth", "confidence", "scene_flow"]
    H, W = frames.size
    prior_depth = np.where(np.isfinite(prior.depth) & (prior.depth > 0), prior.depth, 0.0).astype(np.float32)
    with BundleWriter(output, height=H, width=W, fps=frames.fps, source=str(frames.source), units="arbitrary",
                      metric_scale=False, fields=tuple(fields), codec=config.codec,
                      storage="compact" if config.compact else "default") as writer:
        for t in range(frames.num_frames):
            images = {"dynamic_mask": masks.masks[t], "prior": prior_depth[t]}
            if trained is not None:
                images.update(depth=trained.depth[t], confidence=np.clip(trained.confidence[t], 0, 1),
                              scene_flow=trained.scene_flow[t])
            writer.append(rgb=frames.rgb[t], T_world_camera=poses.T_world_camera[t], K=poses.K,
                          timestamp_s=float(frames.timestamps_s[t]), source_frame=int(frames.source_frames[t]),
                          **images)
        writer.set_meta("config", to_jsonable(config))
        writer.set_meta("timings", dict(timings))
        writer.set_meta("decisions", to_jsonable(decisions))
        writer.set_meta_array("registered", poses.registered.astype(np.uint8))
        if prior.confidence is not None:
            writer.set_meta_array("prior_confidence_mean", np.asarray(prior.confidence, np.float32).mean(axis=(1, 2)))
        if trained is not None:
            for name, curve in dict(trained.losses).items():
                writer.set_meta_array(f"losses/{name}", np.asarray(curve, dtype=np.float32))
    return output
