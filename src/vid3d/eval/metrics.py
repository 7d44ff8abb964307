"""Evaluation metrics against ground truth (pure numpy): depth, camera trajectory, intrinsics, temporal
consistency, motion masks.

What is computed, exactly:

- **Depth** (:func:`depth_metrics`): over valid pixels (``gt > 0 & pred > 0``, finite), after ONE
  alignment per sequence (:func:`align_depth`): ``scale`` = median of ``gt / pred`` (robust), or
  ``scale_shift`` = least squares ``gt ~ s * pred + b``, or ``none``. Then
  AbsRel = mean |p - g| / g, SqRel = mean (p - g)^2 / g, RMSE = sqrt(mean (p - g)^2) (GT units),
  delta_k = fraction with max(p / g, g / p) < 1.25^k. Split into static/dynamic pixels when a mask exists.
- **Camera** (:func:`trajectory_metrics`): camera centres aligned by Sim(3) Umeyama (:func:`umeyama`,
  prediction -> GT); ATE = RMSE of the aligned centre errors (GT units and % of the GT path length).
  RPE at ``delta`` frames: for relative motions ``Q_i = G_i^-1 G_{i+d}`` (GT) and ``P_i`` (prediction,
  translation multiplied by the Sim(3) scale), ``E_i = Q_i^-1 P_i``; RPE translation = RMSE of |t(E_i)|,
  RPE rotation = mean angle of R(E_i) in degrees.
- **Intrinsics** (:func:`intrinsics_metrics`): focal error = mean over frames of
  (|fx_p / fx_g - 1| + |fy_p / fy_g - 1|) / 2; principal-point error = mean distance in pixels.
- **Temporal consistency** (:func:`temporal_consistency`): for every consecutive pair (t, t+1), the
  static pixels of frame t are unprojected with depth_t and the given pose, projected into t+1 (with
  the given pose) and compared with depth_{t+1} there: ``|z_proj / z_{t+1}(x') - 1|`` where
  ``1 / z_{t+1}(x')`` is bilinear in inverse depth (exact on planes). Pixels are used where the target
  lies inside the image with its 4 neighbours valid and static, and the point is visible in t+1:
  either from a given co-visibility mask (from GT geometry by :func:`covisibility`: GT reprojection
  within 1 %, GT neighbours on one surface, inverse depths within 5 %), or, without one, the 4
  predicted neighbours within 20 % of each other (not across an edge) and ``z_proj <= 1.1 z_{t+1}(x')``
  (not occluded). Reported:
  mean and median of that relative disagreement, and the fraction above 5 %. It is scale-invariant.
- **Motion masks** (:func:`mask_iou`): intersection over union of the moving pixels.

Bundles against ground truth, and the printed report: :mod:`vid3d.eval.report`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from vid3d.formats.conventions import invert_T, project_points, unproject_depth
from vid3d.formats.errors import InputError, ShapeError

ALIGN_MODES = ("scale", "scale_shift", "none")
EDGE_TOL = 0.05  # GT co-visibility: neighbours' inverse depths within 5 % = one surface
EDGE_TOL_NO_GT = 0.20  # without GT, a noisy prediction's neighbours may differ more: only big jumps are edges
OCCLUSION_TOL = 0.10  # without a co-visibility mask, a point > 10 % behind the seen surface is occluded


# ---------------------------------------------------------------------------------------------
# Result structures
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DepthMetrics:
    """Depth errors over ``num_pixels`` valid pixels (depths in GT units after alignment)."""

    abs_rel: float
    sq_rel: float
    rmse: float
    delta1: float
    delta2: float
    delta3: float
    num_pixels: int


@dataclass(frozen=True)
class DepthReport:
    """Depth metrics of a sequence: ``overall``, and ``static``/``dynamic`` when a mask exists (else None).

    ``align`` is the mode; the prediction was mapped as ``scale * pred + shift`` before measuring.
    """

    overall: DepthMetrics
    static: DepthMetrics | None
    dynamic: DepthMetrics | None
    align: str
    scale: float
    shift: float


@dataclass(frozen=True)
class TrajectoryMetrics:
    """Camera-trajectory errors after Sim(3) alignment of the prediction to GT (GT units).

    ``sim3_scale``/``sim3_R`` (3x3 list)/``sim3_t`` map predicted centres to GT: ``c_gt ~ s R c + t``.
    """

    ate_rmse: float
    ate_percent_of_path: float
    gt_path_length: float
    rpe_translation: float
    rpe_rotation_deg: float
    rpe_delta: int
    sim3_scale: float
    sim3_R: list
    sim3_t: list
    num_frames: int


@dataclass(frozen=True)
class IntrinsicsMetrics:
    """Relative focal error (0.05 = 5 %) and principal-point error in GT pixels."""

    focal_rel_error: float
    principal_point_error_px: float


@dataclass(frozen=True)
class TemporalMetrics:
    """Relative reprojection disagreement between consecutive depth maps (see module docstring)."""

    mean_rel: float
    median_rel: float
    frac_above_5pct: float
    num_pixels: int
    num_pairs: int


# ---------------------------------------------------------------------------------------------
# Depth
# ---------------------------------------------------------------------------------------------


def valid_depth_mask(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Pixels ``(...)`` where both depths are finite and > 0."""
    return np.isfinite(pred) & np.isfinite(gt) & (pred > 0) & (gt > 0)


