"""Render a whole bundle to a video with one effect (what ``vid3d render`` runs).

``RenderConfig`` (frozen, one per run) -> :func:`render_bundle` -> ``RenderReport``.
Per frame: read the frame (only the datasets the effect needs), derive its world points on the device
(:func:`vid3d.viewer.points.world_points`), build the effect's camera, render, write one video frame. Focus / subject distances are auto-picked per frame (moving object's median
depth, else the centre's) and smoothed over time so the focus does not flicker.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from vid3d.formats.bundle import Bundle, Frame, open_bundle
from vid3d.formats.errors import InputError
from vid3d.runtime.device import resolve_device
from vid3d.runtime.selection import parse_frame_range
from vid3d.viewer.points import FramePoints, background_points, frame_depth, point_fields, world_points
from vid3d.viewer.render.bokeh import BokehSettings, auto_focus_distance, bokeh
from vid3d.viewer.render.camera import Camera
from vid3d.viewer.render.dolly import dolly_zoom_camera
from vid3d.viewer.render.effects import colorize_depth, depth_range, orbit_cameras, pullback_camera, side_by_side
from vid3d.viewer.render.splat import splat
from vid3d.viewer.render.video import VideoWriter
from vid3d.viewer.render.view import render_view

EFFECTS = ("pointcloud", "depth", "bokeh", "dolly", "orbit", "side-by-side")


@dataclass(frozen=True)
class RenderConfig:
    """Everything one ``vid3d render`` run needs (CLI options map 1:1).

    effect: one of EFFECTS.
    width, height: output size per panel in px (None: the bundle's, rounded down to even).
    fps: output frame rate (None: the bundle's fps / frame step).
    frames: ``START:END:STEP`` selection of bundle frames (None: all).
    device: auto, cpu or cuda.
    focus_distance: bokeh focus z-depth (None: auto per frame, smoothed).
    aperture: bokeh blur diameter in output px of a point at infinity (see BokehSettings).
    bokeh_preset: draft, standard or best (layers, max CoC).
    dolly_strength: relative camera move d'/d - 1 reached at the last frame (> -1).
    subject_distance: dolly / orbit / pull-back subject depth (None: auto per frame, smoothed).
    orbit_radius: distance from the camera to the orbited point (None: the subject distance).
    orbit_degrees: full swing of the orbit, in degrees.
    point_radius_px: splat footprint (2r+1)^2 for novel views.
    fill_frames: how many neighbouring frames (each side) lend static background points for holes.
    crf: x264 quality (lower = better, 18 ~ visually lossless).
    """

    effect: str = "pointcloud"
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    frames: str | None = None
    device: str = "auto"
    focus_distance: float | None = None
    aperture: float = 12.0
    bokeh_preset: str = "standard"
    dolly_strength: float = 0.6
    subject_distance: float | None = None
    orbit_radius: float | None = None
    orbit_degrees: float = 12.0
    point_radius_px: int = 1
    fill_frames: int = 3
    crf: int = 18

    PRESETS: ClassVar[dict[str, dict]] = {
        "draft": dict(bokeh_preset="draft", point_radius_px=1, fill_frames=1, crf=23),
        "standard": dict(),
        "best": dict(bokeh_preset="best", fill_frames=6, crf=14),
    }

    def __post_init__(self) -> None:
        if self.effect not in EFFECTS:
            raise InputError(f"--effect: expected one of {'|'.join(EFFECTS)}, got {self.effect!r}")
        for name in ("width", "height"):
            v = getattr(self, name)
            if v is not None and (v < 2 or v % 2):
                raise InputError(f"--{name}: expected an even number >= 2 (H.264 4:2:0), got {v}")
        if self.fps is not None and not (math.isfinite(self.fps) and self.fps > 0):
            raise InputError(f"--fps: expected a positive number, got {self.fps}")
        for name in ("focus_distance", "subject_distance", "orbit_radius"):
            v = getattr(self, name)
            if v is not None and not (math.isfinite(v) and v > 0):
                raise InputError(f"--{name.replace('_', '-')}: expected a positive distance, got {v}")
        if not (math.isfinite(self.aperture) and self.aperture >= 0):
            raise InputError(f"--aperture: expected >= 0 (px of blur at infinity), got {self.aperture}")
        if self.bokeh_preset not in BokehSettings.PRESETS:
            raise InputError(f"--bokeh-preset: expected one of {sorted(BokehSettings.PRESETS)}, got {self.bokeh_preset!r}")
        if not (math.isfinite(self.dolly_strength) and self.dolly_strength > -1):
            raise InputError(f"--dolly-strength: expected > -1 (the camera must stay in front of the subject), got {self.dolly_strength}")
        if not (math.isfinite(self.orbit_degrees) and 0 <= self.orbit_degrees <= 360):
            raise InputError(f"--orbit-degrees: expected 0..360, got {self.orbit_degrees}")
        if not 0 <= self.point_radius_px <= 16:
            raise InputError(f"--point-radius: expected 0..16, got {self.point_radius_px}")
        if not 0 <= self.fill_frames <= 32:
            raise InputError(f"--fill-frames: expected 0..32, got {self.fill_frames}")
        if not 0 <= self.crf <= 51:
            raise InputError(f"--crf: expected 0..51, got {self.crf}")
        resolve_device(self.device)

    @classmethod
    def preset(cls, name: str, **overrides) -> "RenderConfig":
        if name not in cls.PRESETS:
            raise InputError(f"render preset: expected one of {sorted(cls.PRESETS)}, got {name!r}")
        return cls(**{**cls.PRESETS[name], **overrides})


@dataclass
class RenderReport:
    """What a run wrote: path, frames, size (W x H of the video), fps, codec, depth field used."""

    path: Path
    num_frames: int
    width: int
    height: int
    fps: float
    codec: str
    depth_field: str
    notes: list[str] = field(default_factory=list)


def _smooth(values: list[float], window: int = 5) -> list[float]:
    """Centred moving median of per-frame distances (robust to one-frame jumps)."""
    v = np.asarray(values, dtype=np.float64)
    h = window // 2
    return [float(np.median(v[max(0, i - h) : i + h + 1])) for i in range(len(v))]


def _resize(img: torch.Tensor, H: int, W: int, *, nearest: bool) -> torch.Tensor:
    """(h, w) or (h, w, C) -> (H, W[, C]) float32."""
    if img.shape[:2] == (H, W):
        return img.to(torch.float32)
    x = img.to(torch.float32)
    x = x[None, None] if x.ndim == 2 else x.permute(2, 0, 1)[None]
    x = F.interpolate(x, size=(H, W), mode="nearest" if nearest else "bilinear", align_corners=False if not nearest else None)
    return x[0, 0] if img.ndim == 2 else x[0].permute(1, 2, 0)


def render_bundle(bundle_path: str | Path, output: str | Path, config: RenderConfig, *, progress: bool = True) -> RenderReport:
    """Render ``bundle_path`` with ``config.effect`` to the H.264 video ``output`` (atomic)."""
    from tqdm import tqdm

    dev = resolve_device(config.device)
    output = Path(output)
    notes: list[str] = []
    with open_bundle(bundle_path) as b:
        field_name = b.depth_field()
        if field_name == "prior":
            notes.append(f"{Path(bundle_path).name} has no refined depth (/depth/z) yet; rendering /depth/prior")
            print(f"note: {notes[-1]}", file=sys.stderr)
        frames = parse_frame_range(config.frames, b.num_frames)
        step = int(np.median(np.diff(frames))) if len(frames) > 1 else 1
        fps = config.fps or b.fps / max(step, 1)
        W = config.width or (b.width - b.width % 2)
        H = config.height or (b.height - b.height % 2)
        if W < 2 or H < 2:
            raise InputError(f"bundle frames are {b.width}x{b.height}: too small for a video")
        out_W = 3 * W if config.effect == "side-by-side" else W

        # First pass (nothing kept but numbers and a thumbnail of depth): per-frame auto distances,
        # smoothed over time, and one colour-map range for the whole clip (no flicker).
        dist_raw, thumbs = [], []
        for t in frames:
            f = b.frame(t, fields=(field_name, "dynamic_mask"))
            d = frame_depth(f, field_name)
            m = None if f.dynamic_mask is None else torch.from_numpy(f.dynamic_mask)
            dist_raw.append(auto_focus_distance(torch.from_numpy(d), m))
            thumbs.append(d[::4, ::4])
        dist_auto = _smooth(dist_raw)
        near, far = depth_range(torch.from_numpy(np.stack(thumbs)))
        del thumbs
        bg_cache: dict[int, FramePoints] = {}

        with VideoWriter(output, width=out_W, height=H, fps=fps, crf=config.crf) as writer:
            bar = tqdm(list(enumerate(frames)), desc=f"render {config.effect}", unit="frame", disable=not progress, file=sys.stderr)
            for i, t in bar:
                f = b.frame(t, fields=point_fields(field_name))
                depth = frame_depth(f, field_name)
                cam = Camera(K=f.K, T_world_camera=f.T_world_camera, height=b.height, width=b.width).resized(W, H)
                subject = config.subject_distance or dist_auto[i]
                ctx = _FrameContext(b, t, f, cam, dev, field_name, config, bg_cache)
                if config.effect == "depth":
                    img = colorize_depth(_resize(torch.from_numpy(depth), H, W, nearest=True), near=near, far=far)
                elif config.effect == "bokeh":
                    focus = config.focus_distance or dist_auto[i]
                    settings = BokehSettings.preset(config.bokeh_preset, focus_distance=focus, aperture=config.aperture)
                    rgb = _resize(torch.from_numpy(f.rgb).to(dev), H, W, nearest=False) / 255.0
                    dep = _resize(torch.from_numpy(depth).to(dev), H, W, nearest=True)
                    # the background hidden behind this frame's foreground, seen by neighbouring frames
                    bg = ctx.background()
                    hidden = splat(bg.points, bg.colors, cam, point_radius_px=1, peel_depth=dep) if len(bg) else None
                    img = bokeh(rgb, dep, settings, hidden_rgb=None if hidden is None else hidden.rgb,
                                hidden_depth=None if hidden is None else hidden.depth)
                elif config.effect == "pointcloud":
                    img = ctx.pointcloud_view(subject)
                elif config.effect == "dolly":
                    ease = 0.0 if len(frames) == 1 else 0.5 - 0.5 * math.cos(math.pi * i / (len(frames) - 1))
                    view = dolly_zoom_camera(cam, subject_distance=subject, strength=config.dolly_strength * ease)
                    img = ctx.novel_view(view)
                elif config.effect == "orbit":
                    radius = config.orbit_radius or subject
                    # one swing over the whole selection: angle(i) = (deg/2) sin(2 pi i / n)
                    view = orbit_cameras(cam, radius=radius, degrees=config.orbit_degrees, num_frames=len(frames))[i]
                    img = ctx.novel_view(view)
                else:  # side-by-side: RGB | depth | point cloud
                    rgb = _resize(torch.from_numpy(f.rgb), H, W, nearest=False) / 255.0
                    dep = colorize_depth(_resize(torch.from_numpy(depth), H, W, nearest=True), near=near, far=far)
                    img = side_by_side([rgb, dep, ctx.pointcloud_view(subject).cpu()])
                writer.write(img)
            codec = writer.codec
    return RenderReport(path=output, num_frames=len(frames), width=out_W, height=H, fps=fps, codec=codec or "?",
                        depth_field=field_name, notes=notes)


@dataclass
class _FrameContext:
    bundle: Bundle
    t: int
    frame: Frame
    cam: Camera
    device: torch.device
    field_name: str
    config: RenderConfig
    bg_cache: dict[int, FramePoints]

    def points(self) -> FramePoints:
        """This frame's world points on the device (every valid pixel)."""
        return world_points(self.frame, self.field_name, device=self.device)

    def background(self) -> FramePoints:
        """Static points of up to ``fill_frames`` neighbouring frames on each side (cached)."""
        k = self.config.fill_frames
        if k == 0:
            return FramePoints.empty(self.device)
        n = self.bundle.num_frames
        span = max(1, n // (2 * k + 1)) if n > 2 * k + 1 else 1
        near = [self.t + s * span for s in range(-k, k + 1) if s != 0 and 0 <= self.t + s * span < n]
        parts = []
        for u in near:
            if u not in self.bg_cache:
                if len(self.bg_cache) > 4 * k + 4:
                    self.bg_cache.pop(next(iter(self.bg_cache)))
                self.bg_cache[u] = background_points(self.bundle, [u], device=self.device, stride=2,
                                                     depth_field=self.field_name)
            parts.append(self.bg_cache[u])
        return FramePoints.concat(parts) if parts else FramePoints.empty(self.device)

    def novel_view(self, view: Camera) -> torch.Tensor:
        fp, bg = self.points(), self.background()
        res = render_view(fp.points, fp.colors, view, point_radius_px=self.config.point_radius_px, fill_holes=True,
                          background_points=bg.points, background_colors=bg.colors)
        return res.rgb

    def pointcloud_view(self, subject: float) -> torch.Tensor:
        fp = self.points()
        view = pullback_camera(self.cam, target_distance=subject)
        return render_view(fp.points, fp.colors, view, point_radius_px=self.config.point_radius_px,
                           fill_holes=False, background=(0.06, 0.06, 0.08)).rgb
