"""Consistency training end to end on tiny synthetic clips (GT poses/K, a stated degraded prior, GT flows).

What is checked (tolerances stated in each test):
- losses go down; outputs have the documented shapes, are finite, depth > 0, confidence in [0, 1];
- static scene: the refined depth agrees across frames better than the prior (reprojection
  disagreement with GT poses drops) and is closer to GT (AbsRel drops);
- dynamic scene: scene flow near zero on static pixels, matching GT motion on the moving objects;
- resume: an interrupted run (Ctrl-C in the loop) leaves only a complete checkpoint, and resuming
  continues the step count and reproduces the uninterrupted run's losses exactly;
- bad input raises one-line InputError/ShapeError.
"""

from __future__ import annotations

import numpy as np
import pytest

import vid3d  # noqa: F401
from train_helpers import interrupted_run
from vid3d.formats.errors import InputError
from vid3d.eval.metrics import temporal_consistency
from vid3d.optimizer.config import OptimizeConfig
from vid3d.optimizer.train import CHECKPOINT_NAME, TrainInputs
from vid3d.optimizer.train import run as train_consistent_depth
from vid3d.optimizer.train.synthetic_inputs import inputs_from_synthetic

DRAFT = OptimizeConfig.preset("draft").train

FAST = dict(warmup_steps=30, joint_steps=90, pairs_per_step=2, train_long_side=32, pixels_per_pair=128,
            num_threads=1)


def _absrel(d, gt, m):
    return float(np.mean(np.abs(d[m] - gt[m]) / gt[m]))


@pytest.fixture(scope="module")
def static_run():
    from vid3d.synthetic import SceneConfig, make_clip

    clip = make_clip(SceneConfig.preset("tiny_static"))
    inputs = inputs_from_synthetic(clip, flow="gt", gaps=(1, 2, 4))
    res = train_consistent_depth(inputs, DRAFT.replace(gaps=(1, 2, 4), **FAST), device="cpu",
                                 progress=False)
    return clip, inputs, res


@pytest.fixture(scope="module")
def dynamic_run():
    from vid3d.synthetic import SceneConfig, make_clip

    clip = make_clip(SceneConfig.preset("tiny_dynamic"))
    inputs = inputs_from_synthetic(clip, flow="gt", gaps=(1, 2, 4))
    cfg = DRAFT.replace(gaps=(1, 2, 4), **{**FAST, "joint_steps": 170})
    res = train_consistent_depth(inputs, cfg, device="cpu", progress=False)
    return clip, inputs, res


def test_outputs_and_losses_go_down(static_run):
    clip, inputs, res = static_run
    T, H, W = clip.depth.shape
    assert res.depth.shape == (T, H, W) and res.depth.dtype == np.float32
    assert res.confidence.shape == (T, H, W) and res.scene_flow.shape == (T, H, W, 3)
    assert np.isfinite(res.depth).all() and (res.depth > 0).all()
    assert res.confidence.min() >= 0 and res.confidence.max() <= 1 and res.confidence.mean() > 0.2
    assert np.all(res.scene_flow[-1] == 0)
    n = FAST["warmup_steps"] + FAST["joint_steps"]
    assert all(len(v) == n for v in res.losses.values())
    px = res.losses["flow_px"]
    assert px[-10:].mean() < 0.5 * px[:10].mean()  # reprojection error against the flow halves at least
    w = FAST["warmup_steps"]
    assert res.losses["flow"][w - 10:w].mean() < res.losses["flow"][:10].mean()  # warm-up (L2) goes down
    assert {"train_s", "fuse_s", "s_per_step"} <= set(res.timings)
    assert res.report["steps"] == n and res.report["resumed_from_step"] == 0


