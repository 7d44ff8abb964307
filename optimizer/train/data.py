"""Inputs and outputs of training, and the clip prepared at training resolution.

``TrainInputs`` is checked at the public boundary (:meth:`TrainInputs.validate`): wrong shapes or
values raise :class:`ShapeError` / :class:`InputError` with a one-line message.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from vid3d.formats.conventions import rigidity_error, scale_intrinsics
from vid3d.formats.errors import InputError, ShapeError

Flows = dict[tuple[int, int], tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class TrainInputs:
    """Everything training needs, at full (stored) resolution.

    - ``rgb`` (T, H, W, 3) uint8
    - ``K`` (3, 3) pixels of this resolution (centres at +0.5)
    - ``T_world_camera`` (T, 4, 4) camera-to-world, OpenCV axes, same units as ``prior_depth``
    - ``prior_depth`` (T, H, W) float32 z-depth (> 0 where known; <= 0 / non-finite = unknown)
    - ``flows``: ``(i, j) -> (flow (H, W, 2) float32 from i to j, valid (H, W) bool)``; forward pairs
      (i < j) are trained on, gaps from ``TrainConfig.gaps``
    - ``dynamic_mask`` (T, H, W) bool, True = moving, or None
    - ``prior_confidence`` (T, H, W) float32 in [0, 1], or None
    """

    rgb: np.ndarray
    K: np.ndarray
    T_world_camera: np.ndarray
    prior_depth: np.ndarray
    flows: Flows
    dynamic_mask: np.ndarray | None = None
    prior_confidence: np.ndarray | None = None

    @property
    def num_frames(self) -> int:
        return int(self.rgb.shape[0])

    def validate(self) -> None:
        """Raise ShapeError / InputError when any array does not match the documented shapes."""
        rgb = np.asarray(self.rgb)
        if rgb.ndim != 4 or rgb.shape[-1] != 3 or rgb.dtype != np.uint8:
            raise ShapeError(f"rgb must be uint8 (T, H, W, 3), got {rgb.dtype} {rgb.shape}")
        T, H, W = rgb.shape[:3]
        if T < 2:
            raise InputError(f"training needs at least 2 frames, got {T}")
        if np.shape(self.K) != (3, 3):
            raise ShapeError(f"K must be (3, 3), got {np.shape(self.K)}")
        if np.shape(self.T_world_camera) != (T, 4, 4):
            raise ShapeError(f"T_world_camera must be ({T}, 4, 4), got {np.shape(self.T_world_camera)}")
        if not np.all(np.isfinite(self.T_world_camera)) or rigidity_error(self.T_world_camera).max() > 1e-3:
            raise InputError("T_world_camera must hold finite rigid camera-to-world transforms")
        if np.shape(self.prior_depth) != (T, H, W):
            raise ShapeError(f"prior_depth must be ({T}, {H}, {W}), got {np.shape(self.prior_depth)}")
        good = np.isfinite(self.prior_depth) & (self.prior_depth > 0)
        if good.reshape(T, -1).mean(axis=1).min() < 0.05:
            raise InputError("prior_depth has a frame with fewer than 5% positive finite pixels")
        for name in ("dynamic_mask", "prior_confidence"):
            a = getattr(self, name)
            if a is not None and np.shape(a) != (T, H, W):
                raise ShapeError(f"{name} must be ({T}, {H}, {W}) or None, got {np.shape(a)}")
        if not isinstance(self.flows, dict) or not self.flows:
            raise InputError("flows must be a non-empty dict (i, j) -> (flow (H, W, 2), valid (H, W))")
        for (i, j), fv in self.flows.items():
            if not (0 <= i < T and 0 <= j < T and i != j):
                raise InputError(f"flow key ({i}, {j}) is not a pair of distinct frames in 0..{T - 1}")
            if len(fv) != 2 or np.shape(fv[0]) != (H, W, 2) or np.shape(fv[1]) != (H, W):
                raise ShapeError(f"flows[({i}, {j})] must be (flow ({H}, {W}, 2), valid ({H}, {W})), "
                                 f"got {[np.shape(a) for a in fv]}")

    def fingerprint(self) -> str:
        """A short hash of the inputs (for checkpoints: resume only on the same clip)."""
        h = zlib.crc32(np.ascontiguousarray(self.T_world_camera, dtype=np.float32).tobytes())
        h = zlib.crc32(np.ascontiguousarray(self.K, dtype=np.float32).tobytes(), h)
        h = zlib.crc32(np.ascontiguousarray(self.prior_depth[:, ::7, ::7], dtype=np.float32).tobytes(), h)
        h = zlib.crc32(np.ascontiguousarray(self.rgb[:, ::7, ::7]).tobytes(), h)
        h = zlib.crc32(repr(sorted(self.flows)).encode(), h)
        return f"{h:08x}-{self.rgb.shape}"


@dataclass(frozen=True)
class TrainResult:
    """Output of training, full resolution.

    - ``depth`` (T, H, W) float32 fused refined z-depth
    - ``confidence`` (T, H, W) float32 in [0, 1] from flow/depth agreement across frames
    - ``scene_flow`` (T, H, W, 3) float32 world displacement to frame t+1 (last frame 0)
    - ``losses``: name -> (steps,) float32 per-step values (``total``, ``flow``, ``disp``, ...)
    - ``timings``: stage -> seconds; ``report``: JSON-able summary (device, steps, scales, ...)
    """

    depth: np.ndarray
    confidence: np.ndarray
    scene_flow: np.ndarray
    losses: dict[str, np.ndarray]
    timings: dict[str, float]
    report: dict = field(default_factory=dict)


def train_size(H: int, W: int, long_side: int, multiple: int = 8) -> tuple[int, int]:
    """Training resolution (h, w): long side ``min(long_side, max(H, W))``, rounded to ``multiple``."""
    s = min(1.0, long_side / max(H, W))
    h = max(multiple, int(round(H * s / multiple)) * multiple)
    w = max(multiple, int(round(W * s / multiple)) * multiple)
    return h, w


def _resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Anti-aliased bilinear resize of ``(B, C, H, W)``."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)


@dataclass
class PreparedClip:
    """The clip on the training device at training resolution (h, w). Internal to the trainer.

    rgb (T, 3, h, w) [0, 1]; log_prior (T, 1, h, w); prior_conf (T, h, w) | None; dynamic (T, h, w)
    bool | None; dynamic_band (T, h, w) bool | None: dynamic grown by the dilation; K (3, 3) at (h, w); T_world_camera (T, 4, 4); pairs list[(i, j)];
    flow (P, h, w, 2), valid (P, h, w) bool per pair; d_ref median prior depth; centre (3,),
    extent: the MLP's box; px_per_unit = fx / d_ref.
    """

    rgb: torch.Tensor
    log_prior: torch.Tensor
    prior_conf: torch.Tensor | None
    dynamic: torch.Tensor | None
    dynamic_band: torch.Tensor | None
    K: torch.Tensor
    T_world_camera: torch.Tensor
    pairs: list[tuple[int, int]]
    flow: torch.Tensor
    valid: torch.Tensor
    valid_np: np.ndarray
    dynamic_np: np.ndarray | None
    d_ref: float
    centre: torch.Tensor
    extent: float
    px_per_unit: float
    size: tuple[int, int]
    full_size: tuple[int, int]
    prior_full: np.ndarray
    K_full: np.ndarray
    invalid_prior_fraction: float


def fill_prior(prior: np.ndarray) -> tuple[np.ndarray, float]:
    """Prior ``(T, H, W)`` with unknown pixels (<= 0, non-finite) set to their frame's median; and that share."""
    prior = np.asarray(prior, dtype=np.float32).copy()
    bad = ~(np.isfinite(prior) & (prior > 0))
    for t in range(prior.shape[0]):
        if bad[t].any():
            prior[t][bad[t]] = np.median(prior[t][~bad[t]])
    return prior, float(bad.mean())


