"""Flow backends: OpenCV DIS (no weights) and torchvision RAFT (local weights only, never downloads).

A backend is a callable ``(rgb_i (H, W, 3) u8, rgb_j) -> flow (H, W, 2) f32`` with a ``name``.
"""

from __future__ import annotations

import logging

import numpy as np

from vid3d.formats.errors import InputError

from .config import FlowConfig

log = logging.getLogger("vid3d.flow")

def _gray(rgb: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY)


class DisFlow:
    """OpenCV DIS optical flow (no weights). ``__call__(rgb_i (H, W, 3), rgb_j) -> flow (H, W, 2) f32``."""

    def __init__(self, preset: str = "medium") -> None:
        import cv2

        code = {"ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST, "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
                "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM}[preset]
        self.name = f"dis:{preset}"
        self._dis = cv2.DISOpticalFlow_create(code)
        self._dis.setUseSpatialPropagation(True)

    def __call__(self, rgb_i: np.ndarray, rgb_j: np.ndarray) -> np.ndarray:
        return self._dis.calc(_gray(rgb_i), _gray(rgb_j), None).astype(np.float32)


class RaftFlow:
    """torchvision RAFT (large), only from local weights (:func:`vid3d.runtime.find_weights` ``"raft"``).

    ``__call__(rgb_i (H, W, 3), rgb_j) -> flow (H, W, 2) f32``: frames are padded to a multiple of 8,
    the flow is cropped back (vectors unchanged: padding does not rescale). Raises
    WeightsMissingError when the weights or torchvision are not here.
    """

    def __init__(self, device: str = "auto") -> None:
        from vid3d.runtime import WeightsMissingError, find_weights, resolve_device

        weights = find_weights("raft")
        try:
            import torch
            from torchvision.models.optical_flow import raft_large
        except Exception as exc:  # not installed, or a torchvision that does not match torch
            raise WeightsMissingError(f"torchvision RAFT cannot be imported ({type(exc).__name__}: {exc})") from None
        self._torch = torch
        self.device = resolve_device(device)
        model = raft_large(weights=None)
        model.load_state_dict(torch.load(weights, map_location="cpu"))
        self._model = model.eval().to(self.device)
        self.name = "raft"

    def __call__(self, rgb_i: np.ndarray, rgb_j: np.ndarray) -> np.ndarray:
        torch = self._torch
        H, W = rgb_i.shape[:2]
        ph, pw = (-H) % 8, (-W) % 8

        def prep(im):
            x = torch.from_numpy(np.ascontiguousarray(im)).permute(2, 0, 1)[None].float() / 127.5 - 1.0
            return torch.nn.functional.pad(x, (0, pw, 0, ph), mode="replicate").to(self.device)

        with torch.no_grad():
            flow = self._model(prep(rgb_i), prep(rgb_j))[-1][0]
        return flow.permute(1, 2, 0)[:H, :W].cpu().numpy().astype(np.float32)


def make_backend(config: FlowConfig, device: str = "auto"):
    """The flow backend for ``config``: RAFT when asked and available, DIS otherwise (logged)."""
    if config.backend in ("raft", "auto"):
        from vid3d.runtime import WeightsMissingError

        try:
            return RaftFlow(device)
        except WeightsMissingError as exc:
            if config.backend == "raft":
                raise InputError(f"flow backend raft is unavailable: {exc}; use the default DIS backend") from None
            log.info("flow: RAFT unavailable (%s); using OpenCV DIS %s", exc, config.dis_preset)
    return DisFlow(config.dis_preset)
