"""Selection on validation only, per-run measurements, and the claims ledger's verdicts."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from lab.analysis import claims, evidence, inference
from lab.experiments import declared_claims, s6_regime
from lab.experiments.pathstar_long import ON_PUBLISHED

CLAIMS = claims.in_ledger_order(declared_claims())  # the rows of figures/CLAIMS.md, in order


def curve(run: str, seed: int, n: int, val: list[float], test: list[float], task: str = "induction",
          size: str = "1M", **config) -> pd.DataFrame:
    """Evaluation rows of one run, as `lab.runs.load_runs` gives them."""
    metric = evidence.primary_metric(task)
    steps = [100 * (i + 1) for i in range(len(test))]
    rows = {"run_name": run, "task": task, "size": size, "seed": seed, "model.n_future": n, "step": steps,
            "tokens": [2048 * s for s in steps], f"eval/{metric}": test, "head1/loss": [2.0] * len(test), **config}
    if val is not None:
        rows[f"val/{metric}"] = val
    return pd.DataFrame(rows)


def test_selection_reads_validation_only() -> None:
    c = curve("r", 0, 1, val=[0.1, 0.5, 0.4], test=[0.9, 0.2, 0.3])
    assert evidence.select_step(c, "second_token_acc") == 200
    for test in ([0.0, 0.0, 0.0], [1.0, 0.0, 1.0], [np.nan, 5.0, -1.0]):
        c["eval/second_token_acc"] = test
        assert evidence.select_step(c, "second_token_acc") == 200, "the test values must not move the choice"
    c["val/second_token_acc"] = [0.1, 0.2, 0.7]
    assert evidence.select_step(c, "second_token_acc") == 300


def test_selection_without_validation_reports_the_last_step() -> None:
    c = curve("r", 0, 1, val=None, test=[0.9, 0.2, 0.3])
    assert evidence.select_step(c, "second_token_acc") == 300
    (row,) = evidence.measure_runs(c).to_dict("records")
    assert row["value"] == 0.3 and np.isnan(row["formation_tokens"]) and not row["formed"]
    assert (row["first_value"], row["early_value"], row["final_value"]) == (0.9, 0.2, 0.3)
    (one,) = evidence.measure_runs(curve("s", 0, 1, val=None, test=[0.4])).to_dict("records")
    assert one["first_value"] == one["final_value"] == 0.4 and np.isnan(one["early_value"])  # no second evaluation


def test_formation_is_detected_on_validation_and_censored_at_the_budget() -> None:
    formed = evidence.measure_runs(curve("a", 0, 1, val=[0.0, 0.35, 0.5], test=[0.9, 0.9, 0.9]))
    never = evidence.measure_runs(curve("b", 0, 1, val=[0.0, 0.1, 0.2], test=[0.9, 0.9, 0.9]))
    assert formed["formed"].item() and formed["formation_tokens"].item() == 2048 * 200
    assert not never["formed"].item() and never["formation_tokens"].item() == never["budget"].item() == 2048 * 300


def test_a_formation_claim_says_how_many_runs_formed_when_some_are_censored() -> None:
    claim = next(c for c in CLAIMS if c.key == "lab-dynamics")  # n=2 against n=1, tokens to formation
    parts = [curve(f"n1-s{seed}", seed, 1, val=[0.0, 0.4, 0.5], test=[0.5] * 3) for seed in range(3)]
    parts += [curve(f"n2-s{seed}", seed, 2, val=[0.0, 0.1, 0.35 if seed == 0 else 0.2], test=[0.5] * 3)
              for seed in range(3)]
    row = claims.evaluate_claim(claim, pd.concat(parts, ignore_index=True), "quick")
    # n=1 forms in (204800, 409600]; n=2 seed 0 in (409600, 614400], seeds 1 and 2 after 614400 (censored):
    # the lowest differences are 0, 204800, 204800 (mean 136533), the highest unbounded
    assert row["effect"] == ("a - b between +1.37e+05 and +inf tokens; sign-flip p 0.25 to 0.5; "
                             "formed a 1 of 3, b 3 of 3")
    assert row["verdict"].startswith("no detectable effect (sign-flip test, 3 seeds)") and row["p"] == 0.5
    assert "only b 2" in row["notes"] and "6 seeds" in row["power"]
    formed = [curve(f"n{n}-s{seed}", seed, n, val=[0.0, 0.4, 0.5], test=[0.5] * 3) for n in (1, 2) for seed in range(3)]
    same = claims.evaluate_claim(claim, pd.concat(formed, ignore_index=True), "quick")
    assert same["effect"].startswith("a - b between -2.05e+05 and +2.05e+05 tokens")  # never a zero-width CI


def arms(shift: float, seeds: int = 4, noise: float = 0.01) -> pd.DataFrame:
    """Scaling-like runs at 1M: n=2 ends `shift` above n=1, with small per-seed noise."""
    rng = np.random.default_rng(0)
    parts = []
    for seed in range(seeds):
        base = 0.3 + rng.normal(0, 0.05)
        for n, value in ((1, base), (2, base + shift + rng.normal(0, noise))):
            parts.append(curve(f"n{n}-s{seed}", seed, n, val=[value - 0.1, value], test=[value - 0.1, value]))
    return pd.concat(parts, ignore_index=True)


FIG7 = next(c for c in CLAIMS if c.key == "fig7-1M")


@pytest.mark.parametrize("shift,verdict", [(0.2, "reproduced"), (-0.2, "reversed"), (0.0, "no detectable effect")])
def test_comparison_verdicts(shift: float, verdict: str) -> None:
    row = claims.evaluate_claim(FIG7, arms(shift, noise=0.02), "quick")
    assert row["verdict"].startswith(verdict) and row["seeds"] == 4
    assert row["size"] == "1M" and row["budget"] == "0.41M"
    if verdict.startswith("no"):
        assert "MDE" in row["verdict"]


@pytest.mark.parametrize("shift,verdict", [(0.001, "reproduced"), (0.3, "not reproduced"),
                                           (0.02, "inconclusive")])
def test_an_equivalence_claim_needs_the_whole_paired_interval_inside_its_margin(shift: float,
                                                                               verdict: str) -> None:
    """"Costs nothing": a - b (paired by seed) within 0 +- 0.02; a wide interval decides nothing."""
    claim = dataclasses.replace(FIG7, key="eq", target=0.0, tolerance=0.02)
    row = claims.evaluate_claim(claim, arms(shift, noise=0.002 if shift != 0.02 else 0.02), "quick")
    assert row["verdict"] == verdict and row["p"] != row["p"]  # no p-value: in no family
    assert row["compared"] == "a - b within 0 +- 0.02" and row["seeds"] == 4


def test_claims_without_runs_are_not_run() -> None:
    row = claims.evaluate_claim(FIG7, pd.DataFrame(), "quick")
    assert row["verdict"] == "not run" and row["seeds"] == 0
    assert row["command"] == "python -m lab.sweep scaling --preset quick"


@pytest.mark.parametrize("values,verdict", [([0.5, 0.52, 0.49, 0.51], "reproduced"),
                                            ([0.95, 0.97, 0.96, 0.98], "not reproduced"),
                                            ([0.2, 0.9, 0.5, 0.6], "inconclusive")])
def test_target_verdicts(values: list[float], verdict: str) -> None:
    claim = next(c for c in CLAIMS if c.key == "bn-next-token")
    evals = pd.concat([curve(f"s{s}", s, 1, val=[v], test=[0.0], task="graph", label="next-token",
                             **{"eval/tf_pos_acc/2": [v]}) for s, v in enumerate(values)], ignore_index=True)
    assert claims.evaluate_claim(claim, evals, "quick")["verdict"] == verdict


def test_ledger_markdown_lists_every_claim_with_effect_ci_seeds_verdict_and_command() -> None:
    table = claims.ledger(lambda experiment: arms(0.2) if experiment == "scaling" else pd.DataFrame(), "quick",
                          CLAIMS)
    assert len(table) == len(CLAIMS) >= 10
    text = claims.markdown(table, "quick", "runs/")
    for key in table["key"]:
        (line,) = [ln for ln in text.splitlines() if ln.startswith(f"| {key} |")]
        assert "python -m lab.sweep" in line
    assert "| fig7-1M |" in text and "reproduced" in text and "not run" in text


def test_a_loss_claim_reads_the_last_evaluation_not_the_selected_step() -> None:
    claim = next(c for c in CLAIMS if c.key == "tableS7")
    parts = []
    for seed in range(3):  # validation picks step 100 for n=4, where its loss is still high
        for n, loss in ((1, [3.0, 2.0]), (4, [9.0, 2.5])):
            c = curve(f"n{n}-s{seed}", seed, n, val=[0.5, 0.1] if n == 4 else [0.1, 0.5], test=[0.0, 0.0])
            c["head1/loss"] = loss
            parts.append(c)
    row = claims.evaluate_claim(claim, pd.concat(parts, ignore_index=True), "quick")
    assert row["effect"].startswith("+0.5 [") and row["verdict"] == "reproduced"


def test_every_claim_names_its_measure_in_words() -> None:
    table = claims.ledger(lambda experiment: pd.DataFrame(), "quick", CLAIMS)
    assert not table["measure"].str.contains("None").any()
    assert (table.set_index("key").loc["S6-task", "measure"] == "primary metric at the last evaluation")


def test_a_size_trend_claim_is_the_slope_of_the_paired_deficit_per_decade() -> None:
    """H3: the deficit a - b halves per 10x in size here (0.4 at 100K, 0.2 at 1M, 0.0 at 10M): slope -0.2."""
    claim = next(c for c in CLAIMS if c.key == "H3-size")
    parts = []
    for size, deficit in (("100K", 0.4), ("1M", 0.2), ("10M", 0.0)):
        for seed in range(3):
            for label, extra in (("ntp", 0.0), ("add4", deficit + 0.01 * seed)):
                c = curve(f"{size}-{label}-s{seed}", seed, 1, val=[0.1], test=[0.1], size=size, label=label)
                c["head1/loss"] = [2.0 + extra]
                parts.append(c)
    row = claims.evaluate_claim(claim, pd.concat(parts, ignore_index=True), "quick")
    assert row["effect"].startswith("-0.2 [") and "9 seed pairs over sizes" in row["effect"]
    assert row["verdict"] == "reproduced" and row["size"] == "100K, 1M, 10M"
    one_size = pd.concat([p for p in parts if p["size"].iloc[0] == "1M"], ignore_index=True)
    assert claims.evaluate_claim(claim, one_size, "quick")["verdict"] == "not run"  # no slope from one size


def test_a_shock_claim_reads_step_zero() -> None:
    claim = next(c for c in CLAIMS if c.key == "H1-shock")
    parts = []
    for seed in range(3):
        for label, loss in (("carve4", [4.0, 2.0]), ("add4", [2.0, 2.1])):
            c = curve(f"{label}-s{seed}", seed, 4, val=[0.1, 0.2], test=[0.1, 0.2], label=label, size="100K")
            c["head1/loss"] = [loss[0] + 0.01 * seed, loss[1]]
            parts.append(c)
    row = claims.evaluate_claim(claim, pd.concat(parts, ignore_index=True), "quick")
    assert row["effect"].startswith("+2 [") and row["verdict"] == "reproduced"


def test_an_alignment_trend_claim_regresses_the_deficit_on_the_gradient_cosine() -> None:
    claim = next(c for c in CLAIMS if c.key == "H4-conflict")
    parts = []
    for seed, cos in enumerate((0.9, 0.5, 0.1, -0.3)):  # deficit = 0.2 - 0.5 * cos
        for label, extra in (("ntp", 0.0), ("add4", 0.2 - 0.5 * cos)):
            c = curve(f"{label}-s{seed}", seed, 4, val=[0.1, 0.1], test=[0.1, 0.1], label=label)
            c["head1/loss"] = [2.0 + extra] * 2
            if label == "add4":
                c["align/cos/head2"], c["align/cos/head3"] = [cos - 0.1, cos + 0.1], [cos, cos]
            parts.append(c)
    row = claims.evaluate_claim(claim, pd.concat(parts, ignore_index=True), "quick")
    assert row["effect"].startswith("-0.5 [") and row["verdict"] == "reproduced"
    assert "against a's align_cos" in row["compared"] and "4 seed pairs)" in row["effect"]


def test_a_trend_can_read_its_x_from_a_run_file_and_skips_seeds_without_one() -> None:
    """The Table S6 regime's H4: the gradient cosine is measured after training (`conflict.json`)."""
    claim = next(c for c in s6_regime.CLAIMS if c.key == "H4-conflict-100K-tpp30")
    parts, files = [], {}
    for seed, cos in enumerate((0.9, 0.5, 0.1, -0.3, None)):  # deficit = 0.2 - 0.5 * cos
        for variant in ("ntp", "add4"):
            label = f"{variant}-tpp30-dose0.1"
            c = curve(f"{label}-s{seed}", seed, 4, val=[0.1], test=[0.1], task="polynomial",
                      size="100K", label=label, run_dir=f"d/{label}-s{seed}")
            c["head1/loss"] = [2.0 + (0.2 - 0.5 * (cos or 0.0) if variant == "add4" else 0.0)]
            if variant == "add4" and cos is not None:
                files[f"d/{label}-s{seed}"] = {"metrics": {s6_regime.ALIGN: cos}}
            parts.append(c)
    row = claims.evaluate_claim(claim, pd.concat(parts, ignore_index=True), "quick",
                                run_file=lambda run_dir, name: files.get(run_dir)
                                if name == s6_regime.CONFLICT else None)
    assert row["effect"].startswith("-0.5 [") and "4 seed pairs)" in row["effect"]  # seed 4: no file
    assert row["verdict"] == "reproduced"


