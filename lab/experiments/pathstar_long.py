"""Path-star trained to convergence: does reverse training reach Bachmann & Nagarajan's ~100%?

The quick `pathstar` runs (1.5M tokens of fresh graphs) reproduce next-token's Clever Hans
ceiling (position 2 at 1/d) but reverse training learns nothing, against B&N's ~100%. B&N
trained 100 epochs of 200,000 graphs at batch 256, about 640M tokens: 400 times the quick
budget. This experiment trains until validation stops improving, on fresh graphs and on a fixed
training set like theirs, and scores every run on their published test files (`measure`, written
to `published.json` in each run). Early stopping reads the validation path NLL (`path_nll`,
`train.early_stop_on`), not exact-path accuracy: that metric sits at 0 (or at 1/d) through the
plateau before the lookup forms, so stopping on it would end every run there.

- quick (CPU, 1M, heads on a full-depth trunk, batch 64): on G(2,5,50), up to 4000 steps (8M tokens), early
  stopping after 4 evaluations without a lower validation path NLL, for next-token, reverse, teacherless and MTP
  with n = 2, n = 4 and n = l = 5 (a horizon over the whole path), each on fresh graphs and on 200,000 fixed
  graphs; and reverse and n = l on the fixed graphs for up to 16,000 steps (32M tokens,
  patience 8 evaluations of 500 steps, `reverse-fixed-16k`, `mtp5-fixed-16k`, and next-token as its matched
  control), since at 4000 steps reverse training's edge lookup forms in some seeds only and the n = l
  validation path NLL is still falling (LOG 2026-12-02). On the larger G(5,3,50) (labels end in `-d5l3`), on
  the fixed graphs: next-token, teacherless, n = 2 and n = l = 3 to 4000 steps, and reverse to 16,000 steps. On
  G(2,3,50) and G(3,3,50), reverse only, to 8000 steps (`reverse-fixed-8k-d2l3`, `-d3l3`): probes of why
  reverse training sits at 1/d on G(5,3,50); on all three graphs only one position of the reversed path needs
  the backward edge lookup (LOG 2026-12-03);
- paper (alias gpu): G(2,5,50) and G(5,3,50), next-token, reverse, teacherless, and MTP with
  n = 2, 4 and n = l (a horizon over the whole path), heads on a full-depth trunk, 10M (their
  6 x 384 shape), both data regimes, up to 60,000 steps (G(5,3,50) labels end in `-d5l3`).
"""

from __future__ import annotations

import argparse
import math
import re
import sys
from pathlib import Path
from typing import Any

from lab import runs
from lab.analysis.claim import BN, LAB, PEERS, Claim, labelled, on_published
from lab.analysis.registry import Output, Selection, figure
from lab.config import RunConfig
from lab.errors import ConfigError
from lab.experiments import experiment, make_run, seeds, unmeasured

EXPERIMENT = "pathstar_long"
# the first one keeps unsuffixed labels
GRAPHS = {"quick": ((2, 5), (5, 3), (2, 3), (3, 3)), "paper": ((2, 5), (5, 3))}
SIZE = {"quick": "1M", "paper": "10M"}
STEPS = {"quick": (4000, 250), "paper": (60000, 1000)}  # (budget, evaluation cadence)
DATA = {"fresh": 0, "fixed": 200_000}  # task.train_graphs
PATIENCE = 4
# huang-mtp-horizon-8M-fresh's arms: reversed raw, not after Holm, at 3 seeds (5 seeds)
DECISIVE = ("mtp5-fresh", "next-token-fresh")
# Longer budgets where the first one ends before the capability forms: (variant label, data, budget)
# per graph.
# At 4000 steps reverse training leaves its plateau in 1 of 3 fresh-data seeds (LOG); MTP with n = l
# ("mtp{l}", l
# the path length) is still lowering its validation path NLL (LOG 2026-12-02), and next-token at the
# same budget is
# its matched control. G(2,3,50) and G(3,3,50) are probes: reverse training with one backward lookup
# per path, as
# on G(5,3,50), at degree 2 and 3; all G(2,5,50) reverse seeds left their plateau by 4500 steps.
LONG_BUDGET = (16000, 500, 8)  # (steps, evaluation cadence, early-stopping patience in evaluations)
PROBE_BUDGET = (8000, 500, 8)
LONG = {"quick": {(2, 5): (("reverse", "fixed", LONG_BUDGET), ("mtp{l}", "fixed", LONG_BUDGET),
                           ("next-token", "fixed", LONG_BUDGET)),
                  (5, 3): (("reverse", "fixed", LONG_BUDGET),),
                  (2, 3): (("reverse", "fixed", PROBE_BUDGET),),
                  (3, 3): (("reverse", "fixed", PROBE_BUDGET),)},
        "paper": {}}
