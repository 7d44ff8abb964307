"""Depth prior: scale alignment, plane-sweep pieces against slow twins, edge-aware fill, accuracy vs GT."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import vid3d  # noqa: F401
from vid3d.formats.conventions import invert_T, make_K, make_T, pixel_grid, project_points, quat_wxyz_to_R
from vid3d.formats.errors import InputError, ShapeError
from vid3d.eval.metrics import depth_metrics, evaluate_depth
from vid3d.optimizer.prior import (
    PriorConfig, align_depth_to_sfm, available_backends, fit_scale, fit_scale_shift_disparity,
)
from vid3d.optimizer.prior import run as estimate_prior
from vid3d.optimizer.prior.align import align_disparity_to_sfm
from vid3d.optimizer.prior.fill import fill_depth, pull_push
from vid3d.optimizer.prior.geometric import warp_grid, warp_grid_fast, zncc_cost
from vid3d.optimizer.sfm import PoseResult
from vid3d.synthetic import SceneConfig, make_clip


def poses_from_ground_truth(clip, step: int = 6) -> PoseResult:
    """A PoseResult with GT cameras and sparse points from GT depth on a pixel lattice (static pixels)."""
    T, H, W = clip.depth.shape
    uv = pixel_grid(H, W)[step // 2 :: step, step // 2 :: step].reshape(-1, 2).astype(np.float64)
    from vid3d.formats.conventions import unproject_depth

    pts, fr, obs_uv = [], [], []
    for t in range(T):
        P = unproject_depth(clip.depth[t].astype(np.float64), clip.K, clip.T_world_camera[t])
        P = P[step // 2 :: step, step // 2 :: step].reshape(-1, 3)
        keep = ~clip.dynamic_mask[t][step // 2 :: step, step // 2 :: step].reshape(-1)
        pts.append(P[keep])
        fr.append(np.full(keep.sum(), t))
        obs_uv.append(uv[keep])
    pts = np.concatenate(pts)
    return PoseResult(
        T_world_camera=clip.T_world_camera, K=clip.K, registered=np.ones(T, bool), points_world=pts,
        points_rgb=np.zeros((len(pts), 3), np.uint8), report={}, obs_frame=np.concatenate(fr).astype(np.int64),
        obs_point=np.arange(len(pts), dtype=np.int64), obs_uv=np.concatenate(obs_uv),
    )


@pytest.fixture(scope="module")
def static_clip():
    return make_clip(SceneConfig.preset("static").replace(height=96, width=160, num_frames=8, camera_travel=0.8))


@pytest.fixture(scope="module")
def dynamic_clip():
    return make_clip(SceneConfig.preset("dynamic").replace(height=96, width=160, num_frames=8, camera_travel=0.8))


# --- alignment -----------------------------------------------------------------------------------


def test_fit_scale_recovers_known_scale_despite_outliers():
    rng = np.random.default_rng(0)
    pred = rng.uniform(1, 5, 500)
    target = 2.5 * pred * (1 + 0.01 * rng.standard_normal(500))
    target[:100] = rng.uniform(0.1, 20, 100)  # 20% outliers (moving points, bad matches)
    a = fit_scale(pred, target)
    assert abs(a.scale - 2.5) < 0.05 and a.num_points == 500
    with pytest.raises(ShapeError):
        fit_scale(pred, target[:10])


def test_fit_scale_shift_disparity_recovers_affine():
    rng = np.random.default_rng(1)
    z = rng.uniform(1, 8, 400)
    disp = (1 / z - 0.05) / 0.3  # model disparity with 1/z = 0.3 disp + 0.05
    disp[:40] *= rng.uniform(0.2, 3, 40)  # outliers
    a = fit_scale_shift_disparity(disp, z)
    assert abs(a.scale - 0.3) < 0.01 and abs(a.shift - 0.05) < 0.005


def test_align_to_sfm_recovers_scale_and_disparity_affine(static_clip):
    poses = poses_from_ground_truth(static_clip)
    depth, a = align_depth_to_sfm(static_clip.depth * 0.4, poses)
    assert abs(a.scale - 2.5) < 1e-3
    np.testing.assert_allclose(depth, static_clip.depth, rtol=1e-3)
    disp = 3.0 / static_clip.depth + 0.7
    depth2, fits = align_disparity_to_sfm(disp, poses)
    np.testing.assert_allclose(depth2, static_clip.depth, rtol=1e-3)


# --- plane-sweep pieces vs slow twins ------------------------------------------------------------


def test_warp_grid_matches_project_points():
    K = make_K(50.0, 52.0, 16.3, 11.7)
    T_src_ref = make_T(quat_wxyz_to_R(np.array([0.99, 0.05, -0.08, 0.02])), np.array([0.2, -0.1, 0.05]))
    H, W = 24, 32
    inv = torch.tensor([0.2, 0.5, 1.0], dtype=torch.float64)
    grid, z = warp_grid(torch.from_numpy(K), torch.from_numpy(T_src_ref), inv, H, W)
    uv = pixel_grid(H, W).astype(np.float64)
    rays = np.concatenate([uv, np.ones((H, W, 1))], -1) @ np.linalg.inv(K).T
    for k, d in enumerate(1 / inv.numpy()):
        p_ref = (rays * d).reshape(-1, 3)
        uv_s, z_s = project_points(p_ref, K, invert_T(T_src_ref))  # T_world_camera of src in ref frame
        g = np.stack([2 * uv_s[:, 0] / W - 1, 2 * uv_s[:, 1] / H - 1], -1)
        np.testing.assert_allclose(grid[k].numpy().reshape(-1, 2), g, atol=1e-9)
        np.testing.assert_allclose(z[k].numpy().reshape(-1), z_s, atol=1e-9)


def test_warp_grid_fast_matches_warp_grid():
    K = make_K(50.0, 52.0, 16.3, 11.7)
    T_src_ref = make_T(quat_wxyz_to_R(np.array([0.99, 0.05, -0.08, 0.02])), np.array([0.2, -0.1, 0.05]))
    inv = torch.tensor([0.2, 0.5, 1.0, 3.0], dtype=torch.float64)
    grid, z = warp_grid(torch.from_numpy(K), torch.from_numpy(T_src_ref), inv, 24, 32)
    fast, hz = warp_grid_fast(torch.from_numpy(K), torch.from_numpy(T_src_ref), inv, 24, 32)
    np.testing.assert_allclose(fast.numpy(), grid.numpy(), atol=1e-9)
    np.testing.assert_allclose(hz.numpy(), (z * inv[:, None, None]).numpy(), atol=1e-12)


@pytest.mark.parametrize("compiled", [True, False], ids=["numba", "torch"])
@pytest.mark.parametrize("top_k", [1, 2, 3])
def test_sweep_frame_matches_its_reference_twin(static_clip, top_k, compiled):
    """Both fast sweeps (the compiled CPU pass; torch with running k smallest costs and the folded
    warp, the CUDA path) equal the stacked topk version up to float rounding: a few pixels may pick
    the neighbouring plane on a near-tie."""
    from vid3d.optimizer.prior.geometric import sweep_frame, sweep_frame_reference

    clip = static_clip
    gray = torch.from_numpy(clip.rgb.astype(np.float32).mean(-1) / 255.0 - 0.5)
    Tw = torch.from_numpy(clip.T_world_camera.astype(np.float32))
    K = torch.from_numpy(clip.K.astype(np.float32))
    inv = torch.linspace(1 / (clip.depth.max() * 1.3), 1 / (clip.depth.min() / 1.3), 24)
    cfg = PriorConfig(top_k=top_k)
    t, sources = 2, [0, 1, 3, 4][: max(top_k + 1, 2)]
    d, c = sweep_frame(gray, t, sources, Tw, K, inv, cfg, compiled=compiled)
    d_ref, c_ref = sweep_frame_reference(gray, t, sources, Tw, K, inv, cfg)
    rel = (d - d_ref).abs() / d_ref
    assert float((rel > 1e-4).float().mean()) < 0.005
    assert float((c - c_ref).abs().max()) < 1e-2
    assert float((c - c_ref).abs().mean()) < 1e-4


def test_compiled_cost_volume_matches_torch_per_source():
    """The compiled pass equals torch's warp + grid_sample + box filter + validity for each source
    (k = 1, one source: no ordering involved), sub-pixel shifts, rotation, pixels leaving the image."""
    from vid3d.optimizer.prior.geometric import _reference_stats, _source_cost, local_normalize
    from vid3d.optimizer.prior.sweep_cpu import cost_volume_cpu

    rng = np.random.default_rng(3)
    H, W = 30, 44
    gray = torch.from_numpy(rng.uniform(-0.5, 0.5, (2, H, W)).astype(np.float32))
    K = torch.tensor(make_K(40.0, 41.0, 22.3, 14.8), dtype=torch.float32)
    T_src_ref = torch.tensor(make_T(quat_wxyz_to_R(np.array([0.995, 0.03, -0.05, 0.02])),
                                    np.array([0.137, -0.061, 0.043])), dtype=torch.float32)
    inv = torch.linspace(0.1, 2.0, 9)
    cfg = PriorConfig()
    ref, ref_n, mr, vr = _reference_stats(gray[0], cfg.patch_radius)
    grid, hz = warp_grid_fast(K, T_src_ref, inv, H, W)
    want = _source_cost(gray[1], grid, ref, ref_n, mr, vr, cfg)
    want.masked_fill_((grid.abs().amax(-1) > 1) | (hz <= 0), 2.0)
    got = cost_volume_cpu(ref_n[0, 0], local_normalize(gray[1:][:, None], cfg.patch_radius)[:, 0], K,
                          T_src_ref[None], inv, cfg.patch_radius, 1)
    assert float((want == 2.0).float().mean()) > 0.05  # some pixels do leave the source
    np.testing.assert_allclose(got.numpy(), want.numpy(), atol=2e-5)
    with pytest.raises(ValueError):
        cost_volume_cpu(ref_n[0, 0], gray[1:], K, T_src_ref[None], inv, 2, 2)


def test_compiled_cost_minima_match_torch_reductions():
    """Minimum, its neighbours and the runner-up away from it, ties included (first plane wins)."""
    from vid3d.optimizer.prior.sweep_cpu import cost_minima_cpu

    rng = np.random.default_rng(4)
    cost = torch.from_numpy(rng.integers(0, 6, (12, 7, 9)).astype(np.float32) / 4)  # many ties
    best, (cm, c1, cp, c2) = cost_minima_cpu(cost)
    want = cost.argmin(0)
    assert torch.equal(best, want)
    D = len(cost)
    assert torch.equal(c1, cost.gather(0, want[None])[0])
    assert torch.equal(cm, cost.gather(0, (want - 1).clamp(min=0)[None])[0])
    assert torch.equal(cp, cost.gather(0, (want + 1).clamp(max=D - 1)[None])[0])
    far = (torch.arange(D)[:, None, None] - want[None]).abs() > 2
    assert torch.equal(c2, torch.where(far, cost, torch.full_like(cost, 2.0)).min(0).values)


def test_zncc_cost_matches_loop_reference():
    rng = np.random.default_rng(2)
    ref = rng.uniform(0, 1, (16, 16))
    warped = np.stack([ref * 0.5 + 0.2, rng.uniform(0, 1, (16, 16))])
    r = 1
    fast = zncc_cost(torch.tensor(ref)[None, None], torch.tensor(warped)[:, None], r).numpy()
    slow = np.zeros_like(fast)
    for d in range(2):
        for y in range(16):
            for x in range(16):
                ys, xs = slice(max(y - r, 0), y + r + 1), slice(max(x - r, 0), x + r + 1)
                a, b = ref[ys, xs].ravel(), warped[d][ys, xs].ravel()
                cov = np.mean(a * b) - a.mean() * b.mean()
                zn = cov / np.sqrt(a.var() * b.var() + 1e-8)
                slow[d, y, x] = 1 - np.clip(zn, -1, 1)
    np.testing.assert_allclose(fast, slow, atol=1e-6)
    assert fast[0].max() < 1e-3  # an affine copy matches perfectly


# --- fill ----------------------------------------------------------------------------------------------


def test_fill_is_edge_aware_and_keeps_known_pixels():
    H, W = 32, 48
    depth = np.where(np.arange(W)[None, :] < 24, 1.0, 3.0).repeat(H, 0).astype(np.float32)
    rgb = np.where(np.arange(W)[None, :, None] < 24, 40.0, 200.0).repeat(H, 0).repeat(3, 2).astype(np.float32)
    w = np.ones((H, W), np.float32)
    w[8:24, 14:34] = 0  # a hole straddling the edge
    out = fill_depth(torch.tensor(depth), torch.tensor(w), torch.tensor(rgb), sigma_color=10.0, iterations=2).numpy()
    np.testing.assert_array_equal(out[w > 0], depth[w > 0])
    hole = w == 0
    assert np.abs(out[hole] - depth[hole]).max() / depth[hole].min() < 0.1  # each side keeps its own depth
    smooth = pull_push(torch.tensor(1 / depth), torch.tensor(w)).numpy()
    assert np.isfinite(smooth).all() and (smooth > 0).all()


# --- end to end against ground truth ---------------------------------------------------------------


def test_geometric_prior_beats_constant_and_meets_absrel_bound(static_clip):
    poses = poses_from_ground_truth(static_clip, step=12)
    pr = estimate_prior(static_clip.rgb, poses, PriorConfig(backend="geometric", num_planes=48))
    assert pr.backend == "geometric"
    assert pr.depth.shape == static_clip.depth.shape and pr.depth.dtype == np.float32 and (pr.depth > 0).all()
    assert 0 <= pr.confidence.min() and pr.confidence.max() <= 1
    m = depth_metrics(pr.depth, static_clip.depth)  # GT poses: already metric, no alignment
    const = evaluate_depth(np.ones_like(static_clip.depth), static_clip.depth).overall  # best constant (median scale)
    assert m.abs_rel < 0.08, m
    assert m.abs_rel < 0.5 * const.abs_rel
    # in SfM units already: the scale check is ~1
    assert abs(pr.report["alignment"]["scale"] - 1) < 0.05
    # confident pixels are more accurate than the filled ones
    c = pr.confidence >= 0.35
    rel = np.abs(pr.depth - static_clip.depth) / static_clip.depth
    assert c.mean() > 0.3 and np.median(rel[c]) < 0.03


def test_masked_moving_regions_get_zero_confidence_and_plausible_depth(dynamic_clip):
    poses = poses_from_ground_truth(dynamic_clip, step=12)
    masks = dynamic_clip.dynamic_mask
    pr = estimate_prior(dynamic_clip.rgb, poses, PriorConfig(backend="geometric", num_planes=32, max_sources=2),
                        masks=masks)
    assert (pr.confidence[masks] == 0).all()
    m_static = depth_metrics(pr.depth, dynamic_clip.depth, ~masks)
    assert m_static.abs_rel < 0.1, m_static


def test_backends_report_availability_and_auto_falls_back(static_clip):
    status = available_backends()
    assert status["geometric"][0]
    for name in ("depth_anything", "midas"):
        ok, reason = status[name]
        assert isinstance(reason, str) and reason
        if not ok:
            with pytest.raises(InputError, match=name):
                estimate_prior(static_clip.rgb, poses_from_ground_truth(static_clip), PriorConfig(backend=name))
    with pytest.raises(InputError):
        PriorConfig(backend="zoedepth")


def test_rotation_only_poses_give_constant_zero_confidence_prior(static_clip):
    T = static_clip.num_frames
    poses = PoseResult(T_world_camera=np.repeat(np.eye(4)[None], T, 0), K=static_clip.K, registered=np.ones(T, bool),
                       points_world=np.zeros((0, 3)), points_rgb=np.zeros((0, 3), np.uint8))
    pr = estimate_prior(static_clip.rgb, poses, PriorConfig(backend="geometric"))
    assert (pr.confidence == 0).all() and (pr.depth > 0).all() and "parallax" in pr.report["note"]
    with pytest.raises(ShapeError):
        estimate_prior(static_clip.rgb[:3], poses, PriorConfig(backend="geometric"))


def _mover_nearer(depth: np.ndarray, moving: np.ndarray) -> float:
    """Fraction of 4-neighbour (moving, static) pixel pairs where the mover is the nearer."""
    near = total = 0
    for a, m in ((depth, moving), (depth.transpose(0, 2, 1), moving.transpose(0, 2, 1))):
        for s_in, s_out in ((np.s_[..., :-1], np.s_[..., 1:]), (np.s_[..., 1:], np.s_[..., :-1])):
            edge = m[s_in] & ~m[s_out]
            near += int((a[s_in][edge] < a[s_out][edge]).sum())
            total += int(edge.sum())
    return near / total


def test_hybrid_prior_never_puts_a_mover_behind_what_it_hides(tmp_path):
    """Whatever the network says of a mover (here a random one), the hybrid prior keeps it in front of
    the background around it: at most the depth of its ground contact."""
    from vid3d.optimizer.prior.pydnet import PyDNetSpec, build_graph, save_graph

    clip = make_clip(SceneConfig.preset("walkers").replace(height=96, width=160, num_frames=6))
    poses = poses_from_ground_truth(clip, step=8)
    weights = save_graph(build_graph(PyDNetSpec(height=64, width=128, encoder=(3, 5, 7), decoder=(6, 4)), seed=0),
                         tmp_path / "pydnet_tiny.npz")
    cfg = PriorConfig(backend="pydnet", weights=str(weights), num_planes=32, max_sources=2)
    masks = clip.dynamic_mask
    out = estimate_prior(clip.rgb, poses, cfg, masks=masks)
    assert _mover_nearer(out.depth, masks) > 0.8  # ground truth: 0.95 (the floor just below a foot is nearer)
    assert out.report["movers_capped_fraction"] > 0
    uncapped = estimate_prior(clip.rgb, poses, cfg.replace(movers_from_contact=False), masks=masks)
    assert _mover_nearer(uncapped.depth, masks) < _mover_nearer(out.depth, masks)
