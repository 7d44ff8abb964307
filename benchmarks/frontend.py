"""Frontend benchmark: seconds per frame of each stage on this CPU, flow EPE and motion-mask IoU.

Run: ``.venv/bin/python benchmarks/frontend.py [--preset dynamic] [--quality standard]``

The synthetic clip is rendered once, written as an H.264 mp4 and then treated as a user video (the
stages never see ground truth); ground truth is used only to score the outputs:
- flow: median end-point error on GT-visible pixels, per gap, and validity agreement with GT occlusion;
- masks: IoU vs the GT dynamic mask before poses (epipolar; dilated, recall-oriented) and after
  poses (reprojection, with the estimated poses; with GT poses as a reference line);
- poses: frames registered by SfM, focal error (details in benchmarks/poses_prior.py).
Prints a table and one JSON line. Timings are wall-clock on whatever else runs on the machine:
compare ratios within one run.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

import vid3d  # noqa: F401  (zlib before pycolmap)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="dynamic", help="vid3d.synthetic preset (default: dynamic)")
    ap.add_argument("--quality", default="standard", choices=("draft", "standard", "best"))
    ap.add_argument("--skip-prior", action="store_true", help="stop after the masks")
    args = ap.parse_args(argv)

    from vid3d.optimizer.config import OptimizeConfig
    from vid3d.eval.metrics import mask_iou
    from vid3d.optimizer import flow, prior, sfm
    from vid3d.optimizer import frames as frames_stage
    from vid3d.optimizer.masks import motion_masks_epipolar, motion_masks_reprojection
    from vid3d.synthetic import make_clip

    cfg = OptimizeConfig.preset(args.quality, stages="frontend")
    t0 = time.perf_counter()
    clip = make_clip(args.preset)
    render_s = time.perf_counter() - t0
    T = clip.num_frames
    timings: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="vid3d_bench_") as tmp:
        tmp = Path(tmp)
        video = clip.write_video(tmp / "clip.mp4")

        def timed(name, fn):
            t = time.perf_counter()
            out = fn()
            timings[name] = time.perf_counter() - t
            return out

        frames = timed("frames", lambda: frames_stage.run(video, cfg.frames))
        flows = timed("flow", lambda: flow.run(frames.rgb, cfg.flow))
        masks0, _ = timed("masks_before_poses", lambda: motion_masks_epipolar(flows, cfg.masks))
        poses = timed("poses", lambda: sfm.run(frames.rgb, masks0, cfg.sfm, tmp / "sfm"))
        masks, _ = timed("masks_after_poses", lambda: motion_masks_reprojection(
            flows, poses.K, poses.T_world_camera, cfg.masks))
        poses = timed("poses_remasked", lambda: sfm.run_remasked(poses, frames.rgb, masks0, masks, cfg.sfm,
                                                                 tmp / "sfm_remasked"))
        depth0 = None
        if not args.skip_prior:
            depth0 = timed("prior", lambda: prior.run(frames.rgb, poses, cfg.prior, masks=masks, workdir=tmp / "prior"))
        masks_gt_poses, _ = motion_masks_reprojection(flows, clip.K, clip.T_world_camera, cfg.masks)

    # --- scores against ground truth (same resolution: the synthetic clip is below max_side) ---
    assert frames.size == (clip.height, clip.width)
    epe, agree = {}, {}
    for g in cfg.flow.gaps:
        e, a = [], []
        for k, (i, j) in enumerate(flows.pairs):
            if abs(int(j) - int(i)) != g:
                continue
            gt, gt_valid = clip.optical_flow(int(i), int(j))
            err = np.linalg.norm(flows.flow[k] - gt, axis=-1)
            e.append(np.median(err[gt_valid]))
            a.append(np.mean(flows.valid[k] == gt_valid))
        epe[g], agree[g] = float(np.mean(e)), float(np.mean(a))
    gt_mask = clip.dynamic_mask
    result = {
        "benchmark": "frontend",
        "preset": args.preset,
        "quality": args.quality,
        "frames": T,
        "resolution": [clip.width, clip.height],
        "device": f"cpu ({platform.processor() or platform.machine()})",
        "render_s": round(render_s, 2),
        "seconds_per_frame": {k: round(v / T, 4) for k, v in timings.items()},
        "flow_backend": flows.backend,
        "flow_pairs": int(len(flows.pairs)),
        "flow_median_epe_px": {str(g): round(v, 3) for g, v in epe.items()},
        "flow_validity_agreement": {str(g): round(v, 3) for g, v in agree.items()},
        "mask_iou_before_poses": round(mask_iou(masks0, gt_mask), 3),
        "mask_recall_before_poses": round(float(masks0[gt_mask].mean()), 3),
        "mask_iou_after_poses": round(mask_iou(masks, gt_mask), 3),
        "mask_iou_after_gt_poses": round(mask_iou(masks_gt_poses, gt_mask), 3),
        "registered": f"{int(poses.registered.sum())}/{T}",
        "focal_error_pct": round(100 * abs(poses.K[0, 0] / clip.K[0, 0] - 1), 2),
        "prior_backend": None if depth0 is None else depth0.backend,
    }
    _print_table(result)
    print(json.dumps(result, sort_keys=True))
    return result


def _print_table(r: dict) -> None:
    print(f"frontend benchmark: synthetic '{r['preset']}' {r['resolution'][0]}x{r['resolution'][1]}, "
          f"{r['frames']} frames, quality {r['quality']}, {r['device']}")
    print(f"{'stage':<22}{'s/frame':>10}")
    for k, v in r["seconds_per_frame"].items():
        print(f"{k:<22}{v:>10.3f}")
    print(f"{'total':<22}{sum(r['seconds_per_frame'].values()):>10.3f}")
    print(f"flow ({r['flow_backend']}, {r['flow_pairs']} pairs) median EPE px per gap: {r['flow_median_epe_px']}")
    print(f"flow validity agreement with GT occlusion per gap: {r['flow_validity_agreement']}")
    print(f"mask IoU: before poses {r['mask_iou_before_poses']} (recall {r['mask_recall_before_poses']}), "
          f"after poses {r['mask_iou_after_poses']} (with GT poses {r['mask_iou_after_gt_poses']}; target > 0.7)")
    print(f"poses: {r['registered']} registered by SfM, focal error {r['focal_error_pct']}%; "
          f"prior backend {r['prior_backend']}")


if __name__ == "__main__":
    main()
