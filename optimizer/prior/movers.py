"""Depth of moving objects without a learned model: from where they stand.

A moving region has no multi-view depth (the plane sweep assumes a static scene) and filling it
from its surroundings gives it the depth of the wall behind it. But people, animals and cars stand
on the ground: the static surface just below a mover's lowest pixels (its feet, its wheels) is at
the depth of the contact point, and an upright object seen from roughly eye height is close to a
fronto-parallel plane at that depth. So, per frame and per connected moving region:

1. contact: the columns where the region's lowest pixel lies in its bottom band; the static,
   confident depth a few pixels below those lowest pixels. The ground there is a plane, whose
   inverse depth is affine in the pixel position, so a plane fitted to those samples' inverse depth
   is evaluated at the contact pixels themselves (the samples below are nearer than the feet),
   median -> the contact depth;
2. the region gets that depth (one value: an upright plane facing the camera), never behind what
   it occludes (at most ``FRONT_MARGIN`` x the background depth filled in under it);
3. a region that touches nothing visible (it runs off the bottom of the image, or floats over
   unconfident pixels) is placed in front of what it occludes: ``FLOAT_MARGIN`` x the nearest
   background depth around it.

Pure numpy + OpenCV's connected components; ``mover_depth_reference`` is the slow twin (per pixel
loops) that the tests compare against.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from vid3d.formats.errors import ShapeError

MIN_REGION_FRACTION = 0.001  # regions smaller than this fraction of the frame are left as filled
BOTTOM_BAND = 0.1  # contact columns: lowest pixel within this fraction of the region's height of its bottom
CONTACT_ROWS = (2, 10)  # static pixels sampled this many rows below a contact pixel (inclusive range)
MIN_CONTACT_SAMPLES = 3
FRONT_MARGIN = 0.97  # a mover is at most this fraction of the depth of the background it hides
FLOAT_MARGIN = 0.9  # a mover without contact: this fraction of the nearest surrounding background
RING_PIXELS = 3  # width of the ring around a region where its surrounding background is read


@dataclass(frozen=True)
class MoverDepth:
    """One moving region of one frame: how its depth was decided.

    Attributes:
        frame: frame index; pixels: region size; depth: the depth it got;
        how: ``"contact"`` (from the surface it stands on) or ``"in_front"`` (no visible contact).
        contact_samples: static pixels that gave the contact depth (0 for ``in_front``).
    """

    frame: int
    pixels: int
    depth: float
    how: str
    contact_samples: int


def contact_depth(samples: np.ndarray, contacts: np.ndarray) -> float:
    """Depth of the ground at the contact pixels.

    Args:
        samples: (N, 3) x, y, z of trusted static pixels below the contact pixels.
        contacts: (C, 2) x, y of the contact pixels (the region's lowest pixels).
    Returns:
        the median over the contacts of the plane fitted to the samples' inverse depth (1/z = a + b x
        + c y, least squares); the samples' median depth when the fit is degenerate.
    """
    x, y, z = samples[:, 0], samples[:, 1], samples[:, 2]
    fallback = float(np.median(z))
    if np.ptp(y) < 2:
        return fallback
    A = np.stack([np.ones_like(x), x, y], 1)
    coef, *_ = np.linalg.lstsq(A, 1.0 / z, rcond=None)
    d = coef[0] + coef[1] * contacts[:, 0] + coef[2] * contacts[:, 1]
    if not np.all(np.isfinite(d)) or np.median(d) <= 0:
        return fallback
    z_c = float(1.0 / np.median(d))
    # an extrapolation far outside the samples' own range is not trusted
    return z_c if 0.5 * z.min() < z_c < 2.0 * z.max() else fallback


def _contact_samples(region: np.ndarray, static_depth: np.ndarray, trusted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N, 3) x, y, z of trusted static pixels just below the region's lowest pixels (its bottom
    band), and (C, 2) x, y of those lowest pixels (pixel centres)."""
    H, W = region.shape
    rows = np.arange(H)[:, None]
    cols = np.flatnonzero(region.any(0))
    lowest = np.where(region[:, cols], rows, -1).max(0)  # (C,) lowest row of the region per column
    top = int(np.flatnonzero(region.any(1))[0])
    bottom = int(lowest.max())
    band = bottom - BOTTOM_BAND * max(bottom - top + 1, 1)
    keep = lowest >= band
    cols, lowest = cols[keep], lowest[keep]
    out = []
    for k in range(CONTACT_ROWS[0], CONTACT_ROWS[1] + 1):
        y = lowest + k
        ok = y < H
        y, x = y[ok], cols[ok]
        ok = trusted[y, x] & ~region[y, x]
        y, x = y[ok], x[ok]
        out.append(np.stack([x + 0.5, y + 0.5, static_depth[y, x]], 1))
    contacts = np.stack([cols + 0.5, lowest + 0.5], 1).astype(np.float64)
    return np.concatenate(out).astype(np.float64), contacts


