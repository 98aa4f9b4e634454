"""Run selection: the complete runs of an experiment's plan, which is what a figure or claim may use.

The runs come from run directories under `root/<experiment>/` and, for the runs they do not
hold, from the committed results store (`lab.results`), so a fresh checkout draws every figure
without training and a partial `runs/` adds to the store instead of hiding it. A found run
matches a planned config when every config field both share is equal (runs stay usable when a
later version adds a config field), with `@run` references compared without their hash.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lab import results
from lab.errors import ConfigError
from lab.runs import flatten


class Missing(Exception):
    """What an analysis needs is not in the runs (no complete planned run, a metric never logged).
    The message says why."""


def comparable(config: dict[str, Any]) -> dict[str, Any]:
    """Flattened config with `@run name` references stripped of their hash."""
    flat = flatten(config)
    return {k: re.sub(r"-[0-9a-f]{8}(?=/|$)", "", v) if isinstance(v, str) and v.startswith("@") else v
            for k, v in flat.items()}


def matches(found: dict[str, Any], planned: dict[str, Any]) -> bool:
    """Every field both configs share is equal, so runs stay usable when a config field is added."""
    return all(found[k] == planned[k] for k in found.keys() & planned.keys())


@dataclass
class Selection:
    """The planned runs of one experiment and preset (`lab.experiments.plan`), and those of them
    that are complete (in run directories, or else in the results store)."""

    experiment: str
    preset: str
    planned: list[dict[str, Any]]  # flattened planned configs
    summaries: Any  # pandas DataFrame: one row per complete planned run (`load_summaries` columns)
    root: Path
    reason: str = ""  # why nothing could be planned, if so
    records: dict[str, dict[str, Any]] = field(default_factory=dict, repr=False)  # run_dir -> store record
    _evals: Any = field(default=None, repr=False)

    @classmethod
    def load(cls, root: Path, experiment: str, preset: str, plan: Callable[[str, str], list[Any]],
             store: Path | None = None) -> Selection:
        """`plan(experiment, preset)` gives the planned configs (`lab.experiments.plan`, passed in so
        that selection never imports the experiments); `store` is the results store to fall back on."""
        import pandas as pd

        try:
            configs = plan(experiment, preset)
        except ConfigError as e:
            return cls(experiment, preset, [], pd.DataFrame(), Path(root), reason=str(e))
        planned = [comparable(c.to_dict()) for c in configs]
        chosen: dict[str, dict[str, Any]] = {}
        free = list(range(len(planned)))
        for record in results.records(Path(root), Path(store) if store else Path(root) / ".no-store", experiment):
            hit = next((i for i in free if matches(comparable(record["config"]), planned[i])), None)
            if hit is not None:
                free.remove(hit)
                chosen[record["run_dir"]] = record
        summaries = results.summaries_frame(chosen.values()) if chosen else pd.DataFrame()
        return cls(experiment, preset, planned, summaries, Path(root), records=chosen)

    @property
    def source(self) -> str:
        """`runs`, `results` or `both`: where the selected runs were read from."""
        found = {r["source"] for r in self.records.values()}
        return found.pop() if len(found) == 1 else "both" if found else "runs"

    def where(self, **fields: Any) -> Selection:
        """The runs (planned and complete) whose config fields equal `fields` (keys as in
        `load_summaries`, with `__` for `.`: `model__n_future=1`)."""
        items = {k.replace("__", "."): v for k, v in fields.items()}
        planned = [p for p in self.planned if all(p.get(k) == v for k, v in items.items())]
        summaries = self.summaries
        for k, v in items.items():
            summaries = summaries[summaries[k] == v] if k in summaries else summaries.iloc[0:0]
        return self.subset(summaries, planned)

    def subset(self, summaries: Any, planned: list[dict[str, Any]] | None = None) -> Selection:
        """The same selection restricted to the runs of `summaries` (rows of `self.summaries`)."""
        summaries = summaries.reset_index(drop=True)
        kept = set(summaries["run_dir"]) if len(summaries) else set()
        return Selection(self.experiment, self.preset, self.planned if planned is None else planned, summaries,
                         self.root, self.reason, {k: v for k, v in self.records.items() if k in kept})

    @property
    def complete(self) -> int:
        return len(self.summaries)

    @property
    def seeds(self) -> list[int]:
        return sorted(int(s) for s in self.summaries["seed"].unique()) if self.complete else []

    def evals(self) -> Any:
        """Every evaluation row (`load_runs` columns) of the selected runs."""
        if self._evals is None:
            chosen = [self.records[d] for d in self.summaries["run_dir"]] if self.complete else []
            self._evals = results.runs_frame(chosen) if chosen else self.summaries.iloc[0:0]
        return self._evals

    def run_file(self, run_dir: str, name: str) -> Any:
        """A selected run's extra JSON file `name` (e.g. `speculative.json`), or None."""
        return self.records.get(run_dir, {}).get("files", {}).get(name)

    def require(self, what: str) -> None:
        """Raise `Missing` unless some planned run is complete."""
        if self.reason:
            raise Missing(self.reason)
        if not self.complete:
            raise Missing(f"no complete {what} run of experiment `{self.experiment}` under {self.root}/ "
                          f"or in the results store (preset {self.preset}; {len(self.planned)} planned)")
