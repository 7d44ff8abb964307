"""``vid3d render``: render a capture to a video with an effect."""

from __future__ import annotations

from pathlib import Path

import typer

from vid3d.cli import app


@app.command("render")
def render(
    bundle: Path = typer.Argument(..., help="A 4D capture bundle (*.vid3d.h5)."),
    effect: str = typer.Option("pointcloud", help="pointcloud|depth|bokeh|dolly|orbit|side-by-side"),
    output: Path = typer.Option(Path("render.mp4"), "-o", "--output", help="Video file to write."),
) -> None:
    """Render a capture to an H.264 video with an effect (bokeh, dolly zoom, orbit...)."""
    from vid3d.formats.errors import NotBuiltYetError

    raise NotBuiltYetError("`vid3d render` is not built yet (renderer issue); use `vid3d export` meanwhile")