def align_depth(pred: np.ndarray, gt: np.ndarray, valid: np.ndarray, mode: str = "scale") -> tuple[float, float]:
    """One alignment ``(scale, shift)`` mapping ``pred`` to ``gt`` over ``valid`` pixels (any shape).

    ``scale``: median(gt / pred), shift 0. ``scale_shift``: least squares ``gt ~ s * pred + b``.
    ``none``: (1, 0).
    """
    if mode not in ALIGN_MODES:
        raise InputError(f"align must be one of {ALIGN_MODES}, got {mode!r}")
    if mode == "none":
        return 1.0, 0.0
    p = pred[valid].astype(np.float64)
    g = gt[valid].astype(np.float64)
    if p.size == 0:
        raise InputError("no pixel where both predicted and ground-truth depth are valid")
    if mode == "scale":
        return float(np.median(g / p)), 0.0
    A = np.stack([p, np.ones_like(p)], axis=1)
    (s, b), *_ = np.linalg.lstsq(A, g, rcond=None)
    return float(s), float(b)


def depth_metrics(pred: np.ndarray, gt: np.ndarray, mask: np.ndarray | None = None) -> DepthMetrics:
    """Depth errors of an (already aligned) prediction over ``valid & mask`` pixels.

    Args:
        pred, gt: depths of the same shape ``(...)`` (e.g. ``(T, H, W)``); gt 0 = invalid.
        mask: optional bool ``(...)`` restricting the pixels.
    """
    if pred.shape != gt.shape:
        raise ShapeError(f"pred and gt depth must have the same shape, got {pred.shape} and {gt.shape}")
    valid = valid_depth_mask(pred, gt)
    if mask is not None:
        valid &= mask
    p = pred[valid].astype(np.float64)
    g = gt[valid].astype(np.float64)
    if p.size == 0:
        nan = float("nan")
        return DepthMetrics(nan, nan, nan, nan, nan, nan, 0)
    diff = p - g
    ratio = np.maximum(p / g, g / p)
    return DepthMetrics(
        abs_rel=float(np.mean(np.abs(diff) / g)),
        sq_rel=float(np.mean(diff**2 / g)),
        rmse=float(np.sqrt(np.mean(diff**2))),
        delta1=float(np.mean(ratio < 1.25)),
        delta2=float(np.mean(ratio < 1.25**2)),
        delta3=float(np.mean(ratio < 1.25**3)),
        num_pixels=int(p.size),
    )


def evaluate_depth(
    pred: np.ndarray, gt: np.ndarray, *, dynamic_mask: np.ndarray | None = None, align: str = "scale"
) -> DepthReport:
    """Align once per sequence, then measure overall and (with a mask) static/dynamic.

    Args:
        pred: ``(T, H, W)`` predicted depth (any scale). gt: ``(T, H, W)`` GT depth, 0 = invalid.
        dynamic_mask: ``(T, H, W)`` bool, True = moving, or None.
        align: ``scale`` | ``scale_shift`` | ``none``.
    """
    if pred.shape != gt.shape:
        raise ShapeError(f"pred and gt depth must have the same shape, got {pred.shape} and {gt.shape}")
    valid = valid_depth_mask(pred, gt)
    s, b = align_depth(pred, gt, valid, align)
    aligned = np.where(valid, s * pred.astype(np.float64) + b, 0.0)
    if align == "scale_shift":  # a shift can push a depth to <= 0: count it as a tiny (very wrong) depth
        floor = 1e-3 * float(np.median(gt[valid]))
        aligned = np.where(valid, np.maximum(aligned, floor), 0.0)
    overall = depth_metrics(aligned, gt, valid)
    static = dynamic = None
    if dynamic_mask is not None:
        if dynamic_mask.shape != gt.shape:
            raise ShapeError(f"dynamic_mask must be {gt.shape}, got {dynamic_mask.shape}")
        static = depth_metrics(aligned, gt, valid & ~dynamic_mask)
        dynamic = depth_metrics(aligned, gt, valid & dynamic_mask)
    return DepthReport(overall=overall, static=static, dynamic=dynamic, align=align, scale=s, shift=b)


