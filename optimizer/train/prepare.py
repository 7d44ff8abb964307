"""The clip prepared for training: tensors at training resolution on the training device."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from vid3d.formats.conventions import pixel_grid, scale_intrinsics
from vid3d.optimizer.train.data import TrainInputs


def train_size(H: int, W: int, long_side: int, multiple: int = 8) -> tuple[int, int]:
    """Training resolution (h, w): long side ``min(long_side, max(H, W))``, rounded to ``multiple``."""
    s = min(1.0, long_side / max(H, W))
    h = max(multiple, int(round(H * s / multiple)) * multiple)
    w = max(multiple, int(round(W * s / multiple)) * multiple)
    return h, w


def resize_bilinear(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Anti-aliased bilinear resize of ``(B, C, H, W)``."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)


@dataclass
class PreparedClip:
    """The clip on the training device at training resolution (h, w). Internal to the trainer.

    rgb (T, 3, h, w) [0, 1]; log_prior (T, 1, h, w); prior_conf (T, h, w) | None; dynamic (T, h, w)
    bool | None; dynamic_band (T, h, w) bool | None: dynamic grown by the dilation; K (3, 3) at
    (h, w); T_world_camera (T, 4, 4); pairs list[(i, j)];
    flow (P, h, w, 2), valid (P, h, w) bool per pair; d_ref median prior depth; centre (3,),
    extent: the MLP's box; px_per_unit = fx / d_ref; rgb_full (T, H, W, 3) uint8 (the inputs' frames,
    not copied); prior_net: the prior network to fine-tune (``TrainConfig.depth_model`` finetune), or None.
    """

    rgb: torch.Tensor
    log_prior: torch.Tensor
    prior_conf: torch.Tensor | None
    dynamic: torch.Tensor | None
    dynamic_band: torch.Tensor | None
    K: torch.Tensor
    T_world_camera: torch.Tensor
    pairs: list[tuple[int, int]]
    flow: torch.Tensor
    valid: torch.Tensor
    valid_np: np.ndarray
    dynamic_np: np.ndarray | None
    d_ref: float
    centre: torch.Tensor
    extent: float
    px_per_unit: float
    size: tuple[int, int]
    full_size: tuple[int, int]
    prior_full: np.ndarray
    K_full: np.ndarray
    invalid_prior_fraction: float
    rgb_full: np.ndarray | None = None
    prior_net: torch.nn.Module | None = None


def fill_prior(prior: np.ndarray) -> tuple[np.ndarray, float]:
    """Prior ``(T, H, W)`` with unknown pixels (<= 0, non-finite) set to their frame's median; and that share."""
    prior = np.asarray(prior, dtype=np.float32).copy()
    bad = ~(np.isfinite(prior) & (prior > 0))
    for t in range(prior.shape[0]):
        if bad[t].any():
            prior[t][bad[t]] = np.median(prior[t][~bad[t]])
    return prior, float(bad.mean())


