"""Stage 3 and 5, motion masks (dynamic regions) without learned weights: pixels whose optical flow
disagrees with the flow that camera motion explains.

Before poses (:mod:`.epipolar`), per pair (i, j) of the flow set:
    F_ij, H_ij = RANSAC fits on forward-backward valid flow correspondences (static majority)
    r_ij(x)    = Sampson distance of (x, x + F_ij(x)) to F_ij   (homography transfer error when the
                 pair is degenerate for F: rotation-only / planar)
After poses (:mod:`.reprojection`), per frame i with its pairs (i, j):
    q*(x)      = median over the pairs of the inverse depth triangulated along x's ray from each
                 pair's flow, ``x_j(q) = pi(K (R_ji K^-1 x~ + q t_ji))``
    r_ij(x)    = |x_j(q*(x)) - (x + F_ij(x))|: the flow residual of a static point at one depth
Both then share the same decision:
    tau_ij     = max(floor, median(r_ij) + k * 1.4826 * MAD(r_ij))     adaptive per pair, no per-clip constant
    s_i(x)     = fraction of i's valid pairs where r_ij(x) > tau_ij       (vote over gaps and directions)
    s_i       <- mean of s_i and s_{i+-1} warped by the flow           (temporal smoothing)
    mask_i     = s_i > vote (0.3: a mover is often consistent with some static depth in a few pairs,
                 rarely in most), opened, closed, holes filled, specks removed

User masks (``load_user_masks``, one image per frame, non-zero = moving) and a learned segmenter hook
(``learned_segmenter``, only with local weights) can replace or join the geometric masks.

Config :class:`MaskConfig`, result :class:`MaskResult`, entry :func:`run` (called once before the
poses and once after; it decides the final masks).
"""

from .config import MaskConfig, MaskResult
from .epipolar import epipolar_residual, motion_masks_epipolar, sampson_distance
from .reprojection import (
    motion_masks_reprojection,
    reprojection_residuals,
    reprojection_residuals_reference,
    triangulate_inverse_depth,
)
from .stage import run
from .segmenter import learned_segmenter
from .user import load_user_masks
from .vote import adaptive_threshold, clean_mask, decide_masks, fill_local, fill_missing, temporal_smooth, vote_scores

__all__ = ["MaskConfig", "MaskResult", "adaptive_threshold", "clean_mask", "decide_masks", "epipolar_residual",
           "fill_local", "fill_missing", "learned_segmenter", "load_user_masks", "motion_masks_epipolar",
           "motion_masks_reprojection", "reprojection_residuals", "reprojection_residuals_reference", "run",
           "sampson_distance", "temporal_smooth", "triangulate_inverse_depth", "vote_scores"]
