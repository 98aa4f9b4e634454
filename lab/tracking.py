"""Live curves: send each metrics row to a tracker while a run trains.

`make_tracker(kind, run_dir)` returns an object with `.log(row)` and `.close()`:

    none         does nothing (the default: metrics.jsonl is always the record)
    tensorboard  each row's numeric values as scalars at `row["step"]`, in `run_dir/tensorboard/`
                 (`tensorboard --logdir runs` shows every run live; needs the `[tensorboard]` extra)
    wandb        Weights & Biases: the same scalars at the same steps, in `run_dir/wandb/`, offline
                 unless `WANDB_MODE` says otherwise (`wandb sync RUN_DIR/wandb/offline-run-*`
                 uploads later; needs the `[wandb]` extra). The run's config and name go with it.

A tracker that is named but not installed is a `ConfigError` before anything is written
(`check_available`, called when a config is resolved).

Only rank 0 of a data-parallel run tracks (the others get the none tracker).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Protocol

from lab.errors import ConfigError
from lab.runs import writes_here

TRACKERS = ("none", "tensorboard", "wandb")
# tracker -> the module it imports
EXTRA_MODULES = {"tensorboard": "torch.utils.tensorboard", "wandb": "wandb"}


class Tracker(Protocol):
    def log(self, row: dict[str, Any]) -> None: ...

    def close(self) -> None: ...


class NoTracker:
    """Tracks nothing."""

    def log(self, row: dict[str, Any]) -> None:
        pass

    def close(self) -> None:
        pass


class TensorBoardTracker:
    """Scalars in `run_dir/tensorboard/`, one per numeric metric, flushed after every row so the
    curves are live (rows come once per evaluation, so flushing is cheap)."""

    def __init__(self, run_dir: Path, writer_class: type) -> None:
        self.writer = writer_class(log_dir=str(Path(run_dir) / "tensorboard"))

    def log(self, row: dict[str, Any]) -> None:
        step = int(row["step"])
        for key, value in numeric(row).items():
            self.writer.add_scalar(key, value, global_step=step)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


def numeric(row: dict[str, Any]) -> dict[str, float]:
    """The finite numbers of a metrics row, `step` left out (it is the x axis)."""
    return {k: v for k, v in row.items() if k != "step" and isinstance(v, (int, float))
            and not isinstance(v, bool) and math.isfinite(v)}


class WandbTracker:
    """A Weights & Biases run in `run_dir/wandb/`: offline by default (no account, no network), so
    a run never waits on a server; `WANDB_MODE=online` sends it live."""

    def __init__(self, run_dir: Path, wandb: Any, config: dict[str, Any] | None = None) -> None:
        import os
        self.run = wandb.init(dir=str(run_dir), mode=os.environ.get("WANDB_MODE", "offline"),
                              name=Path(run_dir).name, id=Path(run_dir).name.replace("=", "-"),
                              config=config or {}, resume="allow", reinit=True)

    def log(self, row: dict[str, Any]) -> None:
        self.run.log(numeric(row), step=int(row["step"]))

    def close(self) -> None:
        self.run.finish()


def load_extra(kind: str) -> Any:
    """The module a tracker needs; a one-line `ConfigError` naming the extra when it is absent."""
    import importlib
    try:
        return importlib.import_module(EXTRA_MODULES[kind])
    except ImportError:
        raise ConfigError(f'the {kind} tracker needs {kind}: pip install -e ".[{kind}]"') from None


def check_available(kind: str) -> None:
    """Raise `ConfigError` for an unknown tracker or one whose extra is not installed."""
    if kind not in TRACKERS:
        raise ConfigError(f"unknown tracker {kind!r}; choose one of: {', '.join(TRACKERS)}")
    if kind != "none":
        load_extra(kind)


def make_tracker(kind: str, run_dir: Path, config: dict[str, Any] | None = None) -> Tracker:
    """The tracker named `kind` for a run directory (raises `ConfigError` for an unknown kind or a
    missing extra). `config` (the run's config.json) is what W&B shows as the run's config."""
    check_available(kind)
    if kind == "none" or not writes_here():
        return NoTracker()
    if kind == "wandb":
        return WandbTracker(run_dir, load_extra(kind), config)
    return TensorBoardTracker(run_dir, load_extra(kind).SummaryWriter)
