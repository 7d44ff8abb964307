"""Scene families of vid3d.synthetic (camera motions, the planar room, walkers): each one's ground truth
is what its name claims, and the default layout renders byte for byte as before the families existed."""

from __future__ import annotations

import hashlib
import time

import numpy as np
import pytest

from vid3d.formats.conventions import invert_T, pixel_grid, project_points, rigidity_error, transform_points, unproject_depth
from vid3d.formats.errors import InputError
from vid3d.synthetic import FAMILIES, PRESETS, SceneConfig, make_clip
from vid3d.synthetic.camera import ORBIT_RADIUS, SCENE_CENTRE
from vid3d.synthetic.clip import _bilinear
from vid3d.synthetic.primitives import BOX, SPHERE, WALKER, cast_rays, cast_rays_reference, walker_parts
from vid3d.synthetic.scene import FLOOR_Y, ROOM_HI, build_scene

# sha256 of make_clip(preset).rgb, computed before the families were added (commit 97d60f8)
RGB_SHA256 = {
    "tiny_dynamic": "3a26afe6611389bbeda2db1051eea74d4437f8aea4aaa7ead661328037deb4f8",
    "tiny_static": "3ee7bf4a4c2003337bd90e4d8d1b359ce24676013ff9583667c80f06dd1b2d4c",
}
# sha256 over rgb, depth, T_world_camera, object_id and scene_flow (in that order), same commit
ALL_SHA256 = {
    "tiny_dynamic": "a8c827a97819eb0c09c04ffa9709dc9ec30dc26b1f96fb07b53ad7e869f94960",
    "tiny_static": "c69f5e73c4a4f62298d8ba19545f344baa41e632c84b3432362a4e9aa24ce02c",
}

_CLIPS: dict[str, object] = {}
_SECONDS: dict[str, float] = {}


def tiny(name: str):
    """The rendered ``tiny_<name>`` clip, once per test session (render time kept in _SECONDS)."""
    if name not in _CLIPS:
        t0 = time.perf_counter()
        _CLIPS[name] = make_clip(f"tiny_{name}")
        _SECONDS[name] = time.perf_counter() - t0
    return _CLIPS[name]


def _yaw(T_world_camera: np.ndarray) -> np.ndarray:
    """Yaw ``(T,)`` radians of the optical axis about world y (0 = +z, positive towards +x)."""
    return np.arctan2(T_world_camera[:, 0, 2], T_world_camera[:, 2, 2])


def _camera_frame_steps(T_world_camera: np.ndarray) -> np.ndarray:
    """Per-frame camera translations ``(T-1, 3)`` expressed in the earlier frame's camera axes."""
    dc = np.diff(T_world_camera[:, :3, 3], axis=0)
    return np.einsum("tji,tj->ti", T_world_camera[:-1, :3, :3], dc)


@pytest.mark.parametrize("name", sorted(RGB_SHA256))
def test_default_presets_render_exactly_as_before(name):
    clip = make_clip(name)
    assert hashlib.sha256(clip.rgb.tobytes()).hexdigest() == RGB_SHA256[name]
    h = hashlib.sha256()
    for a in (clip.rgb, clip.depth, clip.T_world_camera, clip.object_id, clip.scene_flow):
        h.update(np.ascontiguousarray(a).tobytes())
    assert h.hexdigest() == ALL_SHA256[name]
    cfg = SceneConfig.preset(name)
    assert (cfg.camera_motion, cfg.room, cfg.mover) == ("default", "default", "rigid")


def test_every_family_has_a_preset_and_a_tiny_one():
    assert len(FAMILIES) >= 7
    for name, text in FAMILIES.items():
        assert isinstance(text, str) and len(text) > 20
        full, small = PRESETS[name], PRESETS[f"tiny_{name}"]
        assert (full.height, full.width, full.num_frames) == (180, 320, 32)
        assert (small.height, small.width, small.num_frames) == (64, 96, 10)
        assert small.replace(height=180, width=320, num_frames=32) == full  # the same family, smaller
        assert SceneConfig.preset(name) is full


