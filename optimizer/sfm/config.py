"""Configuration and result of the camera stage (poses + intrinsics by structure from motion)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from vid3d.formats.errors import InputError

MATCHERS = ("auto", "exhaustive", "sequential")
CAMERA_MODELS = ("PINHOLE", "SIMPLE_PINHOLE")
FOCAL_INITS = ("self_calibration", "default")


@dataclass(frozen=True)
class SfmConfig:
    """How camera poses and the shared pinhole intrinsics are estimated (pycolmap, CPU).

    Attributes:
        max_num_features: SIFT features per frame at the working resolution.
        matcher: ``"exhaustive"`` (every pair), ``"sequential"`` (each frame with its ``overlap``
            successors, plus quadratic overlap 2^k as loop closure) or ``"auto"``: exhaustive up to
            ``exhaustive_max_frames`` frames, sequential above (COLMAP's vocab-tree loop detection needs
            a downloaded tree, so exhaustive matching stands in for it on short clips).
        exhaustive_max_frames: clip length up to which ``auto`` matches exhaustively.
        sequential_overlap: successors matched per frame by the sequential matcher.
        camera_model: ``"PINHOLE"`` (fx, fy, cx, cy) or ``"SIMPLE_PINHOLE"`` (f, cx, cy); one camera
            shared by every frame.
        focal_init: ``"self_calibration"``: the initial focal minimises the Mendonca-Cipolla
            essential-matrix criterion over the fundamental matrices of many frame pairs;
            ``"default"``: COLMAP's 1.2 x max(H, W).
        refine_focal: let bundle adjustment refine the focal length.
        refine_principal_point: let bundle adjustment refine the principal point (it starts at the
            image centre and is never forced back there).
        init_min_tri_angle: minimum triangulation angle (deg) of the initial pair (COLMAP default 16 is
            too strict for video, where neighbouring frames see the scene from similar places).
        abs_pose_min_num_inliers: 2D-3D inliers needed to register a frame in the mapper.
        min_num_matches: verified matches a pair needs to be used by the mapper.
        try_both_focal_inits: also map with COLMAP's default focal and keep the reconstruction that
            registers more frames (ties: lower reprojection error). Doubles mapping time.
        second_focal_init: when self-calibration gives no focal, also map from this fraction of the
            long side and keep the better reconstruction (more frames, then lower reprojection error);
            0 = off. Full-size forward walk: from 1.2 x the long side bundle adjustment settled 31 %
            off (reprojection 0.60 px, two models), from 0.75 x 1.5 % off (0.27 px, one model).
        pnp_min_num_inliers: inliers needed to re-register a frame left out by the mapper (PnP against
            the chosen model's points, looser than the mapper).
        fill_rotation_only: frames that stay unregistered get a rotation from a homography to the
            nearest posed frame and an interpolated position (reported as ``homography``); otherwise
            they get interpolated poses (reported as ``interpolated``).
        pan_bundle_adjustment: a clip concluded to be a pan gets a rotation-only bundle adjustment
            (``pan_ba.refine_pan``): every frame's rotation and the focal (when the rotations observe
            it) from every verified match at once, after the homography chain that starts it. The
            frames it poses count as registered; the report gives the transfer error before / after.
        pan_ba_matches_per_pair: verified matches per frame pair used by that adjustment (drawn at
            random, seeded, where a pair has more).
        min_registered_fraction: below this fraction of frames registered by SfM + PnP, the clip is
            treated as unsolvable by SfM: a rotation-only (panorama) solution is tried for all frames,
            and if that fails too an InputError says why.
        pan_max_translation: a reconstruction whose camera centres span less than this fraction of
            the median scene depth is a pan (tripod): its translation is noise, and the clip gets the
            rotation-only solution. The mapper always runs first; the report says which test decided.
        focal_min_rotation_deg: a reconstruction whose cameras turn less than this (deg) has no
            information on the focal (pure translation: focal and depth trade off); it is mapped again
            with the focal assumed (1.2 x the long side) and the report says so.
        pan_max_rotation_travel: when every frame pair's homography is a rotation (none has parallax),
            a reconstruction travelling less than this fraction of the median scene depth is a pan too.
        remask: map the clip again with the motion masks computed from the first poses (stage 6,
            ``remask.run_remasked``) when they newly flag pixels that held the first mapping's
            features (``remask_min_observations``), and
            keep that unless it poses fewer frames or concludes a pan. Epipolar masks miss movers that
            move along their epipolar lines; synthetic walkers: ATE 0.52 -> 0.19 % of the path.
        remask_min_observations: the fraction of the first mapping's observations (a sparse point
            seen in a frame) that must lie on pixels the masks after poses newly flag (flagged after,
            not before) for the second mapping to run: where none of the first mapping's features
            are newly masked, mapping again would give the same model. Measured: walkers 0.3-0.6 %,
            rollercoaster 0.29 %, dynamic 0.13-0.19 %; HoloLens (static, a few false flags) 0.05 %.
        remask_max_focal_change: a second mapping whose focal differs from the first's by more than
            this fraction is not kept: removing a few features should not move a focal the clip
            constrains (full-size walkers 1.6 %, demo 0.5 %; the 64x96 walkers jumped 20 %, to 26 % off).
        ba_global_ratio: the mapper runs a global bundle adjustment each time the model has grown
            by this factor in frames or points (COLMAP's ``ba_global_frames_ratio`` and
            ``ba_global_points_ratio``, default 1.1). 1.3: apple (50 f, 512 px) maps in 25 s
            instead of 34 s, HoloLens ATE 0.747 -> 0.757 %; the final global adjustment is unchanged.
        pan_max_rotation_rms_px: when every frame pair is a rotation but the reconstruction travelled
            more than ``pan_max_rotation_travel``, the rotation-only model (homography chain and its
            bundle adjustment) is fitted to every verified match; below this RMS transfer error (px)
            no parallax is visible anywhere and the clip is a pan (tiny synthetic pan: 0.38 px, while
            the mapper had made up a travel of 0.11 x the scene depth over 6 of its 12 frames).
        refine: refine the chosen model after mapping (``refine.refine``): a robust bundle adjustment
            of poses, points and focal under a Cauchy loss, optionally after the keypoints were
            adjusted along their tracks. COLMAP's final bundle adjustment has no robust loss, and SIFT
            keypoints are heavy-tailed (against ground-truth poses 0.16 px median, 0.44 px RMS).
            Synthetic families (15 clips): ATE 0.65 x (better on 14), with the keypoints 0.48 x
            (better on 14 of 14); HoloLens ATE 0.757 -> 0.699 %.
        refine_loss_px: scale of that Cauchy loss in pixels (0.5: synthetic ATE 0.65 x, 1.0: 0.71 x;
            HoloLens 0.699 / 0.715 %).
        refine_keypoints: before that adjustment, align every observation of a track to the track's
            middle observation by Lucas-Kanade (``refine.adjust_keypoints``); kept only when the tracks
            then agree better (lower median reprojection error).
            Off by default since corner tracks: with them it moved the focal about -0.5 % on the
            static family (seeds 1-2: 0.04 / 0.07 % off without, 0.40 / 0.43 % with).
        refine_keypoint_window: side of the Lucas-Kanade window (odd, pixels; 9 of 7, 9, 13 did best).
        refine_keypoint_max_shift_px: an alignment moving a keypoint further than this is rejected.
        refine_tracks: after that adjustment, add corner tracks (``tracks.py``: Shi-Tomasi corners of
            every ``refine_track_step``-th frame followed by Lucas-Kanade up to ``refine_track_span``
            frames both ways) and adjust again; kept when the mapper's observations then agree with
            the model nearly as well (``refine_track_max_error_growth``). Against ground truth the
            tracks are 0.08 px median / 0.15 px RMS off, the SIFT keypoints 0.17 / 0.37 px, and there
            are 2-3 x as many observations: the weakly observed focal gains most (README, "Corner
            tracks").
        refine_track_step: a reference frame every this many registered frames.
        refine_track_span: frames followed on each side of a reference (one after the other; a
            corner stops where it is lost).
        refine_track_corners: Shi-Tomasi corners per reference frame (at most).
        refine_track_window: side of the Lucas-Kanade window (odd, pixels).
        refine_track_fb_px: a corner whose forward-backward alignment disagrees by more than this
            (pixels) stops there.
        refine_track_max_error_px: a track is dropped when any of its observations reprojects further
            than this from its triangulated point (before the adjustment).
        refine_track_min_angle_deg: a track is dropped when its rays are never this far apart.
        refine_track_max_error_growth: the tracks are kept when the median reprojection error of the
            mapper's observations grows by at most this fraction.
        refine_principal_point_robust: let the robust adjustment of the refinement also refine the
            principal point (``refine_principal_point`` holds it for the mapper and for this
            adjustment alike). Off: measured with the families benchmark (session 11) it helps HoloLens
            (ATE 0.706 -> 0.441 %, its point 13.8 -> 3.6 px from the true one) but is mixed on the
            synthetic families (ATE better on 11 of 17 clips, focal on 7 of 15), and at 64x96 the
            point went 8.9 px off.
        refine_max_focal_change: a refinement that moves the focal by more than this fraction is not
            kept: the clip barely constrains the model (forward motion at 64x96 moved it 42 %, from 10
            to 37 % off). Moves that correct a focal are smaller: the 64x96 orbit 8 % (from 8 to 0.8 %
            off), the full-size families 0.2-1.6 %.
        normalize_scale: rescale the world so that the median depth of the sparse points is 1.
        mapper_seconds_per_frame: one incremental mapping stops after this many seconds per frame
            (at least 60 s) and keeps the models it has built; 0 = no limit. Mapping a pan from a focal
            far from its own (the bear clip from 1.2 x the long side, 576 px against ~1070) ran past
            400 s for 82 frames, trying initial pairs for model after small model; a normal clip maps
            in 0.1-0.5 s per frame. The report says when a mapping hit the limit.
        num_threads: CPU threads for extraction, matching and mapping.
        seed: random seed of COLMAP's RANSAC and mapper.
    """

    max_num_features: int = 4096
    matcher: str = "auto"
    exhaustive_max_frames: int = 60
    sequential_overlap: int = 10
    camera_model: str = "SIMPLE_PINHOLE"
    focal_init: str = "self_calibration"
    refine_focal: bool = True
    refine_principal_point: bool = False
    init_min_tri_angle: float = 4.0
    abs_pose_min_num_inliers: int = 20
    min_num_matches: int = 15
    try_both_focal_inits: bool = False
    second_focal_init: float = 0.75
    pnp_min_num_inliers: int = 12
    fill_rotation_only: bool = True
    pan_bundle_adjustment: bool = True
    pan_ba_matches_per_pair: int = 200
    min_registered_fraction: float = 0.3
    pan_max_translation: float = 0.02
    pan_max_rotation_travel: float = 0.1
    pan_max_rotation_rms_px: float = 1.0
    focal_min_rotation_deg: float = 1.0
    remask: bool = True
    remask_min_observations: float = 0.001
    remask_max_focal_change: float = 0.05
    ba_global_ratio: float = 1.3
    refine: bool = True
    refine_loss_px: float = 0.5
    refine_keypoints: bool = False
    refine_keypoint_window: int = 9
    refine_keypoint_max_shift_px: float = 1.5
    refine_tracks: bool = True
    refine_track_step: int = 4
    refine_track_span: int = 12
    refine_track_corners: int = 1500
    refine_track_window: int = 9
    refine_track_fb_px: float = 0.2
    refine_track_max_error_px: float = 2.0
    refine_track_min_angle_deg: float = 1.0
    refine_track_max_error_growth: float = 0.1
    refine_max_focal_change: float = 0.2
    refine_principal_point_robust: bool = False
    normalize_scale: bool = True
    mapper_seconds_per_frame: float = 3.0
    num_threads: int = 2
    seed: int = 0

    def __post_init__(self) -> None:
        if self.matcher not in MATCHERS:
            raise InputError(f"SfmConfig.matcher must be one of {MATCHERS}, got {self.matcher!r}")
        if self.camera_model not in CAMERA_MODELS:
            raise InputError(f"SfmConfig.camera_model must be one of {CAMERA_MODELS}, got {self.camera_model!r}")
        if self.focal_init not in FOCAL_INITS:
            raise InputError(f"SfmConfig.focal_init must be one of {FOCAL_INITS}, got {self.focal_init!r}")
        if self.max_num_features < 100:
            raise InputError(f"SfmConfig.max_num_features must be >= 100, got {self.max_num_features}")
        if self.second_focal_init != 0.0 and not 0.2 <= self.second_focal_init <= 3.0:
            raise InputError(f"SfmConfig.second_focal_init must be 0 (off) or a fraction of the long side in "
                             f"[0.2, 3], got {self.second_focal_init}")
        if not self.mapper_seconds_per_frame >= 0:
            raise InputError(f"SfmConfig.mapper_seconds_per_frame must be >= 0 (0 = no limit), got "
                             f"{self.mapper_seconds_per_frame}")
        if self.pan_ba_matches_per_pair < 10:
            raise InputError(f"SfmConfig.pan_ba_matches_per_pair must be >= 10, got {self.pan_ba_matches_per_pair}")
        if not 0.0 <= self.remask_min_observations <= 1.0:
            raise InputError(f"SfmConfig.remask_min_observations must be in [0, 1], got "
                             f"{self.remask_min_observations}")
        if not self.remask_max_focal_change >= 0:
            raise InputError(f"SfmConfig.remask_max_focal_change must be >= 0, got {self.remask_max_focal_change}")
        if not 1.0 < self.ba_global_ratio <= 3.0:
            raise InputError(f"SfmConfig.ba_global_ratio must be in (1, 3], got {self.ba_global_ratio}")
        if not self.pan_max_rotation_rms_px >= 0:
            raise InputError(f"SfmConfig.pan_max_rotation_rms_px must be >= 0, got {self.pan_max_rotation_rms_px}")
        if not self.refine_loss_px > 0:
            raise InputError(f"SfmConfig.refine_loss_px must be > 0 pixels, got {self.refine_loss_px}")
        if self.refine_keypoint_window < 3 or self.refine_keypoint_window % 2 == 0:
            raise InputError(f"SfmConfig.refine_keypoint_window must be an odd number >= 3, got "
                             f"{self.refine_keypoint_window}")
        if not self.refine_keypoint_max_shift_px > 0:
            raise InputError(f"SfmConfig.refine_keypoint_max_shift_px must be > 0, got "
                             f"{self.refine_keypoint_max_shift_px}")
        for name in ("refine_track_step", "refine_track_span", "refine_track_corners"):
            if getattr(self, name) < 1:
                raise InputError(f"SfmConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.refine_track_window < 3 or self.refine_track_window % 2 == 0:
            raise InputError(f"SfmConfig.refine_track_window must be an odd number >= 3, got {self.refine_track_window}")
        for name in ("refine_track_fb_px", "refine_track_max_error_px"):
            if not getattr(self, name) > 0:
                raise InputError(f"SfmConfig.{name} must be > 0 pixels, got {getattr(self, name)}")
        for name in ("refine_track_min_angle_deg", "refine_track_max_error_growth"):
            if not getattr(self, name) >= 0:
                raise InputError(f"SfmConfig.{name} must be >= 0, got {getattr(self, name)}")
        if not self.refine_max_focal_change >= 0:
            raise InputError(f"SfmConfig.refine_max_focal_change must be >= 0, got {self.refine_max_focal_change}")
        if not 0.0 <= self.min_registered_fraction <= 1.0:
            raise InputError(f"SfmConfig.min_registered_fraction must be in [0, 1], got {self.min_registered_fraction}")

    def replace(self, **changes: Any) -> "SfmConfig":
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class PoseResult:
    """Camera poses and intrinsics of every frame.

    Attributes:
        T_world_camera: (T, 4, 4) float64 camera-to-world (OpenCV axes).
        K: (3, 3) float64 shared pinhole intrinsics at the working resolution (pixel centres +0.5).
        registered: (T,) bool, True where SfM posed the frame: the mapper, PnP re-registration, or,
            for a pan, the rotation-only bundle adjustment; the others were filled (see
            ``report["filled"]``).
        points_world: (N, 3) float64 sparse static points.
        points_rgb: (N, 3) uint8 their colours.
        report: what happened (registered count, models, focal, reprojection error, filled frames
            and how, timings) -- JSON-able.
        obs_frame: (M,) int64 frame index of each observation of a sparse point (exact visibility).
        obs_point: (M,) int64 index into ``points_world`` of each observation.
        obs_uv: (M, 2) float64 pixel position of each observation.
    """

    T_world_camera: np.ndarray
    K: np.ndarray
    registered: np.ndarray
    points_world: np.ndarray
    points_rgb: np.ndarray
    report: dict = field(default_factory=dict)
    obs_frame: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    obs_point: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    obs_uv: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))

    @property
    def num_frames(self) -> int:
        return int(self.T_world_camera.shape[0])
