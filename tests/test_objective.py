"""The memory-efficient backward gives the plain summed loss's gradients, for every head type."""

from __future__ import annotations

import itertools

import pytest
import torch

from lab.config import HEAD_TYPES, ModelConfig
from lab.model import MTPTransformer
from lab.objective import IGNORE, backward_efficient, backward_plain, head_targets


@pytest.mark.parametrize("head_type,n", list(itertools.product(HEAD_TYPES, [1, 2, 3, 4])))
def test_efficient_backward_matches_plain_gradients(head_type: str, n: int) -> None:
    torch.manual_seed(n)
    config = ModelConfig(d_model=16, n_layer=5, n_head=2, n_future=n, head_type=head_type,
                         vocab_size=13, block_size=12, dropout=0.0)
    model = MTPTransformer(config).double()
    tokens = torch.randint(0, 13, (3, 13))
    mask = torch.rand(3, 13) > 0.3
    targets = head_targets(tokens, mask, n)
    weights = [1.0, 0.5, 2.0, 0.25][:n]

    model.zero_grad()
    plain = backward_plain(model, tokens[:, :-1], targets, weights)
    plain_grads = {k: p.grad.clone() for k, p in model.named_parameters()}
    model.zero_grad()
    efficient = backward_efficient(model, tokens[:, :-1], targets, weights)

    assert efficient.loss == pytest.approx(plain.loss, rel=1e-12)
    assert efficient.head_loss == pytest.approx(plain.head_loss, rel=1e-12)
    assert "lm_head.weight" in plain_grads  # the shared unembedding is compared too
    for name, p in model.named_parameters():
        assert p.grad is not None, name
        assert torch.allclose(p.grad, plain_grads[name], rtol=1e-10, atol=1e-12), name
        if name.startswith("heads.") or name == "lm_head.weight":
            assert p.grad.abs().sum() > 0, f"{name} received no gradient"


def test_tied_embeddings_gradients_match() -> None:
    torch.manual_seed(0)
    config = ModelConfig(d_model=16, n_layer=4, n_head=2, n_future=3, vocab_size=9, block_size=10,
                         tie_embeddings=True)
    model = MTPTransformer(config).double()
    tokens = torch.randint(0, 9, (2, 11))
    targets = head_targets(tokens, torch.ones_like(tokens, dtype=torch.bool), 3)
    model.zero_grad()
    backward_plain(model, tokens[:, :-1], targets)
    g = model.transformer.wte.weight.grad.clone()
    model.zero_grad()
    backward_efficient(model, tokens[:, :-1], targets)
    assert torch.allclose(model.transformer.wte.weight.grad, g, atol=1e-12)


def test_head_targets_align_with_future_tokens_and_mask() -> None:
    tokens = torch.arange(10)[None].repeat(2, 1)  # token value = its position
    mask = torch.ones_like(tokens, dtype=torch.bool)
    mask[1, 6] = False
    targets = head_targets(tokens, mask, 3)
    T = 9
    for i, t in enumerate(targets, start=1):
        # head i at position t predicts token t+i; positions without such a token are ignored
        assert t[0, : T - i + 1].tolist() == list(range(i, 10))
        assert (t[0, T - i + 1:] == IGNORE).all()
    # token 6 is masked: head 1 at position 5, head 2 at 4, head 3 at 3 ignore it
    assert targets[0][1, 5] == IGNORE and targets[1][1, 4] == IGNORE and targets[2][1, 3] == IGNORE
    assert targets[0][1, 4] == 5


@pytest.mark.parametrize("head_type", [h for h in HEAD_TYPES if h != "anticausal"])
def test_detached_extra_heads_leave_the_next_token_path_to_head_one(head_type: str) -> None:
    """With `detach_extra_heads`, the trunk and head 1 get exactly the gradient of head 1's loss alone,
    the extra heads still train, and the efficient backward still equals the plain one."""
    torch.manual_seed(0)
    config = ModelConfig(d_model=16, n_layer=5, n_head=2, n_future=3, head_type=head_type, vocab_size=13,
                         block_size=12, detach_extra_heads=True)
    model = MTPTransformer(config).double()
    tokens = torch.randint(0, 13, (3, 13))
    targets = head_targets(tokens, torch.ones_like(tokens, dtype=torch.bool), 3)
    grads = {}
    for name, fn, tg, w in (("plain", backward_plain, targets, None), ("efficient", backward_efficient, targets, None),
                            ("head1", backward_plain, targets, [1.0, 0.0, 0.0])):
        model.zero_grad(set_to_none=False)
        fn(model, tokens[:, :-1], tg, w)
        grads[name] = {k: p.grad.clone() for k, p in model.named_parameters()}
    path = [k for k in grads["plain"] if k.startswith(("transformer.", "heads.0."))]
    for k in path:  # the next-token path: as if heads 2..n had no loss
        assert torch.allclose(grads["plain"][k], grads["head1"][k], atol=1e-12), k
    for k in grads["plain"]:
        assert torch.allclose(grads["efficient"][k], grads["plain"][k], atol=1e-12), k
    extra = [k for k in grads["plain"] if k.startswith(("heads.1.", "heads.2."))]
    assert extra and all(grads["plain"][k].abs().sum() > 0 for k in extra if "weight" in k)


def test_detached_anticausal_heads_are_refused() -> None:
    from lab.errors import ConfigError
    with pytest.raises(ConfigError, match="anticausal"):
        ModelConfig(n_layer=5, n_future=2, head_type="anticausal", vocab_size=5, block_size=4,
                    detach_extra_heads=True).validate()
