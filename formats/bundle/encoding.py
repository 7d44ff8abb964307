"""How the image datasets are stored (format 1.1): quantisation with stated error bounds, a 2-D
prediction filter that gzip compresses well, lossless or JPEG colour. Pure numpy (cv2 only for JPEG).

Each encoded dataset names its recipe in the attribute ``vid3d_encoding`` (:data:`ENCODINGS`); a
dataset without it is stored as format 1.0 did (float16 / uint8, :class:`Plain`). Every recipe
decodes with a few lines of numpy (``formats/README.md`` spells them out):

- ``delta2d``, the filter under the image recipes: integer codes ``q (..., H, W)`` are stored as
  their 2-D prediction residual ``e = q[y, x] - q[y, x-1] - q[y-1, x] + q[y-1, x-1]`` (modulo 2^bits,
  missing neighbours = 0); 8-bit residuals as int8, 16-bit ones zigzag-mapped to uint16
  (``e >= 0 -> 2e``, ``e < 0 -> -2e - 1``) so that small residuals of either sign fill only the low
  byte. Undone by ``q = cumsum(cumsum(e, -2), -1)`` in the code's unsigned dtype (wrapping).
- depth, prior (``log_uint16_delta2d``): ``q = round((log z - offset) / scale)``, ``q = 0`` for
  invalid; ``z = exp(offset + scale q)``, ``scale = log(1 + rel_step)``: ``|z' - z| <= max_rel_error z``.
- confidence (``uint8_delta2d``): ``q = round(levels c)``, ``c = q / levels`` (1.0's values exactly).
- scene flow (``int16_packed_delta``): only the moving pixels' vectors (those of ``/mask/dynamic``),
  ``q = round(v / scale)``, ``v = scale q``, ``scale`` a power of two at or below ``flow_rel_step`` x
  the scene scale, packed per frame (:class:`SceneFlow16`); static pixels are exactly 0.
- rgb (``rgb_delta2d``, lossless, planar): the planes G, R - G, B - G (mod 256);
  (``jpeg``, lossy): one JPEG file per frame, quality and measured error in attributes.

The ``*.vid3d.h5`` of format 1.0 stores depth as float16 at the same paths; every 1.1 recipe changes
the dataset's dtype or shape, so a 1.0 reader refuses the file ("has dtype uint16, expected
float16") instead of returning wrong numbers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

import numpy as np

from vid3d.formats.bundle.schema import F16_MAX, IMAGE_FIELDS
from vid3d.formats.errors import BundleFormatError, InputError

ENCODING_ATTR = "vid3d_encoding"
F16_REL = 2.0**-11  # float16 rounding: |x' - x| <= 2^-11 |x| (normal range)

# -- the filter -----------------------------------------------------------------------------------


def delta2d(q: np.ndarray) -> np.ndarray:
    """2-D prediction residual of integer codes ``q (..., H, W)`` (uint8/uint16), modulo 2^bits, same dtype."""
    dx = q.copy()
    dx[..., 1:] -= q[..., :-1]
    e = dx.copy()
    e[..., 1:, :] -= dx[..., :-1, :]
    return e


def undelta2d(e: np.ndarray) -> np.ndarray:
    """Inverse of :func:`delta2d`: running sums down then across, wrapping in ``e``'s unsigned dtype.

    Overwrites ``e`` (pass a copy to keep it). The same numbers as ``np.cumsum(np.cumsum(e, -2), -1)``
    (:func:`undelta2d_reference`), three times as fast: log2(n) whole-array vector additions per axis
    (a Hillis-Steele scan) instead of numpy's element-by-element cumsum.
    """
    for axis in (-2, -1):
        n, k = e.shape[axis], 1
        while k < n:
            hi = (Ellipsis, slice(k, None)) + (slice(None),) * (-1 - axis)
            lo = (Ellipsis, slice(None, n - k)) + (slice(None),) * (-1 - axis)
            e[hi] += e[lo].copy()  # e[i] += e[i - k], every i >= k at once
            k *= 2
    return e


def undelta2d_reference(e: np.ndarray) -> np.ndarray:
    """Slow twin of :func:`undelta2d`, the recipe as ``formats/README.md`` states it."""
    return np.cumsum(np.cumsum(e, axis=-2, dtype=e.dtype), axis=-1, dtype=e.dtype)


def zigzag16(e: np.ndarray) -> np.ndarray:
    """uint16 residual (two's complement) -> uint16 with 0, -1, 1, -2, ... mapped to 0, 1, 2, 3, ..."""
    s = e.view(np.int16)
    return ((s << 1) ^ (s >> 15)).view(np.uint16)


def unzigzag16(z: np.ndarray) -> np.ndarray:
    """Inverse of :func:`zigzag16` (uint16 -> uint16 two's complement)."""
    return (z >> 1) ^ (np.uint16(0) - (z & np.uint16(1)))


def pack16(q: np.ndarray) -> np.ndarray:
    """16-bit codes -> stored uint16 (delta2d + zigzag)."""
    return zigzag16(delta2d(q.view(np.uint16)))


def unpack16(stored: np.ndarray) -> np.ndarray:
    """Stored uint16 -> uint16 codes (a new array)."""
    return undelta2d(unzigzag16(np.asarray(stored, dtype=np.uint16)))


def pack8(q: np.ndarray) -> np.ndarray:
    """uint8 codes -> stored int8 residual."""
    return delta2d(q.astype(np.uint8, copy=False)).view(np.int8)


def unpack8(stored: np.ndarray) -> np.ndarray:
    """Stored int8 residual -> uint8 codes (a new array)."""
    return undelta2d(np.array(stored).view(np.uint8))


# -- what a writer is asked to do -------------------------------------------------------------------

RGB_MODES = ("lossless", "jpeg")


@dataclass(frozen=True)
class Storage:
    """How a writer stores the image datasets (presets: :data:`STORAGE_PRESETS`).

    Attributes:
        quantize: True writes format 1.1 (the recipes of this module); False the float16 layout of
            format 1.0, which every 1.0 reader opens (and ``rgb`` must then be ``lossless``).
        depth_rel_step: relative step of depth and prior, ``z_{k+1} = z_k (1 + step)``; the error is
            at most about half of it, relative. Default 2^-11: |error| <= 2.4e-4 z, half the worst
            case of float16 (2^-11) and below its mean, so renderings stay at least as close to the
            optimizer's float32 output as format 1.0's.
        flow_rel_step: scene-flow step as a fraction of the scene scale (median depth of the first
            frame), rounded down to a power of two; error at most half a step per component.
        rgb: ``lossless`` or ``jpeg`` (lossy).
        jpeg_quality: JPEG quality 1-100 (4:2:0 chroma) when ``rgb="jpeg"``.
        gzip_level: deflate effort 1-9 of the quantised datasets with codec ``gzip`` (reading is as
            fast at any level; 9 writes a few times slower).
    """

    quantize: bool = True
    depth_rel_step: float = 2.0**-11
    flow_rel_step: float = 1e-4
    rgb: str = "lossless"
    jpeg_quality: int = 90
    gzip_level: int = 6

    def __post_init__(self) -> None:
        if not 1e-5 <= self.depth_rel_step <= 0.1:
            raise InputError(f"depth_rel_step must lie in [1e-5, 0.1], got {self.depth_rel_step}")
        if not 1e-6 <= self.flow_rel_step <= 0.1:
            raise InputError(f"flow_rel_step must lie in [1e-6, 0.1], got {self.flow_rel_step}")
        if self.rgb not in RGB_MODES:
            raise InputError(f"rgb must be one of {RGB_MODES}, got {self.rgb!r}")
        if not 1 <= int(self.jpeg_quality) <= 100:
            raise InputError(f"jpeg_quality must lie in [1, 100], got {self.jpeg_quality}")
        if not 1 <= int(self.gzip_level) <= 9:
            raise InputError(f"gzip_level must lie in [1, 9], got {self.gzip_level}")
        if not self.quantize and self.rgb != "lossless":
            raise InputError("the float16 layout of format 1.0 stores rgb losslessly only")

    def replace(self, **changes: Any) -> Storage:
        return replace(self, **changes)


#: ``default``: quantised to half float16's depth bound, lossless colour, readable with h5py + numpy alone.
#: ``compact`` (for sharing): JPEG colour (quality 90), depth and prior to a relative step of 2^-7
#: (|error| <= 0.39 %), scene flow to 4e-4 of the scene scale, deflate level 9.
#: ``float16``: the format 1.0 layout (what vid3d before format 1.1 reads), gzip level 4 as then.
STORAGE_PRESETS: dict[str, Storage] = {
    "default": Storage(),
    "compact": Storage(rgb="jpeg", jpeg_quality=90, depth_rel_step=2.0**-7, flow_rel_step=4e-4, gzip_level=9),
    "float16": Storage(quantize=False, gzip_level=4),
}


def storage_of(storage: Storage | str) -> Storage:
    """A :class:`Storage` or the name of a preset -> :class:`Storage`."""
    if isinstance(storage, Storage):
        return storage
    if storage not in STORAGE_PRESETS:
        raise InputError(f"unknown storage {storage!r}; expected one of {', '.join(STORAGE_PRESETS)}")
    return STORAGE_PRESETS[storage]


# -- the recipes ------------------------------------------------------------------------------------


@dataclass
class Encoding:
    """One dataset's recipe: what one stored frame is, how a writer encodes a frame and a reader decodes
    (any leading frame axes), the attributes that carry its parameters, the error bound it states.

    ``bound`` is ``{"kind": "exact" | "relative" | "absolute" | "lossy", "max_error": float, ...}``;
    ``stats`` what the writer counted (clipped values, JPEG errors), stored with the attributes.
    """

    name: ClassVar[str] = "plain"
    packed: ClassVar[bool] = False  # True: all frames in one growing dataset (see SceneFlow16)
    stats: dict[str, float] = field(default_factory=dict, init=False)

    def stored(self, H: int, W: int) -> tuple[tuple[int, ...], Any]:
        """(shape of one stored frame, its dtype)."""
        raise NotImplementedError

    def encode(self, arr: np.ndarray, t: int) -> np.ndarray:
        """One checked frame (float32 / bool / uint8) -> what is stored for it."""
        raise NotImplementedError

    def decode(self, stored: np.ndarray) -> np.ndarray:
        """Stored frames ``(..., *stored shape)`` -> float32 / bool / uint8 frames."""
        raise NotImplementedError

    def attrs(self) -> dict[str, Any]:
        """Attributes written beside ``vid3d_encoding`` when the writer closes."""
        return {}

    @property
    def bound(self) -> dict[str, Any]:
        return {"kind": "exact", "max_error": 0.0}

    def describe(self) -> str:
        return "exact"

    def _count(self, key: str, n: int) -> None:
        self.stats[key] = self.stats.get(key, 0) + int(n)


@dataclass
class Plain(Encoding):
    """Format 1.0: depth/prior/scene flow float16, confidence round(255 c) uint8, mask 0/1, rgb uint8."""

    field_name: str = "depth"

    name: ClassVar[str] = "plain"

    def stored(self, H: int, W: int) -> tuple[tuple[int, ...], Any]:
        spec = IMAGE_FIELDS[self.field_name]
        return (H, W, *spec.channels), spec.dtype

    def encode(self, arr: np.ndarray, t: int) -> np.ndarray:
        name = self.field_name
        if name == "rgb":
            return arr
        if name == "dynamic_mask":
            return (arr > 0).astype(np.uint8)
        if name == "confidence":
            return np.round(arr * 255).astype(np.uint8)
        if np.abs(arr).max(initial=0) > F16_MAX:
            raise InputError(f"frame {t}: {name} exceeds float16 range ({F16_MAX}); rescale the scene units")
        return arr.astype(np.float16)

    def decode(self, stored: np.ndarray) -> np.ndarray:
        name = self.field_name
        if name == "dynamic_mask":
            return stored > 0
        if name == "confidence":
            return stored.astype(np.float32) / 255.0
        if name == "rgb":
            return stored
        return stored.astype(np.float32)

    @property
    def bound(self) -> dict[str, Any]:
        if self.field_name in ("depth", "prior", "scene_flow"):  # below 2^-14: subnormal, absolute 2^-25
            return {"kind": "relative", "max_error": F16_REL, "abs_floor": 2.0**-25}
        if self.field_name == "confidence":
            return {"kind": "absolute", "max_error": 0.5 / 255 + 1e-7}  # + float32 rounding of q / 255
        return {"kind": "exact", "max_error": 0.0}

    def describe(self) -> str:
        if self.field_name in ("depth", "prior", "scene_flow"):
            return f"float16, |error| <= {F16_REL:.2e} x |value|"
        if self.field_name == "confidence":
            return "uint8 step 1/255, |error| <= 0.5/255"
        return "exact"


@dataclass
class LogDepth(Encoding):
    """Depth/prior: log-quantised uint16, ``z = exp(offset + scale q)``, ``q = 0`` invalid."""

    rel_step: float = 2.0**-11
    offset: float | None = None  # set from the first frame (a multiple of scale: requantising is exact)
    _table: np.ndarray | None = field(default=None, init=False, repr=False)

    name: ClassVar[str] = "log_uint16_delta2d"

    @property
    def scale(self) -> float:
        return math.log1p(self.rel_step)

    def stored(self, H: int, W: int) -> tuple[tuple[int, ...], Any]:
        return (H, W), np.uint16

    def start(self, reference_depth: float) -> None:
        """Centre the 65535 codes on ``reference_depth`` (the first frame's median valid depth)."""
        ref = reference_depth if np.isfinite(reference_depth) and reference_depth > 0 else 1.0
        self.offset = (round(math.log(ref) / self.scale) - 32768) * self.scale

    def encode(self, z: np.ndarray, t: int) -> np.ndarray:
        if self.offset is None:
            raise AssertionError("LogDepth.start was not called")
        valid = z > 0
        logs = np.log(z[valid].astype(np.float64))
        q = np.rint((logs - self.offset) / self.scale)
        out_of_range = (q < 1) | (q > 65535)
        self._count("clipped", out_of_range.sum())
        codes = np.zeros(z.shape, np.uint16)
        codes[valid] = np.clip(q, 1, 65535).astype(np.uint16)
        return pack16(codes)

    def decode(self, stored: np.ndarray) -> np.ndarray:
        return np.take(self.table(), unpack16(stored))

    def table(self) -> np.ndarray:
        """``(65536,)`` float32: the depth of every code (``exp`` in float64, then rounded), 0 for code 0."""
        if self._table is None:
            with np.errstate(over="ignore"):  # codes beyond float32 (never written from float32 data): inf
                z = np.exp(self.offset + self.scale * np.arange(65536, dtype=np.float64)).astype(np.float32)
            z[0] = 0.0
            self._table = z
        return self._table

    def attrs(self) -> dict[str, Any]:
        return {"scale": self.scale, "offset": self.offset, "rel_step": self.rel_step,
                "max_rel_error": self.max_rel_error, "clipped": int(self.stats.get("clipped", 0))}

    @classmethod
    def from_attrs(cls, a: dict) -> LogDepth:
        enc = cls(rel_step=float(a["rel_step"]), offset=float(a["offset"]))
        if not math.isclose(enc.scale, float(a["scale"]), rel_tol=1e-12):
            raise BundleFormatError(f"log depth: scale {a['scale']} != log(1 + rel_step {a['rel_step']})")
        enc.stats["clipped"] = int(a.get("clipped", 0))
        return enc

    @property
    def max_rel_error(self) -> float:
        """``max |z' - z| / z`` over values inside the code range: ``exp(scale / 2) - 1`` (+ float32 rounding)."""
        return math.expm1(self.scale / 2) + 2.0**-24

    @property
    def bound(self) -> dict[str, Any]:
        return {"kind": "relative", "max_error": self.max_rel_error, "step": self.rel_step,
                "clipped": int(self.stats.get("clipped", 0))}

    def describe(self) -> str:
        clipped = int(self.stats.get("clipped", 0))
        text = f"log uint16, relative step {self.rel_step:.2e}: |error| <= {self.max_rel_error:.2e} x z"
        if self.offset is not None and self.scale * 32768 < 80:  # the code range narrower than float32's
            lo, hi = math.exp(self.offset + self.scale), math.exp(self.offset + self.scale * 65535)
            text += f" for z in [{lo:.3g}, {hi:.3g}]"
        return text + (f" ({clipped} pixels clipped to that range)" if clipped else "")


@dataclass
class Confidence8(Encoding):
    """Confidence: ``q = round(levels c)`` uint8, stored as the int8 2-D residual."""

    levels: int = 255

    name: ClassVar[str] = "uint8_delta2d"

    def stored(self, H: int, W: int) -> tuple[tuple[int, ...], Any]:
        return (H, W), np.int8

    def encode(self, c: np.ndarray, t: int) -> np.ndarray:
        return pack8(np.round(c * self.levels).astype(np.uint8))

    def decode(self, stored: np.ndarray) -> np.ndarray:
        return unpack8(stored).astype(np.float32) / np.float32(self.levels)  # as format 1.0 read it

    def attrs(self) -> dict[str, Any]:
        return {"levels": self.levels, "max_abs_error": 0.5 / self.levels}

    @classmethod
    def from_attrs(cls, a: dict) -> Confidence8:
        return cls(levels=int(a["levels"]))

    @property
    def bound(self) -> dict[str, Any]:
        return {"kind": "absolute", "max_error": 0.5 / self.levels + 1e-7}

    def describe(self) -> str:
        return f"uint8 step 1/{self.levels}: |error| <= {0.5 / self.levels:.2e}"


@dataclass
class SceneFlow16(Encoding):
    """Scene flow of the moving pixels only: ``q = round(v / scale)`` int16, packed.

    Frame ``t``'s vectors are the columns ``offsets[t]:offsets[t+1]`` of the dataset ``(3, N)``, one
    per pixel of its support (the frame's ``/mask/dynamic``, every pixel without a mask) in raster
    order, stored as the zigzag of their difference along that order. Every other pixel is 0.
    """

    rel_step: float = 1e-4
    scale: float | None = None  # power of two, set from the first frame
    scene_scale: float | None = None
    support: str = "all"  # SUPPORT_MASK or "all" (the dataset's attribute ``support``; set by the writer)

    name: ClassVar[str] = "int16_packed_delta"
    packed: ClassVar[bool] = True
    chunk: ClassVar[int] = 4096  # vectors per HDF5 chunk

    def stored(self, H: int, W: int) -> tuple[tuple[int, ...], Any]:
        return (3,), np.uint16  # (3, N): all frames' vectors, see OFFSETS_PATH

    def start(self, scene_scale: float) -> None:
        s = scene_scale if np.isfinite(scene_scale) and scene_scale > 0 else 1.0
        self.scene_scale = float(s)
        self.scale = 2.0 ** math.floor(math.log2(self.rel_step * s))

    def encode(self, v: np.ndarray, t: int, support: np.ndarray | None = None) -> np.ndarray:
        """``v (H, W, 3)`` and its support ``(H, W)`` bool (None: every pixel) -> ``(3, n)`` uint16."""
        if self.scale is None:
            raise AssertionError("SceneFlow16.start was not called")
        vecs = v.reshape(-1, 3) if support is None else v[support]  # (n, 3) in raster order
        q = np.rint(vecs.T.astype(np.float64) / self.scale)
        self._count("clipped", (np.abs(q) > 32767).sum())
        codes = np.clip(q, -32767, 32767).astype(np.int16).view(np.uint16)
        e = codes.copy()
        e[:, 1:] -= codes[:, :-1]
        return zigzag16(e)

    def decode_packed(self, stored: np.ndarray, support: np.ndarray | None, shape: tuple[int, int]) -> np.ndarray:
        """``(3, n)`` stored vectors and the support they belong to -> ``(H, W, 3)`` float32."""
        q = np.cumsum(unzigzag16(np.asarray(stored, np.uint16)), axis=-1, dtype=np.uint16).view(np.int16)
        H, W = shape
        v = np.zeros((H * W, 3), np.float32)
        rows = slice(None) if support is None else np.flatnonzero(support)
        v[rows] = np.multiply(q.T, np.float32(self.scale), dtype=np.float32)  # exact: int16 x a power of two
        return v.reshape(H, W, 3)

    def attrs(self) -> dict[str, Any]:
        return {"scale": self.scale, "rel_step": self.rel_step, "scene_scale": self.scene_scale,
                "max_abs_error": self.scale / 2, "clipped": int(self.stats.get("clipped", 0)),
                "offsets": OFFSETS_PATH}

    @classmethod
    def from_attrs(cls, a: dict) -> SceneFlow16:
        support = a.get("support", "all")
        enc = cls(rel_step=float(a["rel_step"]), scale=float(a["scale"]), scene_scale=float(a["scene_scale"]),
                  support=support.decode() if isinstance(support, bytes) else str(support))
        enc.stats["clipped"] = int(a.get("clipped", 0))
        return enc

    @property
    def bound(self) -> dict[str, Any]:
        return {"kind": "absolute", "max_error": self.scale / 2, "step": self.scale,
                "clipped": int(self.stats.get("clipped", 0))}

    def describe(self) -> str:
        clipped = int(self.stats.get("clipped", 0))
        return (f"int16 step {self.scale:.3g} (<= {self.rel_step:g} x scene scale {self.scene_scale:.3g}): "
                f"|error| <= {self.scale / 2:.2e} per component for |v| <= {32767 * self.scale:.3g}; "
                "moving pixels only, static ones exactly 0" + (f" ({clipped} components clipped)" if clipped else ""))


#: Companions of the packed scene flow: per-frame column offsets ``(T + 1,)`` int64; its attribute
#: ``support`` is SUPPORT_MASK (the vectors of the mask's pixels) or ``"all"`` (a bundle without mask).
OFFSETS_PATH = "/flow/scene_fwd_offsets"
SUPPORT_MASK = "/mask/dynamic"


@dataclass
class RgbLossless(Encoding):
    """RGB: planes G, R - G, B - G (mod 256), planar ``(3, H, W)``, int8 2-D residual. Exact."""

    name: ClassVar[str] = "rgb_delta2d"

    def stored(self, H: int, W: int) -> tuple[tuple[int, ...], Any]:
        return (3, H, W), np.int8

    def encode(self, rgb: np.ndarray, t: int) -> np.ndarray:
        r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
        return pack8(np.stack([g, r - g, b - g]))

    def decode(self, stored: np.ndarray) -> np.ndarray:
        p = unpack8(stored)  # (..., 3, H, W): G, R - G, B - G
        g = p[..., 0, :, :]
        rgb = np.empty((*g.shape, 3), np.uint8)
        np.add(p[..., 1, :, :], g, out=rgb[..., 0])
        rgb[..., 1] = g
        np.add(p[..., 2, :, :], g, out=rgb[..., 2])
        return rgb

    def describe(self) -> str:
        return "lossless"


@dataclass
class RgbJpeg(Encoding):
    """RGB: one JPEG (4:2:0) per frame, a variable-length uint8 array; decoded with OpenCV."""

    quality: int = 90

    name: ClassVar[str] = "jpeg"

    def stored(self, H: int, W: int) -> tuple[tuple[int, ...], Any]:
        import h5py

        return (), h5py.vlen_dtype(np.uint8)

    def encode(self, rgb: np.ndarray, t: int) -> np.ndarray:
        cv2 = _cv2()
        params = [cv2.IMWRITE_JPEG_QUALITY, int(self.quality)]
        if hasattr(cv2, "IMWRITE_JPEG_SAMPLING_FACTOR"):
            params += [cv2.IMWRITE_JPEG_SAMPLING_FACTOR, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_420]
        ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(rgb[..., ::-1]), params)
        if not ok:
            raise InputError(f"frame {t}: OpenCV could not encode the colour image as JPEG")
        err = np.abs(self._decode_one(buf).astype(np.int16) - rgb)
        mse = float(np.mean(err.astype(np.float64) ** 2))
        self.stats["max_abs_error"] = max(self.stats.get("max_abs_error", 0), int(err.max(initial=0)))
        psnr = 10 * math.log10(255**2 / mse) if mse > 0 else 99.0
        self.stats["psnr_db_min"] = min(self.stats.get("psnr_db_min", 99.0), psnr)
        self._count("jpeg_bytes", buf.size)
        return buf.reshape(-1)

    @staticmethod
    def _decode_one(buf: np.ndarray) -> np.ndarray:
        cv2 = _cv2()
        bgr = cv2.imdecode(np.asarray(buf, dtype=np.uint8), cv2.IMREAD_COLOR)
        if bgr is None:
            raise BundleFormatError("a JPEG frame of /image/rgb does not decode")
        return np.ascontiguousarray(bgr[..., ::-1])

    def decode(self, stored: np.ndarray) -> np.ndarray:
        if stored.dtype == object:  # several frames: (n,) of byte arrays -> (n, H, W, 3)
            return np.stack([self._decode_one(b) for b in stored.reshape(-1)])
        return self._decode_one(stored)

    def attrs(self) -> dict[str, Any]:
        return {"quality": int(self.quality), "chroma": "4:2:0",
                "max_abs_error": int(self.stats.get("max_abs_error", 0)),
                "psnr_db_min": float(self.stats.get("psnr_db_min", 99.0)),
                "jpeg_bytes": int(self.stats.get("jpeg_bytes", 0))}

    @classmethod
    def from_attrs(cls, a: dict) -> RgbJpeg:
        enc = cls(quality=int(a["quality"]))
        enc.stats.update(max_abs_error=float(a.get("max_abs_error", 255)), psnr_db_min=float(a.get("psnr_db_min", 0)))
        return enc

    @property
    def bound(self) -> dict[str, Any]:
        return {"kind": "lossy", "max_error": float(self.stats.get("max_abs_error", 255)), "quality": self.quality,
                "psnr_db_min": float(self.stats.get("psnr_db_min", 0))}

    def describe(self) -> str:
        return (f"JPEG quality {self.quality} (4:2:0, lossy): max |error| {self.stats.get('max_abs_error', '?'):g} "
                f"of 255, PSNR >= {self.stats.get('psnr_db_min', 0):.1f} dB")


