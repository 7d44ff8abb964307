"""Bundle frames -> points: the one path from the reader's :class:`~vid3d.formats.bundle.Frame` (read with
``Bundle.frame(t, fields=...)``) to a :class:`FramePoints`, for both consumers:

- the browser viewer: :func:`points_of_frame`, numpy, camera coordinates, filtered (:class:`PointFilter`);
- the renderer: :func:`world_points` / :func:`background_points`, torch on the device, world coordinates,
  every valid pixel of the stride grid.

Which depth a bundle shows is the reader's one choice, ``Bundle.depth_field()`` (``"depth"``, else ``"prior"``).
"""

from __future__ import annotations

from typing import Any, Iterable

import numpy as np

from vid3d.formats.bundle import Bundle, Frame
from vid3d.formats.errors import InputError
from vid3d.viewer.points.filter import PointFilter
from vid3d.viewer.points.frame import FramePoints, frame_points, frame_points_torch
from vid3d.viewer.points.world import to_world

PIXELS = ("all", "static", "dynamic")
"""Which pixels become points: all, the static ones (not in the dynamic mask) or the dynamic ones.
Without a dynamic mask every choice means all."""


def point_fields(depth_field: str, *, confidence: bool = False, dynamic: bool = False) -> tuple[str, ...]:
    """The datasets a frame's points need (for ``Bundle.frame(t, fields=...)``): rgb and the depth
    field, plus the confidence and the dynamic mask when asked for."""
    return ("rgb", depth_field) + (("confidence",) if confidence else ()) + (("dynamic_mask",) if dynamic else ())


def frame_depth(frame: Frame, depth_field: str) -> np.ndarray:
    """z-depth ``(H, W)`` float32 of ``frame`` from ``depth_field`` (``"depth"`` or ``"prior"``)."""
    if depth_field not in ("depth", "prior"):
        raise InputError(f"depth field must be 'depth' or 'prior', got {depth_field!r}")
    d = frame.depth if depth_field == "depth" else frame.prior
    if d is None:
        raise InputError(f"frame {frame.index} was read without its {depth_field!r} dataset")
    return np.asarray(d, dtype=np.float32)


def frame_select(frame: Frame, pixels: str) -> np.ndarray | None:
    """``(H, W)`` bool selection for ``pixels`` (one of :data:`PIXELS`); None = every pixel."""
    if pixels not in PIXELS:
        raise InputError(f"pixels must be one of {list(PIXELS)}, got {pixels!r}")
    mask = frame.dynamic_mask
    if pixels == "all" or mask is None:
        return None
    return mask if pixels == "dynamic" else ~mask


def _rgb(frame: Frame) -> np.ndarray:
    if frame.rgb is None:
        raise InputError(f"frame {frame.index} was read without its 'rgb' dataset")
    return frame.rgb


def points_of_frame(frame: Frame, depth_field: str, *, flt: PointFilter, pixels: str = "all",
                    device: Any = "cpu", rays: np.ndarray | None = None) -> FramePoints:
    """Filtered points of a decoded frame in its camera's coordinates, as numpy (the viewer's path).

    Uses the frame's confidence when it was read. ``device`` and ``rays`` as in :func:`frame_points`.
    """
    return frame_points(frame_depth(frame, depth_field), _rgb(frame), frame.K, flt=flt, confidence=frame.confidence,
                        select=frame_select(frame, pixels), device=device, rays=rays)


def world_points(frame: Frame, depth_field: str, *, device: Any = "cpu", stride: int = 1,
                 pixels: str = "all") -> FramePoints:
    """Every valid pixel of the ``stride`` grid of a decoded frame as world points, torch tensors on
    ``device`` (``"auto"``, ``"cpu"``, ``"cuda"`` or a ``torch.device``): the renderer's input.

    ``p_world = R (z K^-1 [u + 0.5, v + 0.5, 1]) + t``; rows in pixel order.
    """
    from vid3d.runtime.device import resolve_device

    depth = frame_depth(frame, depth_field)
    flt = PointFilter(stride=stride, max_points=max(1, depth.size))
    fp = frame_points_torch(depth, _rgb(frame), frame.K, flt=flt, select=frame_select(frame, pixels),
                            device=resolve_device(device))
    return to_world(fp, frame.T_world_camera)


def background_points(bundle: Bundle, frames: Iterable[int], *, device: Any = "cpu", stride: int = 2,
                      depth_field: str | None = None) -> FramePoints:
    """Static world points of several frames together (the background hidden in any one frame), for hole
    filling: torch tensors on ``device``. Moving pixels are dropped when the bundle has a dynamic mask.

    ``depth_field`` defaults to ``bundle.depth_field()``; each frame is read with only the datasets it needs.
    """
    from vid3d.runtime.device import resolve_device

    field = depth_field or bundle.depth_field()
    dev = resolve_device(device)
    parts = [world_points(bundle.frame(t, fields=point_fields(field, dynamic=True)), field, device=dev,
                          stride=stride, pixels="static") for t in frames]
    return FramePoints.concat(parts) if parts else FramePoints.empty(dev)
