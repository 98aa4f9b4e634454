"""The recipe tournament's plan (every recipe, 2+ sizes, 3+ seeds, one budget, either source of bases)
and its measure step on tiny runs."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pytest

from lab.config import RECIPES
from lab.experiments import plan, tournament
from tests.test_finetune import pretrain
from tests.test_recipes import small_finetune


def check_plan(configs) -> None:
    arms = defaultdict(set)
    for c in configs:
        if c.finetune.init_from:
            arms[(c.size, c.seed, c.finetune.init_from)].add((c.finetune.recipe or "ntp", c.train.steps))
    assert len({size for size, _, _ in arms}) >= 2 and len({seed for _, seed, _ in arms}) >= 3
    for got in arms.values():  # every recipe and the control on each base, with one continuation budget
        assert {name for name, _ in got} == {"ntp", *RECIPES} and len({steps for _, steps in got}) == 1


@pytest.mark.parametrize("preset", ["quick", "paper"])
def test_fallback_plan_has_every_recipe_on_every_base(preset: str, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from lab import bases
    monkeypatch.setenv(bases.ENV, str(tmp_path))  # no base committed: the fallback plan
    assert not tournament.s6_bases(preset)
    configs = plan("tournament", preset)
    check_plan(configs)
    assert sum(not c.finetune.init_from for c in configs) == (10 if preset == "quick" else 6)  # stage-1 bases


def test_committed_s6_bases_replace_the_fallback_all_at_once() -> None:
    from lab.experiments import s6_regime
    from lab.resolve import resolve
    names = [resolve(b)[0].run_name() for b in s6_regime.bases("quick")]
    committed = {name: f"{i:016x}" for i, name in enumerate(names)}
    chosen = tournament.s6_bases("quick", committed)
    # 100K and 300K at 300 tokens per parameter: 5 seeds on the ratio axis, 3 on the size axis
    assert chosen and sorted(b.size for b, _ in chosen) == ["100K"] * 5 + ["300K"] * 3
    configs = tournament.s6_runs("quick", chosen)
    check_plan(configs)
    assert all(c.finetune.init_from.startswith("base:") for c in configs)
    partial = {k: v for k, v in committed.items() if k != chosen[-1][0].run_name()}
    assert tournament.s6_bases("quick", partial) is None  # one base missing: the fallback, not a mix


def test_measure_reports_cost_speed_and_reference(tmp_path: Path) -> None:
    pre = pretrain(tmp_path)
    ntp = tournament.measure_run(small_finetune(tmp_path, pre, "", 1, "keep").run_dir)
    gated = tournament.measure_run(small_finetune(tmp_path, pre, "gated", 1, "keep").run_dir)
    registers = tournament.measure_run(small_finetune(tmp_path, pre, "registers", 1, "keep").run_dir)
    frozen = tournament.measure_run(small_finetune(tmp_path, pre, "frozen", 3, "add").run_dir)
    assert ntp["extra_parameters"]["train"] == 0 and len(ntp["reference"]["top1"]) == tournament.HEADS
    assert ntp["reference"]["top1"][0] == pytest.approx(ntp["head_acc"][0], abs=0.05)  # head 1 of a short run
    assert gated["speculative"]["exact"] and gated["speculative"]["tokens_per_forward"] >= 1
    assert frozen["speculative"]["exact"] and frozen["speculative"]["k"] == 3
    assert registers["speculative"]["tokens_per_forward"] is None and "no heads" in registers["speculative"]["note"]
    assert 0 < gated["extra_parameters"]["train"] and registers["extra_parameters"]["inference"] == 0
    assert len(gated["head_acc"]) == 4 and len(frozen["head_acc"]) == 3 and frozen["train_flops"] > 0
    # claims read the same numbers under flat names (`recipe.json` "metrics")
    assert gated["metrics"]["tokens_per_forward"] == gated["speculative"]["tokens_per_forward"]
    assert gated["metrics"]["speculative_exact"] == 1.0 and "tokens_per_forward" not in registers["metrics"]
    assert ntp["metrics"]["reference/top1/k1"] == ntp["reference"]["top1"][0]
    assert frozen["metrics"]["head_acc/k3"] == frozen["head_acc"][2]
    assert registers["metrics"]["extra_parameters/inference"] == 0.0


def test_the_summary_pairs_each_recipe_with_ntp_by_seed() -> None:
    """Known differences in, the same differences out: deficit, capability, speed and cost."""
    import pandas as pd
    rows = []
    for seed in range(3):
        for recipe, loss, graded, speed, flops in (("ntp", 2.0, 1.0, 1.0, 10.0),
                                                   ("data_w1", 2.1, 0.9, 2.0, 20.0),
                                                   ("registers", 2.0, 0.8, None, 15.0)):
            metrics = {"train_flops": flops, "extra_parameters/train": 5.0,
                       "extra_parameters/inference": 0.0, "head_acc/k2": 0.25}
            if speed is not None:
                metrics["tokens_per_forward"] = speed + 0.1 * seed
            rows.append({"size": "100K", "seed": seed, "recipe": recipe, "loss": loss + 0.01 * seed,
                         "primary": 0.5, "graded": graded, **metrics})
    summary = tournament.recipe_summary(pd.DataFrame(rows)).set_index("recipe")
    assert list(summary.index) == ["data_w1", "registers"]  # RECIPES order, the control left out
    assert summary.loc["data_w1", "deficit"] == pytest.approx(0.1)
    assert summary.loc["registers", "graded"] == pytest.approx(-0.2)
    assert summary.loc["data_w1", "tokens/forward"] == pytest.approx(2.1)
    assert summary.loc["data_w1", "train FLOPs / ntp"] == pytest.approx(2.0)
    assert summary.loc["registers", "tokens/forward"] != summary.loc["registers", "tokens/forward"]
    table = tournament.readme_table(summary.reset_index(), {"100K": "0.300 greedy"}).set_index("recipe")
    assert table.loc["registers", "tokens/forward"] == "1 (no heads)"
    assert table.loc["data_w1", "t+2 accuracy"] == "0.250"
    assert table.iloc[-1]["t+2 accuracy"] == "0.300 greedy" and table.iloc[-1]["seeds"] == "-"
    assert table.loc["data_w1", "next-token deficit (nats)"].startswith("+0.100 [")


def test_the_light_check_of_committed_bases_agrees_with_the_plan(tmp_path: Path, monkeypatch) -> None:
    """Claims decide their labels from the bases' index without torch; the plan from resolved bases:
    both switch on the same set (every seed the regime trains, 3 on the size axis), and back."""
    from lab import bases, runs
    from lab.experiments import s6_regime
    from lab.resolve import resolve
    assert tournament.s6_committed("quick") == bool(tournament.s6_bases("quick"))
    index = {f"{i:016x}": {"experiment": s6_regime.EXPERIMENT, "size": b.size, "seed": b.seed,
                           "tokens_per_param": b.train.tokens_per_param, "run_name": b.run_name()}
             for i, b in enumerate(resolve(b)[0] for b in s6_regime.bases("quick"))}
    monkeypatch.setenv(bases.ENV, str(tmp_path))
    for drop in (None, next(k for k, e in index.items() if e["size"] == "300K" and e["tokens_per_param"] == 300)):
        runs.write_json(tmp_path / bases.INDEX, {k: e for k, e in index.items() if k != drop})
        assert tournament.s6_committed("quick") == bool(tournament.s6_bases("quick")) == (drop is None)
        # the capability row reads the graded answer NLL on the S6 bases, the primary metric otherwise
        registers = next(c for c in tournament.size_claims("100K") if "registers" in c.key)
        assert registers.metric == (tournament.S6_GRADED if drop is None else None)
        assert registers.a["label"] == ("registers-tpp300" if drop is None else "registers")
