"""`python -m lab.runs ROOT`: a table of runs with typed filters, metric columns, sorting and CSV;
`python -m lab` / `mtp-lab`: the commands, each dispatching to its module's main."""

from __future__ import annotations

import csv
import io
import re
import sys
import types
from pathlib import Path

import pytest

from lab import runs, table
from lab.__main__ import COMMANDS
from lab.__main__ import main as lab_main
from lab.run import build_config
from lab.selection import RunFilter
from lab.train import train
from tasks import ConfigError
from tests.conftest import REPO, run_cli

TINY = ["model.d_model=32", "model.n_head=2", "model.n_layer=3", "train.batch_size=8", "train.eval_every=2",
        "train.checkpoint_every=2", "train.eval_examples=16", "train.final_eval_examples=32",
        "train.val_batches=1", "train.warmup_steps=1", "task.eval_stories=32"]


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    """Three tiny induction runs: n=1 and n=2 at seed 0, and n=2 at seed 1 with lr 3e-3 and 2 mentions."""
    root = tmp_path_factory.mktemp("runs")
    for heads, seed, extra in ((1, 0, []), (2, 0, []), (2, 1, ["train.lr=3e-3", "task.mentions=2"])):
        train(build_config("induction", heads=heads, steps=4, seed=seed, experiment="cli", overrides=TINY + extra),
              root, device="cpu", quiet=True)
    return root


def summaries(root: Path) -> dict[str, dict]:
    return {d.name: runs.read_json(d / runs.SUMMARY) for d in runs.iter_run_dirs(root)}


def table_rows(text: str) -> dict[str, list[str]]:
    lines = text.strip().splitlines()
    assert lines[0].split()[:3] == ["run", "status", "task"] and set(lines[1]) <= {"-", " "}
    return {line.split()[0]: line.split() for line in lines[2:]}


def test_the_table_has_one_row_per_run_with_the_primary_metric(root: Path, capsys) -> None:
    assert table.main([str(root)]) == 0
    header, *_ = capsys.readouterr().out.splitlines()
    assert header.split() == ["run", "status", "task", "size", "model.n_future", "model.head_type", "seed",
                              "train.steps", "metric", "final", "best", "wall"]
    assert table.main([str(root)]) == 0
    rows = table_rows(capsys.readouterr().out)
    expected = summaries(root)
    assert set(rows) == set(expected)
    for name, row in rows.items():
        summary, config = expected[name], runs.read_json(root / "cli" / name / runs.CONFIG)
        metric = summary["primary_metric"]
        assert row[1:9] == ["complete", "induction", "1M", str(config["model"]["n_future"]), "parallel",
                            str(config["seed"]), "4", metric.removeprefix("eval/")]
        assert row[9:11] == [f"{summary['final'][metric]:.4f}", f"{summary['best'][metric]:.4f}"]


def test_the_module_prints_the_table_from_the_shell(root: Path) -> None:
    result = run_cli(["lab.runs", str(root), "--only", "model.n_future=1"])
    assert result.returncode == 0, result.stderr
    (name,) = table_rows(result.stdout)
    assert re.fullmatch(r"induction-1M-n1-parallel-s0-[0-9a-f]{8}", name)


