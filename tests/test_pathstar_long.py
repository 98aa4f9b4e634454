"""Path-star to convergence: the plan, and scoring runs on the published test files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from lab import runs
from lab.config import RunConfig
from lab.experiments import pathstar_long, plan
from lab.train import train
from tests.conftest import SHARED
from tests.test_figures import write_run


def test_quick_plan_trains_every_arm_on_fresh_and_fixed_graphs_with_early_stopping() -> None:
    configs = plan("pathstar_long", "quick")
    small = [c for c in configs if (c.task_config["degree"], c.task_config["path_len"]) == (2, 5)]
    arms = {(c.label, c.task_config["variant"], c.task_config["train_graphs"]) for c in small}
    assert arms == {("next-token-fresh", "forward", 0), ("next-token-fixed", "forward", 200_000),
                    ("reverse-fresh", "reverse", 0), ("reverse-fixed", "reverse", 200_000),
                    ("reverse-fixed-16k", "reverse", 200_000), ("teacherless-fixed", "teacherless", 200_000),
                    ("mtp2-fixed", "forward", 200_000), ("mtp4-fixed", "forward", 200_000),
                    ("mtp5-fixed", "forward", 200_000), ("mtp5-fixed-16k", "forward", 200_000),
                    ("next-token-fixed-16k", "forward", 200_000), ("teacherless-fresh", "teacherless", 0),
                    ("mtp2-fresh", "forward", 0), ("mtp4-fresh", "forward", 0), ("mtp5-fresh", "forward", 0)}
    assert {c.label: c.model.n_future for c in configs if c.label.startswith("mtp")} == {
        "mtp2-fixed": 2, "mtp4-fixed": 4, "mtp5-fixed": 5, "mtp5-fixed-16k": 5, "mtp3-fixed-d5l3": 3,
        "mtp2-fixed-d5l3": 2, "mtp2-fresh": 2, "mtp4-fresh": 4, "mtp5-fresh": 5}
    assert all(c.train.early_stop_patience == pathstar_long.PATIENCE and c.train.steps == 4000
               for c in configs if "16k" not in c.label and "8k" not in c.label)
    long = [c for c in configs if "16k" in c.label]
    assert len(long) == 12 and all(c.train.steps == 16000 and c.train.early_stop_patience * c.train.eval_every == 4000
                                  for c in long), "the long arm waits 4000 steps without progress before stopping"
    assert {c.train.early_stop_on for c in configs} == {"path_nll"}  # graded: a plateau of exact match goes on
    larger = {(c.label, c.task_config["path_len"], c.task_config["train_graphs"])
              for c in configs if c.task_config["degree"] == 5}
    assert larger == {("next-token-fixed-d5l3", 3, 200_000), ("teacherless-fixed-d5l3", 3, 200_000),
                      ("mtp2-fixed-d5l3", 3, 200_000), ("mtp3-fixed-d5l3", 3, 200_000),
                      ("reverse-fixed-16k-d5l3", 3, 200_000)}
    probe = {(c.label, c.task_config["variant"], c.train.steps, c.train.early_stop_patience * c.train.eval_every)
             for c in configs if c.task_config["degree"] < 5 and c.task_config["path_len"] == 3}
    assert probe == {(f"reverse-fixed-8k-d{d}l3", "reverse", 8000, 4000) for d in (2, 3)}  # one lookup per path
    assert len(configs) == 3 * 22 + 2 * len(pathstar_long.DECISIVE)  # the decisive arms: 5 seeds
    paper = plan("pathstar_long", "paper")
    assert {(c.task_config["degree"], c.task_config["path_len"]) for c in paper} == {(2, 5), (5, 3)}
    assert {c.label for c in paper if c.task_config["path_len"] == 5} >= {"mtp5-fresh", "teacherless-fixed"}
    assert {c.label for c in paper if c.task_config["path_len"] == 3} >= {"mtp3-fresh-d5l3", "reverse-fixed-d5l3"}
    for configs_ in (configs, paper):  # a label names one graph, so a figure never pools two
        graphs = {(c.label, c.task_config["degree"], c.task_config["path_len"]) for c in configs_}
        assert len(graphs) == len({c.label for c in configs_})
    assert all(not c.model.match_params for c in paper)  # head 1 equally deep at every n


def test_the_early_stopping_metric_is_one_the_graph_task_reports(tmp_path: Path) -> None:
    from lab.train import Trainer
    Trainer(plan("pathstar_long", "quick")[0], tmp_path, device="cpu", quiet=True)  # refuses an unknown metric


@pytest.mark.skipif(not (SHARED / "data" / "path_star").is_dir(), reason="shared/data/path_star is absent")
def test_measure_scores_complete_runs_on_the_published_file(tmp_path: Path) -> None:
    planned = plan("pathstar_long", "quick")[0]
    tiny = RunConfig(task="graph", task_config={"eval_graphs": 32}, size="tiny", seed=0)
    tiny.model.d_model, tiny.model.n_head, tiny.model.n_layer = 32, 2, 2
    t = tiny.train
    t.steps, t.batch_size, t.eval_every, t.checkpoint_every, t.val_batches, t.warmup_steps = 4, 8, 4, 4, 1, 1
    run_dir = Path(train(tiny, tmp_path / "train", device="cpu", quiet=True)["run_dir"])
    target = tmp_path / "runs" / "pathstar_long" / planned.run_name()  # stands in for the planned run
    shutil.copytree(run_dir, target)
    data_dir = SHARED / "data" / "path_star"
    assert pathstar_long.measure("quick", tmp_path / "runs", data_dir=data_dir) == 1
    result = json.loads((target / pathstar_long.PUBLISHED).read_text())
    assert result["file"] == "deg_2_path_5_nodes_50_test_20000.txt"
    assert 0.0 <= result["metrics"]["exact_path_acc"] <= 1.0 and "tf_pos_acc/2" in result["metrics"]
    errors = result["step_errors"]
    assert sorted(errors) == ["2", "3", "4", "5"]  # the path positions after the first, in the order written
    assert all(sum(kinds.values()) == pytest.approx(1.0) for kinds in errors.values())
    assert pathstar_long.measure("quick", tmp_path / "runs", data_dir=data_dir) == 0  # measured once
    assert pathstar_long.measure("quick", tmp_path / "runs", data_dir=data_dir, force=True) == 1
    assert json.loads((target / pathstar_long.PUBLISHED).read_text()) == result  # same checkpoint, same scores
    assert runs.run_state(target) == "complete"


def test_figure_adds_the_published_file_scores_to_the_path_star_tables(tmp_path: Path) -> None:
    from lab import figures
    from tests.test_figures import results_table, write_run
    root, out = tmp_path / "runs", tmp_path / "figures"
    for i, config in enumerate(plan("pathstar_long", "quick")):  # 22 arms x 3 seeds
        run_dir = write_run(root, config, {"eval/exact_path_acc": 0.1 * (i % 4),
                                           "val/exact_path_acc": 0.2 + 0.5 * (i == 2),
                                           **{f"eval/pos_acc/{k}": 0.5 for k in range(1, 6)}})
        if config.seed == 0:
            wrong = 0.2 if config.label.startswith("reverse") else 0.0
            runs.write_json(run_dir / pathstar_long.PUBLISHED,
                            {"file": "deg_2_path_5_nodes_50_test_20000.txt", "metrics": {"exact_path_acc": 0.25},
                             "step_errors": {str(k): {"right": 1.0 - wrong, "wrong way": wrong} for k in (2, 3)}})
    outcome = figures.generate(root, out, "quick", store=tmp_path / "no-store")
    assert "4b_pathstar_long" in outcome.drawn
    rows = results_table((out / "RESULTS.md").read_text(), "published test file, final checkpoint")
    assert len(rows) == 22 and all(r[1] == "0" and float(r[3]) == 0.25 for r in rows)  # one per arm, seed 0
    first = plan("pathstar_long", "quick")[2]
    others = [c.seed for c in plan("pathstar_long", "quick") if c.label == first.label][3:]  # a decisive arm's
    formed = ", ".join(["seed 0 not", "seed 1 not", "seed 2 0.00M tokens", *(f"seed {s} not" for s in others)])
    assert (f"{first.label} 1 of {3 + len(others)} ({formed})"  # 1000 tokens, the one row
            in (out / "RESULTS.md").read_text()), "the run above 0.6 on validation formed, the others did not"
    kinds = results_table((out / "RESULTS.md").read_text(), "teacher-forced guesses by kind, published test file")
    assert [(r[0], r[1]) for r in kinds] == [(v, k) for v in sorted({c.label for c in plan("pathstar_long", "quick")})
                                             for k in ("2", "3")]
    assert all(float(r[3]) == (0.2 if r[0].startswith("reverse") else 0.0) for r in kinds)  # the `wrong way` column


def test_the_measuring_command_runs_without_a_runpy_warning() -> None:
    import subprocess
    import sys
    done = subprocess.run([sys.executable, "-m", "lab.experiments.pathstar_long", "--help"], capture_output=True,
                          text=True, check=True, cwd=Path(__file__).resolve().parents[1])
    assert "--force" in done.stdout and "Warning" not in done.stderr, done.stderr


def test_effect_map_pairs_each_objective_with_next_token_of_its_own_graph_budget_and_data(tmp_path: Path) -> None:
    """Exact path = seed + an offset per objective (+0.5 more on fixed graphs of G(2,5,50)): every paired
    difference to next-token in the same regime is the offset difference, with a zero-width interval; the
    published-file panel reads `published.json`; regimes without next-token (the reverse probes) have no row."""
    from lab.selection import Selection
    offset = {"next-token": 0.0, "reverse": 0.3, "teacherless": -0.1, "mtp2": 0.05, "mtp3": 0.02, "mtp4": -0.2,
              "mtp5": 0.1}
    root = tmp_path / "runs"
    for config in plan("pathstar_long", "quick"):
        objective = pathstar_long.LABEL.match(config.label)["objective"]
        fixed_small = config.task_config["train_graphs"] and config.task_config["degree"] == 2
        value = 0.01 * config.seed + offset[objective] + 0.5 * bool(fixed_small) + 0.001 * config.train.steps / 1000
        run_dir = write_run(root, config, {"eval/exact_path_acc": value, "val/exact_path_acc": value,
                                           "eval/tf_pos_acc/2": value / 2})
        if config.seed or objective != "mtp2":  # mtp2 seed 0 never scored on the published file: 2 pairs left
            runs.write_json(run_dir / pathstar_long.PUBLISHED, {"file": "f.txt", "metrics": {"exact_path_acc": -value}})
    sel = Selection.load(root, "pathstar_long", "quick", plan, store=tmp_path / "no-store")
    effects = pathstar_long.objective_effects(sel)
    table = effects["value"].set_index(["objective", "regime", "data"])
    assert set(table.index) == {
        ("reverse", "G(2,5,50), 4000 steps", "fresh"), ("reverse", "G(2,5,50), 4000 steps", "fixed"),
        ("teacherless", "G(2,5,50), 4000 steps", "fresh"), ("teacherless", "G(2,5,50), 4000 steps", "fixed"),
        *{(f"mtp{n}", "G(2,5,50), 4000 steps", d) for n in (2, 4, 5) for d in ("fresh", "fixed")},
        ("reverse", "G(2,5,50), 16000 steps", "fixed"), ("mtp5", "G(2,5,50), 16000 steps", "fixed"),
        ("teacherless", "G(5,3,50), 4000 steps", "fixed"), ("mtp2", "G(5,3,50), 4000 steps", "fixed"),
        ("mtp3", "G(5,3,50), 4000 steps", "fixed")}
    for (objective, _, data), r in table.iterrows():
        assert r["mean"] == pytest.approx(offset[objective]) and r["hi"] - r["lo"] == pytest.approx(0, abs=1e-9)
        decisive = objective == "mtp5" and data == "fresh"  # both arms of Huang's horizon claim: 5 seeds
        assert r["seeds"] == (5 if decisive else 3)
    tf2 = effects["tf2"].set_index(["objective", "regime", "data"])["mean"]
    assert all(tf2[k] == pytest.approx(offset[k[0]] / 2) for k in tf2.index)
    published = effects["published"].set_index(["objective", "regime", "data"])
    assert all(r["mean"] == pytest.approx(-offset[k[0]]) for k, r in published.iterrows())
    assert {k[0]: r["seeds"] for k, r in published.iterrows() if r["seeds"] != 3} == {"mtp2": 2, "mtp5": 5}  # mtp5-fresh: 5 seeds
    out = pathstar_long.effects_figure(sel)
    assert [r.split(", ")[0] for r in sorted(table.reset_index().assign(
        row=lambda t: t["objective"] + ", " + t["regime"])["row"].unique(), key=pathstar_long.row_key)][:5] == [
        "reverse", "teacherless", "mtp2", "mtp4", "mtp5"]  # graph, budget, then objective
    assert any("reverse - next-token, G(2,5,50), 16000 steps, fixed graphs" in s and "higher" in s
               for s in out.sentences)
