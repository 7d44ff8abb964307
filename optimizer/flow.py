"""Stage 2: optical flow between frame pairs (i, i+g), forward and backward, with validity masks.

    for g in gaps: for i: F_{i->i+g}, F_{i+g->i}   (OpenCV DIS, or RAFT when its weights are local)
    valid_{i->j}(x) = |F_{i->j}(x) + F_{j->i}(x + F_{i->j}(x))| <= 1 px  and  x + F_{i->j}(x) inside frame j

Flow vectors are in working-resolution pixels; a backend that runs at another size has its field
resized and its vectors rescaled (:func:`resize_flow`). Validity is evaluated on the source grid
(the pixels of frame i).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass, field

import numpy as np

from vid3d.formats.errors import InputError, ShapeError

log = logging.getLogger("vid3d.flow")

BACKENDS = ("auto", "dis", "raft")
DIS_PRESETS = ("ultrafast", "fast", "medium")
DEFAULT_GAPS = (1, 2, 4, 6, 8)


@dataclass(frozen=True)
class FlowConfig:
    """How optical flow is computed.

    Attributes:
        gaps: frame gaps g of the pairs (i, i+g); every pair is computed in both directions.
        backend: ``"dis"`` (OpenCV DIS, no weights), ``"raft"`` (torchvision RAFT; only with local
            weights, otherwise an InputError) or ``"auto"`` (RAFT when available, else DIS).
        dis_preset: DIS speed/quality preset: ``ultrafast``, ``fast`` or ``medium``.
        fb_threshold: forward-backward inconsistency (px) above which a pixel is invalid.
        device: torch device for RAFT (``auto``, ``cpu``, ``cuda``).
    """

    gaps: tuple[int, ...] = DEFAULT_GAPS
    backend: str = "dis"
    dis_preset: str = "medium"
    fb_threshold: float = 1.0
    device: str = "auto"

    def __post_init__(self) -> None:
        gaps = tuple(int(g) for g in self.gaps)
        if not gaps or min(gaps) < 1 or len(set(gaps)) != len(gaps):
            raise InputError(f"--gaps must be distinct positive integers like 1,2,4,6,8, got {self.gaps}")
        object.__setattr__(self, "gaps", tuple(sorted(gaps)))
        if self.backend not in BACKENDS:
            raise InputError(f"flow backend must be one of {BACKENDS}, got {self.backend!r}")
        if self.dis_preset not in DIS_PRESETS:
            raise InputError(f"DIS preset must be one of {DIS_PRESETS}, got {self.dis_preset!r}")
        if not self.fb_threshold > 0:
            raise InputError(f"fb_threshold must be > 0 pixels, got {self.fb_threshold}")

    @staticmethod
    def preset(name: str) -> "FlowConfig":
        """``draft`` (DIS fast), ``standard`` (DIS medium) or ``best`` (RAFT if available, else DIS medium)."""
        presets = {
            "draft": FlowConfig(dis_preset="fast"),
            "standard": FlowConfig(),
            "best": FlowConfig(backend="auto"),
        }
        if name not in presets:
            raise InputError(f"unknown FlowConfig preset {name!r}; expected one of {sorted(presets)}")
        return presets[name]

    def replace(self, **changes) -> "FlowConfig":
        return dataclasses.replace(self, **changes)

    def min_frames(self) -> int:
        """Frames a clip needs so that every gap has at least one pair: ``max(gaps) + 1``."""
        return max(self.gaps) + 1


@dataclass(frozen=True)
class FlowSet:
    """Optical flow of every pair.

    Attributes:
        pairs: ``(P, 2)`` int32 ``(i, j)``: flow from frame i to frame j (both directions present).
        flow: ``(P, H, W, 2)`` float32, pixels at the working resolution: pixel x of frame i lands at
            ``x + flow`` in frame j.
        valid: ``(P, H, W)`` bool, forward-backward consistent and inside frame j.
        backend: the backend that produced it (``"dis:medium"``, ``"raft"``).
        report: timings and statistics (JSON-able).
    """

    pairs: np.ndarray
    flow: np.ndarray
    valid: np.ndarray
    backend: str
    report: dict = field(default_factory=dict)

    def index(self, i: int, j: int) -> int:
        """Row of pair (i, j) in ``pairs``; KeyError when absent."""
        hits = np.flatnonzero((self.pairs[:, 0] == i) & (self.pairs[:, 1] == j))
        if not len(hits):
            raise KeyError(f"no flow for pair ({i}, {j})")
        return int(hits[0])

    def get(self, i: int, j: int) -> tuple[np.ndarray, np.ndarray]:
        """``(flow (H, W, 2), valid (H, W))`` from frame i to frame j."""
        k = self.index(i, j)
        return self.flow[k], self.valid[k]

    def as_dict(self) -> dict[tuple[int, int], tuple[np.ndarray, np.ndarray]]:
        """``{(i, j): (flow (H, W, 2) f32, valid (H, W) bool)}`` (the training stage's input)."""
        return {(int(i), int(j)): (self.flow[k], self.valid[k]) for k, (i, j) in enumerate(self.pairs)}


def frame_pairs(num_frames: int, gaps: tuple[int, ...]) -> list[tuple[int, int]]:
    """Ordered pairs ``[(i, i+g), (i+g, i), ...]`` for every gap with ``i + g < num_frames``."""
    pairs = []
    for g in gaps:
        for i in range(num_frames - g):
            pairs += [(i, i + g), (i + g, i)]
    return pairs


def check_clip_length(num_frames: int, gaps: tuple[int, ...]) -> None:
    """InputError when a clip of ``num_frames`` is too short for the largest gap."""
    need = max(gaps) + 1
    if num_frames < need:
        usable = ",".join(str(g) for g in gaps if g < num_frames) or "none"
        raise InputError(f"the clip has {num_frames} frames but flow gaps {','.join(map(str, gaps))} need at least "
                         f"{need}; use a longer clip, a smaller --stride, or --gaps {usable}")


# ---------------------------------------------------------------------------------------------
# Pure helpers (fast path + slow reference twin)
# ---------------------------------------------------------------------------------------------


def warp_bilinear(image: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """Sample ``image`` ``(H, W[, C])`` at ``x + flow`` for every pixel x; ``flow`` ``(H, W, 2)``.

    Bilinear, border-replicated; returns ``(H, W[, C])`` float32. Fast path (cv2.remap).
    """
    import cv2

    H, W = flow.shape[:2]
    v, u = np.mgrid[0:H, 0:W].astype(np.float32)
    map_x = u + flow[..., 0].astype(np.float32)
    map_y = v + flow[..., 1].astype(np.float32)
    return cv2.remap(np.asarray(image, dtype=np.float32), map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def warp_bilinear_reference(image: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """Slow twin of :func:`warp_bilinear` in plain numpy (same clamping at the border)."""
    image = np.asarray(image, dtype=np.float64)
    H, W = flow.shape[:2]
    out = np.zeros(image.shape, dtype=np.float64)
    for y in range(H):
        for x in range(W):
            sx = min(max(x + float(flow[y, x, 0]), 0.0), W - 1.0)
            sy = min(max(y + float(flow[y, x, 1]), 0.0), H - 1.0)
            x0, y0 = int(np.floor(sx)), int(np.floor(sy))
            x1, y1 = min(x0 + 1, W - 1), min(y0 + 1, H - 1)
            ax, ay = sx - x0, sy - y0
            out[y, x] = ((1 - ax) * (1 - ay) * image[y0, x0] + ax * (1 - ay) * image[y0, x1]
                         + (1 - ax) * ay * image[y1, x0] + ax * ay * image[y1, x1])
    return out.astype(np.float32)


def forward_backward_validity(flow_ij: np.ndarray, flow_ji: np.ndarray, threshold: float = 1.0) -> np.ndarray:
    """Valid pixels of frame i ``(H, W)`` bool for flows ``(H, W, 2)`` i->j and j->i.

    ``|F_ij(x) + F_ji(x + F_ij(x))| <= threshold`` and ``x + F_ij(x)`` inside frame j (pixel centres:
    index coordinates in [0, W-1] x [0, H-1] after the +0.5 shift cancels).
    """
    H, W = flow_ij.shape[:2]
    v, u = np.mgrid[0:H, 0:W].astype(np.float32)
    tx, ty = u + flow_ij[..., 0], v + flow_ij[..., 1]
    inside = (tx >= -0.5) & (tx <= W - 0.5) & (ty >= -0.5) & (ty <= H - 0.5)
    back = warp_bilinear(flow_ji, flow_ij)
    err = np.linalg.norm(flow_ij + back, axis=-1)
    return inside & (err <= threshold)


def forward_backward_validity_reference(flow_ij: np.ndarray, flow_ji: np.ndarray, threshold: float = 1.0) -> np.ndarray:
    """Slow twin of :func:`forward_backward_validity` (numpy loops)."""
    H, W = flow_ij.shape[:2]
    back = warp_bilinear_reference(flow_ji, flow_ij)
    valid = np.zeros((H, W), dtype=bool)
    for y in range(H):
        for x in range(W):
            tx, ty = x + flow_ij[y, x, 0], y + flow_ij[y, x, 1]
            inside = -0.5 <= tx <= W - 0.5 and -0.5 <= ty <= H - 0.5
            err = np.hypot(flow_ij[y, x, 0] + back[y, x, 0], flow_ij[y, x, 1] + back[y, x, 1])
            valid[y, x] = inside and err <= threshold
    return valid


def resize_flow(flow: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize a flow field ``(h, w, 2)`` to ``(height, width, 2)`` and rescale its vectors (u by W/w, v by H/h)."""
    import cv2

    h, w = flow.shape[:2]
    if (h, w) == (height, width):
        return flow.astype(np.float32, copy=False)
    out = cv2.resize(flow.astype(np.float32), (width, height), interpolation=cv2.INTER_LINEAR)
    out[..., 0] *= width / w
    out[..., 1] *= height / h
    return out


# ---------------------------------------------------------------------------------------------
# Backends
# ---------------------------------------------------------------------------------------------


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


class RaftUnavailable(RuntimeError):
    """RAFT cannot run here (no torchvision, or no weights in the local cache)."""


def raft_weights_path() -> "Path":
    """Where torchvision's RAFT-large weights would sit in the local torch hub cache."""
    from pathlib import Path

    import torch

    return Path(torch.hub.get_dir()) / "checkpoints" / "raft_large_C_T_SKHT_V2-ff5fadd5.pth"


class RaftFlow:
    """torchvision RAFT (large), only from locally cached weights (never downloads).

    ``__call__(rgb_i (H, W, 3), rgb_j) -> flow (H, W, 2) f32``: frames are padded to a multiple of 8,
    the flow is cropped back (vectors unchanged: padding does not rescale).
    """

    def __init__(self, device: str = "auto") -> None:
        weights = raft_weights_path()
        if not weights.is_file():
            raise RaftUnavailable(f"RAFT weights not in the local cache ({weights})")
        try:
            import torch
            from torchvision.models.optical_flow import raft_large
        except Exception as exc:  # not installed, or a torchvision that does not match torch
            raise RaftUnavailable(f"torchvision RAFT cannot be imported ({type(exc).__name__}: {exc})") from None
        self._torch = torch
        self.device = torch.device("cuda" if device == "auto" and torch.cuda.is_available() else
                                   ("cpu" if device == "auto" else device))
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


def make_backend(config: FlowConfig):
    """The flow backend for ``config``: RAFT when asked and available, DIS otherwise (logged)."""
    if config.backend in ("raft", "auto"):
        try:
            return RaftFlow(config.device)
        except RaftUnavailable as exc:
            if config.backend == "raft":
                raise InputError(f"flow backend raft is unavailable: {exc}; use the default DIS backend") from None
            log.info("flow: RAFT unavailable (%s); using OpenCV DIS %s", exc, config.dis_preset)
    return DisFlow(config.dis_preset)


# ---------------------------------------------------------------------------------------------
# The stage
# ---------------------------------------------------------------------------------------------


def compute_flow(rgb: np.ndarray, config: FlowConfig = FlowConfig(), *, progress: bool = False) -> FlowSet:
    """Optical flow of every pair (i, i+g), both directions, with forward-backward validity.

    Args:
        rgb: ``(T, H, W, 3)`` uint8 frames at the working resolution.
        config: :class:`FlowConfig`.
    Returns:
        :class:`FlowSet` with ``P = 2 * sum_g (T - g)`` pairs.
    Raises:
        ShapeError on a malformed clip; InputError when the clip is shorter than ``max(gaps) + 1``.
    """
    if not isinstance(rgb, np.ndarray) or rgb.ndim != 4 or rgb.shape[-1] != 3 or rgb.dtype != np.uint8:
        raise ShapeError(f"compute_flow expects rgb (T, H, W, 3) uint8, got {getattr(rgb, 'shape', None)}")
    T, H, W = rgb.shape[:3]
    check_clip_length(T, config.gaps)
    backend = make_backend(config)
    pairs = frame_pairs(T, config.gaps)
    flow = np.empty((len(pairs), H, W, 2), dtype=np.float32)
    t0 = time.perf_counter()
    items = range(0, len(pairs), 2)
    if progress:
        from tqdm import tqdm

        items = tqdm(items, desc=f"flow ({backend.name})", unit="pair", leave=False)
    for k in items:
        (i, j) = pairs[k]
        flow[k] = resize_flow(backend(rgb[i], rgb[j]), H, W)
        flow[k + 1] = resize_flow(backend(rgb[j], rgb[i]), H, W)
    t_flow = time.perf_counter() - t0
    valid = np.empty((len(pairs), H, W), dtype=bool)
    for k in range(0, len(pairs), 2):
        valid[k] = forward_backward_validity(flow[k], flow[k + 1], config.fb_threshold)
        valid[k + 1] = forward_backward_validity(flow[k + 1], flow[k], config.fb_threshold)
    report = {
        "backend": backend.name,
        "num_pairs": len(pairs),
        "gaps": list(config.gaps),
        "valid_fraction": float(valid.mean()),
        "seconds_per_pair": t_flow / max(len(pairs), 1),
        "seconds": time.perf_counter() - t0,
    }
    log.info("flow: %d pairs (gaps %s) with %s, %.0f%% forward-backward valid, %.3f s/pair",
             len(pairs), ",".join(map(str, config.gaps)), backend.name, 100 * report["valid_fraction"],
             report["seconds_per_pair"])
    return FlowSet(pairs=np.asarray(pairs, dtype=np.int32).reshape(-1, 2), flow=flow, valid=valid,
                   backend=backend.name, report=report)
