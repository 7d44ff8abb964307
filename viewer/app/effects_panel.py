"""Effects panel: bokeh and dolly zoom rendered server-side (``vid3d.viewer.render``) from each
browser's camera, shown as the viser background image (the nerfview pattern).

Per client, one worker thread renders the newest request only: at ``effect_moving_scale`` of the
resolution while the camera moves, then once more at full resolution when it has rested for
``REST_S``. While an effect is on, the client-side point clouds are hidden (they would double-draw).
The renderer (and torch, seconds to import) is loaded only when an effect is first chosen, so it
costs nothing at start-up; when it cannot be imported the panel says so and stays at "None".

The panel reaches the session only through :class:`~vid3d.viewer.app.commands.EffectsHost`: it reads
the shown points, asks for the clouds to be hidden while an effect draws, reports its render time, and
re-renders when it is told that a frame was drawn.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from vid3d.viewer.app.commands import EffectsHost
from vid3d.viewer.app.view_geometry import K_from_fov, T_world_camera_from_view, ray_pick

EFFECTS = ("None", "Bokeh", "Dolly zoom")
REST_S = 0.3


def effect_camera(wxyz: np.ndarray, position: np.ndarray, fov_y: float, aspect: float, max_side: int) -> Any:
    """The renderer's ``Camera`` for a viser view (``wxyz (4,)``, ``position (3,)``, vertical fov)
    at most ``max_side`` pixels wide or high, with the browser's ``aspect`` (W / H)."""
    from vid3d.viewer.render import Camera

    if aspect >= 1.0:
        W, H = int(max_side), max(8, int(round(max_side / aspect)))
    else:
        H, W = int(max_side), max(8, int(round(max_side * aspect)))
    return Camera(K=K_from_fov(fov_y, H, W), T_world_camera=T_world_camera_from_view(wxyz, position), height=H, width=W)


def render_effect(points: np.ndarray, colors: np.ndarray, cam: Any, *, effect: str, focus_distance: float,
                  aperture: float, dolly_strength: float, subject_distance: float, device: str) -> np.ndarray:
    """Render ``points (N, 3)`` / ``colors (N, 3)`` u8 into ``cam`` with ``effect`` -> ``(H, W, 3)`` uint8."""
    import torch

    from vid3d.viewer.render import BokehSettings, dolly_zoom_camera, render_view

    bokeh = None
    if effect == "Bokeh" and aperture > 0:
        bokeh = BokehSettings(focus_distance=float(focus_distance), aperture=float(aperture),
                              **BokehSettings.PRESETS["draft"])
    if effect == "Dolly zoom":
        cam = dolly_zoom_camera(cam, subject_distance=float(subject_distance), strength=float(dolly_strength))
    p = torch.from_numpy(np.ascontiguousarray(points, np.float32)).to(device)
    c = torch.from_numpy(np.ascontiguousarray(colors, np.uint8)).to(device)
    res = render_view(p, c, cam, bokeh=bokeh, point_radius_px=1, fill_holes=True)
    return (res.rgb.clamp(0, 1) * 255.0 + 0.5).to(torch.uint8).cpu().numpy()


class _ClientWorker:
    """Latest-wins render loop of one browser."""

    def __init__(self, panel: EffectsPanel, client: Any) -> None:
        self.panel, self.client = panel, client
        self.event = threading.Event()
        self.last_move = 0.0
        self.full_res_done = True
        self.stopped = False
        self.thread = threading.Thread(target=self._run, name=f"vid3d-effects-{client.client_id}", daemon=True)
        self.thread.start()

    def request(self, *, moving: bool) -> None:
        if moving:
            self.last_move = time.perf_counter()
        self.full_res_done = False
        self.event.set()

    def _run(self) -> None:
        while not self.stopped:
            if not self.event.wait(REST_S):
                if self.full_res_done or not self.panel.active:
                    continue
                moving = False
            else:
                self.event.clear()
                moving = time.perf_counter() - self.last_move < REST_S
            if self.stopped:
                return
            try:
                self.panel.render_for(self.client, moving=moving)
                if not moving:
                    self.full_res_done = True
            except Exception as exc:  # a disconnect mid-render, a camera not reported yet...
                self.full_res_done = True
                if not isinstance(exc, (AssertionError, RuntimeError)):
                    print(f"vid3d view: effect render failed: {type(exc).__name__}: {exc}")


