"""Per-head gradient alignment on the trunk: known cases, the sum rule, and that logging it changes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from lab import alignment, runs
from lab.config import ModelConfig
from lab.model import MTPTransformer
from lab.objective import backward_plain, head_targets
from lab.train import train
from tests.test_train import strip_clock, tiny_config


def _model(n: int, seed: int = 0) -> MTPTransformer:
    torch.manual_seed(seed)
    return MTPTransformer(ModelConfig(d_model=32, n_layer=4, n_head=2, n_future=n, vocab_size=17, block_size=16))


def _batch(seed: int = 1) -> tuple[torch.Tensor, list[torch.Tensor], torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    tokens = torch.randint(0, 17, (4, 17), generator=g)
    return tokens[:, :-1], head_targets(tokens, torch.ones_like(tokens, dtype=torch.bool), 3), tokens


def test_a_head_identical_to_head_one_is_perfectly_aligned() -> None:
    model = _model(2)
    model.heads[1].load_state_dict(model.heads[0].state_dict())
    inputs, targets, _ = _batch()
    out = alignment.gradient_alignment(model, [(inputs, [targets[0], targets[0]])])
    assert out["align/cos/head2"] == pytest.approx(1.0, abs=1e-5)
    assert out["align/norm_ratio/head2"] == pytest.approx(1.0, abs=1e-5)
    real = alignment.gradient_alignment(model, [(inputs, targets[:2])])  # head 2 predicting t+2 instead
    assert -1.0 <= real["align/cos/head2"] < 0.999


def test_head_gradients_sum_to_the_trunk_gradient_of_the_summed_loss() -> None:
    model = _model(3)
    inputs, targets, _ = _batch()
    per_head = alignment.head_gradients(model, inputs, targets)
    model.zero_grad()
    backward_plain(model, inputs, targets)
    full = torch.cat([p.grad.reshape(-1) for p in alignment.trunk_parameters(model)])
    assert torch.allclose(sum(per_head), full, atol=1e-6)
    model.zero_grad(set_to_none=True)
    alignment.head_gradients(model, inputs, targets)
    assert all(p.grad is None for p in model.parameters())


def test_one_head_logs_nothing() -> None:
    inputs, targets, _ = _batch()
    assert alignment.gradient_alignment(_model(1), [(inputs, targets[:1])]) == {}


def test_logging_the_mechanism_leaves_training_unchanged(tmp_path: Path) -> None:
    plain = train(tiny_config(), tmp_path, device="cpu", quiet=True)
    logged = train(tiny_config(log_mechanism=True), tmp_path, device="cpu", quiet=True)
    rows = runs.read_jsonl(Path(plain["run_dir"]) / "metrics.jsonl")
    rows_logged = runs.read_jsonl(Path(logged["run_dir"]) / "metrics.jsonl")
    assert all("align/cos/head2" in r and -1 <= r["align/cos/head2"] <= 1 for r in rows_logged)
    assert all(0 <= r["interp/copy_attention_max"] <= 1 for r in rows_logged)  # induction marks its copies
    logged_keys = ("align/", "interp/copy_attention")
    without = [{k: v for k, v in r.items() if not k.startswith(logged_keys)} for r in rows_logged]
    assert strip_clock(without) == strip_clock(rows)
    assert "log_mechanism" not in tiny_config().to_dict()["train"]
