"""Motion masks: geometry pinned on hand cases and synthetic GT, slow twin, IoU vs GT, user masks."""

from __future__ import annotations

import numpy as np
import pytest

import vid3d  # noqa: F401
from vid3d.formats.conventions import invert_T, make_K, make_T
from vid3d.formats.errors import InputError
from vid3d.optimizer.flow import FlowConfig
from vid3d.optimizer.flow import run as compute_flow
from vid3d.eval.metrics import mask_iou
from vid3d.optimizer.masks import (
    epipolar_residual,
    MaskConfig,
    adaptive_threshold,
    clean_mask,
    load_user_masks,
    motion_masks_epipolar,
    motion_masks_reprojection,
    reprojection_residuals,
    reprojection_residuals_reference,
    sampson_distance,
    triangulate_inverse_depth,
)


@pytest.fixture(scope="module")
def dynamic_clip():
    from vid3d.synthetic import SceneConfig, make_clip

    return make_clip(SceneConfig.preset("tiny_dynamic").replace(height=96, width=144, num_frames=9))


@pytest.fixture(scope="module")
def dynamic_flows(dynamic_clip):
    return compute_flow(dynamic_clip.rgb, FlowConfig(gaps=(1, 2, 4)))


def _gt_flows(clip, i, js):
    pairs = [clip.optical_flow(i, j) for j in js]
    return [f for f, _ in pairs], [v for _, v in pairs]


