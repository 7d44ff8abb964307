"""The 4D capture bundle (HDF5, format ``vid3d.capture4d`` v1.1): schema, storage recipes, writer, lazy
reader, validation, re-packing.

See ``schema.py`` for the layout, ``encoding.py`` for how images are stored (quantisation bounds) and
``formats/README.md`` for the documented schema.
"""

from vid3d.formats.bundle.encoding import STORAGE_PRESETS, Storage
from vid3d.formats.bundle.pack import repack_bundle
from vid3d.formats.bundle.reader import Bundle, DatasetInfo, Frame, open_bundle
from vid3d.formats.bundle.schema import (
    CODECS,
    DEFAULT_CODEC,
    FIELDS,
    FORMAT_NAME,
    FORMAT_VERSION,
    FRAME_SCALAR_FIELDS,
    IMAGE_FIELDS,
)
from vid3d.formats.bundle.validate import validate_bundle
from vid3d.formats.bundle.writer import BundleWriter, write_bundle

__all__ = [
    "CODECS", "DEFAULT_CODEC", "FIELDS", "FORMAT_NAME", "FORMAT_VERSION", "FRAME_SCALAR_FIELDS", "IMAGE_FIELDS",
    "STORAGE_PRESETS", "Bundle", "BundleWriter", "DatasetInfo", "Frame", "Storage", "open_bundle", "repack_bundle",
    "validate_bundle", "write_bundle",
]
