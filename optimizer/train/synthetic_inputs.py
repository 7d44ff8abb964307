"""Training inputs for measurement and tests: poses and K from a source, a stated degraded prior, flows.

Used by ``tests/test_train_*.py`` and ``benchmarks/consistency.py`` until (and beside) the part-1
pipeline. The ground truth enters ONLY as poses, K and the prior's source, degraded explicitly:

    prior_t(x) = z_gt_t(x) * s_t * exp(a_t . [u, v, u v] + b_t(x) + noise_t(x))

with a per-frame scale ``s_t = exp(U(-scale, scale))``, a low-frequency log-distortion (bilinear
ramp, |a| up to ``distortion``, plus a smooth random field b_t: Gaussian-blurred noise, sigma =
min(H, W) / 6, std ``distortion / 2``; so it is NOT in the span of the trainer's coarse offset grid)
and multiplicative noise (``noise`` std, blurred over ~1 px). Flows
are either exact (``clip.optical_flow``) or estimated by OpenCV DIS with a forward-backward check.
"""

from __future__ import annotations

import numpy as np

from vid3d.formats.conventions import PIXEL_CENTER, pixel_grid

from vid3d.optimizer.train.data import Flows, TrainInputs


def degraded_prior(depth: np.ndarray, *, seed: int = 0, scale: float = 0.15, distortion: float = 0.1,
                   noise: float = 0.02) -> np.ndarray:
    """Degraded copy ``(T, H, W)`` float32 of ``depth (T, H, W)`` (see the module doc for the model)."""
    import cv2

    rng = np.random.default_rng(seed)
    T, H, W = depth.shape
    uv = pixel_grid(H, W).astype(np.float64)
    u, v = 2 * uv[..., 0] / W - 1, 2 * uv[..., 1] / H - 1
    out = np.empty((T, H, W), np.float32)
    for t in range(T):
        s = rng.uniform(-scale, scale)
        a = rng.uniform(-distortion, distortion, size=3)
        n = rng.normal(0.0, noise, size=(H, W)).astype(np.float32)
        n = cv2.GaussianBlur(n, (0, 0), 1.0) * 2.0  # blurred, std restored roughly
        b = cv2.GaussianBlur(rng.normal(size=(H, W)).astype(np.float32), (0, 0), min(H, W) / 6.0)
        b = b / (b.std() + 1e-12) * distortion / 2
        out[t] = depth[t] * np.exp(s + a[0] * u + a[1] * v + a[2] * u * v + b + n)
    return out


def dis_flow(rgb_i: np.ndarray, rgb_j: np.ndarray) -> np.ndarray:
    """OpenCV DIS (MEDIUM) optical flow ``(H, W, 2)`` float32 from image i to j (``(H, W, 3)`` uint8)."""
    import cv2

    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    gi = cv2.cvtColor(rgb_i, cv2.COLOR_RGB2GRAY)
    gj = cv2.cvtColor(rgb_j, cv2.COLOR_RGB2GRAY)
    return dis.calc(gi, gj, None).astype(np.float32)


def forward_backward_valid(f_ij: np.ndarray, f_ji: np.ndarray, *, max_err_px: float = 1.0) -> np.ndarray:
    """Valid ``(H, W)`` bool: ``|f_ji(x + f_ij(x)) + f_ij(x)| <= max_err_px`` and the target is inside."""
    import cv2

    H, W = f_ij.shape[:2]
    idx = pixel_grid(H, W) - PIXEL_CENTER  # cv2.remap addresses pixels by index
    mx, my = idx[..., 0] + f_ij[..., 0], idx[..., 1] + f_ij[..., 1]
    back = cv2.remap(f_ji, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    err = np.linalg.norm(back + f_ij, axis=-1)
    inside = (mx >= 0) & (mx <= W - 1) & (my >= 0) & (my <= H - 1)
    return inside & (err <= max_err_px)


def flows_for(num_frames: int, gaps, get_flow) -> Flows:
    """``(i, j) -> get_flow(i, j)`` for both directions of every pair with j - i in ``gaps``."""
    out: Flows = {}
    for g in sorted(set(gaps)):
        for i in range(num_frames - g):
            out[(i, i + g)] = get_flow(i, i + g)
            out[(i + g, i)] = get_flow(i + g, i)
    return out


def dis_flows(rgb: np.ndarray, gaps=(1, 2, 4, 6, 8)) -> Flows:
    """DIS flows for both directions of every pair over ``gaps``, validity from the fwd-bwd check."""
    T = rgb.shape[0]
    out: Flows = {}
    for g in sorted(set(gaps)):
        for i in range(T - g):
            f = dis_flow(rgb[i], rgb[i + g])
            b = dis_flow(rgb[i + g], rgb[i])
            out[(i, i + g)] = (f, forward_backward_valid(f, b))
            out[(i + g, i)] = (b, forward_backward_valid(b, f))
    return out


def inputs_from_synthetic(clip, *, flow: str = "gt", gaps=(1, 2, 4, 6, 8), prior_seed: int = 0,
                          use_mask: bool = True, **prior_kw) -> TrainInputs:
    """TrainInputs from a ``vid3d.synthetic`` clip: GT poses and K, a degraded prior, flows, GT mask."""
    prior = degraded_prior(clip.depth, seed=prior_seed, **prior_kw)
    if flow == "gt":
        flows = flows_for(clip.num_frames, gaps, clip.optical_flow)
    elif flow == "dis":
        flows = dis_flows(clip.rgb, gaps)
    else:
        raise ValueError(f"flow must be 'gt' or 'dis', got {flow!r}")
    return TrainInputs(rgb=clip.rgb, K=clip.K, T_world_camera=clip.T_world_camera, prior_depth=prior,
                       flows=flows, dynamic_mask=clip.dynamic_mask if use_mask else None)