@pytest.mark.parametrize("only, heads_seeds", [
    (["model.n_future=2"], {(2, 0), (2, 1)}),
    (["train.lr=0.001"], {(1, 0), (2, 0)}),
    (["train.lr=1e-3", "model.n_future=2"], {(2, 0)}),
    (["train.lr=3e-3"], {(2, 1)}),
    (["task.mentions=2"], {(2, 1)}),
    (["task.mentions=3"], {(1, 0), (2, 0)}),  # the task's default, not stored in the config
    (["model.match_params=true", "seed=1"], {(2, 1)}),
    (["model.match_params=no"], set()),
    (["task=induction", "status=complete", "size=1M"], {(1, 0), (2, 0), (2, 1)}),
])
def test_only_filters_by_typed_config_values(root: Path, capsys, only: list[str], heads_seeds: set) -> None:
    assert table.main([str(root), "--csv", *[f"--only={o}" for o in only]]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert {(int(r["model.n_future"]), int(r["seed"])) for r in rows} == heads_seeds


def test_the_filter_compares_typed_values_exactly() -> None:
    flat = {"train.lr": 0.001, "seed": 3, "model.bias": False, "train.head_weights": (1.0, 0.5),
            "train.keep_checkpoints": None, "task": "induction", "task_config.mentions": 2, "status": "complete"}

    def ok(*texts: str) -> bool:
        return RunFilter.parse(texts).matches(flat)
    assert ok("train.lr=1e-3") and ok("train.lr=0.001") and not ok("train.lr=1e-4")
    assert ok("seed=3") and not ok("seed=4")
    assert ok("model.bias=false") and ok("model.bias=0") and not ok("model.bias=on")
    assert ok("train.head_weights=1,0.5") and not ok("train.head_weights=1")
    assert ok("train.keep_checkpoints=none") and not ok("train.head_weights=none")
    assert ok("task=induction") and not ok("task=Induction")
    assert ok("task.mentions=2") and ok("task_config.mentions=2") and not ok("task.mentions=3")
    assert ok("status=complete") and not ok("status=running")  # not a config field: text
    assert not ok("model.dropout=0")  # a run without the key
    for key, text in (("train.lr", "fast"), ("model.bias", "maybe"), ("seed", "3.0")):
        with pytest.raises(ConfigError, match=key):
            ok(f"{key}={text}")


def test_metric_columns_sorting_and_csv(root: Path, capsys) -> None:
    metrics = ["eval/second_token_acc", "head1/acc", "train/loss"]
    assert table.main([str(root), "--metrics", ",".join(metrics), "--sort", "train/loss", "--csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert list(rows[0]) == [*table.BASE_COLUMNS, *metrics, "wall"]
    expected = summaries(root)
    for row in rows:
        final = expected[row["run"]]["final"]
        assert [float(row[m]) for m in metrics] == [final[m] for m in metrics]
    losses = [float(r["train/loss"]) for r in rows]
    assert losses == sorted(losses)
    assert table.main([str(root), "--sort", "seed", "--desc", "--csv"]) == 0
    seeds = [int(r["seed"]) for r in csv.DictReader(io.StringIO(capsys.readouterr().out))]
    assert seeds == [1, 0, 0]
    assert table.main([str(root), "--sort", "task.mentions", "--csv"]) == 0  # a config key
    assert [r["seed"] for r in csv.DictReader(io.StringIO(capsys.readouterr().out))][0] == "1"


@pytest.mark.parametrize("args, words", [
    (["--only", "train.lr=fast"], "train.lr"),
    (["--only", "model.n_futures=2"], "model.n_futures"),
    (["--only", "heads"], "KEY=VALUE"),
    (["--only", "model.n_future=2.0"], "model.n_future expects int"),  # exact: no 2.0 for an int field
    (["--metrics", "eval/nope"], "eval/nope"),
    (["--sort", "colour"], "colour"),
])
def test_bad_input_is_one_line_and_exit_2(root: Path, capsys, args: list[str], words: str) -> None:
    assert table.main([str(root), *args]) == 2
    out, err = capsys.readouterr()
    assert out == "" and len(err.strip().splitlines()) == 1 and words in err


def test_a_missing_or_file_root_is_exit_2(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    for root in (tmp_path / "missing", tmp_path / "file"):
        result = run_cli(["lab.runs", str(root)])
        assert result.returncode == 2 and result.stdout == ""
        assert len(result.stderr.strip().splitlines()) == 1 and str(root) in result.stderr


def test_export_goes_to_the_results_store(monkeypatch, capsys) -> None:
    calls = []
    monkeypatch.setitem(sys.modules, "lab.results_cli", types.SimpleNamespace(main=lambda argv: calls.append(argv) or 0))
    assert table.main(["export", "--store", "results"]) == 0
    assert calls == [["export", "--store", "results"]]
    monkeypatch.setitem(sys.modules, "lab.results_cli", None)  # a version without the results store
    assert table.main(["export"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "results" in err[0]


def test_python_m_lab_lists_the_commands() -> None:
    result = run_cli(["lab"])
    assert result.returncode == 0
    listed = [line.split()[0] for line in result.stdout.splitlines() if line.startswith("  ")]
    assert listed == ["run", "sweep", "figures", "eval", "decode", "runs", "results"] == list(COMMANDS)
    bad = run_cli(["lab", "train"])
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1 and "'train'" in bad.stderr


def test_a_command_is_its_module(capsys) -> None:
    args = ["induction", "--show-examples", "1", "--set", "task.seq_len=40"]
    assert lab_main(["run", *args]) == 0
    via_lab = capsys.readouterr().out
    from lab.run import main as run_main
    assert run_main(args) == 0
    assert via_lab == capsys.readouterr().out and "[train 1]" in via_lab


def test_the_console_script_is_the_lab_main() -> None:
    text = (REPO / "pyproject.toml").read_text()
    (target,) = re.findall(r'^mtp-lab = "([\w.]+:\w+)"$', text, flags=re.M)
    module, _, name = target.partition(":")
    __import__(module)
    assert getattr(sys.modules[module], name) is lab_main
