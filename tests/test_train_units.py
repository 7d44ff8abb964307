"""Units of consistent-depth training: MLP (reference architecture), chaining, losses, pairs, config.

Fast paths are compared with slow twins on tiny seeded inputs; conventions are pinned against the
synthetic clip's exact optical flow.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import vid3d  # noqa: F401
from vid3d.formats.conventions import project_points, unproject_depth
from vid3d.formats.errors import InputError, ShapeError
from vid3d.optimizer.train import TrainConfig, TrainInputs
from vid3d.optimizer.train.config import PriorTerms
from vid3d.optimizer.train import losses as L
from vid3d.optimizer.train.depth_net import PretrainedDepthWrapper, ResidualDepthModel
from vid3d.optimizer.train.pairs import batch_indices, make_pairs, sample_pixels
from vid3d.optimizer.train.scene_flow import SceneFlowField, SceneFlowMLP, periodic_embed


@pytest.fixture(scope="module")
def static_clip():
    from vid3d.synthetic import SceneConfig, make_clip

    return make_clip(SceneConfig.preset("tiny_static"))


# ------------------------------------------------------------------------------ scene-flow MLP
def test_periodic_embed_matches_formula():
    v = torch.tensor([[0.3, -0.7, 1.1]])
    f = torch.linspace(1.0, 17.0, 16)
    e = periodic_embed(v, f)
    assert e.shape == (1, 3 * 33)
    assert torch.allclose(e[0, :3], v[0])
    # channel c, frequency k at 3 + c*16 + k (cos) and 3 + 48 + c*16 + k (sin)
    c, k = 1, 5
    assert torch.allclose(e[0, 3 + c * 16 + k], torch.cos(f[k] * v[0, c]))
    assert torch.allclose(e[0, 3 + 48 + c * 16 + k], torch.sin(f[k] * v[0, c]))


def test_mlp_is_the_reference_architecture():
    torch.manual_seed(0)
    mlp = SceneFlowMLP()
    lin = [m for m in mlp.net if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in lin] == [(132, 256)] + [(256, 256)] * 4 + [(256, 3)]
    acts = [m for m in mlp.net if isinstance(m, torch.nn.LeakyReLU)]
    assert len(acts) == 5 and all(a.negative_slope == 0.2 for a in acts)
    assert all(torch.all(m.bias == 0) for m in lin)
    # Kaiming normal (a = 0.2, fan_in): std = sqrt(2 / (1 + a^2)) / sqrt(fan_in)
    w = lin[1].weight
    expect = np.sqrt(2.0 / (1 + 0.2 ** 2)) / np.sqrt(256)
    assert abs(float(w.detach().std()) - expect) < 0.05 * expect
    assert torch.allclose(mlp.freqs, torch.linspace(1, 17, 16))
    assert mlp.sf_mag_div == 100.0


def test_mlp_linear_equals_conv_reference():
    torch.manual_seed(1)
    mlp = SceneFlowMLP(width=32, n_layers=2)
    xyz = torch.randn(2, 3, 4, 5)
    t = torch.rand(2, 1, 4, 5)
    ref = mlp.forward_conv_reference(xyz, t)
    fast = mlp(xyz.permute(0, 2, 3, 1), t.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
    torch.testing.assert_close(fast, ref, rtol=1e-5, atol=1e-6)


def _field(seed=2, T=10):
    torch.manual_seed(seed)
    mlp = SceneFlowMLP(width=32, n_layers=2, sf_mag_div=10.0)
    return SceneFlowField(mlp, centre=torch.tensor([0.5, -0.2, 3.0]), extent=2.0, num_frames=T)


def test_chain_matches_reference_and_mixed_steps():
    sf = _field()
    X = torch.randn(7, 3, requires_grad=True)
    t = torch.full((7, 1), 0.3)
    for g in (1, 3):
        torch.testing.assert_close(sf.chain(X, t, g), sf.chain_reference(X, t, g))
    steps = torch.tensor([1, 3, 2, 3, 1, 2, 1])
    S = sf.chain(X, t, steps)
    for g in (1, 2, 3):
        sel = steps == g
        torch.testing.assert_close(S[sel], sf.chain_reference(X[sel], t[sel], g))
    # gradients flow through the whole chain
    S.sum().backward()
    assert X.grad is not None and torch.isfinite(X.grad).all() and X.grad.abs().sum() > 0
    # first step is SF(X, t)
    _, first = sf.chain(X, t, steps, return_first=True)
    torch.testing.assert_close(first, sf(X, t))


def test_field_is_unit_invariant():
    """Scaling the world (points, centre, extent) scales the displacement by the same factor."""
    sf = _field()
    X = torch.randn(5, 3)
    t = torch.full((5, 1), 0.1)
    sf2 = SceneFlowField(sf.mlp, centre=sf.centre * 10, extent=float(sf.extent) * 10, num_frames=10)
    torch.testing.assert_close(sf2(X * 10, t), sf(X, t) * 10, rtol=1e-4, atol=1e-6)


# ------------------------------------------------------------------------------ losses
def test_projected_flow_pins_conventions_on_exact_flow(static_clip):
    """GT depth and S = 0 on a static scene reproduce the clip's exact optical flow."""
    c = static_clip
    i, j = 1, 4
    flow, valid = c.optical_flow(i, j)
    H, W = c.height, c.width
    v, u = np.mgrid[0:H, 0:W]
    uv = torch.from_numpy(np.stack([u, v], -1).reshape(1, -1, 2).astype(np.float32) + 0.5)
    z = torch.from_numpy(c.depth[i].reshape(1, -1))
    K = torch.from_numpy(c.K).float()
    Twc = torch.from_numpy(c.T_world_camera).float()
    X = L.unproject_pixels(uv, z, K, Twc[i][None])
    X_ref = unproject_depth(c.depth[i].astype(np.float64), c.K, c.T_world_camera[i]).reshape(1, -1, 3)
    np.testing.assert_allclose(X.numpy(), X_ref, rtol=1e-4, atol=1e-4)
    pred, z_ij = L.projected_flow(X, torch.zeros_like(X), uv, K, Twc[j][None], z_min=1e-3)
    err = (pred[0].numpy() - flow.reshape(-1, 2))[valid.reshape(-1)]
    assert valid.mean() > 0.5
    assert np.abs(err).max() < 2e-2
    # z_ij equals the numpy projection's depth
    _, z_np = project_points(X_ref[0], c.K, c.T_world_camera[j])
    np.testing.assert_allclose(z_ij[0].numpy(), z_np, rtol=1e-4)
    # and the disparity loss is ~0 with frame j's GT depth at the flow target
    zj = L.sample_bilinear(torch.from_numpy(c.depth[j])[None, None], uv + torch.from_numpy(flow).reshape(1, -1, 2))
    m = torch.from_numpy(valid.reshape(1, -1))
    assert float(L.disparity_loss(z_ij, zj[..., 0], m, d_ref=4.0, z_min=1e-3)) < 2e-3
    assert float(L.flow_loss(pred, torch.from_numpy(flow).reshape(1, -1, 2), m, kind="l1")) < 2e-2


