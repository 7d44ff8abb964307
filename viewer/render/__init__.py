"""vid3d.viewer.render: point splatting with a deterministic z-buffer (torch, CUDA or CPU), hole
filling, bokeh and dolly zoom, camera paths, and H.264 video output.

Modules: ``camera`` (Camera), ``splat`` (fast z-buffer) / ``splat_reference`` (slow twin),
``holes`` (other-frame and pull-push fill), ``bokeh`` / ``bokeh_reference``, ``dolly``, ``effects``
(orbit, depth colour map, side by side), ``view`` (render_view), ``video`` (atomic H.264 writer), ``clip``
(a whole bundle -> video). Its input points come from :mod:`vid3d.viewer.points` (``world_points``,
``background_points``); devices from :mod:`vid3d.runtime.device`.
"""

from vid3d.viewer.render.bokeh import BokehSettings, auto_focus_distance, bokeh, signed_coc
from vid3d.viewer.render.camera import Camera, cameras_from_bundle
from vid3d.viewer.render.dolly import background_scale, dolly_zoom_camera, dolly_zoom_path
from vid3d.viewer.render.effects import colorize_depth, depth_range, orbit_cameras, pullback_camera, side_by_side
from vid3d.viewer.render.holes import fill_from, pull_push_fill
from vid3d.viewer.render.splat import RenderResult, splat
from vid3d.viewer.render.video import VideoWriter, read_video
from vid3d.viewer.render.view import render_view

__all__ = [
    "BokehSettings", "Camera", "RenderResult", "VideoWriter", "auto_focus_distance", "background_scale", "bokeh",
    "cameras_from_bundle", "colorize_depth", "depth_range", "dolly_zoom_camera", "dolly_zoom_path", "fill_from",
    "orbit_cameras", "pull_push_fill", "pullback_camera", "read_video", "render_view", "side_by_side",
    "signed_coc", "splat",
]
