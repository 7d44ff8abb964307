"""vid3d: turn an ordinary RGB video into a 4D capture (depth, poses, scene flow, colour).

Components (each a subpackage kept in its own top-level folder of the repository):

- ``vid3d.formats``: the 4D capture bundle (HDF5), conventions, export, errors, atomic writes.
- ``vid3d.runtime``: the device resolver, learned-weights lookup, frame-range parsing.
- ``vid3d.optimizer``: video -> poses, flow, masks, depth prior -> consistent depth + scene flow.
- ``vid3d.viewer``: frame points, splatting renderer, effects (bokeh, dolly zoom), browser viewer.
- ``vid3d.synthetic``: ray-cast synthetic clips with exact ground truth (demo clip, test fixtures).
- ``vid3d.eval``: metrics, ground-truth readers and reports (``vid3d eval``, benchmarks).
- ``vid3d.cli``: the ``vid3d`` command.
"""

# pycolmap 4.x exports its own zlib symbols: if it is imported before libz is loaded, a later
# zlib use (numba's first compile, gzip, PNG writes) aborts with "double free". Loading zlib
# first binds the system library. Keep this the first import of the package.
import zlib  # noqa: F401  (must stay first)

__version__ = "0.1.0"
