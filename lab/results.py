"""The results store: compact, committed records of complete runs, so figures redraw without training.

    python -m lab.results export [--runs runs] [--store results] [--experiment NAME ...]
    python -m lab.results list [--store results]        (the command line: lab/results_cli.py)

    results/<experiment>.<preset>.jsonl.gz   one JSON object per complete run, sorted by run id:
        {"run_id", "experiment", "preset", "config", "meta", "metrics": [...], "summary", "files"?}

The preset is not part of a run's config: a run belongs to the preset whose plan
(`lab.experiments.plan`) names it, else to `other` (e.g. a `python -m lab.run` run).
`files` holds the run's other JSON files (e.g. `speculative.json`), when there are any.
Checkpoints are never stored.

Files are byte-deterministic (sorted keys and runs, gzip with mtime 0 and no file name)
and rewritten only when their content changes, so re-exporting the same runs leaves
`git diff` empty. Export merges by run id: a stored run is kept as it is when the new copy
agrees within `TOLERANCE` (relative or absolute; wall-clock fields and where/when meta
fields are ignored), and a disagreement raises `StoreConflict` before anything is written.

`load_store_runs` / `load_store_summaries` give the DataFrames of `lab.runs.load_runs` /
`load_summaries`; `records(root, store, experiment)` reads the run directories and, for the runs
they do not hold, the store.
"""

from __future__ import annotations

import gzip
import io
import json
import math
import os
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lab import runs
from lab.errors import ConfigError
from lab.runs import cpu_info  # noqa: F401 - recorded in meta.json; compared runs ignore it

STORE = Path("results")
HOME_VARIABLE = "MTP_LAB_HOME"  # the checkout whose results/ store readers use, from any folder
SUFFIX = ".jsonl.gz"
OTHER = "other"  # preset of runs that no preset's plan names
TOLERANCE = 1e-6  # relative or absolute; 1 vs 2 CPU threads differ at ~1e-7 in losses
WALL_CLOCK = frozenset({"wall_s", "tokens_per_s"})  # metric and summary keys never compared
# meta keys that say where and when a run ran (never compared); `status` and anything new are
WHERE_WHEN = frozenset({"started", "ended", "resumed_at", "interrupted_at", "interrupted_by", "git",
                        "versions", "device", "processes", "error", "hostname", "cpu"})
SUMMARY_WHERE = frozenset({"run_dir"})  # the path the trainer wrote to
RUN_FILES = frozenset({runs.CONFIG, runs.META, runs.SUMMARY})


class StoreConflict(Exception):
    """A run id is stored already with different numbers (beyond `TOLERANCE`)."""


@dataclass
class ExportReport:
    """What `export` did: run ids added per store file, runs kept unchanged, files written."""

    added: dict[str, list[str]] = field(default_factory=dict)
    # stored runs given a new extra file
    updated: dict[str, list[str]] = field(default_factory=dict)
    unchanged: int = 0
    incomplete: list[str] = field(default_factory=list)  # run directories skipped
    written: list[str] = field(default_factory=list)

    def line(self) -> str:
        added = sum(len(v) for v in self.added.values())
        updated = sum(len(v) for v in self.updated.values())
        return (f"{added} runs added, {updated} updated, {self.unchanged} unchanged, "
                f"{len(self.incomplete)} incomplete skipped; "
                f"{len(self.written)} files written ({', '.join(self.written) or 'none'})"
                + "".join(f"\nthe figures of preset {p} now lag the store: redraw them with "
                          f"`python -m lab.figures --preset {p}` and commit both together" for p in self.presets()))

    def presets(self) -> list[str]:
        """The presets whose store files this export rewrote (their figures are now stale)."""
        return sorted({split_name(Path(p))[1] for p in self.written})


# ----- machine description -----
# ----- records -----
def run_files(run_dir: Path) -> dict[str, Any]:
    """The run's JSON files other than config, meta and summary (e.g. `speculative.json`)."""
    return {p.name: runs.read_json(p) for p in sorted(Path(run_dir).glob("*.json")) if p.name not in RUN_FILES}


