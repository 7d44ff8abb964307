"""Stage 2, flow: optical flow between frame pairs (i, i+g), forward and backward, with validity masks.

    for g in gaps: for i: F_{i->i+g}, F_{i+g->i}   (OpenCV DIS, or RAFT when its weights are local)
    valid_{i->j}(x) = |F_{i->j}(x) + F_{j->i}(x + F_{i->j}(x))| <= 1 px  and  x + F_{i->j}(x) inside frame j

Config :class:`FlowConfig`, result :class:`FlowSet`, entry :func:`run`. Flow vectors are in
working-resolution pixels; a backend that runs at another size has its field resized and its
vectors rescaled (:func:`resize_flow`). Validity is evaluated on the source grid (the pixels of
frame i).
"""

from .backends import DisFlow, RaftFlow, make_backend
from .config import BACKENDS, DEFAULT_GAPS, DIS_PRESETS, FlowConfig, FlowSet, frame_pairs, gaps_that_fit
from .ops import (
    forward_backward_validity,
    forward_backward_validity_reference,
    resize_flow,
    warp_bilinear,
    warp_bilinear_reference,
)
from .stage import run

__all__ = ["BACKENDS", "DEFAULT_GAPS", "DIS_PRESETS", "DisFlow", "FlowConfig", "FlowSet", "RaftFlow",
           "forward_backward_validity", "forward_backward_validity_reference", "frame_pairs",
           "gaps_that_fit", "make_backend", "resize_flow", "run", "warp_bilinear", "warp_bilinear_reference"]