def _ring(region: np.ndarray) -> np.ndarray:
    kernel = np.ones((2 * RING_PIXELS + 1, 2 * RING_PIXELS + 1), np.uint8)
    return cv2.dilate(region.astype(np.uint8), kernel).astype(bool) & ~region


def mover_depth(depth: np.ndarray, confidence: np.ndarray, moving: np.ndarray, *, frame: int = 0,
                min_confidence: float = 0.35) -> tuple[np.ndarray, list[MoverDepth]]:
    """Give every moving region of one frame the depth of where it stands (see module docstring).

    Args:
        depth: (H, W) float32 > 0, static depth with the moving pixels already filled from their
            surroundings (what the region hides).
        confidence: (H, W) float32 in [0, 1]; pixels >= ``min_confidence`` are trusted static depth.
        moving: (H, W) bool, True = moving.
        frame: frame index, for the report.
    Returns:
        ((H, W) float32 depth with the moving regions replaced, one MoverDepth per region changed).
    """
    depth = np.asarray(depth, np.float32)
    moving = np.asarray(moving, bool)
    if depth.ndim != 2 or depth.shape != moving.shape or np.shape(confidence) != depth.shape:
        raise ShapeError(f"mover_depth expects depth, confidence and moving of one (H, W) shape, got "
                         f"{depth.shape}, {np.shape(confidence)}, {moving.shape}")
    out = depth.copy()
    trusted = (np.asarray(confidence) >= min_confidence) & ~moving
    n, labels, stats, _ = cv2.connectedComponentsWithStats(moving.astype(np.uint8), connectivity=8)
    regions = []
    for k in range(1, n):
        if stats[k, cv2.CC_STAT_AREA] < MIN_REGION_FRACTION * depth.size:
            continue
        region = labels == k
        samples, contacts = _contact_samples(region, depth, trusted)
        behind = depth[region]  # the background filled in under the region
        if len(samples) >= MIN_CONTACT_SAMPLES:
            z, how = contact_depth(samples, contacts), "contact"
            z_px = np.minimum(z, FRONT_MARGIN * behind)
        else:
            ring = _ring(region) & ~moving
            near = depth[ring] if ring.any() else behind
            z, how = float(FLOAT_MARGIN * np.percentile(near, 10)), "in_front"
            z_px = np.minimum(z, FRONT_MARGIN * behind)
        out[region] = np.maximum(z_px, 1e-6)
        regions.append(MoverDepth(frame, int(region.sum()), z, how, int(len(samples))))
    return out, regions


