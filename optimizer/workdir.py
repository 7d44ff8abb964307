"""The stage cache: a work folder next to the output with one file per stage.

    <output>.work/
        frames-<key>.npz   flow-<key>.npz   masks-<key>.npz   poses-<key>.npz   ...
        sfm/  prior/  demo.mp4 ...       (scratch folders of the stages)

Each stage's key is a hash of the input fingerprint, the stage's config and the keys of the stages
it depends on, so changing an option recomputes exactly the stages it affects and a rerun resumes
from the cached ones. Files are written atomically (temp name + rename): an interrupted stage
leaves no half-written cache entry. Frozen dataclasses of numpy arrays and JSON-able values
(Frames, FlowSet, PoseResult, PriorResult, ...) round-trip through :func:`save_dataclass` /
:func:`load_dataclass`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any, Callable, TypeVar

import numpy as np

from vid3d.formats.atomic import atomic_file

log = logging.getLogger("vid3d.cache")

CACHE_VERSION = 1  # bump when a stage's stored layout changes
X = TypeVar("X")


def work_dir_for(output: str | os.PathLike) -> Path:
    """The work folder beside ``output``: ``clip.vid3d.h5`` -> ``clip.vid3d.h5.work/``."""
    output = Path(output)
    return output.with_name(output.name + ".work")


def fingerprint_file(path: str | os.PathLike, *, head_bytes: int = 1 << 20) -> str:
    """A cheap content fingerprint of a file or folder (names, sizes, first and last MiB of each file)."""
    path = Path(path)
    h = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for f in files:
        size = f.stat().st_size
        h.update(f"{f.relative_to(path) if path.is_dir() else f.name}:{size}".encode())
        with open(f, "rb") as fh:
            h.update(fh.read(head_bytes))
            if size > 2 * head_bytes:
                fh.seek(-head_bytes, os.SEEK_END)
                h.update(fh.read(head_bytes))
    return h.hexdigest()[:16]


def to_jsonable(value: Any) -> Any:
    """Dataclasses, tuples, paths and numpy scalars to plain JSON values (for keys and meta)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


def stage_key(*parts: Any) -> str:
    """A 16-hex-digit hash of JSON-able parts (fingerprint, config, upstream keys)."""
    text = json.dumps([CACHE_VERSION, *[to_jsonable(p) for p in parts]], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def save_dataclass(obj: Any, path: str | os.PathLike) -> Path:
    """Store a dataclass whose fields are numpy arrays or JSON-able values as one .npz, atomically."""
    arrays, plain = {}, {}
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if isinstance(value, np.ndarray):
            arrays[f.name] = value
        else:
            plain[f.name] = to_jsonable(value)
    arrays["__json__"] = np.frombuffer(json.dumps(plain).encode(), dtype=np.uint8)
    with atomic_file(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)
    return Path(path)


def load_dataclass(cls: type[X], path: str | os.PathLike) -> X:
    """Inverse of :func:`save_dataclass` (tuples come back as tuples where the field default says so)."""
    with np.load(path, allow_pickle=False) as data:
        fields = {k: data[k] for k in data.files if k != "__json__"}
        plain = json.loads(bytes(data["__json__"]).decode())
    for f in dataclasses.fields(cls):
        if f.name in plain:
            value = plain[f.name]
            if isinstance(value, list) and "tuple" in str(f.type):
                value = tuple(tuple(v) if isinstance(v, list) else v for v in value)
            fields[f.name] = value
    return cls(**fields)


class StageCache:
    """One cached file per stage in ``root``; ``force`` recomputes every stage (and overwrites)."""

    def __init__(self, root: str | os.PathLike, *, force: bool = False, enabled: bool = True) -> None:
        self.root = Path(root)
        self.force = force
        self.enabled = enabled
        self.hits: list[str] = []
        self.misses: list[str] = []
        self.root.mkdir(parents=True, exist_ok=True)

    def path(self, stage: str, key: str) -> Path:
        return self.root / f"{stage}-{key}.npz"

    def scratch(self, stage: str) -> Path:
        """A scratch folder for a stage's own files (COLMAP database, images...)."""
        p = self.root / stage
        p.mkdir(parents=True, exist_ok=True)
        return p

    def run(self, stage: str, key: str, cls: type[X], compute: Callable[[], X]) -> X:
        """The cached result of ``stage`` for ``key``, or ``compute()`` stored under it."""
        path = self.path(stage, key)
        if self.enabled and not self.force and path.is_file():
            try:
                result = load_dataclass(cls, path)
                self.hits.append(stage)
                log.info("%s: reused cached result (%s)", stage, path.name)
                return result
            except Exception as exc:  # a foreign or outdated file: recompute
                log.warning("%s: cache file %s unreadable (%s); recomputing", stage, path.name, exc)
        result = compute()
        self.misses.append(stage)
        if self.enabled:
            for old in self.root.glob(f"{stage}-*.npz"):
                if old != path:
                    old.unlink(missing_ok=True)
            save_dataclass(result, path)
        return result
