"""Stage 8 entry: ``run(inputs, config, *, device, checkpoint_dir, resume) -> TrainResult``.

Trains the clip's depth and scene flow (:class:`.trainer.Trainer`), then fuses full-resolution
outputs (:func:`.fuse.fuse_outputs`). Checkpoints go to ``checkpoint_dir/train_state.pt``
atomically (:func:`vid3d.formats.atomic.atomic_file`), every ``checkpoint_every`` steps and on
Ctrl-C; ``resume=True`` continues from the step stored there. The depth model is chosen by
:meth:`TrainConfig.depth_model_for` (the residual model, or the prior network fine-tuned at
``finetune_long_side``); the checkpoint holds its weights, and the fingerprint that guards resume
covers the prior network's weights file.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from vid3d.formats.atomic import atomic_file
from vid3d.formats.errors import InputError
from vid3d.optimizer.train.config import TrainConfig
from vid3d.optimizer.train.data import TrainInputs, TrainResult
from vid3d.optimizer.train.prepare import prepare_clip
from vid3d.optimizer.train.finetune import load_prior_net
from vid3d.optimizer.train.fuse import fuse_outputs
from vid3d.optimizer.train.pairs import make_pairs
from vid3d.optimizer.train.trainer import Trainer
from vid3d.runtime import resolve_device

CHECKPOINT_NAME = "train_state.pt"
log = logging.getLogger("vid3d.train")


def _fingerprint(inputs: TrainInputs, cfg: TrainConfig) -> str:
    keep = {k: v for k, v in cfg.to_dict().items() if k not in ("checkpoint_every", "num_threads", "name")}
    return f"{inputs.fingerprint()}|{sorted(keep.items())!r}"


def _save(obj: dict, path: Path) -> None:
    with atomic_file(path) as tmp:
        torch.save(obj, tmp)


def run(inputs: TrainInputs, config: TrainConfig | None = None, *, device: str = "auto",
        checkpoint_dir: Path | str | None = None, resume: bool = False, progress: bool = True,
        on_step: Callable[[int, dict[str, float]], None] | None = None,
        other_checkpoint: str = "error") -> TrainResult:
    """Train depth + scene flow on one clip; return fused full-resolution depth, confidence, scene flow.

    ``inputs``: :class:`TrainInputs` (T frames, H x W). ``config``: :class:`TrainConfig` (default:
    the defaults, which are the ``standard`` preset's). ``device``: "auto" | "cpu" | "cuda". ``checkpoint_dir``: folder for
    ``train_state.pt`` (atomic writes); ``resume``: continue from it when it matches this clip and
    config; a checkpoint of another clip or config raises InputError (``other_checkpoint="error"``)
    or is trained over from step 0 (``"restart"``: the pipeline's choice, whose stage cache already
    told the configs apart). ``on_step(step, losses)`` is called after each step (a KeyboardInterrupt raised there or
    anywhere in the loop writes a checkpoint, then propagates).
    Returns :class:`TrainResult` with depth (T, H, W), confidence (T, H, W), scene_flow (T, H, W, 3).
    """
    cfg = config if config is not None else TrainConfig()
    if not isinstance(inputs, TrainInputs):
        raise InputError(f"inputs must be a TrainInputs, got {type(inputs).__name__}")
    if other_checkpoint not in ("error", "restart"):
        raise InputError(f"other_checkpoint must be 'error' or 'restart', got {other_checkpoint!r}")
    inputs.validate()
    dev = resolve_device(device)
    threads_before = torch.get_num_threads()
    if cfg.num_threads > 0:
        torch.set_num_threads(cfg.num_threads)
    try:
        return _train(inputs, cfg, dev, checkpoint_dir, resume, progress, on_step, other_checkpoint)
    finally:
        torch.set_num_threads(threads_before)


def _train(inputs: TrainInputs, cfg: TrainConfig, dev: torch.device, checkpoint_dir, resume: bool,
           progress: bool, on_step, other_checkpoint: str) -> TrainResult:
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    pairs = make_pairs(inputs.num_frames, cfg.gaps, inputs.flows.keys())
    if not pairs:
        raise InputError(f"no forward flow pair (i, i+g) with g in {cfg.gaps} among the given flows "
                         f"{sorted(inputs.flows)[:6]}...")
    depth_model = cfg.depth_model_for(inputs.prior_backend, inputs.prior_weights)
    if depth_model == "finetune":  # the prior network itself trains; its sides are multiples of net.multiple
        net = load_prior_net(inputs.prior_weights)
        clip = prepare_clip(inputs, pairs, cfg.finetune_long_side, dev, dilate_dynamic_px=cfg.dynamic_dilate_px,
                            multiple=net.multiple, prior_net=net)
    else:
        clip = prepare_clip(inputs, pairs, cfg.train_long_side, dev, dilate_dynamic_px=cfg.dynamic_dilate_px)
    tr = Trainer(clip, cfg, dev, cfg.prior_terms(inputs.prior_backend))
    fingerprint = _fingerprint(inputs, cfg)
    ckpt = None
    if checkpoint_dir is not None:
        ckpt = Path(checkpoint_dir) / CHECKPOINT_NAME
        ckpt.parent.mkdir(parents=True, exist_ok=True)
        if resume and ckpt.exists():
            state = torch.load(ckpt, map_location=dev, weights_only=False)
            if state.get("fingerprint") == fingerprint:
                tr.load_state_dict(state)
            elif other_checkpoint == "restart":
                log.info("train: checkpoint %s is of another clip or config; training from step 0", ckpt)
            else:
                raise InputError(f"checkpoint {ckpt} belongs to another clip or config; delete it or run "
                                 f"without resume")
    resumed_from = tr.step
    timings["prepare_s"] = time.perf_counter() - t0

    bar = None
    if progress and tr.step < cfg.total_steps:
        from tqdm.auto import tqdm

        bar = tqdm(total=cfg.total_steps, initial=tr.step, desc="train depth+scene flow", unit="step",
                   leave=False)
    t1 = time.perf_counter()
    try:
        while tr.step < cfg.total_steps:
            vals = tr.train_step()
            if bar is not None:
                bar.update(1)
                if tr.step % 10 == 0:
                    bar.set_postfix(loss=f"{vals['total']:.3g}", flow_px=f"{vals['flow_px']:.2f}",
                                    phase="warm" if tr.step <= cfg.warmup_steps else "joint")
            if ckpt is not None and (tr.step % cfg.checkpoint_every == 0 or tr.step == cfg.total_steps):
                _save(tr.state_dict(fingerprint), ckpt)
            if on_step is not None:
                on_step(tr.step, vals)
    except KeyboardInterrupt:
        if ckpt is not None:
            _save(tr.state_dict(fingerprint), ckpt)
        raise
    finally:
        if bar is not None:
            bar.close()
    timings["train_s"] = time.perf_counter() - t1
    steps_run = tr.step - resumed_from
    timings["s_per_step"] = timings["train_s"] / max(steps_run, 1)

    t2 = time.perf_counter()
    fused = fuse_outputs(tr.depth, tr.sf, clip, cfg, inputs.flows, prior_confidence=inputs.prior_confidence,
                         dynamic=inputs.dynamic_mask, movers_on_contact=tr.terms.movers_on_contact)
    timings["fuse_s"] = time.perf_counter() - t2
    timings["total_s"] = time.perf_counter() - t0

    hist = {k: np.asarray(v, dtype=np.float32) for k, v in tr.history.items()}
    def _avg(name, sl):
        a = hist[name][sl]
        return float(a.mean()) if a.size else float("nan")
    report = {
        "device": str(dev), "prior_backend": inputs.prior_backend, "steps": cfg.total_steps, "warmup_steps": cfg.warmup_steps,
        "resumed_from_step": resumed_from, "num_pairs": len(pairs), "train_size": list(clip.size),
        "d_ref": clip.d_ref, "mlp_box_extent": clip.extent,
        "invalid_prior_fraction": clip.invalid_prior_fraction,
        "flow_px_first10": _avg("flow_px", slice(0, 10)), "flow_px_last10": _avg("flow_px", slice(-10, None)),
        "depth_model": depth_model,
        "frame_scale": tr.depth.frame_scales().round(4).tolist(),
        "mean_confidence": float(fused.confidence.mean()),
        "fusion_support_mean": fused.fusion_support,
        "movers_capped_fraction": fused.movers_capped_fraction,
        "movers_placed_fraction": fused.movers_placed_fraction,
    }
    return TrainResult(depth=fused.depth, confidence=fused.confidence, scene_flow=fused.scene_flow,
                       losses=hist, timings=timings, report=report)
