"""Residual maps -> masks: adaptive per-pair thresholds, votes over pairs, temporal smoothing through
the flow, morphological clean-up."""

from __future__ import annotations

import numpy as np

from .config import MAD_TO_SIGMA, MaskConfig


def adaptive_threshold(residual: np.ndarray, *, k_sigma: float, floor_px: float) -> float:
    """``max(floor, median + k * 1.4826 * MAD)`` of the finite residuals ``(H, W)`` (the static majority)."""
    r = residual[np.isfinite(residual)]
    if r.size == 0:
        return float("inf")
    med = float(np.median(r))
    mad = float(np.median(np.abs(r - med)))
    return max(floor_px, med + k_sigma * MAD_TO_SIGMA * mad)


def vote_scores(residuals_by_frame: list[list[np.ndarray]], config: MaskConfig) -> np.ndarray:
    """Per-frame moving scores ``(T, H, W)`` in [0, 1] (NaN where no pair was valid) from the residuals
    ``residuals_by_frame[t]`` = list of ``(H, W)`` residual maps of frame t's pairs (NaN = invalid)."""
    scores = []
    for maps in residuals_by_frame:
        votes = np.zeros(maps[0].shape)
        count = np.zeros(maps[0].shape)
        for r in maps:
            tau = adaptive_threshold(r, k_sigma=config.k_sigma, floor_px=config.floor_px)
            fin = np.isfinite(r)
            votes += fin & (np.nan_to_num(r, nan=0.0) > tau)
            count += fin
        with np.errstate(invalid="ignore", divide="ignore"):
            scores.append(np.where(count > 0, votes / np.maximum(count, 1), np.nan))
    return np.stack(scores)


def fill_local(score: np.ndarray) -> np.ndarray:
    """Fill NaNs of a score map ``(H, W)`` by normalised convolution at growing scales: ``(H, W)``."""
    import cv2

    out = score.copy()
    miss = ~np.isfinite(out)
    if not miss.any():
        return out
    if miss.all():
        return np.zeros_like(out)
    w = (~miss).astype(np.float32)
    val = np.where(miss, 0.0, out).astype(np.float32)
    k = 3
    while miss.any() and k < 4 * max(out.shape):
        num = cv2.blur(val, (k, k), borderType=cv2.BORDER_REFLECT)
        den = cv2.blur(w, (k, k), borderType=cv2.BORDER_REFLECT)
        hit = miss & (den > 1e-6)
        out[hit] = num[hit] / den[hit]
        miss = miss & ~hit
        k = 2 * k + 1
    out[miss] = 0.0
    return out


