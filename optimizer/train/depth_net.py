"""Depth networks for test-time training. Depth stays positive: every net predicts log-depth.

Offline (no learned prior weights on disk) the depth of frame i is

    log z_i(x) = log z_prior_i(x) + s_i + g_i(x) + r_i(x),   r_i = m * tanh(UNet([rgb_i, log z_prior_i]) / m)

with a per-frame log-scale ``s_i`` (the reference's optional per-frame embedding), a per-frame
coarse log-offset grid ``g_i`` (bilinear over the image, corners at the image corners: the smooth,
frame-specific distortion a monocular prior has, which an image-conditioned net cannot know) and a
UNet residual ``r_i`` whose last layer starts at zero: at step 0 the model *is* the prior (it is
fitted to the prior by construction), then training bends it. The UNet runs at training
resolution; at the end its residual is upsampled and applied to the full-resolution prior, so the
prior's fine, distant detail survives (the reference re-predicts depth from the image and blurs it,
upstream issue #1).

:class:`~vid3d.optimizer.train.finetune.FinetunedDepthModel` is the alternative: the prior network
itself (PyDNet) fine-tuned, as the reference does with MiDaS (``TrainConfig.depth_model``).

:class:`PretrainedDepthWrapper` wraps a learned monocular network (e.g. MiDaS) when its weights
exist: BatchNorm stays in eval mode while the weights train (reference behaviour).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from vid3d.optimizer.train.upsample import joint_bilateral_upsample


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.LeakyReLU(0.1, inplace=True),
                         nn.Conv2d(cout, cout, 3, padding=1), nn.LeakyReLU(0.1, inplace=True))


class ResidualUNet(nn.Module):
    """Compact encoder-decoder ``(B, C_in, h, w) -> (B, 1, h, w)``; h, w multiples of 2^(levels-1).

    Output layer initialised to zero, so the network starts as the identity residual (0).
    """

    def __init__(self, in_channels: int = 4, channels: tuple[int, ...] = (16, 32, 64, 128)) -> None:
        super().__init__()
        self.enc = nn.ModuleList()
        cin = in_channels
        for c in channels:
            self.enc.append(_block(cin, c))
            cin = c
        self.dec = nn.ModuleList()
        for c_skip in reversed(channels[:-1]):
            self.dec.append(_block(cin + c_skip, c_skip))
            cin = c_skip
        self.head = nn.Conv2d(cin, 1, 3, padding=1)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)
        self.stride = 2 ** (len(channels) - 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for k, block in enumerate(self.enc):
            if k > 0:
                x = F.avg_pool2d(x, 2)
            x = block(x)
            skips.append(x)
        for block, skip in zip(self.dec, reversed(skips[:-1])):
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = block(torch.cat([x, skip], dim=1))
        return self.head(x)


def normalise_inputs(rgb: torch.Tensor, log_prior: torch.Tensor) -> torch.Tensor:
    """Network input ``(B, 4, h, w)`` from rgb ``(B, 3, h, w)`` in [0, 1] and log prior ``(B, 1, h, w)``.

    The log prior is centred per frame (its median removed), so a wrong per-frame scale of the
    prior does not change what the net sees.
    """
    med = log_prior.flatten(1).median(dim=1).values[:, None, None, None]
    return torch.cat([rgb - 0.5, log_prior - med], dim=1)


class ResidualDepthModel(nn.Module):
    """Per-frame log-scale ``s (T,)``, coarse log-offset grid ``(T, gh, gw)`` + UNet residual over the prior."""

    def __init__(self, num_frames: int, *, channels: tuple[int, ...] = (16, 32, 64, 128),
                 max_log_residual: float = 1.0, grid: tuple[int, int] = (3, 4),
                 upsample_sigma: float = 0.0) -> None:
        super().__init__()
        self.upsample_sigma = float(upsample_sigma)  # 0: bilinear residual upsampling
        self.unet = ResidualUNet(4, channels)
        self.log_scale = nn.Parameter(torch.zeros(num_frames))
        self.log_grid = nn.Parameter(torch.zeros(num_frames, 1, max(1, grid[0]), max(1, grid[1])))
        self.max_log_residual = float(max_log_residual)

    def frame_offset(self, frames: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """``s_i + g_i(x)``: per-frame log-depth offset ``(B, h, w)`` at image size ``size``."""
        g = self.log_grid[frames]
        if g.shape[-2:] == (1, 1):
            g = g.expand(-1, -1, *size)
        else:
            g = F.interpolate(g, size=size, mode="bilinear", align_corners=True)
        return self.log_scale[frames][:, None, None] + g[:, 0]

    def residual(self, rgb: torch.Tensor, log_prior: torch.Tensor) -> torch.Tensor:
        """Bounded log-depth residual ``r (B, 1, h, w)`` of rgb ``(B, 3, h, w)``, log prior ``(B, 1, h, w)``."""
        m = self.max_log_residual
        return m * torch.tanh(self.unet(normalise_inputs(rgb, log_prior)) / m)

    def log_depth(self, frames: torch.Tensor, rgb: torch.Tensor, log_prior: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(log z (B, h, w), r (B, h, w))`` for frame indices ``frames (B,)`` at training resolution."""
        r = self.residual(rgb, log_prior)[:, 0]
        return log_prior[:, 0] + self.frame_offset(frames, tuple(log_prior.shape[-2:])) + r, r

    def log_depth_frozen(self, frames: torch.Tensor, rgb: torch.Tensor, log_prior: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """As :meth:`log_depth` with the UNet frozen (warm-up): gradients reach only ``s_i`` and ``g_i``."""
        with torch.no_grad():
            r = self.residual(rgb, log_prior)[:, 0]
        return log_prior[:, 0] + self.frame_offset(frames, tuple(log_prior.shape[-2:])) + r, r

    def param_groups(self, cfg) -> list[dict]:
        """Adam groups: the UNet (``cfg.depth_lr``), the per-frame scales and grids (``cfg.scale_lr``)."""
        return [{"params": self.unet.parameters(), "lr": cfg.depth_lr},
                {"params": [self.log_scale, self.log_grid], "lr": cfg.scale_lr}]

    def mean_log_offset(self, r: torch.Tensor) -> torch.Tensor:
        """The clip's mean log-depth offset ``mean_i s_i + mean g`` (the scale anchor; ``r`` unused)."""
        return self.log_scale.mean() + self.log_grid.mean()

    def frame_scales(self) -> np.ndarray:
        """``(T,)`` per-frame depth scales e^s_i."""
        return np.exp(self.log_scale.detach().cpu().numpy())

    @torch.no_grad()
    def full_resolution_depth(self, frame: int, rgb: torch.Tensor, log_prior: torch.Tensor,
                              prior_full: torch.Tensor) -> torch.Tensor:
        """Depth ``(H, W)`` = prior_full ``(H, W)`` * exp(s + g + upsampled residual of the low-res inputs).

        The residual is upsampled guided by the log prior (:mod:`.upsample`, ``upsample_sigma`` > 0)
        or bilinearly (0).
        """
        r = self.residual(rgb[None], log_prior[None])  # (1, 1, h, w)
        if self.upsample_sigma > 0:
            r_up = joint_bilateral_upsample(r[0, 0], log_prior[0], torch.log(prior_full.clamp(min=1e-12)),
                                            self.upsample_sigma)
        else:
            r_up = F.interpolate(r, size=prior_full.shape[-2:], mode="bilinear", align_corners=False)[0, 0]
        off = self.frame_offset(torch.tensor([frame], device=r.device), tuple(prior_full.shape[-2:]))[0]
        return prior_full * torch.exp(off + r_up)


class PretrainedDepthWrapper(nn.Module):
    """A learned monocular depth net fine-tuned in place, BatchNorm frozen (reference, L152-172).

    ``net`` maps images ``(B, 3, H, W)`` to disparity (``output="disparity"``, depth = 1 / max(d, eps))
    or to depth. ``train()`` keeps every BatchNorm layer in eval mode so its running statistics stay
    those the weights were learned with.
    """

    def __init__(self, net: nn.Module, *, output: str = "disparity", eps: float = 1e-2) -> None:
        super().__init__()
        if output not in ("disparity", "depth"):
            raise ValueError(f"output must be 'disparity' or 'depth', got {output!r}")
        self.net, self.output, self.eps = net, output, float(eps)

    def train(self, mode: bool = True) -> "PretrainedDepthWrapper":
        super().train(mode)
        for m in self.net.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.eval()
        return self

    def forward(self, rgb: torch.Tensor) -> torch.Tensor:
        """Positive depth ``(B, H, W)`` from images ``(B, 3, H, W)``."""
        out = self.net(rgb)
        out = out[:, 0] if out.dim() == 4 else out
        if self.output == "disparity":
            return 1.0 / torch.clamp(F.relu(out), min=self.eps)
        return torch.clamp(out, min=self.eps)
