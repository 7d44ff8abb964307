"""PyDNet as a torch module: the graph's ops in its order, conv weights as trainable parameters.

Two TF details are reproduced exactly (slow twin: :mod:`.reference`):

- SAME padding pads ``total = max((ceil(n / s) - 1) * s + k - n, 0)`` pixels, ``total // 2`` before
  and the rest after: asymmetric for stride 2 on even sizes and for PyDNet's 2x2 convs;
- RESIZE_BILINEAR in the TF1 legacy mode (align_corners = half_pixel_centers = False) samples the
  source at ``src = dst * n_in / n_out`` (no half-pixel offset), which is not torch's
  ``interpolate(align_corners=False)``.

The resize targets are recomputed from the input size (the file's constants are for 384x640), so any
input whose sides are multiples of :attr:`Graph.multiple` (64 for PyDNet v2) runs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from vid3d.formats.errors import ShapeError

from .tflite_graph import Graph, Op, load_graph, save_graph

_NHWC_TO_NCHW = {0: 0, 1: 2, 2: 3, 3: 1}


def same_padding(n: int, k: int, s: int) -> tuple[int, int]:
    """TF SAME padding of one axis of size ``n`` for kernel ``k``, stride ``s``: (before, after)."""
    total = max((-(-n // s) - 1) * s + k - n, 0)
    return total // 2, total - total // 2


def resize_bilinear_legacy(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """TF1 legacy bilinear resize of (B, C, h, w) to (B, C, H, W): ``src = dst * in / out``, the last
    source row/column repeated past the edge."""

    def taps(n_in: int, n_out: int):
        src = torch.arange(n_out, device=x.device, dtype=torch.float64) * (n_in / n_out)
        i0 = src.floor().long().clamp(max=n_in - 1)
        i1 = (i0 + 1).clamp(max=n_in - 1)
        return i0, i1, (src - i0).to(x.dtype)

    y0, y1, fy = taps(x.shape[-2], size[0])
    x0, x1, fx = taps(x.shape[-1], size[1])
    top, bottom = x[..., y0, :], x[..., y1, :]
    rows = top + (bottom - top) * fy[:, None]
    left, right = rows[..., x0], rows[..., x1]
    return left + (right - left) * fx


class PyDNet(nn.Module):
    """PyDNet v2 (or any checked :class:`Graph` of its op kinds) with trainable fp32 weights.

    ``forward(x)``: x (B, 3, H, W) float RGB in [0, 1], H and W multiples of :attr:`multiple` ->
    (B, 1, H, W) relative disparity (inverse depth up to scale and shift), clamped at 0 unless
    ``clamp=False``. ``state_dict`` holds ``convs.<k>.weight`` (O, I, kh, kw) and ``convs.<k>.bias``.
    """

    def __init__(self, graph: Graph) -> None:
        super().__init__()
        self.graph = graph
        self.convs = nn.ModuleList()
        self._conv_of: dict[int, int] = {}
        for k, op in enumerate(graph.ops):
            if op.kind != "CONV_2D":
                continue
            w, b = graph.constants[op.inputs[1]], graph.constants[op.inputs[2]]  # (O, kh, kw, I), (O,)
            conv = nn.Conv2d(w.shape[3], w.shape[0], w.shape[1:3], stride=tuple(op.options["stride"]), bias=True)
            with torch.no_grad():
                conv.weight.copy_(torch.from_numpy(np.ascontiguousarray(w.transpose(0, 3, 1, 2))))
                conv.bias.copy_(torch.from_numpy(b))
            self._conv_of[k] = len(self.convs)
            self.convs.append(conv)
        last_use: dict[int, int] = {}
        for k, op in enumerate(graph.ops):
            for i in op.inputs:
                last_use[i] = k
        self._free_after = {k: [i for i, last in last_use.items() if last == k and i != graph.output]
                            for k in range(len(graph.ops))}

    @property
    def multiple(self) -> int:
        """Input sides must be multiples of this (64 for PyDNet v2)."""
        return self.graph.multiple

    @property
    def input_size(self) -> tuple[int, int]:
        """(H0, W0): the size the network was exported and trained for (384, 640)."""
        return self.graph.input_size

    @classmethod
    def from_tflite(cls, path: str | Path) -> "PyDNet":
        """The network of a ``.tflite`` file (InputError on a missing, foreign or unsupported file)."""
        return cls.load(path)

    @classmethod
    def load(cls, path: str | Path) -> "PyDNet":
        """The network of a ``.tflite`` file or of a ``.npz`` written by :meth:`save`."""
        return cls(load_graph(path))

    def to_graph(self) -> Graph:
        """The graph with this module's current (e.g. fine-tuned) weights."""
        constants = dict(self.graph.constants)
        for k, j in self._conv_of.items():
            op = self.graph.ops[k]
            constants[op.inputs[1]] = self.convs[j].weight.detach().cpu().numpy().transpose(0, 2, 3, 1).copy()
            constants[op.inputs[2]] = self.convs[j].bias.detach().cpu().numpy().copy()
        return Graph(self.graph.input, self.graph.output, self.graph.shapes, self.graph.ops, constants)

    def save(self, path: str | Path) -> Path:
        """Write the graph with the current weights to a ``.npz`` that :meth:`load` reads."""
        return save_graph(self.to_graph(), path)

    def forward(self, x: torch.Tensor, *, clamp: bool = True) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != 3:
            raise ShapeError(f"PyDNet expects (B, 3, H, W) RGB, got {tuple(x.shape)}")
        H, W = x.shape[-2:]
        m = self.multiple
        if H % m or W % m:
            raise ShapeError(f"PyDNet input sides must be multiples of {m}, got {H}x{W}")
        H0, W0 = self.input_size
        values = {self.graph.input: x}
        for k, op in enumerate(self.graph.ops):
            values[op.outputs[0]] = self._run(k, op, values, H / H0, W / W0)
            for i in self._free_after[k]:
                values.pop(i, None)
        y = values[self.graph.output]
        return y.clamp(min=0) if clamp else y

    def _run(self, k: int, op: Op, values: dict, sy: float, sx: float) -> torch.Tensor:
        a = values.get(op.inputs[0])
        if op.kind == "CONV_2D":
            conv = self.convs[self._conv_of[k]]
            if op.options["padding"] == "SAME":
                (kh, kw), (sh, sw) = conv.kernel_size, conv.stride
                top, bottom = same_padding(a.shape[-2], kh, sh)
                left, right = same_padding(a.shape[-1], kw, sw)
                a = F.pad(a, (left, right, top, bottom))
            y = conv(a)
            return F.relu(y) if op.options["activation"] == "RELU" else y
        if op.kind == "LEAKY_RELU":
            return F.leaky_relu(a, op.options["alpha"])
        if op.kind == "RESIZE_BILINEAR":
            h0, w0 = (int(v) for v in self.graph.constants[op.inputs[1]])
            return resize_bilinear_legacy(a, (round(h0 * sy), round(w0 * sx)))
        axis = int(op.options["axis"]) % 4  # CONCATENATION, NHWC axis -> NCHW dim
        return torch.cat([values[i] for i in op.inputs], dim=_NHWC_TO_NCHW[axis])
