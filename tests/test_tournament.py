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
def test_fallback_plan_has_every_recipe_on_every_base(preset: str) -> None:
    configs = plan("tournament", preset)
    assert not tournament.s6_bases(preset, committed={})
    check_plan(configs)
    assert sum(not c.finetune.init_from for c in configs) == (10 if preset == "quick" else 6)  # stage-1 bases


def test_committed_s6_bases_replace_the_fallback_all_at_once() -> None:
    from lab.experiments import s6_regime
    from lab.resolve import resolve
    names = [resolve(b)[0].run_name() for b in s6_regime.bases("quick")]
    committed = {name: f"{i:016x}" for i, name in enumerate(names)}
    chosen = tournament.s6_bases("quick", committed)
    assert chosen and len(chosen) == 5 + 5  # 100K and 300K at 300 tokens per parameter, 5 seeds each
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
