"""The Table S6 regime experiment (lab/experiments/s6_regime.py): its plan, the deficit table behind
figure 12 and its claims, on synthetic evaluation rows with known differences."""

from __future__ import annotations

import pandas as pd
import pytest

from lab.analysis.registry import Missing
from lab.experiments import s6_regime
from lab.resolve import resolve


class FakeSelection:
    def __init__(self, rows: list[dict]) -> None:
        self.rows = pd.DataFrame(rows)

    def evals(self) -> pd.DataFrame:
        return self.rows


def rows(variant: str, ratio: int, seed: int, losses: list[float], size: str = "100K") -> list[dict]:
    label = f"{variant}-tpp{ratio}-dose0.1"
    return [{"label": label, "run_name": f"{label}-{size}-s{seed}", "size": size, "seed": seed, "step": 10 * i,
             s6_regime.DEFICIT: loss, "eval/polynomial/answer_nll": 2 * loss,
             "eval/polynomial/exact_match/in_domain": 0.0, "eval/induction/second_token_acc": 0.5}
            for i, loss in enumerate(losses)]


def test_the_deficit_is_paired_by_seed_step_and_budget():
    data = (rows("ntp", 30, 0, [2.0, 1.5]) + rows("add4", 30, 0, [2.0, 1.7]) + rows("ntp", 30, 1, [3.0, 2.5])
            + rows("add4", 30, 1, [3.0, 2.6]) + rows("ntp", 10, 0, [9.0, 9.0]) + rows("add4", 10, 0, [9.0, 9.5]))
    table = s6_regime.continuation_table(FakeSelection(data))
    final = table[table["fraction"] == 1.0].set_index(["ratio", "seed"])
    assert final.loc[(30, 0), f"diff:{s6_regime.DEFICIT}"] == pytest.approx(0.2)
    assert final.loc[(30, 1), f"diff:{s6_regime.DEFICIT}"] == pytest.approx(0.1)
    assert final.loc[(10, 0), f"diff:{s6_regime.DEFICIT}"] == pytest.approx(0.5)
    assert final.loc[(30, 0), "diff:eval/polynomial/answer_nll"] == pytest.approx(0.4)
    assert set(table["variant"]) == {"add4"}  # the control is what the others are measured against


class FigureSelection(FakeSelection):
    """What figure 12 reads besides the evaluations: no complete base (no sharpness panel)."""

    summaries = pd.DataFrame(columns=["label", "run_dir", "size", "seed"])
    preset = "quick"

    def require(self, what: str) -> None:
        pass


def test_the_size_panels_compare_add4_across_sizes_at_a_shared_budget_only():
    data = []
    for seed in range(3):
        data += rows("ntp", 30, seed, [2.0, 1.5]) + rows("add4", 30, seed, [2.0, 1.7 + 0.01 * seed])
        data += rows("ntp", 30, seed, [2.0, 1.0], "1M") + rows("add4", 30, seed, [2.0, 1.05], "1M")
        data += rows("ntp", 100, seed, [2.0, 1.0]) + rows("add4", 100, seed, [2.0, 1.3])
    out = s6_regime.s6_regime_figure(FigureSelection(data))
    tables = dict(out.tables)
    by_size = tables["add4 final deficit (nats) per base budget and size"].set_index("size")
    assert list(by_size["ratio"]) == [30.0, 30.0]  # 100 tokens/param exists at one size only
    assert by_size.loc["100K", "mean"] == pytest.approx(0.21)
    assert by_size.loc["1M", "mean"] == pytest.approx(0.05)
    ratio_axis = tables["final deficit (nats), per variant and base budget (100K)"]
    assert set(ratio_axis["ratio"]) == {30.0, 100.0}  # panel (a) holds 100K only: 1M not averaged in
    assert ratio_axis.set_index("ratio").loc[30.0, "mean"] == pytest.approx(0.21)


def test_without_the_control_the_figure_says_what_is_missing():
    with pytest.raises(Missing, match="ntp"):
        s6_regime.continuation_table(FakeSelection(rows("add4", 30, 0, [1.0])))


def test_bases_come_cheapest_first_with_the_labs_seeds():
    planned = [resolve(c)[0] for c in s6_regime.bases("quick")]
    ratios = [c.train.tokens_per_param * {"100K": 1, "300K": 3, "1M": 10}[c.size] for c in planned]
    assert ratios == sorted(ratios)
    per_cell = pd.Series([(c.size, c.train.tokens_per_param) for c in planned]).value_counts()
    assert per_cell[("100K", 10.0)] == 5 and per_cell[("1M", 30.0)] == 3
    assert per_cell[("300K", 300.0)] == 3  # the size axis: 3 seeds, each base about an hour on CPU
    assert per_cell[("300K", 10.0)] == 5  # a short base (3M tokens, minutes) gets the lab's 5
    assert all(c.task == "mixture" and c.model.n_future == 1 for c in planned)


def test_claims_name_the_tokens_per_parameter_of_their_base():
    for claim in s6_regime.ratio_claims(300):
        assert "300 tokens/param" in claim.statement and claim.key.endswith("tpp300")
        assert claim.a["label"].endswith("-tpp300-dose0.1")


def test_size_axis_bases_bring_their_rows_and_h3_across_sizes() -> None:
    """A budget committed at two sizes gets an H3 slope row; every committed (size, budget) its own rows."""
    from lab.experiments import s6_regime
    cells = [("100K", 30), ("100K", 300), ("300K", 300), ("1M", 30)]
    index = {f"{size}-{ratio}-{seed}": {"experiment": "s6_regime", "size": size, "tokens_per_param": ratio,
                                        "seed": seed}
             for size, ratio in cells for seed in s6_regime.base_seeds("quick", size, ratio)}
    by_size = s6_regime.committed(index)
    assert by_size == {"100K": [30, 300], "300K": [300], "1M": [30]}
    del index["300K-300-2"]  # one seed's base still training: its budget has no rows yet
    assert s6_regime.committed(index) == {"100K": [30, 300], "1M": [30]}
    keys = [c.key for c in s6_regime.claims(by_size)]
    assert {"H3-size-tpp30", "H3-size-tpp300", "H1-shock-300K-tpp300", "H7-spec-1M-tpp30"} <= set(keys)
    h3 = next(c for c in s6_regime.claims(by_size) if c.key == "H3-size-tpp300")
    assert h3.trend == "size" and h3.a == {"label": "add4-tpp300-dose0.1"} and "100K, 300K" in h3.statement
    assert not s6_regime.size_claims({"100K": [10, 30, 100]})  # one size: no slope to read
