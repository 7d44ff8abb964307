"""HDF5 compression settings per codec name. gzip + shuffle is the portable default."""

from __future__ import annotations

from typing import Any

from vid3d.formats.bundle.schema import CODECS
from vid3d.formats.errors import InputError


def compression_kwargs(codec: str, *, gzip_level: int = 4) -> dict[str, Any]:
    """Keyword arguments for ``h5py.Group.create_dataset`` that apply ``codec`` (``gzip_level`` 1-9:
    deflate's effort; reading is as fast at any level)."""
    if codec not in CODECS:
        raise InputError(f"unknown codec {codec!r}; expected one of {', '.join(CODECS)}")
    if codec == "none":
        return {}
    if codec == "gzip":
        return {"compression": "gzip", "compression_opts": int(gzip_level), "shuffle": True}
    if codec == "lzf":
        return {"compression": "lzf", "shuffle": True}
    hdf5plugin = load_hdf5plugin()
    if hdf5plugin is None:
        raise InputError(
            f"codec {codec!r} needs the optional package hdf5plugin (pip install 'vid3d[blosc]'); "
            "readers of the bundle will need it too, so the default gzip is usually the better choice"
        )
    cname = "zstd" if codec == "blosc-zstd" else "lz4"
    return dict(hdf5plugin.Blosc(cname=cname, clevel=5, shuffle=hdf5plugin.Blosc.BITSHUFFLE))


def load_hdf5plugin():
    """Import hdf5plugin if installed (registers Blosc/zstd filters with HDF5); None otherwise."""
    try:
        import hdf5plugin
    except ImportError:
        return None
    return hdf5plugin