# ---------------------------------------------------------------------------------------------
# Trajectory
# ---------------------------------------------------------------------------------------------


def umeyama(src: np.ndarray, dst: np.ndarray, *, with_scale: bool = True) -> tuple[float, np.ndarray, np.ndarray]:
    """Least-squares similarity ``dst ~ s R src + t`` (Umeyama 1991).

    Args:
        src, dst: ``(N, 3)`` corresponding points, N >= 2 (N >= 3 non-collinear for a unique R).

    Returns:
        ``(s, R (3, 3), t (3,))``. If ``src`` has no spread, s = 1, R = I, t = mean difference.
    """
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    if src.shape != dst.shape or src.ndim != 2 or src.shape[1] != 3 or len(src) < 2:
        raise ShapeError(f"umeyama needs two (N, 3) arrays with N >= 2, got {src.shape} and {dst.shape}")
    mu_s, mu_d = src.mean(0), dst.mean(0)
    xs, xd = src - mu_s, dst - mu_d
    var_s = float(np.mean(np.sum(xs**2, axis=1)))
    if var_s < 1e-18:
        return 1.0, np.eye(3), mu_d - mu_s
    sigma = xd.T @ xs / len(src)
    U, D, Vt = np.linalg.svd(sigma)
    S = np.eye(3)
    if np.linalg.det(U) * np.linalg.det(Vt) < 0:
        S[2, 2] = -1.0
    R = U @ S @ Vt
    s = float(np.trace(np.diag(D) @ S) / var_s) if with_scale else 1.0
    t = mu_d - s * R @ mu_s
    return s, R, t


def apply_sim3(s: float, R: np.ndarray, t: np.ndarray, T_world_camera: np.ndarray) -> np.ndarray:
    """Poses ``(T, 4, 4)`` mapped by the similarity: rotation ``R R_c``, centre ``s R c + t``."""
    out = np.array(T_world_camera, dtype=np.float64, copy=True)
    out[:, :3, :3] = R @ out[:, :3, :3]
    out[:, :3, 3] = s * out[:, :3, 3] @ R.T + t
    return out


def rotation_angle_deg(R: np.ndarray) -> np.ndarray:
    """Rotation angles in degrees of ``(..., 3, 3)`` matrices: ``(...)``."""
    cos = (np.trace(R, axis1=-2, axis2=-1) - 1.0) / 2.0
    v = np.stack([R[..., 2, 1] - R[..., 1, 2], R[..., 0, 2] - R[..., 2, 0], R[..., 1, 0] - R[..., 0, 1]], axis=-1)
    sin = np.linalg.norm(v, axis=-1) / 2.0
    return np.degrees(np.arctan2(sin, cos))  # accurate for small angles too, unlike arccos


def trajectory_metrics(
    pred_T_world_camera: np.ndarray, gt_T_world_camera: np.ndarray, *, delta: int = 1, with_scale: bool = True
) -> TrajectoryMetrics:
    """ATE after Sim(3) Umeyama alignment and RPE at ``delta`` (see module docstring).

    Args:
        pred_T_world_camera, gt_T_world_camera: ``(T, 4, 4)`` camera-to-world, same frames.
        delta: RPE frame step. with_scale: Sim(3) (True) or SE(3) alignment.
    """
    P = np.asarray(pred_T_world_camera, dtype=np.float64)
    G = np.asarray(gt_T_world_camera, dtype=np.float64)
    if P.shape != G.shape or P.ndim != 3 or P.shape[1:] != (4, 4):
        raise ShapeError(f"pred and gt poses must both be (T, 4, 4), got {P.shape} and {G.shape}")
    if len(P) < 2:
        raise InputError(f"trajectory metrics need >= 2 frames, got {len(P)}")
    s, R, t = umeyama(P[:, :3, 3], G[:, :3, 3], with_scale=with_scale)
    A = apply_sim3(s, R, t, P)
    err = np.linalg.norm(A[:, :3, 3] - G[:, :3, 3], axis=1)
    ate = float(np.sqrt(np.mean(err**2)))
    path = float(np.linalg.norm(np.diff(G[:, :3, 3], axis=0), axis=1).sum())
    d = int(delta)
    if not 1 <= d < len(P):
        raise InputError(f"RPE delta must be in [1, {len(P) - 1}], got {delta}")
    Q = invert_T(G[:-d]) @ G[d:]
    Pr = invert_T(A[:-d]) @ A[d:]  # aligned poses: relative translations already carry the scale
    E = invert_T(Q) @ Pr
    rpe_t = float(np.sqrt(np.mean(np.sum(E[:, :3, 3] ** 2, axis=1))))
    rpe_r = float(np.mean(rotation_angle_deg(E[:, :3, :3])))
    return TrajectoryMetrics(
        ate_rmse=ate, ate_percent_of_path=100.0 * ate / path if path > 0 else float("nan"), gt_path_length=path,
        rpe_translation=rpe_t, rpe_rotation_deg=rpe_r, rpe_delta=d, sim3_scale=float(s),
        sim3_R=R.tolist(), sim3_t=t.tolist(), num_frames=int(len(P)),
    )


