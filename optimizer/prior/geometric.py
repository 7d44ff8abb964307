"""Weight-free geometric depth prior: plane sweep over neighbouring frames with the SfM poses.

For a reference frame r and source frames s (chosen by baseline), each inverse-depth hypothesis
1/d_k (uniform between robust near/far bounds from the SfM points) warps the source into r:

    p_s = R_sr (d_k K^-1 [u, v, 1]^T) + t_sr,    [u_s, v_s] = (K p_s)_xy / (K p_s)_z

Photo-consistency is ZNCC over (2r+1)^2 patches; the cost 1 - ZNCC of the ``top_k`` best sources is
averaged (robust to occlusion). Winner-take-all over k, then a parabola through the three costs
around the minimum gives the sub-plane inverse depth. Confidence = match quality x distinctiveness
(best vs. second-best cost away from the minimum) x multi-view agreement (the depth re-projected into
the neighbours agrees with their depth). Moving (masked) and low-confidence pixels are filled
edge-aware in inverse depth (:mod:`.fill`).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from vid3d.formats.conventions import pixel_grid

from .config import PriorConfig


def choose_sources(C: np.ndarray, t: int, median_depth: float, config: PriorConfig) -> list[int]:
    """Neighbours of frame t (camera centres C (T, 3)) whose baseline / depth is closest to the target."""
    T = len(C)
    cands = [s for s in range(max(0, t - config.max_gap), min(T, t + config.max_gap + 1)) if s != t]
    scored = []
    for s in cands:
        b = float(np.linalg.norm(C[s] - C[t])) / max(median_depth, 1e-12)
        if b < 0.15 * config.target_baseline:
            continue  # too little parallax to tell depths apart
        scored.append((abs(np.log(b / config.target_baseline)), s))
    scored.sort()
    return [s for _, s in scored[: config.max_sources]]


def _box(x: torch.Tensor, r: int) -> torch.Tensor:
    """Mean over (2r+1)^2 windows of (N, 1, H, W), same size (borders averaged over valid pixels).

    Summed-area (cumulative sums along rows then columns), 3-4x faster than avg_pool2d on CPU; divided
    by the number of in-image pixels of each window (like avg_pool2d with count_include_pad=False).
    """
    H, W = x.shape[-2:]
    return _box_sum(x, r) * _inv_count(H, W, r, x.dtype, x.device)


_COUNTS: dict = {}


def _inv_count(H: int, W: int, r: int, dtype, device) -> torch.Tensor:
    """1 / (in-image pixels of each (2r+1)^2 window), (1, 1, H, W), cached."""
    key = (H, W, r, dtype, str(device))
    if key not in _COUNTS:
        ones = torch.ones(1, 1, H, W, dtype=dtype, device=device)
        _COUNTS.clear()
        _COUNTS[key] = 1.0 / _box_sum(ones, r)
    return _COUNTS[key]


def _box_sum(x: torch.Tensor, r: int) -> torch.Tensor:
    """Sum over (2r+1)^2 windows (zero outside the image) of (N, 1, H, W)."""
    k = 2 * r + 1
    c = F.pad(x, (r + 1, r, r + 1, r)).cumsum(-1)
    c = c[..., k:] - c[..., :-k]
    c = c.cumsum(-2)
    return c[..., k:, :] - c[..., :-k, :]


def warp_grid(K: torch.Tensor, T_src_ref: torch.Tensor, inv_depths: torch.Tensor, H: int, W: int
              ) -> tuple[torch.Tensor, torch.Tensor]:
    """Where reference pixels land in the source for every hypothesis.

    Args:
        K (3, 3), T_src_ref (4, 4), inv_depths (D,).
    Returns:
        (grid (D, H, W, 2) in grid_sample's normalised coordinates, z_src (D, H, W)).
    """
    uv = pixel_grid(H, W, like=inv_depths).to(K.dtype)
    rays = torch.cat([uv, torch.ones_like(uv[..., :1])], -1) @ torch.linalg.inv(K).T  # (H, W, 3)
    A = rays @ (K @ T_src_ref[:3, :3]).T  # (H, W, 3): K R rays
    b = K @ T_src_ref[:3, 3]  # (3,): K t
    # K p_s = d (A + b / d): divide by d, so each coordinate is one multiply-add per plane
    q = inv_depths[:, None, None]
    hz = A[..., 2] + q * b[2]  # (D, H, W) = z_s / d
    inv_hz = 1.0 / hz.clamp(min=1e-9)
    u = (A[..., 0] + q * b[0]) * inv_hz
    v = (A[..., 1] + q * b[1]) * inv_hz
    grid = torch.stack([u * (2.0 / W) - 1, v * (2.0 / H) - 1], -1)
    return grid, hz / q


def warp_grid_fast(K: torch.Tensor, T_src_ref: torch.Tensor, inv_depths: torch.Tensor, H: int, W: int
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`warp_grid` in fewer passes over the (D, H, W) volume (its fast twin).

    The normalisation ``u * 2 / W - 1`` is folded into the per-pixel and per-plane coefficients
    (``u_n = (A_0 2/W - A_2 + q (b_0 2/W - b_2)) / h_z``) and both coordinates are written straight
    into the grid. Returns ``(grid (D, H, W, 2), h_z (D, H, W))`` with ``h_z = z_src * q`` (> 0 in front
    of the source camera).
    """
    uv = pixel_grid(H, W, like=inv_depths).to(K.dtype)
    rays = torch.cat([uv, torch.ones_like(uv[..., :1])], -1) @ torch.linalg.inv(K).T  # (H, W, 3)
    A = rays @ (K @ T_src_ref[:3, :3]).T  # (H, W, 3)
    b = K @ T_src_ref[:3, 3]
    dt = inv_depths.dtype
    a_u = (A[..., 0] * (2.0 / W) - A[..., 2]).to(dt)
    a_v = (A[..., 1] * (2.0 / H) - A[..., 2]).to(dt)
    b_u = float(b[0] * (2.0 / W) - b[2])
    b_v = float(b[1] * (2.0 / H) - b[2])
    q = inv_depths[:, None, None]
    hz = torch.add(A[..., 2].to(dt)[None], q, alpha=float(b[2]))  # (D, H, W)
    inv_hz = hz.clamp(min=1e-9).reciprocal_()
    D = len(inv_depths)
    grid = torch.empty(D, H, W, 2, dtype=dt, device=inv_depths.device)
    torch.mul(torch.add(a_u[None], q, alpha=b_u), inv_hz, out=grid[..., 0])
    torch.mul(torch.add(a_v[None], q, alpha=b_v), inv_hz, out=grid[..., 1])
    return grid, hz


def zncc_cost(ref: torch.Tensor, warped: torch.Tensor, r: int) -> torch.Tensor:
    """1 - ZNCC over (2r+1)^2 windows: ref (1, 1, H, W), warped (D, 1, H, W) -> (D, H, W) in [0, 2]."""
    mr = _box(ref, r)
    vr = (_box(ref * ref, r) - mr * mr).clamp(min=0)
    return zncc_cost_with_ref_stats(mr, vr, ref, warped, r)


def zncc_cost_with_ref_stats(mr: torch.Tensor, vr: torch.Tensor, ref: torch.Tensor, warped: torch.Tensor, r: int
                             ) -> torch.Tensor:
    """:func:`zncc_cost` with the reference window mean / variance (1, 1, H, W) precomputed."""
    mw = _box(warped, r)
    vw = (_box(warped * warped, r) - mw * mw).clamp(min=0)
    cov = _box(ref * warped, r) - mr * mw
    zncc = cov / torch.sqrt(vr * vw + 1e-8)
    return (1 - zncc.clamp(-1, 1))[:, 0]


def local_normalize(img: torch.Tensor, r: int, eps: float = 1e-4) -> torch.Tensor:
    """(img - window mean) / window std over (2r+1)^2 windows, (N, 1, H, W) -> same."""
    m = _box(img, r)
    v = (_box(img * img, r) - m * m).clamp(min=0)
    return (img - m) / torch.sqrt(v + eps)


def nzncc_cost(ref_n: torch.Tensor, warped_n: torch.Tensor, r: int) -> torch.Tensor:
    """Fast ZNCC approximation: 1 - window mean of the product of locally normalised images.

    ref_n (1, 1, H, W) and warped_n (D, 1, H, W) are :func:`local_normalize` outputs (the source is
    normalised once, before warping), so each plane needs one product and one box filter instead of
    five. Equals ZNCC when the warp is locally a translation. Returns (D, H, W) in [0, 2].
    """
    return _box(ref_n * warped_n, r).clamp_(-1, 1).neg_().add_(1)[:, 0]


def sweep_frame(gray: torch.Tensor, t: int, sources: list[int], T_world_camera: torch.Tensor, K: torch.Tensor,
                inv_depths: torch.Tensor, config: PriorConfig, compiled: bool = True
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """Plane-sweep depth and photometric confidence of frame t.

    Each source's cost volume is folded into a running set of the ``top_k`` smallest costs as it is
    made (no stack of all of them, no ``topk``), and the warp grid comes from :func:`warp_grid_fast`;
    on the CPU (approximate ZNCC, ``compiled``) the whole volume is one compiled pass (:mod:`.sweep_cpu`).
    :func:`sweep_frame_reference` is the plain version (same result to float rounding).

    Args:
        gray: (T, H, W) float32 intensities (any offset, range 1); T_world_camera (T, 4, 4); K (3, 3);
        inv_depths: (D,) increasing inverse-depth hypotheses.
    Returns:
        (depth (H, W) float32, confidence (H, W) float32 in [0, 1]).
    """
    _, H, W = gray.shape
    D = len(inv_depths)
    ref, ref_n, mr, vr = _reference_stats(gray[t], config.patch_radius)
    k = min(config.top_k, len(sources))
    if compiled and gray.device.type == "cpu" and not config.exact_zncc:
        from .sweep_cpu import cost_volume_cpu

        src_n = local_normalize(gray[sources][:, None], config.patch_radius)[:, 0]
        T_src_ref = torch.stack([torch.linalg.inv(T_world_camera[s]) @ T_world_camera[t] for s in sources])
        cost = cost_volume_cpu(ref_n[0, 0], src_n, K, T_src_ref, inv_depths, config.patch_radius, k)
        return _pick_depth(cost, inv_depths, vr)
    smallest = [torch.full((D, H, W), float("inf"), dtype=gray.dtype, device=gray.device) for _ in range(k)]
    for s in sources:
        T_src_ref = torch.linalg.inv(T_world_camera[s]) @ T_world_camera[t]
        grid, hz = warp_grid_fast(K, T_src_ref, inv_depths, H, W)
        c = _source_cost(gray[s], grid, ref, ref_n, mr, vr, config)
        invalid = (grid.abs().amax(-1) > 1) | (hz <= 0)
        c.masked_fill_(invalid, 2.0)
        for i in range(k):  # insert c into the ascending k smallest
            lo = torch.minimum(smallest[i], c)
            c = torch.maximum(smallest[i], c)
            smallest[i] = lo
    cost = smallest[0] if k == 1 else torch.stack(smallest).mean(0)  # (D, H, W)
    return _pick_depth(cost, inv_depths, vr, compiled=compiled)


def _reference_stats(img: torch.Tensor, r: int) -> tuple[torch.Tensor, ...]:
    """The reference frame (H, W) as (1, 1, H, W), locally normalised, and its window mean / variance."""
    ref = img[None, None]
    mr = _box(ref, r)
    vr = (_box(ref * ref, r) - mr * mr).clamp(min=0)
    return ref, (ref - mr) / torch.sqrt(vr + 1e-4), mr, vr


def _source_cost(src: torch.Tensor, grid: torch.Tensor, ref: torch.Tensor, ref_n: torch.Tensor, mr: torch.Tensor,
                 vr: torch.Tensor, config: PriorConfig) -> torch.Tensor:
    """Photo-consistency cost volume (D, H, W) of one source frame (H, W) sampled at ``grid``
    (D, H, W, 2); the reference's window mean / variance ``mr``, ``vr`` and normalised image ``ref_n``
    are (1, 1, H, W)."""
    D, H, W = grid.shape[:3]
    r = config.patch_radius
    if config.exact_zncc:
        warped = F.grid_sample(src[None, None].expand(D, 1, H, W), grid, mode="bilinear", padding_mode="border",
                               align_corners=False)
        return zncc_cost_with_ref_stats(mr, vr, ref, warped, r)
    src_n = local_normalize(src[None, None], r).expand(D, 1, H, W)
    warped = F.grid_sample(src_n, grid, mode="bilinear", padding_mode="border", align_corners=False)
    return nzncc_cost(ref_n, warped, r)


def _pick_depth(cost: torch.Tensor, inv_depths: torch.Tensor, vr: torch.Tensor, compiled: bool = True
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """Depth (H, W) at the cost minimum (sub-plane parabola) and its confidence (H, W) from the cost
    volume (D, H, W) and the reference's window variance (1, 1, H, W). On the CPU the volume's
    per-pixel minima come from one compiled pass (``compiled``; torch's reductions otherwise)."""
    D = len(inv_depths)
    if compiled and cost.device.type == "cpu" and cost.dtype == torch.float32:
        from .sweep_cpu import cost_minima_cpu

        best, (cm, c1, cp, c2) = cost_minima_cpu(cost)
    else:
        best = cost.argmin(0)  # (H, W)
        c1 = cost.gather(0, best[None])[0]
        cm = cost.gather(0, (best - 1).clamp(min=0)[None])[0]
        cp = cost.gather(0, (best + 1).clamp(max=D - 1)[None])[0]
        # distinctiveness: best cost away from the minimum (|k - best| > 2)
        idx = torch.arange(D, device=cost.device)[:, None, None]
        far = (idx - best[None]).abs() > 2
        c2 = torch.where(far, cost, torch.full_like(cost, 2.0)).min(0).values
    # sub-plane refinement: parabola through c(k-1), c(k), c(k+1)
    denom = cm - 2 * c1 + cp
    delta = torch.where(denom > 1e-6, 0.5 * (cm - cp) / denom, torch.zeros_like(denom)).clamp(-0.5, 0.5)
    step = (inv_depths[-1] - inv_depths[0]) / (D - 1)
    inv = inv_depths[best] + delta * step
    depth = 1.0 / inv.clamp(min=float(inv_depths[0]) * 0.5)

    distinct = ((c2 - c1) / (c2 + 1e-6) / 0.08).clamp(0, 1)  # a clear minimum: >= 8% below the runner-up
    quality = ((1.3 - c1) / 0.8).clamp(0, 1)  # 1 for ZNCC >= 0.5, 0 for ZNCC <= -0.3
    std = vr.sqrt()[0, 0]
    textured = (std > 2.0 / 255).float()
    return depth, quality * distinct * textured


def sweep_frame_reference(gray: torch.Tensor, t: int, sources: list[int], T_world_camera: torch.Tensor,
                          K: torch.Tensor, inv_depths: torch.Tensor, config: PriorConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """Slow twin of :func:`sweep_frame` (same arguments and result): every source's cost volume
    stacked, then ``topk``."""
    _, H, W = gray.shape
    ref, ref_n, mr, vr = _reference_stats(gray[t], config.patch_radius)
    costs = []
    for s in sources:
        T_src_ref = torch.linalg.inv(T_world_camera[s]) @ T_world_camera[t]
        grid, z = warp_grid(K, T_src_ref, inv_depths, H, W)
        c = _source_cost(gray[s], grid.to(gray.dtype), ref, ref_n, mr, vr, config)
        valid = (grid.abs() <= 1).all(-1) & (z > 0)
        costs.append(torch.where(valid, c, torch.full_like(c, 2.0)))
    cost = torch.stack(costs)  # (S, D, H, W)
    k = min(config.top_k, len(sources))
    cost = torch.topk(cost, k, dim=0, largest=False).values.mean(0)  # (D, H, W)
    return _pick_depth(cost, inv_depths, vr, compiled=False)


def multiview_agreement(depth: torch.Tensor, t: int, sources: list[int], T_world_camera: torch.Tensor,
                        K: torch.Tensor, rel_tol: float) -> torch.Tensor:
    """Fraction (H, W) of sources whose depth agrees with frame t's depth re-projected into them.

    depth: (T, H, W). A source counts only where the pixel projects inside it.
    """
    _, H, W = depth.shape
    agree = torch.zeros(H, W, dtype=depth.dtype, device=depth.device)
    seen = torch.zeros_like(agree)
    for s in sources:
        T_src_ref = torch.linalg.inv(T_world_camera[s]) @ T_world_camera[t]
        inv = (1.0 / depth[t]).reshape(-1)
        grid, z = _warp_pixels(K, T_src_ref, inv, H, W)
        d_s = F.grid_sample(depth[s][None, None], grid[None], mode="nearest", padding_mode="border",
                            align_corners=False)[0, 0]
        inside = (grid.abs() <= 1).all(-1) & (z > 0)
        ok = ((z - d_s).abs() < rel_tol * d_s) & inside
        agree += ok.to(agree.dtype)
        seen += inside.to(seen.dtype)
    return torch.where(seen > 0, agree / seen.clamp(min=1), torch.zeros_like(agree))


def _warp_pixels(K: torch.Tensor, T_src_ref: torch.Tensor, inv_depth_flat: torch.Tensor, H: int, W: int
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-pixel warp (one depth per pixel): grid (H, W, 2), z_src (H, W)."""
    uv = pixel_grid(H, W, like=inv_depth_flat).to(K.dtype)
    rays = torch.cat([uv, torch.ones_like(uv[..., :1])], -1) @ torch.linalg.inv(K).T
    p = rays * (1.0 / inv_depth_flat.reshape(H, W))[..., None]
    P = (p @ T_src_ref[:3, :3].T + T_src_ref[:3, 3]) @ K.T
    z = P[..., 2]
    grid = torch.stack([2 * P[..., 0] / z.clamp(min=1e-9) / W - 1, 2 * P[..., 1] / z.clamp(min=1e-9) / H - 1], -1)
    return grid, z


def depth_bounds(z_sparse: np.ndarray, margin: float) -> tuple[float, float]:
    """Robust near/far from SfM point depths (M,): percentiles 2 and 98, widened by ``margin``."""
    near = float(np.percentile(z_sparse, 2)) / margin
    far = float(np.percentile(z_sparse, 98)) * margin
    return max(near, 1e-6), max(far, near * 1.5)


def geometric_prior(rgb: np.ndarray, T_world_camera: np.ndarray, K: np.ndarray, near: float, far: float,
                    config: PriorConfig, *, device: str = "cpu", progress=None) -> tuple[np.ndarray, np.ndarray, list]:
    """Plane-sweep depth and confidence of every frame (before masking and filling).

    Args:
        rgb: (T, H, W, 3) uint8; T_world_camera (T, 4, 4); K (3, 3); near/far depth bounds.
    Returns:
        (depth (T, H, W) float32, confidence (T, H, W) float32 in [0, 1], sources per frame).
    """
    T, H, W = rgb.shape[:3]
    # centred intensities (ZNCC ignores offsets; small magnitudes keep the summed-area sums precise)
    gray = torch.from_numpy(rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32) / 255.0 - 0.5).to(device)
    Tw = torch.from_numpy(np.asarray(T_world_camera, np.float64)).to(device)
    Kt = torch.from_numpy(np.asarray(K, np.float64)).to(device)
    Tw32, K32 = Tw.float(), Kt.float()
    inv_depths = torch.linspace(1.0 / far, 1.0 / near, config.num_planes, device=device)
    C = np.asarray(T_world_camera)[:, :3, 3]
    median_depth = float(np.sqrt(near * far))
    depth = torch.zeros(T, H, W, device=device)
    conf = torch.zeros(T, H, W, device=device)
    sources = []
    for t in range(T):
        src = choose_sources(C, t, median_depth, config)
        sources.append(src)
        if src:
            depth[t], conf[t] = sweep_frame(gray, t, src, Tw32, K32, inv_depths, config)
        else:
            depth[t] = median_depth
        if progress is not None:
            progress(t)
    for t in range(T):
        if sources[t]:
            frac = multiview_agreement(depth, t, sources[t], Tw32, K32, config.consistency_rel_tol)
            conf[t] = conf[t] * (0.25 + 0.75 * frac)
    return depth.cpu().numpy(), conf.cpu().numpy(), sources
