"""``vid3d view``: open a capture in the browser (viser). Blocks serving until Ctrl-C."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Optional

import typer

from vid3d.cli import app

STOP_GRACE_S = 10.0
"""Seconds the viewer waits for its server to stop after Ctrl-C before the process exits anyway."""


@app.command("view")
def view(
    bundle: Path = typer.Argument(..., help="A 4D capture bundle (*.vid3d.h5) to open."),
    host: str = typer.Option("127.0.0.1", help="Address to serve on (0.0.0.0 to share on the LAN)."),
    port: int = typer.Option(8080, help="Port to serve on (the next free one is used if busy)."),
    preset: str = typer.Option("standard", help="Viewer preset: fast (remote/slow link), standard, full."),
    stride: Optional[int] = typer.Option(None, help="Keep every N-th pixel per axis (overrides the preset)."),
    max_points: Optional[int] = typer.Option(None, "--max-points", help="Most points per frame (overrides the preset)."),
    mode: str = typer.Option("current", help="Display mode: current, static_dynamic, accumulated."),
    fps: Optional[float] = typer.Option(None, help="Playback rate (default: the capture's fps)."),
    follow: bool = typer.Option(False, "--follow", help="Start following the recorded camera."),
    frustums: bool = typer.Option(True, "--frustums/--no-frustums", help="Draw camera frustums and the trajectory."),
    device: str = typer.Option("auto", help="auto, cpu or cuda (unprojection and effects)."),
) -> None:
    """Open a 4D capture in the browser: scrub through time, orbit, bokeh and dolly zoom."""
    import dataclasses

    from vid3d.viewer.app import ViewerConfig, ViewerSession

    cfg = ViewerConfig.preset(preset, host=host, port=port, mode=mode, fps=fps, follow_camera=follow,
                              show_frustums=frustums, device=device)
    changes = {k: v for k, v in (("stride", stride), ("max_points", max_points)) if v is not None}
    if changes:
        cfg = dataclasses.replace(cfg, filter=dataclasses.replace(cfg.filter, **changes))
    session = ViewerSession(bundle, cfg)  # BundleFormatError -> "error: ..." exit 2
    try:
        session.start()
        for note in session.notes:
            typer.echo(f"note: {note}")
        typer.echo(f"vid3d view: serving {bundle.name} ({session.num_frames} frames) at {session.url}  (Ctrl-C to stop)")
        while True:
            time.sleep(1.0)
    finally:
        # a server thread that does not wind down must not keep Ctrl-C from ending the process: after
        # STOP_GRACE_S the process exits with 130 anyway. The watchdog stays armed through interpreter
        # shutdown too, which joins every non-daemon thread (a daemon timer still runs then).
        typer.echo("vid3d view: stopping", err=True)
        watchdog = threading.Timer(STOP_GRACE_S, lambda: os._exit(130))
        watchdog.daemon = True
        watchdog.start()
        session.stop()
