"""Metrics on cases with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from vid3d.formats.conventions import make_T
from vid3d.formats.errors import InputError, ShapeError
from vid3d.eval.metrics import (
    align_depth,
    apply_sim3,
    covisibility,
    depth_metrics,
    evaluate_depth,
    intrinsics_metrics,
    mask_iou,
    rotation_angle_deg,
    temporal_consistency,
    trajectory_metrics,
    umeyama,
)
from vid3d.synthetic import SceneConfig, make_clip
from vid3d.synthetic.textures import random_rotation


def _rot_z(deg):
    a = np.deg2rad(deg)
    return np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1.0]])


def _trajectory(n=12, seed=0):
    rng = np.random.default_rng(seed)
    R = np.stack([random_rotation(rng) for _ in range(n)])
    c = np.cumsum(rng.normal(0, 0.2, size=(n, 3)), axis=0)
    return make_T(R, c)


@pytest.fixture(scope="module")
def gt_depth():
    rng = np.random.default_rng(1)
    d = rng.uniform(1.0, 5.0, size=(3, 10, 12))
    d[0, 0, :4] = 0  # invalid GT pixels
    return d


def test_scaled_copy_is_perfect_after_scale_alignment(gt_depth):
    r = evaluate_depth(0.37 * gt_depth, gt_depth, align="scale")
    assert r.scale == pytest.approx(1 / 0.37)
    assert r.overall.abs_rel == pytest.approx(0, abs=1e-12) and r.overall.delta1 == 1.0
    assert r.overall.num_pixels == gt_depth.size - 4
    # without alignment the same prediction is off by exactly 63 %
    assert evaluate_depth(0.37 * gt_depth, gt_depth, align="none").overall.abs_rel == pytest.approx(0.63)


def test_scale_shift_alignment_recovers_affine(gt_depth):
    pred = 0.5 * gt_depth - 0.2
    pred[gt_depth == 0] = 1.0
    r = evaluate_depth(pred, gt_depth, align="scale_shift")
    assert r.scale == pytest.approx(2.0) and r.shift == pytest.approx(0.4)
    assert r.overall.abs_rel == pytest.approx(0, abs=1e-10)
    # scale only cannot undo a shift
    assert evaluate_depth(pred, gt_depth, align="scale").overall.abs_rel > 0.01


def test_known_multiplicative_error_gives_known_metrics(gt_depth):
    # half the pixels 10 % too far, half 10 % too near -> after the (median) scale, AbsRel = 0.1 exactly
    factor = np.where(np.arange(gt_depth.size).reshape(gt_depth.shape) % 2 == 0, 1.1, 0.9)
    pred = gt_depth * factor
    m = depth_metrics(pred, gt_depth)
    assert m.abs_rel == pytest.approx(0.1)
    assert m.delta1 == 1.0
    valid = gt_depth > 0
    assert m.rmse == pytest.approx(np.sqrt(np.mean((0.1 * gt_depth[valid]) ** 2)))
    assert m.sq_rel == pytest.approx(np.mean(0.01 * gt_depth[valid]))
    m2 = depth_metrics(gt_depth * 1.3, gt_depth)
    assert m2.delta1 == 0.0 and m2.delta2 == 1.0


def test_static_dynamic_split(gt_depth):
    dyn = np.zeros(gt_depth.shape, dtype=bool)
    dyn[:, :3] = True
    pred = np.where(dyn, 1.2 * gt_depth, gt_depth)
    r = evaluate_depth(pred, gt_depth, dynamic_mask=dyn, align="none")
    assert r.static.abs_rel == pytest.approx(0) and r.dynamic.abs_rel == pytest.approx(0.2)
    assert r.static.num_pixels + r.dynamic.num_pixels == r.overall.num_pixels


def test_depth_bad_input(gt_depth):
    with pytest.raises(ShapeError):
        depth_metrics(gt_depth[:2], gt_depth)
    with pytest.raises(InputError):
        align_depth(gt_depth, gt_depth, gt_depth > 0, "median")
    with pytest.raises(InputError):
        align_depth(gt_depth, gt_depth, np.zeros(gt_depth.shape, bool), "scale")


def test_umeyama_recovers_known_sim3():
    rng = np.random.default_rng(2)
    src = rng.normal(size=(30, 3))
    R = random_rotation(rng)
    s, t = 2.7, np.array([0.3, -1.0, 4.0])
    dst = s * src @ R.T + t
    s_, R_, t_ = umeyama(src, dst)
    assert s_ == pytest.approx(s)
    np.testing.assert_allclose(R_, R, atol=1e-10)
    np.testing.assert_allclose(t_, t, atol=1e-10)
    # a reflection is never returned
    s_, R_, _ = umeyama(src, dst * np.array([1, 1, -1]))
    assert np.linalg.det(R_) == pytest.approx(1.0)


def test_ate_zero_for_sim3_transformed_trajectory():
    G = _trajectory()
    rng = np.random.default_rng(3)
    P = apply_sim3(0.25, random_rotation(rng), np.array([5.0, 1.0, -2.0]), G)
    m = trajectory_metrics(P, G)
    assert m.ate_rmse == pytest.approx(0, abs=1e-9)
    assert m.rpe_translation == pytest.approx(0, abs=1e-9) and m.rpe_rotation_deg == pytest.approx(0, abs=1e-6)
    assert m.sim3_scale == pytest.approx(4.0)


def test_ate_equals_known_perturbation():
    G = _trajectory(n=16)
    P = G.copy()
    # alternate +-e along x: zero mean, so the best Sim(3) is (nearly) identity and ATE = e
    e = 0.05
    P[:, 0, 3] += e * np.where(np.arange(16) % 2 == 0, 1.0, -1.0)
    m = trajectory_metrics(P, G, with_scale=False)
    assert m.ate_rmse == pytest.approx(e, rel=0.05)
    assert m.ate_percent_of_path == pytest.approx(100 * m.ate_rmse / m.gt_path_length)


def test_rpe_of_known_extra_rotation():
    G = _trajectory(n=10)
    P = G.copy()
    # rotate camera 5 about its own axes by 3 degrees: two relative motions change by 3 degrees each
    P[5, :3, :3] = P[5, :3, :3] @ _rot_z(3.0)
    m = trajectory_metrics(P, G, with_scale=False)
    assert m.rpe_rotation_deg == pytest.approx(2 * 3.0 / 9, rel=1e-6)
    # the relative translation 5 -> 6, expressed in the rotated camera 5, changes; 4 -> 5 does not
    step = G[5, :3, :3].T @ (G[6, :3, 3] - G[5, :3, 3])
    expected = np.linalg.norm(_rot_z(3.0).T @ step - step)
    assert m.rpe_translation == pytest.approx(np.sqrt(expected**2 / 9), rel=1e-6)
    assert rotation_angle_deg(_rot_z(1e-4)) == pytest.approx(1e-4, rel=1e-6)


def test_focal_error():
    K = np.array([[500.0, 0, 320], [0, 500, 240], [0, 0, 1]])
    P = K.copy()
    P[0, 0] = P[1, 1] = 525
    P[0, 2] += 3
    P[1, 2] += 4
    m = intrinsics_metrics(P, K)
    assert m.focal_rel_error == pytest.approx(0.05) and m.principal_point_error_px == pytest.approx(5.0)


@pytest.fixture(scope="module")
def static_clip():
    return make_clip(SceneConfig.preset("tiny_static"))


def test_temporal_consistency_near_zero_for_gt_and_grows_with_noise(static_clip):
    c = static_clip
    covis = covisibility(c.depth, c.K, c.T_world_camera)
    assert covis.shape == (7, 64, 96) and covis.mean() > 0.7
    exact = temporal_consistency(c.depth, c.K, c.T_world_camera, covisible=covis)
    assert exact.median_rel < 1e-5 and exact.mean_rel < 1e-3 and exact.num_pairs == 7
    rng = np.random.default_rng(0)
    prev = exact.mean_rel
    for sigma in (0.01, 0.05):
        noisy = c.depth * np.exp(rng.normal(0, sigma, c.depth.shape))
        m = temporal_consistency(noisy, c.K, c.T_world_camera, covisible=covis)
        assert m.mean_rel > prev
        assert 0.5 * sigma < m.mean_rel < 1.5 * sigma  # |e1 - e2| of two log-normals: ~1.13 sigma
        prev = m.mean_rel
    # scale-invariant: depth and poses scaled together give the same figure
    T2 = c.T_world_camera.copy()
    T2[:, :3, 3] *= 3.0
    scaled = temporal_consistency(3.0 * c.depth, c.K, T2, covisible=covis)
    assert scaled.mean_rel == pytest.approx(exact.mean_rel, rel=1e-3, abs=1e-6)
    # without a co-visibility mask (no GT) the heuristic gives near zero as well
    assert temporal_consistency(c.depth, c.K, c.T_world_camera).median_rel < 1e-5


def test_temporal_consistency_detects_wrong_poses(static_clip):
    c = static_clip
    bad = c.T_world_camera.copy()
    bad[1::2, 0, 3] += 0.1  # 10 cm jitter on every other camera
    assert temporal_consistency(c.depth, c.K, bad).mean_rel > 0.005


def test_mask_iou():
    a = np.zeros((4, 4), bool)
    b = a.copy()
    a[:2], b[1:3] = True, True
    assert mask_iou(a, b) == pytest.approx(4 / 12)
    assert mask_iou(np.zeros(3, bool), np.zeros(3, bool)) == 1.0
