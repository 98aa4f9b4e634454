"""`python -m lab.figures`: draw every figure that has runs, with figures/README.md and figures/RESULTS.md.

    python -m lab.figures [--preset quick|paper] [--runs DIR] [--out figures/] [--format png|pdf|svg]
                          [--run-missing] [--workers K] [--prune]

Each figure is registered by its experiment's module (`lab.experiments.*`, see
`lab.analysis.registry`). Its runs are the experiment's planned runs for the preset that are
complete under `RUNS/<experiment>/` (`lab.runs.Selection`). Numbers come only from the runs:
each figure's table in RESULTS.md is what the figure plots, and its sentences are computed
from those tables.

A figure whose runs are absent is never deleted or overwritten: its image and its sections
of README.md and RESULTS.md (between `<!-- figure KEY -->` markers) are kept as they are, and
the command says so. `--prune` removes the images of such figures instead. When no figure
can be drawn, nothing is written and the exit code is 2. `--run-missing` first runs
`python -m lab.sweep EXPERIMENT --preset P` in a child process for every experiment that is
not complete (heavy: minutes to hours), and an experiment's measuring step
(`python -m lab.experiments.NAME`) for a complete one; drawing never imports the trainer.

Exit codes: 0 (some figures drawn), 2 bad input or nothing to draw, 130 interrupted, 1 an unexpected failure.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from lab import runs
from lab.analysis import claims
from lab.analysis.registry import Missing, Output, specs
from lab.analysis.render import (
    heading,
    kept_section,
    readme,
    readme_section,
    results,
    results_section,
    sections,
    wrap,
)
from lab.errors import ConfigError
from lab.experiments import (  # importing the package registers every experiment and its figures
    REGISTRY,
    declared_claims,
    plan,
)
from lab.results import STORE, store_files
from lab.selection import Selection

FORMATS = ("png", "pdf", "svg")
DPI = 150


# ----- drawing -----
@dataclass
class Outcome:
    """What `generate` did, per figure key; `messages` says why each figure was kept or removed."""

    drawn: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    pruned: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)


def origin(path: Path) -> str:
    """Where an existing image comes from: its last commit, else its file date."""
    try:
        log = subprocess.run(["git", "log", "-1", "--format=%h, %cs", "--", path.name],
                             cwd=path.parent,
                             capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        log = ""
    if log:
        return f"committed image from {log}"
    return f"image written {datetime.fromtimestamp(path.stat().st_mtime):%Y-%m-%d}, not committed"


def save_figure(output: Output, path: Path, fmt_: str) -> None:
    runs.atomic_write(path, lambda f: output.figure.savefig(f, format=fmt_, dpi=DPI), binary=True)


def generate(root: Path, out: Path, preset: str, fmt_: str = "png", prune: bool = False,
             store: Path = STORE) -> Outcome:
    """Draw every figure that has runs (run directories under `root`, else the results `store`) and
    rewrite README.md, RESULTS.md and CLAIMS.md; keep (or with `prune`, remove) the images and
    sections of figures whose runs are absent. Writes nothing at all when no figure can be drawn."""
    outcome, built = Outcome(), {}
    selections: dict[str, Selection] = {}

    def selection(experiment: str) -> Selection:
        if experiment not in selections:
            selections[experiment] = Selection.load(root, experiment, preset, plan, store)
        return selections[experiment]

    old_readme, old_results = sections(out / "README.md"), sections(out / "RESULTS.md")
    readme_parts, results_parts, missing = [], [], []
    for spec in specs():
        try:
            built[spec.key] = spec.build(selection(spec.experiment))
        except Missing as why:
            files = [out / f"{spec.key}.{f}" for f in FORMATS if (out / f"{spec.key}.{f}").exists()]
            if files and not prune:
                outcome.kept.append(spec.key)
                outcome.messages += [f"kept {f}: {why}; {origin(f)}" for f in files]
                readme_parts.append(wrap(spec.key,
                                         old_readme.get(spec.key) or kept_section(spec, files)))
                results_parts.append(wrap(spec.key, old_results.get(spec.key) or
                                          f"{heading(spec)}\n\nImage kept from an earlier "
                                          "regeneration; its numbers are not here.\n\n"))
                continue
            if files:
                outcome.pruned.append(spec.key)
                outcome.messages += [f"removed {f}: {why}" for f in files]
            outcome.missing.append(spec.key)
            missing.append((spec, str(why)))
            continue
        file = f"{spec.key}.{fmt_}"
        outcome.drawn.append(spec.key)
        readme_parts.append(wrap(spec.key, readme_section(spec, built[spec.key], file, preset)))
        results_parts.append(wrap(spec.key, results_section(spec, built[spec.key], preset)))
    if not outcome.drawn:
        outcome.pruned = []  # nothing is written, so nothing is removed either
        outcome.messages = [m for m in outcome.messages if not m.startswith("removed ")]
        return outcome
    out.mkdir(parents=True, exist_ok=True)
    for key in outcome.drawn:
        save_figure(built[key], out / f"{key}.{fmt_}", fmt_)
    for key in outcome.pruned:
        for f in FORMATS:
            (out / f"{key}.{f}").unlink(missing_ok=True)
    source = sources(selections)
    runs.atomic_write(out / "README.md",
                      lambda f: f.write(readme(readme_parts, missing, preset, source)))
    runs.atomic_write(out / "RESULTS.md", lambda f: f.write(results(results_parts, missing)))
    every = claims.in_ledger_order(declared_claims())  # the claims the experiments declare
    table = claims.ledger(lambda experiment: selection(experiment).evals(), preset, every,
                          run_file=lambda experiment, run_dir,
                          name: selection(experiment).run_file(run_dir, name))
    runs.atomic_write(out / "CLAIMS.md", lambda f: f.write(claims.markdown(table, preset, source)))
    return outcome


def sources(selections: dict[str, Selection]) -> str:
    """Where the selected runs came from, e.g. "run directories (scaling), the results store
    (pathstar)"."""
    by = {"runs": "run directories", "results": "the committed results store",
          "both": "run directories and the committed results store"}
    used: dict[str, list[str]] = {}
    for name, sel in sorted(selections.items()):
        if sel.complete:
            used.setdefault(by[sel.source], []).append(name)
    return ", ".join(f"{where} ({', '.join(names)})" for where, names in used.items()) or "no runs"