@pytest.mark.parametrize("name", list(FAMILIES))
def test_family_clip_is_complete_and_fast(name):
    clip = tiny(name)
    T, H, W = 10, 64, 96
    assert _SECONDS[name] < 3.0, f"tiny_{name} took {_SECONDS[name]:.2f} s (target < 1 s on a quiet machine)"
    assert clip.rgb.shape == (T, H, W, 3) and clip.rgb.dtype == np.uint8
    assert clip.depth.shape == (T, H, W) and np.all(clip.depth > 0) and np.all(np.isfinite(clip.depth))
    assert clip.scene_flow.shape == (T, H, W, 3) and clip.dynamic_mask.shape == (T, H, W)
    assert rigidity_error(clip.T_world_camera).max() < 1e-9
    assert abs(clip.K[0, 2] - W / 2) > 0.5 and abs(clip.K[1, 2] - H / 2) > 0.5
    assert clip.K[0, 0] == pytest.approx(0.9 * W)
    assert clip.rgb.std() > 25, "texture too flat for features"
    moving = np.linalg.norm(clip.scene_flow[:-1], axis=-1) > 1e-7
    np.testing.assert_array_equal(moving, clip.dynamic_mask[:-1])
    assert clip.dynamic_mask.any() == clip.config.is_dynamic


def test_families_are_deterministic_for_a_seed():
    again = make_clip("tiny_walkers")
    np.testing.assert_array_equal(again.rgb, tiny("walkers").rgb)
    np.testing.assert_array_equal(again.scene_flow, tiny("walkers").scene_flow)
    other = make_clip(SceneConfig.preset("tiny_walkers").replace(seed=5))
    assert np.abs(other.rgb.astype(int) - tiny("walkers").rgb).mean() > 5


def test_bad_family_names_raise_input_error():
    for field in ("camera_motion", "room", "mover"):
        with pytest.raises(InputError, match=field):
            SceneConfig(**{field: "nope"})


def test_pan_is_pure_rotation_with_the_configured_yaw_span():
    T_wc = tiny("pan").T_world_camera
    assert np.array_equal(T_wc[:, :3, 3], np.broadcast_to(T_wc[0, :3, 3], (10, 3)))  # translation exactly 0
    yaw = _yaw(T_wc)
    assert yaw.max() - yaw.min() == pytest.approx(np.deg2rad(36.0), abs=1e-9)
    assert np.all(np.diff(yaw) > 0)  # one sweep, constant rate
    np.testing.assert_allclose(np.diff(yaw), np.deg2rad(36.0) / 9, atol=1e-9)
    for span in (30.0, 40.0):
        scene = build_scene(SceneConfig.preset("tiny_pan").replace(camera_yaw=span))
        yaw = _yaw(scene.T_world_camera)
        assert yaw.max() - yaw.min() == pytest.approx(np.deg2rad(span), abs=1e-9)
        assert np.ptp(scene.T_world_camera[:, :3, 3], axis=0).max() == 0.0


def test_tripod_camera_is_fixed():
    clip = tiny("tripod")
    assert np.array_equal(clip.T_world_camera, np.broadcast_to(clip.T_world_camera[0], clip.T_world_camera.shape))
    assert clip.dynamic_mask.mean() > 0.03  # only the walkers move
    # a wobble, when asked for, rotates it but never moves its centre
    T_wc = build_scene(SceneConfig.preset("tiny_tripod").replace(camera_yaw=0.5, camera_pitch=0.3)).T_world_camera
    assert np.ptp(T_wc[:, :3, 3], axis=0).max() == 0.0
    assert 0 < np.ptp(_yaw(T_wc)) <= np.deg2rad(0.5) + 1e-12


def test_walk_translates_along_the_optical_axis():
    T_wc = tiny("walk").T_world_camera
    steps = _camera_frame_steps(T_wc)
    along = steps[:, 2] / np.linalg.norm(steps, axis=1)
    assert np.all(along > 0.9), along  # every step mostly forward ...
    assert np.ptp(steps[:, 1]) > 0  # ... with a bob
    total = np.einsum("ji,j->i", T_wc[0, :3, :3], T_wc[-1, :3, 3] - T_wc[0, :3, 3])
    assert total[2] / np.linalg.norm(total) > 0.97
    assert np.linalg.norm(total) == pytest.approx(1.6, rel=0.02)
    assert 0 < np.ptp(_yaw(T_wc)) <= np.deg2rad(4.0) + 1e-12  # a hand-held yaw wobble only


