"""The training loop: warm-up (MLP alone, depth frozen, L2 flow), then joint (L1 flow + velocity).

State lives only here (models, optimizers, the loss history, checkpoints). One step:

1. take ``pairs_per_step`` forward pairs (i, j = i + g) (deterministic in (seed, step));
2. run the depth model (residual over the prior, or the fine-tuned prior network: ``make_depth_model``)
   on the frames of the batch at training resolution -> z (B, h, w);
3. sample pixels x of frame i (valid flow, a share on the dynamic mask), unproject X_i(x);
4. chain the scene-flow MLP g times -> S; project into camera j -> predicted flow, z_ij;
5. loss = flow (L2 warm-up / L1) + disparity |1/z_ij - 1/z~_j(x + f)| [+ velocity, static, residual];
6. Adam (betas 0.5, 0.9) on the MLP (and, after warm-up, the depth model).

After the last step, :func:`.fuse.fuse_outputs` predicts full-resolution depth, averages each
frame's static pixels with its neighbours' (:mod:`.multiview`), and evaluates scene flow and confidence.

The entry (checkpoints, resume, the final fusion) is :func:`vid3d.optimizer.train.stage.run`.
"""

from __future__ import annotations

import contextlib
import numpy as np
import torch

from vid3d.formats.conventions import pixel_grid

from vid3d.optimizer.train import losses as L
from vid3d.optimizer.train.config import PriorTerms, TrainConfig
from vid3d.optimizer.train.prepare import PreparedClip
from vid3d.optimizer.train.depth_net import ResidualDepthModel
from vid3d.optimizer.train.finetune import DepthModel, FinetunedDepthModel
from vid3d.optimizer.train.pairs import batch_indices, sample_pixels
from vid3d.optimizer.train.scene_flow import SceneFlowField, SceneFlowMLP

LOSS_NAMES = ("total", "flow", "disp", "velocity", "static", "residual", "anchor", "flow_px")



def make_depth_model(clip: PreparedClip, cfg: TrainConfig, device: torch.device) -> DepthModel:
    """The fine-tuned prior network when the clip carries one (``clip.prior_net``), else the residual model."""
    T = clip.rgb.shape[0]
    if clip.prior_net is not None:
        return FinetunedDepthModel(clip.prior_net, clip.rgb, clip.log_prior, d_ref=clip.d_ref,
                                   anchored=cfg.finetune_anchored, full_res=cfg.finetune_full_res,
                                   rgb_full=clip.rgb_full).to(device)
    return ResidualDepthModel(T, channels=cfg.depth_channels, max_log_residual=cfg.max_log_residual,
                              grid=cfg.offset_grid, upsample_sigma=cfg.residual_upsample_sigma).to(device)


