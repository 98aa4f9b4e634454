"""Training runs: the run-directory contract, determinism, and resume after SIGKILL."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from lab import runs
from lab.config import RunConfig
from lab.train import WALL_CLOCK_FIELDS, lr_at, train
from tests.conftest import REPO


def tiny_config(**train_kw) -> RunConfig:
    config = RunConfig(task="induction", task_config={"seq_len": 32, "eval_stories": 32, "mentions": 2},
                       seed=3, size="tiny")
    config.model.d_model, config.model.n_head, config.model.n_layer, config.model.n_future = 32, 2, 3, 2
    t = config.train
    t.steps, t.batch_size, t.eval_every, t.checkpoint_every, t.val_batches, t.warmup_steps = 12, 8, 4, 4, 1, 2
    for k, v in train_kw.items():
        setattr(t, k, v)
    return config


def strip_clock(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in WALL_CLOCK_FIELDS} for r in rows]


def test_run_directory_contract(tmp_path: Path) -> None:
    summary = train(tiny_config(), tmp_path, device="cpu", quiet=True)
    run_dir = Path(summary["run_dir"])
    assert run_dir.parent == tmp_path / "default"
    assert {p.name for p in run_dir.iterdir()} == {"config.json", "meta.json", "metrics.jsonl", "summary.json",
                                                    "checkpoint.pt", "SHA256SUMS"}
    config = runs.read_json(run_dir / "config.json")
    rebuilt = RunConfig.from_dict(config)
    assert rebuilt.run_id() == run_dir.name.rsplit("-", 1)[1]
    meta = runs.read_json(run_dir / "meta.json")
    assert meta["status"] == "complete" and meta["device"] == "cpu" and "torch" in meta["versions"]
    rows = runs.read_jsonl(run_dir / "metrics.jsonl")
    assert [r["step"] for r in rows] == [4, 8, 12]
    for key in ("step", "tokens", "wall_s", "train/loss", "head1/loss", "head1/acc", "head2/loss", "head2/acc",
                "eval/second_token_acc", "eval/filler_loss"):
        assert key in rows[-1], key
    assert rows[-1]["tokens"] == 12 * 8 * 31
    ckpt = torch.load(run_dir / "checkpoint.pt", weights_only=True)
    assert ckpt["state"]["step"] == 12 and "optimizer" in ckpt
    assert summary["final"]["step"] == 12 and summary["best_step"] in (4, 8, 12)
    assert not list(run_dir.glob(".*tmp"))  # no temporary files left behind


def test_same_seed_gives_identical_metrics(tmp_path: Path) -> None:
    a = train(tiny_config(), tmp_path / "a", device="cpu", quiet=True)
    b = train(tiny_config(), tmp_path / "b", device="cpu", quiet=True)
    rows_a = runs.read_jsonl(Path(a["run_dir"]) / "metrics.jsonl")
    rows_b = runs.read_jsonl(Path(b["run_dir"]) / "metrics.jsonl")
    assert strip_clock(rows_a) == strip_clock(rows_b)
    other = tiny_config()
    other.seed = 4
    c = train(other, tmp_path / "c", device="cpu", quiet=True)
    assert strip_clock(runs.read_jsonl(Path(c["run_dir"]) / "metrics.jsonl")) != strip_clock(rows_a)


def test_rerun_skips_complete_and_refuses_foreign_directory(tmp_path: Path) -> None:
    first = train(tiny_config(), tmp_path, device="cpu", quiet=True)
    run_dir = Path(first["run_dir"])
    stamp = (run_dir / "metrics.jsonl").stat().st_mtime_ns
    again = train(tiny_config(), tmp_path, device="cpu", quiet=True)
    assert again == first and (run_dir / "metrics.jsonl").stat().st_mtime_ns == stamp
    # a directory with the same name but another config is never overwritten
    config_path = run_dir / "config.json"
    data = json.loads(config_path.read_text())
    data["seed"] = 99
    config_path.write_text(json.dumps(data))
    try:
        train(tiny_config(), tmp_path, device="cpu", quiet=True)
    except ValueError as e:
        assert "different config" in str(e)
    else:
        raise AssertionError("a foreign run directory was accepted")


def test_resume_from_intermediate_checkpoint_matches_uninterrupted(tmp_path: Path) -> None:
    full = train(tiny_config(), tmp_path / "full", device="cpu", quiet=True)
    short = tiny_config()
    partial_dir = tmp_path / "partial"
    # Train 12 steps but stop after the step-8 checkpoint by faking an interruption there.
    import lab.train as train_mod
    original = train_mod.save_checkpoint
    calls = []

    def interrupting_save(path, model, optimizer, state, config):
        original(path, model, optimizer, state, config)
        calls.append(state.step)
        if state.step == 8 and len(calls) == 2:
            raise KeyboardInterrupt

    train_mod.save_checkpoint = interrupting_save
    try:
        train(short, partial_dir, device="cpu", quiet=True)
    except KeyboardInterrupt:
        pass
    finally:
        train_mod.save_checkpoint = original
    run_dir = next(iter(runs.iter_run_dirs(partial_dir)))
    assert runs.read_json(run_dir / "meta.json")["status"] == "interrupted"
    resumed = train(tiny_config(), partial_dir, device="cpu", quiet=True)
    assert strip_clock([resumed["final"]]) == strip_clock([full["final"]])
    assert strip_clock(runs.read_jsonl(run_dir / "metrics.jsonl")) == \
        strip_clock(runs.read_jsonl(Path(full["run_dir"]) / "metrics.jsonl"))


def test_sigkill_half_way_then_rerun_matches_uninterrupted(tmp_path: Path) -> None:
    """The acceptance test: kill -9 a real CLI run mid-training, rerun the same command."""
    args = ["lab.run", "induction", "--heads", "2", "--size", "100K", "--steps", "40", "--device", "cpu", "--quiet",
            "--set", "train.batch_size=8", "--set", "train.eval_every=10", "--set", "train.checkpoint_every=5",
            "--set", "train.eval_examples=32", "--set", "train.final_eval_examples=64",
            "--set", "task.seq_len=48", "--set", "task.eval_stories=64", "--set", "train.val_batches=1"]
    env = {"PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"}
    reference = subprocess.run([sys.executable, "-m", *args, "--out", str(tmp_path / "ref")], env=env,
                               capture_output=True, text=True, timeout=600)
    assert reference.returncode == 0, reference.stderr
    out = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", *args, "--out", str(out)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    killed_at = None
    while time.time() < deadline and proc.poll() is None:
        ckpts = list(out.rglob("checkpoint.pt"))
        if ckpts:
            step = torch.load(ckpts[0], weights_only=True)["state"]["step"]
            if step >= 15:
                proc.send_signal(signal.SIGKILL)
                killed_at = step
                break
        time.sleep(0.05)
    proc.wait()
    assert killed_at is not None and killed_at < 40, "the run finished before it could be killed"
    run_dir = next(iter(runs.iter_run_dirs(out)))
    assert runs.read_json(run_dir / "meta.json")["status"] == "running"  # killed, not finished
    again = subprocess.run([sys.executable, "-m", *args, "--out", str(out)], env=env, capture_output=True,
                           text=True, timeout=600)
    assert again.returncode == 0, again.stderr
    ref_dir = next(iter(runs.iter_run_dirs(tmp_path / "ref")))
    assert strip_clock(runs.read_jsonl(run_dir / "metrics.jsonl")) == \
        strip_clock(runs.read_jsonl(ref_dir / "metrics.jsonl"))
    assert runs.read_json(run_dir / "meta.json")["resumed_at"]


def test_schedule_warms_up_then_decays_to_floor() -> None:
    config = tiny_config(steps=100, warmup_steps=10, lr=1.0, min_lr_ratio=0.03)
    assert lr_at(0, config) == 0.1 and lr_at(9, config) == 1.0
    assert lr_at(10, config) == 1.0
    assert abs(lr_at(100, config) - 0.03) < 1e-9
    values = [lr_at(s, config) for s in range(10, 100)]
    assert all(a >= b for a, b in zip(values, values[1:]))


def test_early_stopping_stops_after_patience(tmp_path: Path) -> None:
    """With patience 1 a run stops at the first evaluation that does not beat the best one."""
    from lab.train import Trainer, TrainState

    trainer = Trainer(tiny_config(early_stop_patience=1), tmp_path, device="cpu", quiet=True)
    state = TrainState()
    key = f"val/{trainer.task.primary_metric}"
    for step, value in ((4, 0.1), (8, 0.3)):
        trainer._track_best(state, {"step": step, key: value})
        assert not state.stopped_early
    trainer._track_best(state, {"step": 12, key: 0.3})
    assert state.stopped_early and state.best_step == 8 and state.best_value == 0.3


def test_the_best_step_is_never_the_step_before_training(tmp_path: Path) -> None:
    """A finetuning run evaluates step 0 (its checkpoint before any update); however good that row is,
    the best step is one the run trained to, and step 0 counts toward no patience."""
    from lab.train import Trainer, TrainState

    trainer = Trainer(tiny_config(early_stop_patience=1), tmp_path, device="cpu", quiet=True)
    state = TrainState()
    key = f"val/{trainer.task.primary_metric}"
    trainer._track_best(state, {"step": 0, key: 0.9})
    assert state.best_step == -1 and state.evals_since_best == 0 and not state.stopped_early
    for step in (4, 8):
        trainer._track_best(state, {"step": step, key: 0.0})
    assert state.best_step == 4 and state.best_value == 0.0 and state.stopped_early


def test_early_stopping_on_a_graded_loss_outlasts_a_flat_metric(tmp_path: Path) -> None:
    """A metric stuck at 0 (a plateau) with a falling validation NLL: stopping on the NLL keeps the run going,
    the best step stays the primary metric's, and the run stops once the NLL stops falling."""
    from lab.train import Trainer, TrainState

    trainer = Trainer(tiny_config(early_stop_patience=2, early_stop_on="second_token_nll"), tmp_path,
                      device="cpu", quiet=True)
    state = TrainState()
    key = f"val/{trainer.task.primary_metric}"
    for step, nll in ((4, 3.0), (8, 2.9), (12, 2.8), (16, 2.7)):
        trainer._track_best(state, {"step": step, key: 0.0, "val/second_token_nll": nll})
        assert not state.stopped_early
    assert state.best_step == 4  # the primary metric never beat its first value
    for step in (20, 24):
        trainer._track_best(state, {"step": step, key: 0.0, "val/second_token_nll": 2.75})
    assert state.stopped_early
    plain = Trainer(tiny_config(early_stop_patience=2), tmp_path / "plain", device="cpu", quiet=True)
    state = TrainState()
    for step, nll in ((4, 3.0), (8, 2.9), (12, 2.8)):  # the same plateau stops a run on the metric itself
        plain._track_best(state, {"step": step, key: 0.0, "val/second_token_nll": nll})
    assert state.stopped_early


