"""The head-types figure: every n = 4 head type against the n = 1 runs of its task, paired by seed."""

from __future__ import annotations

import pandas as pd
import pytest

from lab.experiments import head_types


def test_each_head_type_is_paired_with_the_next_token_runs_of_its_task() -> None:
    rows = []
    for seed in range(3):
        rows.append({"task": "induction", "seed": seed, "model.n_future": 1, "model.head_type": "parallel",
                     "value": 0.5 + 0.01 * seed, "auc": 0.2, "formed": True})
        for t, shift in (("parallel", 0.1), ("linear", -0.2)):
            rows.append({"task": "induction", "seed": seed, "model.n_future": 4, "model.head_type": t,
                         "value": 0.5 + 0.01 * seed + shift, "auc": 0.2 + shift / 2, "formed": True})
    effects = head_types.paired_by_type(pd.DataFrame(rows))
    value = effects["value"].set_index("row")
    assert set(value.index) == {"induction: parallel", "induction: linear"}  # no row for types not run
    assert value.loc["induction: parallel", "mean"] == pytest.approx(0.1)
    assert value.loc["induction: linear", "mean"] == pytest.approx(-0.2)
    assert value.loc["induction: linear", "verdict"] == "lower" and value.loc["induction: linear", "seeds"] == 3
    assert effects["auc"].set_index("row").loc["induction: linear", "mean"] == pytest.approx(-0.1)
