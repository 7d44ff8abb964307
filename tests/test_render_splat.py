"""Splatting z-buffer: fast path vs the slow loop twin, convention pins, determinism, hole filling."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vid3d.formats.conventions import make_K, make_T, quat_wxyz_to_R, unproject_depth
from vid3d.formats.errors import InputError, ShapeError
from vid3d.viewer.render import Camera, RenderResult, fill_from, pull_push_fill, render_view, splat
from vid3d.viewer.render.splat_reference import splat_reference


def _random_pose(rng: np.random.Generator) -> np.ndarray:
    q = rng.normal(size=4)
    return make_T(quat_wxyz_to_R(q), rng.normal(size=3))


def _points_off_borders(rng, cam: Camera, n: int, *, distinct_depths: bool) -> np.ndarray:
    """World points whose projections sit within 0.35 px of pixel centres (so float32 vs float64
    projection cannot disagree on the pixel), some just outside the image, some behind the camera."""
    H, W = cam.height, cam.width
    u = rng.integers(-2, W + 2, n) + 0.5 + rng.uniform(-0.35, 0.35, n)
    v = rng.integers(-2, H + 2, n) + 0.5 + rng.uniform(-0.35, 0.35, n)
    if distinct_depths:
        z = 0.5 + 0.02 * rng.permutation(n)  # all depths differ by >= 0.02
    else:
        z = rng.choice([1.0, 2.0, 3.0], n)  # many exact ties
    Kinv = np.linalg.inv(cam.K.numpy())
    p_cam = (np.stack([u, v, np.ones(n)], -1) @ Kinv.T) * z[:, None]
    p_cam[: n // 10, 2] *= -1  # behind the camera
    T = cam.T_world_camera.numpy()
    return p_cam @ T[:3, :3].T + T[:3, 3]


@pytest.mark.parametrize("radius", [0, 1, 2])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fast_matches_reference_random_pose(seed, radius):
    rng = np.random.default_rng(seed)
    cam = Camera(K=make_K(14.0, 15.0, 9.0, 7.5), T_world_camera=_random_pose(rng), height=16, width=18)
    pts = _points_off_borders(rng, cam, 80, distinct_depths=True).astype(np.float32)
    col = rng.integers(0, 256, (80, 3)).astype(np.uint8)
    res = splat(torch.from_numpy(pts), torch.from_numpy(col), cam, point_radius_px=radius, background=(0.1, 0.2, 0.3))
    rgb, depth, index = splat_reference(pts, col, cam, point_radius_px=radius, background=(0.1, 0.2, 0.3))
    assert (index >= 0).sum() > 20  # the case is not trivially empty
    np.testing.assert_array_equal(res.index.numpy(), index)
    np.testing.assert_array_equal(res.rgb.numpy(), rgb)
    torch.testing.assert_close(res.depth, torch.from_numpy(depth), rtol=1e-6, atol=0)


@pytest.mark.parametrize("radius", [0, 1])
def test_fast_matches_reference_with_exact_ties(radius):
    rng = np.random.default_rng(7)
    cam = Camera(K=make_K(10.0, 10.0, 6.0, 5.0), T_world_camera=np.eye(4), height=10, width=12)
    pts = _points_off_borders(rng, cam, 300, distinct_depths=False).astype(np.float32)  # ~2.5 points per pixel
    col = rng.random((300, 3)).astype(np.float32)
    res = splat(torch.from_numpy(pts), torch.from_numpy(col), cam, point_radius_px=radius)
    rgb, depth, index = splat_reference(pts, col, cam, point_radius_px=radius)
    np.testing.assert_array_equal(res.index.numpy(), index)
    np.testing.assert_array_equal(res.depth.numpy(), depth)
    np.testing.assert_array_equal(res.rgb.numpy(), rgb)


@pytest.mark.parametrize("radius", [0, 1])
def test_depth_peeling_matches_reference_and_returns_the_surface_behind(radius):
    rng = np.random.default_rng(11)
    cam = Camera(K=make_K(14.0, 15.0, 9.0, 7.5), T_world_camera=_random_pose(rng), height=16, width=18)
    pts = _points_off_borders(rng, cam, 400, distinct_depths=True).astype(np.float32)
    col = rng.integers(0, 256, (400, 3)).astype(np.uint8)
    first = splat(torch.from_numpy(pts), torch.from_numpy(col), cam, point_radius_px=radius)
    peeled = splat(torch.from_numpy(pts), torch.from_numpy(col), cam, point_radius_px=radius, peel_depth=first.depth)
    _, depth, index = splat_reference(pts, col, cam, point_radius_px=radius, peel_depth=first.depth.numpy())
    np.testing.assert_array_equal(peeled.index.numpy(), index)
    both = (first.index >= 0) & (peeled.index >= 0)
    assert int(both.sum()) > 20
    if radius == 0:  # (with a footprint the gate is the point's own pixel, so neighbours may tie)
        assert bool((peeled.depth[both] > first.depth[both]).all())


def test_nearest_wins_and_ties_go_to_lower_index():
    cam = Camera(K=make_K(4.0, 4.0, 2.0, 2.0), T_world_camera=np.eye(4), height=4, width=4)
    # all at camera ray through pixel (2, 2): x = y = 0.125 z / ... choose points on the central ray
    pts = torch.tensor([[0.0625, 0.0625, 3.0], [0.125, 0.125, 2.0], [0.1875, 0.1875, 3.0], [0.25, 0.25, 4.0], [0.125, 0.125, 2.0]])
    col = torch.tensor([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 1], [1, 1, 0]], dtype=torch.float32)
    res = splat(pts, col, cam)
    assert res.index[2, 2] == 1  # nearest (z = 2); the tie with point 4 goes to the lower index
    assert res.depth[2, 2] == 2.0
    torch.testing.assert_close(res.rgb[2, 2], torch.tensor([0.0, 1.0, 0.0]))
    assert int(res.mask.sum()) == 1 and res.index[0, 0] == -1 and res.depth[0, 0] == 0


def test_convention_pins():
    # OpenCV axes: +x right (larger column), +y down (larger row); pixel centres at +0.5.
    cam = Camera(K=make_K(10.0, 10.0, 5.5, 4.5), T_world_camera=np.eye(4), height=9, width=11)
    pts = torch.tensor([[0.0, 0.0, 1.0], [0.2, 0.0, 1.0], [0.0, 0.3, 1.0]])
    res = splat(pts, torch.eye(3), cam)
    assert res.index[4, 5] == 0 and res.index[4, 7] == 1 and res.index[7, 5] == 2
    # T_world_camera is camera-to-world: a camera centred at world x = 1 sees world (1, 0, 1) dead ahead.
    cam2 = cam.with_pose(make_T(np.eye(3), np.array([1.0, 0.0, 0.0])))
    res2 = splat(torch.tensor([[1.0, 0.0, 1.0]]), torch.ones(1, 3), cam2)
    assert res2.index[4, 5] == 0


def test_dropped_points_behind_nonfinite_offimage_and_radius_at_edges():
    cam = Camera(K=make_K(10.0, 10.0, 4.0, 4.0), T_world_camera=np.eye(4), height=8, width=8)
    pts = torch.tensor([
        [0.0, 0.0, -1.0],          # behind
        [float("nan"), 0.0, 1.0],  # NaN
        [0.0, 0.0, 0.0],           # on the camera centre
        [10.0, 0.0, 1.0],          # far off the image
        [-0.41, -0.41, 1.0],       # projects to (-0.1, -0.1): off the image by a hair
    ])
    col = torch.full((5, 3), 255, dtype=torch.uint8)
    assert int(splat(pts, col, cam).mask.sum()) == 0
    # with radius 1 the last point's 3x3 footprint reaches pixel (0, 0) only
    res = splat(pts, col, cam, point_radius_px=1)
    assert res.mask.nonzero().tolist() == [[0, 0]] and res.index[0, 0] == 4


def test_deterministic_and_order_independent():
    rng = np.random.default_rng(3)
    cam = Camera(K=make_K(20.0, 20.0, 16.0, 12.0), T_world_camera=np.eye(4), height=24, width=32)
    pts = _points_off_borders(rng, cam, 500, distinct_depths=False).astype(np.float32)
    col = rng.integers(0, 256, (500, 3)).astype(np.uint8)
    a = splat(torch.from_numpy(pts), torch.from_numpy(col), cam, point_radius_px=1)
    b = splat(torch.from_numpy(pts), torch.from_numpy(col), cam, point_radius_px=1)
    assert torch.equal(a.index, b.index) and torch.equal(a.rgb, b.rgb)
    # Without ties the picture does not depend on the order of the points.
    pts_d = _points_off_borders(rng, cam, 500, distinct_depths=True).astype(np.float32)
    perm = rng.permutation(500)
    c = splat(torch.from_numpy(pts_d), torch.from_numpy(col), cam)
    d = splat(torch.from_numpy(pts_d[perm]), torch.from_numpy(col[perm]), cam)
    assert torch.equal(c.rgb, d.rgb) and torch.equal(c.depth, d.depth)
    hit = c.index >= 0
    assert torch.equal(torch.from_numpy(perm)[d.index[hit]], c.index[hit])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU")
def test_cuda_matches_cpu():
    rng = np.random.default_rng(5)
    cam = Camera(K=make_K(200.0, 200.0, 160.0, 120.0), T_world_camera=_random_pose(rng), height=240, width=320)
    pts = torch.from_numpy(_points_off_borders(rng, cam, 200_000, distinct_depths=False).astype(np.float32))
    col = torch.from_numpy(rng.integers(0, 256, (200_000, 3)).astype(np.uint8))
    a = splat(pts, col, cam, point_radius_px=1)
    b = splat(pts.cuda(), col.cuda(), cam, point_radius_px=1)
    assert torch.equal(a.index, b.index.cpu()) and torch.equal(a.rgb, b.rgb.cpu())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU")
def test_cuda_hot_path_has_no_host_sync():
    rng = np.random.default_rng(6)
    cam = Camera(K=make_K(200.0, 200.0, 160.0, 120.0), T_world_camera=_random_pose(rng), height=240, width=320)
    pts = torch.from_numpy(_points_off_borders(rng, cam, 10_000, distinct_depths=True).astype(np.float32)).cuda()
    col = torch.from_numpy(rng.integers(0, 256, (10_000, 3)).astype(np.uint8)).cuda()
    splat(pts, col, cam, point_radius_px=1)  # warm up (allocations)
    torch.cuda.set_sync_debug_mode("error")
    try:
        splat(pts, col, cam, point_radius_px=1, background=(0.2, 0.2, 0.2))
    finally:
        torch.cuda.set_sync_debug_mode("default")


def test_bad_inputs_raise_clear_errors():
    cam = Camera(K=make_K(10.0, 10.0, 4.0, 4.0), T_world_camera=np.eye(4), height=8, width=8)
    with pytest.raises(ShapeError, match="torch tensors"):
        splat(np.zeros((3, 3)), np.zeros((3, 3)), cam)
    with pytest.raises(ShapeError, match=r"points \(N, 3\)"):
        splat(torch.zeros(3, 2), torch.zeros(3, 2), cam)
    with pytest.raises(ShapeError, match="colors"):
        splat(torch.zeros(3, 3), torch.zeros(4, 3), cam)
    with pytest.raises(InputError, match="point_radius_px"):
        splat(torch.zeros(3, 3), torch.zeros(3, 3), cam, point_radius_px=-1)
    with pytest.raises(ShapeError, match="T_world_camera"):
        Camera(K=np.eye(3), T_world_camera=np.eye(3), height=8, width=8)
    with pytest.raises(InputError, match="height"):
        Camera(K=np.eye(3), T_world_camera=np.eye(4), height=0, width=8)
    empty = splat(torch.zeros(0, 3), torch.zeros(0, 3, dtype=torch.uint8), cam, background=(1, 0, 0))
    assert isinstance(empty, RenderResult) and (empty.index == -1).all() and (empty.rgb[..., 0] == 1).all()


def test_pull_push_keeps_valid_pixels_and_fills_holes_from_the_far_side():
    H, W = 16, 16
    rgb = torch.zeros(H, W, 3)
    depth = torch.zeros(H, W)
    rgb[:, :6] = torch.tensor([1.0, 0.0, 0.0])  # near foreground (red) at the left
    depth[:, :6] = 1.0
    rgb[:, 10:] = torch.tensor([0.0, 0.0, 1.0])  # far background (blue) at the right
    depth[:, 10:] = 5.0
    out_rgb, out_depth = pull_push_fill(rgb, depth)
    valid = depth > 0
    assert torch.equal(out_rgb[valid], rgb[valid]) and torch.equal(out_depth[valid], depth[valid])
    gap = out_rgb[:, 6:10]
    assert (out_depth[:, 6:10] > 0).all()
    # the disocclusion gap is filled mostly with the far (blue) side
    assert gap[..., 2].mean() > 0.7 and gap[..., 0].mean() < 0.3
    naive_rgb, _ = pull_push_fill(rgb, depth, prefer_far=False)
    assert naive_rgb[:, 6:10, 0].mean() > gap[..., 0].mean() + 0.1


def _plane_scene():
    """Background plane z = 4 (blue, textured) and a red square at z = 2 in front of it."""
    K = make_K(40.0, 40.0, 32.0, 32.0)
    cam = Camera(K=K, T_world_camera=np.eye(4), height=64, width=64)
    depth_bg = torch.full((64, 64), 4.0)
    bg = unproject_depth(depth_bg, torch.from_numpy(K)).reshape(-1, 3)
    fg = unproject_depth(torch.full((16, 16), 2.0), torch.from_numpy(make_K(40.0, 40.0, 8.0, 8.0))).reshape(-1, 3)
    bg_col = torch.tensor([0, 0, 255], dtype=torch.uint8).expand(bg.shape[0], 3).clone()
    fg_col = torch.tensor([255, 0, 0], dtype=torch.uint8).expand(fg.shape[0], 3).clone()
    return cam, bg, bg_col, fg, fg_col


def test_render_view_fills_disocclusions_from_other_frames():
    cam, bg, bg_col, fg, fg_col = _plane_scene()
    # This frame's points: the foreground square plus the background it does not hide.
    behind = (bg[:, 0].abs() < 0.4 * 2) & (bg[:, 1].abs() < 0.4 * 2)
    pts = torch.cat([fg, bg[~behind]])
    cols = torch.cat([fg_col, bg_col[~behind]])
    view = cam.with_pose(make_T(np.eye(3), np.array([0.6, 0.0, 0.0])))  # step right: reveals the hidden plane
    plain = splat(pts, cols, view, point_radius_px=1)
    hole = (plain.index < 0)[16:48, 16:48]
    assert hole.sum() > 30  # a real disocclusion
    filled = render_view(pts, cols, view, point_radius_px=1, background_points=bg, background_colors=bg_col)
    region = filled.rgb[16:48, 16:48][hole]
    assert (region[:, 2] > 0.99).all() and (region[:, 0] < 0.01).all()
    assert (filled.index[16:48, 16:48][hole] <= -2).all()
    primary = filled.index >= 0
    assert torch.equal(filled.rgb[primary], plain.rgb[primary])


def test_fill_from_rejects_size_mismatch():
    a = RenderResult(torch.zeros(2, 2, 3), torch.zeros(2, 2), torch.full((2, 2), -1))
    b = RenderResult(torch.zeros(3, 2, 3), torch.zeros(3, 2), torch.full((3, 2), -1))
    with pytest.raises(ShapeError):
        fill_from(a, b)


def test_bundle_frame_points_reproject_onto_their_own_pixels(tmp_path):
    """Bundle -> world points (unproject_depth) -> splat with the same camera gives the frame back."""
    from vid3d.formats.bundle import open_bundle
    from vid3d.synthetic import SceneConfig, make_clip
    from vid3d.viewer.points import background_points, world_points

    clip = make_clip(SceneConfig.preset("tiny_dynamic"))
    path = clip.to_bundle(tmp_path / "tiny.vid3d.h5")
    with open_bundle(path) as b:
        t = 3
        f = b.frame(t)
        pts, cols, _ = world_points(f, b.depth_field())
        cam = Camera(K=f.K, T_world_camera=f.T_world_camera, height=b.height, width=b.width)
        res = splat(pts, cols, cam)
        valid = torch.from_numpy(f.depth > 0)
        assert int(valid.sum()) == pts.shape[0] and bool(res.mask[valid].all())
        assert torch.equal((res.rgb * 255).round().to(torch.uint8)[valid], torch.from_numpy(f.rgb)[valid])
        torch.testing.assert_close(res.depth[valid], torch.from_numpy(f.depth)[valid], rtol=1e-5, atol=0)
        # the static background of other frames excludes their moving pixels
        bp, _, _ = background_points(b, [0, 7], stride=1)
        moving = sum(int(b.frame(i).dynamic_mask.sum()) for i in (0, 7))
        assert moving > 0
        assert bp.shape[0] == sum(int((b.frame(i).depth > 0).sum()) for i in (0, 7)) - moving