def region_rim_means(score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The unknown regions of a score map ``(H, W)`` (8-connected NaN pixels) and the mean score of
    each one's rim (the known pixels 8-adjacent to it): ``(labels (H, W) int, 0 = known; means (n,))``.

    A rim pixel touching two regions counts for the one with the larger label.
    """
    import cv2

    miss = ~np.isfinite(score)
    n, labels = cv2.connectedComponents(miss.astype(np.uint8), connectivity=8)
    kernel = np.ones((3, 3), np.uint8)
    rim = cv2.dilate(miss.astype(np.uint8), kernel).astype(bool) & ~miss
    owner = cv2.dilate(labels.astype(np.float32), kernel).astype(np.int64)  # exact for labels < 2**24
    sums = np.bincount(owner[rim], weights=score[rim], minlength=n)
    counts = np.bincount(owner[rim], minlength=n)
    means = np.where(counts > 0, sums / np.maximum(counts, 1), 0.0)
    means[0] = np.nan
    return labels, means


def region_rim_means_reference(score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Slow twin of :func:`region_rim_means`: flood fill and explicit neighbour loops."""
    H, W = score.shape
    miss = ~np.isfinite(score)
    labels = np.zeros((H, W), np.int64)
    n = 1
    for y in range(H):
        for x in range(W):
            if miss[y, x] and labels[y, x] == 0:
                stack = [(y, x)]
                labels[y, x] = n
                while stack:
                    cy, cx = stack.pop()
                    for dy in (-1, 0, 1):
                        for dx in (-1, 0, 1):
                            yy, xx = cy + dy, cx + dx
                            if 0 <= yy < H and 0 <= xx < W and miss[yy, xx] and labels[yy, xx] == 0:
                                labels[yy, xx] = n
                                stack.append((yy, xx))
                n += 1
    sums, counts = np.zeros(n), np.zeros(n)
    for y in range(H):
        for x in range(W):
            if miss[y, x]:
                continue
            near = [labels[yy, xx] for yy in range(max(0, y - 1), min(H, y + 2))
                    for xx in range(max(0, x - 1), min(W, x + 2)) if miss[yy, xx]]
            if near:
                sums[max(near)] += score[y, x]
                counts[max(near)] += 1
    means = np.where(counts > 0, sums / np.maximum(counts, 1), 0.0)
    means[0] = np.nan
    return labels, means


def fill_missing(score: np.ndarray, vote: float, max_area_fraction: float = 1.0) -> np.ndarray:
    """Fill the unknown (NaN) pixels of a score map ``(H, W)``: ``(H, W)``.

    Each unknown region (a textureless area, pixels without valid flow) is judged by its rim: if the
    mean score of the known pixels around it reaches ``vote`` (a mover's textureless interior,
    ringed by its moving edges), its pixels take the scores around them (:func:`fill_local`);
    otherwise (a blank wall with a few flow errors on its edges) they take the rim's mean, which is
    below the vote: static. Without the rim test, the few spurious scores on the edges of large
    blank areas spread into them (21 % of a static HoloLens clip flagged; 1.9 % with it).

    A region larger than ``max_area_fraction`` of the frame is static whatever its rim (it takes the
    median score of the frame's known pixels, capped below the vote): the scores
    rest on the static majority (each pair's threshold comes from its median residual), so most of a
    frame cannot be a mover's interior. On HoloLens the blank wall and cabinet front of the first
    frames (37-78 % of the frame, rim means 0.32-0.51 around the 0.4 vote) flipped to moving with
    poses a few hundredths of a pixel apart: 1.9 % or 3.4 % of the clip flagged.
    """
    miss = ~np.isfinite(score)
    if not miss.any():
        return score.copy()
    if miss.all():
        return np.zeros_like(score)
    labels, means = region_rim_means(score)
    area = np.bincount(labels.ravel(), minlength=len(means)) / labels.size
    moving = (means >= vote) & (area <= max_area_fraction)
    local = fill_local(score)
    rim = means[labels]
    out = score.copy()
    too_large = (means >= vote) & (area > max_area_fraction)
    static_level = float(np.median(score[~miss]))  # what the static majority of this frame scores
    rim = np.where(too_large[labels], min(static_level, np.nextafter(vote, 0)), rim)
    out[miss] = np.where(moving[labels][miss], local[miss], rim[miss])
    return out


def temporal_smooth(scores: np.ndarray, flow_lookup, radius: int) -> np.ndarray:
    """Average each frame's score ``(T, H, W)`` with its neighbours' scores warped along the flow.

    ``flow_lookup(i, j)`` returns ``(flow (H, W, 2), valid (H, W))`` from i to j, or None.
    """
    from vid3d.optimizer.flow import warp_bilinear

    T = scores.shape[0]
    out = np.empty_like(scores)
    for t in range(T):
        acc = scores[t].copy()
        n = np.ones_like(acc)
        for d in range(1, radius + 1):
            for s in (t - d, t + d):
                if not 0 <= s < T:
                    continue
                got = flow_lookup(t, s)
                if got is None:
                    continue
                flow, valid = got
                warped = warp_bilinear(scores[s], flow)
                acc += np.where(valid, warped, 0.0)
                n += valid
        out[t] = acc / n
    return out


def clean_mask(mask: np.ndarray, *, min_area_fraction: float) -> np.ndarray:
    """Morphological clean-up of one mask ``(H, W)`` bool: open, close, fill holes, drop small regions."""
    import cv2

    H, W = mask.shape
    r = max(1, int(round(min(H, W) / 100)))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
    m = mask.astype(np.uint8)
    m = cv2.morphologyEx(m, cv2.MORPH_OPEN, kernel)
    m = cv2.morphologyEx(m, cv2.MORPH_CLOSE, kernel)
    # fill holes: background not connected to the border becomes foreground
    inv = (1 - m).astype(np.uint8)
    n, labels = cv2.connectedComponents(inv, connectivity=4)
    border = set(np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]])).tolist())
    for lab in range(1, n):
        if lab not in border:
            m[labels == lab] = 1
    n, labels, stats, _ = cv2.connectedComponentsWithStats(m, connectivity=8)
    min_area = min_area_fraction * H * W
    keep = np.zeros(n, dtype=bool)
    keep[1:] = stats[1:, cv2.CC_STAT_AREA] >= min_area
    return keep[labels]


def decide_masks(residuals_by_frame: list[list[np.ndarray]], flow_lookup, config: MaskConfig) -> np.ndarray:
    """Residual maps per frame -> motion masks ``(T, H, W)`` bool (vote, fill, smooth, threshold, clean)."""
    scores = vote_scores(residuals_by_frame, config)
    scores = np.stack([fill_missing(s, config.vote, config.fill_max_area_fraction) for s in scores])
    scores = temporal_smooth(scores, flow_lookup, config.temporal_radius)
    return np.stack([clean_mask(s > config.vote, min_area_fraction=config.min_area_fraction) for s in scores])


def pair_lookup(flows):
    """``(i, j) -> (flow, valid)`` of a FlowSet, or None for a pair it does not hold."""
    def get(i, j):
        try:
            return flows.get(i, j)
        except KeyError:
            return None
    return get