def test_projected_flow_matches_numpy_twin():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(2, 6, 3)) + [0, 0, 5]
    S = rng.normal(scale=0.1, size=(2, 6, 3))
    uv = rng.uniform(0, 20, size=(2, 6, 2))
    K = np.array([[30.0, 0, 10], [0, 28, 8], [0, 0, 1]])
    Twc = np.stack([np.eye(4), np.eye(4)])
    Twc[1, :3, 3] = [0.2, -0.1, 0.3]
    th = 0.1
    Twc[1, :3, :3] = [[np.cos(th), 0, np.sin(th)], [0, 1, 0], [-np.sin(th), 0, np.cos(th)]]
    f, z = L.projected_flow(*(torch.tensor(a, dtype=torch.float64) for a in (X, S, uv, K, Twc)), z_min=1e-3)
    for p in range(2):
        for n in range(6):  # slow twin: one point at a time, F = pi(K R^T (X + S - t)) - x
            R, t = Twc[p, :3, :3], Twc[p, :3, 3]
            pc = R.T @ (X[p, n] + S[p, n] - t)
            q = K @ pc
            np.testing.assert_allclose(f[p, n].numpy(), q[:2] / q[2] - uv[p, n], rtol=1e-9, atol=1e-9)
            assert abs(float(z[p, n]) - pc[2]) < 1e-9


