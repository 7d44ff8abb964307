"""Stage 3: camera poses and shared pinhole intrinsics by structure from motion (pycolmap, CPU).

``estimate_poses(rgb, masks, config, workdir) -> PoseResult``; see :mod:`.pipeline`.
"""

from .config import PRESETS, PoseResult, SfmConfig
from .pipeline import estimate_poses

__all__ = ["PRESETS", "PoseResult", "SfmConfig", "estimate_poses"]
