"""A bundle measured against ground truth (I/O at the edge; the metrics are pure) and its report."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from vid3d.eval.metrics import (
    ALIGN_MODES,
    DepthReport,
    IntrinsicsMetrics,
    TemporalMetrics,
    TrajectoryMetrics,
    covisibility,
    evaluate_depth,
    intrinsics_metrics,
    temporal_consistency,
    trajectory_metrics,
)
from vid3d.formats.errors import InputError

DEPTH_CHOICES = ("z", "prior")


@dataclass(frozen=True)
class EvalReport:
    """A bundle evaluated against ground truth. Absent parts are None (see ``notes`` for why).

    Attributes:
        bundle: path of the evaluated bundle. gt_source: where the ground truth came from.
        depth_field: ``z`` or ``prior``: which depth of the bundle was measured.
        num_frames: frames compared. pred_resolution / gt_resolution: ``(H, W)``.
        depth: :class:`DepthReport`. trajectory: :class:`TrajectoryMetrics`.
        intrinsics: :class:`IntrinsicsMetrics`. temporal: :class:`TemporalMetrics` of the bundle's own
            depth and poses, on pixels that GT geometry says are co-visible.
        notes: what was decided on the way (fallbacks, resizes, masks used).
    """

    bundle: str
    gt_source: str
    depth_field: str
    num_frames: int
    pred_resolution: tuple[int, int]
    gt_resolution: tuple[int, int]
    depth: DepthReport | None
    trajectory: TrajectoryMetrics | None
    intrinsics: IntrinsicsMetrics | None
    temporal: TemporalMetrics | None
    notes: tuple[str, ...]

    def to_dict(self) -> dict:
        """Plain JSON-able dict (nested)."""
        d = asdict(self)
        d["notes"] = list(self.notes)
        d["pred_resolution"] = list(self.pred_resolution)
        d["gt_resolution"] = list(self.gt_resolution)
        return d


def _resize_nearest(arr: np.ndarray, H: int, W: int) -> np.ndarray:
    """``(T, h, w)`` -> ``(T, H, W)`` by nearest neighbour (pixel-centre aligned)."""
    T, h, w = arr.shape
    rows = np.minimum(((np.arange(H) + 0.5) * h / H).astype(np.int64), h - 1)
    cols = np.minimum(((np.arange(W) + 0.5) * w / W).astype(np.int64), w - 1)
    return arr[:, rows][:, :, cols]


def evaluate_bundle(bundle_path, gt, *, align: str = "scale", depth: str = "z", rpe_delta: int = 1) -> EvalReport:
    """Measure a bundle against ground truth.

    Args:
        bundle_path: a ``*.vid3d.h5`` bundle.
        gt: a :class:`~vid3d.eval.groundtruth.GroundTruthSequence` or anything
            :func:`~vid3d.eval.groundtruth.read_ground_truth` accepts (path, ``synthetic:<preset>``).
        align: depth alignment ``scale`` | ``scale_shift`` | ``none`` (one per sequence).
        depth: ``z`` (refined; falls back to ``prior`` with a note when absent) or ``prior``.
        rpe_delta: frame step of the RPE.

    Frames correspond through the bundle's ``/time/source_frame`` = GT frame index. A prediction at
    another resolution is resized to GT's (nearest for depth and masks; K scaled exactly).
    """
    from vid3d.formats.bundle import open_bundle
    from vid3d.formats.conventions import scale_intrinsics
    from vid3d.eval.groundtruth import GroundTruthSequence, read_ground_truth

    if align not in ALIGN_MODES:
        raise InputError(f"--align must be one of {ALIGN_MODES}, got {align!r}")
    if depth not in DEPTH_CHOICES:
        raise InputError(f"--depth must be one of {DEPTH_CHOICES}, got {depth!r}")
    if not isinstance(gt, GroundTruthSequence):
        gt = read_ground_truth(gt)
    notes: list[str] = []
    with open_bundle(bundle_path) as b:
        field = {"z": "depth", "prior": "prior"}[depth]
        if not b.has(field):
            if depth == "z" and b.has("prior"):
                notes.append("bundle has no /depth/z: evaluated /depth/prior instead")
                field = "prior"
            else:
                raise InputError(f"{bundle_path} has no {'/depth/z' if field == 'depth' else '/depth/prior'} to evaluate")
        src = np.asarray(b.source_frames, dtype=np.int64)
        if src.min() < 0 or src.max() >= gt.num_frames:
            raise InputError(
                f"bundle frames refer to source frames {src.min()}..{src.max()} but the ground truth has "
                f"{gt.num_frames} frames (0..{gt.num_frames - 1})"
            )
        pred_depth = b.read(field)
        pred_dyn = b.read("dynamic_mask") if b.has("dynamic_mask") else None
        pred_T = np.asarray(b.T_world_camera, dtype=np.float64)
        pred_K = np.asarray(b.K, dtype=np.float64)
        h, w = b.height, b.width
    Hg, Wg = gt.height, gt.width
    if (h, w) != (Hg, Wg):
        notes.append(f"prediction {h}x{w} resized to ground truth {Hg}x{Wg} (nearest for depth and masks)")
        pred_depth = _resize_nearest(pred_depth, Hg, Wg)
        if pred_dyn is not None:
            pred_dyn = _resize_nearest(pred_dyn, Hg, Wg)
        pred_K = scale_intrinsics(pred_K, Wg / w, Hg / h)
    gt_depth = gt.depth[src]
    gt_T = gt.T_world_camera[src]
    gt_K = gt.Ks()[src]
    if gt.dynamic_mask is not None:
        dyn = gt.dynamic_mask[src]
        notes.append("static/dynamic split from the ground-truth mask")
    elif pred_dyn is not None:
        dyn = pred_dyn
        notes.append("static/dynamic split from the bundle's /mask/dynamic (ground truth has none)")
    else:
        dyn = None

    depth_report = evaluate_depth(pred_depth, gt_depth, dynamic_mask=dyn, align=align)
    trajectory = temporal = None
    if len(src) >= 2:
        trajectory = trajectory_metrics(pred_T, gt_T, delta=min(rpe_delta, len(src) - 1))
        static = None if dyn is None else ~dyn
        covis = covisibility(gt_depth, gt_K, gt_T, static_mask=static)
        temporal = temporal_consistency(pred_depth, pred_K, pred_T, static_mask=static, covisible=covis)
        if np.any(np.diff(src) != 1):
            notes.append("temporal consistency and RPE use consecutive bundle frames, which skip source frames")
    else:
        notes.append("one frame only: no trajectory or temporal metrics")
    intrinsics = intrinsics_metrics(pred_K, gt_K)
    return EvalReport(
        bundle=str(bundle_path), gt_source=gt.source, depth_field="z" if field == "depth" else "prior",
        num_frames=int(len(src)), pred_resolution=(int(h), int(w)), gt_resolution=(int(Hg), int(Wg)),
        depth=depth_report, trajectory=trajectory, intrinsics=intrinsics, temporal=temporal, notes=tuple(notes),
    )


def format_report(report: EvalReport) -> str:
    """A readable multi-line table of an :class:`EvalReport`."""
    lines = [
        f"bundle        {report.bundle}",
        f"ground truth  {report.gt_source}",
        f"frames        {report.num_frames}   prediction {report.pred_resolution[0]}x{report.pred_resolution[1]}"
        f"   ground truth {report.gt_resolution[0]}x{report.gt_resolution[1]}   depth /depth/"
        f"{'z' if report.depth_field == 'z' else 'prior'}",
        "",
    ]
    d = report.depth
    if d is not None:
        lines.append(f"depth (align={d.align}: scale {d.scale:.4g}, shift {d.shift:.4g})")
        lines.append(f"  {'region':<9}{'AbsRel':>9}{'SqRel':>9}{'RMSE':>9}{'d<1.25':>9}{'d<1.25^2':>10}{'d<1.25^3':>10}{'pixels':>11}")
        for name, m in (("all", d.overall), ("static", d.static), ("dynamic", d.dynamic)):
            if m is None:
                continue
            lines.append(f"  {name:<9}{m.abs_rel:>9.4f}{m.sq_rel:>9.4f}{m.rmse:>9.4f}{m.delta1:>9.4f}"
                         f"{m.delta2:>10.4f}{m.delta3:>10.4f}{m.num_pixels:>11d}")
    t = report.trajectory
    if t is not None:
        lines += [
            "",
            f"camera (Sim(3) Umeyama, scale {t.sim3_scale:.4g})",
            f"  ATE RMSE            {t.ate_rmse:.4g}  ({t.ate_percent_of_path:.2f} % of the {t.gt_path_length:.3g} GT path)",
            f"  RPE translation     {t.rpe_translation:.4g}  (delta {t.rpe_delta})",
            f"  RPE rotation        {t.rpe_rotation_deg:.4g} deg",
        ]
    if report.intrinsics is not None:
        k = report.intrinsics
        lines.append(f"  focal error         {100 * k.focal_rel_error:.2f} %   principal point {k.principal_point_error_px:.2f} px")
    if report.temporal is not None:
        c = report.temporal
        lines += [
            "",
            "temporal consistency (t -> t+1 reprojection, static co-visible pixels)",
            f"  mean |z_proj/z - 1|  {c.mean_rel:.4f}   median {c.median_rel:.4f}   > 5 %: {100 * c.frac_above_5pct:.1f} %"
            f"   ({c.num_pixels} pixels, {c.num_pairs} pairs)",
        ]
    if report.notes:
        lines += ["", "notes:"] + [f"  - {n}" for n in report.notes]
    return "\n".join(lines)