def test_explanations_are_repeated_at_other_sizes_under_their_own_keys() -> None:
    by_key = {c.key: c for c in CLAIMS}
    base, big = by_key["H5-heads"], by_key["H5-heads-3M"]
    assert base.where == {"size": "100K"} and big.where == {"size": "3M"}
    assert "3M" in big.statement and "100K" not in big.statement and (big.a, big.b) == (base.a, base.b)
    assert len(by_key) == len(CLAIMS)  # keys stay unique
    from lab.experiments import plan
    planned = {(c.size, c.label) for c in plan("continued", "quick")}
    for claim in CLAIMS:  # every sized row compares arms the plan trains at that size
        if claim.experiment == "continued" and "size" in claim.where:
            for arm in (claim.a, claim.b):
                assert (claim.where["size"], arm["label"]) in planned, (claim.key, arm)


def test_a_claim_filter_may_name_several_cells() -> None:
    """`atlas-size` reads three atlas cells by label; runs of other cells (here at the same sizes) are left out."""
    claim = next(c for c in CLAIMS if c.key == "atlas-size")
    parts = []
    for label, size, first in (("size=300K", "300K", 3), ("base", "1M", 2), ("size=3M", "3M", 1),
                               ("w=0.1", "1M", 0), ("other", "3M", 0)):
        for seed in range(3):
            for n in (1, 2):
                val = [0.0] * 4
                val[first if n == 2 else 0] = 0.5  # n=1 forms at step 100; n=2 at step 100 * (1 + first)
                parts.append(curve(f"{label}-n{n}-s{seed}", seed, n, val=val, test=val, size=size, label=label))
    row = claims.evaluate_claim(claim, pd.concat(parts, ignore_index=True), "quick")
    assert row["size"] == "300K, 1M, 3M" and "9 seed pairs over sizes" in row["effect"]
    assert row["verdict"] == "reproduced" and row["effect"].startswith("-4.09e+05 [")  # 409,600 tokens less per 10x


