"""Hole filling for splatted views.

Two sources, best first:

1. **Other frames of the capture** (:func:`fill_from`): a second render of static points from
   neighbouring frames (which saw the background hidden here) fills pixels the primary render left
   empty. :func:`vid3d.viewer.render.render_view` does this when given ``background_points``.
2. **Pull-push** (:func:`pull_push_fill`, Gortler et al. 1996): a weighted image pyramid is pulled down
   and pushed back up so each hole takes the average of its nearest valid neighbours. With
   ``prefer_far`` only the farther neighbours of each coarse cell vote (max-depth gating), so
   disocclusions fill with background rather than a smear of the foreground that revealed them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from vid3d.formats.errors import ShapeError
from vid3d.viewer.render.splat import RenderResult


def fill_from(primary: RenderResult, secondary: RenderResult) -> RenderResult:
    """Take ``secondary``'s pixels where ``primary`` is empty. Both (H, W) renders of one camera.

    The filled pixels' ``index`` is kept as -1 - 1 - j for secondary point j (i.e. ``<= -2``) so callers
    can tell filled pixels (index <= -2) from primary hits (>= 0) and holes (-1).
    """
    if primary.depth.shape != secondary.depth.shape:
        raise ShapeError(f"fill_from: renders differ in size: {tuple(primary.depth.shape)} vs {tuple(secondary.depth.shape)}")
    take = (primary.index < 0) & (secondary.index >= 0)
    rgb = torch.where(take[..., None], secondary.rgb, primary.rgb)
    depth = torch.where(take, secondary.depth, primary.depth)
    index = torch.where(take, -2 - secondary.index, primary.index)
    return RenderResult(rgb=rgb, depth=depth, index=index)


def pull_push_fill(
    rgb: torch.Tensor,
    depth: torch.Tensor,
    valid: torch.Tensor | None = None,
    *,
    prefer_far: bool = True,
    far_ratio: float = 0.9,
    far_power: float = 8.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Fill the holes of ``rgb`` (H, W, 3) and ``depth`` (H, W) where ``valid`` (H, W) bool is False.

    ``valid`` defaults to ``depth > 0``. Valid pixels are returned unchanged; holes get the pyramid
    average of their nearest valid pixels. With ``prefer_far`` the pull keeps, in each coarse cell,
    the pixels within ``far_ratio`` of its farthest depth, and the push weights the interpolation
    taps by ``(d / d_max)^far_power``, so holes beside a depth edge take the far side. Returns ``(rgb (H, W, 3), depth (H, W))`` float32.
    If nothing is valid the inputs come back unchanged.
    """
    if rgb.ndim != 3 or rgb.shape[-1] != 3 or depth.shape != rgb.shape[:2]:
        raise ShapeError(f"pull_push_fill: expected rgb (H, W, 3) and depth (H, W), got {tuple(rgb.shape)} and {tuple(depth.shape)}")
    if valid is None:
        valid = depth > 0
    x = torch.cat([rgb.permute(2, 0, 1), depth[None]], 0)[None].to(torch.float32)  # (1, 4, H, W)
    w = valid[None, None].to(torch.float32)  # (1, 1, H, W)

    # Pull: level k+1 is the (weighted, far-gated) 2x2 average of level k.
    pyramid = [(x, w)]
    while min(x.shape[-2:]) > 1:
        if prefer_far:
            d = x[:, 3:4] * w
            dmax = F.max_pool2d(d, 2, ceil_mode=True)
            dmax_up = F.interpolate(dmax, scale_factor=2, mode="nearest")[..., : d.shape[-2], : d.shape[-1]]
            wg = w * (d >= far_ratio * dmax_up).to(w.dtype)
        else:
            wg = w
        sw = F.avg_pool2d(wg, 2, ceil_mode=True)
        sxw = F.avg_pool2d(x * wg, 2, ceil_mode=True)
        x = sxw / sw.clamp_min(1e-12)
        w = (sw > 0).to(torch.float32)
        pyramid.append((x, w))

    # Push: holes at level k take the upsampled filled level k+1; with prefer_far the bilinear taps
    # are weighted by (d / d_max)^far_power so the farther of two neighbouring coarse cells wins.
    filled = pyramid[-1][0]
    d_ref = pyramid[-1][0][:, 3:4].amax().clamp_min(1e-12)
    for x_k, w_k in reversed(pyramid[:-1]):
        if prefer_far:
            wd = (filled[:, 3:4] / d_ref).clamp_min(0) ** far_power + 1e-30
            num = F.interpolate(filled * wd, size=x_k.shape[-2:], mode="bilinear", align_corners=False)
            den = F.interpolate(wd, size=x_k.shape[-2:], mode="bilinear", align_corners=False)
            up = num / den
        else:
            up = F.interpolate(filled, size=x_k.shape[-2:], mode="bilinear", align_corners=False)
        filled = w_k * x_k + (1 - w_k) * up
    out = filled[0]
    return out[:3].permute(1, 2, 0).contiguous(), out[3].contiguous()
