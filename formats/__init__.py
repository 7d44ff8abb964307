"""vid3d.formats: the 4D capture bundle (HDF5), conventions, export, errors, atomic writes.

Light to import: numpy and h5py only (no torch, no pycolmap). OpenCV is imported lazily, only to
encode or decode the JPEG colour of compact bundles.
"""

from vid3d.formats.errors import BundleFormatError, InputError, ShapeError, Vid3dError

__all__ = ["BundleFormatError", "InputError", "ShapeError", "Vid3dError"]
