"""Continued pretraining (Table S6's protocol): its plan and the deficit curves its figure draws."""

from __future__ import annotations

import pandas as pd
import pytest

from lab.analysis.registry import Missing
from lab.experiments import continued, plan


def test_continuations_read_their_own_pretraining_run_on_the_same_distribution_for_as_long() -> None:
    configs = plan("continued", "quick")
    by_name = {c.run_name(): c for c in configs}
    sizes = set()
    for c in configs:
        assert c.task == "induction" and c.train.log_mechanism
        if not c.finetune.init_from:
            continue
        source = by_name[c.finetune.init_from[1:]]  # planned in the same experiment, before its readers
        assert configs.index(source) < configs.index(c)
        assert (source.seed, source.size, source.task_config) == (c.seed, c.size, c.task_config)
        assert c.train.steps >= source.train.steps
        assert (source.model.n_future == 4) == (c.label == "mtp_drop")
        sizes.add(c.size)
    arms = {(c.size, c.label, c.model.n_future) for c in configs if c.finetune.init_from}
    assert len(sizes) >= 4
    for size in sizes:  # the variants every hypothesis needs, at every size
        assert {(size, "ntp", 1), (size, "add2", 2), (size, "add4", 4), (size, "linear4", 4)} <= arms
    assert ("1M", "carve4", 4) in arms and ("3M", "carve4", 4) not in arms  # 4 layers cannot give 4 carved heads


def test_deficit_is_the_gap_to_next_token_continuation_at_the_same_size_seed_and_step() -> None:
    rows = []
    for size, offset in (("100K", 0.0), ("1M", 1.0)):
        for seed in (0, 1):
            for step in (0, 50):
                rows.append({"size": size, "seed": seed, "step": step, "tokens": step * 2000, "label": "ntp",
                             "head1/loss": 2.0 + offset + seed})
                rows.append({"size": size, "seed": seed, "step": step, "tokens": step * 2000, "label": "add4",
                             "head1/loss": 2.5 + offset + seed - step / 100})

    class Fake:
        def evals(self):
            return pd.DataFrame(rows)

    deficit = continued.deficit_curves(Fake())
    assert set(deficit["label"]) == {"add4"}
    assert sorted(deficit.loc[deficit["step"] == 0, "deficit"]) == pytest.approx([0.5] * 4)
    assert sorted(deficit.loc[deficit["step"] == 50, "deficit"]) == pytest.approx([0.0] * 4)

    class NoBase(Fake):
        def evals(self):
            return pd.DataFrame([r for r in rows if r["label"] != "ntp"])

    with pytest.raises(Missing, match="ntp"):
        continued.deficit_curves(NoBase())


def test_table_s6_figure_measures_deficit_shock_and_alignment_per_run() -> None:
    """Synthetic continuation runs: add4's deficit is 0.3 at 100K and 0.1 at 1M after a 0.5 shock, add2's half."""
    rows = []
    for size, scale in (("100K", 0.3), ("1M", 0.1)):
        for seed in range(3):
            for label, n, factor in (("ntp", 1, 0.0), ("add2", 2, 0.5), ("add4", 4, 1.0)):
                for step, shock in ((0, 0.5), (50, 0.0)):
                    extra = factor * (shock if step == 0 else scale) + (0.001 * seed if n > 1 else 0.0)
                    row = {"run_name": f"{size}-{label}-{seed}", "task": "induction", "size": size, "seed": seed,
                           "label": label, "model.n_future": n, "step": step, "tokens": step * 2000,
                           "head1/loss": 3.0 + extra, "val/second_token_acc": 0.1, "eval/second_token_acc": 0.1}
                    if n > 1:
                        row["align/cos/head2"] = 0.5 - scale
                    rows.append(row)

    class Fake:
        preset = "quick"

        def require(self, what):
            pass

        def evals(self):
            return pd.DataFrame(rows)

    table = continued.per_run(Fake()).set_index(["label", "size", "seed"])
    assert table.loc[("add4", "100K", 0), "deficit"] == pytest.approx(0.3)
    assert table.loc[("add2", "1M", 1), "deficit"] == pytest.approx(0.051)
    assert table.loc[("add4", "1M", 2), "shock"] == pytest.approx(0.502)
    assert table.loc[("add4", "1M", 0), "align_cos"] == pytest.approx(0.4)
    out = continued.table_s6_figure(Fake())
    h3 = next(s for s in out.sentences if s.startswith("H3-size"))
    assert "reproduced" in h3  # the deficit shrinks with size: a negative slope whose CI excludes 0
    assert len([a for a in out.figure.axes if a.get_visible()]) == 4
    h3x = next(s for s in out.sentences if s.startswith("H3 extrapolation"))
    assert "reach 0 at 3.2e+06 parameters" in h3x and "outside the measured range" in h3x  # 0.3 - 0.2/decade
    recipes = [s for s in out.sentences if s.startswith("Recipe search")]
    assert len(recipes) == 2 and all("no recipe improves" in s for s in recipes)


def test_recipe_search_corrects_for_the_choice_and_explains_the_stop_gradient() -> None:
    def table(sg_deficits):
        rows = [{"label": "add4", "size": "100K", "seed": s, "deficit": 0.1 + 0.01 * s} for s in range(5)]
        return pd.DataFrame(rows + [{"label": "add4_sg", "size": "100K", "seed": s, "deficit": d}
                                    for s, d in enumerate(sg_deficits)])
    clear = continued.recipe_sentences(table([-0.010, -0.011, -0.009, -0.010, -0.012]))
    assert "add4_sg's, -0.0104" in clear[0] and "add4_sg improve(s)" in clear[0] and clear[-1] == continued.SG_NOTE
    # below 0 at 95% (t CI [-0.0058, -0.0002]) but not at the 97.5% a choice between 2 recipes asks for
    borderline = continued.recipe_sentences(table([-0.0005, -0.0055, -0.001, -0.005, -0.003]))
    assert "97.5% Bonferroni" in borderline[0] and "no recipe improves" in borderline[0] and len(borderline) == 1


def test_the_verdicts_are_listed_below_the_figure_in_the_readme() -> None:
    from types import SimpleNamespace

    from lab.analysis import registry as figure_registry
    from lab.analysis import render
    spec = next(s for s in figure_registry.FIGURES if s.key == "10_table_s6")
    used = SimpleNamespace(complete=2, planned=[{}, {}], seeds=[0])
    out = figure_registry.Output(None, [], ["H1: a.", "H3: b."], used, verdicts=["H1: a.", "H3: b."])
    section = render.readme_section(spec, out, "10_table_s6.png", "quick")
    assert section.index("![") < section.index("- H1: a.") < section.index("- H3: b.")


def test_a_flat_deficit_is_said_not_to_vanish_in_the_range_its_band_excludes() -> None:
    rows = [{"label": "add4", "size": size, "seed": seed, "deficit": 0.1 + 0.01 * ((seed + i) % 3 - 1)}
            for i, size in enumerate(("100K", "300K", "1M", "3M")) for seed in range(3)]
    text = continued.vanishing_size(pd.DataFrame(rows))
    assert "slope is not distinguishable from 0" in text and "does not vanish anywhere" in text
    assert "12 runs over sizes 100K, 300K, 1M, 3M" in text
