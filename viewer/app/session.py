"""``ViewerSession``: the viewer's state (the one place it lives), its command API, and the viser scene it drives.

``ViewerSession(path, config).start()`` builds the server and returns the port without blocking;
``.stop()`` ends it. ``vid3d view`` just blocks in between.

Everything that changes the view is a command (``set_frame``, ``step``, ``play`` / ``pause``,
``set_mode``, ``set_filter``, ``set_point_scale``, ``set_follow``...). After each draw the session
notifies its frame observers (``on_frame_change``); playback changes reach ``on_playing_change``. The
GUI, the effects panel and the play thread see the session only through the Protocols of
``commands.py``.

Streaming choice (measured in ``benchmarks/viewer_stream.py``): the current frame is **one reusable
point cloud** updated under ``server.atomic()`` (points in camera coordinates, the node placed at the
camera's pose), instead of preloading every frame and toggling visibility. A toggle costs ~0.2 ms and
157 bytes, but preloading sends all T frames before the first step (12 frames of 500k points: 52 MB
f16, 86 MB f32, ~1-2.5 s, growing with T in browser memory too), while a streamed step costs one
frame (500k points: 4.3 MB f16 / 7.2 MB f32, ~40 ms server-side f32 on a loaded 2-core CPU).
"Accumulated" mode does preload: one decimated node per k-th frame, toggled by visibility.
"""

from __future__ import annotations

import dataclasses
import os
import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from vid3d.formats.errors import InputError
from vid3d.runtime.device import device_name
from vid3d.viewer.app.commands import FrameCallback, Observers, PlayingCallback, Unsubscribe
from vid3d.viewer.app.config import DISPLAY_MODES, ViewerConfig
from vid3d.viewer.app.source import CaptureSource
from vid3d.viewer.app.view_geometry import ViewPose, time_colors, view_from_pose, world_up_from_trajectory
from vid3d.viewer.points import FramePoints, PointFilter, evenly_spaced, fuse_points, points_of_frame, to_world


@dataclass
class SessionStats:
    """What the info panel shows (mutable session state).

    Fields: frame, points_current, points_background, points_accumulated (visible ones),
    update_ms (server-side time of the last frame change), frames_shown (count),
    background_ms (time of the last background fusion), render_ms (last effect render).
    """

    frame: int = 0
    points_current: int = 0
    points_background: int = 0
    points_accumulated: int = 0
    update_ms: float = 0.0
    frames_shown: int = 0
    background_ms: float = 0.0
    render_ms: float = 0.0

    @property
    def points_shown(self) -> int:
        return self.points_current + self.points_background + self.points_accumulated


