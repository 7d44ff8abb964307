"""The whole frontend (video -> frames, flow, masks, poses, prior) on every synthetic scene family,
checked against ground truth: the motion model the report concludes, the poses, the focal and
whether it was observable, the masks of static scenes, and that no translating clip gets a constant
prior. Small sizes (96x128, 12 frames: a few seconds each); ``benchmarks/frontend_families.py`` runs
the full-size versions beside plain pycolmap."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

from vid3d.eval.groundtruth import from_synthetic
from vid3d.eval.report import evaluate_bundle
from vid3d.formats.bundle import open_bundle
from vid3d.optimizer.config import OptimizeConfig
from vid3d.optimizer.pipeline import run_optimize
from vid3d.synthetic import FAMILIES, SceneConfig, make_clip

pytestmark = pytest.mark.slow

SIZE = dict(height=96, width=128, num_frames=12)
TRANSLATING = ("orbit", "walk", "sideways", "planar", "planar_sideways", "walkers")
# pure translation without rotation: focal and depth scale trade off exactly (u' = u + f t / z)
FOCAL_UNOBSERVABLE = ("tripod", "sideways", "planar_sideways")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """family -> (clip, bundle path, decisions), run lazily once per module."""
    cache: dict = {}
    root = tmp_path_factory.mktemp("families")

    def get(family: str):
        if family not in cache:
            clip = make_clip(SceneConfig.preset(f"tiny_{family}").replace(**SIZE))
            video = clip.write_video(root / f"{family}.mp4")
            out = root / f"{family}.vid3d.h5"
            cfg = OptimizeConfig.preset("standard").replace(stages="frontend")
            # one SfM thread: pycolmap is deterministic for a seed only single-threaded (2 threads: flaky)
            cfg = cfg.replace(prior=cfg.prior.replace(backend="geometric"), sfm=cfg.sfm.replace(num_threads=1))
            run_optimize(video, out, cfg, progress=False)
            with h5py.File(out) as f:
                decisions = json.loads(f["/meta/decisions"][()])
            cache[family] = (clip, out, decisions)
        return cache[family]

    return get


def test_every_family_has_a_test():
    assert set(FAMILIES) <= set(TRANSLATING) | {"pan", "tripod"}


@pytest.mark.parametrize("family", TRANSLATING)
def test_translating_families_are_posed_by_sfm(runs, family):
    clip, bundle, dec = runs(family)
    poses = dec["poses"]
    assert poses["motion_model"] == "translating", poses["motion_model_decided_by"]
    assert poses["registered"] == clip.num_frames
    rep = evaluate_bundle(bundle, from_synthetic(clip), depth="prior")
    assert rep.trajectory.ate_percent_of_path < 1.0, rep.trajectory
    assert rep.trajectory.rpe_rotation_deg < 0.3
    assert dec["prior"]["constant_frames"] == []
    if family in FOCAL_UNOBSERVABLE:
        assert poses["focal_observable"] is False and poses["focal_source"].startswith("assumed")
    else:
        assert poses["focal_observable"] is True
        assert rep.intrinsics.focal_rel_error < 0.05, (poses["focal"], clip.K[0, 0])
    # the mapper's model was refined, or the report says why not; vid3d info says which
    refined = poses["refinement"]
    from vid3d.formats.info import format_summary, summarize

    with open_bundle(bundle) as b:
        text = format_summary(summarize(b))
    if refined["kept"]:
        assert refined["median_error_px_after"] <= refined["median_error_px_before"]
        assert "poses refined by a robust bundle adjustment" in text
        assert f"corner tracks {refined['tracks']}" in text
    else:
        assert "moved the focal" in refined["why"] and "poses refinement not kept" in text


def test_pure_pan_is_reported_as_a_pan_with_its_focal(runs):
    clip, bundle, dec = runs("pan")
    poses = dec["poses"]
    assert poses["motion_model"] == "pan"
    assert "rotation" in poses["motion_model_decided_by"]
    assert poses["focal_observable"] is True
    rep = evaluate_bundle(bundle, from_synthetic(clip), depth="prior")
    assert rep.intrinsics.focal_rel_error < 0.05
    assert rep.trajectory.rpe_rotation_deg < 0.3
    with open_bundle(bundle) as b:
        centres = np.asarray(b.T_world_camera)[:, :3, 3]
    assert np.allclose(centres, centres[0])  # no made-up translation


def test_tripod_says_its_focal_is_assumed(runs):
    clip, bundle, dec = runs("tripod")
    poses = dec["poses"]
    assert poses["motion_model"] == "pan"
    assert poses["focal_observable"] is False
    assert "assumed" in poses["focal_source"] and "not observable" in poses["focal_source"]
    # and vid3d info says so
    from vid3d.formats.info import format_summary, summarize

    with open_bundle(bundle) as b:
        text = format_summary(summarize(b))
    assert "NOT observable" in text and "motion pan" in text
    # a pan is not mapped again with the masks after poses, and info says why
    assert poses["remask"]["kept"] == "first" and not poses["remask"]["ran"]
    assert "poses first mapping kept (the first poses are a pan" in text


def test_walkers_are_mapped_again_with_the_masks_after_poses(runs):
    """The epipolar masks miss walkers moving along their epipolar lines; the masks after poses
    flag them, and the clip is mapped again with those (the slow test in test_remask scores it)."""
    clip, bundle, dec = runs("walkers")
    remask = dec["poses"]["remask"]
    assert remask["ran"] and remask["kept"] == "second", remask
    assert remask["observations_newly_masked"] >= 0.001


# planar_sideways is left to the benchmark: at 96x128 its fine wall texture moves ~13 px per frame and
# DIS fails at the long gaps (20 % flagged); at its full 180x320 size 0 % is flagged
@pytest.mark.parametrize("family", ["orbit", "walk", "sideways", "planar", "pan"])
def test_static_scenes_are_not_flagged_moving(runs, family):
    _, bundle, _ = runs(family)
    with open_bundle(bundle) as b:
        moving = b.read("dynamic_mask").astype(bool)
    assert moving.mean() < 0.02


def test_walkers_get_the_depth_of_where_they_stand(runs):
    clip, bundle, dec = runs("walkers")
    rep = evaluate_bundle(bundle, from_synthetic(clip), depth="prior")
    assert dec["prior"]["movers"]["from_contact"] > 0
    assert rep.depth.dynamic.abs_rel < 0.2, rep.depth.dynamic  # the wall behind them: ~1
    assert rep.depth.static.abs_rel < 0.1
