"""Data-parallel training: slices of a batch give the full batch's gradient, and a 2-process
torchrun run (gloo, CPU) matches a single process on the same global batches."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from lab import runs
from lab.config import ModelConfig
from lab.distributed import DataParallel, shard_weights
from lab.model import MTPTransformer
from lab.objective import IGNORE, forward_backward, head_targets
from tests.conftest import run_cli


def grads(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("head_type", ["parallel", "causal", "deepseek"])
@pytest.mark.parametrize("efficient", [True, False])
def test_slices_sum_to_the_full_batch_gradient(head_type: str, efficient: bool) -> None:
    torch.manual_seed(0)
    config = ModelConfig(d_model=16, n_layer=4, n_head=2, n_future=3, head_type=head_type, vocab_size=11,
                         block_size=12)
    model = MTPTransformer(config)
    tokens = torch.randint(0, 11, (7, 13))
    mask = torch.rand(7, 13) < torch.linspace(0.1, 0.9, 7)[:, None]  # rows count very different targets
    inputs, targets = tokens[:, :-1], head_targets(tokens, mask, 3)
    weights = [1.0, 0.5, 0.25]
    full = forward_backward(model, inputs, targets, efficient, weights)
    expected = grads(model)
    model.zero_grad(set_to_none=True)

    world = 2
    counts = []
    for rank in range(world):  # both "ranks" in one process; their gradients add up in .grad
        rows = DataParallel(rank, world).rows(7)
        local = [t[rows] for t in targets]
        shares = shard_weights(targets, local)
        counts.append([int((t != IGNORE).sum()) for t in local])
        forward_backward(model, inputs[rows], local, efficient, [w * f for w, f in zip(weights, shares)])
    assert counts[0] != counts[1]  # the slices really do count different numbers of targets
    summed = grads(model)
    assert summed.keys() == expected.keys()
    for name in expected:
        torch.testing.assert_close(summed[name], expected[name], rtol=1e-4, atol=1e-6, msg=name)
    assert full.head_count == [a + b for a, b in zip(*counts)]


TINY = ["--heads", "2", "--steps", "6", "--device", "cpu", "--set", "model.d_model=32", "--set", "model.n_head=2",
        "--set", "model.n_layer=3", "--set", "train.batch_size=8", "--set", "train.eval_every=3",
        "--set", "train.checkpoint_every=3", "--set", "train.val_batches=1", "--set", "train.warmup_steps=2",
        "--set", "task.loss_on=all", "--set", "task.max_ops=2", "--set", "task.eval_ops=2",
        "--set", "task.eval_size=16", "--set", "train.eval_examples=16"]


def test_torchrun_two_processes_match_one_process(tmp_path: Path) -> None:
    # task.loss_on=all: rows of different lengths, so the two halves count different targets
    ddp = run_cli(["torch.distributed.run", "--standalone", "--nproc-per-node", "2", "-m", "lab.run", "polynomial",
                   *TINY, "--out", str(tmp_path / "ddp")], timeout=300)
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    single = run_cli(["lab.run", "polynomial", *TINY, "--quiet", "--out", str(tmp_path / "one")], timeout=300)
    assert single.returncode == 0, single.stderr[-3000:]
    assert ddp.stdout.count("run: ") == 1  # only rank 0 prints the summary

    (ddp_dir,) = runs.iter_run_dirs(tmp_path / "ddp")
    (one_dir,) = runs.iter_run_dirs(tmp_path / "one")
    assert ddp_dir.name == one_dir.name  # same config, same run id: the process count is not part of it
    assert runs.read_json(ddp_dir / "meta.json")["processes"] == 2
    assert not [p for p in ddp_dir.iterdir() if p.name.startswith(".")]  # no stray temporaries or lock
    rows_ddp, rows_one = runs.read_jsonl(ddp_dir / "metrics.jsonl"), runs.read_jsonl(one_dir / "metrics.jsonl")
    assert [r["step"] for r in rows_ddp] == [r["step"] for r in rows_one] == [3, 6]
    for a, b in zip(rows_ddp, rows_one):
        assert a["tokens"] == b["tokens"]
        for key in a:
            if key.endswith("loss") or key.endswith("acc") or key.startswith("eval/"):
                assert a[key] == pytest.approx(b[key], rel=1e-5, abs=1e-6), (key, json.dumps([a[key], b[key]]))
    params_ddp = torch.load(ddp_dir / "checkpoint.pt", weights_only=True)["model"]
    params_one = torch.load(one_dir / "checkpoint.pt", weights_only=True)["model"]
    for name in params_one:
        torch.testing.assert_close(params_ddp[name], params_one[name], rtol=0, atol=1e-5, msg=name)
