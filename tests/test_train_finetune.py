"""The fine-tuned prior network as the training's depth model (``TrainConfig.depth_model = "finetune"``).

A tiny random PyDNet (``build_graph``; its last bias set to 1 so the disparity is positive, like a
trained net's) is saved to a temporary file and makes the prior of ``tiny_static`` (its disparity,
mapped per frame by a positive affine in inverse depth to the scene's scale, as the prior stage
aligns it to SfM points). Checked:

- (a) at step 0 the fine-tuned model's depth is the aligned prior: to 1e-3 in the reference's form
  (the network's own depth) at the prior's resolution, exactly (1e-5) when anchored, at any resolution;
- (b) a few training steps (GT poses and flows, a degraded-GT prior) reduce the reprojection error
  and the depth error and change every network weight, by a little;
- (c) an interrupted run resumed from its checkpoint reproduces the uninterrupted one (losses, depth,
  network weights); a checkpoint made with other network weights is refused;
- (d) ``auto`` picks finetune only for a pydnet prior with its weights; finetune without weights and
  bad settings raise InputError.
"""

from __future__ import annotations

import dataclasses
import shutil

import numpy as np
import pytest
import torch

import vid3d  # noqa: F401
from train_helpers import interrupted_run
from vid3d.formats.errors import InputError
from vid3d.optimizer.config import OptimizeConfig
from vid3d.optimizer.prior.pydnet import PyDNet, PyDNetSpec, build_graph, pydnet_disparity, save_graph
from vid3d.optimizer.train import CHECKPOINT_NAME, TrainConfig, TrainInputs
from vid3d.optimizer.train import run as train_consistent_depth
from vid3d.optimizer.train.finetune import FinetunedDepthModel, load_prior_net
from vid3d.optimizer.train.fuse import low_res_depth
from vid3d.optimizer.train.pairs import make_pairs
from vid3d.optimizer.train.prepare import prepare_clip
from vid3d.optimizer.train.synthetic_inputs import flows_for, inputs_from_synthetic
from vid3d.optimizer.train.trainer import make_depth_model

SPEC = PyDNetSpec(height=64, width=96, encoder=(4, 6, 8), decoder=(6, 4))  # multiple 8; tiny_static is 64x96
FAST = dict(warmup_steps=10, joint_steps=30, pairs_per_step=2, finetune_long_side=96, pixels_per_pair=128,
            gaps=(1, 2, 4), finetune_lr=1e-4, num_threads=1, checkpoint_every=5)


def _tiny_net_file(path, seed: int = 0):
    g = build_graph(SPEC, seed=seed)
    last = [op for op in g.ops if op.kind == "CONV_2D"][-1]
    g.constants[last.inputs[2]][:] = 1.0  # positive disparity everywhere
    return save_graph(g, path)


@pytest.fixture(scope="module")
def clip():
    from vid3d.synthetic import SceneConfig, make_clip

    return make_clip(SceneConfig.preset("tiny_static"))


@pytest.fixture(scope="module")
def net_file(tmp_path_factory):
    return _tiny_net_file(tmp_path_factory.mktemp("pydnet") / "pydnet_tiny.npz")


def _aligned_prior(clip, weights) -> np.ndarray:
    """(T, H, W) depth: the net's disparity at the clip's size, mapped per frame to inverse depth by
    an affine with a positive scale (a random net's disparity is not GT's: the scale of the GT fit
    can come out negative) and the GT's median inverse depth."""
    disp = pydnet_disparity(clip.rgb, weights=weights, size=clip.rgb.shape[1:3])
    rng = np.random.default_rng(0)
    out = np.empty_like(disp)
    for t in range(len(disp)):
        target = np.median(1.0 / clip.depth[t])
        s = rng.uniform(0.5, 1.5) * target / np.median(disp[t])
        inv = s * disp[t] + rng.uniform(0.0, 0.5) * target
        out[t] = 1.0 / np.maximum(inv, 0.02 * np.median(inv))
    return out


@pytest.fixture(scope="module")
def inputs(clip, net_file):
    return TrainInputs(rgb=clip.rgb, K=clip.K, T_world_camera=clip.T_world_camera,
                       prior_depth=_aligned_prior(clip, net_file),
                       flows=flows_for(clip.num_frames, (1, 2, 4), clip.optical_flow),
                       prior_backend="pydnet", prior_weights=str(net_file))


@pytest.fixture(scope="module")
def trained_inputs(clip, net_file):
    """tiny_static's degraded-GT prior (``inputs_from_synthetic``: per-frame scale +-15 %, smooth
    distortion, noise), said to come from the tiny pydnet: a random net's own depth has no structure
    the flows could confirm, so the training tests start from a prior that is roughly right."""
    return dataclasses.replace(inputs_from_synthetic(clip, flow="gt", gaps=(1, 2, 4)), prior_backend="pydnet",
                               prior_weights=str(net_file))