def test_the_copy_attention_is_timed_like_formation_and_claims_read_it() -> None:
    """n=2's copy attention reaches 0.1 one evaluation before n=1's in every seed, while its accuracy forms later."""
    parts = []
    for seed in range(3):
        for n, attention, acc in ((1, [0.0, 0.05, 0.12, 0.2], [0.0, 0.0, 0.1, 0.5]),
                                  (2, [0.0, 0.11, 0.15, 0.2], [0.0, 0.0, 0.0, 0.1])):
            parts.append(curve(f"n{n}-s{seed}", seed, n, val=acc, test=acc, label="base",
                               **{evidence.ATTENTION: attention}))
    evals = pd.concat(parts, ignore_index=True)
    measured = evidence.measure_runs(evals).set_index("run_name")
    assert measured.loc["n2-s0", "attention_tokens"] == 2048 * 200 and measured.loc["n2-s0", "attention_formed"]
    assert measured.loc["n1-s0", "attention_tokens"] == 2048 * 300 and not measured.loc["n2-s0", "formed"]
    row = claims.evaluate_claim(next(c for c in CLAIMS if c.key == "atlas-attention-n2"), evals, "quick")
    # n=2's attention in (204800, 409600], n=1's in (409600, 614400]: a - b between -409600 and 0 per seed
    assert row["effect"].startswith("a - b between -4.1e+05 and +0 tokens; sign-flip p 0.25 to 1")
    assert row["verdict"].startswith("no detectable effect (sign-flip test")  # 3 seeds: p >= 0.25
    assert row["measure"].startswith("tokens until the copy attention reaches 0.1")
    assert row["effect"].endswith("formed a 3 of 3, b 3 of 3"), "the counts read attention_formed"
    readout = claims.evaluate_claim(next(c for c in CLAIMS if c.key == "atlas-readout-n2"), evals, "quick")
    # n=1: attention at 300 -> formed at 400 (100 steps); n=2: attention at 200, never formed: >= 200 steps.
    # read-out intervals: n=1 (614400, 819200] - (409600, 614400] = (0, 409600]; n=2 never formed after its
    # attention in (204800, 409600]: (819200 - 409600, inf)
    assert readout["effect"].startswith("a - b between +0 and +inf tokens")
    assert readout["effect"].endswith("formed a 0 of 3, b 3 of 3")
    without = evidence.measure_runs(evals.drop(columns=[evidence.ATTENTION]))
    assert without["attention_tokens"].isna().all() and not without["attention_formed"].any()


