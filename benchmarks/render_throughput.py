"""Render throughput: points/s and frames/s of vid3d's splatting renderer, plain and with effects,
beside baselines, in one run.

Cases (each at 1280x720 and 1920x1080, for 0.5M / 2M / 8M points):
  splat        vid3d splat(): projection + deterministic int64 z-buffer (scatter_reduce amin), radius 0
  bokeh        splat + layered occlusion-aware depth of field (BokehSettings "standard": 9 layers)
  dolly        dolly-zoom camera + splat with a 3x3 footprint + pull-push hole fill
  numpy-sort   naive numpy z-buffer: project, np.lexsort by (pixel, depth), first per pixel
  numpy-min.at numpy with vid3d's packed key trick: np.minimum.at on bits(z) << 32 | index
  open3d       open3d OffscreenRenderer (Filament), points uploaded once, render_to_image() timed;
               "n/a: <reason>" where it does not import or start
Every number is printed beside its device. Inputs are built once; each case is a closure timed
after a warm-up, with torch.cuda.synchronize() on CUDA; the median of the repeats is reported.
Compare ratios within one run (the machine may be shared). Ends with one JSON line.

  python benchmarks/render_throughput.py --quick         # CPU: about two minutes
  python benchmarks/render_throughput.py                  # everything, CPU and CUDA when present
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import time
from typing import Callable

import numpy as np

import vid3d  # noqa: F401  (zlib first)
import torch

from vid3d.formats.conventions import make_K, make_T, quat_wxyz_to_R
from vid3d.viewer.render import BokehSettings, Camera, dolly_zoom_camera, render_view, splat
from vid3d.viewer.render.perf import tune_cpu_allocator

RESOLUTIONS = {"720p": (1280, 720), "1080p": (1920, 1080)}


def make_inputs(n: int, W: int, H: int, seed: int = 0):
    """``n`` world points that fill the view of a posed camera (uniform in pixels and inverse depth 0.1..1)."""
    rng = np.random.default_rng(seed)
    f = 0.8 * W
    K = make_K(f, f, W / 2, H / 2)
    T_world_camera = make_T(quat_wxyz_to_R(np.array([0.95, 0.1, -0.2, 0.05])), np.array([0.3, -0.1, 0.5]))
    u = rng.uniform(0, W, n).astype(np.float32)
    v = rng.uniform(0, H, n).astype(np.float32)
    z = (1.0 / rng.uniform(0.1, 1.0, n)).astype(np.float32)
    p_cam = np.stack([(u - W / 2) / f * z, (v - H / 2) / f * z, z], -1)
    p_world = (p_cam @ T_world_camera[:3, :3].T + T_world_camera[:3, 3]).astype(np.float32)
    colors = rng.integers(0, 256, (n, 3), dtype=np.uint8)
    cam = Camera(K=K, T_world_camera=T_world_camera, height=H, width=W)
    return p_world, colors, cam


def time_closure(fn: Callable[[], object], *, device: str, repeats: int, warmup: int = 1) -> float:
    """Median seconds of ``fn`` over ``repeats`` runs after ``warmup`` runs (CUDA synchronised)."""
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    for _ in range(warmup):
        fn()
    sync()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


# -- baselines --------------------------------------------------------------------------------------


def _project_numpy(p_world, cam):
    T_cw = np.linalg.inv(cam.T_world_camera.numpy())
    P = (cam.K.numpy() @ T_cw[:3]).astype(np.float32)
    uvw = p_world @ np.ascontiguousarray(P[:, :3].T)  # (a transposed view would take numpy's slow non-BLAS loop)
    uvw += P[:, 3]
    z = uvw[:, 2]
    u, v = uvw[:, 0] / z, uvw[:, 1] / z
    ok = (z > 1e-6) & (u >= 0) & (u < cam.width) & (v >= 0) & (v < cam.height)
    idx = np.nonzero(ok)[0]
    pix = np.floor(v[idx]).astype(np.int64) * cam.width + np.floor(u[idx]).astype(np.int64)
    return idx, pix, z[idx]


def numpy_sort_zbuffer(p_world, colors, cam):
    """Naive numpy z-buffer: sort by (pixel, depth), keep the first point of each pixel."""
    idx, pix, z = _project_numpy(p_world, cam)
    order = np.lexsort((idx, z, pix))
    pix_s = pix[order]
    first = np.ones(len(order), dtype=bool)
    first[1:] = pix_s[1:] != pix_s[:-1]
    win = order[first]
    rgb = np.zeros((cam.height * cam.width, 3), np.uint8)
    depth = np.zeros(cam.height * cam.width, np.float32)
    rgb[pix[win]] = colors[idx[win]]
    depth[pix[win]] = z[win]
    return rgb, depth


def numpy_minimum_at_zbuffer(p_world, colors, cam):
    """numpy with the packed-key trick: np.minimum.at on bits(z) << 32 | index."""
    idx, pix, z = _project_numpy(p_world, cam)
    key = (z.view(np.int32).astype(np.int64) << 32) | idx
    buf = np.full(cam.height * cam.width, np.iinfo(np.int64).max)
    np.minimum.at(buf, pix, key)
    hit = buf != np.iinfo(np.int64).max
    rgb = np.zeros((cam.height * cam.width, 3), np.uint8)
    rgb[hit] = colors[buf[hit] & 0xFFFFFFFF]
    depth = np.where(hit, (buf >> 32).astype(np.int32).view(np.float32), 0)
    return rgb, depth


_O3D_RENDERERS: dict = {}


def open3d_renderer(p_world, colors, cam):
    """A closure rendering the points with open3d's OffscreenRenderer, or a string saying why not."""
    try:
        import open3d as o3d  # optional extra vid3d[o3d]
        from open3d.visualization import rendering
    except Exception as exc:  # noqa: BLE001  (any import failure is a reason to report)
        return f"n/a: open3d does not import ({type(exc).__name__}: {str(exc).splitlines()[0][:80]})"
    try:
        # One renderer per resolution for the whole run: Filament aborts the process when a second
        # OffscreenRenderer is made after the first was dropped with geometry still in its scene.
        r = _O3D_RENDERERS.get((cam.width, cam.height))
        if r is None:
            r = _O3D_RENDERERS[(cam.width, cam.height)] = rendering.OffscreenRenderer(cam.width, cam.height)
        r.scene.clear_geometry()
        pcd = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(p_world.astype(np.float64)))
        pcd.colors = o3d.utility.Vector3dVector(colors.astype(np.float64) / 255.0)
        mat = rendering.MaterialRecord()
        mat.shader = "defaultUnlit"
        mat.point_size = 1.0
        r.scene.add_geometry("pcd", pcd, mat)
        K = cam.K.numpy()
        intr = o3d.camera.PinholeCameraIntrinsic(cam.width, cam.height, K[0, 0], K[1, 1], K[0, 2], K[1, 2])
        r.setup_camera(intr, np.linalg.inv(cam.T_world_camera.numpy()))
        np.asarray(r.render_to_image())
    except Exception as exc:  # noqa: BLE001
        return f"n/a: OffscreenRenderer failed ({type(exc).__name__}: {str(exc).splitlines()[0][:80]})"
    return lambda: np.asarray(r.render_to_image())


