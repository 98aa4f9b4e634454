"""A new head type is one class plus its registration: training, evaluation, decoding and
finetuning all work with it without touching any other file.

The toy type below mixes what the built-in types declare separately: head 1 is a block on
the trunk (one KV-cache slot), heads 2..n are attention-free MLPs reading the previous head
(no slot), and the trunk keeps n_layer - 1 blocks whatever the head count.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn as nn

from lab import config as config_module
from lab.blocks import MLP, Block
from lab.config import ModelConfig
from lab.decode import greedy_decode, load_run, speculative_decode
from lab.evaluate import head_metrics, validation_batches
from lab.finetune import FinetuneTrainer
from lab.heads import Head, register_head, unregister_head
from lab.model import MTPTransformer
from lab.objective import backward_efficient, backward_plain, head_targets
from lab.run import build_config
from lab.train import Trainer
from tasks import ConfigError


class MLPChainHead(Head):
    """Head 1: a transformer block on the trunk. Head i >= 2: a residual MLP on head i-1's output."""

    name = "toy_mlp_chain"
    attach_modes = {"toy_mlp_chain": False}  # `--attach toy_mlp_chain` adds heads 2..n on top

    def __init__(self, config: ModelConfig, i: int) -> None:
        super().__init__(config, i)
        if i == 0:
            self.block = Block(config)
        else:
            self.ln = nn.LayerNorm(config.d_model, bias=config.bias)
            self.mlp = MLP(config)

    @staticmethod
    def sources(n: int) -> list[int]:
        return [-1] + list(range(n - 1))

    @staticmethod
    def trunk_layers(config: ModelConfig) -> int:
        return config.n_layer - 1

    @staticmethod
    def head_blocks(config: ModelConfig, i: int) -> int:
        return 1 if i == 0 else 0

    def forward(self, x, cache=None, layer=0, next_emb=None):
        if hasattr(self, "block"):
            return self.block(x, cache, layer)
        return x + self.mlp(self.ln(x))


@pytest.fixture(scope="module", autouse=True)
def toy_registered():
    before = (config_module.head_types(), config_module.attach_modes())
    register_head(MLPChainHead)
    yield
    unregister_head(MLPChainHead.name)
    assert (config_module.head_types(), config_module.attach_modes()) == before  # nothing leaks to other tests


def toy_model(n: int = 3, seed: int = 0) -> MTPTransformer:
    torch.manual_seed(seed)
    return MTPTransformer(ModelConfig(d_model=16, n_layer=3, n_head=2, n_future=n, head_type=MLPChainHead.name,
                                      vocab_size=11, block_size=24, match_params=False))


def test_registry_drives_config_validation() -> None:
    ModelConfig(head_type=MLPChainHead.name, vocab_size=5, block_size=5).validate()
    assert MLPChainHead.name in config_module.attach_modes()

    class Unnamed(MLPChainHead):
        name = "toy_transient"
    register_head(Unnamed)
    ModelConfig(head_type="toy_transient", vocab_size=5, block_size=5).validate()
    unregister_head("toy_transient")
    with pytest.raises(ConfigError, match="head type"):
        ModelConfig(head_type="toy_transient", vocab_size=5, block_size=5).validate()


def test_toy_model_is_wired_from_its_declarations() -> None:
    model = toy_model()
    assert len(model.transformer.h) == 2 and model.sources == [-1, 0, 1]
    assert model.n_attention_layers == 3  # two trunk blocks and head 1's block
    assert model.param_counts()["next_token_depth"] == 3 and not model.param_counts()["param_matched"]
    # efficient backward equals the plain summed loss for the new type as for the built-in ones
    model = model.double()
    tokens = torch.randint(0, 11, (3, 13))
    targets = head_targets(tokens, torch.rand(3, 13) > 0.3, 3)
    backward_plain(model, tokens[:, :-1], targets, [1.0, 0.5, 2.0])
    plain = {k: p.grad.clone() for k, p in model.named_parameters()}
    model.zero_grad()
    backward_efficient(model, tokens[:, :-1], targets, [1.0, 0.5, 2.0])
    for name, p in model.named_parameters():
        assert torch.allclose(p.grad, plain[name], rtol=1e-10, atol=1e-12), name
    assert model.heads[2].mlp.c_fc.weight.grad.abs().sum() > 0