def _cv2():
    try:
        import cv2
    except ImportError:  # pragma: no cover - opencv-python-headless is a dependency
        raise BundleFormatError("JPEG colour (compact bundles) needs OpenCV: "
                                "pip install opencv-python-headless") from None
    return cv2


#: encoding name -> class; and which encodings each field may use.
ENCODINGS: dict[str, type[Encoding]] = {c.name: c for c in (LogDepth, Confidence8, SceneFlow16, RgbLossless, RgbJpeg)}
FIELD_ENCODINGS: dict[str, tuple[str, ...]] = {
    "rgb": ("rgb_delta2d", "jpeg"),
    "depth": ("log_uint16_delta2d",),
    "prior": ("log_uint16_delta2d",),
    "confidence": ("uint8_delta2d",),
    "scene_flow": ("int16_packed_delta",),
    "dynamic_mask": (),
}


def encoding_for_writing(name: str, storage: Storage) -> Encoding:
    """The recipe a writer with ``storage`` uses for field ``name``."""
    if not storage.quantize or name == "dynamic_mask":
        return Plain(field_name=name)
    if name == "rgb":
        return RgbJpeg(quality=storage.jpeg_quality) if storage.rgb == "jpeg" else RgbLossless()
    if name in ("depth", "prior"):
        return LogDepth(rel_step=storage.depth_rel_step)
    if name == "confidence":
        return Confidence8()
    if name == "scene_flow":
        return SceneFlow16(rel_step=storage.flow_rel_step)
    raise InputError(f"unknown field {name!r}")


def encoding_for_reading(name: str, attrs: Any, path: str) -> Encoding:
    """The recipe of a stored dataset from its attributes; BundleFormatError if unknown or malformed."""
    enc = attrs.get(ENCODING_ATTR)
    if enc is None:
        return Plain(field_name=name)
    if isinstance(enc, bytes):
        enc = enc.decode()
    if enc not in ENCODINGS:
        raise BundleFormatError(f"{path} uses {ENCODING_ATTR} {enc!r}, which this vid3d does not know "
                                f"(it reads {', '.join(ENCODINGS)}); upgrade vid3d")
    if enc not in FIELD_ENCODINGS[name]:
        raise BundleFormatError(f"{path} uses {ENCODING_ATTR} {enc!r}; expected one of "
                                f"{list(FIELD_ENCODINGS[name]) or ['none']}")
    cls = ENCODINGS[enc]
    try:
        return cls.from_attrs(dict(attrs)) if hasattr(cls, "from_attrs") else cls()
    except (KeyError, TypeError, ValueError) as exc:
        raise BundleFormatError(f"{path}: {enc} attributes are missing or malformed ({exc})") from None
