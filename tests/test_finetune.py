"""Finetuning: weight maps of every attach mode, exactness of the identity-preserving ones,
freezing, schedules, and bad checkpoints."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch

from lab import runs
from lab.config import ModelConfig, RunConfig
from lab.finetune import FinetuneTrainer, attach, linear_cka, target_model_config
from lab.model import MTPTransformer
from lab.train import train
from tests.conftest import run_cli

L = 5


def source_model(n: int = 1, kind: str = "parallel") -> MTPTransformer:
    torch.manual_seed(0)
    config = ModelConfig(d_model=32, n_layer=L, n_head=2, n_future=n, head_type=kind, vocab_size=19, block_size=16)
    return MTPTransformer(config).eval()


def attached(mode: str, heads: int, head_init: str = "random", src: MTPTransformer | None = None):
    src = src or source_model()
    torch.manual_seed(1)
    model = MTPTransformer(target_model_config(copy.deepcopy(src.config), heads, mode)).eval()
    attach(model, src, mode, head_init)
    return src, model


def same(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def blocks_of(src: MTPTransformer) -> list:
    return [*src.transformer.h, src.heads[0].block]


def test_add_keeps_next_token_path_and_zero_init_heads_start_as_head_one() -> None:
    src, model = attached("add", 3, "zero")
    assert len(model.transformer.h) == L - 1 and len(model.heads) == 3
    for dst, b in zip(model.transformer.h, blocks_of(src)[: L - 1]):
        assert same(dst, b)
    assert same(model.heads[0].block, blocks_of(src)[-1])
    idx = torch.randint(0, 19, (2, 12))
    logits = model(idx)
    assert torch.allclose(logits[:, :, 0], src(idx)[:, :, 0], atol=1e-6)  # head 1 exact before any update
    trunk_out = model.trunk(model.embed(idx))
    for i in (1, 2):  # identity blocks: the new heads unembed the trunk output itself
        assert torch.allclose(logits[:, :, i], model.unembed(trunk_out), atol=1e-6)


def test_add_random_init_keeps_head_one_but_new_heads_differ() -> None:
    src, model = attached("add", 2, "random")
    idx = torch.randint(0, 19, (2, 12))
    logits = model(idx)
    assert torch.allclose(logits[:, :, 0], src(idx)[:, :, 0], atol=1e-6)
    assert not torch.allclose(logits[:, :, 1], logits[:, :, 0], atol=1e-3)


def test_add_copy_init_copies_the_output_block() -> None:
    src, model = attached("add", 3, "copy")
    for head in model.heads:
        assert same(head.block, blocks_of(src)[-1])
    idx = torch.randint(0, 19, (2, 12))
    logits = model(idx)
    assert torch.allclose(logits[:, :, 2], logits[:, :, 0], atol=1e-6)  # new heads start as head 1


def test_carve_turns_top_trunk_blocks_into_heads() -> None:
    src, model = attached("carve", 3)
    b = blocks_of(src)
    assert len(model.transformer.h) == L - 3
    for dst, s in zip(model.transformer.h, b[: L - 3]):
        assert same(dst, s)
    assert same(model.heads[0].block, b[L - 1])
    assert same(model.heads[1].block, b[L - 3]) and same(model.heads[2].block, b[L - 2])
    assert model.param_counts()["total"] == src.param_counts()["total"]  # "+0 layers"
    idx = torch.randint(0, 19, (2, 12))
    assert not torch.allclose(model(idx)[:, :, 0], src(idx)[:, :, 0], atol=1e-4)  # the shock


def test_linear_keeps_all_blocks_and_identity_init_copies_head_one() -> None:
    src, model = attached("linear", 4, "zero")
    assert len(model.transformer.h) == L
    for dst, s in zip(model.transformer.h, blocks_of(src)):
        assert same(dst, s)
    idx = torch.randint(0, 19, (2, 12))
    logits = model(idx)
    for i in range(4):
        assert torch.allclose(logits[:, :, i], src(idx)[:, :, 0], atol=1e-5)


def test_deepseek_attach_keeps_head_one_exact() -> None:
    src, model = attached("deepseek", 3)
    idx = torch.randint(0, 19, (2, 12))
    assert torch.allclose(model(idx)[:, :, 0], src(idx)[:, :, 0], atol=1e-6)


@pytest.mark.parametrize("kind", ["parallel", "causal", "linear", "deepseek"])
def test_drop_keeps_head_one_exact(kind: str) -> None:
    src = source_model(3, kind)
    _, model = attached("drop", 1, src=src)
    assert model.config.n_future == 1
    idx = torch.randint(0, 19, (2, 12))
    assert torch.allclose(model(idx)[:, :, 0], src(idx)[:, :, 0], atol=1e-6)


def test_impossible_attachments_are_config_errors() -> None:
    from tasks import ConfigError
    with pytest.raises(ConfigError, match="anticausal"):
        target_model_config(source_model(2, "anticausal").config, 1, "drop")
    with pytest.raises(ConfigError, match="carve"):
        target_model_config(source_model().config, L, "carve")
    with pytest.raises(ConfigError, match="next-token checkpoint"):
        target_model_config(source_model(2).config, 4, "add")
    with pytest.raises(ConfigError, match="differs"):
        target_model_config(source_model().config, 4, "keep")


def test_linear_cka_is_one_for_linear_maps_and_low_for_noise() -> None:
    x = torch.randn(500, 16)
    q, _ = torch.linalg.qr(torch.randn(16, 16))
    assert linear_cka(x, 3 * x @ q) == pytest.approx(1.0, abs=1e-9)
    assert linear_cka(x, torch.randn(500, 16)) < 0.2


def pretrain(tmp_path: Path, heads: int = 1) -> Path:
    config = RunConfig(task="induction", task_config={"seq_len": 32, "eval_stories": 16, "mentions": 2}, size="t")
    config.model.d_model, config.model.n_head, config.model.n_layer, config.model.n_future = 32, 2, 4, heads
    t = config.train
    t.steps, t.batch_size, t.eval_every, t.checkpoint_every, t.val_batches, t.warmup_steps = 6, 8, 3, 3, 1, 1
    t.keep_checkpoints = [0.5]
    return Path(train(config, tmp_path / "pre", device="cpu", quiet=True)["run_dir"])


def finetune_config(init_from: Path, mode: str, heads: int, **ft) -> RunConfig:
    config = RunConfig(task="induction", task_config={"seq_len": 32, "eval_stories": 16, "mentions": 2}, seed=1)
    config.model.n_future = heads
    config.finetune.init_from, config.finetune.attach = str(init_from), mode
    for k, v in ft.items():
        setattr(config.finetune, k, v)
    t = config.train
    t.steps, t.batch_size, t.eval_every, t.checkpoint_every, t.val_batches, t.warmup_steps = 4, 8, 2, 2, 1, 1
    return config


def test_frozen_trunk_does_not_change_and_new_heads_do(tmp_path: Path) -> None:
    pre = pretrain(tmp_path)
    assert (pre / "checkpoint-step3.pt").exists()  # kept at 50% of pretraining
    trainer = FinetuneTrainer(finetune_config(pre, "add", 3, freeze_trunk_steps=100, head_init="zero"),
                              tmp_path / "ft", device="cpu", quiet=True)
    summary = trainer.run()
    model, src = trainer.model, trainer.source
    for dst, s in zip(model.transformer.h, src.transformer.h):
        assert same(dst, s)
    assert same(model.heads[0].block, src.heads[0].block) and same(model.lm_head, src.lm_head)
    assert not same(model.heads[1].block, src.heads[0].block)
    rows = runs.read_jsonl(Path(summary["run_dir"]) / "metrics.jsonl")
    assert rows[0]["step"] == 0  # evaluated before any update
    # head 1 is untouched, so its loss never moves from the pretrained model's
    for r in rows:
        assert r["head1/loss"] == pytest.approx(r["finetune/pretrained_head1_loss"], rel=1e-5)
        assert r["finetune/source_head1_loss"] == pytest.approx(r["finetune/pretrained_source_head1_loss"], rel=1e-5)
        assert r["cka/head1_out"] == pytest.approx(1.0, abs=1e-6)


def test_ramp_and_learning_rate_scale(tmp_path: Path) -> None:
    pre = pretrain(tmp_path)
    trainer = FinetuneTrainer(finetune_config(pre, "add", 3, ramp_steps=4, pretrained_lr_scale=0.1),
                              tmp_path / "ft", device="cpu", quiet=True)
    trainer.model = MTPTransformer(trainer.config.model)
    assert trainer.before_step(0) == [1.0, 0.0, 0.0]
    assert trainer.before_step(2) == [1.0, 0.5, 0.5]
    assert trainer.before_step(9) == [1.0, 1.0, 1.0]
    scales = sorted({g["lr_scale"] for g in trainer.make_optimizer(trainer.model).param_groups})
    assert scales == [0.1, 1.0]


def test_cli_finetune_and_bad_checkpoints(tmp_path: Path) -> None:
    pre = pretrain(tmp_path)
    common = ["--steps", "2", "--quiet", "--device", "cpu", "--set", "train.val_batches=1",
              "--set", "train.batch_size=4"]
    small = ["--set", "task.seq_len=32", "--set", "task.eval_stories=16"]
    ok = run_cli(["lab.run", "induction", "--init-from", str(pre), "--heads", "2", "--attach", "add",
                  "--out", str(tmp_path / "ok"), *common, *small])
    assert ok.returncode == 0, ok.stderr
    bad_file = tmp_path / "bad.pt"
    bad_file.write_bytes(b"not a checkpoint")
    cases = [
        (["induction", "--init-from", str(tmp_path / "missing"), *small], "no checkpoint"),
        (["induction", "--init-from", str(bad_file), *small], "not a readable"),
        (["polynomial", "--init-from", str(pre)], "does not fit"),  # vocabulary fits, context does not
        (["induction", "--init-from", str(pre), "--set", "task.filler_vocab=400", *small], "does not fit"),
        (["induction", "--init-from", str(pre), "--heads", "4", "--attach", "carve", *small], "carve"),
        (["induction", "--heads", "2", "--attach", "add", *small], "need --init-from"),
    ]
    for args, needle in cases:
        out = tmp_path / "bad-out"
        result = run_cli(["lab.run", *args, "--out", str(out), *common])
        assert result.returncode == 2, (args, result.stderr)
        assert needle in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert not out.exists()


def test_detached_extra_heads_leave_next_token_continuation_as_it_would_be_alone(tmp_path: Path) -> None:
    """Stop-gradient recipe: 3 heads added with `model.detach_extra_heads` train the next-token model
    exactly as next-token continuation does (gradient clipping off: it would couple the heads through
    the global norm), and the flag survives resolving against the checkpoint (same run id as planned)."""
    from lab.resolve import resolve
    pre = pretrain(tmp_path)
    rows = {}
    for name, mode, heads in (("ntp", "keep", 1), ("sg", "add", 3)):
        config = finetune_config(pre, mode, heads, head_init="zero")
        config.model.detach_extra_heads = heads > 1
        config.train.grad_clip = 1e9
        resolved = resolve(config, tmp_path)[0]
        assert resolved.model.detach_extra_heads == (heads > 1)
        summary = FinetuneTrainer(config, tmp_path / "ft", device="cpu", quiet=True).run()
        assert Path(summary["run_dir"]).name == resolved.run_name()
        rows[name] = runs.read_jsonl(Path(summary["run_dir"]) / "metrics.jsonl")
    assert len(rows["ntp"]) == len(rows["sg"]) >= 3
    for a, b in zip(rows["ntp"], rows["sg"]):
        assert b["head1/loss"] == pytest.approx(a["head1/loss"], rel=1e-5)
        assert b["val/second_token_nll"] == pytest.approx(a["val/second_token_nll"], rel=1e-5)
    assert rows["sg"][-1]["head2/loss"] < rows["sg"][0]["head2/loss"]  # the extra heads do learn
