"""Playback: a daemon thread that advances the frame at ``session.fps`` while ``playing`` is set.

It moves the GUI's frame slider (so every browser's slider follows), which runs the same callback
as a user's scrub. At the last frame it wraps when ``session.loop`` is set, else it stops playing.
"""

from __future__ import annotations

import threading
import time
from typing import Any


class Playback:
    """Drives ``session`` in time. ``playing`` may be set from any thread; :meth:`stop` ends the thread."""

    def __init__(self, session: Any) -> None:
        self.session = session
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
        T = self.session.num_frames
        if t + 1 < T:
            return t + 1
        return 0 if self.session.loop else None

    def _run(self) -> None:
        s = self.session
        while not self._stop.is_set():
            if not self.playing:
                self._stop.wait(0.02)
                continue
            t0 = time.perf_counter()
            nxt = self.next_frame(s.t)
            if nxt is None:
                if s.gui is not None:
                    s.gui.playing.value = False  # its callback re-enables the slider and clears `playing`
                self.playing = False
                continue
            try:
                if s.gui is not None:
                    s.gui.timestep.value = nxt  # runs the slider callback here, synchronously
                else:
                    s.set_frame(nxt)
            except Exception as exc:  # keep serving; say why playback stopped
                self.playing = False
                print(f"vid3d view: playback stopped: {type(exc).__name__}: {exc}")
                continue
            period = 1.0 / max(1e-3, float(s.fps))
            self._stop.wait(max(0.0, period - (time.perf_counter() - t0)))
