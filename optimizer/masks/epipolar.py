"""Residuals of one frame pair before poses exist: Sampson distance to a RANSAC fundamental matrix
(homography transfer error for pairs degenerate for F), and the epipolar masks built on them."""

from __future__ import annotations

import logging

import numpy as np

from vid3d.formats.conventions import pixel_grid
from vid3d.optimizer.robust import robust_fit

from .config import MaskConfig

log = logging.getLogger("vid3d.masks")

from .vote import decide_masks, pair_lookup


def sampson_distance(F: np.ndarray, x_i: np.ndarray, x_j: np.ndarray) -> np.ndarray:
    """First-order geometric distance (px) of correspondences ``(..., 2)`` to ``x_j^T F x_i = 0``: ``(...)``."""
    xi = np.concatenate([x_i, np.ones(x_i.shape[:-1] + (1,))], axis=-1)
    xj = np.concatenate([x_j, np.ones(x_j.shape[:-1] + (1,))], axis=-1)
    Fx = xi @ F.T  # F x_i
    Ftx = xj @ F  # F^T x_j
    num = np.einsum("...k,...k->...", xj, Fx) ** 2
    den = Fx[..., 0] ** 2 + Fx[..., 1] ** 2 + Ftx[..., 0] ** 2 + Ftx[..., 1] ** 2
    return np.sqrt(num / np.maximum(den, 1e-12))


def epipolar_residual(flow: np.ndarray, valid: np.ndarray, *, max_points: int = 1500, seed: int = 0
                      ) -> tuple[np.ndarray, str]:
    """Residual (px) ``(H, W)`` of a flow field ``(H, W, 2)`` against a robust two-view model fitted to it.

    The model is a fundamental matrix (Sampson distance), or a homography (transfer error) when the
    homography explains nearly as many correspondences (rotation-only or planar pair, where F is
    degenerate). Pixels with ``valid`` False get NaN. Returns ``(residual, "F" | "H" | "none")``;
    "none" (all NaN) when neither model can be fitted (a degenerate pair: skipped, counted by the caller).
    """
    import cv2

    H, W = valid.shape
    x_i = pixel_grid(H, W).astype(np.float64)
    x_j = x_i + flow
    residual = np.full((H, W), np.nan)
    idx = np.flatnonzero(valid)
    if len(idx) < 16:
        return residual, "none"
    rng = np.random.default_rng(seed)
    sample = idx if len(idx) <= max_points else rng.choice(idx, max_points, replace=False)
    p_i = x_i.reshape(-1, 2)[sample].astype(np.float32)
    p_j = x_j.reshape(-1, 2)[sample].astype(np.float32)
    cv2.setRNGSeed(seed)
    F, inl_F = robust_fit(cv2.findFundamentalMat, p_i, p_j, cv2.USAC_MAGSAC, 1.0, 0.999, 5000)
    Hm, inl_H = robust_fit(cv2.findHomography, p_i, p_j, cv2.RANSAC, 1.0, maxIters=2000, confidence=0.999)
    n_F = int(inl_F.sum()) if F is not None else 0
    n_H = int(inl_H.sum()) if Hm is not None else 0
    # per pixel in one compiled pass (:mod:`.residuals_cpu`; twins: the homography transfer below
    # and :func:`sampson_distance`, compared in the tests)
    from .residuals_cpu import model_residuals_cpu

    if n_H >= 0.9 * n_F and n_H > 0:
        return model_residuals_cpu(flow, valid, Hm, homography=True), "H"
    if n_F == 0:
        return residual, "none"
    return model_residuals_cpu(flow, valid, F, homography=False), "F"


def homography_transfer(Hm: np.ndarray, x_i: np.ndarray, x_j: np.ndarray) -> np.ndarray:
    """Distance (px) ``(N,)`` between ``x_j`` ``(N, 2)`` and ``x_i`` ``(N, 2)`` mapped by ``Hm`` (3, 3)."""
    proj = np.concatenate([x_i, np.ones((len(x_i), 1))], axis=1) @ Hm.T
    return np.linalg.norm(proj[:, :2] / proj[:, 2:3] - x_j, axis=1)



def motion_masks_epipolar(flows, config: MaskConfig = MaskConfig(), *, dilate: bool = True) -> tuple[np.ndarray, dict]:
    """Motion masks before camera poses exist, from a :class:`~vid3d.optimizer.flow.FlowSet`.

    Returns ``(masks (T, H, W) bool, report)``; with ``dilate`` the masks grow by
    ``prepose_dilate_fraction`` of the image diagonal (they serve to keep SfM features off movers).
    """
    import cv2

    T = int(flows.pairs.max()) + 1
    H, W = flows.valid.shape[1:]
    per_frame: list[list[np.ndarray]] = [[] for _ in range(T)]
    models = {"F": 0, "H": 0, "none": 0}
    for k, (i, j) in enumerate(flows.pairs):
        r, model = epipolar_residual(flows.flow[k], flows.valid[k], max_points=config.max_points, seed=config.seed + k)
        models[model] += 1
        per_frame[int(i)].append(r)
    masks = decide_masks(per_frame, pair_lookup(flows), config.replace(vote=config.prepose_vote))
    if dilate and config.prepose_dilate_fraction > 0:
        r = max(1, int(round(config.prepose_dilate_fraction * np.hypot(H, W))))
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
        masks = np.stack([cv2.dilate(m.astype(np.uint8), kernel).astype(bool) for m in masks])
    report = {"method": "epipolar", "models": models, "moving_fraction": float(masks.mean())}
    log.info("masks (before poses): %.1f%% of pixels moving (%d F / %d H pair models)",
             100 * report["moving_fraction"], models["F"], models["H"])
    return masks, report
