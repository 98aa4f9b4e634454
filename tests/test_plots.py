"""Plotting functions on small synthetic DataFrames: labels, line counts, and plotted values
equal to the means of the input."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from lab.analysis import plots, prose
from lab.experiments import finetune, pathstar, speculative


def data_lines(ax):
    return [line for line in ax.get_lines() if line.get_gid() != plots.REFERENCE and len(line.get_xdata())]


def legend_texts(ax):
    legend = ax.get_legend()
    return [t.get_text() for t in legend.get_texts()] if legend else []


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def scaling_frame(rng) -> pd.DataFrame:
    rows = []
    params = {"100K": 1e5, "300K": 3.1e5, "1M": 9.8e5}
    for size, n, seed in itertools.product(params, (1, 2, 4), (0, 1)):
        rows.append({"size": size, "model.n_future": n, "seed": seed, "task": "induction",
                     "params.non_embedding": params[size], "best.eval/second_token_acc": rng.random(),
                     **{f"final.eval/exact_match/ops={m}": rng.random() for m in (1, 2, 3)}})
    return pd.DataFrame(rows)


def test_plot_vs_size_plots_the_mean_per_size_and_head_count(rng):
    df = scaling_frame(rng)
    before = df.copy()
    fig = plots.plot_vs_size(df, [("best.eval/second_token_acc", "second-token accuracy")], title="induction")
    pd.testing.assert_frame_equal(df, before)  # the input is not modified
    (ax,) = fig.axes
    assert ax.get_ylabel() == "second-token accuracy"
    assert "non-embedding parameters" in ax.get_xlabel()
    assert ax.get_xscale() == "log"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["100K", "300K", "1M"]
    lines = data_lines(ax)
    assert legend_texts(ax) == ["n=1 (next-token)", "n=2", "n=4"]
    for line, n in zip(lines, (1, 2, 4)):
        expected = df[df["model.n_future"] == n].groupby("size", sort=False)["best.eval/second_token_acc"].mean()
        assert line.get_ydata() == pytest.approx(expected[["100K", "300K", "1M"]].to_numpy())
        assert line.get_xdata() == pytest.approx([1e5, 3.1e5, 9.8e5])
    table = plots.vs_size_table(df, "best.eval/second_token_acc")
    assert len(table) == 9 and (table["seeds"] == 2).all()
    assert (table["min"] <= table["mean"]).all() and (table["mean"] <= table["max"]).all()


def test_plot_vs_size_without_parameter_counts_uses_preset_order(rng):
    df = scaling_frame(rng).drop(columns="params.non_embedding").iloc[::-1]
    fig = plots.plot_vs_size(df, [("best.eval/second_token_acc", "acc"), ("final.eval/exact_match/ops=1", "em")])
    assert len(fig.axes) == 2
    ax = fig.axes[0]
    assert ax.get_xscale() == "linear"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["100K", "300K", "1M"]
    assert len(data_lines(fig.axes[1])) == 3


def test_plot_vs_ops_facets_and_out_of_domain(rng):
    df = scaling_frame(rng)
    fig = plots.plot_vs_ops(df, max_ops=2, facet="size", facet_label=lambda s: f"{s} model")
    assert [ax.get_title() for ax in fig.axes] == ["100K model", "300K model", "1M model"]
    for ax, size in zip(fig.axes, ("100K", "300K", "1M")):
        assert ax.get_xlabel() == "number of operations" and ax.get_ylabel() == "exact-match accuracy"
        lines = data_lines(ax)
        assert len(lines) == 3
        assert "out of domain" in legend_texts(ax)
        for line, n in zip(lines, (1, 2, 4)):
            part = df[(df["size"] == size) & (df["model.n_future"] == n)]
            expected = [part[f"final.eval/exact_match/ops={m}"].mean() for m in (1, 2, 3)]
            assert line.get_ydata() == pytest.approx(expected)
            assert list(line.get_xdata()) == [1, 2, 3]
    single = plots.plot_vs_ops(df[df["size"] == "1M"], max_ops=3)
    assert len(single.axes) == 1 and "out of domain" not in legend_texts(single.axes[0])


def test_plot_vs_heads_one_panel_per_task(rng):
    rows = [{"task": task, "model.n_future": n, "seed": s, "primary": rng.random(),
             "primary_metric": f"eval/{metric}"}
            for task, metric in (("graph", "exact_path_acc"), ("induction", "second_token_acc"))
            for n in (1, 2, 3, 4, 6, 8) for s in (0, 1)]
    df = pd.DataFrame(rows)
    fig = plots.plot_vs_heads(df)
    assert [ax.get_title() for ax in fig.axes] == ["graph", "induction"]
    assert [ax.get_ylabel() for ax in fig.axes] == ["exact-path accuracy", "second-token accuracy (repeated names)"]
    for ax, task in zip(fig.axes, ("graph", "induction")):
        (line,) = data_lines(ax)
        expected = df[df["task"] == task].groupby("model.n_future")["primary"].mean()
        assert list(line.get_xdata()) == [1, 2, 3, 4, 6, 8]
        assert line.get_ydata() == pytest.approx(expected.to_numpy())
        assert ax.get_xlabel() == "number of heads n"


def test_plot_heads_grid_one_row_per_measure_and_the_share_formed(rng):
    rows = pd.DataFrame([{"task": task, "model.n_future": n, "seed": s, "value": rng.random(),
                          "formed": float(rng.random() > 0.5)}
                         for task in ("graph", "induction") for n in (1, 2, 4) for s in range(3)])
    by = ["task", "model.n_future"]
    metric = plots.summarise(rows, by, "value")
    formation = metric.merge(rows.groupby(by)["formed"].mean().reset_index(), on=by)
    fig = plots.plot_heads_grid([(metric, lambda t: f"metric of {t}"), (formation, lambda t: "tokens")])
    assert [ax.get_title() for ax in fig.axes] == ["graph", "induction", "", ""]
    assert [ax.get_ylabel() for ax in fig.axes] == ["metric of graph", "metric of induction", "tokens", "tokens"]
    assert [ax.get_xlabel() for ax in fig.axes] == ["", "", "number of heads n", "number of heads n"]
    for ax, task in zip(fig.axes[2:], ("graph", "induction")):
        (line,) = data_lines(ax)
        assert line.get_ydata() == pytest.approx(rows[rows["task"] == task].groupby("model.n_future")["value"].mean())
        shares = rows[rows["task"] == task].groupby("model.n_future")["formed"].mean()
        assert [t.get_text() for t in ax.texts] == [f"{f:.0%}" for f in shares]
    assert not fig.axes[0].texts


def test_plot_pathstar_bars_and_positions(rng):
    variants = ["next-token", "mtp", "teacherless", "reverse"]
    rows = [{"label": v, "seed": s, "task_config.degree": 2, "final.eval/exact_path_acc": rng.random(),
             **{f"final.eval/pos_acc/{k}": rng.random() for k in range(1, 6)},
             **{f"final.eval/tf_pos_acc/{k}": rng.random() for k in range(1, 6)}}
            for v in variants for s in (0, 1)]
    df = pd.DataFrame(rows)
    fig = pathstar.plot_pathstar(df, order=variants)
    left, right, forced = fig.axes
    assert forced.get_ylabel() == "accuracy, teacher-forced"
    part = df[df["label"] == "teacherless"]
    assert data_lines(forced)[2].get_ydata() == pytest.approx(
        [part[f"final.eval/tf_pos_acc/{k}"].mean() for k in range(1, 6)])
    assert len(pathstar.plot_pathstar(df.drop(columns=[c for c in df if "tf_pos" in c])).axes) == 2
    heights = [p.get_height() for p in left.patches]
    expected = df.groupby("label")["final.eval/exact_path_acc"].mean()[variants]
    assert heights == pytest.approx(expected.to_numpy())
    (dots,) = [c for c in left.collections if c.get_gid() == "seeds"]  # one dot per run, at its variant's bar
    assert sorted(map(tuple, dots.get_offsets())) == sorted(
        (variants.index(r["label"]), r["final.eval/exact_path_acc"]) for r in rows)
    (spread,) = [c for c in left.collections if c.get_gid() == "spread"]
    assert all(0 <= y <= 1 for seg in spread.get_segments() for _, y in seg), "a CI of an accuracy cut to [0, 1]"
    assert [t.get_text() for t in left.get_xticklabels()] == variants
    (chance,) = [line for line in left.get_lines() if line.get_gid() == plots.REFERENCE]
    assert chance.get_ydata()[0] == pytest.approx(0.5)
    assert left.get_ylabel() == "exact-path accuracy"
    lines = data_lines(right)
    assert len(lines) == 4 and legend_texts(right) == variants
    for line, v in zip(lines, variants):
        part = df[df["label"] == v]
        assert line.get_ydata() == pytest.approx([part[f"final.eval/pos_acc/{k}"].mean() for k in range(1, 6)])
    assert "position" in right.get_xlabel()


def test_plot_dynamics_aligns_seeds_by_step(rng):
    rows = [{"model.n_future": n, "seed": s, "step": step, "tokens": step * 100,
             "eval/second_token_acc": rng.random(), "interp/prefix_matching_max": rng.random()}
            for n in (1, 2) for s in (0, 1, 2) for step in (0, 25, 50, 75)]
    df = pd.DataFrame(rows)
    fig = plots.plot_dynamics(df, [("eval/second_token_acc", "second-token accuracy"),
                                   ("interp/prefix_matching_max", "prefix-matching score")])
    assert [ax.get_ylabel() for ax in fig.axes] == ["second-token accuracy", "prefix-matching score"]
    for ax, metric in zip(fig.axes, ("eval/second_token_acc", "interp/prefix_matching_max")):
        assert ax.get_xlabel() == "training tokens (M)"
        lines = data_lines(ax)
        assert len(lines) == 2
        for line, n in zip(lines, (1, 2)):
            expected = df[df["model.n_future"] == n].groupby("step")[metric].mean()
            assert line.get_ydata() == pytest.approx(expected.to_numpy())
            assert list(line.get_xdata()) == pytest.approx([0, 0.0025, 0.005, 0.0075])
        table = plots.dynamics_table(df, metric)
        for band, n in zip(ax.collections, (1, 2)):  # seaborn's CI band is the table's t-interval
            corners = {(float(x), round(float(y), 9)) for x, y in band.get_paths()[0].vertices}
            rows = table[table["model.n_future"] == n]
            expected = {(float(t) / 1e6, round(float(v), 9))
                        for t, lo, hi in zip(rows["tokens"], rows["lo"], rows["hi"])
                        for v in (lo, hi)}
            assert expected <= corners and len(expected) == 8


def test_plot_head_accuracy(rng):
    rows = []
    for task, n, s in itertools.product(("induction", "polynomial"), (1, 2, 4), (0, 1)):
        rows.append({"task": task, "model.n_future": n, "seed": s,
                     **{f"final.head{i}/acc": rng.random() for i in range(1, n + 1)}})
    df = pd.DataFrame(rows)
    fig = plots.plot_head_accuracy(df)
    assert [ax.get_title() for ax in fig.axes] == ["induction", "polynomial"]
    for ax, task in zip(fig.axes, ("induction", "polynomial")):
        lines = data_lines(ax)
        assert [len(line.get_xdata()) for line in lines] == [1, 2, 4]
        part = df[(df["task"] == task) & (df["model.n_future"] == 4)]
        assert lines[2].get_ydata() == pytest.approx([part[f"final.head{i}/acc"].mean() for i in range(1, 5)])
        assert "head i" in ax.get_xlabel() and "accuracy" in ax.get_ylabel()


def finetune_frames(rng):
    variants = ["ntp", "linear", "add", "mtp_drop"]
    summaries = pd.DataFrame([{"label": v, "seed": s, "final.eval/exact_match/in_domain": rng.random()}
                              for v in variants for s in (0, 1, 2)])
    curves = pd.DataFrame([{"label": v, "seed": s, "step": step, "head1/loss": 2 + rng.random(),
                            "finetune/pretrained_head1_loss": 2.0 + 0.1 * s, "cka/depth1": rng.random(),
                            "cka/head1_out": rng.random()}
                           for v in variants for s in (0, 1, 2) for step in (0, 100, 200)])
    return variants, summaries, curves


def test_finetune_bars_are_paired_differences_to_the_baseline(rng):
    variants, df, _ = finetune_frames(rng)
    metric = "final.eval/exact_match/in_domain"
    fig = finetune.plot_finetune_bars(df, metric, xlabel="exact match - n'=1", order=variants)
    (ax,) = fig.axes
    base = df[df["label"] == "ntp"].set_index("seed")[metric]
    widths = [p.get_width() for p in ax.patches]
    expected = [(df[df["label"] == v].set_index("seed")[metric] - base).mean() for v in variants[1:]]
    assert widths == pytest.approx(expected)
    assert [t.get_text() for t in ax.get_yticklabels()] == variants[1:]
    assert ax.get_xlabel() == "exact match - n'=1"


def test_finetune_bars_second_metric_shares_the_rows(rng):
    variants, df, _ = finetune_frames(rng)
    df["final.eval/teacher_forced_acc"] = rng.random(len(df))
    df.loc[df["label"] == "linear", "final.eval/teacher_forced_acc"] = np.nan  # not logged by one variant
    fig = finetune.plot_finetune_bars(df, "final.eval/exact_match/in_domain", xlabel="exact match", order=variants,
                                   more=[("final.eval/teacher_forced_acc", "teacher-forced")])
    first, second = fig.axes
    assert second.get_xlabel() == "teacher-forced"
    base = df[df["label"] == "ntp"].set_index("seed")["final.eval/teacher_forced_acc"]
    rows = {round(p.get_y() + p.get_height() / 2): p.get_width() for p in second.patches}
    labels = {round(y): t.get_text() for y, t in zip(first.get_yticks(), first.get_yticklabels())}
    assert sorted(labels[y] for y in rows) == ["add", "mtp_drop"]  # the variant without values has no bar
    for y, width in rows.items():
        values = df[df["label"] == labels[y]].set_index("seed")["final.eval/teacher_forced_acc"]
        assert width == pytest.approx((values - base).mean())


def test_shock_and_drift_curves(rng):
    variants, _, curves = finetune_frames(rng)
    fig = finetune.plot_shock(curves, order=variants)
    (ax,) = fig.axes
    lines = data_lines(ax)
    assert len(lines) == 4 and legend_texts(ax) == variants
    part = curves[curves["label"] == "add"]
    excess = (part["head1/loss"] - part["finetune/pretrained_head1_loss"]).groupby(part["step"]).mean()
    assert lines[2].get_ydata() == pytest.approx(excess.to_numpy())
    assert "pretrained" in ax.get_ylabel() and ax.get_xlabel() == "finetuning step"

    groups = [("paper", ["ntp", "linear", "add"]), ("from n=4", ["ntp", "mtp_drop"])]
    fig = finetune.plot_shock(curves, order=variants, groups=groups)
    assert [ax.get_title() for ax in fig.axes] == ["paper", "from n=4"]
    assert [legend_texts(ax) for ax in fig.axes] == [["ntp", "linear", "add"], ["ntp", "mtp_drop"]]
    first, second = (data_lines(ax) for ax in fig.axes)
    assert first[0].get_color() == second[0].get_color()  # a variant keeps its style across panels
    assert second[1].get_ydata() == pytest.approx(
        curves[curves["label"] == "mtp_drop"].pipe(lambda d: (d["head1/loss"] - d["finetune/pretrained_head1_loss"])
                                                    .groupby(d["step"]).mean()).to_numpy())

    fig = finetune.plot_drift(curves, order=variants, groups=groups)
    assert [ax.get_title() for ax in fig.axes] == ["depth1, paper", "depth1, from n=4", "head1_out, paper",
                                                   "head1_out, from n=4"]
    for ax, col in zip(fig.axes[::2], ("cka/depth1", "cka/head1_out")):
        lines = data_lines(ax)
        assert len(lines) == 3
        linear = curves[curves["label"] == "linear"]
        assert lines[1].get_ydata() == pytest.approx(linear.groupby("step")[col].mean().to_numpy())
        assert "CKA" in ax.get_ylabel()


def test_plot_speculative(rng):
    models = [(1, "parallel"), (4, "parallel"), (4, "causal")]
    rows = [{"task": task, "n_future": n, "head_type": kind, "k": k, "run_dir": f"{task}-{n}{kind}-{s}",
             "tokens_per_forward": 1 + rng.random() * k, "speedup": 1 + rng.random()}
            for task in ("graph", "polynomial") for n, kind in models for s in (0, 1) for k in range(1, n + 1)]
    df = pd.DataFrame(rows)
    fig = speculative.plot_speculative(df)
    assert [ax.get_title() for ax in fig.axes] == ["graph", "polynomial"] * 2
    ylabels = ["tokens per forward pass"] * 2 + ["speedup over greedy decoding"] * 2
    assert [ax.get_ylabel() for ax in fig.axes] == ylabels
    for i, ax in enumerate(fig.axes):
        task, metric = ("graph", "polynomial")[i % 2], ("tokens_per_forward", "speedup")[i // 2]
        lines = data_lines(ax)
        assert [line.get_label() for line in lines] == ["n=1 parallel", "n=4 causal", "n=4 parallel"]
        part = df[(df["task"] == task) & (df["head_type"] == "causal")]
        assert lines[1].get_ydata() == pytest.approx(part.groupby("k")[metric].mean().to_numpy())
        (ideal,) = [line for line in ax.get_lines() if line.get_gid() == plots.REFERENCE]
        assert list(ideal.get_ydata()) == [1, 2, 3, 4]
        assert ax.get_xlabel() == "heads used k"


def test_summarise_drops_missing_values():
    df = pd.DataFrame({"g": ["a", "a", "b"], "v": [1.0, np.nan, 3.0]})
    table = plots.summarise(df, ["g"], "v")
    assert table.drop(columns=["lo", "hi"]).to_dict("records") == [
        {"g": "a", "mean": 1.0, "min": 1.0, "max": 1.0, "seeds": 1},
        {"g": "b", "mean": 3.0, "min": 3.0, "max": 3.0, "seeds": 1}]
    assert table[["lo", "hi"]].isna().all().all(), "no confidence interval from one seed"


def test_summarise_gives_the_student_t_interval_of_the_mean():
    df = pd.DataFrame({"g": ["a"] * 3, "v": [1.0, 2.0, 6.0]})
    (row,) = plots.summarise(df, ["g"], "v").to_dict("records")
    half = 4.302652729911275 * np.std([1.0, 2.0, 6.0], ddof=1) / np.sqrt(3)  # t(0.975, df=2) from the t table
    assert row["mean"] == 3.0 and row["lo"] == pytest.approx(3.0 - half) and row["hi"] == pytest.approx(3.0 + half)


def test_legends_sit_outside_the_axes_and_axes_carry_words(rng):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    df = scaling_frame(rng)
    fig = plots.plot_vs_size(df, [("best.eval/second_token_acc", plots.metric_name("best.eval/second_token_acc"))])
    FigureCanvasAgg(fig).draw()
    (ax,) = fig.axes
    legend, panel = ax.get_legend().get_window_extent(), ax.get_window_extent()
    assert not legend.overlaps(panel), "the legend covers the plotting area"
    assert ax.get_ylabel() == "second-token accuracy (repeated names)"
    assert plots.metric_name("final.val/exact_match/in_domain") == "in-domain exact match"
    assert plots.metric_name("eval/tf_pos_acc/2") == "tf pos acc/2"  # unknown keys at least lose the prefix


def test_gap_sentences_pair_by_seed_and_give_the_t_interval() -> None:
    import pandas as pd

    from lab.analysis import stats
    rows = [("1M", n, s, v + (0.1 if n == 2 else 0.0)) for n in (1, 2) for s, v in enumerate((0.2, 0.5, 0.3))]
    rows += [("300K", 1, s, v) for s, v in enumerate((0.1, 0.2))] + [("300K", 2, 0, 0.4)]  # one seed paired
    df = pd.DataFrame(rows, columns=["size", "model.n_future", "seed", "v"])
    text = prose.gap_sentences(df, "size", "v", "Accuracy")
    one = stats.format_effect(stats.paired_difference({0: 0.4}, {0: 0.1, 1: 0.2}, method="t"))
    assert text == [f"Accuracy, n=2 minus n=1, paired by seed (95% t CI): {one} at 300K; "
                    "+0.1 [0.1, 0.1] (3 seeds) at 1M."]


def test_plot_pathstar_draws_one_row_per_graph(rng):
    """Runs on three graphs: one titled row each, smallest degree first and the longer path first within one,
    its bars and position lines only from its own runs (a path of 3 nodes is not drawn on the axis of a path
    of 5)."""
    rows = [{"label": f"{v}{suffix}", "seed": s, "task_config.degree": d, "task_config.path_len": k,
             "task_config.num_nodes": 50, "final.eval/exact_path_acc": rng.random(),
             **{f"final.eval/pos_acc/{i}": rng.random() for i in range(1, k + 1)},
             **{f"final.eval/tf_pos_acc/{i}": rng.random() for i in range(1, k + 1)}}
            for d, k, suffix in ((5, 3, "-d5l3"), (2, 3, "-d2l3"), (2, 5, "")) for v in ("next-token", "reverse")
            for s in (0, 1)]
    df = pd.DataFrame(rows)
    fig = pathstar.plot_pathstar(df)
    assert len(fig.axes) == 9
    assert [ax.get_title() for ax in fig.axes[::3]] == ["G(2,5,50)", "G(2,3,50)", "G(5,3,50)"]
    for ax, d, k in ((fig.axes[0], 2, 5), (fig.axes[3], 2, 3), (fig.axes[6], 5, 3)):
        part = df[(df["task_config.degree"] == d) & (df["task_config.path_len"] == k)]
        assert [t.get_text() for t in ax.get_xticklabels()] == sorted(part["label"].unique())
        assert [p.get_height() for p in ax.patches] == pytest.approx(
            part.groupby("label")["final.eval/exact_path_acc"].mean().to_numpy())
        lines = fig.axes[fig.axes.index(ax) + 2]
        assert {len(line.get_xdata()) for line in data_lines(lines)} == {k}
    assert pathstar.pathstar_graphs(df.drop(columns=["task_config.num_nodes"]))[0][0] == ""
