"""What learned models this machine has, and registering local files as models (no network here).

- :func:`model_status` / :func:`all_models`: per model, whether it is usable, where its weights were
  found, which packages are missing (with the pip line) and how to get the weights;
- :func:`import_model`: copy (or link) a local file or folder into the user cache under the layout that
  :func:`vid3d.runtime.weights.find_weights` searches, telling the model from the file name when not named.

Downloading lives in :mod:`vid3d.runtime.download`.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

from vid3d.formats.atomic import atomic_dir, atomic_file
from vid3d.formats.errors import InputError
from vid3d.runtime.weights import (INSTALL_HINTS, MODELS, SOURCES, WeightsMissingError, detect_model, find_weights,
                                   install_path, missing_packages)

FOLDER_WEIGHTS = ("model.safetensors", "pytorch_model.bin")  # a from_pretrained folder holds one of these


@dataclass(frozen=True)
class ModelStatus:
    """One learned model on this machine.

    Attributes:
        name, what, licence: the model's key, what it is for, its weights' licence.
        usable: its packages import and its weights were found.
        weights: where its weights were found (None: not on this machine).
        missing_packages: the packages it needs that do not import here.
        install: one pip line per missing package.
        fetchable: ``vid3d models fetch NAME`` downloads it.
        get_weights: one line saying how to get the weights.
        reason: one line saying why it is not usable ("" when usable).
    """

    name: str
    what: str
    licence: str
    usable: bool
    weights: Path | None
    missing_packages: tuple[str, ...]
    install: tuple[str, ...]
    fetchable: bool
    get_weights: str
    reason: str

    def to_dict(self) -> dict:
        """JSON-able fields (paths as strings)."""
        d = asdict(self)
        d["weights"] = None if self.weights is None else str(self.weights)
        d["missing_packages"], d["install"] = list(self.missing_packages), list(self.install)
        return d


def how_to_get(name: str) -> str:
    """One line: how to get the weights of model ``name`` onto this machine."""
    source = SOURCES[name]
    if source.files:
        return f"vid3d models fetch {name} (or vid3d models import PATH)"
    return source.not_fetchable


def model_status(name: str) -> ModelStatus:
    """The :class:`ModelStatus` of model ``name`` (InputError when unknown). Never touches the network."""
    if name not in MODELS:
        raise InputError(f"unknown model {name!r}; known: {', '.join(MODELS)}")
    spec, source = MODELS[name], SOURCES[name]
    missing = tuple(missing_packages(name))
    install = tuple(INSTALL_HINTS.get(p, f"pip install {p}") for p in missing)
    try:
        weights: Path | None = find_weights(name)
    except WeightsMissingError:
        weights = None
    why = [f"needs {p}: {line}" for p, line in zip(missing, install)]
    if weights is None:
        why.append(f"no weights: {how_to_get(name)}")
    return ModelStatus(name=name, what=spec.what, licence=source.licence, usable=not why, weights=weights,
                       missing_packages=missing, install=install, fetchable=bool(source.files),
                       get_weights=how_to_get(name), reason="; ".join(why))


def all_models() -> list[ModelStatus]:
    """:func:`model_status` of every model in :data:`~vid3d.runtime.weights.MODELS`, in its order."""
    return [model_status(name) for name in MODELS]


def _check_kind(name: str, path: Path) -> None:
    spec = MODELS[name]
    if spec.is_dir and not path.is_dir():
        raise InputError(f"{name} is a folder (config.json, preprocessor_config.json, model.safetensors); "
                         f"{path} is a file")
    if not spec.is_dir and path.is_dir():
        raise InputError(f"{name} is one file ({' or '.join(spec.patterns)}); {path} is a folder")
    if spec.is_dir:
        if not (path / "config.json").is_file() or not any((path / f).is_file() for f in FOLDER_WEIGHTS):
            raise InputError(f"{path} is not a {name} model folder: it needs config.json and "
                             f"{' or '.join(FOLDER_WEIGHTS)}")


def import_model(path: str | os.PathLike, *, name: str | None = None, link: bool = False,
                 force: bool = False) -> tuple[str, Path]:
    """Register the local file or folder ``path`` as model ``name`` (told from its name when None).

    Copies it (atomically) or, with ``link``, symlinks it to
    :func:`~vid3d.runtime.weights.install_path`; returns ``(name, where)``. Raises InputError (one line)
    for a missing path, an unknown name, a file it cannot tell, a file of the wrong kind, or a model
    already there (unless ``force``).
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise InputError(f"{path} does not exist")
    detected = detect_model(path)
    if name is None:
        if detected is None:
            expected = ", ".join(f"{n}: {' or '.join(s.patterns)}" for n, s in MODELS.items())
            raise InputError(f"cannot tell which model {path} holds (expected {expected}); "
                             f"name it with --name NAME")
        name = detected
    name = name.replace("-", "_")
    if name not in MODELS:
        raise InputError(f"unknown model {name!r}; known: {', '.join(MODELS)}")
    if detected is not None and detected != name:
        raise InputError(f"{path} looks like {detected} weights, not {name}")
    _check_kind(name, path)
    return name, _place(path, install_path(name), link=link, force=force)


def _place(path: Path, final: Path, *, link: bool, force: bool) -> Path:
    if final.exists() and not final.is_symlink() and final.resolve() == path.resolve():
        return final  # already where it belongs
    if (final.exists() or final.is_symlink()) and not force:
        raise InputError(f"{final} already holds these weights; add --force to replace it")
    final.parent.mkdir(parents=True, exist_ok=True)
    if link:
        tmp = final.with_name(f".{final.name}.{os.getpid()}.link")
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(path.resolve(), target_is_directory=path.is_dir())
        if final.is_dir() and not final.is_symlink():
            shutil.rmtree(final)
        os.replace(tmp, final)
        return final
    if final.is_symlink():
        final.unlink()
    if path.is_dir():
        with atomic_dir(final) as tmp:
            shutil.copytree(path, tmp, dirs_exist_ok=True)
    else:
        with atomic_file(final) as tmp:
            shutil.copyfile(path, tmp)
    return final
