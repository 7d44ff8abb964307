"""Export a bundle to other tools' formats: PLY point cloud, COLMAP text model, TUM trajectory, npz.

Every exporter writes atomically (temporary name, then rename) and returns the written path.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from vid3d.formats.atomic import atomic_dir, atomic_file
from vid3d.formats.bundle import Bundle
from vid3d.formats.conventions import colmap_from_T_world_camera, tum_line_from_T_world_camera, unproject_depth
from vid3d.formats.errors import InputError

EXPORT_FORMATS = ("ply", "colmap", "tum", "npz")


def frame_points(
    bundle: Bundle, t: int, *, stride: int = 1, min_confidence: float = 0.0, depth_field: str | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """World points ``(N, 3)`` float32 and colours ``(N, 3)`` uint8 of frame ``t``.

    Unprojects the refined depth (or the prior when no refined depth exists) on a pixel grid
    decimated by ``stride``, keeping valid depth (> 0) and confidence >= ``min_confidence``.
    """
    field = depth_field or bundle.depth_field()
    frame = bundle.frame(t, fields=("rgb", field, "confidence"))
    depth = getattr(frame, field)
    points = unproject_depth(depth, frame.K, frame.T_world_camera)
    keep = depth > 0
    if frame.confidence is not None and min_confidence > 0:
        keep &= frame.confidence >= min_confidence
    sel = np.zeros_like(keep)
    sel[::stride, ::stride] = True
    keep &= sel
    return points[keep].astype(np.float32), frame.rgb[keep]


def write_ply(path: str | os.PathLike, points: np.ndarray, colors: np.ndarray) -> Path:
    """Binary little-endian PLY with ``x y z`` float32 and ``red green blue`` uint8 per vertex.

    Args:
        points: ``(N, 3)``. colors: ``(N, 3)`` uint8.
    """
    points = np.asarray(points, dtype="<f4")
    colors = np.asarray(colors, dtype=np.uint8)
    vertex = np.empty(len(points), dtype=[("x", "<f4"), ("y", "<f4"), ("z", "<f4"),
                                          ("red", "u1"), ("green", "u1"), ("blue", "u1")])
    vertex["x"], vertex["y"], vertex["z"] = points.T
    vertex["red"], vertex["green"], vertex["blue"] = colors.T
    header = (
        "ply\nformat binary_little_endian 1.0\ncomment written by vid3d\n"
        f"element vertex {len(points)}\nproperty float x\nproperty float y\nproperty float z\n"
        "property uchar red\nproperty uchar green\nproperty uchar blue\nend_header\n"
    )
    with atomic_file(path) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(header.encode("ascii"))
            fh.write(vertex.tobytes())
    return Path(path)


def export_ply(bundle: Bundle, path: str | os.PathLike, *, frames: list[int] | None = None, stride: int = 2,
               min_confidence: float = 0.0, max_points: int | None = None, seed: int = 0) -> Path:
    """Fuse the chosen frames (default all) into one world-space coloured point cloud (PLY)."""
    if stride < 1:
        raise InputError(f"stride must be >= 1, got {stride}")
    frames = list(range(bundle.num_frames)) if frames is None else frames
    pts, cols = zip(*(frame_points(bundle, t, stride=stride, min_confidence=min_confidence) for t in frames))
    points, colors = np.concatenate(pts), np.concatenate(cols)
    if max_points is not None and len(points) > max_points:
        keep = np.random.default_rng(seed).choice(len(points), size=max_points, replace=False)
        keep.sort()
        points, colors = points[keep], colors[keep]
    return write_ply(path, points, colors)


def export_tum(bundle: Bundle, path: str | os.PathLike) -> Path:
    """TUM RGB-D trajectory: one line per frame ``timestamp tx ty tz qx qy qz qw`` (camera-to-world)."""
    lines = [tum_line_from_T_world_camera(float(ts), T) for ts, T in zip(bundle.timestamps_s, bundle.T_world_camera)]
    with atomic_file(path) as tmp:
        Path(tmp).write_text("\n".join(lines) + "\n")
    return Path(path)


def export_colmap(bundle: Bundle, folder: str | os.PathLike, *, with_images: bool = True,
                  points_stride: int = 8, max_points: int = 200_000) -> Path:
    """COLMAP text model (``cameras.txt``, ``images.txt``, ``points3D.txt``) in ``folder``.

    One PINHOLE camera per distinct K; images are world-to-camera (qw qx qy qz tx ty tz) as COLMAP
    expects; ``points3D.txt`` holds a decimated fused cloud (no 2-D tracks). With ``with_images``
    the frames are written to ``folder/images`` as PNG.
    """
    import cv2

    names = [f"frame_{int(s):06d}.png" for s in bundle.source_frames]
    if len(set(names)) != len(names):
        names = [f"frame_{t:06d}.png" for t in range(bundle.num_frames)]
    cams: dict[tuple, int] = {}
    cam_of_frame = []
    for K in bundle.K:
        key = tuple(np.round(K[[0, 1, 0, 1], [0, 1, 2, 2]].astype(np.float64), 6))
        cam_of_frame.append(cams.setdefault(key, len(cams) + 1))
    cam_lines = ["# Camera list with one line of data per camera:", "#   CAMERA_ID, MODEL, WIDTH, HEIGHT, PARAMS[]"]
    cam_lines += [f"{cid} PINHOLE {bundle.width} {bundle.height} {fx:.9g} {fy:.9g} {cx:.9g} {cy:.9g}"
                  for (fx, fy, cx, cy), cid in cams.items()]
    img_lines = ["# Image list with two lines of data per image:",
                 "#   IMAGE_ID, QW, QX, QY, QZ, TX, TY, TZ, CAMERA_ID, NAME", "#   POINTS2D[] as (X, Y, POINT3D_ID)"]
    for t, (T, name) in enumerate(zip(bundle.T_world_camera, names)):
        q, tv = colmap_from_T_world_camera(T)
        img_lines.append(" ".join(f"{v:.12g}" for v in (t + 1, *q, *tv)) + f" {cam_of_frame[t]} {name}")
        img_lines.append("")
    stride_frames = list(range(0, bundle.num_frames, max(1, bundle.num_frames // 10)))
    pts, cols = zip(*(frame_points(bundle, t, stride=points_stride) for t in stride_frames))
    points, colors = np.concatenate(pts), np.concatenate(cols)
    if len(points) > max_points:
        keep = np.random.default_rng(0).choice(len(points), size=max_points, replace=False)
        points, colors = points[keep], colors[keep]
    pt_lines = ["# 3D point list with one line of data per point:",
                "#   POINT3D_ID, X, Y, Z, R, G, B, ERROR, TRACK[] as (IMAGE_ID, POINT2D_IDX)"]
    pt_lines += [f"{i + 1} {x:.7g} {y:.7g} {z:.7g} {r} {g} {b} 0" for i, ((x, y, z), (r, g, b))
                 in enumerate(zip(points.tolist(), colors.tolist()))]
    with atomic_dir(folder) as tmp:
        (tmp / "cameras.txt").write_text("\n".join(cam_lines) + "\n")
        (tmp / "images.txt").write_text("\n".join(img_lines) + "\n")
        (tmp / "points3D.txt").write_text("\n".join(pt_lines) + "\n")
        if with_images:
            (tmp / "images").mkdir()
            for t, name in enumerate(names):
                cv2.imwrite(str(tmp / "images" / name), bundle.frame(t).rgb[..., ::-1])
    return Path(folder)


def export_npz(bundle: Bundle, path: str | os.PathLike) -> Path:
    """All arrays in one compressed npz (keys also readable by MegaSaM-style loaders).

    Keys: ``images (T,H,W,3) u8``, ``depths (T,H,W) f32`` (refined, or prior if no refined depth),
    ``intrinsic (3,3)`` (frame 0), ``intrinsics (T,3,3)``, ``cam_c2w (T,4,4)``, ``timestamps_s (T,)``,
    ``source_frame (T,)`` and, when present, ``depth_prior``, ``confidence``, ``dynamic_mask``,
    ``scene_flow``.
    """
    arrays: dict[str, np.ndarray] = {
        "images": bundle.read("rgb"),
        "depths": bundle.read(bundle.depth_field()),
        "intrinsic": bundle.K[0],
        "intrinsics": bundle.K,
        "cam_c2w": bundle.T_world_camera,
        "timestamps_s": bundle.timestamps_s,
        "source_frame": bundle.source_frames,
    }
    for name, key in (("prior", "depth_prior"), ("confidence", "confidence"),
                      ("dynamic_mask", "dynamic_mask"), ("scene_flow", "scene_flow")):
        if bundle.has(name):
            arrays[key] = bundle.read(name)
    with atomic_file(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, **arrays)
    return Path(path)
