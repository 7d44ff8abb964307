"""Occlusion-aware depth of field (bokeh) by layered, premultiplied disk blur in linear light.

Thin lens: a point at depth d seen by a lens focused at d_f has a circle of confusion of diameter
``c = A f_px |1/d_f - 1/d|`` pixels (A the aperture diameter in scene units, f_px the focal length in
pixels), linear in inverse depth. vid3d parametrises the aperture scale-free, by the blur of a point
at infinity, ``aperture = c_inf = A f_px / d_f``, so the signed CoC is

    c(d) = c_inf * (1 - d_f / d)        (< 0 in front of the focus plane, > 0 behind)

which stays the same when the scene and d_f are scaled together (up-to-scale captures).

Algorithm (Kraus & Strengert 2007; Schedl & Wimmer; Dr.Bokeh 2024 without the learning):

1. sRGB -> linear light;
2. signed CoC per pixel, clamped to ``max_coc_px``; soft (tent) membership in ``num_layers`` layers whose
   centres are fixed signed CoCs, the in-focus layer exactly at 0;
3. each layer's premultiplied RGBA is blurred with a disk of that layer's radius |c_l| / 2;
4. back to front (largest c first), ``acc = layer + (1 - layer_alpha) * acc``; finally ``rgb = acc / acc_alpha``.

A sharp foreground sits in its own layer, so it never bleeds over the blurred background behind it
(whose layer has a hole there and is renormalised), while a blurred foreground layer spreads
semi-transparently over whatever lies behind it. Pixels at exactly d_f come back unchanged.
Layers with a large radius are blurred at reduced resolution (area-downsample, disk, bilinear up).
The slow twin is :func:`vid3d.viewer.render.bokeh_reference.bokeh_reference`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import ClassVar

import torch
import torch.nn.functional as F

from vid3d.formats.errors import InputError, ShapeError


@dataclass(frozen=True)
class BokehSettings:
    """Depth-of-field settings (all lengths in pixels of the rendered image, depths in scene units).

    focus_distance: z-depth that is in focus (scene units, > 0).
    aperture: blur diameter in pixels of a point at infinity, c_inf = A f_px / d_f (thin lens with
        aperture diameter A in scene units); the blur of depth d is c_inf |1 - d_f / d|. 0 = pinhole.
    max_coc_px: largest blur diameter (px); nearer points are clamped to it.
    num_layers: odd number of depth layers (>= 3); more layers = smoother transitions, slower.
    linear_light: blur in linear light (sRGB decoded first), as a real lens does.
    full_res_radius_px: layers whose blur radius is at most this are convolved at full resolution;
        larger ones at 1/s resolution with s = ceil(radius / full_res_radius_px).
    """

    focus_distance: float
    aperture: float = 12.0
    max_coc_px: float = 32.0
    num_layers: int = 9
    linear_light: bool = True
    full_res_radius_px: float = 3.0

    PRESETS: ClassVar[dict[str, dict]] = {
        "draft": dict(num_layers=5, max_coc_px=16.0, full_res_radius_px=2.0),
        "standard": dict(num_layers=9, max_coc_px=32.0, full_res_radius_px=3.0),
        "best": dict(num_layers=17, max_coc_px=64.0, full_res_radius_px=8.0),
    }

    def __post_init__(self) -> None:
        for name in ("focus_distance", "max_coc_px", "full_res_radius_px"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise InputError(f"BokehSettings.{name}: expected a positive finite number, got {v!r}")
        if not (isinstance(self.aperture, (int, float)) and math.isfinite(self.aperture) and self.aperture >= 0):
            raise InputError(f"BokehSettings.aperture: expected a finite number >= 0 (px of blur at infinity), got {self.aperture!r}")
        n = self.num_layers
        if isinstance(n, bool) or not isinstance(n, int) or n < 3 or n % 2 == 0:
            raise InputError(f"BokehSettings.num_layers: expected an odd integer >= 3, got {n!r}")

    @classmethod
    def preset(cls, name: str, *, focus_distance: float, aperture: float = 12.0) -> "BokehSettings":
        """Named preset (draft, standard, best) for a focus distance and aperture."""
        if name not in cls.PRESETS:
            raise InputError(f"BokehSettings.preset: expected one of {sorted(cls.PRESETS)}, got {name!r}")
        return cls(focus_distance=focus_distance, aperture=aperture, **cls.PRESETS[name])

    @classmethod
    def from_lens(cls, *, focus_distance: float, aperture_diameter: float, focal_px: float, **kw) -> "BokehSettings":
        """From a physical thin lens: aperture diameter A (scene units) and focal length in pixels."""
        return cls(focus_distance=focus_distance, aperture=aperture_diameter * focal_px / focus_distance, **kw)

    def with_focus(self, focus_distance: float) -> "BokehSettings":
        return replace(self, focus_distance=focus_distance)

    def layer_cocs(self) -> list[float]:
        """Signed CoC diameters (px) of the layer centres, ascending (near to far); one is exactly 0."""
        n = (self.num_layers - 1) // 2
        far = min(self.aperture, self.max_coc_px)
        near = [-self.max_coc_px * k / n for k in range(n, 0, -1)]
        back = [far * k / n for k in range(1, n + 1)]
        return near + [0.0] + back


def srgb_to_linear(x: torch.Tensor) -> torch.Tensor:
    """sRGB-encoded values in [0, 1] (any shape) to linear light."""
    return torch.where(x <= 0.04045, x / 12.92, ((x.clamp_min(0) + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(x: torch.Tensor) -> torch.Tensor:
    """Linear light in [0, 1] (any shape) to sRGB encoding."""
    x = x.clamp(0.0, 1.0)
    return torch.where(x <= 0.0031308, x * 12.92, 1.055 * x ** (1 / 2.4) - 0.055)


def signed_coc(depth: torch.Tensor, settings: BokehSettings) -> torch.Tensor:
    """Signed CoC diameter (px) per pixel, ``c_inf (1 - d_f / d)`` clamped to +-max_coc_px. (H, W) -> (H, W).

    Empty depth (<= 0 or non-finite) counts as infinitely far.
    """
    d = depth.to(torch.float32)
    inv = torch.where((d > 0) & torch.isfinite(d), 1.0 / d, torch.zeros_like(d))
    c = settings.aperture * (1.0 - settings.focus_distance * inv)  # = A f (1/d_f - 1/d) in px
    return c.clamp(-settings.max_coc_px, settings.max_coc_px)


def layer_weight(coc: torch.Tensor, centres: list[float], l: int) -> torch.Tensor:
    """Tent (linear-interpolation) membership (H, W) of each pixel's CoC (H, W) in layer ``l``.

    Summed over the layers it is 1; beyond the first/last centre the end layer takes everything.
    Branch-free: ``clamp(1 - relu(c - c_l) / (c_{l+1} - c_l) - relu(c_l - c) / (c_l - c_{l-1}), 0, 1)``.
    """
    c_l = centres[l]
    w = torch.ones_like(coc)
    if l + 1 < len(centres):  # falling edge towards the next (farther) centre
        w = w.sub_((coc - c_l).clamp_min_(0).div_(centres[l + 1] - c_l))
    if l > 0:  # rising edge from the previous (nearer) centre
        w = w.sub_((c_l - coc).clamp_min_(0).div_(c_l - centres[l - 1]))
    return w.clamp_(0, 1)


def layer_weights(coc: torch.Tensor, centres: list[float]) -> torch.Tensor:
    """All layers' memberships (L, H, W); sums to 1 over L."""
    return torch.stack([layer_weight(coc, centres, l) for l in range(len(centres))])


