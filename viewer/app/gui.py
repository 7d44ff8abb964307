"""The viewer's panels: playback, display, camera, effects (see ``effects_panel.py``) and info.

:func:`build_gui` adds the controls to ``session.server.gui`` and wires each to a session method;
:class:`GuiHandles` keeps the handles (tests drive them exactly as a browser would: by setting
``.value``, which runs the same callbacks).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from vid3d.viewer.app.config import DISPLAY_MODES

_MODE_BY_LABEL = {label: key for key, label in DISPLAY_MODES.items()}


@dataclass
class GuiHandles:
    """Handles of every control (viser GUI handles)."""

    timestep: Any
    prev_button: Any
    next_button: Any
    playing: Any
    fps: Any
    loop: Any
    mode: Any
    point_scale: Any
    stride: Any
    max_points_k: Any
    confidence: Any
    depth_range: Any
    depth_limit: float
    outliers: Any
    show_cameras: Any
    frustum_images: Any
    follow: Any
    reset_view: Any
    info: Any
    effects_folder: Any
    _syncing: bool = False

    def sync(self, session: Any) -> None:
        """Reflect the session's state (frame slider, info text) without re-firing callbacks."""
        self._syncing = True
        try:
            if int(self.timestep.value) != session.t:
                self.timestep.value = session.t
            self.info.content = session.info_markdown()
        finally:
            self._syncing = False


def _depth_filter_bounds(lo: float, hi: float, limit: float) -> tuple[float | None, float | None]:
    """Slider ends mean "no bound"."""
    return (None if lo <= 0.0 else float(lo), None if hi >= limit else float(hi))


def build_gui(session: Any) -> GuiHandles:
    """Add all panels for ``session`` (started server) and return their handles."""
    server, src, flt = session.server, session.source, session.filter
    gui = server.gui
    gui.configure_theme(control_width="medium", show_logo=False)
    T = src.num_frames

    with gui.add_folder("Playback"):
        timestep = gui.add_slider("Frame", min=0, max=max(T - 1, 1), step=1, initial_value=0,
                                  disabled=T < 2, hint="Scrub through time (the number box takes typing too)")
        prev_button = gui.add_button("Prev", icon=None, hint="Previous frame (B)")
        next_button = gui.add_button("Next", hint="Next frame (N)")
        playing = gui.add_checkbox("Playing", initial_value=False, disabled=T < 2, hint="Play / pause (P)")
        fps = gui.add_slider("FPS", min=1, max=60, step=1, initial_value=int(round(min(60, max(1, session.fps)))))
        loop = gui.add_checkbox("Loop", initial_value=session.loop)

    with gui.add_folder("Display"):
        mode_options = [label for key, label in DISPLAY_MODES.items()
                        if key != "static_dynamic" or src.has_dynamic]
        mode = gui.add_dropdown("Mode", options=mode_options, initial_value=DISPLAY_MODES[session.mode])
        point_scale = gui.add_slider("Point size", min=0.25, max=4.0, step=0.05, initial_value=1.0,
                                     hint="Times the pixel footprint at the median depth")
        stride = gui.add_slider("Pixel stride", min=1, max=8, step=1, initial_value=int(flt.stride))
        max_points_k = gui.add_slider("Max points (k)", min=10, max=3000, step=10,
                                      initial_value=int(min(3000, max(10, round(flt.max_points / 1000)))))
        confidence = gui.add_slider("Drop low confidence %", min=0.0, max=95.0, step=1.0,
                                    initial_value=float(flt.confidence_percentile), disabled=not src.has_confidence,
                                    hint="Percentile of /depth/confidence below which points are hidden")
        depth_limit = float(np.ceil(2.0 * max(session.median_depth, 1e-3) * 4.0) / 2.0)
        depth_range = gui.add_multi_slider(
            "Depth range", min=0.0, max=depth_limit, step=depth_limit / 200.0,
            initial_value=(float(flt.depth_min or 0.0), float(min(flt.depth_max or depth_limit, depth_limit))),
            hint="Slider ends mean no bound")
        outliers = gui.add_checkbox("Remove outliers", initial_value=flt.remove_outliers,
                                    hint="Statistical outlier removal (k-NN distances); slower")

    with gui.add_folder("Camera"):
        show_cameras = gui.add_checkbox("Frustums + trajectory", initial_value=session.config.show_frustums)
        frustum_images = gui.add_checkbox("Frustum images", initial_value=session.config.frustum_images,
                                          hint="Frame images on the frustums (they cover the view from a camera)")
        follow = gui.add_checkbox("Follow recorded camera", initial_value=session.follow)
        reset_view = gui.add_button("Reset view", hint="Back to the first frame's recorded camera")

    effects_folder = gui.add_folder("Effects", expand_by_default=False)
    with gui.add_folder("Info"):
        info = gui.add_markdown(session.info_markdown())

    h = GuiHandles(timestep, prev_button, next_button, playing, fps, loop, mode, point_scale, stride,
                   max_points_k, confidence, depth_range, depth_limit, outliers, show_cameras, frustum_images, follow,
                   reset_view, info, effects_folder)

    def step(delta: int) -> None:
        session.set_frame((session.t + delta) % T)

    @timestep.on_update
    def _(_event: Any) -> None:
        if not h._syncing:
            session.set_frame(int(timestep.value))

    prev_button.on_click(lambda _e: step(-1))
    next_button.on_click(lambda _e: step(+1))

    @playing.on_update
    def _(_event: Any) -> None:
        for c in (timestep, prev_button, next_button):
            c.disabled = bool(playing.value)
        session.playback.playing = bool(playing.value)

    @fps.on_update
    def _(_event: Any) -> None:
        session.fps = float(fps.value)

    @loop.on_update
    def _(_event: Any) -> None:
        session.loop = bool(loop.value)

    mode.on_update(lambda _e: session.set_mode(_MODE_BY_LABEL[mode.value]))
    point_scale.on_update(lambda _e: session.set_point_scale(float(point_scale.value)))
    stride.on_update(lambda _e: session.set_filter(stride=int(stride.value)))
    max_points_k.on_update(lambda _e: session.set_filter(max_points=int(max_points_k.value) * 1000))
    confidence.on_update(lambda _e: session.set_filter(confidence_percentile=float(confidence.value)))

    @depth_range.on_update
    def _(_event: Any) -> None:
        lo, hi = _depth_filter_bounds(*depth_range.value, depth_limit)
        session.set_filter(depth_min=lo, depth_max=hi)

    outliers.on_update(lambda _e: session.set_filter(remove_outliers=bool(outliers.value)))
    show_cameras.on_update(lambda _e: session.set_cameras_visible(bool(show_cameras.value)))
    frustum_images.on_update(lambda _e: session.set_frustum_images(bool(frustum_images.value)))
    follow.on_update(lambda _e: session.set_follow(bool(follow.value)))
    reset_view.on_click(lambda e: session.reset_view(e.client))

    # Keyboard: the command palette's hotkeys (arrow keys belong to viser's camera).
    try:
        gui.add_command("Play / pause", hotkey="P").on_trigger(lambda _e: setattr(playing, "value", not playing.value))
        gui.add_command("Next frame", hotkey="N").on_trigger(lambda _e: step(+1))
        gui.add_command("Previous frame", hotkey="B").on_trigger(lambda _e: step(-1))
        gui.add_command("Reset view", hotkey="R").on_trigger(lambda e: session.reset_view(e.client))
    except (AttributeError, TypeError, ValueError):  # older viser without the command palette
        pass
    return h