# ----- running what is missing: child processes, so that drawing never imports the trainer -----
def run_command(argv: list[str]) -> int:
    """Run one lab command in a child process and return its exit code (130 after Ctrl-C)."""
    print("$ " + " ".join(argv[2:] if argv[:2] == [sys.executable, "-m"] else argv), flush=True)
    try:
        return subprocess.run(argv, check=False).returncode
    except KeyboardInterrupt:
        return 130


def missing_commands(preset: str, root: Path, workers: int | None) -> list[list[str]]:
    """Per experiment with figures: its sweep if some planned run is not complete, else its declared
    measuring step (`python -m` its module, `Experiment.measure_module`), in case it never ran."""
    todo = []
    for name in dict.fromkeys(spec.experiment for spec in specs()):
        selection = Selection.load(root, name, preset, plan)
        if selection.reason:
            continue
        if selection.complete < len(selection.planned):
            todo.append([sys.executable, "-m", "lab.sweep", name, "--preset", preset, "--out",
                         str(root),
                         *([] if workers is None else ["--workers", str(workers)])])
            continue
        if REGISTRY[name].measure is not None:
            todo.append([sys.executable, "-m", REGISTRY[name].measure_module, "--preset", preset,
                         "--runs", str(root)])
    return todo


def run_missing(preset: str, root: Path, workers: int | None) -> bool:
    """Run every missing sweep or measuring step; False if one was interrupted (the rest are not
    started)."""
    for argv in missing_commands(preset, root, workers):
        code = run_command(argv)
        if code == 130 or code < 0:
            return False
        if code:
            print(f"warning: `{' '.join(argv[2:])}` exited with code {code}; the figures use the "
                  "runs that completed",
                  file=sys.stderr)
    return True


