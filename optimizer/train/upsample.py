"""Joint bilateral upsampling (Kopf et al., SIGGRAPH 2007): a low-resolution map brought to full
resolution guided by a full-resolution image of the same scene.

Training predicts the depth net's log-depth residual at a low resolution; the full-resolution depth is
``prior_full * exp(offset + upsampled residual)``. Plain bilinear upsampling mixes the residual of a
foreground and a background pixel along every depth edge, so the refined depth gets a halo of the
wrong correction on both sides of an occlusion edge that the prior had sharp. Here every full-resolution
pixel x averages the low-resolution values r(q) of a ``(2R) x (2R)`` window of low-resolution pixels q
around it,

    r_up(x) = sum_q w_s(x, q) w_g(x, q) r(q) / sum_q w_s w_g,
    w_s = exp(-|u(x) - c(q)|^2 / 2),       (u: x in low-resolution pixel units, c(q): q's centre)
    w_g = exp(-(G(x) - g(q))^2 / (2 sigma^2)),

with G the full-resolution guide (log prior depth) and g the low-resolution guide the network saw
(the same log prior, resized): a pixel takes its correction from the low-resolution pixels on its own
surface. Where no window pixel is within reach of the guide, the bilinear value is kept (a tiny
weight ``FALLBACK`` on it).

:func:`joint_bilateral_upsample` is the torch path; :func:`joint_bilateral_upsample_reference` its
slow per-pixel twin (tests compare them). Pixel centres at +0.5, as everywhere in vid3d.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from vid3d.formats.errors import InputError, ShapeError

RADIUS = 2
"""Window half-size in low-resolution pixels: offsets -1..2 around the pixel below-left (4 x 4)."""
FALLBACK = 1e-4
"""Weight of the bilinear value, so a pixel whose guide matches no window pixel keeps it."""


def _check(low, guide_low, guide_full, sigma) -> None:
    if low.dim() != 2 or guide_low.shape != low.shape or guide_full.dim() != 2:
        raise ShapeError(f"joint_bilateral_upsample expects low (h, w), guide_low (h, w) and guide_full (H, W), "
                         f"got {tuple(low.shape)}, {tuple(guide_low.shape)}, {tuple(guide_full.shape)}")
    if not sigma > 0:
        raise InputError(f"sigma must be > 0, got {sigma}")


def joint_bilateral_upsample(low: torch.Tensor, guide_low: torch.Tensor, guide_full: torch.Tensor,
                             sigma: float) -> torch.Tensor:
    """``low (h, w)`` upsampled to ``guide_full``'s ``(H, W)``, edges from the guides (module doc).

    ``guide_low (h, w)`` is the guide at low resolution (what produced ``low``), ``sigma`` its range
    scale (in the guide's units). Returns ``(H, W)`` in ``low``'s dtype.
    """
    _check(low, guide_low, guide_full, sigma)
    h, w = low.shape
    H, W = guide_full.shape
    dev, dt = low.device, low.dtype
    u = (torch.arange(W, device=dev, dtype=torch.float32) + 0.5) * (w / W)  # (W,) low-res x of each column
    v = (torch.arange(H, device=dev, dtype=torch.float32) + 0.5) * (h / H)  # (H,)
    x0 = torch.floor(u - 0.5).long()
    y0 = torch.floor(v - 0.5).long()
    G = guide_full.float()
    num = torch.zeros(H, W, device=dev)
    den = torch.zeros(H, W, device=dev)
    lo, gl = low.float(), guide_low.float()
    for dy in range(1 - RADIUS, RADIUS + 1):
        qy = y0 + dy
        ok_y = (qy >= 0) & (qy < h)
        qy_c = qy.clamp(0, h - 1)
        wy = torch.exp(-0.5 * (v - (qy.float() + 0.5)) ** 2) * ok_y
        for dx in range(1 - RADIUS, RADIUS + 1):
            qx = x0 + dx
            ok_x = (qx >= 0) & (qx < w)
            qx_c = qx.clamp(0, w - 1)
            wx = torch.exp(-0.5 * (u - (qx.float() + 0.5)) ** 2) * ok_x
            r_q = lo[qy_c][:, qx_c]  # (H, W)
            g_q = gl[qy_c][:, qx_c]
            wgt = wy[:, None] * wx[None, :] * torch.exp(-0.5 * ((G - g_q) / sigma) ** 2)
            num += wgt * r_q
            den += wgt
    bilinear = F.interpolate(lo[None, None], size=(H, W), mode="bilinear", align_corners=False)[0, 0]
    return ((num + FALLBACK * bilinear) / (den + FALLBACK)).to(dt)


def joint_bilateral_upsample_reference(low: np.ndarray, guide_low: np.ndarray, guide_full: np.ndarray,
                                       sigma: float) -> np.ndarray:
    """Slow twin of :func:`joint_bilateral_upsample`: one full-resolution pixel at a time, float64."""
    low, guide_low, guide_full = (np.asarray(a, np.float64) for a in (low, guide_low, guide_full))
    _check(torch.from_numpy(low), torch.from_numpy(guide_low), torch.from_numpy(guide_full), sigma)
    h, w = low.shape
    H, W = guide_full.shape
    bilinear = F.interpolate(torch.from_numpy(low)[None, None], size=(H, W), mode="bilinear",
                             align_corners=False)[0, 0].numpy()
    out = np.empty((H, W))
    for y in range(H):
        vy = (y + 0.5) * h / H
        for x in range(W):
            ux = (x + 0.5) * w / W
            num = den = 0.0
            for qy in range(h):
                for qx in range(w):
                    if not (-RADIUS < qy - math.floor(vy - 0.5) <= RADIUS and -RADIUS < qx - math.floor(ux - 0.5) <= RADIUS):
                        continue
                    d2 = (ux - qx - 0.5) ** 2 + (vy - qy - 0.5) ** 2
                    wgt = math.exp(-0.5 * d2) * math.exp(-0.5 * ((guide_full[y, x] - guide_low[qy, qx]) / sigma) ** 2)
                    num += wgt * low[qy, qx]
                    den += wgt
            out[y, x] = (num + FALLBACK * bilinear[y, x]) / (den + FALLBACK)
    return out
