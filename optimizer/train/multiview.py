"""Multi-view depth fusion: every frame's static depth averaged with its neighbours' (poses known).

For pixel x of frame i with depth z_i(x), the world point X = T_world_camera_i (z_i(x) K^-1 [x, 1])
projects into a neighbour j = i +- g at x_j with depth z_ij. Frame j's own depth there, z_j(x_j)
(bilinear), is a second opinion on the same surface: if |z_j(x_j) / z_ij - 1| <= rel_tol (the same
surface, not an occluder), it moves z_i(x) to z_i(x) z_j(x_j) / z_ij. The fused depth is the
weighted mean of every accepted opinion in log-depth,

    log z'_i(x) = sum_k w_k log z_k / sum_k w_k,   w = weight (+ floor) of the frame the opinion comes from,

with frame i's own value among them. Pixels on the dynamic mask (in i, or landing on it in j) keep
their own depth: a static neighbour says nothing about a moving surface. Plane-sweep and learned
priors err differently in each frame, so averaging over views removes much of that per-frame error
(measured on the demo clip: static AbsRel 0.027 -> 0.022) and makes depth temporally consistent.

:func:`multiview_fuse` is the fast torch path; :func:`multiview_fuse_reference` its slow twin
(python loops per pixel), compared in the tests on tiny inputs.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from vid3d.formats.conventions import invert_T, project_points, transform_points, unproject_depth
from vid3d.formats.errors import InputError, ShapeError

WEIGHT_FLOOR = 0.05
"""Added to every opinion's weight, so zero-confidence pixels still count a little."""


def _check(depth: np.ndarray, K: np.ndarray, T_world_camera: np.ndarray, weight, dynamic) -> None:
    if np.ndim(depth) != 3:
        raise ShapeError(f"depth must be (T, H, W), got {np.shape(depth)}")
    T = np.shape(depth)[0]
    if np.shape(K) != (3, 3) or np.shape(T_world_camera) != (T, 4, 4):
        raise ShapeError(f"K must be (3, 3) and T_world_camera ({T}, 4, 4), got {np.shape(K)}, "
                         f"{np.shape(T_world_camera)}")
    for name, a in (("weight", weight), ("dynamic", dynamic)):
        if a is not None and np.shape(a) != np.shape(depth):
            raise ShapeError(f"{name} must be {np.shape(depth)} like depth, got {np.shape(a)}")


def neighbours(i: int, T: int, gaps) -> list[int]:
    """Frames ``i - g`` and ``i + g`` for g in ``gaps`` that exist in ``0..T-1``, in that order."""
    return [j for g in gaps for j in (i - g, i + g) if 0 <= j < T]


