"""Stage 4 entry: ``run(rgb, masks, config, workdir) -> PoseResult`` (camera poses + shared intrinsics).

    frames (+ masks) -> SIFT -> matching -> focal self-calibration -> incremental mapping
      -> largest model -> refinement (robust bundle adjustment, corner tracks added; refine.py, tracks.py)
      -> PnP re-registration of the rest -> motion model (translating or pan)
      -> translating: rotation-only / interpolation fill of what is left
         pan: homography chain -> rotation-only bundle adjustment (rotations + focal, every match)
      -> (optional) scale normalisation -> PoseResult
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import cv2
import numpy as np

from vid3d.formats.errors import InputError, ShapeError

from . import colmap, pan_ba, refine
from .config import PoseResult, SfmConfig
from .fill import fill_missing, pnp_register
from .focal import estimate_focal, pair_geometries

log = logging.getLogger("vid3d.sfm")

ADVICE = "try a longer clip, a smaller --stride (more overlap between frames) or footage with more camera translation"


def _check_inputs(rgb: np.ndarray, masks: np.ndarray | None) -> None:
    if not isinstance(rgb, np.ndarray) or rgb.ndim != 4 or rgb.shape[-1] != 3 or rgb.dtype != np.uint8:
        got = f"{getattr(rgb, 'shape', None)} {getattr(rgb, 'dtype', type(rgb).__name__)}"
        raise ShapeError(f"estimate_poses expects rgb (T, H, W, 3) uint8, got {got}")
    if rgb.shape[0] < 2:
        raise InputError(f"camera poses need at least 2 frames, got {rgb.shape[0]}")
    if masks is not None:
        masks = np.asarray(masks)
        if masks.shape != rgb.shape[:3]:
            raise ShapeError(f"masks must be (T, H, W) = {rgb.shape[:3]}, got {masks.shape}")


def _choose_model(recs: dict) -> tuple[int | None, list[int]]:
    """Index of the model with most registered frames, and the sizes of all models."""
    if not recs:
        return None, []
    sizes = {k: r.num_reg_images() for k, r in recs.items()}
    best = max(sizes, key=lambda k: (sizes[k], -k))
    return best, sorted(sizes.values(), reverse=True)


def _map(database: Path, image_dir: Path, out_dir: Path, config: SfmConfig, num_frames: int,
         ) -> tuple[colmap.Model | None, dict]:
    """One incremental mapping; the largest model (its pycolmap reconstruction in ``info["rec"]``)."""
    limit = colmap.mapper_time_limit(config, num_frames)
    t0 = time.perf_counter()
    recs = colmap.run_mapper(database, image_dir, out_dir, config, limit)
    best, sizes = _choose_model(recs)
    seconds = time.perf_counter() - t0
    info = {"model_sizes": sizes, "seconds": round(seconds, 2), "hit_time_limit": bool(0 < limit <= seconds)}
    if info["hit_time_limit"]:
        log.warning("sfm: mapping stopped at its time limit (%d s); keeping the models built so far", limit)
    if best is None:
        return None, info
    info["rec"] = recs[best]
    return colmap.model_from_reconstruction(recs[best]), info


def _refined(model: colmap.Model, rec, image_dir: Path, config: SfmConfig, refine_focal: bool,
             masks: np.ndarray | None) -> tuple[colmap.Model, dict]:
    """The mapper's model once more (``refine.refine``: a robust bundle adjustment, corner tracks
    added) and its report; ``model`` itself when the refinement is not kept or fails."""
    try:
        refined, report = refine.refine(rec, image_dir, config, refine_focal, masks)
    except (RuntimeError, ValueError, cv2.error) as e:  # pycolmap / Ceres / OpenCV on a degenerate model
        report = {"kept": False, "why": f"failed ({type(e).__name__}: {str(e)[:120]}); the mapper's model stands"}
        log.warning("sfm: refinement %s", report["why"])
        return model, report
    if report["kept"]:
        log.info("sfm: refined: median reprojection error %.3f -> %.3f px, focal %.1f -> %.1f; keypoints %s; "
                 "corner tracks %s", report["median_error_px_before"], report["median_error_px_after"],
                 report["focal_before"], report["focal_after"], report["keypoints"], report["tracks"])
    else:
        log.warning("sfm: refinement %s", report["why"])
    return refined, report


def _rotation_only_solution(graph, num_frames: int, K: np.ndarray) -> dict[int, np.ndarray]:
    """All frames posed by a homography chain from frame 0 (camera centre fixed): pans / tripods."""
    poses = {0: np.eye(4)}
    filled, how = fill_missing(poses, num_frames, graph, K, rotation_only=True)
    if sum(1 for v in how.values() if v == "homography") < num_frames - 1:
        return {}
    return filled


def observed_depths(poses: dict[int, np.ndarray], points: np.ndarray, obs: np.ndarray) -> np.ndarray:
    """Positive z-depths ``(M,)`` of the sparse points ``(N, 3)`` in every posed camera that observes
    them (``obs`` ``(K, 4)`` rows of frame, point, u, v; ``poses`` frame -> T_world_camera)."""
    from vid3d.formats.conventions import invert_T, transform_points

    z = [transform_points(invert_T(poses[int(f)]), points[obs[obs[:, 0] == f, 1].astype(int)])[:, 2]
         for f in np.unique(obs[:, 0]) if int(f) in poses]
    z = np.concatenate(z) if z else np.zeros(0)
    return z[z > 0]


def translation_over_depth(poses: dict[int, np.ndarray], points: np.ndarray, obs: np.ndarray) -> float:
    """The largest distance between two registered camera centres over the median depth of the sparse
    points seen by those cameras (0 for a camera that only rotates; nan without points)."""
    centres = np.stack([poses[f][:3, 3] for f in sorted(poses)])
    extent = float(np.max(np.linalg.norm(centres[:, None] - centres[None], axis=-1))) if len(poses) > 1 else 0.0
    z = observed_depths(poses, points, obs)
    return extent / float(np.median(z)) if len(z) else float("nan")


def _pan_reason(registered: int, num_frames: int, travel: float, fe, config: SfmConfig) -> str:
    """Why the clip is treated as a pan (rotation-only camera), or "" when it is not.

    A pan is a conclusion, never a shortcut: the mapper always runs first. It is one when SfM (mapper
    + PnP) could not register enough of the clip; or when it did, and the camera travelled a negligible
    distance against the scene's depth (a tripod pan, where any recovered translation is noise); or
    when the recovered travel is small and every frame pair is explained by a rotation (K^-1 H K a
    rotation at the fitted focal, no pair with parallax): then the mapper's small translation is made
    up from noise, which a camera that translates in front of one plane never shows (its homographies
    are not rotations)."""
    if registered < max(2, config.min_registered_fraction * num_frames):
        return (f"reconstruction failed: {registered}/{num_frames} frames registered "
                f"(< {config.min_registered_fraction:.0%})")
    if np.isfinite(travel) and travel < config.pan_max_translation:
        return (f"negligible translation: camera travel {travel:.3g} x median scene depth "
                f"(< {config.pan_max_translation})")
    if _every_pair_a_rotation(fe) and (not np.isfinite(travel) or travel < config.pan_max_rotation_travel):
        moved = (f"the reconstruction's travel {travel:.3g} x median scene depth is small "
                 f"(< {config.pan_max_rotation_travel})" if np.isfinite(travel)
                 else "the reconstruction measured no travel")
        return (f"every frame pair is a rotation ({fe.rotation_pairs} homography pairs with K^-1 H K a rotation, "
                f"none with parallax) and {moved}")
    return ""


def _every_pair_a_rotation(fe) -> bool:
    """Whether the pairs' homographies are rotations (K^-1 H K a rotation), with no pair showing
    parallax and at most 10 % of them planar."""
    return bool(fe.source == "rotation" and fe.planar_pairs <= 0.1 * max(fe.rotation_pairs, 1))


def _pan_K(fe, default_focal: float, H: int, W: int) -> np.ndarray:
    """(3, 3) intrinsics a pan starts from: the rotations' focal (Hartley) when they observed it, else
    the assumed default; principal point at the centre."""
    f = fe.focal if _rotations_give_focal(fe) else default_focal
    return np.array([[f, 0, W / 2], [0, f, H / 2], [0, 0, 1.0]])


def _rotations_give_focal(fe) -> bool:
    """Whether the rotation homographies of a pan observed its focal (Hartley, a sharp minimum)."""
    return bool(fe.source == "rotation" and fe.sharpness > 1.2)


def _pan_poses(rot: dict[int, np.ndarray], K: np.ndarray, graph, config: SfmConfig, *, refine_focal: bool):
    """The poses of a pan: the homography chain ``rot`` (frame -> T_world_camera), refined by the
    rotation-only bundle adjustment when ``config.pan_bundle_adjustment``. Returns (poses, K,
    registered (T,) bool, how {frame: "homography"} for the frames it did not pose, report or None)."""
    from vid3d.formats.conventions import make_T

    T = len(rot)
    registered = np.zeros(T, bool)
    registered[0] = True  # the chain's reference frame
    chain = (rot, K, registered, {t: "homography" for t in range(1, T)})
    if not config.pan_bundle_adjustment:
        return (*chain, None)
    matches = pan_ba.pan_matches_from_graph(graph, max_per_pair=config.pan_ba_matches_per_pair, seed=config.seed)
    res = pan_ba.refine_pan(np.stack([rot[t][:3, :3] for t in range(T)]), K, matches, refine_focal=refine_focal)
    if not res.report["kept"]:
        log.warning("sfm: rotation-only bundle adjustment not kept: %s", res.report.get("reason"))
        return (*chain, res.report)
    log.info("sfm: rotation-only bundle adjustment over %d matches: %.2f -> %.2f px RMS, focal %.1f -> %.1f",
             res.report["matches"], res.report["rms_px_before"], res.report["rms_px_after"], K[0, 0], res.focal)
    K = K.copy()
    K[0, 0] = K[1, 1] = res.focal
    poses = {t: make_T(res.R_world_camera[t], rot[t][:3, 3]) for t in range(T)}
    registered = registered | res.frames_in_ba
    return poses, K, registered, {t: "homography" for t in range(1, T) if not registered[t]}, res.report


def rotation_span_deg(poses: dict[int, np.ndarray]) -> float:
    """Largest rotation angle (deg) between the cameras ``{frame: T_world_camera (4, 4)}``."""
    R = np.stack([poses[f][:3, :3] for f in sorted(poses)])
    if len(R) < 2:
        return 0.0
    rel = np.einsum("aji,bjk->abik", R, R)  # R_a^T R_b for every pair
    cos = (np.trace(rel, axis1=2, axis2=3) - 1) / 2
    return float(np.degrees(np.arccos(np.clip(cos, -1, 1))).max())


def _plausible_focal(focal: float, width: int) -> bool:
    """A focal of an ordinary camera: horizontal field of view between ~20 and ~120 degrees."""
    return 0.29 * width <= focal <= 2.75 * width


def _focal_source(pan_reason: str, fe, refined: bool, init_name: str, default_focal: float, side: int,
                  unobservable: str | None = None, pan_ba: dict | None = None) -> str:
    """One line saying where the focal comes from, starting with ``assumed`` when it was not observed."""
    if pan_reason:
        if _rotations_give_focal(fe):
            line = f"rotation homographies of the panning camera ({fe.num_pairs} pairs, Hartley self-calibration)"
            if pan_ba and pan_ba.get("kept") and pan_ba.get("refine_focal"):
                line += f", refined by rotation-only bundle adjustment over {pan_ba['matches']} matches"
            return line
        return (f"assumed: {default_focal:.1f} px = 1.2 x the long side {side} px (not observable: the camera "
                f"neither translates nor rotates enough)")
    if unobservable:
        return (f"assumed: {default_focal:.1f} px = 1.2 x the long side {side} px (not observable: "
                f"{unobservable})")
    init = {"self_calibration": "self-calibration", "second_guess": "a second guess (SfmConfig.second_focal_init)"
            }.get(init_name, "the default 1.2 x long side")
    if refined:
        return f"bundle adjustment (initialised by {init})"
    return f"assumed: bundle adjustment could not constrain it, kept at its initial value ({init})"


def run(rgb: np.ndarray, masks: np.ndarray | None, config: SfmConfig, workdir: Path) -> PoseResult:
    """Camera-to-world poses and one shared pinhole camera for every frame.

    Args:
        rgb: (T, H, W, 3) uint8 frames at the working resolution.
        masks: (T, H, W) bool, True = moving (no features there), or None.
        config: SfmConfig.
        workdir: folder for images, masks, database and models (created).
    Returns:
        PoseResult (T_world_camera (T, 4, 4) f64, K (3, 3) f64, registered (T,) bool, sparse points,
        report).
    Raises:
        ShapeError on malformed arrays; InputError when the clip cannot be posed (says why and what to try).
    """
    _check_inputs(rgb, masks)
    T, H, W = rgb.shape[:3]
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    report: dict = {"num_frames": T, "image_size": [H, W], "config": {k: getattr(config, k) for k in config.__dataclass_fields__}}

    t0 = time.perf_counter()
    image_dir, mask_dir = colmap.write_inputs(rgb, None if masks is None else np.asarray(masks, bool), workdir)
    database = workdir / "database.db"
    report["matcher"] = colmap.extract_and_match(image_dir, mask_dir, database, config, T)
    graph = colmap.read_match_graph(database)
    timings["features_and_matching"] = time.perf_counter() - t0
    report["verified_pairs"] = len(graph.matches)
    report["keypoints_per_frame"] = float(np.mean([len(k) for k in graph.kps.values()])) if graph.kps else 0.0
    log.info("sfm: %d frames, %.0f keypoints/frame, %d verified pairs (%s matching)",
             T, report["keypoints_per_frame"], len(graph.matches), report["matcher"])

    # focal initialisation: Mendonca-Cipolla over pairs with parallax, else Hartley over rotations
    t0 = time.perf_counter()
    default_focal = 1.2 * max(H, W)
    geoms = pair_geometries(graph.kps, graph.matches, max_pairs=400)
    fe = estimate_focal(geoms, H, W)
    report["pairs_with_parallax"] = len(geoms.Fs)
    report["pairs_rotation"] = fe.rotation_pairs
    report["pairs_planar"] = fe.planar_pairs
    report["focal_self_calibration"] = {"focal": fe.focal, "pairs": fe.num_pairs, "sharpness": fe.sharpness,
                                        "from": fe.source}
    use_self = config.focal_init == "self_calibration" and np.isfinite(fe.focal) and fe.sharpness > 1.2
    init_focal = fe.focal if use_self else default_focal
    timings["focal"] = time.perf_counter() - t0

    # the mapper always runs: a homography also fits every pair dominated by one plane (a wall, the
    # floor) while the camera translates, so "rotation-only" is decided after mapping, never before
    t0 = time.perf_counter()
    candidates = []
    colmap.set_initial_focal(database, init_focal)
    model, info = _map(database, image_dir, workdir / "sparse", config, T)
    focal_refined = config.refine_focal
    moved = model is not None and not 0.5 < model.K[0, 0] / init_focal < 2.0
    if moved and _plausible_focal(model.K[0, 0], W):
        # a self-calibration off by > 2x (weak or noisy two-view geometry) that bundle adjustment,
        # with every view at once, corrected to an ordinary field of view: keep the mapper's
        report["focal_moved"] = {"from": init_focal, "to": float(model.K[0, 0])}
    elif moved:
        # bundle adjustment ran away with the focal (it is not observable, e.g. pure translation):
        # map again with it fixed
        log.warning("sfm: mapper moved the focal from %.1f to %.1f; re-mapping with the focal fixed",
                    init_focal, model.K[0, 0])
        report["focal_runaway"] = float(model.K[0, 0])
        model, info = _map(database, image_dir, workdir / "sparse", config.replace(refine_focal=False), T)
        focal_refined = False
    init_method = "self_calibration" if use_self else "default"
    turn = rotation_span_deg(model.T_world_camera) if model is not None else float("nan")
    report["rotation_span_deg"] = turn
    if model is not None and focal_refined and turn < config.focal_min_rotation_deg:
        # a camera that only translates: focal and depth trade off exactly (u' = u + f t / z), so
        # whatever bundle adjustment found is noise; map again with the focal assumed
        report["focal_unobservable"] = (f"the camera turned at most {turn:.2g} deg "
                                        f"(< {config.focal_min_rotation_deg}): focal and depth trade off")
        init_focal, init_method, use_self = default_focal, "default", False
        colmap.set_initial_focal(database, default_focal)
        model, info = _map(database, image_dir, workdir / "sparse", config.replace(refine_focal=False), T)
        focal_refined = False
    candidates.append((init_method, init_focal, model, info))
    def map_from(name: str, focal: float, folder: str) -> None:
        """Map once more from another initial focal; a result far from it and implausible is dropped."""
        colmap.set_initial_focal(database, focal)
        m, i = _map(database, image_dir, workdir / folder, config, T)
        if m is not None and not (0.5 < m.K[0, 0] / focal < 2.0 or _plausible_focal(m.K[0, 0], W)):
            m = None
        candidates.append((name, focal, m, i))

    if config.try_both_focal_inits and use_self and focal_refined:
        map_from("default", default_focal, "sparse_default_focal")
    elif config.second_focal_init > 0 and not use_self and focal_refined:
        # no self-calibration to start from: bundle adjustment from one guess can settle in a wrong
        # minimum (forward motion), so start once more from a wider field of view
        map_from("second_guess", config.second_focal_init * max(H, W), "sparse_second_focal")
    timings["mapping"] = time.perf_counter() - t0

    def score(c):
        m = c[2]
        return (-1, 0.0) if m is None else (len(m.T_world_camera), -m.mean_reprojection_error)

    init_name, init_focal, model, info = max(candidates, key=score)
    report["focal_init"] = {"method": init_name, "focal": init_focal,
                            "tried": [{"method": c[0], "focal": c[1], "registered": 0 if c[2] is None else len(c[2].T_world_camera),
                                       "model_sizes": c[3]["model_sizes"], "hit_time_limit": c[3]["hit_time_limit"]}
                                      for c in candidates]}
    report["model_sizes"] = info["model_sizes"]
    if model is not None and config.refine:
        t0 = time.perf_counter()
        model, report["refinement"] = _refined(model, info["rec"], image_dir, config, focal_refined, masks)
        timings["refinement"] = time.perf_counter() - t0

    poses: dict[int, np.ndarray] = {}
    how: dict[int, str] = {}
    K = np.array([[init_focal, 0, W / 2], [0, init_focal, H / 2], [0, 0, 1.0]])
    points = np.zeros((0, 3))
    points_rgb = np.zeros((0, 3), np.uint8)
    obs = np.zeros((0, 4))
    if model is not None:
        poses = dict(model.T_world_camera)
        K = model.K
        points, points_rgb, obs = model.points_world, model.points_rgb, model.obs
        report["mapper_registered"] = len(poses)
        report["reprojection_error_px"] = model.mean_reprojection_error
        # PnP re-registration of frames outside the chosen model (other models, mapper failures)
        t0 = time.perf_counter()
        kp2pt: dict[int, dict[int, int]] = {}  # frame -> {keypoint index: point index}
        for f, k, p in zip(obs[:, 0].astype(int), model.obs_keypoint, obs[:, 1].astype(int)):
            kp2pt.setdefault(int(f), {})[int(k)] = int(p)
        for t in range(T):
            if t in poses:
                continue
            Tp = pnp_register(t, graph, kp2pt, points, model.camera, min_inliers=config.pnp_min_num_inliers)
            if Tp is not None:
                poses[t] = Tp
                how[t] = "pnp"
        timings["pnp"] = time.perf_counter() - t0
    registered = np.array([t in poses for t in range(T)])
    report["registered"] = int(registered.sum())
    report["pnp_registered"] = sorted(t for t, v in how.items() if v == "pnp")

    travel = translation_over_depth(poses, points, obs) if model is not None else float("nan")
    report["translation_over_depth"] = travel
    pan_reason = _pan_reason(int(registered.sum()), T, travel, fe, config)
    pan_fit = None
    if not pan_reason and _every_pair_a_rotation(fe) and config.pan_bundle_adjustment:
        # no pair shows parallax, yet the mapper reconstructed a travel: fit the rotation-only model
        # to every verified match; when it explains them to sub-pixel, that travel is made up
        t0 = time.perf_counter()
        K_pan = _pan_K(fe, default_focal, H, W)
        rot = _rotation_only_solution(graph, T, K_pan)
        if rot:
            pan_fit = _pan_poses(rot, K_pan, graph, config, refine_focal=_rotations_give_focal(fe))
            fit = pan_fit[4] or {}
            rms = fit.get("rms_px_after" if fit.get("kept") else "rms_px_before", float("inf"))
            report["rotation_only_fit_px"] = rms
            timings["rotation_only_fit"] = time.perf_counter() - t0
            if rms < config.pan_max_rotation_rms_px:
                pan_reason = (f"every frame pair is a rotation ({fe.rotation_pairs} homography pairs with K^-1 H K a "
                              f"rotation, none with parallax) and a rotation-only model explains all "
                              f"{fit.get('matches', 0)} verified matches to {rms:.2f} px RMS "
                              f"(< {config.pan_max_rotation_rms_px}): the reconstruction's travel {travel:.3g} x "
                              f"median scene depth is made up")
    report["motion_model"] = "pan" if pan_reason else "translating"
    report["motion_model_decided_by"] = pan_reason or (
        f"reconstruction: {int(registered.sum())}/{T} frames registered, camera travel {travel:.3g} x median "
        f"scene depth")
    if pan_reason:
        # SfM could not solve the clip, or solved it with no translation: a panning / tripod camera.
        # Its focal is the rotations' (Hartley) when they constrain it, else the assumed default.
        if pan_fit is None:
            K = _pan_K(fe, default_focal, H, W)
            rot = _rotation_only_solution(graph, T, K)
            if not rot:
                raise InputError(
                    f"camera poses failed: SfM registered {int(registered.sum())}/{T} frames and the frames are "
                    f"not related by homographies either (too few matching features); {ADVICE}"
                )
            t0 = time.perf_counter()
            pan_fit = _pan_poses(rot, K, graph, config, refine_focal=_rotations_give_focal(fe))
            timings["pan_bundle_adjustment"] = time.perf_counter() - t0
        log.warning("sfm: treated as a panning camera (rotation only): %s", pan_reason)
        poses, K, registered, how, pan_report = pan_fit
        if pan_report is not None:
            report["pan_bundle_adjustment"] = pan_report
        points = np.zeros((0, 3))
        points_rgb = np.zeros((0, 3), np.uint8)
        obs = np.zeros((0, 4))
        report["rotation_only"] = True
        report["registered"] = int(registered.sum())  # the pan's adjustment poses frames too
    else:
        filled, fill_how = fill_missing(poses, T, graph, K, rotation_only=config.fill_rotation_only)
        poses = filled
        how.update(fill_how)
        report["rotation_only"] = False
    report["filled"] = {str(t): v for t, v in sorted(how.items()) if v != "pnp"}
    if report["filled"]:
        counts = {m: sum(1 for v in report["filled"].values() if v == m) for m in set(report["filled"].values())}
        log.warning("sfm: %d frames not registered by SfM were filled (%s)", len(report["filled"]),
                    ", ".join(f"{n} by {m}" for m, n in sorted(counts.items())))

    T_world_camera = np.stack([poses[t] for t in range(T)]).astype(np.float64)
    scale = 1.0
    if config.normalize_scale and len(obs):
        z = observed_depths(dict(enumerate(T_world_camera)), points, obs)
        if len(z):
            scale = 1.0 / float(np.median(z))
            T_world_camera[:, :3, 3] *= scale
            points = points * scale
    report["scale_applied"] = scale
    report["focal"] = [float(K[0, 0]), float(K[1, 1])]
    report["focal_source"] = _focal_source(pan_reason, fe, focal_refined and model is not None, init_name,
                                           default_focal, max(H, W), report.get("focal_unobservable"),
                                           report.get("pan_bundle_adjustment"))
    report["focal_observable"] = not report["focal_source"].startswith("assumed")
    report["principal_point"] = [float(K[0, 2]), float(K[1, 2])]
    report["num_points"] = int(len(points))
    report["seconds"] = {k: round(v, 2) for k, v in timings.items()}
    log.info("sfm: %d/%d frames registered, focal %.1f, %d points, %d filled", int(registered.sum()), T,
             K[0, 0], len(points), len(report["filled"]))
    return PoseResult(
        T_world_camera=T_world_camera, K=np.asarray(K, np.float64), registered=registered,
        points_world=np.asarray(points, np.float64), points_rgb=np.asarray(points_rgb, np.uint8), report=report,
        obs_frame=obs[:, 0].astype(np.int64), obs_point=obs[:, 1].astype(np.int64), obs_uv=obs[:, 2:4].copy(),
    )
