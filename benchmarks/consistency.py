"""Consistency training, before (prior) vs after (refined): depth accuracy, temporal consistency, cost.

Cases: the synthetic ``dynamic`` and ``static`` clips (vid3d.synthetic, 180x320, 24 frames; a
number after the name sets the frame count, e.g. ``dynamic60``, pipeline inputs only) and
``../shared/data/hololens_dvmvs`` (real, static, 36 frames, downscaled 2x to 270x180; skipped when
absent).

Inputs, ``--inputs``:

- ``pipeline`` (default): what a user gets. The clip is written as a video (synthetic, H.264) or an
  image folder (HoloLens) and ``vid3d.optimizer.pipeline.run_optimize`` runs every stage on it at
  ``--preset`` (SfM poses, DIS flow, automatic motion masks, geometric prior, training); the written
  bundle's ``/depth/prior`` and ``/depth/z`` are scored with ``vid3d eval`` (one median scale per
  sequence, static/dynamic split from the ground-truth mask, temporal consistency on co-visible static
  pixels with the bundle's own poses). Nothing from the ground truth reaches the optimizer.
- ``degraded``: training alone, from GT poses + K and a DEGRADED GT prior
  (``vid3d.optimizer.train.synthetic_inputs.degraded_prior``: per-frame scale +-15 %, smooth
  log-distortion up to +-10 % plus a smooth random field, 2 % noise; HoloLens GT holes filled from the
  nearest valid pixel first), DIS flow (``--flow dis``) or exact flow (``--flow gt``, synthetic only)
  and the GT dynamic mask. It isolates the training from the part-1 stages.

Metrics (``vid3d.eval.metrics``, no alignment: the prior and poses share units):
AbsRel and delta1 overall / static / dynamic, temporal consistency = mean relative disagreement of
consecutive depth maps reprojected with the poses (static pixels), seconds per frame of training at
the preset, peak RSS (resource.getrusage) and peak Python-heap (tracemalloc) of the run.

    .venv/bin/python benchmarks/consistency.py [--inputs pipeline|degraded] [--preset standard]
        [--flow dis] [--cases dynamic,static,hololens] [--threads N]

Prints a table and one JSON line (``CONSISTENCY_JSON {...}``).
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

import vid3d  # noqa: F401  (zlib first)
from vid3d.eval.metrics import depth_metrics, temporal_consistency
from vid3d.optimizer.config import OptimizeConfig
from vid3d.optimizer.train import TrainConfig, TrainInputs
from vid3d.optimizer.train import run as train_consistent_depth
from vid3d.optimizer.train.synthetic_inputs import degraded_prior, dis_flows, flows_for

STATIC_MASK = True  # HoloLens is static: the all-static mask part 1 would report (--no-static-mask: None)
SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def synthetic_case(name: str, flow: str):
    from vid3d.synthetic import SceneConfig, make_clip

    clip = make_clip(SceneConfig.preset(name))
    prior = degraded_prior(clip.depth, seed=0)
    flows = dis_flows(clip.rgb) if flow == "dis" else flows_for(clip.num_frames, (1, 2, 4, 6, 8), clip.optical_flow)
    mask = clip.dynamic_mask if clip.dynamic_mask.any() else None
    inputs = TrainInputs(rgb=clip.rgb, K=clip.K, T_world_camera=clip.T_world_camera, prior_depth=prior,
                         flows=flows, dynamic_mask=mask)
    return inputs, clip.depth, clip.dynamic_mask


def hololens_case():
    import cv2
    from scipy import ndimage

    from vid3d.formats.conventions import scale_intrinsics
    from vid3d.eval.groundtruth import read_hololens_dvmvs

    seq = read_hololens_dvmvs(SHARED / "hololens_dvmvs")
    H, W = seq.height // 2, seq.width // 2
    rgb = np.stack([cv2.resize(im, (W, H), interpolation=cv2.INTER_AREA) for im in seq.rgb])
    gt = np.stack([cv2.resize(d, (W, H), interpolation=cv2.INTER_NEAREST) for d in seq.depth])
    K = scale_intrinsics(np.asarray(seq.K_at(0), np.float64), W / seq.width, H / seq.height)
    filled = np.empty_like(gt)
    for t in range(len(gt)):  # nearest valid GT pixel into the holes, then degrade
        idx = ndimage.distance_transform_edt(gt[t] <= 0, return_distances=False, return_indices=True)
        filled[t] = gt[t][tuple(idx)]
    prior = degraded_prior(filled, seed=0)
    inputs = TrainInputs(rgb=rgb, K=K, T_world_camera=seq.T_world_camera, prior_depth=prior,
                         flows=dis_flows(rgb), dynamic_mask=np.zeros(gt.shape, bool) if STATIC_MASK else None)
    return inputs, gt, np.zeros(gt.shape, bool)


def measure(name: str, inputs: TrainInputs, gt: np.ndarray, dyn: np.ndarray, cfg: TrainConfig, device: str,
            preset: str) -> dict:
    tracemalloc.start()
    t0 = time.perf_counter()
    res = train_consistent_depth(inputs, cfg, device=device, progress=False)
    wall = time.perf_counter() - t0
    _, py_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    T = inputs.num_frames
    row = {"case": name, "frames": T, "size": f"{gt.shape[2]}x{gt.shape[1]}", "device": res.report["device"],
           "preset": preset, "s_per_frame": wall / T, "s_per_step": res.timings["s_per_step"],
           "train_s": wall, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
           "py_heap_peak_mb": py_peak / 2**20}
    for tag, d in (("prior", inputs.prior_depth), ("refined", res.depth)):
        for region, m in (("all", None), ("static", ~dyn), ("dynamic", dyn if dyn.any() else None)):
            if region == "dynamic" and m is None:
                continue
            dm = depth_metrics(d, gt, m)
            row[f"{tag}_absrel_{region}"] = dm.abs_rel
            row[f"{tag}_delta1_{region}"] = dm.delta1
        tc = temporal_consistency(d, inputs.K, inputs.T_world_camera, static_mask=~dyn)
        row[f"{tag}_temporal"] = tc.mean_rel
    row["timings"] = {k: round(v, 3) for k, v in res.timings.items()}
    row["mean_confidence"] = float(res.confidence.mean())
    row["flow_px_first_last"] = [res.report["flow_px_first10"], res.report["flow_px_last10"]]
    return row


def pipeline_case(name: str, preset: str, device: str, work: Path) -> dict:
    """Run ``run_optimize`` (every stage) on the clip ``name`` and score the bundle's prior and depth."""
    from vid3d.eval.report import evaluate_bundle
    from vid3d.optimizer.pipeline import run_optimize

    work.mkdir(parents=True, exist_ok=True)
    if name == "hololens":
        from vid3d.eval.groundtruth import read_hololens_dvmvs

        gt = read_hololens_dvmvs(SHARED / "hololens_dvmvs")
        source = SHARED / "hololens_dvmvs" / "images"
    else:
        import dataclasses
        import re

        from vid3d.eval.groundtruth import from_synthetic
        from vid3d.synthetic import SceneConfig, make_clip

        m = re.fullmatch(r"([a-z_]+?)(\d*)", name)  # "dynamic60": the dynamic preset with 60 frames
        if m is None:
            raise SystemExit(f"error: case {name!r} is not a synthetic preset name (optionally followed by a "
                             f"frame count, e.g. dynamic60) or hololens")
        cfg = SceneConfig.preset(m.group(1))
        if m.group(2):
            cfg = cfg.replace(num_frames=int(m.group(2)))
        clip = make_clip(cfg)
        source = clip.write_video(work / f"{name}.mp4")
        gt = dataclasses.replace(from_synthetic(clip), source=f"synthetic:{name}")
    out = work / f"{name}-{preset}.vid3d.h5"
    t0 = time.perf_counter()
    res = run_optimize(source, out, OptimizeConfig.preset(preset, device=device), force=True, progress=False)
    wall = time.perf_counter() - t0
    row = {"case": name, "frames": gt.num_frames, "size": f"{gt.width}x{gt.height}", "preset": preset,
           "device": device, "wall_s": wall, "s_per_frame": wall / gt.num_frames,
           "train_s": res.timings.get("train", float("nan")),
           "train_s_per_frame": res.timings.get("train", float("nan")) / gt.num_frames,
           "stage_s": res.timings, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    for tag, field in (("prior", "prior"), ("refined", "z")):
        rep = evaluate_bundle(out, gt, depth=field)
        for region in ("overall", "static", "dynamic"):
            m = getattr(rep.depth, region)
            if m is not None:
                key = "all" if region == "overall" else region
                row[f"{tag}_absrel_{key}"] = m.abs_rel
                row[f"{tag}_delta1_{key}"] = m.delta1
        row[f"{tag}_temporal"] = rep.temporal.mean_rel if rep.temporal else float("nan")
        if tag == "refined" and rep.trajectory is not None:
            row["ate_pct_path"] = rep.trajectory.ate_percent_of_path
    return row


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--inputs", default="pipeline", choices=("pipeline", "degraded"))
    ap.add_argument("--preset", default="standard")
    ap.add_argument("--workdir", default="/tmp/vid3d_bench_consistency")
    ap.add_argument("--flow", default="dis", choices=("dis", "gt"))
    ap.add_argument("--cases", default="dynamic,static,hololens")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = default)")
    args = ap.parse_args(argv)
    cfg = OptimizeConfig.preset(args.preset).train.replace(num_threads=args.threads)
    if args.inputs == "pipeline" and args.threads:
        import torch

        torch.set_num_threads(args.threads)
    rows = []
    for case in args.cases.split(","):
        if case == "hololens" and not (SHARED / "hololens_dvmvs").is_dir():
            print("hololens: ../shared/data/hololens_dvmvs absent, skipped")
            continue
        if args.inputs == "pipeline":
            rows.append(pipeline_case(case, args.preset, args.device, Path(args.workdir)))
            print(f"done {case}: {rows[-1]['wall_s']:.0f} s", file=sys.stderr)
            continue
        if case == "hololens":
            inputs, gt, dyn = hololens_case()
        else:
            inputs, gt, dyn = synthetic_case(case, args.flow)
        rows.append(measure(case, inputs, gt, dyn, cfg, args.device, args.preset))
        print(f"done {case}: {rows[-1]['train_s']:.0f} s", file=sys.stderr)
    pipeline = args.inputs == "pipeline"
    print("inputs: " + (f"the whole pipeline on the clip (SfM poses, DIS flow, automatic masks, geometric prior), "
                        f"preset={args.preset}; scored with vid3d eval (one median scale per sequence)" if pipeline else
                        f"GT poses + K, degraded GT prior (scale +-15%, smooth distortion, 2% noise), "
                        f"flow={args.flow}, preset={args.preset}"))
    cols = ["absrel_all", "delta1_all", "absrel_static", "absrel_dynamic", "delta1_dynamic", "temporal"]
    print(f"{'case':10s} {'what':8s} " + " ".join(f"{c:>14s}" for c in cols))
    for r in rows:
        for tag in ("prior", "refined"):
            vals = [r.get(f"{tag}_{c}", float("nan")) for c in cols]
            print(f"{r['case']:10s} {tag:8s} " + " ".join(f"{v:14.4f}" for v in vals))
        cost = (f"{r['s_per_frame']:.2f} s/frame end to end, training {r['train_s_per_frame']:.2f} s/frame" if pipeline
                else f"{r['s_per_frame']:.2f} s/frame, {r['s_per_step']:.3f} s/step")
        heap = "" if pipeline else f", py heap {r['py_heap_peak_mb']:.0f} MB"
        print(f"{'':10s} cost     {cost} ({r['frames']} frames {r['size']}, {r['device']}), "
              f"peak RSS {r['peak_rss_mb']:.0f} MB{heap}")
    print("CONSISTENCY_JSON " + json.dumps({"inputs": args.inputs, "preset": args.preset, "flow": args.flow,
                                            "rows": rows}, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
