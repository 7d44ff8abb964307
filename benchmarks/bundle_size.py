"""Bundle size, read speed and precision per storage: format 1.0 (float16), 1.1 ``default``, 1.1 ``compact``.

Contents (each written three times, once per storage, from the same decoded arrays):

- every bundle named on the command line: a real optimizer output, e.g. the demo
  (``vid3d optimize --demo --quality draft -o demo.vid3d.h5``) or HoloLens frames through the optimizer;
- ``hololens_gt``: the real hololens_dvmvs frames (../shared/data) with their sensor depth, as a
  ground-truth bundle holds them (RGB + depth only);
- ``synthetic``: the synthetic dynamic scene with every dataset (always; small and reproducible).

Per content and storage: bytes on disk and the ratio to raw float32/uint8 (counted as ``vid3d info``
does), write seconds, milliseconds to read one random frame (``Bundle.frame(t)``, every dataset) and
the viewer's per-frame work (read rgb, depth, confidence and mask, unproject and filter the points, as
a slider change does), at the stored resolution and with every image resized to 512 px on the long
side (``--no-512`` skips it). Then the largest error of every dataset against the bound its storage
states, and how far the viewer's points move from those of the float16 file.

    python benchmarks/bundle_size.py [BUNDLE ...] [--repeats 30] [--no-512]

Timings are noisy on a shared machine: each is a median over 3 x --repeats frames. Prints tables and a final JSON line.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import vid3d  # noqa: F401  (zlib first)
from vid3d.formats.bundle import IMAGE_FIELDS, open_bundle, write_bundle
from vid3d.formats.info import summarize

REPO = Path(__file__).resolve().parents[1]
STORAGES = ("float16", "default", "compact")
VIEWER_SIDE = 512


# -- contents ---------------------------------------------------------------------------------------


def bundle_content(path: Path) -> dict:
    """Every dataset of a bundle, decoded (what a re-pack writes)."""
    with open_bundle(path) as b:
        content = {name: b.read(name) for name in b.fields}
        content.update(T_world_camera=b.T_world_camera, K=b.K, fps=b.fps, timestamps_s=b.timestamps_s,
                       source_frames=b.source_frames, units=b.attrs["units"], metric_scale=b.attrs["metric_scale"])
    return content


def hololens_content() -> dict | None:
    root = REPO.parent / "shared" / "data" / "hololens_dvmvs"
    if not root.is_dir():
        return None
    from vid3d.eval.groundtruth import read_hololens_dvmvs

    seq = read_hololens_dvmvs(root)
    return dict(rgb=seq.rgb, T_world_camera=seq.T_world_camera, K=seq.K, fps=10.0, depth=seq.depth, units="m",
                metric_scale=True)


def synthetic_content(num_frames: int = 24) -> dict:
    """Arrays like an optimizer's output, from the synthetic dynamic scene (a noisy prior, a confidence)."""
    from vid3d.synthetic import SceneConfig, make_clip

    clip = make_clip(dataclasses.replace(SceneConfig.preset("dynamic"), num_frames=num_frames))
    rng = np.random.default_rng(0)
    prior = clip.depth * (1 + 0.03 * rng.standard_normal(clip.depth.shape)).astype(np.float32)
    conf = np.clip(1 - np.abs(prior - clip.depth) / clip.depth * 10, 0, 1).astype(np.float32)
    return dict(rgb=clip.rgb, T_world_camera=clip.T_world_camera, K=clip.K, fps=clip.fps, depth=clip.depth,
                prior=prior, confidence=conf, dynamic_mask=clip.dynamic_mask, scene_flow=clip.scene_flow)


def resized(content: dict, long_side: int) -> dict:
    """The content with every image resized to ``long_side`` px (nearest for data, area/linear for colour)."""
    import cv2

    H, W = content["rgb"].shape[1:3]
    s = long_side / max(H, W)
    h, w = round(H * s), round(W * s)
    out = dict(content)
    for name in IMAGE_FIELDS:
        if name in content:
            interp = cv2.INTER_LINEAR if name == "rgb" else cv2.INTER_NEAREST
            frames = [cv2.resize(np.ascontiguousarray(a).astype(np.uint8) if a.dtype == bool else a, (w, h),
                                 interpolation=interp) for a in content[name]]
            out[name] = np.stack(frames).astype(content[name].dtype)
    K = np.array(content["K"], np.float64)
    K[..., 0, :] *= w / W
    K[..., 1, :] *= h / H
    out["K"] = K
    return out


