"""The synthetic renderer's ground truth is self-consistent (depth, poses, scene flow, optical flow, RGB)."""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import pytest

from vid3d.formats.conventions import pixel_grid, project_points, rigidity_error, unproject_depth
from vid3d.formats.errors import InputError
from vid3d.synthetic import SceneConfig, make_clip
from vid3d.synthetic.clip import _bilinear
from vid3d.synthetic.primitives import cast_rays, cast_rays_reference
from vid3d.synthetic.scene import ROOM_HI, ROOM_LO, build_scene


@pytest.fixture(scope="module")
def dyn():
    return make_clip(SceneConfig.preset("tiny_dynamic"))


@pytest.fixture(scope="module")
def static():
    return make_clip(SceneConfig.preset("tiny_static"))


def test_presets_shapes_dtypes_and_speed():
    for name in ("tiny_static", "tiny_dynamic"):
        t0 = time.perf_counter()
        clip = make_clip(SceneConfig.preset(name))
        elapsed = time.perf_counter() - t0
        assert elapsed < 3.0, f"{name} took {elapsed:.2f} s (target < 1 s on a quiet machine)"
        T, H, W = 8, 64, 96
        assert clip.rgb.shape == (T, H, W, 3) and clip.rgb.dtype == np.uint8
        assert clip.depth.shape == (T, H, W) and clip.depth.dtype == np.float32
        assert clip.dynamic_mask.shape == (T, H, W) and clip.dynamic_mask.dtype == bool
        assert clip.scene_flow.shape == (T, H, W, 3) and clip.scene_flow.dtype == np.float32
        assert clip.K.shape == (3, 3) and clip.T_world_camera.shape == (T, 4, 4)
        assert np.all(clip.depth > 0) and np.all(np.isfinite(clip.depth))
        np.testing.assert_allclose(clip.timestamps_s, np.arange(T) / clip.fps)
        # principal point deliberately off-centre, focal ~0.9 W
        assert abs(clip.K[0, 2] - W / 2) > 0.5 and abs(clip.K[1, 2] - H / 2) > 0.5
        assert clip.K[0, 0] == pytest.approx(0.9 * W)
        assert clip.rgb.std() > 25, "texture too flat for features"


def test_bad_config_raises_input_error():
    with pytest.raises(InputError):
        SceneConfig.preset("nope")
    with pytest.raises(InputError):
        SceneConfig(num_frames=1)
    with pytest.raises(InputError):
        SceneConfig(num_moving=3)
    clip = make_clip(dataclasses.replace(SceneConfig.preset("tiny_static"), num_frames=2, height=16, width=24))
    with pytest.raises(InputError):
        clip.optical_flow(0, 5)


def test_deterministic_for_a_seed(dyn):
    again = make_clip(SceneConfig.preset("tiny_dynamic"))
    np.testing.assert_array_equal(again.rgb, dyn.rgb)
    np.testing.assert_array_equal(again.depth, dyn.depth)
    other = make_clip(dataclasses.replace(SceneConfig.preset("tiny_dynamic"), seed=3))
    assert np.abs(other.rgb.astype(int) - dyn.rgb).mean() > 5


def test_poses_rigid_and_camera_moves(dyn):
    assert rigidity_error(dyn.T_world_camera).max() < 1e-9
    c = dyn.T_world_camera[:, :3, 3]
    travel = np.linalg.norm(np.diff(c, axis=0), axis=1).sum()
    assert 0.5 < travel < 1.5  # ~10-20 % of the 6 m room
    # always looks into the room (+z)
    assert np.all(dyn.T_world_camera[:, 2, 2] > 0.9)


def test_room_points_lie_on_the_walls(static):
    """Convention pin: unprojecting z-depth at pixel centres with camera-to-world poses lands on the room."""
    for t in (0, 7):
        X = unproject_depth(static.depth[t].astype(np.float64), static.K, static.T_world_camera[t])
        room = static.object_id[t] == 0
        d = np.minimum(np.abs(X - ROOM_LO), np.abs(X - ROOM_HI)).min(axis=-1)
        assert room.mean() > 0.3
        assert np.quantile(d[room], 0.999) < 1e-4


def test_fast_ray_cast_matches_reference():
    scene = build_scene(SceneConfig.preset("tiny_dynamic"))
    rng = np.random.default_rng(0)
    uv = rng.uniform([0, 0], [96, 64], size=(60, 2))
    d_cam = np.concatenate([uv, np.ones((60, 1))], axis=1) @ np.linalg.inv(scene.K).T
    for t in (0, 5):
        T = scene.T_world_camera[t]
        dirs = d_cam @ T[:3, :3].T
        fast = cast_rays(scene.primitives, scene.T_world_object[:, t], T[:3, 3], dirs)
        s_ref, id_ref = cast_rays_reference(scene.primitives, scene.T_world_object[:, t], T[:3, 3], dirs)
        np.testing.assert_array_equal(fast.object_id, id_ref)
        np.testing.assert_allclose(fast.s, s_ref, rtol=1e-9)


def test_dynamic_mask_is_where_scene_flow_is_nonzero(dyn, static):
    moving = np.linalg.norm(dyn.scene_flow[:-1], axis=-1) > 1e-7
    np.testing.assert_array_equal(moving, dyn.dynamic_mask[:-1])
    assert 0.03 < dyn.dynamic_mask.mean() < 0.25
    assert np.all(dyn.scene_flow[-1] == 0)
    assert not static.dynamic_mask.any() and not static.scene_flow.any()


