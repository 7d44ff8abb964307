"""``PointFilter``: the knobs that turn one depth frame into points (frozen, validated at creation)."""

from __future__ import annotations

from dataclasses import dataclass

from vid3d.formats.errors import InputError


@dataclass(frozen=True)
class PointFilter:
    """How one depth frame becomes points.

    Fields:
        stride: keep every ``stride``-th pixel in x and y (1 = all pixels).
        max_points: most points kept per frame after the other filters (evenly spaced subset).
        confidence_percentile: drop the lowest p % of confidences (0 = keep all); ignored without
            ``/depth/confidence``.
        depth_min, depth_max: keep z-depth in ``[depth_min, depth_max]``; None = unbounded.
        remove_outliers: statistical outlier removal (like open3d's ``remove_statistical_outlier``).
        outlier_neighbors: neighbours k used for the mean distance.
        outlier_std_ratio: drop points whose mean k-NN distance exceeds mean + ratio * std.
    """

    stride: int = 2
    max_points: int = 500_000
    confidence_percentile: float = 0.0
    depth_min: float | None = None
    depth_max: float | None = None
    remove_outliers: bool = False
    outlier_neighbors: int = 16
    outlier_std_ratio: float = 2.0

    def __post_init__(self) -> None:
        if isinstance(self.stride, bool) or int(self.stride) != self.stride or self.stride < 1:
            raise InputError(f"stride must be a positive integer, got {self.stride!r}")
        if int(self.max_points) != self.max_points or self.max_points < 1:
            raise InputError(f"max_points must be a positive integer, got {self.max_points!r}")
        if not 0.0 <= float(self.confidence_percentile) < 100.0:
            raise InputError(f"confidence_percentile must be in [0, 100), got {self.confidence_percentile!r}")
        if self.depth_min is not None and self.depth_max is not None and self.depth_min > self.depth_max:
            raise InputError(f"depth_min ({self.depth_min}) must not exceed depth_max ({self.depth_max})")
        if int(self.outlier_neighbors) != self.outlier_neighbors or self.outlier_neighbors < 1:
            raise InputError(f"outlier_neighbors must be a positive integer, got {self.outlier_neighbors!r}")
        if not float(self.outlier_std_ratio) > 0.0:
            raise InputError(f"outlier_std_ratio must be > 0, got {self.outlier_std_ratio!r}")