def test_sample_bilinear_twin():
    img = torch.arange(20.0).reshape(1, 1, 4, 5)
    uv = torch.tensor([[[0.5, 0.5], [2.5, 1.5], [3.0, 2.0], [1.25, 2.75]]])
    out = L.sample_bilinear(img, uv)[0, :, 0]
    a = img[0, 0].numpy()

    def twin(u, v):  # pixel centres at +0.5
        x, y = u - 0.5, v - 0.5
        x0, y0 = int(np.floor(x)), int(np.floor(y))
        fx, fy = x - x0, y - y0
        return ((1 - fx) * (1 - fy) * a[y0, x0] + fx * (1 - fy) * a[y0, x0 + 1]
                + (1 - fx) * fy * a[y0 + 1, x0] + fx * fy * a[y0 + 1, x0 + 1])

    expect = [a[0, 0], a[1, 2], twin(3.0, 2.0), twin(1.25, 2.75)]
    np.testing.assert_allclose(out.numpy(), expect, rtol=1e-6)


def test_masked_means_and_robust_kinds():
    d = torch.tensor([[1.0, 2.0], [3.0, -4.0]])
    m = torch.tensor([True, False])
    pred = torch.zeros(2, 2)
    assert float(L.flow_loss(pred, d, m, kind="l2")) == pytest.approx(5.0)
    assert float(L.flow_loss(pred, d, m, kind="l1")) == pytest.approx(3.0)
    assert float(L.masked_mean(torch.tensor([1.0, 5.0]), torch.tensor([False, False]))) == 0.0
    sf0 = torch.tensor([[0.1, 0.0, 0.0]])
    assert float(L.constant_velocity_loss(sf0, sf0, px_per_unit=10.0)) == 0.0
    assert float(L.constant_velocity_loss(sf0, 2 * sf0, px_per_unit=10.0)) == pytest.approx(1.0 / 3.0)
    assert float(L.static_flow_loss(sf0, torch.tensor([True]), px_per_unit=10.0)) == pytest.approx(1.0)


# ------------------------------------------------------------------------------ pairs and sampling
def test_pairs_and_batches():
    pairs = make_pairs(60, (1, 2, 4, 6, 8))
    assert len(pairs) == sum(60 - g for g in (1, 2, 4, 6, 8))
    assert all(j - i in (1, 2, 4, 6, 8) and j < 60 for i, j in pairs)
    assert make_pairs(5, (1, 2), available=[(0, 1), (1, 0), (2, 4)]) == [(0, 1), (2, 4)]
    P, B = 10, 4
    seen = np.concatenate([batch_indices(P, B, s, seed=3) for s in range(5)])  # 20 = 2 epochs
    assert sorted(seen[:10]) == list(range(10)) and sorted(seen[10:20]) == list(range(10))
    np.testing.assert_array_equal(batch_indices(P, B, 3, seed=3), batch_indices(P, B, 3, seed=3))
    assert len(batch_indices(3, 7, 0, seed=0)) == 7


def test_sample_pixels_respects_masks():
    rng = np.random.default_rng(0)
    valid = np.zeros((10, 10), bool)
    valid[2:8, 2:8] = True
    dyn = np.zeros((10, 10), bool)
    dyn[4:6, 4:6] = True
    idx = sample_pixels(valid, 30, rng, dynamic=dyn, dynamic_fraction=0.5)
    assert idx.shape == (30,) and valid.reshape(-1)[idx].all()
    assert dyn.reshape(-1)[idx].sum() >= 15
    assert sample_pixels(np.zeros((4, 4), bool), 5, rng).shape == (5,)


# ------------------------------------------------------------------------------ depth model, config, inputs
def test_depth_model_starts_at_prior_and_stays_positive():
    torch.manual_seed(0)
    m = ResidualDepthModel(3, channels=(8, 16))
    rgb = torch.rand(2, 3, 16, 24)
    log_prior = torch.randn(2, 1, 16, 24)
    log_z, r = m.log_depth(torch.tensor([0, 2]), rgb, log_prior)
    torch.testing.assert_close(log_z, log_prior[:, 0])
    prior_full = torch.rand(32, 48) + 0.5
    d = m.full_resolution_depth(1, rgb[0], log_prior[0], prior_full)
    torch.testing.assert_close(d, prior_full)
    with torch.no_grad():
        m.unet.head.bias.fill_(50.0)
    log_z, r = m.log_depth(torch.tensor([0]), rgb[:1], log_prior[:1])
    assert float(r.detach().max()) <= m.max_log_residual + 1e-6


def test_pretrained_wrapper_keeps_batchnorm_frozen():
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.BatchNorm2d(4), torch.nn.Conv2d(4, 1, 1))
    w = PretrainedDepthWrapper(net, output="disparity")
    w.train()
    assert not net[1].training and net[0].training
    before = net[1].running_mean.clone()
    d = w(torch.rand(2, 3, 8, 8))
    assert torch.equal(net[1].running_mean, before)
    assert d.shape == (2, 8, 8) and bool((d > 0).all())