def test_gains_below_the_min_delta_do_not_reset_the_patience(tmp_path: Path) -> None:
    """An NLL creeping down by 1e-4 per evaluation (a run on a ceiling) stops with a min delta of 1e-3, and
    runs on without one; a gain above the delta resets the patience. Same for the primary metric."""
    from lab.train import Trainer, TrainState

    def stops(trainer: Trainer, rows: list[dict[str, float]]) -> Iterator[bool]:
        state = TrainState()
        for step, row in enumerate(rows, start=1):  # step 0 is before training: never a candidate
            trainer._track_best(state, {"step": step, f"val/{trainer.task.primary_metric}": 0.0, **row})
            yield state.stopped_early

    def nll(*values: float) -> list[dict[str, float]]:
        return [{"val/second_token_nll": v} for v in values]

    creeping = nll(3.0, 2.9999, 2.9998, 2.9997)
    on_nll = dict(early_stop_patience=2, early_stop_on="second_token_nll")
    strict = Trainer(tiny_config(**on_nll, early_stop_min_delta=1e-3), tmp_path / "a", device="cpu", quiet=True)
    plain = Trainer(tiny_config(**on_nll), tmp_path / "b", device="cpu", quiet=True)
    assert list(stops(strict, creeping)) == [False, False, True, True]
    assert not any(stops(plain, creeping))
    assert list(stops(strict, nll(3.0, 2.9999, 2.9, 2.8999))) == [False, False, False, False]
    primary = Trainer(tiny_config(early_stop_patience=2, early_stop_min_delta=0.01), tmp_path / "c", device="cpu",
                      quiet=True)
    key = f"val/{primary.task.primary_metric}"
    assert list(stops(primary, [{key: v} for v in (0.5, 0.505, 0.508)])) == [False, False, True]
    assert list(stops(primary, [{key: v} for v in (0.5, 0.505, 0.52)])) == [False, False, False]