def test_static_scene_becomes_consistent(static_run):
    clip, inputs, res = static_run
    before = temporal_consistency(inputs.prior_depth, clip.K, clip.T_world_camera)
    after = temporal_consistency(res.depth, clip.K, clip.T_world_camera)
    # the prior's per-frame scale errors (+-15 %) make consecutive frames disagree by several %;
    # after training they agree at least 2x better
    assert after.mean_rel < 0.5 * before.mean_rel, (before, after)
    assert res.report["fusion_support_mean"] > 1  # static pixels were averaged over neighbouring views
    everywhere = clip.depth > 0
    assert _absrel(res.depth, clip.depth, everywhere) < 0.75 * _absrel(inputs.prior_depth, clip.depth, everywhere)
    # a static scene: scene flow stays small next to the camera's own motion per frame
    cam_step = np.linalg.norm(np.diff(clip.T_world_camera[:, :3, 3], axis=0), axis=-1).mean()
    assert np.linalg.norm(res.scene_flow[:-1], axis=-1).mean() < 0.5 * cam_step


def test_dynamic_scene_flow(dynamic_run):
    clip, inputs, res = dynamic_run
    dyn = clip.dynamic_mask[:-1]
    sf, gt = res.scene_flow[:-1], clip.scene_flow[:-1]
    # static pixels that the data constrain: seen again in the next frame
    seen = np.stack([clip.optical_flow(i, i + 1)[1] for i in range(clip.num_frames - 1)])
    gt_speed = np.linalg.norm(gt[dyn], axis=-1).mean()
    static_speed = np.linalg.norm(sf[~dyn & seen], axis=-1).mean()
    dyn_err = np.linalg.norm((sf - gt)[dyn], axis=-1).mean()
    # static pixels: < 25 % of the objects' speed; moving objects: error < 60 % of their speed
    # (tiny clip, 200 steps at 32 px: tolerances for a test, the benchmark measures the real figure)
    assert static_speed < 0.25 * gt_speed, (static_speed, gt_speed)
    assert dyn_err < 0.6 * gt_speed, (dyn_err, gt_speed)
    # and the depth improves over the prior overall
    assert _absrel(res.depth, clip.depth, clip.depth > 0) < _absrel(inputs.prior_depth, clip.depth, clip.depth > 0)


def _tiny_inputs():
    from vid3d.synthetic import SceneConfig, make_clip

    clip = make_clip(SceneConfig.preset("tiny_dynamic").replace(num_frames=4))
    return inputs_from_synthetic(clip, flow="gt", gaps=(1, 2))


TINY = dict(warmup_steps=4, joint_steps=8, pairs_per_step=2, train_long_side=32, pixels_per_pair=64,
            checkpoint_every=3, gaps=(1, 2), num_threads=1)


