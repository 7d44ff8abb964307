"""Learned monocular depth backends (optional): Depth Anything (transformers) and MiDaS (torch.hub).

Both predict relative *disparity* (inverse depth up to scale and shift); :mod:`.align` maps it to
the SfM scale. They are used only when their code and weights are already on this machine (or when
``allow_download`` is set); :func:`backend_status` says which are usable and why not.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

DEPTH_ANYTHING_REPO = "depth-anything/Depth-Anything-V2-Small-hf"
MIDAS_REPO = "intel-isl/MiDaS"
MIDAS_MODEL = "DPT_Hybrid"


def _midas_hub_dir() -> Path:
    import torch

    return Path(torch.hub.get_dir()) / "intel-isl_MiDaS_master"


def depth_anything_status(allow_download: bool = False) -> tuple[bool, str]:
    """(usable, reason) for Depth Anything V2 Small via transformers."""
    if importlib.util.find_spec("transformers") is None:
        return False, "the 'transformers' package is not installed (pip install transformers)"
    if allow_download:
        return True, f"{DEPTH_ANYTHING_REPO} (download allowed)"
    try:
        from huggingface_hub import try_to_load_from_cache

        hit = try_to_load_from_cache(DEPTH_ANYTHING_REPO, "model.safetensors")
    except Exception as exc:  # pragma: no cover - depends on the hub package version
        return False, f"cannot inspect the Hugging Face cache: {exc}"
    if not isinstance(hit, str):
        return False, f"weights of {DEPTH_ANYTHING_REPO} are not in the Hugging Face cache (offline)"
    return True, f"{DEPTH_ANYTHING_REPO} (cached)"


def midas_status(allow_download: bool = False) -> tuple[bool, str]:
    """(usable, reason) for MiDaS via torch.hub."""
    if importlib.util.find_spec("timm") is None:
        return False, "MiDaS DPT models need the 'timm' package, which is not installed"
    if allow_download:
        return True, f"{MIDAS_REPO}:{MIDAS_MODEL} (download allowed)"
    import torch

    code = _midas_hub_dir()
    ckpts = list((Path(torch.hub.get_dir()) / "checkpoints").glob("dpt_hybrid*.pt"))
    if not code.is_dir():
        return False, f"the torch.hub cache has no {MIDAS_REPO} code ({code} missing; offline)"
    if not ckpts:
        return False, f"the torch.hub cache has no {MIDAS_MODEL} checkpoint (offline)"
    return True, f"{MIDAS_REPO}:{MIDAS_MODEL} (cached)"


def depth_anything_disparity(rgb: np.ndarray, *, device: str, allow_download: bool) -> np.ndarray:
    """Relative disparity (T, H, W) float32 of frames (T, H, W, 3) uint8 with Depth Anything V2."""
    import torch
    from transformers import AutoImageProcessor, AutoModelForDepthEstimation

    proc = AutoImageProcessor.from_pretrained(DEPTH_ANYTHING_REPO, local_files_only=not allow_download)
    model = AutoModelForDepthEstimation.from_pretrained(DEPTH_ANYTHING_REPO, local_files_only=not allow_download)
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
