"""pycolmap plumbing: frames and masks into a work folder, SIFT, matching, mapping, reading models.

Everything COLMAP-specific lives here; conversions to vid3d's conventions use
``vid3d.formats.conventions.T_world_camera_from_colmap`` (COLMAP stores world-to-camera, wxyz + t).
COLMAP's pixel convention (centre of the top-left pixel at (0.5, 0.5)) is vid3d's, so keypoints and
intrinsics carry over unchanged.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import vid3d  # noqa: F401  (imports zlib before pycolmap: pycolmap 4.x otherwise breaks zlib)

import cv2
import numpy as np

from vid3d.formats.conventions import T_world_camera_from_colmap

from .config import SfmConfig


def _pycolmap():
    import pycolmap

    pycolmap.logging.minloglevel = 3  # glog INFO, WARNING and ERROR off: vid3d reports failures itself
    return pycolmap


def image_name(t: int) -> str:
    """File name of frame ``t`` inside the work folder (sorted order = frame order)."""
    return f"{t:06d}.png"


def write_inputs(rgb: np.ndarray, masks: np.ndarray | None, workdir: Path) -> tuple[Path, Path | None]:
    """Write frames (T, H, W, 3) u8 and COLMAP masks (T, H, W) bool (True = moving) to ``workdir``.

    COLMAP mask files are ``<mask dir>/<image name>.png`` with 0 = no features there.
    Returns (image dir, mask dir or None).
    """
    image_dir = workdir / "images"
    if image_dir.exists():
        shutil.rmtree(image_dir)
    image_dir.mkdir(parents=True)
    for t, im in enumerate(rgb):
        cv2.imwrite(str(image_dir / image_name(t)), np.ascontiguousarray(im[..., ::-1]))
    mask_dir = None
    if masks is not None:
        mask_dir = workdir / "masks"
        if mask_dir.exists():
            shutil.rmtree(mask_dir)
        mask_dir.mkdir(parents=True)
        for t, m in enumerate(masks):
            keep = np.where(m, 0, 255).astype(np.uint8)
            cv2.imwrite(str(mask_dir / (image_name(t) + ".png")), keep)
    return image_dir, mask_dir


def extract_and_match(image_dir: Path, mask_dir: Path | None, database: Path, config: SfmConfig, num_frames: int) -> str:
    """SIFT on CPU into ``database`` with ONE shared camera, then match. Returns the matcher used."""
    pycolmap = _pycolmap()
    if database.exists():
        database.unlink()
    reader = pycolmap.ImageReaderOptions()
    reader.camera_model = config.camera_model
    if mask_dir is not None:
        reader.mask_path = str(mask_dir)
    ext = pycolmap.FeatureExtractionOptions()
    ext.num_threads = config.num_threads
    ext.sift.max_num_features = config.max_num_features
    pycolmap.extract_features(
        database, image_dir, camera_mode=pycolmap.CameraMode.SINGLE,
        reader_options=reader, extraction_options=ext, device=pycolmap.Device.cpu,
    )
    matching = pycolmap.FeatureMatchingOptions()
    matching.num_threads = config.num_threads
    verification = pycolmap.TwoViewGeometryOptions()
    verification.ransac.random_seed = config.seed
    matcher = config.matcher
    if matcher == "auto":
        matcher = "exhaustive" if num_frames <= config.exhaustive_max_frames else "sequential"
    if matcher == "exhaustive":
        pycolmap.match_exhaustive(database, matching_options=matching, verification_options=verification,
                                  device=pycolmap.Device.cpu)
    else:
        pairing = pycolmap.SequentialPairingOptions()
        pairing.overlap = config.sequential_overlap
        pairing.quadratic_overlap = True  # frames 2^k apart: loop closure without a vocabulary tree
        pairing.loop_detection = False
        pycolmap.match_sequential(database, pairing_options=pairing, matching_options=matching,
                                  verification_options=verification, device=pycolmap.Device.cpu)
    return matcher


@dataclass
class MatchGraph:
    """Keypoints and verified matches read back from the database, indexed by frame.

    Attributes:
        kps: frame -> (N, 2) float64 keypoint positions (pixel centres +0.5).
        matches: list of (i, j, idx (M, 2) int) inlier matches between frames i < j.
        image_id: frame -> COLMAP image id.
        camera: the shared pycolmap.Camera.
    """

    kps: dict[int, np.ndarray]
    matches: list[tuple[int, int, np.ndarray]]
    image_id: dict[int, int]
    camera: object


def read_match_graph(database: Path) -> MatchGraph:
    """Read keypoints and verified (inlier) matches of every frame pair."""
    pycolmap = _pycolmap()
    with pycolmap.Database.open(database) as db:
        images = db.read_all_images()
        frame_of = {im.image_id: int(Path(im.name).stem) for im in images}
        kps = {frame_of[im.image_id]: np.asarray(db.read_keypoints(im.image_id))[:, :2].astype(np.float64) for im in images}
        pair_ids, geoms = db.read_two_view_geometries()
        matches = []
        for pid, g in zip(pair_ids, geoms):
            a, b = pycolmap.pair_id_to_image_pair(pid)
            idx = np.asarray(g.inlier_matches)
            if len(idx) == 0:
                continue
            i, j = frame_of[a], frame_of[b]
            if i > j:
                i, j, idx = j, i, idx[:, ::-1]
            matches.append((i, j, idx.astype(np.int64)))
        camera = db.read_all_cameras()[0]
    return MatchGraph(kps, matches, {f: i for i, f in frame_of.items()}, camera)


def set_initial_focal(database: Path, focal: float) -> None:
    """Store ``focal`` as the shared camera's (prior) focal length before mapping."""
    pycolmap = _pycolmap()
    with pycolmap.Database.open(database) as db:
        cam = db.read_all_cameras()[0]
        params = np.asarray(cam.params, dtype=np.float64).copy()
        for k in cam.focal_length_idxs():
            params[k] = focal
        cam.params = params
        cam.has_prior_focal_length = True
        db.update_camera(cam)


