"""The figures as a reader sees them, drawn from the committed results store: nothing cut off or
overlapping, accuracy intervals inside [0, 1], legends once and in natural order, every variant code
named in the caption, and `lab.figures --out` refusing a folder it cannot write before any work."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

import numpy as np
import pytest
from matplotlib.collections import LineCollection, PolyCollection
from matplotlib.text import Text

from lab import figures
from lab.analysis.registry import specs
from lab.config import size_value
from lab.experiments import plan
from lab.results import STORE
from lab.selection import Missing, Selection

REPO = Path(__file__).resolve().parents[1]
BOUNDED_AXIS = re.compile(r"accuracy|exact match|CKA|attention|prefix-matching")


@pytest.fixture(scope="module")
def drawn(tmp_path_factory):
    """Every registered figure, built as `python -m lab.figures` builds it from the committed
    store."""
    if not any(STORE.glob("*.jsonl.gz")):
        pytest.skip("the committed results store is absent")
    root = tmp_path_factory.mktemp("no-runs")
    selections: dict[str, Selection] = {}
    out = {}
    for spec in specs():
        if spec.experiment not in selections:
            selections[spec.experiment] = Selection.load(root, spec.experiment, "quick", plan,
                                                         STORE)
        try:
            out[spec.key] = (spec, spec.build(selections[spec.experiment]))
        except Missing:  # an experiment with nothing in the store yet draws no figure
            continue
    assert len(out) >= 20
    return out


def texts(fig) -> list[Text]:
    """The non-empty texts drawn: titles, labels, tick labels inside the view, legends,
    annotations."""
    fig.draw_without_rendering()
    found = []
    for t in fig.findobj(Text):
        ax = t.axes
        hidden = ax is not None and not ax.get_visible()
        if not t.get_visible() or not t.get_text().strip() or hidden:
            continue
        found.append(t)
    ticks = set()
    for ax in fig.axes:
        for axis, lim in ((ax.xaxis, ax.get_xlim()), (ax.yaxis, ax.get_ylim())):
            lo, hi = sorted(lim)
            ticks |= {id(label) for tick in axis.get_major_ticks() + axis.get_minor_ticks()
                      if not lo - 1e-9 * (hi - lo) <= tick.get_loc() <= hi + 1e-9 * (hi - lo)
                      for label in (tick.label1, tick.label2)}
    return [t for t in found if id(t) not in ticks]


def test_nothing_is_cut_off_at_the_edge_of_any_figure(drawn):
    """Every drawn artist (labels, ticks, legends) lies inside the image: 0, 1a and 5 cut their
    labels."""
    cut = []
    for key, (_, out) in drawn.items():
        fig = out.figure
        fig.draw_without_rendering()
        box = fig.get_tightbbox(fig._get_renderer())
        width, height = fig.get_size_inches()
        if box.x0 < -0.01 or box.y0 < -0.01 or box.x1 > width + 0.01 or box.y1 > height + 0.01:
            cut.append(f"{key}: drawn {box.bounds} in a {width:.2f} x {height:.2f} inch figure")
    assert not cut, cut


def test_no_two_texts_overlap(drawn):
    """No label runs into another (5's `1e6` offset ran into its x label; 4b's variant names
    overlapped)."""
    clashes = []
    for key, (_, out) in drawn.items():
        fig = out.figure
        found = texts(fig)
        renderer = fig._get_renderer()
        boxes = [t.get_window_extent(renderer).expanded(1.0, 1.0) for t in found]
        for i in range(len(found)):
            for j in range(i + 1, len(found)):
                a, b = boxes[i], boxes[j]
                overlap_x = min(a.x1, b.x1) - max(a.x0, b.x0)
                overlap_y = min(a.y1, b.y1) - max(a.y0, b.y0)
                if overlap_x > 1.0 and overlap_y > 1.0:
                    clashes.append(f"{key}: {found[i].get_text()!r} and {found[j].get_text()!r}")
    assert not clashes, clashes[:20]


def spreads(ax) -> list[np.ndarray]:
    """The y values of the intervals drawn in a panel: CI bars (gid `spread`) and bands (seaborn
    fills)."""
    out = []
    for c in ax.collections:
        if isinstance(c, LineCollection) and c.get_gid() == "spread":
            out += [np.asarray(seg)[:, 1] for seg in c.get_segments() if len(seg)]
        elif isinstance(c, PolyCollection) and not isinstance(c, LineCollection):
            out += [p.vertices[:, 1] for p in c.get_paths() if len(p.vertices)]
    return out


def test_accuracy_intervals_stay_inside_0_and_1(drawn):
    """A panel of an accuracy (or share, or CKA) draws no interval below 0 or above 1 (0's n=2 bar
    and 5's
    band went below 0), and the caption says the intervals are cut."""
    outside, unsaid, checked = [], [], 0
    for key, (spec, out) in drawn.items():
        bounded = [ax for ax in out.figure.axes
                   if ax.get_visible() and BOUNDED_AXIS.search(ax.get_ylabel())]
        ys = [y for ax in bounded for y in spreads(ax)]
        checked += len(ys)
        low = min((float(np.nanmin(y)) for y in ys), default=0.0)
        high = max((float(np.nanmax(y)) for y in ys), default=1.0)
        if low < -1e-9 or high > 1 + 1e-9:
            outside.append(f"{key}: intervals from {low:.3f} to {high:.3f}")
        if ys and "cut to [0, 1]" not in spec.caption:
            unsaid.append(key)
    assert checked > 50
    assert not outside, outside
    assert not unsaid, f"captions that do not say their intervals are cut to [0, 1]: {unsaid}"


def natural(label: str):
    """The value a legend entry is ordered by, if it names a head count or a model size."""
    if m := re.match(r"n=(\d+)(\D|$)", label):
        return int(m.group(1))
    if re.fullmatch(r"\d+(\.\d+)?[KMB]", label):
        return size_value(label)
    return None


def test_legends_in_natural_order_and_each_shown_once(drawn):
    """Head counts and sizes ascend in every legend (10's read 100K, 1M, 300K, 3M), and no legend
    repeats
    what another legend of the same figure shows (2a, 5, 8, 9 and others drew one per panel)."""
    disorder, repeated = [], []
    for key, (_, out) in drawn.items():
        legends = [[t.get_text() for t in ax.get_legend().get_texts()] for ax in out.figure.axes
                   if ax.get_visible() and ax.get_legend() is not None]
        for labels in legends:
            values = [v for v in map(natural, labels) if v is not None]
            if values != sorted(values):
                disorder.append(f"{key}: {labels}")
        for i, a in enumerate(legends):
            if any(j != i and set(a) <= set(b) for j, b in enumerate(legends)):
                repeated.append(f"{key}: {a}")
    assert not disorder, disorder
    assert not repeated, repeated


CODE = re.compile(r"[a-z][a-z0-9]*(?:[_@\-.][a-z0-9.]+)*")
NOT_CODES = re.compile(r"^(?:\d.*|n=\d+.*|[\d.]+[kmb])$", re.IGNORECASE)


def codes(out) -> set[str]:
    """Legend entries and tick labels that look like a variant code: one lowercase token such as
    `add`,
    `mtp_drop`, `add4_w0.3`, `ntp@25` or `next-token-fixed-16k` (not numbers, sizes or `n=k`)."""
    found = set()
    for ax in out.figure.axes:
        if not ax.get_visible():
            continue
        labels = [t.get_text() for t in ax.get_yticklabels() + ax.get_xticklabels()]
        if ax.get_legend() is not None:
            labels += [t.get_text() for t in ax.get_legend().get_texts()]
        found |= {s for s in labels if CODE.fullmatch(s) and not NOT_CODES.match(s)}
    return found


def defined(code: str, caption: str) -> bool:
    """Whether the caption names `code` as a whole word, or names each of its dash-joined parts (a
    label
    such as `reverse-fixed-16k` read by a stated grammar: objective, data, budget)."""
    if re.search(rf"(?<![\w@.\-]){re.escape(code)}(?![\w@\-]|\.\w)", caption):
        return True
    return any(defined(code[:i], caption) and defined(code[i + 1:], caption)
               for i, c in enumerate(code) if c == "-")


def test_every_variant_code_drawn_is_defined_in_the_caption(drawn):
    """A reader meets `add4_w0.3` or `mtp_drop` in 7a and 10 with no word of what it is: every
    code a
    legend or an axis shows appears in the figure's caption (as a whole word, or part by part)."""
    undefined = []
    for key, (spec, out) in drawn.items():
        for code in sorted(codes(out)):
            if not defined(code, spec.caption):
                undefined.append(f"{key}: {code}")
    assert not undefined, undefined


def test_7a_whiskers_are_what_its_caption_and_the_readme_say(drawn):
    """7a draws the 95% t-interval of the paired difference; its caption said min and max while
    figures/README.md says the bars are 95% confidence intervals."""
    from lab.experiments.finetune import finetune_diff_table
    spec, out = drawn["7a_finetune_table"]
    table = finetune_diff_table(out.used.summaries, "primary")
    ax = out.figure.axes[0]
    bars = next(c for c in ax.collections if c.get_gid() == "spread")
    xs = sorted(tuple(np.round(np.asarray(s)[:, 0], 9)) for s in bars.get_segments())
    assert xs == sorted(zip(np.round(table["lo"], 9), np.round(table["hi"], 9)))
    assert xs != sorted(zip(np.round(table["min"], 9), np.round(table["max"], 9)))
    assert "whiskers: 95% t-intervals" in spec.caption and "min and max" not in spec.caption
    readme = (REPO / "figures" / "README.md").read_text()
    assert "bars are 95% confidence intervals" in readme
    section = readme.split("<!-- figure 7a_finetune_table -->")[1].split("<!-- end figure")[0]
    assert spec.caption in section


def test_a_read_only_out_folder_is_refused_before_any_work(tmp_path, monkeypatch, capsys):
    """`--out` on a folder that cannot be written: exit 2 with one line naming it, before any
    figure is
    drawn (it used to draw for 20 s, then fail with a traceback)."""
    out = tmp_path / "figures"
    out.mkdir()
    (out / "README.md").write_text("kept\n")
    out.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        if os.access(out, os.W_OK) and (os.geteuid() == 0):
            monkeypatch.setattr(figures.os, "access", lambda path, mode: Path(path) != out)
        monkeypatch.setattr(figures, "generate",
                            lambda *a, **k: pytest.fail("drew before checking --out"))
        for target in (out, out / "new"):
            assert figures.main(["--out", str(target)]) == 2
            err = capsys.readouterr().err.strip().splitlines()
            assert len(err) == 1 and str(out) in err[0] and "writ" in err[0], err
        assert (out / "README.md").read_text() == "kept\n" and not (out / "new").exists()
    finally:
        out.chmod(stat.S_IRWXU)
