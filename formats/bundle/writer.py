"""Writing bundles: :class:`BundleWriter` appends frames as they come; :func:`write_bundle` does all at once.

The file is written under a temporary name beside the target and renamed into place only when the
writer closes cleanly, after validation; on any error (Ctrl-C included) the temporary file is
removed and an existing bundle at the target is left untouched.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from vid3d.formats.atomic import temp_sibling
from vid3d.formats.bundle.codecs import compression_kwargs
from vid3d.formats.bundle.encoding import (
    ENCODING_ATTR,
    OFFSETS_PATH,
    SUPPORT_MASK,
    Encoding,
    LogDepth,
    Plain,
    SceneFlow16,
    Storage,
    encoding_for_writing,
    storage_of,
)
from vid3d.formats.bundle.schema import (
    DEFAULT_CODEC,
    FORMAT_NAME,
    FORMAT_VERSION,
    FORMAT_VERSION_FLOAT16,
    FRAME_SCALAR_FIELDS,
    IMAGE_FIELDS,
    OPTIONAL_IMAGE_FIELDS,
    UNITS,
)
from vid3d.formats.conventions import ROOT_CONVENTIONS, SCENE_FLOW_KIND, rigidity_error
from vid3d.formats.errors import InputError, ShapeError

RIGID_TOLERANCE = 1e-3


def _producer() -> str:
    from vid3d import __version__

    return f"vid3d {__version__}"


class BundleWriter:
    """Append frames to a new bundle; the file appears under ``path`` only after a clean close.

    Use as a context manager::

        with BundleWriter(path, height=H, width=W, fps=30.0, source="clip.mp4",
                          fields=("depth", "confidence", "dynamic_mask")) as w:
            for t in range(T):
                w.append(rgb=rgb[t], T_world_camera=T_wc[t], K=K, timestamp_s=t / 30, source_frame=t,
                         depth=depth[t], confidence=conf[t], dynamic_mask=mask[t])
            w.set_meta("config", {...})

    ``fields`` names the optional image datasets this bundle holds (each appended frame must then
    give all of them): any of ``depth, confidence, prior, dynamic_mask, scene_flow``.

    ``storage`` (a :class:`~vid3d.formats.bundle.encoding.Storage` or a preset name: ``default``,
    ``compact``, ``float16``) says how they are stored: format 1.1's quantised recipes (their
    parameters fixed by the first frame: depth offsets, the scene-flow step) or format 1.0's float16.
    Scene flow is defined on moving pixels: with a ``dynamic_mask`` field, static pixels are stored as 0.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        height: int,
        width: int,
        fps: float,
        source: str,
        units: str = "arbitrary",
        metric_scale: bool = False,
        fields: Iterable[str] = (),
        codec: str = DEFAULT_CODEC,
        attrs: Mapping[str, Any] | None = None,
        storage: Storage | str = "default",
    ) -> None:
        self.path = Path(path)
        self.storage = storage_of(storage)
        self.fields = tuple(fields)
        unknown = [f for f in self.fields if f not in OPTIONAL_IMAGE_FIELDS]
        if unknown:
            raise InputError(f"unknown bundle fields {unknown}; expected some of {list(OPTIONAL_IMAGE_FIELDS)}")
        if int(height) <= 0 or int(width) <= 0:
            raise InputError(f"image size must be positive, got {height}x{width}")
        if not np.isfinite(fps) or fps <= 0:
            raise InputError(f"fps must be a positive number, got {fps}")
        if units not in UNITS:
            raise InputError(f"units must be one of {UNITS}, got {units!r}")
        if self.path.is_dir():
            raise InputError(f"output {self.path} is a folder; expected a file path like capture.vid3d.h5")
        self.height, self.width = int(height), int(width)
        self.num_frames = 0
        self._compression = compression_kwargs(codec, gzip_level=self.storage.gzip_level)
        self._encodings: dict[str, Encoding] = {n: encoding_for_writing(n, self.storage) for n in ("rgb", *self.fields)}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = temp_sibling(self.path)
        self._file = h5py.File(self._tmp, "w")
        try:
            self._init_file(fps=float(fps), source=str(source), units=units, metric_scale=bool(metric_scale),
                            codec=codec, attrs=dict(attrs or {}))
        except BaseException:
            self.abort()
            raise

    # -- layout ---------------------------------------------------------------------------------

    def _init_file(self, *, fps, source, units, metric_scale, codec, attrs) -> None:
        f = self._file
        root = {
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION if self.storage.quantize else FORMAT_VERSION_FLOAT16,
            "producer": _producer(),
            "created_utc": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "source": source,
            "num_frames": 0,
            "height": self.height,
            "width": self.width,
            "fps": fps,
            "units": units,
            "metric_scale": metric_scale,
            "codec": codec,
            "scene_flow_kind": SCENE_FLOW_KIND,
            **ROOT_CONVENTIONS,
        }
        for key, value in {**root, **attrs}.items():
            f.attrs[key] = value
        for spec in FRAME_SCALAR_FIELDS.values():
            f.create_dataset(spec.path, shape=(0, *spec.shape), maxshape=(None, *spec.shape),
                             dtype=spec.dtype, chunks=(32, *spec.shape))
        for name, enc in self._encodings.items():
            spec = IMAGE_FIELDS[name]
            shape, dtype = enc.stored(self.height, self.width)
            if enc.packed:  # (3, N) growing, with its per-frame offsets
                ds = f.create_dataset(spec.path, shape=(*shape, 0), maxshape=(*shape, None), dtype=dtype,
                                      chunks=(*shape, enc.chunk), **self._compression)
                enc.support = SUPPORT_MASK if "dynamic_mask" in self.fields else "all"
                ds.attrs["support"] = enc.support
                f.create_dataset(OFFSETS_PATH, data=np.zeros(1, np.int64), maxshape=(None,), chunks=(64,))
            else:
                compression = self._compression if shape else {}  # JPEG bytes: already compressed
                ds = f.create_dataset(spec.path, shape=(0, *shape), maxshape=(None, *shape), dtype=dtype,
                                      chunks=(1, *shape), **compression)
            ds.attrs["description"] = spec.description
            if not isinstance(enc, Plain):
                ds.attrs[ENCODING_ATTR] = enc.name
        f.require_group("meta")

    # -- frames ---------------------------------------------------------------------------------

    def append(
        self,
        *,
        rgb: np.ndarray,
        T_world_camera: np.ndarray,
        K: np.ndarray,
        timestamp_s: float | None = None,
        source_frame: int | None = None,
        **images: np.ndarray,
    ) -> None:
        """Append one frame.

        Args:
            rgb: ``(H, W, 3)`` uint8.
            T_world_camera: ``(4, 4)`` camera-to-world rigid transform.
            K: ``(3, 3)`` pinhole intrinsics at the stored resolution.
            timestamp_s: presentation time (default: index / fps).
            source_frame: index of the frame in the input video (default: index).
            **images: exactly the optional fields given at construction: ``depth (H, W)`` z-depth
                (>= 0, 0 = invalid), ``confidence (H, W)`` in [0, 1], ``prior (H, W)``,
                ``dynamic_mask (H, W)`` bool, ``scene_flow (H, W, 3)``.
        """
        t = self.num_frames
        missing = sorted(set(self.fields) - set(images))
        extra = sorted(set(images) - set(self.fields))
        if missing or extra:
            raise InputError(f"frame {t}: expected fields {sorted(self.fields)}, missing {missing}, unexpected {extra}")
        rgb = self._check_image("rgb", rgb, t)
        T = np.asarray(T_world_camera, dtype=np.float64)
        Km = np.asarray(K, dtype=np.float64)
        if T.shape != (4, 4) or Km.shape != (3, 3):
            raise ShapeError(f"frame {t}: T_world_camera must be (4, 4) and K (3, 3), got {T.shape} and {Km.shape}")
        if not (np.isfinite(T).all() and np.isfinite(Km).all()):
            raise InputError(f"frame {t}: pose or intrinsics contain NaN/inf")
        err = float(rigidity_error(T))
        if err > RIGID_TOLERANCE:
            raise InputError(f"frame {t}: T_world_camera is not a rigid transform (error {err:.2e})")
        if Km[0, 0] <= 0 or Km[1, 1] <= 0 or not np.allclose(Km[2], [0, 0, 1]):
            raise InputError(f"frame {t}: K must have positive focal lengths and last row [0, 0, 1], got {Km.tolist()}")
        checked = {"rgb": rgb, **{name: self._check_values(name, arr, t) for name, arr in images.items()}}
        if "scene_flow" in checked and "dynamic_mask" in checked:  # defined on moving pixels only
            checked["scene_flow"] = np.where(checked["dynamic_mask"][..., None], checked["scene_flow"], 0.0)
        if t == 0:
            self._start_encodings(checked)
        support = checked.get("dynamic_mask")
        stored = {name: (enc.encode(checked[name], t, support) if enc.packed else enc.encode(checked[name], t))
                  for name, enc in self._encodings.items()}
        fps = float(self._file.attrs["fps"])
        scalars = {
            "timestamp_s": t / fps if timestamp_s is None else float(timestamp_s),
            "source_frame": t if source_frame is None else int(source_frame),
            "T_world_camera": T,
            "K": Km,
        }
        for name, value in scalars.items():
            ds = self._file[FRAME_SCALAR_FIELDS[name].path]
            ds.resize(t + 1, axis=0)
            ds[t] = value
        for name, value in stored.items():
            ds = self._file[IMAGE_FIELDS[name].path]
            if self._encodings[name].packed:
                offsets = self._file[OFFSETS_PATH]
                start = int(offsets[t])
                if value.shape[-1]:
                    ds.resize(start + value.shape[-1], axis=1)
                    ds[:, start:] = value
                offsets.resize(t + 2, axis=0)
                offsets[t + 1] = start + value.shape[-1]
            else:
                ds.resize(t + 1, axis=0)
                ds[t] = value
        self.num_frames = t + 1

    def _check_image(self, name: str, arr: np.ndarray, t: int) -> np.ndarray:
        spec = IMAGE_FIELDS[name]
        arr = np.asarray(arr)
        want = (self.height, self.width, *spec.channels)
        if arr.shape != want:
            raise ShapeError(f"frame {t}: {name} must have shape {want}, got {arr.shape}")
        if name == "rgb" and arr.dtype != np.uint8:
            raise ShapeError(f"frame {t}: rgb must be uint8, got {arr.dtype}")
        return arr

    def _check_values(self, name: str, arr: np.ndarray, t: int) -> np.ndarray:
        """The image as float32 (bool for the mask), after the checks every storage needs."""
        arr = self._check_image(name, arr, t)
        if name == "dynamic_mask":
            return arr > 0
        arr = arr.astype(np.float32)
        if not np.isfinite(arr).all():
            raise InputError(f"frame {t}: {name} contains NaN/inf")
        if name == "confidence" and (arr.min() < 0 or arr.max() > 1):
            raise InputError(f"frame {t}: confidence must lie in [0, 1], got [{arr.min():.3g}, {arr.max():.3g}]")
        if name in ("depth", "prior") and arr.min() < 0:
            raise InputError(f"frame {t}: {name} must be >= 0 (0 = invalid), got min {arr.min():.3g}")
        return arr

    def _start_encodings(self, first: Mapping[str, np.ndarray]) -> None:
        """Fix the data-dependent parameters from the first frame: each depth field's codes centred on
        its median, the scene-flow step from the scene scale (median of the refined depth, else the prior)."""
        medians = {n: float(np.median(first[n][first[n] > 0])) if (first[n] > 0).any() else 1.0
                   for n in ("depth", "prior") if n in first}
        for name, enc in self._encodings.items():
            if isinstance(enc, LogDepth):
                enc.start(medians[name])
            elif isinstance(enc, SceneFlow16):
                enc.start(medians.get("depth", medians.get("prior", 1.0)))

    # -- meta -----------------------------------------------------------------------------------

    def set_meta(self, name: str, value: Any) -> None:
        """Store a JSON-able value (config, timings, quality figures) at ``/meta/<name>``."""
        text = json.dumps(value, sort_keys=True, default=_json_default)
        path = f"meta/{name}"
        if path in self._file:
            del self._file[path]
        ds = self._file.create_dataset(path, data=text, dtype=h5py.string_dtype())
        ds.attrs["encoding"] = "json"

    def set_meta_array(self, name: str, value: np.ndarray) -> None:
        """Store a numeric array (e.g. a loss curve) at ``/meta/<name>``."""
        path = f"meta/{name}"
        if path in self._file:
            del self._file[path]
        self._file.create_dataset(path, data=np.asarray(value))

    # -- closing --------------------------------------------------------------------------------

    def close(self) -> Path:
        """Finish: validate, then rename the temporary file to ``path``. Returns ``path``."""
        from vid3d.formats.bundle.validate import validate_bundle

        if self._file is None:
            return self.path
        try:
            if self.num_frames == 0:
                raise InputError("no frames were written; a bundle needs at least one frame")
            self._file.attrs["num_frames"] = self.num_frames
            for name, enc in self._encodings.items():
                for key, value in enc.attrs().items():
                    self._file[IMAGE_FIELDS[name].path].attrs[key] = value
            self._file.close()
            self._file = None
            problems = validate_bundle(self._tmp, deep=False)
            if problems:
                raise InputError(f"refusing to write an invalid bundle: {problems[0]}")
            os.replace(self._tmp, self.path)
        except BaseException:
            self.abort()
            raise
        return self.path

    def abort(self) -> None:
        """Drop everything written so far; the target path is left as it was."""
        if self._file is not None:
            with contextlib.suppress(Exception):
                self._file.close()
            self._file = None
        with contextlib.suppress(FileNotFoundError):
            self._tmp.unlink()

    def __enter__(self) -> BundleWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot store {type(obj).__name__} in bundle meta")


