"""The learned movable-object segmenter (torchvision Mask R-CNN), only from local weights."""

from __future__ import annotations

import logging

import numpy as np

log = logging.getLogger("vid3d.masks")

MOVABLE_COCO = (1, 2, 3, 4, 6, 7, 8, 9, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25)  # person, vehicles, animals...


def learned_segmenter(rgb: np.ndarray, *, score_threshold: float = 0.5) -> np.ndarray | None:
    """Masks ``(T, H, W)`` bool of movable object classes from a learned instance segmenter, or None
    when its weights are not in the local cache (never downloads) or torchvision does not import.

    The union of instances of movable COCO classes (people, vehicles, animals) above
    ``score_threshold``; it joins the geometric masks (union), it does not replace them.
    """
    from vid3d.runtime import WeightsMissingError, find_weights

    try:
        weights = find_weights("maskrcnn")
    except WeightsMissingError as exc:
        log.info("masks: learned segmenter unavailable (%s)", exc)
        return None
    try:
        import torch
        from torchvision.models.detection import maskrcnn_resnet50_fpn_v2
    except Exception as exc:
        log.info("masks: learned segmenter unavailable (%s)", exc)
        return None
    model = maskrcnn_resnet50_fpn_v2(weights=None, weights_backbone=None)
    model.load_state_dict(torch.load(weights, map_location="cpu"))
    model.eval()
    out = np.zeros(rgb.shape[:3], dtype=bool)
    with torch.no_grad():
        for t, im in enumerate(rgb):
            x = torch.from_numpy(np.ascontiguousarray(im)).permute(2, 0, 1).float() / 255.0
            det = model([x])[0]
            keep = (det["scores"] > score_threshold) & torch.isin(det["labels"], torch.tensor(MOVABLE_COCO))
            if keep.any():
                out[t] = (det["masks"][keep, 0] > 0.5).any(0).numpy()
    return out
