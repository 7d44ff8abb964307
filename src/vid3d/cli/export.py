"""`vid3d export`."""

from vid3d.cli import app  # noqa: F401
