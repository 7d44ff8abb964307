"""Multi-view depth fusion: fast path vs slow twin, exact depth is a fixed point, per-frame noise shrinks."""

from __future__ import annotations

import numpy as np
import pytest

import vid3d  # noqa: F401
from vid3d.formats.errors import InputError, ShapeError
from vid3d.optimizer.train.multiview import multiview_fuse, multiview_fuse_reference, neighbours


@pytest.fixture(scope="module")
def clip():
    from vid3d.synthetic import SceneConfig, make_clip

    return make_clip(SceneConfig.preset("tiny_dynamic"))


def _noisy(depth: np.ndarray, seed: int, std: float) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (depth * np.exp(rng.normal(0.0, std, depth.shape))).astype(np.float32)


def test_neighbours_in_range_and_order():
    assert neighbours(0, 5, (1, 2)) == [1, 2]
    assert neighbours(2, 5, (1, 2)) == [1, 3, 0, 4]
    assert neighbours(4, 5, (1, 8)) == [3]


def test_fast_matches_reference_on_tiny_inputs(clip):
    sl = (slice(0, 4), slice(10, 26), slice(20, 44))  # 4 frames, 16 x 24 crop
    depth = _noisy(clip.depth[sl], 0, 0.03)
    K = clip.K.copy()
    K[0, 2] -= 20
    K[1, 2] -= 10  # the crop's intrinsics
    weight = np.random.default_rng(1).uniform(0, 1, depth.shape).astype(np.float32)
    dyn = clip.dynamic_mask[sl]
    fast, sup_f = multiview_fuse(depth, K, clip.T_world_camera[:4], weight=weight, dynamic=dyn, gaps=(1, 2))
    ref, sup_r = multiview_fuse_reference(depth, K, clip.T_world_camera[:4], weight=weight, dynamic=dyn, gaps=(1, 2))
    assert (sup_f == sup_r).mean() > 0.99  # a pixel exactly on the tolerance may flip in float32
    close = np.isclose(fast, ref, rtol=1e-4)
    assert close.mean() > 0.99
    assert sup_f.sum() > 0 and np.all(fast[dyn] == depth[dyn])


def test_exact_depth_is_a_fixed_point(clip):
    fused, support = multiview_fuse(clip.depth, clip.K, clip.T_world_camera, dynamic=clip.dynamic_mask)
    rel = np.abs(fused / clip.depth - 1)
    static = ~clip.dynamic_mask
    # exact except at depth edges, where bilinear samples blend two surfaces within rel_tol
    assert np.median(rel[static]) < 1e-4 and np.percentile(rel[static], 90) < 0.005
    assert support[static].mean() > 2


def test_fusion_removes_independent_per_frame_noise(clip):
    noisy = _noisy(clip.depth, 2, 0.04)
    fused, _ = multiview_fuse(noisy, clip.K, clip.T_world_camera, dynamic=clip.dynamic_mask)
    static = ~clip.dynamic_mask
    err_in = np.abs(noisy / clip.depth - 1)[static].mean()
    err_out = np.abs(fused / clip.depth - 1)[static].mean()
    assert err_out < 0.75 * err_in
    dyn = clip.dynamic_mask
    assert np.array_equal(fused[dyn], noisy[dyn])  # moving pixels keep their own depth


def test_bad_input_is_a_clear_error(clip):
    with pytest.raises(ShapeError, match="T_world_camera"):
        multiview_fuse(clip.depth, clip.K, clip.T_world_camera[:2])
    with pytest.raises(ShapeError, match="weight"):
        multiview_fuse(clip.depth, clip.K, clip.T_world_camera, weight=np.ones((2, 2)))
    with pytest.raises(InputError, match="rel_tol"):
        multiview_fuse(clip.depth, clip.K, clip.T_world_camera, rel_tol=0)
