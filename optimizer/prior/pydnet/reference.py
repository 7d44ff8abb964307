"""Slow twin of :class:`~.network.PyDNet`: the same graph evaluated in numpy, NHWC, float64.

Written independently of the torch module from the TF definitions: SAME padding as TF documents it
(``pad = max(k - s, 0)`` when ``s`` divides ``n``, else ``max(k - n % s, 0)``; the extra pixel goes
after), the convolution as a sum over kernel taps of strided slices times the tap's weight matrix,
and the TF1 legacy bilinear resize as one interpolation matrix per axis built from
``src = dst * n_in / n_out``.
"""

from __future__ import annotations

import numpy as np

from vid3d.formats.errors import ShapeError

from .tflite_graph import Graph


def tf_same_pads(n: int, k: int, s: int) -> tuple[int, int]:
    """TF SAME padding of one axis (size n, kernel k, stride s): (before, after)."""
    pad = max(k - s, 0) if n % s == 0 else max(k - n % s, 0)
    return pad // 2, pad - pad // 2


def conv2d_nhwc(x: np.ndarray, w: np.ndarray, b: np.ndarray, stride: tuple[int, int], padding: str) -> np.ndarray:
    """x (1, H, W, I), w (O, kh, kw, I), b (O,) -> (1, h, w, O), TF's CONV_2D (SAME or VALID)."""
    _, H, W, _ = x.shape
    O, kh, kw, _ = w.shape
    sh, sw = stride
    if padding == "SAME":
        (t, bo), (le, r) = tf_same_pads(H, kh, sh), tf_same_pads(W, kw, sw)
        x = np.pad(x, ((0, 0), (t, bo), (le, r), (0, 0)))
    h, wo = (x.shape[1] - kh) // sh + 1, (x.shape[2] - kw) // sw + 1
    out = np.zeros((1, h, wo, O), np.float64)
    for dy in range(kh):
        for dx in range(kw):
            patch = x[:, dy : dy + sh * (h - 1) + 1 : sh, dx : dx + sw * (wo - 1) + 1 : sw, :]  # (1, h, w, I)
            out += patch @ w[:, dy, dx, :].T
    return out + b


def legacy_resize_matrix(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) weights of TF1 legacy linear interpolation along one axis."""
    R = np.zeros((n_out, n_in))
    for d in range(n_out):
        src = d * n_in / n_out
        i0 = min(int(np.floor(src)), n_in - 1)
        i1 = min(i0 + 1, n_in - 1)
        R[d, i0] += 1 - (src - i0)
        R[d, i1] += src - i0
    return R


def resize_bilinear_nhwc(x: np.ndarray, h: int, w: int) -> np.ndarray:
    """(1, H, W, C) -> (1, h, w, C), TF1 legacy bilinear."""
    Ry, Rx = legacy_resize_matrix(x.shape[1], h), legacy_resize_matrix(x.shape[2], w)
    rows = np.einsum("yi,bixc->byxc", Ry, x, optimize=True)  # (1, h, W, C)
    return np.einsum("xj,byjc->byxc", Rx, rows, optimize=True)


def reference_disparity(graph: Graph, image: np.ndarray, *, clamp: bool = True) -> np.ndarray:
    """image (H, W, 3) float RGB in [0, 1] (sides multiples of ``graph.multiple``) -> (H, W) float64
    disparity, clamped at 0 unless ``clamp=False``."""
    image = np.asarray(image, np.float64)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ShapeError(f"reference_disparity expects (H, W, 3), got {image.shape}")
    H0, W0 = graph.input_size
    H, W = image.shape[:2]
    c = graph.constants
    values = {graph.input: image[None]}
    for op in graph.ops:
        x = values.get(op.inputs[0])
        if op.kind == "CONV_2D":
            y = conv2d_nhwc(x, c[op.inputs[1]].astype(np.float64), c[op.inputs[2]].astype(np.float64),
                            tuple(op.options["stride"]), op.options["padding"])
            y = np.maximum(y, 0) if op.options["activation"] == "RELU" else y
        elif op.kind == "LEAKY_RELU":
            y = np.where(x >= 0, x, op.options["alpha"] * x)
        elif op.kind == "RESIZE_BILINEAR":
            h0, w0 = c[op.inputs[1]]
            y = resize_bilinear_nhwc(x, int(h0) * H // H0, int(w0) * W // W0)
        else:
            y = np.concatenate([values[i] for i in op.inputs], axis=int(op.options["axis"]))
        values[op.outputs[0]] = y
    out = values[graph.output][0, :, :, 0]
    return np.maximum(out, 0) if clamp else out
