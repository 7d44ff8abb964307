"""Viewer streaming: bytes and milliseconds per frame change, start-up time, memory while playing.

A raw websocket client (no browser) connects to the viser server, decodes viser 1.1's wire format
(``[u64 len][u64 zlen][zstd msgpack][aligned raw buffers]``) and measures what really goes out.

1. Scrub: per frame change at 100k / 500k / 1M points (stride 1, float16): server-side ms (the
   slider callback: read + unproject + queue), delivered ms (until the client holds the new cloud),
   bytes on the wire; with the read and unprojection parts timed apart. Compared with the other
   strategy, preloading every frame as its own node and toggling visibility (start bytes, step bytes).
2. Start-up: seconds from spawning ``python -m vid3d view`` on a 100-frame capture to the first
   frame's cloud received by a client ("served"); with ``--browser``, also to the first non-blank
   screenshot in headless chromium ("visible").
3. Memory: RSS of a session playing at 30 fps with a client attached, for ``--memory-seconds``
   (default 60; ``--memory-seconds 600`` is the issue's 10-minute figure); slope of the second half.

    python benchmarks/viewer_stream.py [--quick] [--points 100000,500000,1000000] [--browser]

Timings are noisy on a shared machine: compare the ratios within one run. Prints a table and a
final JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

import vid3d  # noqa: F401  (zlib first)
from vid3d.formats.bundle import write_bundle
from vid3d.formats.conventions import make_K, make_T, pixel_grid
from vid3d.viewer.app.config import free_port

REPO = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------------------------------------
# Inputs
# ---------------------------------------------------------------------------------------------


def analytic_capture(path: Path, *, height: int, width: int, frames: int, codec: str = "gzip") -> Path:
    """A quick capture: a slanted textured wall and a moving ball, a camera sliding sideways."""
    u, v = np.moveaxis(pixel_grid(height, width), -1, 0)  # pixel centres (u + 0.5, v + 0.5), each (H, W)
    f = 0.9 * width
    K = make_K(f, f, width / 2, height / 2)
    rgb = np.empty((frames, height, width, 3), np.uint8)
    depth = np.empty((frames, height, width), np.float32)
    dyn = np.zeros((frames, height, width), bool)
    for t in range(frames):
        d = 4.0 + 2.0 * v / height
        cx, cy, r = width * (0.3 + 0.4 * t / max(1, frames - 1)), height * 0.5, 0.18 * height
        inside = (u - cx) ** 2 + (v - cy) ** 2 < r * r
        d[inside] = 2.5 - 0.5 * np.sqrt(1 - ((u[inside] - cx) ** 2 + (v[inside] - cy) ** 2) / (r * r))
        depth[t] = d
        dyn[t] = inside
        rgb[t, ..., 0] = (128 + 100 * np.sin((u + 3 * t) / 17.0)).astype(np.uint8)
        rgb[t, ..., 1] = (128 + 100 * np.sin(v / 11.0)).astype(np.uint8)
        rgb[t, ..., 2] = np.where(inside, 230, 60).astype(np.uint8)
    T = np.stack([make_T(np.eye(3), np.array([0.02 * t, 0.0, 0.0])) for t in range(frames)])
    write_bundle(path, rgb=rgb, T_world_camera=T, K=K, fps=30.0, source="benchmark", depth=depth,
                 dynamic_mask=dyn, codec=codec)
    return path


# ---------------------------------------------------------------------------------------------
# A raw viser client
# ---------------------------------------------------------------------------------------------


def decode_window(raw: bytes) -> tuple[list[dict], list[int]]:
    """One viser 1.1 websocket message -> (messages as dicts, binary buffer lengths)."""
    import msgspec
    import zstandard

    zlen = int.from_bytes(raw[8:16], "little")
    inner = zstandard.ZstdDecompressor().decompress(raw[16:16 + zlen], max_output_size=int.from_bytes(raw[0:8], "little"))
    obj = msgspec.msgpack.decode(inner)
    return list(obj.get("messages", ())), list(obj.get("binaryBufferLengths", ()))


def _mentions(msg: dict, name: str) -> bool:
    return msg.get("name") == name or msg.get("props", {}).get("name") == name


class RawClient:
    """Connects like a browser would and records ``(time, bytes, names with binary payloads)``.

    ``record=False`` (the memory run): only counts bytes, so the client's own log does not grow in
    the process whose RSS is measured (it shares the process with the server).
    """

    def __init__(self, port: int, *, timeout_s: float = 30.0, record: bool = True) -> None:
        import viser
        from websockets.sync.client import connect

        deadline = time.time() + timeout_s
        while True:
            try:
                self.ws = connect(f"ws://127.0.0.1:{port}", subprotocols=[f"viser-v{viser.__version__}"],
                                  max_size=None, open_timeout=2)
                break
            except (OSError, TimeoutError) as exc:
                if time.time() > deadline:
                    raise RuntimeError(f"could not connect to port {port}: {exc}") from exc
                time.sleep(0.02)
        self.connected_at = time.perf_counter()
        self.record, self.total_bytes = record, 0
        self.events: list[tuple[float, int, set[str]]] = []
        self._lock = threading.Lock()
        self._stop = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self._stop:
            try:
                raw = self.ws.recv(timeout=0.2)
            except TimeoutError:
                continue
            except Exception:
                return
            now = time.perf_counter()
            if not self.record:
                with self._lock:
                    self.total_bytes += len(raw)
                continue
            names: set[str] = set()
            try:
                msgs, lengths = decode_window(raw)
                if sum(lengths) > 0:
                    for m in msgs:
                        for key in ("name",):
                            if isinstance(m.get(key), str):
                                names.add(m[key])
            except Exception:
                pass
            with self._lock:
                self.events.append((now, len(raw), names))

    def mark(self) -> int:
        with self._lock:
            return len(self.events)

    def wait_for(self, name: str, since: int, timeout_s: float = 30.0) -> float | None:
        """Time when a window carrying binary data for node ``name`` arrived after event ``since``."""
        deadline = time.time() + timeout_s
        while time.time() < deadline:
            with self._lock:
                for ev in self.events[since:]:
                    if name in ev[2]:
                        return ev[0]
            time.sleep(0.002)
        return None

    def wait_any(self, since: int, timeout_s: float = 5.0) -> None:
        """Until something arrived after event ``since``."""
        deadline = time.time() + timeout_s
        while time.time() < deadline and self.mark() <= since:
            time.sleep(0.002)

    def bytes_since(self, since: int) -> int:
        with self._lock:
            return sum(ev[1] for ev in self.events[since:])

    def quiet(self, for_s: float = 0.15, timeout_s: float = 10.0) -> None:
        deadline = time.time() + timeout_s
        while time.time() < deadline:
            with self._lock:
                last = self.events[-1][0] if self.events else 0.0
            if time.perf_counter() - last > for_s:
                return
            time.sleep(0.02)

    def close(self) -> None:
        self._stop = True
        try:
            self.ws.close()
        except Exception:
            pass
        self.thread.join(timeout=2)


# ---------------------------------------------------------------------------------------------
# 1. Scrub
# ---------------------------------------------------------------------------------------------


def bench_scrub(workdir: Path, n_points: int, *, frames: int, steps: int, precision: str = "float16") -> dict:
    from vid3d.viewer.app import PointFilter, ViewerConfig, ViewerSession
    from vid3d.viewer.points import points_of_frame

    W = int(round(np.sqrt(n_points * 16 / 9)))
    H = int(round(n_points / W))
    path = workdir / f"scrub_{H}x{W}.vid3d.h5"
    if not path.exists():
        analytic_capture(path, height=H, width=W, frames=frames)
    cfg = ViewerConfig(port=free_port(), device="cpu", filter=PointFilter(stride=1, max_points=H * W),
                       show_frustums=False, precision=precision)
    s = ViewerSession(path, cfg)
    s.start()
    client = RawClient(s.server.get_port())
    try:
        client.quiet(0.3)
        server_ms, delivered_ms, nbytes = [], [], []
        for i in range(steps):
            t = 1 + i % (frames - 1)
            mark = client.mark()
            t0 = time.perf_counter()
            s.set_frame(t)
            server_ms.append((time.perf_counter() - t0) * 1e3)
            arrived = client.wait_for("/points/current", mark)
            delivered_ms.append((arrived - t0) * 1e3 if arrived else float("nan"))
            client.quiet()
            nbytes.append(client.bytes_since(mark))
        # the parts, timed apart: a cold read of one frame, then the unprojection
        read_ms, pts_ms = [], []
        for t in range(1, min(frames, 6)):
            s.source.clear_cache()
            t0 = time.perf_counter()
            f = s.source.frame(t)
            read_ms.append((time.perf_counter() - t0) * 1e3)
            t0 = time.perf_counter()
            fp = points_of_frame(f, s.source.depth_field, flt=s.filter, device="cpu", rays=s.source.rays(t, 1))
            pts_ms.append((time.perf_counter() - t0) * 1e3)
        npts = len(fp)
    finally:
        client.close()
        s.stop()

    # the other strategy: every frame preloaded as its own node, steps toggle visibility
    import viser

    from vid3d.viewer.app.source import CaptureSource

    src = CaptureSource(path)
    server = viser.ViserServer(host="127.0.0.1", port=free_port(), verbose=False)
    client = RawClient(server.get_port())
    try:
        client.quiet(0.3)
        mark = client.mark()
        t0 = time.perf_counter()
        nodes = []
        for t in range(frames):
            fp = points_of_frame(src.frame(t), src.depth_field, flt=PointFilter(stride=1, max_points=H * W),
                                 device="cpu", rays=src.rays(t, 1))
            nodes.append(server.scene.add_point_cloud(f"/frames/t{t}", points=fp.points, colors=fp.colors,
                                                      point_size=0.01, visible=t == 0, precision=precision))
        server.flush()
        preload_server_s = time.perf_counter() - t0
        client.wait_for(f"/frames/t{frames - 1}", mark, timeout_s=60)
        client.quiet(0.3)
        preload_s = time.perf_counter() - t0
        preload_bytes = client.bytes_since(mark)
        toggle_ms, toggle_bytes = [], []
        for i in range(steps):
            t = 1 + i % (frames - 1)
            mark = client.mark()
            t0 = time.perf_counter()
            with server.atomic():
                nodes[t - 1].visible = False
                nodes[t].visible = True
            server.flush()
            toggle_ms.append((time.perf_counter() - t0) * 1e3)
            client.wait_any(mark)
            client.quiet(0.1)
            toggle_bytes.append(client.bytes_since(mark))
    finally:
        client.close()
        server.stop()
        src.close()
    return {
        "points": npts, "height": H, "width": W, "precision": precision,
        "server_ms_median": float(np.median(server_ms)), "server_ms_p90": float(np.percentile(server_ms, 90)),
        "delivered_ms_median": float(np.nanmedian(delivered_ms)),
        "bytes_per_step": int(np.median(nbytes)), "bytes_per_point": float(np.median(nbytes)) / max(1, npts),
        "read_ms_median": float(np.median(read_ms)), "unproject_ms_median": float(np.median(pts_ms)),
        "preload_frames": frames, "preload_bytes": int(preload_bytes), "preload_s": preload_s,
        "preload_server_s": preload_server_s,
        "toggle_ms_median": float(np.median(toggle_ms)), "toggle_bytes_per_step": int(np.median(toggle_bytes)),
    }


# ---------------------------------------------------------------------------------------------
# 2. Start-up
# ---------------------------------------------------------------------------------------------


def bench_startup(workdir: Path, *, frames: int, height: int, width: int, browser: bool) -> dict:
    path = workdir / f"startup_{frames}f_{height}x{width}.vid3d.h5"
    if not path.exists():
        analytic_capture(path, height=height, width=width, frames=frames)
    port = free_port()
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "vid3d", "view", str(path), "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    out: dict = {"frames": frames, "height": height, "width": width}
    try:
        client = RawClient(port, timeout_s=60)
        out["connect_s"] = client.connected_at - t0
        arrived = client.wait_for("/points/current", 0, timeout_s=60)
        out["first_frame_served_s"] = (arrived - t0) if arrived else float("nan")
        client.close()
        if browser:
            out["first_frame_visible_s"] = _browser_visible(port, t0)
    finally:
        proc.send_signal(2)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return out


def _browser_visible(port: int, t0: float) -> float:
    import io

    from PIL import Image
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True,
                              args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                                    "--disable-component-update", "--disable-sync", "--no-first-run"])
        page = b.new_page(viewport={"width": 1000, "height": 640})
        page.goto(f"http://127.0.0.1:{port}")
        page.wait_for_selector("canvas", timeout=60_000)
        deadline = time.time() + 60
        visible = float("nan")
        while time.time() < deadline:
            shot = np.asarray(Image.open(io.BytesIO(page.screenshot())).convert("RGB"))
            region = shot[200:600, 50:550]
            if region.std() > 20 and (region.min(axis=-1) > 235).mean() < 0.5:
                visible = time.perf_counter() - t0
                break
            page.wait_for_timeout(100)
        b.close()
    return visible


# ---------------------------------------------------------------------------------------------
# Mode switches (one-off costs)
# ---------------------------------------------------------------------------------------------


def bench_modes(workdir: Path, *, frames: int, height: int, width: int) -> dict:
    """Seconds and bytes of switching to "static background + dynamic" (fuses all frames once) and to
    "accumulated" (one node per k-th frame), and of a scrub step in each mode afterwards."""
    from vid3d.viewer.app import ViewerConfig, ViewerSession

    path = workdir / f"startup_{frames}f_{height}x{width}.vid3d.h5"
    if not path.exists():
        analytic_capture(path, height=height, width=width, frames=frames)
    s = ViewerSession(path, ViewerConfig(port=free_port(), device="cpu"))
    s.start()
    client = RawClient(s.server.get_port())
    out: dict = {}
    try:
        client.quiet(0.3)
        for mode in ("static_dynamic", "accumulated"):
            mark = client.mark()
            t0 = time.perf_counter()
            s.set_mode(mode)
            out[f"{mode}_switch_s"] = time.perf_counter() - t0
            client.wait_any(mark)
            client.quiet(0.3)
            out[f"{mode}_switch_mb"] = client.bytes_since(mark) / 2**20
            out[f"{mode}_points_shown"] = s.stats.points_shown
            steps = []
            for t in range(1, 8):
                mark = client.mark()
                t0 = time.perf_counter()
                s.set_frame(t * 5)
                steps.append((time.perf_counter() - t0) * 1e3)
                client.quiet()
            out[f"{mode}_step_ms_median"] = float(np.median(steps))
    finally:
        client.close()
        s.stop()
    return out


# ---------------------------------------------------------------------------------------------
# 3. Memory while playing
# ---------------------------------------------------------------------------------------------


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def bench_memory(workdir: Path, *, seconds: float, frames: int, height: int, width: int) -> dict:
    from vid3d.viewer.app import ViewerConfig, ViewerSession

    path = workdir / f"startup_{frames}f_{height}x{width}.vid3d.h5"
    if not path.exists():
        analytic_capture(path, height=height, width=width, frames=frames)
    s = ViewerSession(path, ViewerConfig(port=free_port(), device="cpu", fps=30.0))
    s.start()
    client = RawClient(s.server.get_port(), record=False)
    samples: list[tuple[float, float]] = []
    try:
        time.sleep(1.0)  # initial scene
        shown0 = s.stats.frames_shown
        s.play()
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            samples.append((time.perf_counter() - t0, _rss_mb()))
            time.sleep(min(1.0, seconds / 30))
        s.pause()
        shown = s.stats.frames_shown - shown0
        received = client.total_bytes
    finally:
        client.close()
        s.stop()
    ts, mb = np.array(samples).T
    half = ts >= ts[-1] / 2
    slope = float(np.polyfit(ts[half], mb[half], 1)[0] * 60.0) if half.sum() >= 3 else float("nan")
    return {"seconds": seconds, "frames_shown": int(shown), "fps_achieved": shown / seconds,
            "rss_start_mb": float(mb[0]), "rss_end_mb": float(mb[-1]), "rss_max_mb": float(mb.max()),
            "slope_mb_per_min_second_half": slope, "client_mb_received": received / 2**20}


# ---------------------------------------------------------------------------------------------


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", default="100000,500000,1000000")
    ap.add_argument("--precisions", default="float16,float32", help="wire precision(s) of the scrub runs")
    ap.add_argument("--parts", default="scrub,startup,modes,memory")
    ap.add_argument("--frames", type=int, default=12, help="frames of the scrub captures")
    ap.add_argument("--steps", type=int, default=11)
    ap.add_argument("--startup-frames", type=int, default=100)
    ap.add_argument("--startup-size", default="360x640", help="HxW of the start-up / memory capture")
    ap.add_argument("--memory-seconds", type=float, default=60.0)
    ap.add_argument("--browser", action="store_true", help="also time the first visible frame in chromium")
    ap.add_argument("--quick", action="store_true", help="tiny sizes (a smoke run)")
    ap.add_argument("--workdir", default=None, help="where to keep the generated captures")
    args = ap.parse_args()
    if args.quick:
        args.points, args.frames, args.steps = "20000,50000", 6, 5
        args.startup_frames, args.startup_size, args.memory_seconds = 20, "120x160", 6.0
    sh, sw = (int(x) for x in args.startup_size.split("x"))
    tmp = tempfile.TemporaryDirectory(prefix="vid3d_viewer_bench_") if args.workdir is None else None
    workdir = Path(args.workdir or tmp.name)
    workdir.mkdir(parents=True, exist_ok=True)
    device = f"CPU ({platform.processor() or platform.machine()}, {os.cpu_count()} cores), numpy unprojection"

    parts = set(args.parts.split(","))
    scrub = [bench_scrub(workdir, int(n), frames=args.frames, steps=args.steps, precision=p)
             for n in args.points.split(",") for p in args.precisions.split(",")] if "scrub" in parts else []
    startup = (bench_startup(workdir, frames=args.startup_frames, height=sh, width=sw, browser=args.browser)
               if "startup" in parts else {})
    modes = bench_modes(workdir, frames=args.startup_frames, height=sh, width=sw) if "modes" in parts else {}
    memory = (bench_memory(workdir, seconds=args.memory_seconds, frames=args.startup_frames, height=sh, width=sw)
              if "memory" in parts else {})

    print(f"device: {device}")
    if scrub:
        print("\nscrub (one reusable cloud, stride 1)                        | preload every frame + toggle visibility")
        print(f"{'points':>9} {'prec':>7} {'server ms':>10} {'p90':>7} {'read':>6} {'unproj':>7} {'delivered':>10} {'MB/step':>8} {'B/pt':>5}"
              f" | {'start MB':>9} {'start s':>8} {'toggle ms':>9} {'B/step':>7}")
    for r in scrub:
        print(f"{r['points']:>9,} {r['precision']:>7} {r['server_ms_median']:>10.1f} {r['server_ms_p90']:>7.1f} {r['read_ms_median']:>6.1f}"
              f" {r['unproject_ms_median']:>7.1f} {r['delivered_ms_median']:>10.1f} {r['bytes_per_step'] / 2**20:>8.2f}"
              f" {r['bytes_per_point']:>5.1f} | {r['preload_bytes'] / 2**20:>9.1f} {r['preload_s']:>8.2f}"
              f" {r['toggle_ms_median']:>9.2f} {r['toggle_bytes_per_step']:>7}")
    if startup:
        print(f"\nstart-up ({startup['frames']} frames {sh}x{sw}): connect {startup.get('connect_s', float('nan')):.2f} s,"
              f" first frame served {startup.get('first_frame_served_s', float('nan')):.2f} s"
              + (f", visible {startup['first_frame_visible_s']:.2f} s" if "first_frame_visible_s" in startup else ""))
    if modes:
        print(f"modes ({args.startup_frames} frames {sh}x{sw}, stride 2):"
              f" static+dynamic switch {modes['static_dynamic_switch_s']:.2f} s / {modes['static_dynamic_switch_mb']:.1f} MB"
              f" ({modes['static_dynamic_points_shown']:,} points), step {modes['static_dynamic_step_ms_median']:.1f} ms;"
              f" accumulated switch {modes['accumulated_switch_s']:.2f} s / {modes['accumulated_switch_mb']:.1f} MB,"
              f" step {modes['accumulated_step_ms_median']:.1f} ms")
    if memory:
        print(f"memory while playing {memory['seconds']:.0f} s at 30 fps ({memory['fps_achieved']:.1f} achieved):"
              f" RSS {memory['rss_start_mb']:.0f} -> {memory['rss_end_mb']:.0f} MB (max {memory['rss_max_mb']:.0f}),"
              f" slope {memory['slope_mb_per_min_second_half']:+.2f} MB/min over the second half")
    print(json.dumps({"benchmark": "viewer_stream", "device": device, "scrub": scrub, "startup": startup,
                      "modes": modes, "memory": memory}))
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
