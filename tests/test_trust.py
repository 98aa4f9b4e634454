"""Runs you can trust after a kill, a crash, a typo or a full disk: one test (or more) per fault.

Finetuning flags are applied or refused, partial checkpoints are refused, a diverged run fails,
conflicting options are refused, `--print-config` is what a run stores and `--config` reads it
back, SIGTERM resumes like Ctrl-C, corrupt files get one line, a full disk and a read-only mount
are named, a closed pipe does not kill a run, bad input writes nothing, the results store is found
from any folder, short runs show a curve, and the W&B tracker logs offline.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lab import baseline, checkpoints, results, runs
from lab.run import main
from tests.conftest import REPO, run_cli

TINY = [
    "--size",
    "100K",
    "--device",
    "cpu",
    "--set",
    "task.seq_len=48",
    "--set",
    "task.eval_stories=16",
    "--set",
    "train.batch_size=8",
    "--set",
    "train.eval_examples=16",
    "--set",
    "train.final_eval_examples=32",
    "--set",
    "train.val_batches=1",
]
UNTIMED = ("wall_s", "tokens_per_s")


def run_dirs(root: Path) -> list[Path]:
    return list(runs.iter_run_dirs(root))


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and "Traceback" not in err[0], err
    return err[0]


def timeless(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in UNTIMED} for r in rows]


def importlib_absent(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is None


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A complete 1-head run of 6 steps (the source of finetuning and decoding tests)."""
    out = tmp_path_factory.mktemp("src")
    assert main(["induction", "--steps", "6", "--quiet", "--out", str(out), *TINY]) == 0
    (run_dir,) = run_dirs(out)
    return run_dir


def copy_run(run_dir: Path, tmp_path: Path, name: str = "copy") -> Path:
    target = tmp_path / "runs" / "default" / name
    shutil.copytree(run_dir, target)
    return target


def make_partial(run_dir: Path) -> Path:
    """A run that did not finish: meta says interrupted, no summary."""
    meta = runs.read_json(run_dir / runs.META)
    runs.write_json(run_dir / runs.META, {**meta, "status": "interrupted"})
    (run_dir / runs.SUMMARY).unlink()
    return run_dir


# ----- 1. finetuning applies or refuses model flags -----


@pytest.mark.parametrize(
    "flags,needle",
    [
        (["--head-type", "causal"], "--head-type causal"),
        (["--head-type", "foo"], "--head-type foo"),
        (["--size", "300K"], "--size 300K"),
        (["--match-params", "on"], "--match-params on"),
        (["--set", "model.dropout=0.1"], "--set model.dropout=0.1"),
    ],
)
def test_finetuning_refuses_a_model_flag_that_the_checkpoint_overrides(
    trained: Path, tmp_path: Path, capsys, flags: list[str], needle: str
) -> None:
    out = tmp_path / "ft"
    code = main(
        [
            "induction",
            "--init-from",
            str(trained),
            "--heads",
            "2",
            "--attach",
            "add",
            "--steps",
            "2",
            "--out",
            str(out),
            *TINY[2:],
            *flags,
        ]
    )
    line = one_line_error(capsys)
    assert code == 2 and needle in line and "checkpoint" in line
    assert not out.exists()


def test_finetuning_accepts_a_flag_that_agrees_with_the_checkpoint(
    trained: Path, tmp_path: Path, capsys
) -> None:
    code = main(
        [
            "induction",
            "--init-from",
            str(trained),
            "--heads",
            "2",
            "--attach",
            "add",
            "--size",
            "100K",
            "--print-config",
            "--out",
            str(tmp_path),
            *TINY[2:],
        ]
    )
    printed = json.loads(capsys.readouterr().out)
    assert code == 0 and printed["size"] == "100K" and printed["model"]["n_future"] == 2


# ----- 2. partial checkpoints are refused unless asked for -----