def test_a_published_file_claim_reads_each_runs_file_and_leaves_out_unscored_runs() -> None:
    """The value comes from the run's published.json (final checkpoint), not from its evaluation rows; a run
    not scored yet on the file is left out, and without a way to read files the claim is not run."""
    evals = pd.concat([curve(f"r{s}", s, 1, val=[0.1, 0.2], test=[0.9, 0.9], task="graph", label="nt",
                             run_dir=f"runs/r{s}") for s in range(4)])
    files = {f"runs/r{s}": {"metrics": {"exact_path_acc": v}} for s, v in enumerate((0.49, 0.5, 0.51))}
    claim = claims.Claim("k", "src", "stays at 1/d", "pathstar_long", {"label": "nt"}, target=0.5, tolerance=0.1,
                         file="published.json", family=claims.PEERS,
                         file_means="on the published test file (20,000 graphs), final checkpoint")
    seen = []

    def run_file(run_dir: str, name: str) -> dict | None:
        seen.append(name)
        return files.get(run_dir)

    row = claims.evaluate_claim(claim, evals, "quick", run_file=run_file)
    assert set(seen) == {"published.json"} and row["seeds"] == 3 and row["verdict"] == "reproduced"
    assert row["effect"].startswith("0.5 [") and "published test file" in row["measure"]
    table = claims.ledger(lambda _: evals, "quick", [claim], run_file=lambda e, d, n: files.get(d))
    assert table.iloc[0]["verdict"] == "reproduced"
    assert claims.evaluate_claim(claim, evals, "quick")["verdict"] == "not run"
    plain = claims.evaluate_claim(dataclasses.replace(claim, file=""), evals, "quick")
    assert plain["verdict"] == "not reproduced"  # the evaluation rows say 0.9


