"""Where the weights of learned components are looked for: one place, one message.

Search order for a model (first hit wins):

1. an explicit path given by the user (a file, or a folder holding the model's file);
2. ``$VID3D_MODELS`` (a folder; the model's file directly in it or in ``<name>/``);
3. the user cache folder ``$XDG_CACHE_HOME/vid3d/models`` (default ``~/.cache/vid3d/models``),
   same layout;
4. the caches of the libraries the model comes from: torch hub's ``checkpoints/`` for torchvision
   weights, the Hugging Face hub cache for ``transformers`` models.

Nothing here downloads. A missing model raises :class:`WeightsMissingError` naming every place
that was looked in; :func:`weights_status` gives ``(usable, reason)`` for listings.

:data:`SOURCES` says where each model comes from (download addresses, checksums, licence, or why it is
import-only) and :func:`install_path` where ``vid3d models fetch`` / ``import`` put it; downloading itself
is :mod:`vid3d.runtime.download`, importing and listing :mod:`vid3d.runtime.registry`.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

from vid3d.formats.errors import InputError


class WeightsMissingError(InputError):
    """A learned component's weights (or the package that runs them) are not on this machine."""


@dataclass(frozen=True)
class ModelSpec:
    """One learned component.

    Attributes:
        name: the key users and configs name it by.
        what: one line saying what it is for.
        patterns: file-name globs of its weights (a folder matches when ``is_dir`` is set).
        packages: Python packages (import names) it needs besides torch.
        torch_hub: its weights may sit in torch hub's ``checkpoints/`` folder.
        hf_repo: a Hugging Face repository whose cached snapshot holds it (``transformers`` models).
        is_dir: the weights are a folder (``from_pretrained`` layout), not a file.
    """

    name: str
    what: str
    patterns: tuple[str, ...]
    packages: tuple[str, ...] = ()
    torch_hub: bool = False
    hf_repo: str | None = None
    is_dir: bool = False


MODELS: dict[str, ModelSpec] = {spec.name: spec for spec in (
    ModelSpec("raft", "optical flow (torchvision RAFT-large)", ("raft_large_C_T_SKHT_V2-ff5fadd5.pth",),
              packages=("torchvision",), torch_hub=True),
    ModelSpec("maskrcnn", "movable-object segmenter (torchvision Mask R-CNN v2, COCO)",
              ("maskrcnn_resnet50_fpn_v2_coco-73cbd019.pth",), packages=("torchvision",), torch_hub=True),
    ModelSpec("depth_anything", "monocular depth (Depth Anything V2 Small, transformers)",
              ("depth_anything_v2_small", "Depth-Anything-V2-Small-hf"), packages=("transformers",),
              hf_repo="depth-anything/Depth-Anything-V2-Small-hf", is_dir=True),
    ModelSpec("midas", "monocular depth (MiDaS DPT-Hybrid, torch hub)", ("dpt_hybrid*.pt",),
              packages=("timm",), torch_hub=True),
    ModelSpec("pydnet", "monocular depth (PyDNet v2 TFLite file; weights for research use only)",
              ("pydnet*.tflite",)),
)}


def model_dirs() -> list[Path]:
    """The vid3d model folders, in search order: ``$VID3D_MODELS`` (when set), then the user cache."""
    dirs = []
    if os.environ.get("VID3D_MODELS"):
        dirs.append(Path(os.environ["VID3D_MODELS"]).expanduser())
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser()
    dirs.append(cache / "vid3d" / "models")
    return dirs


def _torch_hub_checkpoints() -> Path | None:
    if importlib.util.find_spec("torch") is None:
        return None
    import torch

    return Path(torch.hub.get_dir()) / "checkpoints"


def _hf_snapshot(repo: str) -> Path | None:
    """The cached snapshot folder of ``repo`` holding ``config.json``, or None (never downloads)."""
    if importlib.util.find_spec("huggingface_hub") is None:
        return None
    try:
        from huggingface_hub import try_to_load_from_cache

        hit = try_to_load_from_cache(repo, "config.json")
    except Exception:  # an old or broken hub package: treat as not cached
        return None
    return Path(hit).parent if isinstance(hit, str) else None


