"""vid3d.viewer.points: bundle frames -> coloured point sets, shared by the browser viewer and the renderer.

Layout: ``filter`` (:class:`PointFilter`), ``frame`` (:class:`FramePoints`; one frame's points: numpy and
torch fast paths, the slow twin :func:`frame_points_reference`), ``outliers`` (statistical outlier removal
and its brute-force twin), ``world`` (:func:`to_world`, :func:`fuse_points`), ``bundle`` (from the reader's
``Frame``: :func:`points_of_frame` for the viewer, :func:`world_points` / :func:`background_points` for the
renderer). Pure functions; torch is imported only by the torch paths.
"""

from vid3d.viewer.points.bundle import (
    PIXELS,
    background_points,
    frame_depth,
    frame_select,
    point_fields,
    points_of_frame,
    world_points,
)
from vid3d.viewer.points.filter import PointFilter
from vid3d.viewer.points.frame import (
    FramePoints,
    evenly_spaced,
    frame_points,
    frame_points_reference,
    frame_points_torch,
    percentile_lower,
    pixel_rays,
)
from vid3d.viewer.points.outliers import statistical_outlier_mask, statistical_outlier_mask_reference
from vid3d.viewer.points.world import fuse_points, to_world

__all__ = [
    "PIXELS", "FramePoints", "PointFilter", "background_points", "evenly_spaced", "frame_depth", "frame_points",
    "frame_points_reference", "frame_points_torch", "frame_select", "fuse_points", "percentile_lower",
    "pixel_rays", "point_fields", "points_of_frame", "statistical_outlier_mask",
    "statistical_outlier_mask_reference", "to_world", "world_points",
]