def mover_depth_reference(depth: np.ndarray, confidence: np.ndarray, moving: np.ndarray, *,
                          min_confidence: float = 0.35) -> np.ndarray:
    """Slow twin of :func:`mover_depth` (flood fill and per-column loops); (H, W) float32."""
    depth = np.asarray(depth, np.float32)
    moving = np.asarray(moving, bool)
    H, W = depth.shape
    trusted = (np.asarray(confidence) >= min_confidence) & ~moving
    seen = np.zeros((H, W), bool)
    out = depth.copy()
    for y0 in range(H):
        for x0 in range(W):
            if not moving[y0, x0] or seen[y0, x0]:
                continue
            stack, pix = [(y0, x0)], []
            seen[y0, x0] = True
            while stack:  # 8-connected flood fill
                y, x = stack.pop()
                pix.append((y, x))
                for dy in (-1, 0, 1):
                    for dx in (-1, 0, 1):
                        yy, xx = y + dy, x + dx
                        if 0 <= yy < H and 0 <= xx < W and moving[yy, xx] and not seen[yy, xx]:
                            seen[yy, xx] = True
                            stack.append((yy, xx))
            if len(pix) < MIN_REGION_FRACTION * H * W:
                continue
            region = np.zeros((H, W), bool)
            for y, x in pix:
                region[y, x] = True
            lowest = {}
            for y, x in pix:
                lowest[x] = max(lowest.get(x, -1), y)
            top, bottom = min(y for y, _ in pix), max(lowest.values())
            band = bottom - BOTTOM_BAND * max(bottom - top + 1, 1)
            samples, contacts = [], []
            for x, yl in lowest.items():
                if yl < band:
                    continue
                contacts.append((x + 0.5, yl + 0.5))
                for k in range(CONTACT_ROWS[0], CONTACT_ROWS[1] + 1):
                    y = yl + k
                    if y < H and trusted[y, x] and not region[y, x]:
                        samples.append((x + 0.5, y + 0.5, float(depth[y, x])))
            if len(samples) >= MIN_CONTACT_SAMPLES:
                z = contact_depth(np.array(samples), np.array(contacts))
            else:
                near = [depth[y, x] for y in range(H) for x in range(W)
                        if not moving[y, x] and any(region[yy, xx]
                                                    for yy in range(max(0, y - RING_PIXELS), min(H, y + RING_PIXELS + 1))
                                                    for xx in range(max(0, x - RING_PIXELS), min(W, x + RING_PIXELS + 1)))]
                z = float(FLOAT_MARGIN * np.percentile(near if near else [depth[y, x] for y, x in pix], 10))
            for y, x in pix:
                out[y, x] = max(min(z, FRONT_MARGIN * depth[y, x]), 1e-6)
    return out


