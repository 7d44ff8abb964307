"""Exceptions raised on bad user input. Each message is one line that says what was expected and what came.

The CLI turns any :class:`Vid3dError` into ``error: <message>`` on stderr and a non-zero exit.
"""


class Vid3dError(Exception):
    """Base of every error vid3d reports to a user (never a traceback)."""


class BundleFormatError(Vid3dError, ValueError):
    """A file is not a valid vid3d 4D capture bundle (foreign, broken, wrong version...)."""


class ShapeError(Vid3dError, ValueError):
    """An array has the wrong shape or dtype."""


class InputError(Vid3dError, ValueError):
    """A user-supplied input (video, folder, option value) cannot be used."""
