"""Rotation-only bundle adjustment of a pan: the residual against its slow twin, recovery of known
rotations and focal from perturbed ones, held frames and focal, bad input, and the camera stage on a
rendered pan against ground truth (with and without the adjustment)."""

from __future__ import annotations

import numpy as np
import pytest

import vid3d  # noqa: F401  (zlib before pycolmap)
from vid3d.eval.metrics import rotation_angle_deg
from vid3d.formats.errors import InputError, ShapeError
from vid3d.optimizer.config import OptimizeConfig
from vid3d.optimizer.sfm import SfmConfig
from vid3d.optimizer.sfm import run as estimate_poses
from vid3d.optimizer.sfm.pan_ba import (PanMatches, refine_pan, so3_exp, transfer_residuals,
                                        transfer_residuals_reference)

H, W, F = 96, 128, 110.0
K = np.array([[F, 0, W / 2], [0, F, H / 2], [0, 0, 1.0]])


def _pan(num_frames=8, step_deg=4.0, noise_px=0.3, seed=0):
    """Ground-truth rotations (yaw + a little pitch) and matches of random scene directions."""
    rng = np.random.default_rng(seed)
    R = so3_exp(np.stack([np.radians([0.3 * t, step_deg * t, 0.0]) for t in range(num_frames)]))
    dirs = rng.normal(size=(3000, 3))
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    seen = []
    for t in range(num_frames):
        p = (K @ (R[t].T @ dirs.T)).T
        uv = p[:, :2] / np.where(p[:, 2:] > 0, p[:, 2:], 1)
        ok = (p[:, 2] > 0) & (uv[:, 0] > 0) & (uv[:, 0] < W) & (uv[:, 1] > 0) & (uv[:, 1] < H)
        seen.append((uv + rng.normal(0, noise_px, uv.shape), ok))
    fi, fj, xi, xj = [], [], [], []
    for i in range(num_frames):
        for j in range(i + 1, num_frames):
            ok = seen[i][1] & seen[j][1]
            if ok.sum() >= 20:
                fi += [i] * int(ok.sum())
                fj += [j] * int(ok.sum())
                xi.append(seen[i][0][ok])
                xj.append(seen[j][0][ok])
    return R, PanMatches(np.array(fi), np.array(fj), np.concatenate(xi), np.concatenate(xj))


def _rot_err(R_a, R_b):
    return np.array([rotation_angle_deg(a.T @ b) for a, b in zip(R_a, R_b)])


def test_transfer_residuals_match_their_slow_twin():
    R, m = _pan()
    rng = np.random.default_rng(1)
    R_test = so3_exp(rng.normal(0, 0.4, (len(R), 3))) @ R  # large errors: some directions behind
    sub = PanMatches(m.frame_i[::37], m.frame_j[::37], m.x_i[::37], m.x_j[::37])
    r, ok = transfer_residuals(R_test, 123.0, np.array([60.0, 50.0]), sub)
    ref = transfer_residuals_reference(R_test, 123.0, np.array([60.0, 50.0]), sub)
    assert r.shape == ref.shape == (sub.num_matches, 4)
    front = np.repeat(ok, 2, axis=1)
    np.testing.assert_allclose(r[front], ref[front], atol=1e-9)
    assert np.isnan(ref[~front]).all()
    # exact rotations and focal: the residuals are the keypoint noise only
    r0, ok0 = transfer_residuals(R, F, K[:2, 2], m)
    assert ok0.all() and np.sqrt(np.mean(r0 ** 2)) < 0.6


def test_refine_pan_recovers_rotations_and_focal_from_a_perturbed_start():
    R, m = _pan()
    rng = np.random.default_rng(2)
    R0 = so3_exp(rng.normal(0, np.radians(0.5), (len(R), 3))) @ R
    R0[0] = R[0]  # the gauge
    K0 = K.copy()
    K0[0, 0] = K0[1, 1] = 1.05 * F
    res = refine_pan(R0, K0, m)
    assert res.report["kept"] and res.frames_in_ba.all()
    assert res.report["rms_px_after"] < 0.5 * res.report["rms_px_before"]
    assert res.report["rms_px_after"] < 0.7  # sqrt(2) x 0.3 px noise per coordinate, two coordinates
    before, after = _rot_err(R0, R), _rot_err(res.R_world_camera, R)
    assert after.max() < 0.2 and after.mean() < before.mean() / 4, (before, after)
    assert abs(res.focal / F - 1) < 0.01
    np.testing.assert_allclose(res.R_world_camera[0], R0[0])
    assert np.allclose(np.einsum("tji,tjk->tik", res.R_world_camera, res.R_world_camera), np.eye(3), atol=1e-9)


