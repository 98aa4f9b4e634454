"""The claims ledger: every claim the lab tests, its measured effect with a 95% CI, and a verdict.

Each `Claim` names its source (the paper, a peer, or the lab's own earlier reading), the
experiment whose runs test it, and how to measure it:

- a *comparison* (`a` against `b`, paired by seed): the mean over seeds of a - b with a
  Student-t 95% CI (`lab.analysis.stats.paired_difference(method="t")`, which keeps its coverage
  at 3-5 seeds) and the verdict of `lab.analysis.stats.verdict` for the expected sign;
- a *target* (`a` alone): the mean over seeds with its t CI and the verdict of
  `lab.analysis.stats.verdict_close` for `target +- tolerance`;
- an *equivalence* (`a` against `b` with a `target`): the paired difference's t CI read by the
  same rule, so "costs nothing" is reproduced only when the whole CI lies inside a margin stated
  before the runs.

Per-run values come from `lab.analysis.evidence.measure_runs`: test metrics at the step chosen on
validation, or tokens-to-formation on validation (censored at the budget). `ledger` turns the
runs into rows and `markdown` into `figures/CLAIMS.md`; no sentence of it is written by hand.
The rows live with the experiments whose runs test them (`experiment(name, claims=...)`); this
module holds the machinery and the helpers rows are built with (`n_future`, `labelled`,
`at_size`, `on_published`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import pandas as pd

from lab.analysis import evidence, inference, stats, verdicts
from lab.analysis.claim import (  # noqa: F401 - the claim type and its helpers, re-exported
    BN,
    CHANCE,
    FAMILIES,
    FINETUNING,
    GRADED,
    LAB,
    PAPER,
    PAPER_CLAIMS,
    PEERS,
    PUBLISHED_GRAPHS,
    Claim,
    at_size,
    labelled,
    n_future,
    on_published,
)
from lab.config import size_value
from lab.selection import RunFilter

# The experiments declare their claims (`Experiment.claims`, `lab.experiments.declared_claims`);
# this is only the row order of figures/CLAIMS.md, kept as the ledger has always listed them.
LEDGER_ORDER = (
    "fig7-1M", "fig7-300K", "figS14", "fig8-n2", "fig8-n4", "figS15-pause", "tableS6-carve",
    "tableS6-linear", "tableS6-add", "fig4-recipe", "tableS7", "bn-next-token", "bn-reverse",
    "bn-reverse-8M", "bn-reverse-32M", "bn-next-token-8M", "bn-teacherless", "bn-teacherless-8M",
    "huang-mtp", "huang-mtp-deep", "huang-mtp-horizon", "huang-mtp-8M", "huang-mtp4-8M",
    "huang-mtp-horizon-8M", "huang-mtp-horizon-32M", "huang-mtp-horizon-32M-matched",
    "bn-next-token-8M-fresh", "bn-reverse-8M-fresh", "bn-teacherless-8M-fresh",
    "huang-mtp-8M-fresh", "huang-mtp4-8M-fresh", "huang-mtp-horizon-8M-fresh",
    "bn-next-token-8M-d5l3", "bn-reverse-36M-d5l3", "lab-reverse-one-lookup",
    "lab-reverse-degree-3", "huang-mtp-horizon-8M-d5l3", "bn-teacherless-8M-d5l3",
    "huang-mtp-8M-d5l3", "fig7-deep", "lab-dynamics", "headline-n2", "headline-n4", "atlas-base-n2",
    "atlas-base-n4", "atlas-attention-n2", "atlas-attention-mentions2", "atlas-readout-n2",
    "atlas-size", "H1-shock", "H1-deficit", "H1-init", "H1-init-deficit", "H2-forming",
    "H2-continued", "S6-task", "H3-size", "H4-conflict", "H5-heads", "H5-weight", "H6-layers",
    "H6-objective", "lab-n4-1M",
)


def in_ledger_order(claims: Iterable[Claim]) -> list[Claim]:
    """The claims in figures/CLAIMS.md's row order: those keyed in `LEDGER_ORDER` by it, any other
    claim right after the claim its experiment declares before it (a variant after its row,
    `at_size`), the claims of experiments with no key there last; ties keep the order given."""
    rank = {key: i for i, key in enumerate(LEDGER_ORDER)}
    last: dict[str, int] = {}
    ranked = []
    for i, claim in enumerate(claims):
        last[claim.experiment] = rank.get(claim.key, last.get(claim.experiment, len(LEDGER_ORDER)))
        ranked.append((last[claim.experiment], i, claim))
    return [claim for _, _, claim in sorted(ranked, key=lambda t: t[:2])]


def _select(runs: pd.DataFrame, filters: dict[str, Any]) -> pd.DataFrame:
    """The rows passing `filters` (`lab.selection.RunFilter`; a frozenset value matches any
    member)."""
    return RunFilter.of(filters).frame(runs)


def _by_seed(runs: pd.DataFrame, column: str) -> dict[int, float]:
    return {int(s): float(v) for s, v in runs.groupby("seed")[column].mean().items()}


RunFile = Callable[[str, str], Any]  # (run_dir, file name) -> the run's extra JSON file, or None


def evaluate_claim(claim: Claim, evals: pd.DataFrame, preset: str,
                   measured: pd.DataFrame | None = None,
                   run_file: RunFile | None = None) -> dict[str, Any]:
    """The claim's ledger row from the experiment's evaluation rows (`lab.runs.load_runs` format),
    or from their `measured` runs (`evidence.measure_runs(evals, claim.metric)`) when the caller has
    them; a claim with a `file` reads its value from each run's file through `run_file`. `verdict`
    is the raw verdict, `adjusted` the same until `ledger` adjusts it within the claim's family;
    `p` is the raw p-value."""
    # a file's metric need not be among the evaluation rows: runs are found by their primary metric
    metric = None if claim.file else claim.metric
    runs = _select(evidence.measure_runs(evals, metric) if measured is None else measured,
                   claim.where)
    column = claim.measure
    if claim.file:
        runs, column = _file_values(runs, claim.file, claim.metric, run_file), "file_value"
    if claim.trend_file:
        x = _file_values(runs, claim.trend_file, claim.trend, run_file, keep_missing=True)
        runs = runs.assign(**{claim.trend: x["file_value"]})
    reading, compared_runs, prefix = _read(claim, runs, column, evals)
    notes = list(reading.notes)
    # a noisy metric read at a chosen step: also at the last one
    if column == "value" and len(runs):
        last, _, last_prefix = _read(claim, runs, "final_value", evals)
        fragile = inference.plateau_label(reading.verdict, last.verdict)
        notes.append(f"{fragile + ': ' if fragile else ''}at the last evaluation "
                     f"{last.shown}, {last_prefix}{last.verdict}")
    compared = _compared(claim)
    return {"key": claim.key, "family": claim.family, "source": claim.source,
            "claim": claim.statement,
            "measure": _measure_name(claim), "compared": compared, "effect": reading.shown,
            "seeds": reading.seeds, "size": _one(compared_runs, "size"),
            "budget": _budget(compared_runs),
            "verdict": prefix + reading.verdict, "decision": reading.verdict, "prefix": prefix,
            "p": reading.p, "adjusted": prefix + reading.verdict, "power": reading.power or "-",
            "notes": "; ".join(notes) or "-",
            "command": f"python -m lab.sweep {claim.experiment} --preset {preset}"}


def _file_values(runs: pd.DataFrame, file: str, metric: str | None, run_file: RunFile | None,
                 keep_missing: bool = False) -> pd.DataFrame:
    """The runs that have `file` with `metric` (default: the task's primary) in its "metrics", that
    value in column `file_value`; the others are left out (not scored yet), or kept with NaN when
    `keep_missing`."""
    values = []
    for run_dir, task in zip(runs["run_dir"], runs["task"]) if len(runs) else []:
        data = run_file(run_dir, file) if run_file else None
        value = (data or {}).get("metrics", {}).get(metric or evidence.primary_metric(task))
        values.append(math.nan if value is None else float(value))
    runs = runs.assign(file_value=values)
    return runs if keep_missing else runs[runs["file_value"].notna()]


def _compared(claim: Claim) -> str:
    """What the effect compares, in words."""
    if claim.b is None:
        return f"{claim.target:g} +- {claim.tolerance:g}"
    if not math.isnan(claim.target):
        return f"a - b within {claim.target:g} +- {claim.tolerance:g}"
    expected = ", expected " + ("> 0" if claim.expected_sign > 0 else "< 0")
    if claim.trend:
        against = "per 10x size" if claim.trend == "size" else f"against a's {claim.trend}"
        return f"slope of a - b {against}{expected}"
    return "a - b" + expected


def _read(claim: Claim, runs: pd.DataFrame, column: str,
          evals: pd.DataFrame) -> tuple[verdicts.Reading, pd.DataFrame, str]:
    """The claim read on `column` of its runs: (reading, the runs compared, a verdict prefix naming
    a floor or ceiling whose verdict came from the graded measure)."""
    a = _select(runs, claim.a) if len(runs) else runs
    b = _select(runs, claim.b) if claim.b and len(runs) else None
    arms = pd.concat([a, b]) if b is not None else a
    if claim.trend:
        effect = _trend(claim, runs, column)
        reading = verdicts.Reading(_trend_effect(effect, claim.trend),
                                   stats.verdict(effect, claim.expected_sign),
                                   inference.slope_p(*_trend_xy(claim, runs, column)), effect.n)
        seeds = {s for s, _ in effect.diffs}
        return reading, arms[arms["seed"].isin(seeds)] if len(arms) else arms, ""
    if column in evidence.FORMED:
        a_iv, b_iv = (_intervals(part, column) for part in (a, b if b is not None else a[:0]))
        reading = verdicts.formation_reading(a_iv, b_iv, claim.expected_sign)
        both = a_iv.keys() & b_iv.keys()
        return reading, arms[arms["seed"].isin(both)] if len(arms) else arms, ""
    a_values = _by_seed(a, column) if len(a) else {}
    b_values = (_by_seed(b, column) if len(b) else {}) if b is not None else None
    seeds = set(a_values) if b_values is None else a_values.keys() & b_values.keys()
    compared = arms[arms["seed"].isin(seeds)] if len(arms) else arms
    metric = claim.metric or (evidence.primary_metric(str(compared["task"].iloc[0]))
                              if len(compared) else "")
    bounded = bool(metric) and verdicts.proportion(metric)
    items = _test_items(compared, column, metric) if bounded else None
    if b_values is None:
        if bounded and claim.target in (0.0, 1.0):
            reading = verdicts.binary_reading(a_values, claim.target, claim.tolerance)
        else:
            effect = stats.paired_difference(a_values, dict.fromkeys(a_values, 0.0), method="t")
            reading = verdicts.Reading(stats.format_effect(effect).removeprefix("+"),
                                       stats.verdict_close(
                effect.mean, effect.lo, effect.hi, claim.target, claim.tolerance), seeds=effect.n)
        if items and reading.seeds:
            reading.notes.append(verdicts.item_note(a_values, None, items))
        return reading, compared, ""
    if not math.isnan(claim.target):  # an equivalence claim: a - b within target +- tolerance
        effect = stats.paired_difference(a_values, b_values, method="t")
        reading = verdicts.Reading(stats.format_effect(effect), stats.verdict_close(
            effect.mean, effect.lo, effect.hi, claim.target, claim.tolerance), seeds=effect.n)
        return reading, compared, ""
    reading = verdicts.t_reading(a_values, b_values, claim.expected_sign)
    if items and reading.seeds:
        reading.notes.append(verdicts.item_note(a_values, b_values, items))
    bound = (verdicts.bound_label(a_values, b_values, items, floor=_chance(compared, metric))
             if bounded and reading.seeds else "")
    if not bound:
        return reading, compared, ""
    graded = _graded(claim, compared, column, evals)
    if graded is None and bound.startswith("not measurable"):
        return verdicts.Reading(reading.shown, bound, math.nan, reading.seeds, "-",
                                reading.notes), \
            compared, ""
    if graded is None:  # one arm at the bound: the difference is a bound, read as it is
        return reading, compared, f"{bound} (no graded measure logged; the difference is a bound): "
    metric, graded_reading = graded
    graded_reading.notes = [f"{claim.metric or 'primary metric'}: {reading.shown}", *reading.notes]
    graded_reading.shown = f"{metric} (graded): {graded_reading.shown}"
    return graded_reading, compared, f"{bound}; graded {metric}: "


def _graded(claim: Claim, runs: pd.DataFrame, column: str,
            evals: pd.DataFrame) -> tuple[str, verdicts.Reading] | None:
    """The claim read on its graded measure (lower is better, so the expected sign turns), at the
    same step rule as `column`; None when the runs do not log it."""
    metric = claim.graded or evidence.graded_metric(str(runs["task"].iloc[0]))  # the runs' task
    if metric is None or evals.empty or column not in ("value", "final_value", "first_value",
                                                       "early_value"):
        return None
    graded = _select(evidence.measure_runs(evals, metric), claim.where)
    if graded.empty:
        return None
    a, b = (_by_seed(_select(graded, arm), column) for arm in (claim.a, claim.b))
    if not (a.keys() & b.keys()):
        return None
    return metric, verdicts.t_reading(a, b, -claim.expected_sign)


def _intervals(part: pd.DataFrame, column: str) -> dict[int, inference.Interval]:
    """Per seed, the interval a formation-type measure lies in (the read-out: formation minus the
    attention's formation, only where the attention formed)."""
    out: dict[int, inference.Interval] = {}
    for row in part.to_dict("records") if len(part) else []:
        seed, cadence = int(row["seed"]), float(row["cadence"])
        if column == "readout_tokens":
            if not row["attention_formed"] or math.isnan(row["formation_tokens"]):
                continue
            out[seed] = verdicts.difference(
                inference.formation_interval(row["formation_tokens"], bool(row["formed"]), cadence),
                inference.formation_interval(row["attention_tokens"], True, cadence))
        elif not math.isnan(row[column]):
            flag = evidence.FORMED[column]
            out[seed] = inference.formation_interval(row[column], bool(row[flag]), cadence)
    return out


def _chance(runs: pd.DataFrame, metric: str) -> float:
    """The compared runs' chance level of `metric` (`CHANCE`; the highest when they differ), else 0."""
    column = CHANCE.get((str(runs["task"].iloc[0]), metric)) if len(runs) else None
    if column is None or column not in runs or runs[column].isna().any():
        return 0.0
    return float(1 / runs[column].min())


def _test_items(runs: pd.DataFrame, column: str, metric: str) -> int | None:
    """The fewest test items any compared run was scored on at the step `column` reads, where the
    runs record it: the published file (20,000 graphs); path-star's evaluation graphs, or
    polynomial's in-domain expressions (one set per operation count), under the trainer's caps
    (`train.eval_examples`, `train.final_eval_examples` at the planned last step)."""
    if not len(runs):
        return None
    if column == "file_value":
        return PUBLISHED_GRAPHS
    tasks = set(runs["task"])
    if tasks == {"graph"} and metric == "exact_path_acc":
        size, sets = runs.get("task_config.eval_graphs"), 1
    elif (tasks == {"polynomial"} and metric == "exact_match/in_domain"
          and "task_config.max_ops" in runs):
        size = runs.get("task_config.eval_size")
        sets = np.minimum(runs["task_config.max_ops"],
                          runs.get("task_config.eval_ops", runs["task_config.max_ops"]))
    else:
        return None
    caps = ("train.eval_examples", "train.final_eval_examples", "train.steps")
    steps = runs.get("selected_step" if column == "value"
                     else "final_step" if column == "final_value" else "")
    if size is None or steps is None or not all(c in runs for c in caps):
        return None
    cap = runs["train.final_eval_examples"].where(steps == runs["train.steps"],
                                                  runs["train.eval_examples"])
    items = sets * size.where(cap.fillna(0) <= 0, np.minimum(size, cap))
    return int(items.min()) if items.notna().all() else None


def _trend_effect(effect: stats.PairedResult, trend: str) -> str:
    pairs = " seed pairs over sizes)" if trend == "size" else " seed pairs)"
    return stats.format_effect(effect).replace(" seeds)", pairs).replace(" seed)", " seed pair)")


def _trend_points(claim: Claim, runs: pd.DataFrame,
                  column: str) -> tuple[dict[tuple[int, str], float], list[float]]:
    """Per (seed, size) with both arms, a - b, and its x: log10 of the model size (`trend="size"`)
    or arm a's value of the `measure_runs` column `claim.trend`."""
    diffs: dict[tuple[int, str], float] = {}
    x: list[float] = []
    for size, part in runs.groupby("size") if len(runs) else []:
        a, b = (_by_seed(_select(part, arm), column) for arm in (claim.a, claim.b))
        along = _by_seed(_select(part, claim.a), claim.trend) if claim.trend != "size" else {}
        for seed in sorted(a.keys() & b.keys()):
            if claim.trend != "size" and not math.isfinite(along.get(seed, math.nan)):
                continue  # no x for this seed (its file not measured yet)
            diffs[(seed, size)] = a[seed] - b[seed]
            x.append(math.log10(size_value(size)) if claim.trend == "size" else along[seed])
    return diffs, x


def _trend_xy(claim: Claim, runs: pd.DataFrame, column: str) -> tuple[list[float], list[float]]:
    diffs, x = _trend_points(claim, runs, column)
    return x, list(diffs.values())


def _trend(claim: Claim, runs: pd.DataFrame, column: str) -> stats.PairedResult:
    """The least-squares slope of the per-seed difference a - b against `_trend_points`' x, with its
    t CI (`stats.slope_ci`); `diffs` maps (seed, size) to a - b."""
    diffs, x = _trend_points(claim, runs, column)
    slope, lo, hi = stats.slope_ci(x, list(diffs.values()))
    return stats.PairedResult(slope, lo, hi, len(diffs) if not math.isnan(slope) else 0, diffs)


def _measure_name(claim: Claim) -> str:
    metric = claim.metric or "primary metric"
    if claim.file and claim.file_means:
        return f"{metric} {claim.file_means}"
    if claim.file:
        return f"{metric} in each run's {claim.file}"
    if claim.measure == "formation_tokens":
        return "tokens to formation (validation; censored at the budget)"
    if claim.measure == "readout_tokens":
        return ("tokens from the copy attention's formation to induction's (validation; censored "
                "at the budget)")
    if claim.measure == "attention_tokens":
        return (f"tokens until the copy attention reaches {evidence.ATTENTION_THRESHOLD:g} "
                "(validation stories; censored at the run's end)")
    if claim.measure == "final_value":  # a loss, not a capability: no step is chosen for it
        return f"{metric} at the last evaluation"
    if claim.measure == "first_value":
        return f"{metric} at step 0 (before any update)"
    if claim.measure == "early_value":
        return f"{metric} at the first evaluation after step 0"
    return f"test {metric} at the validation-selected step"


def _one(runs: pd.DataFrame, column: str) -> str:
    values = sorted({str(v) for v in runs[column]},
                    key=lambda v: (size_value(v), v) if column == "size" else (0, v)) \
        if column in runs and len(runs) else []
    return ", ".join(values) if values else "-"


def _budget(runs: pd.DataFrame) -> str:
    if "budget" not in runs or not len(runs):
        return "-"
    tokens = sorted({int(t) for t in runs["budget"]})
    return ", ".join(f"{t / 1e6:.2g}M" for t in tokens)


def ledger(load: Callable[[str], pd.DataFrame], preset: str, claims: Iterable[Claim],
           run_file: Callable[[str, str, str], Any] | None = None) -> pd.DataFrame:
    """One row per claim, in the order given (the experiments declare them: `Experiment.claims`).
    `load(experiment)` returns that experiment's evaluation rows (may be empty);
    `run_file(experiment, run_dir, name)` a run's extra JSON file, for claims with a `file`."""
    frames: dict[str, pd.DataFrame] = {}
    # each experiment's runs measured once per metric
    measured: dict[tuple[str, str | None], pd.DataFrame] = {}
    rows = []
    for claim in claims:
        if claim.experiment not in frames:
            frames[claim.experiment] = load(claim.experiment)
        # as `evaluate_claim` measures
        key = (claim.experiment, None if claim.file else claim.metric)
        if key not in measured:
            measured[key] = evidence.measure_runs(frames[claim.experiment], key[1])
        files = (lambda d, n, e=claim.experiment: run_file(e, d, n)) if run_file else None
        rows.append(evaluate_claim(claim, frames[claim.experiment], preset, measured[key], files))
    return adjust_families(pd.DataFrame(rows))


def adjust_families(table: pd.DataFrame) -> pd.DataFrame:
    """The ledger with `p_adjusted` and `adjusted`: each row's raw p-value adjusted by Holm's method
    within its family (`inference.adjust`); rows without a p-value (targets) keep their verdict."""
    if table.empty:
        return table
    out = inference.adjust(zip(table["key"], table["family"], table["p"], table["decision"]))
    return table.assign(p_adjusted=[o.p_adjusted for o in out],
                        adjusted_decision=[o.verdict for o in out],
                        adjusted=[prefix + o.verdict for prefix, o in zip(table["prefix"], out)])


RULES = f"""\
{inference.LEDGER_RULES}

How each row is read (`lab/analysis/claims.py`, `lab/analysis/verdicts.py`):
- Families, declared on each claim: {", ".join(FAMILIES)}. Holm's step-down adjustment runs over
  the rows of a family that have a p-value (comparisons and slopes; targets have none and are in
  no family). *reproduced* in the text means the adjusted verdict: a raw verdict whose adjusted
  p-value is not below 0.05 reads "no detectable effect after Holm".
- Values are test metrics at the step chosen on the validation set (never a finetuned run's step 0,
  the checkpoint before any update; a flat validation curve gives its last step), the last
  evaluation where the measure says so, or Bachmann & Nagarajan's published 20,000 test graphs
  scored at each run's final checkpoint.
- Tokens to formation: bounds on the mean difference over every placement inside the evaluation
  intervals and every formation time after the budget, the exact sign-flip p at both extremes, the
  seeds formed per arm (exact McNemar test); the raw p is the larger of the two. With 3 seeds the
  smallest possible p is 0.25: {verdicts.SIGN_FLIP_SEEDS} seeds are the fewest that can give a \
verdict.
- A target of exactly 0 or 1 on a proportion ("solves it") is a binary outcome per seed: in the
  band or not. The count has an exact Clopper-Pearson 95% CI; *reproduced* when it lies above 1/2
  (most seeds), *not reproduced* below 1/2, else *inconclusive* ({verdicts.seeds_for_majority()}
  seeds of one outcome are the fewest that decide). Other targets keep the t interval.
- An equivalence ("costs nothing": a - b within a margin stated before the runs) reads the paired
  t interval: *reproduced* when it lies inside the margin, *not reproduced* when it lies outside,
  else *inconclusive*; like targets, it has no p-value and is in no family.
- Floors and ceilings: an arm whose proportion sits at its floor (the metric's chance level,
  1/name_vocab for induction's second-token accuracy, else 0) or below it, or at 1, in every
  seed, within 0.01 or within the test set's exact binomial error where its size is known, has a
  bound, not a value. Both arms there: *not measurable at this floor*; one arm: the difference
  is a bound. Either way the verdict is the
  claim's graded measure's (answer NLL, path NLL, second-token NLL; lower is better), read by
  the same rule and named in the verdict.
- Power: the MDE of "no detectable effect" is the noncentral-t one (80% power, two-sided 0.05);
  the power column gives the power at the observed effect and the a-priori seed count that would
  give 80% for the observed effect and spread (an observed sd at 3 seeds is itself uncertain by
  a factor of 0.52 to 6.3: plan from a stated sd).
- The seed-level t intervals exclude test-item sampling: they treat each test set as fixed. Where a
  row knows its per-seed test-set size (path-star graphs, the published file), the notes add the
  item-aware interval (seed variance plus each arm's binomial item variance p(1 - p) / items).
- A claim read at the validation-selected step is also read at the last evaluation (notes); a
  verdict that differs there is labelled *fragile*."""

COLUMNS = ["key", "family", "source", "claim", "measure", "compared", "effect", "seeds", "size",
           "budget", "verdict", "p", "adjusted", "power", "notes", "command"]


def _cell(row: pd.Series, column: str) -> str:
    value = row[column]
    if column in ("p", "p_adjusted"):
        return "-" if value is None or math.isnan(value) else f"{value:.3g}"
    if column == "adjusted":
        p = row.get("p_adjusted", math.nan)
        return f"{value} (Holm p {p:.3g})" if p is not None and not math.isnan(p) else value
    return str(value).replace("|", "\\|")


def markdown(table: pd.DataFrame, preset: str, source: str) -> str:
    """`figures/CLAIMS.md` from the ledger rows: raw verdict and p-value, Holm-adjusted verdict."""
    lines = [f"# Claims tested by mtp-lab ({preset} preset)", "",
             f"Generated by `python -m lab.figures --preset {preset}` from {source}; do not edit "
             "by hand.", "",
             RULES, "", "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for _, row in table.iterrows():
        cells = [_cell(row, c) if c in row else "-" for c in COLUMNS]
        cells[-1] = f"`{cells[-1]}`"
        lines.append("| " + " | ".join(cells) + " |")
    for column, name in (("decision", "Raw verdicts"),
                         ("adjusted_decision", "After Holm within families")):
        if column in table:
            counts = table[column].str.split(r"\s*\(", regex=True).str[0].value_counts()
            lines += ["",
                      f"{name}: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) + "."]
    graded = [k for k, p in zip(table["key"], table.get("prefix", [])) if p]
    if graded:
        lines += ["", "Read at a floor or ceiling (verdict from the graded measure, or a bound): "
                  + ", ".join(graded) + "."]
    fragile = [k for k, n in zip(table["key"], table.get("notes", [])) if "fragile:" in str(n)]
    if fragile:
        lines += ["",
                  "Fragile (the verdict differs at the last evaluation): "
                  + ", ".join(fragile) + "."]
    return "\n".join(lines) + "\n"
