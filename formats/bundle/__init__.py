"""The 4D capture bundle (HDF5, format ``vid3d.capture4d`` v1): schema, writer, lazy reader, validation.

See ``schema.py`` for the layout and ``formats/README.md`` for the documented schema.
"""

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
    "Bundle", "BundleWriter", "DatasetInfo", "Frame", "open_bundle", "validate_bundle", "write_bundle",
]