def cap_in_front(depth: np.ndarray, moving: np.ndarray, hidden: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A mover is never behind what it hides: depth on ``moving`` at most ``FRONT_MARGIN`` x ``hidden``.

    ``depth``, ``hidden`` (..., H, W) > 0 (``hidden``: the background filled in under the movers from
    their surroundings), ``moving`` (..., H, W) bool. Returns (capped depth float32, the pixels that
    were capped (..., H, W) bool). Static pixels are returned unchanged.
    """
    depth = np.asarray(depth, np.float32)
    moving = np.asarray(moving, bool)
    if depth.shape != moving.shape or np.shape(hidden) != depth.shape:
        raise ShapeError(f"cap_in_front expects depth, moving and hidden of one shape, got {depth.shape}, "
                         f"{moving.shape}, {np.shape(hidden)}")
    bound = FRONT_MARGIN * np.asarray(hidden, np.float32)
    capped = moving & (depth > bound)
    return np.where(capped, bound, depth).astype(np.float32), capped


def hidden_depth(depth: np.ndarray, moving: np.ndarray) -> np.ndarray:
    """What the moving pixels of one frame hide: each takes the depth of its nearest static pixel.

    ``depth`` (H, W), ``moving`` (H, W) bool with at least one static pixel. Returns (H, W) float32
    (static pixels: their own depth). The nearest static pixel is exact (OpenCV's distance transform
    with pixel labels), so on a region's outline it is the static neighbour across the edge.
    """
    depth = np.asarray(depth, np.float32)
    static = ~np.asarray(moving, bool)
    _, labels = cv2.distanceTransformWithLabels(np.asarray(moving, np.uint8), cv2.DIST_L2, 5,
                                                labelType=cv2.DIST_LABEL_PIXEL)
    lut = np.zeros(int(labels.max()) + 1, np.float32)
    lut[labels[static]] = depth[static]
    return lut[labels]


def hidden_depth_reference(depth: np.ndarray, moving: np.ndarray) -> np.ndarray:
    """Slow twin of :func:`hidden_depth`: brute-force nearest static pixel (Euclidean), per pixel."""
    depth = np.asarray(depth, np.float32)
    ys, xs = np.nonzero(~np.asarray(moving, bool))
    out = depth.copy()
    for y, x in zip(*np.nonzero(moving)):
        d2 = (ys - y) ** 2 + (xs - x) ** 2
        near = d2 == d2.min()
        out[y, x] = depth[ys[near], xs[near]].min()  # ties: the nearest of the equally near
    return out


def place_in_front(depth: np.ndarray, moving: np.ndarray) -> tuple[np.ndarray, float]:
    """Every moving region of a depth map with depth of its own (a learned prior, trained depth)
    placed in front of what it hides: :func:`cap_in_front` with :func:`hidden_depth`.

    A learned network's soft edges, and flow-driven training (flow cannot tell a near, fast object
    from a far, slow one), otherwise leave a mover's rim at the depth of the wall behind it.

    Args:
        depth: (T, H, W) float32 > 0; moving: (T, H, W) bool.
    Returns:
        (depth (T, H, W) float32, the fraction of the moving pixels that were capped).
    """
    depth = np.asarray(depth, np.float32)
    moving = np.asarray(moving, bool)
    if depth.ndim != 3 or moving.shape != depth.shape:
        raise ShapeError(f"place_in_front expects depth (T, H, W) and moving of its shape, got {depth.shape}, "
                         f"{moving.shape}")

    def cap(t: int) -> tuple[np.ndarray, np.ndarray]:
        return cap_in_front(depth[t], moving[t], hidden_depth(depth[t], moving[t]))

    return _each_frame_with_movers(depth, moving, cap)


def _each_frame_with_movers(depth: np.ndarray, moving: np.ndarray, change) -> tuple[np.ndarray, float]:
    """``depth`` (T, H, W) with ``change(t) -> (new depth (H, W), changed pixels (H, W) bool)`` applied
    to every frame that has moving pixels and static ones; and the share of the moving pixels changed."""
    out = depth.copy()
    n_changed = 0
    for t in np.flatnonzero(moving.reshape(len(depth), -1).any(1)):
        if moving[t].all():
            continue
        out[t], changed = change(int(t))
        n_changed += int(changed.sum())
    return out, n_changed / max(int(moving.sum()), 1)


def place_on_contact(depth: np.ndarray, moving: np.ndarray, confidence: np.ndarray, *,
                     min_confidence: float = 0.35) -> tuple[np.ndarray, float]:
    """Every moving region of a depth map placed again where it stands, on that map's static depth.

    For depth whose movers carry no information of their own: trained depth under a plane-sweep prior
    (their depth gets no gradient from the views, ``PriorTerms.dynamic_depth_grad`` 0, so what the
    shared depth net leaves there is a by-product of the static pixels around it). Per frame, the
    moving pixels are first given the depth they hide (:func:`hidden_depth`), then
    :func:`mover_depth` gives each region the depth of its ground contact on the (refined) static
    depth, or places it in front of its surroundings.

    Args:
        depth: (T, H, W) float32 > 0; moving: (T, H, W) bool; confidence: (T, H, W) in [0, 1] (the
            prior's: which static pixels are trusted contact samples).
    Returns:
        (depth (T, H, W) float32, the fraction of the moving pixels that were placed).
    """
    depth = np.asarray(depth, np.float32)
    moving = np.asarray(moving, bool)
    if depth.ndim != 3 or moving.shape != depth.shape or np.shape(confidence) != depth.shape:
        raise ShapeError(f"place_on_contact expects depth (T, H, W) and moving, confidence of its shape, got "
                         f"{depth.shape}, {moving.shape}, {np.shape(confidence)}")

    def place(t: int) -> tuple[np.ndarray, np.ndarray]:
        filled = hidden_depth(depth[t], moving[t])
        new, regions = mover_depth(filled, confidence[t], moving[t], frame=t, min_confidence=min_confidence)
        changed = moving[t] & (new != filled) if regions else np.zeros(moving[t].shape, bool)
        return np.where(changed, new, depth[t]), changed  # regions too small to place keep their depth

    return _each_frame_with_movers(depth, moving, place)