def test_config_presets_and_errors():
    from vid3d.optimizer.config import PRESETS, OptimizeConfig

    for name in ("draft", "standard", "best"):
        cfg = OptimizeConfig.preset(name)
        assert cfg.label == name and cfg.train.total_steps > 0 and cfg.train.betas == (0.5, 0.9)
    assert PRESETS["draft"].train.total_steps < PRESETS["standard"].train.total_steps
    assert PRESETS["standard"].train == TrainConfig()  # standard is every config's defaults
    with pytest.raises(InputError):
        OptimizeConfig.preset("huge")
    with pytest.raises(InputError):
        TrainConfig(pairs_per_step=0)
    with pytest.raises(Exception):
        TrainConfig().warmup_steps = 3  # frozen
    with pytest.raises(InputError, match="fusion"):
        TrainConfig(fusion_rel_tol=0)
    with pytest.raises(InputError, match="fusion"):
        TrainConfig(fusion_gaps=(0, 1))
    assert TrainConfig(fusion_gaps=()).fusion_gaps == ()  # fusion off
    with pytest.raises(InputError, match="fusion_passes"):
        TrainConfig(fusion_passes=0)
    with pytest.raises(InputError, match="dilate"):
        TrainConfig(dynamic_dilate_px=-1)


def test_config_adapts_to_the_prior_backend():
    cfg = TrainConfig()
    geometric = cfg.prior_terms("geometric")  # multi-view prior: anchored residual, movers' depth kept
    assert geometric == cfg.geometric_prior and geometric.dynamic_depth_grad == 0.0
    learned = cfg.prior_terms("midas")
    assert learned.residual_weight < geometric.residual_weight and learned.dynamic_depth_grad == 1.0
    assert cfg.prior_terms("depth_anything") == learned
    hybrid = cfg.prior_terms("pydnet+hybrid")  # held like the plane sweep, the network's pixels freer
    assert hybrid.residual_weight == geometric.residual_weight and hybrid.hold_offset
    assert hybrid.confidence_floor < geometric.confidence_floor == 1.0
    with pytest.raises(InputError, match="confidence_floor"):
        PriorTerms(residual_weight=1.0, dynamic_depth_grad=0.0, confidence_floor=1.5)
    # only the plane sweep placed its movers on their contact: only it places them there again
    assert geometric.movers_on_contact and not hybrid.movers_on_contact and not learned.movers_on_contact
    with pytest.raises(InputError, match="residual_upsample_sigma"):
        TrainConfig(residual_upsample_sigma=-0.1)


def test_inputs_validation():
    T, H, W = 3, 8, 12
    ok = dict(rgb=np.zeros((T, H, W, 3), np.uint8), K=np.eye(3), T_world_camera=np.stack([np.eye(4)] * T),
              prior_depth=np.ones((T, H, W), np.float32),
              flows={(0, 1): (np.zeros((H, W, 2), np.float32), np.ones((H, W), bool))})
    TrainInputs(**ok).validate()
    with pytest.raises(ShapeError):
        TrainInputs(**{**ok, "rgb": np.zeros((T, H, W), np.uint8)}).validate()
    with pytest.raises(ShapeError):
        TrainInputs(**{**ok, "prior_depth": np.ones((T, H, W + 1), np.float32)}).validate()
    with pytest.raises(InputError):
        TrainInputs(**{**ok, "prior_depth": np.zeros((T, H, W), np.float32)}).validate()
    bad_T = np.stack([np.eye(4)] * T)
    bad_T[1, :3, :3] *= 2
    with pytest.raises(InputError):
        TrainInputs(**{**ok, "T_world_camera": bad_T}).validate()
    with pytest.raises(InputError):
        TrainInputs(**{**ok, "flows": {(0, 5): ok["flows"][(0, 1)]}}).validate()
    with pytest.raises(ShapeError):
        TrainInputs(**{**ok, "flows": {(0, 1): (np.zeros((H, W, 3)), np.ones((H, W), bool))}}).validate()


