"""Effects: bokeh (vs its slow twin, in-focus plane, aperture, occlusion), dolly zoom, orbit, colour map, video."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from vid3d.formats.conventions import make_K, make_T, project_points, unproject_depth
from vid3d.formats.errors import InputError
from vid3d.viewer.render import (
    BokehSettings, Camera, VideoWriter, auto_focus_distance, background_scale, bokeh, colorize_depth,
    dolly_zoom_camera, orbit_cameras, pullback_camera, read_video, signed_coc, splat,
)
from vid3d.viewer.render.bokeh import disk_blur
from vid3d.viewer.render.bokeh_reference import bokeh_reference


def _texture(H, W, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(H, W, 3, generator=g)


def test_signed_coc_is_thin_lens_linear_in_inverse_depth():
    s = BokehSettings(focus_distance=2.0, aperture=10.0, max_coc_px=100.0)
    d = torch.tensor([1.0, 2.0, 4.0, 1e9, 0.0])
    c = signed_coc(d, s)
    # c = c_inf (1 - d_f / d) = A f (1/d_f - 1/d) with A f = c_inf d_f
    torch.testing.assert_close(c, torch.tensor([-10.0, 0.0, 5.0, 10.0, 10.0]))
    lens = BokehSettings.from_lens(focus_distance=2.0, aperture_diameter=0.05, focal_px=400.0)
    assert lens.aperture == pytest.approx(0.05 * 400.0 / 2.0)


@pytest.mark.parametrize("linear", [True, False])
def test_bokeh_matches_slow_reference(linear):
    H, W = 12, 14
    rgb = _texture(H, W, 1)
    depth = torch.full((H, W), 3.0)
    depth[3:8, 4:10] = 1.2  # a near block in front of a far plane
    depth[0, :] = 0.0  # empty row (counts as infinity)
    s = BokehSettings(focus_distance=2.0, aperture=4.0, max_coc_px=6.0, num_layers=5, linear_light=linear,
                      full_res_radius_px=10.0)
    fast = bokeh(rgb, depth, s)
    slow = bokeh_reference(rgb.numpy(), depth.numpy(), s)
    torch.testing.assert_close(fast, torch.from_numpy(slow).float(), rtol=0, atol=2e-5)


def test_bokeh_with_hidden_surface_matches_slow_reference():
    H, W = 12, 14
    rgb, hidden = _texture(H, W, 6), _texture(H, W, 7)
    depth = torch.full((H, W), 3.0)
    depth[3:8, 4:10] = 1.2
    hidden_depth = torch.where(depth < 2, torch.tensor(3.0), torch.tensor(0.0))  # known only behind the block
    s = BokehSettings(focus_distance=3.0, aperture=4.0, max_coc_px=6.0, num_layers=5, full_res_radius_px=10.0)
    fast = bokeh(rgb, depth, s, hidden_rgb=hidden, hidden_depth=hidden_depth)
    slow = bokeh_reference(rgb.numpy(), depth.numpy(), s, hidden_rgb=hidden.numpy(), hidden_depth=hidden_depth.numpy())
    torch.testing.assert_close(fast, torch.from_numpy(slow).float(), rtol=0, atol=2e-5)


def test_hidden_background_shows_through_a_blurred_foreground_edge():
    H, W = 48, 48
    rgb = torch.zeros(H, W, 3)
    rgb[..., 2] = 0.8  # blue background, in focus
    rgb[16:32, 16:32] = torch.tensor([1.0, 0.0, 0.0])  # red foreground, out of focus (near)
    depth = torch.full((H, W), 4.0)
    depth[16:32, 16:32] = 1.0
    hidden_rgb = torch.zeros(H, W, 3)
    hidden_rgb[..., 2] = 0.8  # what the capture's other frames saw behind the foreground
    hidden_depth = torch.where(depth < 2, torch.tensor(4.0), torch.tensor(0.0))
    s = BokehSettings(focus_distance=4.0, aperture=4.0, max_coc_px=12.0)
    plain = bokeh(rgb, depth, s)
    partial = bokeh(rgb, depth, s, hidden_rgb=hidden_rgb, hidden_depth=hidden_depth)
    # just inside the foreground edge the background now shows through (partial occlusion)
    assert float(partial[24, 16, 2]) > float(plain[24, 16, 2]) + 0.1
    torch.testing.assert_close(partial[24, 24], plain[24, 24], rtol=0, atol=0.02)  # the centre stays red
    torch.testing.assert_close(partial[:6, :6], rgb[:6, :6], rtol=0, atol=1e-5)


def test_in_focus_plane_is_unchanged():
    rgb = _texture(32, 40, 2)
    depth = torch.full((32, 40), 2.5)
    out = bokeh(rgb, depth, BokehSettings(focus_distance=2.5, aperture=20.0))
    torch.testing.assert_close(out, rgb, rtol=0, atol=1e-5)


def _detail(img):
    """High-frequency energy: mean squared difference of horizontal neighbours."""
    return float(((img[:, 1:] - img[:, :-1]) ** 2).mean())


def test_out_of_focus_blurs_more_with_larger_aperture():
    rgb = _texture(48, 48, 3)
    depth = torch.full((48, 48), 6.0)  # far behind the focus plane
    energies = [_detail(bokeh(rgb, depth, BokehSettings(focus_distance=1.5, aperture=a))[8:-8, 8:-8]) for a in (0.0, 2.0, 6.0, 14.0)]
    assert energies[0] == pytest.approx(_detail(rgb[8:-8, 8:-8]))
    assert energies[0] > energies[1] > energies[2] > energies[3]
    assert energies[3] < 0.2 * energies[0]


def test_sharp_foreground_does_not_bleed_onto_blurred_background():
    H, W = 48, 48
    rgb = torch.zeros(H, W, 3)
    rgb[..., 1] = 0.3 + 0.4 * _texture(H, W, 4)[..., 1]  # greenish textured background
    rgb[16:32, 16:32] = torch.tensor([1.0, 0.0, 0.0])  # red foreground in focus
    depth = torch.full((H, W), 8.0)
    depth[16:32, 16:32] = 1.0
    s = BokehSettings(focus_distance=1.0, aperture=12.0)
    out = bokeh(rgb, depth, s)
    torch.testing.assert_close(out[16:32, 16:32], rgb[16:32, 16:32], rtol=0, atol=1e-4)  # sharp, unchanged
    ring = torch.ones(H, W, dtype=torch.bool)
    ring[15:33, 15:33] = False  # everything but the square and a 1 px margin
    assert float(out[ring][:, 0].max()) < 0.02  # no red halo on the background
    # and the background did get blurred
    assert _detail(out[:, :12]) < 0.5 * _detail(rgb[:, :12])


def test_blurred_foreground_spreads_over_sharp_background():
    H, W = 48, 48
    rgb = torch.zeros(H, W, 3)
    rgb[..., 2] = 0.8  # blue background, in focus
    rgb[16:32, 16:32] = torch.tensor([1.0, 0.0, 0.0])  # red foreground, out of focus (near)
    depth = torch.full((H, W), 4.0)
    depth[16:32, 16:32] = 1.0
    out = bokeh(rgb, depth, BokehSettings(focus_distance=4.0, aperture=4.0, max_coc_px=12.0))
    assert float(out[24, 33, 0]) > 0.2  # red spills past the foreground's edge onto the background
    torch.testing.assert_close(out[:6, :6], rgb[:6, :6], rtol=0, atol=1e-5)  # far from it: sharp background unchanged


def test_reduced_resolution_blur_approximates_full_resolution():
    x = _texture(64, 64, 5).permute(2, 0, 1)
    full = disk_blur(x, 9.0, full_res_radius_px=20.0)
    fast = disk_blur(x, 9.0, full_res_radius_px=3.0)
    assert float((full - fast)[:, 12:-12, 12:-12].abs().mean()) < 0.02


def test_bokeh_settings_validation():
    with pytest.raises(InputError, match="focus_distance"):
        BokehSettings(focus_distance=0.0)
    with pytest.raises(InputError, match="aperture"):
        BokehSettings(focus_distance=1.0, aperture=-1.0)
    with pytest.raises(InputError, match="num_layers"):
        BokehSettings(focus_distance=1.0, num_layers=4)
    assert BokehSettings.preset("best", focus_distance=2.0).num_layers == 17


def test_auto_focus_prefers_the_moving_object():
    depth = torch.full((30, 30), 5.0)
    depth[2:8, 2:8] = 1.5
    mask = torch.zeros(30, 30, dtype=torch.bool)
    mask[2:8, 2:8] = True
    assert auto_focus_distance(depth, mask) == pytest.approx(1.5)
    assert auto_focus_distance(depth) == pytest.approx(5.0)


# -- dolly zoom -------------------------------------------------------------------------------------


@pytest.mark.parametrize("strength", [-0.5, 0.4, 1.5])
def test_dolly_zoom_keeps_subject_size_and_scales_background_as_predicted(strength):
    K = make_K(300.0, 300.0, 160.5, 120.5)
    T = make_T(np.eye(3), np.array([0.3, -0.2, 0.1]))
    cam = Camera(K=K, T_world_camera=T, height=240, width=320)
    d, D = 2.0, 7.0
    cam2 = dolly_zoom_camera(cam, subject_distance=d, strength=strength)
    # camera moved along its own optical axis only
    np.testing.assert_allclose((cam2.center - cam.center).numpy(), -strength * d * cam.forward.numpy(), atol=1e-12)
    np.testing.assert_allclose(cam2.T_world_camera[:3, :3].numpy(), cam.T_world_camera[:3, :3].numpy())

    def size(c, z):  # projected width of a 0.5-wide segment centred on the axis at depth z in cam's frame
        p_cam = np.array([[-0.25, 0.1, z], [0.25, 0.1, z]])
        p = p_cam + T[:3, 3]
        uv, _ = project_points(p, c.K.numpy(), c.T_world_camera.numpy())
        return float(np.linalg.norm(uv[1] - uv[0]))

    assert size(cam2, d) == pytest.approx(size(cam, d), rel=1e-3)
    predicted = background_scale(subject_distance=d, background_distance=D, strength=strength)
    assert size(cam2, D) / size(cam, D) == pytest.approx(predicted, rel=1e-6)
    assert abs(predicted - 1) > 0.1  # the background really changes


def test_dolly_zoom_rendered_subject_keeps_its_size_within_one_percent():
    H = W = 160
    K = make_K(200.0, 200.0, 80.0, 80.0)
    cam = Camera(K=K, T_world_camera=np.eye(4), height=H, width=W)
    # dense subject square (0.6 wide at z = 2) and a dense background plane at z = 6
    fine = make_K(1000.0, 1000.0, 150.0, 150.0)
    subj = unproject_depth(torch.full((300, 300), 2.0), torch.from_numpy(fine)).reshape(-1, 3)
    bgK = make_K(200.0, 200.0, 200.0, 200.0)
    bg = unproject_depth(torch.full((400, 400), 6.0), torch.from_numpy(bgK)).reshape(-1, 3)
    pts = torch.cat([subj, bg])
    col = torch.cat([torch.full((subj.shape[0], 3), 255, dtype=torch.uint8), torch.zeros((bg.shape[0], 3), dtype=torch.uint8)])
    n_subj = subj.shape[0]

    def subject_width(c):
        idx = splat(pts, col, c).index
        cols = ((idx >= 0) & (idx < n_subj)).any(0).nonzero()
        return float(cols.max() - cols.min() + 1)

    w0 = subject_width(cam)
    assert 55 <= w0 <= 65  # 0.6 * 200 / 2 = 60 px
    for strength in (-0.4, 0.8):
        c2 = dolly_zoom_camera(cam, subject_distance=2.0, strength=strength)
        assert subject_width(c2) == pytest.approx(w0, rel=0.01 + 1.0 / w0)  # within 1% (+ one pixel of rasterisation)


def test_dolly_zoom_rejects_bad_parameters():
    cam = Camera(K=make_K(10, 10, 5, 5), T_world_camera=np.eye(4), height=10, width=10)
    with pytest.raises(InputError, match="strength"):
        dolly_zoom_camera(cam, subject_distance=1.0, strength=-1.0)
    with pytest.raises(InputError, match="subject distance"):
        dolly_zoom_camera(cam, subject_distance=0.0, strength=0.5)


# -- camera paths, colour map, video ----------------------------------------------------------------


def test_orbit_cameras_look_at_the_target_at_constant_distance():
    cam = Camera(K=make_K(100.0, 100.0, 50.0, 40.0), T_world_camera=make_T(np.eye(3), np.array([1.0, 2.0, 3.0])), height=80, width=100)
    cams = orbit_cameras(cam, radius=2.0, degrees=30.0, num_frames=8)
    target = cam.center + 2.0 * cam.forward
    np.testing.assert_allclose(cams[0].T_world_camera.numpy(), cam.T_world_camera.numpy(), atol=1e-12)
    angles = []
    for c in cams:
        assert float((c.center - target).norm()) == pytest.approx(2.0)
        uv, z = project_points(target.numpy()[None], c.K.numpy(), c.T_world_camera.numpy())
        np.testing.assert_allclose(uv[0], [50.0, 40.0], atol=1e-9)
        angles.append(math.degrees(math.acos(float(c.forward @ cam.forward).__round__(12))))
    assert max(angles) == pytest.approx(15.0, abs=0.5)  # +-degrees/2
    pb = pullback_camera(cam, target_distance=2.0)
    uv, z = project_points(target.numpy()[None], pb.K.numpy(), pb.T_world_camera.numpy())
    np.testing.assert_allclose(uv[0], [50.0, 40.0], atol=1e-9)
    assert float(z[0]) > 2.0


def test_colorize_depth_maps_near_to_warm_far_to_cool_and_empty_to_black():
    depth = torch.tensor([[1.0, 4.0, 0.0]])
    img = colorize_depth(depth, near=1.0, far=10.0)  # 4 is at 1/6 of the inverse-depth range from far
    assert img.shape == (1, 3, 3)
    near, far, empty = img[0]
    assert near[0] > 3 * near[2] and far[2] > 2 * far[0]
    assert torch.equal(empty, torch.zeros(3))


def test_video_writer_round_trip_and_atomicity(tmp_path):
    frames = [np.full((32, 48, 3), 40 * i, dtype=np.uint8) for i in range(5)]
    path = tmp_path / "v.mp4"
    with VideoWriter(path, width=48, height=32, fps=10) as w:
        for f in frames:
            w.write(f)
    assert w.codec == "libx264"
    decoded, codec = read_video(path)
    assert codec == "h264" and decoded.shape == (5, 32, 48, 3)
    assert np.abs(decoded.astype(int) - np.stack(frames)).mean() < 3
    bad = tmp_path / "bad.mp4"
    with pytest.raises(RuntimeError):
        with VideoWriter(bad, width=48, height=32, fps=10) as w:
            w.write(frames[0])
            raise RuntimeError("boom")
    assert not bad.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["v.mp4"]
    with pytest.raises(InputError, match="even"):
        VideoWriter(tmp_path / "odd.mp4", width=47, height=32, fps=10)