def test_the_min_delta_keeps_old_run_ids_and_refuses_a_negative_value() -> None:
    from lab.errors import ConfigError

    assert tiny_config(early_stop_min_delta=0.0).run_id() == tiny_config().run_id()
    assert tiny_config(early_stop_min_delta=1e-3).run_id() != tiny_config().run_id()
    with pytest.raises(ConfigError, match="early_stop_min_delta must not be negative"):
        tiny_config(early_stop_min_delta=-1.0).train.validate()


def test_an_unknown_early_stop_metric_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    from lab.errors import ConfigError
    from lab.train import Trainer

    with pytest.raises(ConfigError, match="not a validation metric of task 'induction'; it has: .*second_token_nll"):
        Trainer(tiny_config(early_stop_patience=2, early_stop_on="second_token_nl"), tmp_path, device="cpu")
    assert not any(tmp_path.iterdir())


def test_best_step_and_early_stopping_never_read_the_test_metric(tmp_path: Path) -> None:
    from lab.train import Trainer, TrainState

    trainer = Trainer(tiny_config(early_stop_patience=1), tmp_path, device="cpu", quiet=True)
    state = TrainState()
    val, test = (f"{p}{trainer.task.primary_metric}" for p in ("val/", "eval/"))
    trainer._track_best(state, {"step": 4, val: 0.5, test: 0.0})
    trainer._track_best(state, {"step": 8, val: 0.1, test: 0.9})  # better on test, worse on validation
    assert state.best_step == 4 and state.stopped_early


