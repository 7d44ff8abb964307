"""Stage 7, prior: the initial depth of every frame, aligned to the SfM scale.

Config :class:`PriorConfig`, result :class:`PriorResult`, entry :func:`run`;
:func:`available_backends` says which backends are usable here and why not. Modules: ``geometric``
(plane sweep), ``fill`` (edge-aware fill), ``align`` (scale fits to SfM), ``learned`` (monocular
networks).
"""

from .align import Alignment, align_depth_to_sfm, align_disparity_to_sfm, fit_scale, fit_scale_shift_disparity
from .config import BACKENDS, PriorConfig, PriorResult
from .stage import available_backends, run

__all__ = [
    "BACKENDS", "Alignment", "PriorConfig", "PriorResult", "align_depth_to_sfm", "align_disparity_to_sfm",
    "available_backends", "fit_scale", "fit_scale_shift_disparity", "run",
]
