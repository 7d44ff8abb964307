"""Stage 2 entry: ``run(rgb, config) -> FlowSet``."""

from __future__ import annotations

import logging
import time

import numpy as np

from vid3d.formats.errors import ShapeError

from .backends import make_backend
from .config import FlowConfig, FlowSet, frame_pairs, gaps_that_fit
from .ops import forward_backward_validity, resize_flow

log = logging.getLogger("vid3d.flow")


def run(rgb: np.ndarray, config: FlowConfig = FlowConfig(), *, device: str = "auto", progress: bool = False) -> FlowSet:
    """Optical flow of every pair (i, i+g), both directions, with forward-backward validity.

    Args:
        rgb: ``(T, H, W, 3)`` uint8 frames at the working resolution.
        config: :class:`FlowConfig`.
        device: torch device name for a learned backend (RAFT).
    Returns:
        :class:`FlowSet` with ``P = 2 * sum_g (T - g)`` pairs.
    Raises:
        ShapeError on a malformed clip; InputError when no gap fits the clip. Gaps a short clip
        cannot hold (g >= T) are dropped with a warning and listed in ``report["dropped_gaps"]``.
    """
    if not isinstance(rgb, np.ndarray) or rgb.ndim != 4 or rgb.shape[-1] != 3 or rgb.dtype != np.uint8:
        raise ShapeError(f"flow.run expects rgb (T, H, W, 3) uint8, got {getattr(rgb, 'shape', None)}")
    T, H, W = rgb.shape[:3]
    gaps, dropped = gaps_that_fit(T, config.gaps)
    if dropped:
        log.warning("flow: the clip has %d frames; gaps %s do not fit and were dropped (kept %s)", T,
                    ",".join(map(str, dropped)), ",".join(map(str, gaps)))
    backend = make_backend(config, device)
    pairs = frame_pairs(T, gaps)
    flow = np.empty((len(pairs), H, W, 2), dtype=np.float32)
    t0 = time.perf_counter()
    items = range(0, len(pairs), 2)
    if progress:
        from tqdm import tqdm

        items = tqdm(items, desc=f"flow ({backend.name})", unit="pair", leave=False)
    for k in items:
        (i, j) = pairs[k]
        flow[k] = resize_flow(backend(rgb[i], rgb[j]), H, W)
        flow[k + 1] = resize_flow(backend(rgb[j], rgb[i]), H, W)
    t_flow = time.perf_counter() - t0
    valid = np.empty((len(pairs), H, W), dtype=bool)
    for k in range(0, len(pairs), 2):
        valid[k] = forward_backward_validity(flow[k], flow[k + 1], config.fb_threshold)
        valid[k + 1] = forward_backward_validity(flow[k + 1], flow[k], config.fb_threshold)
    report = {
        "backend": backend.name,
        "num_pairs": len(pairs),
        "gaps": list(gaps),
        "dropped_gaps": list(dropped),
        "valid_fraction": float(valid.mean()),
        "seconds_per_pair": t_flow / max(len(pairs), 1),
        "seconds": time.perf_counter() - t0,
    }
    log.info("flow: %d pairs (gaps %s) with %s, %.0f%% forward-backward valid, %.3f s/pair",
             len(pairs), ",".join(map(str, gaps)), backend.name, 100 * report["valid_fraction"],
             report["seconds_per_pair"])
    return FlowSet(pairs=np.asarray(pairs, dtype=np.int32).reshape(-1, 2), flow=flow, valid=valid,
                   backend=backend.name, report=report)
