"""Attention recomputation and the prefix-matching (induction-head) score."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lab import interp
from lab.config import ModelConfig
from lab.model import MTPTransformer


def tiny_model(head_type: str = "parallel", n_future: int = 2, seed: int = 0) -> MTPTransformer:
    torch.manual_seed(seed)
    config = ModelConfig(d_model=32, n_layer=3, n_head=4, n_future=n_future, head_type=head_type,
                         vocab_size=40, block_size=48)
    return MTPTransformer(config)


@pytest.mark.parametrize("head_type", ["parallel", "causal", "deepseek", "linear"])
def test_recomputed_attention_reproduces_each_layer_output(head_type):
    model = tiny_model(head_type).eval()
    idx = torch.randint(0, 40, (3, 20), generator=torch.Generator().manual_seed(1))
    recorded = {}
    hooks = [attn.register_forward_hook(lambda m, args, out, name=name: recorded.__setitem__(name, (args[0], out)))
             for name, attn in interp.attention_layers(model)]
    maps = interp.attention_maps(model, idx)
    for h in hooks:
        h.remove()
    expected = [f"trunk.{k}" for k in range(len(model.transformer.h))]
    expected += [f"head{i + 1}" for i, head in enumerate(model.heads) if hasattr(head, "block")]
    assert list(maps) == expected
    for name, attn in interp.attention_layers(model):
        x, out = recorded[name]
        probs = maps[name]
        B, T, C = x.shape
        assert probs.shape == (B, attn.n_head, T, T)
        assert torch.allclose(probs.sum(-1), torch.ones(B, attn.n_head, T))
        assert (probs.triu(1) == 0).all()  # causal
        v = attn.c_attn(x).split(C, dim=2)[2].view(B, T, attn.n_head, -1).transpose(1, 2)
        y = attn.c_proj((probs @ v).transpose(1, 2).reshape(B, T, C))
        assert torch.allclose(y, out, atol=1e-5)


def test_prefix_matching_on_hand_built_patterns():
    L, T = 5, 10
    attn = torch.zeros(2, 3, T, T)
    for t in range(T):
        attn[:, 0, t, t - L + 1 if t >= L else t] = 1.0  # an induction head
        attn[:, 1, t, max(t - 1, 0)] = 1.0  # a previous-token head
        attn[:, 2, t, : t + 1] = 1.0 / (t + 1)  # uniform causal attention
    prefix = interp.prefix_matching(attn, L)
    previous = interp.previous_token(attn)
    uniform = np.mean([1 / (t + 1) for t in range(L, T)])
    assert prefix.tolist() == pytest.approx([1.0, 0.0, uniform])
    assert previous.tolist() == pytest.approx([0.0, 1.0, np.mean([1 / (t + 1) for t in range(1, T)])])


def test_repeated_random_tokens_repeat_distinct_tokens():
    tokens = interp.repeated_random_tokens(np.random.default_rng(0), 3, 7, 9)
    assert tokens.shape == (3, 14)
    assert (tokens[:, :7] == tokens[:, 7:]).all()
    assert all(len(set(row[:7].tolist())) == 7 for row in tokens)
    assert tokens.max() < 9


def test_uniform_attention_model_scores_the_known_value():
    """With zero query and key weights every layer attends uniformly, so the score is known."""
    model = tiny_model(n_future=2)
    with torch.no_grad():
        for _, attn in interp.attention_layers(model):
            attn.c_attn.weight[: 2 * attn.c_attn.in_features].zero_()
    L = 8
    scores = interp.induction_scores(model, vocab_size=30, device="cpu", n_seqs=2, length=L)
    assert scores["interp/prefix_matching_max"] == pytest.approx(np.mean([1 / (t + 1) for t in range(L, 2 * L)]))
    assert scores["interp/prev_token_max"] == pytest.approx(np.mean([1 / (t + 1) for t in range(1, 2 * L)]))


def test_a_planted_induction_head_is_found():
    """Overwrite one layer's attention with a perfect induction pattern: its score is 1 and it is reported."""
    model = tiny_model(n_future=2)
    L = 6
    planted = interp.attention_layers(model)[1][1]
    original = interp.attention_probs

    def fake(attn, x):
        probs = original(attn, x)
        if attn is planted:
            probs = probs.clone()
            probs[:, 3] = 0.0
            T = x.shape[1]
            for t in range(T):
                probs[:, 3, t, t - L + 1 if t >= L else 0] = 1.0
        return probs

    interp.attention_probs = fake
    try:
        scores = interp.induction_scores(model, vocab_size=30, device="cpu", n_seqs=2, length=L)
    finally:
        interp.attention_probs = original
    assert scores["interp/prefix_matching_max"] == pytest.approx(1.0)
    assert (scores["interp/prefix_matching_layer"], scores["interp/prefix_matching_head"]) == (1, 3)


def test_induction_scores_are_seeded_and_leave_state_alone():
    model = tiny_model().train()
    torch.manual_seed(123)
    before = torch.get_rng_state()
    a = interp.induction_scores(model, vocab_size=40, device="cpu")
    b = interp.induction_scores(model, vocab_size=40, device="cpu")
    assert a == b
    assert torch.equal(torch.get_rng_state(), before)
    assert model.training
    assert 0.0 < a["interp/prefix_matching_max"] <= 1.0
    # The repeat length adapts to a small vocabulary and a short context.
    small = interp.induction_scores(model, vocab_size=5, device="cpu")
    assert set(small) == set(a)
    short = MTPTransformer(ModelConfig(d_model=16, n_layer=2, n_head=2, vocab_size=40, block_size=3))
    assert interp.induction_scores(short, vocab_size=40, device="cpu") == {}


def test_induction_copy_probe_points_each_repeated_name_at_the_token_to_copy() -> None:
    from tasks import build_task
    task = build_task("induction", {"seq_len": 64, "eval_stories": 64})
    tokens, pairs = task.copy_probe(16)
    assert tokens.shape == (16, 64) and len(pairs) >= 16
    for row, q, source in pairs:
        assert source < q and tokens[row, source - 1] == tokens[row, q]  # the earlier mention of the same name
        assert tokens[row, source] == tokens[row, q + 1]  # whose second token is the one to predict


def test_copy_attention_reads_the_query_to_source_attention_of_the_best_head(monkeypatch) -> None:
    model = MTPTransformer(ModelConfig(d_model=16, n_layer=2, n_head=2, vocab_size=10, block_size=8))
    maps = {name: torch.full((2, 2, 8, 8), 0.01) for name, _ in interp.attention_layers(model)}
    second = list(maps)[1]
    maps[second][0, 1, 5, 2] = 0.9
    maps[second][1, 1, 6, 3] = 0.7
    monkeypatch.setattr(interp, "attention_maps", lambda m, idx: maps)
    out = interp.copy_attention(model, np.zeros((2, 9), dtype=np.int64), np.array([[0, 5, 2], [1, 6, 3]]), "cpu")
    assert out["interp/copy_attention_max"] == pytest.approx(0.8)
    assert (out["interp/copy_attention_layer"], out["interp/copy_attention_head"]) == (1, 1)