def test_runs_log_validation_and_test_metrics_and_report_test_at_the_validation_best(tmp_path: Path) -> None:
    summary = train(tiny_config(), tmp_path, device="cpu", quiet=True)
    rows = runs.read_jsonl(Path(summary["run_dir"]) / "metrics.jsonl")
    assert all("val/second_token_acc" in r and "eval/second_token_acc" in r for r in rows)
    assert all(r["val/filler_loss"] != r["eval/filler_loss"] for r in rows), "two different sets"
    best = max(rows, key=lambda r: (r["val/second_token_acc"], -r["step"]))
    assert summary["selected_on"] == "val/second_token_acc" and summary["best_step"] == best["step"]
    assert summary["best"]["eval/second_token_acc"] == best["eval/second_token_acc"]


def test_interrupted_evaluation_is_redone_on_resume(tmp_path: Path) -> None:
    """Ctrl-C during the step-8 evaluation: the resumed run evaluates step 8 first and ends
    exactly like an uninterrupted run (train/loss windows included)."""
    import lab.train as train_mod

    full = train(tiny_config(), tmp_path / "full", device="cpu", quiet=True)
    original = train_mod.Trainer._log_eval
    calls = []

    def interrupting_eval(self, metrics, state, *args):
        calls.append(state.step)
        if state.step == 8 and calls.count(8) == 1:
            raise KeyboardInterrupt
        return original(self, metrics, state, *args)

    train_mod.Trainer._log_eval = interrupting_eval
    try:
        train(tiny_config(), tmp_path / "cut", device="cpu", quiet=True)
    except KeyboardInterrupt:
        pass
    finally:
        train_mod.Trainer._log_eval = original
    resumed = train(tiny_config(), tmp_path / "cut", device="cpu", quiet=True)
    assert strip_clock(runs.read_jsonl(Path(resumed["run_dir"]) / "metrics.jsonl")) == \
        strip_clock(runs.read_jsonl(Path(full["run_dir"]) / "metrics.jsonl"))


