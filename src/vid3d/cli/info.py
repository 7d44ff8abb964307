"""`vid3d info`."""

from vid3d.cli import app  # noqa: F401
