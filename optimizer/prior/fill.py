"""Edge-aware filling of unreliable depth, in inverse depth.

1. Pull-push (normalised convolution on a pyramid) gives every hole a smooth value from its
   surroundings.
2. Joint bilateral propagation guided by the image refines the holes: each hole pixel becomes the
   average of its 3x3 neighbours at dilations (16, 8, 4, 2, 1), weighted by their confidence and by
   exp(-|I_p - I_q|^2 / 2 sigma^2), so values flow along surfaces and stop at colour edges.
Known (confident) pixels never change.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def pull_push(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """Fill x (H, W) where w (H, W) == 0 with a smooth pyramid interpolation of the weighted values."""
    if float(w.sum()) == 0:
        return x
    levels = [(x * w, w)]
    while min(levels[-1][1].shape) > 1:
        xw, ww = levels[-1]
        levels.append((F.avg_pool2d(xw[None, None], 2, ceil_mode=True)[0, 0],
                       F.avg_pool2d(ww[None, None], 2, ceil_mode=True)[0, 0]))
    xw, ww = levels[-1]
    est = xw / ww.clamp(min=1e-12)
    for xw, ww in reversed(levels[:-1]):
        up = F.interpolate(est[None, None], size=xw.shape, mode="bilinear", align_corners=False)[0, 0]
        a = (ww / (ww + 1e-3)).clamp(0, 1)  # trust this level where it has weight
        est = a * xw / ww.clamp(min=1e-12) + (1 - a) * up
    return torch.where(w > 0, x, est)


def joint_bilateral_fill(x: torch.Tensor, w: torch.Tensor, guide: torch.Tensor, *, sigma_color: float,
                         iterations: int) -> torch.Tensor:
    """Refine the holes (w == 0) of an already dense x (H, W), guided by the image guide (3, H, W)."""
    holes = w <= 0
    if not bool(holes.any()):
        return x
    wk = torch.where(holes, torch.full_like(w, 0.05), w.clamp(min=0.05))
    H, W = x.shape
    for _ in range(iterations):
        for d in (16, 8, 4, 2, 1):
            num = torch.zeros_like(x)
            den = torch.zeros_like(x)
            xp = F.pad(x[None, None], (d, d, d, d), mode="replicate")[0, 0]
            wp = F.pad(wk[None, None], (d, d, d, d), mode="constant", value=0.0)[0, 0]
            gp = F.pad(guide[None], (d, d, d, d), mode="replicate")[0]
            for dy in (-d, 0, d):
                for dx in (-d, 0, d):
                    sl = (slice(d + dy, d + dy + H), slice(d + dx, d + dx + W))
                    diff = ((gp[:, sl[0], sl[1]] - guide) ** 2).sum(0)
                    a = wp[sl] * torch.exp(-diff / (2 * sigma_color**2))
                    num += a * xp[sl]
                    den += a
            x = torch.where(holes, num / den.clamp(min=1e-12), x)
    return x


def fill_depth(depth: torch.Tensor, weight: torch.Tensor, rgb: torch.Tensor, *, sigma_color: float,
               iterations: int) -> torch.Tensor:
    """Dense depth (H, W) from depth (H, W) trusted where weight (H, W) > 0, guided by rgb (H, W, 3) 0-255."""
    inv = torch.where(weight > 0, 1.0 / depth.clamp(min=1e-9), torch.zeros_like(depth))
    inv = pull_push(inv, weight)
    inv = joint_bilateral_fill(inv, weight, rgb.permute(2, 0, 1), sigma_color=sigma_color, iterations=iterations)
    return 1.0 / inv.clamp(min=1e-9)