def disk_kernel(radius: float, *, device=None, dtype=torch.float32) -> torch.Tensor:
    """Normalised anti-aliased disk ``(2k+1, 2k+1)``, k = ceil(radius): weight clamp(r + 0.5 - dist, 0, 1)."""
    k = int(math.ceil(radius - 1e-9))
    ax = torch.arange(-k, k + 1, device=device, dtype=torch.float64)
    dist = torch.sqrt(ax[None, :] ** 2 + ax[:, None] ** 2)
    w = (radius + 0.5 - dist).clamp(0, 1)
    return (w / w.sum()).to(dtype)


def disk_blur(x: torch.Tensor, radius: float, *, full_res_radius_px: float = 3.0) -> torch.Tensor:
    """Blur channels ``x`` (C, H, W) with a disk of ``radius`` px (zero padding: premultiplied input).

    Radii above ``full_res_radius_px`` are blurred at 1/s resolution, s = ceil(radius / full_res_radius_px).
    """
    if radius < 0.5:
        return x
    C, H, W = x.shape
    s = max(1, math.ceil(radius / full_res_radius_px - 1e-9))
    y = x[None]
    if s > 1:
        y = F.avg_pool2d(y, s, ceil_mode=True) if (H % s or W % s) else F.avg_pool2d(y, s)
    ker = disk_kernel(radius / s, device=x.device, dtype=x.dtype)
    k = ker.shape[-1] // 2
    y = F.conv2d(y, ker.expand(C, 1, -1, -1).contiguous(), padding=k, groups=C)
    if s > 1:
        y = F.interpolate(y, size=(H, W), mode="bilinear", align_corners=False)
    return y[0]


