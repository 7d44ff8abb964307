"""The one device resolver: ``"auto"`` -> cuda when torch sees a GPU, else cpu."""

from __future__ import annotations

import os
from typing import Any

from vid3d.formats.errors import InputError

DEVICES = ("auto", "cpu", "cuda")
_NVIDIA_NODES = ("/dev/nvidiactl", "/dev/nvidia0")


def resolve_device(device: Any = "auto") -> Any:
    """``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or a ``torch.device`` -> ``torch.device``.

    Raises InputError on an unknown name, and on ``cuda`` when torch sees no CUDA GPU.
    """
    import torch

    if isinstance(device, torch.device):
        dev = device
    elif str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        text = str(device)
        if text not in ("cpu", "cuda") and not (text.startswith("cuda:") and text[5:].isdigit()):
            raise InputError(f"device must be auto, cpu or cuda[:N], got {device!r}")
        dev = torch.device(text)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InputError("device cuda was asked for but torch sees no CUDA GPU; use --device auto or cpu")
    return dev


def device_name(device: str = "auto") -> str:
    """Like :func:`resolve_device` but returns ``"cpu"`` / ``"cuda"`` / ``"cuda:N"`` as text, and for
    ``"auto"`` / ``"cpu"`` on a machine without an NVIDIA device node never imports torch (its import
    alone costs seconds)."""
    if str(device) == "cpu":
        return "cpu"
    if str(device) == "auto" and not any(os.path.exists(p) for p in _NVIDIA_NODES):
        return "cpu"
    return str(resolve_device(device))