def _model(inputs, cfg):
    net = load_prior_net(inputs.prior_weights)
    pairs = make_pairs(inputs.num_frames, cfg.gaps, inputs.flows.keys())
    clip = prepare_clip(inputs, pairs, cfg.finetune_long_side, torch.device("cpu"), multiple=net.multiple,
                        prior_net=net)
    return clip, make_depth_model(clip, cfg, torch.device("cpu"))


# --- (a) step 0 is the prior ---------------------------------------------------------------------


def test_step0_reproduces_the_prior_made_by_the_same_net(inputs):
    cfg = TrainConfig(**FAST, finetune_anchored=False)
    clip, model = _model(inputs, cfg)
    assert isinstance(model, FinetunedDepthModel) and clip.size == (64, 96)
    z0 = low_res_depth(model, clip).numpy()  # (T, h, w)
    rel = np.abs(z0 / np.exp(clip.log_prior[:, 0].numpy()) - 1)
    assert np.median(rel) < 1e-4 and np.quantile(rel, 0.99) < 1e-3, (np.median(rel), rel.max())
    # the affine fit is what does it: e^alpha scales, the shift is free
    assert np.all(model.frame_scales() > 0)


@pytest.mark.parametrize("long_side", [96, 48])
def test_anchored_step0_is_the_prior_exactly_at_any_resolution(inputs, long_side):
    cfg = TrainConfig(**{**FAST, "finetune_long_side": long_side, "finetune_full_res": "ratio"})
    clip, model = _model(inputs, cfg)
    assert clip.size[1] == long_side and clip.size[0] % 8 == 0
    z0 = low_res_depth(model, clip).numpy()
    np.testing.assert_allclose(z0, np.exp(clip.log_prior[:, 0].numpy()), rtol=1e-5)
    full = model.full_resolution_depth(2, clip.rgb[2], clip.log_prior[2], torch.from_numpy(clip.prior_full[2]))
    np.testing.assert_allclose(full.numpy(), clip.prior_full[2], rtol=1e-5)  # "ratio": the prior's own detail


def test_full_resolution_modes(inputs):
    cfg = TrainConfig(**{**FAST, "finetune_long_side": 48})
    clip, model = _model(inputs, cfg)
    prior_full = torch.from_numpy(clip.prior_full[1])
    out = {}
    for mode in ("upsample", "ratio", "network"):
        model.full_res = mode
        out[mode] = model.full_resolution_depth(1, clip.rgb[1], clip.log_prior[1], prior_full).numpy()
        assert out[mode].shape == clip.full_size and np.isfinite(out[mode]).all() and (out[mode] > 0).all()
    # upsample: the training-resolution (32x48) depth, smooth; the same scale as the prior
    assert abs(np.median(out["upsample"] / clip.prior_full[1]) - 1) < 0.05
    assert abs(np.median(out["network"] / clip.prior_full[1]) - 1) < 0.2
    with pytest.raises(InputError, match="finetune_full_res"):
        FinetunedDepthModel(clip.prior_net, clip.rgb, clip.log_prior, d_ref=clip.d_ref, full_res="bicubic")


# --- (b) training trains the network ------------------------------------------------------------


def test_training_reduces_flow_error_and_changes_the_weights(clip, trained_inputs, net_file, tmp_path):
    cfg = TrainConfig(**FAST)
    res = train_consistent_depth(trained_inputs, cfg, device="cpu", checkpoint_dir=tmp_path, progress=False)
    assert res.report["depth_model"] == "finetune" and res.report["train_size"] == [64, 96]
    T, H, W = clip.rgb.shape[:3]
    assert res.depth.shape == (T, H, W) and np.isfinite(res.depth).all() and (res.depth > 0).all()
    px = res.losses["flow_px"]
    assert px[-5:].mean() < 0.6 * px[:5].mean(), px  # measured 1.11 -> 0.44 px
    absrel = lambda d: float(np.mean(np.abs(d - clip.depth) / clip.depth))  # noqa: E731
    assert absrel(res.depth) < 0.85 * absrel(trained_inputs.prior_depth)  # measured 0.096 -> 0.064
    state = torch.load(tmp_path / CHECKPOINT_NAME, weights_only=False)["depth"]
    initial = PyDNet.load(net_file).state_dict()
    changed = [not torch.equal(state[f"net.{k}"], v) for k, v in initial.items()]
    assert len(changed) == 2 * sum(op.kind == "CONV_2D" for op in PyDNet.load(net_file).graph.ops)
    assert all(changed)  # every conv weight and bias was trained
    delta = max(float((state[f"net.{k}"] - v).abs().max()) for k, v in initial.items())
    assert 0 < delta < 0.1  # a small learning rate: fine-tuned, not re-learned


# --- (c) checkpoint and resume -----------------------------------------------------------------


