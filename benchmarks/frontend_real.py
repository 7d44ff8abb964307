"""The whole frontend on every real clip in ../shared/data, as a user runs it, beside plain pycolmap.

Each clip goes through ``vid3d optimize --stages frontend`` (frames, flow, masks before poses, poses,
masks after poses, poses remasked, plane-sweep prior), at the default working resolution (long side
512). The bundle's decisions give: frames registered by SfM, the motion model and the test that
decided it, whether the clip was mapped again with the masks after poses (and why or why not), the
focal, the fraction of pixels flagged moving, frames of constant prior depth, seconds per frame. Where
ground truth exists (HoloLens: poses, K, depth; the 5-frame Open3D RGB-D fixture: poses, K), ATE in %
of the path and the focal error too. Beside
each clip, the peer: plain pycolmap with its defaults (``peer_pycolmap.py``) on the frames vid3d
decoded, so both see the same pixels.

    .venv/bin/python benchmarks/frontend_real.py [--clips hololens,apple,rollercoaster,bear,open3d] [--no-peer]

Prints a table and one JSON line. Skips clips whose files are absent.
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import sys
import time
from pathlib import Path

import numpy as np

import vid3d  # noqa: F401  (zlib before pycolmap)

sys.path.insert(0, str(Path(__file__).resolve().parent))
DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
CLIPS = {
    "hololens": DATA / "hololens_dvmvs" / "images",
    "apple": DATA / "video_cotracker_apple" / "apple.mp4",
    "rollercoaster": DATA / "video_davis_rollercoaster" / "davis_rollercoaster.mp4",
    "bear": DATA / "video_cotracker_bear" / "bear.mp4",
    "open3d": DATA / "open3d_testdata_rgbd" / "color",
}


def _gt(name: str):
    """The clip's ground-truth sequence, or None."""
    from vid3d.eval.groundtruth import read_hololens_dvmvs, read_open3d_rgbd

    if name == "hololens":
        return read_hololens_dvmvs(DATA / "hololens_dvmvs")
    if name == "open3d":
        return read_open3d_rgbd(DATA / "open3d_testdata_rgbd")
    return None


def run_clip(name: str, source: Path, workdir: Path, with_peer: bool, sfm_changes: list[str] = ()) -> dict:
    import h5py

    from vid3d.eval.metrics import intrinsics_metrics, trajectory_metrics
    from vid3d.formats.bundle import open_bundle
    from vid3d.optimizer import frames
    from vid3d.optimizer.config import OptimizeConfig
    from vid3d.optimizer.pipeline import run_optimize

    config = OptimizeConfig.preset("standard").replace(stages="frontend")
    config = config.replace(prior=config.prior.replace(backend="geometric"))
    if sfm_changes:
        from config_overrides import sfm_overrides

        config = config.replace(sfm=config.sfm.replace(**sfm_overrides(config.sfm, list(sfm_changes))))
    out = workdir / f"{name}.vid3d.h5"
    t0 = time.perf_counter()
    run_optimize(source, out, config, force=True, progress=False)
    seconds = time.perf_counter() - t0
    with h5py.File(out) as f:
        decisions = json.loads(f["/meta/decisions"][()])
    with open_bundle(out) as b:
        moving = b.read("dynamic_mask").astype(bool)
    poses = decisions["poses"]
    remask = poses.get("remask", {})
    T, H, W = moving.shape
    row = {"clip": name, "frames": T, "size": [H, W], "registered": poses["registered"],
           "motion_model": poses.get("motion_model"), "decided_by": poses.get("motion_model_decided_by"),
           "travel_over_depth": poses.get("translation_over_depth"), "focal_px": poses["focal_px"][0],
           "remask_ran": remask.get("ran"), "remask_kept": remask.get("kept"), "remask_why": remask.get("why"),
           "newly_masked_pct": 100 * remask.get("newly_masked_fraction", float("nan")),
           "obs_newly_masked_pct": 100 * remask.get("observations_newly_masked", float("nan")),
           "flagged_moving_pct": 100 * float(moving.mean()),
           "prior_constant_frames": len(decisions["prior"].get("constant_frames", [])),
           "s_per_frame": seconds / T}
    gt = _gt(name)
    K_gt = None
    if gt is not None:
        from vid3d.eval.report import evaluate_bundle

        rep = evaluate_bundle(out, gt, depth="prior")
        row["ate_pct"] = rep.trajectory.ate_percent_of_path
        row["focal_err_pct"] = 100 * rep.intrinsics.focal_rel_error
        K_gt = np.diag([W / gt.width, H / gt.height, 1.0]) @ gt.K_at(0)
    if with_peer:
        from peer_pycolmap import plain_pycolmap

        rgb = frames.run(source, config.frames).rgb
        pc = plain_pycolmap(rgb, workdir / f"{name}_peer")
        row.update(peer_registered=pc["registered"], peer_models=pc["model_sizes"],
                   peer_travel_over_depth=pc["path_over_depth"], peer_s_per_frame=pc["seconds"] / T)
        ids = sorted(pc["poses"])
        if gt is not None and len(ids) >= 3:
            row["peer_ate_pct"] = trajectory_metrics(np.stack([pc["poses"][i] for i in ids]),
                                                     gt.T_world_camera[ids]).ate_percent_of_path
        if K_gt is not None and pc["K"] is not None:
            row["peer_focal_err_pct"] = 100 * intrinsics_metrics(pc["K"], K_gt).focal_rel_error
    return row


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", default=",".join(CLIPS), help="comma-separated: " + ", ".join(CLIPS))
    ap.add_argument("--no-peer", action="store_true")
    ap.add_argument("--sfm", action="append", default=[], metavar="FIELD=VALUE",
                    help="override one SfmConfig field, e.g. --sfm matcher=sequential (repeatable)")
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/vid3d_bench_real"))
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    args.workdir.mkdir(parents=True, exist_ok=True)
    rows = []
    for name in args.clips.split(","):
        if name not in CLIPS:
            raise SystemExit(f"error: unknown clip {name!r}; expected one of {', '.join(CLIPS)}")
        if not CLIPS[name].exists():
            print(f"{name}: skipped ({CLIPS[name]} absent)", file=sys.stderr)
            continue
        try:
            rows.append(run_clip(name, CLIPS[name], args.workdir, not args.no_peer, args.sfm))
        except Exception as e:  # a crash is a result here: report it and go on
            rows.append({"clip": name, "error": f"{type(e).__name__}: {e}"})
        print(f"{name}: done", file=sys.stderr, flush=True)
    cols = ["clip", "frames", "registered", "motion_model", "travel_over_depth", "remask_kept", "newly_masked_pct", "obs_newly_masked_pct",
            "focal_px", "ate_pct", "focal_err_pct", "flagged_moving_pct", "prior_constant_frames", "s_per_frame",
            "peer_registered", "peer_models", "peer_travel_over_depth", "peer_ate_pct", "peer_focal_err_pct"]
    print(f"machine: {platform.machine()}, {platform.python_version()}")
    from tables import print_table

    print_table(rows, cols)
    for r in rows:
        if "decided_by" in r:
            print(f"  {r['clip']}: {r['motion_model']} ({r['decided_by']}); remask: {r['remask_kept']} "
                  f"({r['remask_why']})")
    print(json.dumps({"benchmark": "frontend_real", "sfm_overrides": args.sfm, "rows": rows}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
