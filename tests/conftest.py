"""Shared test helpers: tiny configs that train in seconds on a CPU."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"

torch.set_num_threads(1)  # deterministic and polite on 2-core machines


def run_cli(args: list[str], cwd: Path | None = None, timeout: float = 600, **kwargs):
    """Run `python -m ...` in a subprocess; returns the CompletedProcess."""
    import subprocess
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", *args], cwd=cwd or REPO, env=env, capture_output=True,
                          text=True, timeout=timeout, **kwargs)


@pytest.fixture
def tiny_overrides() -> list[str]:
    """`--set` values that make any run tiny."""
    return ["model.d_model=32", "model.n_head=2", "model.n_layer=3", "train.batch_size=8",
            "train.eval_every=5", "train.checkpoint_every=5", "train.eval_examples=32",
            "train.final_eval_examples=64", "train.val_batches=1", "train.warmup_steps=2"]
