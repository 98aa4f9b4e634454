"""Live curves: send each metrics row to a tracker while a run trains.

`make_tracker(kind, run_dir)` returns an object with `.log(row)` and `.close()`:

    none         does nothing (the default: metrics.jsonl is always the record)
    tensorboard  each row's numeric values as scalars at `row["step"]`, in `run_dir/tensorboard/`
                 (`tensorboard --logdir runs` shows every run live; needs the `[tensorboard]` extra)

Only rank 0 of a data-parallel run tracks (the others get the none tracker).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Protocol

from lab.errors import ConfigError
from lab.runs import writes_here

TRACKERS = ("none", "tensorboard")


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
        for key, value in row.items():
            if key != "step" and isinstance(value, (int, float)) and not isinstance(value, bool) \
                    and math.isfinite(value):
                self.writer.add_scalar(key, value, global_step=step)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


def make_tracker(kind: str, run_dir: Path) -> Tracker:
    """The tracker named `kind` for a run directory (raises `ConfigError` for an unknown kind or a
    missing extra)."""
    if kind not in TRACKERS:
        raise ConfigError(f"unknown tracker {kind!r}; choose one of: {', '.join(TRACKERS)}")
    if kind == "none":
        return NoTracker()
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise ConfigError('the tensorboard tracker needs tensorboard: pip install -e ".[tensorboard]"') from None
    return TensorBoardTracker(run_dir, SummaryWriter) if writes_here() else NoTracker()