@dataclass(frozen=True)
class EffectsSetup:
    """What the panel starts from: median_depth and depth_limit (the distance sliders' default and end),
    max_side (render size at rest, px), moving_scale (resolution factor while the camera moves)."""

    median_depth: float
    depth_limit: float
    max_side: int
    moving_scale: float


class EffectsPanel:
    """The Effects folder's controls (added into ``folder``, a viser folder handle of ``server``'s GUI)
    and the per-client render workers, for ``host`` (the session)."""

    def __init__(self, server: Any, folder: Any, host: EffectsHost, setup: EffectsSetup) -> None:
        self.server, self.host, self.setup = server, host, setup
        gui = server.gui
        depth = float(setup.median_depth)
        limit = float(setup.depth_limit)
        with folder:
            self.effect = gui.add_dropdown("Effect", options=EFFECTS, initial_value="None")
            self.focus = gui.add_slider("Focus distance", min=limit / 200.0, max=limit, step=limit / 200.0,
                                        initial_value=float(np.clip(depth, limit / 200.0, limit)))
            self.pick = gui.add_button("Pick focus: click a point", hint="Then click a point in the scene")
            self.aperture = gui.add_slider("Aperture (blur px)", min=0.0, max=40.0, step=0.5, initial_value=12.0)
            self.strength = gui.add_slider("Dolly strength", min=-0.8, max=2.0, step=0.05, initial_value=0.5)
            self.subject = gui.add_slider("Subject distance", min=limit / 200.0, max=limit, step=limit / 200.0,
                                          initial_value=float(np.clip(depth, limit / 200.0, limit)))
            self.max_side = gui.add_slider("Render size (px)", min=128, max=1920, step=32,
                                           initial_value=int(setup.max_side))
            self.status = gui.add_markdown("Effects render on the server from your camera.")
        self._workers: dict[int, _ClientWorker] = {}
        self._lock = threading.Lock()
        self.last_image: np.ndarray | None = None
        self.renderer_loaded = False
        self.renderer_error: str | None = None

        self.effect.on_update(lambda _e: self._effect_changed())
        for h in (self.focus, self.aperture, self.strength, self.subject, self.max_side):
            h.on_update(lambda _e: self.scene_changed())
        self.pick.on_click(lambda e: self._arm_pick(e.client))
        server.on_client_connect(self.attach)
        server.on_client_disconnect(lambda c: self._detach(c.client_id))
        for client in server.get_clients().values():
            self.attach(client)
        host.on_frame_change(lambda _t: self.scene_changed())

    @property
    def active(self) -> bool:
        return self.effect.value != "None" and self.renderer_error is None

    def load_renderer(self) -> bool:
        """Import the renderer (torch) once; False, with the reason in the panel, when it cannot be."""
        if self.renderer_loaded or self.renderer_error is not None:
            return self.renderer_loaded
        self.status.content = "Loading the renderer (torch)..."
        try:
            import vid3d.viewer.render  # noqa: F401
            import vid3d.viewer.render.bokeh  # noqa: F401

            self.renderer_loaded = True
            self.status.content = "Effects render on the server from your camera."
        except ImportError as exc:
            self.renderer_error = str(exc).splitlines()[0]
            self.status.content = f"Effects: renderer not available ({self.renderer_error})."
        return self.renderer_loaded

    def attach(self, client: Any) -> None:
        """Start rendering for a (new) browser; its camera moves trigger low-resolution renders."""
        with self._lock:
            if client.client_id in self._workers:
                return
            worker = _ClientWorker(self, client)
            self._workers[client.client_id] = worker
        client.camera.on_update(lambda _cam: worker.request(moving=True) if self.active else None)

    def _detach(self, client_id: int) -> None:
        with self._lock:
            w = self._workers.pop(client_id, None)
        if w is not None:
            w.stopped = True
            w.event.set()

    def stop(self) -> None:
        with self._lock:
            workers, self._workers = list(self._workers.values()), {}
        for w in workers:
            w.stopped = True
            w.event.set()
        for w in workers:
            w.thread.join(timeout=5.0)

    def _effect_changed(self) -> None:
        if self.effect.value != "None" and not self.load_renderer():
            self.effect.value = "None"
            return
        self.host.set_clouds_hidden(self.active)  # redraws: the client-side clouds would double-draw
        if not self.active:
            for client in self.server.get_clients().values():
                client.scene.set_background_image(None)
        self.scene_changed()

    def scene_changed(self) -> None:
        """Frame, mode or settings changed: re-render (full resolution) for every browser."""
        if not self.active:
            return
        with self._lock:
            workers = list(self._workers.values())
        for w in workers:
            w.request(moving=False)

    def render_for(self, client: Any, *, moving: bool) -> np.ndarray | None:
        """Render the current effect from ``client``'s camera and show it as its background image."""
        if not self.active:
            return None
        host = self.host
        cam_h = client.camera
        side = int(self.max_side.value)
        if moving:
            side = max(64, int(side * self.setup.moving_scale))
        cam = effect_camera(cam_h.wxyz, cam_h.position, float(cam_h.fov), float(cam_h.aspect), side)
        pts = host.displayed_world_points()
        t0 = time.perf_counter()
        img = render_effect(pts.points, pts.colors, cam, effect=str(self.effect.value),
                            focus_distance=float(self.focus.value), aperture=float(self.aperture.value),
                            dolly_strength=float(self.strength.value), subject_distance=float(self.subject.value),
                            device=host.device)
        ms = (time.perf_counter() - t0) * 1e3
        client.scene.set_background_image(img, format="jpeg", jpeg_quality=60 if moving else 85)
        host.report_render_ms(ms)
        self.status.content = f"{self.effect.value}: {cam.width}×{cam.height} in {ms:.0f} ms ({host.device})"
        self.last_image = img
        return img

    def _arm_pick(self, client: Any) -> None:
        """The next click in ``client``'s scene sets the focus (and subject) distance to the picked point."""
        if client is None:
            return
        self.status.content = "Click a point to focus on it."

        @client.scene.on_click()
        def _(event: Any) -> None:
            client.scene.remove_click_callback(_)
            self.focus_on_ray(np.asarray(event.ray_origin), np.asarray(event.ray_direction), client)

    def focus_on_ray(self, origin: np.ndarray, direction: np.ndarray, client: Any = None) -> float | None:
        """Set focus and subject distance to the z-depth (along ``direction`` (3,)) of the shown point
        nearest the click ray; returns it, or None when the ray hits nothing."""
        pts = self.host.displayed_world_points()
        i = ray_pick(pts.points, origin, direction, max_angle=0.02)
        if i is None:
            self.status.content = "No point there; focus unchanged."
            return None
        forward = direction / np.linalg.norm(direction)
        if client is not None:
            try:
                R = T_world_camera_from_view(client.camera.wxyz, client.camera.position)[:3, :3]
                forward = R[:, 2]
            except AssertionError:
                pass
        z = float((pts.points[i] - origin) @ forward)
        z = float(np.clip(z, self.focus.min, self.focus.max))
        self.focus.value = z
        self.subject.value = float(np.clip(z, self.subject.min, self.subject.max))
        self.status.content = f"Focus set to {z:.3f}"
        return z
