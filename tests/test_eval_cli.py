"""`vid3d eval` end to end: a bundle against its ground truth, a degraded bundle, bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest

from vid3d.cli import main
from vid3d.formats.bundle import write_bundle
from vid3d.formats.conventions import scale_intrinsics
from vid3d.eval.report import evaluate_bundle
from vid3d.synthetic import SceneConfig, make_clip


@pytest.fixture(scope="module")
def clip():
    return make_clip(SceneConfig.preset("tiny_dynamic"))


@pytest.fixture(scope="module")
def gt_bundle(clip, tmp_path_factory):
    return clip.to_bundle(tmp_path_factory.mktemp("gt") / "gt.vid3d.h5")


def _run(argv):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    return exc.value.code


def test_eval_bundle_against_itself(gt_bundle, tmp_path, capsys):
    out = tmp_path / "report.json"
    code = _run(["eval", str(gt_bundle), "--gt", str(gt_bundle), "--json", str(out)])
    assert code in (0, None)
    text = capsys.readouterr().out
    assert "AbsRel" in text and "ATE" in text and "temporal consistency" in text
    report = json.loads(out.read_text())
    assert report["depth"]["overall"]["abs_rel"] < 1e-3  # f16 storage
    assert report["depth"]["dynamic"]["num_pixels"] > 0
    assert report["trajectory"]["ate_rmse"] < 1e-5
    assert report["intrinsics"]["focal_rel_error"] < 1e-6
    assert report["temporal"]["median_rel"] < 1e-3


def test_eval_degraded_half_resolution_prior_bundle(clip, gt_bundle, tmp_path):
    """A prior-only bundle at half resolution, every other frame, depth x2 with +-10 % error, poses x2."""
    frames = np.arange(0, 8, 2)
    rgb = clip.rgb[frames][:, ::2, ::2]
    depth = 2.0 * clip.depth[frames][:, ::2, ::2]
    factor = np.where((np.arange(depth.size) % 2 == 0).reshape(depth.shape), 1.1, 0.9)
    T = clip.T_world_camera[frames].copy()
    T[:, :3, 3] *= 2.0
    K = scale_intrinsics(clip.K, 0.5, 0.5)
    path = write_bundle(tmp_path / "pred.vid3d.h5", rgb=rgb, T_world_camera=T, K=K, fps=15.0, source="test",
                        source_frames=frames.astype(np.int32), prior=depth * factor)
    r = evaluate_bundle(path, gt_bundle)
    assert r.depth_field == "prior" and r.num_frames == 4
    assert any("no /depth/z" in n for n in r.notes) and any("resized" in n for n in r.notes)
    assert 0.5 / 1.1 - 0.01 < r.depth.scale < 0.5 / 0.9 + 0.01  # the median ratio of a +-10 % checkerboard
    assert 0.05 < r.depth.overall.abs_rel < 0.3
    assert r.trajectory.sim3_scale == pytest.approx(0.5, rel=1e-3) and r.trajectory.ate_rmse < 1e-3
    assert r.intrinsics.focal_rel_error < 1e-3  # K scaled back to GT pixels
    assert r.temporal.mean_rel > 0.05  # the injected +-10 % checkerboard disagrees between frames
    exact = write_bundle(tmp_path / "exact.vid3d.h5", rgb=rgb, T_world_camera=T, K=K, fps=15.0, source="test",
                         source_frames=frames.astype(np.int32), prior=depth)
    assert evaluate_bundle(exact, gt_bundle, depth="prior").temporal.mean_rel < 0.5 * r.temporal.mean_rel


def test_eval_bad_gt_path_is_one_line_error(gt_bundle, tmp_path, capsys):
    code = _run(["eval", str(gt_bundle), "--gt", str(tmp_path / "nope")])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "\n" not in err and "does not exist" in err


def test_eval_bad_options(gt_bundle, tmp_path, capsys):
    assert _run(["eval", str(gt_bundle), "--gt", str(gt_bundle), "--align", "affine"]) == 2
    assert "align" in capsys.readouterr().err
    assert _run(["eval", str(tmp_path / "missing.vid3d.h5"), "--gt", str(gt_bundle)]) == 2
    short = make_clip(SceneConfig.preset("tiny_static").replace(num_frames=3)).to_bundle(tmp_path / "short.vid3d.h5")
    assert _run(["eval", str(gt_bundle), "--gt", str(short)]) == 2  # source frames beyond the GT
    assert "ground truth has 3 frames" in capsys.readouterr().err
