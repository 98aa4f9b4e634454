"""`python -m lab.figures`: regenerate every figure, figures/README.md and figures/RESULTS.md from runs/.

    python -m lab.figures [--preset quick|paper] [--runs DIR] [--out figures/] [--format png|pdf|svg]
                          [--run-missing] [--workers K]

Each figure belongs to one experiment of `lab.experiments`. Its runs are the experiment's
planned runs for the preset (`lab.experiments.plan`) that are complete under
`RUNS/<experiment>/`: a run matches a planned config when every config field both share is
equal (so runs stay usable when a later version adds a config field), with `@run` references
compared without their hash. A figure with no complete run is reported as missing in
README.md, with the command that produces its runs, and any stale image of it is removed; a
figure with some of its runs says how many. Numbers come only from the runs: each figure's
table in RESULTS.md is what the figure plots (`lab.plots.*_table`), and its sentences are
computed from those tables. `--run-missing` first runs every experiment that is not
complete through `lab.sweep` (heavy: minutes to hours; see the experiment's preset).

Exit codes: 0 (also when some figures are missing), 2 bad input, 1 an unexpected failure.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from lab import plots, runs
from lab.config import RunConfig
from tasks import ConfigError

FORMATS = ("png", "pdf", "svg")
DPI = 150


class Missing(Exception):
    """A figure cannot be drawn: no (suitable) complete run. The message says why."""


# ----- which runs a figure may use -----
def _comparable(config: dict[str, Any]) -> dict[str, Any]:
    """Flattened config with `@run name` references stripped of their hash."""
    flat = runs.flatten(config)
    return {k: re.sub(r"-[0-9a-f]{8}(?=/|$)", "", v) if isinstance(v, str) and v.startswith("@") else v
            for k, v in flat.items()}


def _matches(found: dict[str, Any], planned: dict[str, Any]) -> bool:
    return all(found[k] == planned[k] for k in found.keys() & planned.keys())


@dataclass
class Selection:
    """The planned runs of one experiment and preset, and those of them that are complete."""

    experiment: str
    preset: str
    planned: list[dict[str, Any]]  # flattened planned configs
    summaries: pd.DataFrame  # one row per complete planned run (`load_summaries` columns)
    root: Path
    reason: str = ""  # why nothing could be planned, if so
    _evals: pd.DataFrame | None = field(default=None, repr=False)

    @classmethod
    def load(cls, root: Path, experiment: str, preset: str) -> Selection:
        from lab.experiments import plan
        try:
            configs: list[RunConfig] = plan(experiment, preset)
        except ConfigError as e:
            return cls(experiment, preset, [], pd.DataFrame(), root, reason=str(e))
        planned = [_comparable(c.to_dict()) for c in configs]
        chosen: list[str] = []
        free = list(range(len(planned)))
        for run_dir in runs.iter_run_dirs(root / experiment):
            if runs.run_state(run_dir) != "complete":
                continue
            found = _comparable(runs.read_json(run_dir / runs.CONFIG))
            hit = next((i for i in free if _matches(found, planned[i])), None)
            if hit is not None:
                free.remove(hit)
                chosen.append(str(run_dir))
        summaries = runs.load_summaries(root / experiment) if chosen else pd.DataFrame()
        if chosen:
            summaries = summaries[summaries["run_dir"].isin(chosen)].reset_index(drop=True)
        return cls(experiment, preset, planned, summaries, root)

    def where(self, **fields: Any) -> Selection:
        """The runs (planned and complete) whose config fields equal `fields` (keys as in
        `load_summaries`, with `__` for `.`: `model__n_future=1`)."""
        items = {k.replace("__", "."): v for k, v in fields.items()}
        planned = [p for p in self.planned if all(p.get(k) == v for k, v in items.items())]
        summaries = self.summaries
        for k, v in items.items():
            summaries = summaries[summaries[k] == v] if k in summaries else summaries.iloc[0:0]
        return Selection(self.experiment, self.preset, planned, summaries.reset_index(drop=True), self.root,
                         self.reason)

    @property
    def complete(self) -> int:
        return len(self.summaries)

    @property
    def seeds(self) -> list[int]:
        return sorted(int(s) for s in self.summaries["seed"].unique()) if self.complete else []

    def evals(self) -> pd.DataFrame:
        """Every evaluation row (`load_runs`) of the selected runs."""
        if self._evals is None:
            every = runs.load_runs(self.root / self.experiment) if self.complete else pd.DataFrame()
            self._evals = every[every["run_dir"].isin(set(self.summaries["run_dir"]))] if self.complete else every
        return self._evals

    def require(self, what: str) -> None:
        if self.reason:
            raise Missing(self.reason)
        if not self.complete:
            raise Missing(f"no complete {what} run of `{self.experiment}` (preset {self.preset}; "
                          f"{len(self.planned)} planned)")


# ----- figure registry -----
@dataclass
class Output:
    figure: Figure
    tables: list[tuple[str, pd.DataFrame]]
    sentences: list[str]
    used: Selection  # the runs behind the figure
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Spec:
    key: str  # file name and anchor, e.g. "1a_induction_vs_size"
    title: str
    experiment: str
    caption: str
    build: Callable[[Selection], Output]


FIGURES: list[Spec] = []


def figure(key: str, title: str, experiment: str, caption: str):
    def register(build: Callable[[Selection], Output]) -> Callable[[Selection], Output]:
        FIGURES.append(Spec(key, title, experiment, caption, build))
        return build
    return register


# ----- sentences computed from the numbers -----
def fmt(value: float) -> str:
    return "n/a" if value is None or (isinstance(value, float) and np.isnan(value)) else f"{value:.3f}"


def gap_sentences(table: pd.DataFrame, x: str, what: str, x_name: Callable[[Any], str] = str,
                  hue: str = "model.n_future", base: int = 1) -> list[str]:
    """For each head count n > base: the mean difference to n = base at every x, and how often it is positive."""
    pivot = table.pivot_table(index=x, columns=hue, values="mean")
    if x == "size":
        pivot = pivot.loc[sorted(pivot.index, key=plots.size_key)]
    if base not in pivot:
        return []
    out = []
    for n in [c for c in pivot.columns if c != base]:
        diff = (pivot[n] - pivot[base]).dropna()
        if diff.empty:
            continue
        parts = ", ".join(f"{d:+.3f} at {x_name(i)}" for i, d in diff.items())
        higher = int((diff > 0).sum())
        out.append(f"{what}, n={n} minus n={base} (means over seeds): {parts}; n={n} is higher at {higher} of "
                   f"{len(diff)}.")
    return out


def first_reaching(table: pd.DataFrame, hue: str, fraction: float = 0.5) -> dict[Any, tuple[float, float]]:
    """Per hue value: the tokens at the first evaluation whose mean reaches `fraction` of the largest
    mean any line reaches, and that threshold."""
    if table.empty:
        return {}
    threshold = fraction * float(table["mean"].max())
    out = {}
    for key, group in table.sort_values("tokens").groupby(hue):
        hit = group[group["mean"] >= threshold]
        out[key] = (float(hit["tokens"].iloc[0]) if len(hit) else float("nan"), threshold)
    return out


def _tokens(value: float) -> str:
    return "never" if np.isnan(value) else f"{value / 1e6:.2f}M tokens"


def _rename(table: pd.DataFrame) -> pd.DataFrame:
    return table.rename(columns={"model.n_future": "n", "task_config.pause_tokens": "pause tokens",
                                 "label": "variant"})


# ----- 1. induction vs size -----
INDUCTION_METRIC = "best.eval/second_token_acc"
INDUCTION_YLABEL = "second-token accuracy (best eval)"


def _induction_vs_size(sel: Selection, title: str) -> Output:
    sel = sel.where(task="induction")
    sel.require("induction")
    table = plots.vs_size_table(sel.summaries, INDUCTION_METRIC)
    fig = plots.plot_vs_size(sel.summaries, [(INDUCTION_METRIC, INDUCTION_YLABEL)], title=title)
    return Output(fig, [("second-token accuracy at repeated mentions (best evaluation)", _rename(table))],
                  gap_sentences(table, "size", "Second-token accuracy"), sel)


@figure("1a_induction_vs_size", "Induction vs model size (Figure 7 analogue)", "scaling",
        "Induction success (head-1 accuracy on the second token of a name already mentioned, on held-out "
        "names; best evaluation of each run, like the paper's early stopping on the test metric) against "
        "model size, next-token (n=1) against 2- and 4-token prediction.")
def induction_vs_size(sel: Selection) -> Output:
    return _induction_vs_size(sel, "Induction vs size")


@figure("1b_induction_rich_vs_size", "Induction vs model size, induction-rich data (Figure S14 analogue)",
        "induction_rich",
        "As 1a, with half of the training sequences replaced by filler with a repeated random segment, so the "
        "data itself demands induction (the paper's books mix).")
def induction_rich_vs_size(sel: Selection) -> Output:
    return _induction_vs_size(sel, "Induction vs size, induction-rich data")


# ----- 2. polynomial arithmetic -----
def _max_ops(df: pd.DataFrame) -> int | None:
    values = df["task_config.max_ops"].dropna().unique() if "task_config.max_ops" in df else []
    return int(values[0]) if len(values) == 1 else None


def _domain_sentences(df: pd.DataFrame, x: str, x_name: Callable[[Any], str] = str) -> list[str]:
    out = []
    for column, what in (("final.eval/exact_match/in_domain", "In-domain exact match"),
                         ("final.eval/exact_match/out_of_domain", "Out-of-domain exact match")):
        if column in df and df[column].notna().any():
            out += gap_sentences(plots.summarise(df, [x, "model.n_future"], column), x, what, x_name)
    return out


@figure("2a_polynomial_vs_ops", "Polynomial arithmetic vs number of operations (Figure 8 analogue)", "scaling",
        "Exact-match accuracy of the greedy answer against the number of operations in the expression, one "
        "panel per model size, n in {1, 2, 4}; shaded: more operations than training ever shows (out of domain).")
def polynomial_vs_ops(sel: Selection) -> Output:
    sel = sel.where(task="polynomial")
    sel.require("polynomial")
    df = sel.summaries
    table = plots.vs_ops_table(df, "size")
    fig = plots.plot_vs_ops(df, _max_ops(df), facet="size", title="Polynomial arithmetic vs operations")
    return Output(fig, [("exact match per number of operations", _rename(table))],
                  _domain_sentences(df, "size"), sel)


@figure("2b_polynomial_vs_size", "Polynomial arithmetic vs model size (Figure S16 analogue)", "scaling",
        "Exact match in domain (operation counts seen in training) and out of domain against model size, "
        "n in {1, 2, 4}.")
def polynomial_vs_size(sel: Selection) -> Output:
    sel = sel.where(task="polynomial")
    sel.require("polynomial")
    df = sel.summaries
    metrics = [(c, label) for c, label in (("final.eval/exact_match/in_domain", "exact match, in domain"),
                                           ("final.eval/exact_match/out_of_domain", "exact match, out of domain"))
               if c in df and df[c].notna().any()]
    fig = plots.plot_vs_size(df, metrics, title="Polynomial arithmetic vs size")
    tables = [(label, _rename(plots.vs_size_table(df, c))) for c, label in metrics]
    return Output(fig, tables, _domain_sentences(df, "size"), sel)


@figure("2c_polynomial_pause", "Polynomial arithmetic with pause tokens (Figure S15 analogue)", "pause",
        "Exact match against the number of operations with 0, 5 or 10 pause tokens between the question and "
        "`=` (one panel each), n in {1, 2, 4}.")
def polynomial_pause(sel: Selection) -> Output:
    sel.require("pause-token")
    df = sel.summaries
    facet = "task_config.pause_tokens"
    table = plots.vs_ops_table(df, facet)
    fig = plots.plot_vs_ops(df, _max_ops(df), facet=facet, facet_label=lambda p: f"{int(p)} pause tokens",
                            title="Polynomial arithmetic with pause tokens")
    return Output(fig, [("exact match per number of operations", _rename(table))],
                  _domain_sentences(df, facet, lambda p: f"{int(p)} pauses"), sel)


# ----- 3. head count -----
@figure("3_heads", "Task metric vs number of heads", "heads",
        "Each task's primary metric (final evaluation) against the number of heads n at one parameter-matched "
        "size (n heads take n-1 blocks from the trunk).")
def heads(sel: Selection) -> Output:
    sel.require("heads")
    df = sel.summaries
    table = plots.vs_heads_table(df)
    sentences = []
    for task, part in table.groupby("task"):
        best = part.loc[part["mean"].idxmax()]
        base = part[part["model.n_future"] == 1]["mean"]
        vs = f"; n=1 scores {fmt(float(base.iloc[0]))}" if len(base) else ""
        sentences.append(f"{task}: the highest mean is {fmt(best['mean'])} at n={int(best['model.n_future'])}{vs}.")
    return Output(plots.plot_vs_heads(df, title="Task metric vs heads"), [("primary metric", _rename(table))],
                  sentences, sel)


# ----- 4. path-star -----
PATHSTAR_ORDER = ("next-token", "mtp", "teacherless", "reverse")


@figure("4_pathstar", "Path-star: next-token, MTP, teacherless and reverse training", "pathstar",
        "Left: exact-path accuracy on G(2,5,50) per training variant (dashed: 1/d, a random choice of arm). "
        "Middle: accuracy at each position of the greedily decoded path. Right: the same with the true path as "
        "input (teacher forcing). Position 2 is the first real decision; with the true previous node as input, "
        "every later node follows from the edge list (the Clever Hans cheat).")
def pathstar(sel: Selection) -> Output:
    sel.require("path-star")
    df = sel.summaries
    exact, per_pos, forced = plots.pathstar_tables(df)
    sentences = ["Exact-path accuracy (means over seeds): "
                 + ", ".join(f"{v} {fmt(m)}" for v, m in exact.set_index("label")["mean"].items()) + "."]
    for table, how in ((per_pos, "greedy decoding"), (forced, "teacher forcing")):
        lows = []
        for variant, part in table.groupby("label"):
            low = part.loc[part["mean"].idxmin()]
            lows.append(f"{variant} at position {int(low['position'])} ({fmt(low['mean'])})")
        if lows:
            sentences.append(f"Least accurate position with {how}: " + ", ".join(lows) + ".")
    fig = plots.plot_pathstar(df, order=PATHSTAR_ORDER, title="Path-star G(2,5,50)")
    tables = [("exact-path accuracy", _rename(exact)),
              ("accuracy per path position, greedy decoding", _rename(per_pos))]
    if len(forced):
        tables.append(("accuracy per path position, teacher-forced", _rename(forced)))
    return Output(fig, tables, sentences, sel)


# ----- 5. learning dynamics -----
SCORE = "interp/prefix_matching_max"


@figure("5_dynamics", "Learning dynamics: induction and induction heads over training", "dynamics",
        "Induction success over training tokens for n=1 and n=2 (left) and the prefix-matching score of the "
        "best attention head (Olsson et al.; mean attention from a token in the second copy of a repeated "
        "random sequence to the token after its first occurrence) over training (right).")
def dynamics(sel: Selection) -> Output:
    sel.require("dynamics")
    evals = sel.evals()
    panels = [("eval/second_token_acc", "second-token accuracy")]
    notes = []
    if SCORE in evals and evals[SCORE].notna().any():
        panels.append((SCORE, "best prefix-matching score"))
    else:
        notes.append("These runs did not log the induction-head score (trained before it was added); only the "
                     "task metric is shown.")
    tables, sentences = [], []
    for metric, label in panels:
        table = plots.dynamics_table(evals, metric)
        tables.append((f"{label} over training", _rename(table)))
        if metric == SCORE:  # starts near uniform attention, not at 0: report the peak per n
            peaks = table.loc[table.groupby("model.n_future")["mean"].idxmax()]
            last = table.sort_values("step").groupby("model.n_future").tail(1).set_index("model.n_future")["mean"]
            sentences.append(f"The {label}'s highest mean is " + ", ".join(
                f"{fmt(r['mean'])} for n={int(r['model.n_future'])} (at {_tokens(r['tokens'])}; last "
                f"{fmt(last[r['model.n_future']])})" for _, r in peaks.iterrows()) + ".")
            continue
        reach = first_reaching(table, "model.n_future")
        if reach:
            threshold = next(iter(reach.values()))[1]
            last = table.sort_values("step").groupby("model.n_future").tail(1).set_index("model.n_future")["mean"]
            sentences.append(f"{label[0].upper() + label[1:]} first reaches half the highest mean "
                             f"({fmt(threshold)}) at " + ", ".join(f"{_tokens(t)} for n={n}"
                                                                  for n, (t, _) in reach.items())
                             + "; at the last evaluation it is " + ", ".join(f"{fmt(v)} for n={n}"
                                                                            for n, v in last.items()) + ".")
    fig = plots.plot_dynamics(evals, panels, title="Learning dynamics (induction)")
    return Output(fig, tables, sentences, sel, notes)


# ----- 6. per-head accuracy -----
@figure("6_head_accuracy", "Per-head accuracy vs head index", "heads",
        "Teacher-forced accuracy of head i (which predicts token t+i) against i, for each head count n, per "
        "task: how far ahead the heads see.")
def head_accuracy(sel: Selection) -> Output:
    sel.require("heads")
    df = sel.summaries
    table = plots.head_accuracy_table(df)
    sentences = []
    for task, part in table.groupby("task"):
        n = int(part["model.n_future"].max())
        row = part[part["model.n_future"] == n].sort_values("head")
        sentences.append(f"{task}, n={n}: " + ", ".join(f"head {int(h)} {fmt(m)}"
                                                       for h, m in zip(row["head"], row["mean"])) + ".")
    return Output(plots.plot_head_accuracy(df, title="Per-head accuracy"), [("head accuracy", _rename(table))],
                  sentences, sel)


# ----- 7. finetuning -----
def _finetune_runs(sel: Selection) -> Selection:
    sel.require("finetuning")
    done = sel.summaries
    variants = done[done["label"].fillna("") != ""]
    if variants.empty:
        raise Missing("no complete finetuning variant of `finetune` yet (only pretraining runs)")
    return Selection(sel.experiment, sel.preset, [p for p in sel.planned if p.get("label")], variants.reset_index(
        drop=True), sel.root)


FINETUNE_GROUPS = (
    ("the paper's variants, from n=1", ("ntp", "linear", "carve", "add")),
    ("gentler attachment, from n=1", ("ntp", "add", "add_zero", "add_freeze", "add_ramp", "deepseek")),
    ("from n=4, and from earlier checkpoints", ("ntp", "mtp_keep", "mtp_drop", "ntp@25", "add@25", "ntp@50", "add@50")),
)


# A graded companion of exact match: per-token accuracy of the answer with the true prefix as input.
GRADED_METRIC = "final.eval/teacher_forced_acc"


def _finetune_order() -> list[str]:
    from lab.experiments import finetune as experiment
    return [*experiment.FROM_NTP_VARIANTS, "mtp_keep", "mtp_drop", "ntp@25", "add@25", "ntp@50", "add@50",
            "scratch_ntp", "scratch_mtp"]


@figure("7a_finetune_table", "Finetuning: difference to next-token finetuning (Table S6 analogue)", "finetune",
        "Target-task metric (final evaluation) of each finetuning variant minus the n'=1 next-token finetuning "
        "(`ntp`) of the same seed; bars: mean over seeds, whiskers: min and max. Right, where the runs log it: "
        "teacher-forced answer accuracy, a graded measure of the same skill (exact match is all or nothing).")
def finetune_table(sel: Selection) -> Output:
    sel = _finetune_runs(sel)
    df = sel.summaries
    if "ntp" not in set(df["label"]):
        raise Missing("the `ntp` baseline of `finetune` has no complete run")
    names = df["primary_metric"].dropna().unique()
    metric_name = plots.metric_name(names[0]) if len(names) == 1 else "primary metric"
    table = plots.finetune_diff_table(df, "primary")
    means = plots.summarise(df, ["label"], "primary")
    graded = GRADED_METRIC if GRADED_METRIC in df and df[GRADED_METRIC].notna().any() else None
    more = [(graded, f"{plots.metric_name(graded)} minus ntp")] if graded else []
    fig = plots.plot_finetune_bars(df, "primary", f"{metric_name} minus n'=1 (ntp)", order=_finetune_order(),
                                   title="Finetuning variants vs next-token finetuning", more=more)
    comparisons = [(metric_name, table)]
    if graded:
        comparisons.append((plots.metric_name(graded), plots.finetune_diff_table(df, graded)))
    tables = [(f"{metric_name} per variant", _rename(means))]
    tables += [(f"{name} minus ntp, paired by seed", _rename(diffs)) for name, diffs in comparisons]
    sentences = [_ranking(name, diffs) for name, diffs in comparisons if len(diffs)]
    return Output(fig, tables, sentences, sel)


def _ranking(metric: str, diffs: pd.DataFrame) -> str:
    """One sentence on a `finetune_diff_table`: how many variants beat `ntp`, the highest and lowest."""
    ranked = diffs.sort_values("mean")
    return (f"{int((diffs['mean'] > 0).sum())} of {len(diffs)} variants score above `ntp` on {metric}; "
            f"highest: {ranked.iloc[-1]['label']} ({ranked.iloc[-1]['mean']:+.3f}), lowest: "
            f"{ranked.iloc[0]['label']} ({ranked.iloc[0]['mean']:+.3f}).")


def _curves(sel: Selection) -> pd.DataFrame:
    evals = sel.evals()
    return evals[evals["finetune.init_from"].fillna("").astype(str) != ""]


@figure("7b_finetune_shock", "Finetuning: next-token loss shock and recovery", "finetune",
        "Head-1 (next-token) loss on held-out batches of the pretraining task (the target task for runs that "
        "did not log it) minus the pretrained model's own loss on the same batches, over finetuning; step 0 is "
        "before any update, so its value is the shock of the change of heads, the rest is recovery or forgetting.")
def finetune_shock(sel: Selection) -> Output:
    sel = _finetune_runs(sel)
    curves = _curves(sel)
    if curves.empty or "finetune/pretrained_head1_loss" not in curves:
        raise Missing("the finetuning runs logged no pretrained head-1 loss")
    on = "source" if "finetune/source_head1_loss" in curves and curves["finetune/source_head1_loss"].notna().all() \
        else "target"
    table = plots.shock_table(curves, on=on)
    start = table[table["step"] == table["step"].min()].sort_values("mean")
    end = table.sort_values("step").groupby("label").tail(1).sort_values("mean")
    sentences = []
    if len(start):
        sentences.append(f"At step {int(start['step'].iloc[0])} the excess loss ranges from "
                         f"{start.iloc[0]['mean']:+.3f} ({start.iloc[0]['label']}) to "
                         f"{start.iloc[-1]['mean']:+.3f} ({start.iloc[-1]['label']}).")
        sentences.append(f"At the last evaluation it ranges from {end.iloc[0]['mean']:+.3f} ({end.iloc[0]['label']})"
                         f" to {end.iloc[-1]['mean']:+.3f} ({end.iloc[-1]['label']}).")
    fig = plots.plot_shock(curves, order=_finetune_order(), groups=FINETUNE_GROUPS, on=on,
                           title=f"Next-token loss shock and recovery ({'pretraining' if on == 'source' else 'target'}"
                                 " task data)")
    return Output(fig, [("head-1 loss minus pretrained, per step", _rename(table))], sentences, sel)


@figure("7c_finetune_drift", "Finetuning: representation drift", "finetune",
        "Linear CKA between the pretrained and the finetuned model's hidden states on fixed probe inputs, after "
        "each trunk block (`depth k`) and at head 1's output, over finetuning (1 = unchanged).")
def finetune_drift(sel: Selection) -> Output:
    sel = _finetune_runs(sel)
    curves = _curves(sel)
    if not any(c.startswith("cka/") for c in curves.columns):
        raise Missing("the finetuning runs logged no CKA")
    table = plots.drift_table(curves)
    last = table.sort_values("step").groupby(["label", "depth"]).tail(1)
    sentences = []
    for depth, part in last.groupby("depth"):
        low = part.loc[part["mean"].idxmin()]
        high = part.loc[part["mean"].idxmax()]
        sentences.append(f"{depth}: final CKA from {fmt(low['mean'])} ({low['label']}) to {fmt(high['mean'])} "
                         f"({high['label']}).")
    fig = plots.plot_drift(curves, order=_finetune_order(), groups=FINETUNE_GROUPS,
                           title="Representation drift during finetuning")
    return Output(fig, [("final CKA per variant and depth", _rename(last.sort_values(["depth", "label"])))],
                  sentences, sel)


# ----- 8. self-speculative decoding -----
def speculative_rows(run_dirs: list[str]) -> pd.DataFrame:
    """One row per run and k from each run's speculative.json (runs without one are skipped)."""
    rows = []
    for run_dir in run_dirs:
        path = Path(run_dir) / "speculative.json"
        if not path.exists():
            continue
        result = runs.read_json(path)
        for row in result.get("rows", []):
            rows.append({"run_dir": run_dir, "task": result["task"], "n_future": result["n_future"],
                         "head_type": result.get("head_type"), "device": result.get("device"),
                         "batch": result.get("batch"), "k": row["k"],
                         "tokens_per_forward": row["tokens_per_forward"], "speedup": row["speedup"]})
    return pd.DataFrame(rows)


