"""Stage 4, poses: camera poses and shared pinhole intrinsics by structure from motion (pycolmap, CPU).

    frames (+ masks) -> SIFT -> matching -> focal self-calibration -> incremental mapping
      -> largest model -> PnP re-registration of the rest -> rotation-only / interpolation fill
      -> (optional) scale normalisation -> PoseResult

Config :class:`SfmConfig`, result :class:`PoseResult`, entry :func:`run`. Modules: ``colmap``
(pycolmap calls), ``focal`` (self-calibration), ``fill`` (PnP re-registration, filled poses).
"""

from .config import PoseResult, SfmConfig
from .stage import run

__all__ = ["PoseResult", "SfmConfig", "run"]
