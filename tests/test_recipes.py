"""Recipes (lab/recipes.py): each reduces to next-token continuation with its extra part switched off,
the frozen ones leave the next-token path bit-identical to the base, self-speculative decoding with
each recipe's predictions equals greedy decoding, and the rolled reference is the model's own marginal."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch

from lab import recipes, runs
from lab.config import ModelConfig, RunConfig
from lab.decode import greedy_decode, speculative_decode
from lab.errors import ConfigError
from lab.finetune import FinetuneTrainer, attach, target_model_config
from lab.model import MTPTransformer
from lab.objective import forward_backward
from tests.test_finetune import finetune_config, pretrain

V, T = 19, 14
HEAD_RECIPES = ["data_w1", "data_w0.3", "data_w0.1", "data_ds", "frozen", "curriculum_fwd", "curriculum_rev",
                "distill"]
SIDE_RECIPES = ["gated", "registers"]


def base() -> MTPTransformer:
    torch.manual_seed(0)
    config = ModelConfig(d_model=32, n_layer=4, n_head=2, vocab_size=V, block_size=32)
    return MTPTransformer(config).eval()


def recipe_model(name: str, src: MTPTransformer, scale: float = 1.0, heads: int = 3):
    """The recipe's model attached to `src` as a continuation would attach it, and the recipe."""
    config = RunConfig()
    config.finetune.recipe, config.finetune.init_from = name, "x"
    side = recipes.REGISTRY[name].side
    config.finetune.attach = "keep" if side else "add"
    config.model = target_model_config(copy.deepcopy(src.config), 1 if side else heads, config.finetune.attach)
    config.train.steps = 8
    torch.manual_seed(1)
    model = recipes.build_model(config)
    attach(model, src, config.finetune.attach, "random")
    recipe = recipes.make(config, src, scale)
    recipe.check()
    return model, recipe


