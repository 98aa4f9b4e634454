"""From learning curves to per-run numbers that may be reported: selection on validation only.

Every evaluation row of a run holds the task's metrics twice: `val/<metric>` on the validation
set and `eval/<metric>` on the test set (see `tasks.base.SPLITS`). A run's reported number is
its test metric at the step chosen on validation (`select_step`: the first step with the best
validation primary metric, never a finetuned run's step 0 and never the first of a flat curve), or at
its last evaluation when the run logged no validation metrics
(runs from before the split existed). Formation is detected on validation too. Nothing here
ever reads a test metric to choose anything.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from lab.analysis import stats

VAL, TEST = "val/", "eval/"

# Absolute formation thresholds on the validation primary metric, per task: the accuracy at
# which the capability counts as formed. Induction: a third of repeated second tokens right
# (chance is about 1/name_vocab); polynomial: a tenth of in-domain answers exactly right;
# path-star: exact paths above the 1/d = 0.5 Clever Hans ceiling of G(2, l).
FORMATION_THRESHOLD = {"induction": 0.3, "polynomial": 0.1, "graph": 0.6}
# The copy attention of the induction circuit (`lab.interp.copy_attention`: the best head's
# attention from a
# repeated name's first token to the token after its earlier mention, on validation stories) counts
# as formed
# at 0.1, about half the highest mean the 1M atlas runs reach (0.19); uniform attention over a
# 64-token story
# is below 0.03. `attention_tokens` is when it forms: the attention half of the circuit, before the
# read-out.
ATTENTION, ATTENTION_THRESHOLD = "interp/copy_attention_max", 0.1
# measure -> its `formed` flag
FORMED = {"formation_tokens": "formed", "attention_tokens": "attention_formed",
          "readout_tokens": "formed"}


def primary_metric(task: str) -> str:
    """The task's primary metric name (without a split prefix)."""
    from tasks import REGISTRY
    return REGISTRY[task].primary_metric


def graded_metric(task: str) -> str | None:
    """The graded counterpart of the task's primary metric (`claim.GRADED`; lower is better). A task
    whose primary metric is one of its components' (`mixture`: `polynomial/exact_match/in_domain`)
    gets that component's, under the same prefix (`polynomial/answer_nll`); None when there is none."""
    from lab.analysis.claim import GRADED
    if task in GRADED:
        return GRADED[task]
    component, _, rest = primary_metric(task).partition("/")
    return f"{component}/{GRADED[component]}" if rest and component in GRADED else None


def select_step(curve: pd.DataFrame, primary: str) -> int:
    """Step chosen for reporting: the first with the best `val/<primary>`, else the last step.

    Never a step before training when the choice is empty: a finetuned run (`finetune.init_from`
    set) never reports its step 0, the checkpoint before any update, and a validation curve that
    is flat (every evaluation tied, e.g. all at the floor) gives its last step, not its first.
    Reads only validation columns (the test is what is reported, never what is chosen on)."""
    curve = curve.sort_values("step")
    column = VAL + primary
    if column not in curve or curve[column].notna().sum() == 0:
        return int(curve["step"].iloc[-1])
    source = curve["finetune.init_from"].iloc[0] if "finetune.init_from" in curve else None
    if isinstance(source, str) and source and (curve["step"] > 0).any():
        curve = curve[curve["step"] > 0]
    values = curve[column].dropna()
    if values.empty or values.nunique() == 1:
        return int(curve["step"].iloc[-1])
    return int(curve.loc[values.idxmax(), "step"])


def formation(curve: pd.DataFrame, primary: str, threshold: float) -> tuple[float, bool]:
    """Tokens at the first evaluation whose validation primary metric reaches `threshold`;
    (budget, False) when it never does (censored at the run's budget). Runs without
    validation metrics give (nan, False)."""
    column = VAL + primary
    if column not in curve or curve[column].isna().all():
        return math.nan, False
    return stats.formation_tokens(curve, column, threshold)


def _column(metric: str) -> str:
    """The logged column of `metric`: per-head validation-batch metrics as they are, task metrics on
    test."""
    return metric if metric.startswith(("head", "train/")) else TEST + metric


def _budget(curve: pd.DataFrame) -> float:
    """The tokens a run was allowed: its planned steps at its tokens per step (a run that stopped
    early, at formation or for patience, trained fewer), else the tokens it trained."""
    last = curve.iloc[-1]
    steps = last.get("train.steps")
    if steps is None or pd.isna(steps) or not last["step"]:
        return float(curve["tokens"].max())
    return float(last["tokens"]) / float(last["step"]) * float(steps)


