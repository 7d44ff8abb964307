"""Bundle size and read speed per codec: compression ratio vs raw float32 + uint8 arrays.

Content: the synthetic dynamic scene (RGB, depth, a noisy "prior", confidence, dynamic mask and scene
flow, as the optimizer writes them) and, when ../shared/data is present, the real hololens_dvmvs
frames with their sensor depth. For each codec: file size, ratio vs raw, write time and the time to
read one random frame (all image datasets of that frame), as the viewer does when scrubbing.

    python benchmarks/bundle_size.py [--frames 24] [--repeats 30]

Prints a table and a final JSON line.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import vid3d  # noqa: F401  (zlib first)
from vid3d.formats.bundle import CODECS, open_bundle, write_bundle
from vid3d.formats.bundle.codecs import load_hdf5plugin

REPO = Path(__file__).resolve().parents[1]


def synthetic_content(num_frames: int) -> dict:
    """Arrays like an optimizer's output, from the synthetic dynamic scene."""
    import dataclasses

    from vid3d.synthetic import SceneConfig, make_clip

    clip = make_clip(dataclasses.replace(SceneConfig.preset("dynamic"), num_frames=num_frames))
    rng = np.random.default_rng(0)
    prior = clip.depth * (1 + 0.03 * rng.standard_normal(clip.depth.shape)).astype(np.float32)
    conf = np.clip(1 - np.abs(prior - clip.depth) / clip.depth * 10, 0, 1).astype(np.float32)
    return dict(rgb=clip.rgb, T_world_camera=clip.T_world_camera, K=clip.K, fps=clip.fps, depth=clip.depth,
                prior=prior, confidence=conf, dynamic_mask=clip.dynamic_mask, scene_flow=clip.scene_flow)


def hololens_content() -> dict | None:
    root = REPO.parent / "shared" / "data" / "hololens_dvmvs"
    if not root.is_dir():
        return None
    try:
        from vid3d.eval.groundtruth import read_hololens_dvmvs
    except ImportError:
        return None

    seq = read_hololens_dvmvs(root)
    return dict(rgb=seq.rgb, T_world_camera=seq.T_world_camera, K=seq.K, fps=10.0, depth=seq.depth)


def raw_bytes(content: dict) -> int:
    """Size of the same content as raw float32 (floats) and uint8 (images, masks) arrays."""
    total = 0
    for key, value in content.items():
        if isinstance(value, np.ndarray):
            total += value.size * (1 if value.dtype in (np.uint8, bool) else 4)
    return total


def measure(content: dict, codec: str, folder: Path, repeats: int) -> dict:
    path = folder / f"{codec}.vid3d.h5"
    t0 = time.perf_counter()
    write_bundle(path, source="benchmark", codec=codec, **content)
    write_s = time.perf_counter() - t0
    rng = np.random.default_rng(1)
    with open_bundle(path) as b:
        b.frame(0)
        t0 = time.perf_counter()
        for t in rng.integers(0, b.num_frames, repeats):
            b.frame(int(t))
        read_ms = (time.perf_counter() - t0) / repeats * 1e3
    size = path.stat().st_size
    return {"codec": codec, "bytes": size, "ratio": raw_bytes(content) / size, "write_s": write_s,
            "read_frame_ms": read_ms}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=24)
    ap.add_argument("--repeats", type=int, default=30)
    args = ap.parse_args()
    codecs = [c for c in CODECS if not c.startswith("blosc") or load_hdf5plugin() is not None]
    contents = {"synthetic_dynamic": synthetic_content(args.frames)}
    holo = hololens_content()
    if holo is not None:
        contents["hololens_rgb_depth"] = holo
    results = []
    print(f"machine: {platform.processor() or platform.machine()}, python {sys.version.split()[0]}")
    print(f"{'content':<20}{'codec':<12}{'frames':>7}{'size MiB':>10}{'ratio':>8}{'write s':>9}{'read ms/frame':>15}")
    with tempfile.TemporaryDirectory() as tmp:
        for name, content in contents.items():
            n = len(content["rgb"])
            for codec in codecs:
                r = {"content": name, "frames": n, "raw_bytes": raw_bytes(content),
                     **measure(content, codec, Path(tmp), args.repeats)}
                results.append(r)
                print(f"{name:<20}{codec:<12}{n:>7}{r['bytes'] / 2**20:>10.2f}{r['ratio']:>8.2f}"
                      f"{r['write_s']:>9.2f}{r['read_frame_ms']:>15.2f}")
    if len(codecs) < len(CODECS):
        print("(blosc codecs skipped: hdf5plugin not installed; pip install 'vid3d[blosc]')")
    print(json.dumps({"benchmark": "bundle_size", "results": results}))


if __name__ == "__main__":
    main()