def dir_record(run_dir: Path) -> dict[str, Any]:
    """The store record of one run directory (no preset yet)."""
    run_dir = Path(run_dir)
    config = runs.read_json(run_dir / runs.CONFIG)
    record = {"run_id": run_dir.name, "experiment": config.get("experiment", run_dir.parent.name),
              "config": config, "meta": runs.read_json(run_dir / runs.META),
              "metrics": runs.read_jsonl(run_dir / runs.METRICS),
              "summary": runs.read_json(run_dir / runs.SUMMARY)}
    extra = run_files(run_dir)
    if extra:
        record["files"] = extra
    return record


def complete_dirs(root: Path, experiment: str | None = None) -> list[Path]:
    """The complete run directories under `root` (of one experiment, if given), sorted."""
    found = [d for d in runs.iter_run_dirs(root) if runs.run_state(d) == "complete"]
    if experiment is not None:
        found = [d for d in found if runs.read_json(d / runs.CONFIG).get("experiment",
                                                                         d.parent.name) == experiment]
    return found


def dumps(record: dict[str, Any]) -> str:
    return json.dumps(record, sort_keys=True, separators=(",", ":"), allow_nan=True)


def lines(records: Iterable[dict[str, Any]]) -> bytes:
    """The JSON Lines of `records`, sorted by run id, keys sorted."""
    return "".join(dumps(r) + "\n" for r in sorted(records, key=lambda r: r["run_id"])).encode()


def compress(payload: bytes) -> bytes:
    """Gzip with a fixed header (mtime 0, no file name), so equal payloads give equal bytes."""
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, compresslevel=9, mtime=0) as gz:
        gz.write(payload)
    return buf.getvalue()


def decode(path: Path) -> list[dict[str, Any]]:
    with gzip.open(path, "rt") as f:
        return [json.loads(line) for line in f if line.strip()]


def store_path(store: Path, experiment: str, preset: str) -> Path:
    return Path(store) / f"{experiment}.{preset}{SUFFIX}"


def locate(store: Path = STORE) -> Path:
    """Where the store is. An explicit path other than the default is taken as given. The default
    `results` is `$MTP_LAB_HOME/results` when that variable is set, else `results/` in the current
    folder when there is one, else the `results/` of the checkout this package runs from (so
    `mtp-lab` finds the committed store from any folder after `pip install -e`)."""
    store = Path(store)
    if store != STORE:
        return store
    home = os.environ.get(HOME_VARIABLE)
    if home:
        return Path(home) / STORE
    if store.is_dir():
        return store
    checkout = Path(__file__).resolve().parents[1] / STORE
    return checkout if checkout.is_dir() else store


def missing_store_warning(store: Path = STORE) -> str | None:
    """A one-line warning when the store that readers would use does not exist."""
    found = locate(store)
    if found.is_dir():
        return None
    return (f"warning: no results store at {found}: stored runs are not seen; run from the "
            f"checkout or set {HOME_VARIABLE} to it")


def store_files(store: Path, experiment: str | None = None) -> list[Path]:
    """The store's files (of one experiment, if given), sorted; the default store: `locate`."""
    store = locate(store)
    if not store.is_dir():
        return []
    files = sorted(store.glob(f"*{SUFFIX}"))
    return [p for p in files if experiment is None or split_name(p)[0] == experiment]


def split_name(path: Path) -> tuple[str, str]:
    """`results/scaling.quick.jsonl.gz` -> ("scaling", "quick")."""
    experiment, _, preset = Path(path).name[: -len(SUFFIX)].rpartition(".")
    return (experiment, preset) if experiment else (preset, OTHER)


def store_records(store: Path, experiment: str | None = None,
                  preset: str | None = None) -> list[dict[str, Any]]:
    """Every stored run (of one experiment and preset, if given), sorted by experiment and run
    id."""
    found = [r for p in store_files(store,
                                    experiment) if preset is None or split_name(p)[1] == preset
             for r in decode(p)]
    return sorted(found, key=lambda r: (r["experiment"], r["run_id"]))


def pseudo_dir(record: dict[str, Any]) -> str:
    return f"results:{record['experiment']}/{record['run_id']}"


