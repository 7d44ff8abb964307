"""The mapper's model, refined: a robust bundle adjustment, then again with corner tracks added.

COLMAP's global bundle adjustment minimises squared reprojection errors (no robust loss), but SIFT
keypoints are heavy-tailed: against ground-truth poses the synthetic families' keypoints are off by
0.17 px at the median and 0.37 px RMS. A few far-off keypoints then pull the poses, and the focal,
weakly observed when the camera moves little, follows their noise. Starting from the mapper's solution:

1. ``adjust_keypoints`` (optional, off by default, kept only when it helps): every observation of a
   track is aligned to the track's middle observation by Lucas-Kanade on a small window.
2. ``robust_bundle_adjustment``: poses, points and the focal once more under a Cauchy loss of
   ``SfmConfig.refine_loss_px`` pixels, so far-off observations lose their pull.
3. ``add_corner_tracks`` (``tracks.py``): Shi-Tomasi corners of every few frames followed by
   Lucas-Kanade into their neighbours, triangulated with the poses of step 2 and added to the model;
   the robust adjustment runs again. Against ground truth the tracks are off by 0.08 px median /
   0.15 px RMS and are 2-3 x as many observations as the SIFT tracks. They are kept when the
   mapper's own observations still agree with the model (median error grown by at most
   ``SfmConfig.refine_track_max_error_growth``).

A refinement that moves the focal by more than ``SfmConfig.refine_max_focal_change`` is dropped.
Measured on 21 synthetic clips (session 12): ATE median 0.084 % (robust adjustment with aligned
keypoints) -> 0.073 % with corner tracks, better on 16 of 21; HoloLens 0.757 -> 0.699 % (session 11,
robust adjustment).
"""

from __future__ import annotations

import time
from pathlib import Path

import vid3d  # noqa: F401  (imports zlib before pycolmap: pycolmap 4.x otherwise breaks zlib)

import cv2
import numpy as np

from vid3d.formats.conventions import project_points
from vid3d.formats.errors import ShapeError

from . import colmap, tracks
from .config import SfmConfig

# the robust adjustment starts at the mapper's optimum: a function tolerance (COLMAP sets 0) stops it
# sooner with the same poses (synthetic planar: ATE 0.1316 % at 0 and at 1e-6, 0.1320 % at 1e-4; 3.2,
# 1.2 and 0.6 s; apple at 1e-6 / 1e-5 / 1e-4: 2.4 / 1.7 / 1.4 s, the same focal to 0.001 px)
FUNCTION_TOLERANCE = 1e-5
MAX_ITERATIONS = 50
MIN_POINTS = 10  # fewer sparse points than this: the refinement does not run


def lk_align(gray_ref: np.ndarray, gray_tgt: np.ndarray, xy_ref: np.ndarray, xy_tgt: np.ndarray, *,
             window: int, max_shift_px: float) -> tuple[np.ndarray, np.ndarray]:
    """Align the texture around ``xy_ref`` in ``gray_ref`` to ``gray_tgt``, starting at ``xy_tgt``.

    Args:
        gray_ref, gray_tgt: (H, W) uint8 images.
        xy_ref, xy_tgt: (N, 2) float pixel positions (pixel centres at +0.5) of the same points.
        window: side of the square window (odd, pixels); one pyramid level (the start is within a pixel).
        max_shift_px: alignments that move a point further than this from ``xy_tgt`` are rejected.
    Returns:
        (N, 2) float64 aligned positions in ``gray_tgt`` (``xy_tgt`` where rejected) and (N,) bool accepted.
    """
    xy_ref = np.asarray(xy_ref, np.float64)
    xy_tgt = np.asarray(xy_tgt, np.float64)
    if xy_ref.shape != xy_tgt.shape or xy_ref.ndim != 2 or xy_ref.shape[1] != 2:
        raise ShapeError(f"lk_align expects xy_ref and xy_tgt (N, 2), got {xy_ref.shape} and {xy_tgt.shape}")
    if gray_ref.shape != gray_tgt.shape or gray_ref.ndim != 2:
        raise ShapeError(f"lk_align expects two (H, W) images, got {gray_ref.shape} and {gray_tgt.shape}")
    if not len(xy_ref):
        return xy_tgt.copy(), np.zeros(0, bool)
    criteria = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 50, 1e-3)
    # OpenCV puts pixel centres at integers: shift by -0.5 in, +0.5 out
    p0 = (xy_ref - 0.5).astype(np.float32).reshape(-1, 1, 2)
    p1 = (xy_tgt - 0.5).astype(np.float32).reshape(-1, 1, 2)
    out, status, _ = cv2.calcOpticalFlowPyrLK(gray_ref, gray_tgt, p0, p1.copy(), winSize=(window, window), maxLevel=0,
                                              criteria=criteria, flags=cv2.OPTFLOW_USE_INITIAL_FLOW)
    out = out.reshape(-1, 2).astype(np.float64) + 0.5
    ok = status.reshape(-1).astype(bool) & (np.linalg.norm(out - xy_tgt, axis=1) < max_shift_px)
    ok &= np.isfinite(out).all(axis=1)
    return np.where(ok[:, None], out, xy_tgt), ok


