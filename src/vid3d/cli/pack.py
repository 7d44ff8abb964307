"""``vid3d pack``: write an existing bundle again, quantised (default), compact for sharing, or as format 1.0."""

from __future__ import annotations

from pathlib import Path

import typer

from vid3d.cli import app


@app.command("pack")
def pack(
    source: Path = typer.Argument(..., help="A 4D capture bundle (*.vid3d.h5)."),
    output: Path = typer.Argument(..., help="Bundle to write (may be SOURCE itself: it is replaced only "
                                            "once the new file is complete)."),
    compact: bool = typer.Option(False, "--compact", help="For sharing: JPEG colour (quality 90) and coarser "
                                 "depth (relative step 2^-7) and scene-flow steps; see `vid3d info` for the bounds."),
    float16: bool = typer.Option(False, "--float16", help="The float16 layout of format 1.0, which vid3d "
                                 "versions before format 1.1 read (about 2.5x larger)."),
) -> None:
    """Re-write a bundle with quantised storage (format 1.1: depth, prior and scene flow to stated error
    bounds, lossless colour; opens with plain h5py + numpy) or, with --compact, smaller still for sharing.
    Every dataset, /meta entry and attribute is kept; `vid3d info` shows the bounds of the result."""
    from vid3d.formats.bundle import repack_bundle
    from vid3d.formats.errors import InputError

    if compact and float16:
        raise InputError("give --compact or --float16, not both")
    if not source.is_file():
        raise InputError(f"{source}: no such bundle file")
    storage = "compact" if compact else "float16" if float16 else "default"
    before = source.stat().st_size
    path = repack_bundle(source, output, storage=storage)
    after = path.stat().st_size
    typer.echo(f"wrote {path} ({storage}): {after / 2**20:.1f} MiB, {before / max(after, 1):.2f}x smaller "
               f"than {source.name} ({before / 2**20:.1f} MiB)")
