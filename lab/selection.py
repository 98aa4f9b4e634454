"""Run selection: the complete runs of an experiment's plan, which is what a figure or claim may use.

The runs come from run directories under `root/<experiment>/` and, for the runs they do not
hold, from the committed results store (`lab.results`), so a fresh checkout draws every figure
without training and a partial `runs/` adds to the store instead of hiding it. A found run
matches a planned config when every config field both share is equal (runs stay usable when a
later version adds a config field), with `@run` references compared without their hash.

`RunFilter` is the lab's one run filter, behind `python -m lab.sweep --only`, `python -m lab.runs
--only`, `Selection.where` and every claim's arms:

- keys are those of `python -m lab.run --set` (`task`, `size`, `seed`, `label`, `model.n_future`,
  `train.lr`, `task.seq_len`, ...); `task_config.X`, the name in config.json, is read as `task.X`;
  a key that is not a config field (`status` in `lab.runs`) compares as text;
- a value given as text is parsed as `--set` parses it, to the field's declared type (for
  `task.X`, the type in each run's own task), so `train.lr=1e-3` keeps a run at lr 0.001, and
  `seed=1.0` is an error, not a match;
- values compare exactly (`==`; lists as tuples); a run without the key (a task without the
  knob) does not match; a `frozenset` value (from code, not text) matches any of its members;
- a key that no run has is a `ConfigError` naming the closest keys the runs have.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lab import results
from lab.config import HASH_NEUTRAL_DEFAULTS, convert, field_type, unknown_key
from lab.errors import ConfigError
from lab.runs import flatten


class Text(str):
    """A filter value as typed on the command line, parsed to the key's type for each run."""


def filter_key(key: str) -> str:
    """The `--set` name of a key: `task_config.X` (config.json's name) is `task.X`."""
    key = key.strip()
    return "task." + key[len("task_config."):] if key.startswith("task_config.") else key


def stored_key(key: str) -> str:
    """The flattened-config name of a `--set` key: `task.X` is stored as `task_config.X`."""
    return "task_config." + key[len("task."):] if key.startswith("task.") else key


# Fields a stored config leaves out while they hold their default
# (`lab.config.HASH_NEUTRAL_DEFAULTS`): a filter
# on one compares the default, so `--only train.tokens_per_param=0` keeps the runs without a budget.
OMITTED_DEFAULTS = {f"{section}.{name}": default for (section,
                                                      name), default in HASH_NEUTRAL_DEFAULTS.items()}


