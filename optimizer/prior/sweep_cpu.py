"""The plane sweep's cost volume on the CPU in one pass (numba): warp, sample, correlate, box, top-k.

:func:`vid3d.optimizer.prior.geometric.sweep_frame` builds the same volume with torch, one full
(D, H, W) tensor per operation (warp coefficients, reciprocal, grid, ``grid_sample``, product, two
cumulative sums, validity, the running k smallest): a dozen passes over ~11 M values per source at
512 px, memory-bound on a CPU. Here every plane is one task: for each source the normalised source is
sampled (bilinear, border padding, as ``grid_sample(align_corners=False)``) at the plane's warp, times
the normalised reference, box-summed (separable running sums) and folded into the plane's k smallest
costs, in buffers of one image. Same result as the torch path to float rounding (a test compares them
with :func:`~vid3d.optimizer.prior.geometric.sweep_frame_reference`); the torch path stays for CUDA
and for the exact-ZNCC option.

The kernels compile on their first call (numba's ``njit`` is lazy; this module is imported only where
the CPU path runs) and are cached on disk by numba.
"""

from __future__ import annotations

import numba
import numpy as np
import torch


@numba.njit(parallel=True, fastmath={"nsz", "arcp", "contract", "afn"}, cache=True)
def cost_volume(ref_n, src_n, M, b, inv_depths, r, k, out):  # pragma: no cover - compiled
    S, H, W = src_n.shape
    D = inv_depths.shape[0]
    sx, sy = 2.0 / W, 2.0 / H
    inv_nx = np.empty(W, np.float64)  # 1 / in-image window width at each column
    for x in range(W):
        inv_nx[x] = 1.0 / (min(x + r, W - 1) - max(x - r, 0) + 1)
    for d in numba.prange(D):
        q = inv_depths[d]
        prod = np.empty(W, np.float32)
        rows = np.empty((H, W), np.float32)  # horizontal window sums of the product
        invalid = np.empty((H, W), np.bool_)
        cols = np.empty(W, np.float64)
        smallest = np.full((k, H, W), np.inf, np.float32)
        for s in range(S):
            m = M[s]
            img = src_n[s]
            bu = b[s, 0] * sx - b[s, 2]
            bv = b[s, 1] * sy - b[s, 2]
            bz = b[s, 2]
            for y in range(H):
                v = y + 0.5
                # K R K^-1 [u, v, 1] at u = 0.5, then one column step per pixel
                a0 = m[0, 0] * 0.5 + m[0, 1] * v + m[0, 2]
                a1 = m[1, 0] * 0.5 + m[1, 1] * v + m[1, 2]
                a2 = m[2, 0] * 0.5 + m[2, 1] * v + m[2, 2]
                for x in range(W):
                    hz = a2 + q * bz
                    ih = 1.0 / max(hz, 1e-9)
                    gu = (a0 * sx - a2 + q * bu) * ih
                    gv = (a1 * sy - a2 + q * bv) * ih
                    invalid[y, x] = abs(gu) > 1.0 or abs(gv) > 1.0 or hz <= 0.0
                    # grid_sample, align_corners=False, padding "border": clip, then bilinear
                    px = min(max(((gu + 1.0) * W - 1.0) * 0.5, 0.0), W - 1.0)
                    py = min(max(((gv + 1.0) * H - 1.0) * 0.5, 0.0), H - 1.0)
                    x0 = int(px)
                    y0 = int(py)
                    x1 = min(x0 + 1, W - 1)
                    y1 = min(y0 + 1, H - 1)
                    fx = px - x0
                    fy = py - y0
                    top = img[y0, x0] + (img[y0, x1] - img[y0, x0]) * fx
                    bot = img[y1, x0] + (img[y1, x1] - img[y1, x0]) * fx
                    prod[x] = ref_n[y, x] * (top + (bot - top) * fy)
                    a0 += m[0, 0]
                    a1 += m[1, 0]
                    a2 += m[2, 0]
                # window sums along the row (zero outside the image)
                acc = 0.0
                for x in range(min(r, W)):
                    acc += prod[x]
                for x in range(W):
                    if x + r < W:
                        acc += prod[x + r]
                    if x > r:
                        acc -= prod[x - r - 1]
                    rows[y, x] = acc
            # window sums down the columns, row after row; cost; insert into the k smallest
            cols[:] = 0.0
            for y in range(min(r, H)):
                for x in range(W):
                    cols[x] += rows[y, x]
            for y in range(H):
                if y + r < H:
                    for x in range(W):
                        cols[x] += rows[y + r, x]
                if y > r:
                    for x in range(W):
                        cols[x] -= rows[y - r - 1, x]
                inv_ny = 1.0 / (min(y + r, H - 1) - max(y - r, 0) + 1)
                for x in range(W):
                    c = 2.0
                    if not invalid[y, x]:
                        c = 1.0 - min(max(cols[x] * inv_nx[x] * inv_ny, -1.0), 1.0)
                    cf = np.float32(c)
                    for i in range(k):  # insert into the ascending k smallest
                        lo = smallest[i, y, x]
                        if cf < lo:
                            smallest[i, y, x] = cf
                            cf = lo
        for y in range(H):
            for x in range(W):
                acc = 0.0
                for i in range(k):
                    acc += smallest[i, y, x]
                out[d, y, x] = acc / k
    return out


