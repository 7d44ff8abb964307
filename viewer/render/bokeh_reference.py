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


def bokeh_reference(rgb: np.ndarray, depth: np.ndarray, settings: BokehSettings) -> np.ndarray:
    """``rgb`` (H, W, 3) float in [0, 1], ``depth`` (H, W) -> (H, W, 3) float64."""
    rgb = np.asarray(rgb, dtype=np.float64)
    depth = np.asarray(depth, dtype=np.float64)
    H, W, _ = rgb.shape
    if settings.aperture == 0:
        return rgb.copy()
    x = _srgb_to_linear(rgb) if settings.linear_light else rgb
    centres = settings.layer_cocs()
    acc = np.zeros((H, W, 4))
    for l in range(len(centres) - 1, -1, -1):
        layer = np.zeros((H, W, 4))
        for i in range(H):
            for j in range(W):
                d = depth[i, j]
                inv = 1.0 / d if (d > 0 and math.isfinite(d)) else 0.0
                c = min(max(settings.aperture * (1 - settings.focus_distance * inv), -settings.max_coc_px), settings.max_coc_px)
                # tent membership in layer l
                if c > centres[l] and l + 1 < len(centres):
                    a = max(0.0, 1 - (c - centres[l]) / (centres[l + 1] - centres[l]))
                elif c < centres[l] and l > 0:
                    a = max(0.0, 1 - (centres[l] - c) / (centres[l] - centres[l - 1]))
                else:
                    a = 1.0
                layer[i, j, :3] = x[i, j] * a
                layer[i, j, 3] = a
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