def test_train_evaluate_decode_and_finetune_a_new_head_type(tmp_path: Path, tiny_overrides: list[str]) -> None:
    overrides = [*tiny_overrides, "model.match_params=false"]
    toy = build_config("induction", heads=3, size="100K", head_type=MLPChainHead.name, steps=10, overrides=overrides)
    summary = Trainer(toy, tmp_path, device="cpu", quiet=True).run()
    run_dir = Path(summary["run_dir"])
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [5, 10]
    final = rows[-1]
    assert all(f"head{i}/loss" in final for i in (1, 2, 3)) and summary["primary_metric"] in final

    # Evaluation: the loaded checkpoint scores as the run logged it.
    config, model, task = load_run(run_dir, torch.device("cpu"))
    again = head_metrics(model, validation_batches(task, config), torch.device("cpu"))
    for i in (1, 2, 3):
        assert again[f"head{i}/loss"] == pytest.approx(final[f"head{i}/loss"], rel=1e-6)

    # Decoding: cached and uncached greedy agree; self-speculative decoding equals greedy.
    prompts = torch.as_tensor(validation_batches(task, config)[0].input_tokens[:4, :8])
    n_new = min(12, config.model.block_size + 1 - prompts.shape[1])
    greedy = greedy_decode(model, prompts, n_new)
    assert torch.equal(greedy, greedy_decode(model, prompts, n_new, use_cache=False))
    for k in (2, 3):
        out, stats = speculative_decode(model, prompts, n_new, k)
        assert torch.equal(out, greedy) and stats.tokens == prompts.shape[0] * n_new

    # Finetuning: attach toy heads to a next-token checkpoint; head 1 starts as the checkpoint's.
    ntp = build_config("induction", heads=1, size="100K", steps=5, overrides=tiny_overrides)
    source_dir = Path(Trainer(ntp, tmp_path, device="cpu", quiet=True).run()["run_dir"])
    tuned = build_config("induction", heads=3, size="100K", steps=5, overrides=[
        *tiny_overrides, f"finetune.init_from={source_dir}", f"finetune.attach={MLPChainHead.name}"])
    trainer = FinetuneTrainer(tuned, tmp_path, device="cpu", quiet=True)
    tuned_summary, tuned = trainer.run(), trainer.config  # the resolved config: shape from the checkpoint
    assert tuned.model.head_type == MLPChainHead.name and tuned.model.n_layer == ntp.model.n_layer
    first = json.loads((Path(tuned_summary["run_dir"]) / "metrics.jsonl").read_text().splitlines()[0])
    assert first["step"] == 0
    assert first["head1/loss"] == pytest.approx(first["finetune/pretrained_head1_loss"], rel=1e-6)
    assert tuned_summary["steps"] == 5 and "head3/loss" in tuned_summary["final"]


def test_config_validation_does_not_depend_on_importing_the_heads() -> None:
    """lab.config accepts the built-in head types and attach modes on its own: importing lab.heads
    (and torch) first changes nothing, and lab.heads rewrites no constant of lab.config."""
    import os
    import subprocess
    import sys

    from tests.conftest import REPO
    code = ("import lab.config as c\nbefore = (c.HEAD_TYPES, c.ATTACH_MODES, c.head_types(), c.attach_modes())\n"
            "c.ModelConfig(head_type='deepseek', vocab_size=5, block_size=5).validate()\n"
            "c.FinetuneConfig(attach='carve').validate()\nimport lab.heads\n"
            "print(before == (c.HEAD_TYPES, c.ATTACH_MODES, c.head_types(), c.attach_modes()))")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=REPO)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "True"
