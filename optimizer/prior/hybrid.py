"""A learned disparity made metric and consistent: aligned to the geometry where it exists, to the
neighbouring frames where it does not, and combined with the plane sweep.

- :func:`align_to_dense`: each frame's disparity is mapped to the SfM scale by a robust scale and
  shift in inverse depth (Huber IRLS) fitted on its static pixels where the plane-sweep depth is
  confident (dense: tens of thousands of samples, not only the sparse SfM points, which stand in
  for frames with too few confident pixels).
- :func:`align_through_flow`: a clip without parallax (a pan, a tripod) has no geometric depth at
  all; frame 0 fixes the clip's one scale (median depth 1) and every later frame is fitted to the
  frames already aligned, at the pixels that the optical flow links them by (static, valid): one
  consistent scale for the whole clip instead of each frame's own.
- :func:`combine`: the prior is the plane sweep where it is confident and the aligned learned depth
  elsewhere (moving objects, textureless areas, occlusions).
- :func:`local_scale`: one scale and shift per frame leaves the learned depth's smooth, large-scale
  distortions (a wall bent towards the camera); the ratio of sweep to learned depth, known on the
  confident static pixels, is filled edge-aware over the frame and applied, so unconfident static
  pixels keep the learned shape at the scale of the geometry around them.
"""

from __future__ import annotations

import numpy as np

from .align import Alignment, fit_scale_shift_disparity

MAX_SAMPLES = 20000  # per frame, for the dense fit
MIN_SAMPLES = 50  # fewer confident pixels than this: the frame falls back on the sparse fit
ALIGN_GAPS = (1, 2, 4)
MAX_RATIO = 3.0  # bound of the per-pixel scale field of :func:`local_scale`  # flow gaps a frame is aligned through (to frames already aligned)


def disparity_to_depth(disp: np.ndarray, a: Alignment) -> np.ndarray:
    """Depth (H, W) float32 of disparity (H, W) under ``1 / z = s * disp + b``; where the shift makes the
    inverse depth <= 0 (far pixels), depth is capped at 50x the frame's median depth."""
    inv = a.scale * disp.astype(np.float64) + a.shift
    floor = 0.02 * float(np.median(inv[inv > 0])) if np.any(inv > 0) else 1e-3
    return (1.0 / np.maximum(inv, floor)).astype(np.float32)