@figure("8_speculative", "Self-speculative decoding", "speculative",
        "Greedy blockwise-parallel decoding with the first k heads: tokens produced per forward pass and "
        "wall-clock speedup over greedy decoding with a KV cache (outputs identical), per task.")
def speculative(sel: Selection) -> Output:
    sel.require("speculative")
    rows = speculative_rows(list(sel.summaries["run_dir"]))
    if rows.empty:
        raise Missing("no speculative.json in the complete `speculative` runs (measure them with "
                      "`python -m lab.experiments.speculative --preset PRESET`)")
    table = plots.speculative_table(rows)
    devices = ", ".join(sorted(str(d) for d in rows["device"].dropna().unique()))
    batches = ", ".join(str(int(b)) for b in sorted(rows["batch"].dropna().unique()))
    sentences = []
    for (task, n, kind), part in table.groupby(["task", "n_future", "head_type"]):
        if n < 2:
            continue
        top = part.loc[part["k"].idxmax()]
        sentences.append(f"{task}, n={int(n)} {kind}: at k={int(top['k'])}, {fmt(top['mean_tokens_per_forward'])} "
                         f"tokens per forward and a {fmt(top['mean_speedup'])}x speedup.")
    used = sel.where()
    used.summaries = used.summaries[used.summaries["run_dir"].isin(set(rows["run_dir"]))].reset_index(drop=True)
    shown = table.rename(columns={"n_future": "n", "head_type": "head type", "seeds_speedup": "runs",
                                  **{f"{s}_tokens_per_forward": f"tokens/forward {s}" for s in ("mean", "min", "max")},
                                  **{f"{s}_speedup": f"speedup {s}" for s in ("mean", "min", "max")}})
    shown = shown.drop(columns="seeds_tokens_per_forward")
    return Output(plots.plot_speculative(rows, title="Self-speculative decoding"), [("per task and k", shown)],
                  sentences, used, [f"Measured on: {devices}; prompts decoded together: {batches}."])


