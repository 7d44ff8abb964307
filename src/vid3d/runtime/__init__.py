"""Small runtime helpers shared by every component: the torch device and the learned models' weights.

- :mod:`.device`: ``resolve_device("auto" | "cpu" | "cuda[:n]") -> torch.device`` and
  :func:`~.device.device_name`, which answers "cpu" without importing torch on a machine with no
  NVIDIA device node (the viewer's start-up time is a target).
- :mod:`.weights`: where the weights of learned components are looked for, and one message saying
  what is missing and where it was looked for.
- :mod:`.selection`: ``START:END:STEP`` frame selections given on the command line.

Atomic writes live in :mod:`vid3d.formats.atomic` (the base layer), used by every writer.
This package imports only :mod:`vid3d.formats` (and torch lazily).
"""

from vid3d.runtime.device import DEVICES, device_name, resolve_device
from vid3d.runtime.selection import parse_frame_range
from vid3d.runtime.weights import MODELS, ModelSpec, WeightsMissingError, find_weights, model_dirs, weights_status

__all__ = ["DEVICES", "MODELS", "ModelSpec", "WeightsMissingError", "device_name", "find_weights", "model_dirs",
           "parse_frame_range", "resolve_device", "weights_status"]
