"""``vid3d models``: which learned models this machine has and why not; ``fetch`` downloads one into the
user cache (the only command that touches the network), ``import`` registers a local file or folder."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from vid3d.cli import app

models_app = typer.Typer(help="Learned models: list what is usable here (and why not), fetch, import.",
                         invoke_without_command=True, no_args_is_help=False, rich_markup_mode=None)
app.add_typer(models_app, name="models")

WIDTH = 16  # the name column


def _name(text: str) -> str:
    """The model key of a CLI spelling (``depth-anything`` -> ``depth_anything``); InputError when unknown."""
    from vid3d.formats.errors import InputError
    from vid3d.runtime.weights import MODELS

    name = text.replace("-", "_")
    if name not in MODELS:
        raise InputError(f"unknown model {text!r}; known: {', '.join(MODELS)}")
    return name


def prior_auto_choice() -> tuple[str, str]:
    """``(backend, why)`` that ``--prior auto`` picks on this machine now (downloads not allowed)."""
    from vid3d.optimizer.prior.stage import AUTO_ORDER, available_backends
    from vid3d.runtime.registry import model_status

    status = available_backends()
    name = next(b for b in AUTO_ORDER if status[b][0])
    if name != "geometric":
        return name, status[name][1]
    return name, f"no learned depth model is usable here (for depth_anything, {model_status('depth_anything').reason})"


def _listing(as_json: bool) -> None:
    from vid3d.runtime.registry import all_models
    from vid3d.runtime.weights import model_dirs, user_cache_dir

    models = all_models()
    picked, why = prior_auto_choice()
    if as_json:
        typer.echo(json.dumps({"user_cache": str(user_cache_dir()), "searched": [str(d) for d in model_dirs()],
                               "models": [m.to_dict() for m in models],
                               "prior_auto": {"backend": picked, "why": why}}, indent=2))
        return
    typer.echo(f"learned models (searched: {', '.join(str(d) for d in model_dirs())}, then the library caches)")
    pad = " " * WIDTH
    for m in models:
        typer.echo(f"{m.name:<{WIDTH}}{'usable' if m.usable else 'not usable':<12}{m.what}")
        typer.echo(f"{pad}licence: {m.licence}")
        for package, line in zip(m.missing_packages, m.install):
            typer.echo(f"{pad}needs {package}: {line}")
        typer.echo(f"{pad}{'weights: ' + str(m.weights) if m.weights else 'no weights: ' + m.get_weights}")
    typer.echo(f"--prior auto picks {picked}: {why}")


@models_app.callback()
def models(ctx: typer.Context,
           as_json: bool = typer.Option(False, "--json", help="Print the listing as JSON.")) -> None:
    """List every learned model: usable or not and why, where its weights are, how to get them."""
    if ctx.invoked_subcommand is None:
        _listing(as_json)


@models_app.command("list")
def list_models(as_json: bool = typer.Option(False, "--json", help="Print the listing as JSON.")) -> None:
    """List every learned model (the same as plain ``vid3d models``)."""
    _listing(as_json)


@models_app.command("fetch")
def fetch(
    names: list[str] = typer.Argument(..., metavar="NAME",
                                      help="Model(s) to download: raft, maskrcnn, depth_anything."),
    force: bool = typer.Option(False, "--force", help="Download again even when already in the cache."),
    url: Optional[str] = typer.Option(None, "--url", help="A mirror serving the origin hosts' paths "
                                                          "(default: $VID3D_MODELS_URL, else the origin)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar, no notices."),
) -> None:
    """Download learned models into the user cache (with a progress bar; atomic: an interrupted download
    leaves nothing behind). The only command that touches the network."""
    from vid3d.runtime.download import fetch_model, mirror_url
    from vid3d.runtime.weights import SOURCES, install_path, missing_packages
    from vid3d.runtime.registry import model_status

    for name in [_name(n) for n in names]:
        dest = install_path(name)
        if dest.exists() and not force:
            typer.echo(f"{name}: already at {dest} (--force downloads it again)")
            continue
        if SOURCES[name].files and not quiet:
            origin = mirror_url(SOURCES[name].files[0].url, url).rsplit("/", 1)[0]
            typer.echo(f"downloading {name} ({SOURCES[name].licence}) from {origin}/ to {dest}", err=True)
        where = fetch_model(name, base_url=url, force=force, progress=not quiet)
        typer.echo(f"{name}: {where}")
        if missing_packages(name):
            typer.echo(f"{name}: also needs {'; '.join(model_status(name).install)}", err=True)


@models_app.command("import")
def import_(
    path: Path = typer.Argument(..., help="A weights file, or a from_pretrained folder (Depth Anything)."),
    name: Optional[str] = typer.Option(None, "--name", help="The model it holds (default: told from its name)."),
    link: bool = typer.Option(False, "--link", help="Symlink it instead of copying."),
    force: bool = typer.Option(False, "--force", help="Replace the one already in the cache."),
) -> None:
    """Register a local weights file or folder in the user cache, where vid3d looks for it."""
    from vid3d.runtime.registry import import_model

    model, where = import_model(path, name=_name(name) if name is not None else None, link=link, force=force)
    typer.echo(f"{model}: {'linked' if link else 'copied'} {path} to {where}")
