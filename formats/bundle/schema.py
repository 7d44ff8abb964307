"""The 4D capture bundle, format ``vid3d.capture4d`` version 1.1: what is stored where, in which dtype.

One HDF5 file ``*.vid3d.h5``. ``T`` frames of ``H x W`` pixels (the stored resolution).

Root attributes (all required): ``format``, ``format_version`` (semver; readers refuse an unknown
major), ``producer``, ``created_utc``, ``source``, ``num_frames``, ``height``, ``width``, ``fps``,
``units`` ("m" or "arbitrary"), ``metric_scale`` (bool), ``camera_convention`` ("opencv"),
``pose_convention`` ("T_world_camera"), ``depth_kind`` ("z"), ``pixel_center`` (0.5).

Per-frame image-sized datasets are chunked one frame per chunk, so a viewer reads one frame lazily.
The ``dtype``/``channels`` below are format 1.0's layout (float16 depth, prior and scene flow;
confidence round(255 c) uint8; masks uint8 0/1), which 1.1 still reads and writes on request
(storage ``float16``). Format 1.1 stores depth, prior, confidence, scene flow and rgb by the recipes
of :mod:`vid3d.formats.bundle.encoding` (attribute ``vid3d_encoding``, each with a stated error
bound). Readers convert back to float32 / bool / uint8 either way.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

FORMAT_NAME = "vid3d.capture4d"
FORMAT_VERSION = "1.1.0"
FORMAT_VERSION_FLOAT16 = "1.0.0"  # what a writer with storage "float16" writes
SUPPORTED_MAJOR = 1

REQUIRED_ROOT_ATTRS = (
    "format", "format_version", "producer", "created_utc", "source", "num_frames", "height",
    "width", "fps", "units", "metric_scale", "camera_convention", "pose_convention", "depth_kind",
    "pixel_center",
)
UNITS = ("m", "arbitrary")
F16_MAX = float(np.finfo(np.float16).max)


@dataclass(frozen=True)
class ImageField:
    """A per-frame image-sized dataset: stored as ``(T, H, W, *channels)`` of ``dtype`` at ``path``."""

    name: str
    path: str
    dtype: type
    channels: tuple[int, ...]
    required: bool
    description: str
    raw_itemsize: int  # bytes per value of the "raw" size vid3d info compares with (floats as float32)


@dataclass(frozen=True)
class FrameScalarField:
    """A small per-frame dataset ``(T, *shape)`` (poses, intrinsics, time)."""

    name: str
    path: str
    dtype: type
    shape: tuple[int, ...]
    description: str


IMAGE_FIELDS: dict[str, ImageField] = {
    f.name: f
    for f in (
        ImageField("rgb", "/image/rgb", np.uint8, (3,), True, "colour, sRGB", 1),
        ImageField("depth", "/depth/z", np.float16, (), False,
                   "refined, fused z-depth after consistency training; 0 = invalid", 4),
        ImageField("confidence", "/depth/confidence", np.uint8, (), False,
                   "confidence of /depth/z in [0, 1], stored as round(255 * c)", 1),
        ImageField("prior", "/depth/prior", np.float16, (), False,
                   "initial z-depth before consistency training; 0 = invalid", 4),
        ImageField("dynamic_mask", "/mask/dynamic", np.uint8, (), False, "1 = moving", 1),
        ImageField("scene_flow", "/flow/scene_fwd", np.float16, (3,), False,
                   "world-space displacement of each pixel's 3-D point to frame t+1 (last frame 0; "
                   "0 on static pixels when the bundle has /mask/dynamic)", 4),
    )
}

FRAME_SCALAR_FIELDS: dict[str, FrameScalarField] = {
    f.name: f
    for f in (
        FrameScalarField("timestamp_s", "/time/timestamp_s", np.float64, (), "presentation time, seconds"),
        FrameScalarField("source_frame", "/time/source_frame", np.int32, (),
                         "index of the frame in the input video"),
        FrameScalarField("T_world_camera", "/camera/T_world_camera", np.float32, (4, 4),
                         "camera-to-world, OpenCV axes"),
        FrameScalarField("K", "/camera/K", np.float32, (3, 3), "pinhole intrinsics at the stored resolution"),
    )
}

#: API name -> HDF5 path, for every per-frame dataset.
FIELDS: dict[str, str] = {**{k: f.path for k, f in IMAGE_FIELDS.items()},
                          **{k: f.path for k, f in FRAME_SCALAR_FIELDS.items()}}

OPTIONAL_IMAGE_FIELDS = tuple(k for k, f in IMAGE_FIELDS.items() if not f.required)

#: Codecs for the image datasets. gzip and lzf are built into every HDF5 reader; blosc needs hdf5plugin.
CODECS = ("gzip", "lzf", "none", "blosc-zstd", "blosc-lz4")
DEFAULT_CODEC = "gzip"


def parse_version(text: str) -> tuple[int, int, int]:
    """``"1.2.3"`` -> ``(1, 2, 3)``; ValueError on anything else."""
    parts = str(text).split(".")
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        raise ValueError(f"format_version {text!r} is not a semver string like '1.0.0'")
    return int(parts[0]), int(parts[1]), int(parts[2])
