"""Run directories: layout, atomic writes, metadata, and loading runs into DataFrames.

    runs/<experiment>/<task>-<size>-n<heads>-<head type>-s<seed>-<hash>/
        config.json     the full resolved RunConfig
        meta.json       git commit, versions, device, times, status (running|complete|failed|interrupted)
        metrics.jsonl   one JSON object per evaluation
        summary.json    final metrics and the best step
        checkpoint.pt   model, optimizer, schedule and RNG state (weights_only-loadable)

Every file is written to a temporary file in the same directory and renamed over the
target, so a reader (or a run killed at any moment) never sees half a file. Analysis code
reads runs only through `load_runs` / `load_summaries`.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from tasks import ConfigError

CONFIG, META, METRICS = "config.json", "meta.json", "metrics.jsonl"
SUMMARY, CHECKPOINT = "summary.json", "checkpoint.pt"


def atomic_write(path: Path, write: Callable[[Any], None], binary: bool = False) -> None:
    """Call `write(file)` on a temporary file next to `path`, then rename it onto `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb" if binary else "w") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_json(path: Path, data: Any) -> None:
    atomic_write(path, lambda f: f.write(json.dumps(data, indent=2, sort_keys=True) + "\n"))


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    atomic_write(path, lambda f: f.write("".join(json.dumps(r, sort_keys=True) + "\n" for r in rows)))


def read_json(path: Path) -> Any:
    return json.loads(Path(path).read_text())


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    path = Path(path)
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def git_state() -> dict[str, Any]:
    """Commit and dirty flag of the source tree this code runs from (None outside git)."""
    root = Path(__file__).resolve().parents[1]
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                                timeout=10).stdout.strip() or None
        dirty = bool(subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                                    capture_output=True, text=True, timeout=10).stdout.strip())
    except (OSError, subprocess.SubprocessError):
        commit, dirty = None, None
    return {"commit": commit, "dirty": dirty if commit else None}


def environment() -> dict[str, Any]:
    import numpy
    import torch
    return {"python": sys.version.split()[0], "torch": torch.__version__, "numpy": numpy.__version__,
            "platform": platform.platform(), "hostname": platform.node()}


def prepare_run_dir(root: Path, experiment: str, run_name: str, config: dict[str, Any]) -> tuple[Path, str]:
    """Validate where a run will live, without creating anything.

    Returns the directory and its state: `new`, `complete` (same config, finished) or
    `incomplete` (same config, to resume). A directory that holds a different config, or an
    output root that is a file, is a `ConfigError`: nothing is ever overwritten.
    """
    root = Path(root)
    for parent in [root, *root.parents]:
        if parent.exists() and not parent.is_dir():
            raise ConfigError(f"--out {root} is not a directory ({parent} is a file)")
    run_dir = root / experiment / run_name
    if run_dir.exists() and not run_dir.is_dir():
        raise ConfigError(f"run directory {run_dir} exists and is a file")
    config_path = run_dir / CONFIG
    if not config_path.exists():
        return run_dir, "new"
    try:
        existing = read_json(config_path)
    except (OSError, json.JSONDecodeError) as e:
        raise ConfigError(f"{config_path} is unreadable ({e}); move it away to rerun") from None
    if existing != config:
        raise ConfigError(f"{run_dir} holds a different config; refusing to overwrite it")
    meta = read_json(run_dir / META) if (run_dir / META).exists() else {}
    done = meta.get("status") == "complete" and (run_dir / SUMMARY).exists()
    return run_dir, "complete" if done else "incomplete"


def iter_run_dirs(root: Path) -> Iterator[Path]:
    """Every directory under `root` that contains a config.json, sorted."""
    root = Path(root)
    if not root.exists():
        return iter(())
    return iter(sorted(p.parent for p in root.rglob(CONFIG)))


def flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"model": {"d_model": 8}} -> {"model.d_model": 8}; lists become tuples."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, f"{name}."))
        else:
            out[name] = tuple(value) if isinstance(value, list) else value
    return out


def run_record(run_dir: Path) -> dict[str, Any]:
    """Config fields (flattened), status and identifiers of one run."""
    config = read_json(run_dir / CONFIG)
    meta = read_json(run_dir / META) if (run_dir / META).exists() else {}
    record = flatten(config)
    record.update({"run_dir": str(run_dir), "run_name": run_dir.name, "status": meta.get("status", "unknown")})
    return record


def load_runs(root: Path):
    """One row per run and evaluation step: config columns plus every metric."""
    import pandas as pd
    rows = []
    for run_dir in iter_run_dirs(root):
        record = run_record(run_dir)
        for metrics in read_jsonl(run_dir / METRICS):
            rows.append({**record, **metrics})
    return pd.DataFrame(rows)


def load_summaries(root: Path):
    """One row per run: config columns, status and the final/best metrics of summary.json."""
    import pandas as pd
    rows = []
    for run_dir in iter_run_dirs(root):
        record = run_record(run_dir)
        if (run_dir / SUMMARY).exists():
            record.update(flatten(read_json(run_dir / SUMMARY)))
        rows.append(record)
    return pd.DataFrame(rows)