def test_the_published_variants_keep_their_claims_arms() -> None:
    by_key = {c.key: c for c in CLAIMS}
    for key in ON_PUBLISHED:
        variant = by_key[f"{key}-published"]
        assert variant.file == "published.json" and by_key[key].file == ""
        assert dataclasses.replace(variant, key=key, file="", file_means="", statement=by_key[key].statement) == by_key[key]
        assert variant.statement.startswith(by_key[key].statement)


# ----- the ledger's statistics: step 0, floors, binary outcomes, families, power, items, plateaus -----

def test_a_finetuned_run_never_reports_step_zero_and_a_flat_curve_reports_its_last_step() -> None:
    finetuned = curve("f", 0, 4, val=[0.5, 0.1, 0.2], test=[0.5, 0.1, 0.2], **{"finetune.init_from": "base@x"})
    finetuned["step"] = [0, 100, 200]
    assert evidence.select_step(finetuned, "second_token_acc") == 200  # step 0 is best, but untrained
    flat = curve("g", 0, 1, val=[0.0, 0.0, 0.0], test=[0.0, 0.0, 0.0])
    assert evidence.select_step(flat, "second_token_acc") == 300


def test_no_finetuned_result_in_the_store_is_its_step_zero_checkpoint() -> None:
    """Every finetuning run of the committed store (`finetune`, `continued`) reports a step it trained to."""
    from pathlib import Path

    from lab.experiments import plan
    from lab.results import STORE
    from lab.selection import Selection
    for experiment in ("finetune", "continued"):
        measured = evidence.measure_runs(Selection.load(Path("/nonexistent"), experiment, "quick", plan,
                                                        STORE).evals())
        finetuned = measured[measured["finetune.init_from"].fillna("").astype(str) != ""]
        assert len(finetuned) >= 9 and (finetuned["selected_step"] > 0).all(), experiment