# ---------------------------------------------------------------------------------------------
# Intrinsics
# ---------------------------------------------------------------------------------------------


def intrinsics_metrics(pred_K: np.ndarray, gt_K: np.ndarray) -> IntrinsicsMetrics:
    """Focal and principal-point errors of ``(3, 3)`` or ``(T, 3, 3)`` intrinsics in the same pixel units."""
    P = np.asarray(pred_K, dtype=np.float64).reshape(-1, 3, 3)
    G = np.asarray(gt_K, dtype=np.float64).reshape(-1, 3, 3)
    if len(P) != len(G) and 1 not in (len(P), len(G)):
        raise ShapeError(f"intrinsics must be (3, 3) or (T, 3, 3) of the same T, got {P.shape} and {G.shape}")
    rel = 0.5 * (np.abs(P[:, 0, 0] / G[:, 0, 0] - 1) + np.abs(P[:, 1, 1] / G[:, 1, 1] - 1))
    pp = np.linalg.norm(P[:, :2, 2] - G[:, :2, 2], axis=-1)
    return IntrinsicsMetrics(focal_rel_error=float(np.mean(rel)), principal_point_error_px=float(np.mean(pp)))


# ---------------------------------------------------------------------------------------------
# Temporal consistency
# ---------------------------------------------------------------------------------------------


