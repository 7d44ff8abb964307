"""The session's typed command API as its parts see it, and the observer lists that notify them.

The session (``session.py``) is the one holder of viewer state. The panels (``gui.py``,
``effects_panel.py``) and the play thread (``playback.py``) each get a narrow Protocol of it: commands to
call (``set_frame``, ``step``, ``play``...), state to read, and ``on_*`` registrations. They never assign
its fields. A frame change reaches every part as a notification (frame ``t`` was drawn), never by one
part moving another's widget: playback calls ``set_frame``, and the slider follows by observing.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, Callable, Generic, Protocol, TypeVar

if TYPE_CHECKING:
    from vid3d.viewer.points import FramePoints

T = TypeVar("T")
FrameCallback = Callable[[int], None]
"""Called with ``t`` after frame ``t`` was drawn: a new frame, or the same one redrawn after a setting changed."""
PlayingCallback = Callable[[bool], None]
"""Called with the new state when playback starts (True) or stops (False)."""
Unsubscribe = Callable[[], None]


class Observers(Generic[T]):
    """Callbacks of one kind, called in subscription order by :meth:`notify` (on the notifying thread)."""

    def __init__(self) -> None:
        self._callbacks: list[Callable[[T], None]] = []
        self._lock = threading.Lock()

    def subscribe(self, callback: Callable[[T], None]) -> Unsubscribe:
        """Add ``callback``; returns a function that removes it again."""
        with self._lock:
            self._callbacks.append(callback)

        def unsubscribe() -> None:
            with self._lock:
                if callback in self._callbacks:
                    self._callbacks.remove(callback)

        return unsubscribe

    def notify(self, value: T) -> None:
        with self._lock:
            callbacks = list(self._callbacks)
        for cb in callbacks:
            cb(value)

    def __len__(self) -> int:
        return len(self._callbacks)


class Timeline(Protocol):
    """What playback drives: the current frame, the clip's length and rate, and two commands."""

    @property
    def t(self) -> int: ...
    @property
    def num_frames(self) -> int: ...
    @property
    def fps(self) -> float: ...
    @property
    def loop(self) -> bool: ...
    def set_frame(self, t: int) -> None: ...
    def pause(self) -> None: ...


class ViewerControls(Timeline, Protocol):
    """What the GUI panels call: every command a control maps to, the info text, and the observers."""

    @property
    def playing(self) -> bool: ...
    def step(self, delta: int) -> None: ...
    def play(self) -> None: ...
    def set_fps(self, fps: float) -> None: ...
    def set_loop(self, loop: bool) -> None: ...
    def set_mode(self, mode: str) -> None: ...
    def set_filter(self, **changes: Any) -> None: ...
    def set_point_scale(self, scale: float) -> None: ...
    def set_follow(self, follow: bool) -> None: ...
    def set_cameras_visible(self, visible: bool) -> None: ...
    def set_frustum_images(self, on: bool) -> None: ...
    def reset_view(self, client: Any = None) -> None: ...
    def info_markdown(self) -> str: ...
    def on_frame_change(self, callback: FrameCallback) -> Unsubscribe: ...
    def on_playing_change(self, callback: PlayingCallback) -> Unsubscribe: ...


class EffectsHost(Protocol):
    """What the effects panel needs from the session: the shown points, the device, two commands."""

    @property
    def device(self) -> str: ...
    def displayed_world_points(self) -> FramePoints: ...
    def set_clouds_hidden(self, hidden: bool) -> None: ...
    def report_render_ms(self, ms: float) -> None: ...
    def on_frame_change(self, callback: FrameCallback) -> Unsubscribe: ...
