"""The viewer without a browser: point extraction (fast vs slow twin, vs ground truth), view geometry,
and a real viser server driven through its GUI handles (the same callbacks a browser fires)."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import time

import numpy as np
import pytest

from vid3d.viewer.app.config import free_port

import vid3d  # noqa: F401  (zlib first)
from vid3d.formats.bundle import write_bundle
from vid3d.formats.conventions import fov_y_from_K, make_K, make_T, project_points
from vid3d.formats.errors import BundleFormatError, InputError, ShapeError
from vid3d.viewer.app import PointFilter, ViewerConfig, ViewerSession
from vid3d.viewer.points import (
    FramePoints,
    frame_points,
    frame_points_reference,
    fuse_points,
    statistical_outlier_mask,
    statistical_outlier_mask_reference,
    to_world,
)
from vid3d.viewer.app.view_geometry import (
    K_from_fov,
    T_world_camera_from_view,
    ray_pick,
    time_colors,
    view_from_pose,
    world_up_from_trajectory,
)

# ---------------------------------------------------------------------------------------------
# Fixtures
# ---------------------------------------------------------------------------------------------




@pytest.fixture(scope="module")
def clip():
    from vid3d.synthetic import SceneConfig, make_clip

    return make_clip(SceneConfig.preset("tiny_dynamic"))


@pytest.fixture(scope="module")
def confidence(clip):
    # stored as round(255 c) in the bundle: use values that survive that exactly
    return np.random.default_rng(0).integers(0, 256, clip.depth.shape).astype(np.float32) / 255.0


@pytest.fixture(scope="module")
def bundle_path(tmp_path_factory, clip, confidence):
    path = tmp_path_factory.mktemp("viewer") / "tiny.vid3d.h5"
    write_bundle(path, rgb=clip.rgb, T_world_camera=clip.T_world_camera, K=clip.K, fps=clip.fps, source="tiny",
                 depth=clip.depth, confidence=confidence, dynamic_mask=clip.dynamic_mask, units="m", metric_scale=True)
    return path


@pytest.fixture
def session(bundle_path):
    s = ViewerSession(bundle_path, ViewerConfig(port=free_port(), device="cpu"))
    s.start()
    try:
        yield s
    finally:
        s.stop()


def random_frame(seed: int = 0, H: int = 12, W: int = 16):
    rng = np.random.default_rng(seed)
    depth = rng.uniform(0.5, 6.0, (H, W)).astype(np.float32)
    depth[rng.random((H, W)) < 0.15] = 0.0
    depth[0, 0] = np.nan
    rgb = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
    conf = rng.uniform(0, 1, (H, W)).astype(np.float32)
    select = rng.random((H, W)) < 0.7
    K = make_K(14.0, 15.0, W / 2 + 0.3, H / 2 - 0.2)
    return depth, rgb, K, conf, select


# ---------------------------------------------------------------------------------------------
# Pure functions: fast paths against their slow twins and against ground truth
# ---------------------------------------------------------------------------------------------

FILTERS = [
    PointFilter(stride=1, max_points=10_000),
    PointFilter(stride=2, max_points=10_000, confidence_percentile=40.0),
    PointFilter(stride=3, max_points=17, depth_min=1.0, depth_max=4.0),
    PointFilter(stride=1, max_points=150, confidence_percentile=25.0, remove_outliers=True, outlier_neighbors=5,
                outlier_std_ratio=1.0),
]


@pytest.mark.parametrize("flt", FILTERS)
@pytest.mark.parametrize("use_select", [False, True])
@pytest.mark.parametrize("device", ["cpu", "torch-cpu"])
def test_frame_points_matches_slow_twin(flt, use_select, device):
    depth, rgb, K, conf, select = random_frame(seed=3)
    sel = select if use_select else None
    fast = frame_points(depth, rgb, K, flt=flt, confidence=conf, select=sel, device=device)
    ref = frame_points_reference(depth, rgb, K, flt=flt, confidence=conf, select=sel)
    assert len(ref) > 0
    np.testing.assert_array_equal(fast.pixels, ref.pixels)
    np.testing.assert_array_equal(fast.colors, ref.colors)
    np.testing.assert_allclose(fast.points, ref.points, rtol=1e-5, atol=1e-5)
    assert fast.points.dtype == np.float32 and fast.colors.dtype == np.uint8


@pytest.mark.parametrize("stride", [1, 3])
def test_world_points_from_a_bundle_frame_match_the_slow_twin(stride):
    """The renderer's path (reader Frame -> torch world points on the device) against the numpy twin."""
    import torch

    from vid3d.formats.bundle import Frame
    from vid3d.viewer.points import frame_points_torch, world_points

    depth, rgb, K, conf, select = random_frame(seed=7)
    T = make_T(np.array([[0.0, 0, 1], [0, 1, 0], [-1, 0, 0]]), np.array([1.0, -2.0, 0.5]))
    frame = Frame(index=0, rgb=rgb, depth=None, confidence=conf, prior=depth, dynamic_mask=~select,
                  scene_flow=None, K=K, T_world_camera=T, timestamp_s=0.0)
    fast = world_points(frame, "prior", stride=stride, pixels="static")
    assert isinstance(fast.points, torch.Tensor) and fast.points.dtype == torch.float32
    ref = to_world(frame_points_reference(depth, rgb, K, flt=PointFilter(stride=stride, max_points=depth.size),
                                          select=select), T)  # static = not in the dynamic mask; no confidence
    fast = fast.numpy()
    np.testing.assert_array_equal(fast.pixels, ref.pixels)
    np.testing.assert_array_equal(fast.colors, ref.colors)
    np.testing.assert_allclose(fast.points, ref.points, rtol=1e-5, atol=1e-5)
    cam = frame_points_torch(depth, rgb, K, flt=PointFilter(stride=stride), device="cpu")
    assert isinstance(cam.points, torch.Tensor)  # stays on the device
    with pytest.raises(InputError):
        world_points(frame, "depth")  # read without /depth/z


