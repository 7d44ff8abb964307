"""PyDNet's graph as plain Python: read from a TFLite flatbuffer (or vid3d's own ``.npz``), checked once.

A :class:`Graph` is the ordered list of ops (``CONV_2D``, ``LEAKY_RELU``, ``RESIZE_BILINEAR``,
``CONCATENATION``) with the tensor indices they read and write, their options, every tensor's shape
at the file's native size (NHWC, e.g. ``(1, 384, 640, 3)``), and the constant tensors as numpy
arrays: conv weights ``(O, kh, kw, I)`` and biases ``(O,)`` in float32 (``DEQUANTIZE`` ops of
float16 constants are folded away here), resize targets ``(2,)`` int32.

The flatbuffer is walked directly (tables, vtables, vectors) with the field numbers of the TFLite
schema (``tensorflow/lite/schema/schema.fbs``), so neither TensorFlow nor the ``tflite`` package is
needed. ``.npz`` files written by :func:`save_graph` (a fine-tuned or a randomly built network) hold
the same description and go through the same checks.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vid3d.formats.errors import InputError

# BuiltinOperator codes of the ops we run (schema.fbs), and TensorType codes -> numpy dtypes
OP_CODES = {2: "CONCATENATION", 3: "CONV_2D", 6: "DEQUANTIZE", 23: "RESIZE_BILINEAR", 98: "LEAKY_RELU"}
KINDS = ("CONV_2D", "LEAKY_RELU", "RESIZE_BILINEAR", "CONCATENATION")
_DTYPES = {0: np.float32, 1: np.float16, 2: np.int32, 3: np.uint8, 4: np.int64, 9: np.int8}
_PADDING = {0: "SAME", 1: "VALID"}
_ACTIVATIONS = {0: "NONE", 1: "RELU"}  # fused activations we can run


@dataclass(frozen=True)
class Op:
    """One op: ``kind`` (one of KINDS), input / output tensor indices, and its options (JSON-able)."""

    kind: str
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    options: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Graph:
    """A checked PyDNet-style graph (see the module docstring).

    Attributes:
        input: index of the (1, H0, W0, 3) float32 RGB input tensor.
        output: index of the (1, H0, W0, 1) disparity output tensor.
        shapes: tensor index -> shape at the native size (NHWC).
        ops: the ops in execution order.
        constants: tensor index -> numpy array (float32 weights/biases, int32 resize sizes).
    """

    input: int
    output: int
    shapes: dict[int, tuple[int, ...]]
    ops: tuple[Op, ...]
    constants: dict[int, np.ndarray]

    @property
    def input_size(self) -> tuple[int, int]:
        """(H0, W0): the size the file was exported for (384, 640 for PyDNet v2)."""
        return self.shapes[self.input][1], self.shapes[self.input][2]

    @property
    def multiple(self) -> int:
        """Input heights and widths must be multiples of this (64 for PyDNet v2: six stride-2 levels)."""
        H0, W0 = self.input_size
        m = 1
        for op in self.ops:  # activations only (weights are 4-D too)
            shape = self.shapes[op.outputs[0]]
            if len(shape) == 4 and shape[1] > 0 and shape[2] > 0:
                m = max(m, H0 // shape[1], W0 // shape[2])
        return m


class _Table:
    """A flatbuffer table at ``pos`` of ``buf``; fields are read by their schema number."""

    def __init__(self, buf: bytes, pos: int) -> None:
        self.buf, self.pos = buf, pos
        self.vtable = pos - struct.unpack_from("<i", buf, pos)[0]
        self.vtable_size = struct.unpack_from("<H", buf, self.vtable)[0]

    def _offset(self, n: int) -> int:
        slot = 4 + 2 * n
        return struct.unpack_from("<H", self.buf, self.vtable + slot)[0] if slot < self.vtable_size else 0

    def scalar(self, n: int, fmt: str, default=0):
        o = self._offset(n)
        return struct.unpack_from("<" + fmt, self.buf, self.pos + o)[0] if o else default

    def _target(self, n: int) -> int | None:
        o = self._offset(n)
        if not o:
            return None
        p = self.pos + o
        return p + struct.unpack_from("<I", self.buf, p)[0]

    def table(self, n: int) -> "_Table | None":
        p = self._target(n)
        return None if p is None else _Table(self.buf, p)

    def tables(self, n: int) -> list["_Table"]:
        p = self._target(n)
        if p is None:
            return []
        count = struct.unpack_from("<I", self.buf, p)[0]
        items = [p + 4 + 4 * i for i in range(count)]
        return [_Table(self.buf, q + struct.unpack_from("<I", self.buf, q)[0]) for q in items]

    def array(self, n: int, dtype) -> np.ndarray:
        p = self._target(n)
        if p is None:
            return np.zeros(0, dtype)
        count = struct.unpack_from("<I", self.buf, p)[0]
        return np.frombuffer(self.buf, np.dtype(dtype).newbyteorder("<"), count, p + 4)


def _options(kind: str, op: _Table) -> dict:
    o = op.table(4)  # builtin_options (union value; its type tag is field 3)
    if kind == "CONV_2D":
        if o is None:
            raise InputError("TFLite CONV_2D op without options")
        return {"padding": _PADDING.get(o.scalar(0, "b"), "?"), "stride": [o.scalar(2, "i"), o.scalar(1, "i")],
                "activation": _ACTIVATIONS.get(o.scalar(3, "b"), "?"),
                "dilation": [o.scalar(5, "i", 1), o.scalar(4, "i", 1)]}
    if kind == "LEAKY_RELU":
        return {"alpha": float(o.scalar(0, "f", 0.0)) if o is not None else 0.0}
    if kind == "RESIZE_BILINEAR":
        return {"align_corners": bool(o and o.scalar(2, "B")), "half_pixel_centers": bool(o and o.scalar(3, "B"))}
    if kind == "CONCATENATION":
        return {"axis": o.scalar(0, "i") if o else 0, "activation": _ACTIVATIONS.get(o.scalar(1, "b") if o else 0, "?")}
    return {}


def read_tflite(path: str | Path) -> Graph:
    """The checked Graph of a ``.tflite`` file (one subgraph, PyDNet's five op kinds).

    Raises InputError (one line) for a missing file, a file that is not a TFLite flatbuffer, or ops,
    options or tensor types this executor does not run.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"PyDNet weights file {path} does not exist")
    buf = path.read_bytes()
    if len(buf) < 8 or buf[4:8] != b"TFL3":
        raise InputError(f"{path} is not a TFLite model (no 'TFL3' flatbuffer identifier)")
    try:
        return _parse(buf, path)
    except (struct.error, IndexError, ValueError) as exc:
        if isinstance(exc, InputError):
            raise
        raise InputError(f"{path} is not a readable TFLite flatbuffer ({type(exc).__name__}: {exc})") from None