def test_both_arms_at_the_floor_are_not_measurable_and_fall_back_to_the_graded_measure() -> None:
    parts = []
    for seed in range(3):
        for n, nll in ((1, 2.0 + 0.01 * seed), (2, 1.5 + 0.02 * seed)):
            c = curve(f"n{n}-s{seed}", seed, n, val=[0.0, 0.0], test=[0.0, 0.0], task="polynomial",
                      **{"eval/answer_nll": [3.0, nll]})
            parts.append(c)
    claim = next(c for c in CLAIMS if c.key == "fig8-n2")
    row = claims.evaluate_claim(claim, pd.concat(parts, ignore_index=True), "quick")
    # lower answer NLL for n=2 is the expected direction: -0.49 [...] is reproduced on the graded measure
    assert row["verdict"] == "not measurable at this floor; graded answer_nll: reproduced"
    assert row["effect"].startswith("answer_nll (graded): -0.49 [") and "primary metric: +0" in row["notes"]


def test_induction_arms_at_or_below_chance_are_a_floor_not_a_finding() -> None:
    """Second-token accuracy's floor is chance, 1/name_vocab: two arms at 0.003-0.014 with 48 names are
    a tie at chance (read on the graded NLL), not "no detectable effect" on the accuracy; one arm above
    chance in a seed lifts the label."""
    claim = next(c for c in CLAIMS if c.key == "fig7-1M")

    def read(a: list[float], b: list[float]) -> dict:
        parts = [curve(f"n{n}-s{seed}", seed, n, val=[v, v], test=[v, v],
                       **{"eval/second_token_nll": [4.0, 3.9 + 0.01 * seed + 0.05 * n], "task_config.name_vocab": 48})
                 for n, values in ((2, a), (1, b)) for seed, v in enumerate(values)]
        return claims.evaluate_claim(claim, pd.concat(parts, ignore_index=True), "quick")
    row = read([0.003, 0.014, 0.008], [0.012, 0.005, 0.02])
    assert row["verdict"].startswith("not measurable at this floor (chance, 0.0208); graded second_token_nll:")
    assert row["effect"].startswith("second_token_nll (graded): ")
    assert "not measurable" not in read([0.003, 0.014, 0.008], [0.012, 0.05, 0.02])["verdict"]
    assert inference.at_bound([0.0, 0.005], 1 / 48, tolerance=0.0, beyond=-1)  # below chance is at it
    assert not inference.at_bound([0.0, 0.005], 1 / 48, tolerance=0.0)  # a two-sided bound is not