def test_prepared_dynamic_mask_grows_by_the_dilation():
    from vid3d.optimizer.train.prepare import prepare_clip

    T, H, W = 2, 16, 24
    dyn = np.zeros((T, H, W), bool)
    dyn[:, 8, 12] = True
    inputs = TrainInputs(rgb=np.zeros((T, H, W, 3), np.uint8), K=np.array([[20.0, 0, 12], [0, 20, 8], [0, 0, 1]]),
                         T_world_camera=np.stack([np.eye(4)] * T), prior_depth=np.ones((T, H, W), np.float32),
                         flows={(0, 1): (np.zeros((H, W, 2), np.float32), np.ones((H, W), bool))}, dynamic_mask=dyn)
    plain = prepare_clip(inputs, [(0, 1)], 24, torch.device("cpu"))
    grown = prepare_clip(inputs, [(0, 1)], 24, torch.device("cpu"), dilate_dynamic_px=2)
    assert plain.size == (H, W) and int(plain.dynamic_band.sum()) == T  # same size: the one pixel only
    band = grown.dynamic_band.numpy()
    assert band.sum() == T * 25 and band[0, 6:11, 10:15].all()  # a 5 x 5 square
    assert np.array_equal(grown.dynamic_np, dyn)  # the plain mask (sampling, static scene flow) is kept


def test_a_geometric_prior_holds_the_per_frame_scale_a_learned_one_leaves_it_free():
    """The residual term of a plane-sweep prior covers s_i + g_i + r (the whole change from the
    prior); a learned prior's covers r only, so its per-frame scale trains freely."""
    from vid3d.optimizer.train.prepare import prepare_clip
    from vid3d.optimizer.train.trainer import Trainer

    T, H, W = 3, 16, 24
    inputs = TrainInputs(rgb=np.full((T, H, W, 3), 128, np.uint8), K=np.array([[20.0, 0, 12], [0, 20, 8], [0, 0, 1]]),
                         T_world_camera=np.stack([np.eye(4)] * T), prior_depth=np.ones((T, H, W), np.float32),
                         flows={(0, 1): (np.zeros((H, W, 2), np.float32), np.ones((H, W), bool))})
    cfg = TrainConfig(warmup_steps=0, joint_steps=1, pixels_per_pair=16, pairs_per_step=1)
    clip = prepare_clip(inputs, [(0, 1)], 24, torch.device("cpu"))
    found = {}
    for name, terms in (("geometric", cfg.prior_terms("geometric")), ("learned", cfg.prior_terms("midas"))):
        tr = Trainer(clip, cfg, torch.device("cpu"), terms)
        with torch.no_grad():
            tr.depth.log_scale[:] = torch.tensor([0.3, -0.3, 0.0])  # per-frame scales off the prior, r = 0
        idx, pix = tr.pair_batch(0)
        found[name] = float(tr.losses(idx, pix, warm=False)["residual"].detach())
    assert cfg.prior_terms("geometric").hold_offset and not cfg.prior_terms("midas").hold_offset
    assert found["geometric"] == pytest.approx(0.3, rel=1e-5)  # mean |s_i| over frames 0, 1 of the pair
    assert found["learned"] == 0.0  # the UNet residual is 0 at the start


def test_guided_residual_upsampling_starts_at_prior_and_uses_the_guide():
    """With upsample_sigma > 0 the full-resolution depth is still the prior at step 0, and a residual
    is upsampled by joint_bilateral_upsample guided by the log prior (not bilinearly)."""
    from vid3d.optimizer.train.upsample import joint_bilateral_upsample

    torch.manual_seed(0)
    m = ResidualDepthModel(2, channels=(8, 16), upsample_sigma=0.05)
    rgb = torch.rand(1, 3, 16, 24)
    prior_full = torch.rand(32, 48) + 0.5
    log_prior = F.interpolate(torch.log(prior_full)[None, None], size=(16, 24), mode="bilinear", antialias=True,
                              align_corners=False)
    torch.testing.assert_close(m.full_resolution_depth(0, rgb[0], log_prior[0], prior_full), prior_full)
    with torch.no_grad():
        m.unet.head.weight.normal_(0, 0.1)
    r = m.residual(rgb, log_prior)[0, 0]
    want = prior_full * torch.exp(joint_bilateral_upsample(r, log_prior[0, 0], torch.log(prior_full), 0.05))
    torch.testing.assert_close(m.full_resolution_depth(0, rgb[0], log_prior[0], prior_full), want)
    bilinear = prior_full * torch.exp(F.interpolate(r[None, None], size=(32, 48), mode="bilinear",
                                                    align_corners=False)[0, 0])
    assert not torch.allclose(want, bilinear, atol=1e-3)