def _bilinear_taps(img: np.ndarray, uv: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The 4 bilinear taps of ``img`` ``(H, W)`` at continuous pixel coords ``uv`` ``(N, 2)`` (+0.5 centres).

    Returns ``(values (N, 4), weights (N, 4), inside (N,))``; taps are clamped where not inside.
    """
    H, W = img.shape
    x = uv[:, 0] - 0.5
    y = uv[:, 1] - 0.5
    inside = (x >= 0) & (x <= W - 1) & (y >= 0) & (y <= H - 1)
    x0 = np.clip(np.floor(x).astype(np.int64), 0, max(W - 2, 0))
    y0 = np.clip(np.floor(y).astype(np.int64), 0, max(H - 2, 0))
    fx = np.clip(x - x0, 0, 1)
    fy = np.clip(y - y0, 0, 1)
    x1 = np.minimum(x0 + 1, W - 1)
    y1 = np.minimum(y0 + 1, H - 1)
    vals = np.stack([img[y0, x0], img[y0, x1], img[y1, x0], img[y1, x1]], axis=1)
    wts = np.stack([(1 - fx) * (1 - fy), fx * (1 - fy), (1 - fx) * fy, fx * fy], axis=1)
    return vals, wts, inside


def _pair_disagreement(
    d_i: np.ndarray, d_j: np.ndarray, K_i: np.ndarray, K_j: np.ndarray, T_i: np.ndarray, T_j: np.ndarray,
    src_mask: np.ndarray, dst_ok: np.ndarray, edge_tol: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Frame i's masked pixels projected into j: ``(flat pixel index (N,), z_proj (N,), z_j at target (N,))``,
    keeping only targets inside j on one valid surface (see module docstring)."""
    idx = np.flatnonzero(src_mask & (d_i > 0) & np.isfinite(d_i))
    X = unproject_depth(d_i.astype(np.float64), K_i, T_i).reshape(-1, 3)[idx]
    uv, z = project_points(X, K_j, T_j)
    inv_j = np.where((d_j > 0) & np.isfinite(d_j) & dst_ok, 1.0 / np.where(d_j > 0, d_j, 1.0), 0.0)
    vals, wts, inside = _bilinear_taps(inv_j, np.nan_to_num(uv, nan=-1.0))
    ok = inside & (z > 0) & np.all(vals > 0, axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        ok &= vals.max(axis=1) <= (1 + edge_tol) * vals.min(axis=1)
        z_j = 1.0 / np.sum(vals * wts, axis=1)
    return idx[ok], z[ok], z_j[ok]


def covisibility(
    depth: np.ndarray, K: np.ndarray, T_world_camera: np.ndarray, *, static_mask: np.ndarray | None = None,
    rel_tol: float = 0.01,
) -> np.ndarray:
    """Which pixels of frame t are seen again (not occluded) in frame t+1, from (GT) geometry.

    Args:
        depth: ``(T, H, W)``; K: ``(3, 3)`` or ``(T, 3, 3)``; T_world_camera: ``(T, 4, 4)``.
        static_mask: ``(T, H, W)`` bool of static pixels (None = all static).
        rel_tol: a projected point within this relative depth of the surface seen in t+1 is visible.

    Returns:
        ``(T - 1, H, W)`` bool.
    """
    T, H, W = depth.shape
    Ks = np.broadcast_to(np.asarray(K, dtype=np.float64), (T, 3, 3))
    st = np.ones_like(depth, dtype=bool) if static_mask is None else static_mask
    out = np.zeros((T - 1, H, W), dtype=bool)
    for t in range(T - 1):
        idx, z, z_j = _pair_disagreement(depth[t], depth[t + 1], Ks[t], Ks[t + 1], T_world_camera[t],
                                         T_world_camera[t + 1], st[t], st[t + 1], EDGE_TOL)
        out[t].reshape(-1)[idx[np.abs(z / z_j - 1.0) < rel_tol]] = True
    return out


def temporal_consistency(
    depth: np.ndarray, K: np.ndarray, T_world_camera: np.ndarray, *, static_mask: np.ndarray | None = None,
    covisible: np.ndarray | None = None,
) -> TemporalMetrics:
    """Relative disagreement of consecutive depth maps reprojected with the given poses (module docstring).

    Args:
        depth: ``(T, H, W)`` depth (any consistent scale; 0 = invalid).
        K: ``(3, 3)`` or ``(T, 3, 3)``. T_world_camera: ``(T, 4, 4)`` in the depth's scale.
        static_mask: ``(T, H, W)`` bool, static pixels (None = all).
        covisible: ``(T - 1, H, W)`` bool, pixels of t seen in t+1 (e.g. :func:`covisibility` of GT);
            None = occlusion test ``z_proj <= 1.1 z_{t+1}``.
    """
    depth = np.asarray(depth)
    if depth.ndim != 3 or len(depth) < 2:
        raise ShapeError(f"depth must be (T, H, W) with T >= 2, got {depth.shape}")
    T = len(depth)
    if np.shape(T_world_camera) != (T, 4, 4):
        raise ShapeError(f"T_world_camera must be ({T}, 4, 4), got {np.shape(T_world_camera)}")
    Ks = np.broadcast_to(np.asarray(K, dtype=np.float64), (T, 3, 3))
    st = np.ones(depth.shape, dtype=bool) if static_mask is None else static_mask
    rels = []
    for t in range(T - 1):
        src = st[t] if covisible is None else st[t] & covisible[t]
        idx, z, z_j = _pair_disagreement(depth[t], depth[t + 1], Ks[t], Ks[t + 1], T_world_camera[t],
                                         T_world_camera[t + 1], src, st[t + 1],
                                         np.inf if covisible is not None else EDGE_TOL_NO_GT)
        if covisible is None:
            keep = z <= (1 + OCCLUSION_TOL) * z_j
            z, z_j = z[keep], z_j[keep]
        rels.append(np.abs(z / z_j - 1.0))
    r = np.concatenate(rels) if rels else np.zeros(0)
    if r.size == 0:
        nan = float("nan")
        return TemporalMetrics(nan, nan, nan, 0, T - 1)
    return TemporalMetrics(
        mean_rel=float(r.mean()), median_rel=float(np.median(r)), frac_above_5pct=float(np.mean(r > 0.05)),
        num_pixels=int(r.size), num_pairs=T - 1,
    )


def as_dict(obj) -> dict:
    """A result dataclass (nested) as plain JSON-able dicts."""
    return asdict(obj)


def mask_iou(pred: np.ndarray, truth: np.ndarray) -> float:
    """Intersection over union of two boolean mask stacks ``(..., H, W)`` (1.0 when both are empty)."""
    pred, truth = np.asarray(pred, bool), np.asarray(truth, bool)
    union = np.logical_or(pred, truth).sum()
    return 1.0 if union == 0 else float(np.logical_and(pred, truth).sum() / union)
