"""Frames in, disparity out: resize to the network size, run PyDNet, resize back."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vid3d.formats.errors import InputError, ShapeError


def aspect_size(H: int, W: int, *, pixels: int = 384 * 640, multiple: int = 64) -> tuple[int, int]:
    """(h, w): multiples of ``multiple`` with about ``pixels`` pixels and the aspect ratio of H x W."""
    scale = np.sqrt(pixels / (H * W))
    return (max(multiple, int(round(H * scale / multiple)) * multiple),
            max(multiple, int(round(W * scale / multiple)) * multiple))


def pydnet_disparity(rgb: np.ndarray, *, weights: str | Path, device: str = "cpu",
                     size: tuple[int, int] | None = None, keep_aspect: bool = False, batch: int = 4) -> np.ndarray:
    """Relative disparity of frames with PyDNet.

    Args:
        rgb: (T, H, W, 3) uint8 frames.
        weights: a ``.tflite`` file (PyDNet v2) or a ``.npz`` saved by :meth:`PyDNet.save`.
        device: torch device name (``cpu``, ``cuda``...).
        size: (h, w) network input size, multiples of the network's multiple (64); default: the
            network's native size (384, 640), or with ``keep_aspect`` the multiples of 64 nearest to
            the frame's aspect ratio with about as many pixels.
        batch: frames per forward pass.
    Returns:
        (T, H, W) float32 disparity >= 0 (inverse depth up to a per-frame scale and shift).
    """
    import cv2
    import torch
    import torch.nn.functional as F

    from .network import PyDNet

    if not isinstance(rgb, np.ndarray) or rgb.ndim != 4 or rgb.shape[-1] != 3 or rgb.dtype != np.uint8:
        raise ShapeError(f"pydnet_disparity expects rgb (T, H, W, 3) uint8, got {getattr(rgb, 'shape', None)} "
                         f"{getattr(rgb, 'dtype', type(rgb).__name__)}")
    net = PyDNet.load(weights).to(device).eval()
    T, H, W = rgb.shape[:3]
    m = net.multiple
    if size is None:
        size = aspect_size(H, W, pixels=net.input_size[0] * net.input_size[1], multiple=m) if keep_aspect \
            else net.input_size
    h, w = (int(s) for s in size)
    if h % m or w % m or h <= 0 or w <= 0:
        raise InputError(f"PyDNet input size must be positive multiples of {m}, got {h}x{w}")
    interp = cv2.INTER_AREA if h * w < H * W else cv2.INTER_LINEAR
    out = np.empty((T, H, W), np.float32)
    with torch.inference_mode():
        for t0 in range(0, T, batch):
            frames = np.stack([cv2.resize(f, (w, h), interpolation=interp) for f in rgb[t0 : t0 + batch]])
            x = torch.from_numpy(frames).to(device).permute(0, 3, 1, 2).float() / 255.0  # (B, 3, h, w)
            d = net(x)  # (B, 1, h, w)
            d = F.interpolate(d, size=(H, W), mode="bilinear", align_corners=False)
            out[t0 : t0 + batch] = d[:, 0].clamp(min=0).cpu().numpy()
    return out
