"""`vid3d evaluate`."""

from vid3d.cli import app  # noqa: F401
