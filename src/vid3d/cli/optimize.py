"""``vid3d optimize``: video -> 4D capture bundle."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from vid3d.cli import app


@app.command("optimize")
def optimize(
    video: Optional[Path] = typer.Argument(
        None, help="A video file (mp4, mov, avi, mkv, webm) or a folder of images (sorted by name)."
    ),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="Bundle to write (*.vid3d.h5)."),
    demo: bool = typer.Option(False, "--demo", help="Run on the built-in synthetic demo clip."),
) -> None:
    """Estimate camera poses, consistent depth and scene flow for a video; write a 4D capture bundle."""
    from vid3d.formats.errors import NotBuiltYetError

    raise NotBuiltYetError("`vid3d optimize` is not built yet (optimizer issues)")
