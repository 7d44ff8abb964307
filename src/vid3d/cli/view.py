"""``vid3d view``: open a capture in the browser (viser)."""

from __future__ import annotations

from pathlib import Path

import typer

from vid3d.cli import app


@app.command("view")
def view(
    bundle: Path = typer.Argument(..., help="A 4D capture bundle (*.vid3d.h5) to open."),
    host: str = typer.Option("127.0.0.1", help="Address to serve on (0.0.0.0 to share on the LAN)."),
    port: int = typer.Option(8080, help="Port to serve on (the next free one is used if busy)."),
) -> None:
    """Open a 4D capture in the browser: scrub through time, orbit, bokeh and dolly zoom."""
    from vid3d.formats.errors import NotBuiltYetError

    raise NotBuiltYetError("`vid3d view` is not built yet (viewer issue); use `vid3d info` or `vid3d export`")