def write_bundle(
    path: str | os.PathLike,
    *,
    rgb: np.ndarray,
    T_world_camera: np.ndarray,
    K: np.ndarray,
    fps: float,
    source: str,
    timestamps_s: np.ndarray | None = None,
    source_frames: np.ndarray | None = None,
    units: str = "arbitrary",
    metric_scale: bool = False,
    codec: str = DEFAULT_CODEC,
    meta: Mapping[str, Any] | None = None,
    attrs: Mapping[str, Any] | None = None,
    storage: Storage | str = "default",
    **images: np.ndarray | None,
) -> Path:
    """Write a whole capture at once.

    Args:
        rgb: ``(T, H, W, 3)`` uint8.
        T_world_camera: ``(T, 4, 4)``.
        K: ``(3, 3)`` shared or ``(T, 3, 3)`` per frame.
        timestamps_s, source_frames: ``(T,)``; default ``t / fps`` and ``t``.
        meta: name -> JSON-able value, stored under ``/meta``.
        storage: how the images are stored (see :class:`BundleWriter`).
        **images: optional ``(T, H, W[, 3])`` arrays named like the bundle fields (None = absent).
    """
    rgb = np.asarray(rgb)
    if rgb.ndim != 4 or rgb.shape[-1] != 3:
        raise ShapeError(f"rgb must be (T, H, W, 3), got {rgb.shape}")
    T_count, H, W = rgb.shape[:3]
    images = {k: v for k, v in images.items() if v is not None}
    K = np.asarray(K)
    Ks = np.broadcast_to(K, (T_count, 3, 3)) if K.shape == (3, 3) else K
    if Ks.shape != (T_count, 3, 3) or np.shape(T_world_camera) != (T_count, 4, 4):
        raise ShapeError(f"expected K (3, 3) or ({T_count}, 3, 3) and T_world_camera ({T_count}, 4, 4), "
                         f"got {K.shape} and {np.shape(T_world_camera)}")
    for name, arr in images.items():
        if len(arr) != T_count:
            raise ShapeError(f"{name} has {len(arr)} frames, rgb has {T_count}")
    with BundleWriter(path, height=H, width=W, fps=fps, source=source, units=units, metric_scale=metric_scale,
                      fields=tuple(images), codec=codec, attrs=attrs, storage=storage) as writer:
        for t in range(T_count):
            writer.append(
                rgb=rgb[t], T_world_camera=T_world_camera[t], K=Ks[t],
                timestamp_s=None if timestamps_s is None else timestamps_s[t],
                source_frame=None if source_frames is None else source_frames[t],
                **{name: arr[t] for name, arr in images.items()},
            )
        for name, value in (meta or {}).items():
            writer.set_meta(name, value)
    return Path(path)
