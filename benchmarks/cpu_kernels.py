"""The frontend's compiled CPU passes against their torch / numpy twins, in one run, at 512 px.

- plane sweep of one frame (4 sources, 64 planes, approximate ZNCC, top-2): the compiled pass
  (``sweep_frame``) against torch's (``sweep_frame(..., compiled=False)``, the CUDA path) and the
  stacked reference (``sweep_frame_reference``);
- reprojection residuals of one frame against its flows at gaps +-1, 2, 4, 6, 8 (the masks after
  poses): compiled against numpy (``reprojection_residuals_numpy``);
- Sampson distance of one flow field to a fundamental matrix (the masks before poses): compiled
  against numpy (``sampson_distance``).

Inputs are a synthetic static room rendered at 512x288 with its ground-truth poses and flow (the
timings do not depend on the content). Each figure is the median of ``--repeats`` runs after one
warm-up (which compiles, or loads the compiled kernels from numba's cache). Prints a table and one
JSON line; compare the ratios, not the absolute times, across machines.

    .venv/bin/python benchmarks/cpu_kernels.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

import vid3d  # noqa: F401  (zlib before pycolmap)

sys.path.insert(0, str(Path(__file__).resolve().parent))


def _median_seconds(fn, repeats: int) -> float:
    fn()  # warm-up: compile or load the kernel
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args(argv)
    if args.repeats < 1:
        ap.error(f"--repeats must be >= 1, got {args.repeats}")
    import torch

    from vid3d.formats.conventions import invert_T
    from vid3d.optimizer.masks import reprojection_residuals, sampson_distance
    from vid3d.optimizer.masks.reprojection import reprojection_residuals_numpy
    from vid3d.optimizer.masks.residuals_cpu import model_residuals_cpu
    from vid3d.optimizer.prior.config import PriorConfig
    from vid3d.optimizer.prior.geometric import sweep_frame, sweep_frame_reference
    from vid3d.synthetic import SceneConfig, make_clip

    clip = make_clip(SceneConfig.preset("static").replace(height=288, width=512, num_frames=17, supersample=1))
    T, H, W = clip.rgb.shape[:3]
    rows = []

    gray = torch.from_numpy(clip.rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32) / 255 - 0.5)
    Tw = torch.from_numpy(clip.T_world_camera.astype(np.float32))
    K = torch.from_numpy(clip.K.astype(np.float32))
    inv = torch.linspace(1 / (clip.depth.max() * 1.3), 1 / (clip.depth.min() / 1.3), 64)
    cfg = PriorConfig()
    t, sources = 8, [4, 6, 10, 12]
    sweep = {name: _median_seconds(lambda f=f: f(gray, t, sources, Tw, K, inv, cfg), args.repeats)
             for name, f in (("compiled", sweep_frame),
                             ("torch", lambda *a: sweep_frame(*a, compiled=False)),
                             ("reference", sweep_frame_reference))}
    rows.append({"pass": f"plane sweep, 1 frame {W}x{H}, 4 sources x 64 planes", "compiled_ms": 1e3 * sweep["compiled"],
                 "twin": "torch (CUDA path)", "twin_ms": 1e3 * sweep["torch"], "speedup": sweep["torch"] / sweep["compiled"],
                 "reference_ms": 1e3 * sweep["reference"]})

    js = [j for j in (t - 8, t - 6, t - 4, t - 2, t - 1, t + 1, t + 2, t + 4, t + 6, t + 8) if 0 <= j < T]
    pairs = [clip.optical_flow(t, j) for j in js]
    flows = [f.astype(np.float32) for f, _ in pairs]
    valids = [v for _, v in pairs]
    rel = [invert_T(clip.T_world_camera[j]) @ clip.T_world_camera[t] for j in js]
    a = _median_seconds(lambda: reprojection_residuals(flows, valids, clip.K, rel), args.repeats)
    b = _median_seconds(lambda: reprojection_residuals_numpy(flows, valids, clip.K, rel), args.repeats)
    rows.append({"pass": f"reprojection residuals, 1 frame, {len(js)} pairs", "compiled_ms": 1e3 * a,
                 "twin": "numpy", "twin_ms": 1e3 * b, "speedup": b / a})

    R = np.array([[0.999, -0.02, 0.03], [0.021, 0.999, -0.01], [-0.03, 0.011, 0.999]])
    tx = np.array([[0, -0.01, 0.2], [0.01, 0, -1.0], [-0.2, 1.0, 0]])
    Kinv = np.linalg.inv(clip.K)
    F = Kinv.T @ tx @ R @ Kinv
    flow, valid = flows[5], valids[5]
    v, u = np.mgrid[0:H, 0:W] + 0.5
    x_i = np.stack([u, v], -1)

    def numpy_sampson():
        out = np.full((H, W), np.nan)
        out[valid] = sampson_distance(F, x_i[valid], x_i[valid] + flow[valid])
        return out

    a = _median_seconds(lambda: model_residuals_cpu(flow, valid, F, homography=False), args.repeats)
    b = _median_seconds(numpy_sampson, args.repeats)
    rows.append({"pass": "Sampson distance, 1 flow field", "compiled_ms": 1e3 * a, "twin": "numpy", "twin_ms": 1e3 * b,
                 "speedup": b / a})

    import numba

    machine = (f"{platform.machine()}, {torch.get_num_threads()} torch threads, {numba.get_num_threads()} numba "
               f"threads, Python {platform.python_version()}, torch {torch.__version__}, numba {numba.__version__}")
    print(f"machine: {machine}")
    from tables import print_table

    print_table(rows, ["pass", "compiled_ms", "twin", "twin_ms", "speedup", "reference_ms"])
    print(json.dumps({"benchmark": "cpu_kernels", "machine": machine, "repeats": args.repeats, "rows": rows}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