@pytest.mark.parametrize("where", ["start", "resume"])
def test_ctrl_c_while_a_run_starts_marks_it_interrupted_and_it_resumes_exactly(tmp_path: Path, monkeypatch,
                                                                             where: str) -> None:
    """Ctrl-C after meta.json says `running` but before the first step (here: while the live-curve
    tracker opens) leaves the run `interrupted`, not `running`, and the rerun ends like an
    uninterrupted run. On a fresh run no checkpoint is written; on a resumed one it is left as it was."""
    import lab.train as train_module

    full = train(tiny_config(), tmp_path / "full", device="cpu", quiet=True)
    cut = tmp_path / "cut"
    if where == "resume":  # a first segment that stops after the step-8 checkpoint
        original = train_module.save_checkpoint

        def stop_at_8(path, model, optimizer, state, config):
            original(path, model, optimizer, state, config)
            if state.step == 8:
                raise KeyboardInterrupt

        monkeypatch.setattr(train_module, "save_checkpoint", stop_at_8)
        with pytest.raises(KeyboardInterrupt):
            train(tiny_config(), cut, device="cpu", quiet=True)
        monkeypatch.setattr(train_module, "save_checkpoint", original)
    run_dirs = list(runs.iter_run_dirs(cut))
    before = (run_dirs[0] / runs.CHECKPOINT).read_bytes() if run_dirs else None

    def refuse(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(train_module, "make_tracker", refuse)
    with pytest.raises(KeyboardInterrupt):
        train(tiny_config(), cut, device="cpu", quiet=True)
    run_dir = next(iter(runs.iter_run_dirs(cut)))
    assert runs.read_json(run_dir / runs.META)["status"] == "interrupted"
    checkpoint = run_dir / runs.CHECKPOINT
    assert (checkpoint.read_bytes() if checkpoint.exists() else None) == before
    monkeypatch.undo()
    resumed = train(tiny_config(), cut, device="cpu", quiet=True)
    assert strip_clock(runs.read_jsonl(Path(resumed["run_dir"]) / runs.METRICS)) == \
        strip_clock(runs.read_jsonl(Path(full["run_dir"]) / runs.METRICS))


def test_trainer_leaves_the_config_alone_and_tracks_every_eval_row(tmp_path: Path, monkeypatch) -> None:
    import copy

    from lab import train as train_module
    from lab.train import Trainer
    logged, closed = [], []

    class Recorder:
        def log(self, row: dict) -> None:
            logged.append(row)

        def close(self) -> None:
            closed.append(True)

    kinds = []
    monkeypatch.setattr(train_module, "make_tracker", lambda kind, run_dir, config: kinds.append(kind) or Recorder())
    monkeypatch.setattr("lab.resolve.check_available", lambda kind: None)  # as if tensorboard were installed
    config = tiny_config(log="tensorboard")
    before = copy.deepcopy(config)
    trainer = Trainer(config, tmp_path, device="cpu", quiet=True)
    assert config == before and config.model.vocab_size == 0  # the caller's object is not filled in
    assert trainer.config.model.vocab_size > 0 and trainer.run_dir.name == trainer.config.run_name()
    summary = trainer.run()
    rows = runs.read_jsonl(Path(summary["run_dir"]) / "metrics.jsonl")
    assert kinds == ["tensorboard"] and logged == rows and [r["step"] for r in rows] == [4, 8, 12]
    assert closed == [True] and runs.read_json(Path(summary["run_dir"]) / "meta.json")["log"] == "tensorboard"
    # the logging choice is bookkeeping: the same run, complete already
    assert Trainer(tiny_config(), tmp_path, device="cpu", quiet=True).run_dir == trainer.run_dir


def test_stop_at_ends_the_run_at_the_first_evaluation_reaching_it(tmp_path: Path) -> None:
    """`train.stop_at`: the run is the uninterrupted run cut at the first evaluation whose validation
    primary metric reaches the value (here scripted per step on top of the real evaluation, since a
    tiny run learns no induction), and the field stays out of the run id while it is off."""
    from lab.train import Trainer

    class Scripted(Trainer):  # validation values of the evaluations at steps 4, 8 and 12
        values = (0.1, 0.35, 0.5)

        def evaluate(self, max_examples):
            self.calls = getattr(self, "calls", 0) + 1
            return {**super().evaluate(max_examples), "val/second_token_acc": self.values[self.calls - 1]}

    full = Scripted(tiny_config(), tmp_path, device="cpu", quiet=True).run()
    config = tiny_config(stop_at=0.3)
    assert "stop_at" not in tiny_config().to_dict()["train"] and config.run_id() != tiny_config().run_id()
    cut = Scripted(config, tmp_path, device="cpu", quiet=True).run()
    rows = runs.read_jsonl(Path(full["run_dir"]) / "metrics.jsonl")
    cut_rows = runs.read_jsonl(Path(cut["run_dir"]) / "metrics.jsonl")
    assert [r["step"] for r in rows] == [4, 8, 12] and not full["stopped_early"]
    assert cut["steps"] == 8 and cut["stopped_early"] and [r["step"] for r in cut_rows] == [4, 8]
    assert strip_clock(cut_rows) == strip_clock(rows[:2])
