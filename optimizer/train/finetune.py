"""The prior network itself as the depth net, fine-tuned jointly with the scene-flow MLP (reference).

The reference (google/dynamic-video-depth) initialises its depth CNN from MiDaS and trains every
weight at lr 1e-6. Here the prior network is PyDNet v2 (:mod:`vid3d.optimizer.prior.pydnet`, the
same weights that made the prior), and the depth of frame i is

    1 / z_i(x) = max(e^{alpha_i} d_theta(rgb_i)(x) / m_i + beta_i, eps_i) / d_ref     [* e^{-c_i(x)}]

with ``d_theta`` the network's relative disparity at training resolution (sides multiples of
:attr:`PyDNet.multiple`), ``m_i`` the median of frame i's initial disparity (a constant, so alpha_i
and beta_i are O(1) for Adam), ``d_ref`` the clip's median prior depth, and ``eps_i`` a floor on the
inverse depth (depth at most 50x the frame's median, as in the prior stage). At construction
(alpha_i, beta_i) are fitted per frame to the aligned prior (least squares in inverse depth, Huber
reweighted), so at step 0 the model reproduces the prior as closely as the network at this resolution
can (``anchored=False``, the reference's form). PyDNet's output depends strongly on its input size
(measured on HoloLens, 16 frames: after that fit its depth differs from the 384x640 prior by a median
32 % at 64x128, 19 % at 192x256, 7 % at 384x576), so by default (``anchored=True``,
``TrainConfig.finetune_anchored``) a fixed per-pixel log correction ``c_i = log z_prior_i - log z_i``
of the initial network is added: step 0 is the prior exactly, and training moves the depth by what
fine-tuning changes in the network's output (weights and affine act on depth as in the reference's
form). The network is frozen during warm-up (its disparities are computed once and cached); after
it, every weight trains at ``TrainConfig.finetune_lr`` and the affine at ``finetune_affine_lr``.

The "residual" this model returns for the trainer's prior term (and the scale anchor) is
``log z - log z_prior``.

Full-resolution depth (:meth:`FinetunedDepthModel.full_resolution_depth`, ``TrainConfig.finetune_full_res``):

- ``upsample`` (default: the best of the three on HoloLens, see the config field): the
  training-resolution depth, bilinearly upsampled (in inverse depth);
- ``ratio``: the full-resolution prior times the upsampled change ``z / z_prior`` (keeps the prior's
  fine detail, like the residual model);
- ``network``: the fine-tuned network run again at about the frame's own size (multiples of 64, at
  most its native pixel count), its disparity mapped per frame by an affine refitted to the trained
  training-resolution depth.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from vid3d.formats.errors import InputError
from vid3d.optimizer.train.depth_net import ResidualDepthModel

FULL_RES_MODES = ("upsample", "ratio", "network")
CHUNK_FRAMES = 8


def load_prior_net(weights: str | Path) -> nn.Module:
    """The prior network (PyDNet v2) with trainable fp32 weights from a ``.tflite`` or saved ``.npz``."""
    from vid3d.optimizer.prior.pydnet import PyDNet

    path = Path(weights).expanduser()
    if not path.is_file():
        raise InputError(f"prior network weights {path} do not exist (a PyDNet .tflite or .npz file)")
    return PyDNet.load(path).float()


def fit_affine(x: torch.Tensor, y: torch.Tensor, *, iters: int = 5) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-row (a, b) with ``a * x + b ~ y`` for ``x, y (T, N)``: least squares, Huber-reweighted.

    Returns ``a (T,)``, ``b (T,)`` (float64). Rows where the fit gives ``a <= 0`` (a flat or inverted
    disparity) fall back to the scale only, ``a = median(y) / median(x)``, ``b = 0``.
    """
    x, y = x.double(), y.double()
    w = torch.ones_like(x)
    a = b = None
    for _ in range(iters):
        sw = w.sum(1)
        mx, my = (w * x).sum(1) / sw, (w * y).sum(1) / sw
        dx, dy = x - mx[:, None], y - my[:, None]
        a = (w * dx * dy).sum(1) / (w * dx * dx).sum(1).clamp(min=1e-12)
        b = my - a * mx
        r = (a[:, None] * x + b[:, None] - y).abs()
        delta = 1.4826 * r.median(dim=1).values[:, None] + 1e-12
        w = torch.where(r <= delta, torch.ones_like(r), delta / r)
    bad = ~(a > 0) | ~torch.isfinite(a) | ~torch.isfinite(b)
    if bad.any():
        a_s = y.median(dim=1).values / x.median(dim=1).values.clamp(min=1e-12)
        a = torch.where(bad, a_s, a)
        b = torch.where(bad, torch.zeros_like(b), b)
    return a, b


