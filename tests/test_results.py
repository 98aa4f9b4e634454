"""The results store: export of hand-written run directories, merging, conflicts, readers, CLI."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import pandas as pd
import pytest
import torch
from conftest import run_cli

from lab import results, results_cli, runs
from lab.config import RunConfig
from lab.experiments import planned_presets


def make_run(root: Path, experiment: str, seed: int, status: str = "complete", steps: int = 3,
             config: RunConfig | None = None) -> Path:
    """A run directory as the trainer leaves it (checkpoint aside), with seed-dependent numbers."""
    config = config or RunConfig(experiment=experiment, seed=seed)
    run_dir = root / config.experiment / config.run_name()
    rows = [{"step": 10 * (i + 1), "tokens": 640 * (i + 1), "wall_s": 0.5 * (i + 1) + seed, "tokens_per_s": 1234.5,
             "lr": 1e-3, "train/loss": 2.0 / (i + 1) + 0.01 * seed, "head1/loss": 2.1 / (i + 1),
             "eval/acc": 0.1 * i + 0.001 * seed} for i in range(steps)]
    runs.write_json(run_dir / runs.CONFIG, config.to_dict())
    runs.write_jsonl(run_dir / runs.METRICS, rows)
    meta = {"status": status, "started": "2026-01-01T00:00:00+00:00", "git": {"commit": "abc", "dirty": False},
            "versions": {"torch": torch.__version__, "hostname": "box"}, "device": "cpu", "processes": 1,
            "error": None}
    if status == "complete":
        runs.write_json(run_dir / runs.SUMMARY, {
            "run_dir": str(run_dir), "primary_metric": "eval/acc", "final": rows[-1], "best_step": rows[-1]["step"],
            "best": rows[-1], "steps": rows[-1]["step"], "stopped_early": False, "wall_s": rows[-1]["wall_s"],
            "tokens": rows[-1]["tokens"], "tokens_per_s": 1000.0, "params": {"total": 1000 + seed}})
        meta["ended"] = "2026-01-01T00:01:00+00:00"
    runs.write_json(run_dir / runs.META, meta)
    return run_dir


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = tmp_path / "runs"
    for seed in (0, 1):
        make_run(root, "alpha", seed)
    make_run(root, "beta", 0)
    make_run(root, "alpha", 2, status="running")
    make_run(root, "beta", 1, status="failed")
    return root


def edit_metric(run_dir: Path, key: str, delta: float) -> None:
    rows = runs.read_jsonl(run_dir / runs.METRICS)
    rows[1][key] += delta
    runs.write_jsonl(run_dir / runs.METRICS, rows)


def store_bytes(store: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(store.iterdir())}


def complete_only(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[frame["status"] == "complete"].reset_index(drop=True)


def assert_same_columns(ours: pd.DataFrame, theirs: pd.DataFrame) -> None:
    """Same columns and, but for `run_dir`, the same values (dtypes may differ: the lab.runs frames
    also hold incomplete runs, whose missing values turn integer columns into floats)."""
    assert set(ours.columns) == set(theirs.columns)
    common = sorted(set(ours.columns) - {"run_dir"})
    assert len(common) > 20 and "run_name" in common
    pd.testing.assert_frame_equal(ours[common].reset_index(drop=True), theirs[common].reset_index(drop=True),
                                  check_dtype=False)


def test_export_round_trips_into_the_frames_of_load_runs_and_load_summaries(root: Path, tmp_path: Path) -> None:
    store = tmp_path / "results"
    report = results.export(root, store, presets=planned_presets)
    assert sorted(p.name for p in store.iterdir()) == ["alpha.other.jsonl.gz", "beta.other.jsonl.gz"]
    assert len(report.incomplete) == 2 and report.written and not report.unchanged

    stored = results.store_records(store)
    assert [(r["experiment"], r["run_id"]) for r in stored] == [
        (d.parent.name, d.name) for d in runs.iter_run_dirs(root) if runs.run_state(d) == "complete"]
    assert all(set(r) == {"run_id", "experiment", "preset", "config", "meta", "metrics", "summary"} for r in stored)
    assert {r["preset"] for r in stored} == {"other"}

    ours, theirs = results.load_store_runs(store), complete_only(runs.load_runs(root))
    assert len(ours) == 9
    assert_same_columns(ours, theirs)
    assert set(ours["run_dir"]) == {f"results:{e}/{n}" for e, n in zip(theirs["experiment"], theirs["run_name"])}

    ours, theirs = results.load_store_summaries(store), complete_only(runs.load_summaries(root))
    assert_same_columns(ours, theirs)
    assert {"primary", "best_primary"} <= set(ours.columns)
    assert list(ours["primary"]) == list(theirs["primary"])
    assert list(results.load_store_summaries(store, "beta")["run_name"]) == [RunConfig(experiment="beta").run_name()]


def test_re_export_is_byte_identical_and_deterministic(root: Path, tmp_path: Path) -> None:
    store, other = tmp_path / "results", tmp_path / "elsewhere"
    results.export(root, store, presets=planned_presets)
    before = store_bytes(store)
    report = results.export(root, store, presets=planned_presets)
    assert store_bytes(store) == before and report.written == [] and report.unchanged == 3
    results.export(root, other, presets=planned_presets)  # a fresh store from the same runs: the same bytes
    assert store_bytes(other) == before
    data = before["alpha.other.jsonl.gz"]
    assert data[3] == 0 and data[4:8] == b"\0\0\0\0"  # no file name, mtime 0
    lines = gzip.decompress(data).decode().splitlines()
    assert len(lines) == 2 and lines == sorted(lines)


def test_merge_adds_new_runs_and_keeps_stored_ones(root: Path, tmp_path: Path) -> None:
    store = tmp_path / "results"
    results.export(root, store, experiments=["alpha"], presets=planned_presets)
    assert [p.name for p in store.iterdir()] == ["alpha.other.jsonl.gz"]
    first = results.store_records(store, "alpha")
    more = tmp_path / "more"
    make_run(more, "alpha", 5)
    report = results.export(more, store, presets=planned_presets)
    assert sum(len(v) for v in report.added.values()) == 1
    merged = results.store_records(store, "alpha")
    assert len(merged) == 3 and [r for r in merged if r["config"]["seed"] != 5] == first


def test_a_run_planned_by_a_preset_is_stored_under_it(tmp_path: Path) -> None:
    from lab.experiments import plan
    config = plan("pathstar", "quick")[0]
    make_run(tmp_path / "runs", "pathstar", 0, config=config)
    results.export(tmp_path / "runs", tmp_path / "results", presets=planned_presets)
    assert results.counts(tmp_path / "results") == {("pathstar", "quick"): 1}
    assert results.store_records(tmp_path / "results", "pathstar", "quick")[0]["run_id"] == config.run_name()


def test_a_conflicting_run_is_refused_and_the_store_is_untouched(root: Path, tmp_path: Path) -> None:
    store = tmp_path / "results"
    results.export(root, store, presets=planned_presets)
    before = store_bytes(store)
    again = tmp_path / "again"
    shutil.copytree(root, again)
    make_run(again, "alpha", 7)  # a new run that must not be written either
    run_dir = again / "alpha" / RunConfig(experiment="alpha", seed=1).run_name()
    edit_metric(run_dir, "train/loss", 1e-3)
    with pytest.raises(results.StoreConflict, match=rf"{run_dir.name}.*train/loss.*step 20"):
        results.export(again, store, presets=planned_presets)
    assert store_bytes(store) == before


def test_cli_reports_a_conflict_in_one_line_with_exit_1(root: Path, tmp_path: Path, capsys) -> None:
    store = tmp_path / "results"
    assert results_cli.main(["export", "--runs", str(root), "--store", str(store)]) == 0
    before = store_bytes(store)
    edit_metric(root / "beta" / RunConfig(experiment="beta").run_name(), "eval/acc", 1e-3)
    capsys.readouterr()
    assert results_cli.main(["export", "--runs", str(root), "--store", str(store)]) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "eval/acc" in err
    assert store_bytes(store) == before


def test_differences_within_tolerance_and_wall_clock_fields_are_accepted(root: Path, tmp_path: Path) -> None:
    store = tmp_path / "results"
    results.export(root, store, presets=planned_presets)
    before = store_bytes(store)
    run_dir = root / "alpha" / RunConfig(experiment="alpha", seed=0).run_name()
    edit_metric(run_dir, "train/loss", 1e-9)
    edit_metric(run_dir, "wall_s", 100.0)
    meta = runs.read_json(run_dir / runs.META)
    meta.update({"started": "2027-05-05T00:00:00+00:00", "git": {"commit": "def", "dirty": True},
                 "versions": {"torch": "9.9", "cpu": {"model": "other"}}})
    runs.write_json(run_dir / runs.META, meta)
    summary = runs.read_json(run_dir / runs.SUMMARY)
    summary.update({"run_dir": "/elsewhere/run", "tokens_per_s": 1.0})
    runs.write_json(run_dir / runs.SUMMARY, summary)
    report = results.export(root, store, presets=planned_presets)
    assert report.unchanged == 3 and report.written == []
    assert store_bytes(store) == before
    with pytest.raises(results.StoreConflict, match="train/loss"):
        results.export(root, store, tol=1e-12, presets=planned_presets)  # the tolerance is what accepted it


def test_a_different_config_or_status_under_one_id_is_a_conflict(root: Path, tmp_path: Path) -> None:
    store = tmp_path / "results"
    results.export(root, store, presets=planned_presets)
    run_dir = root / "beta" / RunConfig(experiment="beta").run_name()
    config = runs.read_json(run_dir / runs.CONFIG)
    config["train"]["lr"] = 2e-3
    runs.write_json(run_dir / runs.CONFIG, config)
    with pytest.raises(results.StoreConflict, match=r"config\.train\.lr"):
        results.export(root, store, presets=planned_presets)


def test_records_read_run_directories_and_the_stored_runs_they_lack(root: Path, tmp_path: Path) -> None:
    store = tmp_path / "results"
    results.export(root, store, presets=planned_presets)
    here = results.records(root, store, "alpha")
    assert [r["source"] for r in here] == ["runs", "runs"]
    assert all(Path(r["run_dir"]).is_dir() for r in here)
    shutil.rmtree(root / "alpha")
    there = results.records(root, store, "alpha")
    assert [r["source"] for r in there] == ["results", "results"]
    assert [r["run_dir"] for r in there] == [f"results:alpha/{r['run_id']}" for r in here]
    keys = ("run_id", "experiment", "config", "meta", "metrics", "summary")
    assert [{k: r[k] for k in keys} for r in there] == [{k: r[k] for k in keys} for r in here]
    assert_same_columns(results.summaries_frame(there), results.summaries_frame(here))
    assert results.records(root, store, "gamma") == []
    one = make_run(root, "alpha", 1)  # a directory again for one of the two stored runs, and a new run
    extra = make_run(root, "alpha", 5)
    both = results.records(root, store, "alpha")
    assert sorted((r["source"], r["run_id"]) for r in both) == sorted(
        [("runs", one.name), ("runs", extra.name),
         *[("results", r["run_id"]) for r in there if r["run_id"] != one.name]])  # the directory wins


def test_extra_json_files_of_a_run_are_stored_and_added_later(root: Path, tmp_path: Path) -> None:
    store = tmp_path / "results"
    results.export(root, store, presets=planned_presets)
    run_dir = root / "beta" / RunConfig(experiment="beta").run_name()
    measured = {"rows": [{"k": 2, "speedup": 1.5}]}
    runs.write_json(run_dir / "speculative.json", measured)
    report = results.export(root, store, presets=planned_presets)
    assert sum(len(v) for v in report.updated.values()) == 1
    assert results.store_records(store, "beta")[0]["files"] == {"speculative.json": measured}


def test_cli_bad_input_exits_2_and_writes_nothing(root: Path, tmp_path: Path, capsys) -> None:
    store = tmp_path / "results"
    cases = [["export", "--runs", str(tmp_path / "nope"), "--store", str(store)],
             ["export", "--runs", str(root), "--store", str(store), "--experiment", "gamma"],
             ["export", "--runs", str(root), "--store", str(store), "--tolerance", "-1"]]
    for argv in cases:
        capsys.readouterr()
        assert results_cli.main(argv) == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and err.startswith("error:")
        assert not store.exists()
    afile = tmp_path / "file"
    afile.write_text("x")
    for argv in (["export", "--runs", str(root), "--store", str(afile)], ["list", "--store", str(afile)],
                 ["export", "--runs", str(root), "--store", str(afile / "sub")]):
        assert results_cli.main(argv) == 2
        assert afile.read_text() == "x"


def test_cli_export_and_list(root: Path, tmp_path: Path) -> None:
    store = tmp_path / "results"
    done = run_cli(["lab.results", "export", "--runs", str(root), "--store", str(store)], timeout=120)
    assert done.returncode == 0, done.stderr
    assert "3 runs added" in done.stdout and "2 incomplete" in done.stdout
    assert "`python -m lab.figures --preset other`" in done.stdout  # the store changed: figures must follow
    again = run_cli(["lab.results", "export", "--runs", str(root), "--store", str(store)], timeout=120)
    assert again.returncode == 0 and "3 unchanged" in again.stdout and "lag" not in again.stdout
    listed = run_cli(["lab.results", "list", "--store", str(store)], timeout=120)
    assert listed.returncode == 0, listed.stderr
    assert [line.split() for line in listed.stdout.splitlines()[:2]] == [
        ["alpha", "other", "2", "runs"], ["beta", "other", "1", "runs"]]


def test_cpu_info_names_the_cpu_isa_and_threads() -> None:
    info = results.cpu_info()
    assert info["threads"] == torch.get_num_threads()
    assert isinstance(info["model"], str) and info["model"]
    if hasattr(torch.backends.cpu, "get_cpu_capability"):
        assert info["capability"] == torch.backends.cpu.get_cpu_capability()