def records(root: Path, store: Path, experiment: str) -> list[dict[str, Any]]:
    """The complete runs of `experiment`: those in run directories under `root`, then the stored
    runs no directory holds (a directory wins: it is the newer copy of its run id). Each record
    carries `source` ("runs" or "results") and `run_dir`."""
    dirs = [{**dir_record(d), "source": "runs", "run_dir": str(d)} for d in complete_dirs(root,
                                                                                          experiment)]
    have = {r["run_id"] for r in dirs}
    return dirs + [{**r, "source": "results",
                    "run_dir": pseudo_dir(r)} for r in store_records(store, experiment)
                   if r["run_id"] not in have]


# ----- DataFrames (the columns of lab.runs.load_runs / load_summaries) -----
def _base(record: dict[str, Any]) -> dict[str, Any]:
    row = runs.flatten(record["config"])
    row.update({"run_dir": record.get("run_dir", pseudo_dir(record)), "run_name": record["run_id"],
                "status": record["meta"].get("status", "unknown")})
    return row


def runs_frame(recs: Iterable[dict[str, Any]]):
    """One row per run and evaluation, as `lab.runs.load_runs`."""
    import pandas as pd
    return pd.DataFrame([{**_base(r), **m} for r in recs for m in r["metrics"]])


def summaries_frame(recs: Iterable[dict[str, Any]]):
    """One row per run, as `lab.runs.load_summaries` (`primary`, `best_primary`); `run_dir` is
    the record's (a `results:<experiment>/<run id>` pseudo path for stored runs)."""
    import pandas as pd
    rows = []
    for r in recs:
        row = _base(r)
        summary = r["summary"]
        row.update(runs.flatten(summary))
        name = summary.get("primary_metric")
        row["primary"] = summary.get("final", {}).get(name, float("nan"))
        row["best_primary"] = summary.get("best", {}).get(name, float("nan"))
        row["run_dir"] = r.get("run_dir", pseudo_dir(r))
        rows.append(row)
    return pd.DataFrame(rows)


def load_store_runs(store: Path = STORE, experiment: str | None = None):
    """`lab.runs.load_runs` for the stored runs (`run_dir` is `results:<experiment>/<run id>`)."""
    return runs_frame(store_records(store, experiment))


def load_store_summaries(store: Path = STORE, experiment: str | None = None):
    """`lab.runs.load_summaries` for the stored runs."""
    return summaries_frame(store_records(store, experiment))


# ----- comparing two copies of one run -----
def _close(a: Any, b: Any, tol: float) -> bool:
    if isinstance(a, bool) or isinstance(b, bool) or not isinstance(a,
                                                                    (int,
                                                                     float)) or not isinstance(b,
                                                                                               (int,
                                                                                                float)):
        return a == b
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return math.isclose(a, b, rel_tol=tol, abs_tol=tol)


