"""vid3d.optimizer: from a video to a 4D capture.

Stages (one module each): frames -> motion masks -> camera poses (SfM) -> optical flow ->
depth prior -> consistent-depth + scene-flow training -> bundle. Heavy dependencies (torch,
pycolmap) are imported inside the stage modules, never here, so ``import vid3d.optimizer`` is cheap.
"""