def test_frame_points_filters_do_what_they_say():
    depth, rgb, K, conf, _ = random_frame(seed=5, H=40, W=50)
    valid = np.isfinite(depth) & (depth > 0)
    full = frame_points(depth, rgb, K, flt=PointFilter(stride=1))
    assert len(full) == valid.sum()
    half = frame_points(depth, rgb, K, flt=PointFilter(stride=1, confidence_percentile=50.0), confidence=conf)
    assert abs(len(half) - valid.sum() / 2) <= 1
    kept = np.zeros(depth.size, bool)
    kept[half.pixels] = True
    assert conf.reshape(-1)[kept].min() > conf.reshape(-1)[valid.reshape(-1) & ~kept].max()  # the low half went
    ranged = frame_points(depth, rgb, K, flt=PointFilter(stride=1, depth_min=2.0, depth_max=3.0))
    assert ranged.points[:, 2].min() >= 2.0 - 1e-6 and ranged.points[:, 2].max() <= 3.0 + 1e-6
    assert len(ranged) == ((depth >= 2) & (depth <= 3)).sum()
    strided = frame_points(depth, rgb, K, flt=PointFilter(stride=2))
    assert len(strided) == valid[::2, ::2].sum()
    capped = frame_points(depth, rgb, K, flt=PointFilter(stride=1, max_points=100))
    assert len(capped) == 100


def test_frame_points_bad_input_raises_shape_error():
    depth, rgb, K, conf, _ = random_frame()
    with pytest.raises(ShapeError):
        frame_points(depth, rgb[:, :-1], K, flt=PointFilter())
    with pytest.raises(ShapeError):
        frame_points(depth, rgb, K, flt=PointFilter(), confidence=conf[:-1])
    with pytest.raises(InputError):
        PointFilter(stride=0)
    with pytest.raises(InputError):
        PointFilter(depth_min=3.0, depth_max=1.0)


