"""Committed bases (lab/bases.py): content digests, the size budget, corruption, and a continuation
that starts from a committed base without its run directory (the fresh-clone case)."""

from __future__ import annotations

import shutil

import pytest
import torch

from lab import bases
from lab.budget import doubling_slope
from lab.errors import ConfigError
from lab.experiments import s6_regime
from lab.finetune import finetune
from lab.resolve import resolve
from lab.runs import read_json, read_jsonl
from lab.train import train


@pytest.fixture(scope="module")
def trained_base(tmp_path_factory):
    """A tiny next-token base on the S6 mixture (a few steps), trained once for the module."""
    root = tmp_path_factory.mktemp("runs")
    config = resolve(s6_regime.base_run("quick", "100K", 0.2, seed=0))[0]
    train(config, root, device="cpu", quiet=True)
    return config, root / s6_regime.EXPERIMENT / config.run_name()


def test_export_is_idempotent_and_names_the_weights(trained_base, tmp_path):
    config, run_dir = trained_base
    digest = bases.export(run_dir, tmp_path)
    assert bases.export(run_dir, tmp_path) == digest
    payload = bases.load(bases.PREFIX + digest, tmp_path)
    state = torch.load(run_dir / "checkpoint.pt", weights_only=True)["model"]
    assert all(torch.equal(payload["model"][k], v) for k, v in state.items())
    assert "optimizer" not in payload
    entry = bases.read_index(tmp_path)[digest]
    assert entry["run_name"] == config.run_name() and entry["tokens_per_param"] == 0.2
    # how converged: the validation loss per doubling of tokens over the run's last doubling
    curve = [r for r in read_jsonl(run_dir / "metrics.jsonl") if "head1/loss" in r]
    assert entry["val_loss_slope_per_doubling"] == pytest.approx(
        doubling_slope([r["tokens"] for r in curve], [r["head1/loss"] for r in curve]), abs=1e-6)
    assert bases.verify(tmp_path) == []


def test_a_corrupted_base_is_refused(trained_base, tmp_path):
    digest = bases.export(trained_base[1], tmp_path)
    payload = torch.load(tmp_path / f"{digest}.pt", weights_only=True)
    payload["model"]["lm_head.weight"][0, 0] += 1.0
    torch.save(payload, tmp_path / f"{digest}.pt")
    with pytest.raises(ConfigError, match="corrupted"):
        bases.load(bases.PREFIX + digest, tmp_path)
    assert bases.verify(tmp_path) == [digest]


def test_the_folder_budget_is_enforced(trained_base, tmp_path, monkeypatch):
    monkeypatch.setattr(bases, "BUDGET_BYTES", 1000)
    with pytest.raises(ConfigError, match="budget"):
        bases.export(trained_base[1], tmp_path)
    assert not list(tmp_path.iterdir())


def test_an_incomplete_run_is_not_committed(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "meta.json").write_text('{"status": "running"}')
    with pytest.raises(ConfigError, match="not complete"):
        bases.export(run_dir, tmp_path / "bases")


def test_a_continuation_runs_from_a_committed_base_without_its_run(trained_base, tmp_path, monkeypatch):
    config, run_dir = trained_base
    folder = tmp_path / "bases"
    digest = bases.export(run_dir, folder)
    monkeypatch.setenv(bases.ENV, str(folder))
    fresh = tmp_path / "fresh"  # no base run here: only the committed weights
    add4 = s6_regime.continuation(config, digest, "add4")
    assert add4.finetune.init_from == f"base:{digest}"
    add4.train.steps = 2
    finetune(resolve(add4)[0], fresh, device="cpu", quiet=True)
    out = fresh / s6_regime.EXPERIMENT
    (done,) = list(out.iterdir())
    assert read_json(done / "meta.json")["status"] == "complete"
    rows = read_jsonl(done / "metrics.jsonl")
    assert rows[0]["step"] == 0 and rows[-1]["step"] == 2
    # H4's measure on the continuation: one cosine per added head, their mean in [-1, 1]
    conflict = s6_regime.measure_conflict(done)["metrics"]
    heads = sorted(k for k in conflict if k.startswith("polynomial/align/cos/head"))
    assert heads == [f"polynomial/align/cos/head{k}" for k in (2, 3, 4)]
    assert -1.0 <= conflict[s6_regime.ALIGN] <= 1.0
    assert conflict[s6_regime.ALIGN] == pytest.approx(sum(conflict[h] for h in heads) / 3)
    shutil.rmtree(fresh)


def test_continuations_are_planned_once_every_seed_of_their_cell_is_committed():
    planned_bases = [resolve(c)[0] for c in s6_regime.bases("quick")]
    cell = [c for c in planned_bases if (c.size, c.train.tokens_per_param)
            == (planned_bases[0].size, planned_bases[0].train.tokens_per_param)]
    digests = {c.run_name(): f"{c.seed:016x}" for c in cell}
    assert len(cell) == 5 and s6_regime.continuations("quick", digests={}) == []
    first = dict(list(digests.items())[:1])  # one seed committed: an arm of one seed is not planned
    assert s6_regime.continuations("quick", digests=first) == []
    planned = s6_regime.continuations("quick", digests=digests)
    assert sorted(c.label.split("-")[0] for c in planned) == sorted(list(s6_regime.VARIANTS) * 5)
    assert {c.finetune.init_from for c in planned} == {f"base:{d}" for d in digests.values()}
    assert all(c.finetune.init_from == f"base:{c.seed:016x}" for c in planned)  # each seed its own base
    assert {c.train.steps for c in planned} == {round(s6_regime.DOSE * cell[0].train.steps)}


def test_the_cli_takes_options_anywhere_and_refuses_a_non_run_in_one_line(trained_base, tmp_path, capsys):
    _, run_dir = trained_base
    folder = tmp_path / "bases"
    assert bases.main(["export", "--dir", str(folder), str(run_dir)]) == 0
    assert len(bases.read_index(folder)) == 1
    assert bases.main(["export", str(tmp_path / "nowhere"), "--dir", str(tmp_path / "other")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "not a run directory" in err and "\n" not in err
    assert not (tmp_path / "other").exists()  # nothing written
