"""A learned disparity aligned densely to the plane sweep, through the flow on a pan, and combined."""

import numpy as np
import pytest

from vid3d.optimizer.flow.config import FlowSet
from vid3d.optimizer.prior.hybrid import align_through_flow, align_to_dense, combine
from vid3d.synthetic import make_clip


def _flicker(depth: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Disparity with a different unknown scale and shift per frame: (T, H, W), scales, shifts."""
    rng = np.random.default_rng(seed)
    T = depth.shape[0]
    s = rng.uniform(0.5, 2.0, T)
    b = rng.uniform(-0.05, 0.05, T)
    return (s[:, None, None] / depth + b[:, None, None]).astype(np.float32), s, b


def _gt_flows(clip, gaps=(1, 2, 4)) -> FlowSet:
    pairs, flow, valid = [], [], []
    for i in range(clip.num_frames):
        for g in gaps:
            for a, b in ((i, i + g), (i + g, i)):
                if 0 <= a < clip.num_frames and 0 <= b < clip.num_frames:
                    f, v = clip.optical_flow(a, b)
                    pairs.append((a, b))
                    flow.append(f)
                    valid.append(v)
    return FlowSet(np.array(pairs, np.int32), np.stack(flow).astype(np.float32), np.stack(valid), "gt")


def test_dense_alignment_recovers_each_frames_scale_and_shift():
    clip = make_clip("tiny_static")
    disp, _, _ = _flicker(clip.depth)
    conf = np.full(clip.depth.shape, 0.9, np.float32)
    conf[:, :, : clip.width // 2] = 0.0  # half of each frame has no confident geometry
    geo = np.where(conf > 0, clip.depth, -1.0).astype(np.float32)
    depth, fits, how = align_to_dense(disp, geo, conf, min_confidence=0.35)
    assert how == ["dense"] * clip.num_frames
    np.testing.assert_allclose(depth, clip.depth, rtol=1e-3)  # the unconfident half too


def test_frames_without_confident_pixels_use_the_fallback():
    clip = make_clip("tiny_static")
    disp, s, b = _flicker(clip.depth)
    conf = np.full(clip.depth.shape, 0.9, np.float32)
    conf[2] = 0.0
    from vid3d.optimizer.prior.align import Alignment

    fallback = [Alignment(1 / s[t], -b[t] / s[t], 0, 0.0) for t in range(clip.num_frames)]
    depth, _, how = align_to_dense(disp, clip.depth, conf, min_confidence=0.35, fallback=fallback)
    assert how[2] == "sparse" and how.count("dense") == clip.num_frames - 1
    np.testing.assert_allclose(depth[2], clip.depth[2], rtol=1e-3)


def test_a_pan_gets_one_consistent_scale_through_the_flow():
    clip = make_clip("tiny_pan")
    assert np.allclose(clip.T_world_camera[:, :3, 3], clip.T_world_camera[0, :3, 3])  # no translation
    disp, s, _ = _flicker(clip.depth, seed=1)
    # per-frame normalisation (what a frame aligned on its own would get): flickers with s
    own = 1.0 / (disp / np.median(disp, axis=(1, 2), keepdims=True))
    ratio_own = np.median(own / clip.depth, axis=(1, 2))
    depth, fits, counts = align_through_flow(disp, _gt_flows(clip))
    ratio = np.median(depth / clip.depth, axis=(1, 2))
    assert min(counts[1:]) >= 50
    spread = np.ptp(np.log(ratio))
    assert spread < 0.03, ratio  # one scale for the clip, within 3 %
    assert spread < 0.2 * np.ptp(np.log(ratio_own))
    # frame 0's own shift is unobservable without geometry; up to ONE affine map of the whole clip's
    # inverse depth, every frame is right
    from vid3d.optimizer.prior.align import fit_scale_shift_disparity

    a = fit_scale_shift_disparity((1 / depth).ravel(), clip.depth.ravel())
    assert a.residual < 0.01, a


def test_combine_keeps_confident_geometry_and_learned_elsewhere():
    geo = np.full((2, 4, 4), 2.0, np.float32)
    learned = np.full((2, 4, 4), 3.0, np.float32)
    conf = np.zeros((2, 4, 4), np.float32)
    conf[:, :2] = 0.9
    moving = np.zeros((2, 4, 4), bool)
    moving[:, 0, 0] = True  # confident but moving: learned, confidence 0
    depth, c = combine(geo, conf, learned, min_confidence=0.35, moving=moving)
    assert depth[0, 1, 0] == 2.0 and depth[0, 3, 3] == 3.0 and depth[0, 0, 0] == 3.0
    assert c[0, 0, 0] == 0.0 and c[0, 1, 0] == pytest.approx(0.9) and c[0, 3, 3] == 0.5


def test_stage_gives_a_pan_depth_with_a_learned_prior(tmp_path, monkeypatch):
    """Rotation-only poses (no SfM points): the geometric prior is constant, a learned one is not."""
    from vid3d.optimizer.prior import run
    from vid3d.optimizer.prior.config import PriorConfig
    from vid3d.optimizer.prior.pydnet import PyDNetSpec, build_graph, save_graph
    from vid3d.optimizer.sfm.config import PoseResult

    clip = make_clip("tiny_pan")
    poses = PoseResult(T_world_camera=clip.T_world_camera, K=clip.K, registered=np.ones(clip.num_frames, bool),
                       points_world=np.zeros((0, 3)), points_rgb=np.zeros((0, 3), np.uint8))
    weights = save_graph(build_graph(PyDNetSpec(height=64, width=128, encoder=(3, 5, 7), decoder=(6, 4)), seed=0),
                         tmp_path / "pydnet_tiny.npz")
    flows = _gt_flows(clip)
    geo = run(clip.rgb, poses, PriorConfig(backend="geometric"), flows=flows)
    assert len(geo.report["constant_frames"]) == clip.num_frames
    out = run(clip.rgb, poses, PriorConfig(backend="pydnet", weights=str(weights)), flows=flows)
    assert out.report["constant_frames"] == []
    assert "optical flow" in out.report["alignment"]["kind"]
    assert (out.depth > 0).all() and out.depth.shape == clip.depth.shape


def test_local_scale_removes_a_smooth_distortion_that_one_scale_per_frame_leaves():
    from vid3d.optimizer.prior.hybrid import local_scale

    clip = make_clip("tiny_static")
    T, H, W = clip.depth.shape
    yy, xx = np.mgrid[0:H, 0:W] / max(H, W)
    bend = np.exp(0.3 * (xx - 0.5) + 0.2 * (yy - 0.3) ** 2)  # a smooth monocular distortion
    learned = (clip.depth * bend).astype(np.float32)
    conf = np.zeros(clip.depth.shape, np.float32)
    conf[:, ::4, ::4] = 0.9  # the sweep is confident on a sparse lattice only
    out = local_scale(clip.depth, conf, learned, clip.rgb, min_confidence=0.35)
    err_before = np.median(np.abs(learned / np.median(learned / clip.depth) - clip.depth) / clip.depth)
    err_after = np.median(np.abs(out - clip.depth) / clip.depth)
    assert err_after < 0.3 * err_before, (err_before, err_after)