# The quick preset's other graphs train fewer arms at the first budget, on the fixed graphs only:
# label -> data.
QUICK_OTHERS = {(5, 3): {"next-token": ("fixed",), "teacherless": ("fixed",), "mtp2": ("fixed",),
                         "mtp{l}": ("fixed",)},
                (2, 3): {}, (3, 3): {}}
STOP_ON = "path_nll"  # graded: falls through the plateau where exact-path accuracy is flat
PUBLISHED = "published.json"
DATA_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "path_star"


def variants(preset: str, graph: tuple[int, int]) -> dict[str, tuple[int, str, tuple[str, ...]]]:
    """label -> (heads, task variant, training data at the first budget) of a preset's graph
    (degree, path length). Every arm (next-token, reverse, teacherless, MTP with n = 2, 4 and n = l:
    a horizon over the whole path) trains on fresh graphs and on the fixed graphs of Bachmann &
    Nagarajan; the quick preset's other graphs train only their `QUICK_OTHERS` arms."""
    path_len = graph[1]
    out = {"next-token": (1, "forward"), "reverse": (1, "reverse"),
           "teacherless": (1, "teacherless"),
           "mtp2": (2, "forward"), "mtp4": (4, "forward"), f"mtp{path_len}": (path_len, "forward")}
    out = {label: (*arm, tuple(DATA)) for label, arm in out.items()}
    if preset == "quick" and graph != GRAPHS[preset][0]:
        larger = {label.format(l=path_len): data for label, data in QUICK_OTHERS[graph].items()}
        out = {label: (heads, variant, larger.get(label, ())) for label,
               (heads, variant, _) in out.items()}
    return out


def graph_suffix(preset: str, graph: tuple[int, int]) -> str:
    """'' for the preset's first graph (G(2,5,50), whose labels predate the others), else
    '-d{degree}l{path}'."""
    return "" if graph == GRAPHS[preset][0] else f"-d{graph[0]}l{graph[1]}"


def pathstar_long(preset: str) -> list[RunConfig]:
    """Path-star to convergence, fresh and fixed data: next-token, reverse, teacherless and MTP."""
    steps, every = STEPS[preset]
    out = []
    for graph in GRAPHS[preset]:
        arms, suffix = variants(preset, graph), graph_suffix(preset, graph)
        for label, (heads, variant, datas) in arms.items():
            for data in datas:
                out += arm_runs(preset, *graph, heads, variant, data, (steps, every, PATIENCE),
                                f"{label}-{data}{suffix}")
        for label, data, budget in LONG[preset].get(graph, ()):
            label = label.format(l=graph[1])
            heads, variant, _ = arms[label]
            out += arm_runs(preset, *graph, heads, variant, data, budget,
                            f"{label}-{data}-{budget[0] // 1000}k{suffix}")
    return out


def arm_runs(preset: str, degree: int, path_len: int, heads: int, variant: str, data: str,
             budget: tuple[int, int, int], label: str) -> list[RunConfig]:
    """The seeds of one arm; `budget` is (steps, evaluation cadence, early-stopping patience in
    evaluations)."""
    steps, every, patience = budget
    settings = (f"task.degree={degree}", f"task.path_len={path_len}", f"task.variant={variant}",
                f"task.train_graphs={DATA[data]}", "model.match_params=false",
                f"train.steps={steps}",
                f"train.eval_every={every}", f"train.checkpoint_every={every}",
                f"train.early_stop_patience={patience}", f"train.early_stop_on={STOP_ON}",
                f"label={label}")
    return [make_run(EXPERIMENT, preset, "graph", SIZE[preset], heads, seed, overrides=settings)
            for seed in seeds(preset, SIZE[preset], decisive=label in DECISIVE)]


