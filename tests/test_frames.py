"""Frames stage: decoding, selection, rotation, working resolution, intrinsics, clear input errors."""

from __future__ import annotations

import numpy as np
import pytest

import vid3d  # noqa: F401
from vid3d.formats.conventions import make_K
from vid3d.formats.errors import InputError
from vid3d.optimizer.frames import FramesConfig, frames_from_array, natural_key, working_size
from vid3d.optimizer.frames import run as load_frames


def _write_video(path, frames, fps=10, rotation=None):
    import av

    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=fps)
        s.width, s.height, s.pix_fmt = frames.shape[2], frames.shape[1], "yuv444p"  # no chroma subsampling
        s.options = {"crf": "0", "preset": "ultrafast"}
        if rotation:
            s.set_display_rotation(rotation)
        for f in frames:
            for p in s.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)


def _clip(T=6, H=32, W=48, seed=0):
    """Smooth random frames (video codecs keep them nearly exact), each with a distinct brightness."""
    import cv2

    rng = np.random.default_rng(seed)
    base = cv2.resize(rng.integers(40, 200, (H // 4, W // 4, 3)).astype(np.uint8), (W, H), interpolation=cv2.INTER_CUBIC)
    return np.stack([np.clip(base.astype(int) + 6 * t, 0, 255).astype(np.uint8) for t in range(T)])


def test_working_size_keeps_aspect_and_never_upscales():
    assert working_size(1080, 1920, 512) == (288, 512)
    assert working_size(1920, 1080, 384) == (384, 216)
    assert working_size(180, 320, 512) == (180, 320)  # never upscaled
    H, W = working_size(1000, 1333, 500)  # no multiple-of-64 rounding
    assert W == 500 and H == 375 and abs(H / W - 1000 / 1333) < 1 / H


def test_natural_sort():
    names = ["f10.png", "f2.png", "f1.png", "F3.png"]
    assert sorted(names, key=natural_key) == ["f1.png", "f2.png", "F3.png", "f10.png"]


def test_video_round_trip_selection_and_timestamps(tmp_path):
    rgb = _clip(T=8)
    _write_video(tmp_path / "c.mp4", rgb, fps=10)
    fr = load_frames(tmp_path / "c.mp4")
    assert fr.rgb.shape == rgb.shape and fr.rgb.dtype == np.uint8
    assert np.abs(fr.rgb.astype(int) - rgb).mean() < 3.0  # lossless x264, RGB<->YUV rounding only
    np.testing.assert_array_equal(fr.source_frames, np.arange(8))
    np.testing.assert_allclose(fr.timestamps_s, np.arange(8) / 10, atol=1e-6)
    assert fr.fps == pytest.approx(10)
    sel = load_frames(tmp_path / "c.mp4", FramesConfig(start=1, end=7, stride=2))
    np.testing.assert_array_equal(sel.source_frames, [1, 3, 5])
    assert sel.fps == pytest.approx(5)
    np.testing.assert_allclose(sel.timestamps_s, [0.1, 0.3, 0.5], atol=1e-6)
    assert np.abs(sel.rgb.astype(int) - rgb[[1, 3, 5]]).mean() < 3.0
    capped = load_frames(tmp_path / "c.mp4", FramesConfig(max_frames=3, stride=2))
    np.testing.assert_array_equal(capped.source_frames, [0, 2, 4])


def test_video_rotation_metadata_is_honoured(tmp_path):
    rgb = _clip(T=3, H=32, W=48)
    rgb[:, :8, :8] = 255  # a white top-left corner to locate
    _write_video(tmp_path / "r.mp4", rgb, rotation=90)
    fr = load_frames(tmp_path / "r.mp4")
    assert fr.rotation == 90 and fr.rgb.shape == (3, 48, 32, 3) and fr.source_size == (48, 32)
    expect = np.rot90(rgb[0], k=1)  # display matrix: 90 degrees counter-clockwise
    assert np.abs(fr.rgb[0].astype(int) - expect).mean() < 3.0
    assert fr.rgb[0, -8:, :8].min() > 240  # the top-left corner now sits bottom-left


def test_resize_and_intrinsics(tmp_path):
    rgb = _clip(T=3, H=60, W=100)
    fr = frames_from_array(rgb, config=FramesConfig(max_side=50))
    assert fr.size == (30, 50)
    K = make_K(90.0, 90.0, 50.0, 30.0)
    K2 = fr.scale_K(K)
    np.testing.assert_allclose(K2, make_K(45.0, 45.0, 25.0, 15.0))


def test_image_folder_natural_order(tmp_path):
    import cv2

    rgb = _clip(T=11, H=16, W=24)
    for t in range(11):
        cv2.imwrite(str(tmp_path / f"img{t}.png"), rgb[t][..., ::-1])
    fr = load_frames(tmp_path)
    np.testing.assert_array_equal(fr.rgb, rgb)  # img2 before img10, PNG lossless
    np.testing.assert_array_equal(fr.source_frames, np.arange(11))


def test_black_frames_are_dropped_and_all_black_is_an_error(tmp_path):
    rgb = _clip(T=5)
    rgb[0] = 0
    fr = frames_from_array(rgb)
    assert fr.dropped_black == (0,) and list(fr.source_frames) == [1, 2, 3, 4]
    with pytest.raises(InputError, match="all 5 selected frames are black"):
        frames_from_array(np.zeros_like(rgb))


@pytest.mark.parametrize("case", ["missing", "not_video", "empty_folder", "one_frame", "corrupt_image", "bad_option"])
def test_input_errors(tmp_path, case):
    import cv2

    if case == "missing":
        with pytest.raises(InputError, match="does not exist"):
            load_frames(tmp_path / "nope.mp4")
    elif case == "not_video":
        (tmp_path / "x.mp4").write_text("this is not a video\n" * 20)
        with pytest.raises(InputError, match="not a readable video"):
            load_frames(tmp_path / "x.mp4")
    elif case == "empty_folder":
        with pytest.raises(InputError, match="holds no images"):
            load_frames(tmp_path)
    elif case == "one_frame":
        _write_video(tmp_path / "one.mp4", _clip(T=1))
        with pytest.raises(InputError, match="only one usable frame"):
            load_frames(tmp_path / "one.mp4")
    elif case == "corrupt_image":
        rgb = _clip(T=4, H=16, W=24)
        for t in range(4):
            cv2.imwrite(str(tmp_path / f"f{t}.png"), rgb[t])
        (tmp_path / "f2.png").write_bytes(b"\x89PNG broken")
        with pytest.raises(InputError, match=r"f2.png \(frame 2\) cannot be read"):
            load_frames(tmp_path)
    else:
        with pytest.raises(InputError, match="--stride"):
            FramesConfig(stride=0)