def _match(folder: Path, spec: ModelSpec) -> Path | None:
    for base in (folder, folder / spec.name):
        if not base.is_dir():
            continue
        for pattern in spec.patterns:
            for hit in sorted(base.glob(pattern)):
                if hit.is_dir() == spec.is_dir:
                    return hit
    return None


def _places(spec: ModelSpec, explicit: str | os.PathLike | None) -> list[Path]:
    places = [Path(explicit).expanduser()] if explicit is not None else []
    places += model_dirs()
    if spec.torch_hub and (hub := _torch_hub_checkpoints()) is not None:
        places.append(hub)
    return places


def find_weights(name: str, explicit: str | os.PathLike | None = None) -> Path:
    """The weights of model ``name`` (a file, or a folder for ``is_dir`` models).

    ``explicit``: a user-given path (file or folder); when given and not usable, only it is reported.
    Raises WeightsMissingError (one line: what is missing, where it was looked for) or InputError on
    an unknown name.
    """
    if name not in MODELS:
        raise InputError(f"unknown model {name!r}; known: {', '.join(MODELS)}")
    spec = MODELS[name]
    if explicit is not None:
        path = Path(explicit).expanduser()
        if path.exists() and (path.is_dir() == spec.is_dir):
            return path
        if path.is_dir() and (hit := _match(path, spec)) is not None:
            return hit
        raise WeightsMissingError(f"{name} weights not found at {path} (expected "
                                  f"{' or '.join(spec.patterns)}{' folder' if spec.is_dir else ''})")
    for place in _places(spec, None):
        if (hit := _match(place, spec)) is not None:
            return hit
    if spec.hf_repo and (snap := _hf_snapshot(spec.hf_repo)) is not None:
        return snap
    looked = [str(p) for p in _places(spec, None)] + ([f"Hugging Face cache ({spec.hf_repo})"] if spec.hf_repo else [])
    raise WeightsMissingError(f"{name} weights ({spec.what}) are not on this machine; looked in "
                              f"{', '.join(looked)}; put {spec.patterns[0]} in one of them or set VID3D_MODELS")


def missing_packages(name: str) -> list[str]:
    """Packages model ``name`` needs that do not import here."""
    return [p for p in MODELS[name].packages if importlib.util.find_spec(p) is None]


def weights_status(name: str, explicit: str | os.PathLike | None = None) -> tuple[bool, str]:
    """``(usable, reason)`` of model ``name``: usable when its packages import and its weights are found."""
    missing = missing_packages(name)
    if missing:
        return False, f"needs the package(s) {', '.join(missing)}, not installed"
    try:
        return True, str(find_weights(name, explicit))
    except WeightsMissingError as exc:
        return False, str(exc)


# --- where each model comes from (read by vid3d.runtime.download and vid3d.runtime.registry) ---------------


@dataclass(frozen=True)
class RemoteFile:
    """One file of a model at its origin host.

    Attributes:
        url: its ``https://`` address at the origin; a mirror (``$VID3D_MODELS_URL``) serves the same path.
        sha256: its SHA-256 in hex when known (checked after download), else None.
        size: its size in bytes when known (checked after download), else None.
    """

    url: str
    sha256: str | None = None
    size: int | None = None

    @property
    def name(self) -> str:
        """The file name it is saved under (the last part of the URL)."""
        return self.url.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class ModelSource:
    """Where a model's weights come from and under which terms.

    Attributes:
        licence: the weights' licence, as users should read it.
        files: what ``vid3d models fetch`` downloads; empty: vid3d does not download it.
        not_fetchable: why it is not downloaded (empty when ``files`` is given).
        canonical: the name it is stored under in the user cache (a folder for ``is_dir`` models), chosen
            so that :func:`find_weights` finds it there.
    """

    licence: str
    canonical: str
    files: tuple[RemoteFile, ...] = ()
    not_fetchable: str = ""