def cost_volume_cpu(ref_n: torch.Tensor, src_n: torch.Tensor, K: torch.Tensor, T_src_ref: torch.Tensor,
                    inv_depths: torch.Tensor, r: int, k: int) -> torch.Tensor:
    """Mean of the k smallest approximate-ZNCC costs over the sources, for every plane.

    Args:
        ref_n: (H, W) locally normalised reference; src_n: (S, H, W) locally normalised sources;
        K: (3, 3); T_src_ref: (S, 4, 4) reference-to-source transforms; inv_depths: (D,);
        r: window radius; k: costs averaged (<= S).
    Returns:
        (D, H, W) float32 cost in [0, 2] (2 where the pixel lands outside a source or behind it).
    """
    S, H, W = src_n.shape
    if not 1 <= k <= S:
        raise ValueError(f"k must be in 1..{S}, got {k}")
    Kd = K.detach().cpu().double().numpy()
    T = T_src_ref.detach().cpu().double().numpy()
    Kinv = np.linalg.inv(Kd)
    M = np.stack([Kd @ T[s, :3, :3] @ Kinv for s in range(S)])  # (S, 3, 3): K R K^-1
    b = np.stack([Kd @ T[s, :3, 3] for s in range(S)])  # (S, 3): K t
    out = np.empty((len(inv_depths), H, W), np.float32)
    cost_volume(np.ascontiguousarray(ref_n.detach().cpu().numpy(), np.float32),
              np.ascontiguousarray(src_n.detach().cpu().numpy(), np.float32), M, b,
              inv_depths.detach().cpu().double().numpy(), int(r), int(k), out)
    return torch.from_numpy(out)


@numba.njit(parallel=True, cache=True)
def reduce_volume(cost, best, around):  # pragma: no cover - compiled
    D, H, W = cost.shape
    for y in numba.prange(H):
        for x in range(W):
            b = 0
            c1 = cost[0, y, x]
            for d in range(1, D):
                if cost[d, y, x] < c1:
                    c1 = cost[d, y, x]
                    b = d
            c2 = np.float32(2.0)
            for d in range(D):
                if abs(d - b) > 2 and cost[d, y, x] < c2:
                    c2 = cost[d, y, x]
            best[y, x] = b
            around[0, y, x] = cost[max(b - 1, 0), y, x]
            around[1, y, x] = c1
            around[2, y, x] = cost[min(b + 1, D - 1), y, x]
            around[3, y, x] = c2
    return best


def cost_minima_cpu(cost: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per pixel of a cost volume (D, H, W) float32: the first plane of least cost ``best`` (H, W)
    int64, and ``around`` (4, H, W): the costs at best - 1, best, best + 1 (clamped to the volume) and
    the least cost more than 2 planes from best (2 when there is none)."""
    c = np.ascontiguousarray(cost.detach().cpu().numpy(), np.float32)
    D, H, W = c.shape
    best = np.empty((H, W), np.int64)
    around = np.empty((4, H, W), np.float32)
    reduce_volume(c, best, around)
    return torch.from_numpy(best), torch.from_numpy(around)
