"""Final outputs after training: full-resolution depth, confidence and one-step scene flow per frame.

- depth_i = prior_i (full res) * exp(s_i + g_i + upsampled residual r_i): the prior's fine detail is
  kept (the fine-tuned prior network instead: ``TrainConfig.finetune_full_res``); then static pixels
  are averaged with their neighbours' depth re-projected by the poses (:mod:`.multiview`, weighted
  by the prior's confidence), ``TrainConfig.fusion_passes`` times; moving regions are then kept in
  front of the static depth around them (``TrainConfig.movers_in_front``);
- confidence_i(x): mean over neighbours j = i +- g (g in ``confidence_gaps``, flow present) of
  ``valid * exp(-e_px / confidence_px) * exp(-e_rel / confidence_rel)``, where e_px is the
  reprojection error of the (moved) point against the optical flow and e_rel the relative depth
  disagreement, computed at training resolution and upsampled (0 = no neighbour agrees);
- scene_flow_i = SF(X_i, t_i), world displacement to frame i + 1 (last frame 0).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from vid3d.formats.conventions import pixel_grid

from vid3d.optimizer.train import losses as L
from vid3d.optimizer.train.config import TrainConfig
from vid3d.optimizer.train.data import Flows
from vid3d.optimizer.train.prepare import PreparedClip, resize_bilinear
from vid3d.optimizer.train.finetune import DepthModel
from vid3d.optimizer.prior.movers import place_in_front, place_on_contact
from vid3d.optimizer.train.multiview import multiview_fuse
from vid3d.optimizer.train.scene_flow import SceneFlowField

CHUNK = 65536


@dataclass(frozen=True)
class Fused:
    """depth (T, H, W) f32, confidence (T, H, W) f32 in [0, 1], scene_flow (T, H, W, 3) f32;
    fusion_support: mean number of neighbours that agreed per static pixel (0 without fusion);
    movers_capped_fraction: share of the moving pixels brought in front of what they hide;
    movers_placed_fraction: share placed again on their ground contact (``movers_on_contact``)."""

    depth: np.ndarray
    confidence: np.ndarray
    scene_flow: np.ndarray
    fusion_support: float = 0.0
    movers_capped_fraction: float = 0.0
    movers_placed_fraction: float = 0.0


def _grid(h: int, w: int, device) -> torch.Tensor:
    return pixel_grid(h, w, like=torch.empty(0, device=device)).reshape(-1, 2)  # (h*w, 2) pixel centres


def _chunked_sf(sf: SceneFlowField, X: torch.Tensor, t: float) -> torch.Tensor:
    out = []
    for k in range(0, X.shape[0], CHUNK):
        x = X[k:k + CHUNK]
        out.append(sf(x, torch.full_like(x[:, :1], t)))
    return torch.cat(out) if out else X.clone()


def low_res_depth(depth: DepthModel, clip: PreparedClip) -> torch.Tensor:
    """Depth ``(T, h, w)`` at training resolution (no grad)."""
    T = clip.rgb.shape[0]
    out = []
    with torch.no_grad():
        for k in range(0, T, 8):
            fr = torch.arange(k, min(T, k + 8), device=clip.rgb.device)
            log_z, _ = depth.log_depth(fr, clip.rgb[fr], clip.log_prior[fr])
            out.append(torch.exp(log_z.float()))
    return torch.cat(out)


def agreement_confidence(z: torch.Tensor, sf: SceneFlowField, clip: PreparedClip, cfg: TrainConfig,
                         flows: Flows) -> torch.Tensor:
    """Confidence ``(T, h, w)`` in [0, 1] from flow/depth agreement with neighbours (training resolution)."""
    T, h, w = z.shape
    dev = z.device
    H, W = clip.full_size
    sx, sy = w / W, h / H
    uv = _grid(h, w, dev)[None]  # (1, h*w, 2)
    conf = torch.zeros(T, h * w, device=dev)
    for i in range(T):
        X_i = L.unproject_pixels(uv, z[i].reshape(1, -1), clip.K, clip.T_world_camera[i][None])
        acc = torch.zeros(h * w, device=dev)
        count = 0
        for g in cfg.confidence_gaps:
            for j in (i + g, i - g):
                if not (0 <= j < T) or (i, j) not in flows:
                    continue
                f_np, v_np = flows[(i, j)]
                f = resize_bilinear(torch.from_numpy(np.asarray(f_np, np.float32)).permute(2, 0, 1)[None].to(dev), (h, w))[0]
                f = torch.stack([f[0] * sx, f[1] * sy], -1).reshape(1, -1, 2)
                valid = resize_bilinear(torch.from_numpy(np.asarray(v_np, np.float32))[None, None].to(dev), (h, w)).reshape(-1) > 0.99
                uv_j = uv + f
                z_j = L.sample_bilinear(z[j][None, None], uv_j)[..., 0]  # (1, h*w)
                if j > i:  # move X_i forward g steps and look at it from camera j
                    S = sf.chain(X_i, sf.time_of(i).expand(1, h * w, 1), g)
                    flow_pred, z_ij = L.projected_flow(X_i, S, uv, clip.K, clip.T_world_camera[j][None],
                                                       z_min=1e-6)
                    e_px = (flow_pred - f).norm(dim=-1)[0]
                    e_rel = ((z_ij - z_j).abs() / z_j.clamp(min=1e-6))[0]
                else:  # move the matched point of frame j forward g steps, look at it from camera i
                    X_j = L.unproject_pixels(uv_j, z_j, clip.K, clip.T_world_camera[j][None])
                    S = sf.chain(X_j, sf.time_of(j).expand(1, h * w, 1), g)
                    back_flow, z_ji = L.projected_flow(X_j, S, uv_j, clip.K, clip.T_world_camera[i][None],
                                                       z_min=1e-6)
                    e_px = (uv_j + back_flow - uv).norm(dim=-1)[0]
                    z_i = z[i].reshape(-1)
                    e_rel = (z_ji[0] - z_i).abs() / z_i.clamp(min=1e-6)
                a = valid.float() * torch.exp(-e_px / cfg.confidence_px) * torch.exp(-e_rel / cfg.confidence_rel)
                acc += torch.nan_to_num(a, nan=0.0)
                count += 1
        conf[i] = acc / max(count, 1)
    return conf.reshape(T, h, w).clamp(0, 1)


def fuse_outputs(depth: DepthModel, sf: SceneFlowField, clip: PreparedClip, cfg: TrainConfig,
                 flows: Flows, *, prior_confidence: np.ndarray | None = None,
                 dynamic: np.ndarray | None = None, movers_on_contact: bool = False) -> Fused:
    """Full-resolution depth, confidence and one-step scene flow of every frame (see module doc).

    ``prior_confidence`` (T, H, W) weighs each view in the multi-view fusion (None = equal);
    ``dynamic`` (T, H, W) bool marks pixels the fusion leaves alone. ``movers_on_contact``
    (``PriorTerms.movers_on_contact``): movers are placed again on their ground contact in the refined
    static depth (:func:`~vid3d.optimizer.prior.movers.place_on_contact`, needs ``prior_confidence``)
    before the in-front cap.
    """
    depth.eval()
    dev = clip.rgb.device
    T = clip.rgb.shape[0]
    H, W = clip.full_size
    # Confidence at training resolution uses the flows at that resolution; the training flow scale
    # (pixels at (h, w)) is what confidence_px refers to.
    flows_T = {k: v for k, v in flows.items()}
    with torch.no_grad():
        z_lo = low_res_depth(depth, clip)
        conf_lo = agreement_confidence(z_lo, sf, clip, cfg, flows_T)
        conf = F.interpolate(conf_lo[:, None], size=(H, W), mode="bilinear", align_corners=False)[:, 0]
        K_full = torch.from_numpy(clip.K_full).float().to(dev)
        uv = _grid(H, W, dev)[None]
        depth_out = np.empty((T, H, W), np.float32)
        sflow = np.zeros((T, H, W, 3), np.float32)
        for i in range(T):
            prior_i = torch.from_numpy(clip.prior_full[i]).to(dev)
            d = depth.full_resolution_depth(i, clip.rgb[i], clip.log_prior[i], prior_i)
            depth_out[i] = d.float().cpu().numpy()
        support = 0.0
        if cfg.fusion_gaps:
            T_wc = clip.T_world_camera.double().cpu().numpy()
            for _ in range(cfg.fusion_passes):  # each pass fuses the previous one's output
                depth_out, sup = multiview_fuse(depth_out, clip.K_full, T_wc, weight=prior_confidence,
                                                dynamic=dynamic, gaps=cfg.fusion_gaps,
                                                rel_tol=cfg.fusion_rel_tol, device=dev)
            static = np.ones(sup.shape, bool) if dynamic is None else ~np.asarray(dynamic, bool)
            support = float(sup[static].mean()) if static.any() else 0.0
        capped = placed = 0.0
        if cfg.movers_in_front and dynamic is not None:
            movers = np.asarray(dynamic, bool)
            if prior_confidence is not None:  # masked regions the plane sweep found photo-consistent are static
                movers = movers & (np.asarray(prior_confidence) <= 0)
            if movers.any():
                if movers_on_contact and prior_confidence is not None:
                    depth_out, placed = place_on_contact(depth_out, movers, prior_confidence)
                depth_out, capped = place_in_front(depth_out, movers)
        for i in range(T - 1):
            d = torch.from_numpy(depth_out[i]).to(dev)
            X = L.unproject_pixels(uv, d.reshape(1, -1), K_full, clip.T_world_camera[i][None])[0]
            sflow[i] = _chunked_sf(sf, X, float(sf.time_of(i))).reshape(H, W, 3).cpu().numpy()
    return Fused(depth=depth_out, confidence=conf.clamp(0, 1).cpu().numpy().astype(np.float32),
                 scene_flow=sflow, fusion_support=support, movers_capped_fraction=capped,
                 movers_placed_fraction=placed)