# -- measurements -------------------------------------------------------------------------------------


def write(content: dict, path: Path, storage: str) -> float:
    t0 = time.perf_counter()
    write_bundle(path, source="benchmark", storage=storage, **content)
    return time.perf_counter() - t0


def read_ms(path: Path, repeats: int) -> dict[str, float]:
    """Milliseconds per ``Bundle.frame(t)`` of every dataset (``frame``) and per viewer frame (``viewer``:
    read + points), wall clock and CPU time of this process (``*_cpu``: what a shared machine's other
    load does not inflate), each the median over ``3 x repeats`` frames, a different one each time."""
    from vid3d.viewer.app.source import CaptureSource
    from vid3d.viewer.points import PointFilter, points_of_frame

    src = CaptureSource(path, cache_frames=1)
    flt = PointFilter()
    times: dict[str, list[float]] = {"frame": [], "frame_cpu": [], "viewer": [], "viewer_cpu": []}

    def timed(key: str, fn) -> None:
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        times[key].append(time.perf_counter() - t0)
        times[key + "_cpu"].append(time.process_time() - c0)

    try:
        b = src.bundle
        T = b.num_frames
        b.frame(0)
        for k in range(3 * repeats):
            t = (7 * k + 1) % T  # consecutive reads never hit HDF5's chunk cache or the source's
            timed("frame", lambda: b.frame(t))
            u = (7 * k + 4) % T
            timed("viewer", lambda: points_of_frame(src.frame(u), src.depth_field, flt=flt,
                                                    rays=src.rays(u, flt.stride)))
    finally:
        src.bundle.close()
    return {k: float(np.median(v)) * 1e3 for k, v in times.items()}


def errors(path: Path, content: dict) -> dict:
    """Per image dataset: the largest error against ``content`` and the bound the storage states."""
    out = {}
    with open_bundle(path) as b:
        for name in b.fields:
            enc = b.encoding(name)
            bound = enc.bound
            got = b.read(name)
            ref = np.asarray(content[name])
            if name == "scene_flow" and "dynamic_mask" in content:  # defined on moving pixels only
                ref = np.where(content["dynamic_mask"][..., None], ref, 0)
            if name == "rgb":
                err = np.abs(got.astype(np.int16) - ref)
                mse = float(np.mean(err.astype(np.float64) ** 2))
                out[name] = {"kind": bound["kind"], "max_error": float(err.max()), "bound": bound["max_error"],
                             "psnr_db": 10 * np.log10(255**2 / mse) if mse > 0 else float("inf")}
                continue
            if name == "dynamic_mask":
                out[name] = {"kind": "exact", "max_error": float((got != (ref > 0)).sum()), "bound": 0.0}
                continue
            ref = ref.astype(np.float64)
            diff = np.abs(got - ref)
            if bound["kind"] == "relative":
                floor = bound.get("abs_floor", 0.0)
                nz = np.abs(ref) > 0
                worst = float(np.max((diff[nz] - floor) / np.abs(ref[nz]), initial=0.0))
                if ((got == 0) != (ref == 0)).any() and name != "scene_flow":
                    worst = float("inf")  # an invalid pixel became valid or the other way
            else:
                worst = float(diff.max(initial=0.0))
            out[name] = {"kind": bound["kind"], "max_error": worst, "bound": float(bound["max_error"])}
    return out