def published_file(config: RunConfig, data_dir: Path = DATA_DIR) -> Path:
    t = config.task_config
    return data_dir / f"deg_{t['degree']}_path_{t['path_len']}_nodes_{t['num_nodes']}_test_20000.txt"


def measure(preset: str = "quick", root: str | Path = "runs", device: str = "cpu",
            data_dir: Path = DATA_DIR,
            force: bool = False) -> int:
    """Score every complete run's final checkpoint on the published test file of its graph and write
    `published.json` (the metrics, and `step_errors`: where its teacher-forced guesses land at each
    path position); returns how many runs were scored. Runs without a published file are skipped,
    and runs already scored unless `force`."""
    from lab.decode import load_run
    from lab.device import resolve_device
    from lab.eval import evaluate_file
    from lab.evaluate import ModelPredictor
    scored = 0
    for config, run_dir in unmeasured(EXPERIMENT, preset, root, PUBLISHED, force):
        path = published_file(config, Path(data_dir))
        if not path.is_file():
            continue
        dev = resolve_device(device)
        _, model, task = load_run(run_dir, dev)
        predictor = ModelPredictor(model, dev)
        metrics = evaluate_file(task, predictor, str(path), None)
        errors = task.step_errors(predictor, task.read_file(path))
        runs.write_json(run_dir / PUBLISHED, {"file": path.name, "metrics": metrics,
                                              "step_errors": {str(k): v for k, v in errors.items()}})
        scored += 1
    return scored


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=f"python -m lab.experiments.{EXPERIMENT}",
                                     description="Score the complete runs of the experiment on the "
                                                 "published path-star test files (writes "
                                                 "published.json per run).",
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--preset", default="quick", help="quick or paper")
    parser.add_argument("--runs", default="runs", help="root of the run directories")
    parser.add_argument("--data-dir", default=str(DATA_DIR),
                        help="folder of the published test files")
    parser.add_argument("--device", default="cpu", help="auto, cpu, cuda or mps")
    parser.add_argument("--force", action="store_true",
                        help="score runs again that already have published.json")
    args = parser.parse_args(argv)
    try:
        print(f"{measure(args.preset, args.runs, args.device, Path(args.data_dir), args.force)} "
              "runs scored")
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


# ----- figure (the builder imports lab.analysis.plots when called: a sweep imports this module too)
# -----
@figure("4b_pathstar_long", "Path-star to convergence: next-token, reverse, teacherless and MTP",
        EXPERIMENT,
        "One row per graph. Exact-path accuracy (test, at the final evaluation; runs stop after "
        "4 evaluations without a lower validation path NLL, 8 for the 16k-step arm) per variant "
        "and training data (fresh graphs, or 200,000 fixed graphs as Bachmann & Nagarajan), "
        "accuracy per position of the greedily decoded path, and with the true path as input "
        "(teacher forcing; position 2 at 1/d is the Clever Hans signature). RESULTS.md adds how "
        "many seeds formed the path and when, the published test file's exact-path accuracy of "
        "each run's final checkpoint, and where that checkpoint's teacher-forced guesses land "
        "at each path position (in the order written; shares of the test graphs, mean over "
        "seeds; kinds of `tasks.graph_path.GraphPathTask.step_errors`). Labels read "
        "objective-data[-budget][-graph]: objective `next-token`, `reverse`, `teacherless`, or "
        "MTP with k heads (`mtp2`, `mtp3`, `mtp4`, `mtp5`); data `fixed` (200,000 fixed graphs) "
        "or `fresh`; budget `8k` or `16k` (up to 8,000 or 16,000 steps, else 4,000); graph "
        "`d2l3`, `d3l3`, `d5l3` (G(2,3,50), G(3,3,50), G(5,3,50), else G(2,5,50)). Bars: 95% "
        "t-intervals over seeds, cut to [0, 1].")
def pathstar_long_figure(sel: Selection) -> Output:
    from lab.experiments.pathstar import pathstar_output
    out = pathstar_output(sel, "Path-star to convergence")
    out.sentences += formation_sentences(out.used)
    out.tables += published_tables(out.used)
    return out


