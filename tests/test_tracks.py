"""Corner tracks (optimizer/sfm/tracks.py) and their use in the refinement (refine.refine)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

import vid3d  # noqa: F401  (zlib before pycolmap)
from vid3d.formats.errors import ShapeError
from vid3d.optimizer.sfm import colmap, refine, tracks
from test_refine import _ate, _config, _mapped, _texture


def _shifted_sequence(n=7, shift=(0.61, -0.27)):
    """Frames t = 0..n-1 of one texture translated by t * shift pixels: tgt_t(x + t shift) = ref(x)."""
    ref = _texture(120, 160, seed=3)
    frames = {}
    for t in range(n):
        M = np.float32([[1, 0, t * shift[0]], [0, 1, t * shift[1]]])
        frames[t] = cv2.warpAffine(ref, M, ref.shape[::-1], flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
    return frames, np.asarray(shift)


def test_corners_are_followed_to_subpixel_accuracy_both_ways():
    gray, shift = _shifted_sequence()
    static = {t: np.ones(g.shape, bool) for t, g in gray.items()}
    tr = tracks.follow_corners(gray, static, 3, span=3, corners=300, window=9, fb_max_px=0.2)
    assert tr.ref == 3 and tr.frames.tolist() == list(range(7))
    assert tr.valid[:, 3].all() and len(tr.uv) > 50
    col = {t: i for i, t in enumerate(tr.frames)}
    errs = []
    for t in (0, 1, 5, 6):
        truth = tr.uv[:, col[3]] + (t - 3) * shift
        ok = tr.valid[:, col[t]]
        assert ok.mean() > 0.7, (t, ok.mean())
        errs.append(np.linalg.norm(tr.uv[ok, col[t]] - truth[ok], axis=1))
    assert np.median(np.concatenate(errs)) < 0.1  # the corners moved 0.67-2 px


def test_no_corner_starts_or_lands_on_a_masked_pixel_and_gaps_stop_tracks():
    gray, _ = _shifted_sequence()
    static = {t: np.ones(g.shape, bool) for t, g in gray.items()}
    static[3][:, :80] = False  # left half of the reference: moving
    static[4][:60] = False  # top half of the next frame
    del gray[1]  # frame 1 missing (not registered): nothing reaches frame 0 either
    tr = tracks.follow_corners(gray, {t: static[t] for t in gray}, 3, span=3, corners=300, window=9, fb_max_px=0.2)
    col = {t: i for i, t in enumerate(tr.frames)}
    assert (tr.uv[:, col[3], 0] >= 80).all()
    landed = tr.valid[:, col[4]]
    assert landed.any() and (tr.uv[landed, col[4], 1] >= 60).all()
    assert 1 not in col and 0 not in col and tr.valid[:, col[2]].any()
    with pytest.raises(ShapeError):
        tracks.follow_corners(gray, static, 1, span=2, corners=10, window=9, fb_max_px=0.2)


def _cameras(L=5, seed=0):
    rng = np.random.default_rng(seed)
    K = np.array([[200.0, 0, 80], [0, 200, 60], [0, 0, 1]])
    P, T_world_camera = [], []
    for i in range(L):
        c = np.array([0.3 * i, 0.05 * rng.normal(), 0.0])
        a = np.radians(2 * rng.normal())
        R = np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])
        P.append(K @ np.c_[R, -R @ c])
        T = np.eye(4)
        T[:3, :3], T[:3, 3] = R.T, c
        T_world_camera.append(T)
    return np.stack(P), K, np.stack(T_world_camera)


def _project(P, X):
    h = np.einsum("lij,nj->nli", P, np.c_[X, np.ones(len(X))])
    return h[..., :2] / h[..., 2:3]


def test_batched_triangulation_matches_its_reference_and_the_truth():
    P, _, _ = _cameras()
    rng = np.random.default_rng(1)
    X = rng.uniform([-1, -1, 3], [1, 1, 6], (40, 3))
    uv = _project(P, X)
    valid = rng.uniform(size=(40, 5)) < 0.7
    valid[:3] = False
    valid[0, :1] = True  # one observation: no point
    out = tracks.triangulate(P, uv, valid)
    ref = tracks.triangulate_reference(P, uv, valid)
    both = np.isfinite(ref).all(1)
    assert np.array_equal(both, np.isfinite(out).all(1)) and not both[:3].any()
    assert np.allclose(out[both], ref[both], atol=1e-8) and np.allclose(out[both], X[both], atol=1e-6)
    noisy = uv + rng.normal(0, 0.3, uv.shape)
    assert np.allclose(tracks.triangulate(P, noisy, valid)[both], tracks.triangulate_reference(P, noisy, valid)[both])
    with pytest.raises(ShapeError):
        tracks.triangulate(P[:4], uv, valid)


def test_tracks_that_disagree_or_fix_nothing_are_dropped():
    P, K, T_world_camera = _cameras()
    X = np.array([[0.2, 0.1, 4.0]] * 5)
    uv = _project(P, X)
    valid = np.ones((5, 5), bool)
    uv[1, 2] += [3.0, 0.0]  # one observation 3 px off
    valid[2, 2:] = False  # two observations only
    X_tri = tracks.triangulate(P, uv, valid)
    X_tri[3] = [0.2, 0.1, -4.0]  # behind the cameras
    X_tri[4] = [0.2, 0.1, 4000.0]  # so far that the rays are parallel
    keep = tracks.good_tracks(K, T_world_camera, uv, valid, X_tri, min_observations=3, max_error_px=2.0, min_angle_deg=1.0)
    assert keep.tolist() == [True, False, False, False, False]


def test_the_refinement_adds_corner_tracks_and_keeps_them_when_they_agree(tmp_path):
    clip, _, rec = _mapped(tmp_path, "tiny_static")
    image_dir = tmp_path / "sfm" / "images"
    before = colmap.model_from_reconstruction(rec)
    without, _ = refine.refine(rec, image_dir, _config(refine_tracks=False), refine_focal=True)
    model, report = refine.refine(rec, image_dir, _config(), refine_focal=True)
    counts = report["corner_tracks"]
    assert report["tracks"].startswith("added and kept"), report["tracks"]
    assert counts["points"] > 0 and len(model.points_world) == len(before.points_world) + counts["points"]
    assert len(model.obs) == len(before.obs) + counts["observations"]
    assert counts["median_error_px_tracks"] < counts["median_error_px_sift_after"]
    assert _ate(model, clip) < _ate(without, clip), (_ate(model, clip), _ate(without, clip))
    # masks: every frame moving -> no corner anywhere
    masks = np.ones((clip.num_frames, clip.height, clip.width), bool)
    _, report = refine.refine(rec, image_dir, _config(), refine_focal=True, masks=masks)
    assert report["tracks"] == "none followed"


def test_tracks_that_pull_the_model_away_from_the_mapper_observations_are_not_kept(tmp_path, monkeypatch):
    _, _, rec = _mapped(tmp_path, "tiny_static")
    follow = tracks.follow_corners

    def biased(gray, static, ref, **kw):  # every other frame's corners 1.5 px to the right: a wrong scene
        tr = follow(gray, static, ref, **kw)
        uv = tr.uv.copy()
        uv[:, tr.frames % 2 == 1, 0] += 1.5
        return tracks.Tracks(tr.ref, tr.frames, uv, tr.valid)

    monkeypatch.setattr(tracks, "follow_corners", biased)
    before = colmap.model_from_reconstruction(rec)
    model, report = refine.refine(rec, tmp_path / "sfm" / "images", _config(), refine_focal=True)
    assert report["tracks"].startswith("added, not kept"), report["tracks"]
    assert len(model.points_world) == len(before.points_world)
