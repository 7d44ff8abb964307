"""The browser viewer (viser): ``ViewerSession(path, ViewerConfig()).start()`` serves a capture.

Layout: ``config`` (frozen configs, presets), ``source`` (bundle reading, frame cache),
``scene_data`` (pure depth -> points functions and their slow twins), ``view_geometry`` (poses <->
viser camera), ``session`` (the state), ``gui`` (panels), ``playback`` (the play thread),
``effects_panel`` (bokeh / dolly zoom through the renderer).
"""

from vid3d.viewer.app.config import DISPLAY_MODES, VIEWER_PRESETS, PointFilter, ViewerConfig
from vid3d.viewer.app.scene_data import (
    FramePoints,
    frame_points,
    frame_points_reference,
    fuse_points,
    statistical_outlier_mask,
    statistical_outlier_mask_reference,
    to_world,
)
from vid3d.viewer.app.session import SessionStats, ViewerSession

__all__ = [
    "DISPLAY_MODES", "VIEWER_PRESETS", "FramePoints", "PointFilter", "SessionStats", "ViewerConfig",
    "ViewerSession", "frame_points", "frame_points_reference", "fuse_points", "statistical_outlier_mask",
    "statistical_outlier_mask_reference", "to_world",
]
