"""Stage cache and the frontend pipeline end to end on a tiny synthetic video."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import vid3d  # noqa: F401
from vid3d.formats.errors import InputError
from vid3d.optimizer.config import OptimizeConfig
from vid3d.optimizer.flow import FlowConfig, FlowSet
from vid3d.optimizer.frames import Frames, frames_from_array
from vid3d.optimizer.workdir import StageCache, load_dataclass, save_dataclass, stage_key, work_dir_for


@pytest.fixture(scope="module")
def tiny_video(tmp_path_factory) -> Path:
    from vid3d.synthetic import SceneConfig, make_clip

    path = tmp_path_factory.mktemp("video") / "clip.mp4"
    make_clip(SceneConfig.preset("tiny_dynamic").replace(num_frames=9)).write_video(path)
    return path


def _config(**changes) -> OptimizeConfig:
    cfg = OptimizeConfig.preset("draft", stages="frontend")
    return cfg.replace(flow=cfg.flow.replace(gaps=(1, 2, 4)), **changes)


def _with_user_masks(folder) -> OptimizeConfig:
    cfg = _config()
    return cfg.replace(masks=cfg.masks.replace(user_masks=str(folder)))


def test_dataclass_round_trip(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 255, (3, 8, 12, 3), dtype=np.uint8)
    fr = frames_from_array(rgb, fps=12.0)
    back = load_dataclass(Frames, save_dataclass(fr, tmp_path / "f.npz"))
    np.testing.assert_array_equal(back.rgb, fr.rgb)
    assert back.source_size == fr.source_size and isinstance(back.source_size, tuple)
    assert back.fps == 12.0 and back.dropped_black == ()
    fs = FlowSet(pairs=np.array([[0, 1]], np.int32), flow=np.zeros((1, 8, 12, 2), np.float32),
                 valid=np.ones((1, 8, 12), bool), backend="dis:fast", report={"a": [1, 2], "b": {"c": 1.5}})
    back = load_dataclass(FlowSet, save_dataclass(fs, tmp_path / "g.npz"))
    assert back.report == fs.report and back.valid.dtype == bool
    assert not list(tmp_path.glob(".*partial"))  # atomic: no temp file left


def test_stage_cache_hits_misses_and_force(tmp_path):
    calls = []

    def compute():
        calls.append(1)
        return frames_from_array(np.full((2, 4, 4, 3), 100, np.uint8))

    key = stage_key("frames", "fp", FlowConfig())
    cache = StageCache(tmp_path)
    cache.run("frames", key, Frames, compute)
    cache.run("frames", key, Frames, compute)
    assert len(calls) == 1 and cache.hits == ["frames"]
    other = stage_key("frames", "fp", FlowConfig(gaps=(1, 2)))
    assert other != key
    cache.run("frames", other, Frames, compute)
    assert len(calls) == 2 and len(list(tmp_path.glob("frames-*.npz"))) == 1  # the stale entry is replaced
    StageCache(tmp_path, force=True).run("frames", other, Frames, compute)
    assert len(calls) == 3
    assert work_dir_for("a/clip.vid3d.h5") == Path("a/clip.vid3d.h5.work")


def test_frontend_writes_a_valid_bundle_and_resumes(tiny_video, tmp_path):
    from vid3d.formats.bundle import open_bundle
    from vid3d.optimizer.pipeline import run_optimize

    out = tmp_path / "clip.vid3d.h5"
    res = run_optimize(tiny_video, out, _config(), progress=False)
    with open_bundle(out) as b:
        assert b.num_frames == 9 and (b.height, b.width) == (64, 96)
        assert b.has("prior") and b.has("dynamic_mask") and not b.has("depth")
        np.testing.assert_array_equal(b.source_frames, np.arange(9))
        assert b.K.shape == (9, 3, 3) and b.T_world_camera.shape == (9, 4, 4)
        timings = b.meta("timings")
        decisions = b.meta("decisions")
    assert {"frames", "flow", "masks_before_poses", "poses", "masks_after_poses", "poses_remasked", "prior"} <= set(timings)
    assert decisions["resolution"] == [96, 64] and decisions["poses"]["frames"] == 9
    assert "backend" in decisions["prior"]
    assert res.cached == ()

    again = run_optimize(tiny_video, out, _config(), progress=False)
    assert set(again.cached) == {"frames", "flow", "masks_before_poses", "poses", "masks_after_poses", "poses_remasked", "prior"}
    cfg = _config()
    changed = run_optimize(tiny_video, out, cfg.replace(flow=cfg.flow.replace(gaps=(1, 2))), progress=False)
    assert changed.cached == ("frames",)  # new gaps: flow and everything after it recomputed
    forced = run_optimize(tiny_video, out, _config(), force=True, progress=False)
    assert forced.cached == ()


def test_user_masks_reach_the_bundle(tiny_video, tmp_path):
    import cv2

    from vid3d.formats.bundle import open_bundle
    from vid3d.optimizer.pipeline import run_optimize

    masks = tmp_path / "masks"
    masks.mkdir()
    truth = np.zeros((9, 64, 96), bool)
    for t in range(9):
        truth[t, 10:30, 5 + 4 * t: 25 + 4 * t] = True
        cv2.imwrite(str(masks / f"{t:03d}.png"), truth[t].astype(np.uint8) * 255)
    out = tmp_path / "m.vid3d.h5"
    run_optimize(tiny_video, out, _with_user_masks(masks), progress=False)
    with open_bundle(out) as b:
        np.testing.assert_array_equal(b.read("dynamic_mask"), truth)
        assert b.meta("decisions")["masks"]["method"] == "user"


def test_a_failing_stage_writes_nothing(tiny_video, tmp_path, monkeypatch):
    from vid3d.optimizer import pipeline

    def failing(*args, **kwargs):
        raise InputError("consistency training failed on purpose")

    monkeypatch.setattr(pipeline.train, "run", failing)
    out = tmp_path / "all.vid3d.h5"
    with pytest.raises(InputError, match="consistency training failed on purpose"):
        pipeline.run_optimize(tiny_video, out, _config(stages="all"), progress=False)
    assert not out.exists() and not list(tmp_path.glob(".*partial"))