class FinetunedDepthModel(nn.Module):
    """Prior network + per-frame affine in disparity (module doc). Interface of
    :class:`~vid3d.optimizer.train.depth_net.ResidualDepthModel` (the trainer and fuse use either).

    Args:
        net: the prior network, ``(B, 3, h, w)`` in [0, 1] -> ``(B, 1, h, w)`` disparity >= 0.
        rgb: ``(T, 3, h, w)`` frames at training resolution, h and w multiples of ``net.multiple``.
        log_prior: ``(T, 1, h, w)`` log of the aligned prior depth at training resolution.
        d_ref: the clip's median prior depth (unit of the affine).
        anchored: add the fixed correction ``c_i (h, w)`` that makes step 0 the prior exactly (module doc).
        full_res: ``upsample`` | ``ratio`` | ``network`` (how :meth:`full_resolution_depth` works).
        rgb_full: ``(T, H, W, 3)`` uint8 frames, needed by ``full_res="network"``.
    """

    def __init__(self, net: nn.Module, rgb: torch.Tensor, log_prior: torch.Tensor, *, d_ref: float,
                 anchored: bool = True, full_res: str = "upsample", rgb_full: np.ndarray | None = None) -> None:
        super().__init__()
        if full_res not in FULL_RES_MODES:
            raise InputError(f"finetune_full_res must be one of {FULL_RES_MODES}, got {full_res!r}")
        if full_res == "network" and rgb_full is None:
            raise InputError("finetune_full_res='network' needs the full-resolution frames")
        m = int(getattr(net, "multiple", 1))
        if rgb.shape[-2] % m or rgb.shape[-1] % m:
            raise InputError(f"the fine-tuned prior network needs training sides that are multiples of {m}, "
                             f"got {tuple(rgb.shape[-2:])}")
        self.net = net
        self.d_ref = float(d_ref)
        self.full_res = full_res
        self.rgb_full = rgb_full
        d0 = self._disparity_chunks(rgb)  # (T, h, w), initial weights
        med = d0.flatten(1).median(dim=1).values.clamp(min=1e-6)
        x = (d0 / med[:, None, None]).flatten(1)
        y = (self.d_ref * torch.exp(-log_prior[:, 0])).flatten(1)  # d_ref / z_prior, O(1)
        a, b = fit_affine(x, y)
        self.register_buffer("disp_median", med)  # m_i (T,)
        self.register_buffer("inv_floor", 0.02 * y.median(dim=1).values.float())  # eps_i (T,)
        self.log_scale = nn.Parameter(torch.log(a).float())  # alpha_i (T,)
        self.shift = nn.Parameter(b.float())  # beta_i (T,)
        self.register_buffer("frozen_disp", d0, persistent=False)  # warm-up cache (the network is frozen then)
        self.anchored = bool(anchored)
        # c_i(x) = log z_prior - l_theta0: what maps the initial network onto the prior (0 when not anchored)
        with torch.no_grad():
            c = log_prior[:, 0] - self._log_depth_of(torch.arange(rgb.shape[0], device=rgb.device), d0)
        self.register_buffer("log_correction", c if self.anchored else torch.zeros_like(c))  # (T, h, w)

    # ------------------------------------------------------------------ interface of the trainer
    def param_groups(self, cfg) -> list[dict]:
        """Adam groups: the network's weights (``finetune_lr``), the per-frame affine (``finetune_affine_lr``)."""
        return [{"params": list(self.net.parameters()), "lr": cfg.finetune_lr},
                {"params": [self.log_scale, self.shift], "lr": cfg.finetune_affine_lr}]

    def _disparity(self, rgb: torch.Tensor) -> torch.Tensor:
        return self.net(rgb)[:, 0]

    @torch.no_grad()
    def _disparity_chunks(self, rgb: torch.Tensor) -> torch.Tensor:
        return torch.cat([self._disparity(rgb[k:k + CHUNK_FRAMES]) for k in range(0, rgb.shape[0], CHUNK_FRAMES)])

    def _log_depth_of(self, frames: torch.Tensor, disp: torch.Tensor) -> torch.Tensor:
        """``log z (B, h, w)`` from disparity ``(B, h, w)`` of frames ``(B,)`` (the per-frame affine)."""
        x = disp / self.disp_median[frames][:, None, None]
        inv = torch.exp(self.log_scale[frames])[:, None, None] * x + self.shift[frames][:, None, None]
        floor = self.inv_floor[frames][:, None, None]
        # a smooth floor (softplus of width floor/4): a hard max() has no gradient below the floor, and
        # a frame whose whole disparity fell under it stayed 50x too deep for good (HoloLens, 36 frames)
        inv = floor + 0.25 * floor * F.softplus((inv - floor) / (0.25 * floor))
        return math.log(self.d_ref) - torch.log(inv)

    def log_depth(self, frames: torch.Tensor, rgb: torch.Tensor, log_prior: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(log z (B, h, w), log z - log prior (B, h, w))`` of frames ``(B,)``; the network runs on ``rgb (B, 3, h, w)``."""
        log_z = self._log_depth_of(frames, self._disparity(rgb)) + self.log_correction[frames]
        return log_z, log_z - log_prior[:, 0]

    def log_depth_frozen(self, frames: torch.Tensor, rgb: torch.Tensor, log_prior: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """As :meth:`log_depth` with the network frozen at its initial weights (warm-up): cached
        disparities, gradients reach only the affine."""
        disp = self.frozen_disp[frames]
        log_z = self._log_depth_of(frames, disp) + self.log_correction[frames]
        return log_z, log_z - log_prior[:, 0]

    def mean_log_offset(self, r: torch.Tensor) -> torch.Tensor:
        """Mean log-depth offset from the prior of each frame of the batch (``r (B, h, w)`` -> ``(B,)``):
        the scale anchor. Per frame, not per batch: the prior comes aligned frame by frame to the
        poses, and with a batch mean one frame's scale could run off while another's made up for it
        (measured on HoloLens, 36 frames: the last third 20-57x too deep, refined AbsRel 17)."""
        return r.flatten(1).mean(1)

    def frame_scales(self) -> np.ndarray:
        """``(T,)`` the per-frame affine scales e^alpha_i (1 = the fit to the prior at construction)."""
        return np.exp(self.log_scale.detach().cpu().numpy())

    # ------------------------------------------------------------------ output
    @torch.no_grad()
    def full_resolution_depth(self, frame: int, rgb: torch.Tensor, log_prior: torch.Tensor,
                              prior_full: torch.Tensor) -> torch.Tensor:
        """Depth ``(H, W)`` of ``frame`` from its training-resolution rgb ``(3, h, w)`` and log prior
        ``(1, h, w)`` and the full-resolution prior ``(H, W)`` (see the module doc for the modes)."""
        size = tuple(prior_full.shape[-2:])
        fr = torch.tensor([frame], device=rgb.device)
        log_z = self._log_depth_of(fr, self._disparity(rgb[None])) + self.log_correction[fr]  # (1, h, w)
        if self.full_res == "ratio":
            r = F.interpolate((log_z - log_prior)[None], size=size, mode="bilinear", align_corners=False)[0, 0]
            return prior_full * torch.exp(r)
        inv_lo = torch.exp(-log_z)  # (1, h, w) inverse depth
        if self.full_res == "upsample":
            inv = F.interpolate(inv_lo[None], size=size, mode="bilinear", align_corners=False)[0, 0]
            return 1.0 / inv
        return self._network_full(frame, inv_lo[0], size)

    def _network_full(self, frame: int, inv_lo: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """The network at about the frame's size, its disparity fitted per frame to ``inv_lo (h, w)``."""
        from vid3d.optimizer.prior.pydnet import aspect_size

        H, W = size
        m = int(getattr(self.net, "multiple", 1))
        native = getattr(self.net, "input_size", (H, W))
        hn, wn = aspect_size(H, W, pixels=min(H * W, native[0] * native[1]), multiple=m)
        img = torch.from_numpy(np.ascontiguousarray(self.rgb_full[frame])).to(inv_lo.device)
        img = img.permute(2, 0, 1)[None].float() / 255.0
        img = F.interpolate(img, size=(hn, wn), mode="bilinear", align_corners=False, antialias=True).clamp(0, 1)
        d_hi = self._disparity(img)[None]  # (1, 1, hn, wn)
        d_lo = F.interpolate(d_hi, size=inv_lo.shape, mode="bilinear", align_corners=False, antialias=True)
        a, b = fit_affine(d_lo.flatten(1), inv_lo.flatten()[None])
        d_full = F.interpolate(d_hi, size=size, mode="bilinear", align_corners=False)[0, 0]
        inv = a.float() * d_full + b.float()
        return 1.0 / torch.maximum(inv, inv_lo.min() * 0.5)


DepthModel = ResidualDepthModel | FinetunedDepthModel
"""Either depth model of the trainer (same interface: log_depth, log_depth_frozen, param_groups,
mean_log_offset, frame_scales, full_resolution_depth)."""
