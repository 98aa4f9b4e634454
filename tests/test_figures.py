"""The figure regeneration script: run selection, kept and missing figures, the numbers in RESULTS.md."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from lab import figures, runs
from lab.analysis import registry as figure_registry
from lab.analysis import render, stats
from lab.config import RunConfig
from lab.experiments import REGISTRY, Experiment, plan, planned_presets

REPO = Path(__file__).resolve().parents[1]
COMMITTED = REPO / "figures"  # the committed images and Markdown, as a fresh checkout has them


@pytest.fixture(autouse=True)
def no_results_store(tmp_path, monkeypatch):
    """Run in an empty folder, with `MTP_LAB_HOME` there too, so the default results store is absent:
    these tests draw from the run directories they write (the store has tests of its own below)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MTP_LAB_HOME", str(tmp_path))


def write_run(root: Path, config: RunConfig, final: dict, rows: list[dict] | None = None, status: str = "complete",
              drop_key: str | None = None) -> Path:
    """A run directory as the trainer writes it, holding the given metrics (a test fixture)."""
    run_dir = root / config.experiment / config.run_name()
    data = config.to_dict()
    if drop_key:  # a run written before a config field existed
        section, key = drop_key.split(".")
        del data[section][key]
    runs.write_json(run_dir / runs.CONFIG, data)
    runs.write_json(run_dir / runs.META, {"status": status})
    rows = rows or [{"step": config.train.steps, "tokens": 1000, **final}]
    runs.write_jsonl(run_dir / runs.METRICS, rows)
    if status == "complete":
        primary = {"induction": "eval/second_token_acc", "polynomial": "eval/exact_match/in_domain",
                   "graph": "eval/exact_path_acc"}[config.task]
        runs.write_json(run_dir / runs.SUMMARY, {"final": rows[-1], "best": rows[-1], "primary_metric": primary,
                                                 "params": {"non_embedding": 1000 * config.model.d_model}})
    return run_dir


def results_table(text: str, heading: str) -> list[list[str]]:
    """The rows of the Markdown table under `**heading**` in RESULTS.md."""
    block = text.split(f"**{heading}**", 1)[1].strip().split("\n\n", 1)[0]
    return [[c.strip() for c in line.strip("|").split("|")] for line in block.splitlines()[2:]]


def committed_specs() -> list:
    """The registered figures that have a committed image (a figure whose runs never existed has none)."""
    return [spec for spec in figure_registry.specs() if (COMMITTED / f"{spec.key}.png").exists()]


def snapshot(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


def committed_copy(tmp_path: Path) -> Path:
    out = tmp_path / "figures"
    shutil.copytree(COMMITTED, out)
    return out


def write_scaling_runs(root: Path, seed: int = 0) -> dict:
    """Complete quick `scaling` runs of induction and polynomial (random metrics); returns the induction values."""
    rng = np.random.default_rng(seed)
    values = {}
    for i, config in enumerate(c for c in plan("scaling", "quick") if c.task in ("induction", "polynomial")):
        if config.task == "induction":
            value = float(rng.random())
            values[(config.size, config.model.n_future, config.seed)] = value
            final = {"eval/second_token_acc": value}
        else:
            final = {f"eval/exact_match/ops={m}": float(rng.random()) for m in (1, 2, 3)}
            final["eval/exact_match/in_domain"] = np.mean([final[f"eval/exact_match/ops={m}"] for m in (1, 2)])
            final["eval/exact_match/out_of_domain"] = final["eval/exact_match/ops=3"]
        write_run(root, config, final, drop_key="train.compile" if i == 0 else None)
    return values


def test_figures_from_scaling_runs_and_missing_ones(tmp_path, capsys):
    root, out = tmp_path / "runs", tmp_path / "figures"
    configs = plan("scaling", "quick")
    values = write_scaling_runs(root)
    # An incomplete run of the same config space is ignored; so is a run of another preset.
    graph = next(c for c in configs if c.task == "graph")
    write_run(root, graph, {"eval/exact_path_acc": 0.9}, status="running")
    stale = out / "4_pathstar.png"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"old")

    assert figures.main(["--runs", str(root), "--out", str(out)]) == 0
    for key in ("1a_induction_vs_size", "2a_polynomial_vs_ops", "2b_polynomial_vs_size"):
        assert (out / f"{key}.png").read_bytes()[:4] == b"\x89PNG"
    assert stale.read_bytes() == b"old"  # a figure without runs keeps its image
    assert f"kept {stale}: no complete path-star run of experiment `pathstar`" in capsys.readouterr().out
    readme = (out / "README.md").read_text()
    assert "![Induction vs model size (Figure 7 analogue)](1a_induction_vs_size.png)" in readme
    assert "experiment `scaling`, preset `quick`: 45 of 45 planned runs; 5 seeds (0, 1, 2, 3, 4)" in readme
    assert "![Path-star: next-token, MTP, teacherless and reverse training](4_pathstar.png)" in readme
    missing = readme.split("## Missing figures", 1)[1]
    for key in ("1b.", "2c.", "3.", "5.", "6.", "7a.", "7b.", "7c.", "8."):
        assert f"**{key} " in missing
    assert "**4. " not in missing
    assert "`python -m lab.sweep heads --preset quick`" in missing

    text = (out / "RESULTS.md").read_text()
    table = results_table(text, "second-token accuracy at repeated mentions (test, at the step chosen on validation)")
    assert len(table) == 9
    for size, n, mean, lo, hi, low, high, seeds in table:
        seeds_values = [v for (z, k, _), v in values.items() if (z, k) == (size, int(n))]
        assert float(mean) == pytest.approx(np.mean(seeds_values), abs=6e-4)
        ci = np.clip(stats.mean_ci(seeds_values)[1:], 0, 1)  # 95% CI, cut to an accuracy's range
        assert (float(lo), float(hi)) == pytest.approx(tuple(ci), abs=6e-4)
        assert (float(low), float(high)) == pytest.approx((min(seeds_values), max(seeds_values)), abs=6e-4)
        assert seeds == str(len(seeds_values)) == "5"  # 1M too: its claims are decisive
    # The sentence under the figure is the paired difference of the same values, with its t CI.
    effect = stats.paired_difference({s: values[("1M", 2, s)] for s in range(5)},
                                     {s: values[("1M", 1, s)] for s in range(5)}, method="t")
    assert f"{stats.format_effect(effect)} at 1M" in text