def test_orbit_looks_at_the_scene_centre_with_large_parallax():
    clip = tiny("orbit")
    T_wc = clip.T_world_camera
    for t in range(10):
        uv_t, z_t = project_points(SCENE_CENTRE[None], clip.K, T_wc[t])
        assert z_t[0] > 2.5
        np.testing.assert_allclose(uv_t[0], clip.K[:2, 2], atol=1e-6)  # exactly at the principal point
    c = T_wc[:, :3, 3]
    np.testing.assert_allclose(np.hypot(c[:, 0] - SCENE_CENTRE[0], c[:, 2] - SCENE_CENTRE[2]), ORBIT_RADIUS, atol=1e-9)
    baseline = np.linalg.norm(c[-1] - c[0])
    assert baseline / np.median(clip.depth) > 0.4  # large parallax
    arc = np.linalg.norm(np.diff(c[:, [0, 2]], axis=0), axis=1).sum()
    assert arc == pytest.approx(2.2, rel=0.01)
    assert np.ptp(_yaw(T_wc)) == pytest.approx(2.2 / ORBIT_RADIUS, rel=1e-6)


@pytest.mark.parametrize("name, min_ratio", [("sideways", 0.5), ("planar_sideways", 1.0)])
def test_sideways_is_a_long_translation_along_camera_x(name, min_ratio):
    clip = tiny(name)
    T_wc = clip.T_world_camera
    assert np.array_equal(T_wc[:, :3, :3], np.broadcast_to(T_wc[0, :3, :3], (10, 3, 3)))  # no rotation at all
    total = np.einsum("ji,j->i", T_wc[0, :3, :3], T_wc[-1, :3, 3] - T_wc[0, :3, 3])
    assert abs(total[0]) / np.linalg.norm(total) > 0.999
    assert np.linalg.norm(total) == pytest.approx(3.0, rel=1e-9)
    steps = _camera_frame_steps(T_wc)
    assert np.all(np.abs(steps[:, 0]) / np.linalg.norm(steps, axis=1) > 0.999)
    assert np.linalg.norm(total) / np.median(clip.depth) > min_ratio


@pytest.mark.parametrize("name", ["planar", "planar_sideways"])
def test_planar_rooms_are_mostly_walls_and_floor(name):
    clip = tiny(name)
    assert (clip.object_id == 0).mean() > 0.9
    assert len(build_scene(clip.config).primitives) == 1  # the room alone


def test_planar_sideways_sees_one_plane_related_by_a_homography():
    """The whole view is the far wall: frames are related by a homography although the camera translates 3 m."""
    import cv2

    clip = tiny("planar_sideways")
    for t in range(clip.num_frames):
        X = unproject_depth(clip.depth[t].astype(np.float64), clip.K, clip.T_world_camera[t])
        assert np.abs(X[..., 2] - ROOM_HI[2]).max() < 1e-4
    flow, valid = clip.optical_flow(0, 4)  # 1.3 m apart: half the view in common
    assert valid.mean() > 0.3
    src = pixel_grid(clip.height, clip.width)[valid]
    dst = src + flow[valid]
    H, _ = cv2.findHomography(src, dst, 0)
    proj = cv2.perspectiveTransform(src[None].astype(np.float64), H)[0]
    assert np.abs(proj - dst).max() < 1e-2


def _walker_support(height: float, T_world_walker: np.ndarray) -> float:
    """Largest world y (the lowest point: y is down) of a walker's parts: box corners and the sphere's bottom."""
    lowest = -np.inf
    for kind, centre, size in walker_parts(height):
        if kind == BOX:
            corners = centre + size * np.array([[i, j, k] for i in (-1, 1) for j in (-1, 1) for k in (-1, 1)])
            lowest = max(lowest, transform_points(T_world_walker, corners)[:, 1].max())
        else:
            assert kind == SPHERE
            lowest = max(lowest, transform_points(T_world_walker, centre[None])[0, 1] + size[0])
    return float(lowest)


@pytest.mark.parametrize("name", ["walkers", "tripod"])
def test_walkers_stand_on_the_floor_and_walk(name):
    scene = build_scene(SceneConfig.preset(f"tiny_{name}"))
    walkers = [k for k, p in enumerate(scene.primitives) if p.kind == WALKER]
    assert len(walkers) == 2 and all(scene.primitives[k].dynamic for k in walkers)
    for k in walkers:
        height = float(scene.primitives[k].size[0])
        assert 1.6 <= height <= 1.85
        parts = walker_parts(height)
        assert 0.4 < 2 * max(size[0] for kind, _, size in parts if kind == BOX) < 0.6  # about 0.5 m wide
        for t in range(scene.T_world_object.shape[1]):
            assert abs(_walker_support(height, scene.T_world_object[k, t]) - FLOOR_Y) < 1e-6
        c = scene.T_world_object[k, :, :3, 3]
        assert np.linalg.norm(c[-1, [0, 2]] - c[0, [0, 2]]) == pytest.approx(1.4, rel=1e-6)  # walking pace
        assert 0.002 < np.ptp(c[:, 1]) < 0.05  # a slight bob
        up = scene.T_world_object[k, :, :3, 1]  # the walker's own y axis stays near vertical
        assert np.all(up[:, 1] > np.cos(np.deg2rad(5)))


