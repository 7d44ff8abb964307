"""Bundle frames -> coloured world points on a device (the renderer's input).

Points are derived, never stored: ``p_world = R (z K^-1 [u + 0.5, v + 0.5, 1]) + t`` via
:func:`vid3d.formats.conventions.unproject_depth` on torch tensors.
"""

from __future__ import annotations

import sys
from typing import Any, Iterable

import numpy as np
import torch

from vid3d.formats.conventions import unproject_depth
from vid3d.formats.errors import InputError, ShapeError


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``auto`` -> cuda when available, else cpu; ``cuda`` without a GPU -> InputError."""
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device not in ("cpu", "cuda") and not str(device).startswith("cuda:"):
        raise InputError(f"device: expected auto, cpu or cuda, got {device!r}")
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        raise InputError("device: cuda was asked for but torch sees no CUDA GPU (use --device cpu or auto)")
    return torch.device(device)


def depth_points(
    depth: Any,
    rgb: Any,
    K: Any,
    T_world_camera: Any,
    *,
    device: str | torch.device = "cpu",
    stride: int = 1,
    keep: Any | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Unproject one frame: ``depth`` (H, W), ``rgb`` (H, W, 3) uint8, ``K`` (3, 3), ``T_world_camera`` (4, 4).

    ``stride`` keeps every stride-th pixel in each direction; ``keep`` (H, W) bool drops pixels where False.
    Pixels with depth <= 0 or non-finite are dropped. Returns ``(points (N, 3) float32, colors (N, 3) uint8)``
    on ``device``.
    """
    dev = resolve_device(device)
    depth = torch.as_tensor(np.asarray(depth, dtype=np.float32)).to(dev)
    rgb = torch.as_tensor(np.asarray(rgb)).to(dev)
    if depth.ndim != 2 or rgb.shape != depth.shape + (3,) or rgb.dtype != torch.uint8:
        raise ShapeError(f"depth_points: expected depth (H, W) and rgb (H, W, 3) uint8, got {tuple(depth.shape)} and {tuple(rgb.shape)} {rgb.dtype}")
    if isinstance(stride, bool) or not isinstance(stride, int) or stride < 1:
        raise InputError(f"stride: expected a positive integer, got {stride!r}")
    K_t = torch.as_tensor(np.asarray(K, dtype=np.float64)).to(dev)
    T_t = torch.as_tensor(np.asarray(T_world_camera, dtype=np.float64)).to(dev, torch.float32)
    p = unproject_depth(depth, K_t, T_t)  # (H, W, 3)
    ok = (depth > 0) & torch.isfinite(depth)
    if keep is not None:
        ok &= torch.as_tensor(np.asarray(keep, dtype=bool)).to(dev)
    if stride > 1:
        p, rgb, ok = p[::stride, ::stride], rgb[::stride, ::stride], ok[::stride, ::stride]
    return p[ok].contiguous(), rgb[ok].contiguous()


def frame_points(bundle, t: int, *, device="cpu", stride: int = 1, depth_field: str | None = None,
                 static_only: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """World points of frame ``t`` of an open bundle: ``(points (N, 3) float32, colors (N, 3) uint8)``.

    ``depth_field`` defaults to :func:`choose_depth_field`. ``static_only`` drops pixels the bundle's
    dynamic mask marks as moving (when it has one).
    """
    field = depth_field or choose_depth_field(bundle, quiet=True)
    f = bundle.frame(t)
    depth = f.depth if field == "depth" else f.prior
    keep = None
    if static_only and f.dynamic_mask is not None:
        keep = ~f.dynamic_mask
    return depth_points(depth, f.rgb, f.K, f.T_world_camera, device=device, stride=stride, keep=keep)


def background_points(bundle, frames: Iterable[int], *, device="cpu", stride: int = 2,
                      depth_field: str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Static points of several frames together (the background hidden in any one frame), for hole filling.

    Returns ``(points (N, 3) float32, colors (N, 3) uint8)``; moving pixels are dropped when the
    bundle has a dynamic mask.
    """
    pts, cols = [], []
    for t in frames:
        p, c = frame_points(bundle, t, device=device, stride=stride, depth_field=depth_field, static_only=True)
        pts.append(p)
        cols.append(c)
    dev = resolve_device(device)
    if not pts:
        return torch.zeros((0, 3), device=dev), torch.zeros((0, 3), dtype=torch.uint8, device=dev)
    return torch.cat(pts), torch.cat(cols)


def choose_depth_field(bundle, *, quiet: bool = False) -> str:
    """``"depth"`` (refined, /depth/z) when present, else ``"prior"`` with a note on stderr."""
    field = bundle.depth_field()
    if field == "prior" and not quiet:
        print(f"note: {bundle.path.name} has no refined depth (/depth/z) yet; rendering /depth/prior", file=sys.stderr)
    return field
