"""Motion masks (dynamic regions) without learned weights: pixels whose optical flow disagrees with
the flow that camera motion explains.

Before poses (``motion_masks_epipolar``), per pair (i, j) of the flow set:
    F_ij, H_ij = RANSAC fits on forward-backward valid flow correspondences (static majority)
    r_ij(x)    = Sampson distance of (x, x + F_ij(x)) to F_ij   (homography transfer error when the
                 pair is degenerate for F: rotation-only / planar)
After poses (``motion_masks_reprojection``), per frame i with its pairs (i, j):
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
"""

from __future__ import annotations

import dataclasses
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vid3d.formats.conventions import invert_T
from vid3d.formats.errors import InputError, ShapeError

log = logging.getLogger("vid3d.masks")

MAD_TO_SIGMA = 1.4826


@dataclass(frozen=True)
class MaskConfig:
    """How motion masks are decided.

    Attributes:
        k_sigma: a residual above ``median + k_sigma * robust sigma`` of its pair is "moving".
        floor_px: lower bound of the residual threshold in pixels (the flow's own noise level; the
            same 1 px as the forward-backward validity test).
        vote: fraction of a pixel's valid pairs that must call it moving.
        temporal_radius: frames on each side averaged (after flow warping) into a frame's score.
        min_area_fraction: connected moving regions smaller than this fraction of the image are dropped.
        max_points: correspondences sampled per pair for the RANSAC fits.
        prepose_dilate_fraction: the pre-pose masks are dilated by this fraction of the image
            diagonal (they only keep SfM features off movers: recall matters more than precision).
        segmenter: ``"none"`` or ``"auto"`` (a learned segmenter joins when its weights are local).
        seed: RANSAC sampling seed.
    """

    k_sigma: float = 3.0
    floor_px: float = 1.0
    vote: float = 0.3
    temporal_radius: int = 1
    min_area_fraction: float = 0.002
    max_points: int = 1500
    prepose_dilate_fraction: float = 0.01
    segmenter: str = "none"
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.k_sigma > 0 or not self.floor_px > 0:
            raise InputError(f"MaskConfig: k_sigma and floor_px must be > 0, got {self.k_sigma}, {self.floor_px}")
        if not 0 < self.vote < 1:
            raise InputError(f"MaskConfig.vote must be in (0, 1), got {self.vote}")
        if self.segmenter not in ("none", "auto"):
            raise InputError(f"MaskConfig.segmenter must be 'none' or 'auto', got {self.segmenter!r}")

    @staticmethod
    def preset(name: str) -> "MaskConfig":
        """``draft``, ``standard`` or ``best`` (the learned segmenter joins when its weights are local)."""
        presets = {"draft": MaskConfig(max_points=800), "standard": MaskConfig(), "best": MaskConfig(segmenter="auto")}
        if name not in presets:
            raise InputError(f"unknown MaskConfig preset {name!r}; expected one of {sorted(presets)}")
        return presets[name]

    def replace(self, **changes) -> "MaskConfig":
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class MaskResult:
    """Motion masks of a clip.

    Attributes:
        masks: ``(T, H, W)`` bool, True = moving.
        method: how they were made (``epipolar``, ``reprojection``, ``user``, plus ``+learned``).
        report: what was decided (JSON-able).
    """

    masks: np.ndarray
    method: str
    report: dict = dataclasses.field(default_factory=dict)


# ---------------------------------------------------------------------------------------------
# Residuals of one pair
# ---------------------------------------------------------------------------------------------


def _grid(H: int, W: int) -> np.ndarray:
    """Pixel centres ``(H, W, 2)`` float64 (u + 0.5, v + 0.5)."""
    v, u = np.mgrid[0:H, 0:W].astype(np.float64)
    return np.stack([u + 0.5, v + 0.5], axis=-1)