# -- run --------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="0.5M and 2M points, effects at 2M, 2 repeats (CPU: ~2 min)")
    ap.add_argument("--devices", default="auto", help="auto (cpu + cuda when present), cpu, cuda, or cpu,cuda")
    ap.add_argument("--points", default=None, help="comma-separated millions of points (default 0.5,2,8)")
    ap.add_argument("--resolutions", default="720p,1080p", help="comma-separated: 720p,1080p")
    ap.add_argument("--repeats", type=int, default=None, help="timed runs per case (default 5; quick 2)")
    ap.add_argument("--no-open3d", action="store_true", help="skip the open3d baseline")
    ap.add_argument("--no-tune", action="store_true", help="leave glibc's allocator thresholds alone")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    tuned = False if args.no_tune else tune_cpu_allocator()
    if args.devices == "auto":
        devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    else:
        devices = [d.strip() for d in args.devices.split(",")]
        if "cuda" in devices and not torch.cuda.is_available():
            print("cuda: not available here, skipped", file=sys.stderr)
            devices.remove("cuda")
    millions = [float(x) for x in (args.points or ("0.5,2" if args.quick else "0.5,2,8")).split(",")]
    effects_at = {2.0} if args.quick else set(millions)
    repeats = args.repeats or (2 if args.quick else 5)
    resolutions = [r.strip() for r in args.resolutions.split(",")]
    cpu_name = platform.processor() or platform.machine()
    gpu_name = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None

    rows: list[dict] = []

    def record(case, device, res, n, seconds, note=""):
        row = dict(case=case, device=device, resolution=res, points=n,
                   ms=None if seconds is None else round(seconds * 1e3, 2),
                   points_per_s=None if seconds is None else n / seconds,
                   fps=None if seconds is None else 1.0 / seconds, note=note)
        rows.append(row)
        shown = "n/a" if seconds is None else f"{seconds * 1e3:9.1f} ms {n / seconds / 1e6:9.1f} Mpts/s {1 / seconds:7.2f} fps"
        print(f"  {case:<13s} {device:<5s} {res:<6s} {n / 1e6:4.1f}M  {shown}  {note}", flush=True)

    print(f"# render throughput  torch {torch.__version__}, {torch.get_num_threads()} CPU threads, cpu={cpu_name}, "
          f"gpu={gpu_name or 'none'}, allocator tuned={tuned}")
    for res in resolutions:
        W, H = RESOLUTIONS[res]
        for m in millions:
            n = int(m * 1e6)
            p_np, c_np, cam = make_inputs(n, W, H)
            print(f"{res} {W}x{H}, {n / 1e6:g}M points")
            for device in devices:
                p = torch.from_numpy(p_np).to(device)
                c = torch.from_numpy(c_np).to(device)
                t = time_closure(lambda: splat(p, c, cam), device=device, repeats=repeats)
                record("splat", device, res, n, t)
                if m in effects_at:
                    settings = BokehSettings.preset("standard", focus_distance=2.0, aperture=16.0 * W / 1280)
                    t = time_closure(lambda: render_view(p, c, cam, bokeh=settings, point_radius_px=0, fill_holes=False),
                                     device=device, repeats=repeats)
                    record("bokeh", device, res, n, t, "splat + 9-layer bokeh")
                    dcam = dolly_zoom_camera(cam, subject_distance=2.0, strength=0.5)
                    t = time_closure(lambda: render_view(p, c, dcam, point_radius_px=1, fill_holes=True),
                                     device=device, repeats=repeats)
                    record("dolly", device, res, n, t, "3x3 splat + pull-push fill")
                del p, c
            if not (args.quick and m > 2):
                t = time_closure(lambda: numpy_sort_zbuffer(p_np, c_np, cam), device="cpu", repeats=max(1, repeats // 2))
                record("numpy-sort", "cpu", res, n, t, "naive baseline")
            t = time_closure(lambda: numpy_minimum_at_zbuffer(p_np, c_np, cam), device="cpu", repeats=repeats)
            record("numpy-min.at", "cpu", res, n, t, "packed-key baseline")
            if not args.no_open3d:
                o3d_fn = open3d_renderer(p_np, c_np, cam)
                if isinstance(o3d_fn, str):
                    record("open3d", "cpu", res, n, None, o3d_fn)
                else:
                    record("open3d", "cpu", res, n, time_closure(o3d_fn, device="cpu", repeats=repeats), "Filament offscreen")

    # Speed-ups of plain splatting over the numpy baselines, same resolution and point count.
    def find(case, device, res, n):
        return next((r for r in rows if (r["case"], r["device"], r["resolution"], r["points"]) == (case, device, res, n)), None)

    print("\n# splat speed-up over numpy (same run, same inputs)")
    speedups = []
    for r in [r for r in rows if r["case"] == "splat"]:
        entry = dict(device=r["device"], resolution=r["resolution"], points=r["points"])
        for base in ("numpy-sort", "numpy-min.at"):
            b = find(base, "cpu", r["resolution"], r["points"])
            entry[f"vs_{base}"] = None if (b is None or b["ms"] is None) else round(b["ms"] / r["ms"], 2)
        speedups.append(entry)
        print(f"  {entry['device']:<5s} {entry['resolution']:<6s} {entry['points'] / 1e6:4.1f}M  "
              f"x{entry['vs_numpy-sort']} vs numpy-sort, x{entry['vs_numpy-min.at']} vs numpy-min.at")
    summary = dict(benchmark="render_throughput", torch=torch.__version__, threads=torch.get_num_threads(),
                   cpu=cpu_name, gpu=gpu_name, allocator_tuned=tuned, quick=args.quick, repeats=repeats,
                   results=rows, splat_speedups=speedups,
                   targets=dict(cpu_vs_naive_numpy=5.0, h100_splat_points_per_s=2e9, h100_bokeh_fps_1080p_2M=30.0))
    print(json.dumps(summary, default=lambda x: None if isinstance(x, float) and math.isnan(x) else str(x)))
    return summary


if __name__ == "__main__":
    main()
    if _O3D_RENDERERS:
        # open3d 0.20's Filament aborts in its own teardown at interpreter exit ("destroying
        # MaterialInstance ... still in use"), after every result is printed: leave without it.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