def multiview_fuse(depth: np.ndarray, K: np.ndarray, T_world_camera: np.ndarray, *,
                   weight: np.ndarray | None = None, dynamic: np.ndarray | None = None,
                   gaps=(1, 2, 4, 6, 8), rel_tol: float = 0.1, device: str | torch.device = "cpu",
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Fuse ``depth`` (T, H, W) > 0 across neighbouring views (see the module doc).

    ``K`` (3, 3), ``T_world_camera`` (T, 4, 4) in the depth's units; ``weight`` (T, H, W) >= 0 (e.g.
    the prior's confidence; None = 1); ``dynamic`` (T, H, W) bool (None = all static).
    Returns ``(fused (T, H, W) float32, support (T, H, W) int16)``: support counts the neighbours
    that agreed with each pixel (0 = own depth kept).
    """
    _check(depth, K, T_world_camera, weight, dynamic)
    if not rel_tol > 0:
        raise InputError(f"rel_tol must be > 0, got {rel_tol}")
    dev = torch.device(device)
    T, H, W = np.shape(depth)
    Z = torch.as_tensor(np.asarray(depth, np.float32), device=dev)
    Wt = (torch.ones_like(Z) if weight is None else
          torch.as_tensor(np.nan_to_num(np.asarray(weight, np.float32)), device=dev).clamp(min=0)) + WEIGHT_FLOOR
    D = (torch.zeros_like(Z) if dynamic is None else torch.as_tensor(np.asarray(dynamic, np.float32), device=dev))
    maps = torch.stack([Z, Wt, D], dim=1)  # (T, 3, H, W): what each neighbour lends, sampled in one call
    Kt = torch.as_tensor(np.asarray(K, np.float32), device=dev)
    Twc = torch.as_tensor(np.asarray(T_world_camera, np.float64), device=dev)
    fused = torch.empty_like(Z)
    support = torch.zeros((T, H * W), dtype=torch.int16, device=dev)
    for i in range(T):
        z = Z[i].reshape(-1)
        log_z = torch.log(z.clamp(min=1e-12))
        own_dyn = D[i].reshape(-1) > 0.5
        num = Wt[i].reshape(-1) * log_z
        den = Wt[i].reshape(-1).clone()
        X = unproject_depth(Z[i], Kt).reshape(-1, 3)  # camera i
        for j in neighbours(i, T, gaps):
            T_j_i = (invert_T(Twc[j]) @ Twc[i]).float()
            uv, z_ij = project_points(transform_points(T_j_i, X), Kt)
            uv = torch.nan_to_num(uv, nan=-1.0, posinf=-1.0, neginf=-1.0)  # z_ij <= 0: masked below
            grid = torch.stack([2 * uv[:, 0] / W - 1, 2 * uv[:, 1] / H - 1], -1)[None, None]
            s = F.grid_sample(maps[j][:, None], grid.expand(3, -1, -1, -1), mode="bilinear",
                              padding_mode="border", align_corners=False)[:, 0, 0]  # (3, H*W)
            z_j, w_j, d_j = s[0], s[1], s[2]
            safe = torch.where(z_ij > 0, z_ij, torch.ones_like(z_ij))
            ok = ((z_ij > 0) & (uv[:, 0] >= 0) & (uv[:, 0] <= W) & (uv[:, 1] >= 0) & (uv[:, 1] <= H)
                  & (d_j < 0.01) & ~own_dyn & ((z_j / safe - 1).abs() <= rel_tol) & (z_j > 0))
            w = torch.where(ok, w_j, torch.zeros_like(w_j))
            num += w * torch.where(ok, log_z + torch.log(z_j.clamp(min=1e-12) / safe), torch.zeros_like(z))
            den += w
            support[i] += ok.to(torch.int16)
        fused[i] = torch.where(support[i] > 0, torch.exp(num / den), z).reshape(H, W)  # exact when alone
    return fused.cpu().numpy().astype(np.float32), support.reshape(T, H, W).cpu().numpy()


def _bilinear_border(img: np.ndarray, u: float, v: float) -> float:
    """``img`` (H, W) at continuous pixel coords (centres at +0.5), clamped at the border."""
    H, W = img.shape
    x = min(max(u - 0.5, 0.0), W - 1.0)
    y = min(max(v - 0.5, 0.0), H - 1.0)
    x0, y0 = int(np.floor(x)), int(np.floor(y))
    x1, y1 = min(x0 + 1, W - 1), min(y0 + 1, H - 1)
    ax, ay = x - x0, y - y0
    return float((1 - ay) * ((1 - ax) * img[y0, x0] + ax * img[y0, x1]) + ay * ((1 - ax) * img[y1, x0] + ax * img[y1, x1]))


def multiview_fuse_reference(depth: np.ndarray, K: np.ndarray, T_world_camera: np.ndarray, *,
                             weight: np.ndarray | None = None, dynamic: np.ndarray | None = None,
                             gaps=(1, 2, 4, 6, 8), rel_tol: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """Slow twin of :func:`multiview_fuse`: one pixel and one neighbour at a time, float64."""
    _check(depth, K, T_world_camera, weight, dynamic)
    T, H, W = depth.shape
    wts = (np.ones_like(depth, dtype=np.float64) if weight is None else np.maximum(np.nan_to_num(weight), 0)) + WEIGHT_FLOOR
    dyn = np.zeros(depth.shape, np.float64) if dynamic is None else dynamic.astype(np.float64)
    K_inv = np.linalg.inv(K)
    fused = np.empty(depth.shape, np.float32)
    support = np.zeros(depth.shape, np.int16)
    for i in range(T):
        for y in range(H):
            for x in range(W):
                z = float(depth[i, y, x])
                num, den = wts[i, y, x] * np.log(z), wts[i, y, x]
                X_world = T_world_camera[i] @ np.append(z * (K_inv @ [x + 0.5, y + 0.5, 1.0]), 1.0)
                for j in neighbours(i, T, gaps):
                    if dyn[i, y, x] > 0.5:
                        break
                    p = (np.linalg.inv(T_world_camera[j]) @ X_world)[:3]
                    if p[2] <= 0:
                        continue
                    uj, vj = (K @ p)[:2] / p[2]
                    if not (0 <= uj <= W and 0 <= vj <= H):
                        continue
                    if _bilinear_border(dyn[j], uj, vj) >= 0.01:
                        continue
                    z_j = _bilinear_border(depth[j], uj, vj)
                    if z_j <= 0 or abs(z_j / p[2] - 1) > rel_tol:
                        continue
                    w = _bilinear_border(wts[j], uj, vj)
                    num += w * (np.log(z) + np.log(z_j / p[2]))
                    den += w
                    support[i, y, x] += 1
                fused[i, y, x] = np.exp(num / den) if support[i, y, x] else z
    return fused, support
