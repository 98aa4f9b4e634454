"""The figure registry: each experiment module registers the figures drawn from its runs.

    @figure("1a_induction_vs_size", "Induction vs model size", "scaling", "caption ...")
    def induction_vs_size(sel: Selection) -> Output: ...

A builder gets the experiment's `lab.runs.Selection` (the complete runs of its plan for the
preset) and returns an `Output`: the figure, the tables it plots and sentences computed
from them; it raises `Missing` when its runs are not there. `python -m lab.figures` draws
every registered figure. This module imports nothing heavy, so experiment modules (imported
by every sweep) stay light; builders import `lab.analysis.plots` (matplotlib, pandas) when called.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lab.selection import Missing, Selection

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["FIGURES", "Missing", "Output", "Selection", "Spec", "figure", "specs"]


@dataclass
class Output:
    """What a builder draws: the figure, its tables (heading, DataFrame), sentences and the runs used."""

    figure: Figure
    tables: list[tuple[str, Any]]
    sentences: list[str]
    used: Selection  # the runs behind the figure
    notes: list[str] = field(default_factory=list)
    # shown below the figure in README.md, one bullet each
    verdicts: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Spec:
    key: str  # file name and anchor, e.g. "1a_induction_vs_size"
    title: str
    experiment: str
    caption: str
    build: Callable[[Selection], Output]


FIGURES: list[Spec] = []


def figure(key: str, title: str, experiment: str,
           caption: str) -> Callable[[Callable[[Selection], Output]],
                                                                          Callable[[Selection],
                                                                                   Output]]:
    """Decorator: register `build(selection) -> Output` as figure `key` of `experiment`."""
    def register(build: Callable[[Selection], Output]) -> Callable[[Selection], Output]:
        # a reloaded module replaces its figures
        FIGURES[:] = [spec for spec in FIGURES if spec.key != key]
        FIGURES.append(Spec(key, title, experiment, caption, finished(build)))
        return build
    return register


def finished(build: Callable[[Selection], Output]) -> Callable[[Selection], Output]:
    """`build`, then `lab.analysis.plots.finish` on its figure: every registered figure shows each
    legend
    once and no text cut off, whoever draws it."""
    def draw(sel: Selection) -> Output:
        from lab.analysis.plots import finish
        out = build(sel)
        finish(out.figure)
        return out
    draw.__doc__, draw.__name__ = build.__doc__, build.__name__
    return draw


def key_order(key: str) -> tuple[int, str]:
    """Natural order of a figure key: its number, then its letters (0, 1a, 1b, 2a, ..., 9c, 10,
    11)."""
    prefix = key.split("_")[0]
    digits = prefix[:len(prefix) - len(prefix.lstrip("0123456789"))]
    return (int(digits) if digits else 10**9, prefix[len(digits):] + key)


def specs() -> list[Spec]:
    """Every registered figure, in natural key order (0, 1a, 1b, 2a, ..., 9, 9b, 10, 11)."""
    return sorted(FIGURES, key=lambda spec: key_order(spec.key))