def formation_sentences(sel: Selection) -> list[str]:
    """Per variant, how many seeds formed the path (validation exact path above the 1/d ceiling) and
    when: the runs of one variant differ mostly in how long they stay on the plateau, which a mean
    over seeds hides."""
    from lab.analysis import evidence, prose
    measured = evidence.measure_runs(sel.evals())
    if measured.empty:
        return []
    parts = []
    for label, runs_ in measured.sort_values(["label", "seed"]).groupby("label"):
        when = ", ".join(f"seed {int(r.seed)} "
                         f"{prose.tokens_text(r.formation_tokens) if r.formed else 'not'}"
                         for r in runs_.itertuples())
        parts.append(f"{label} {int(runs_['formed'].sum())} of {len(runs_)} ({when})")
    threshold = evidence.FORMATION_THRESHOLD["graph"]
    return [f"Formed (validation exact path >= {threshold}) within the budget: " + "; ".join(parts) + "."]


def published_tables(sel: Selection) -> list[tuple[str, Any]]:
    """The published test file's exact-path accuracy per run, and where its teacher-forced guesses
    land."""
    import pandas as pd

    from tasks.graph_path import STEP_KINDS
    scored = [(row,
               p) for _, row in sel.summaries.iterrows() if (p := sel.run_file(row["run_dir"],
                                                                               PUBLISHED))]
    if not scored:
        return []
    rows = [{"label": row["label"], "seed": int(row["seed"]), "file": p["file"],
             "exact_path_acc": p["metrics"]["exact_path_acc"]} for row, p in scored]
    tables = [("published test file, final checkpoint",
               pd.DataFrame(rows).sort_values(["label", "seed"]))]
    errors = [{"label": row["label"], "position": int(k), **kinds}
              for row, p in scored if "step_errors" in p for k, kinds in p["step_errors"].items()]
    if errors:
        errors = pd.DataFrame(errors).reindex(columns=["label", "position", *STEP_KINDS],
                                              fill_value=0.0)
        shares = errors.groupby(["label", "position"], as_index=False).mean()
        tables.append(("teacher-forced guesses by kind, published test file", shares.round(3)))
    return tables


# ----- the effect map: each objective against next-token training on the same graph, data and
# budget -----
# A label is `{objective}-{data}[-{budget}k][-d{degree}l{path length}]` (`pathstar_long`).
LABEL = re.compile(r"^(?P<objective>.+?)-(?P<data>fresh|fixed)(?:-\d+k)?(?:-d\d+l\d+)?$")
BASE = "next-token"
EFFECTS = (("value", "exact path, objective - next-token\n(test, validation-selected step)", 1.0),
           ("tf2",
            "teacher-forced position 2, objective - next-token\n(test, validation-selected step)",
            1.0),
           ("published",
            "exact path, objective - next-token\n(published test file, final checkpoint)", 1.0))


def comparison_cells(measured: Any, sel: Selection) -> Any:
    """`measured` (one row per run) with the columns of the effect map: `objective` (next-token,
    reverse, teacherless, mtp2, ...), `data` (fresh or fixed), `regime` (graph and step budget,
    within which an objective is compared with next-token) and `published` (exact path on the
    published test file, NaN where not scored)."""
    parts = measured["label"].str.extract(LABEL)
    regime = [f"G({int(d)},{int(p)},{int(n)}), {int(k)} steps" for d, p, n, k in zip(
        measured["task_config.degree"], measured["task_config.path_len"],
        measured["task_config.num_nodes"],
        measured["train.steps"])]
    published = [((sel.run_file(d, PUBLISHED) or {}).get("metrics") or {}).get("exact_path_acc",
                                                                               math.nan)
                 for d in measured["run_dir"]]
    return measured.assign(objective=parts["objective"], data=parts["data"], regime=regime,
                           published=[float(v) for v in published])


def objective_effects(sel: Selection) -> dict[str, Any]:
    """measure -> `evidence.paired_effects` table of every objective minus next-token, paired by
    seed within the same graph, step budget and training data (a regime without next-token runs has
    no row)."""
    from lab.analysis import evidence
    evals = sel.evals()
    measured = evidence.measure_runs(evals)
    if measured.empty:
        return {}
    tf2 = evidence.measure_runs(evals, metric="tf_pos_acc/2")  # empty where no run logged it
    tf2 = tf2.set_index("run_name")["value"] if len(tf2) else {}
    measured = comparison_cells(measured.assign(tf2=measured["run_name"].map(tf2).astype(float)),
                                sel)
    tables = {m: evidence.paired_effects(measured, ["regime", "data"], arm="objective", base=BASE,
                                         measure=m)
              for m, _, _ in EFFECTS if measured[m].notna().any()}
    return {m: t.assign(row=t["objective"] + ", " + t["regime"]) for m, t in tables.items() if not t.empty}


