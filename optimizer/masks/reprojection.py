"""Residuals once poses exist: flow against the camera-motion flow of a static point at the consensus
depth (slow reference twin included), and the reprojection masks built on them."""

from __future__ import annotations

import logging
import warnings

import numpy as np

from vid3d.formats.conventions import invert_T, pixel_grid
from vid3d.formats.errors import ShapeError

from .config import MaskConfig

log = logging.getLogger("vid3d.masks")

from .vote import decide_masks, pair_lookup


def _project_candidates(x: np.ndarray, K: np.ndarray, T_j_i: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Project pixels ``x`` ``(N, 2)`` of camera i at inverse depths ``q`` ``(N,)`` into camera j: ``(N, 2)``.

    ``X_j ~ R_ji K^-1 x~ + q t_ji`` (dividing the 3-D point by its depth keeps q = 0 finite).
    """
    rays = np.concatenate([x, np.ones((len(x), 1))], axis=1) @ np.linalg.inv(K).T
    Xj = rays @ T_j_i[:3, :3].T + q[:, None] * T_j_i[:3, 3]
    p = Xj @ K.T
    z = p[:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        uv = p[:, :2] / z[:, None]
    uv[z <= 1e-9] = np.inf  # behind camera j: cannot be a static point
    return uv


def triangulate_inverse_depth(x: np.ndarray, x_j: np.ndarray, K: np.ndarray, T_j_i: np.ndarray) -> np.ndarray:
    """Least-squares inverse depth ``(N,)`` along the rays of pixels ``x`` ``(N, 2)`` (camera i) that
    project onto ``x_j`` ``(N, 2)`` in camera j. ``u_j (a_2 + q b_2) = a_0 + q b_0`` (same for v), with
    ``a = K R_ji K^-1 x~`` and ``b = K t_ji``; negative values mean "behind": not a static point.
    """
    rays = np.concatenate([x, np.ones((len(x), 1))], axis=1) @ np.linalg.inv(K).T
    a = rays @ T_j_i[:3, :3].T @ K.T
    b = K @ T_j_i[:3, 3]
    A = np.stack([b[0] - x_j[:, 0] * b[2], b[1] - x_j[:, 1] * b[2]], axis=1)
    B = np.stack([x_j[:, 0] * a[:, 2] - a[:, 0], x_j[:, 1] * a[:, 2] - a[:, 1]], axis=1)
    return (A * B).sum(1) / np.maximum((A * A).sum(1), 1e-12)


def reprojection_residuals(flows: list[np.ndarray], valids: list[np.ndarray], K: np.ndarray,
                           T_j_i: list[np.ndarray]) -> np.ndarray:
    """Flow residuals (px) ``(P, H, W)`` of one frame i against a static point at one inverse depth.

    ``flows[p]`` ``(H, W, 2)`` is the flow i -> j_p, ``valids[p]`` ``(H, W)`` its validity, ``T_j_i[p]``
    ``(4, 4)`` the relative pose. Each valid pair triangulates an inverse depth ``q_p(x)``; the
    consensus ``q*(x)`` is their median (a static point has one depth, a mover's apparent depth
    changes with the gap and direction), and the residual of every pair is the distance between
    the flow target and the projection of x at ``q*`` (NaN where the pair's flow is invalid).
    One compiled pass (:mod:`.residuals_cpu`); :func:`reprojection_residuals_reference` is its slow twin.
    """
    from .residuals_cpu import reprojection_residuals_cpu

    return reprojection_residuals_cpu(flows, valids, K, T_j_i)


def reprojection_residuals_numpy(flows: list[np.ndarray], valids: list[np.ndarray], K: np.ndarray,
                                 T_j_i: list[np.ndarray]) -> np.ndarray:
    """:func:`reprojection_residuals` vectorised with numpy (same arguments and result; its compiled
    pass is 10x faster)."""
    P = len(flows)
    H, W = valids[0].shape
    x = pixel_grid(H, W).astype(np.float64).reshape(-1, 2)
    targets = [x + f.reshape(-1, 2).astype(np.float64) for f in flows]
    ok = np.stack([v.reshape(-1) for v in valids])  # (P, N)
    q = np.stack([triangulate_inverse_depth(x, targets[p], K, T_j_i[p]) for p in range(P)])
    with warnings.catch_warnings():  # pixels with no valid pair: NaN, handled below
        warnings.simplefilter("ignore", RuntimeWarning)
        q_star = np.nanmedian(np.where(ok, q, np.nan), axis=0)
    q_star = np.maximum(np.nan_to_num(q_star, nan=0.0), 0.0)  # behind the camera: not static
    res = np.stack([np.linalg.norm(_project_candidates(x, K, T_j_i[p], q_star) - targets[p], axis=1)
                    for p in range(P)])
    res = np.where(np.isfinite(res), res, 1e6)
    res[~ok] = np.nan
    return res.reshape(P, H, W)


def reprojection_residuals_reference(flows, valids, K, T_j_i) -> np.ndarray:
    """Slow twin of :func:`reprojection_residuals`: one pixel at a time, explicit 3-D points."""
    P = len(flows)
    H, W = valids[0].shape
    Kinv = np.linalg.inv(K)
    out = np.full((P, H, W), np.nan)
    for y in range(H):
        for x in range(W):
            u = np.array([x + 0.5, y + 0.5, 1.0])
            qs = []
            for p in range(P):
                if not valids[p][y, x]:
                    continue
                target = u[:2] + flows[p][y, x]
                R, t = T_j_i[p][:3, :3], T_j_i[p][:3, 3]
                a, b = K @ R @ Kinv @ u, K @ t
                A = np.array([b[0] - target[0] * b[2], b[1] - target[1] * b[2]])
                B = np.array([target[0] * a[2] - a[0], target[1] * a[2] - a[1]])
                qs.append(A @ B / max(A @ A, 1e-12))
            if not qs:
                continue
            q = max(float(np.median(qs)), 0.0)
            for p in range(P):
                if not valids[p][y, x]:
                    continue
                R, t = T_j_i[p][:3, :3], T_j_i[p][:3, 3]
                X = R @ Kinv @ u + q * t  # the point at depth 1/q, scaled by q
                if X[2] <= 1e-9:
                    out[p, y, x] = 1e6
                    continue
                proj = (K @ X)[:2] / (K @ X)[2]
                out[p, y, x] = np.linalg.norm(proj - (u[:2] + flows[p][y, x]))
    return out


# ---------------------------------------------------------------------------------------------
# From residuals to masks
# ---------------------------------------------------------------------------------------------



def motion_masks_reprojection(flows, K: np.ndarray, T_world_camera: np.ndarray,
                              config: MaskConfig = MaskConfig(), *, rgb: np.ndarray | None = None,
                              progress: bool = False) -> tuple[np.ndarray, dict]:
    """Motion masks once poses exist: flow residual against the camera-motion-induced flow of a static
    point at the best consensus depth (per pixel, over all of the frame's pairs).

    Args:
        flows: :class:`~vid3d.optimizer.flow.FlowSet` (T frames of H x W).
        K: ``(3, 3)`` intrinsics at the working resolution.
        T_world_camera: ``(T, 4, 4)`` camera-to-world poses.
        rgb: ``(T, H, W, 3)`` uint8 frames: pixels without image structure (``config.min_texture``)
            have no residual (:mod:`.texture`); None = every pixel has one.
    Returns:
        ``(masks (T, H, W) bool, report)``.
    """
    T = int(flows.pairs.max()) + 1
    T_world_camera = np.asarray(T_world_camera, dtype=np.float64)
    if T_world_camera.shape != (T, 4, 4) or np.shape(K) != (3, 3):
        raise ShapeError(f"expected K (3, 3) and T_world_camera ({T}, 4, 4), got {np.shape(K)} and {T_world_camera.shape}")
    T_camera_world = invert_T(T_world_camera)
    has_texture = None
    if rgb is not None and config.min_texture > 0:
        from .texture import textured

        has_texture = textured(rgb, config.min_texture)
    per_frame: list[list[np.ndarray]] = []
    frames = range(T)
    if progress:
        from tqdm import tqdm

        frames = tqdm(frames, desc="masks", unit="frame", leave=False)
    for i in frames:
        rows = np.flatnonzero(flows.pairs[:, 0] == i)
        js = flows.pairs[rows, 1]
        rel = [T_camera_world[j] @ T_world_camera[i] for j in js]
        valid = [flows.valid[k] if has_texture is None else flows.valid[k] & has_texture[i] for k in rows]
        per_frame.append(list(reprojection_residuals([flows.flow[k] for k in rows], valid,
                                                     np.asarray(K, np.float64), rel)))
    masks = decide_masks(per_frame, pair_lookup(flows), config)
    report = {"method": "reprojection", "moving_fraction": float(masks.mean())}
    if has_texture is not None:
        report["textureless_fraction"] = float(1 - has_texture.mean())
    log.info("masks (after poses): %.1f%% of pixels moving", 100 * report["moving_fraction"])
    return masks, report
