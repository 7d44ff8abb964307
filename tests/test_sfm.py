"""Camera stage (pycolmap): conversion pins, poses + focal vs ground truth, masks, fill-in, errors."""

from __future__ import annotations

import numpy as np
import pytest

import vid3d  # noqa: F401  (zlib before pycolmap)
from vid3d.formats.conventions import make_K, make_T, quat_wxyz_to_R
from vid3d.formats.errors import InputError, ShapeError
from vid3d.eval.metrics import intrinsics_metrics, rotation_angle_deg, trajectory_metrics
from vid3d.optimizer.config import OptimizeConfig
from vid3d.optimizer.sfm import PoseResult, SfmConfig
from vid3d.optimizer.sfm import run as estimate_poses
from vid3d.optimizer.sfm import colmap as colmap_mod
from vid3d.optimizer.sfm.fill import fill_missing, homography_rotation, interpolate_pose
from vid3d.optimizer.sfm.focal import estimate_focal, pair_geometries
from vid3d.synthetic import SceneConfig, make_clip

FAST = SfmConfig(max_num_features=2048)


@pytest.fixture(scope="module")
def static_clip():
    return make_clip(SceneConfig.preset("static").replace(height=144, width=256, num_frames=10, camera_travel=1.0))


@pytest.fixture(scope="module")
def static_poses(static_clip, tmp_path_factory):
    return estimate_poses(static_clip.rgb, None, FAST, tmp_path_factory.mktemp("sfm_static"))


# --- conversion pins -------------------------------------------------------------------------


def test_rigid3d_to_T_world_camera_hand_computed():
    """pycolmap stores cam_from_world with an xyzw quaternion: 90 deg about z, t = (1, 0, 0).

    R_cw = [[0,-1,0],[1,0,0],[0,0,1]]; camera centre C = -R_cw^T t = (0, 1, 0); R_wc = R_cw^T.
    """
    import pycolmap

    s = np.sin(np.pi / 4)
    rigid = pycolmap.Rigid3d(rotation=pycolmap.Rotation3d(np.array([0.0, 0.0, s, s])), translation=np.array([1.0, 0, 0]))
    T = colmap_mod.T_world_camera_from_rigid(rigid)
    expected = np.array([[0, 1, 0, 0], [-1, 0, 0, 1], [0, 0, 1, 0], [0, 0, 0, 1.0]])
    np.testing.assert_allclose(T, expected, atol=1e-12)


# --- poses vs ground truth -------------------------------------------------------------------


def test_static_clip_poses_and_focal_match_ground_truth(static_clip, static_poses):
    p = static_poses
    assert isinstance(p, PoseResult)
    assert p.T_world_camera.shape == (10, 4, 4) and p.K.shape == (3, 3)
    assert p.registered.all(), p.report
    traj = trajectory_metrics(p.T_world_camera, static_clip.T_world_camera)
    assert traj.ate_percent_of_path < 2.0, traj
    assert traj.rpe_rotation_deg < 0.5, traj
    intr = intrinsics_metrics(p.K, static_clip.K)
    assert intr.focal_rel_error < 0.05, (p.K, static_clip.K)
    # sparse points project where their observations are (conventions consistent end to end)
    from vid3d.formats.conventions import project_points

    uv, z = project_points(p.points_world[p.obs_point][:, None, :], p.K, p.T_world_camera[p.obs_frame])
    err = np.linalg.norm(uv[:, 0] - p.obs_uv, axis=-1)
    assert np.median(err) < 1.0 and (z > 0).all()
    # report says what happened
    assert p.report["registered"] == 10 and p.report["filled"] == {}


def test_focal_self_calibration_on_ground_truth_matches(static_clip, tmp_path):
    """The Mendonca-Cipolla sweep alone (before any bundle adjustment) lands near the true focal."""
    image_dir, _ = colmap_mod.write_inputs(static_clip.rgb, None, tmp_path)
    colmap_mod.extract_and_match(image_dir, None, tmp_path / "db.db", FAST, static_clip.num_frames)
    graph = colmap_mod.read_match_graph(tmp_path / "db.db")
    fe = estimate_focal(pair_geometries(graph.kps, graph.matches), static_clip.height, static_clip.width)
    assert abs(fe.focal / static_clip.K[0, 0] - 1) < 0.1, fe