def prepare_clip(inputs: TrainInputs, pairs: list[tuple[int, int]], long_side: int,
                 device: torch.device, *, dilate_dynamic_px: int = 0, multiple: int = 8,
                 prior_net: torch.nn.Module | None = None) -> PreparedClip:
    """Resize everything to training resolution (sides multiples of ``multiple``) and move it to ``device``.

    ``prior_net``: the prior network the trainer fine-tunes (moved to ``device``), or None.

    ``dynamic_band`` is the dynamic mask grown by ``dilate_dynamic_px`` training pixels: flow along
    a moving object's outline mixes object and background motion, so depth there is treated like the
    mover's (``TrainConfig.dynamic_depth_grad``); the static scene-flow term keeps the plain mask.
    """
    T, H, W = inputs.rgb.shape[:3]
    h, w = train_size(H, W, long_side, multiple)
    sx, sy = w / W, h / H
    prior_full, bad_share = fill_prior(inputs.prior_depth)
    rgb = torch.from_numpy(np.ascontiguousarray(inputs.rgb)).permute(0, 3, 1, 2).float() / 255.0
    rgb = resize_bilinear(rgb, (h, w)).clamp(0, 1)
    log_prior = resize_bilinear(torch.from_numpy(np.log(prior_full))[:, None], (h, w))
    conf = None
    if inputs.prior_confidence is not None:
        c = np.nan_to_num(np.asarray(inputs.prior_confidence, dtype=np.float32)).clip(0, 1)
        conf = resize_bilinear(torch.from_numpy(c)[:, None], (h, w))[:, 0]
    dyn = dyn_np = band = None
    if inputs.dynamic_mask is not None:
        dyn = resize_bilinear(torch.from_numpy(np.asarray(inputs.dynamic_mask, dtype=np.float32))[:, None], (h, w)) > 0.05
        band = dyn
        if dilate_dynamic_px > 0:
            r = int(dilate_dynamic_px)
            band = F.max_pool2d(dyn.float(), 2 * r + 1, stride=1, padding=r) > 0.5
        dyn, band = dyn[:, 0], band[:, 0]
        dyn_np = dyn.numpy()
    flows, valids = [], []
    for (i, j) in pairs:
        f, v = inputs.flows[(i, j)]
        f = resize_bilinear(torch.from_numpy(np.asarray(f, dtype=np.float32)).permute(2, 0, 1)[None], (h, w))[0]
        f = torch.stack([f[0] * sx, f[1] * sy], dim=-1)
        v = resize_bilinear(torch.from_numpy(np.asarray(v, dtype=np.float32))[None, None], (h, w))[0, 0] > 0.99
        flows.append(f)
        valids.append(v)
    flow = torch.stack(flows) if flows else torch.zeros(0, h, w, 2)
    valid = torch.stack(valids) if valids else torch.zeros(0, h, w, dtype=torch.bool)

    K = scale_intrinsics(np.asarray(inputs.K, dtype=np.float64), sx, sy)
    Twc = np.asarray(inputs.T_world_camera, dtype=np.float64)
    d_ref = float(np.median(prior_full[:, ::4, ::4]))
    # The MLP's box: robust extent of the prior's world points (every frame, sub-sampled pixels).
    step = max(1, min(H, W) // 32)
    uv = pixel_grid(H, W)[::step, ::step].astype(np.float64)
    rays = np.concatenate([uv, np.ones_like(uv[..., :1])], -1) @ np.linalg.inv(np.asarray(inputs.K, np.float64)).T
    pts = rays[None] * prior_full[:, ::step, ::step, None]
    pts = np.einsum("tij,thwj->thwi", Twc[:, :3, :3], pts) + Twc[:, None, None, :3, 3]
    pts = pts.reshape(-1, 3)
    lo, hi = np.percentile(pts, 2, axis=0), np.percentile(pts, 98, axis=0)
    centre = (lo + hi) / 2
    extent = float(max((hi - lo).max() / 2 * 1.25, 1e-6))
    return PreparedClip(
        rgb=rgb.to(device), log_prior=log_prior.float().to(device),
        prior_conf=None if conf is None else conf.to(device),
        dynamic=None if dyn is None else dyn.to(device),
        dynamic_band=None if band is None else band.to(device),
        K=torch.from_numpy(K).float().to(device), T_world_camera=torch.from_numpy(Twc).float().to(device),
        pairs=list(pairs), flow=flow.to(device), valid=valid.to(device), valid_np=valid.numpy(),
        dynamic_np=dyn_np, d_ref=d_ref, centre=torch.from_numpy(centre).float().to(device),
        extent=extent, px_per_unit=float(K[0, 0]) / d_ref, size=(h, w), full_size=(H, W),
        prior_full=prior_full, K_full=np.asarray(inputs.K, dtype=np.float64),
        invalid_prior_fraction=bad_share, rgb_full=inputs.rgb,
        prior_net=None if prior_net is None else prior_net.to(device),
    )
