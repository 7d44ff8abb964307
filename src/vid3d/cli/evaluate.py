"""``vid3d eval``: measure a bundle against ground truth (depth, camera, intrinsics, temporal consistency)."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from vid3d.cli import app


@app.command("eval")
def evaluate(
    bundle: Path = typer.Argument(..., help="The 4D capture bundle to measure (*.vid3d.h5)."),
    gt: str = typer.Option(
        ..., "--gt",
        help="Ground truth: a bundle (e.g. written by the synthetic renderer), a HoloLens/DeepVideoMVS folder "
        "(images/ depth/ poses.txt K.txt), an Open3D RGB-D folder (color/ depth/ trajectory.log), "
        "or synthetic:<preset>.",
    ),
    align: str = typer.Option("scale", "--align", help="Depth alignment, one per sequence: scale | scale_shift | none."),
    depth: str = typer.Option("z", "--depth", help="Which depth to measure: z (refined; falls back to prior) | prior."),
    rpe_delta: int = typer.Option(1, "--rpe-delta", min=1, help="Frame step of the relative pose error."),
    json_out: Path = typer.Option(None, "--json", help="Also write the full report as JSON to this file."),
) -> None:
    """Compare a bundle with ground truth: depth AbsRel/SqRel/RMSE/delta (static and dynamic), ATE/RPE after
    Sim(3) alignment, focal error and temporal consistency. Frames match through the bundle's source_frame."""
    from vid3d.formats.atomic import atomic_file
    from vid3d.formats.errors import InputError
    from vid3d.eval.report import evaluate_bundle, format_report

    if not bundle.exists():
        raise InputError(f"bundle {bundle} does not exist")
    report = evaluate_bundle(bundle, gt, align=align, depth=depth, rpe_delta=rpe_delta)
    typer.echo(format_report(report))
    if json_out is not None:
        with atomic_file(json_out) as tmp:
            tmp.write_text(json.dumps(report.to_dict(), indent=2))
        typer.echo(f"\nwrote {json_out}")
