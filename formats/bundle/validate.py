"""Validation: say exactly what is wrong with a broken or foreign file, never a traceback.

:func:`validate_bundle` returns a list of one-line problems (empty = valid). ``deep=True`` also
scans every frame of the image datasets for NaN/inf and out-of-range values.
"""

from __future__ import annotations

import os
from pathlib import Path

import h5py
import numpy as np

from vid3d.formats.bundle.codecs import load_hdf5plugin
from vid3d.formats.bundle.encoding import OFFSETS_PATH, SUPPORT_MASK, Plain, encoding_for_reading
from vid3d.formats.bundle.schema import (
    FORMAT_NAME,
    FRAME_SCALAR_FIELDS,
    IMAGE_FIELDS,
    REQUIRED_ROOT_ATTRS,
    SUPPORTED_MAJOR,
    UNITS,
    parse_version,
)
from vid3d.formats.conventions import ROOT_CONVENTIONS, rigidity_error
from vid3d.formats.errors import BundleFormatError

RIGID_TOLERANCE = 1e-3


def validate_bundle(path: str | os.PathLike, *, deep: bool = False) -> list[str]:
    """Problems of the bundle at ``path``, one line each; ``[]`` when it is a valid v1 bundle."""
    path = Path(path)
    if not path.exists():
        return [f"{path}: no such file"]
    if path.is_dir():
        return [f"{path}: is a folder, not a bundle file"]
    if not h5py.is_hdf5(path):
        return [f"{path}: not an HDF5 file (a vid3d bundle is *.vid3d.h5 written by `vid3d optimize`)"]
    load_hdf5plugin()
    try:
        with h5py.File(path, "r") as f:
            return _validate_open(f, path, deep=deep)
    except OSError as exc:
        return [f"{path}: unreadable HDF5 file ({exc})"]


def _validate_open(f: h5py.File, path: Path, *, deep: bool) -> list[str]:
    attrs = dict(f.attrs)
    fmt = attrs.get("format")
    if fmt != FORMAT_NAME:
        return [f"{path}: not a vid3d bundle (format attribute is {fmt!r}, expected {FORMAT_NAME!r})"]
    try:
        major, _, _ = parse_version(attrs.get("format_version", ""))
    except ValueError as exc:
        return [f"{path}: {exc}"]
    if major != SUPPORTED_MAJOR:
        return [f"{path}: unsupported format_version {attrs['format_version']} "
                f"(this vid3d reads {SUPPORTED_MAJOR}.x; upgrade vid3d)"]
    problems = [f"missing root attribute {k!r}" for k in REQUIRED_ROOT_ATTRS if k not in attrs]
    if problems:
        return problems
    for key, expected in ROOT_CONVENTIONS.items():
        if key in attrs and attrs[key] != expected:
            problems.append(f"unsupported {key} {attrs[key]!r} (expected {expected!r})")
    if attrs["units"] not in UNITS:
        problems.append(f"units {attrs['units']!r} is not one of {UNITS}")
    T, H, W = int(attrs["num_frames"]), int(attrs["height"]), int(attrs["width"])
    if T < 1 or H < 1 or W < 1:
        problems.append(f"num_frames/height/width must be positive, got {T}/{H}/{W}")
        return problems
    fps = float(attrs["fps"])
    if not np.isfinite(fps) or fps <= 0:
        problems.append(f"fps must be positive, got {fps}")

    for spec in FRAME_SCALAR_FIELDS.values():
        problems += _check_dataset(f, spec.path, (T, *spec.shape), required=True)
    for name, spec in IMAGE_FIELDS.items():
        problems += _check_image_dataset(f, name, T, H, W)
    if problems:
        return problems

    T_wc = f[FRAME_SCALAR_FIELDS["T_world_camera"].path][()]
    K = f[FRAME_SCALAR_FIELDS["K"].path][()]
    if not np.isfinite(T_wc).all():
        bad = int(np.argwhere(~np.isfinite(T_wc).all(axis=(1, 2)))[0, 0])
        problems.append(f"/camera/T_world_camera has NaN/inf (first at frame {bad})")
    else:
        err = rigidity_error(T_wc)
        if (err > RIGID_TOLERANCE).any():
            bad = int(np.argmax(err > RIGID_TOLERANCE))
            problems.append(f"/camera/T_world_camera of frame {bad} is not a rigid transform (error {err[bad]:.2e})")
    if not np.isfinite(K).all():
        problems.append("/camera/K has NaN/inf")
    elif (K[:, 0, 0] <= 0).any() or (K[:, 1, 1] <= 0).any() or not np.allclose(K[:, 2], [0, 0, 1]):
        problems.append("/camera/K must have positive focal lengths and last row [0, 0, 1]")
    ts = f[FRAME_SCALAR_FIELDS["timestamp_s"].path][()]
    if not np.isfinite(ts).all():
        problems.append("/time/timestamp_s has NaN/inf")
    if deep:
        problems += _deep_scan(f, T)
    return problems


