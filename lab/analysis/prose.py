"""Sentences and table headings computed from the figures' tables (RESULTS.md states numbers and
never reads them off a picture): number formats, paired gaps between head counts, first tokens
to reach a level, and the column names RESULTS.md shows."""

from __future__ import annotations

import numpy as np
import pandas as pd

from lab.analysis import evidence, stats
from lab.config import size_value as size_key  # sort key of a size name: '300K' -> 3e5


def fmt(value: float) -> str:
    """A number with three decimals, `n/a` for a missing one."""
    return "n/a" if value is None or (isinstance(value,
                                                 float) and np.isnan(value)) else f"{value:.3f}"


def gap_sentences(df: pd.DataFrame, x: str, value: str, what: str, x_name=str,
                  hue: str = "model.n_future",
                  base: int = 1) -> list[str]:
    """For each head count n other than `base`: at every x, the mean over seeds of (n - base) in
    `value` (one row per run in `df`), paired by seed, with its 95% Student-t CI
    (`evidence.paired_table`)."""
    data = df[[x, hue, "seed", value]].dropna()
    if data.empty:
        return []
    table = evidence.paired_table(data, [x], hue, base, value)
    table = table[table["seeds"] > 0]
    keys = sorted(data[x].unique(), key=size_key if x == "size" else None)
    out = []
    for n in sorted(set(table[hue])):
        rows = table[table[hue] == n].set_index(x)
        parts = [f"{stats.format_effect(rows.loc[k, 'result'])} at {x_name(k)}" for k in keys if k in rows.index]
        if parts:
            out.append(f"{what}, n={n} minus n={base}, paired by seed (95% t CI): " + "; ".join(parts) + ".")
    return out


def first_reaching(table: pd.DataFrame, hue: str, fraction: float = 0.5) -> dict:
    """Per hue value: the tokens at the first evaluation whose mean reaches `fraction` of the
    largest mean any line reaches, and that threshold."""
    if table.empty:
        return {}
    threshold = fraction * float(table["mean"].max())
    out = {}
    for key, group in table.sort_values("tokens").groupby(hue):
        hit = group[group["mean"] >= threshold]
        out[key] = (float(hit["tokens"].iloc[0]) if len(hit) else float("nan"), threshold)
    return out


def tokens_text(value: float) -> str:
    """`1.23M tokens`, or `never` for NaN."""
    return "never" if np.isnan(value) else f"{value / 1e6:.2f}M tokens"


def readable(table: pd.DataFrame) -> pd.DataFrame:
    """A table with the column names RESULTS.md shows (`n`, `pause tokens`, `variant`)."""
    return table.rename(columns={"model.n_future": "n", "task_config.pause_tokens": "pause tokens",
                                 "label": "variant"})


