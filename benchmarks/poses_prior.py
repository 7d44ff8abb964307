"""Benchmark of stage 3 (camera poses, pycolmap) and stage 5 (geometric depth prior).

Measures, per clip: frames registered by SfM (mapper + PnP) and posed (incl. filled), ATE (and % of
path) and RPE after Sim(3), focal error, prior AbsRel / delta1 (one median scale per sequence), and
seconds per frame of each stage. Clips: synthetic ``static`` and ``dynamic`` (GT motion masks given to
SfM and the prior), ../shared/data/hololens_dvmvs (36 real frames with GT poses and depth),
../shared/data/open3d_testdata_rgbd (5 frames, 640x480, GT poses, K and depth; 10 cm of travel), and the
registration fraction and camera travel over scene depth on the apple, bear and rollercoaster videos
(long side resized to 480). Beside each clip, the peer baseline: plain pycolmap with its defaults
(``peer_pycolmap.py``: SIMPLE_RADIAL, sequential matching, incremental mapping; ``--no-peer`` skips it).

    .venv/bin/python benchmarks/poses_prior.py [--quick] [--workdir /tmp/vid3d_bench_poses]

Prints a table and one JSON line. Timings on a shared machine are noisy: compare within one run.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np

import vid3d  # noqa: F401  (zlib before pycolmap)

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"


def _device() -> str:
    import torch

    from vid3d.runtime import resolve_device

    dev = resolve_device("auto")
    name = f"cuda {torch.cuda.get_device_name(dev)}" if dev.type == "cuda" else "cpu"
    return f"torch {torch.__version__}, {name}, {torch.get_num_threads()} threads"


def load_hololens():
    """``(rgb (T, H, W, 3) u8, depth (T, H, W) m, T_world_camera (T, 4, 4), K (3, 3))`` of the HoloLens frames."""
    from vid3d.eval.groundtruth import read_hololens_dvmvs

    seq = read_hololens_dvmvs(DATA / "hololens_dvmvs")
    return seq.rgb, seq.depth, seq.T_world_camera, seq.K_at(0)


def load_video(path: Path, long_side: int = 480) -> np.ndarray:
    import cv2

    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, f = cap.read()
        if not ok:
            break
        h, w = f.shape[:2]
        s = long_side / max(h, w)
        frames.append(cv2.resize(f, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA)[..., ::-1])
    return np.ascontiguousarray(np.stack(frames))


def run_clip(name, rgb, masks, workdir, sfm_cfg, prior_cfg, gt_T=None, gt_K=None, gt_depth=None, do_prior=True,
             peer=True):
    from vid3d.eval.metrics import evaluate_depth, intrinsics_metrics, trajectory_metrics
    from vid3d.optimizer import prior as prior_stage
    from vid3d.optimizer import sfm

    T = rgb.shape[0]
    row = {"clip": name, "frames": T, "size": list(rgb.shape[1:3])}
    t0, c0 = time.perf_counter(), time.process_time()
    poses = sfm.run(rgb, masks, sfm_cfg, workdir / name)
    row["sfm_s_per_frame"] = (time.perf_counter() - t0) / T
    row["sfm_cpu_s_per_frame"] = (time.process_time() - c0) / T  # this process's CPU time (all threads)
    row["registered"] = int(poses.registered.sum())
    row["posed"] = T
    row["filled"] = poses.report["filled"]
    row["rotation_only"] = poses.report["rotation_only"]
    row["focal"] = float(poses.K[0, 0])
    row["motion_model"] = poses.report.get("motion_model")
    row["travel_over_depth"] = poses.report.get("translation_over_depth")
    if peer:  # plain pycolmap with its defaults, on the same frames
        from peer_pycolmap import plain_pycolmap

        pc = plain_pycolmap(rgb, workdir / f"{name}_peer")
        row.update(peer_registered=pc["registered"], peer_models=pc["model_sizes"],
                   peer_travel_over_depth=pc["path_over_depth"], peer_s_per_frame=pc["seconds"] / T)
        frames = sorted(pc["poses"])
        if gt_T is not None and len(frames) >= 3:
            tr = trajectory_metrics(np.stack([pc["poses"][f] for f in frames]), gt_T[frames])
            row["peer_ate_pct"] = tr.ate_percent_of_path  # over its registered frames only
        if gt_K is not None and pc["K"] is not None:
            row["peer_focal_err_pct"] = 100 * intrinsics_metrics(pc["K"], gt_K).focal_rel_error
    if gt_T is not None:
        tr = trajectory_metrics(poses.T_world_camera, gt_T)
        row.update(ate=tr.ate_rmse, ate_pct=tr.ate_percent_of_path, rpe_t=tr.rpe_translation, rpe_r_deg=tr.rpe_rotation_deg)
    if gt_K is not None:
        row["focal_err_pct"] = 100 * intrinsics_metrics(poses.K, gt_K).focal_rel_error
        row["focal_gt"] = float(gt_K[0, 0])
    if do_prior:
        t0, c0 = time.perf_counter(), time.process_time()
        prior = prior_stage.run(rgb, poses, prior_cfg, masks=masks)
        row["prior_s_per_frame"] = (time.perf_counter() - t0) / T
        row["prior_cpu_s_per_frame"] = (time.process_time() - c0) / T
        row["prior_filled_pct"] = 100 * prior.report.get("fraction_filled", float("nan"))
        if gt_depth is not None:
            rep = evaluate_depth(prior.depth, gt_depth, dynamic_mask=masks)
            row.update(prior_absrel=rep.overall.abs_rel, prior_delta1=rep.overall.delta1)
            conf = (prior.confidence >= prior_cfg.min_confidence) & (gt_depth > 0)
            s = rep.scale
            row["prior_absrel_confident"] = float(np.mean(np.abs(s * prior.depth[conf] - gt_depth[conf]) / gt_depth[conf]))
    return row


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="synthetic static clip and hololens only")
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/vid3d_bench_poses"))
    ap.add_argument("--sfm", default="standard", help="preset whose SfmConfig is used")
    ap.add_argument("--prior", default="standard", help="preset whose PriorConfig is used")
    ap.add_argument("--no-peer", action="store_true", help="skip the plain-pycolmap baseline")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    from vid3d.optimizer.config import OptimizeConfig
    from vid3d.synthetic import SceneConfig, make_clip

    sfm_cfg = OptimizeConfig.preset(args.sfm).sfm
    prior_cfg = OptimizeConfig.preset(args.prior).prior.replace(backend="geometric")
    args.workdir.mkdir(parents=True, exist_ok=True)
    rows = []
    for preset in ("static",) if args.quick else ("static", "dynamic"):
        clip = make_clip(SceneConfig.preset(preset))
        masks = clip.dynamic_mask if clip.dynamic_mask.any() else None
        rows.append(run_clip(f"synthetic_{preset}", clip.rgb, masks, args.workdir, sfm_cfg, prior_cfg,
                             clip.T_world_camera, clip.K, clip.depth, peer=not args.no_peer))
    if (DATA / "hololens_dvmvs").is_dir():
        rgb, depth, T, K = load_hololens()
        rows.append(run_clip("hololens_dvmvs", rgb, None, args.workdir, sfm_cfg, prior_cfg, T, K, depth,
                             peer=not args.no_peer))
    else:
        print("(../shared/data absent: real clips skipped)", file=sys.stderr)
    if (DATA / "open3d_testdata_rgbd").is_dir() and not args.quick:
        from vid3d.eval.groundtruth import read_open3d_rgbd

        seq = read_open3d_rgbd(DATA / "open3d_testdata_rgbd")
        rows.append(run_clip("open3d_rgbd", seq.rgb, None, args.workdir, sfm_cfg, prior_cfg, seq.T_world_camera,
                             seq.K_at(0), seq.depth, peer=not args.no_peer))
    if not args.quick:
        for name, path in (("apple", DATA / "video_cotracker_apple" / "apple.mp4"),
                           ("bear", DATA / "video_cotracker_bear" / "bear.mp4"),
                           ("rollercoaster", DATA / "video_davis_rollercoaster" / "davis_rollercoaster.mp4")):
            if path.exists():
                rows.append(run_clip(name, load_video(path), None, args.workdir, sfm_cfg, prior_cfg, do_prior=False,
                                     peer=not args.no_peer))

    cols = ["clip", "frames", "registered", "posed", "motion_model", "travel_over_depth", "ate_pct", "rpe_r_deg",
            "focal", "focal_gt", "focal_err_pct", "peer_registered", "peer_travel_over_depth", "peer_ate_pct",
            "peer_focal_err_pct", "peer_s_per_frame", "prior_absrel", "prior_delta1", "prior_absrel_confident", "prior_filled_pct",
            "sfm_s_per_frame", "sfm_cpu_s_per_frame", "prior_s_per_frame", "prior_cpu_s_per_frame"]
    print(f"device: {_device()}")
    from tables import print_table

    print_table(rows, cols)
    for r in rows:
        n = len(r["filled"])
        r["filled"] = {m: sum(1 for v in r["filled"].values() if v == m) for m in set(r["filled"].values())} if n else {}
    print(json.dumps({"benchmark": "poses_prior", "device": _device(), "rows": rows}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