def test_points_land_on_their_pixels_and_agree_across_views(clip):
    """Ground truth: a frame's points reproject to their own pixel centres, and static points of frame 0
    seen from frame 2 have frame 2's true depth (checks K, pose and the +0.5 pixel centres)."""
    flt = PointFilter(stride=1, max_points=10**6)
    fp = frame_points(clip.depth[0], clip.rgb[0], clip.K, flt=flt, select=~clip.dynamic_mask[0])
    world = to_world(fp, clip.T_world_camera[0])
    H, W = clip.depth.shape[1:]
    uv, z = project_points(world.points.astype(np.float64), clip.K, clip.T_world_camera[0])
    v, u = np.divmod(fp.pixels, W)
    np.testing.assert_allclose(uv, np.stack([u + 0.5, v + 0.5], -1), atol=2e-3)
    uv2, z2 = project_points(world.points.astype(np.float64), clip.K, clip.T_world_camera[2])
    px = np.floor(uv2).astype(int)
    inside = (px[:, 0] >= 0) & (px[:, 0] < W) & (px[:, 1] >= 0) & (px[:, 1] < H) & (z2 > 0)
    d2 = clip.depth[2][px[inside, 1], px[inside, 0]]
    dyn2 = clip.dynamic_mask[2][px[inside, 1], px[inside, 0]]
    rel = np.abs(d2 - z2[inside]) / d2
    ok = ~dyn2
    assert inside.mean() > 0.6
    assert np.median(rel[ok]) < 0.01  # visible static points agree (occlusion edges aside)


def test_outlier_mask_matches_brute_force_and_drops_planted_outliers():
    rng = np.random.default_rng(1)
    pts = rng.normal(0, 0.05, (300, 3))
    outliers = rng.uniform(2, 3, (6, 3)) * rng.choice([-1, 1], (6, 3))
    allp = np.concatenate([pts, outliers]).astype(np.float32)
    fast = statistical_outlier_mask(allp, neighbors=8, std_ratio=2.0)
    ref = statistical_outlier_mask_reference(allp, neighbors=8, std_ratio=2.0)
    np.testing.assert_array_equal(fast, ref)
    assert not fast[300:].any()
    assert fast[:300].mean() > 0.9


def test_fuse_points_dedupes_voxels_and_keeps_budget():
    rng = np.random.default_rng(2)
    p = rng.uniform(0, 1, (500, 3)).astype(np.float32)
    c = rng.integers(0, 255, (500, 3), dtype=np.uint8)
    a = FramePoints(p, c, np.arange(500))
    b = FramePoints(p + 1e-4, c, np.arange(500))  # the same surface seen again
    fused = fuse_points([a, b], voxel_size=0.01, max_points=10_000)
    assert 450 <= len(fused) <= 600  # roughly one copy, not two
    assert (fused.pixels == -1).all()
    assert len(fuse_points([a, b], voxel_size=0.01, max_points=100)) == 100
    assert len(fuse_points([], voxel_size=0.01, max_points=10)) == 0


def test_view_geometry_pins():
    # A camera at (1, 2, 3) turned 90 degrees about world y: looks along world +x... (OpenCV axes)
    R = np.array([[0.0, 0, 1], [0, 1, 0], [-1, 0, 0]])
    T = make_T(R, np.array([1.0, 2.0, 3.0]))
    K = make_K(50.0, 50.0, 32.0, 24.0)
    v = view_from_pose(T, K, 48, look_distance=2.0)
    np.testing.assert_allclose(v.position, [1, 2, 3])
    np.testing.assert_allclose(v.look_at, [3, 2, 3])  # + 2 * z axis (world +x)
    np.testing.assert_allclose(v.up, [0, -1, 0])  # -y of the camera
    np.testing.assert_allclose(T_world_camera_from_view(v.wxyz, v.position), T, atol=1e-12)
    assert v.fov_y == pytest.approx(2 * np.arctan(24 / 50))
    np.testing.assert_allclose(fov_y_from_K(K_from_fov(v.fov_y, 48, 64), 48), v.fov_y)
    Ts = np.stack([make_T(np.eye(3), np.array([i, 0.0, 0.0])) for i in range(3)])
    np.testing.assert_allclose(world_up_from_trajectory(Ts), [0, -1, 0])
    cols = time_colors(5)
    assert cols.shape == (5, 3) and tuple(cols[0]) == (68, 1, 84) and tuple(cols[-1]) == (253, 231, 37)
    pts = np.array([[0, 0, 5.0], [0, 0, 2.0], [1, 0, 2.0]])
    assert ray_pick(pts, np.zeros(3), np.array([0, 0, 1.0])) == 1
    assert ray_pick(pts, np.zeros(3), np.array([0, 1.0, 0])) is None


# ---------------------------------------------------------------------------------------------
# A real server, driven through its GUI handles
# ---------------------------------------------------------------------------------------------


