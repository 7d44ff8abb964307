"""Per-pixel flow residuals in one compiled pass each (numba), for the two mask stages.

Both are a few dozen flops per pixel and pair, which numpy spreads over a dozen (N, 2) / (N, 3)
temporaries (concatenate, matmul, stack, ``nanmedian``, norm): memory-bound and single-threaded.
Here each pixel is computed in registers, rows in parallel.

- :func:`reprojection_residuals_cpu`: residuals against a static point at the consensus inverse
  depth (:func:`vid3d.optimizer.masks.reprojection.reprojection_residuals`, whose slow twin is
  ``reprojection_residuals_reference``);
- :func:`model_residuals_cpu`: Sampson distance to a fundamental matrix or transfer error of a
  homography (:func:`vid3d.optimizer.masks.epipolar.sampson_distance` and the homography transfer
  are the numpy twins; tests compare them).

The kernels compile on their first call (numba's ``njit`` is lazy; this module is imported only where
the residuals are computed) and are cached on disk by numba.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(parallel=True, cache=True)
def reprojection(flows, ok, M, b, out):  # pragma: no cover - compiled
    P, H, W, _ = flows.shape
    for y in numba.prange(H):
        q = np.empty(P, np.float64)
        a = np.empty((P, 3), np.float64)  # K R K^-1 [u, v, 1] of each pair at this pixel
        for x in range(W):
            u, v = x + 0.5, y + 0.5
            n = 0
            for p in range(P):
                if not ok[p, y, x]:
                    continue
                a0 = M[p, 0, 0] * u + M[p, 0, 1] * v + M[p, 0, 2]
                a1 = M[p, 1, 0] * u + M[p, 1, 1] * v + M[p, 1, 2]
                a2 = M[p, 2, 0] * u + M[p, 2, 1] * v + M[p, 2, 2]
                a[p, 0], a[p, 1], a[p, 2] = a0, a1, a2
                tu, tv = u + np.float64(flows[p, y, x, 0]), v + np.float64(flows[p, y, x, 1])
                A0 = b[p, 0] - tu * b[p, 2]
                A1 = b[p, 1] - tv * b[p, 2]
                B0 = tu * a2 - a0
                B1 = tv * a2 - a1
                qp = (A0 * B0 + A1 * B1) / max(A0 * A0 + A1 * A1, 1e-12)
                k = n  # insertion into the ascending valid inverse depths
                while k > 0 and q[k - 1] > qp:
                    q[k] = q[k - 1]
                    k -= 1
                q[k] = qp
                n += 1
            if n == 0:
                for p in range(P):
                    out[p, y, x] = np.nan
                continue
            qs = q[n // 2] if n % 2 == 1 else 0.5 * (q[n // 2 - 1] + q[n // 2])
            qs = max(qs, 0.0)  # behind the camera: not static
            for p in range(P):
                if not ok[p, y, x]:
                    out[p, y, x] = np.nan
                    continue
                a0 = a[p, 0] + qs * b[p, 0]
                a1 = a[p, 1] + qs * b[p, 1]
                a2 = a[p, 2] + qs * b[p, 2]
                if not a2 > 1e-9:  # behind camera j: cannot be a static point
                    out[p, y, x] = 1e6
                    continue
                du = a0 / a2 - (u + np.float64(flows[p, y, x, 0]))
                dv = a1 / a2 - (v + np.float64(flows[p, y, x, 1]))
                r = np.sqrt(du * du + dv * dv)
                out[p, y, x] = r if np.isfinite(r) else 1e6
    return out


@numba.njit(parallel=True, cache=True)
def model(flow, valid, G, homography, out):  # pragma: no cover - compiled
    H, W, _ = flow.shape
    for y in numba.prange(H):
        for x in range(W):
            if not valid[y, x]:
                out[y, x] = np.nan
                continue
            u, v = x + 0.5, y + 0.5
            uj, vj = u + np.float64(flow[y, x, 0]), v + np.float64(flow[y, x, 1])
            g0 = G[0, 0] * u + G[0, 1] * v + G[0, 2]
            g1 = G[1, 0] * u + G[1, 1] * v + G[1, 2]
            g2 = G[2, 0] * u + G[2, 1] * v + G[2, 2]
            if homography:
                du, dv = g0 / g2 - uj, g1 / g2 - vj
                out[y, x] = np.sqrt(du * du + dv * dv)
            else:  # Sampson distance: g = F x_i; h = F^T x_j
                h0 = G[0, 0] * uj + G[1, 0] * vj + G[2, 0]
                h1 = G[0, 1] * uj + G[1, 1] * vj + G[2, 1]
                num = uj * g0 + vj * g1 + g2
                den = g0 * g0 + g1 * g1 + h0 * h0 + h1 * h1
                out[y, x] = np.sqrt(num * num / max(den, 1e-12))
    return out


def reprojection_residuals_cpu(flows: list[np.ndarray], valids: list[np.ndarray], K: np.ndarray,
                               T_j_i: list[np.ndarray]) -> np.ndarray:
    """Residuals (px) ``(P, H, W)`` of frame i's flows ``(H, W, 2)`` to frames j_p against a static
    point at the median of the pairs' triangulated inverse depths (NaN where a pair's flow is not
    ``valids[p]`` ``(H, W)``; 1e6 where that point is behind camera j_p). ``K`` (3, 3), ``T_j_i[p]``
    (4, 4) the relative poses."""
    P = len(flows)
    H, W = valids[0].shape
    K = np.asarray(K, np.float64)
    Kinv = np.linalg.inv(K)
    M = np.stack([K @ np.asarray(T, np.float64)[:3, :3] @ Kinv for T in T_j_i])  # (P, 3, 3)
    b = np.stack([K @ np.asarray(T, np.float64)[:3, 3] for T in T_j_i])  # (P, 3)
    ok = np.ascontiguousarray(np.stack(valids), dtype=np.bool_)
    out = np.empty((P, H, W), np.float64)
    return reprojection(np.stack(flows), ok, M, b, out)


def model_residuals_cpu(flow: np.ndarray, valid: np.ndarray, G: np.ndarray, homography: bool) -> np.ndarray:
    """Residual (px) ``(H, W)`` of each pixel's flow ``(H, W, 2)`` to a two-view model ``G`` (3, 3):
    homography transfer error (``homography``) or Sampson distance to a fundamental matrix; NaN where
    not ``valid`` ``(H, W)``."""
    H, W = valid.shape
    out = np.empty((H, W), np.float64)
    return model(np.ascontiguousarray(flow), np.ascontiguousarray(valid, np.bool_),
                               np.asarray(G, np.float64), bool(homography), out)