def test_refine_pan_holds_an_assumed_focal_and_frames_with_too_few_matches():
    R, m = _pan(num_frames=6)
    # frame 5 keeps only 5 matches: held at its (wrong) start
    drop = ((m.frame_i == 5) | (m.frame_j == 5)) & (np.cumsum((m.frame_i == 5) | (m.frame_j == 5)) > 5)
    m = PanMatches(m.frame_i[~drop], m.frame_j[~drop], m.x_i[~drop], m.x_j[~drop])
    R0 = so3_exp(np.radians(np.array([[0.0, 0.0, 0.0]] + [[0.2, -0.3, 0.1]] * 5))) @ R
    res = refine_pan(R0, K, m, refine_focal=False)
    assert res.report["kept"] and res.focal == F
    assert not res.frames_in_ba[5] and res.frames_in_ba[:5].all()
    np.testing.assert_allclose(res.R_world_camera[5], R0[5], atol=1e-12)
    assert _rot_err(res.R_world_camera[:5], R[:5]).max() < 0.15 < _rot_err(R0[1:5], R[1:5]).min()


def test_refine_pan_refuses_bad_input_and_keeps_the_start_without_matches():
    R, m = _pan(num_frames=4)
    with pytest.raises(ShapeError):
        refine_pan(R[:, :2], K, m)
    with pytest.raises(ShapeError):
        refine_pan(R, K[:2], m)
    with pytest.raises(InputError, match="outside"):
        refine_pan(R[:2], K, m)
    with pytest.raises(ShapeError):
        PanMatches(m.frame_i, m.frame_j[:-1], m.x_i, m.x_j)
    empty = PanMatches(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, 2)), np.zeros((0, 2)))
    res = refine_pan(R, K, empty)
    assert not res.report["kept"] and "too few" in res.report["reason"]
    np.testing.assert_array_equal(res.R_world_camera, R)
    with pytest.raises(InputError, match="pan_ba_matches_per_pair"):
        SfmConfig(pan_ba_matches_per_pair=3)


def test_a_rendered_pan_is_posed_closer_to_ground_truth_with_the_adjustment(tmp_path):
    """The camera stage on a rendered pan (16 frames turning 24 deg): every frame posed by the
    adjustment, rotations nearer the truth than the homography chain's."""
    from vid3d.synthetic import SceneConfig, make_clip

    clip = make_clip(SceneConfig.preset("pan").replace(num_frames=16, height=144, width=256))
    cfg = OptimizeConfig.preset("standard").sfm.replace(num_threads=1)
    chain = estimate_poses(clip.rgb, None, cfg.replace(pan_bundle_adjustment=False), tmp_path / "chain")
    ba = estimate_poses(clip.rgb, None, cfg, tmp_path / "ba")
    assert chain.report["motion_model"] == ba.report["motion_model"] == "pan"
    rep = ba.report["pan_bundle_adjustment"]
    assert rep["kept"] and rep["rms_px_after"] < rep["rms_px_before"]
    assert ba.registered.all() and ba.report["registered"] == clip.num_frames and ba.report["filled"] == {} and not chain.registered[1:].any()
    R_gt = clip.T_world_camera[:, :3, :3]

    def err(p):  # after the best common rotation (frame 0 is the gauge of both)
        R = p.T_world_camera[:, :3, :3]
        U, _, Vt = np.linalg.svd(sum(g @ e.T for g, e in zip(R_gt, R)))
        A = U @ np.diag([1, 1, np.linalg.det(U @ Vt)]) @ Vt
        return _rot_err(A @ R, R_gt)

    assert err(ba).mean() < 0.7 * err(chain).mean(), (err(chain), err(ba))
    assert abs(ba.K[0, 0] / clip.K[0, 0] - 1) < 0.02
    assert "refined by rotation-only bundle adjustment" in ba.report["focal_source"]
    centres = ba.T_world_camera[:, :3, 3]
    assert np.allclose(centres, centres[0])


@pytest.mark.parametrize("threshold,expected", [(1.0, "pan"), (0.0, "translating")])
def test_a_rotation_only_fit_decides_a_pan_the_mapper_gave_a_travel(tmp_path, threshold, expected):
    """A rendered pan with every other pan rule off (registered fraction, negligible travel, small
    travel with rotations): the mapper's reconstruction has a made-up travel, and only the rotation-only
    fit (sub-pixel on every verified match) tells it is a pan; with the threshold at 0 px it cannot."""
    from vid3d.synthetic import SceneConfig, make_clip

    clip = make_clip(SceneConfig.preset("tiny_pan").replace(height=96, width=128, num_frames=12))
    cfg = OptimizeConfig.preset("standard").sfm.replace(
        num_threads=1, pan_max_rotation_travel=0.0, min_registered_fraction=0.0, pan_max_translation=0.0,
        pan_max_rotation_rms_px=threshold)
    poses = estimate_poses(clip.rgb, None, cfg, tmp_path)
    rep = poses.report
    assert rep["motion_model"] == expected, rep["motion_model_decided_by"]
    assert rep["rotation_only_fit_px"] < 0.6
    if expected == "pan":
        assert "rotation-only model explains all" in rep["motion_model_decided_by"]
        centres = poses.T_world_camera[:, :3, 3]
        assert np.allclose(centres, centres[0])
        assert rep["pan_bundle_adjustment"]["kept"] and poses.registered.all()
        assert rotation_angle_deg(poses.T_world_camera[-1][:3, :3].T @ poses.T_world_camera[0][:3, :3]) == \
            pytest.approx(rotation_angle_deg(clip.T_world_camera[-1][:3, :3].T @ clip.T_world_camera[0][:3, :3]), abs=0.3)
    else:
        assert rep["registered"] >= 2
