"""Trackers: none does nothing; tensorboard writes each row's numeric metrics as scalars at its step;
an unknown kind or a missing extra is a one-line ConfigError."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from lab.tracking import make_tracker
from tasks import ConfigError

ROWS = [{"step": 5, "tokens": 640, "train/loss": 2.5, "head1/acc": 0.25, "eval/exact_match/ops=3": 0.0,
         "stopped": False, "note": "text"},
        {"step": 10, "tokens": 1280, "train/loss": 1.5, "head1/acc": 0.5, "eval/exact_match/ops=3": 0.125,
         "stopped": False, "note": "text"}]


def test_none_tracker_writes_nothing(tmp_path: Path) -> None:
    tracker = make_tracker("none", tmp_path)
    for row in ROWS:
        tracker.log(row)
    tracker.close()
    assert list(tmp_path.iterdir()) == []


def test_unknown_tracker_lists_the_kinds(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown tracker 'mlflow'; choose one of: none, tensorboard, wandb"):
        make_tracker("mlflow", tmp_path)


def test_tensorboard_tracker_writes_scalars_at_each_step(tmp_path: Path) -> None:
    pytest.importorskip("tensorboard", reason='tensorboard is absent: pip install -e ".[tensorboard]" to test it')
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    tracker = make_tracker("tensorboard", tmp_path)
    for row in ROWS:
        tracker.log(row)
    tracker.close()
    assert list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))
    events = EventAccumulator(str(tmp_path / "tensorboard"))
    events.Reload()
    assert sorted(events.Tags()["scalars"]) == ["eval/exact_match/ops=3", "head1/acc", "tokens", "train/loss"]
    loss = events.Scalars("train/loss")
    assert [(e.step, e.value) for e in loss] == [(5, 2.5), (10, 1.5)]
    assert [e.value for e in events.Scalars("eval/exact_match/ops=3")] == [0.0, 0.125]


def test_missing_tensorboard_is_a_config_error_naming_the_extra(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "tensorboard", None)  # import fails as if not installed
    monkeypatch.delitem(sys.modules, "torch.utils.tensorboard", raising=False)
    with pytest.raises(ConfigError) as error:
        make_tracker("tensorboard", tmp_path)
    message = str(error.value)
    assert "\n" not in message and 'pip install -e ".[tensorboard]"' in message
    assert not (tmp_path / "tensorboard").exists()
