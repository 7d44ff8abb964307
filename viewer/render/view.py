"""One rendered view: splat, fill holes (other frames, then pull-push), optional bokeh."""

from __future__ import annotations

from typing import Sequence

import torch

from vid3d.viewer.render.bokeh import BokehSettings
from vid3d.viewer.render.bokeh import bokeh as apply_bokeh
from vid3d.viewer.render.camera import Camera
from vid3d.viewer.render.holes import fill_from, pull_push_fill
from vid3d.viewer.render.splat import RenderResult, splat


def render_view(
    points: torch.Tensor,
    colors: torch.Tensor,
    cam: Camera,
    *,
    bokeh: BokehSettings | None = None,
    point_radius_px: int = 1,
    fill_holes: bool = True,
    background_points: torch.Tensor | None = None,
    background_colors: torch.Tensor | None = None,
    background: Sequence[float] = (0.0, 0.0, 0.0),
) -> RenderResult:
    """Render ``points`` (N, 3) with ``colors`` (N, 3) into ``cam``, then fill holes and apply bokeh.

    ``background_points`` (M, 3) / ``background_colors`` (M, 3): static points from other frames of
    the capture, used where the main points left a pixel empty (disocclusions) and, with ``bokeh``,
    depth-peeled as the hidden surface a blurred foreground partly reveals. Remaining holes
    are pull-push filled from farther neighbours when ``fill_holes``. Returns a :class:`RenderResult`
    whose ``rgb`` (H, W, 3) is final, ``depth`` (H, W) is filled where rgb was, and ``index`` (H, W)
    is the main point index (>= 0), ``-2 - j`` for background point j, or -1 for pull-push / empty.
    """
    res = splat(points, colors, cam, point_radius_px=point_radius_px, background=background)
    have_bg = background_points is not None and background_colors is not None and background_points.shape[0] > 0
    if have_bg:
        res = fill_from(res, splat(background_points, background_colors, cam,
                                   point_radius_px=point_radius_px, background=background))
    rgb, depth = res.rgb, res.depth
    if fill_holes:
        valid = res.index != -1
        filled_rgb, filled_depth = pull_push_fill(rgb, depth, valid)
        anything = valid.any()  # stays on the device: no sync
        rgb = torch.where(anything, filled_rgb, rgb)
        depth = torch.where(anything, filled_depth, depth)
    if bokeh is not None:
        hidden = None
        if have_bg:  # depth-peel the other frames' static points: the background behind what is seen
            hidden = splat(background_points, background_colors, cam, point_radius_px=point_radius_px, peel_depth=depth)
        rgb = apply_bokeh(rgb, depth, bokeh, hidden_rgb=None if hidden is None else hidden.rgb,
                          hidden_depth=None if hidden is None else hidden.depth)
    return RenderResult(rgb=rgb, depth=depth, index=res.index)
