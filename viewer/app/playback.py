"""Playback: a daemon thread that advances the frame at ``timeline.fps`` while ``playing`` is set.

It drives the session only through its :class:`~vid3d.viewer.app.commands.Timeline` commands:
``set_frame(next)`` each period (every browser's slider follows by observing the frame change), and
``pause()`` at the last frame when ``timeline.loop`` is off, or when drawing a frame failed.
"""

from __future__ import annotations

import threading
import time

from vid3d.viewer.app.commands import Timeline


class Playback:
    """Drives ``timeline`` in time. ``playing`` is set by the session's ``play()`` / ``pause()``;
    :meth:`stop` ends the thread."""

    def __init__(self, timeline: Timeline) -> None:
        self.timeline = timeline
        self.playing = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="vid3d-playback", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout=5.0)

    def next_frame(self, t: int) -> int | None:
        """The frame after ``t``; None when playback must stop (last frame, no loop)."""
        if t + 1 < self.timeline.num_frames:
            return t + 1
        return 0 if self.timeline.loop else None

    def _halt(self) -> None:
        self.timeline.pause()  # observers (the GUI's checkbox) hear of it first
        self.playing = False

    def _run(self) -> None:
        tl = self.timeline
        while not self._stop.is_set():
            if not self.playing:
                self._stop.wait(0.02)
                continue
            t0 = time.perf_counter()
            nxt = self.next_frame(tl.t)
            if nxt is None:
                self._halt()
                continue
            try:
                tl.set_frame(nxt)
            except Exception as exc:  # keep serving; say why playback stopped
                print(f"vid3d view: playback stopped: {type(exc).__name__}: {exc}")
                self._halt()
                continue
            period = 1.0 / max(1e-3, float(tl.fps))
            self._stop.wait(max(0.0, period - (time.perf_counter() - t0)))
