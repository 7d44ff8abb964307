"""Readers of ground-truth sequences: real RGB-D layouts, vid3d bundles and synthetic clips.

Every reader returns a :class:`GroundTruthSequence` in vid3d's conventions (OpenCV axes,
camera-to-world ``T_world_camera``, z-depth in metres with 0 = invalid, pixel centres at +0.5).

Layouts (see ``../shared/data/*/SOURCE.md``; both were checked by warping depth between frames with
the poses read as camera-to-world: millimetre agreement, versus decimetres read the other way):

- DeepVideoMVS / HoloLens (:func:`read_hololens_dvmvs`): ``images/*.png``, ``depth/<same names>``
  (uint16 mm, 0 = invalid), ``poses.txt`` (one camera-to-world 4x4 per line, row-major, metres,
  line k = k-th image in sorted order), ``K.txt`` (3x3).
- Open3D / Redwood RGB-D (:func:`read_open3d_rgbd`): ``color/*.jpg``, ``depth/*.png`` (uint16 mm),
  ``trajectory.log`` (Redwood ``.log``: a line "i i n", then 4 rows of a camera-to-world 4x4),
  ``camera_primesense.json`` (``intrinsic_matrix`` stored column-major).
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vid3d.formats.errors import InputError
from vid3d.formats.shape import ClipShape

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
DEPTH_SCALE_MM = 1000.0


@dataclass(frozen=True)
class GroundTruthSequence(ClipShape):
    """A sequence with ground truth, in vid3d conventions (T frames, H x W).

    Attributes:
        rgb: ``(T, H, W, 3)`` uint8.
        depth: ``(T, H, W)`` float32 z-depth in metres, 0 = invalid.
        K: ``(3, 3)`` shared or ``(T, 3, 3)`` per-frame float64 intrinsics.
        T_world_camera: ``(T, 4, 4)`` float64 camera-to-world.
        dynamic_mask: ``(T, H, W)`` bool (True = moving) or None when unknown.
        names: T frame names (file stems, or ``frame_00012`` for bundles/clips).
        source: where it came from (layout and path).
        metric: True when depth and poses are in metres.
    """

    rgb: np.ndarray
    depth: np.ndarray
    K: np.ndarray
    T_world_camera: np.ndarray
    dynamic_mask: np.ndarray | None
    names: list[str]
    source: str
    metric: bool = True

    def K_at(self, t: int) -> np.ndarray:
        """Intrinsics ``(3, 3)`` of frame t."""
        return self.K if self.K.ndim == 2 else self.K[t]

    def Ks(self) -> np.ndarray:
        """Per-frame intrinsics ``(T, 3, 3)``."""
        return np.broadcast_to(self.K, (self.num_frames, 3, 3)) if self.K.ndim == 2 else self.K


# ---------------------------------------------------------------------------------------------
# Image helpers
# ---------------------------------------------------------------------------------------------


def _read_rgb(path: Path) -> np.ndarray:
    import cv2

    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise InputError(f"cannot decode image {path}")
    return np.ascontiguousarray(img[..., ::-1])


def _read_depth_mm(path: Path) -> np.ndarray:
    import cv2

    d = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if d is None:
        raise InputError(f"cannot decode depth image {path}")
    if d.ndim != 2 or d.dtype != np.uint16:
        raise InputError(f"depth image {path} must be single-channel uint16 millimetres, got {d.dtype} {d.shape}")
    return d.astype(np.float32) / DEPTH_SCALE_MM


def _list_images(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise InputError(f"expected a folder {folder}")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise InputError(f"no images (.png/.jpg) in {folder}")
    return files


def _stack(rgbs: list[np.ndarray], depths: list[np.ndarray], names: list[str]) -> tuple[np.ndarray, np.ndarray]:
    shapes = {im.shape[:2] for im in rgbs} | {d.shape for d in depths}
    if len(shapes) != 1:
        raise InputError(f"colour and depth images differ in size: {sorted(shapes)} (frames {names[0]}...)")
    return np.stack(rgbs), np.stack(depths)


def _check_rigid(T: np.ndarray, what: str) -> None:
    from vid3d.formats.conventions import rigidity_error

    err = rigidity_error(T)
    if not np.all(np.isfinite(T)) or err.max() > 1e-3:
        bad = int(np.argmax(np.where(np.isfinite(err), err, np.inf)))
        raise InputError(f"{what}: pose {bad} is not a rigid transform (error {err[bad]:.3g})")


# ---------------------------------------------------------------------------------------------
# Readers
# ---------------------------------------------------------------------------------------------


def read_hololens_dvmvs(folder: str | os.PathLike) -> GroundTruthSequence:
    """Read a DeepVideoMVS / HoloLens folder (``images/``, ``depth/``, ``poses.txt``, ``K.txt``).

    Returns a :class:`GroundTruthSequence` with shared ``K`` ``(3, 3)`` and ``T`` = number of images.
    """
    folder = Path(folder)
    for need in ("images", "depth", "poses.txt", "K.txt"):
        if not (folder / need).exists():
            raise InputError(f"{folder} is not a HoloLens/DeepVideoMVS folder: {need} is missing")
    images = _list_images(folder / "images")
    try:
        poses = np.loadtxt(folder / "poses.txt", dtype=np.float64, ndmin=2)
        K = np.loadtxt(folder / "K.txt", dtype=np.float64)
    except ValueError as exc:
        raise InputError(f"cannot parse poses.txt / K.txt in {folder}: {exc}") from None
    if poses.shape[1] != 16:
        raise InputError(f"poses.txt must hold 16 numbers per line (a row-major 4x4), got {poses.shape[1]}")
    if K.shape != (3, 3):
        raise InputError(f"K.txt must hold a 3x3 matrix, got shape {K.shape}")
    if len(poses) < len(images):
        raise InputError(f"poses.txt has {len(poses)} poses for {len(images)} images")
    T_world_camera = poses[: len(images)].reshape(-1, 4, 4)  # camera-to-world (SOURCE.md, checked by depth warp)
    _check_rigid(T_world_camera, "poses.txt")
    rgbs, depths, names = [], [], []
    for img in images:
        dpath = folder / "depth" / img.name
        if not dpath.exists():
            raise InputError(f"depth image {dpath} missing for {img.name}")
        rgbs.append(_read_rgb(img))
        depths.append(_read_depth_mm(dpath))
        names.append(img.stem)
    rgb, depth = _stack(rgbs, depths, names)
    return GroundTruthSequence(rgb=rgb, depth=depth, K=K, T_world_camera=T_world_camera, dynamic_mask=None,
                               names=names, source=f"hololens_dvmvs:{folder}")


def read_redwood_log(path: str | os.PathLike) -> np.ndarray:
    """A Redwood ``.log`` trajectory (per frame: "i j n" then 4 rows) -> camera-to-world ``(T, 4, 4)``."""
    lines = [ln for ln in Path(path).read_text().splitlines() if ln.strip()]
    if len(lines) % 5:
        raise InputError(f"{path}: a Redwood .log has 5 lines per frame, got {len(lines)} lines")
    try:
        mats = [np.array([[float(x) for x in lines[i + k].split()] for k in range(1, 5)]) for i in range(0, len(lines), 5)]
        T = np.stack(mats)
    except ValueError as exc:
        raise InputError(f"cannot parse {path}: {exc}") from None
    if T.shape[1:] != (4, 4):
        raise InputError(f"{path}: expected 4x4 matrices, got {T.shape[1:]}")
    return T


def read_open3d_rgbd(folder: str | os.PathLike) -> GroundTruthSequence:
    """Read an Open3D/Redwood RGB-D folder (``color/``, ``depth/``, ``trajectory.log``, ``camera_primesense.json``).

    Colour and depth are paired by sorted order (``rgbd.match`` lists the same pairs). Returns a
    :class:`GroundTruthSequence` with shared ``K`` ``(3, 3)``.
    """
    folder = Path(folder)
    for need in ("color", "depth", "trajectory.log"):
        if not (folder / need).exists():
            raise InputError(f"{folder} is not an Open3D RGB-D folder: {need} is missing")
    colors = _list_images(folder / "color")
    depth_files = _list_images(folder / "depth")
    if len(colors) != len(depth_files):
        raise InputError(f"{folder}: {len(colors)} colour images but {len(depth_files)} depth images")
    T_world_camera = read_redwood_log(folder / "trajectory.log")
    if len(T_world_camera) < len(colors):
        raise InputError(f"trajectory.log has {len(T_world_camera)} poses for {len(colors)} frames")
    T_world_camera = T_world_camera[: len(colors)]
    _check_rigid(T_world_camera, "trajectory.log")
    intr = folder / "camera_primesense.json"
    if intr.exists():
        data = json.loads(intr.read_text())
        K = np.asarray(data["intrinsic_matrix"], dtype=np.float64).reshape(3, 3).T  # stored column-major
    else:  # Open3D's PrimeSenseDefault, the intrinsics these frames are used with
        K = np.array([[525.0, 0.0, 319.5], [0.0, 525.0, 239.5], [0.0, 0.0, 1.0]])
    rgbs = [_read_rgb(p) for p in colors]
    depths = [_read_depth_mm(p) for p in depth_files]
    names = [p.stem for p in colors]
    rgb, depth = _stack(rgbs, depths, names)
    return GroundTruthSequence(rgb=rgb, depth=depth, K=K, T_world_camera=T_world_camera, dynamic_mask=None,
                               names=names, source=f"open3d_rgbd:{folder}")


def read_bundle_ground_truth(path: str | os.PathLike, *, depth: str = "depth") -> GroundTruthSequence:
    """A vid3d bundle used as ground truth (e.g. ``SyntheticClip.to_bundle``): per-frame ``K`` ``(T, 3, 3)``."""
    from vid3d.formats.bundle import open_bundle

    with open_bundle(path) as b:
        field = depth if b.has(depth) else b.depth_field()
        return GroundTruthSequence(
            rgb=b.read("rgb"),
            depth=b.read(field),
            K=np.asarray(b.K, dtype=np.float64),
            T_world_camera=np.asarray(b.T_world_camera, dtype=np.float64),
            dynamic_mask=b.read("dynamic_mask") if b.has("dynamic_mask") else None,
            names=[f"frame_{int(s):05d}" for s in b.source_frames],
            source=f"bundle:{path} ({b.attrs.get('source', '?')})",
            metric=b.attrs.get("units") == "m",
        )


def from_synthetic(clip) -> GroundTruthSequence:
    """A :class:`vid3d.synthetic.SyntheticClip` as a ground-truth sequence (exact, metric)."""
    return GroundTruthSequence(
        rgb=clip.rgb, depth=clip.depth, K=np.asarray(clip.K, dtype=np.float64),
        T_world_camera=np.asarray(clip.T_world_camera, dtype=np.float64), dynamic_mask=clip.dynamic_mask,
        names=[f"frame_{t:05d}" for t in range(clip.num_frames)],
        source=f"synthetic clip {clip.height}x{clip.width}, {clip.num_frames} frames, seed {clip.config.seed}",
    )


def read_ground_truth(path: str | os.PathLike) -> GroundTruthSequence:
    """Auto-detect and read ground truth.

    Accepts a bundle file (``*.vid3d.h5`` / ``*.h5`` / ``*.hdf5``), a HoloLens/DeepVideoMVS folder, an
    Open3D RGB-D folder, or ``synthetic:<preset>`` (renders that :mod:`vid3d.synthetic` preset).
    Raises :class:`InputError` saying what was expected otherwise.
    """
    text = str(path)
    if text.startswith("synthetic:"):
        from vid3d.synthetic import SceneConfig, make_clip

        name = text.split(":", 1)[1]
        return dataclasses.replace(from_synthetic(make_clip(SceneConfig.preset(name))), source=f"synthetic:{name}")
    path = Path(path)
    if not path.exists():
        raise InputError(f"ground truth {path} does not exist (expected a bundle, a dataset folder or synthetic:<preset>)")
    if path.is_file():
        if path.suffix.lower() in (".h5", ".hdf5"):
            return read_bundle_ground_truth(path)
        raise InputError(f"ground truth file {path} is not a bundle (.vid3d.h5 / .h5)")
    if (path / "poses.txt").exists() and (path / "images").is_dir():
        return read_hololens_dvmvs(path)
    if (path / "trajectory.log").exists() and (path / "color").is_dir():
        return read_open3d_rgbd(path)
    raise InputError(
        f"{path} is no known ground-truth layout: expected images/ + depth/ + poses.txt + K.txt (HoloLens/DVMVS) "
        "or color/ + depth/ + trajectory.log (Open3D RGB-D)"
    )