def test_resume_restores_the_network_weights(trained_inputs, tmp_path):
    inputs = trained_inputs
    cfg = TrainConfig(**{**FAST, "warmup_steps": 3, "joint_steps": 7, "checkpoint_every": 3})
    full = train_consistent_depth(inputs, cfg, device="cpu", checkpoint_dir=tmp_path / "full", progress=False)

    ck = tmp_path / "ck"
    interrupted_run(inputs, cfg, ck, stop_at=6)
    assert torch.load(ck / CHECKPOINT_NAME, weights_only=False)["step"] == 6
    resumed = train_consistent_depth(inputs, cfg, device="cpu", checkpoint_dir=ck, resume=True, progress=False)
    assert resumed.report["resumed_from_step"] == 6
    np.testing.assert_allclose(resumed.losses["total"], full.losses["total"], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(resumed.depth, full.depth, rtol=1e-3, atol=1e-4)
    a = torch.load(ck / CHECKPOINT_NAME, weights_only=False)["depth"]
    b = torch.load(tmp_path / "full" / CHECKPOINT_NAME, weights_only=False)["depth"]
    for k in b:
        if k.startswith("net."):
            torch.testing.assert_close(a[k], b[k], rtol=1e-4, atol=1e-6)
    # other network weights (same path name, other content) do not resume this checkpoint
    (tmp_path / "other").mkdir()
    other = _tiny_net_file(tmp_path / "other" / "pydnet_tiny.npz", seed=1)
    with pytest.raises(InputError, match="another clip or config"):
        train_consistent_depth(dataclasses.replace(inputs, prior_weights=str(other)), cfg, device="cpu",
                               checkpoint_dir=ck, resume=True, progress=False)


# --- (d) which model ----------------------------------------------------------------------------


def test_auto_picks_finetune_only_for_pydnet_with_weights(net_file):
    cfg = TrainConfig()
    w = str(net_file)
    assert cfg.depth_model == "auto"
    assert cfg.depth_model_for("pydnet", w) == "finetune"
    assert cfg.depth_model_for("pydnet", None) == "residual"
    for backend in ("geometric", "midas", "depth_anything"):
        assert cfg.depth_model_for(backend, w) == "residual"
    assert cfg.replace(depth_model="residual").depth_model_for("pydnet", w) == "residual"
    assert cfg.replace(depth_model="finetune").depth_model_for("midas", w) == "finetune"
    with pytest.raises(InputError, match="needs the prior network's weights"):
        cfg.replace(depth_model="finetune").depth_model_for("pydnet", None)


def test_run_without_weights_trains_the_residual_model(inputs):
    cfg = TrainConfig(**{**FAST, "warmup_steps": 1, "joint_steps": 1, "train_long_side": 32})
    res = train_consistent_depth(dataclasses.replace(inputs, prior_weights=None), cfg, device="cpu", progress=False)
    assert res.report["depth_model"] == "residual" and res.report["train_size"] == [24, 32]


def test_bad_settings_raise_input_error(inputs, tmp_path):
    for bad in (dict(depth_model="midas"), dict(finetune_full_res="bicubic"), dict(finetune_long_side=8),
                dict(finetune_lr=-1.0)):
        with pytest.raises(InputError):
            TrainConfig(**bad)
    with pytest.raises(InputError, match="prior_weights"):
        train_consistent_depth(dataclasses.replace(inputs, prior_weights=str(tmp_path / "missing.tflite")),
                               TrainConfig(**FAST), device="cpu", progress=False)
    shutil.copy(inputs.prior_weights, tmp_path / "copy.npz")  # a copy with the same content is fine
    dataclasses.replace(inputs, prior_weights=str(tmp_path / "copy.npz")).validate()


def test_the_pipeline_fine_tunes_a_pydnet_prior(net_file, tmp_path):
    """``--prior pydnet --prior-weights FILE`` with a pure learned prior (``hybrid=False``): the training gets
    the weights and fine-tunes them (a hybrid prior, the default, trains the residual model)."""
    from vid3d.formats.bundle import open_bundle
    from vid3d.optimizer.pipeline import run_optimize
    from vid3d.synthetic import SceneConfig, make_clip

    video = make_clip(SceneConfig.preset("tiny_dynamic").replace(num_frames=9)).write_video(tmp_path / "clip.mp4")
    cfg = OptimizeConfig.preset("draft")
    cfg = cfg.replace(flow=cfg.flow.replace(gaps=(1, 2, 4)), prior=cfg.prior.replace(backend="pydnet", weights=str(net_file),
                                                                                         hybrid=False),
                      train=cfg.train.replace(warmup_steps=1, joint_steps=2, num_threads=1))
    run_optimize(video, tmp_path / "clip.vid3d.h5", cfg, progress=False)
    with open_bundle(tmp_path / "clip.vid3d.h5") as b:
        decisions = b.meta("decisions")
        assert b.has("depth")
    assert decisions["prior"]["backend"] == "pydnet"
    assert decisions["train"]["depth_model"] == "finetune" and decisions["train"]["train_size"] == [64, 96]