# --- masks ---------------------------------------------------------------------------------------


def test_masks_keep_features_off_masked_regions(static_clip, tmp_path):
    T, H, W = static_clip.rgb.shape[:3]
    masks = np.zeros((T, H, W), bool)
    masks[:, :, : W // 3] = True  # pretend the left third moves
    image_dir, mask_dir = colmap_mod.write_inputs(static_clip.rgb, masks, tmp_path)
    colmap_mod.extract_and_match(image_dir, mask_dir, tmp_path / "db.db", FAST, T)
    graph = colmap_mod.read_match_graph(tmp_path / "db.db")
    xs = np.concatenate([k[:, 0] for k in graph.kps.values()])
    assert len(xs) > 100
    assert xs.min() >= W // 3 - 0.5  # no keypoint inside the mask


# --- fill-in ---------------------------------------------------------------------------------------


def test_blank_frame_is_filled_and_reported(static_clip, tmp_path):
    rgb = static_clip.rgb.copy()
    rgb[5] = 128  # featureless: SfM cannot register it
    p = estimate_poses(rgb, None, FAST, tmp_path)
    assert not p.registered[5] and p.registered.sum() == 9
    assert p.report["filled"] == {"5": "interpolated"}
    traj = trajectory_metrics(p.T_world_camera, static_clip.T_world_camera)
    assert traj.ate_percent_of_path < 3.0


def test_interpolate_pose_slerps_between_neighbours():
    R0 = np.eye(3)
    R2 = quat_wxyz_to_R(np.array([np.cos(0.25), 0, np.sin(0.25), 0]))  # 30-odd degrees about y
    poses = {0: make_T(R0, np.zeros(3)), 2: make_T(R2, np.array([2.0, 0, 0]))}
    mid = interpolate_pose(poses, 1)
    np.testing.assert_allclose(mid[:3, 3], [1, 0, 0])
    ang = rotation_angle_deg(mid[:3, :3].T @ R2)
    np.testing.assert_allclose(ang, np.degrees(0.5) / 2, atol=1e-6)


class _Graph:
    def __init__(self, kps, matches):
        self.kps, self.matches = kps, matches


def test_homography_fill_recovers_rotation_of_a_rotating_camera():
    rng = np.random.default_rng(0)
    K = make_K(200.0, 200.0, 160.0, 120.0)
    P = rng.uniform([-3, -2, 4], [3, 2, 9], (300, 3))  # points in front of camera 0 (world = camera 0)
    R_w1 = quat_wxyz_to_R(np.array([np.cos(0.05), 0.02, np.sin(0.05), 0.0]))
    T1 = make_T(R_w1, np.zeros(3))
    uv0 = P @ K.T
    uv0 = uv0[:, :2] / uv0[:, 2:]
    p1 = P @ R_w1  # R_w1^T p
    uv1 = p1 @ K.T
    uv1 = uv1[:, :2] / uv1[:, 2:]
    idx = np.stack([np.arange(300), np.arange(300)], 1)
    graph = _Graph({0: uv0, 1: uv1}, [(0, 1, idx)])
    R_0_1 = homography_rotation(graph, 1, 0, K)
    assert rotation_angle_deg(R_0_1.T @ R_w1) < 0.05
    poses, how = fill_missing({0: np.eye(4)}, 2, graph, K, rotation_only=True)
    assert how == {1: "homography"}
    assert rotation_angle_deg(poses[1][:3, :3].T @ T1[:3, :3]) < 0.05


# --- bad input -------------------------------------------------------------------------------------


def test_bad_inputs_raise_clear_errors(tmp_path):
    with pytest.raises(ShapeError, match="uint8"):
        estimate_poses(np.zeros((4, 32, 32, 3), np.float32), None, FAST, tmp_path)
    with pytest.raises(InputError, match="at least 2 frames"):
        estimate_poses(np.zeros((1, 32, 32, 3), np.uint8), None, FAST, tmp_path)
    with pytest.raises(ShapeError, match="masks"):
        estimate_poses(np.zeros((3, 32, 32, 3), np.uint8), np.zeros((3, 16, 16), bool), FAST, tmp_path)
    with pytest.raises(InputError, match="camera translation"):
        estimate_poses(np.zeros((4, 64, 96, 3), np.uint8), None, FAST, tmp_path)  # all black
    with pytest.raises(InputError):
        SfmConfig(matcher="vocab")
    for bad in (-0.5, 0.1, 5.0):
        with pytest.raises(InputError, match="second_focal_init"):
            SfmConfig(second_focal_init=bad)
    assert SfmConfig(second_focal_init=0.0).second_focal_init == 0.0  # 0 = off
    assert OptimizeConfig.preset("draft").sfm.max_num_features < OptimizeConfig.preset("best").sfm.max_num_features


@pytest.mark.parametrize("camera, motion, decided", [
    (dict(camera_travel=0.0, camera_yaw=20.0), "pan", "reconstruction failed"),
    (dict(), "translating", "reconstruction:"),
])
def test_the_motion_model_is_a_conclusion_of_the_mapper(tmp_path, camera, motion, decided):
    from vid3d.synthetic import SceneConfig, make_clip

    clip = make_clip(SceneConfig.preset("static").replace(num_frames=16, **camera))
    res = estimate_poses(clip.rgb, None, OptimizeConfig.preset("standard").sfm, tmp_path)
    assert res.report["motion_model"] == motion and res.report["motion_model_decided_by"].startswith(decided)
    assert abs(res.K[0, 0] / clip.K[0, 0] - 1) < 0.03
    if motion == "translating":
        assert res.registered.all() and res.report["translation_over_depth"] > 0.05
        assert trajectory_metrics(res.T_world_camera, clip.T_world_camera).ate_percent_of_path < 1.0


def test_a_tiny_translating_clip_is_not_declared_rotation_only(tmp_path):
    # once declared "rotation-only" before the mapper ran (every pair fit a homography)
    from vid3d.synthetic import SceneConfig, make_clip

    clip = make_clip(SceneConfig.preset("tiny_dynamic").replace(num_frames=9))
    res = estimate_poses(clip.rgb, clip.dynamic_mask, OptimizeConfig.preset("standard").sfm, tmp_path)
    assert res.report["motion_model"] == "translating" and res.registered.sum() >= 8


def test_a_mapping_that_runs_past_its_time_limit_stops_and_says_so(static_clip, tmp_path, monkeypatch):
    """The mapper is stopped after its time limit (here 1 s, the 60 s floor lowered) and the stage still
    finishes with what it built, the report saying that the limit was hit; the limit scales with the clip."""
    from vid3d.optimizer.sfm.colmap import mapper_time_limit

    assert mapper_time_limit(SfmConfig(), 100) == 300 and mapper_time_limit(SfmConfig(), 5) == 60
    assert mapper_time_limit(SfmConfig(mapper_seconds_per_frame=0), 100) == -1
    with pytest.raises(InputError, match="mapper_seconds_per_frame"):
        SfmConfig(mapper_seconds_per_frame=-1)
    monkeypatch.setattr(colmap_mod, "MIN_MAPPER_SECONDS", 0)
    clip = make_clip(SceneConfig.preset("static").replace(height=180, width=320, num_frames=24))
    res = estimate_poses(clip.rgb, None, FAST.replace(mapper_seconds_per_frame=1e-6), tmp_path)
    tried = res.report["focal_init"]["tried"]
    assert tried[0]["hit_time_limit"], tried
    assert res.T_world_camera.shape == (24, 4, 4) and np.isfinite(res.T_world_camera).all()
    unlimited = estimate_poses(clip.rgb, None, FAST.replace(mapper_seconds_per_frame=0), tmp_path / "free")
    assert not any(c["hit_time_limit"] for c in unlimited.report["focal_init"]["tried"])