def test_init_from_a_partial_run_is_refused_unless_allowed(
    trained: Path, tmp_path: Path, capsys
) -> None:
    partial = make_partial(copy_run(trained, tmp_path))
    args = [
        "induction",
        "--init-from",
        str(partial),
        "--steps",
        "2",
        "--quiet",
        "--out",
        str(tmp_path / "ft"),
        *TINY[2:],
    ]
    assert main(args) == 2
    line = one_line_error(capsys)
    assert "not a complete run (status: interrupted)" in line and "--allow-incomplete" in line
    assert not (tmp_path / "ft").exists()
    assert main([*args, "--allow-incomplete"]) == 0
    assert "warning:" in capsys.readouterr().err and len(run_dirs(tmp_path / "ft")) == 1


def test_decode_refuses_a_partial_run_and_never_writes_into_it(
    trained: Path, tmp_path: Path, capsys
) -> None:
    from lab.decode_bench import main as decode_main

    partial = make_partial(copy_run(trained, tmp_path))
    small = [str(partial), "--batch", "2", "--batches", "1", "--max-new", "4", "--repeats", "1"]
    assert decode_main(small) == 2 and "not a complete run" in one_line_error(capsys)
    assert decode_main([*small, "--allow-incomplete"]) == 0
    assert not (partial / "speculative.json").exists()


# ----- 3. a diverged run fails, writes null, is never a baseline -----


def test_a_diverged_run_fails_with_the_step_and_is_never_selected(tmp_path: Path, capsys) -> None:
    code = main(
        [
            "induction",
            "--steps",
            "20",
            "--quiet",
            "--out",
            str(tmp_path),
            *TINY,
            "--set",
            "train.lr=1e6",
            "--set",
            "train.eval_every=2",
        ]
    )
    assert code == 1
    (run_dir,) = run_dirs(tmp_path)
    meta = runs.read_json(run_dir / runs.META)
    assert meta["status"] == "failed" and meta["error"].startswith("diverged at step ")
    assert "diverged at step" in capsys.readouterr().err
    text = (run_dir / runs.METRICS).read_text()
    for line in text.splitlines():  # strict JSON: NaN and Infinity are not JSON
        json.loads(line, parse_constant=lambda c: pytest.fail(f"{c} in metrics.jsonl"))
    assert runs.run_state(run_dir) == "failed" and run_dir not in results.complete_dirs(tmp_path)
    config = runs.read_json(run_dir / runs.CONFIG)
    config["model"]["n_future"] = 2
    assert baseline.find_next_token(config, tmp_path, tmp_path / "no-store") == []


def test_non_finite_numbers_are_bad_input(tmp_path: Path, capsys) -> None:
    for value in ("inf", "nan"):
        assert (
            main(["induction", "--set", f"train.lr={value}", "--out", str(tmp_path / "r"), *TINY])
            == 2
        )
        assert "train.lr must be a finite number" in one_line_error(capsys)
    assert not (tmp_path / "r").exists()


def test_non_finite_metrics_are_written_as_null_and_read_as_nan(tmp_path: Path) -> None:
    runs.write_jsonl(
        tmp_path / "m.jsonl", [{"step": 1, "a": float("nan"), "b": float("inf"), "c": 0.5}]
    )
    assert json.loads((tmp_path / "m.jsonl").read_text()) == {
        "step": 1,
        "a": None,
        "b": None,
        "c": 0.5,
    }
    (row,) = runs.read_jsonl(tmp_path / "m.jsonl")
    assert row["a"] != row["a"] and row["c"] == 0.5


# ----- 4. conflicting options are refused -----


@pytest.mark.parametrize(
    "args,needle",
    [
        (["--seed", "2", "--set", "seed=3"], "--seed 2 conflicts with --set seed=3"),
        (
            ["--heads", "4", "--set", "model.n_future=2"],
            "--heads 4 conflicts with --set model.n_future=2",
        ),
        (
            ["--steps", "100", "--set", "train.steps=60"],
            "--steps 100 conflicts with --set train.steps=60",
        ),
        (["--size", "100K", "--set", "size=300K"], "--size 100K conflicts with --set size=300K"),
        (["--set", "size=5K"], "size=5K is not a size preset"),
    ],
)
def test_conflicting_options_are_refused(
    tmp_path: Path, capsys, args: list[str], needle: str
) -> None:
    assert main(["induction", *args, "--out", str(tmp_path / "r")]) == 2
    assert needle in one_line_error(capsys)
    assert not (tmp_path / "r").exists()


