"""The learned prior through the whole pipeline: PyDNet v2 (``--prior pydnet``) against the plane sweep.

Per clip, all runs share one work folder, so frames, flow, masks and poses are computed once:

1. ``--stages frontend --prior geometric``: the plane-sweep prior alone;
2. ``--stages frontend --prior pydnet`` with ``hybrid=False``: the aligned PyDNet prior alone;
3. ``--prior pydnet`` (hybrid prior, then consistency training): the hybrid prior and the refined depth.

Also the *per-frame* PyDNet prior: the network's disparity of each frame on its own, aligned by its
own scale and shift to the SfM points (or to median depth 1 without them): what a frame-by-frame use
of the network gives, the flicker that training exists to remove.

Scores:
- where ground truth exists (HoloLens): AbsRel and delta1 of static pixels and of all, one median
  scale per sequence;
- everywhere: frames of constant depth; temporal consistency (mean relative reprojection disagreement
  of static depth between neighbouring frames, with the clip's own poses); for moving regions, the
  fraction of mask-boundary pixel pairs where the mover is nearer than the background beside it;
- a picture per clip: RGB | prior | refined for three frames (``<workdir>/<clip>_rgb_prior_refined.png``).

    .venv/bin/python benchmarks/learned_prior.py [--clips hololens,bear] [--quality standard]
        [--weights ../shared/models/pydnet_v2/pydnet_v2_half_float16.tflite]

Prints a table and one JSON line. Needs the PyDNet file (research-use weights: never in the repo).
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
SHARED = REPO.parent / "shared"
CLIPS = {
    "hololens": SHARED / "data" / "hololens_dvmvs" / "images",
    "apple": SHARED / "data" / "video_cotracker_apple" / "apple.mp4",
    "bear": SHARED / "data" / "video_cotracker_bear" / "bear.mp4",
    "rollercoaster": SHARED / "data" / "video_davis_rollercoaster" / "davis_rollercoaster.mp4",
}


def boundary_order(depth: np.ndarray, moving: np.ndarray) -> float:
    """Fraction of 4-neighbour pixel pairs across the moving-mask boundary (mover, static) where the
    mover is nearer; depth (T, H, W), moving (T, H, W) bool. nan without moving pixels."""
    near, total = 0, 0
    for axis in (1, 2):
        a = np.moveaxis(depth, axis, -1)
        m = np.moveaxis(moving, axis, -1)
        for s_in, s_out in ((np.s_[..., :-1], np.s_[..., 1:]), (np.s_[..., 1:], np.s_[..., :-1])):
            edge = m[s_in] & ~m[s_out]
            near += int((a[s_in][edge] < a[s_out][edge]).sum())
            total += int(edge.sum())
    return near / total if total else float("nan")


def per_frame_pydnet(rgb: np.ndarray, poses_npz: dict, weights: str) -> np.ndarray:
    """(T, H, W) depth: each frame's PyDNet disparity aligned on its own (SfM points, else median 1)."""
    from vid3d.optimizer.prior.align import fit_scale_shift_disparity, sample_at
    from vid3d.optimizer.prior.learned import pydnet_disparity

    disp = pydnet_disparity(rgb, device="cpu", weights=weights)
    out = np.empty(disp.shape, np.float32)
    f, uv, z = poses_npz["f"], poses_npz["uv"], poses_npz["z"]
    for t in range(len(disp)):
        sel = f == t
        if sel.sum() >= 20:
            a = fit_scale_shift_disparity(sample_at(disp, f[sel], uv[sel]), z[sel])
            inv = np.maximum(a.scale * disp[t] + a.shift, 1e-3 * max(a.scale, 1e-9))
        else:
            inv = disp[t] / max(float(np.median(disp[t])), 1e-9)
        out[t] = 1.0 / np.maximum(inv, 1e-6)
    return out