def _expected_count(clip, confidence, t, flt, *, dynamic_only=False):
    sel = clip.dynamic_mask[t] if dynamic_only else None
    return len(frame_points_reference(clip.depth[t], clip.rgb[t], clip.K, flt=flt, confidence=confidence[t],
                                      select=sel))


def test_server_handles_and_initial_camera(session, clip):
    T = clip.rgb.shape[0]
    assert session.server is not None and session.url.startswith("http://127.0.0.1:")
    assert len(session.frustums) == T and session.trajectory is not None
    assert session.cloud.points.shape[0] == session.stats.points_current > 0
    ic = session.server.initial_camera
    np.testing.assert_allclose(ic.position, clip.T_world_camera[0][:3, 3], atol=1e-5)
    forward = (ic.look_at - ic.position) / np.linalg.norm(ic.look_at - ic.position)
    np.testing.assert_allclose(forward, clip.T_world_camera[0][:3, 2], atol=1e-5)
    assert ic.fov == pytest.approx(fov_y_from_K(clip.K, clip.rgb.shape[1]))
    g = session.gui
    for h in (g.timestep, g.playing, g.fps, g.loop, g.mode, g.stride, g.confidence, g.depth_range, g.outliers,
              g.follow, g.reset_view, g.info):
        assert h is not None
    assert "tiny.vid3d.h5" in g.info.content and "points shown" in g.info.content
    assert all(h.image is None for h in session.frustums.values())  # off by default: they cover the view
    g.frustum_images.value = True
    for i, h in session.frustums.items():
        assert max(h.image.shape[:2]) <= session.config.thumbnail_px
        np.testing.assert_array_equal(h.image, clip.rgb[i])  # 96 px wide: no shrinking needed
    g.show_cameras.value = False
    assert not any(h.visible for h in session.frustums.values()) and not session.trajectory.visible


def test_slider_changes_the_displayed_frame(session, clip, confidence):
    flt = session.filter
    session.gui.timestep.value = 5  # what a browser's slider does
    assert session.t == 5 and session.stats.frame == 5
    expected = frame_points(clip.depth[5], clip.rgb[5], clip.K, flt=flt, confidence=confidence[5])
    np.testing.assert_allclose(np.asarray(session.cloud.points, np.float32), expected.points, rtol=1e-3, atol=2e-3)
    np.testing.assert_array_equal(session.cloud.colors, expected.colors)
    np.testing.assert_allclose(session.cloud.position, clip.T_world_camera[5][:3, 3], atol=1e-5)
    np.testing.assert_allclose(session.current_frustum.position, clip.T_world_camera[5][:3, 3], atol=1e-5)
    assert "frame **5**" in session.gui.info.content
    session.gui.next_button.value = True  # a click
    assert session.t == 6 and int(session.gui.timestep.value) == 6
    session.gui.prev_button.value = True
    session.gui.prev_button.value = True
    assert session.t == 4


def test_point_counts_per_mode(session, clip, confidence):
    flt = session.filter
    T = clip.rgb.shape[0]
    session.gui.timestep.value = 3
    assert session.stats.points_current == _expected_count(clip, confidence, 3, flt)
    assert session.stats.points_background == 0 and not session.background_cloud.visible

    session.gui.mode.value = "Static background + dynamic"
    assert session.mode == "static_dynamic"
    assert session.stats.points_current == _expected_count(clip, confidence, 3, flt, dynamic_only=True)
    bg = session.background()
    assert session.background_cloud.visible and len(session.background_cloud.points) == len(bg) > 0
    # the background is static: none of its points sits on a moving object in frame 3
    uv, z = project_points(bg.points.astype(np.float64), clip.K, clip.T_world_camera[3])
    H, W = clip.depth.shape[1:]
    px = np.floor(uv).astype(int)
    inside = (px[:, 0] >= 0) & (px[:, 0] < W) & (px[:, 1] >= 0) & (px[:, 1] < H) & (z > 0)
    d = clip.depth[3][px[inside, 1], px[inside, 0]]
    on_mover = clip.dynamic_mask[3][px[inside, 1], px[inside, 0]] & (np.abs(d - z[inside]) < 0.01 * d)
    assert on_mover.mean() < 0.01

    session.gui.mode.value = "All frames (stride)"
    session.gui.timestep.value = T - 1
    k = session.config.accumulate_stride
    shown = [f for f in range(0, T, k) if f < T - 1]
    assert session.stats.points_accumulated == sum(len(session._accum_nodes[f].points) for f in shown) > 0
    assert all(session._accum_nodes[f].visible == (f in shown) for f in session._accum_nodes)
    session.gui.timestep.value = 0
    assert session.stats.points_accumulated == 0

    session.gui.mode.value = "Current frame only"
    assert not any(h.visible for h in session._accum_nodes.values())