def test_partial_experiment_says_how_many_runs(tmp_path):
    rng = np.random.default_rng(1)
    root, out = tmp_path / "runs", tmp_path / "figures"
    for config in plan("pathstar", "quick"):
        if config.seed == 0:
            write_run(root, config, {"eval/exact_path_acc": float(rng.random()),
                                     **{f"eval/pos_acc/{k}": float(rng.random()) for k in range(1, 6)}})
    outcome = figures.generate(root, out, "quick")
    assert "4_pathstar" in outcome.drawn and "4_pathstar" not in outcome.missing
    readme = (out / "README.md").read_text()
    assert "4 of 12 planned runs (partial: the other runs are not complete); 1 seed (0)" in readme
    rows = results_table((out / "RESULTS.md").read_text(), "exact-path accuracy")
    assert [r[0] for r in rows] == sorted(["mtp", "next-token", "reverse", "teacherless"])


def test_finetune_figures_from_summaries_and_curves(tmp_path):
    rng = np.random.default_rng(2)
    root, out = tmp_path / "runs", tmp_path / "figures"
    diffs = []
    base = {}
    planned = plan("finetune", "quick")
    for config in planned:
        if config.label not in ("", "ntp", "add", "linear"):
            continue
        value = float(rng.random())
        if config.label == "ntp":
            base[config.seed] = value
        rows = [{"step": step, "tokens": step * 10, "head1/loss": 1 + float(rng.random()),
                 "finetune/pretrained_head1_loss": 1.0, "cka/depth1": float(rng.random()),
                 "eval/exact_match/in_domain": value} for step in (0, 200, 400)]
        write_run(root, config, {}, rows=rows if config.label else None)
        if config.label == "add":
            diffs.append((config.seed, value))
    outcome = figures.generate(root, out, "quick")
    assert {"7a_finetune_table", "7b_finetune_shock", "7c_finetune_drift"} <= set(outcome.drawn)
    rows = results_table((out / "RESULTS.md").read_text(), "in-domain exact match minus ntp, paired by seed")
    add = next(r for r in rows if r[0] == "add")
    assert float(add[1]) == pytest.approx(np.mean([v - base[s] for s, v in diffs]), abs=6e-4)
    readme = (out / "README.md").read_text()
    drawn = sum(c.label in ("ntp", "add", "linear") for c in planned)  # 3 variants x 5 seeds
    finetuned = sum(bool(c.label) for c in planned)  # the figures read the finetuning runs
    assert f"experiment `finetune`, preset `quick`: {drawn} of {finetuned} planned runs" in readme


