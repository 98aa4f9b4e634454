"""Rendering: figures/README.md, RESULTS.md and their per-figure sections, as Markdown text.

Each figure's section sits between `<!-- figure KEY -->` markers, so a figure that cannot be
drawn keeps its earlier text verbatim. Pure text in, text out; `lab.figures` writes the files.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lab.analysis.registry import Output, Spec

SECTION = re.compile(r"<!-- figure (\S+) -->\n(.*?)<!-- end figure \1 -->\n", re.DOTALL)


def markdown_table(df: pd.DataFrame) -> str:
    def cell(v: Any) -> str:
        if isinstance(v, (float, np.floating)):
            return "–" if np.isnan(v) else f"{v:.3f}"
        return str(v)
    lines = ["| " + " | ".join(str(c) for c in df.columns) + " |", "|" + "---|" * len(df.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines)


def sections(path: Path) -> dict[str, str]:
    """The per-figure sections of a README.md or RESULTS.md written here (empty if there is
    none)."""
    return {key: body for key, body in SECTION.findall(path.read_text())} if path.exists() else {}


def wrap(key: str, body: str) -> str:
    return f"<!-- figure {key} -->\n{body}<!-- end figure {key} -->\n"


def heading(spec: Spec) -> str:
    return f"## {spec.key.split('_')[0]}. {spec.title}"


def commands(spec: Spec, preset: str) -> str:
    return f"`python -m lab.sweep {spec.experiment} --preset {preset}`, then `python -m lab.figures --preset {preset}`"


def readme_section(spec: Spec, out: Output, file: str, preset: str) -> str:
    used = out.used
    partial = "" if used.complete == len(used.planned) else " (partial: the other runs are not complete)"
    lines = [heading(spec), "", f"![{spec.title}]({file})", "", spec.caption, "",
             f"- experiment `{spec.experiment}`, preset `{preset}`: {used.complete} of "
             f"{len(used.planned)} "
             f"planned runs{partial}; {len(used.seeds)} seed{'' if len(used.seeds) == 1 else 's'} "
             f"({', '.join(map(str, used.seeds))})",
             f"- command: {commands(spec, preset)}"]
    lines += [f"- note: {n}" for n in out.notes]
    if out.verdicts:
        lines += ["", "Verdicts, computed from the runs above:", "",
                  *(f"- {v}" for v in out.verdicts)]
    return "\n".join(lines) + "\n\n"


def results_section(spec: Spec, out: Output, preset: str) -> str:
    lines = [heading(spec), "",
             f"From `{spec.experiment}`, preset `{preset}` ({out.used.complete} runs).", ""]
    lines += [" ".join(out.sentences), ""] if out.sentences else []
    for title, table in out.tables:
        lines += [f"**{title}**", "", markdown_table(table), ""]
    return "\n".join(lines) + "\n"


def kept_section(spec: Spec, files: list[Path]) -> str:
    """For a kept image that has no section of its own yet (written before sections had markers)."""
    images = "".join(f"![{spec.title}]({f.name})\n\n" for f in files)
    return (f"{heading(spec)}\n\n{images}{spec.caption}\n\n- experiment `{spec.experiment}`: image "
            "kept from an "
            "earlier regeneration; its runs are not here\n\n")


def readme(parts: list[str], missing: list[tuple[Spec, str]], preset: str, source: str) -> str:
    lines = ["# Figures", "",
             f"Drawn from {source} by `python -m lab.figures --preset {preset}`. Each figure names "
             "its "
             "experiment, preset and runs; a figure whose runs are absent keeps its earlier "
             "image and text (`--prune` removes them). Lines are means over seeds; bars are 95% "
             "confidence intervals of the mean (Student t over seeds), cut to [0, 1] for "
             "accuracies, shares and CKA (a mean of such values cannot "
             "leave that range). The numbers behind every figure are in "
             "[RESULTS.md](RESULTS.md).", ""]
    text = "\n".join(lines) + "\n" + "".join(parts)
    if missing:
        lines = ["## Missing figures", "",
                 "These figures are not drawn because their runs do not exist yet:", ""]
        for spec, reason in missing:
            lines.append(f"- **{spec.key.split('_')[0]}. {spec.title}**: {reason}. To make it: "
                         f"{commands(spec, preset)}"
                         f" (or `python -m lab.figures --preset {preset} --run-missing`).")
        text += "\n".join(lines) + "\n"
    return text


def results(parts: list[str], missing: list[tuple[Spec, str]]) -> str:
    text = ("# Results behind the figures\n\n`mean`, `min` and `max` are over seeds; `seeds` "
            "counts the runs in each "
            "mean. Each sentence is computed from the table below it.\n\n" + "".join(parts))
    if missing:
        text += "## Missing\n\n" + "".join(f"- {spec.key.split('_')[0]}. {spec.title}: {reason}\n"
                                           for spec, reason in missing)
    return text