def test_filters_reduce_points(session, clip, confidence):
    session.gui.timestep.value = 2
    n0 = session.stats.points_current
    session.gui.confidence.value = 50.0
    n_conf = session.stats.points_current
    assert n_conf == _expected_count(clip, confidence, 2, session.filter) and abs(n_conf - n0 / 2) < 0.02 * n0
    session.gui.confidence.value = 0.0
    lo, hi = 3.0, 4.0
    session.gui.depth_range.value = (lo, hi)
    z = np.asarray(session.cloud.points, np.float32)[:, 2]
    assert session.stats.points_current == _expected_count(
        clip, confidence, 2, dataclasses.replace(session.filter, depth_min=None, depth_max=None)) - \
        ((clip.depth[2][::2, ::2] < lo) | (clip.depth[2][::2, ::2] > hi)).sum()
    assert z.min() >= lo - 0.01 and z.max() <= hi + 0.01
    session.gui.depth_range.value = (0.0, session.gui.depth_limit)
    assert session.filter.depth_min is None and session.filter.depth_max is None
    d4 = clip.depth[2][::4, ::4]
    session.gui.stride.value = 4
    assert session.stats.points_current == (np.isfinite(d4) & (d4 > 0)).sum()
    session.gui.stride.value = 1
    session.gui.max_points_k.value = 10
    assert session.filter.max_points == 10_000
    session.set_filter(max_points=1000)
    assert session.stats.points_current == 1000
    session.set_filter(max_points=10**6)
    n_all = session.stats.points_current
    session.gui.outliers.value = True
    assert session.filter.remove_outliers and 0.5 * n_all < session.stats.points_current < n_all


def test_playback_advances_and_stops_without_loop(session, clip):
    T = clip.rgb.shape[0]
    session.gui.loop.value = False
    session.gui.fps.value = 60
    session.gui.timestep.value = T - 3
    session.gui.playing.value = True
    assert session.gui.timestep.disabled
    deadline = time.time() + 10
    while session.playback.playing and time.time() < deadline:
        time.sleep(0.02)
    assert not session.playback.playing and not session.gui.playing.value
    assert session.t == T - 1
    shown = session.stats.frames_shown
    session.gui.loop.value = True
    session.gui.playing.value = True
    deadline = time.time() + 10
    while session.stats.frame != 1 and time.time() < deadline:
        time.sleep(0.01)
    session.gui.playing.value = False
    assert session.stats.frame in (1, 2) and session.stats.frames_shown >= shown + 2  # wrapped around past T - 1


def test_follow_and_frustum_click_move_the_time(session, clip):
    session.fly_to(4)
    assert session.t == 4
    session.gui.follow.value = True
    assert session.follow


