"""Fig. 7 / Fig. 8 at long budgets (lab/experiments/long_budget.py): when n > 1 overtakes n = 1,
the validation-selected rows, and the Fig. 8 figure by operation count, on known curves."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from lab.experiments import long_budget as lb
from lab.experiments import plan


def curves(values: dict[int, list[list[float]]], tokens_per_step: int = 1000) -> pd.DataFrame:
    """Evaluation rows of one 100K, 30-tokens/param cell: values[n][seed] is n's test curve."""
    rows = []
    for n, per_seed in values.items():
        for seed, curve in enumerate(per_seed):
            for i, value in enumerate(curve):
                step = 10 * (i + 1)
                rows.append({"task": "induction", "size": "100K", "ratio": 30.0, "seed": seed,
                             "model.n_future": n, "step": step, "tokens": step * tokens_per_step,
                             lb.SECOND_TOKEN: value})
    return pd.DataFrame(rows)


def test_overtaking_is_where_n_stays_above_n1_to_the_end():
    ntp = [[0.1, 0.2, 0.3, 0.3], [0.1, 0.2, 0.3, 0.3], [0.1, 0.2, 0.3, 0.3]]
    two = [[0.0, 0.1, 0.5, 0.60], [0.0, 0.3, 0.5, 0.62], [0.0, 0.2, 0.52, 0.61]]  # step 20: tie
    # above n = 1 at the first evaluation (a blip), then below to the end: never overtakes
    four = [[0.2, 0.0, 0.0, 0.01], [0.21, 0.0, 0.0, 0.0], [0.22, 0.0, 0.0, 0.02]]
    table = lb.overtaking(curves({1: ntp, 2: two, 4: four})).set_index("n")
    assert table.loc[2, "overtakes_at_tokens"] == 30 * 1000  # the third evaluation, not the tie
    assert table.loc[2, "final_diff"] == pytest.approx(0.61 - 0.3)
    assert table.loc[2, "final_lo"] > 0 and table.loc[2, "seeds"] == 3
    assert math.isnan(table.loc[4, "overtakes_at_tokens"]) and table.loc[4, "final_hi"] < 0
    sentences = lb._overtaking_sentences(table.reset_index())
    assert "n = 2 stays above n = 1 from 0.03M tokens on" in sentences[0]
    assert "n = 4 does not end above n = 1" in sentences[1]


def test_at_selected_reports_test_at_the_validation_best_step():
    rows = [{"run_name": "a", "task": "polynomial", "step": s, "val/exact_match/in_domain": v,
             "eval/exact_match/in_domain": t}
            for s, v, t in ((10, 0.1, 0.9), (20, 0.5, 0.2), (30, 0.3, 0.8))]
    picked = lb.at_selected(pd.DataFrame(rows))
    assert picked["step"].tolist() == [20] and picked["eval/exact_match/in_domain"].tolist() == [0.2]


class FakeSelection:
    """What the Fig. 8 builder reads of a `lab.selection.Selection`: its evaluation rows."""

    def __init__(self, evals: pd.DataFrame) -> None:
        self._evals = evals

    def require(self, what: str) -> None:
        pass

    def evals(self) -> pd.DataFrame:
        return self._evals


def test_fig8_figure_tabulates_exact_match_per_operation_count_at_the_selected_step():
    rows = []
    for n in (1, 2):
        for seed in range(3):
            for step, val in ((10, 0.4), (20, 0.2)):  # step 10 is chosen on validation
                ops = {f"eval/exact_match/ops={k}": (0.5 if step == 10 else 0.9) / k + 0.1 * (n - 1)
                       for k in (1, 2, 3, 4)}
                rows.append({"run_name": f"n{n}-s{seed}", "task": "polynomial", "size": "100K",
                             "label": "fig8-tpp30", "seed": seed, "model.n_future": n,
                             "task_config.max_ops": 2, "step": step,
                             "val/exact_match/in_domain": val, **ops})
    out = lb.long_budget_polynomial(FakeSelection(pd.DataFrame(rows)))
    heading, table = out.tables[0]
    assert heading.startswith("100K, 30 tokens/param")
    got = table.set_index(["n", "ops"])["mean"]
    assert got.loc[(1, 1)] == pytest.approx(0.5) and got.loc[(1, 4)] == pytest.approx(0.125)
    assert got.loc[(2, 2)] == pytest.approx(0.35)
    assert len(out.figure.axes[0].lines) >= 2  # one line per n


@pytest.fixture(scope="module")
def quick_plan():
    return plan("long_budget", "quick")


def test_fig8_cells_include_100k_where_next_token_learns_one_operation(quick_plan):
    fig8 = {(c.size, c.train.tokens_per_param) for c in quick_plan if c.label.startswith("fig8-")}
    assert {("100K", 30), ("100K", 100), ("300K", 30)} <= fig8
    keys = {c.key for c in lb.CLAIMS}
    assert {"fig8-long-100K-tpp30", "fig8-long-100K-tpp100"} <= keys


def test_fig_s14_cells_train_induction_rich_data_and_have_their_own_rows(quick_plan):
    rich = [c for c in quick_plan if c.label.startswith("rich-")]
    assert {c.task_config["induction_rich"] for c in rich} == {0.5}
    assert {c.model.n_future for c in rich} == {1, 2}
    plain = next(c for c in quick_plan if c.label == "tpp30")
    assert {c.train.steps for c in rich if c.label == "rich-tpp30"} == {plain.train.steps}
    row = next(c for c in lb.CLAIMS if c.key == "figS14-long-100K-tpp30")
    assert row.where == {"size": "100K", "label": "rich-tpp30"}
