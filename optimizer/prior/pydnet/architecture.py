"""PyDNet v2's layout as a few numbers, and a randomly initialised :class:`Graph` built from them.

The real file is ``PyDNetSpec()``: six encoder levels (3x3 stride-2 conv + 3x3 conv, LeakyReLU 0.2),
then from the coarsest level up: decoder convs (96, 64, 32, 8), a legacy bilinear x2 resize, a 2x2
conv, concatenation with the encoder feature of that level ``[feature, upsampled]``; finally a 3x3
conv to one channel (no activation) resized to the input size. Tests build tiny versions
(``PyDNetSpec(height=64, width=128, encoder=(3, 5, 7), decoder=(6, 4))``) to run the real loading
and execution code without the research-only weights file.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vid3d.formats.errors import InputError

from .tflite_graph import Graph, Op, check_graph


@dataclass(frozen=True)
class PyDNetSpec:
    """Widths and native size of a PyDNet-style network.

    Attributes:
        height, width: native input size (multiples of 2 ** len(encoder)).
        encoder: channels of each encoder level (each level halves the size).
        decoder: channels of the convs of each decoder level; the last one is also the width of the
            upsampling conv.
        alpha: LeakyReLU slope.
    """

    height: int = 384
    width: int = 640
    encoder: tuple[int, ...] = (16, 32, 64, 96, 128, 192)
    decoder: tuple[int, ...] = (96, 64, 32, 8)
    alpha: float = 0.2

    def __post_init__(self) -> None:
        m = 2 ** len(self.encoder)
        if not self.encoder or not self.decoder or self.height % m or self.width % m:
            raise InputError(f"PyDNetSpec needs encoder and decoder widths and a size that is a multiple of {m}, "
                             f"got {self.height}x{self.width}, encoder {self.encoder}, decoder {self.decoder}")


class _Builder:
    def __init__(self, spec: PyDNetSpec, rng: np.random.Generator) -> None:
        self.spec, self.rng = spec, rng
        self.shapes: dict[int, tuple[int, ...]] = {0: (1, spec.height, spec.width, 3)}
        self.constants: dict[int, np.ndarray] = {}
        self.ops: list[Op] = []

    def _tensor(self, shape: tuple[int, ...], value: np.ndarray | None = None) -> int:
        i = len(self.shapes)
        self.shapes[i] = tuple(int(s) for s in shape)
        if value is not None:
            self.constants[i] = value
        return i

    def conv(self, x: int, out: int, k: int = 3, stride: int = 1, act: bool = True) -> int:
        _, h, w, c = self.shapes[x]
        std = np.sqrt(2.0 / ((1 + self.spec.alpha ** 2) * k * k * c))  # He init for LeakyReLU
        wt = self._tensor((out, k, k, c), (self.rng.standard_normal((out, k, k, c)) * std).astype(np.float32))
        b = self._tensor((out,), self.rng.uniform(-0.1, 0.1, out).astype(np.float32))
        y = self._tensor((1, -(-h // stride), -(-w // stride), out))
        self.ops.append(Op("CONV_2D", (x, wt, b), (y,), {"padding": "SAME", "stride": [stride, stride],
                                                         "activation": "NONE", "dilation": [1, 1]}))
        if not act:
            return y
        z = self._tensor(self.shapes[y])
        self.ops.append(Op("LEAKY_RELU", (y,), (z,), {"alpha": self.spec.alpha}))
        return z

    def resize(self, x: int, h: int, w: int) -> int:
        size = self._tensor((2,), np.array([h, w], np.int32))
        y = self._tensor((1, h, w, self.shapes[x][3]))
        self.ops.append(Op("RESIZE_BILINEAR", (x, size), (y,), {"align_corners": False, "half_pixel_centers": False}))
        return y

    def concat(self, a: int, b: int) -> int:
        s = self.shapes[a]
        y = self._tensor((*s[:3], s[3] + self.shapes[b][3]))
        self.ops.append(Op("CONCATENATION", (a, b), (y,), {"axis": -1, "activation": "NONE"}))
        return y


def build_graph(spec: PyDNetSpec = PyDNetSpec(), *, seed: int = 0) -> Graph:
    """A randomly initialised (He-normal, seeded) Graph with the layout of ``spec`` (see the module docstring)."""
    g = _Builder(spec, np.random.default_rng(seed))
    x, features = 0, []
    for c in spec.encoder:
        x = g.conv(g.conv(x, c, stride=2), c)
        features.append(x)
    y = features[-1]
    for level in range(len(features) - 1, -1, -1):
        if level < len(features) - 1:
            _, h, w, _ = g.shapes[features[level]]
            y = g.concat(features[level], g.conv(g.resize(y, h, w), spec.decoder[-1], k=2))
        for c in spec.decoder:
            y = g.conv(y, c)
    y = g.resize(g.conv(y, 1, act=False), spec.height, spec.width)
    return check_graph(Graph(0, y, g.shapes, tuple(g.ops), g.constants), f"PyDNetSpec{spec}")
