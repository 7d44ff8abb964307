"""Stage 4, poses: camera poses and shared pinhole intrinsics by structure from motion (pycolmap, CPU).

    frames (+ masks) -> SIFT -> matching -> focal self-calibration -> incremental mapping
      -> largest model -> PnP re-registration of the rest -> motion model (translating or pan)
      -> translating: rotation-only / interpolation fill of what is left
         pan: homography chain -> rotation-only bundle adjustment (rotations + focal, every match)
      -> (optional) scale normalisation -> PoseResult
    stage 6, poses remasked (``remask.run_remasked``): once the masks after poses flag materially more
      of the movers, the same pipeline again with those masks; kept unless it poses fewer frames

Config :class:`SfmConfig`, result :class:`PoseResult`, entry :func:`run`. Modules: ``colmap``
(pycolmap calls), ``focal`` (self-calibration), ``fill`` (PnP re-registration, filled poses), ``pan_ba`` (rotation-only bundle adjustment),
``remask`` (the second pass).
"""

from .config import PoseResult, SfmConfig
from .remask import run_remasked
from .stage import run

__all__ = ["PoseResult", "SfmConfig", "run", "run_remasked"]