# ----- writing -----
def markdown_table(df: pd.DataFrame) -> str:
    def cell(v: Any) -> str:
        if isinstance(v, (float, np.floating)):
            return "–" if np.isnan(v) else f"{v:.3f}"
        return str(v)
    lines = ["| " + " | ".join(str(c) for c in df.columns) + " |", "|" + "---|" * len(df.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines)


def commands(spec: Spec, preset: str) -> str:
    return f"`python -m lab.sweep {spec.experiment} --preset {preset}`, then `python -m lab.figures --preset {preset}`"


def readme(done: list[tuple[Spec, Output, str]], missing: list[tuple[Spec, str]], preset: str, root: Path) -> str:
    lines = ["# Figures", "",
             f"Regenerated from the runs under `{root}` by `python -m lab.figures --preset {preset}` (preset "
             f"`{preset}`). Lines are means over seeds; vertical bars span the lowest and the highest seed. The "
             "numbers behind every figure are in [RESULTS.md](RESULTS.md).", ""]
    for spec, out, file in done:
        used = out.used
        partial = "" if used.complete == len(used.planned) else " (partial: the other runs are not complete)"
        lines += [f"## {spec.key.split('_')[0]}. {spec.title}", "", f"![{spec.title}]({file})", "", spec.caption, "",
                  f"- experiment `{spec.experiment}`, preset `{preset}`: {used.complete} of {len(used.planned)} "
                  f"planned runs{partial}; {len(used.seeds)} seed{'' if len(used.seeds) == 1 else 's'} "
                  f"({', '.join(map(str, used.seeds))})",
                  f"- command: {commands(spec, preset)}"]
        lines += [f"- note: {n}" for n in out.notes]
        lines.append("")
    if missing:
        lines += ["## Missing figures", "", "These figures are not drawn because their runs do not exist yet:", ""]
        for spec, reason in missing:
            lines.append(f"- **{spec.key.split('_')[0]}. {spec.title}**: {reason}. To make it: {commands(spec, preset)}"
                         f" (or `python -m lab.figures --preset {preset} --run-missing`).")
        lines.append("")
    return "\n".join(lines)


def results(done: list[tuple[Spec, Output, str]], missing: list[tuple[Spec, str]], preset: str) -> str:
    lines = ["# Results behind the figures", "",
             f"Preset `{preset}`. `mean`, `min` and `max` are over seeds; `seeds` counts the runs in each mean. "
             "Each sentence is computed from the table below it.", ""]
    for spec, out, _ in done:
        lines += [f"## {spec.key.split('_')[0]}. {spec.title}", "",
                  f"From `{spec.experiment}` ({out.used.complete} runs).", ""]
        lines += [" ".join(out.sentences), ""] if out.sentences else []
        for heading, table in out.tables:
            lines += [f"**{heading}**", "", markdown_table(table), ""]
    if missing:
        lines += ["## Missing", ""]
        lines += [f"- {spec.key.split('_')[0]}. {spec.title}: {reason}" for spec, reason in missing]
        lines.append("")
    return "\n".join(lines)


def save_figure(fig: Figure, path: Path, fmt_: str) -> None:
    runs.atomic_write(path, lambda f: fig.savefig(f, format=fmt_, dpi=DPI), binary=True)


def run_missing(experiments: list[str], preset: str, root: Path, workers: int | None) -> bool:
    """Run every experiment that has planned runs not complete yet, through `lab.sweep` (which
    then runs the experiment's measuring step); for a complete experiment run only that step, in
    case it never ran. Returns False if a sweep was interrupted (the rest are then not started)."""
    from lab import sweep
    for name in experiments:
        selection = Selection.load(root, name, preset)
        if selection.reason:
            continue
        if selection.complete == len(selection.planned):
            sweep.after_sweep(name, preset, root)
            continue
        print(f"running the missing runs of {name} ({selection.complete} of {len(selection.planned)} complete)")
        argv = [name, "--preset", preset, "--out", str(root)] + ([] if workers is None else ["--workers", str(workers)])
        code = sweep.main(argv)
        if code == 130:
            return False
        if code:
            print(f"warning: the {name} sweep exited with code {code}; its figures use the runs that completed",
                  file=sys.stderr)
    return True


def generate(root: Path, out: Path, preset: str, fmt_: str = "png") -> tuple[list[str], list[str]]:
    """Draw every figure that has runs; write README.md and RESULTS.md. Returns (drawn, missing) keys."""
    selections: dict[str, Selection] = {}
    done, missing = [], []
    for spec in FIGURES:
        if spec.experiment not in selections:
            selections[spec.experiment] = Selection.load(root, spec.experiment, preset)
        try:
            output = spec.build(selections[spec.experiment])
        except Missing as why:
            missing.append((spec, str(why)))
            for stale in FORMATS:
                (out / f"{spec.key}.{stale}").unlink(missing_ok=True)
            continue
        file = f"{spec.key}.{fmt_}"
        save_figure(output.figure, out / file, fmt_)
        done.append((spec, output, file))
    runs.atomic_write(out / "README.md", lambda f: f.write(readme(done, missing, preset, root)))
    runs.atomic_write(out / "RESULTS.md", lambda f: f.write(results(done, missing, preset)))
    return [s.key for s, _, _ in done], [s.key for s, _ in missing]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m lab.figures",
        description="Regenerate every figure from the runs, with figures/README.md (captions, experiments, seeds, "
                    "commands) and figures/RESULTS.md (the numbers). Figures without runs are listed as missing.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--preset", default="quick", help="which preset's runs to use: quick or paper")
    parser.add_argument("--runs", default="runs", help="root of the run directories")
    parser.add_argument("--out", default="figures", help="where to write the figures and the two Markdown files")
    parser.add_argument("--format", default="png", help=f"image format: {', '.join(FORMATS)}")
    parser.add_argument("--run-missing", action="store_true",
                        help="first run every experiment whose runs are not all complete (through lab.sweep)")
    parser.add_argument("--workers", type=int, default=None, help="with --run-missing: runs at once (lab.sweep)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        from lab.experiments import PRESETS
        if args.preset not in PRESETS:
            raise ConfigError(f"unknown preset {args.preset!r}; choose one of: {', '.join(PRESETS)}")
        if args.format not in FORMATS:
            raise ConfigError(f"unknown format {args.format!r}; choose one of: {', '.join(FORMATS)}")
        if args.workers is not None and args.workers < 1:
            raise ConfigError(f"--workers must be at least 1, got {args.workers}")
        root, out = Path(args.runs), Path(args.out)
        for path, flag in ((root, "--runs"), (out, "--out")):
            if path.exists() and not path.is_dir():
                raise ConfigError(f"{flag} {path} is not a directory")
        if not root.exists() and not args.run_missing:
            raise ConfigError(f"--runs {root} does not exist; train runs first (or pass --run-missing)")
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.run_missing and not run_missing(list(dict.fromkeys(spec.experiment for spec in FIGURES)),
                                            args.preset, root, args.workers):
        print("interrupted: rerun the same command to finish the missing runs, then draw the figures",
              file=sys.stderr)
        return 130
    out.mkdir(parents=True, exist_ok=True)
    drawn, missing = generate(root, out, args.preset, args.format)
    print(f"{len(drawn)} figures written to {out}/ ({', '.join(drawn) or 'none'}); "
          f"{len(missing)} missing ({', '.join(missing) or 'none'}); see {out / 'README.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
