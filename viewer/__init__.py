"""vid3d.viewer: point splatting renderer, depth effects (bokeh, dolly zoom) and the browser viewer.

The viewer reads bundles through ``vid3d.formats`` and never imports ``vid3d.optimizer``.
"""