class Trainer:
    """Holds the models, optimizers and loss history for one clip (the only stateful piece)."""

    def __init__(self, clip: PreparedClip, cfg: TrainConfig, device: torch.device, terms: PriorTerms) -> None:
        self.clip, self.cfg, self.device, self.terms = clip, cfg, device, terms
        T = clip.rgb.shape[0]
        torch.manual_seed(cfg.seed)
        self.depth = make_depth_model(clip, cfg, device)
        mlp = SceneFlowMLP(width=cfg.mlp_width, n_layers=cfg.mlp_layers, n_freq=cfg.n_freq,
                           sf_mag_div=cfg.sf_mag_div)
        self.sf = SceneFlowField(mlp, centre=clip.centre.cpu(), extent=clip.extent, num_frames=T).to(device)
        self.opt_mlp = torch.optim.Adam(self.sf.parameters(), lr=cfg.mlp_lr, betas=cfg.betas, foreach=True)
        self.opt_depth = torch.optim.Adam(self.depth.param_groups(cfg), betas=cfg.betas, foreach=True)
        self.step = 0
        self.history: dict[str, list[float]] = {k: [] for k in LOSS_NAMES}
        self.z_min = 1e-3 * clip.d_ref
        self.uv_grid = pixel_grid(*clip.size, like=torch.empty(0, device=device)).reshape(-1, 2)  # (h*w, 2) centres

    # ---------------------------------------------------------------- checkpoints
    def state_dict(self, fingerprint: str) -> dict:
        return {"step": self.step, "depth": self.depth.state_dict(), "sf": self.sf.state_dict(),
                "opt_mlp": self.opt_mlp.state_dict(), "opt_depth": self.opt_depth.state_dict(),
                "history": self.history, "fingerprint": fingerprint}

    def load_state_dict(self, state: dict) -> None:
        self.depth.load_state_dict(state["depth"])
        self.sf.load_state_dict(state["sf"])
        self.opt_mlp.load_state_dict(state["opt_mlp"])
        self.opt_depth.load_state_dict(state["opt_depth"])
        self.step = int(state["step"])
        self.history = {k: list(state["history"].get(k, [])) for k in LOSS_NAMES}

    # ---------------------------------------------------------------- one step
    def pair_batch(self, step: int) -> tuple[np.ndarray, np.ndarray]:
        """(pair indices (B,), flat pixel indices (B, n)) of step ``step``."""
        cfg, clip = self.cfg, self.clip
        idx = batch_indices(len(clip.pairs), cfg.pairs_per_step, step, cfg.seed)
        rng = np.random.default_rng([cfg.seed, 1_000_003, step])
        pix = []
        for p in idx:
            i = clip.pairs[p][0]
            dyn = None if clip.dynamic_np is None else clip.dynamic_np[i]
            pix.append(sample_pixels(clip.valid_np[p], cfg.pixels_per_pair, rng, dynamic=dyn,
                                     dynamic_fraction=cfg.dynamic_sample_fraction))
        return idx, np.stack(pix)

    def losses(self, idx: np.ndarray, pix: np.ndarray, *, warm: bool) -> dict[str, torch.Tensor]:
        """Loss terms (scalars) of pairs ``idx (B,)`` at pixels ``pix (B, n)``; ``warm`` = warm-up phase."""
        cfg, clip, dev = self.cfg, self.clip, self.device
        pairs = [clip.pairs[p] for p in idx]
        frames = sorted({f for pr in pairs for f in pr})
        pos = {f: k for k, f in enumerate(frames)}
        fr = torch.as_tensor(frames, device=dev)
        autocast = (torch.autocast("cuda", dtype=torch.bfloat16) if cfg.mixed_precision and dev.type == "cuda"
                    else contextlib.nullcontext())
        train_scale = not warm or cfg.warmup_trains_scale
        with torch.set_grad_enabled(train_scale), autocast:
            if warm:  # the depth net is frozen in warm-up; at most the per-frame scales train
                log_z, r = self.depth.log_depth_frozen(fr, clip.rgb[fr], clip.log_prior[fr])
            else:
                log_z, r = self.depth.log_depth(fr, clip.rgb[fr], clip.log_prior[fr])
        log_z, r = log_z.float(), r.float()
        z = torch.exp(log_z)  # (F, h, w)
        fi = torch.as_tensor([pos[i] for i, _ in pairs], device=dev)
        fj = torch.as_tensor([pos[j] for _, j in pairs], device=dev)
        ti = torch.as_tensor([i for i, _ in pairs], device=dev)
        tj = torch.as_tensor([j for _, j in pairs], device=dev)
        gaps = tj - ti
        pix_t = torch.as_tensor(pix, device=dev)  # (B, n)
        P, n = pix_t.shape
        pidx = torch.as_tensor(idx, device=dev)

        uv_i = self.uv_grid[pix_t]  # (B, n, 2)
        z_i = z[fi].flatten(1).gather(1, pix_t)  # (B, n)
        dyn_i = None
        if clip.dynamic is not None:
            dyn_i = clip.dynamic[fi].flatten(1).gather(1, pix_t)  # (B, n) bool
            if self.terms.dynamic_depth_grad != 1.0:  # same value, scaled gradient on (and beside) moving pixels
                band_i = clip.dynamic_band[fi].flatten(1).gather(1, pix_t)
                g = torch.where(band_i, self.terms.dynamic_depth_grad, 1.0)
                z_i = z_i.detach() + g * (z_i - z_i.detach())
        X_i = L.unproject_pixels(uv_i, z_i, clip.K, clip.T_world_camera[ti])  # (B, n, 3)
        t_i = self.sf.time_of(ti)[:, None, None].expand(P, n, 1)
        steps = gaps[:, None].expand(P, n)
        S, sf0 = self.sf.chain(X_i, t_i, steps, return_first=True)  # S = p_g - X_i

        flow_obs = clip.flow[pidx].flatten(1, 2)[torch.arange(P, device=dev)[:, None], pix_t]  # (B, n, 2)
        valid = clip.valid[pidx].flatten(1)[torch.arange(P, device=dev)[:, None], pix_t]  # (B, n)
        # F^(x) = pi(K R_j^T (X_i + S - t_j)) - x
        flow_pred, z_ij = L.projected_flow(X_i, S, uv_i, clip.K, clip.T_world_camera[tj], z_min=self.z_min)
        # z~_j(x + f_ij): depth of frame j at the flow target
        z_tilde = L.sample_bilinear(z[fj][:, None], uv_i + flow_obs)[..., 0]
        if dyn_i is not None and self.terms.dynamic_depth_grad != 1.0:
            z_tilde = z_tilde.detach() + g * (z_tilde - z_tilde.detach())
        M = valid & (z_ij > self.z_min) & torch.isfinite(z_ij)
        out = {
            "flow": L.flow_loss(flow_pred, flow_obs, M, kind="l2" if warm else "l1"),
            "disp": (L.disparity_ratio_loss(z_ij, z_tilde, M, z_min=self.z_min) if cfg.disp_kind == "ratio"
                     else L.disparity_loss(z_ij, z_tilde, M, d_ref=clip.d_ref, z_min=self.z_min)),
        }
        out["flow_px"] = L.masked_mean((flow_pred - flow_obs).norm(dim=-1), M).detach()
        zero = torch.zeros((), device=dev)
        if not warm and cfg.velocity_weight > 0:
            # SF(X + SF(X, t), t + 1/N) vs SF(X, t), every sampled point (no mask, as the reference)
            sf1 = self.sf(X_i + sf0, t_i + 1.0 / self.sf.num_frames)
            out["velocity"] = L.constant_velocity_loss(sf0, sf1, px_per_unit=clip.px_per_unit)
        else:
            out["velocity"] = zero
        if dyn_i is not None and cfg.static_weight > 0:
            static = ~dyn_i
            out["static"] = L.static_flow_loss(sf0, static, px_per_unit=clip.px_per_unit)
        else:
            out["static"] = zero
        if not warm and self.terms.residual_weight > 0:
            w = None if clip.prior_conf is None else clip.prior_conf[fr].clamp(min=self.terms.confidence_floor)
            held = log_z - clip.log_prior[fr][:, 0] if self.terms.hold_offset else r  # s_i + g_i + r, or r
            out["residual"] = L.residual_loss(held, w)
        else:
            out["residual"] = zero
        if cfg.scale_anchor_weight > 0:
            out["anchor"] = self.depth.mean_log_offset(r).square().mean()  # a scalar or one per frame
        else:
            out["anchor"] = zero
        out["total"] = (cfg.scale_anchor_weight * out["anchor"] + cfg.flow_weight * out["flow"] + cfg.disp_weight * out["disp"]
                        + cfg.velocity_weight * out["velocity"] + cfg.static_weight * out["static"]
                        + self.terms.residual_weight * out["residual"])
        return out

    def train_step(self) -> dict[str, float]:
        warm = self.step < self.cfg.warmup_steps
        idx, pix = self.pair_batch(self.step)
        self.depth.train(not warm)
        out = self.losses(idx, pix, warm=warm)
        self.opt_mlp.zero_grad(set_to_none=True)
        self.opt_depth.zero_grad(set_to_none=True)
        out["total"].backward()
        self.opt_mlp.step()
        if not warm or self.cfg.warmup_trains_scale:
            self.opt_depth.step()  # in warm-up only the scales have gradients
        vals = {k: float(v.detach()) for k, v in out.items()}
        for k in LOSS_NAMES:
            self.history[k].append(vals[k])
        self.step += 1
        return vals
