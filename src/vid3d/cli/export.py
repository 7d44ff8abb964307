"""``vid3d export``: a bundle to PLY, COLMAP text, TUM trajectory or npz."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from vid3d.cli import app

_DEFAULT_NAMES = {"ply": ".ply", "colmap": "_colmap", "tum": "_tum.txt", "npz": ".npz"}


@app.command("export")
def export(
    bundle: Path = typer.Argument(..., help="A 4D capture bundle (*.vid3d.h5)."),
    to: str = typer.Option(..., "--to", help="ply (fused point cloud), colmap (text model folder), "
                           "tum (trajectory), npz (all arrays)."),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="File (or folder for colmap) to write; "
                                          "default: next to the bundle."),
    frames: Optional[str] = typer.Option(None, help="ply: frames to fuse, START:END[:STEP] (default all)."),
    stride: int = typer.Option(2, help="ply: take every STRIDE-th pixel in x and y."),
    min_confidence: float = typer.Option(0.0, help="ply: drop points with confidence below this (0..1)."),
    max_points: Optional[int] = typer.Option(None, help="ply: random subsample to at most this many points."),
    no_images: bool = typer.Option(False, "--no-images", help="colmap: do not write the frames as PNG."),
) -> None:
    """Export a capture for other tools: PLY point cloud, COLMAP model, TUM trajectory or npz."""
    from vid3d.formats import export as ex
    from vid3d.formats.bundle import open_bundle
    from vid3d.runtime import parse_frame_range
    from vid3d.formats.errors import InputError

    if to not in ex.EXPORT_FORMATS:
        raise InputError(f"--to must be one of {', '.join(ex.EXPORT_FORMATS)}, got {to!r}")
    if not 0.0 <= min_confidence <= 1.0:
        raise InputError(f"--min-confidence must lie in [0, 1], got {min_confidence}")
    if max_points is not None and max_points < 1:
        raise InputError(f"--max-points must be >= 1, got {max_points}")
    stem = bundle.name.removesuffix(".h5").removesuffix(".vid3d")
    out = output or bundle.with_name(stem + _DEFAULT_NAMES[to])
    with open_bundle(bundle) as b:
        if to == "ply":
            sel = parse_frame_range(frames, b.num_frames)
            path = ex.export_ply(b, out, frames=sel, stride=stride, min_confidence=min_confidence,
                                 max_points=max_points)
        elif to == "colmap":
            path = ex.export_colmap(b, out, with_images=not no_images)
        elif to == "tum":
            path = ex.export_tum(b, out)
        else:
            path = ex.export_npz(b, out)
    typer.echo(f"wrote {path}")
