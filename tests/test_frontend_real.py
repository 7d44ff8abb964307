"""The whole frontend on a real clip of ../shared/data that nobody here tuned on, against its ground truth.

The Open3D RGB-D fixture is 5 frames (640x480 JPEG, a rendered living room, 10 cm of travel, 3 deg of
turn): shorter than the largest flow gap, little parallax, a focal that is only weakly observed. Plain
pycolmap with its defaults registers none of it. Skipped when ../shared/data is absent.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

import vid3d  # noqa: F401


@pytest.mark.slow
@pytest.mark.shared_data
def test_open3d_fixture_is_posed_with_its_focal_and_no_flat_frame(shared_data, tmp_path):
    import h5py

    from vid3d.eval.groundtruth import read_open3d_rgbd
    from vid3d.eval.report import evaluate_bundle
    from vid3d.formats.bundle import open_bundle
    from vid3d.optimizer.config import OptimizeConfig
    from vid3d.optimizer.pipeline import run_optimize

    config = OptimizeConfig.preset("standard").replace(stages="frontend")
    config = config.replace(prior=config.prior.replace(backend="geometric"))
    out = tmp_path / "o3d.vid3d.h5"
    run_optimize(shared_data / "open3d_testdata_rgbd" / "color", out, config, progress=False)

    with h5py.File(out) as f:
        decisions = json.loads(f["/meta/decisions"][()])
    poses = decisions["poses"]
    assert poses["registered"] == 5 and poses["motion_model"] == "translating"
    assert decisions["prior"]["constant_frames"] == []
    with open_bundle(out) as b:
        assert b.read("dynamic_mask").mean() < 0.02  # a static scene
        depth = b.read("prior")
    assert all(np.ptp(d) > 0 for d in depth)

    rep = evaluate_bundle(out, read_open3d_rgbd(shared_data / "open3d_testdata_rgbd"), depth="prior")
    assert rep.trajectory.ate_percent_of_path < 1.0
    assert rep.intrinsics.focal_rel_error < 0.05