def test_dynamics_figure_from_really_trained_runs(tmp_path, monkeypatch, tiny_overrides):
    """Tiny real runs: every evaluation row carries the induction-head score, and the figure shows it."""
    from lab import sweep
    from lab.run import build_config

    def tiny(preset: str) -> list[RunConfig]:
        return [build_config("induction", heads=n, size="1M", steps=10, seed=s, experiment="dynamics",
                             overrides=[*tiny_overrides, "task.seq_len=32", "task.eval_stories=32"])
                for n in (1, 2) for s in (0, 1)]

    monkeypatch.setitem(REGISTRY, "dynamics", Experiment("dynamics", tiny, "tiny dynamics"))
    monkeypatch.setattr(figure_registry, "FIGURES", [s for s in figure_registry.FIGURES if s.experiment == "dynamics"])
    root, out = tmp_path / "runs", tmp_path / "figures"
    assert sweep.main(["dynamics", "--out", str(root), "--workers", "1"]) == 0
    assert figures.main(["--runs", str(root), "--out", str(out), "--format", "svg"]) == 0
    rows = [json.loads(line) for d in (root / "dynamics").iterdir() for line in (d / "metrics.jsonl").open()]
    assert len(rows) == 8 and all(0 < r["interp/prefix_matching_max"] <= 1 for r in rows)
    assert (out / "5_dynamics.svg").read_text().lstrip().startswith("<?xml")
    text = (out / "RESULTS.md").read_text()
    table = results_table(text, "best prefix-matching score over training")
    by_key = {(int(r[0]), int(r[1])): float(r[2]) for r in table}
    for n in (1, 2):
        for step in (5, 10):
            expected = np.mean([r["interp/prefix_matching_max"] for r in rows
                                if r["step"] == step and len([k for k in r if re.match(r"head\d/acc", k)]) == n])
            assert by_key[(n, step)] == pytest.approx(expected, abs=6e-4)


def test_speculative_figure_reads_each_runs_measurement(tmp_path):
    rng = np.random.default_rng(3)
    root, out = tmp_path / "runs", tmp_path / "figures"
    measured = {}
    for config in plan("speculative", "quick"):
        if config.task != "polynomial":
            continue
        run_dir = write_run(root, config, {"eval/exact_match/in_domain": 0.5})
        n = config.model.n_future
        rows = [{"k": k, "tokens_per_forward": 1 + float(rng.random()) * (k - 1), "speedup": float(rng.random()) * k}
                for k in range(1, n + 1)]
        if config.seed == 0 or n == 1:  # a complete run without a measurement is left out
            runs.write_json(run_dir / "speculative.json", {"task": config.task, "n_future": n, "rows": rows,
                                                           "head_type": config.model.head_type, "device": "cpu",
                                                           "batch": 8})
            measured[(n, config.model.head_type, config.seed)] = rows
    outcome = figures.generate(root, out, "quick")
    assert "8_speculative" in outcome.drawn
    table = results_table((out / "RESULTS.md").read_text(), "per task and k")
    assert table[0][:4] == ["polynomial", "1", "parallel", "1"]
    causal = [r for r in table if r[1] == "4" and r[2] == "causal"]
    assert [int(r[3]) for r in causal] == [1, 2, 3, 4]
    assert float(causal[3][4]) == pytest.approx(measured[(4, "causal", 0)][3]["tokens_per_forward"], abs=6e-4)
    readme = (out / "README.md").read_text()
    assert "experiment `speculative`, preset `quick`: 9 of 75 planned runs" in readme  # n=1: 5 seeds, others: seed 0


def test_run_missing_runs_sweeps_and_measuring_steps_as_commands(tmp_path, monkeypatch):
    root, out = tmp_path / "runs", tmp_path / "figures"
    for config in plan("speculative", "quick"):  # complete: only its measuring step is due
        write_run(root, config, {"eval/exact_match/in_domain": 0.5})
    calls = []
    monkeypatch.setattr(figures, "run_command", lambda argv: calls.append(argv) or 0)
    assert figures.main(["--runs", str(root), "--out", str(out), "--run-missing", "--workers", "3"]) == 2  # no figure
    head = [sys.executable, "-m"]
    sweeps = [c[2:] for c in calls if c[:3] == [*head, "lab.sweep"]]
    experiments = list(dict.fromkeys(spec.experiment for spec in figure_registry.specs()))
    assert [c[1] for c in sweeps] == [e for e in experiments if e != "speculative"]
    assert sweeps[0] == ["lab.sweep", experiments[0], "--preset", "quick", "--out", str(root), "--workers", "3"]
    measuring = [*head, "lab.experiments.speculative", "--preset", "quick", "--runs", str(root)]
    assert calls.index(measuring) == experiments.index("speculative")  # in its experiment's place
    assert len(calls) == len(sweeps) + 1