def test_sampson_distance_hand_case():
    # pure x-translation: epipolar lines are horizontal rows, F = [e']_x with e' = (1, 0, 0)
    F = np.array([[0.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
    x_i = np.array([[10.0, 5.0], [10.0, 5.0]])
    x_j = np.array([[17.0, 5.0], [10.0, 7.0]])  # along the row: 0; 2 px off the row: sqrt(2) (split between views)
    np.testing.assert_allclose(sampson_distance(F, x_i, x_j), [0.0, np.sqrt(2.0)], atol=1e-9)


def test_triangulation_recovers_ground_truth_inverse_depth():
    from vid3d.synthetic import make_clip

    clip = make_clip("tiny_static")
    i, j = 0, 4
    flow, valid = clip.optical_flow(i, j)
    H, W = valid.shape
    v, u = np.mgrid[0:H, 0:W] + 0.5
    x = np.stack([u, v], -1).reshape(-1, 2)
    T_j_i = invert_T(clip.T_world_camera[j]) @ clip.T_world_camera[i]
    q = triangulate_inverse_depth(x, x + flow.reshape(-1, 2), clip.K, T_j_i).reshape(H, W)
    rel = np.abs(q * clip.depth[i] - 1.0)[valid]
    assert np.median(rel) < 0.02


def test_reprojection_residuals_fast_matches_slow_twin_and_static_gt_is_zero():
    from vid3d.synthetic import SceneConfig, make_clip

    clip = make_clip(SceneConfig.preset("tiny_static").replace(height=16, width=24, num_frames=5))
    i, js = 2, [0, 1, 3, 4]
    flows, valids = _gt_flows(clip, i, js)
    rel = [invert_T(clip.T_world_camera[j]) @ clip.T_world_camera[i] for j in js]
    fast = reprojection_residuals(flows, valids, clip.K, rel)
    slow = reprojection_residuals_reference(flows, valids, clip.K, rel)
    np.testing.assert_allclose(np.nan_to_num(fast, nan=-1), np.nan_to_num(slow, nan=-1), atol=1e-6)
    assert np.nanmax(fast) < 0.05  # exact flow of a static scene: one depth explains every pair


def test_compiled_reprojection_residuals_match_numpy_with_invalid_and_behind_pixels():
    """Random flows (movers everywhere), random validity (pixels with 0..P valid pairs, even counts
    for the median), and a pair whose camera faces away (points behind it: 1e6)."""
    from vid3d.optimizer.masks.reprojection import reprojection_residuals_numpy

    rng = np.random.default_rng(5)
    H, W, P = 13, 17, 4
    K = make_K(20.0, 21.0, 8.2, 6.9)
    rel = [make_T(np.eye(3), np.array([0.1 * p + 0.05, -0.03 * p, 0.02])) for p in range(P - 1)]
    rel.append(make_T(np.diag([-1.0, 1.0, -1.0]), np.array([0.0, 0.0, 0.5])))  # turned around
    flows = [rng.normal(0, 3, (H, W, 2)).astype(np.float32) for _ in range(P)]
    valids = [rng.random((H, W)) < 0.7 for _ in range(P)]
    fast = reprojection_residuals(flows, valids, K, rel)
    ref = reprojection_residuals_numpy(flows, valids, K, rel)
    assert np.array_equal(np.isnan(fast), np.isnan(ref)) and (fast == 1e6).any()
    np.testing.assert_allclose(np.nan_to_num(fast, nan=-1), np.nan_to_num(ref, nan=-1), rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("homography", [False, True], ids=["sampson", "transfer"])
def test_compiled_model_residuals_match_numpy(homography):
    from vid3d.optimizer.masks.epipolar import homography_transfer
    from vid3d.optimizer.masks.residuals_cpu import model_residuals_cpu

    rng = np.random.default_rng(6)
    H, W = 11, 15
    G = rng.normal(0, 1, (3, 3)) + np.diag([3.0, 3.0, 30.0])
    flow = rng.normal(0, 2, (H, W, 2))
    valid = rng.random((H, W)) < 0.8
    v, u = np.mgrid[0:H, 0:W] + 0.5
    x_i = np.stack([u, v], -1)[valid]
    x_j = x_i + flow[valid]
    want = homography_transfer(G, x_i, x_j) if homography else sampson_distance(G, x_i, x_j)
    got = model_residuals_cpu(flow, valid, G, homography)
    assert np.isnan(got[~valid]).all()
    np.testing.assert_allclose(got[valid], want, rtol=1e-9, atol=1e-12)


def test_reprojection_residual_flags_a_moving_object_with_gt_flow(dynamic_clip):
    clip = dynamic_clip
    i, js = 4, [0, 2, 3, 5, 6, 8]
    flows, valids = _gt_flows(clip, i, js)
    rel = [invert_T(clip.T_world_camera[j]) @ clip.T_world_camera[i] for j in js]
    res = reprojection_residuals(flows, valids, clip.K, rel)
    moving, static = clip.dynamic_mask[i], ~clip.dynamic_mask[i]
    assert np.nanmedian(res[:, static]) < 0.05
    assert np.mean(np.nan_to_num(res[:, moving], nan=0.0).max(axis=0) > 1.0) > 0.6


def test_adaptive_threshold_and_clean_up():
    rng = np.random.default_rng(0)
    r = np.abs(rng.normal(0, 0.5, (50, 50)))
    assert adaptive_threshold(r, k_sigma=3, floor_px=1.0) == pytest.approx(
        max(1.0, np.median(r) + 3 * 1.4826 * np.median(np.abs(r - np.median(r)))))
    assert adaptive_threshold(r * 0.01, k_sigma=3, floor_px=1.0) == 1.0  # floor: the flow's own noise
    m = np.zeros((100, 100), bool)
    m[20:60, 20:60] = True
    m[35:45, 35:45] = False  # a hole
    m[80, 80] = True  # a speck
    out = clean_mask(m, min_area_fraction=0.002)
    assert out[40, 40] and not out[80, 80] and out[20:60, 20:60].mean() > 0.97


def test_masks_after_poses_iou_vs_ground_truth(dynamic_clip, dynamic_flows):
    clip = dynamic_clip
    masks, report = motion_masks_reprojection(dynamic_flows, clip.K, clip.T_world_camera, MaskConfig())
    iou = mask_iou(masks, clip.dynamic_mask)
    assert masks.shape == clip.dynamic_mask.shape
    assert iou > 0.6, iou  # GT poses, DIS flow, 144x96: the benchmark measures the full-size scene
    assert report["method"] == "reprojection"


def test_masks_before_poses_cover_movers_more_than_static(dynamic_clip, dynamic_flows):
    clip = dynamic_clip
    masks, _ = motion_masks_epipolar(dynamic_flows, MaskConfig(), dilate=True)
    hit_moving = masks[clip.dynamic_mask].mean()
    hit_static = masks[~clip.dynamic_mask].mean()
    assert hit_moving > 3 * hit_static


def test_user_masks_per_source_or_kept_frame(tmp_path):
    import cv2

    H, W = 8, 12
    for k in range(6):
        im = np.zeros((2 * H, 2 * W), np.uint8)
        im[: 2 * (k + 1)] = 255
        cv2.imwrite(str(tmp_path / f"m{k}.png"), im)
    per_source = load_user_masks(tmp_path, np.array([1, 3, 5]), (H, W))
    assert per_source.shape == (3, H, W)
    assert [int(m.any(axis=1).sum()) for m in per_source] == [2, 4, 6]
    with pytest.raises(InputError, match="expected one per source frame"):
        load_user_masks(tmp_path, np.array([0, 10, 20, 30]), (H, W))
    with pytest.raises(InputError, match="not a folder"):
        load_user_masks(tmp_path / "nope", np.array([0, 1]), (H, W))


def test_robust_fit_turns_estimator_failures_into_none():
    import cv2

    from vid3d.optimizer.robust import robust_fit

    def raises(*a, **k):
        raise cv2.error("usac/estimator.cpp:418: (-215:Assertion failed) !model.empty()")

    assert robust_fit(raises) == (None, None)
    assert robust_fit(lambda: (None, None)) == (None, None)
    assert robust_fit(lambda: (np.zeros((9, 3)), np.ones(5, np.uint8))) == (None, None)  # 3 stacked solutions
    M, inl = robust_fit(lambda: (np.eye(3), np.array([[1], [0], [1]], np.uint8)))
    assert np.array_equal(M, np.eye(3)) and inl.tolist() == [True, False, True]


def test_epipolar_residual_survives_a_crashing_estimator(monkeypatch):
    import cv2

    def raises(*a, **k):
        raise cv2.error("usac/estimator.cpp:418: (-215:Assertion failed) !model.empty()")

    flow = np.ones((12, 16, 2), np.float32)
    valid = np.ones((12, 16), bool)
    monkeypatch.setattr(cv2, "findFundamentalMat", raises)
    r, model = epipolar_residual(flow, valid)  # a pure shift: the homography still fits
    assert model == "H" and np.nanmax(r) < 1e-3
    monkeypatch.setattr(cv2, "findHomography", raises)
    r, model = epipolar_residual(flow, valid)
    assert model == "none" and np.isnan(r).all()


def test_textureless_pixels_get_their_score_from_the_textured_ones_around_them():
    """A blank region has no flow information: its residual is unknown (not 'moving')."""
    from vid3d.optimizer.masks.texture import structure, textured

    rng = np.random.default_rng(0)
    img = np.full((40, 60, 3), 128, np.uint8)
    img[:, :30] = rng.integers(0, 255, (40, 30, 3))  # textured left half, blank right half
    s = structure(img)
    assert s[:, 5:25].min() > 1.0 and s[:, 36:].max() == 0.0
    t = textured(img[None], 1.0)[0]
    assert t[:, 5:25].all() and not t[:, 36:].any()


def test_unknown_regions_are_judged_by_their_rim():
    """A blank area ringed by static pixels with a few spurious scores stays static; a blank interior
    ringed by moving edges is filled as moving; the rim means match the slow twin."""
    from vid3d.optimizer.masks.vote import fill_missing, region_rim_means, region_rim_means_reference

    score = np.zeros((40, 60))
    score[5:35, 5:30] = np.nan  # a blank wall
    score[5:35, 4] = 1.0  # a flow error along one of its edges: 30 of its ~110 rim pixels
    score[10:20, 40:52] = 1.0  # a mover...
    score[12:18, 42:50] = np.nan  # ...with a blank interior
    filled = fill_missing(score, 0.4)
    assert np.isfinite(filled).all()
    assert filled[5:35, 8:30].max() < 0.4  # the wall: static, also next to the flagged edge
    assert filled[12:18, 42:50].min() >= 0.4  # the interior: moving
    labels, means = region_rim_means(score)
    labels_ref, means_ref = region_rim_means_reference(score)
    assert np.array_equal(labels > 0, labels_ref > 0) and labels.max() == labels_ref.max() == 2
    for lab in (1, 2):  # same regions (labels may be numbered alike), same rim means
        ref = labels_ref[labels == lab][0]
        assert means[lab] == pytest.approx(means_ref[ref])
    wall = labels[20, 20]
    assert means[wall] == pytest.approx(30 / 114)  # rim: 32 x 27 - 30 x 25 pixels, 30 of them at 1


def test_an_unknown_region_covering_most_of_the_frame_stays_static():
    """HoloLens' first frames: a blank wall over half the frame, ringed by noisy edges (rim mean at
    the vote), is not a mover's interior; a small blank interior ringed by moving edges still is."""
    from vid3d.optimizer.masks.vote import fill_missing

    score = np.zeros((40, 60))
    score[:, :] = 0.1
    score[2:38, 2:40] = np.nan  # 57 % of the frame
    score[1, 1:41] = score[38, 1:41] = 0.9  # top and bottom edges flagged: rim mean ~0.5
    filled = fill_missing(score, 0.4, max_area_fraction=1 / 3)
    assert filled[2:38, 2:40].max() < 0.4 and filled[2:38, 2:40].max() == pytest.approx(0.1)
    assert fill_missing(score, 0.4, max_area_fraction=1.0)[3, 20] >= 0.4  # without the cap: moving along its edges
    small = np.full((40, 60), 0.1)
    small[10:20, 40:52] = 1.0  # a mover...
    small[12:18, 42:50] = np.nan  # ...with a blank interior of 2 % of the frame
    assert fill_missing(small, 0.4, max_area_fraction=1 / 3)[12:18, 42:50].min() >= 0.4