def picture(path: Path, rgb: np.ndarray, prior: np.ndarray, refined: np.ndarray | None) -> None:
    import cv2

    T = len(rgb)
    rows = []
    for t in (0, T // 2, T - 1):
        cols = [rgb[t][..., ::-1]]
        for d in (prior[t], None if refined is None else refined[t]):
            if d is None:
                continue
            inv = 1.0 / np.maximum(d, 1e-6)
            lo, hi = np.percentile(inv, [2, 98])
            v = np.clip((inv - lo) / max(hi - lo, 1e-9), 0, 1)
            cols.append(cv2.applyColorMap((255 * v).astype(np.uint8), cv2.COLORMAP_TURBO))
        rows.append(np.concatenate(cols, 1))
    cv2.imwrite(str(path), np.concatenate(rows, 0))


def run_clip(name: str, source: Path, weights: str, quality: str, workdir: Path, max_frames: int | None) -> dict:
    import h5py

    from vid3d.eval.metrics import temporal_consistency
    from vid3d.formats.bundle import open_bundle
    from vid3d.optimizer.config import OptimizeConfig
    from vid3d.optimizer.pipeline import run_optimize

    work = workdir / f"{name}.work"
    base = OptimizeConfig.preset(quality)
    if max_frames:
        base = base.replace(frames=base.frames.replace(max_frames=max_frames))
    runs = {
        "geometric": base.replace(stages="frontend", prior=base.prior.replace(backend="geometric")),
        "pydnet": base.replace(stages="frontend", prior=base.prior.replace(backend="pydnet", weights=weights,
                                                                           hybrid=False)),
        "hybrid": base.replace(prior=base.prior.replace(backend="pydnet", weights=weights)),
    }
    row: dict = {"clip": name}
    depths, seconds = {}, {}
    for key, cfg in runs.items():
        out = workdir / f"{name}_{key}.vid3d.h5"
        t0 = time.perf_counter()
        run_optimize(source, out, cfg, work_dir=work, progress=False)
        seconds[key] = time.perf_counter() - t0
        with open_bundle(out) as b:
            depths[key] = b.read("prior")
            if key == "hybrid":
                depths["refined"] = b.read("depth")
                rgb, K, T_wc = b.read("rgb"), np.asarray(b.K), np.asarray(b.T_world_camera)
                moving = b.read("dynamic_mask").astype(bool)
                src = np.asarray(b.source_frames)
        with h5py.File(out) as f:
            dec = json.loads(f["/meta/decisions"][()])
        row[f"{key}_constant_frames"] = len(dec["prior"].get("constant_frames", []))
        if key == "hybrid":
            row["motion_model"] = dec["poses"].get("motion_model")
            row["train_s"] = dec.get("train", {}).get("timings", {}).get("total_s")
    row["seconds_full_pipeline"] = seconds["hybrid"] + seconds["geometric"]  # the shared stages ran in the first
    # per-frame PyDNet from the same frames and poses (SfM points from the cached poses)
    poses = _cached_poses(work)
    depths["per_frame"] = per_frame_pydnet(rgb, poses, weights)
    static = ~moving
    for key in ("per_frame", "geometric", "pydnet", "hybrid", "refined"):
        tc = temporal_consistency(depths[key], K, T_wc, static_mask=static)
        row[f"{key}_temporal"] = tc.mean_rel
        if moving.any():
            row[f"{key}_mover_nearer"] = boundary_order(depths[key], moving)
    if name == "hololens":
        from vid3d.eval.groundtruth import read_hololens_dvmvs
        from vid3d.eval.metrics import evaluate_depth

        gt = read_hololens_dvmvs(SHARED / "data" / "hololens_dvmvs")
        import cv2

        h, w = rgb.shape[1:3]  # ground truth brought to the working resolution (nearest: no mixed depths)
        gt_depth = np.stack([cv2.resize(d, (w, h), interpolation=cv2.INTER_NEAREST) for d in gt.depth[src]])
        for key in ("per_frame", "geometric", "pydnet", "hybrid", "refined"):
            rep = evaluate_depth(depths[key], gt_depth, dynamic_mask=moving)
            st = rep.static or rep.overall
            row[f"{key}_absrel_static"], row[f"{key}_delta1_static"] = st.abs_rel, st.delta1
            row[f"{key}_absrel"], row[f"{key}_delta1"] = rep.overall.abs_rel, rep.overall.delta1
    picture(workdir / f"{name}_rgb_prior_refined.png", rgb, depths["hybrid"], depths["refined"])
    row["frames"] = int(len(rgb))
    return row


def _cached_poses(work: Path) -> dict:
    """SfM depth samples (frame, uv, z) of the run's poses, read from the stage cache."""
    from vid3d.optimizer.prior.align import sparse_samples
    from vid3d.optimizer.sfm.config import PoseResult
    from vid3d.optimizer.workdir import load_dataclass

    files = sorted(work.glob("poses-*.npz"), key=lambda p: p.stat().st_mtime)
    poses = load_dataclass(PoseResult, files[-1])
    f, uv, z = sparse_samples(poses)
    return {"f": f, "uv": uv, "z": z}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", default=",".join(CLIPS))
    ap.add_argument("--quality", default="standard", choices=("draft", "standard", "best"))
    ap.add_argument("--max-frames", type=int, default=None)
    ap.add_argument("--weights", default=str(SHARED / "models" / "pydnet_v2" / "pydnet_v2_half_float16.tflite"))
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/vid3d_bench_learned"))
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    if not Path(args.weights).exists():
        print(f"error: PyDNet weights {args.weights} not found", file=sys.stderr)
        return 2
    args.workdir.mkdir(parents=True, exist_ok=True)
    rows = []
    for name in args.clips.split(","):
        if not CLIPS[name].exists():
            print(f"({name}: {CLIPS[name]} absent, skipped)", file=sys.stderr)
            continue
        rows.append(run_clip(name, CLIPS[name], args.weights, args.quality, args.workdir, args.max_frames))
        print(f"{name}: done", file=sys.stderr, flush=True)
    keys = ("per_frame", "geometric", "pydnet", "hybrid", "refined")
    print(f"quality {args.quality}; depth | AbsRel static | delta1 static | AbsRel all | temporal | mover nearer")
    for r in rows:
        print(f"{r['clip']} ({r['frames']} f, {r.get('motion_model')}, {r['seconds_full_pipeline']:.0f} s):")
        for k in keys:
            vals = [r.get(f"{k}_absrel_static"), r.get(f"{k}_delta1_static"), r.get(f"{k}_absrel"),
                    r.get(f"{k}_temporal"), r.get(f"{k}_mover_nearer")]
            print(f"  {k:10s} | " + " | ".join("-" if v is None else f"{v:.4g}" for v in vals))
    print(json.dumps({"benchmark": "learned_prior", "quality": args.quality, "rows": rows}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