def test_run_missing_stops_when_interrupted(tmp_path, monkeypatch):
    root, out = tmp_path / "runs", tmp_path / "figures"
    calls = []
    monkeypatch.setattr(figures, "run_command", lambda argv: calls.append(argv) or 130)  # as after Ctrl-C
    assert figures.main(["--runs", str(root), "--out", str(out), "--run-missing"]) == 130
    assert len(calls) == 1  # no sweep after the interrupted one
    assert not out.exists()  # and nothing drawn


def test_drawing_never_imports_the_trainer():
    """Analysis stays apart from training: importing the figures (and every experiment's figure code)
    loads neither the trainer nor the sweep; experiment modules load no plotting library either."""
    code = ("import sys, lab.figures; print([m for m in ('lab.train', 'lab.sweep', 'torch') if m in sys.modules]); "
            "import lab.experiments")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=REPO)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
    code = ("import sys, lab.experiments; "
            "print([m for m in ('lab.train', 'lab.sweep', 'torch', 'matplotlib', 'pandas') if m in sys.modules])")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=REPO)
    assert result.stdout.strip() == "[]", result.stderr
    code = ("import sys, lab.figures\nfor name in lab.figures.REGISTRY:\n    lab.figures.plan(name, 'quick')\n"
            "print([m for m in ('lab.train', 'lab.sweep', 'lab.finetune') if m in sys.modules])")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=REPO)
    assert result.stdout.strip() == "[]", "planning, as a draw does, loads no trainer: " + result.stderr


def test_fresh_checkout_keeps_every_committed_figure(tmp_path, capsys):
    root = tmp_path / "runs"
    root.mkdir()
    (root / "README.md").write_text("Runs go here.\n")  # as committed: runs/ exists, but holds no run
    out = committed_copy(tmp_path)
    before = snapshot(out)
    assert figures.main(["--runs", str(root), "--out", str(out)]) == 2
    assert snapshot(out) == before  # byte-identical
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1 and "no figure can be drawn" in captured.err
    for spec in committed_specs():
        assert f"kept {out / spec.key}.png: no complete" in captured.out
        assert f"experiment `{spec.experiment}` under {root}/" in captured.out


def test_partial_runs_redraw_only_their_figures(tmp_path):
    root = tmp_path / "runs"
    write_scaling_runs(root)
    out = committed_copy(tmp_path)
    before = snapshot(out)
    old_readme, old_results = render.sections(out / "README.md"), render.sections(out / "RESULTS.md")
    assert len(old_readme) == len(old_results) == len(committed_specs())  # the committed files have markers
    outcome = figures.generate(root, out, "quick")
    redrawn = {"1a_induction_vs_size", "2a_polynomial_vs_ops", "2b_polynomial_vs_size"}
    never = {spec.key for spec in figure_registry.specs()} - {spec.key for spec in committed_specs()}
    assert set(outcome.drawn) == redrawn and set(outcome.missing) == never
    after = snapshot(out)
    assert set(after) == set(before) | {"CLAIMS.md"}
    assert {name for name in after if before.get(name) != after[name]} == {f"{k}.png" for k in redrawn} | {
        "README.md", "RESULTS.md", "CLAIMS.md"}
    new_readme, new_results = render.sections(out / "README.md"), render.sections(out / "RESULTS.md")
    for key in old_readme:
        if key in redrawn:  # new numbers (the README text depends only on the run counts)
            assert new_results[key] != old_results[key] and "preset `quick` (45 runs)" in new_results[key]
        else:  # kept verbatim, in order
            assert (new_readme[key], new_results[key]) == (old_readme[key], old_results[key])
    assert list(new_readme) == list(old_readme)
    # a second run with the same runs changes nothing but the redrawn images' bytes, and not the text
    figures.generate(root, out, "quick")
    assert render.sections(out / "README.md") == new_readme


def test_prune_removes_the_figures_of_absent_experiments(tmp_path, capsys):
    root = tmp_path / "runs"
    write_scaling_runs(root)
    out = committed_copy(tmp_path)
    assert figures.main(["--runs", str(root), "--out", str(out), "--prune"]) == 0
    assert sorted(p.name for p in out.glob("*.png")) == [
        "1a_induction_vs_size.png", "2a_polynomial_vs_ops.png", "2b_polynomial_vs_size.png"]
    assert f"removed {out / '4_pathstar.png'}: no complete path-star run" in capsys.readouterr().out
    readme = (out / "README.md").read_text()
    assert set(render.sections(out / "README.md")) == {"1a_induction_vs_size", "2a_polynomial_vs_ops",
                                                        "2b_polynomial_vs_size"}
    assert "**4. Path-star" in readme.split("## Missing figures", 1)[1]