def _warp_next(clip, t):
    """Frame t's points moved by the GT scene flow, projected into t+1: (uv (H,W,2), z (H,W))."""
    H, W = clip.height, clip.width
    X = unproject_depth(clip.depth[t].astype(np.float64), clip.K, clip.T_world_camera[t]) + clip.scene_flow[t]
    uv, z = project_points(X.reshape(-1, 3), clip.K, clip.T_world_camera[t + 1])
    return uv.reshape(H, W, 2), z.reshape(H, W)


@pytest.mark.parametrize("name", ["dyn", "static"])
def test_depth_scene_flow_and_poses_agree_with_next_frame(name, request):
    clip = request.getfixturevalue(name)
    H, W = clip.height, clip.width
    for t in range(clip.num_frames - 1):
        uv, z = _warp_next(clip, t)
        ij = np.floor(uv).astype(int)
        inside = (ij[..., 0] >= 1) & (ij[..., 0] < W - 1) & (ij[..., 1] >= 1) & (ij[..., 1] < H - 1) & (z > 0)
        same = np.zeros_like(inside)
        same[inside] = clip.object_id[t + 1][ij[inside][:, 1], ij[inside][:, 0]] == clip.object_id[t][inside]
        z_next = 1.0 / _bilinear(1.0 / clip.depth[t + 1].astype(np.float64), uv - 0.5)
        rel = np.abs(z_next / z - 1.0)[same]
        assert same.mean() > 0.6
        assert np.median(rel) < 1e-3, (t, np.median(rel))
        # the moving objects are included and agree as well (scene flow is right, not just zero)
        if name == "dyn":
            dyn_same = same & clip.dynamic_mask[t]
            assert dyn_same.sum() > 50
            assert np.median(np.abs(z_next / z - 1.0)[dyn_same]) < 2e-3


def test_optical_flow_matches_scene_flow_warp(dyn):
    for t in (0, 3, 6):
        uv, z = _warp_next(dyn, t)
        flow, valid = dyn.optical_flow(t, t + 1)
        assert flow.shape == (dyn.height, dyn.width, 2) and flow.dtype == np.float32
        assert valid.mean() > 0.7
        np.testing.assert_allclose(flow[valid], (uv - pixel_grid(dyn.height, dyn.width))[valid], atol=2e-3)
        assert np.abs(flow[valid]).max() > 0.5  # things do move


def test_optical_flow_forward_backward_consistent(dyn):
    f_ij, v_ij = dyn.optical_flow(1, 4)
    f_ji, v_ji = dyn.optical_flow(4, 1)
    target = pixel_grid(dyn.height, dyn.width) + f_ij - 0.5
    back = np.stack([_bilinear(f_ji[..., c].astype(np.float64), target) for c in range(2)], axis=-1)
    err = np.linalg.norm(f_ij + back, axis=-1)[v_ij]
    assert np.median(err) < 0.05
    assert v_ji.mean() > 0.5


def test_warping_rgb_with_gt_flow_is_photometrically_consistent(dyn):
    import cv2

    for i, j in ((0, 1), (2, 5), (6, 3)):
        flow, valid = dyn.optical_flow(i, j)
        grid = pixel_grid(dyn.height, dyn.width) + flow - 0.5
        warped = cv2.remap(dyn.rgb[j].astype(np.float32), grid[..., 0], grid[..., 1], cv2.INTER_LINEAR)
        err_warp = np.abs(warped - dyn.rgb[i])[valid].mean()
        err_none = np.abs(dyn.rgb[j].astype(np.float32) - dyn.rgb[i])[valid].mean()
        assert err_warp < 0.35 * err_none, (i, j, err_warp, err_none)
        assert err_warp < 12.0


def test_video_round_trip(tmp_path):
    import av

    clip = make_clip(dataclasses.replace(SceneConfig.preset("tiny_dynamic"), height=63, width=95, num_frames=5))
    path = clip.write_video(tmp_path / "clip.mp4")
    assert path.exists() and not list(tmp_path.glob(".*"))  # no temp file left
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name in ("h264", "libx264")
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
    assert len(frames) == 5
    assert frames[0].shape == (64, 96, 3)  # odd dims padded by one row/column for yuv420p
    decoded = np.stack(frames)[:, :63, :95]
    assert np.abs(decoded.astype(int) - clip.rgb).mean() < 12.0  # yuv420p halves chroma of a busy texture
    grey = lambda a: a.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)  # noqa: E731
    assert np.abs(grey(decoded) - grey(clip.rgb)).mean() < 4.0  # luma survives crf 12 nearly intact


def test_write_images_and_bundle(tmp_path, dyn):
    import cv2

    paths = dyn.write_images(tmp_path / "frames")
    assert [p.name for p in paths][:2] == ["frame_00000.png", "frame_00001.png"] and len(paths) == 8
    np.testing.assert_array_equal(cv2.imread(str(paths[3]))[..., ::-1], dyn.rgb[3])

    from vid3d.formats.bundle import open_bundle

    out = dyn.to_bundle(tmp_path / "gt.vid3d.h5")
    with open_bundle(out) as b:
        assert b.num_frames == 8 and (b.height, b.width) == (64, 96)
        assert b.attrs["source"] == "synthetic ground truth" and b.attrs["units"] == "m"
        assert not b.has("prior")
        np.testing.assert_allclose(b.read("depth"), dyn.depth, rtol=1e-3)
        np.testing.assert_array_equal(b.read("dynamic_mask"), dyn.dynamic_mask)
        np.testing.assert_allclose(b.T_world_camera, dyn.T_world_camera, atol=1e-5)
        np.testing.assert_allclose(b.read("scene_flow"), dyn.scene_flow, atol=1e-3)
