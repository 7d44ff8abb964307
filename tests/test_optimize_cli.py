"""``vid3d optimize`` on the command line: clear errors (exit 2), frontend run, --demo."""

from __future__ import annotations

import numpy as np
import pytest

import vid3d  # noqa: F401
from vid3d.cli import main


def _run(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
        raise SystemExit(0)
    out = capsys.readouterr()
    return exc.value.code, out.out, out.err


@pytest.mark.parametrize("argv, message", [
    (["optimize", "/nonexistent/clip.mp4", "-o", "x.vid3d.h5"], "does not exist"),
    (["optimize"], "no input"),
    (["optimize", "--demo", "some.mp4"], "either a video or --demo"),
    (["optimize", "a.mp4", "--gaps", "1,x"], "--gaps must be comma-separated"),
    (["optimize", "a.mp4", "--quality", "ultra"], "--quality must be one of"),
    (["optimize", "a.mp4", "--stride", "0"], "--stride must be >= 1"),
    (["optimize", "a.mp4", "--prior", "magic"], "--prior must be one of"),
    (["optimize", "a.mp4", "--device", "tpu"], "--device must be one of"),
    (["optimize", "a.mp4", "--stages", "half"], "--stages must be one of"),
])
def test_bad_input_is_one_line_and_exit_2(argv, message, capsys):
    code, _, err = _run(argv, capsys)
    assert code == 2
    assert err.startswith("error: ") and message in err and "Traceback" not in err


def test_short_clip_drops_the_gaps_it_cannot_hold(tmp_path, capsys):
    from vid3d.formats.bundle import open_bundle
    from vid3d.synthetic import make_clip

    make_clip("tiny_static").write_video(tmp_path / "c.mp4")  # 8 frames: gap 8 does not fit
    out = tmp_path / "c.vid3d.h5"
    code, _, err = _run(["optimize", str(tmp_path / "c.mp4"), "-o", str(out), "--stages", "frontend",
                         "--quality", "draft", "-q"], capsys)
    assert code == 0, err
    assert "gaps 8 do not fit and were dropped" in err
    with open_bundle(out) as b:
        flow = b.meta("decisions")["flow"]
        assert flow["gaps"] == [1, 2, 4, 6] and flow["dropped_gaps"] == [8]
    code, _, err = _run(["optimize", str(tmp_path / "c.mp4"), "--gaps", "8", "-q"], capsys)
    assert code == 2 and "needs at least 9" in err


def test_frames_without_shared_features_are_one_error_line_and_no_bundle(tmp_path, capsys):
    """Random noise decodes fine, but no two frames share a feature: SfM registers nothing and no
    homography relates them. One line, exit 2, nothing under the output name."""
    import dataclasses

    from vid3d.synthetic import make_clip

    clip = make_clip("tiny_static")
    noise = np.random.default_rng(0).integers(0, 256, clip.rgb.shape, dtype=np.uint8)
    dataclasses.replace(clip, rgb=noise).write_video(tmp_path / "noise.mp4")
    out = tmp_path / "noise.vid3d.h5"
    code, _, err = _run(["optimize", str(tmp_path / "noise.mp4"), "-o", str(out), "--stages", "frontend",
                         "--gaps", "1,2", "-q"], capsys)
    assert code == 2, err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert lines[-1].startswith("error: camera poses failed") and "Traceback" not in err
    assert not out.exists()


def test_demo_frontend_end_to_end(tmp_path, capsys, monkeypatch):
    from vid3d.cli import optimize as cli_optimize
    from vid3d.formats.bundle import open_bundle

    monkeypatch.setattr(cli_optimize, "DEMO_PRESET", "tiny_dynamic")  # the real demo is 30 frames of 320x180
    out = tmp_path / "demo.vid3d.h5"
    code, stdout, err = _run(["optimize", "--demo", "-o", str(out), "--stages", "frontend", "--gaps", "1,2,4",
                              "--quality", "draft", "-q"], capsys)
    assert code == 0, err
    assert f"vid3d view {out}" in stdout
    assert (tmp_path / "demo.vid3d.h5.work" / "demo.mp4").is_file()
    with open_bundle(out) as b:
        assert b.num_frames == 8 and b.has("prior") and not b.has("depth")
        assert b.attrs["source"].endswith("demo.mp4")
        assert np.isfinite(b.T_world_camera).all()