@figure("9c_atlas_pathstar",
        "Path-star atlas: each objective against next-token training, with 95% CIs", EXPERIMENT,
        "One row per objective and regime (graph G(d,l,N) and step budget; 1M, heads on a "
        "full-depth trunk): the mean over seeds of the paired difference (same seed, so the "
        "same initialisation and data order) to next-token training in the same regime and "
        "training data (fresh graphs, or 200,000 fixed graphs as Bachmann & Nagarajan), with "
        "its 95% t-interval. Left: exact path on the lab's test graphs at the step chosen on "
        "validation; middle: teacher-forced accuracy at position 2, the arm choice where "
        "next-token training sits at 1/d; right: exact path on the published test file (20,000 "
        "graphs) at the final checkpoint. Dashed: no difference.")
def effects_figure(sel: Selection) -> Output:
    from lab.analysis import plots, prose
    from lab.analysis.registry import Missing
    sel.require(EXPERIMENT)
    rows = objective_effects(sel)
    if not rows:
        raise Missing(f"{EXPERIMENT}: no regime has next-token and another objective complete for "
                      "one seed")
    order = sorted({r for t in rows.values() for r in t["row"]}, key=row_key)
    fig = plots.plot_effects(rows, [p for p in EFFECTS if p[0] in rows], row="row", hue="data",
                             order=order,
                             title="Path-star atlas: objective - next-token (paired by seed)",
                             hue_label=lambda data: f"{data} graphs")
    tables = [(label.replace("\n", " "), prose.readable(t.drop(columns="row")))
              for m, label, _ in EFFECTS if (t := rows.get(m)) is not None]
    sentences = [effect_sentence(r, "exact path") for r in sorted(rows["value"].itertuples(),
                                                                  key=lambda r: row_key(
        r.row))] if "value" in rows else []
    return Output(fig, tables, sentences, sel)


def row_key(row: str) -> tuple[Any, ...]:
    """Rows of the effect map by graph, then budget, then objective (reverse, teacherless, then MTP
    by n)."""
    objective, regime = row.split(", ", 1)
    numbers = tuple(int(x) for x in re.findall(r"\d+", regime))
    n = int(objective[3:]) if objective.startswith("mtp") and objective[3:].isdigit() else 0
    return numbers, objective.startswith("mtp"), n, objective


def effect_sentence(r: Any, what: str) -> str:
    from lab.analysis import prose
    return (f"{r.objective} - next-token, {r.regime}, {r.data} graphs ({what}): "
            f"{prose.fmt(r.mean)} [{prose.fmt(r.lo)}, {prose.fmt(r.hi)}] ({r.seeds} seeds), "
            f"{r.verdict}.")