def _subsample(sel: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    idx = np.flatnonzero(sel)
    return idx if len(idx) <= MAX_SAMPLES else rng.choice(idx, MAX_SAMPLES, replace=False)


def align_to_dense(disp: np.ndarray, depth: np.ndarray, confidence: np.ndarray, *, min_confidence: float,
                   moving: np.ndarray | None = None,
                   fallback: list[Alignment] | None = None) -> tuple[np.ndarray, list[Alignment], list[str]]:
    """Per-frame (s, b) of ``1 / z = s * disp + b`` fitted on confident static plane-sweep depth.

    Args:
        disp: (T, H, W) relative disparity (larger = nearer).
        depth, confidence: (T, H, W) plane-sweep depth (unfilled) and its confidence in [0, 1].
        min_confidence: pixels at or above it (and not moving) are the samples.
        moving: (T, H, W) bool, True = moving (never a sample), or None.
        fallback: per-frame alignments (e.g. to the sparse SfM points) for frames with fewer than
            ``MIN_SAMPLES`` samples.
    Returns:
        ((T, H, W) float32 aligned depth, the alignment of each frame, what each frame was fitted on:
        ``"dense"`` or ``"sparse"``).
    """
    rng = np.random.default_rng(0)
    T = disp.shape[0]
    out = np.empty(disp.shape, np.float32)
    fits, how = [], []
    for t in range(T):
        sel = (confidence[t] >= min_confidence) & np.isfinite(depth[t]) & (depth[t] > 0)
        if moving is not None:
            sel &= ~moving[t]
        idx = _subsample(sel.ravel(), rng)
        a = fit_scale_shift_disparity(disp[t].ravel()[idx], depth[t].ravel()[idx]) if len(idx) >= MIN_SAMPLES else None
        if a is not None and a.scale > 0:
            how.append("dense")
        elif fallback is not None:
            a = fallback[t]
            how.append("sparse")
        else:
            raise ValueError(f"frame {t}: too few confident pixels to align and no fallback")
        out[t] = disparity_to_depth(disp[t], a)
        fits.append(a)
    return out, fits, how


def align_through_flow(disp: np.ndarray, flows, *, moving: np.ndarray | None = None,
                       gaps: tuple[int, ...] = ALIGN_GAPS) -> tuple[np.ndarray, list[Alignment], list[int]]:
    """One consistent scale for a clip without geometric depth (see module docstring).

    Args:
        disp: (T, H, W) relative disparity.
        flows: a FlowSet (``get(i, j) -> (flow (H, W, 2), valid (H, W))``, KeyError when absent).
        moving: (T, H, W) bool, True = moving (never a correspondence), or None.
    Returns:
        ((T, H, W) float32 depth with frame 0's median depth 1, each frame's alignment, the number of
        flow correspondences each frame was fitted on (frames without any keep the previous frame's
        alignment).
    """
    from vid3d.optimizer.flow import warp_bilinear

    T, H, W = disp.shape
    rng = np.random.default_rng(0)
    out = np.empty(disp.shape, np.float32)
    med = float(np.median(disp[0][disp[0] > 0])) if np.any(disp[0] > 0) else 1.0
    fits = [Alignment(1.0 / med, 0.0, 0, 0.0)]
    counts = [0]
    out[0] = disparity_to_depth(disp[0], fits[0])
    for j in range(1, T):
        d_src, z_tgt = [], []
        for g in gaps:
            i = j - g
            if i < 0:
                continue
            try:
                f, valid = flows.get(j, i)  # pixel x of frame j lands at x + f in frame i
            except KeyError:
                continue
            sel = np.asarray(valid, bool).copy()
            if moving is not None:
                sel &= ~moving[j]
            idx = _subsample(sel.ravel(), rng)
            if len(idx) == 0:
                continue
            z_i = warp_bilinear(out[i], f).ravel()[idx]  # frame i's aligned depth at x + f
            if moving is not None:
                still = warp_bilinear(moving[i].astype(np.float32), f).ravel()[idx] < 0.5
                idx, z_i = idx[still], z_i[still]
            d_src.append(disp[j].ravel()[idx])
            z_tgt.append(z_i)
        n = int(sum(len(d) for d in d_src))
        a = fit_scale_shift_disparity(np.concatenate(d_src), np.concatenate(z_tgt)) if n >= MIN_SAMPLES else None
        if a is None or a.scale <= 0:
            a = fits[-1]
        out[j] = disparity_to_depth(disp[j], a)
        fits.append(a)
        counts.append(n)
    return out, fits, counts


def combine(geometric: np.ndarray, confidence: np.ndarray, learned: np.ndarray, *, min_confidence: float,
            moving: np.ndarray | None = None, learned_confidence: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """The hybrid prior: plane sweep where confident (and static), aligned learned depth elsewhere.

    Args:
        geometric, confidence: (T, H, W) plane-sweep depth and confidence; learned: (T, H, W) aligned
        learned depth; moving: (T, H, W) bool or None.
    Returns:
        ((T, H, W) float32 depth, (T, H, W) float32 confidence: the plane sweep's where it is used,
        ``learned_confidence`` on learned static pixels, 0 on moving ones).
    """
    use_geo = (confidence >= min_confidence) & np.isfinite(geometric) & (geometric > 0)
    if moving is not None:
        use_geo &= ~moving
    depth = np.where(use_geo, geometric, learned).astype(np.float32)
    conf = np.where(use_geo, confidence, learned_confidence).astype(np.float32)
    if moving is not None:
        conf[moving] = 0.0
    return depth, conf


def local_scale(geometric: np.ndarray, confidence: np.ndarray, learned: np.ndarray, rgb: np.ndarray, *,
                min_confidence: float, moving: np.ndarray | None = None, sigma_color: float = 12.0,
                iterations: int = 2, device: str = "cpu") -> np.ndarray:
    """Learned depth corrected by a per-pixel scale field: ``(T, H, W)`` float32.

    Args:
        geometric, confidence: (T, H, W) plane-sweep depth and confidence; learned: (T, H, W) aligned
        learned depth; rgb: (T, H, W, 3) uint8 (edges stop the fill); moving: (T, H, W) bool or None
        (moving pixels never give a ratio, and keep the learned depth as aligned per frame).
    """
    import torch

    from .fill import fill_depth

    out = learned.astype(np.float32).copy()
    for t in range(len(learned)):
        known = (confidence[t] >= min_confidence) & (geometric[t] > 0) & np.isfinite(geometric[t])
        if moving is not None:
            known &= ~moving[t]
        if known.sum() < MIN_SAMPLES:
            continue
        ratio = np.where(known, geometric[t] / np.maximum(learned[t], 1e-9), 1.0).astype(np.float32)
        field = fill_depth(torch.from_numpy(ratio).to(device), torch.from_numpy(known.astype(np.float32)).to(device),
                           torch.from_numpy(rgb[t].astype(np.float32)).to(device), sigma_color=sigma_color,
                           iterations=iterations).cpu().numpy()
        # the filled ratio is a smooth correction, never a new depth: far from the confident pixels
        # pull-push can drive it towards 0 or infinity, so it is bounded
        corrected = learned[t] * np.clip(field, 1.0 / MAX_RATIO, MAX_RATIO)
        out[t] = corrected if moving is None else np.where(moving[t], learned[t], corrected)
    return out