def track_references(frame: np.ndarray, point: np.ndarray) -> np.ndarray:
    """For each observation, the index of its track's reference observation: the one in the middle
    frame of the track (frames sorted; the earlier of two middles).

    Args:
        frame, point: (M,) int frame and 3-D point of every observation.
    Returns:
        (M,) int64 index into the observations.
    """
    frame = np.asarray(frame, np.int64)
    point = np.asarray(point, np.int64)
    if frame.shape != point.shape or frame.ndim != 1:
        raise ShapeError(f"track_references expects frame and point (M,), got {frame.shape} and {point.shape}")
    if not len(point):
        return np.zeros(0, np.int64)
    order = np.lexsort((frame, point))
    p_sorted = point[order]
    starts = np.flatnonzero(np.r_[True, p_sorted[1:] != p_sorted[:-1]])
    counts = np.diff(np.r_[starts, len(point)])
    mid = order[starts + (counts - 1) // 2]  # one reference per track, in track order
    ref = np.empty(len(point), np.int64)
    ref[order] = np.repeat(mid, counts)
    return ref


def reprojection_errors(T_world_camera: dict[int, np.ndarray], K: np.ndarray, points: np.ndarray,
                        obs: np.ndarray) -> np.ndarray:
    """Pixel distance between every observation and its point's projection, ``(M,)``.

    Args:
        T_world_camera: frame -> (4, 4) camera-to-world.
        K: (3, 3) pinhole intrinsics.
        points: (N, 3) world points.
        obs: (M, 4) rows of (frame, point index, u, v).
    """
    err = np.zeros(len(obs))
    for f in np.unique(obs[:, 0]).astype(int):
        sel = obs[:, 0] == f
        uv, _ = project_points(points[obs[sel, 1].astype(int)], K, T_world_camera[f])
        err[sel] = np.linalg.norm(uv - obs[sel, 2:4], axis=1)
    return err


def adjust_keypoints(rec, image_dir: Path, config: SfmConfig) -> dict:
    """Move every observation of ``rec`` (a pycolmap.Reconstruction, changed in place) to where its
    track's reference observation's texture is (``lk_align``). Returns counts and the median shift."""
    model = colmap.model_from_reconstruction(rec)
    obs = model.obs
    ref = track_references(obs[:, 0].astype(np.int64), obs[:, 1].astype(np.int64))
    frames = np.unique(obs[:, 0]).astype(int)
    gray = {f: cv2.imread(str(Path(image_dir) / colmap.image_name(f)), cv2.IMREAD_GRAYSCALE) for f in frames}
    new_uv = obs[:, 2:4].copy()
    accepted = np.zeros(len(obs), bool)
    todo = np.flatnonzero(ref != np.arange(len(obs)))
    pair = obs[ref[todo], 0].astype(np.int64) * (frames.max() + 1) + obs[todo, 0].astype(np.int64)
    for key in np.unique(pair):
        idx = todo[pair == key]
        a, b = int(obs[ref[idx[0]], 0]), int(obs[idx[0], 0])
        uv, ok = lk_align(gray[a], gray[b], obs[ref[idx], 2:4], obs[idx, 2:4], window=config.refine_keypoint_window,
                          max_shift_px=config.refine_keypoint_max_shift_px)
        new_uv[idx] = uv
        accepted[idx] = ok
    image_of = {int(Path(im.name).stem): im for im in rec.images.values()}
    for k in np.flatnonzero(accepted):
        image_of[int(obs[k, 0])].points2D[int(model.obs_keypoint[k])].xy = new_uv[k]
    shift = np.linalg.norm(new_uv[accepted] - obs[accepted, 2:4], axis=1)
    return {"observations": int(len(obs)), "aligned": int(len(todo)), "moved": int(accepted.sum()),
            "median_shift_px": round(float(np.median(shift)), 4) if len(shift) else 0.0}


def robust_bundle_adjustment(rec, config: SfmConfig, refine_focal: bool) -> None:
    """Poses, points and (when ``refine_focal``) the focal of ``rec`` (changed in place) under a Cauchy
    loss of ``config.refine_loss_px`` pixels; the principal point too when ``config.refine_principal_point``
    or ``config.refine_principal_point_robust``."""
    pycolmap = colmap._pycolmap()
    options = pycolmap.BundleAdjustmentOptions()
    options.refine_focal_length = bool(refine_focal)
    options.refine_principal_point = config.refine_principal_point or config.refine_principal_point_robust
    options.refine_extra_params = False
    options.print_summary = False
    options.ceres.loss_function_type = pycolmap.LossFunctionType.CAUCHY
    options.ceres.loss_function_scale = float(config.refine_loss_px)
    options.ceres.solver_options.num_threads = config.num_threads
    options.ceres.solver_options.function_tolerance = FUNCTION_TOLERANCE
    options.ceres.solver_options.max_num_iterations = MAX_ITERATIONS
    # the adjuster itself, not pycolmap.bundle_adjustment, which logs a heading past glog's level
    setup = pycolmap.BundleAdjustmentConfig()
    for image_id, image in rec.images.items():
        if image.has_pose:
            setup.add_image(image_id)
    setup.fix_gauge(pycolmap.BundleAdjustmentGauge.TWO_CAMS_FROM_WORLD)
    pycolmap.create_default_bundle_adjuster(options, setup, rec).solve()


def _median_error(model: colmap.Model) -> float:
    err = reprojection_errors(model.T_world_camera, model.K, model.points_world, model.obs)
    return float(np.median(err)) if len(err) else float("nan")


def add_corner_tracks(rec, image_dir: Path, masks: np.ndarray | None, config: SfmConfig) -> dict:
    """Corner tracks (``tracks.py``) from every ``config.refine_track_step``-th registered frame,
    triangulated with ``rec``'s poses and added to it (changed in place). Returns counts.

    Args:
        masks: (T, H, W) bool, True = moving (no corners there), or None.
    """
    model = colmap.model_from_reconstruction(rec)
    image_id = {int(Path(im.name).stem): iid for iid, im in rec.images.items() if im.has_pose}
    frames = sorted(image_id)
    rgb = {t: cv2.cvtColor(cv2.imread(str(Path(image_dir) / colmap.image_name(t))), cv2.COLOR_BGR2RGB) for t in frames}
    gray = {t: cv2.cvtColor(rgb[t], cv2.COLOR_RGB2GRAY) for t in frames}
    static = {t: np.ones(gray[t].shape, bool) if masks is None else ~np.asarray(masks[t], bool) for t in frames}
    P = {t: model.K @ np.linalg.inv(model.T_world_camera[t])[:3] for t in frames}  # world -> pixel
    counts = {"references": 0, "followed": 0, "points": 0, "observations": 0}
    for ref in frames[::config.refine_track_step]:
        tr = tracks.follow_corners(gray, static, ref, span=config.refine_track_span, corners=config.refine_track_corners,
                                   window=config.refine_track_window, fb_max_px=config.refine_track_fb_px)
        if not len(tr.uv):
            continue
        Ps = np.stack([P[int(t)] for t in tr.frames])
        X = tracks.triangulate(Ps, tr.uv, tr.valid)
        T_world_camera = np.stack([model.T_world_camera[int(t)] for t in tr.frames])
        keep = tracks.good_tracks(model.K, T_world_camera, tr.uv, tr.valid, X,
                                  min_observations=3, max_error_px=config.refine_track_max_error_px,
                                  min_angle_deg=config.refine_track_min_angle_deg)
        n, m = tracks.add_to_reconstruction(rec, image_id, tr, X, keep, rgb[ref])
        counts["references"] += 1
        counts["followed"] += len(tr.uv)
        counts["points"] += n
        counts["observations"] += m
    return counts


def refine(rec, image_dir: Path, config: SfmConfig, refine_focal: bool,
           masks: np.ndarray | None = None) -> tuple[colmap.Model, dict]:
    """The refined model of the mapper's reconstruction ``rec`` (left unchanged) and a report:
    median reprojection error before and after, whether the adjusted keypoints were kept and why,
    and ``kept``: whether the refinement was kept at all.

    A refinement that moves the focal by more than ``config.refine_max_focal_change`` is not kept:
    the mapper's bundle adjustment had already fitted the focal to every observation, so a large move
    means the clip barely constrains the model and the two losses disagree about it (forward motion
    at 64x96: 94.7 -> 54.4 px, from 10 to 37 % off, ATE 3.4 -> 7.8 %; with the focal held, 4.7 %;
    the 64x96 orbit's 8 % move corrected its focal from 8 to 0.8 % off).
    The mapper's model is returned then, and the report says why.

    Args:
        masks: (T, H, W) bool, True = moving: no corner tracks there (None: all static)."""
    t0 = time.perf_counter()
    if rec.num_points3D() < MIN_POINTS:
        # a model the mapper left without structure (the bear pan, stopped at its time limit: 8
        # frames, 0 points): nothing to adjust
        return colmap.model_from_reconstruction(rec), {
            "kept": False, "why": f"not run: the model has {rec.num_points3D()} points (< {MIN_POINTS})",
            "seconds": round(time.perf_counter() - t0, 2)}
    model, report = _refine_once(rec, image_dir, config, refine_focal, masks)
    change = abs(report["focal_after"] / report["focal_before"] - 1)
    report["kept"] = bool(change <= config.refine_max_focal_change)
    if not report["kept"]:
        model = colmap.model_from_reconstruction(rec)
        report["why"] = (f"not kept: it moved the focal {report['focal_before']:.1f} -> {report['focal_after']:.1f} px "
                         f"({change:.1%} > {config.refine_max_focal_change:.0%})")
    report["seconds"] = round(time.perf_counter() - t0, 2)
    return model, report


def _refine_once(rec, image_dir: Path, config: SfmConfig, refine_focal: bool,
                 masks: np.ndarray | None) -> tuple[colmap.Model, dict]:
    pycolmap = colmap._pycolmap()
    before = colmap.model_from_reconstruction(rec)
    report = {"loss": f"cauchy {config.refine_loss_px} px", "median_error_px_before": round(_median_error(before), 4),
              "focal_before": round(float(before.K[0, 0]), 3)}
    plain = pycolmap.Reconstruction(rec)
    robust_bundle_adjustment(plain, config, refine_focal)
    chosen = colmap.model_from_reconstruction(plain)
    chosen_rec = plain
    report["median_error_px_robust"] = round(_median_error(chosen), 4)
    report["keypoints"] = "off (SfmConfig.refine_keypoints)"
    if config.refine_keypoints:
        adjusted = pycolmap.Reconstruction(rec)
        stats = adjust_keypoints(adjusted, image_dir, config)
        robust_bundle_adjustment(adjusted, config, refine_focal)
        model = colmap.model_from_reconstruction(adjusted)
        err = round(_median_error(model), 4)
        report["keypoints_adjusted"] = stats
        report["median_error_px_keypoints_adjusted"] = err
        if err < report["median_error_px_robust"]:
            chosen, chosen_rec = model, adjusted
            report["keypoints"] = f"adjusted and kept: tracks agree better ({err:.3f} < {report['median_error_px_robust']:.3f} px)"
        else:
            report["keypoints"] = f"adjusted, not kept: tracks agree no better ({err:.3f} >= {report['median_error_px_robust']:.3f} px)"
    report["tracks"] = "off (SfmConfig.refine_tracks)"
    if config.refine_tracks:
        chosen, report["tracks"], report["corner_tracks"] = _with_corner_tracks(chosen, chosen_rec, image_dir, masks,
                                                                                config, refine_focal)
    report["median_error_px_after"] = round(_median_error(chosen), 4)
    report["focal_after"] = round(float(chosen.K[0, 0]), 3)
    return chosen, report


def _with_corner_tracks(chosen: colmap.Model, chosen_rec, image_dir: Path, masks: np.ndarray | None,
                        config: SfmConfig, refine_focal: bool) -> tuple[colmap.Model, str, dict]:
    """``chosen`` adjusted again with corner tracks added; kept when the mapper's own observations
    agree with it nearly as well as before (median error grown by at most
    ``config.refine_track_max_error_growth``): tracks that disagree with the SIFT tracks (a moving
    object the masks missed, a wrong alignment) pull the poses away from them."""
    pycolmap = colmap._pycolmap()
    rec = pycolmap.Reconstruction(chosen_rec)
    old_ids = set(rec.points3D)
    counts = add_corner_tracks(rec, image_dir, masks, config)
    if counts["points"] == 0:
        return chosen, "none followed", counts
    robust_bundle_adjustment(rec, config, refine_focal)
    model = colmap.model_from_reconstruction(rec)
    ids = np.fromiter(rec.points3D.keys(), np.int64)  # the rows of model.points_world
    old_rows = np.flatnonzero(np.isin(ids, np.fromiter(old_ids, np.int64)))
    sel = np.isin(model.obs[:, 1].astype(np.int64), old_rows)
    err_all = reprojection_errors(model.T_world_camera, model.K, model.points_world, model.obs)
    before = _median_error(chosen)
    after = float(np.median(err_all[sel])) if sel.any() else float("nan")
    counts["median_error_px_sift_before"] = round(before, 4)
    counts["median_error_px_sift_after"] = round(after, 4)
    counts["median_error_px_tracks"] = round(float(np.median(err_all[~sel])), 4) if (~sel).any() else None
    limit = (1 + config.refine_track_max_error_growth) * before
    if after <= limit:
        return model, (f"added and kept: {counts['points']} points, {counts['observations']} observations; "
                       f"the mapper's observations {before:.3f} -> {after:.3f} px"), counts
    return chosen, (f"added, not kept: the mapper's observations {before:.3f} -> {after:.3f} px "
                    f"(> {limit:.3f})"), counts
