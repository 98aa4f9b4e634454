"""One run filter (`lab.selection.RunFilter`) behind `lab.sweep --only`, `lab.runs --only`,
`Selection.where` and the claims: on the committed results store, the sweep's planned runs and
the runs table accept the same keys and keep the same runs."""

from __future__ import annotations

import functools

import pytest

from lab import results, sweep, table
from lab.errors import ConfigError
from lab.experiments import plan
from lab.selection import RunFilter, filter_key
from tests.conftest import REPO

STORE = REPO / "results"
EXPERIMENT = "scaling"  # two tasks (induction and polynomial), three sizes, several head counts


@functools.cache
def planned() -> tuple:
    return tuple(plan(EXPERIMENT, "quick"))


@functools.cache
def stored() -> list[dict]:
    """The runs table's records of the stored runs (what `python -m lab.runs` lists for run dirs)."""
    return [{**table.flat_config(r["config"]), "status": "complete", "run_name": r["run_id"]}
            for r in results.store_records(STORE, EXPERIMENT, "quick")]


def by_sweep(only: list[str]) -> set[str]:
    return {c.run_name() for c in sweep.filter_runs(list(planned()), only)}


def by_runs(only: list[str]) -> set[str]:
    return {r["run_name"] for r in table.select(stored(), only)}


def text(value) -> str:
    """A stored value as one would type it after `--only KEY=`."""
    if isinstance(value, (list, tuple)):
        return ",".join(map(str, value))
    return {None: "none", True: "true", False: "false"}.get(value, str(value)) if not isinstance(
        value, (int, float)) or isinstance(value, bool) else str(value)


def test_the_store_holds_the_plan() -> None:
    assert by_runs([]) == by_sweep([]) and len(by_sweep([])) > 20


@pytest.mark.parametrize("only", [
    ["task=induction"], ["model.n_future=2"], ["size=1M", "model.n_future=1"], ["train.lr=1e-3"],
    ["train.lr=0.001", "seed=2"], ["task.seq_len=64"], ["task_config.seq_len=64"], ["task=polynomial", "seed=0"],
])
def test_sweep_and_runs_keep_the_same_stored_runs(only: list[str]) -> None:
    kept = by_sweep(only)
    assert kept == by_runs(only)
    assert 0 < len(kept) < len(by_sweep([])) or only == ["train.lr=1e-3"]


def test_every_config_key_means_the_same_in_both() -> None:
    """Each key of a stored run, with that run's value: the same runs in both, the run among them."""
    records = stored()
    for record in records[:: max(1, len(records) // 4)]:
        for key, value in record.items():
            if key in ("status", "run_name", "_summary") or key.startswith("_"):
                continue
            only = [f"{filter_key(key)}={text(value)}"]
            assert by_sweep(only) == by_runs(only), only
            assert record["run_name"] in by_runs(only), only


@pytest.mark.parametrize("only, words", [
    (["train.lrr=1e-3"], "train.lr"), (["colour=red"], "unknown key"), (["train.lr=fast"], "expects float"),
    (["seed=1.0"], "seed expects int"), (["task.seq_len=6x"], "task.seq_len"),
])
def test_both_refuse_the_same_bad_filters(only: list[str], words: str) -> None:
    with pytest.raises(ConfigError, match=words):
        by_sweep(only)
    with pytest.raises(ConfigError, match=words):
        by_runs(only)


def test_selection_and_claims_use_it_on_frames() -> None:
    frame = results.summaries_frame(results.store_records(STORE, EXPERIMENT, "quick"))
    keep = RunFilter.of({"task": "induction", "model.n_future": 2, "task.seq_len": 64})
    rows = keep.frame(frame)
    names = set(rows["run_dir"].map(lambda d: d.rsplit("/", 1)[-1]))
    assert len(rows) and all(n.split("-")[0] == "induction" for n in names)
    assert len(rows) == len(by_sweep(["task=induction", "model.n_future=2", "task.seq_len=64"]))
    assert len(RunFilter.of({"model.n_future": frozenset({1, 2})}).frame(frame)) == len(
        by_sweep(["model.n_future=1"]) | by_sweep(["model.n_future=2"]))


def test_a_filter_on_a_field_left_at_its_omitted_default_compares_the_default():
    """Fields added after runs existed are left out of config.json at their default; `--only` still
    compares them (`train.tokens_per_param=0`: the runs without a budget)."""
    from lab.build import build_config
    budgeted = build_config("induction", size="100K", tokens_per_param=1, overrides=["task.seq_len=64"])
    plain = build_config("induction", size="100K", overrides=["task.seq_len=64"])
    kept = sweep.filter_runs([budgeted, plain], ["train.tokens_per_param=0"])
    assert kept == [plain]
    assert sweep.filter_runs([budgeted, plain], ["train.tokens_per_param=1"]) == [budgeted]
