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
from vid3d.formats.bundle.encoding import OFFSETS_PATH, SUPPORT_MASK, Encoding, RgbJpeg, encoding_for_reading
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
    """Storage figures of one dataset: ``raw_bytes`` as float32 (floats) or native (integers); for an
    image dataset, those of the decoded frames (depth float32, confidence uint8, rgb uint8...).
    ``encoding`` is its ``vid3d_encoding`` (``plain``: stored as format 1.0 did) and ``bound`` the
    error bound it guarantees, in words (empty for non-image datasets)."""

    path: str
    dtype: str
    shape: tuple[int, ...]
    stored_bytes: int
    raw_bytes: int
    compression: str
    encoding: str = "plain"
    bound: str = ""


class Bundle:
    """An open bundle. Small per-frame arrays are loaded at once; images are read per frame."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        load_hdf5plugin()
        self._file = h5py.File(self.path, "r")
        self._present: dict[str, bool] = {}
        self._encodings: dict[str, Encoding] = {}
        self._offsets: np.ndarray | None = None  # of the packed scene flow, loaded on first use
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

    def encoding(self, name: str) -> Encoding:
        """How the image dataset ``name`` is stored: its recipe, with ``bound`` (the stated error bound,
        ``{"kind": "exact" | "relative" | "absolute" | "lossy", "max_error": ...}``) and ``describe()``."""
        if not self.has(name):
            raise InputError(f"{self.path.name} has no {IMAGE_FIELDS[name].path} dataset")
        if name not in self._encodings:
            spec = IMAGE_FIELDS[name]
            self._encodings[name] = encoding_for_reading(name, self._file[spec.path].attrs, spec.path)
        return self._encodings[name]

    def _decode(self, name: str, stored: np.ndarray) -> np.ndarray:
        return self.encoding(name).decode(stored)

    def _read_frame(self, name: str, t: int, mask: np.ndarray | None = None) -> np.ndarray:
        """Frame ``t`` of field ``name``, decoded: one chunk read (the packed scene flow: its columns
        and the frame's dynamic mask, unless ``mask``, that mask decoded, is given)."""
        enc = self.encoding(name)
        ds = self._file[IMAGE_FIELDS[name].path]
        if not enc.packed:
            return enc.decode(ds[t])
        if self._offsets is None:
            self._offsets = self._file[OFFSETS_PATH][()]
        a, b = int(self._offsets[t]), int(self._offsets[t + 1])
        support = None
        if enc.support == SUPPORT_MASK:
            support = mask if mask is not None else self._file[IMAGE_FIELDS["dynamic_mask"].path][t] > 0
        return enc.decode_packed(ds[:, a:b] if b > a else np.zeros((3, 0), np.uint16), support,
                                 (self.height, self.width))

    def frame(self, t: int, fields: Iterable[str] | None = None) -> Frame:
        """Read frame ``t``: one chunk of each image dataset named in ``fields`` (``"rgb"``,
        ``"depth"``, ``"confidence"``, ``"prior"``, ``"dynamic_mask"``, ``"scene_flow"``).

        ``None`` reads every dataset present. Datasets not named, or named but absent from the
        file, are None in the result; an unknown name raises InputError. K, pose and timestamp
        are always filled (they are loaded at open).
        """
        t = self._check_index(t)
        wanted = IMAGE_FIELDS.keys() if fields is None else self._field_names(fields)
        images: dict[str, np.ndarray | None] = {}
        for name in IMAGE_FIELDS:  # the mask before the scene flow, which is stored on its pixels
            wanted_here = name in wanted and self.has(name)
            images[name] = self._read_frame(name, t, images.get("dynamic_mask")) if wanted_here else None
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
            frames = slice(None)
        idx = np.arange(self.num_frames)[frames] if isinstance(frames, slice) else np.asarray(frames, np.int64)
        if not len(idx):
            return np.zeros((0, *self.frame_shape(name)), dtype=self._read_frame(name, 0).dtype)
        if isinstance(frames, slice) and not self.encoding(name).packed:
            return self._decode(name, ds[frames])
        return np.stack([self._read_frame(name, self._check_index(i)) for i in idx])

    def frame_shape(self, name: str) -> tuple[int, ...]:
        """Shape of one decoded frame of field ``name``: ``(H, W)`` or ``(H, W, 3)``."""
        return (self.height, self.width, *IMAGE_FIELDS[name].channels)

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
        fields = {spec.path: name for name, spec in IMAGE_FIELDS.items()}

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
            stored = int(obj.id.get_storage_size())
            encoding, bound = "plain", ""
            field = fields.get("/" + name)
            if field is not None:
                enc = self.encoding(field)
                raw = self.num_frames * int(np.prod(self.frame_shape(field))) * IMAGE_FIELDS[field].raw_itemsize
                encoding, bound = enc.name, enc.describe()
                if isinstance(enc, RgbJpeg):  # the bytes live in the file's heap, not in the chunks
                    stored += int(obj.attrs.get("jpeg_bytes", 0))
            dtype = "vlen u8" if h5py.check_vlen_dtype(obj.dtype) == np.dtype(np.uint8) else str(obj.dtype)
            infos.append(DatasetInfo("/" + name, dtype, tuple(obj.shape), stored, raw, comp, encoding, bound))

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