def bokeh(
    rgb: torch.Tensor,
    depth: torch.Tensor,
    settings: BokehSettings,
    *,
    hidden_rgb: torch.Tensor | None = None,
    hidden_depth: torch.Tensor | None = None,
) -> torch.Tensor:
    """Depth of field for ``rgb`` (H, W, 3) float in [0, 1] with z-depth ``depth`` (H, W) -> (H, W, 3) float32.

    ``hidden_rgb`` (H, W, 3) / ``hidden_depth`` (H, W): the surface behind the visible one (e.g. a
    depth-peeled render of other frames' static points; 0 = unknown). Where it lies behind, it
    joins each layer under the visible surface (``layer = front + (1 - a_front) hidden``), so a
    blurred foreground turns semi-transparent over the real background (partial occlusion)
    instead of over its own renormalised colour.
    Runs on the inputs' device. See the module docstring for the model and the layering. On CPU,
    layers no pixel belongs to are skipped (a free host check there; on CUDA every layer runs, so
    there is no sync).
    """
    if rgb.ndim != 3 or rgb.shape[-1] != 3 or depth.shape != rgb.shape[:2]:
        raise ShapeError(f"bokeh: expected rgb (H, W, 3) and depth (H, W), got {tuple(rgb.shape)} and {tuple(depth.shape)}")
    if (hidden_rgb is None) != (hidden_depth is None):
        raise ShapeError("bokeh: give both hidden_rgb and hidden_depth, or neither")
    if hidden_rgb is not None and (hidden_rgb.shape != rgb.shape or hidden_depth.shape != depth.shape):
        raise ShapeError(f"bokeh: hidden layer must match rgb {tuple(rgb.shape)} / depth {tuple(depth.shape)}, "
                         f"got {tuple(hidden_rgb.shape)} / {tuple(hidden_depth.shape)}")
    if settings.aperture == 0:
        return rgb.to(torch.float32).clone()
    x = rgb.to(torch.float32).permute(2, 0, 1)  # (3, H, W)
    if settings.linear_light:
        x = srgb_to_linear(x)
    coc = signed_coc(depth, settings)
    centres = settings.layer_cocs()
    xh = coc_h = behind = None
    if hidden_rgb is not None:
        xh = hidden_rgb.to(torch.float32).permute(2, 0, 1)
        if settings.linear_light:
            xh = srgb_to_linear(xh)
        hd = hidden_depth.to(torch.float32)
        d = depth.to(torch.float32)
        behind = ((hd > 0) & ((d <= 0) | (hd > d))).to(torch.float32)  # known and really behind
        coc_h = signed_coc(hd, settings)
    skip_empty = rgb.device.type == "cpu"
    acc = torch.zeros((4,) + tuple(depth.shape), dtype=torch.float32, device=rgb.device)
    layer = torch.empty_like(acc)
    for l in range(len(centres) - 1, -1, -1):  # back to front
        a = layer_weight(coc, centres, l)
        ah = None if xh is None else layer_weight(coc_h, centres, l).mul_(behind)
        if skip_empty and not bool(a.any()) and (ah is None or not bool(ah.any())):
            continue
        torch.mul(x, a, out=layer[:3])  # premultiplied RGBA (4, H, W)
        layer[3] = a
        if ah is not None:  # the hidden surface under the visible one, within this layer
            ah = ah.mul_(1.0 - a)
            layer[:3].add_(xh * ah)
            layer[3].add_(ah)
        blurred = disk_blur(layer, abs(centres[l]) / 2.0, full_res_radius_px=settings.full_res_radius_px)
        acc.mul_(1.0 - blurred[3:4]).add_(blurred)  # "over": acc = layer + (1 - alpha) acc
    out = acc[:3] / acc[3:4].clamp_min(1e-6)
    if settings.linear_light:
        out = linear_to_srgb(out)
    return out.clamp_(0, 1).permute(1, 2, 0).contiguous()


def auto_focus_distance(depth: torch.Tensor, dynamic_mask: torch.Tensor | None = None) -> float:
    """Focus/subject distance: the median depth of the moving object when ``dynamic_mask`` (H, W) marks
    enough pixels (>= 0.5%), else of the valid pixels in the centre third of ``depth`` (H, W)."""
    d = depth.to(torch.float32)
    valid = (d > 0) & torch.isfinite(d)
    if dynamic_mask is not None:
        m = dynamic_mask.to(torch.bool) & valid
        if int(m.sum()) >= max(1, int(0.005 * d.numel())):
            return float(d[m].median())
    H, W = d.shape
    c = d[H // 3 : H - H // 3, W // 3 : W - W // 3]
    cv = c[(c > 0) & torch.isfinite(c)]
    if cv.numel() == 0:
        cv = d[valid]
    if cv.numel() == 0:
        raise InputError("auto focus: the depth map has no valid (positive) values")
    return float(cv.median())
