"""Pure flow helpers, each fast path with its slow reference twin: warping, forward-backward
validity, resizing a flow field."""

from __future__ import annotations

import numpy as np

from vid3d.formats.conventions import PIXEL_CENTER, pixel_grid

def warp_bilinear(image: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """Sample ``image`` ``(H, W[, C])`` at ``x + flow`` for every pixel x; ``flow`` ``(H, W, 2)``.

    Bilinear, border-replicated; returns ``(H, W[, C])`` float32. Fast path (cv2.remap).
    """
    import cv2

    H, W = flow.shape[:2]
    idx = pixel_grid(H, W) - PIXEL_CENTER  # (H, W, 2): cv2.remap addresses pixels by index
    map_x = idx[..., 0] + flow[..., 0].astype(np.float32)
    map_y = idx[..., 1] + flow[..., 1].astype(np.float32)
    return cv2.remap(np.asarray(image, dtype=np.float32), map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def warp_bilinear_reference(image: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """Slow twin of :func:`warp_bilinear` in plain numpy (same clamping at the border)."""
    image = np.asarray(image, dtype=np.float64)
    H, W = flow.shape[:2]
    out = np.zeros(image.shape, dtype=np.float64)
    for y in range(H):
        for x in range(W):
            sx = min(max(x + float(flow[y, x, 0]), 0.0), W - 1.0)
            sy = min(max(y + float(flow[y, x, 1]), 0.0), H - 1.0)
            x0, y0 = int(np.floor(sx)), int(np.floor(sy))
            x1, y1 = min(x0 + 1, W - 1), min(y0 + 1, H - 1)
            ax, ay = sx - x0, sy - y0
            out[y, x] = ((1 - ax) * (1 - ay) * image[y0, x0] + ax * (1 - ay) * image[y0, x1]
                         + (1 - ax) * ay * image[y1, x0] + ax * ay * image[y1, x1])
    return out.astype(np.float32)


def forward_backward_validity(flow_ij: np.ndarray, flow_ji: np.ndarray, threshold: float = 1.0) -> np.ndarray:
    """Valid pixels of frame i ``(H, W)`` bool for flows ``(H, W, 2)`` i->j and j->i.

    ``|F_ij(x) + F_ji(x + F_ij(x))| <= threshold`` and ``x + F_ij(x)`` inside frame j (pixel centres:
    index coordinates in [0, W-1] x [0, H-1] after the +0.5 shift cancels).
    """
    H, W = flow_ij.shape[:2]
    idx = pixel_grid(H, W) - PIXEL_CENTER
    tx, ty = idx[..., 0] + flow_ij[..., 0], idx[..., 1] + flow_ij[..., 1]
    inside = (tx >= -0.5) & (tx <= W - 0.5) & (ty >= -0.5) & (ty <= H - 0.5)
    back = warp_bilinear(flow_ji, flow_ij)
    err = np.linalg.norm(flow_ij + back, axis=-1)
    return inside & (err <= threshold)


def forward_backward_validity_reference(flow_ij: np.ndarray, flow_ji: np.ndarray, threshold: float = 1.0) -> np.ndarray:
    """Slow twin of :func:`forward_backward_validity` (numpy loops)."""
    H, W = flow_ij.shape[:2]
    back = warp_bilinear_reference(flow_ji, flow_ij)
    valid = np.zeros((H, W), dtype=bool)
    for y in range(H):
        for x in range(W):
            tx, ty = x + flow_ij[y, x, 0], y + flow_ij[y, x, 1]
            inside = -0.5 <= tx <= W - 0.5 and -0.5 <= ty <= H - 0.5
            err = np.hypot(flow_ij[y, x, 0] + back[y, x, 0], flow_ij[y, x, 1] + back[y, x, 1])
            valid[y, x] = inside and err <= threshold
    return valid


def resize_flow(flow: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize a flow field ``(h, w, 2)`` to ``(height, width, 2)`` and rescale its vectors (u by W/w, v by H/h)."""
    import cv2

    h, w = flow.shape[:2]
    if (h, w) == (height, width):
        return flow.astype(np.float32, copy=False)
    out = cv2.resize(flow.astype(np.float32), (width, height), interpolation=cv2.INTER_LINEAR)
    out[..., 0] *= width / w
    out[..., 1] *= height / h
    return out


# ---------------------------------------------------------------------------------------------
# Backends
# ---------------------------------------------------------------------------------------------
