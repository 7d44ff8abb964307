"""The whole frontend on every synthetic scene family, as a user runs it, beside plain pycolmap.

Each family of ``vid3d.synthetic.FAMILIES`` (orbit, walk, pan, tripod, sideways, planar rooms,
walkers; plus today's ``static`` and ``dynamic``) is rendered, written as an H.264 mp4 and run through
``vid3d optimize --stages frontend`` (frames, flow, motion masks, poses, prior; the stages never see
ground truth). The bundle is then scored against the ground truth:

- poses: frames registered by SfM, the motion model the report concludes and the test that decided
  it, ATE in % of the camera path (Sim(3)-aligned; a pan or a tripod has no path), RPE rotation,
  focal error and where the focal came from;
- masks: fraction of pixels flagged moving on static families (target < 2 %), IoU on dynamic ones;
- prior: frames of constant depth, AbsRel of static and of moving pixels (one median scale);
- cost: seconds per frame of the frontend.

Beside each family, the peer: plain pycolmap with its defaults on the same frames
(``peer_pycolmap.py``), given the frames vid3d decoded from the same H.264 file: frames registered,
ATE over those, focal error.

    .venv/bin/python benchmarks/frontend_families.py [--families orbit,pan] [--seeds 0,1,2] [--no-peer] [--tiny]

Both SfMs vary from run to run (multi-threaded mapping) and from scene to scene by about as much as
they differ, so ``--seeds`` renders each family with several scene seeds (layout, textures, path
phase) and the summary gives, per family, the median of each figure over the seeds and in how many
seeds vid3d's is the better one. Prints a table, the summary and one JSON line.
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

DEFAULT_FAMILIES = ("static", "dynamic", "orbit", "walk", "pan", "tripod", "sideways", "planar",
                    "planar_sideways", "walkers")


def score(name: str, clip, bundle: Path, seconds: float) -> dict:
    """One row of the table from the bundle and the clip's ground truth."""
    import h5py

    from vid3d.eval.groundtruth import from_synthetic
    from vid3d.eval.metrics import mask_iou
    from vid3d.eval.report import evaluate_bundle

    rep = evaluate_bundle(bundle, from_synthetic(clip), depth="prior")
    with h5py.File(bundle) as f:
        decisions = json.loads(f["/meta/decisions"][()])
    poses = decisions["poses"]
    gt_path = rep.trajectory.gt_path_length
    row = {
        "family": name, "frames": clip.num_frames, "size": [clip.height, clip.width],
        "registered": poses["registered"], "motion_model": poses.get("motion_model"),
        "decided_by": poses.get("motion_model_decided_by"), "travel_over_depth": poses.get("translation_over_depth"),
        "ate_pct": rep.trajectory.ate_percent_of_path if gt_path > 1e-9 else None,
        "rpe_r_deg": rep.trajectory.rpe_rotation_deg,
        "focal_err_pct": 100 * rep.intrinsics.focal_rel_error, "focal_source": poses.get("focal_source"),
        "focal_observable": poses.get("focal_observable"),
        "prior_constant_frames": len(decisions["prior"].get("constant_frames", [])),
        "prior_absrel_static": rep.depth.static.abs_rel if rep.depth.static else rep.depth.overall.abs_rel,
        "prior_absrel_moving": rep.depth.dynamic.abs_rel if rep.depth.dynamic else None,
        "s_per_frame": seconds / clip.num_frames,
    }
    from vid3d.formats.bundle import open_bundle

    with open_bundle(bundle) as b:
        moving = b.read("dynamic_mask").astype(bool)
    if clip.dynamic_mask.any():
        row["mask_iou"] = mask_iou(moving, clip.dynamic_mask)
    else:
        row["flagged_moving_pct"] = 100 * float(moving.mean())
    return row


def peer(clip, video: Path, frames_config, workdir: Path) -> dict:
    """The peer on the frames vid3d decoded from the same H.264 file (not the lossless renders)."""
    from peer_pycolmap import plain_pycolmap

    from vid3d.eval.metrics import intrinsics_metrics, trajectory_metrics
    from vid3d.optimizer import frames

    rgb = frames.run(video, frames_config).rgb
    if rgb.shape != clip.rgb.shape:
        raise SystemExit(f"decoded frames {rgb.shape} differ from the clip's {clip.rgb.shape}: scores would not align")
    pc = plain_pycolmap(rgb, workdir)
    out = {"peer_registered": pc["registered"], "peer_s_per_frame": pc["seconds"] / clip.num_frames}
    frames = sorted(pc["poses"])
    gt = clip.T_world_camera
    path = float(np.linalg.norm(np.diff(gt[:, :3, 3], axis=0), axis=1).sum())
    if len(frames) >= 3 and path > 1e-9:
        out["peer_ate_pct"] = trajectory_metrics(np.stack([pc["poses"][f] for f in frames]), gt[frames]).ate_percent_of_path
    if pc["K"] is not None:
        out["peer_focal_err_pct"] = 100 * intrinsics_metrics(pc["K"], clip.K).focal_rel_error
    return out