def measure_runs(evals: pd.DataFrame, metric: str | None = None) -> pd.DataFrame:
    """One row per run: its config columns, `selected_step`, `value` (test `metric` at that step;
    `first_value` at the first evaluation (step 0 of a finetuning run: the shock), `early_value` at
    the second (the first after updates: the early shock of heads that change nothing at step 0),
    `final_value` at the last;
    default the task's primary; `head{i}/...` metrics as logged), `budget` (tokens the run was
    allowed), `formed`/`formation_tokens` (on validation, thresholds of `FORMATION_THRESHOLD`; a run
    that never formed counts at its last evaluation), `attention_formed`/`attention_tokens` (the
    same for the copy attention, `ATTENTION`; NaN when not logged), `readout_tokens` (formation
    minus attention tokens: how long the read-out takes once the attention is there; NaN unless the
    attention formed; a lower bound when the capability did not), `cadence` (the tokens between
    evaluations, the resolution of both), `auc` (of the reported metric's curve) and `align_cos`
    (the mean over evaluations and heads 2..n of the cosine between head k's and head 1's trunk
    gradient, `lab.alignment`; NaN when not logged)."""
    rows: list[dict[str, Any]] = []
    if evals.empty:
        return pd.DataFrame(rows)
    for _, curve in evals.groupby("run_name", sort=True):
        curve = curve.sort_values("step")
        first = curve.iloc[0]
        task = first["task"]
        primary = primary_metric(task)
        name = _column(metric or primary)
        if name not in curve:
            continue
        step = select_step(curve, primary)
        at = curve[curve["step"] == step].iloc[-1]
        tokens, formed = formation(curve, primary, FORMATION_THRESHOLD.get(task, math.inf))
        attention, attention_formed = (stats.formation_tokens(curve, ATTENTION, ATTENTION_THRESHOLD)
                                       if ATTENTION in curve and curve[ATTENTION].notna().any() else (math.nan, False))
        config = {k: v for k, v in first.items() if not k.startswith((VAL, TEST, "head", "train/"))
                  and k not in ("step", "tokens", "wall_s")}
        cosines = [c for c in curve.columns if c.startswith("align/cos/")]
        rows.append({**config, "selected_step": step, "value": float(at[name]),
                     "align_cos": float(curve[cosines].mean(axis=1).mean()) if cosines else math.nan,
                     "first_value": float(curve[name].iloc[0]),
                     "final_value": float(curve[name].iloc[-1]),
                     "final_step": int(curve["step"].iloc[-1]),
                     "early_value": float(curve[name].iloc[1]) if len(curve) > 1 else math.nan,
                     "budget": _budget(curve), "formed": formed, "formation_tokens": tokens,
                     "attention_formed": attention_formed, "attention_tokens": attention,
                     "readout_tokens": tokens - attention if attention_formed else math.nan,
                     "cadence": float(curve["tokens"].diff().median()) if len(curve) > 1 else math.nan,
                     "auc": stats.learning_curve_auc(curve["tokens"], curve[name])})
    return pd.DataFrame(rows)


def paired_table(df: pd.DataFrame, by: list[str], arm: str, base: Any, value: str) -> pd.DataFrame:
    """The difference to a baseline behind every "variant minus baseline" table: per group of the
    `by` columns and per `arm` value other than `base`, the mean over seeds of (arm - base) in
    `value`, paired by seed (`stats.paired_difference`, Student t), its 95% CI (`lo`, `hi`; none
    below 2 seeds), the smallest and largest per-seed difference and the seeds paired. Runs of one
    arm and seed are averaged first; a group without the base arm gives no rows. `result` holds
    each row's `stats.PairedResult`."""
    columns = [*by, arm, "mean", "lo", "hi", "min", "max", "seeds", "result"]
    rows: list[dict[str, Any]] = []
    groups = df.groupby(by, sort=True, dropna=False) if by else [((), df)]
    for key, part in groups:
        key = key if isinstance(key, tuple) else (key,)
        per_arm = {a: {int(s): float(v) for s, v in p.groupby("seed")[value].mean().items()}
                   for a, p in part.groupby(arm, sort=True)}
        if base not in per_arm:
            continue
        for a, values in per_arm.items():
            if a == base:
                continue
            r = stats.paired_difference(values, per_arm[base], method="t")
            diffs = list(r.diffs.values())
            rows.append({**dict(zip(by, key)), arm: a, "mean": r.mean, "lo": r.lo, "hi": r.hi,
                         "min": min(diffs, default=math.nan), "max": max(diffs, default=math.nan),
                         "seeds": r.n, "result": r})
    return pd.DataFrame(rows, columns=columns)


def paired_effects(measured: pd.DataFrame, cell: list[str], arm: str = "model.n_future",
                   base: Any = 1,
                   measure: str = "value") -> pd.DataFrame:
    """Per cell (equal values of the `cell` columns) and per `arm` value other than `base`: the mean
    over seeds of (arm - base) in `measure` (a `measure_runs` column), paired by seed
    (`paired_table`), with its Student-t 95% CI, the seed count, the minimal detectable effect and
    the verdict for "differs from base".

    `formation_tokens` (or `attention_tokens`) of a run that never formed is its budget (censored),
    so a difference in it understates how much later the censored arm is
    (`stats.paired_formation_difference`); `formed`/`formed_base` are the shares of each arm's seeds
    that formed what the measure times."""
    rows: list[dict[str, Any]] = []
    if measured.empty:
        return pd.DataFrame(rows)
    flag = FORMED.get(measure, "formed")
    for key, part in measured.groupby(cell, sort=True, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        formed = {a: float(p[flag].mean()) for a, p in part.groupby(arm)} if flag in part else {}
        for row in paired_table(part, [], arm, base, measure).to_dict("records"):
            r, a = row["result"], row[arm]
            verdict = "not run" if r.n == 0 else stats.verdict(r, 1).replace("reproduced",
                                                                             "higher").replace(
                "reversed", "lower")
            if measure in FORMED and r.n and formed.get(a) == formed.get(base) == 0:
                verdict = "neither arm formed (both censored at the budget)"
            rows.append({**dict(zip(cell, key)), arm: a, "measure": measure, "mean": r.mean,
                         "lo": r.lo,
                         "hi": r.hi, "seeds": r.n, "mde": r.mde, "formed": formed.get(a, math.nan),
                         "formed_base": formed.get(base, math.nan), "verdict": verdict})
    return pd.DataFrame(rows)