_HF_DEPTH_ANYTHING = "https://huggingface.co/depth-anything/Depth-Anything-V2-Small-hf/resolve/main/"

SOURCES: dict[str, ModelSource] = {
    "raft": ModelSource(
        "BSD-3-Clause (torchvision)", "raft_large_C_T_SKHT_V2-ff5fadd5.pth",
        (RemoteFile("https://download.pytorch.org/models/raft_large_C_T_SKHT_V2-ff5fadd5.pth",
                    "ff5fadd56d26b40647388883af1547351ea17868b765c05b27231e72dd16a322"),)),
    "maskrcnn": ModelSource(
        "BSD-3-Clause (torchvision; trained on COCO)", "maskrcnn_resnet50_fpn_v2_coco-73cbd019.pth",
        (RemoteFile("https://download.pytorch.org/models/maskrcnn_resnet50_fpn_v2_coco-73cbd019.pth",
                    "73cbd0190fcbe3ba339921fbce2c3a0b6bb9126c9a133c85e43a2a8e060a109e", 185828065),)),
    "depth_anything": ModelSource(
        "Apache-2.0 (the Small model only; Base and Large are non-commercial)", "depth_anything_v2_small",
        (RemoteFile(_HF_DEPTH_ANYTHING + "config.json"),
         RemoteFile(_HF_DEPTH_ANYTHING + "preprocessor_config.json"),
         RemoteFile(_HF_DEPTH_ANYTHING + "model.safetensors",
                    "3152477ce0d8d6978d76b995120de97cb5b928701fd0f817769f59e249a16b70", 99173660))),
    "midas": ModelSource(
        "MIT (isl-org/MiDaS)", "dpt_hybrid_384.pt",
        not_fetchable="MiDaS runs through torch.hub, which fetches its code and weights itself: run "
                      "vid3d optimize --prior midas --download-models once online"),
    "pydnet": ModelSource(
        "research use only (PyDNet v2 authors)", "pydnet_v2.tflite",
        not_fetchable="its weights are for research use only, so vid3d does not download them: get the "
                      ".tflite from the PyDNet authors and run vid3d models import PATH"),
}

INSTALL_HINTS: dict[str, str] = {
    "transformers": "pip install 'vid3d[learned]'",
    "torchvision": "pip install torchvision==0.28.0 from the index your torch 2.13.0 came from "
                   "(a plain pip install torchvision replaces torch)",
    "timm": "pip install timm (it needs torchvision: install that first, see raft)",
}


def user_cache_dir() -> Path:
    """The user cache folder of models (``$XDG_CACHE_HOME/vid3d/models``): where fetch and import write."""
    return model_dirs()[-1]


def install_path(name: str) -> Path:
    """Where ``vid3d models fetch`` / ``import`` put model ``name`` so that :func:`find_weights` finds it:
    ``<user cache>/<canonical>/`` for folder models, ``<user cache>/<name>/<canonical>`` for files."""
    if name not in MODELS:
        raise InputError(f"unknown model {name!r}; known: {', '.join(MODELS)}")
    canonical = SOURCES[name].canonical
    return user_cache_dir() / canonical if MODELS[name].is_dir else user_cache_dir() / name / canonical


def detect_model(path: str | os.PathLike) -> str | None:
    """The model a local file or folder holds, by its name (the specs' patterns) or, for a folder, by the
    ``model_type`` in its ``config.json`` (a ``from_pretrained`` folder); None when it is none of them."""
    import fnmatch
    import json

    path = Path(path)
    for spec in MODELS.values():
        if path.is_dir() == spec.is_dir and any(fnmatch.fnmatch(path.name, p) for p in spec.patterns):
            return spec.name
    if path.is_dir() and (path / "config.json").is_file():
        try:
            model_type = json.loads((path / "config.json").read_text()).get("model_type")
        except (OSError, ValueError, AttributeError):
            return None
        if model_type == "depth_anything":
            return "depth_anything"
    return None
