"""``vid3d optimize`` as a table of contents: video -> 4D capture bundle.

    frames   -> flow -> masks (epipolar) -> poses (SfM) -> masks (reprojection) -> prior
             -> [consistency training] -> bundle

Each stage is cached in ``<output>.work/`` under a key of (input fingerprint, its config, its
upstream keys): a rerun resumes from the cached stages, ``force`` recomputes them. The bundle is
written atomically at the very end; nothing appears under the output name unless every requested
stage succeeded.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vid3d.formats.errors import InputError, NotBuiltYetError
from vid3d.optimizer.config import OptimizeConfig, _import_stage
from vid3d.optimizer.flow import FlowSet, check_clip_length, compute_flow
from vid3d.optimizer.frames import Frames, load_frames
from vid3d.optimizer.masks import (
    MaskResult,
    learned_segmenter,
    load_user_masks,
    motion_masks_epipolar,
    motion_masks_reprojection,
)
from vid3d.optimizer.workdir import StageCache, fingerprint_file, stage_key, to_jsonable, work_dir_for

log = logging.getLogger("vid3d.optimize")


@dataclass(frozen=True)
class OptimizeResult:
    """What ``run_optimize`` produced.

    Attributes:
        bundle: path of the written bundle.
        work_dir: the stage cache folder.
        timings: stage -> seconds (cached stages: the time to load them).
        decisions: what was decided (resolution, frames, registered images, focal, prior backend...).
        cached: stages reused from the cache.
    """

    bundle: Path
    work_dir: Path
    timings: dict = field(default_factory=dict)
    decisions: dict = field(default_factory=dict)
    cached: tuple = ()


def run_optimize(source: str | Path, output: str | Path, config: OptimizeConfig = OptimizeConfig(), *,
                 force: bool = False, resume: bool = True, progress: bool = True,
                 work_dir: str | Path | None = None) -> OptimizeResult:
    """Run the requested stages on a video file or image folder and write the bundle ``output``.

    Args:
        source: video file (mp4, mov, avi, mkv, webm) or folder of images.
        output: bundle path (``*.vid3d.h5``); its work folder is ``<output>.work/`` unless ``work_dir``.
        config: :class:`OptimizeConfig`.
        force: recompute every stage (ignore the cache).
        resume: reuse cached stages and the training checkpoint (False: no cache is read).
    Raises:
        InputError on unusable input; NotBuiltYetError when a requested stage has not landed.
    """
    source, output = Path(source), Path(output)
    if output.exists() and output.is_dir():
        raise InputError(f"output {output} is a folder; expected a file path like clip.vid3d.h5")
    if config.stages == "all":  # fail before hours of work, not after
        _import_stage("vid3d.optimizer.train", "train_consistent_depth",
                      "consistency training", hint="use --stages frontend")
    cache = StageCache(work_dir or work_dir_for(output), force=force or not resume)
    timings: dict[str, float] = {}
    decisions: dict = {"quality": config.quality, "stages": config.stages}

    def timed(name, fn):
        t0 = time.perf_counter()
        out = fn()
        timings[name] = round(time.perf_counter() - t0, 3)
        return out

    fingerprint = fingerprint_file(source) if source.exists() else "missing"
    k_frames = stage_key("frames", fingerprint, config.frames)
    frames: Frames = timed("frames", lambda: cache.run("frames", k_frames, Frames,
                                                       lambda: load_frames(source, config.frames, progress=progress)))
    check_clip_length(frames.num_frames, config.flow.gaps)
    decisions.update(resolution=[frames.size[1], frames.size[0]], source_resolution=list(frames.source_size[::-1]),
                     num_frames=frames.num_frames, source_frames=[int(frames.source_frames[0]),
                                                                  int(frames.source_frames[-1])],
                     fps=frames.fps, rotation=frames.rotation, dropped_black=list(frames.dropped_black))

    k_flow = stage_key("flow", k_frames, config.flow)
    flows: FlowSet = timed("flow", lambda: cache.run("flow", k_flow, FlowSet,
                                                     lambda: compute_flow(frames.rgb, config.flow, progress=progress)))
    decisions["flow"] = {"backend": flows.backend, "pairs": int(len(flows.pairs)), "gaps": list(config.flow.gaps)}

    user_key = fingerprint_file(config.user_masks) if config.user_masks else None
    k_masks0 = stage_key("masks0", k_flow, config.masks, user_key)
    masks0: MaskResult = timed("masks_before_poses", lambda: cache.run(
        "masks0", k_masks0, MaskResult, lambda: _masks_before_poses(frames, flows, config)))

    from vid3d.optimizer.sfm import PoseResult, estimate_poses

    k_poses = stage_key("poses", k_masks0, config.sfm)
    poses = timed("poses", lambda: cache.run("poses", k_poses, PoseResult, lambda: estimate_poses(
        frames.rgb, masks0.masks, config.sfm, cache.scratch("sfm"))))
    decisions["poses"] = _pose_decisions(poses)
    log.info("poses: %d/%d frames registered by SfM, focal %.1f px (%.1f%% of width)",
             int(poses.registered.sum()), poses.num_frames, poses.K[0, 0], 100 * poses.K[0, 0] / frames.size[1])

    k_masks = stage_key("masks", k_poses, k_flow, config.masks, user_key)
    masks: MaskResult = timed("masks_after_poses", lambda: cache.run(
        "masks", k_masks, MaskResult, lambda: _masks_after_poses(frames, flows, poses, masks0, config, progress)))
    decisions["masks"] = {"method": masks.method, "moving_fraction": round(float(masks.masks.mean()), 4)}

    PriorResult = _import_stage("vid3d.optimizer.prior", "PriorResult", "the depth prior")
    estimate_prior = _import_stage("vid3d.optimizer.prior", "estimate_prior", "the depth prior")
    prior_cfg = config.prior_config()
    k_prior = stage_key("prior", k_poses, k_masks, prior_cfg)
    prior = timed("prior", lambda: cache.run("prior", k_prior, PriorResult, lambda: estimate_prior(
        frames.rgb, poses, prior_cfg, masks=masks.masks, workdir=cache.scratch("prior"))))
    decisions["prior"] = {"backend": prior.backend, **_small(prior.report)}
    log.info("prior: %s backend", prior.backend)

    trained = None
    if config.stages == "all":
        trained = timed("train", lambda: _train(frames, flows, poses, masks, prior, config, cache,
                                                k_prior, resume and not force, progress))
        decisions["train"] = _small(getattr(trained, "report", {}))

    timed("bundle", lambda: write_result_bundle(output, frames, poses, masks, prior, trained,
                                                 config=config, timings=timings, decisions=decisions))
    return OptimizeResult(bundle=output, work_dir=cache.root, timings=timings, decisions=decisions,
                          cached=tuple(cache.hits))


# ---------------------------------------------------------------------------------------------
# Stages that combine other modules
# ---------------------------------------------------------------------------------------------


def _masks_before_poses(frames: Frames, flows: FlowSet, config: OptimizeConfig) -> MaskResult:
    """User masks when given, else epipolar masks (dilated: they keep SfM features off movers)."""
    if config.user_masks:
        m = load_user_masks(config.user_masks, frames.source_frames, frames.size)
        return MaskResult(masks=m, method="user", report={"source": str(config.user_masks)})
    m, report = motion_masks_epipolar(flows, config.masks, dilate=True)
    return MaskResult(masks=m, method="epipolar", report=report)


def _masks_after_poses(frames: Frames, flows: FlowSet, poses, masks0: MaskResult, config: OptimizeConfig,
                       progress: bool) -> MaskResult:
    """Reprojection masks from the poses (user masks are kept as given); a learned segmenter joins
    when its weights are local and the preset asks for it."""
    if masks0.method == "user":
        return masks0
    m, report = motion_masks_reprojection(flows, poses.K, poses.T_world_camera, config.masks, progress=progress)
    method = "reprojection"
    if config.masks.segmenter == "auto":
        learned = learned_segmenter(frames.rgb)
        if learned is not None:
            m, method = m | learned, "reprojection+learned"
            report["learned_fraction"] = float(learned.mean())
        else:
            report["learned"] = "no local weights"
    return MaskResult(masks=m, method=method, report=report)


def _train(frames, flows, poses, masks, prior, config: OptimizeConfig, cache: StageCache, k_prior: str,
           resume: bool, progress: bool):
    from vid3d.optimizer.train import TrainInputs, TrainResult, train_consistent_depth

    train_cfg = config.train_config().for_prior(prior.backend)
    inputs = TrainInputs(rgb=frames.rgb, K=poses.K, T_world_camera=poses.T_world_camera,
                         prior_depth=prior.depth, flows=flows.as_dict(), dynamic_mask=masks.masks,
                         prior_confidence=prior.confidence)
    key = stage_key("train", k_prior, train_cfg, config.device)
    return cache.run("train", key, TrainResult, lambda: train_consistent_depth(
        inputs, train_cfg, device=config.device, checkpoint_dir=cache.scratch("train"), resume=resume,
        progress=progress))


# ---------------------------------------------------------------------------------------------
# Output
# ---------------------------------------------------------------------------------------------


def write_result_bundle(output: Path, frames: Frames, poses, masks: MaskResult, prior, trained, *,
                        config: OptimizeConfig, timings: dict, decisions: dict) -> Path:
    """Write the bundle atomically: rgb, cameras, time, dynamic mask, prior (and the trained depth,
    confidence and scene flow when training ran). No /depth/z without training."""
    from vid3d.formats.bundle import BundleWriter

    fields = ["dynamic_mask", "prior"]
    if trained is not None:
        fields += ["depth", "confidence", "scene_flow"]
    H, W = frames.size
    prior_depth = np.where(np.isfinite(prior.depth) & (prior.depth > 0), prior.depth, 0.0).astype(np.float32)
    with BundleWriter(output, height=H, width=W, fps=frames.fps, source=str(frames.source), units="arbitrary",
                      metric_scale=False, fields=tuple(fields), codec=config.codec) as writer:
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


def _pose_decisions(poses) -> dict:
    return {
        "registered": int(poses.registered.sum()),
        "frames": int(poses.num_frames),
        "focal_px": [float(poses.K[0, 0]), float(poses.K[1, 1])],
        "principal_point_px": [float(poses.K[0, 2]), float(poses.K[1, 2])],
        "sparse_points": int(len(poses.points_world)),
        **_small(poses.report),
    }


def _small(report: dict) -> dict:
    """The scalar / short entries of a stage report (for /meta/decisions)."""
    out = {}
    for k, v in (report or {}).items():
        v = to_jsonable(v)
        if isinstance(v, (int, float, str, bool)) or v is None:
            out[k] = v
        elif isinstance(v, (list, dict)) and len(str(v)) < 400:
            out[k] = v
    return out