def sampson_distance(F: np.ndarray, x_i: np.ndarray, x_j: np.ndarray) -> np.ndarray:
    """First-order geometric distance (px) of correspondences ``(..., 2)`` to ``x_j^T F x_i = 0``: ``(...)``."""
    xi = np.concatenate([x_i, np.ones(x_i.shape[:-1] + (1,))], axis=-1)
    xj = np.concatenate([x_j, np.ones(x_j.shape[:-1] + (1,))], axis=-1)
    Fx = xi @ F.T  # F x_i
    Ftx = xj @ F  # F^T x_j
    num = np.einsum("...k,...k->...", xj, Fx) ** 2
    den = Fx[..., 0] ** 2 + Fx[..., 1] ** 2 + Ftx[..., 0] ** 2 + Ftx[..., 1] ** 2
    return np.sqrt(num / np.maximum(den, 1e-12))


def epipolar_residual(flow: np.ndarray, valid: np.ndarray, *, max_points: int = 1500, seed: int = 0
                      ) -> tuple[np.ndarray, str]:
    """Residual (px) ``(H, W)`` of a flow field ``(H, W, 2)`` against a robust two-view model fitted to it.

    The model is a fundamental matrix (Sampson distance), or a homography (transfer error) when the
    homography explains nearly as many correspondences (rotation-only or planar pair, where F is
    degenerate). Pixels with ``valid`` False get NaN. Returns ``(residual, "F" | "H" | "none")``.
    """
    import cv2

    H, W = valid.shape
    x_i = _grid(H, W)
    x_j = x_i + flow
    residual = np.full((H, W), np.nan)
    idx = np.flatnonzero(valid)
    if len(idx) < 16:
        return residual, "none"
    rng = np.random.default_rng(seed)
    sample = idx if len(idx) <= max_points else rng.choice(idx, max_points, replace=False)
    p_i = x_i.reshape(-1, 2)[sample].astype(np.float32)
    p_j = x_j.reshape(-1, 2)[sample].astype(np.float32)
    cv2.setRNGSeed(seed)
    F, inl_F = cv2.findFundamentalMat(p_i, p_j, cv2.USAC_MAGSAC, 1.0, 0.999, 5000)
    Hm, inl_H = cv2.findHomography(p_i, p_j, cv2.RANSAC, 1.0, maxIters=2000, confidence=0.999)
    n_F = int(inl_F.sum()) if F is not None and F.shape == (3, 3) else 0
    n_H = int(inl_H.sum()) if Hm is not None else 0
    flat_i, flat_j = x_i[valid], x_j[valid]
    if n_H >= 0.9 * n_F and n_H > 0:
        proj = np.concatenate([flat_i, np.ones((len(flat_i), 1))], axis=1) @ Hm.T
        residual[valid] = np.linalg.norm(proj[:, :2] / proj[:, 2:3] - flat_j, axis=1)
        return residual, "H"
    if n_F == 0:
        return residual, "none"
    residual[valid] = sampson_distance(F, flat_i, flat_j)
    return residual, "F"


