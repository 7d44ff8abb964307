"""Posing the frames the mapper left out: PnP re-registration, then rotation-only / interpolation fill.

Order of attempts for an unregistered frame t:
1. ``pnp``: its keypoints matched to keypoints of registered frames that observe model points give
   2D-3D correspondences; LO-RANSAC PnP + refinement with the shared camera (pycolmap).
2. ``homography``: the homography to the nearest posed frame s gives the relative rotation of a
   rotating camera, H ~ K R_ts K^-1 (projected to SO(3)); the position is interpolated between the
   nearest posed frames before and after (held when only one side exists).
3. ``interpolated``: rotation slerp and position lerp between the nearest posed frames (or held).
"""

from __future__ import annotations

import cv2
import numpy as np

from vid3d.formats.conventions import R_to_quat_wxyz, make_T, quat_wxyz_to_R
from vid3d.optimizer.robust import robust_fit


def _slerp(q0: np.ndarray, q1: np.ndarray, a: float) -> np.ndarray:
    """Spherical interpolation of unit wxyz quaternions (4,) at fraction a."""
    d = float(np.dot(q0, q1))
    if d < 0:
        q1, d = -q1, -d
    if d > 0.9995:
        q = q0 + a * (q1 - q0)
        return q / np.linalg.norm(q)
    th = np.arccos(d)
    return (np.sin((1 - a) * th) * q0 + np.sin(a * th) * q1) / np.sin(th)


def interpolate_pose(poses: dict[int, np.ndarray], t: int) -> np.ndarray:
    """Pose (4, 4) at frame t from the nearest posed frames before/after (slerp + lerp, or held)."""
    before = [s for s in poses if s < t]
    after = [s for s in poses if s > t]
    if before and after:
        a_, b_ = max(before), min(after)
        a = (t - a_) / (b_ - a_)
        q = _slerp(R_to_quat_wxyz(poses[a_][:3, :3]), R_to_quat_wxyz(poses[b_][:3, :3]), a)
        c = (1 - a) * poses[a_][:3, 3] + a * poses[b_][:3, 3]
        return make_T(quat_wxyz_to_R(q), c)
    s = max(before) if before else min(after)
    return poses[s].copy()


def position_interpolated(poses: dict[int, np.ndarray], t: int) -> np.ndarray:
    """Camera centre (3,) at frame t, interpolated between posed neighbours (or held)."""
    return interpolate_pose(poses, t)[:3, 3]


def _pair_matches(matches, i: int, j: int) -> np.ndarray | None:
    """Keypoint index pairs (M, 2) between frames i and j, columns in (i, j) order."""
    for a, b, idx in matches:
        if a == i and b == j:
            return idx
        if a == j and b == i:
            return idx[:, ::-1]
    return None


def pnp_register(t: int, graph, model_obs: dict[int, dict[int, int]], points_world: np.ndarray, camera,
                 *, min_inliers: int) -> np.ndarray | None:
    """Register frame t by PnP against model points seen by its matched, registered frames.

    Args:
        graph: MatchGraph (keypoints + matches).
        model_obs: registered frame -> {keypoint index: point index}.
        points_world: (N, 3) model points.
    Returns:
        T_world_camera (4, 4), or None when too few inliers.
    """
    import pycolmap

    from .colmap import T_world_camera_from_rigid

    corr: dict[int, int] = {}
    for s, kp2pt in model_obs.items():
        idx = _pair_matches(graph.matches, t, s)
        if idx is None:
            continue
        for kt, ks in idx:
            p = kp2pt.get(int(ks))
            if p is not None and int(kt) not in corr:
                corr[int(kt)] = p
    if len(corr) < min_inliers:
        return None
    kt = np.fromiter(corr.keys(), dtype=np.int64)
    pts2 = graph.kps[t][kt]
    pts3 = points_world[np.fromiter(corr.values(), dtype=np.int64)]
    est = pycolmap.AbsolutePoseEstimationOptions()
    est.ransac.max_error = 8.0
    ref = pycolmap.AbsolutePoseRefinementOptions()
    ref.refine_focal_length = False
    ref.refine_extra_params = False
    out = pycolmap.estimate_and_refine_absolute_pose(pts2, pts3, camera, est, ref)
    if out is None or int(out["num_inliers"]) < min_inliers:
        return None
    return T_world_camera_from_rigid(out["cam_from_world"])


def homography_rotation(graph, t: int, s: int, K: np.ndarray, *, min_inliers: int = 15) -> np.ndarray | None:
    """Rotation R_s_t (3, 3) mapping camera-t directions to camera-s directions, from H ~ K R K^-1.

    None when fewer than ``min_inliers`` matches support the homography.
    """
    idx = _pair_matches(graph.matches, t, s)
    if idx is None or len(idx) < min_inliers:
        return None
    x_t = graph.kps[t][idx[:, 0]]
    x_s = graph.kps[s][idx[:, 1]]
    H, inl = robust_fit(cv2.findHomography, x_t, x_s, cv2.RANSAC, 3.0)
    if H is None or inl is None or int(inl.sum()) < min_inliers:
        return None
    M = np.linalg.inv(K) @ H @ K  # ~ lambda * R_s_t
    U, _, Vt = np.linalg.svd(M)
    R = U @ Vt
    if np.linalg.det(R) < 0:
        R = -R
    return R


def fill_missing(poses: dict[int, np.ndarray], num_frames: int, graph, K: np.ndarray, *, rotation_only: bool
                 ) -> tuple[dict[int, np.ndarray], dict[int, str]]:
    """Fill every unposed frame; returns (all poses, {frame: "homography" | "interpolated"}).

    Frames are filled outward from the posed ones, so a run of missing frames chains homographies.
    """
    poses = dict(poses)
    how: dict[int, str] = {}
    missing = [t for t in range(num_frames) if t not in poses]
    while missing:
        # the missing frame closest to a posed frame first
        t = min(missing, key=lambda m: min(abs(m - s) for s in poses))
        near = sorted(poses, key=lambda s: abs(s - t))[:3]
        done = False
        if rotation_only:
            for s in near:
                R_s_t = homography_rotation(graph, t, s, K)
                if R_s_t is not None:
                    R_world_t = poses[s][:3, :3] @ R_s_t
                    poses[t] = make_T(R_world_t, position_interpolated(poses, t))
                    how[t] = "homography"
                    done = True
                    break
        if not done:
            poses[t] = interpolate_pose(poses, t)
            how[t] = "interpolated"
        missing.remove(t)
    return poses, how