def test_prune_without_any_drawable_figure_removes_nothing(tmp_path):
    out = committed_copy(tmp_path)
    before = snapshot(out)
    (tmp_path / "runs").mkdir()
    assert figures.main(["--runs", str(tmp_path / "runs"), "--out", str(out), "--prune"]) == 2
    assert snapshot(out) == before


def test_paper_preset_without_paper_runs_keeps_everything(tmp_path, capsys):
    root = tmp_path / "runs"
    write_scaling_runs(root)  # quick runs only
    out = committed_copy(tmp_path)
    before = snapshot(out)
    assert figures.main(["--runs", str(root), "--out", str(out), "--preset", "paper"]) == 2
    assert snapshot(out) == before
    assert "(preset paper;" in capsys.readouterr().out


def test_fresh_clone_leaves_git_status_clean(tmp_path):
    """The acceptance check: `python -m lab.figures --preset quick` in a fresh clone (no runs)."""
    shutil.copytree(COMMITTED, tmp_path / "figures")
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "README.md").write_text("Runs go here.\n")
    git = ["git", "-c", "user.name=lab", "-c", "user.email=lab@example.org"]
    for argv in (["init", "-q"], ["add", "."], ["commit", "-qm", "figures"]):
        subprocess.run([*git, *argv], cwd=tmp_path, check=True)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run([sys.executable, "-m", "lab.figures", "--preset", "quick"], cwd=tmp_path, env=env,
                            capture_output=True, text=True)
    assert result.returncode == 2, result.stderr
    assert "kept figures/1a_induction_vs_size.png: no complete induction run of experiment `scaling`" in result.stdout
    assert "committed image from " in result.stdout
    status = subprocess.run(["git", "status", "--porcelain"], cwd=tmp_path, capture_output=True, text=True)
    assert status.stdout == ""


@pytest.mark.parametrize("argv, message", [
    (["--preset", "huge"], "unknown preset 'huge'"),
    (["--format", "jpg"], "unknown format 'jpg'"),
    (["--runs", "/nonexistent/runs"], "does not exist"),
])
def test_bad_input_exits_2_and_writes_nothing(tmp_path, capsys, argv, message):
    out = tmp_path / "figures"
    assert figures.main([*argv, "--out", str(out)] + ([] if "--runs" in argv else ["--runs", str(tmp_path)])) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_a_fresh_checkout_draws_from_the_results_store_and_redraws_identically(tmp_path):
    from lab import results
    root = tmp_path / "runs"
    write_scaling_runs(root)
    store = tmp_path / "results"
    results.export(root, store, presets=planned_presets)
    out, empty = committed_copy(tmp_path), tmp_path / "fresh-runs"
    empty.mkdir()
    from_runs = figures.generate(root, tmp_path / "from-runs", "quick", store=tmp_path / "absent")
    outcome = figures.generate(empty, out, "quick", store=store)
    assert set(outcome.drawn) == set(from_runs.drawn) == {"1a_induction_vs_size", "2a_polynomial_vs_ops",
                                                          "2b_polynomial_vs_size"}
    claims_text = (out / "CLAIMS.md").read_text()
    assert "the committed results store (scaling)" in claims_text and "| fig7-1M |" in claims_text
    drawn = snapshot(out)
    figures.generate(empty, out, "quick", store=store)
    assert snapshot(out) == drawn, "a second regeneration from the same store changes no byte"
    for name in ("RESULTS.md", "CLAIMS.md"):  # the same numbers as from the run directories
        assert (out / name).read_text().replace("the committed results store", "run directories") == \
            (tmp_path / "from-runs" / name).read_text() or name == "RESULTS.md"


def test_the_committed_figure_texts_are_what_the_committed_results_store_draws(tmp_path):
    """A fresh checkout (results/ but no runs) redraws README.md, RESULTS.md and CLAIMS.md exactly
    as committed: the committed numbers and verdicts come from the committed runs."""
    shutil.copytree(COMMITTED, tmp_path / "figures")
    shutil.copytree(REPO / "results", tmp_path / "results")
    (tmp_path / "runs").mkdir()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run([sys.executable, "-m", "lab.figures", "--preset", "quick"], cwd=tmp_path, env=env,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    for name in ("README.md", "RESULTS.md", "CLAIMS.md"):
        assert (tmp_path / "figures" / name).read_text() == (COMMITTED / name).read_text(), name