def data(seed: int = 0) -> tuple[torch.Tensor, list[torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    tokens = torch.randint(0, V, (4, T + 1), generator=g)
    return tokens[:, :-1], [tokens[:, 1:]]


def shared_grads(model: MTPTransformer, names: set[str]) -> dict[str, torch.Tensor]:
    return {n: p.grad.clone() for n, p in model.named_parameters() if n in names and p.grad is not None}


def recipe_grads(name: str, scale: float, step: int = 0) -> tuple[dict, dict]:
    """Gradients of the next-token model's weights: after one recipe step, and after one ntp step."""
    src = base()
    ntp = copy.deepcopy(src).train()
    inputs, first = data()
    forward_backward(ntp, inputs, first)
    model, recipe = recipe_model(name, src, scale)
    model.train()
    n = model.config.n_future
    targets = recipes.later_targets(first[0], n)
    weights = recipe.weights(step, [1.0] * n)
    recipe.forward_backward(model, inputs, targets, weights)
    names = {n_ for n_, _ in ntp.named_parameters()}
    return shared_grads(model, names), shared_grads(ntp, names)


@pytest.mark.parametrize("name", [r for r in HEAD_RECIPES if r != "frozen"] + ["registers"])
def test_extra_part_switched_off_gives_next_token_gradients_exactly(name: str) -> None:
    got, ntp = recipe_grads(name, scale=0.0)
    assert got.keys() == ntp.keys() and len(got) > 10
    for k in ntp:
        assert torch.equal(got[k], ntp[k]), k


@pytest.mark.parametrize("name", [r for r in HEAD_RECIPES if r != "frozen"] + ["registers"])
def test_extra_part_switched_on_changes_the_gradients(name: str) -> None:
    step = 7 if name == "curriculum_fwd" else 0  # the forward curriculum starts as next-token prediction
    got, ntp = recipe_grads(name, scale=1.0, step=step)
    assert any(not torch.allclose(got[k], ntp[k]) for k in ntp)


def test_curricula_and_deepseek_schedule_weights() -> None:
    src = base()
    fwd, rev, ds = (recipe_model(n, src, heads=3)[1] for n in ("curriculum_fwd", "curriculum_rev", "data_ds"))
    one = [1.0, 1.0, 1.0]
    assert [fwd.weights(s, one) for s in (0, 2, 3, 5, 6)] == [[1, 0, 0], [1, 0, 0], [1, 1, 0], [1, 1, 0], [1, 1, 1]]
    assert [rev.weights(s, one) for s in (0, 3, 7)] == [[1, 1, 1], [1, 1, 0], [1, 0, 0]]
    assert ds.weights(5, one) == [1, 0.3, 0.3] and ds.weights(6, one) == [1.0, 0.1, 0.1]  # switch at 0.676 * 8


def test_registers_and_mask_tokens_are_invisible_to_real_tokens() -> None:
    """The side forward's real-token outputs match the plain model's (to rounding: another attention kernel)."""
    src = base()
    model, recipe = recipe_model("gated", src)
    inputs, _ = data()
    parts = getattr(model, recipes.PARTS)
    torch.nn.init.normal_(parts.lora.up["b0_attn_c_attn"], std=0.5)  # adapters that do change the side tokens
    side = torch.randn(3, 32)
    mask = recipes.side_mask(T, 3, True, inputs.device)
    assert not mask[:T, T:].any() and mask[:T, :T].equal(torch.ones(T, T, dtype=torch.bool).tril())
    x = torch.cat([model.embed(inputs), side[None].repeat_interleave(T, 1).expand(4, -1, -1)], 1)
    positions = torch.cat([torch.arange(T), torch.arange(T).repeat(3)])
    parts.lora.gate = torch.cat([torch.zeros(T), torch.ones(3 * T)])[None, :, None]
    h = model.run_head(0, model.trunk(x, positions, recipes.MaskOnly(mask)), x, recipes.MaskOnly(mask))
    parts.lora.gate = None
    assert torch.allclose(h[:, :T], model.hidden_states(inputs)[0], atol=1e-5)
    assert torch.equal(model(inputs), src(inputs))  # gate off: the base exactly


def small_finetune(tmp_path: Path, pre: Path, recipe: str, heads: int, mode: str, **train) -> FinetuneTrainer:
    config = finetune_config(pre, mode, heads, head_init="zero")
    config.finetune.recipe = recipe
    for k, v in train.items():
        setattr(config.train, k, v)
    trainer = FinetuneTrainer(config, tmp_path / "ft", device="cpu", quiet=True)
    trainer.run()
    return trainer


@pytest.mark.parametrize("name,heads,mode", [("frozen", 3, "add"), ("gated", 1, "keep")])
def test_frozen_base_recipes_keep_head_one_bit_identical(tmp_path: Path, name: str, heads: int, mode: str) -> None:
    pre = pretrain(tmp_path)
    trainer = small_finetune(tmp_path, pre, name, heads, mode)
    model, src = trainer.model, trainer.source
    inputs = torch.randint(0, src.config.vocab_size, (3, 20))
    assert torch.equal(model(inputs, heads=1), src(inputs))
    before = recipes.build_model(trainer.config)
    attach(before, src, mode, "zero")
    extra = [n for n, p in model.named_parameters() if not torch.equal(p, before.get_parameter(n))]
    assert extra and all(n.startswith(recipes.PARTS) or n.startswith(("heads.1", "heads.2")) for n in extra)
    rows = runs.read_jsonl(trainer.run_dir / runs.METRICS)
    assert all(r["head1/loss"] == pytest.approx(r["finetune/pretrained_head1_loss"], rel=1e-6) for r in rows)
    ckpt = torch.load(trainer.run_dir / runs.CHECKPOINT, weights_only=True)
    recipes.build_model(trainer.config).load_state_dict(ckpt["model"])  # a resumed run rebuilds its parts


def test_zero_weight_data_recipe_trains_exactly_as_next_token_continuation(tmp_path: Path) -> None:
    """Through the trainer's hooks: data targets at weight 0 leave every next-token weight as ntp leaves it."""
    pre = pretrain(tmp_path)
    ntp = small_finetune(tmp_path, pre, "", 1, "keep")
    data_ = small_finetune(tmp_path, pre, "data_w1", 3, "add", head_weights=[1.0, 0.0, 0.0])
    a, b = ntp.model.state_dict(), data_.model.state_dict()
    assert len(a) > 10 and all(torch.equal(a[k], b[k]) for k in a)
    rows = [runs.read_jsonl(t.run_dir / runs.METRICS) for t in (ntp, data_)]
    assert [r["head1/loss"] for r in rows[0]] == [r["head1/loss"] for r in rows[1]]


def trained(name: str, steps: int = 3) -> tuple[MTPTransformer, recipes.Recipe]:
    """A recipe's model after a few SGD steps on random data (heads no longer copies of the base)."""
    model, recipe = recipe_model(name, base(), heads=3)
    model.train()
    opt = torch.optim.SGD([p for n, p in model.named_parameters() if recipe.trainable(model, n)], lr=0.5)
    n = model.config.n_future
    for s in range(steps):
        inputs, first = data(s)
        recipe.forward_backward(model, inputs, recipes.later_targets(first[0], n), recipe.weights(s, [1.0] * n))
        opt.step()
        opt.zero_grad()
    return model.eval(), recipe


@pytest.mark.parametrize("name", HEAD_RECIPES)
def test_speculative_decoding_with_recipe_heads_equals_greedy(name: str) -> None:
    model, recipe = trained(name)
    prompts = data(9)[0][:, :6]
    reference = greedy_decode(model, prompts, 12)
    out, stats = speculative_decode(model, prompts, 12, k=model.config.n_future)
    assert recipe.speculation == "heads" and torch.equal(out, reference)
    assert stats.tokens_per_forward >= 1.0


def test_speculative_decoding_with_gated_mask_tokens_equals_greedy() -> None:
    model, recipe = trained("gated")
    prompts = data(9)[0][:, :6]
    reference = greedy_decode(model, prompts, 12)
    for prompt, ref in zip(prompts, reference):
        out, forwards = recipes.side_speculative_decode(model, recipe, prompt, 12)
        assert torch.equal(out, ref) and 1 <= forwards <= 12


def test_registers_have_no_speculative_decoding_and_add_nothing_at_inference() -> None:
    model, recipe = trained("registers")
    assert recipe.speculation == "none" and model.config.n_future == 1
    assert recipe.extra_parameters(model)["inference"] == 0 < recipe.extra_parameters(model)["train"]


def test_rolled_reference_is_the_models_own_marginal_and_greedy_roll() -> None:
    src = base()
    inputs = data()[0][:2]
    exact = recipes.rolled_distributions(src, inputs, 2, top=V)[1]
    t = 5
    p1 = torch.softmax(src(inputs[:1, :t + 1], heads=1)[0, -1, 0], -1)
    brute = sum(p1[v] * torch.softmax(src(torch.cat([inputs[:1, :t + 1], torch.tensor([[v]])], 1),
                                          heads=1)[0, -1, 0], -1) for v in range(V))
    assert torch.allclose(exact[0, t], brute, atol=1e-6)
    greedy = recipes.rolled_distributions(src, inputs, 4, top=1)
    reference = greedy_decode(src, inputs, 4)
    assert [int(d[0, -1].argmax()) for d in greedy] == reference[0].tolist()


def test_recipe_config_is_hash_neutral_and_checked() -> None:
    config = RunConfig()
    assert "recipe" not in config.to_dict()["finetune"]
    config.finetune.recipe = "nope"
    with pytest.raises(ConfigError, match="unknown finetune.recipe"):
        config.finetune.validate()
    config.finetune.recipe = "gated"
    with pytest.raises(ConfigError, match="init-from"):
        config.finetune.validate()
    config.finetune.init_from, config.finetune.attach, config.model.n_future = "x", "add", 3
    with pytest.raises(ConfigError, match="--heads 1"):
        recipes.check(config)
