"""One paired-by-seed difference to a baseline (`evidence.paired_table`) behind every "variant minus
baseline" table: the finetuning table (7a, Table S6), the paired effects of the atlas and heads
figures, and the gap sentences of RESULTS.md."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from lab.analysis import evidence, prose, stats
from lab.experiments.finetune import finetune_diff_table

ROWS = [("ntp", 0, 0.5), ("ntp", 1, 0.6), ("ntp", 2, 0.7),
        ("add", 0, 0.6), ("add", 1, 0.75), ("add", 2, 0.8),
        ("carve", 0, 0.4), ("carve", 1, 0.5)]  # carve has no seed 2: it pairs with ntp's seeds 0 and 1 only


def frame() -> pd.DataFrame:
    return pd.DataFrame(ROWS, columns=["label", "seed", "v"])


def test_the_difference_is_paired_by_seed() -> None:
    table = evidence.paired_table(frame(), [], "label", "ntp", "v").set_index("label")
    assert set(table.index) == {"add", "carve"}
    mean, lo, hi = stats.mean_ci([0.1, 0.15, 0.1])
    assert table.loc["add", "mean"] == pytest.approx(mean) and table.loc["add", "seeds"] == 3
    assert (table.loc["add", "lo"], table.loc["add", "hi"]) == pytest.approx((lo, hi))
    assert (table.loc["add", "min"], table.loc["add", "max"]) == pytest.approx((0.1, 0.15))
    # unpaired, carve's mean (0.45) minus ntp's (0.6) would be -0.15; paired on seeds 0 and 1 it is -0.1
    assert table.loc["carve", "mean"] == pytest.approx(-0.1) and table.loc["carve", "seeds"] == 2


def test_every_baseline_table_gives_the_same_numbers() -> None:
    paired = evidence.paired_table(frame(), [], "label", "ntp", "v").drop(columns="result")
    assert finetune_diff_table(frame(), "v").equals(paired.reset_index(drop=True))
    measured = frame().assign(cell="c")
    effects = evidence.paired_effects(measured, ["cell"], arm="label", base="ntp", measure="v").set_index("label")
    for label, row in paired.set_index("label").iterrows():
        assert (effects.loc[label, "mean"], effects.loc[label, "lo"]) == pytest.approx((row["mean"], row["lo"]))
    heads = frame().assign(size="1M", n=frame()["label"].map({"ntp": 1, "add": 2, "carve": 3}))
    (sentence,) = prose.gap_sentences(heads[heads["n"] < 3], "size", "v", "Accuracy", hue="n")
    assert sentence.startswith("Accuracy, n=2 minus n=1, paired by seed") and "+0.117 [" in sentence


def test_a_group_without_the_baseline_gives_no_row() -> None:
    df = frame().assign(task=["a"] * 3 + ["b"] * 5)
    table = evidence.paired_table(df, ["task"], "label", "ntp", "v")
    assert set(zip(table["task"], table["label"])) == set()  # task b has no ntp; task a only ntp
    df = frame().assign(v=[0.5, 0.6, math.nan, 0.6, 0.75, 0.8, 0.4, 0.5])
    table = evidence.paired_table(df, [], "label", "ntp", "v").set_index("label")
    assert table.loc["add", "seeds"] == 2  # a seed whose baseline is missing is not paired
