"""Re-packing: write an existing bundle again with another storage (``vid3d pack``).

Frames are read one at a time (decoded) and appended to a :class:`BundleWriter`, so memory stays at
one frame. The output is atomic: it appears under its name only when complete and valid, which also
makes re-packing a file onto itself safe.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from vid3d.formats.bundle.encoding import Storage, storage_of
from vid3d.formats.bundle.reader import open_bundle
from vid3d.formats.bundle.schema import DEFAULT_CODEC
from vid3d.formats.bundle.writer import BundleWriter
from vid3d.formats.conventions import ROOT_CONVENTIONS

#: Root attributes the writer sets itself (everything else is carried over).
_WRITER_ATTRS = {"format", "format_version", "producer", "created_utc", "num_frames", "height", "width", "fps",
                 "units", "metric_scale", "source", "codec", "scene_flow_kind", *ROOT_CONVENTIONS}


def repack_bundle(source: str | os.PathLike, target: str | os.PathLike, *, storage: Storage | str = "default",
                  codec: str = DEFAULT_CODEC) -> Path:
    """Write the bundle ``source`` to ``target`` with ``storage`` (``default``, ``compact``, ``float16``
    or a :class:`Storage`); returns ``target``. Every dataset, /meta entry and root attribute is kept;
    the images are re-encoded within the new storage's bounds (on top of the source's own: JPEG
    colour stays what it was). BundleFormatError if ``source`` is not a valid bundle."""
    storage = storage_of(storage)
    target = Path(target)
    b = open_bundle(source)
    try:
        fields = tuple(n for n in b.fields if n != "rgb")
        carried = {k: v for k, v in b.attrs.items() if k not in _WRITER_ATTRS}
        carried["repacked_from"] = (f"{Path(source).name} (format {b.attrs.get('format_version')}, "
                                    f"{b.attrs.get('producer')}, {b.attrs.get('created_utc')})")
        writer = BundleWriter(target, height=b.height, width=b.width, fps=b.fps, source=str(b.attrs["source"]),
                              units=str(b.attrs["units"]), metric_scale=bool(b.attrs["metric_scale"]),
                              fields=fields, codec=codec, attrs=carried, storage=storage)
        try:
            for t in range(b.num_frames):
                f = b.frame(t)
                writer.append(rgb=f.rgb, T_world_camera=f.T_world_camera, K=f.K, timestamp_s=f.timestamp_s,
                              source_frame=int(b.source_frames[t]), **{n: getattr(f, n) for n in fields})
            for name in b.meta_names():
                value = b.meta(name)
                if isinstance(value, (np.ndarray, np.generic)):
                    writer.set_meta_array(name, np.asarray(value))
                else:
                    writer.set_meta(name, value)
        except BaseException:
            writer.abort()
            raise
    finally:
        b.close()
    return writer.close()