def _check_dataset(f: h5py.File, path: str, shape: tuple[int, ...], *, required: bool,
                   dtype: type | None = None) -> list[str]:
    if path not in f:
        return [f"missing dataset {path}"] if required else []
    ds = f[path]
    if not isinstance(ds, h5py.Dataset):
        return [f"{path} is a group, expected a dataset"]
    if ds.shape != shape:
        return [f"{path} has shape {ds.shape}, expected {shape}"]
    if dtype is not None and ds.dtype != np.dtype(dtype):
        return [f"{path} has dtype {ds.dtype}, expected {np.dtype(dtype)}"]
    return []


def _check_image_dataset(f: h5py.File, name: str, T: int, H: int, W: int) -> list[str]:
    """The dataset of field ``name``: format 1.0's dtype/shape, or those of its ``vid3d_encoding``."""
    spec = IMAGE_FIELDS[name]
    if spec.path not in f or not isinstance(f[spec.path], h5py.Dataset):
        return _check_dataset(f, spec.path, (T, H, W, *spec.channels), required=spec.required)
    try:
        enc = encoding_for_reading(name, f[spec.path].attrs, spec.path)
    except BundleFormatError as exc:
        return [str(exc)]
    shape, dtype = enc.stored(H, W)
    if enc.packed:
        return _check_packed(f, spec.path, T, shape, dtype)
    if isinstance(enc, Plain) or h5py.check_vlen_dtype(np.dtype(dtype)) is None:
        return _check_dataset(f, spec.path, (T, *shape), required=spec.required, dtype=dtype)
    problems = _check_dataset(f, spec.path, (T, *shape), required=spec.required)
    if not problems and h5py.check_vlen_dtype(f[spec.path].dtype) != np.uint8:
        problems.append(f"{spec.path} has dtype {f[spec.path].dtype}, expected variable-length uint8 ({enc.name})")
    return problems


def _check_packed(f: h5py.File, path: str, T: int, shape: tuple[int, ...], dtype) -> list[str]:
    """A packed dataset ``(*shape, N)`` and its offsets ``(T + 1,)`` (0, non-decreasing, ending at N)."""
    ds = f[path]
    if ds.ndim != len(shape) + 1 or ds.shape[:-1] != shape or ds.dtype != np.dtype(dtype):
        return [f"{path} has shape {ds.shape} and dtype {ds.dtype}, expected {(*shape, 'N')} {np.dtype(dtype)}"]
    support = ds.attrs.get("support")
    if support not in (SUPPORT_MASK, "all"):
        return [f"{path} has support {support!r}, expected {SUPPORT_MASK!r} or 'all'"]
    if support == SUPPORT_MASK and SUPPORT_MASK not in f:
        return [f"{path} is stored on the pixels of {SUPPORT_MASK}, which is missing"]
    problems = _check_dataset(f, OFFSETS_PATH, (T + 1,), required=True)
    if problems:
        return problems
    offsets = f[OFFSETS_PATH][()]
    if offsets[0] != 0 or (np.diff(offsets) < 0).any() or offsets[-1] != ds.shape[-1]:
        return [f"{OFFSETS_PATH} must rise from 0 to {ds.shape[-1]} (the columns of {path})"]
    return []


def _deep_scan(f: h5py.File, T: int) -> list[str]:
    problems = []
    for name, spec in IMAGE_FIELDS.items():
        if spec.path not in f:
            continue
        ds = f[spec.path]
        enc = encoding_for_reading(name, ds.attrs, spec.path)
        if isinstance(enc, Plain) and spec.dtype == np.uint8 and name != "confidence":
            continue
        if enc.packed:
            problems += _deep_scan_packed(f, ds, T)
            continue
        for t in range(T):
            try:
                frame = ds[t] if isinstance(enc, Plain) else enc.decode(ds[t])
            except BundleFormatError as exc:
                problems.append(f"{spec.path} frame {t}: {exc}")
                break
            if frame.dtype.kind == "f" and not np.isfinite(frame).all():
                problems.append(f"{spec.path} has NaN/inf at frame {t}")
                break
            if name in ("depth", "prior") and (frame < 0).any():
                problems.append(f"{spec.path} has negative depth at frame {t}")
                break
    return problems


def _deep_scan_packed(f: h5py.File, ds: h5py.Dataset, T: int) -> list[str]:
    """Each frame holds one vector per pixel of its support."""
    offsets = f[OFFSETS_PATH][()]
    H, W = int(f.attrs["height"]), int(f.attrs["width"])
    for t in range(T):
        n = int(offsets[t + 1] - offsets[t])
        expected = int((f[SUPPORT_MASK][t] > 0).sum()) if ds.attrs.get("support") == SUPPORT_MASK else H * W
        if n != expected:
            return [f"{ds.name} frame {t} holds {n} vectors, its support has {expected} pixels"]
    return []