def _project_candidates(x: np.ndarray, K: np.ndarray, T_j_i: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Project pixels ``x`` ``(N, 2)`` of camera i at inverse depths ``q`` ``(N,)`` into camera j: ``(N, 2)``.

    ``X_j ~ R_ji K^-1 x~ + q t_ji`` (dividing the 3-D point by its depth keeps q = 0 finite).
    """
    rays = np.concatenate([x, np.ones((len(x), 1))], axis=1) @ np.linalg.inv(K).T
    Xj = rays @ T_j_i[:3, :3].T + q[:, None] * T_j_i[:3, 3]
    p = Xj @ K.T
    z = p[:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        uv = p[:, :2] / z[:, None]
    uv[z <= 1e-9] = np.inf  # behind camera j: cannot be a static point
    return uv


def triangulate_inverse_depth(x: np.ndarray, x_j: np.ndarray, K: np.ndarray, T_j_i: np.ndarray) -> np.ndarray:
    """Least-squares inverse depth ``(N,)`` along the rays of pixels ``x`` ``(N, 2)`` (camera i) that
    project onto ``x_j`` ``(N, 2)`` in camera j. ``u_j (a_2 + q b_2) = a_0 + q b_0`` (same for v), with
    ``a = K R_ji K^-1 x~`` and ``b = K t_ji``; negative values mean "behind": not a static point.
    """
    rays = np.concatenate([x, np.ones((len(x), 1))], axis=1) @ np.linalg.inv(K).T
    a = rays @ T_j_i[:3, :3].T @ K.T
    b = K @ T_j_i[:3, 3]
    A = np.stack([b[0] - x_j[:, 0] * b[2], b[1] - x_j[:, 1] * b[2]], axis=1)
    B = np.stack([x_j[:, 0] * a[:, 2] - a[:, 0], x_j[:, 1] * a[:, 2] - a[:, 1]], axis=1)
    return (A * B).sum(1) / np.maximum((A * A).sum(1), 1e-12)


def reprojection_residuals(flows: list[np.ndarray], valids: list[np.ndarray], K: np.ndarray,
                           T_j_i: list[np.ndarray]) -> np.ndarray:
    """Flow residuals (px) ``(P, H, W)`` of one frame i against a static point at one inverse depth.

    ``flows[p]`` ``(H, W, 2)`` is the flow i -> j_p, ``valids[p]`` ``(H, W)`` its validity, ``T_j_i[p]``
    ``(4, 4)`` the relative pose. Each valid pair triangulates an inverse depth ``q_p(x)``; the
    consensus ``q*(x)`` is their median (a static point has one depth, a mover's apparent depth
    changes with the gap and direction), and the residual of every pair is the distance between
    the flow target and the projection of x at ``q*`` (NaN where the pair's flow is invalid).
    """
    P = len(flows)
    H, W = valids[0].shape
    x = _grid(H, W).reshape(-1, 2)
    targets = [x + f.reshape(-1, 2).astype(np.float64) for f in flows]
    ok = np.stack([v.reshape(-1) for v in valids])  # (P, N)
    q = np.stack([triangulate_inverse_depth(x, targets[p], K, T_j_i[p]) for p in range(P)])
    with warnings.catch_warnings():  # pixels with no valid pair: NaN, handled below
        warnings.simplefilter("ignore", RuntimeWarning)
        q_star = np.nanmedian(np.where(ok, q, np.nan), axis=0)
    q_star = np.maximum(np.nan_to_num(q_star, nan=0.0), 0.0)  # behind the camera: not static
    res = np.stack([np.linalg.norm(_project_candidates(x, K, T_j_i[p], q_star) - targets[p], axis=1)
                    for p in range(P)])
    res = np.where(np.isfinite(res), res, 1e6)
    res[~ok] = np.nan
    return res.reshape(P, H, W)


def reprojection_residuals_reference(flows, valids, K, T_j_i) -> np.ndarray:
    """Slow twin of :func:`reprojection_residuals`: one pixel at a time, explicit 3-D points."""
    P = len(flows)
    H, W = valids[0].shape
    Kinv = np.linalg.inv(K)
    out = np.full((P, H, W), np.nan)
    for y in range(H):
        for x in range(W):
            u = np.array([x + 0.5, y + 0.5, 1.0])
            qs = []
            for p in range(P):
                if not valids[p][y, x]:
                    continue
                target = u[:2] + flows[p][y, x]
                R, t = T_j_i[p][:3, :3], T_j_i[p][:3, 3]
                a, b = K @ R @ Kinv @ u, K @ t
                A = np.array([b[0] - target[0] * b[2], b[1] - target[1] * b[2]])
                B = np.array([target[0] * a[2] - a[0], target[1] * a[2] - a[1]])
                qs.append(A @ B / max(A @ A, 1e-12))
            if not qs:
                continue
            q = max(float(np.median(qs)), 0.0)
            for p in range(P):
                if not valids[p][y, x]:
                    continue
                R, t = T_j_i[p][:3, :3], T_j_i[p][:3, 3]
                X = R @ Kinv @ u + q * t  # the point at depth 1/q, scaled by q
                if X[2] <= 1e-9:
                    out[p, y, x] = 1e6
                    continue
                proj = (K @ X)[:2] / (K @ X)[2]
                out[p, y, x] = np.linalg.norm(proj - (u[:2] + flows[p][y, x]))
    return out


# ---------------------------------------------------------------------------------------------
# From residuals to masks
# ---------------------------------------------------------------------------------------------


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


def fill_missing(score: np.ndarray) -> np.ndarray:
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
    scores = np.stack([fill_missing(s) for s in scores])
    scores = temporal_smooth(scores, flow_lookup, config.temporal_radius)
    return np.stack([clean_mask(s > config.vote, min_area_fraction=config.min_area_fraction) for s in scores])


def _lookup(flows):
    def get(i, j):
        try:
            return flows.get(i, j)
        except KeyError:
            return None
    return get


def motion_masks_epipolar(flows, config: MaskConfig = MaskConfig(), *, dilate: bool = True) -> tuple[np.ndarray, dict]:
    """Motion masks before camera poses exist, from a :class:`~vid3d.optimizer.flow.FlowSet`.

    Returns ``(masks (T, H, W) bool, report)``; with ``dilate`` the masks grow by
    ``prepose_dilate_fraction`` of the image diagonal (they serve to keep SfM features off movers).
    """
    import cv2

    T = int(flows.pairs.max()) + 1
    H, W = flows.valid.shape[1:]
    per_frame: list[list[np.ndarray]] = [[] for _ in range(T)]
    models = {"F": 0, "H": 0, "none": 0}
    for k, (i, j) in enumerate(flows.pairs):
        r, model = epipolar_residual(flows.flow[k], flows.valid[k], max_points=config.max_points, seed=config.seed + k)
        models[model] += 1
        per_frame[int(i)].append(r)
    masks = decide_masks(per_frame, _lookup(flows), config)
    if dilate and config.prepose_dilate_fraction > 0:
        r = max(1, int(round(config.prepose_dilate_fraction * np.hypot(H, W))))
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
        masks = np.stack([cv2.dilate(m.astype(np.uint8), kernel).astype(bool) for m in masks])
    report = {"method": "epipolar", "models": models, "moving_fraction": float(masks.mean())}
    log.info("masks (before poses): %.1f%% of pixels moving (%d F / %d H pair models)",
             100 * report["moving_fraction"], models["F"], models["H"])
    return masks, report


def motion_masks_reprojection(flows, K: np.ndarray, T_world_camera: np.ndarray,
                              config: MaskConfig = MaskConfig(), *, progress: bool = False) -> tuple[np.ndarray, dict]:
    """Motion masks once poses exist: flow residual against the camera-motion-induced flow of a static
    point at the best consensus depth (per pixel, over all of the frame's pairs).

    Args:
        flows: :class:`~vid3d.optimizer.flow.FlowSet` (T frames of H x W).
        K: ``(3, 3)`` intrinsics at the working resolution.
        T_world_camera: ``(T, 4, 4)`` camera-to-world poses.
    Returns:
        ``(masks (T, H, W) bool, report)``.
    """
    T = int(flows.pairs.max()) + 1
    T_world_camera = np.asarray(T_world_camera, dtype=np.float64)
    if T_world_camera.shape != (T, 4, 4) or np.shape(K) != (3, 3):
        raise ShapeError(f"expected K (3, 3) and T_world_camera ({T}, 4, 4), got {np.shape(K)} and {T_world_camera.shape}")
    T_camera_world = invert_T(T_world_camera)
    per_frame: list[list[np.ndarray]] = []
    frames = range(T)
    if progress:
        from tqdm import tqdm

        frames = tqdm(frames, desc="masks", unit="frame", leave=False)
    for i in frames:
        rows = np.flatnonzero(flows.pairs[:, 0] == i)
        js = flows.pairs[rows, 1]
        rel = [T_camera_world[j] @ T_world_camera[i] for j in js]
        per_frame.append(list(reprojection_residuals([flows.flow[k] for k in rows], [flows.valid[k] for k in rows],
                                                     np.asarray(K, np.float64), rel)))
    masks = decide_masks(per_frame, _lookup(flows), config)
    report = {"method": "reprojection", "moving_fraction": float(masks.mean())}
    log.info("masks (after poses): %.1f%% of pixels moving", 100 * report["moving_fraction"])
    return masks, report


# ---------------------------------------------------------------------------------------------
# User masks and the learned segmenter hook
# ---------------------------------------------------------------------------------------------


def load_user_masks(folder: str | Path, source_frames: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """User masks ``(T, H, W)`` bool from ``folder``: one image per frame in natural name order,
    non-zero = moving.

    The folder holds either one image per *source* frame of the video (picked by ``source_frames``
    ``(T,)``) or exactly one per kept frame. Images are resized (nearest) to ``size = (H, W)``.
    """
    import cv2

    from vid3d.optimizer.frames import list_images

    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"--masks {folder} is not a folder; expected one mask image per frame")
    files = list_images(folder)
    T = len(source_frames)
    if len(files) > int(np.max(source_frames)):
        chosen = [files[int(s)] for s in source_frames]
    elif len(files) == T:
        chosen = files
    else:
        raise InputError(f"--masks {folder} has {len(files)} images; expected one per source frame "
                         f"(> {int(np.max(source_frames))}) or one per kept frame ({T})")
    H, W = size
    out = np.empty((T, H, W), dtype=bool)
    for t, f in enumerate(chosen):
        im = cv2.imread(str(f), cv2.IMREAD_UNCHANGED)
        if im is None:
            raise InputError(f"mask image {f.name} cannot be read")
        if im.ndim == 3:
            im = im.max(axis=2)
        out[t] = cv2.resize((im > 0).astype(np.uint8), (W, H), interpolation=cv2.INTER_NEAREST).astype(bool)
    log.info("masks: %d user masks from %s (%.1f%% moving)", T, folder, 100 * out.mean())
    return out


MOVABLE_COCO = (1, 2, 3, 4, 6, 7, 8, 9, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25)  # person, vehicles, animals...


def learned_segmenter_weights() -> Path | None:
    """Local Mask R-CNN weights (torchvision name in the torch hub cache), None when absent."""
    try:
        import torch
    except Exception:
        return None
    path = Path(torch.hub.get_dir()) / "checkpoints" / "maskrcnn_resnet50_fpn_v2_coco-73cbd019.pth"
    return path if path.is_file() else None


def learned_segmenter(rgb: np.ndarray, *, score_threshold: float = 0.5) -> np.ndarray | None:
    """Masks ``(T, H, W)`` bool of movable object classes from a learned instance segmenter, or None
    when its weights are not in the local cache (never downloads) or torchvision does not import.

    The union of instances of movable COCO classes (people, vehicles, animals) above
    ``score_threshold``; it joins the geometric masks (union), it does not replace them.
    """
    weights = learned_segmenter_weights()
    if weights is None:
        return None
    try:
        import torch
        from torchvision.models.detection import maskrcnn_resnet50_fpn_v2
    except Exception as exc:
        log.info("masks: learned segmenter unavailable (%s)", exc)
        return None
    model = maskrcnn_resnet50_fpn_v2(weights=None, weights_backbone=None)
    model.load_state_dict(torch.load(weights, map_location="cpu"))
    model.eval()
    out = np.zeros(rgb.shape[:3], dtype=bool)
    with torch.no_grad():
        for t, im in enumerate(rgb):
            x = torch.from_numpy(np.ascontiguousarray(im)).permute(2, 0, 1).float() / 255.0
            det = model([x])[0]
            keep = (det["scores"] > score_threshold) & torch.isin(det["labels"], torch.tensor(MOVABLE_COCO))
            if keep.any():
                out[t] = (det["masks"][keep, 0] > 0.5).any(0).numpy()
    return out


def mask_iou(pred: np.ndarray, truth: np.ndarray) -> float:
    """Intersection over union of two boolean mask stacks ``(..., H, W)`` (1.0 when both are empty)."""
    pred, truth = np.asarray(pred, bool), np.asarray(truth, bool)
    union = np.logical_or(pred, truth).sum()
    return 1.0 if union == 0 else float(np.logical_and(pred, truth).sum() / union)
