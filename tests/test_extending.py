"""Extending the lab: a toy experiment with one figure and one claim is one new file, and shows up
in the figure list and in the claims ledger; every claim's experiment and arms name planned runs."""

from __future__ import annotations

import importlib.util
import sys
import textwrap

import pandas as pd
import pytest

from lab.analysis import claims
from lab.analysis import registry as figure_registry
from lab.experiments import REGISTRY, declared_claims, plan
from lab.selection import RunFilter

TOY = '''
"""A toy experiment: induction at 100K, next-token against 2-token prediction."""
from lab.analysis.claims import Claim
from lab.analysis.registry import Output, Selection, figure
from lab.experiments import experiment, make_run


def toy(preset):
    """Toy: n=1 and n=2 at 100K."""
    return [make_run("toy", preset, "induction", "100K", n, 0) for n in (1, 2)]


CLAIMS = (Claim("toy-n2", "toy", "2 heads beat 1 on the toy", "toy", {"model.n_future": 2},
                {"model.n_future": 1}, family="lab"),)
experiment("toy", claims=CLAIMS)(toy)


@figure("99_toy", "Toy", "toy", "A toy figure.")
def toy_figure(sel: Selection) -> Output:
    sel.require("toy")
'''


@pytest.fixture
def toy_module(tmp_path):
    path = tmp_path / "toy_experiment.py"
    path.write_text(textwrap.dedent(TOY))
    spec = importlib.util.spec_from_file_location("toy_experiment", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["toy_experiment"] = module
    spec.loader.exec_module(module)
    yield module
    del sys.modules["toy_experiment"]
    REGISTRY.pop("toy", None)
    figure_registry.FIGURES[:] = [s for s in figure_registry.FIGURES if s.key != "99_toy"]


def test_a_toy_experiment_is_one_file(toy_module) -> None:
    assert [c.run_name().split("-")[2] for c in plan("toy", "quick")] == ["n1", "n2"]
    keys = [s.key for s in figure_registry.specs()]
    assert keys[-1] == "99_toy" and keys.index("13_long_budget") < keys.index("99_toy")
    assert [s.key for s in REGISTRY["toy"].figures] == ["99_toy"]
    assert [c.key for c in REGISTRY["toy"].claims] == ["toy-n2"]
    every = claims.in_ledger_order(declared_claims())
    assert every[-1].key == "toy-n2"  # a new experiment's rows come after the ledger's existing ones
    table = claims.ledger(lambda experiment: pd.DataFrame(), "quick", every)
    row = table[table["key"] == "toy-n2"].iloc[0]
    assert row["command"] == "python -m lab.sweep toy --preset quick" and row["verdict"] == "not run"


def test_figure_keys_are_in_natural_order() -> None:
    prefixes = [s.key.split("_")[0] for s in figure_registry.specs()]
    assert prefixes[:3] == ["0", "1a", "1b"]
    assert prefixes[-7:] == ["10", "11", "12", "13", "13b", "13c", "14"]
    assert prefixes.index("9c") < prefixes.index("10")


def test_every_claim_names_planned_runs() -> None:
    """A typo in a claim's experiment or arms can never read "not run": each names runs of its plan."""
    plans: dict[str, list[dict]] = {}
    for claim in declared_claims():
        assert claim.experiment in REGISTRY, f"{claim.key}: unknown experiment {claim.experiment!r}"
        if claim.experiment not in plans:
            from lab.runs import flatten
            plans[claim.experiment] = [flatten(c.to_dict()) for c in plan(claim.experiment, "quick")]
        planned = [f for f in plans[claim.experiment] if RunFilter.of(claim.where).matches(f)]
        assert planned, f"{claim.key}: no planned run of {claim.experiment} has {claim.where}"
        for arm in (claim.a, claim.b):
            if arm is not None:
                assert any(RunFilter.of(arm).matches(f) for f in planned), f"{claim.key}: arm {arm} is not planned"


def test_the_check_catches_a_typo() -> None:
    planned = [{"label": "add4", "model.n_future": 4}]
    assert not any(RunFilter.of({"label": "ad4"}).matches(f) for f in planned)
