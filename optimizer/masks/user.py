"""User-given motion masks: one image per frame, non-zero = moving."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from vid3d.formats.errors import InputError

log = logging.getLogger("vid3d.masks")

def load_user_masks(folder: str | Path, source_frames: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """User masks ``(T, H, W)`` bool from ``folder``: one image per frame in natural name order,
    non-zero = moving.

    The folder holds either one image per *source* frame of the video (picked by ``source_frames``
    ``(T,)``) or exactly one per kept frame. Images are resized (nearest) to ``size = (H, W)``.
    """
    import cv2

    from vid3d.optimizer.frames.decode import list_images

    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"--masks {folder} is not a folder; expected one mask image per frame")
    files = list_images(folder)
    T = len(source_frames)
    if len(files) > int(np.max(source_frames)):
        chosen = [files[int(s)] for s in source_frames]
    elif len(files) == T:
        chosen = files
    else:
        raise InputError(f"--masks {folder} has {len(files)} images; expected one per source frame "
                         f"(> {int(np.max(source_frames))}) or one per kept frame ({T})")
    H, W = size
    out = np.empty((T, H, W), dtype=bool)
    for t, f in enumerate(chosen):
        im = cv2.imread(str(f), cv2.IMREAD_UNCHANGED)
        if im is None:
            raise InputError(f"mask image {f.name} cannot be read")
        if im.ndim == 3:
            im = im.max(axis=2)
        out[t] = cv2.resize((im > 0).astype(np.uint8), (W, H), interpolation=cv2.INTER_NEAREST).astype(bool)
    log.info("masks: %d user masks from %s (%.1f%% moving)", T, folder, 100 * out.mean())
    return out


MOVABLE_COCO = (1, 2, 3, 4, 6, 7, 8, 9, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25)  # person, vehicles, animals...
