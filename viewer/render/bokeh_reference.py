"""Slow twin of :func:`vid3d.viewer.render.bokeh.bokeh`: numpy float64, explicit per-pixel gather loops.

Same model (signed thin-lens CoC, tent layer membership, premultiplied disk blur per layer,
back-to-front "over", renormalise), but every layer is blurred at full resolution with a literal
double loop, so it matches the fast path exactly when every layer radius is within the fast path's
``full_res_radius_px``. Tiny images only.
"""

from __future__ import annotations

import math

import numpy as np

from vid3d.viewer.render.bokeh import BokehSettings


def _srgb_to_linear(x):
    return np.where(x <= 0.04045, x / 12.92, ((np.maximum(x, 0) + 0.055) / 1.055) ** 2.4)


def _linear_to_srgb(x):
    x = np.clip(x, 0, 1)
    return np.where(x <= 0.0031308, x * 12.92, 1.055 * x ** (1 / 2.4) - 0.055)


def _membership(d: float, settings: BokehSettings, centres: list[float], l: int) -> float:
    """Tent weight of a pixel at depth ``d`` in layer ``l`` (thin-lens signed CoC, clamped)."""
    inv = 1.0 / d if (d > 0 and math.isfinite(d)) else 0.0
    c = min(max(settings.aperture * (1 - settings.focus_distance * inv), -settings.max_coc_px), settings.max_coc_px)
    if c > centres[l] and l + 1 < len(centres):
        return max(0.0, 1 - (c - centres[l]) / (centres[l + 1] - centres[l]))
    if c < centres[l] and l > 0:
        return max(0.0, 1 - (centres[l] - c) / (centres[l] - centres[l - 1]))
    return 1.0


def bokeh_reference(rgb: np.ndarray, depth: np.ndarray, settings: BokehSettings, *,
                    hidden_rgb: np.ndarray | None = None, hidden_depth: np.ndarray | None = None) -> np.ndarray:
    """``rgb`` (H, W, 3) float in [0, 1], ``depth`` (H, W) (+ optional hidden surface) -> (H, W, 3) float64."""
    rgb = np.asarray(rgb, dtype=np.float64)
    depth = np.asarray(depth, dtype=np.float64)
    H, W, _ = rgb.shape
    if settings.aperture == 0:
        return rgb.copy()
    x = _srgb_to_linear(rgb) if settings.linear_light else rgb
    if hidden_rgb is not None:
        hidden_rgb = np.asarray(hidden_rgb, dtype=np.float64)
        xh = _srgb_to_linear(hidden_rgb) if settings.linear_light else hidden_rgb
        hidden_depth = np.asarray(hidden_depth, dtype=np.float64)
    centres = settings.layer_cocs()
    acc = np.zeros((H, W, 4))
    for l in range(len(centres) - 1, -1, -1):
        layer = np.zeros((H, W, 4))
        for i in range(H):
            for j in range(W):
                a = _membership(depth[i, j], settings, centres, l)
                layer[i, j, :3] = x[i, j] * a
                layer[i, j, 3] = a
                if hidden_rgb is not None:
                    hd, d = hidden_depth[i, j], depth[i, j]
                    if hd > 0 and (d <= 0 or hd > d):  # a known surface behind the visible one
                        ah = _membership(hd, settings, centres, l) * (1 - a)
                        layer[i, j, :3] += xh[i, j] * ah
                        layer[i, j, 3] += ah
        r = abs(centres[l]) / 2
        if r >= 0.5:
            k = int(math.ceil(r - 1e-9))
            ker = np.array([[min(max(r + 0.5 - math.hypot(dx, dy), 0), 1) for dx in range(-k, k + 1)] for dy in range(-k, k + 1)])
            ker /= ker.sum()
            blurred = np.zeros_like(layer)
            for i in range(H):
                for j in range(W):
                    for dy in range(-k, k + 1):
                        for dx in range(-k, k + 1):
                            ii, jj = i + dy, j + dx
                            if 0 <= ii < H and 0 <= jj < W:
                                blurred[i, j] += ker[dy + k, dx + k] * layer[ii, jj]
            layer = blurred
        acc = layer + (1 - layer[..., 3:4]) * acc
    out = acc[..., :3] / np.maximum(acc[..., 3:4], 1e-6)
    if settings.linear_light:
        out = _linear_to_srgb(out)
    return np.clip(out, 0, 1)
