"""``vid3d render``: renders a tiny synthetic bundle with every effect, decodes the video back, and
exits 2 with one-line errors on bad parameters or a bad bundle, leaving no half-written video."""

from __future__ import annotations

import numpy as np
import pytest

from vid3d.cli import main
from vid3d.viewer.render import read_video


@pytest.fixture(scope="module")
def tiny_bundle(tmp_path_factory):
    from vid3d.synthetic import SceneConfig, make_clip

    path = tmp_path_factory.mktemp("bundle") / "tiny.vid3d.h5"
    make_clip(SceneConfig.preset("tiny_dynamic")).to_bundle(path)
    return path


def _run(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["render", *argv])
        raise SystemExit(0)
    out = capsys.readouterr()
    return exc.value.code, out.out, out.err


@pytest.mark.parametrize("effect", ["pointcloud", "depth", "bokeh", "dolly", "orbit", "side-by-side"])
def test_render_each_effect_writes_a_playable_h264_video(tiny_bundle, tmp_path, capsys, effect):
    out = tmp_path / f"{effect}.mp4"
    code, stdout, stderr = _run([str(tiny_bundle), "--effect", effect, "-o", str(out), "--frames", "1:8:2",
                                 "--device", "cpu", "-q"], capsys)
    assert code == 0, stderr
    frames, codec = read_video(out)
    width = 96 * 3 if effect == "side-by-side" else 96
    assert frames.shape == (4, 64, width, 3)  # frames 1, 3, 5, 7
    assert codec == "h264" and "codec libx264 (H.264)" in stdout
    assert frames.std() > 5  # not a blank video
    assert [p.name for p in tmp_path.iterdir()] == [out.name]  # no temporary file left behind


def test_render_resolution_fps_and_depth_prior_fallback(tmp_path, capsys):
    from vid3d.formats.bundle import write_bundle
    from vid3d.synthetic import SceneConfig, make_clip

    clip = make_clip(SceneConfig.preset("tiny_static"))
    path = tmp_path / "prior_only.vid3d.h5"
    write_bundle(path, rgb=clip.rgb, T_world_camera=clip.T_world_camera, K=clip.K, fps=clip.fps, source="test",
                 prior=clip.depth)
    out = tmp_path / "dolly.mp4"
    code, stdout, stderr = _run([str(path), "--effect", "dolly", "-o", str(out), "--width", "48", "--height", "32",
                                 "--fps", "12", "-q"], capsys)
    assert code == 0, stderr
    assert "/depth/prior" in stderr and "depth from /depth/prior" in stdout
    frames, _ = read_video(out)
    assert frames.shape == (clip.num_frames, 32, 48, 3)
    import av

    with av.open(str(out)) as c:
        assert float(c.streams.video[0].average_rate) == pytest.approx(12.0)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--effect", "sparkles"], "--effect"),
        (["--width", "33"], "--width"),
        (["--dolly-strength", "-2"], "--dolly-strength"),
        (["--aperture", "-1"], "--aperture"),
        (["--frames", "5:2"], "--frames"),
        (["--frames", "a:b"], "--frames"),
        (["--device", "tpu"], "device"),
        (["--orbit-degrees", "400"], "--orbit-degrees"),
    ],
)
def test_bad_parameters_exit_2_with_one_line_error(tiny_bundle, tmp_path, capsys, args, message):
    out = tmp_path / "x.mp4"
    code, _, stderr = _run([str(tiny_bundle), "-o", str(out), "-q", *args], capsys)
    assert code == 2
    assert stderr.startswith("error: ") and message in stderr and stderr.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_bad_bundle_exits_2(tmp_path, capsys):
    junk = tmp_path / "junk.vid3d.h5"
    junk.write_bytes(b"not hdf5")
    code, _, stderr = _run([str(junk), "-o", str(tmp_path / "x.mp4"), "-q"], capsys)
    assert code == 2 and stderr.startswith("error: ") and "HDF5" in stderr
    code, _, stderr = _run([str(tmp_path / "missing.vid3d.h5"), "-o", str(tmp_path / "x.mp4"), "-q"], capsys)
    assert code == 2 and "no such file" in stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["junk.vid3d.h5"]
