"""Reading bundles lazily: :func:`open_bundle` validates, :meth:`Bundle.frame` reads one frame (all its
datasets, or only the named ones)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import h5py
import numpy as np

from vid3d.formats.bundle.codecs import load_hdf5plugin
from vid3d.formats.bundle.schema import FRAME_SCALAR_FIELDS, IMAGE_FIELDS
from vid3d.formats.bundle.validate import validate_bundle
from vid3d.formats.errors import BundleFormatError, InputError


@dataclass(frozen=True)
class Frame:
    """One frame of a capture. Absent datasets (and those not asked for) are None.

    Fields:
        index: frame index in the bundle.
        rgb: ``(H, W, 3)`` uint8.
        depth: ``(H, W)`` float32 refined z-depth (0 = invalid).
        confidence: ``(H, W)`` float32 in [0, 1].
        prior: ``(H, W)`` float32 initial z-depth.
        dynamic_mask: ``(H, W)`` bool, True = moving.
        scene_flow: ``(H, W, 3)`` float32 world displacement to the next frame.
        K: ``(3, 3)`` float64. T_world_camera: ``(4, 4)`` float64. timestamp_s: float.
    """

    index: int
    rgb: np.ndarray | None
    depth: np.ndarray | None
    confidence: np.ndarray | None
    prior: np.ndarray | None
    dynamic_mask: np.ndarray | None
    scene_flow: np.ndarray | None
    K: np.ndarray
    T_world_camera: np.ndarray
    timestamp_s: float


@dataclass(frozen=True)
class DatasetInfo:
    """Storage figures of one dataset: ``raw_bytes`` as float32 (floats) or native (integers)."""

    path: str
    dtype: str
    shape: tuple[int, ...]
    stored_bytes: int
    raw_bytes: int
    compression: str


def _decode(name: str, arr: np.ndarray) -> np.ndarray:
    if name == "dynamic_mask":
        return arr > 0
    if name == "confidence":
        return arr.astype(np.float32) / 255.0
    if name == "rgb":
        return arr
    return arr.astype(np.float32)


class Bundle:
    """An open bundle. Small per-frame arrays are loaded at once; images are read per frame."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        load_hdf5plugin()
        self._file = h5py.File(self.path, "r")
        self._present: dict[str, bool] = {}
        self.attrs: dict[str, Any] = {k: _plain(v) for k, v in self._file.attrs.items()}
        self.num_frames = int(self.attrs["num_frames"])
        self.height = int(self.attrs["height"])
        self.width = int(self.attrs["width"])
        self.fps = float(self.attrs["fps"])
        small = {name: self._file[spec.path][()] for name, spec in FRAME_SCALAR_FIELDS.items()}
        self.T_world_camera: np.ndarray = small["T_world_camera"].astype(np.float64)  # (T, 4, 4)
        self.K: np.ndarray = small["K"].astype(np.float64)  # (T, 3, 3)
        self.timestamps_s: np.ndarray = small["timestamp_s"].astype(np.float64)  # (T,)
        self.source_frames: np.ndarray = small["source_frame"].astype(np.int64)  # (T,)

    # -- access ---------------------------------------------------------------------------------

    def has(self, name: str) -> bool:
        """Whether the image dataset ``name`` (``depth``, ``prior``, ``scene_flow``...) is present."""
        if name not in IMAGE_FIELDS:
            raise InputError(f"unknown field {name!r}; expected one of {list(IMAGE_FIELDS)}")
        if name not in self._present:  # read-only file: look each path up once (h5py lookups allocate)
            self._present[name] = IMAGE_FIELDS[name].path in self._file
        return self._present[name]

    @property
    def fields(self) -> tuple[str, ...]:
        """Names of the image datasets present."""
        return tuple(n for n in IMAGE_FIELDS if self.has(n))

    def _check_index(self, t: int) -> int:
        t = int(t)
        if not -self.num_frames <= t < self.num_frames:
            raise InputError(f"frame {t} out of range: the bundle has {self.num_frames} frames")
        return t % self.num_frames

    def frame(self, t: int, fields: Iterable[str] | None = None) -> Frame:
        """Read frame ``t``: one chunk of each image dataset named in ``fields`` (``"rgb"``,
        ``"depth"``, ``"confidence"``, ``"prior"``, ``"dynamic_mask"``, ``"scene_flow"``).

        ``None`` reads every dataset present. Datasets not named, or named but absent from the
        file, are None in the result; an unknown name raises InputError. K, pose and timestamp
        are always filled (they are loaded at open).
        """
        t = self._check_index(t)
        wanted = IMAGE_FIELDS.keys() if fields is None else self._field_names(fields)
        images = {name: (_decode(name, self._file[spec.path][t]) if name in wanted and self.has(name) else None)
                  for name, spec in IMAGE_FIELDS.items()}
        return Frame(index=t, K=self.K[t], T_world_camera=self.T_world_camera[t],
                     timestamp_s=float(self.timestamps_s[t]), **images)

    def _field_names(self, fields: Iterable[str]) -> set[str]:
        if isinstance(fields, str):  # frame(t, "rgb"): one name, not its letters
            fields = (fields,)
        names = set(fields)
        unknown = sorted(names - IMAGE_FIELDS.keys())
        if unknown:
            raise InputError(f"unknown field {unknown[0]!r}; expected some of {list(IMAGE_FIELDS)}")
        return names

    def read(self, name: str, frames: slice | np.ndarray | None = None) -> np.ndarray:
        """A whole image dataset (or a selection of frames), decoded: ``(T, H, W[, C])``."""
        if not self.has(name):
            raise InputError(f"{self.path.name} has no {IMAGE_FIELDS[name].path} dataset")
        ds = self._file[IMAGE_FIELDS[name].path]
        if frames is None:
            arr = ds[()]
        elif isinstance(frames, slice):
            arr = ds[frames]
        else:
            idx = np.asarray(frames, dtype=np.int64)
            arr = np.stack([ds[int(i)] for i in idx]) if len(idx) else ds[0:0]
        return _decode(name, arr)

    def depth_field(self) -> str:
        """``"depth"`` when the refined depth exists, else ``"prior"``; BundleFormatError if neither."""
        for name in ("depth", "prior"):
            if self.has(name):
                return name
        raise BundleFormatError(f"{self.path.name} holds no depth (/depth/z or /depth/prior)")

    def meta_names(self) -> list[str]:
        """Paths under ``/meta`` (relative), e.g. ``["config", "losses/flow"]``."""
        names: list[str] = []
        if "meta" in self._file:
            self._file["meta"].visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None)
        return sorted(names)

    def meta(self, name: str, default: Any = None) -> Any:
        """A ``/meta`` entry: JSON values decoded to Python, arrays as numpy; ``default`` if absent."""
        path = f"meta/{name}"
        if path not in self._file:
            return default
        ds = self._file[path]
        if ds.attrs.get("encoding") == "json":
            raw = ds[()]
            return json.loads(raw.decode() if isinstance(raw, bytes) else raw)
        return ds[()]

    def dataset_infos(self) -> list[DatasetInfo]:
        """Storage figures of every dataset in the file."""
        infos: list[DatasetInfo] = []

        def visit(name: str, obj: Any) -> None:
            if not isinstance(obj, h5py.Dataset):
                return
            item = obj.dtype.itemsize
            if obj.dtype.kind == "f":
                item = 4
            raw = int(np.prod(obj.shape, dtype=np.int64)) * item if obj.shape else item
            comp = obj.compression or "none"
            if obj.shuffle:
                comp += "+shuffle"
            infos.append(DatasetInfo("/" + name, str(obj.dtype), tuple(obj.shape), int(obj.id.get_storage_size()),
                                     raw, comp))

        self._file.visititems(visit)
        return infos

    # -- lifetime -------------------------------------------------------------------------------

    def close(self) -> None:
        if self._file is not None and self._file.id.valid:
            self._file.close()

    def __enter__(self) -> Bundle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __len__(self) -> int:
        return self.num_frames


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, bytes):
        return value.decode()
    return value


def open_bundle(path: str | os.PathLike, *, deep: bool = False) -> Bundle:
    """Open and validate a bundle; BundleFormatError with a one-line reason if it is not valid."""
    problems = validate_bundle(path, deep=deep)
    if problems:
        first = problems[0]
        more = f" (+{len(problems) - 1} more problems)" if len(problems) > 1 else ""
        prefix = "" if first.startswith(str(path)) else f"{path}: "
        raise BundleFormatError(f"{prefix}{first}{more}")
    return Bundle(path)