def test_set_size_to_a_preset_gives_its_shape(tmp_path: Path, capsys) -> None:
    assert main(["induction", "--set", "size=300K", "--print-config", "--out", str(tmp_path)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["size"] == "300K" and printed["model"]["d_model"] == 72
    assert (
        main(
            [
                "induction",
                "--seed",
                "3",
                "--set",
                "seed=3",
                "--print-config",
                "--out",
                str(tmp_path),
            ]
        )
        == 0
    )


# ----- 5 and 13. --print-config is config.json; --config reads it back -----


def test_print_config_is_the_stored_config_and_config_reruns_it(
    trained: Path, tmp_path: Path, capsys
) -> None:
    out = trained.parents[1]
    assert main(["induction", "--steps", "6", "--print-config", "--out", str(out), *TINY]) == 0
    printed = capsys.readouterr().out
    assert json.loads(printed) == runs.read_json(trained / runs.CONFIG)
    file = tmp_path / "printed.json"
    file.write_text(printed)
    for source in (file, trained / runs.CONFIG):  # from any folder: the same run, complete already
        assert main(["--config", str(source), "--out", str(out), "--device", "cpu"]) == 0
        assert f"run: {trained}" in capsys.readouterr().out
    assert main(["--config", str(file), "--seed", "1", "--print-config", "--out", str(out)]) == 0
    assert json.loads(capsys.readouterr().out)["seed"] == 1
    (tmp_path / "bad.json").write_text('{"model": 3}')
    assert main(["--config", str(tmp_path / "bad.json"), "--out", str(out)]) == 2
    assert "not an mtp-lab config" in one_line_error(capsys)


# ----- 6. SIGTERM resumes like Ctrl-C; a dead run shows as stale -----


def start(out: Path, steps: int) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    args = [
        sys.executable,
        "-m",
        "lab.run",
        "induction",
        "--steps",
        str(steps),
        "--quiet",
        "--out",
        str(out),
        *TINY,
        "--set",
        "train.eval_every=10",
    ]
    return subprocess.Popen(
        args, env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )


def wait_for_rows(out: Path, rows: int, proc: subprocess.Popen) -> Path:
    for _ in range(600):
        found = run_dirs(out)
        if found and len(runs.read_jsonl(found[0] / runs.METRICS)) >= rows:
            return found[0]
        assert proc.poll() is None, proc.stderr.read()
        time.sleep(0.1)
    pytest.fail("the run never logged")


def test_sigterm_saves_and_a_rerun_gives_identical_metrics(tmp_path: Path) -> None:
    proc = start(tmp_path / "a", 80)
    run_dir = wait_for_rows(tmp_path / "a", 2, proc)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=120) == 143, proc.stderr.read()
    assert "interrupted by SIGTERM" in proc.stderr.read()
    meta = runs.read_json(run_dir / runs.META)
    assert meta["status"] == "interrupted" and meta["interrupted_by"] == "signal SIGTERM"
    assert runs.run_state(run_dir) == "interrupted"
    assert start(tmp_path / "a", 80).wait(timeout=300) == 0
    assert start(tmp_path / "b", 80).wait(timeout=300) == 0
    (straight,) = run_dirs(tmp_path / "b")
    resumed = runs.read_jsonl(run_dir / runs.METRICS)
    assert runs.read_json(run_dir / runs.META)["resumed_at"] and len(resumed) == 8
    assert timeless(resumed) == timeless(runs.read_jsonl(straight / runs.METRICS))


def test_a_killed_run_is_stale_not_running(tmp_path: Path) -> None:
    proc = start(tmp_path, 400)
    run_dir = wait_for_rows(tmp_path, 1, proc)
    assert runs.run_state(run_dir) == "running"  # its process holds the lock
    proc.kill()
    proc.wait(timeout=60)
    assert runs.read_json(run_dir / runs.META)["status"] == "running"  # what the dead process left
    assert runs.run_state(run_dir) == "stale" and runs.run_record(run_dir)["status"] == "stale"
    table = run_cli(["lab.runs", str(tmp_path)])
    assert "stale" in table.stdout and "running" not in table.stdout, table.stdout


# ----- 7. corrupt run files: one line naming the file and the fix -----


def test_truncated_checkpoint_or_config_in_eval_and_decode(
    trained: Path, tmp_path: Path, capsys
) -> None:
    from lab.decode_bench import main as decode_main
    from lab.eval import main as eval_main

    bad = copy_run(trained, tmp_path)
    data = (bad / runs.CHECKPOINT).read_bytes()
    (bad / runs.CHECKPOINT).write_bytes(data[: len(data) // 2])
    assert (
        eval_main([str(bad)]) == 2
    )  # a complete run whose checkpoint changed: the checksum says so
    assert "checkpoint.pt does not match the checksum" in one_line_error(capsys)
    (
        bad / checkpoints.CHECKSUMS
    ).unlink()  # a run from before checksums: torch's error, in one line
    assert eval_main([str(bad)]) == 2
    line = one_line_error(capsys)
    assert "checkpoint.pt is truncated or corrupt" in line and "retrain" in line
    (bad / runs.CHECKPOINT).write_bytes(b"")
    assert decode_main([str(bad), "--batch", "2", "--batches", "1"]) == 2
    assert "checkpoint.pt is empty" in one_line_error(capsys)
    (bad / runs.CONFIG).write_text('{"task": "induction", "mod')
    assert decode_main([str(bad)]) == 2 and "config.json is unreadable" in one_line_error(capsys)


def test_broken_meta_on_a_rerun_is_named(trained: Path, tmp_path: Path, capsys) -> None:
    run_dir = copy_run(trained, tmp_path, trained.name)
    (run_dir / runs.META).write_text('{"status": "comp')
    assert (
        main(["induction", "--steps", "6", "--quiet", "--out", str(tmp_path / "runs"), *TINY]) == 2
    )
    line = one_line_error(capsys)
    assert "meta.json is unreadable" in line and "delete it" in line


def test_an_empty_checkpoint_on_resume_fails_in_one_line_with_the_traceback_kept(
    trained: Path, tmp_path: Path, capsys
) -> None:
    run_dir = make_partial(copy_run(trained, tmp_path, trained.name))
    (run_dir / runs.CHECKPOINT).write_bytes(b"")
    assert (
        main(["induction", "--steps", "6", "--quiet", "--out", str(tmp_path / "runs"), *TINY]) == 1
    )
    line = one_line_error(capsys)
    assert "checkpoint.pt is empty" in line and "EOFError:" not in line.split("(")[0]
    meta = runs.read_json(run_dir / runs.META)
    assert meta["status"] == "failed" and "checkpoint.pt is empty" in meta["error"]
    assert "Traceback" in (run_dir / runs.TRACEBACK).read_text()


def test_a_complete_run_with_corrupted_metrics_is_not_complete_already(
    trained: Path, tmp_path: Path, capsys
) -> None:
    run_dir = copy_run(trained, tmp_path, trained.name)
    lines = (run_dir / runs.METRICS).read_text().splitlines()
    (run_dir / runs.METRICS).write_text("\n".join(lines[:-1]) + "\n")
    assert main(["induction", "--steps", "6", "--out", str(tmp_path / "runs"), *TINY]) == 2
    line = one_line_error(capsys)
    assert "metrics.jsonl does not match the checksum" in line and "rerun" in line


# ----- 8. a full disk, a read-only mount -----


def test_a_full_disk_is_one_line_naming_the_device(tmp_path: Path, capsys, monkeypatch) -> None:
    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(runs.os, "fsync", full)
    assert main(["induction", "--steps", "4", "--quiet", "--out", str(tmp_path), *TINY]) == 1
    line = one_line_error(capsys)
    assert (
        "is full" in line
        and f"mounted at {runs.mount_point(tmp_path)}" in line
        and "torch" not in line
    )


def test_atomic_write_on_a_full_disk_keeps_the_old_file(tmp_path: Path, monkeypatch) -> None:
    target = tmp_path / "f.json"
    runs.write_json(target, {"a": 1})
    monkeypatch.setattr(
        runs.os, "fsync", lambda fd: (_ for _ in ()).throw(OSError(errno.ENOSPC, "full"))
    )
    with pytest.raises(runs.DiskError, match="is full"):
        runs.write_json(target, {"a": 2})
    assert runs.read_json(target) == {"a": 1} and [p.name for p in tmp_path.iterdir()] == ["f.json"]


def test_a_complete_run_on_a_read_only_mount_prints_its_summary(
    trained: Path, capsys, monkeypatch
) -> None:
    import lab.run as run_module

    def read_only(out: Path) -> None:
        raise run_module.ConfigError(
            f"--out {out}: cannot create directories (Read-only file system)"
        )

    monkeypatch.setattr(run_module, "check_writable", read_only)
    assert main(["induction", "--steps", "6", "--out", str(trained.parents[1]), *TINY]) == 0
    assert f"run: {trained}" in capsys.readouterr().out


# ----- 9. output piped into head -----


def test_a_closed_pipe_does_not_kill_the_run(tmp_path: Path) -> None:
    command = (
        f"{sys.executable} -m lab.run induction --steps 30 --out {tmp_path} {' '.join(TINY)} "
        "--set train.eval_every=2 | head -1; echo rc=${PIPESTATUS[0]}"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        ["bash", "-c", command], env=env, cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert "rc=0" in result.stdout, result.stderr
    (run_dir,) = run_dirs(tmp_path)
    assert runs.read_json(run_dir / runs.META)["status"] == "complete"
    assert "BrokenPipe" not in result.stderr


# ----- 10. bad input: exit 2, one line, nothing written -----


@pytest.mark.parametrize(
    "args,needle",
    [
        (["--heads", "200"], "--heads 200 exceeds"),
        (["--seed", "-1"], "--seed must not be negative"),
        (["--experiment", "../x"], "--experiment '../x' is not allowed"),
        (["--set", "experiment=a/b"], "--experiment 'a/b' is not allowed"),
        (["--set", "label=../y"], "label '../y' is not allowed"),
        (["--show-examples", "-1"], "--show-examples must not be negative"),
        (["--set", "train.head_weights=1,inf"], "finite"),
        (
            ["--set", "train.log=wandb"]
            if importlib_absent("wandb")
            else ["--set", "train.log=nosuch"],
            "wandb" if importlib_absent("wandb") else "unknown train.log",
        ),
        (["--config", "/nonexistent/config.json"], "--config /nonexistent/config.json"),
        ([], "give a TASK"),
    ],
)
def test_bad_input_writes_nothing(tmp_path: Path, capsys, args: list[str], needle: str) -> None:
    task = [] if "--config" in args or not args else ["induction"]
    out = tmp_path / "r"
    assert main([*task, *args, "--out", str(out)]) == 2
    assert needle in one_line_error(capsys)
    assert not out.exists() and not (tmp_path / "x").exists()


def test_missing_tensorboard_is_refused_before_anything_is_written(
    tmp_path: Path, capsys, monkeypatch
) -> None:
    monkeypatch.setitem(sys.modules, "tensorboard", None)
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)
    assert (
        main(["induction", "--set", "train.log=tensorboard", "--out", str(tmp_path / "r"), *TINY])
        == 2
    )
    assert 'pip install -e ".[tensorboard]"' in one_line_error(capsys)
    assert not (tmp_path / "r").exists()


def test_decode_refuses_a_batch_too_large_for_memory(trained: Path, capsys) -> None:
    from lab.decode_bench import main as decode_main

    assert decode_main([str(trained), "--batch", "100000"]) == 2
    assert "--batch 100000 is too large" in one_line_error(capsys)
    assert decode_main([str(trained), "--batch", "4000", "--batches", "10"]) == 2
    assert "at most" in one_line_error(capsys)
    assert not (trained / "speculative.json").exists()


# ----- 11. the results store from any folder -----


def committed_count() -> int:
    return sum(results.counts(REPO / "results").values())


def test_results_list_from_outside_the_checkout_counts_the_committed_runs(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    env.pop(results.HOME_VARIABLE, None)
    listed = subprocess.run(
        [sys.executable, "-m", "lab", "results", "list"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert committed_count() > 0 and f"{committed_count()} runs in" in listed.stdout, listed.stderr
    home = subprocess.run(
        [sys.executable, "-m", "lab", "results", "list"],
        cwd=tmp_path,
        capture_output=True,
        env={**env, results.HOME_VARIABLE: str(tmp_path)},
        text=True,
        timeout=120,
    )
    assert "0 runs in" in home.stdout and "warning: no results store" in home.stderr


def test_the_first_commands_baseline_is_found_from_outside_the_checkout(tmp_path: Path) -> None:
    code = (
        "from lab.build import build_config, match_setting\n"
        "from lab.resolve import resolve\n"
        "from lab.baseline import comparison_lines, find_next_token\n"
        "built = build_config('induction', 4, overrides=[match_setting('off')])\n"
        "config = resolve(built)[0].to_dict()\n"
        "print(len(find_next_token(config, 'runs')))\n"
        "summary = {'primary_metric': 'eval/second_token_acc', 'best': {}}\n"
        "print(comparison_lines(config, summary, 'runs')[1])\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    env.pop(results.HOME_VARIABLE, None)
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    count, line = result.stdout.splitlines()[:2]
    assert int(count) == 5 and re.fullmatch(
        r"  n=1 seed 0: [01]\.\d{4}   \(.*results/headline\..*", line
    ), result.stdout + result.stderr


# ----- 12. evaluation cadence and logs -----


def test_a_short_run_evaluates_on_a_scaled_cadence_and_quiet_keeps_eval_lines(
    tmp_path: Path,
) -> None:
    result = run_cli(
        ["lab.run", "induction", "--steps", "20", "--quiet", "--out", str(tmp_path), *TINY]
    )
    assert result.returncode == 0, result.stderr
    (run_dir,) = run_dirs(tmp_path)
    assert [r["step"] for r in runs.read_jsonl(run_dir / runs.METRICS)] == list(range(2, 21, 2))
    assert "exceeds train.steps" not in result.stderr
    assert result.stdout.count("step 2: train/loss") == 1  # --quiet keeps the evaluation lines
    assert "\r" not in result.stderr and "it/s" not in result.stderr  # no bar frames into a pipe


# ----- 14. Weights & Biases -----


def test_wandb_tracker_logs_offline_into_the_run_directory(tmp_path: Path, monkeypatch) -> None:
    wandb = pytest.importorskip(
        "wandb", reason='wandb is absent: pip install -e ".[wandb]" to test it'
    )
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.setenv("WANDB_SILENT", "true")
    from lab.tracking import make_tracker

    tracker = make_tracker("wandb", tmp_path, {"seed": 0})
    tracker.log({"step": 5, "train/loss": 2.5, "note": "text", "x": float("nan")})
    tracker.log({"step": 10, "train/loss": 1.5})
    assert tracker.run.offline and tracker.run.config["seed"] == 0
    tracker.close()
    wandb.teardown()  # the W&B service writes the run file: wait for it
    (offline,) = (tmp_path / "wandb").glob("offline-run-*")
    (record,) = offline.glob("*.wandb")
    data = record.read_bytes()  # the history, to upload later with `wandb sync`
    assert b"train/loss" in data and b"1.5" in data and b"note" not in data


def test_missing_wandb_is_a_config_error_naming_the_extra(tmp_path: Path, monkeypatch) -> None:
    from lab.tracking import make_tracker
    from tasks import ConfigError

    monkeypatch.setitem(sys.modules, "wandb", None)
    with pytest.raises(ConfigError, match=r'pip install -e "\.\[wandb\]"'):
        make_tracker("wandb", tmp_path)
    assert not list(tmp_path.iterdir())
