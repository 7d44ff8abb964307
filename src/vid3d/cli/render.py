"""``vid3d render``: render a capture to an H.264 video with an effect."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from vid3d.cli import app


@app.command("render")
def render(
    bundle: Path = typer.Argument(..., help="A 4D capture bundle (*.vid3d.h5)."),
    effect: str = typer.Option("pointcloud", "--effect", "-e", help="pointcloud|depth|bokeh|dolly|orbit|side-by-side"),
    output: Path = typer.Option(Path("render.mp4"), "-o", "--output", help="Video file to write (.mp4)."),
    width: Optional[int] = typer.Option(None, help="Output width per panel, even (default: the bundle's)."),
    height: Optional[int] = typer.Option(None, help="Output height, even (default: the bundle's)."),
    fps: Optional[float] = typer.Option(None, help="Output fps (default: the bundle's / frame step)."),
    frames: Optional[str] = typer.Option(None, help="START:END:STEP selection of frames (default: all)."),
    device: str = typer.Option("auto", help="auto|cpu|cuda"),
    preset: str = typer.Option("standard", help="draft|standard|best"),
    focus_distance: Optional[float] = typer.Option(None, help="Bokeh focus depth (default: auto, moving object or centre)."),
    aperture: float = typer.Option(12.0, help="Bokeh blur diameter in px of a point at infinity."),
    dolly_strength: float = typer.Option(0.6, help="Dolly zoom: relative camera move d'/d - 1 at the end (> -1)."),
    subject_distance: Optional[float] = typer.Option(None, help="Dolly/orbit subject depth (default: auto)."),
    orbit_radius: Optional[float] = typer.Option(None, help="Orbit: distance to the orbited point (default: subject)."),
    orbit_degrees: float = typer.Option(12.0, help="Orbit: full swing in degrees."),
    point_radius: int = typer.Option(1, help="Splat footprint radius in px for novel views."),
    fill_frames: Optional[int] = typer.Option(None, help="Neighbour frames each side lending background for holes."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Render a capture to an H.264 video with an effect (bokeh, dolly zoom, orbit, depth...)."""
    from vid3d.viewer.render.clip import RenderConfig, render_bundle
    from vid3d.viewer.render.perf import tune_cpu_allocator

    tune_cpu_allocator()  # keep large freed temporaries for reuse (see vid3d.viewer.render.perf)

    overrides = dict(
        effect=effect, width=width, height=height, fps=fps, frames=frames, device=device,
        focus_distance=focus_distance, aperture=aperture, dolly_strength=dolly_strength,
        subject_distance=subject_distance, orbit_radius=orbit_radius, orbit_degrees=orbit_degrees,
        point_radius_px=point_radius,
    )
    if fill_frames is not None:
        overrides["fill_frames"] = fill_frames
    config = RenderConfig.preset(preset, **overrides)
    report = render_bundle(bundle, output, config, progress=not quiet)
    h264 = " (H.264)" if report.codec in ("libx264", "h264") else " (not H.264: this PyAV build has no libx264)"
    typer.echo(f"wrote {report.path}: {report.num_frames} frames {report.width}x{report.height} @ {report.fps:g} fps, "
               f"codec {report.codec}{h264}, depth from /depth/{'z' if report.depth_field == 'depth' else 'prior'}")
