"""Stage entry: ``run(frames, flows, config, poses=None) -> MaskResult``; the stage decides its masks.

Before poses (``poses=None``): the user's masks when given, else epipolar masks dilated (they only
keep SfM features off movers). After poses: the user's masks as given, else reprojection masks,
joined by the learned segmenter when the config asks for it and its weights are local.
"""

from __future__ import annotations

from vid3d.optimizer.flow import FlowSet
from vid3d.optimizer.frames import Frames

from .config import MaskConfig, MaskResult
from .epipolar import motion_masks_epipolar
from .reprojection import motion_masks_reprojection
from .segmenter import learned_segmenter
from .user import load_user_masks


def run(frames: Frames, flows: FlowSet, config: MaskConfig, *, poses=None, progress: bool = False) -> MaskResult:
    """Motion masks ``(T, H, W)`` of the clip.

    Args:
        frames: the clip (its size and source frame indices place user masks).
        flows: the clip's :class:`~vid3d.optimizer.flow.FlowSet`.
        poses: a ``PoseResult`` (K, T_world_camera) once SfM has run; None before.
    """
    if config.user_masks:
        m = load_user_masks(config.user_masks, frames.source_frames, frames.size)
        return MaskResult(masks=m, method="user", report={"source": str(config.user_masks)})
    if poses is None:
        m, report = motion_masks_epipolar(flows, config, dilate=True)
        return MaskResult(masks=m, method="epipolar", report=report)
    m, report = motion_masks_reprojection(flows, poses.K, poses.T_world_camera, config, rgb=frames.rgb,
                                          progress=progress)
    method = "reprojection"
    if config.segmenter == "auto":
        learned = learned_segmenter(frames.rgb)
        if learned is not None:
            m, method = m | learned, "reprojection+learned"
            report["learned_fraction"] = float(learned.mean())
        else:
            report["learned"] = "no local weights"
    return MaskResult(masks=m, method=method, report=report)
