"""vid3d.viewer: point splatting renderer, depth effects (bokeh, dolly zoom) and the browser viewer.

Subpackages: ``points`` (bundle frames -> coloured points, shared), ``render`` (the renderer and
``vid3d render``), ``app`` (the browser viewer, ``vid3d view``). The viewer reads bundles through
``vid3d.formats`` (``Bundle.frame(t, fields=...)``), resolves devices with ``vid3d.runtime.device``,
and never imports ``vid3d.optimizer``.
"""