def test_the_task_transfer_rows_give_one_reading_per_arm_not_one_floor_three_times() -> None:
    """Three finetuning arms at the exact-match floor against ntp: each row is read on its own arm's answer
    NLL, so two rows never turn the same floor reading into different verdicts."""
    rows = []
    for key in ("tableS6-carve", "tableS6-linear", "tableS6-add"):
        parts = []
        for seed in range(3):
            for label, acc, nll in (("ntp", 0.13, 1.4), ("carve", 0.0, 1.6 + 0.01 * seed),
                                    ("linear", 0.0, 1.3 - 0.01 * seed), ("add", 0.0, 1.4 + 0.001 * seed)):
                parts.append(curve(f"{label}-s{seed}", seed, 4, val=[acc, acc], test=[acc, acc],
                                   task="polynomial", label=label, **{"eval/answer_nll": [2.0, nll]}))
        rows.append(claims.evaluate_claim(next(c for c in CLAIMS if c.key == key),
                                          pd.concat(parts, ignore_index=True), "quick"))
    assert [r["verdict"].split("graded answer_nll: ")[1].split(" (")[0] for r in rows] == \
        ["reproduced", "reversed", "no detectable effect"]
    assert all(r["verdict"].startswith("a at the floor in every seed") for r in rows)


def test_a_solves_it_target_is_a_count_with_an_exact_interval() -> None:
    claim = next(c for c in CLAIMS if c.key == "bn-reverse-8M")
    for values, verdict in (([1.0, 0.0, 0.8], "inconclusive (1 of 3"), ([1.0] * 6, "reproduced"),
                            ([0.0] * 6, "not reproduced")):
        evals = pd.concat([curve(f"s{s}", s, 1, val=[v], test=[v], task="graph", label="reverse-fixed")
                           for s, v in enumerate(values)], ignore_index=True)
        row = claims.evaluate_claim(claim, evals, "quick")
        assert row["verdict"].startswith(verdict), (values, row["verdict"])
    one = claims.evaluate_claim(claim, pd.concat([curve(f"s{s}", s, 1, val=[v], test=[v], task="graph",
                                                        label="reverse-fixed") for s, v in
                                                  enumerate([1.0, 0.0, 0.8])]), "quick")
    assert one["effect"].startswith("1 of 3, 95% CI [0.008, 0.906]")  # Clopper-Pearson, never outside [0, 1]


