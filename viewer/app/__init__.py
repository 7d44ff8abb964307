"""The browser viewer (viser): ``ViewerSession(path, ViewerConfig()).start()`` serves a capture.

Layout: ``config`` (frozen configs, presets), ``source`` (the open bundle, frame LRU, ray cache),
``view_geometry`` (poses <-> viser camera), ``session`` (the state and its command API), ``commands``
(the Protocols the parts see the session through, the observer lists), ``gui`` (panels), ``playback``
(the play thread), ``effects_panel`` (bokeh / dolly zoom through the renderer). Frame -> points is
:mod:`vid3d.viewer.points`, shared with the renderer.
"""

from vid3d.viewer.app.config import DISPLAY_MODES, VIEWER_PRESETS, PointFilter, ViewerConfig
from vid3d.viewer.app.session import SessionStats, ViewerSession

__all__ = ["DISPLAY_MODES", "VIEWER_PRESETS", "PointFilter", "SessionStats", "ViewerConfig", "ViewerSession"]