def _differs(a: Any, b: Any, tol: float, skip: frozenset[str], path: str) -> str | None:
    """The first path where `a` and `b` differ beyond `tol` (keys in `skip` ignored), else None."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted((a.keys() | b.keys()) - skip):
            if key not in a or key not in b:
                return f"{path}{key} (only in the {'stored' if key in a else 'new'} copy)"
            found = _differs(a[key], b[key], tol, skip, f"{path}{key}.")
            if found:
                return found
        return None
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return f"{path.rstrip('.')} ({len(a)} stored vs {len(b)} new entries)"
        for i, (x, y) in enumerate(zip(a, b)):
            found = _differs(x, y, tol, skip, f"{path}{i}.")
            if found:
                return found
        return None
    return None if _close(a, b, tol) else f"{path.rstrip('.')} ({a!r} stored vs {b!r} new)"


def difference(stored: dict[str, Any], new: dict[str, Any], tol: float = TOLERANCE) -> str | None:
    """Where two records of one run id disagree (config exactly, metrics and summary within
    `tol` without wall-clock fields, meta without where/when fields), else None."""
    a, b = stored.get("metrics", []), new.get("metrics", [])
    if len(a) != len(b):
        return f"metrics ({len(a)} stored vs {len(b)} new evaluations)"
    for i, (x, y) in enumerate(zip(a, b)):
        where = _differs(x, y, tol, WALL_CLOCK, "")
        if where:
            return f"metric {where} at step {x.get('step', i)}"
    checks = (("config", 0.0, frozenset()), ("summary", tol, WALL_CLOCK | SUMMARY_WHERE),
              ("meta", 0.0, WHERE_WHEN))
    for part, t, skip in checks:
        where = _differs(stored.get(part), new.get(part), t, skip, f"{part}.")
        if where:
            return where
    return None


# ----- export -----
def validate(root: Path, store: Path) -> None:
    root, store = Path(root), Path(store)
    if not root.is_dir():
        raise ConfigError(f"--runs {root} is not a directory" if root.exists() else "--runs "
                                                                                    f"{root} does "
                                                                                    "not exist")
    for parent in [store, *store.parents]:
        if parent.exists() and not parent.is_dir():
            raise ConfigError(f"--store {store} is not a directory ({parent} is a file)")


def export(root: Path, store: Path = STORE, experiments: Iterable[str] | None = None,
           tol: float = TOLERANCE, *, presets: Callable[[str], dict[str, str]]) -> ExportReport:
    """Merge every complete run under `root` (of `experiments`, if given) into the store.

    `presets(experiment)` maps the run names of the experiment's plans to their preset
    (`lab.experiments.planned_presets`, passed in so that the store never imports the
    experiments); a run it does not name is filed under `other`.

    Raises `ConfigError` for a bad root or store, or an experiment with no run under `root`,
    and `StoreConflict` for a run stored with other numbers; nothing is written then.
    """
    root, store = Path(root), Path(store)
    validate(root, store)
    report = ExportReport()
    wanted = None if experiments is None else list(dict.fromkeys(experiments))
    new: dict[str, dict[str, dict[str, Any]]] = {}  # experiment -> run id -> record
    seen: set[str] = set()
    for run_dir in runs.iter_run_dirs(root):
        experiment = runs.read_json(run_dir / runs.CONFIG).get("experiment", run_dir.parent.name)
        if wanted is not None and experiment not in wanted:
            continue
        seen.add(experiment)
        if runs.run_state(run_dir) != "complete":
            report.incomplete.append(str(run_dir))
            continue
        record = dir_record(run_dir)
        earlier = new.setdefault(experiment, {}).get(record["run_id"])
        if earlier is not None:
            where = difference(earlier, record, tol)
            if where:
                raise StoreConflict(f"run {record['run_id']} is under {root} twice with different "
                                    f"numbers: {where}")
            continue
        new[experiment][record["run_id"]] = record
    for name in wanted or []:
        if name not in seen:
            raise ConfigError(f"--experiment {name}: no run of it under {root}")
    files: dict[Path, list[dict[str, Any]]] = {}
    names: dict[str, dict[str, str]] = {}
    for experiment in sorted(new):
        stored = {}
        for path in store_files(store, experiment):
            files[path] = decode(path)
            stored.update({r["run_id"]: (path, r) for r in files[path]})
        for run_id, record in sorted(new[experiment].items()):
            if run_id in stored:
                path, old = stored[run_id]
                where = difference(old, record, tol)
                if where:
                    raise StoreConflict(f"run {run_id} is stored in {path} with other numbers "
                                        f"(tolerance {tol:g}): first difference at {where}")
                extra = {k: v for k, v in record.get("files",
                                                     {}).items() if k not in old.get("files", {})}
                if extra:
                    old["files"] = {**old.get("files", {}), **extra}
                    report.updated.setdefault(str(path), []).append(run_id)
                else:
                    report.unchanged += 1
                continue
            if experiment not in names:
                names[experiment] = presets(experiment)
            preset = names[experiment].get(run_id, OTHER)
            path = store_path(store, experiment, preset)
            files.setdefault(path, [])
            files[path].append({**record, "preset": preset})
            report.added.setdefault(str(path), []).append(run_id)
    for path, recs in sorted(files.items()):
        payload = lines(recs)
        if path.exists() and gzip.decompress(path.read_bytes()) == payload:
            continue  # same content: leave the bytes alone (another zlib may compress differently)
        data = compress(payload)
        runs.atomic_write(path, lambda f, data=data: f.write(data), binary=True)
        report.written.append(str(path))
    return report


def counts(store: Path = STORE) -> dict[tuple[str, str], int]:
    """Stored runs per (experiment, preset)."""
    return {split_name(p): len(decode(p)) for p in store_files(store)}


if __name__ == "__main__":  # `python -m lab.results`: the command line is lab/results_cli.py
    from lab.results_cli import main
    sys.exit(main())
