"""Fast point splatting with a deterministic z-buffer (torch; CUDA when the inputs live there).

Nearest point wins, ties go to the lower point index, with no host synchronisation in the hot path:

1. project: ``p_c = R_cw p_w + t_cw``, ``(u, v) = (fx x/z + s y/z + cx, fy y/z + cy)`` (pixel centres at
   +0.5, so the pixel holding a point is ``floor(u), floor(v)``);
2. pack ``key = bits(z) << 32 | i`` into int64: IEEE float32 bits are monotone for z >= 0, so the
   smallest key is the nearest point and, on equal depth, the lowest index;
3. ``scatter_reduce_(..., "amin")`` the keys into an (H*W + 1) buffer; dropped points (behind the
   camera, non-finite, off the image) are routed to the extra slot instead of being filtered with
   ``nonzero()`` (which would sync with the host). A (2r+1)^2 footprint is one scatter into a canvas
   padded by r followed by a separable running minimum of the key image (exact: amin is associative);
4. unpack depth and index branch-free, gather colours.

``scatter_reduce_`` with ``amin`` is order-independent, so the result is the same on CPU and CUDA and
from run to run (sort-then-``index_put_`` is not: its write order is unspecified on CUDA).
The slow twin is :func:`vid3d.viewer.render.splat_reference.splat_reference`.
"""

from __future__ import annotations

import sys
from typing import Any, NamedTuple, Sequence

import torch

from vid3d.formats.errors import InputError, ShapeError
from vid3d.viewer.render.camera import Camera

NEAR_Z = 1e-6
"""Points with camera z-depth <= NEAR_Z are dropped (behind or on the camera plane)."""

_EMPTY_KEY = torch.iinfo(torch.int64).max
MAX_POINTS = 2**31 - 1
"""The packed key holds the point index in the low (int32) word."""

if sys.byteorder != "little":  # pragma: no cover - x86, ARM and CUDA are little-endian
    raise ImportError("vid3d.viewer.render.splat packs int64 keys from two int32 words and needs a little-endian machine")


class RenderResult(NamedTuple):
    """What a splat produces.

    rgb: (H, W, 3) float32 in [0, 1]; the background colour where nothing landed.
    depth: (H, W) float32 camera z-depth of the winning point; 0 = empty.
    index: (H, W) int64 index of the winning point into the input points; -1 = empty.
    """

    rgb: torch.Tensor
    depth: torch.Tensor
    index: torch.Tensor

    @property
    def mask(self) -> torch.Tensor:
        """(H, W) bool: True where a point landed."""
        return self.index >= 0