def prepare_clip(inputs: TrainInputs, pairs: list[tuple[int, int]], long_side: int,
                 device: torch.device, *, dilate_dynamic_px: int = 0) -> PreparedClip:
    """Resize everything to training resolution and move it to ``device``.

    ``dynamic_band`` is the dynamic mask grown by ``dilate_dynamic_px`` training pixels: flow along
    a moving object's outline mixes object and background motion, so depth there is treated like the
    mover's (``TrainConfig.dynamic_depth_grad``); the static scene-flow term keeps the plain mask.
    """
    T, H, W = inputs.rgb.shape[:3]
    h, w = train_size(H, W, long_side)
    sx, sy = w / W, h / H
    prior_full, bad_share = fill_prior(inputs.prior_depth)
    rgb = torch.from_numpy(np.ascontiguousarray(inputs.rgb)).permute(0, 3, 1, 2).float() / 255.0
    rgb = _resize(rgb, (h, w)).clamp(0, 1)
    log_prior = _resize(torch.from_numpy(np.log(prior_full))[:, None], (h, w))
    conf = None
    if inputs.prior_confidence is not None:
        c = np.nan_to_num(np.asarray(inputs.prior_confidence, dtype=np.float32)).clip(0, 1)
        conf = _resize(torch.from_numpy(c)[:, None], (h, w))[:, 0]
    dyn = dyn_np = band = None
    if inputs.dynamic_mask is not None:
        dyn = _resize(torch.from_numpy(np.asarray(inputs.dynamic_mask, dtype=np.float32))[:, None], (h, w)) > 0.05
        band = dyn
        if dilate_dynamic_px > 0:
            r = int(dilate_dynamic_px)
            band = F.max_pool2d(dyn.float(), 2 * r + 1, stride=1, padding=r) > 0.5
        dyn, band = dyn[:, 0], band[:, 0]
        dyn_np = dyn.numpy()
    flows, valids = [], []
    for (i, j) in pairs:
        f, v = inputs.flows[(i, j)]
        f = _resize(torch.from_numpy(np.asarray(f, dtype=np.float32)).permute(2, 0, 1)[None], (h, w))[0]
        f = torch.stack([f[0] * sx, f[1] * sy], dim=-1)
        v = _resize(torch.from_numpy(np.asarray(v, dtype=np.float32))[None, None], (h, w))[0, 0] > 0.99
        flows.append(f)
        valids.append(v)
    flow = torch.stack(flows) if flows else torch.zeros(0, h, w, 2)
    valid = torch.stack(valids) if valids else torch.zeros(0, h, w, dtype=torch.bool)

    K = scale_intrinsics(np.asarray(inputs.K, dtype=np.float64), sx, sy)
    Twc = np.asarray(inputs.T_world_camera, dtype=np.float64)
    d_ref = float(np.median(prior_full[:, ::4, ::4]))
    # The MLP's box: robust extent of the prior's world points (every frame, sub-sampled pixels).
    step = max(1, min(H, W) // 32)
    vv, uu = np.mgrid[0:H:step, 0:W:step].astype(np.float64) + 0.5
    rays = np.stack([uu, vv, np.ones_like(uu)], -1) @ np.linalg.inv(np.asarray(inputs.K, np.float64)).T
    pts = rays[None] * prior_full[:, ::step, ::step, None]
    pts = np.einsum("tij,thwj->thwi", Twc[:, :3, :3], pts) + Twc[:, None, None, :3, 3]
    pts = pts.reshape(-1, 3)
    lo, hi = np.percentile(pts, 2, axis=0), np.percentile(pts, 98, axis=0)
    centre = (lo + hi) / 2
    extent = float(max((hi - lo).max() / 2 * 1.25, 1e-6))
    return PreparedClip(
        rgb=rgb.to(device), log_prior=log_prior.float().to(device),
        prior_conf=None if conf is None else conf.to(device),
        dynamic=None if dyn is None else dyn.to(device),
        dynamic_band=None if band is None else band.to(device),
        K=torch.from_numpy(K).float().to(device), T_world_camera=torch.from_numpy(Twc).float().to(device),
        pairs=list(pairs), flow=flow.to(device), valid=valid.to(device), valid_np=valid.numpy(),
        dynamic_np=dyn_np, d_ref=d_ref, centre=torch.from_numpy(centre).float().to(device),
        extent=extent, px_per_unit=float(K[0, 0]) / d_ref, size=(h, w), full_size=(H, W),
        prior_full=prior_full, K_full=np.asarray(inputs.K, dtype=np.float64),
        invalid_prior_fraction=bad_share,
    )