# ----- command line -----
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m lab.figures",
        description="Draw every figure that has runs, with figures/README.md (captions, "
                    "experiments, seeds, commands) and figures/RESULTS.md (the numbers). A figure "
                    "without runs keeps "
                    "its image and text; nothing is written when no figure has runs.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--preset", default="quick",
                        help="which preset's runs to use: quick or paper (gpu = paper)")
    parser.add_argument("--runs", default="runs", help="root of the run directories")
    parser.add_argument("--results", default=str(STORE),
                        help="the committed results store, read for experiments without complete "
                             "runs under --runs")
    parser.add_argument("--out", default="figures",
                        help="where to write the figures and the two Markdown files")
    parser.add_argument("--format", default="png", help=f"image format: {', '.join(FORMATS)}")
    parser.add_argument("--run-missing", action="store_true",
                        help="first run every experiment whose runs are not all complete (python "
                             "-m lab.sweep)")
    parser.add_argument("--workers", type=int, default=None,
                        help="with --run-missing: runs at once (lab.sweep)")
    parser.add_argument("--prune", action="store_true",
                        help="remove the images of figures whose runs are absent (when some figure "
                             "is drawn)")
    return parser


def validate(args: argparse.Namespace) -> None:
    from lab.experiments import PRESETS, canonical_preset
    args.preset = canonical_preset(args.preset)
    if args.preset not in PRESETS:
        raise ConfigError(f"unknown preset {args.preset!r}; choose one of: {', '.join(PRESETS)}")
    if args.format not in FORMATS:
        raise ConfigError(f"unknown format {args.format!r}; choose one of: {', '.join(FORMATS)}")
    if args.workers is not None and args.workers < 1:
        raise ConfigError(f"--workers must be at least 1, got {args.workers}")
    for path, flag in ((Path(args.runs), "--runs"), (Path(args.out), "--out")):
        if path.exists() and not path.is_dir():
            raise ConfigError(f"{flag} {path} is not a directory")
    writable_out(Path(args.out))
    if not Path(args.runs).exists() and not args.run_missing and not store_files(Path(args.results)):
        raise ConfigError(f"--runs {args.runs} does not exist and the results store {args.results} "
                          "is empty; train runs first (or pass --run-missing)")


def writable_out(out: Path) -> None:
    """Refuse an `--out` folder that cannot be written (a read-only mount, no permission) before any
    figure is drawn: the folder itself, or the nearest folder above it that exists (it is
    created)."""
    existing = out.absolute()
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not os.access(existing, os.W_OK | os.X_OK):
        where = ("" if existing == out.absolute() else
                 f" (it would be created in {existing}, which is not)")
        raise ConfigError(f"--out {out} is not writable{where}; choose a folder you can write to")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        validate(args)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    root, out = Path(args.runs), Path(args.out)
    if args.run_missing and not run_missing(args.preset, root, args.workers):
        print("interrupted: rerun the same command to finish the missing runs, then draw the "
              "figures",
              file=sys.stderr)
        return 130
    outcome = generate(root, out, args.preset, args.format, args.prune, Path(args.results))
    for message in outcome.messages:
        print(message)
    if not outcome.drawn:
        print(f"error: no figure can be drawn from the runs under {root}/ or {args.results}/ "
              f"(preset {args.preset}); {out}/ left "
              f"unchanged ({len(outcome.kept)} figures kept, {len(outcome.missing)} missing)",
              file=sys.stderr)
        return 2
    print(f"{len(outcome.drawn)} figures drawn in {out}/ ({', '.join(outcome.drawn)}); "
          f"{len(outcome.kept)} kept ({', '.join(outcome.kept) or 'none'}); "
          f"{len(outcome.missing)} missing ({', '.join(outcome.missing) or 'none'}); see "
          f"{out / 'README.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