class ViewerSession:
    """The viewer of one capture. Raises BundleFormatError / InputError at construction on a bad file.

    Read-only state: ``t`` (current frame), ``mode``, ``filter`` (:class:`PointFilter`), ``point_scale``,
    ``follow``, ``fps``, ``loop``, ``playing``, ``stats``, ``device``; after :meth:`start`: ``server``,
    ``cloud`` (the current-frame :class:`viser.PointCloudHandle`), ``gui``, ``playback``, ``effects``.
    Change it through the commands.
    """

    def __init__(self, bundle_path: str | os.PathLike, config: ViewerConfig | None = None) -> None:
        self.config = config or ViewerConfig()
        self.source = CaptureSource(bundle_path)
        src = self.source
        self.device = device_name(self.config.device)  # "cpu" without importing torch on a CPU machine
        self.notes: list[str] = [src.note] if src.note else []
        mode = self.config.mode
        if mode == "static_dynamic" and not src.has_dynamic:
            self.notes.append("no /mask/dynamic: 'static background + dynamic' is not available")
            mode = "current"
        self._t = 0
        self._mode = mode
        self._filter: PointFilter = self.config.filter
        self._follow = bool(self.config.follow_camera)
        self._point_scale = 1.0
        self._fps = float(self.config.fps or src.fps or 30.0)
        self._loop = bool(self.config.loop)
        self._clouds_hidden = False
        self.stats = SessionStats()
        self.world_up = world_up_from_trajectory(src.T_world_camera)
        self.median_depth = src.median_depth(0)
        self.server: Any = None
        self.cloud: Any = None
        self.background_cloud: Any = None
        self.current_frustum: Any = None
        self.frustums: dict[int, Any] = {}
        self.trajectory: Any = None
        self.gui: Any = None
        self.playback: Any = None
        self.effects: Any = None
        self._frame_observers: Observers[int] = Observers()
        self._playing_observers: Observers[bool] = Observers()
        self._lock = threading.RLock()
        self._req_lock = threading.Lock()
        self._play_lock = threading.Lock()
        self._req_id = 0
        self._background: FramePoints | None = None
        self._background_filter: PointFilter | None = None
        self._accum_nodes: dict[int, Any] = {}
        self._accum_filter: PointFilter | None = None
        self._current: FramePoints = FramePoints.empty()

    # -- read-only state ------------------------------------------------------------------------

    @property
    def t(self) -> int:
        return self._t

    @property
    def num_frames(self) -> int:
        return self.source.num_frames

    @property
    def mode(self) -> str:
        return self._mode

    @property
    def filter(self) -> PointFilter:
        return self._filter

    @property
    def point_scale(self) -> float:
        return self._point_scale

    @property
    def follow(self) -> bool:
        return self._follow

    @property
    def fps(self) -> float:
        return self._fps

    @property
    def loop(self) -> bool:
        return self._loop

    @property
    def playing(self) -> bool:
        return bool(self.playback is not None and self.playback.playing)

    # -- observers ------------------------------------------------------------------------------

    def on_frame_change(self, callback: FrameCallback) -> Unsubscribe:
        """Call ``callback(t)`` after every draw of frame ``t`` (a new frame, or a redraw after a setting
        changed), on the drawing thread, in draw order. Returns a function that unsubscribes it."""
        return self._frame_observers.subscribe(callback)

    def on_playing_change(self, callback: PlayingCallback) -> Unsubscribe:
        """Call ``callback(playing)`` when playback starts or stops (before ``playing`` reads the new value)."""
        return self._playing_observers.subscribe(callback)

    # -- geometry of the capture ------------------------------------------------------------------

    def view_of_frame(self, t: int) -> ViewPose:
        """The viewer camera that looks exactly through recorded frame ``t``."""
        src = self.source
        return view_from_pose(src.T_world_camera[t], src.K[t], src.height, self.median_depth)

    def point_size(self) -> float:
        """World-space point size: the pixel footprint at the median depth, times stride and ``point_scale``."""
        if self.config.point_size is not None:
            return float(self.config.point_size) * self._point_scale
        fx = float(self.source.K[0, 0, 0])
        return self._point_scale * self.median_depth * self._filter.stride / fx

    # -- lifetime --------------------------------------------------------------------------------

    def start(self) -> int:
        """Start serving (non-blocking); returns the port. The first frame is in the scene on return."""
        import viser

        from vid3d.viewer.app.effects_panel import EffectsPanel, EffectsSetup
        from vid3d.viewer.app.gui import GuiSetup, build_gui
        from vid3d.viewer.app.playback import Playback

        cfg, src = self.config, self.source
        self.server = server = viser.ViserServer(host=cfg.host, port=int(cfg.port), verbose=False)
        server.scene.set_up_direction(tuple(float(x) for x in self.world_up))
        v0 = self.view_of_frame(0)
        ic = server.initial_camera
        ic.position, ic.look_at, ic.up, ic.fov = v0.position, v0.look_at, v0.up, v0.fov_y
        # near plane beyond the frustums' own size: looking through a recorded camera, its frustum and
        # its close neighbours are clipped instead of covering the view
        ic.near = max(1e-3, 0.05 * self.median_depth)

        self.cloud = server.scene.add_point_cloud(
            "/points/current", points=np.zeros((0, 3), np.float32), colors=np.zeros((0, 3), np.uint8),
            point_size=self.point_size(), precision=cfg.precision, point_shape="square")
        self.background_cloud = server.scene.add_point_cloud(
            "/points/background", points=np.zeros((0, 3), np.float32), colors=np.zeros((0, 3), np.uint8),
            point_size=self.point_size(), precision="float32", visible=False)
        self._add_cameras()
        modes = tuple(k for k in DISPLAY_MODES if k != "static_dynamic" or src.has_dynamic)
        self.gui = build_gui(server.gui, self, GuiSetup(
            num_frames=src.num_frames, fps=self._fps, loop=self._loop, mode=self._mode, modes=modes,
            filter=self._filter, has_confidence=src.has_confidence, median_depth=self.median_depth,
            show_frustums=cfg.show_frustums, frustum_images=cfg.frustum_images, follow=self._follow))
        self.show_frame(0)
        self.playback = Playback(self)
        self.playback.start()
        # cheap: the renderer (torch) loads when an effect is chosen
        self.effects = EffectsPanel(server, self.gui.effects_folder, self, EffectsSetup(
            median_depth=self.median_depth, depth_limit=self.gui.depth_limit, max_side=cfg.effect_max_side,
            moving_scale=cfg.effect_moving_scale))
        return int(server.get_port())

    def stop(self) -> None:
        """Stop playback, effect workers and the server; close the bundle. Safe to call twice."""
        if self.playback is not None:
            self.playback.stop()
        if self.effects is not None:
            self.effects.stop()
        if self.server is not None:
            self.server.stop()
            self.server = None
        self.source.close()

    @property
    def url(self) -> str:
        host = self.config.host
        shown = "127.0.0.1" if host in ("0.0.0.0", "") else host
        return f"http://{shown}:{self.server.get_port()}" if self.server is not None else ""

    # -- scene pieces ----------------------------------------------------------------------------

    def _add_cameras(self) -> None:
        cfg, src, server = self.config, self.source, self.server
        T = src.num_frames
        colors = time_colors(T)
        scale = 0.04 * self.median_depth
        fov = self.view_of_frame(0).fov_y
        aspect = src.width / src.height
        centres = src.T_world_camera[:, :3, 3]
        if T > 1:
            segs = np.stack([centres[:-1], centres[1:]], axis=1)  # (T-1, 2, 3)
            seg_colors = np.stack([colors[:-1], colors[1:]], axis=1)
            self.trajectory = server.scene.add_line_segments(
                "/trajectory", points=segs.astype(np.float32), colors=seg_colors, thickness=2.0,
                thickness_units="screen", visible=cfg.show_frustums)
        for i in evenly_spaced(T, cfg.max_frustums):
            i = int(i)
            v = self.view_of_frame(i)
            h = server.scene.add_camera_frustum(
                f"/cameras/t{i:05d}", fov=v.fov_y, aspect=aspect, scale=scale, color=tuple(int(c) for c in colors[i]),
                thickness=1.5, thickness_units="screen",  # world-unit lines fill the view from a nearby camera
                image=src.thumbnail(i, cfg.thumbnail_px) if cfg.frustum_images else None, format="jpeg",
                jpeg_quality=80, wxyz=v.wxyz, position=v.position, visible=cfg.show_frustums)
            h.on_click(lambda event, i=i: self.fly_to(i, client=event.client))
            self.frustums[i] = h
        self.current_frustum = server.scene.add_camera_frustum(
            "/cameras/current", fov=fov, aspect=aspect, scale=scale * 1.3, color=(255, 40, 40),
            thickness=2.5, thickness_units="screen", visible=cfg.show_frustums)

    def place_camera(self, client: Any, view: ViewPose) -> None:
        """Move one browser's camera to ``view`` (exact orientation, fov)."""
        try:
            with client.atomic():
                client.camera.fov = view.fov_y
                client.camera.position = view.position
                client.camera.look_at = view.look_at
                client.camera.up_direction = view.up
        except AssertionError:  # the browser has not reported its camera yet
            pass

    def _clients(self, client: Any) -> list[Any]:
        return [client] if client is not None else list(self.server.get_clients().values())

    def fly_to(self, t: int, *, client: Any = None) -> None:
        """Jump to frame ``t`` and put ``client``'s camera (all clients if None) at its recorded pose."""
        self.set_frame(t)
        view = self.view_of_frame(t)
        for c in self._clients(client):
            self.place_camera(c, view)

    def reset_view(self, client: Any = None) -> None:
        """Back to the first frame's recorded camera (the initial view)."""
        view = self.view_of_frame(0)
        for c in self._clients(client):
            self.place_camera(c, view)

    # -- points ----------------------------------------------------------------------------------

    def points_of(self, t: int, *, pixels: str = "all", flt: PointFilter | None = None) -> FramePoints:
        """Filtered points of frame ``t`` in its camera's coordinates (``(N, 3)`` f32, colours u8);
        ``pixels`` "all", "static" or "dynamic" (see :data:`vid3d.viewer.points.PIXELS`)."""
        src = self.source
        flt = flt or self._filter
        return points_of_frame(src.frame(t), src.depth_field, flt=flt, pixels=pixels, device=self.device,
                               rays=src.rays(t, flt.stride))

    def background(self) -> FramePoints:
        """Static background in world coordinates, fused once from all frames (per filter setting)."""
        with self._lock:
            if self._background is not None and self._background_filter == self._filter:
                return self._background
            t0 = time.perf_counter()
            src, cfg = self.source, self.config
            T = src.num_frames
            per_frame = max(2_000, 2 * cfg.background_max_points // max(1, T))
            flt = dataclasses.replace(self._filter, max_points=min(self._filter.max_points, per_frame))
            parts = [to_world(self.points_of(t, pixels="static", flt=flt), src.T_world_camera[t]) for t in range(T)]
            voxel = self.median_depth * flt.stride / float(src.K[0, 0, 0])
            self._background = fuse_points(parts, voxel_size=voxel, max_points=cfg.background_max_points)
            self._background_filter = self._filter
            self.stats.background_ms = (time.perf_counter() - t0) * 1e3
            return self._background

    def _ensure_accumulated(self) -> list[int]:
        """Create (once per filter) one node per ``accumulate_stride``-th frame; returns their frames."""
        cfg, src = self.config, self.source
        frames = list(range(0, src.num_frames, cfg.accumulate_stride))
        if self._accum_filter == self._filter and self._accum_nodes:
            return frames
        for h in self._accum_nodes.values():
            h.remove()
        self._accum_nodes = {}
        flt = dataclasses.replace(self._filter, max_points=max(1, min(self._filter.max_points,
                                                                      cfg.accumulate_max_points // len(frames))))
        for k in frames:
            fp = self.points_of(k, flt=flt)
            v = self.view_of_frame(k)
            self._accum_nodes[k] = self.server.scene.add_point_cloud(
                f"/points/accumulated/t{k:05d}", points=fp.points, colors=fp.colors, point_size=self.point_size(),
                precision=cfg.precision, wxyz=v.wxyz, position=v.position, visible=False)
        self._accum_filter = self._filter
        return frames

    def _hide_accumulated(self) -> None:
        for h in self._accum_nodes.values():
            h.visible = False

    def displayed_world_points(self) -> FramePoints:
        """Everything the scene shows now, in world coordinates (for the server-side effects)."""
        with self._lock:
            parts = [to_world(self._current, self.source.T_world_camera[self._t])]
            if self._mode == "static_dynamic" and self._background is not None:
                parts.append(self._background)
            if self._mode == "accumulated":
                for k, h in self._accum_nodes.items():
                    if h.visible:
                        T = self.source.T_world_camera[k]
                        parts.append(to_world(FramePoints(np.asarray(h.points, np.float32), np.asarray(h.colors),
                                                          np.full(len(h.points), -1, np.int64)), T))
            return FramePoints.concat(parts)

    # -- commands: time ----------------------------------------------------------------------------

    def set_frame(self, t: int) -> None:
        """Request frame ``t`` from any thread; a newer request arriving meanwhile wins (no stale draws)."""
        with self._req_lock:
            self._req_id += 1
            my_id = self._req_id
        with self._lock:
            if my_id != self._req_id:
                return
            self.show_frame(t)

    def step(self, delta: int) -> None:
        """Move ``delta`` frames from the current one (wrapping around the clip)."""
        self.set_frame((self._t + int(delta)) % self.num_frames)

    def play(self) -> None:
        """Start playback at ``fps`` from the current frame (a no-op for a one-frame capture)."""
        self._set_playing(True)

    def pause(self) -> None:
        """Stop playback at the current frame."""
        self._set_playing(False)

    def _set_playing(self, on: bool) -> None:
        on = bool(on) and self.num_frames > 1
        with self._play_lock:
            if self.playback is None or bool(self.playback.playing) == on:
                return
            self._playing_observers.notify(on)
            self.playback.playing = on

    def set_fps(self, fps: float) -> None:
        """Playback rate in frames per second (> 0)."""
        if not float(fps) > 0:
            raise InputError(f"fps must be > 0, got {fps!r}")
        self._fps = float(fps)

    def set_loop(self, loop: bool) -> None:
        """Whether playback wraps around at the last frame (else it stops there)."""
        self._loop = bool(loop)

    # -- commands: what is drawn -------------------------------------------------------------------

    def show_frame(self, t: int) -> None:
        """Draw frame ``t`` now (synchronous): points, pose, frustum marker, followers; then notify."""
        server = self.server
        with self._lock:
            t0 = time.perf_counter()
            t = int(t) % self.num_frames
            self._t = t
            dynamic_only = self._mode == "static_dynamic"
            bg = self.background() if dynamic_only else None
            if self._mode == "accumulated":
                self._ensure_accumulated()
            fp = self.points_of(t, pixels="dynamic" if dynamic_only else "all")
            self._current = fp
            view = self.view_of_frame(t)
            hidden = self._clouds_hidden
            with server.atomic():
                self.cloud.points = fp.points
                self.cloud.colors = fp.colors
                self.cloud.wxyz = view.wxyz
                self.cloud.position = view.position
                self.cloud.point_size = self.point_size()
                self.cloud.visible = not hidden
                if bg is not None:
                    self.background_cloud.points = bg.points
                    self.background_cloud.colors = bg.colors
                    self.background_cloud.point_size = self.point_size()
                self.background_cloud.visible = bg is not None and not hidden
                n_acc = 0
                for k, h in self._accum_nodes.items():
                    show = self._mode == "accumulated" and k <= t and k != t and not hidden
                    h.visible = show
                    if show:
                        h.point_size = self.point_size()
                        n_acc += len(h.points)
                self.current_frustum.wxyz = view.wxyz
                self.current_frustum.position = view.position
                if self._follow:
                    for client in server.get_clients().values():
                        self.place_camera(client, view)
            server.flush()
            s = self.stats
            s.frame, s.points_current = t, len(fp)
            s.points_background = len(bg) if bg is not None else 0
            s.points_accumulated = n_acc
            s.update_ms = (time.perf_counter() - t0) * 1e3
            s.frames_shown += 1
            # under the lock: observers see the draws in the order they happened
            self._frame_observers.notify(t)

    def set_mode(self, mode: str) -> None:
        """Switch display mode (one of :data:`DISPLAY_MODES`) and redraw."""
        if mode not in DISPLAY_MODES:
            raise InputError(f"mode must be one of {list(DISPLAY_MODES)}, got {mode!r}")
        if mode == "static_dynamic" and not self.source.has_dynamic:
            raise InputError("this capture has no /mask/dynamic: 'static_dynamic' mode is not available")
        with self._lock:
            self._mode = mode
            if mode != "accumulated":
                self._hide_accumulated()
            self.show_frame(self._t)

    def set_filter(self, **changes: Any) -> None:
        """Replace fields of the point filter (``stride=``, ``confidence_percentile=``...) and redraw."""
        with self._lock:
            self._filter = dataclasses.replace(self._filter, **changes)
            self.show_frame(self._t)

    def set_point_scale(self, scale: float) -> None:
        """Point size as a factor of the pixel footprint at the median depth; redraws."""
        with self._lock:
            self._point_scale = float(scale)
            self.show_frame(self._t)

    def set_follow(self, follow: bool) -> None:
        """Whether every browser's camera follows the recorded camera of the current frame."""
        with self._lock:
            self._follow = bool(follow)
            if self._follow:
                self.show_frame(self._t)

    def set_clouds_hidden(self, hidden: bool) -> None:
        """Hide the client-side clouds (while an effect image replaces them) or show them again; redraws."""
        with self._lock:
            self._clouds_hidden = bool(hidden)
            self.show_frame(self._t)

    def set_cameras_visible(self, visible: bool) -> None:
        with self._lock, self.server.atomic():
            for h in [*self.frustums.values(), self.current_frustum, self.trajectory]:
                if h is not None:
                    h.visible = bool(visible)

    def set_frustum_images(self, on: bool) -> None:
        """Show (reading the thumbnails) or remove the frame images on the frustums."""
        thumbs = {i: self.source.thumbnail(i, self.config.thumbnail_px) if on else None for i in self.frustums}
        with self._lock, self.server.atomic():
            for i, h in self.frustums.items():
                h.image = thumbs[i]

    def report_render_ms(self, ms: float) -> None:
        """The effects panel's last render time (shown in the info text)."""
        self.stats.render_ms = float(ms)

    # -- info --------------------------------------------------------------------------------------

    def info_markdown(self) -> str:
        """The info panel's text: bundle metadata, frame, points shown, timings."""
        src, s, a = self.source, self.stats, self.source.attrs
        scale = "metric" if a.get("metric_scale") else "up to scale"
        lines = [
            f"**{os.path.basename(str(src.path))}**  ",
            f"{src.num_frames} frames, {src.width}×{src.height}, {src.fps:g} fps, units {a.get('units', '?')} ({scale})  ",
            f"source: {a.get('source', '?')}  ",
            f"producer: {a.get('producer', '?')}  ",
            f"fields: {', '.join(src.bundle.fields)}  ",
            f"depth shown: {'/depth/z' if src.depth_field == 'depth' else '/depth/prior'}",
        ]
        lines += [f"\n⚠ {n}" for n in self.notes]
        lines += [
            "",
            f"frame **{s.frame}** / {src.num_frames - 1} · t = {float(src.timestamps_s[s.frame]):.3f} s  ",
            f"points shown: **{s.points_shown:,}** (frame {s.points_current:,}, background {s.points_background:,}, "
            f"accumulated {s.points_accumulated:,})  ",
            f"update: {s.update_ms:.1f} ms server-side ({self.device})",
        ]
        if s.background_ms:
            lines.append(f"  \nbackground fused in {s.background_ms:.0f} ms")
        if s.render_ms:
            lines.append(f"  \neffect render: {s.render_ms:.1f} ms")
        return "\n".join(lines)
