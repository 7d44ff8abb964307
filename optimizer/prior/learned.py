"""Learned monocular depth backends (optional): Depth Anything (transformers), MiDaS (torch.hub) and
PyDNet v2 (its TFLite file, run by :mod:`.pydnet`).

All three predict relative *disparity* (inverse depth up to scale and shift); :mod:`.align` maps it to
the SfM scale. They are used only when their code and weights are already on this machine, or when
``allow_download`` is set (Depth Anything is then fetched into the user cache, MiDaS by torch.hub);
:func:`depth_anything_status` / :func:`midas_status` / :func:`pydnet_status` say whether each is usable
and why not.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from vid3d.runtime.weights import (INSTALL_HINTS, SOURCES, WeightsMissingError, find_weights, install_path,
                                   missing_packages, weights_status)

log = logging.getLogger("vid3d.prior")

DEPTH_ANYTHING_REPO = "depth-anything/Depth-Anything-V2-Small-hf"
MIDAS_REPO = "intel-isl/MiDaS"
MIDAS_MODEL = "DPT_Hybrid"


def _midas_hub_dir() -> Path:
    import torch

    return Path(torch.hub.get_dir()) / "intel-isl_MiDaS_master"


def depth_anything_status(allow_download: bool = False) -> tuple[bool, str]:
    """(usable, reason) for Depth Anything V2 Small via transformers (weights: ``vid3d.runtime.weights``;
    with ``allow_download`` it is usable when missing, fetched into the user cache on first use)."""
    missing = missing_packages("depth_anything")
    if missing:
        return False, f"the {', '.join(missing)} package is not installed ({INSTALL_HINTS['transformers']})"
    try:
        return True, str(find_weights("depth_anything"))
    except WeightsMissingError:
        if allow_download:
            return True, f"{DEPTH_ANYTHING_REPO}, downloaded into {install_path('depth_anything')} on first use"
        return False, ("Depth Anything V2 Small weights are not on this machine: vid3d models fetch depth_anything "
                       "(or vid3d models import PATH, or vid3d optimize --download-models)")


def midas_status(allow_download: bool = False) -> tuple[bool, str]:
    """(usable, reason) for MiDaS via torch.hub: its code in the torch hub cache, weights found by
    ``vid3d.runtime.weights``."""
    missing = missing_packages("midas")
    if missing:
        return False, f"MiDaS DPT models need the {', '.join(missing)} package, which is not installed"
    if allow_download:
        return True, f"{MIDAS_REPO}:{MIDAS_MODEL} (download allowed)"
    code = _midas_hub_dir()
    if not code.is_dir():
        return False, f"the torch.hub cache has no {MIDAS_REPO} code ({code} missing; offline)"
    return weights_status("midas")


def pydnet_status(weights: str | Path | None = None) -> tuple[bool, str]:
    """(usable, reason) for PyDNet v2: its ``pydnet*.tflite`` at ``weights`` (explicit path), in
    ``$VID3D_MODELS`` or in the user cache (never downloaded: research-use-only weights)."""
    return weights_status("pydnet", weights)


def depth_anything_weights(*, allow_download: bool) -> Path:
    """The folder of Depth Anything V2 Small (``from_pretrained`` layout) found by
    :func:`~vid3d.runtime.weights.find_weights`; when missing and ``allow_download``, first downloaded into
    the user cache by :func:`vid3d.runtime.download.fetch_model` (the same code as ``vid3d models fetch``)."""
    try:
        return find_weights("depth_anything")
    except WeightsMissingError:
        if not allow_download:
            raise
    from vid3d.runtime.download import fetch_model

    log.info("prior: downloading Depth Anything V2 Small (%s) into %s", SOURCES["depth_anything"].licence,
             install_path("depth_anything"))
    return fetch_model("depth_anything")


def depth_anything_disparity(rgb: np.ndarray, *, device: str, allow_download: bool,
                             weights: str | Path | None = None) -> np.ndarray:
    """Relative disparity (T, H, W) float32 >= 0 of frames (T, H, W, 3) uint8 with Depth Anything V2.

    ``weights``: a ``from_pretrained`` folder; None: :func:`depth_anything_weights` (local only: the model is
    never read from a hub here, only from the folder found or fetched into the cache).
    """
    import torch
    from transformers import AutoImageProcessor, AutoModelForDepthEstimation

    folder = str(weights if weights is not None else depth_anything_weights(allow_download=allow_download))
    proc = AutoImageProcessor.from_pretrained(folder, local_files_only=True)
    model = AutoModelForDepthEstimation.from_pretrained(folder, local_files_only=True)
    model = model.to(device).eval()
    T, H, W = rgb.shape[:3]
    out = np.empty((T, H, W), np.float32)
    with torch.no_grad():
        for t in range(T):
            inputs = proc(images=rgb[t], return_tensors="pt").to(device)
            pred = model(**inputs).predicted_depth  # (1, h, w) relative disparity
            pred = torch.nn.functional.interpolate(pred[:, None], size=(H, W), mode="bicubic", align_corners=False)
            out[t] = pred[0, 0].clamp(min=0).cpu().numpy()
    return out


def midas_disparity(rgb: np.ndarray, *, device: str, allow_download: bool) -> np.ndarray:
    """Relative disparity (T, H, W) float32 of frames (T, H, W, 3) uint8 with MiDaS DPT-Hybrid."""
    import torch

    if allow_download:
        model = torch.hub.load(MIDAS_REPO, MIDAS_MODEL, trust_repo=True)
        transforms = torch.hub.load(MIDAS_REPO, "transforms", trust_repo=True)
    else:
        code = str(_midas_hub_dir())
        model = torch.hub.load(code, MIDAS_MODEL, source="local")
        transforms = torch.hub.load(code, "transforms", source="local")
    model = model.to(device).eval()
    T, H, W = rgb.shape[:3]
    out = np.empty((T, H, W), np.float32)
    with torch.no_grad():
        for t in range(T):
            x = transforms.dpt_transform(rgb[t]).to(device)
            pred = model(x)
            pred = torch.nn.functional.interpolate(pred[:, None], size=(H, W), mode="bicubic", align_corners=False)
            out[t] = pred[0, 0].clamp(min=0).cpu().numpy()
    return out


def pydnet_disparity(rgb: np.ndarray, *, device: str, weights: str | Path | None = None) -> np.ndarray:
    """Relative disparity (T, H, W) float32 of frames (T, H, W, 3) uint8 with PyDNet v2 at 384x640."""
    from .pydnet import pydnet_disparity as run

    return run(rgb, weights=find_weights("pydnet", weights), device=device)