def summarize(rows: list[dict], families: list[str]) -> list[dict]:
    """Per family over its seeds: the median of ATE and focal error for vid3d and the peer, and
    ``"k/n"``: in k of the n seeds where both have the figure, vid3d's is lower."""
    out = []
    for fam in families:
        rs = [r for r in rows if r.get("family", "").split("_seed")[0] in (fam, f"tiny_{fam}") and "error" not in r]
        if not rs:
            continue
        item = {"family": fam, "seeds": len(rs)}
        for ours, theirs, wins in (("ate_pct", "peer_ate_pct", "ate_wins"),
                                   ("focal_err_pct", "peer_focal_err_pct", "focal_wins")):
            for k in (ours, theirs):
                v = [r[k] for r in rs if isinstance(r.get(k), float) and np.isfinite(r[k])]
                item[k] = round(float(np.median(v)), 3) if v else None
            both = [r for r in rs if all(isinstance(r.get(k), float) for k in (ours, theirs))]
            item[wins] = f"{sum(r[ours] < r[theirs] for r in both)}/{len(both)}"
        out.append(item)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--families", default=",".join(DEFAULT_FAMILIES), help="comma-separated presets")
    ap.add_argument("--tiny", action="store_true", help="the tiny_ presets (seconds each; what the tests run)")
    ap.add_argument("--size", default=None, help="HxW override of the presets' image size, e.g. 96x128")
    ap.add_argument("--frames", type=int, default=None, help="override of the presets' frame count")
    ap.add_argument("--quality", default="standard", choices=("draft", "standard", "best"))
    ap.add_argument("--seeds", default="0", help="comma-separated scene seeds (each family rendered once per seed)")
    ap.add_argument("--sfm", action="append", default=[], metavar="FIELD=VALUE",
                    help="override one SfmConfig field, e.g. --sfm matcher=sequential (repeatable)")
    ap.add_argument("--no-peer", action="store_true")
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/vid3d_bench_families"))
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    from vid3d.optimizer.config import OptimizeConfig
    from vid3d.optimizer.pipeline import run_optimize
    from vid3d.synthetic import SceneConfig, make_clip

    args.workdir.mkdir(parents=True, exist_ok=True)
    config = OptimizeConfig.preset(args.quality).replace(stages="frontend")
    config = config.replace(prior=config.prior.replace(backend="geometric"))
    if args.sfm:
        from config_overrides import sfm_overrides

        config = config.replace(sfm=config.sfm.replace(**sfm_overrides(config.sfm, args.sfm)))
    rows = []
    seeds = [int(v) for v in args.seeds.split(",")]
    for fam, seed in [(f, s) for f in args.families.split(",") for s in seeds]:
        preset = f"tiny_{fam}" if args.tiny else fam
        scene = SceneConfig.preset(preset)
        if seed != scene.seed:
            scene = scene.replace(seed=seed)
            preset = f"{preset}_seed{seed}"
        if args.size:
            h, w = (int(v) for v in args.size.lower().split("x"))
            scene = scene.replace(height=h, width=w)
        if args.frames:
            scene = scene.replace(num_frames=args.frames)
        clip = make_clip(scene)
        video = clip.write_video(args.workdir / f"{preset}.mp4")
        out = args.workdir / f"{preset}.vid3d.h5"
        t0 = time.perf_counter()
        try:
            run_optimize(video, out, config, force=True, progress=False)
        except Exception as e:  # a crash is a result here: report it and go on
            rows.append({"family": preset, "error": f"{type(e).__name__}: {e}"})
            continue
        row = score(preset, clip, out, time.perf_counter() - t0)
        row["seed"] = scene.seed
        if not args.no_peer:
            row.update(peer(clip, video, config.frames, args.workdir / f"{preset}_peer"))
        rows.append(row)
        print(f"{preset}: done", file=sys.stderr, flush=True)

    cols = ["family", "registered", "motion_model", "travel_over_depth", "ate_pct", "rpe_r_deg", "focal_err_pct",
            "focal_observable", "flagged_moving_pct", "mask_iou", "prior_constant_frames", "prior_absrel_static",
            "prior_absrel_moving", "s_per_frame", "peer_registered", "peer_ate_pct", "peer_focal_err_pct"]
    print(f"machine: {platform.machine()}, {platform.python_version()}, quality {args.quality}")
    from tables import print_table

    print_table(rows, cols)
    for r in rows:
        if "decided_by" in r:
            print(f"  {r['family']}: {r['motion_model']} ({r['decided_by']}); focal: {r['focal_source']}")
    summary = summarize(rows, args.families.split(",")) if len(seeds) > 1 and not args.no_peer else []
    if summary:
        print(f"over seeds {args.seeds}: median vid3d / peer, and seeds where vid3d is better")
        for r in summary:
            print(f"  {r['family']}: ATE % {r['ate_pct']} / {r['peer_ate_pct']} (better in {r['ate_wins']}), "
                  f"focal % {r['focal_err_pct']} / {r['peer_focal_err_pct']} (better in {r['focal_wins']})")
    print(json.dumps({"benchmark": "frontend_families", "quality": args.quality, "tiny": args.tiny, "seeds": seeds,
                      "sfm_overrides": args.sfm,
                      "rows": rows, "summary": summary}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