@dataclass(frozen=True)
class RunFilter:
    """Which runs to keep: every `(key, value)` must hold (see the module docstring)."""

    items: tuple[tuple[str, Any], ...] = ()

    @classmethod
    def of(cls, fields: Mapping[str, Any] | RunFilter | None = None) -> RunFilter:
        """A filter from `{key: value}` (values typed, or `Text` to parse), or the filter itself."""
        if isinstance(fields, RunFilter):
            return fields
        return cls(tuple((filter_key(k), v) for k, v in (fields or {}).items()))

    @classmethod
    def parse(cls, texts: Iterable[str], option: str = "--only") -> RunFilter:
        """A filter from `KEY=VALUE` texts (a `ConfigError` for one without `=` or a key)."""
        items = []
        for text in texts:
            key, sep, value = text.partition("=")
            if not sep or not key.strip():
                raise ConfigError(f"{option} expects KEY=VALUE, got {text!r}")
            items.append((filter_key(key), Text(value.strip())))
        return cls(tuple(items))

    def __bool__(self) -> bool:
        return bool(self.items)

    def wanted(self, key: str, value: Any, task: Any) -> Any:
        """`value` as the key's type for a run of `task` (text parsed as `--set` parses it)."""
        if not isinstance(value, Text):
            return value
        if key.startswith("task."):
            from lab.resolve import task_field_type
            return _parse(str(value), task_field_type(str(task), key[5:]), key)
        try:
            annotation = field_type(key)
        except ConfigError:  # not a config field (`status`): compared as text
            return str(value)
        return _parse(str(value), annotation, key)

    def matches(self, flat: Mapping[str, Any]) -> bool:
        """Whether a flattened config (config.json's names, `lab.runs.flatten`) passes every
        item."""
        for key, value in self.items:
            name = stored_key(key)
            if name not in flat and name not in OMITTED_DEFAULTS:
                return False
            if key.startswith("task.") and not _has_knob(flat.get("task"), key[5:]):
                return False
            wanted = self.wanted(key, value, flat.get("task"))
            stored = _plain(flat[name]) if name in flat else OMITTED_DEFAULTS[name]
            if not (stored in wanted if isinstance(wanted, frozenset) else stored == wanted):
                return False
        return True

    def check(self, flats: Iterable[Mapping[str, Any]]) -> None:
        """A `ConfigError` for a key no run has (naming the closest) or a value no run's type
        takes."""
        flats = list(flats)
        for key, value in self.items:
            having = [f for f in flats if stored_key(key) in f or stored_key(key) in OMITTED_DEFAULTS]
            if flats and not having:
                known = sorted({filter_key(k) for f in flats for k in f if not k.startswith("_")})
                raise unknown_key(key, known)
            tasks = {f.get("task") for f in having if not key.startswith("task.")
                     or _has_knob(f.get("task"), key[5:])}
            for task in sorted(tasks, key=str) or [None]:
                if not key.startswith("task.") or task is not None:
                    self.wanted(key, value, task)

    def select(self, flats: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
        """The flattened configs that pass, after `check`."""
        flats = list(flats)
        self.check(flats)
        return [f for f in flats if self.matches(f)]

    def frame(self, df: Any) -> Any:
        """The rows of a DataFrame whose config columns (`task_config.*`, `model.n_future`, ...)
        pass; none when a column is missing."""
        keep = None
        for key, value in self.items:
            name = stored_key(key)
            if name not in df:
                return df.iloc[0:0]
            tasks = df["task"] if "task" in df else [None] * len(df)
            wanted = [self.wanted(key, value, task) for task in tasks] if isinstance(value,
                                                                                     Text) else None
            if wanted is None:
                hit = df[name].isin(value) if isinstance(value, frozenset) else df[name] == value
            else:
                import pandas as pd
                hit = pd.Series([_plain(s) == w for s, w in zip(df[name], wanted)], index=df.index,
                                dtype=bool)
            keep = hit if keep is None else keep & hit
        return df if keep is None else df[keep]


@functools.lru_cache(maxsize=4096)
def _parse(text: str, annotation: Any, key: str) -> Any:
    """`convert`, remembered: a filter parses the same text once per type, not once per run."""
    return _plain(convert(text, annotation, key))


def _plain(value: Any) -> Any:
    """Lists as tuples, so a stored list and a parsed list compare equal."""
    return tuple(value) if isinstance(value, list) else value


@functools.lru_cache(maxsize=1024)
def _has_knob(task: Any, name: str) -> bool:
    """Whether task `task` declares knob `name` (a run whose task lacks it does not match)."""
    from lab.resolve import task_field_type
    try:
        task_field_type(str(task), name)
    except (ConfigError, KeyError, ValueError):
        return False
    return True


class Missing(Exception):
    """What an analysis needs is not in the runs (no complete planned run, a metric never logged).
    The message says why."""


def comparable(config: dict[str, Any]) -> dict[str, Any]:
    """Flattened config with `@run name` references stripped of their hash."""
    flat = flatten(config)
    return {k: re.sub(r"-[0-9a-f]{8}(?=/|$)", "", v) if isinstance(v,
                                                                   str) and v.startswith("@") else v
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
    # run_dir -> store record
    records: dict[str, dict[str, Any]] = field(default_factory=dict, repr=False)
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
        for record in results.records(Path(root),
                                      Path(store) if store else Path(root) / ".no-store",
                                      experiment):
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

    def where(self, fields: Mapping[str, Any] | RunFilter) -> Selection:
        """The runs (planned and complete) that pass `RunFilter.of(fields)`, e.g.
        `{"task": "induction", "model.n_future": 1}`."""
        keep = RunFilter.of(fields)
        planned = [p for p in self.planned if keep.matches(p)]
        summaries = keep.frame(self.summaries) if self.complete else self.summaries
        return self.subset(summaries, planned)

    def subset(self, summaries: Any, planned: list[dict[str, Any]] | None = None) -> Selection:
        """The same selection restricted to the runs of `summaries` (rows of `self.summaries`)."""
        summaries = summaries.reset_index(drop=True)
        kept = set(summaries["run_dir"]) if len(summaries) else set()
        return Selection(self.experiment, self.preset, self.planned if planned is None else planned,
                         summaries,
                         self.root, self.reason,
                         {k: v for k, v in self.records.items() if k in kept})

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
            raise Missing(f"no complete {what} run of experiment `{self.experiment}` under "
                          f"{self.root}/ or in the results store (preset {self.preset}; "
                          f"{len(self.planned)} "
                          "planned)")
