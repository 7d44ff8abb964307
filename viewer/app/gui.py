"""The viewer's panels: playback, display, camera, effects (see ``effects_panel.py``) and info.

:func:`build_gui` adds the controls to a viser ``GuiApi`` and wires each to one command of a
:class:`~vid3d.viewer.app.commands.ViewerControls` (the session); it subscribes to the session's frame
and playing notifications to reflect them (slider, info text, play checkbox). :class:`GuiHandles` keeps
the handles (tests drive them exactly as a browser would: by setting ``.value``, which runs the same
callbacks). The GUI's own writes of reflected state are marked per thread, so their callbacks are
ignored: no slider -> session -> slider loop.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterator

import numpy as np

from vid3d.viewer.app.commands import ViewerControls
from vid3d.viewer.app.config import DISPLAY_MODES
from vid3d.viewer.points import PointFilter

_MODE_BY_LABEL = {label: key for key, label in DISPLAY_MODES.items()}


@dataclass(frozen=True)
class GuiSetup:
    """What the panels start from (the session's initial state; read once).

    Fields: num_frames, fps, loop, mode (key of DISPLAY_MODES), modes (the keys offered), filter,
    has_confidence, median_depth (sets the depth range's scale), show_frustums, frustum_images, follow.
    """

    num_frames: int
    fps: float
    loop: bool
    mode: str
    modes: tuple[str, ...]
    filter: PointFilter
    has_confidence: bool
    median_depth: float
    show_frustums: bool
    frustum_images: bool
    follow: bool


class _Echo:
    """Per-thread flag: set while the GUI writes state it reflects, whose callbacks must not fire commands."""

    def __init__(self) -> None:
        self._local = threading.local()

    @property
    def active(self) -> bool:
        return bool(getattr(self._local, "on", False))

    @contextmanager
    def __call__(self) -> Iterator[None]:
        before, self._local.on = self.active, True
        try:
            yield
        finally:
            self._local.on = before


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
    echo: _Echo = field(default_factory=_Echo)

    def reflect_frame(self, t: int, info: str) -> None:
        """Frame ``t`` was drawn: move the slider there (without re-firing it) and refresh the info text."""
        with self.echo():
            if int(self.timestep.value) != t:
                self.timestep.value = t
            self.info.content = info

    def reflect_playing(self, playing: bool) -> None:
        """Playback started or stopped: tick the checkbox (without re-firing it); lock scrubbing while playing."""
        with self.echo():
            self.playing.value = bool(playing)
            for c in (self.timestep, self.prev_button, self.next_button):
                c.disabled = bool(playing)


def _depth_filter_bounds(lo: float, hi: float, limit: float) -> tuple[float | None, float | None]:
    """Slider ends mean "no bound"."""
    return (None if lo <= 0.0 else float(lo), None if hi >= limit else float(hi))


def build_gui(gui: Any, controls: ViewerControls, setup: GuiSetup) -> GuiHandles:
    """Add all panels to ``gui`` (a started server's ``viser.GuiApi``) for ``controls``; return their handles."""
    flt, T = setup.filter, setup.num_frames
    gui.configure_theme(control_width="medium", show_logo=False)

    with gui.add_folder("Playback"):
        timestep = gui.add_slider("Frame", min=0, max=max(T - 1, 1), step=1, initial_value=0,
                                  disabled=T < 2, hint="Scrub through time (the number box takes typing too)")
        prev_button = gui.add_button("Prev", icon=None, hint="Previous frame (B)")
        next_button = gui.add_button("Next", hint="Next frame (N)")
        playing = gui.add_checkbox("Playing", initial_value=False, disabled=T < 2, hint="Play / pause (P)")
        fps = gui.add_slider("FPS", min=1, max=60, step=1, initial_value=int(round(min(60, max(1, setup.fps)))))
        loop = gui.add_checkbox("Loop", initial_value=setup.loop)

    with gui.add_folder("Display"):
        mode_options = [label for key, label in DISPLAY_MODES.items() if key in setup.modes]
        mode = gui.add_dropdown("Mode", options=mode_options, initial_value=DISPLAY_MODES[setup.mode])
        point_scale = gui.add_slider("Point size", min=0.25, max=4.0, step=0.05, initial_value=1.0,
                                     hint="Times the pixel footprint at the median depth")
        stride = gui.add_slider("Pixel stride", min=1, max=8, step=1, initial_value=int(flt.stride))
        max_points_k = gui.add_slider("Max points (k)", min=10, max=3000, step=10,
                                      initial_value=int(min(3000, max(10, round(flt.max_points / 1000)))))
        confidence = gui.add_slider("Drop low confidence %", min=0.0, max=95.0, step=1.0,
                                    initial_value=float(flt.confidence_percentile), disabled=not setup.has_confidence,
                                    hint="Percentile of /depth/confidence below which points are hidden")
        depth_limit = float(np.ceil(2.0 * max(setup.median_depth, 1e-3) * 4.0) / 2.0)
        depth_range = gui.add_multi_slider(
            "Depth range", min=0.0, max=depth_limit, step=depth_limit / 200.0,
            initial_value=(float(flt.depth_min or 0.0), float(min(flt.depth_max or depth_limit, depth_limit))),
            hint="Slider ends mean no bound")
        outliers = gui.add_checkbox("Remove outliers", initial_value=flt.remove_outliers,
                                    hint="Statistical outlier removal (k-NN distances); slower")

    with gui.add_folder("Camera"):
        show_cameras = gui.add_checkbox("Frustums + trajectory", initial_value=setup.show_frustums)
        frustum_images = gui.add_checkbox("Frustum images", initial_value=setup.frustum_images,
                                          hint="Frame images on the frustums (they cover the view from a camera)")
        follow = gui.add_checkbox("Follow recorded camera", initial_value=setup.follow)
        reset_view = gui.add_button("Reset view", hint="Back to the first frame's recorded camera")

    effects_folder = gui.add_folder("Effects", expand_by_default=False)
    with gui.add_folder("Info"):
        info = gui.add_markdown(controls.info_markdown())

    h = GuiHandles(timestep, prev_button, next_button, playing, fps, loop, mode, point_scale, stride,
                   max_points_k, confidence, depth_range, depth_limit, outliers, show_cameras, frustum_images, follow,
                   reset_view, info, effects_folder)

    @timestep.on_update
    def _(_event: Any) -> None:
        if not h.echo.active:
            controls.set_frame(int(timestep.value))

    prev_button.on_click(lambda _e: controls.step(-1))
    next_button.on_click(lambda _e: controls.step(+1))

    @playing.on_update
    def _(_event: Any) -> None:
        if h.echo.active:
            return
        if playing.value:
            controls.play()
        else:
            controls.pause()

    def toggle_playing() -> None:
        if controls.playing:
            controls.pause()
        else:
            controls.play()

    fps.on_update(lambda _e: controls.set_fps(float(fps.value)))
    loop.on_update(lambda _e: controls.set_loop(bool(loop.value)))
    mode.on_update(lambda _e: controls.set_mode(_MODE_BY_LABEL[mode.value]))
    point_scale.on_update(lambda _e: controls.set_point_scale(float(point_scale.value)))
    stride.on_update(lambda _e: controls.set_filter(stride=int(stride.value)))
    max_points_k.on_update(lambda _e: controls.set_filter(max_points=int(max_points_k.value) * 1000))
    confidence.on_update(lambda _e: controls.set_filter(confidence_percentile=float(confidence.value)))

    @depth_range.on_update
    def _(_event: Any) -> None:
        lo, hi = _depth_filter_bounds(*depth_range.value, depth_limit)
        controls.set_filter(depth_min=lo, depth_max=hi)

    outliers.on_update(lambda _e: controls.set_filter(remove_outliers=bool(outliers.value)))
    show_cameras.on_update(lambda _e: controls.set_cameras_visible(bool(show_cameras.value)))
    frustum_images.on_update(lambda _e: controls.set_frustum_images(bool(frustum_images.value)))
    follow.on_update(lambda _e: controls.set_follow(bool(follow.value)))
    reset_view.on_click(lambda e: controls.reset_view(e.client))

    # The session's notifications: the slider, the info text and the checkbox follow it.
    controls.on_frame_change(lambda t: h.reflect_frame(t, controls.info_markdown()))
    controls.on_playing_change(h.reflect_playing)

    # Keyboard: the command palette's hotkeys (arrow keys belong to viser's camera).
    try:
        gui.add_command("Play / pause", hotkey="P").on_trigger(lambda _e: toggle_playing())
        gui.add_command("Next frame", hotkey="N").on_trigger(lambda _e: controls.step(+1))
        gui.add_command("Previous frame", hotkey="B").on_trigger(lambda _e: controls.step(-1))
        gui.add_command("Reset view", hotkey="R").on_trigger(lambda e: controls.reset_view(e.client))
    except (AttributeError, TypeError, ValueError):  # older viser without the command palette
        pass
    return h
