"""Stage 6, poses remasked: SfM once more, with the motion masks that the first poses gave.

The masks before poses come from epipolar residuals of the flow alone; a mover that walks along its
epipolar lines (people on a floor, seen by a camera moving with them) leaves no such residual, so
those masks miss about half of it and its features go into SfM as if static. With the first poses
the reprojection residual finds it. Measured on the synthetic walkers (32 f, 320 px): the masks
before poses have recall 0.48 against ground truth, after poses 0.82; mapping again with the latter
took the ATE from 0.52 to 0.19 % of the path and the focal from 1.6 to 0.7 % off.

Whether to map again is decided by the first mapping's own features: the fraction of its
observations that lie on newly masked pixels. Where none do, a second mapping would give the same
model, so static clips with a few false flags (HoloLens: 1.25 % of the pixels, 0.05 % of the
observations) are not mapped twice.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path

import numpy as np

from vid3d.formats.errors import InputError, ShapeError

from .config import PoseResult, SfmConfig
from .stage import run

log = logging.getLogger("vid3d.optimize")


def newly_masked(masks_before: np.ndarray | None, masks_after: np.ndarray) -> np.ndarray:
    """(T, H, W) bool: flagged moving by ``masks_after`` and not by ``masks_before``.

    Args:
        masks_before: (T, H, W) bool or None (nothing was masked).
        masks_after: (T, H, W) bool.
    """
    after = np.asarray(masks_after, bool)
    if after.ndim != 3:
        raise ShapeError(f"masks after poses must be (T, H, W), got {after.shape}")
    if masks_before is None:
        return after
    before = np.asarray(masks_before, bool)
    if before.shape != after.shape:
        raise ShapeError(f"masks before poses {before.shape} and after {after.shape} differ in shape")
    return after & ~before


def observations_on(mask: np.ndarray, poses: PoseResult) -> float:
    """Fraction of the sparse observations of ``poses`` (``obs_frame``, ``obs_uv``) that fall on
    ``mask`` (T, H, W) bool; pixel (u, v) covers [u, u+1) x [v, v+1) (centres at +0.5). 0 without
    observations."""
    if len(poses.obs_frame) == 0:
        return 0.0
    T, H, W = mask.shape
    f = np.asarray(poses.obs_frame, np.int64)
    if f.min() < 0 or f.max() >= T:
        raise ShapeError(f"observations name frames up to {int(f.max())}, the masks have {T}")
    u = np.clip(np.floor(poses.obs_uv[:, 0]).astype(np.int64), 0, W - 1)
    v = np.clip(np.floor(poses.obs_uv[:, 1]).astype(np.int64), 0, H - 1)
    return float(mask[f, v, u].mean())


def run_remasked(first: PoseResult, rgb: np.ndarray, masks_before: np.ndarray | None, masks_after: np.ndarray,
                 config: SfmConfig, workdir: Path) -> PoseResult:
    """The poses of the clip: ``first``, or SfM mapped again with ``masks_after`` when those newly
    flag the pixels of at least ``config.remask_min_observations`` of the first mapping's observations
    and the first poses are a reconstruction (not a pan). The second is kept unless it poses fewer
    frames by SfM, concludes a pan, or moves the focal by more than ``config.remask_max_focal_change``. ``report["remask"]`` says what ran, what was kept and why
    (``first`` / ``second``: [frames registered, focal px, reprojection error px] of each mapping).

    Args:
        first: the poses mapped with ``masks_before``.
        rgb: (T, H, W, 3) uint8 frames (as given to the first pass).
        masks_before: (T, H, W) bool or None, the masks of the first pass.
        masks_after: (T, H, W) bool, the motion masks computed with ``first``.
        config: SfmConfig (``remask``, ``remask_min_observations`` and the mapping options).
        workdir: scratch folder of the second mapping (created).
    """
    new = newly_masked(masks_before, masks_after)
    on_new = observations_on(new, first)
    info: dict = {"newly_masked_fraction": round(float(new.mean()), 5), "observations_newly_masked": round(on_new, 5),
                  "min_observations": config.remask_min_observations}

    def keep_first(why: str) -> PoseResult:
        info.update(ran=info.get("ran", False), kept="first", why=why)
        return _with_remask(first, info)

    if not config.remask:
        return keep_first("off (SfmConfig.remask)")
    if first.report.get("rotation_only"):
        return keep_first("the first poses are a pan: no reconstruction for the masks to improve")
    if on_new < config.remask_min_observations or on_new == 0:
        return keep_first(f"the masks after poses newly flag {100 * on_new:.2g} % of the first mapping's "
                          f"observations (< {100 * config.remask_min_observations:.2g} %)")
    log.info("poses: the masks after poses newly flag %.2f %% of the pixels, %.2f %% of the SfM observations; "
             "mapping again with them", 100 * new.mean(), 100 * on_new)
    t0 = time.perf_counter()
    try:
        second = run(rgb, masks_after, config, Path(workdir))
    except InputError as e:
        info["ran"] = True
        return keep_first(f"the second mapping failed: {e}")
    info.update(ran=True, seconds=round(time.perf_counter() - t0, 2), first=_summary(first), second=_summary(second))
    if second.report.get("rotation_only"):
        return keep_first("the second mapping concluded a pan where the first reconstructed the clip")
    change = abs(float(second.K[0, 0]) / float(first.K[0, 0]) - 1.0)
    if change > config.remask_max_focal_change:
        return keep_first(f"the second mapping moved the focal by {100 * change:.2g} % (> "
                          f"{100 * config.remask_max_focal_change:.2g} %): masking a few features should not, "
                          f"so it is unstable")
    if int(second.registered.sum()) < int(first.registered.sum()):
        return keep_first(f"the second mapping registered fewer frames ({int(second.registered.sum())} < "
                          f"{int(first.registered.sum())})")
    info.update(kept="second", why=f"the masks after poses newly flag {100 * on_new:.2g} % of the first "
                                   f"mapping's observations")
    log.info("poses: mapped again with the masks after poses: %d/%d registered, focal %.1f -> %.1f px",
             int(second.registered.sum()), second.num_frames, first.K[0, 0], second.K[0, 0])
    return _with_remask(second, info)


def _summary(poses: PoseResult) -> list:
    """[frames registered, focal px, mean reprojection error px] of one mapping (short: it goes into
    ``/meta/decisions``)."""
    err = poses.report.get("reprojection_error_px")
    return [int(poses.registered.sum()), round(float(poses.K[0, 0]), 2), None if err is None else round(float(err), 4)]


def _with_remask(poses: PoseResult, info: dict) -> PoseResult:
    """``poses`` with ``report["remask"] = info`` (a new result; the input is not changed)."""
    return dataclasses.replace(poses, report={**poses.report, "remask": info})