def _parse(buf: bytes, path: Path) -> Graph:
    model = _Table(buf, struct.unpack_from("<I", buf, 0)[0])
    codes = [max(c.scalar(0, "b"), c.scalar(3, "i")) for c in model.tables(1)]
    buffers = []
    for b in model.tables(4):
        data = b.array(0, np.uint8)
        offset, size = b.scalar(1, "Q"), b.scalar(2, "Q")
        buffers.append(data if data.size or offset <= 1 else np.frombuffer(buf, np.uint8, size, offset))
    subgraphs = model.tables(2)
    if len(subgraphs) != 1:
        raise InputError(f"{path}: expected one TFLite subgraph, found {len(subgraphs)}")
    sg = subgraphs[0]
    shapes, constants = {}, {}
    for i, t in enumerate(sg.tables(0)):
        shapes[i] = tuple(int(s) for s in t.array(0, np.int32))
        data = buffers[t.scalar(2, "I")] if t.scalar(2, "I") < len(buffers) else np.zeros(0, np.uint8)
        if data.size:
            ttype = t.scalar(1, "b")
            if ttype not in _DTYPES:
                raise InputError(f"{path}: tensor {i} has TFLite type {ttype}, not supported")
            constants[i] = data.view(np.dtype(_DTYPES[ttype]).newbyteorder("<")).reshape(shapes[i])
    ins, outs = sg.array(1, np.int32), sg.array(2, np.int32)
    if len(ins) != 1 or len(outs) != 1:
        raise InputError(f"{path}: expected one input and one output, found {len(ins)} and {len(outs)}")
    ops = []
    for op in sg.tables(3):
        index = op.scalar(0, "I")
        code = codes[index] if index < len(codes) else -1
        if code not in OP_CODES:
            raise InputError(f"{path}: TFLite builtin op code {code} is not supported (PyDNet uses only "
                             f"{', '.join(sorted(OP_CODES.values()))})")
        kind = OP_CODES[code]
        inputs = tuple(int(i) for i in op.array(1, np.int32))
        outputs = tuple(int(i) for i in op.array(2, np.int32))
        if kind == "DEQUANTIZE":  # fp16 constant -> fp32 constant: folded here
            if inputs[0] not in constants:
                raise InputError(f"{path}: DEQUANTIZE of a non-constant tensor is not supported")
            constants[outputs[0]] = constants[inputs[0]].astype(np.float32)
            continue
        ops.append(Op(kind, inputs, outputs, _options(kind, op)))
    used = {i for op in ops for i in op.inputs}
    constants = {i: (a.astype(np.float32) if a.dtype.kind == "f" else a.astype(np.int32))
                 for i, a in constants.items() if i in used}
    return check_graph(Graph(int(ins[0]), int(outs[0]), shapes, tuple(ops), constants), str(path))