def test_effects_panel_renders_and_hides_the_cloud(session, clip):
    from vid3d.viewer.app.effects_panel import effect_camera, render_effect

    fx = session.effects
    assert not fx.renderer_loaded  # nothing heavy at start-up
    fx.effect.value = "Bokeh"
    assert fx.renderer_loaded, fx.renderer_error
    assert fx.active and not session.cloud.visible
    v = session.view_of_frame(0)
    cam = effect_camera(v.wxyz, v.position, v.fov_y, clip.rgb.shape[2] / clip.rgb.shape[1], 96)
    assert (cam.height, cam.width) == clip.rgb.shape[1:3]
    K = cam.K.numpy()  # viser's camera has a centred principal point; the focal length must match
    np.testing.assert_allclose([K[0, 0], K[1, 1], K[0, 2], K[1, 2]], [clip.K[0, 0], clip.K[1, 1], 48, 32], atol=1e-4)
    pts = session.displayed_world_points()
    sharp = render_effect(pts.points, pts.colors, cam, effect="Bokeh", focus_distance=3.0, aperture=0.0,
                          dolly_strength=0.0, subject_distance=3.0, device="cpu")
    blurred = render_effect(pts.points, pts.colors, cam, effect="Bokeh", focus_distance=0.5, aperture=20.0,
                            dolly_strength=0.0, subject_distance=3.0, device="cpu")
    assert sharp.shape == (64, 96, 3) and sharp.dtype == np.uint8
    assert np.abs(np.diff(blurred.astype(float), axis=1)).mean() < 0.8 * np.abs(np.diff(sharp.astype(float), axis=1)).mean()
    # the sharp render from frame 0's own camera looks like frame 0 (stride-2 points, holes filled)
    assert np.abs(sharp.astype(float) - clip.rgb[0].astype(float)).mean() < 40
    # focusing by a click ray: the ray through the image centre picks a point and sets its depth
    z = fx.focus_on_ray(v.position, clip.T_world_camera[0][:3, 2])
    assert z is not None and fx.focus.value == pytest.approx(z, abs=fx.focus.step)
    center_depth = clip.depth[0][30:34, 46:50]
    assert center_depth.min() - 0.2 <= z <= center_depth.max() + 0.2
    fx.effect.value = "None"
    assert session.cloud.visible


# ---------------------------------------------------------------------------------------------
# The command API and its observers
# ---------------------------------------------------------------------------------------------


def test_frame_changes_reach_subscribers_and_playback_uses_the_commands(session, clip):
    T = clip.rgb.shape[0]
    seen, playing = [], []
    unsubscribe = session.on_frame_change(seen.append)
    session.on_playing_change(playing.append)
    shown = session.stats.frames_shown
    session.set_frame(3)
    session.step(+2)
    session.step(-6)  # wraps around
    assert seen == [3, 5, (5 - 6) % T]
    assert session.stats.frames_shown == shown + 3  # the slider follows without drawing again (no echo)
    assert int(session.gui.timestep.value) == session.t == (5 - 6) % T
    assert f"frame **{session.t}**" in session.gui.info.content
    session.set_filter(stride=3)  # a redraw of the same frame is announced too
    assert seen[-1] == session.t and len(seen) == 4
    unsubscribe()
    session.set_frame(1)
    assert len(seen) == 4 and session.t == 1

    # playback advances through the same command API: subscribers hear every frame, in order
    session.set_loop(False)
    session.set_fps(60)
    session.set_frame(T - 4)
    frames = []
    session.on_frame_change(frames.append)
    session.play()
    assert playing == [True] and session.gui.playing.value and session.gui.timestep.disabled
    deadline = time.time() + 10
    while session.playing and time.time() < deadline:
        time.sleep(0.01)
    assert playing == [True, False] and not session.gui.playing.value and not session.gui.timestep.disabled
    assert frames == [T - 3, T - 2, T - 1] and int(session.gui.timestep.value) == T - 1
    with pytest.raises(InputError):
        session.set_fps(0)


def test_playback_drives_only_the_timeline_commands():
    from vid3d.viewer.app.playback import Playback

    class Timeline:
        def __init__(self):
            self.t, self.num_frames, self.fps, self.loop, self.calls = 0, 4, 500.0, False, []

        def set_frame(self, t):
            self.calls.append(("set_frame", t))
            self.t = t

        def pause(self):
            self.calls.append(("pause",))

    tl = Timeline()
    pb = Playback(tl)
    pb.start()
    try:
        pb.playing = True
        deadline = time.time() + 10
        while pb.playing and time.time() < deadline:
            time.sleep(0.01)
        assert tl.calls == [("set_frame", 1), ("set_frame", 2), ("set_frame", 3), ("pause",)]
        tl.loop = True
        assert pb.next_frame(3) == 0 and pb.next_frame(1) == 2
    finally:
        pb.stop()


