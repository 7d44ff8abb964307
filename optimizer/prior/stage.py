"""Stage 7 entry: ``run(rgb, poses, config, *, masks, workdir) -> PriorResult``."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from vid3d.formats.errors import InputError, ShapeError
from vid3d.runtime import device_name

from . import learned
from .align import align_disparity_to_sfm, fit_scale, sparse_samples
from .config import PriorConfig, PriorResult

log = logging.getLogger("vid3d.prior")

AUTO_ORDER = ("depth_anything", "midas", "pydnet", "geometric")


def available_backends(config: PriorConfig | None = None) -> dict[str, tuple[bool, str]]:
    """Every backend -> (usable here, reason). ``geometric`` is always usable (no weights)."""
    allow = bool(config and config.allow_download)
    return {
        "depth_anything": learned.depth_anything_status(allow),
        "midas": learned.midas_status(allow),
        "pydnet": learned.pydnet_status(config.weights if config else None),
        "geometric": (True, "plane sweep over neighbouring frames (no weights)"),
    }


def _check(rgb: np.ndarray, poses, masks: np.ndarray | None) -> None:
    if not isinstance(rgb, np.ndarray) or rgb.ndim != 4 or rgb.shape[-1] != 3 or rgb.dtype != np.uint8:
        raise ShapeError(f"estimate_prior expects rgb (T, H, W, 3) uint8, got {getattr(rgb, 'shape', None)} "
                         f"{getattr(rgb, 'dtype', type(rgb).__name__)}")
    if poses.T_world_camera.shape != (rgb.shape[0], 4, 4):
        raise ShapeError(f"poses.T_world_camera must be ({rgb.shape[0]}, 4, 4), got {poses.T_world_camera.shape}")
    if masks is not None and np.asarray(masks).shape != rgb.shape[:3]:
        raise ShapeError(f"masks must be (T, H, W) = {rgb.shape[:3]}, got {np.asarray(masks).shape}")


def _pick(config: PriorConfig, status: dict[str, tuple[bool, str]]) -> tuple[str, str]:
    """The backend to use and one line saying why (``auto``: the best usable one)."""
    name = config.backend
    if name != "auto":
        if not status[name][0]:
            raise InputError(f"depth prior backend {name!r} is not usable here: {status[name][1]}; "
                             f"use --prior geometric")
        return name, f"asked for ({status[name][1]})"
    name = next(b for b in AUTO_ORDER if status[b][0])
    if name == "geometric":
        why = ("no learned depth model on this machine (run `vid3d models` to see how to get one); "
               "using the plane sweep")
    else:
        why = f"the best learned model found: {status[name][1]}"
    return name, why


def run(rgb: np.ndarray, poses, config: PriorConfig, *, masks: np.ndarray | None = None,
        flows=None, workdir: Path | None = None, device: str = "auto") -> PriorResult:
    """Initial depth of every frame, in the units of ``poses``.

    Args:
        rgb: (T, H, W, 3) uint8 frames; poses: PoseResult of the same frames;
        masks: (T, H, W) bool, True = moving (never trusted as static depth).
        flows: the clip's FlowSet; a learned prior on a clip without parallax is aligned through it
            (one scale for the whole clip). None: such a clip's frames are aligned each on its own.
        workdir: unused by the built-in backends (kept for caches of learned ones).
        device: torch device name (``auto``, ``cpu``, ``cuda``) of the plane sweep and the networks.
    Returns:
        PriorResult: depth (T, H, W) f32 > 0, confidence (T, H, W) f32 in [0, 1], backend, report.
    """
    _check(rgb, poses, masks)
    status = available_backends(config)
    name, why = _pick(config, status)
    if config.backend == "auto" and name == "geometric":
        log.warning("prior: %s", why)  # one line: how to get a learned model, and the fallback
    else:
        log.info("prior: %s (%s)", name, why)
    report: dict = {"backend": name, "chosen_because": why,
                    "backends": {k: {"usable": v[0], "reason": v[1]} for k, v in status.items()}}
    masks_b = None if masks is None else np.asarray(masks, bool)
    dev = device_name(device)
    t0 = time.perf_counter()
    sweep = _plane_sweep(rgb, poses, config, masks_b, report, dev)
    learned_depth = None
    if name != "geometric":
        try:
            learned_depth = _learned(name, rgb, poses, sweep, config, masks_b, flows, report, dev)
        except InputError as e:  # e.g. --download-models offline: auto falls back, an explicit choice fails
            if config.backend != "auto":
                raise
            log.warning("prior: %s could not be used (%s); falling back to the plane sweep", name, e)
            report["fallback"] = f"{name} could not be used: {e}"
            name = report["backend"] = "geometric"
    depth, conf = learned_depth or _geometric(rgb, sweep, config, masks_b, report, dev)
    report["seconds"] = round(time.perf_counter() - t0, 2)
    report["seconds_per_frame"] = round(report["seconds"] / rgb.shape[0], 3)
    report["constant_frames"] = [t for t in range(len(depth)) if float(np.ptp(depth[t])) == 0.0]
    return PriorResult(depth=depth.astype(np.float32), confidence=np.clip(conf, 0, 1).astype(np.float32),
                       backend=name, report=report)


def _plane_sweep(rgb, poses, config, masks, report, device: str):
    """(depth, confidence, near, far, sparse samples) of the plane sweep, unfilled; None when the
    poses give no depth (fewer than 10 SfM samples: a rotation-only camera)."""
    from .geometric import depth_bounds, geometric_prior

    f, uv, z = sparse_samples(poses, masks=masks)
    if len(z) < 10:
        log.warning("prior: fewer than 10 SfM depth samples (rotation-only camera?): no geometric depth")
        report["geometric"] = "no parallax: the poses give no depth"
        return None
    near, far = depth_bounds(z, config.depth_margin)
    report["depth_range"] = [near, far]
    depth, conf, sources = geometric_prior(rgb, poses.T_world_camera, poses.K, near, far, config, device=device)
    report["frames_without_sources"] = [t for t, s in enumerate(sources) if not s]
    if masks is not None:
        kept = _photo_consistent_regions(conf, masks, config.min_confidence)
        report["mask_regions_photo_consistent"] = int(kept.any(axis=(1, 2)).sum())
        conf[masks & ~kept] = 0.0
    return depth, conf, near, far, (f, uv, z)


def _photo_consistent_regions(conf: np.ndarray, masks: np.ndarray, min_confidence: float) -> np.ndarray:
    """(T, H, W) bool: the pixels of moving regions that the plane sweep, which assumes a static
    scene, finds photo-consistent (median confidence >= ``min_confidence``): those regions are static
    after all (a false motion mask), so their swept depth is kept; a real mover is not photo-consistent
    with a static scene."""
    import cv2

    out = np.zeros(masks.shape, bool)
    for t in range(len(masks)):
        if not masks[t].any():
            continue
        n, labels = cv2.connectedComponents(masks[t].astype(np.uint8), connectivity=8)
        for k in range(1, n):
            region = labels == k
            if float(np.median(conf[t][region])) >= min_confidence:
                out[t] |= region
    return out


def _geometric(rgb, sweep, config, masks, report, device: str) -> tuple[np.ndarray, np.ndarray]:
    """The plane sweep, filled edge-aware where unconfident; moving regions from where they stand."""
    import torch

    from .fill import fill_depth
    from .movers import mover_depth

    T, H, W = rgb.shape[:3]
    if sweep is None:
        report["note"] = ("no parallax: constant depth 1 with zero confidence (a learned prior gives such a "
                          "clip depth: `vid3d models`)")
        return np.ones((T, H, W), np.float32), np.zeros((T, H, W), np.float32)
    depth, conf, near, far, (f, uv, z) = sweep
    trusted = conf >= config.min_confidence
    report["fraction_filled"] = float(1 - trusted.mean())
    dt = torch.from_numpy(depth).to(device)
    wt = torch.from_numpy(np.where(trusted, conf, 0.0).astype(np.float32)).to(device)
    rgbt = torch.from_numpy(rgb.astype(np.float32)).to(device)
    out = np.empty_like(depth)
    for t in range(T):
        if float(wt[t].sum()) == 0:
            out[t] = float(np.median(z))
            continue
        out[t] = fill_depth(dt[t], wt[t], rgbt[t], sigma_color=config.fill_sigma_color,
                            iterations=config.fill_iterations).cpu().numpy()
    out = np.clip(out, near, far)
    if masks is not None and config.movers_from_contact:
        regions = []
        movers = masks & (conf <= 0)  # photo-consistent (static) regions keep their swept depth
        for t in range(T):
            if movers[t].any():
                out[t], r = mover_depth(out[t], conf[t], movers[t], frame=t, min_confidence=config.min_confidence)
                regions += r
        report["movers"] = {"regions": len(regions), "from_contact": sum(r.how == "contact" for r in regions),
                            "in_front": sum(r.how == "in_front" for r in regions)}
    # already in SfM units (the poses fix the scale); the fit is a check, reported not applied
    a = fit_scale(out[f, np.clip(uv[:, 1].astype(int), 0, H - 1), np.clip(uv[:, 0].astype(int), 0, W - 1)], z)
    report["alignment"] = {"kind": "check only (plane sweep is in SfM units)", "scale": a.scale,
                           "median_relative_error_at_sfm_points": a.residual, "points": a.num_points}
    log.info("prior: geometric, depth %.3g..%.3g, %.0f%% filled, scale check %.3f", near, far,
             100 * report["fraction_filled"], a.scale)
    return out, conf


def _learned(name, rgb, poses, sweep, config, masks, flows, report, device: str) -> tuple[np.ndarray, np.ndarray]:
    """A learned disparity aligned to the geometry (dense where confident), or through the flow on a
    clip without parallax; combined with the plane sweep where it is confident (``config.hybrid``)."""
    from .hybrid import align_through_flow, align_to_dense, combine, local_scale

    if name == "pydnet":
        disp = learned.pydnet_disparity(rgb, device=device, weights=config.weights)
    else:
        fn = learned.depth_anything_disparity if name == "depth_anything" else learned.midas_disparity
        disp = fn(rgb, device=device, allow_download=config.allow_download)
    if sweep is not None:
        depth_g, conf_g = sweep[0], sweep[1]
        masks_all = masks
        masks = None if masks is None else masks & (conf_g <= 0)  # photo-consistent regions are static
        _, sparse_fits = align_disparity_to_sfm(disp, poses, masks=masks)
        depth, fits, how = align_to_dense(disp, depth_g, conf_g, min_confidence=config.min_confidence,
                                          moving=masks, fallback=sparse_fits)
        report["alignment"] = {"kind": "scale+shift in disparity per frame, on confident plane-sweep pixels",
                               "frames_dense": how.count("dense"), "frames_sparse": how.count("sparse")}
        if config.hybrid:
            depth = local_scale(depth_g, conf_g, depth, rgb, min_confidence=config.min_confidence, moving=masks,
                                sigma_color=config.fill_sigma_color, iterations=config.fill_iterations, device=device)
            depth, conf = combine(depth_g, conf_g, depth, min_confidence=config.min_confidence, moving=masks)
            if masks is not None and masks.any() and config.movers_from_contact:
                # a mover is never behind what it hides: at most the depth the geometric prior gives it
                # (its ground contact, or in front of its surroundings; :mod:`.movers`). A learned
                # network's soft edges otherwise put a mover's rim at the wall's depth (mover nearer
                # than its background on 51-71 % of the boundary of the real clips' movers)
                geo_report: dict = {}
                geo, _ = _geometric(rgb, sweep, config, masks_all, geo_report, device)
                capped = masks & (geo < depth)
                depth = np.where(capped, geo, depth)
                report["movers"] = geo_report.get("movers")
                report["movers_capped_fraction"] = float(capped.sum() / max(masks.sum(), 1))
            depth = np.clip(depth, sweep[2] / config.depth_margin, sweep[3] * config.depth_margin)
            report["hybrid_geometric_fraction"] = float((conf_g >= config.min_confidence).mean())
            return depth, conf
    elif flows is not None:
        depth, fits, counts = align_through_flow(disp, flows, moving=masks)
        report["alignment"] = {"kind": "no parallax: frame 0 median depth 1, every frame aligned to the "
                                       "previous ones through the optical flow (one scale for the clip)",
                               "median_correspondences": float(np.median(counts[1:])) if len(counts) > 1 else 0.0}
    else:
        depth, fits = align_disparity_to_sfm(disp, poses, masks=masks)
        report["alignment"] = {"kind": "scale+shift in disparity, per frame, at the sparse SfM points"}
    report["alignment"]["median_residual"] = float(np.nanmedian([a.residual for a in fits]))
    if masks is not None and masks.any() and config.movers_from_contact:
        # no plane sweep to cap movers with (a pan, or hybrid off): in front of the learned depth
        # around them (measured on the bear pan: mover nearer than its
        # background on 71 % of the boundary before)
        from .movers import place_in_front

        depth, frac = place_in_front(depth, masks)
        report["movers_capped_fraction"] = frac
    conf = np.full(depth.shape, 0.5, np.float32)
    if masks is not None:
        conf[masks] = 0.0
    return depth, conf