def check_points(points: Any, colors: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """Validate ``points`` (N, 3) float and ``colors`` (N, 3) uint8 or float in [0, 1] (tensors)."""
    if not isinstance(points, torch.Tensor) or not isinstance(colors, torch.Tensor):
        raise ShapeError(
            f"splat: expected torch tensors for points and colors, got {type(points).__name__} and {type(colors).__name__}"
        )
    if points.ndim != 2 or points.shape[1] != 3 or not points.is_floating_point():
        raise ShapeError(f"splat: expected points (N, 3) float, got {tuple(points.shape)} {points.dtype}")
    if colors.ndim != 2 or colors.shape != points.shape:
        raise ShapeError(f"splat: expected colors (N, 3) like points {tuple(points.shape)}, got {tuple(colors.shape)}")
    if colors.dtype != torch.uint8 and not colors.is_floating_point():
        raise ShapeError(f"splat: expected colors uint8 or float in [0, 1], got {colors.dtype}")
    if points.shape[0] > MAX_POINTS:
        raise ShapeError(f"splat: at most {MAX_POINTS} points, got {points.shape[0]}")
    if colors.device != points.device:
        raise ShapeError(f"splat: points on {points.device} but colors on {colors.device}")
    return points, colors


def check_radius(point_radius_px: Any) -> int:
    if isinstance(point_radius_px, bool) or not isinstance(point_radius_px, int) or not 0 <= point_radius_px <= 16:
        raise InputError(f"point_radius_px: expected an integer in [0, 16], got {point_radius_px!r}")
    return point_radius_px


def background_tensor(background: Sequence[float], device: torch.device) -> torch.Tensor:
    """``background`` (3,) RGB in [0, 1] as a float32 tensor on ``device``."""
    bg = torch.as_tensor(background, dtype=torch.float32)
    if bg.shape != (3,):
        raise ShapeError(f"background: expected 3 values (RGB in [0, 1]), got shape {tuple(bg.shape)}")
    return bg.to(device)


def project_to_camera(points: torch.Tensor, cam: Camera) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Project world points (N, 3) into ``cam``: returns ``(u (N,), v (N,), z (N,))`` float32.

    ``u, v`` are continuous pixel coordinates (pixel centres at +0.5); ``z`` is camera z-depth.
    ``P = K [R_cw | t_cw]`` is formed in float64 on the host (the camera lives there, so reading its
    entries is no device sync) and applied as scalar multiply-adds in float32 on the points' device:
    for 3-wide rows this beats a (N, 3) x (3, 3) matmul several times on CPU.
    """
    P = (cam.K @ cam.T_camera_world[:3, :]).tolist()  # 3 x 4 python floats
    pts = points if points.dtype == torch.float32 else points.to(torch.float32)
    x, y, zc = pts.unbind(1)

    def row(p: list[float]) -> torch.Tensor:
        out = torch.mul(x, p[0])
        out.add_(y, alpha=p[1]).add_(zc, alpha=p[2]).add_(p[3])
        return out

    z = row(P[2])  # K's last row is (0, 0, 1): this is the camera z-depth
    u = row(P[0]).div_(z)
    v = row(P[1]).div_(z)
    return u, v, z


def splat(
    points: torch.Tensor,
    colors: torch.Tensor,
    cam: Camera,
    *,
    point_radius_px: int = 0,
    background: Sequence[float] = (0.0, 0.0, 0.0),
    peel_depth: torch.Tensor | None = None,
    peel_margin: float = 0.05,
) -> RenderResult:
    """Splat ``points`` (N, 3) world coordinates with ``colors`` (N, 3) into ``cam``'s image.

    Each point covers its pixel, or a (2r+1) x (2r+1) square around it for ``point_radius_px = r``.
    The nearest point wins each pixel; on equal float32 depth, the lower point index wins.
    Depth peeling: with ``peel_depth`` (H, W) (e.g. a first render's depth), a point is dropped unless
    it lies farther than ``peel_depth * (1 + peel_margin)`` at its own pixel (0 there = no limit), so
    the result is the surface *behind* the first one (the hidden background bokeh needs).
    Runs on the points' device. Returns :class:`RenderResult` (rgb (H, W, 3), depth (H, W), index (H, W)).
    """
    points, colors = check_points(points, colors)
    r = check_radius(point_radius_px)
    dev = points.device
    H, W = cam.height, cam.width
    bg = background_tensor(background, dev)
    if peel_depth is not None and tuple(peel_depth.shape) != (H, W):
        raise ShapeError(f"splat: expected peel_depth ({H}, {W}), got {tuple(peel_depth.shape)}")
    zbuf = zbuffer_keys(points, cam, point_radius_px=r, peel_depth=peel_depth, peel_margin=peel_margin)
    return resolve_keys(zbuf, colors, bg, H, W, coloured_background=any(float(b) != 0.0 for b in background))


def zbuffer_keys(
    points: torch.Tensor,
    cam: Camera,
    *,
    point_radius_px: int = 0,
    peel_depth: torch.Tensor | None = None,
    peel_margin: float = 0.05,
) -> torch.Tensor:
    """The packed z-buffer (H*W,) int64: ``bits(z) << 32 | index`` of each pixel's winner, or int64 max.

    A footprint of radius r is exact without r^2 scatters: ``amin`` is associative, so scattering each
    point into its (2r+1)^2 square equals scattering it into its own pixel of a canvas padded by r and
    then taking a (2r+1)^2 running minimum of the keys (separable: 4r ``minimum`` ops on the image).
    """
    dev = points.device
    H, W = cam.height, cam.width
    N = points.shape[0]
    r = point_radius_px
    He, We = H + 2 * r, W + 2 * r  # canvas padded by r on each side
    buf = torch.full((He * We + 1,), _EMPTY_KEY, dtype=torch.int64, device=dev)
    if N > 0:
        u, v, z = project_to_camera(points, cam)
        # NaN fails every comparison and +-inf fails one bound, so no separate isfinite() is needed.
        ok = (z > NEAR_Z) & (u >= -r) & (u < W + r) & (v >= -r) & (v < H + r)
        # Pixel index on the canvas as a float (exact while He*We < 2^24 in float32, else float64).
        # Dropped points may hold NaN / huge coordinates: they go to the dump slot before any int cast.
        ftype = torch.float32 if (He + 1) * (We + 1) < 2**24 else torch.float64
        ui = u.floor_().to(ftype).add_(r)
        vi = v.floor_().to(ftype).add_(r)
        pixf = torch.add(ui, vi, alpha=float(We))
        if peel_depth is not None:  # keep only points behind the peeled surface at their own pixel
            limit = peel_depth.to(device=dev, dtype=torch.float32) * (1.0 + peel_margin)
            limit = torch.nn.functional.pad(limit, (r, r, r, r)).reshape(-1)  # canvas layout, 0 outside
            centre = torch.where(ok, pixf, 0.0).to(torch.int64)
            ok = ok & (z > limit.index_select(0, centre))
        pix = torch.where(ok, pixf, float(He * We)).to(torch.int64)
        # key = bits(z) << 32 | i, built as two int32 words of one int64 (little-endian: low word first).
        words = torch.empty((N, 2), dtype=torch.int32, device=dev)
        words[:, 0] = torch.arange(N, dtype=torch.int32, device=dev)
        words[:, 1] = z.view(torch.int32)
        buf.scatter_reduce_(0, pix, words.view(torch.int64)[:, 0], reduce="amin", include_self=True)
    canvas = buf[: He * We].view(He, We)
    if r == 0:
        return canvas.reshape(H * W)
    cols = canvas[:, 0:W]
    for k in range(1, 2 * r + 1):  # running min along x: (He, W)
        cols = torch.minimum(cols, canvas[:, k : k + W])
    out = cols[0:H]
    for k in range(1, 2 * r + 1):  # then along y: (H, W)
        out = torch.minimum(out, cols[k : k + H])
    return out.reshape(H * W)


def gather_rgba_uint8(colors: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``(M, 4)`` float32 RGBA in [0, 1] of uint8 ``colors`` (N, 3) at ``index`` (M,) int64, -1 = none.

    Each colour is packed with an opaque alpha into one int32 behind a transparent zero row, so the
    gather is a 1-D int32 ``index_select`` (a (N, 3) byte-row gather is 4x slower on CPU) and the
    conversion runs on contiguous bytes. The result is a (M, 4) buffer: callers slice ``[:, :3]``
    (a strided view, not a copy).
    """
    table = torch.zeros((colors.shape[0] + 1, 4), dtype=torch.uint8, device=colors.device)
    table[1:, :3] = colors
    table[1:, 3] = 255
    packed = table.view(torch.int32)[:, 0]
    return packed.index_select(0, index + 1).view(torch.uint8).view(-1, 4).to(torch.float32).div_(255.0)


def resolve_keys(
    keys: torch.Tensor, colors: torch.Tensor, background: torch.Tensor, H: int, W: int, *,
    coloured_background: bool = True,
) -> RenderResult:
    """Unpack a z-buffer of keys (H*W,) into a :class:`RenderResult` with ``colors`` (N, 3).

    Branch-free on purpose (``where``/``masked_fill`` with a scattered mask mispredict on CPU): the
    empty key int64-max has low word 0xFFFFFFFF, i.e. index -1 as int32, and high word 0x7FFFFFFF,
    a NaN depth that ``nan_to_num`` turns into 0.
    """
    words = keys.view(torch.int32).view(-1, 2)  # little-endian: (index, bits(z))
    index = words[:, 0].to(torch.int64)  # -1 where empty (point indices < 2^31)
    depth = torch.nan_to_num(words[:, 1].view(torch.float32), nan=0.0)
    if colors.dtype == torch.uint8:
        rgba = gather_rgba_uint8(colors, index)  # (H*W, 4), alpha 1 where a point landed, else 0
        if coloured_background:  # known on the host: no device sync
            rgba[:, :3].add_((1.0 - rgba[:, 3:]) * background)  # exact: x + 0 = x, 0 + bg = bg
        return RenderResult(rgb=rgba[:, :3].reshape(H, W, 3), depth=depth.reshape(H, W), index=index.reshape(H, W))
    table = torch.cat([background[None].to(colors.device), colors.to(torch.float32)])  # row 0: empty
    rgb = table.index_select(0, index + 1)  # (H*W, 3)
    return RenderResult(rgb=rgb.reshape(H, W, 3), depth=depth.reshape(H, W), index=index.reshape(H, W))