def test_gui_calls_commands_and_ignores_its_own_echo():
    import viser

    from vid3d.viewer.app.commands import Observers
    from vid3d.viewer.app.gui import GuiSetup, build_gui

    class Controls:
        t, num_frames, fps, loop, playing = 0, 10, 30.0, True, False

        def __init__(self):
            self.calls, self.frames, self.plays = [], Observers(), Observers()

        def __getattr__(self, name):  # every command: recorded
            return lambda *a, **k: self.calls.append((name, *a, *sorted(k.items())))

        def info_markdown(self):
            return f"frame **{self.t}**"

        def on_frame_change(self, cb):
            return self.frames.subscribe(cb)

        def on_playing_change(self, cb):
            return self.plays.subscribe(cb)

    server = viser.ViserServer(host="127.0.0.1", port=free_port(), verbose=False)
    try:
        c = Controls()
        g = build_gui(server.gui, c, GuiSetup(
            num_frames=10, fps=30.0, loop=True, mode="current", modes=("current", "accumulated"),
            filter=PointFilter(), has_confidence=False, median_depth=2.0, show_frustums=True,
            frustum_images=False, follow=False))
        g.timestep.value = 4
        g.next_button.value = True
        g.playing.value = True
        g.stride.value = 3
        g.mode.value = "All frames (stride)"
        assert c.calls == [("set_frame", 4), ("step", 1), ("play",), ("set_filter", ("stride", 3)),
                           ("set_mode", "accumulated")]
        c.calls.clear()
        c.t = 7
        c.frames.notify(7)  # the session drew frame 7 (say, playback did): the slider follows
        assert int(g.timestep.value) == 7 and g.info.content == "frame **7**"
        c.plays.notify(True)
        assert g.playing.value and g.timestep.disabled
        c.plays.notify(False)
        assert not g.playing.value and not g.timestep.disabled
        assert c.calls == []  # reflecting the session's state sends no command back
    finally:
        server.stop()


# ---------------------------------------------------------------------------------------------
# Other bundles and bad input
# ---------------------------------------------------------------------------------------------


def test_prior_only_bundle_shows_prior_with_note(tmp_path, clip):
    path = tmp_path / "prior.vid3d.h5"
    write_bundle(path, rgb=clip.rgb, T_world_camera=clip.T_world_camera, K=clip.K, fps=clip.fps, source="p",
                 prior=clip.depth)
    s = ViewerSession(path, ViewerConfig(port=free_port(), device="cpu", mode="static_dynamic"))
    s.start()
    try:
        assert s.source.depth_field == "prior" and s.mode == "current"
        assert "/depth/prior" in s.gui.info.content and "⚠" in s.gui.info.content
        assert s.stats.points_current == np.isfinite(clip.depth[0][::2, ::2]).sum()
        assert "Static background + dynamic" not in s.gui.mode.options
        with pytest.raises(InputError):
            s.set_mode("static_dynamic")
    finally:
        s.stop()


def test_not_a_bundle_is_a_one_line_error(tmp_path):
    bad = tmp_path / "bad.vid3d.h5"
    bad.write_bytes(b"not hdf5 at all")
    with pytest.raises(BundleFormatError):
        ViewerSession(bad, ViewerConfig(port=free_port()))
    with pytest.raises(InputError):
        ViewerSession(tmp_path / "missing.vid3d.h5")
    proc = subprocess.run([sys.executable, "-m", "vid3d", "view", str(bad), "--port", str(free_port())],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "bad.vid3d.h5" in lines[0]


def test_cli_serves_until_interrupted(bundle_path, tmp_path):
    import signal
    import urllib.request

    port = free_port()
    # stderr goes to a file, not an unread pipe: a first run in a fresh venv logs enough to fill a
    # 64 KiB pipe, and the blocked writer then cannot act on SIGINT
    err = open(tmp_path / "stderr.txt", "w")
    # Ctrl-C as a terminal delivers it: a suite started in the background (`cmd &` in a script) hands its
    # children SIGINT ignored, and Python then never raises KeyboardInterrupt (this test failed that way)
    proc = subprocess.Popen([sys.executable, "-m", "vid3d", "view", str(bundle_path), "--port", str(port),
                             "--device", "cpu"], stdout=subprocess.PIPE, stderr=err, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        line = ""
        deadline = time.time() + 60
        while "serving" not in line and time.time() < deadline:
            line = proc.stdout.readline()
        assert "serving" in line and f":{port}" in line, line
        html = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10).read()
        assert b"<html" in html.lower() or b"<!doctype" in html.lower()
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        err.close()
    stderr = (tmp_path / "stderr.txt").read_text()
    assert "vid3d view: stopping" in stderr, stderr[-2000:]  # Ctrl-C reached the serve loop
    assert proc.returncode == 130, stderr[-2000:]
