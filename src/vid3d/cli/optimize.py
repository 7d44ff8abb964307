"""``vid3d optimize``: video -> 4D capture bundle (a thin layer that builds an OptimizeConfig)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from vid3d.cli import app
from vid3d.optimizer.config import DEFAULT_PRESET, PRESETS, STAGES, OptimizeConfig
from vid3d.optimizer.prior.config import BACKENDS as PRIOR_BACKENDS
from vid3d.runtime.device import DEVICES

DEMO_PRESET = "demo"


def parse_gaps(text: str | None) -> tuple[int, ...] | None:
    """``"1,2,4"`` -> ``(1, 2, 4)``; InputError on anything else."""
    from vid3d.formats.errors import InputError

    if text is None:
        return None
    try:
        gaps = tuple(int(t) for t in text.split(",") if t.strip())
    except ValueError:
        raise InputError(f"--gaps must be comma-separated positive integers like 1,2,4,6,8, got {text!r}") from None
    if not gaps:
        raise InputError(f"--gaps must name at least one gap, got {text!r}")
    return gaps


def default_output(source: Path) -> Path:
    """``clip.mp4`` -> ``clip.vid3d.h5`` beside it; a folder ``frames/`` -> ``frames.vid3d.h5``."""
    source = Path(source)
    stem = source.name if source.is_dir() else source.stem
    return source.parent / f"{stem}.vid3d.h5"


def render_demo_video(work_dir: Path) -> Path:
    """Render the built-in synthetic demo clip to ``<work_dir>/demo.mp4`` (once) and return its path."""
    from vid3d.synthetic import SceneConfig, make_clip

    path = Path(work_dir) / "demo.mp4"
    if not path.is_file():
        Path(work_dir).mkdir(parents=True, exist_ok=True)
        typer.echo(f"rendering the built-in demo clip (synthetic preset {DEMO_PRESET!r}) to {path}", err=True)
        make_clip(SceneConfig.preset(DEMO_PRESET)).write_video(path)
    return path


def _setup_logging(quiet: bool) -> None:
    import logging
    import sys

    logger = logging.getLogger("vid3d")
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
    for handler in logger.handlers:  # main() may run again in one process (tests): this run's stderr
        if type(handler) is logging.StreamHandler:
            handler.stream = sys.stderr  # not setStream: it flushes the old stream, which may be closed
    logger.setLevel(logging.WARNING if quiet else logging.INFO)


_BASE = OptimizeConfig.preset(DEFAULT_PRESET)
PRIOR_CHOICES = tuple(b.replace("_", "-") for b in PRIOR_BACKENDS)  # the CLI spells depth-anything


def _per_preset(value) -> str:
    """``"draft 384, standard 512, best 512"``: a setting that the preset decides, read off PRESETS."""
    return ", ".join(f"{name} {value(cfg)}" for name, cfg in PRESETS.items())


@app.command("optimize")
def optimize(
    video: Optional[Path] = typer.Argument(
        None, help="A video file (mp4, mov, avi, mkv, webm) or a folder of images (sorted by name)."
    ),
    output: Optional[Path] = typer.Option(None, "-o", "--output",
                                          help="Bundle to write (default: <input name>.vid3d.h5 beside the input)."),
    demo: bool = typer.Option(False, "--demo", help="Render the built-in synthetic demo clip and run on it."),
    quality: str = typer.Option(DEFAULT_PRESET, "--quality", help=f"Preset: {', '.join(PRESETS)}."),
    stages: str = typer.Option(_BASE.stages, "--stages",
                               help=f"{' or '.join(STAGES)}: frontend = frames, flow, masks, poses and depth prior "
                                    "only; all = plus consistent-depth training."),
    max_side: Optional[int] = typer.Option(None, "--max-side", show_default=False,
                                           help="Long side of the working resolution in pixels (never upscales; "
                                                f"by preset: {_per_preset(lambda c: c.frames.max_side)})."),
    stride: int = typer.Option(_BASE.frames.stride, "--stride", help="Keep every N-th frame."),
    max_frames: Optional[int] = typer.Option(_BASE.frames.max_frames, "--max-frames",
                                             help="Keep at most N frames (none: all)."),
    start: int = typer.Option(_BASE.frames.start, "--start", help="First source frame (inclusive)."),
    end: Optional[int] = typer.Option(_BASE.frames.end, "--end",
                                      help="Source frame to stop before (exclusive; none: the end)."),
    gaps: Optional[str] = typer.Option(None, "--gaps", show_default=False,
                                       help="Optical-flow frame gaps, comma-separated (by preset: "
                                            f"{_per_preset(lambda c: ','.join(map(str, c.flow.gaps)))})."),
    masks: Optional[Path] = typer.Option(None, "--masks",
                                         help="Folder of motion masks, one image per frame, non-zero = moving."),
    prior: str = typer.Option(_BASE.prior.backend, "--prior", help=f"Depth prior: {', '.join(PRIOR_CHOICES)}."),
    prior_weights: Optional[Path] = typer.Option(None, "--prior-weights",
                                                 help="Weights of the learned prior (pydnet: a PyDNet v2 .tflite)."),
    download_models: bool = typer.Option(False, "--download-models",
                                         help="Download a learned model missing from the cache on first use "
                                              "(Depth Anything V2 Small; see vid3d models)."),
    force: bool = typer.Option(False, "--force", help="Recompute every stage (ignore the work-folder cache)."),
    resume: bool = typer.Option(True, "--resume/--no-resume",
                                help="Reuse finished stages and the training checkpoint from the work folder."),
    device: str = typer.Option(_BASE.device, "--device", help=f"{', '.join(DEVICES)} (torch stages)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Only warnings and the final line."),
    compact: bool = typer.Option(False, "--compact", help="Write the bundle for sharing: JPEG colour, coarser "
                                 "depth and scene-flow steps (bounds in `vid3d info`; `vid3d pack` converts later)."),
) -> None:
    """Estimate camera poses, motion masks, a depth prior and (with --stages all) consistent depth and
    scene flow for a video; write one 4D capture bundle (*.vid3d.h5). Finished stages are cached in
    <output>.work/, so an interrupted run resumes where it stopped."""
    from vid3d.formats.errors import InputError
    from vid3d.optimizer.pipeline import run_optimize
    from vid3d.optimizer.workdir import work_dir_for

    _setup_logging(quiet)
    if demo and video is not None:
        raise InputError("give either a video or --demo, not both")
    if not demo and video is None:
        raise InputError("no input: give a video file or image folder, or --demo for the built-in clip")
    if prior not in PRIOR_CHOICES:
        raise InputError(f"--prior must be one of {', '.join(PRIOR_CHOICES)}, got {prior!r}")
    if demo:
        output = output or Path("vid3d_demo.vid3d.h5")
        video = render_demo_video(work_dir_for(output))
    output = output or default_output(video)

    config = OptimizeConfig.preset(quality)
    frames_changes = dict(stride=stride, max_frames=max_frames, start=start, end=end)
    if max_side is not None:
        frames_changes["max_side"] = max_side
    changes = dict(stages=stages, device=device, compact=compact, frames=config.frames.replace(**frames_changes),
                   prior=config.prior.replace(backend=prior.replace("-", "_"),
                                              weights=str(prior_weights) if prior_weights is not None else None,
                                              allow_download=download_models),
                   masks=config.masks.replace(user_masks=str(masks) if masks is not None else None))
    parsed = parse_gaps(gaps)
    if parsed is not None:
        changes["flow"] = config.flow.replace(gaps=parsed)
    config = config.replace(**changes)

    result = run_optimize(video, output, config, force=force, resume=resume, progress=not quiet)
    total = sum(result.timings.values())
    cached = f" ({', '.join(result.cached)} reused from {result.work_dir})" if result.cached else ""
    typer.echo(f"wrote {result.bundle} in {total:.1f} s{cached}", err=True)
    typer.echo(f"view it with: vid3d view {result.bundle}")
