"""Test helper shared by the training tests: a run interrupted at a given step."""

from __future__ import annotations

import pytest

from vid3d.optimizer.train import run as train_consistent_depth


def interrupted_run(inputs, cfg, checkpoint_dir, *, stop_at: int) -> None:
    """Train until step ``stop_at``, then interrupt (KeyboardInterrupt, as Ctrl-C): a checkpoint remains."""
    def stop(step, losses):
        if step == stop_at:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_consistent_depth(inputs, cfg, device="cpu", checkpoint_dir=checkpoint_dir, progress=False, on_step=stop)