def test_interrupt_and_resume_reproduce_the_uninterrupted_run(tmp_path):
    inputs = _tiny_inputs()
    cfg = DRAFT.replace(**TINY)
    full = train_consistent_depth(inputs, cfg, device="cpu", progress=False)

    ck = tmp_path / "ck"
    interrupted_run(inputs, cfg, ck, stop_at=6)
    assert sorted(p.name for p in ck.iterdir()) == [CHECKPOINT_NAME]  # no temp files left behind
    import torch

    assert torch.load(ck / CHECKPOINT_NAME, weights_only=False)["step"] == 6
    resumed = train_consistent_depth(inputs, cfg, device="cpu", checkpoint_dir=ck, resume=True, progress=False)
    assert resumed.report["resumed_from_step"] == 6
    assert len(resumed.losses["total"]) == cfg.total_steps
    np.testing.assert_allclose(resumed.losses["total"], full.losses["total"], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(resumed.depth, full.depth, rtol=1e-3, atol=1e-4)
    # resume=False starts over (ignores the checkpoint); a checkpoint of another config is refused
    again = train_consistent_depth(inputs, cfg, device="cpu", checkpoint_dir=ck, resume=False, progress=False)
    assert again.report["resumed_from_step"] == 0
    with pytest.raises(InputError, match="another clip or config"):
        train_consistent_depth(inputs, cfg.replace(mlp_lr=2e-3), device="cpu", checkpoint_dir=ck, resume=True,
                               progress=False)
    with pytest.raises(InputError, match="other_checkpoint"):
        train_consistent_depth(inputs, cfg, device="cpu", checkpoint_dir=ck, resume=True, progress=False,
                               other_checkpoint="ignore")
    # ... unless asked to train over it (the pipeline, after a rerun with another config)
    other = train_consistent_depth(inputs, cfg.replace(mlp_lr=2e-3), device="cpu", checkpoint_dir=ck, resume=True,
                                   progress=False, other_checkpoint="restart")
    assert other.report["resumed_from_step"] == 0
    assert torch.load(ck / CHECKPOINT_NAME, weights_only=False)["step"] == cfg.total_steps


def test_bad_inputs_raise_clear_errors():
    inputs = _tiny_inputs()
    with pytest.raises(InputError, match="no forward flow pair"):
        train_consistent_depth(TrainInputs(**{**inputs.__dict__, "flows": {(1, 0): inputs.flows[(1, 0)]}}),
                               DRAFT.replace(**TINY), device="cpu", progress=False)
    with pytest.raises(InputError):
        train_consistent_depth(inputs.__dict__, DRAFT.replace(**TINY), device="cpu")
    with pytest.raises(InputError):
        train_consistent_depth(inputs, DRAFT.replace(**TINY), device="tpu", progress=False)


@pytest.mark.parametrize("backend", ["geometric", "midas", "pydnet+hybrid"])
def test_the_prior_backend_picks_the_prior_terms(backend, monkeypatch):
    import dataclasses

    from vid3d.optimizer.train import stage

    seen = []
    real = stage.Trainer

    def recording(clip, cfg, device, terms):
        seen.append(terms)
        return real(clip, cfg, device, terms)

    monkeypatch.setattr(stage, "Trainer", recording)
    cfg = DRAFT.replace(**{**TINY, "warmup_steps": 1, "joint_steps": 1})
    res = train_consistent_depth(dataclasses.replace(_tiny_inputs(), prior_backend=backend), cfg, device="cpu",
                                 progress=False)
    assert seen == [cfg.prior_terms(backend)] and res.report["prior_backend"] == backend
    want = {"midas": cfg.learned_prior, "geometric": cfg.geometric_prior, "pydnet+hybrid": cfg.hybrid_prior}
    assert seen[0] == want[backend]
    # a hybrid prior trains the residual model even with the network's weights at hand
    assert cfg.depth_model_for(backend, "net.tflite") == "residual"
    assert cfg.depth_model_for("pydnet", "net.tflite") == "finetune"


def test_under_a_plane_sweep_prior_movers_are_placed_again_on_their_contact():
    """People on the floor under a geometric prior: after training, each is placed again on its ground
    contact in the refined static depth (their trained depth got no gradient); a hybrid prior's
    movers (the network's depth) are not."""
    import dataclasses

    from vid3d.eval.metrics import evaluate_depth
    from vid3d.optimizer.prior.movers import hidden_depth
    from vid3d.synthetic import SceneConfig, make_clip

    clip = make_clip(SceneConfig.preset("walkers").replace(height=72, width=128, num_frames=4))
    moving = clip.dynamic_mask
    # the prior a plane sweep would give: the floor and walls right, the people at the wall behind them
    behind = np.stack([hidden_depth(clip.depth[t], moving[t]) for t in range(4)])
    conf = np.where(moving, 0.0, 1.0).astype(np.float32)
    base = inputs_from_synthetic(clip, flow="gt", gaps=(1, 2))
    inputs = dataclasses.replace(base, prior_depth=behind, prior_confidence=conf, prior_backend="geometric")
    cfg = DRAFT.replace(**{**TINY, "checkpoint_every": 100})
    res = train_consistent_depth(inputs, cfg, device="cpu", progress=False)
    assert res.report["movers_placed_fraction"] > 0.9
    err = evaluate_depth(res.depth, clip.depth, dynamic_mask=moving, align="none").dynamic.abs_rel
    before = evaluate_depth(behind, clip.depth, dynamic_mask=moving, align="none").dynamic.abs_rel
    assert err < 0.15 < before, (err, before)
    hybrid = train_consistent_depth(dataclasses.replace(inputs, prior_backend="pydnet+hybrid"), cfg, device="cpu",
                                    progress=False)
    assert hybrid.report["movers_placed_fraction"] == 0.0
