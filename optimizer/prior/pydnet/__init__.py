"""PyDNet v2 (Aleotti et al., Sensors 2021): a small real monocular depth network as a depth prior.

The network is read from its TFLite file (research-use-only weights: never part of vid3d; the user
gives the path) and run in torch with trainable weights. Modules: ``tflite_graph`` (file -> checked
:class:`Graph`), ``architecture`` (the layout as numbers; random graphs for tests), ``network``
(:class:`PyDNet`, the torch executor), ``reference`` (its numpy twin), ``infer`` (frames ->
disparity).
"""

from .architecture import PyDNetSpec, build_graph
from .infer import aspect_size, pydnet_disparity
from .network import PyDNet, resize_bilinear_legacy, same_padding
from .reference import reference_disparity
from .tflite_graph import Graph, Op, check_graph, load_graph, read_tflite, save_graph

__all__ = [
    "Graph", "Op", "PyDNet", "PyDNetSpec", "aspect_size", "build_graph", "check_graph", "load_graph",
    "pydnet_disparity", "read_tflite", "reference_disparity", "resize_bilinear_legacy", "same_padding", "save_graph",
]
