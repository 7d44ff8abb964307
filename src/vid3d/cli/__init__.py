"""The ``vid3d`` command line: a thin typer layer that builds configs and calls the components.

Every command module registers itself on :data:`app`; :func:`main` turns any
:class:`~vid3d.formats.errors.Vid3dError` (and I/O errors) into a one-line ``error: ...`` on
stderr with exit code 2, and Ctrl-C into exit code 130, never a traceback.
"""

from __future__ import annotations

import os
import sys

import typer

app = typer.Typer(
    name="vid3d",
    help="Turn an ordinary RGB video into a 4D capture (depth, camera poses, scene flow, colour) "
    "stored in one HDF5 bundle, and view it in a browser.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

# Register the commands (each module adds its own).
from vid3d.cli import optimize as _optimize  # noqa: E402,F401
from vid3d.cli import view as _view  # noqa: E402,F401
from vid3d.cli import render as _render  # noqa: E402,F401
from vid3d.cli import info as _info  # noqa: E402,F401
from vid3d.cli import export as _export  # noqa: E402,F401
from vid3d.cli import evaluate as _evaluate  # noqa: E402,F401
from vid3d.cli import pack as _pack  # noqa: E402,F401
from vid3d.cli import models as _models  # noqa: E402,F401

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``vid3d`` script. Exits with 0, 2 (bad input) or 130 (interrupted)."""
    from vid3d.formats.errors import Vid3dError

    try:
        app(args=argv, prog_name="vid3d")
    except Vid3dError as exc:
        _fail(str(exc))
    except (OSError, ValueError) as exc:  # unreadable paths, permission errors, bad values
        if os.environ.get("VID3D_DEBUG"):
            raise
        _fail(f"{type(exc).__name__}: {exc}")
    except KeyboardInterrupt:
        print("interrupted: nothing half-written was left under a final name", file=sys.stderr)
        sys.exit(EXIT_INTERRUPTED)


def _fail(message: str) -> None:
    message = " ".join(message.split())  # one line
    print(f"error: {message}", file=sys.stderr)
    sys.exit(EXIT_USER_ERROR)
