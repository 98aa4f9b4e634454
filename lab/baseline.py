"""The next-token comparison a run prints: what n = 1 reaches at the same settings.

A multi-token run alone says little; `python -m lab.run induction --heads 4` ends with the
next-token model trained on the same data, schedule and shape beside it. The counterpart of a
config is the same config with one parallel head and equal loss weights (`counterpart_key`;
parameter matching changes nothing at n = 1, and what a run logs besides its metrics does not
count); the experiment and label only name a run, so they are left out. Complete runs with that key
are looked up in the run directories under `--out` and in the committed results store
(`results/`, found from any folder by `lab.results.locate`; the `headline` experiment keeps the
README's first commands there for 3 seeds),
so a new user sees the baseline without training it.

The printed numbers follow the lab's evidence rules: each run's test primary metric at the
step chosen on its validation set, the same seed paired when both arms have it, and a
Student-t 95% CI over the seeds found.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lab import results, runs
from lab.analysis import stats

NAMING = ("experiment", "label")  # name a run, do not change its result


def counterpart_key(config: dict[str, Any]) -> str:
    """Canonical JSON of the next-token run at the settings of `config` (a `config.json` dict), seed
    and naming fields left out: runs with equal keys differ only in seed."""
    data = json.loads(json.dumps(config))
    for name in (*NAMING, "seed"):
        data.pop(name, None)
    data["model"].update(n_future=1, head_type="parallel", match_params=None)  # no effect at n = 1
    data["train"]["head_weights"] = None
    data["train"].pop("log_mechanism", None)  # extra measurements, the same training
    return json.dumps(data, sort_keys=True, separators=(",", ":"))


@dataclass(frozen=True)
class Found:
    """One complete next-token run: its seed, the reported value and where it lives."""

    seed: int
    value: float
    where: str


def reported(summary: dict[str, Any]) -> float:
    """The test primary metric at the step chosen on validation."""
    return float(summary.get("best", {}).get(summary.get("primary_metric", ""), math.nan))


def _candidates(out: Path, store: Path) -> Iterable[tuple[dict[str, Any], dict[str, Any], str]]:
    """(config, summary, where) of every complete run under `out`, then of every stored run."""
    for d in results.complete_dirs(out):
        yield runs.read_json(d / runs.CONFIG), runs.read_json(d / runs.SUMMARY), str(d)
    for path in results.store_files(store):
        for record in results.decode(path):
            yield record["config"], record["summary"], f"{path}"


def find_next_token(config: dict[str, Any], out: Path, store: Path = results.STORE) -> list[Found]:
    """The complete next-token runs at the settings of `config`, one per seed (run directories
    first)."""
    key = counterpart_key(config)
    found: dict[int, Found] = {}
    for other, summary, where in _candidates(Path(out), Path(store)):
        seed = int(other.get("seed", -1))
        if seed not in found and other.get("model",
                                           {}).get("n_future") == 1 and counterpart_key(other) == key:
            found[seed] = Found(seed, reported(summary), where)
    return [found[s] for s in sorted(found)]


def comparison_lines(config: dict[str, Any], summary: dict[str, Any], out: Path,
                     store: Path = results.STORE) -> list[str]:
    """What the run summary prints about next-token prediction at the same settings."""
    n, seed, metric = config["model"]["n_future"], config["seed"], summary.get("primary_metric",
                                                                               "?")
    if n == 1 and config["model"]["head_type"] == "parallel" and not config["train"].get("head_weights"):
        return []
    found = find_next_token(config, out, store)
    if not found:
        warning = results.missing_store_warning(store)
        return ([warning] if warning else []) + [
            f"next-token (n=1) at these settings: no complete run in {out}/ or "
            f"{results.locate(store)}/; rerun this command with --heads 1 "
            "(and --head-type parallel) to train it"]
    mine = reported(summary)
    lines = [f"next-token (n=1) at these settings, {metric} (test, at the step chosen on "
             "validation):"]
    for f in found:
        lines.append(f"  n=1 seed {f.seed}: {f.value:.4f}   ({f.where})")
    same = [f for f in found if f.seed == seed]
    if same:
        lines.append(f"  this run (n={n}, seed {seed}): {mine:.4f}, {mine - same[0].value:+.4f} "
                     "against n=1 at the "
                     f"same seed")
    else:
        lines.append(f"  this run (n={n}, seed {seed}): {mine:.4f}; no n=1 run with seed {seed}")
    if len(found) >= 2:
        mean, lo, hi = stats.mean_ci([f.value for f in found])
        lines.append(f"  n=1 over {len(found)} seeds: {mean:.4f} [{lo:.4f}, {hi:.4f}] (95% t CI); "
                     f"one run of n={n} "
                     "is one seed: compare over seeds with `python -m lab.sweep headline`")
    return lines