def check_graph(graph: Graph, where: str = "graph") -> Graph:
    """``graph`` itself when every op is one we run, reads only tensors made before it, and has the
    constants it needs with the right shapes; InputError (one line, naming ``where``) otherwise."""
    shape = graph.shapes.get(graph.input, ())
    if len(shape) != 4 or shape[0] != 1 or shape[3] != 3:
        raise InputError(f"{where}: input must be (1, H, W, 3) RGB, got {shape}")
    ready = {graph.input} | set(graph.constants)
    for k, op in enumerate(graph.ops):
        bad = _op_problem(graph, op)
        if bad:
            raise InputError(f"{where}: op {k} ({op.kind}) {bad}")
        missing = [i for i in op.inputs if i not in ready]
        if missing:
            raise InputError(f"{where}: op {k} ({op.kind}) reads tensors {missing} that no earlier op makes")
        ready.update(op.outputs)
    if graph.output not in ready:
        raise InputError(f"{where}: no op makes the output tensor {graph.output}")
    return graph


def _op_problem(graph: Graph, op: Op) -> str | None:
    c, o = graph.constants, op.options
    if op.kind not in KINDS:
        return f"is not supported (supported: {', '.join(KINDS)})"
    if len(op.outputs) != 1:
        return "must have one output"
    if op.kind == "CONV_2D":
        if len(op.inputs) != 3 or op.inputs[1] not in c or op.inputs[2] not in c:
            return "needs constant weights and bias"
        w, b = c[op.inputs[1]], c[op.inputs[2]]
        if w.ndim != 4 or b.shape != (w.shape[0],):
            return f"has weights {w.shape} and bias {b.shape}, expected (O, kh, kw, I) and (O,)"
        if o.get("padding") not in ("SAME", "VALID") or o.get("activation") not in ("NONE", "RELU"):
            return f"has padding {o.get('padding')} / fused activation {o.get('activation')}, not supported"
        if list(o.get("dilation", [1, 1])) != [1, 1] or min(o.get("stride", [0])) < 1:
            return f"has dilation {o.get('dilation')} / stride {o.get('stride')}, not supported"
    elif op.kind == "RESIZE_BILINEAR":
        if len(op.inputs) != 2 or op.inputs[1] not in c or c[op.inputs[1]].shape != (2,):
            return "needs a constant (2,) output size"
        if o.get("align_corners") or o.get("half_pixel_centers"):
            return "uses align_corners / half_pixel_centers; only the TF1 legacy mode is supported"
    elif op.kind == "CONCATENATION":
        if o.get("activation", "NONE") != "NONE" or not -4 <= int(o.get("axis", 0)) < 4:
            return f"has axis {o.get('axis')} / fused activation {o.get('activation')}, not supported"
    elif len(op.inputs) != 1:
        return "must have one input"
    return None


def save_graph(graph: Graph, path: str | Path) -> Path:
    """Write ``graph`` (e.g. fine-tuned or randomly built weights) to a ``.npz`` that :func:`load_graph` reads."""
    meta = {"input": graph.input, "output": graph.output, "shapes": {str(k): list(v) for k, v in graph.shapes.items()},
            "ops": [{"kind": op.kind, "inputs": list(op.inputs), "outputs": list(op.outputs), "options": op.options}
                    for op in graph.ops]}
    arrays = {f"t{i}": a for i, a in graph.constants.items()}
    arrays["__graph__"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    np.savez(Path(path), **arrays)
    return Path(path)


def load_graph(path: str | Path) -> Graph:
    """The checked Graph of a ``.tflite`` file or of a ``.npz`` written by :func:`save_graph` (by content)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"PyDNet weights file {path} does not exist")
    with open(path, "rb") as fh:
        head = fh.read(8)
    if head[:2] != b"PK":
        return read_tflite(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(bytes(data["__graph__"]).decode())
            constants = {int(k[1:]): data[k] for k in data.files if k != "__graph__"}
        graph = Graph(int(meta["input"]), int(meta["output"]), {int(k): tuple(v) for k, v in meta["shapes"].items()},
                      tuple(Op(d["kind"], tuple(d["inputs"]), tuple(d["outputs"]), d["options"]) for d in meta["ops"]),
                      constants)
    except (KeyError, ValueError, OSError) as exc:
        raise InputError(f"{path} is neither a TFLite model nor a vid3d PyDNet .npz ({type(exc).__name__})") from None
    return check_graph(graph, str(path))
