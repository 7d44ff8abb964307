"""Losses of consistent-depth + scene-flow training (pure functions of tensors).

Notation (Zhang et al. 2021): pixel x of frame i with depth z_i(x) unprojects to the world point
X_i(x); S(x) is the chained scene flow from t_i to t_j; f_ij the optical flow; camera j has
``T_world_camera_j = [R_j | t_j]``. Batched over pairs: leading dims ``(P, n)`` = pairs x points.

Every masked mean is ``sum(M * l) / (sum(M) + 1e-8)`` (normalised by the pixel count, as the
reference).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from vid3d.formats.conventions import invert_T, transform_points

EPS_MEAN = 1e-8


def masked_mean(loss: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``sum(M l) / (sum(M) + 1e-8)`` for ``loss (...)`` and ``mask (...)`` (bool or float)."""
    m = mask.to(loss.dtype)
    return (loss * m).sum() / (m.sum() + EPS_MEAN)


def sample_bilinear(image: torch.Tensor, uv: torch.Tensor) -> torch.Tensor:
    """Bilinear samples ``(P, n, C)`` of ``image (P, C, h, w)`` at continuous pixel coords ``uv (P, n, 2)``.

    Pixel centres at +0.5 (the vid3d convention), border padding (as the reference).
    """
    h, w = image.shape[-2:]
    grid = torch.stack([2.0 * uv[..., 0] / w - 1.0, 2.0 * uv[..., 1] / h - 1.0], dim=-1)
    out = F.grid_sample(image, grid[:, None], mode="bilinear", padding_mode="border", align_corners=False)
    return out[:, :, 0].transpose(1, 2)


def unproject_pixels(uv: torch.Tensor, z: torch.Tensor, K: torch.Tensor,
                     T_world_camera: torch.Tensor) -> torch.Tensor:
    """World points ``X (P, n, 3)`` of pixels ``uv (P, n, 2)`` with z-depth ``z (P, n)``.

    ``X = R (z K^-1 [u, v, 1]) + t`` with ``T_world_camera (P, 4, 4)``, ``K (3, 3)``.
    """
    uv1 = torch.cat([uv, torch.ones_like(uv[..., :1])], dim=-1)
    rays = uv1 @ torch.linalg.inv(K).transpose(0, 1)
    return transform_points(T_world_camera, rays * z[..., None])


def projected_flow(X_i: torch.Tensor, S: torch.Tensor, uv_i: torch.Tensor, K: torch.Tensor,
                   T_world_camera_j: torch.Tensor, *, z_min: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Flow predicted by depth + scene flow, ``F^(x) = pi(K R_j^T (X_i + S - t_j)) - x``.

    ``X_i, S (P, n, 3)``, ``uv_i (P, n, 2)``, ``K (3, 3)``, ``T_world_camera_j (P, 4, 4)``.
    Returns ``(flow (P, n, 2), z_ij (P, n))``: z_ij is the depth of the moved point in camera j.
    Points with ``z_ij < z_min`` get zero flow (as the reference) and must be masked by the caller.
    """
    p_j = transform_points(invert_T(T_world_camera_j), X_i + S)
    z_ij = p_j[..., 2]
    Kp = p_j @ K.transpose(0, 1)
    safe = torch.where(z_ij > z_min, z_ij, torch.ones_like(z_ij))
    uv_j = Kp[..., :2] / safe[..., None]
    uv_j = torch.where((z_ij > z_min)[..., None], uv_j, uv_i)
    return uv_j - uv_i, z_ij


def flow_loss(flow_pred: torch.Tensor, flow_obs: torch.Tensor, mask: torch.Tensor, *, kind: str) -> torch.Tensor:
    """Projected-flow loss ``mean_M(rho(du) + rho(dv))``; rho = square (``"l2"``, warm-up) or abs (``"l1"``).

    ``flow_pred, flow_obs (..., 2)``, ``mask (...)``.
    """
    d = flow_pred - flow_obs
    rho = d.square() if kind == "l2" else d.abs()
    return masked_mean(rho.sum(-1), mask)


def disparity_loss(z_ij: torch.Tensor, z_tilde_j: torch.Tensor, mask: torch.Tensor, *,
                   d_ref: float, z_min: float) -> torch.Tensor:
    """Disparity consistency ``mean_M |d_ref / z_ij - d_ref / z~_j(x + f_ij)|`` (unit-free via ``d_ref``).

    ``z_ij (...)``: depth of the moved point in camera j; ``z_tilde_j (...)``: depth of frame j
    sampled at the flow target; ``d_ref``: a reference depth (median prior depth).
    """
    disp_a = d_ref / torch.clamp(z_ij, min=z_min)
    disp_b = d_ref / torch.clamp(z_tilde_j, min=z_min)
    return masked_mean((disp_a - disp_b).abs(), mask)


def disparity_ratio_loss(z_ij: torch.Tensor, z_tilde_j: torch.Tensor, mask: torch.Tensor, *,
                         z_min: float) -> torch.Tensor:
    """Scale-free disparity consistency ``mean_M (max(z_ij, z~_j) / min(z_ij, z~_j) - 1)``.

    The reference's ``--use_disp_ratio`` form. Unlike ``|1/z - 1/z~|`` it does not shrink when
    every depth grows, so it does not pull the whole clip's scale up. Shapes ``(...)``.
    """
    a = torch.clamp(z_ij, min=z_min)
    b = torch.clamp(z_tilde_j, min=z_min)
    return masked_mean(torch.maximum(a, b) / torch.minimum(a, b) - 1.0, mask)


def constant_velocity_loss(sf_t: torch.Tensor, sf_next: torch.Tensor, *, px_per_unit: float) -> torch.Tensor:
    """Zero-acceleration term ``mean |SF(X + SF(X, t), t + 1/N) - SF(X, t)|`` over all points and 3 comps.

    ``sf_t, sf_next (..., 3)`` world displacements; ``px_per_unit`` converts world units to pixels
    at the reference depth (fx / d_ref), so the weight is unit-free.
    """
    return (sf_next - sf_t).abs().mean() * px_per_unit


def static_flow_loss(sf_t: torch.Tensor, static: torch.Tensor, *, px_per_unit: float) -> torch.Tensor:
    """``mean_static |SF(X, t)|_1`` in pixels at the reference depth: scene flow off moving objects is 0.

    ``sf_t (..., 3)``, ``static (...)`` bool.
    """
    return masked_mean(sf_t.abs().sum(-1), static) * px_per_unit


def residual_loss(r: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    """``mean(w |r|)``: the depth net's log-depth residual ``r (B, h, w)`` stays small where the prior is trusted."""
    return (r.abs() * weight).mean() if weight is not None else r.abs().mean()
