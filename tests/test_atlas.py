"""The regime atlas: its plan, sweep parts, paired effects per cell, and its figure."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from lab import sweep
from lab.analysis import evidence, plots
from lab.analysis.evidence import FORMATION_THRESHOLD
from lab.experiments import atlas, plan


def test_every_cell_pairs_multi_token_arms_with_next_token_runs_on_the_same_seeds() -> None:
    configs = plan("atlas", "quick")
    by_label: dict[str, set] = {}
    for c in configs:
        by_label.setdefault(c.label, set()).add((c.model.n_future, c.seed))
        assert c.train.stop_at == FORMATION_THRESHOLD["induction"] and c.task == "induction"
    for cell in atlas.CELLS:
        arms = by_label[cell.label]
        base = by_label[cell.base_from] if cell.base_from else arms
        seeds = {s for n, s in base if n == 1}
        assert len(seeds) >= 3, cell.label
        assert {s for n, s in arms if n > 1} == seeds, cell.label  # every multi-token arm on every base seed
    # a cell borrowing n=1 runs must have the same next-token model and data as the cell it borrows from
    base = next(c for c in configs if c.label == "base" and c.model.n_future == 1 and c.seed == 0)
    for cell in (c for c in atlas.CELLS if c.base_from):
        other = next(c for c in configs if c.label == cell.label and c.seed == 0)
        assert other.task_config == base.task_config and other.model.n_layer == base.model.n_layer
        assert other.model.d_model == base.model.d_model and other.train.steps == base.train.steps


def test_weight_cells_weight_only_the_extra_heads() -> None:
    weights = {(c.label, c.model.n_future): c.train.head_weights for c in plan("atlas", "quick")
               if c.label.startswith("w=")}
    assert weights[("w=0.3", 4)] == [1.0, 0.3, 0.3, 0.3] and weights[("w=0.1", 2)] == [1.0, 0.1]


def test_parts_cover_the_plan_once_keep_finetuning_with_its_source_and_balance_the_cost() -> None:
    configs = plan("finetune", "quick")
    parts = sweep.split_parts(configs, 3)
    names = [c.run_name() for part in parts for c in part]
    assert sorted(names) == sorted(c.run_name() for c in configs)
    where = {c.run_name(): k for k, part in enumerate(parts) for c in part}
    for c in configs:
        source = sweep.dependency(c)
        if source:
            assert where[c.run_name()] == where[source]
    assert [[c.run_name() for c in p] for p in sweep.split_parts(configs, 3)] == [[c.run_name() for c in p]
                                                                                 for p in parts]
    atlas = plan("atlas", "quick")
    parts = sweep.split_parts(atlas, 4)
    assert [c.run_name() for p in parts for c in p] == [c.run_name() for c in atlas]  # consecutive, in plan order
    labels = [{c.label for c in p} for p in parts]
    assert all(not a & b for i, a in enumerate(labels) for b in labels[i + 1:])  # whole cells
    costs = [sum(map(sweep.cpu_seconds, part)) for part in parts]
    largest_cell = max(sum(map(sweep.cpu_seconds, cell)) for cell in sweep.cells(atlas))
    assert max(costs) <= sum(costs) / 4 + largest_cell


def test_balanced_cuts_minimise_the_largest_part() -> None:
    assert sweep._balanced_cuts([1, 1, 1, 1], 2) == [2]
    assert sweep._balanced_cuts([5, 1, 1, 1, 1, 1], 2) == [1]
    assert sweep._balanced_cuts([1, 2, 3, 4, 5], 3) == [3, 4]  # 6 | 4 | 5
    assert sweep._balanced_cuts([3], 2) in ([0], [1])  # one chunk holds it, the other is empty


def test_the_parts_needed_each_fit_the_time_and_the_dry_run_names_them(tmp_path, capsys) -> None:
    atlas = plan("atlas", "quick")
    minutes = 1.5 * max(sum(map(sweep.cpu_seconds, cell)) for cell in sweep.cells(atlas)) / 120  # 2 workers
    n = sweep.parts_needed(atlas, 2, minutes=minutes)
    assert n > 1 and all(sum(map(sweep.cpu_seconds, p)) / 120 <= minutes for p in sweep.split_parts(atlas, n))
    assert max(sum(map(sweep.cpu_seconds, p)) for p in sweep.split_parts(atlas, n - 1)) / 120 > minutes
    n = sweep.parts_needed(atlas, 2)  # the dry run's split: parts of PART_MINUTES
    done = {c.run_name() for c in sweep.split_parts(atlas, n)[0]}
    line = sweep.parts_line(atlas, {c.run_name() for c in atlas} - done, 2, None)
    assert f"part 1/{n}: done" in line and f"part 2/{n}: " in line and "runs, about" in line


def test_dry_run_states_the_parts_and_a_part_trains_only_its_share(tmp_path, capsys) -> None:
    empty = ["--store", str(tmp_path / "no-store")]  # every run new, whatever the repository's store holds
    assert sweep.main(["atlas", "--dry-run", "--out", str(tmp_path), "--workers", "2", *empty]) == 0
    text = capsys.readouterr().out
    n = sweep.parts_needed(plan("atlas", "quick"), 2)
    assert n > 1 and f"part 1/{n}: " in text and f"--part K/{n}" in text and "at most" in text
    assert sweep.main(["atlas", "--dry-run", "--out", str(tmp_path), "--part", f"2/{n}", *empty]) == 0
    shown = capsys.readouterr().out
    assert f"would train {len(sweep.split_parts(plan('atlas', 'quick'), n)[1])} runs" in shown
    for bad in ("0/3", "4/3", "x"):
        assert sweep.main(["atlas", "--dry-run", "--out", str(tmp_path), "--part", bad, *empty]) == 2
    assert not any(tmp_path.iterdir())


def _measured(rows: list[tuple[str, int, int, float]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["label", "model.n_future", "seed", "value"])


def test_paired_effects_pair_by_seed_within_each_cell() -> None:
    rows = [("a", 1, s, v) for s, v in enumerate((0.1, 0.2, 0.3))]
    rows += [("a", 2, s, v + 0.1) for s, v in enumerate((0.1, 0.2, 0.3))]  # a constant +0.1 per seed
    rows += [("b", 1, s, v) for s, v in enumerate((0.5, 0.1, 0.9))] + [("b", 2, s, v) for s, v in
                                                                       enumerate((0.4, 0.2, 0.9))]
    table = evidence.paired_effects(_measured(rows), ["label"]).set_index("label")
    assert table.loc["a", "mean"] == pytest.approx(0.1) and table.loc["a", "lo"] == pytest.approx(0.1)
    assert table.loc["a", "verdict"] == "higher" and table.loc["a", "seeds"] == 3
    assert table.loc["b", "mean"] == pytest.approx(0.0) and table.loc["b", "lo"] < 0 < table.loc["b", "hi"]
    assert table.loc["b", "verdict"].startswith("no detectable effect")
    assert evidence.paired_effects(_measured([("c", 2, 0, 1.0)]), ["label"]).empty  # no base arm: no row


def test_borrowed_baselines_and_the_forest_plot() -> None:
    rows = [("base", 1, s, 0.4) for s in range(3)] + [("w=0.3", 2, s, 0.3 + 0.01 * s) for s in range(3)]
    measured = atlas.shared_baselines(_measured(rows))
    table = evidence.paired_effects(measured, ["label"])
    row = table[table["label"] == "w=0.3"].iloc[0]
    assert row["mean"] == pytest.approx(-0.09) and row["hi"] < 0 and row["verdict"] == "lower"
    fig = plots.plot_effects({"value": table}, [("value", "accuracy difference", 1.0)],
                             order=[c.label for c in atlas.CELLS])
    ax = fig.axes[0]
    spreads = [c for c in ax.collections if c.get_gid() == "spread"]
    assert spreads and [t.get_text() for t in ax.get_yticklabels()] == ["w=0.3"]
    assert any(line.get_gid() == plots.REFERENCE and math.isclose(line.get_xdata()[0], 0.0) for line in ax.lines)


def test_the_gpu_preset_is_the_paper_preset_with_larger_sizes(tmp_path, capsys) -> None:
    assert sweep.main(["atlas", "--preset", "gpu", "--dry-run", "--out", str(tmp_path)]) == 0
    assert "atlas (paper)" in capsys.readouterr().out and not any(tmp_path.iterdir())
    sizes = {c.label: c.size for c in plan("atlas", "paper")}
    assert sizes["base"] == "10M" and sizes["size=30M"] == "30M"
    assert all(c.train.steps > 10 * atlas.QUICK_STEPS for c in plan("atlas", "paper"))


def test_mechanism_figure_orders_what_appears_when() -> None:
    rows = []
    for n in (1, 2):
        for seed in range(3):
            for step in (50, 100, 150):
                row = {"run_name": f"n{n}s{seed}", "label": "base", "model.n_future": n, "seed": seed, "step": step,
                       "tokens": step * 2000, "val/second_token_acc": step / 150 * (0.5 if n == 1 else 0.3),
                       "interp/copy_attention_max": step / 300, "interp/prefix_matching_max": 0.1 + step / 500}
                if n > 1:
                    row["align/cos/head2"] = 0.2
                rows.append(row)

    class Fake:
        def require(self, what):
            pass

        def evals(self):
            return pd.DataFrame(rows)

    out = atlas.mechanism_figure(Fake())
    assert out.sentences[0] == ("Second-token accuracy (validation) first reaches half its highest mean (0.250) at "
                                "0.20M tokens for n=1, 0.30M tokens for n=2.")
    assert out.sentences[-1].endswith("0.200 for n=2.") and len(out.figure.axes) >= 4


def test_gradient_alignment_as_a_predictor_of_the_cell_effect() -> None:
    rows, effects = [], []
    for i, label in enumerate(("a", "b", "c", "d")):
        effects.append({"label": label, "model.n_future": 2, "mean": (0.4 - 0.5 * (0.1 * i)) * 1e6})
        rows += [{"label": label, "model.n_future": 2, "seed": s, "align_cos": 0.1 * i} for s in range(3)]
    (sentence,) = atlas.predictor_sentences(pd.DataFrame(rows), pd.DataFrame(effects))
    assert "across 4 cells" in sentence.lower() and "by -0.5M tokens" in sentence
    assert "needs at least 3 cells" in atlas.predictor_sentences(pd.DataFrame(rows[:6]), pd.DataFrame(effects[:2]))[0]


def test_cells_where_nothing_forms_say_so() -> None:
    rows = [("x", n, s, 1.5e6) for n in (1, 2) for s in range(3)]
    measured = _measured(rows).rename(columns={"value": "formation_tokens"}).assign(formed=False)
    (row,) = evidence.paired_effects(measured, ["label"], measure="formation_tokens").to_dict("records")
    assert row["verdict"] == "neither arm formed (both censored at the budget)" and row["formed"] == 0.0
    same = evidence.paired_effects(_measured([("y", n, s, 0.5) for n in (1, 2) for s in range(3)]), ["label"])
    assert same["verdict"].iloc[0] == "no difference (equal in every seed, 3 seeds)"


def test_the_power_sentence_names_the_largest_gain_a_cell_still_allows() -> None:
    table = pd.DataFrame([{"label": "a", "model.n_future": 2, "lo": -0.22e6, "hi": 0.36e6, "verdict": "no detectable"},
                          {"label": "b", "model.n_future": 2, "lo": 0.25e6, "hi": 0.75e6, "verdict": "higher"},
                          {"label": "c", "model.n_future": 2, "lo": -0.08e6, "hi": 0.21e6, "verdict": "no detectable"},
                          {"label": "d", "model.n_future": 2, "lo": 0.0, "hi": 0.0,
                           "verdict": "neither arm formed (both censored at the budget)"}])
    sentences = atlas.effect_sentences(table)
    assert "earlier in no cell" in sentences[0] and "neither arm in d" in sentences[0]
    assert sentences[1] == ("Power, n=2: across the 3 cells where induction formed, no CI allows n=2 to form induction "
                            "more than 0.22M tokens earlier (the widest, a); in 1 of them the CI excludes any earlier "
                            "formation.")
    assert "excludes any earlier formation" in atlas.power_sentence(2, table.iloc[[1]])[0]