MIN_MAPPER_SECONDS = 60


def mapper_time_limit(config: SfmConfig, num_frames: int) -> int:
    """Seconds one incremental mapping may run (``SfmConfig.mapper_seconds_per_frame``; -1 = no limit)."""
    if config.mapper_seconds_per_frame <= 0:
        return -1
    return int(max(MIN_MAPPER_SECONDS, np.ceil(config.mapper_seconds_per_frame * num_frames)))


def run_mapper(database: Path, image_dir: Path, out_dir: Path, config: SfmConfig, max_seconds: int = -1) -> dict:
    """Incremental mapping with video-friendly options, stopped after ``max_seconds`` (-1 = no limit;
    the models built so far are kept). Returns {model index: pycolmap.Reconstruction}."""
    pycolmap = _pycolmap()
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    opts = pycolmap.IncrementalPipelineOptions()
    opts.num_threads = config.num_threads
    opts.random_seed = config.seed
    opts.multiple_models = True
    opts.min_num_matches = config.min_num_matches
    opts.min_model_size = 3
    opts.ba_refine_focal_length = config.refine_focal
    opts.ba_refine_principal_point = config.refine_principal_point
    opts.ba_refine_extra_params = False
    opts.ba_global_frames_ratio = config.ba_global_ratio
    opts.ba_global_points_ratio = config.ba_global_ratio
    opts.mapper.init_min_tri_angle = config.init_min_tri_angle
    opts.mapper.abs_pose_min_num_inliers = config.abs_pose_min_num_inliers
    opts.mapper.init_min_num_inliers = 50
    opts.max_runtime_seconds = int(max_seconds)
    return pycolmap.incremental_mapping(database, image_dir, out_dir, options=opts)


@dataclass
class Model:
    """One reconstruction in vid3d conventions.

    Attributes:
        T_world_camera: frame -> (4, 4) camera-to-world.
        K: (3, 3) intrinsics of the shared camera.
        points_world (N, 3), points_rgb (N, 3) u8, point_error (N,) reprojection error px.
        obs: (M, 4) float64 rows (frame, point index, u, v).
        obs_keypoint: (M,) int64 the keypoint of each observation in its frame (COLMAP's point2D index,
            which is the keypoint's index in the database).
        mean_reprojection_error: px.
    """

    T_world_camera: dict[int, np.ndarray]
    K: np.ndarray
    points_world: np.ndarray
    points_rgb: np.ndarray
    point_error: np.ndarray
    obs: np.ndarray
    obs_keypoint: np.ndarray
    mean_reprojection_error: float
    camera: object


def T_world_camera_from_rigid(cam_from_world) -> np.ndarray:
    """pycolmap ``Rigid3d`` world-to-camera (its quaternion is stored xyzw) -> T_world_camera (4, 4)."""
    qx, qy, qz, qw = np.asarray(cam_from_world.rotation.quat, dtype=np.float64)
    return T_world_camera_from_colmap(np.array([qw, qx, qy, qz]), np.asarray(cam_from_world.translation, np.float64))


def model_from_reconstruction(rec) -> Model:
    """Convert a pycolmap.Reconstruction: cam_from_world (quat xyzw in pycolmap) -> T_world_camera."""
    poses = {}
    frame_of = {}
    for image_id, im in rec.images.items():
        if not im.has_pose:
            continue
        t = int(Path(im.name).stem)
        poses[t] = T_world_camera_from_rigid(im.cam_from_world())
        frame_of[image_id] = t
    camera = next(iter(rec.cameras.values()))
    K = np.asarray(camera.calibration_matrix(), dtype=np.float64)
    ids = list(rec.points3D.keys())
    index = {pid: n for n, pid in enumerate(ids)}
    pts = np.array([rec.points3D[p].xyz for p in ids], dtype=np.float64).reshape(-1, 3)
    rgb = np.array([rec.points3D[p].color for p in ids], dtype=np.uint8).reshape(-1, 3)
    err = np.array([rec.points3D[p].error for p in ids], dtype=np.float64)
    obs, keypoint = [], []
    for image_id, im in rec.images.items():
        if image_id not in frame_of:
            continue
        for k, p2 in enumerate(im.points2D):
            if p2.has_point3D():
                obs.append((frame_of[image_id], index[p2.point3D_id], p2.xy[0], p2.xy[1]))
                keypoint.append(k)
    obs_arr = np.array(obs, dtype=np.float64).reshape(-1, 4)
    mre = float(err.mean()) if len(err) else float("nan")
    return Model(poses, K, pts, rgb, err, obs_arr, np.array(keypoint, np.int64), mre, camera)