# ----- claims: the rows of figures/CLAIMS.md these runs test (`lab.analysis.claims`) -----
_ROWS = (
    Claim("bn-reverse-8M", f"{BN}", "reverse training solves path-star G(2,5,50) within 8M tokens "
          "(4000 steps, 200,000 fixed graphs, early stopping on validation path NLL)",
          "pathstar_long", labelled("reverse-fixed"), target=1.0, tolerance=0.05, family=PEERS),
    Claim("bn-reverse-32M", f"{BN}", "reverse training solves path-star G(2,5,50) within 32M "
          "tokens (16,000 steps, 200,000 fixed graphs, early stopping on validation path NLL)",
          "pathstar_long", labelled("reverse-fixed-16k"), target=1.0, tolerance=0.05, family=PEERS),
    Claim("bn-next-token-8M", f"{BN}", "next-token training of path-star G(2,5,50) stays at "
          "chance at position 2 (teacher-forced 1/d = 0.5) within 8M tokens (200,000 fixed "
          "graphs, early stopping)", "pathstar_long", labelled("next-token-fixed"),
          metric="tf_pos_acc/2", target=0.5, tolerance=0.1, family=PEERS),
    Claim("bn-teacherless-8M", f"{BN}", "teacherless training solves the small graph G(2,5,50) "
          "within 8M tokens (200,000 fixed graphs, early stopping)", "pathstar_long",
          labelled("teacherless-fixed"), target=1.0, tolerance=0.1, family=PEERS),
    Claim("huang-mtp-8M", "Huang et al. 2026", "2-token prediction beats next-token training on "
          "path-star G(2,5,50) within 8M tokens (200,000 fixed graphs, early stopping, exact path)",
          "pathstar_long", labelled("mtp2-fixed"), labelled("next-token-fixed"), family=PEERS),
    Claim("huang-mtp4-8M", "Huang et al. 2026", "4-token prediction beats next-token training on "
          "path-star G(2,5,50) within 8M tokens (200,000 fixed graphs, early stopping, exact path)",
          "pathstar_long", labelled("mtp4-fixed"), labelled("next-token-fixed"), family=PEERS),
    Claim("huang-mtp-horizon-8M", "Huang et al. 2026", "multi-token prediction whose horizon "
          "covers the whole path (n = l = 5) beats next-token training on path-star G(2,5,50) "
          "within 8M tokens (200,000 fixed graphs, early stopping, exact path)", "pathstar_long",
          labelled("mtp5-fixed"), labelled("next-token-fixed"), family=PEERS),
    Claim("huang-mtp-horizon-32M", "Huang et al. 2026", "multi-token prediction whose horizon "
          "covers the whole path (n = l = 5) trained within 32M tokens beats next-token training "
          "at its 8M budget, where it already sits at its Clever Hans ceiling of 1/d (path-star "
          "G(2,5,50), 200,000 fixed graphs, early stopping, exact path)", "pathstar_long",
          labelled("mtp5-fixed-16k"), labelled("next-token-fixed"), family=PEERS),
    Claim("huang-mtp-horizon-32M-matched", "Huang et al. 2026", "multi-token prediction whose "
          "horizon covers the whole path (n = l = 5) beats next-token training, both within 32M "
          "tokens (path-star G(2,5,50), 200,000 fixed graphs, early stopping, exact path)",
          "pathstar_long", labelled("mtp5-fixed-16k"), labelled("next-token-fixed-16k"),
          family=PEERS),
    # The same arms on fresh graphs (a new sample every batch, so no training set to memorise), as
    # Frydenlund 2025.
    Claim("bn-next-token-8M-fresh", f"{BN}", "next-token training of path-star G(2,5,50) stays at "
          "chance at position 2 (teacher-forced 1/d = 0.5) within 8M tokens of fresh graphs "
          "(early stopping)", "pathstar_long", labelled("next-token-fresh"), metric="tf_pos_acc/2",
          target=0.5, tolerance=0.1, family=PEERS),
    Claim("bn-reverse-8M-fresh", f"{BN}", "reverse training solves path-star G(2,5,50) within 8M "
          "tokens of fresh graphs (4000 steps, early stopping on validation path NLL)",
          "pathstar_long", labelled("reverse-fresh"), target=1.0, tolerance=0.05, family=PEERS),
    Claim("bn-teacherless-8M-fresh", f"{BN}", "teacherless training solves the small graph "
          "G(2,5,50) within 8M tokens of fresh graphs (early stopping)", "pathstar_long",
          labelled("teacherless-fresh"), target=1.0, tolerance=0.1, family=PEERS),
    Claim("huang-mtp-8M-fresh", "Huang et al. 2026", "2-token prediction beats next-token "
          "training on path-star G(2,5,50) within 8M tokens of fresh graphs (early stopping, "
          "exact path)", "pathstar_long", labelled("mtp2-fresh"), labelled("next-token-fresh"),
          family=PEERS),
    Claim("huang-mtp4-8M-fresh", "Huang et al. 2026", "4-token prediction beats next-token "
          "training on path-star G(2,5,50) within 8M tokens of fresh graphs (early stopping, "
          "exact path)", "pathstar_long", labelled("mtp4-fresh"), labelled("next-token-fresh"),
          family=PEERS),
    Claim("huang-mtp-horizon-8M-fresh", "Huang et al. 2026", "multi-token prediction whose "
          "horizon covers the whole path (n = l = 5) beats next-token training on path-star "
          "G(2,5,50) within 8M tokens of fresh graphs (early stopping, exact path)",
          "pathstar_long", labelled("mtp5-fresh"), labelled("next-token-fresh"), family=PEERS),
    Claim("bn-next-token-8M-d5l3", f"{BN}", "next-token training of the larger path-star "
          "G(5,3,50) stays at chance at position 2 (teacher-forced 1/d = 0.2) within 8M tokens "
          "(200,000 fixed graphs, early stopping)", "pathstar_long",
          labelled("next-token-fixed-d5l3"),
          metric="tf_pos_acc/2", target=0.2, tolerance=0.05, family=PEERS),
    Claim("bn-reverse-36M-d5l3", f"{BN}", "reverse training solves the larger path-star G(5,3,50) "
          "within 36M tokens (16,000 steps, 200,000 fixed graphs, early stopping on validation "
          "path NLL)", "pathstar_long", labelled("reverse-fixed-16k-d5l3"), target=1.0,
          tolerance=0.05,
          family=PEERS),
    Claim("lab-reverse-one-lookup",
          "mtp-lab, LOG 2026-12-03 (why reverse sits at 1/d on G(5,3,50))", "reverse training of "
          "G(2,3,50), where (as on G(5,3,50)) one position of the reversed path needs the "
          "backward edge lookup, stays at the child-of-source shortcut (exact path 1/d = 0.5) "
          "within 8000 steps (200,000 fixed graphs, early stopping on validation path NLL)",
          "pathstar_long", labelled("reverse-fixed-8k-d2l3"), target=0.5, tolerance=0.1,
          family=LAB),
    Claim("lab-reverse-degree-3", "mtp-lab, LOG 2026-12-03 (why reverse sits at 1/d on G(5,3,50))",
          "reverse "
          "training solves G(3,3,50) (one backward lookup per path, degree 3) within 8000 steps "
          "(200,000 fixed graphs, early stopping on validation path NLL)", "pathstar_long",
          labelled("reverse-fixed-8k-d3l3"), target=1.0, tolerance=0.05, family=LAB),
    Claim("huang-mtp-horizon-8M-d5l3", "Huang et al. 2026", "multi-token prediction whose horizon "
          "covers the whole path (n = l = 3) beats next-token training on the larger path-star "
          "G(5,3,50) within 8M tokens (200,000 fixed graphs, early stopping, exact path)",
          "pathstar_long", labelled("mtp3-fixed-d5l3"), labelled("next-token-fixed-d5l3"),
          family=PEERS),
    Claim("bn-teacherless-8M-d5l3", f"{BN}", "teacherless training solves the larger path-star "
          "G(5,3,50) within 8M tokens (200,000 fixed graphs, early stopping)", "pathstar_long",
          labelled("teacherless-fixed-d5l3"), target=1.0, tolerance=0.1, family=PEERS),
    Claim("huang-mtp-8M-d5l3", "Huang et al. 2026", "2-token prediction beats next-token training "
          "on the larger path-star G(5,3,50) within 8M tokens (200,000 fixed graphs, early "
          "stopping, exact path)", "pathstar_long", labelled("mtp2-fixed-d5l3"),
          labelled("next-token-fixed-d5l3"), family=PEERS),
)
# Rows measured again on Bachmann & Nagarajan's published test file (20,000 graphs): the lab's own
# test set (128 graphs in the quick preset) gives each seed a binomial standard error of about 0.04,
# too wide for a +-0.05 or +-0.1 target at 3 seeds. Each such reading follows its row.
ON_PUBLISHED = ("bn-next-token-8M", "bn-reverse-32M", "huang-mtp-horizon-32M-matched",
                "bn-next-token-8M-d5l3", "bn-reverse-36M-d5l3", "huang-mtp-horizon-8M-d5l3",
                "huang-mtp-8M-d5l3", "bn-next-token-8M-fresh", "bn-teacherless-8M-fresh",
                "huang-mtp-8M-fresh", "huang-mtp4-8M-fresh", "huang-mtp-horizon-8M-fresh")
CLAIMS = tuple(c for row in _ROWS
               for c in (row, *([on_published(row)] if row.key in ON_PUBLISHED else [])))

experiment(EXPERIMENT, measure=measure, claims=CLAIMS)(pathstar_long)

if __name__ == "__main__":
    sys.exit(main())
