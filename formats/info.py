"""A summary of a bundle for people (``vid3d info``) and for scripts (``--json``)."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from vid3d.formats.bundle import IMAGE_FIELDS, Bundle, DatasetInfo, validate_bundle


@dataclass(frozen=True)
class BundleSummary:
    """What ``vid3d info`` prints. ``compression_ratio`` = raw size (floats as float32) / file size;
    ``precision``: per image dataset, its encoding and the error bound it states (``Bundle.encoding``)."""

    path: str
    num_frames: int
    height: int
    width: int
    fps: float
    duration_s: float
    units: str
    metric_scale: bool
    conventions: dict[str, Any]
    provenance: dict[str, Any]
    fields: list[str]
    datasets: list[DatasetInfo]
    file_bytes: int
    raw_bytes: int
    compression_ratio: float
    meta: list[str]
    problems: list[str] = field(default_factory=list)
    precision: dict[str, dict[str, Any]] = field(default_factory=dict)  # image dataset path -> stated bound
    camera: dict[str, Any] = field(default_factory=dict)  # focal, where it came from, motion model (optimizer output)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def summarize(bundle: Bundle, *, deep: bool = False) -> BundleSummary:
    """Collect the figures of ``bundle``; ``deep`` also scans every frame for bad values."""
    a = bundle.attrs
    datasets = bundle.dataset_infos()
    file_bytes = os.path.getsize(bundle.path)
    raw = sum(d.raw_bytes for d in datasets)
    conventions = {k: a.get(k) for k in ("camera_convention", "pose_convention", "depth_kind", "pixel_center",
                                         "quaternion_order", "scene_flow_kind")}
    provenance = {k: a.get(k) for k in ("producer", "created_utc", "source", "format", "format_version", "codec")}
    stages = bundle.meta("stages")
    if stages is not None:
        provenance["stages"] = stages
    duration = float(bundle.timestamps_s[-1] - bundle.timestamps_s[0]) + 1.0 / bundle.fps
    precision = {}
    for name in bundle.fields:
        enc = bundle.encoding(name)
        precision[IMAGE_FIELDS[name].path] = {"encoding": enc.name, **enc.bound, "text": enc.describe()}
    camera = _camera(bundle)
    return BundleSummary(
        path=str(bundle.path), num_frames=bundle.num_frames, height=bundle.height, width=bundle.width,
        fps=bundle.fps, duration_s=duration, units=str(a.get("units")), metric_scale=bool(a.get("metric_scale")),
        conventions=conventions, provenance=provenance, fields=list(bundle.fields), datasets=datasets,
        file_bytes=file_bytes, raw_bytes=raw, compression_ratio=raw / max(file_bytes, 1),
        meta=bundle.meta_names(), problems=validate_bundle(bundle.path, deep=True) if deep else [],
        precision=precision, camera=camera,
    )


def _camera(bundle: Bundle) -> dict[str, Any]:
    """The camera as the optimizer decided it (``/meta/decisions``): focal in pixels, whether it was
    observed or assumed and why, the motion model and the test that decided it; {} for other bundles."""
    decisions = bundle.meta("decisions")
    poses = decisions.get("poses", {}) if isinstance(decisions, dict) else {}
    if not poses:
        return {}
    keys = ("focal_px", "focal_source", "focal_observable", "motion_model", "motion_model_decided_by", "registered",
            "remask", "refinement")
    return {k: poses[k] for k in keys if k in poses}


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


def format_summary(s: BundleSummary) -> str:
    """Plain-text rendering of a summary."""
    scale = "metric (m)" if s.metric_scale else f"up to scale ({s.units})"
    lines = [
        f"bundle      {Path(s.path).name}",
        f"frames      {s.num_frames} at {s.fps:g} fps ({s.duration_s:.2f} s)",
        f"resolution  {s.width} x {s.height}",
        f"scale       {scale}",
        "conventions " + ", ".join(f"{k}={v}" for k, v in s.conventions.items() if v is not None),
        "provenance  " + ", ".join(f"{k}={v}" for k, v in s.provenance.items() if v is not None),
        f"content     {', '.join(s.fields)}",
        f"size        {_size(s.file_bytes)} on disk, {_size(s.raw_bytes)} raw (float32/uint8): "
        f"compression {s.compression_ratio:.2f}x",
    ]
    if s.camera:
        focal = s.camera.get("focal_px", [float("nan")])[0]
        observed = "observed" if s.camera.get("focal_observable", True) else "NOT observable"
        lines.append(f"camera      focal {focal:.1f} px ({observed}: {s.camera.get('focal_source', '?')})")
        if "motion_model" in s.camera:
            lines.append(f"{'':12}motion {s.camera['motion_model']} ({s.camera.get('motion_model_decided_by', '')})")
        remask = s.camera.get("remask")
        if isinstance(remask, dict) and remask.get("kept"):
            what = ("mapped again with the masks after poses" if remask["kept"] == "second"
                    else "first mapping kept")
            lines.append(f"{'':12}poses {what} ({remask.get('why', '')})")
        refined = s.camera.get("refinement")
        if isinstance(refined, dict) and "kept" in refined:
            if refined["kept"]:
                lines.append(f"{'':12}poses refined by a robust bundle adjustment ({refined.get('loss', '')}): median "
                             f"reprojection error {refined['median_error_px_before']:.3f} -> "
                             f"{refined['median_error_px_after']:.3f} px; keypoints {refined.get('keypoints', '')}; "
                             f"corner tracks {refined.get('tracks', 'off')}")
            else:
                lines.append(f"{'':12}poses refinement {refined.get('why', '')}")
    if s.precision:
        width = max(len(p) for p in s.precision) + 2
        lines.append("precision   " + f"\n{'':12}".join(f"{p:<{width}}{b['text']}" for p, b in s.precision.items()))
    pw = max([26, *(len(d.path) + 2 for d in s.datasets)])
    lines += ["", f"{'dataset':<{pw}}{'dtype':<9}{'shape':<22}{'stored':>11}{'raw':>11}{'ratio':>8}  codec"]
    for d in sorted(s.datasets, key=lambda d: d.path):
        ratio = d.raw_bytes / d.stored_bytes if d.stored_bytes else float("nan")
        codec = d.compression + (f", {d.encoding}" if d.encoding != "plain" else "")
        lines.append(f"{d.path:<{pw}}{d.dtype:<9}{str(d.shape):<22}{_size(d.stored_bytes):>11}"
                     f"{_size(d.raw_bytes):>11}{ratio:>8.2f}  {codec}")
    if s.meta:
        lines += ["", "meta        " + ", ".join(s.meta)]
    if s.problems:
        lines += ["", "PROBLEMS:"] + [f"  - {p}" for p in s.problems]
    return "\n".join(lines)
