"""Stage 6, poses remasked: SfM again with the masks after poses, scored against ground truth."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from vid3d.eval.metrics import intrinsics_metrics, trajectory_metrics
from vid3d.formats.errors import InputError, ShapeError
from vid3d.optimizer import sfm
from vid3d.optimizer.config import OptimizeConfig
from vid3d.optimizer.sfm.remask import newly_masked, observations_on
from vid3d.synthetic import SceneConfig, make_clip


def _config(**changes):
    # one SfM thread: pycolmap is deterministic for a seed only single-threaded
    return OptimizeConfig.preset("standard").sfm.replace(num_threads=1, **changes)


def test_newly_masked_and_the_observations_on_them():
    before = np.zeros((2, 4, 5), bool)
    after = before.copy()
    after[0, :2] = True  # rows 0-1 of frame 0
    before[0, 0] = True  # row 0 already masked
    new = newly_masked(before, after)
    assert new.sum() == 5 and new[0, 1].all()
    assert newly_masked(None, after).sum() == 10
    assert not newly_masked(after, before).any()
    with pytest.raises(ShapeError):
        newly_masked(before[:1], after)
    # four observations: frame 0 row 1 (newly masked), frame 0 row 0 (masked before), frame 1, and
    # frame 0 at v = 1.999 (still row 1: pixel v covers [v, v+1))
    poses = _fake_first(T=2, obs=([0, 0, 1, 0], [[2.5, 1.5], [2.5, 0.5], [2.5, 1.5], [0.2, 1.999]]))
    assert observations_on(new, poses) == pytest.approx(2 / 4)
    assert observations_on(new, _fake_first(T=2)) == 0.0
    with pytest.raises(ShapeError):
        observations_on(new[:1], poses)


def test_config_validates_the_threshold():
    with pytest.raises(InputError):
        _config(remask_min_observations=1.5)
    with pytest.raises(InputError):
        _config(ba_global_ratio=1.0)
    with pytest.raises(InputError):
        _config(pan_max_rotation_rms_px=-1.0)
    with pytest.raises(InputError):
        _config(remask_max_focal_change=-0.1)


def test_a_second_mapping_that_moves_the_focal_is_not_kept(tmp_path):
    """The 64x96 walkers mapped again with ground-truth masks: the focal moves (before the refinement
    of the mapper's model it jumped from 5 to 26 % off in the pipeline; now by about 0.4 %); with a
    limit under that move the first is kept and the report says why, with no limit the second is."""
    clip = make_clip(SceneConfig.preset("tiny_walkers"))
    cfg = _config()
    first = sfm.run(clip.rgb, None, cfg, tmp_path / "sfm")
    free = sfm.run_remasked(first, clip.rgb, None, clip.dynamic_mask, cfg.replace(remask_max_focal_change=10.0),
                            tmp_path / "sfm2")
    assert free.report["remask"]["kept"] == "second"
    change = abs(free.K[0, 0] / first.K[0, 0] - 1)
    assert change > 1e-4
    limit = change / 2
    held = sfm.run_remasked(first, clip.rgb, None, clip.dynamic_mask, cfg.replace(remask_max_focal_change=limit),
                            tmp_path / "sfm3")
    info = held.report["remask"]
    assert info["ran"] and info["kept"] == "first" and "moved the focal" in info["why"], info
    assert np.array_equal(held.K, first.K)


def _fake_first(T=3, rotation_only=False, obs=None):
    """A PoseResult with identity poses and, when ``obs`` = (frames, uv), those observations."""
    f, uv = (np.zeros(0, np.int64), np.zeros((0, 2))) if obs is None else (np.asarray(obs[0]), np.asarray(obs[1], float))
    return sfm.PoseResult(T_world_camera=np.tile(np.eye(4), (T, 1, 1)), K=np.eye(3), registered=np.ones(T, bool),
                          points_world=np.zeros((1, 3)), points_rgb=np.zeros((1, 3), np.uint8),
                          report={"rotation_only": rotation_only, "registered": T},
                          obs_frame=f.astype(np.int64), obs_point=np.zeros(len(f), np.int64), obs_uv=uv)


@pytest.mark.parametrize("case", ["off", "pan", "few_new", "none_new"])
def test_the_first_poses_are_kept_without_mapping_again(tmp_path, case):
    """No second mapping (it would fail on these 8x8 blank frames): off, a pan, newly masked pixels
    holding fewer of the first mapping's observations than the threshold, or none of them."""
    rgb = np.zeros((3, 8, 8, 3), np.uint8)
    before = np.zeros((3, 8, 8), bool)
    after = before.copy()
    after[0, :4] = True  # half of frame 0
    on_new = [[2.5, 1.5], [2.5, 6.5], [2.5, 6.5], [2.5, 6.5]]  # 1 of 4 observations newly masked
    uv = [[2.5, 6.5]] * 4 if case == "none_new" else on_new
    first = _fake_first(rotation_only=case == "pan", obs=([0, 0, 0, 0], uv))
    cfg = _config(remask=case != "off", remask_min_observations=0.5 if case == "few_new" else 0.001)
    out = sfm.run_remasked(first, rgb, before, after, cfg, tmp_path / "sfm2")
    assert out.report["remask"]["ran"] is False and out.report["remask"]["kept"] == "first"
    assert np.array_equal(out.T_world_camera, first.T_world_camera)
    assert "remask" not in first.report  # the input result is not changed
    assert not (tmp_path / "sfm2").exists()


def test_a_failed_second_mapping_keeps_the_first(tmp_path):
    """Blank frames: the second mapping raises InputError; the first poses stand, and the report says why."""
    rgb = np.zeros((3, 32, 32, 3), np.uint8)
    after = np.zeros((3, 32, 32), bool)
    after[:, :8] = True
    first = _fake_first(obs=([0, 1], [[2.5, 2.5], [20.5, 20.5]]))
    out = sfm.run_remasked(first, rgb, None, after, _config(), tmp_path / "sfm2")
    info = out.report["remask"]
    assert info["ran"] is True and info["kept"] == "first" and "failed" in info["why"]


@pytest.mark.slow
def test_mapping_again_with_masks_on_the_walkers_improves_the_poses(tmp_path):
    """Synthetic walkers (people on the floor, 32 f, 320 px): SfM with no masks, then again with masks
    on the walkers; the second is kept and is closer to ground truth in both poses and focal
    (measured 0.078 -> 0.061 % ATE; with the robust refinement alone, before corner tracks,
    0.14 -> 0.073 % and 0.15 -> 0.002 % focal; before the robust refinement of the mapper's model,
    which already discounts many of the walkers' features, 0.71 -> 0.19 % and 2.7 -> 0.4 %)."""
    clip = make_clip(SceneConfig.preset("walkers"))
    cfg = _config()
    first = sfm.run(clip.rgb, None, cfg, tmp_path / "sfm")
    out = sfm.run_remasked(first, clip.rgb, None, clip.dynamic_mask, cfg, tmp_path / "sfm2")
    info = out.report["remask"]
    assert info["ran"] and info["kept"] == "second", info
    assert info["newly_masked_fraction"] == pytest.approx(float(clip.dynamic_mask.mean()), rel=1e-3)
    assert info["observations_newly_masked"] >= 0.001
    ate = [trajectory_metrics(p.T_world_camera, clip.T_world_camera).ate_percent_of_path for p in (first, out)]
    focal = [intrinsics_metrics(p.K, clip.K).focal_rel_error for p in (first, out)]
    assert ate[1] < 0.85 * ate[0] and ate[1] < 0.1, (ate, focal)
    assert focal[1] < 0.01, focal
    assert int(out.registered.sum()) == clip.num_frames
    # a result of its own: the first is unchanged
    assert dataclasses.asdict(first)["report"].get("remask") is None
