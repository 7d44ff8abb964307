"""``vid3d info``: what a bundle holds, how big, in which conventions, made by what."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from vid3d.cli import app


@app.command("info")
def info(
    bundle: Path = typer.Argument(..., help="A 4D capture bundle (*.vid3d.h5)."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON instead of a table."),
    check: bool = typer.Option(False, "--check", help="Also scan every frame for NaN/inf and bad values."),
) -> None:
    """Show frames, resolution, fps, scale, conventions, per-dataset sizes, compression and provenance."""
    from vid3d.formats.bundle import open_bundle
    from vid3d.formats.errors import BundleFormatError
    from vid3d.formats.info import format_summary, summarize

    with open_bundle(bundle) as b:
        summary = summarize(b, deep=check)
    if as_json:
        typer.echo(json.dumps(summary.to_dict(), indent=2, default=str))
    else:
        typer.echo(format_summary(summary))
    if summary.problems:
        raise BundleFormatError(f"{bundle}: {summary.problems[0]}")
