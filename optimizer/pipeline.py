"""``vid3d optimize`` as a table of contents: video -> 4D capture bundle.

:data:`STAGES` is the method, in order; :func:`run_optimize` runs it. Every stage has the same
shape (a frozen config in :class:`~vid3d.optimizer.config.OptimizeConfig`, a result dataclass, one
entry ``run``) and decides its own result: the masks stage its final masks, the poses stage how
frames it could not register are posed.

Each stage is cached in ``<output>.work/`` under a key of (its config, the keys of the stages it
needs, and for the inputs read from disk their content fingerprint): a rerun resumes from the cached
stages, ``force`` recomputes them. The bundle is written atomically at the very end; nothing appears
under the output name unless every requested stage succeeded.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vid3d.formats.errors import InputError
from vid3d.optimizer import flow, frames, masks, prior, sfm, train
from vid3d.optimizer.config import OptimizeConfig
from vid3d.optimizer.output import write_result_bundle
from vid3d.optimizer.workdir import StageCache, fingerprint_file, stage_key, to_jsonable, work_dir_for
from vid3d.runtime.weights import find_weights

log = logging.getLogger("vid3d.optimize")


@dataclass(frozen=True)
class Stage:
    """One step of the method: its cache name, what it does, the stages it needs, its result type,
    and the part of the config that changes it (its cache key)."""

    name: str
    what: str
    needs: tuple[str, ...]
    result: type
    config: Callable[[OptimizeConfig], Any]


STAGES: tuple[Stage, ...] = (
    Stage("frames", "decode the video, drop black frames, resize to the working resolution", (),
          frames.Frames, lambda c: c.frames),
    Stage("flow", "optical flow at every gap, both directions, forward-backward validity", ("frames",),
          flow.FlowSet, lambda c: (c.flow, c.device)),
    Stage("masks_before_poses", "motion masks before poses: the user's, or epipolar residuals (dilated)", ("flow",),
          masks.MaskResult, lambda c: c.masks),
    Stage("poses", "camera poses and intrinsics by SfM, moving regions masked", ("masks_before_poses",),
          sfm.PoseResult, lambda c: c.sfm),
    Stage("masks_after_poses", "motion masks with the poses: reprojection residuals (+ learned segmenter)",
          ("poses", "flow"), masks.MaskResult, lambda c: c.masks),
    Stage("poses_remasked", "camera poses again with the masks after poses, when they flag more of the movers",
          ("masks_after_poses",), sfm.PoseResult, lambda c: c.sfm),
    Stage("prior", "initial depth of every frame in the SfM scale", ("poses_remasked",),
          prior.PriorResult, lambda c: (c.prior, c.device)),
    Stage("train", "consistent depth + scene flow by test-time training", ("prior",),
          train.TrainResult, lambda c: (c.train_gaps(), c.device)),
)
STAGE_BY_NAME = {s.name: s for s in STAGES}


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


class _Runner:
    """Runs stages through the cache, keyed by :data:`STAGES`, and times them (state of one run)."""

    def __init__(self, config: OptimizeConfig, cache: StageCache, inputs: dict[str, str]) -> None:
        self.config, self.cache, self.inputs = config, cache, inputs
        self.keys: dict[str, str] = {}
        self.timings: dict[str, float] = {}

    def __call__(self, name: str, compute: Callable[[], Any]) -> Any:
        stage = STAGE_BY_NAME[name]
        key = stage_key(name, stage.config(self.config), self.inputs.get(name),
                        *[self.keys[n] for n in stage.needs])
        self.keys[name] = key
        t0 = time.perf_counter()
        out = self.cache.run(name, key, stage.result, compute)
        self.timings[name] = round(time.perf_counter() - t0, 3)
        return out


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
        InputError on unusable input.
    """
    source, output = Path(source), Path(output)
    if output.exists() and output.is_dir():
        raise InputError(f"output {output} is a folder; expected a file path like clip.vid3d.h5")
    cache = StageCache(work_dir or work_dir_for(output), force=force or not resume)
    user_masks = config.masks.user_masks
    inputs = {"frames": fingerprint_file(source) if source.exists() else "missing"}
    if user_masks:
        inputs["masks_before_poses"] = inputs["masks_after_poses"] = fingerprint_file(user_masks)
    if config.prior.weights:  # the same path may hold other (re-saved, fine-tuned) weights
        inputs["prior"] = fingerprint_file(config.prior.weights)
    run = _Runner(config, cache, inputs)
    decisions: dict = {"quality": config.label, "stages": config.stages}

    clip = run("frames", lambda: frames.run(source, config.frames, progress=progress))
    decisions.update(_frames_decisions(clip))
    flows = run("flow", lambda: flow.run(clip.rgb, config.flow, device=config.device, progress=progress))
    decisions["flow"] = {"backend": flows.backend, "pairs": int(len(flows.pairs)), "gaps": flows.report["gaps"],
                         "dropped_gaps": flows.report["dropped_gaps"]}
    masks0 = run("masks_before_poses", lambda: masks.run(clip, flows, config.masks))
    poses = run("poses", lambda: sfm.run(clip.rgb, masks0.masks, config.sfm, cache.scratch("sfm")))
    log.info("poses: %d/%d frames registered by SfM, focal %.1f px (%.1f%% of width)",
             int(poses.registered.sum()), poses.num_frames, poses.K[0, 0], 100 * poses.K[0, 0] / clip.size[1])
    motion = run("masks_after_poses", lambda: masks.run(clip, flows, config.masks, poses=poses, progress=progress))
    decisions["masks"] = {"method": motion.method, "moving_fraction": round(float(motion.masks.mean()), 4)}
    poses = run("poses_remasked", lambda: sfm.run_remasked(poses, clip.rgb, masks0.masks, motion.masks, config.sfm,
                                                           cache.scratch("sfm_remasked")))
    decisions["poses"] = _pose_decisions(poses)
    depth0 = run("prior", lambda: prior.run(clip.rgb, poses, config.prior, masks=motion.masks, flows=flows,
                                            workdir=cache.scratch("prior"), device=config.device))
    decisions["prior"] = {"backend": depth0.backend, **_small(depth0.report)}
    log.info("prior: %s backend", depth0.backend)
    trained = None
    if config.stages == "all":
        # the prior network's weights (training may fine-tune it: TrainConfig.depth_model)
        prior_weights = str(find_weights("pydnet", config.prior.weights)) if depth0.backend == "pydnet" else None
        inputs_t = train.TrainInputs(rgb=clip.rgb, K=poses.K, T_world_camera=poses.T_world_camera,
                                     prior_depth=depth0.depth, flows=flows.as_dict(), dynamic_mask=motion.masks,
                                     prior_confidence=depth0.confidence, prior_backend=_prior_kind(depth0),
                                     prior_weights=prior_weights)
        trained = run("train", lambda: train.run(inputs_t, config.train_gaps(), device=config.device,
                                                 checkpoint_dir=cache.scratch("train"),
                                                 resume=resume and not force, progress=progress,
                                                 other_checkpoint="restart"))
        decisions["train"] = _small(trained.report)

    timings = run.timings
    t0 = time.perf_counter()
    write_result_bundle(output, clip, poses, motion, depth0, trained, config=config, timings=timings,
                        decisions=decisions)
    timings["bundle"] = round(time.perf_counter() - t0, 3)
    return OptimizeResult(bundle=output, work_dir=cache.root, timings=timings, decisions=decisions,
                          cached=tuple(cache.hits))


def _prior_kind(depth0: prior.PriorResult) -> str:
    """What made the prior, for training: the backend, ``+hybrid`` when combined with the plane sweep."""
    return depth0.backend + (train.HYBRID if "hybrid_geometric_fraction" in depth0.report else "")


def _frames_decisions(clip: frames.Frames) -> dict:
    return {"resolution": [clip.size[1], clip.size[0]], "source_resolution": list(clip.source_size[::-1]),
            "num_frames": clip.num_frames,
            "source_frames": [int(clip.source_frames[0]), int(clip.source_frames[-1])],
            "fps": clip.fps, "rotation": clip.rotation, "dropped_black": list(clip.dropped_black)}


def _pose_decisions(poses: sfm.PoseResult) -> dict:
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
        elif isinstance(v, (list, dict)) and len(str(v)) < 1000:  # e.g. the poses' remask and refinement
            out[k] = v
    return out