def test_families_are_declared_on_every_claim_and_holm_adjusts_within_them() -> None:
    assert {c.family for c in CLAIMS} == set(claims.FAMILIES)
    with pytest.raises(ValueError, match="family"):
        claims.Claim("k", "src", "text", "scaling", {"label": "x"})
    table = pd.DataFrame({"key": ["a", "b", "c"], "family": ["paper", "paper", "lab"],
                          "p": [0.01, 0.04, 0.04], "decision": ["reversed", "reproduced", "reproduced"],
                          "prefix": ["", "", ""], "verdict": ["reversed", "reproduced", "reproduced"]})
    out = claims.adjust_families(table)
    # Holm in "paper": 0.01 * 2 = 0.02 stands, 0.04 * 1 -> max(0.02, 0.04) = 0.04 stands; lab alone: 0.04
    assert list(out["p_adjusted"].round(6)) == [0.02, 0.04, 0.04] and list(out["adjusted"]) == list(out["verdict"])
    table.loc[1, "p"] = 0.03
    table.loc[0, "p"] = 0.03
    out = claims.adjust_families(table)
    assert out.loc[0, "adjusted"].startswith("no detectable effect after Holm (family paper)")


def test_no_detectable_effect_gives_the_noncentral_mde_and_an_a_priori_seed_count() -> None:
    row = claims.evaluate_claim(FIG7, arms(0.0, seeds=3, noise=0.02), "quick")
    assert "noncentral t" in row["verdict"] and "(a-priori)" in row["power"]
    from lab.analysis import inference
    mde = float(row["verdict"].split("MDE ")[1].split(" ")[0])
    sd = np.std(list(claims.stats.paired_difference(
        *[claims._by_seed(claims._select(evidence.measure_runs(arms(0.0, 3, 0.02)), claims.n_future(n)), "value")
          for n in (2, 1)], method="t").diffs.values()), ddof=1)
    assert mde == pytest.approx(inference.mde_paired_t(sd, 3), rel=2e-3)


def test_path_star_rows_add_the_item_aware_interval_and_flag_a_fragile_plateau() -> None:
    claim = next(c for c in CLAIMS if c.key == "huang-mtp-8M")
    parts = []
    for seed in range(3):  # validation picks the middle step, where mtp2 is ahead; at the end it is behind
        parts.append(curve(f"m-s{seed}", seed, 2, val=[0.1, 0.9, 0.2], test=[0.1, 0.6 + 0.01 * seed, 0.2],
                           task="graph", label="mtp2-fixed", **{"task_config.eval_graphs": 500,
                           "train.eval_examples": 128, "train.final_eval_examples": 0, "train.steps": 300}))
        parts.append(curve(f"n-s{seed}", seed, 1, val=[0.1, 0.5, 0.5], test=[0.1, 0.5, 0.5 + 0.01 * seed],
                           task="graph", label="next-token-fixed", **{"task_config.eval_graphs": 500,
                           "train.eval_examples": 128, "train.final_eval_examples": 0, "train.steps": 300}))
    row = claims.evaluate_claim(claim, pd.concat(parts, ignore_index=True), "quick")
    assert row["verdict"] == "reproduced" and "item-aware 95% CI [" in row["notes"]
    assert "(128 test items per seed)" in row["notes"]  # selected step 200, before the final full evaluation
    assert "fragile: at the last evaluation" in row["notes"] and "reversed" in row["notes"]


def test_the_experiments_own_the_rows_and_the_ledger_keeps_its_order() -> None:
    """lab.analysis.claims holds no row; every key of its row order is declared by an experiment, and a
    variant (`at_size`, `on_published`) follows its row."""
    assert not [v for v in vars(claims).values() if isinstance(v, claims.Claim)]
    keys = [c.key for c in CLAIMS]
    assert set(claims.LEDGER_ORDER) <= set(keys)
    listed = [k for k in keys if k in claims.LEDGER_ORDER]
    assert listed == list(claims.LEDGER_ORDER)
    assert keys.index("H5-heads-3M") == keys.index("H5-heads") + 1
    assert keys.index("bn-reverse-32M-published") == keys.index("bn-reverse-32M") + 1
    ours = claims.in_ledger_order([*CLAIMS[5:], *CLAIMS[:5]])
    assert [c.key for c in ours] == keys  # the order does not depend on the order declared