def points_shift(path: Path, reference: Path) -> float:
    """Largest |p - p_ref| / |p_ref| of the viewer's points (every frame, stride 1) against ``reference``'s."""
    from vid3d.viewer.points import PointFilter, points_of_frame

    flt = PointFilter(stride=1, max_points=10**9)
    worst = 0.0
    with open_bundle(path) as b, open_bundle(reference) as r:
        field = b.depth_field()
        for t in range(b.num_frames):
            p = points_of_frame(b.frame(t), field, flt=flt).points
            q = points_of_frame(r.frame(t), field, flt=flt).points
            if p.shape != q.shape:
                return float("inf")
            norm = np.linalg.norm(q, axis=-1)
            ok = norm > 0
            worst = max(worst, float(np.max(np.linalg.norm(p - q, axis=-1)[ok] / norm[ok], initial=0.0)))
    return worst


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("bundles", nargs="*", type=Path, help="real optimizer outputs to measure")
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--no-512", dest="at_512", action="store_false", help="skip the 512 px rows")
    args = ap.parse_args()

    contents = {p.name.removesuffix(".h5").removesuffix(".vid3d"): (lambda p=p: bundle_content(p))
                for p in args.bundles}
    contents["hololens_gt"] = hololens_content
    contents["synthetic"] = synthetic_content
    results, precision = [], []
    print(f"machine: {platform.processor() or platform.machine()}, python {sys.version.split()[0]}, numpy "
          f"{np.__version__}")
    head = (f"{'content':<20}{'storage':<9}{'size':>10}{'T x W x H':>16}{'raw MiB':>9}{'stored MiB':>11}{'ratio':>7}"
            f"{'write s':>8}{'frame ms':>9}{'(cpu)':>7}{'viewer ms':>10}{'(cpu)':>7}")
    print(head)
    with tempfile.TemporaryDirectory() as tmp:
        for name, make in contents.items():
            content = make()
            if content is None:
                print(f"{name:<20}(not available)")
                continue
            sizes = [("stored", content)]
            if args.at_512 and max(content["rgb"].shape[1:3]) != VIEWER_SIDE:
                sizes.append((f"{VIEWER_SIDE}px", resized(content, VIEWER_SIDE)))
            for size, c in sizes:
                T, H, W = c["rgb"].shape[:3]
                paths = {}
                for storage in STORAGES:
                    path = paths[storage] = Path(tmp) / f"{name}_{size}_{storage}.vid3d.h5"
                    write_s = write(c, path, storage)
                    with open_bundle(path) as b:
                        s = summarize(b)
                    ms = read_ms(path, args.repeats)
                    r = {"content": name, "size": size, "storage": storage, "frames": T, "height": H, "width": W,
                         "raw_bytes": s.raw_bytes, "bytes": s.file_bytes, "ratio": s.compression_ratio,
                         "write_s": write_s, **{f"{k}_ms": v for k, v in ms.items()}}
                    results.append(r)
                    print(f"{name:<20}{storage:<9}{size:>10}{f'{T} x {W} x {H}':>16}{s.raw_bytes / 2**20:>9.1f}"
                          f"{s.file_bytes / 2**20:>11.2f}{s.compression_ratio:>7.2f}{write_s:>8.2f}{ms['frame']:>9.2f}"
                          f"{ms['frame_cpu']:>7.2f}{ms['viewer']:>10.2f}{ms['viewer_cpu']:>7.2f}")
                    if size == "stored":
                        shift = points_shift(path, paths["float16"]) if storage != "float16" else 0.0
                        precision.append({"content": name, "storage": storage, "points_shift": shift,
                                          "fields": errors(path, c)})
    print("\nlargest error / stated bound per dataset, against the arrays written (relative for depth and prior, "
          "absolute otherwise; rgb: max |error| of 255 and PSNR);\npoints: max |p - p_float16| / |p| of the "
          "viewer's points against the float16 file's (at most the two depth bounds added)")
    print(f"{'content':<20}{'storage':<9}" + "".join(f"{n:>26}" for n in IMAGE_FIELDS) + f"{'points':>10}")
    for p in precision:
        cells = []
        for n in IMAGE_FIELDS:
            e = p["fields"].get(n)
            if e is None:
                text = "-"
            elif n == "rgb":
                psnr = f"{e['psnr_db']:.1f} dB" if np.isfinite(e["psnr_db"]) else "exact"
                text = f"{e['max_error']:.0f} / {e['bound']:.0f} {psnr}"
            else:
                ok = "ok" if e["max_error"] <= e["bound"] * (1 + 1e-9) + 1e-12 else "OVER"
                text = f"{e['max_error']:.2e} / {e['bound']:.2e} {ok}"
            cells.append(f"{text:>26}")
        print(f"{p['content']:<20}{p['storage']:<9}" + "".join(cells) + f"{p['points_shift']:>10.2e}")
    print(json.dumps({"benchmark": "bundle_size", "results": results, "precision": precision}, default=float))


if __name__ == "__main__":
    main()