def test_walkers_touch_the_floor_in_view_and_their_scene_flow_is_their_motion():
    clip = tiny("walkers")
    walkers = np.flatnonzero(clip.object_dynamic)
    assert clip.dynamic_mask.mean() > 0.03
    for t in range(clip.num_frames - 1):
        X = unproject_depth(clip.depth[t].astype(np.float64), clip.K, clip.T_world_camera[t])
        lowest_seen = -np.inf
        for k in walkers:
            sel = clip.object_id[t] == k
            if not sel.any():
                continue
            assert np.all(X[sel][:, 1] < FLOOR_Y + 1e-4)
            lowest_seen = max(lowest_seen, X[sel][:, 1].max())
            # finite difference of the walker's pose: X(t+1) = T_world_walker(t+1) T_walker_world(t) X(t)
            T_step = clip.T_world_object[k, t + 1] @ invert_T(clip.T_world_object[k, t])
            np.testing.assert_allclose(clip.scene_flow[t][sel], transform_points(T_step, X[sel]) - X[sel], atol=1e-5)
        assert lowest_seen > FLOOR_Y - 0.05, "a walker's feet should be in view, next to the floor"


def test_fast_ray_cast_matches_reference_on_walkers():
    scene = build_scene(SceneConfig.preset("tiny_walkers"))
    rng = np.random.default_rng(1)
    for t in (0, 6):
        T = scene.T_world_camera[t]
        origin = T[:3, 3]
        walker_pts = [
            transform_points(scene.T_world_object[k, t], rng.uniform([-0.3, -0.9, -0.2], [0.3, 0.9, 0.2], size=(40, 3)))
            for k in scene.dynamic_ids
        ]
        uv = rng.uniform([0, 0], [96, 64], size=(40, 2))
        d_cam = np.concatenate([uv, np.ones((40, 1))], axis=1) @ np.linalg.inv(scene.K).T
        dirs = np.concatenate([d_cam @ T[:3, :3].T] + [p - origin for p in walker_pts])
        fast = cast_rays(scene.primitives, scene.T_world_object[:, t], origin, dirs)
        s_ref, id_ref = cast_rays_reference(scene.primitives, scene.T_world_object[:, t], origin, dirs)
        np.testing.assert_array_equal(fast.object_id, id_ref)
        np.testing.assert_allclose(fast.s, s_ref, rtol=1e-9)
        assert np.isin(scene.dynamic_ids, fast.object_id).all()  # the aimed rays do hit the walkers


@pytest.mark.parametrize("name", ["orbit", "walkers"])
def test_depth_pose_and_scene_flow_predict_optical_flow(name):
    """Pixel x of frame t, unprojected with GT depth and pose, moved by the scene flow and projected into
    frame t+1, lands where ``optical_flow`` says, at the depth frame t+1 sees there."""
    clip = tiny(name)
    H, W = clip.height, clip.width
    for t in range(clip.num_frames - 1):
        X = unproject_depth(clip.depth[t].astype(np.float64), clip.K, clip.T_world_camera[t]) + clip.scene_flow[t]
        uv, z = project_points(X.reshape(-1, 3), clip.K, clip.T_world_camera[t + 1])
        uv, z = uv.reshape(H, W, 2), z.reshape(H, W)
        flow, valid = clip.optical_flow(t, t + 1)
        assert valid.mean() > 0.5
        np.testing.assert_allclose(flow[valid], (uv - pixel_grid(H, W))[valid], atol=2e-3)
        z_next = 1.0 / _bilinear(1.0 / clip.depth[t + 1].astype(np.float64), uv - 0.5)
        assert np.median(np.abs(z_next / z - 1.0)[valid]) < 1e-3
        if clip.config.is_dynamic:
            assert (valid & clip.dynamic_mask[t]).sum() > 20
