"""Probes and sharpness (lab/probes.py) against known answers on tiny models and synthetic features."""

from __future__ import annotations

import numpy as np
import torch

from lab import probes
from lab.config import ModelConfig
from lab.model import MTPTransformer
from tasks.base import Batch


def tiny_model(seed: int = 0) -> MTPTransformer:
    torch.manual_seed(seed)
    return MTPTransformer(ModelConfig(d_model=8, n_layer=2, n_head=2, vocab_size=5, block_size=6))


def batches(seed: int = 0) -> list[Batch]:
    tokens = np.random.default_rng(seed).integers(0, 5, size=(16, 7))
    return [Batch(tokens=tokens, loss_mask=np.ones_like(tokens, dtype=bool))]


def test_ridge_probe_reads_a_linear_code_and_not_noise():
    gen = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 6, (2000,), generator=gen)
    code = torch.nn.functional.one_hot(labels, 6).float() + 0.1 * torch.randn(2000, 6, generator=gen)
    assert probes.ridge_probe_accuracy(code[:1000], labels[:1000], code[1000:], labels[1000:], 6) > 0.99
    noise = torch.randn(2000, 6, generator=gen)
    chance = probes.ridge_probe_accuracy(noise[:1000], labels[:1000], noise[1000:], labels[1000:], 6)
    assert abs(chance - 1 / 6) < 0.06


def test_power_iteration_finds_the_exact_top_hessian_eigenvalue():
    model = tiny_model()
    data = batches()
    params = probes._params(model)
    shapes = [p.shape for p in params]
    flat = torch.cat([p.detach().reshape(-1) for p in params]).double()
    names = [n for n, p in model.named_parameters() if any(p is q for q in params)]
    model.double()

    def loss_of(vector: torch.Tensor) -> torch.Tensor:
        pieces, i = {}, 0
        for name, shape in zip(names, shapes):
            size = int(np.prod(shape))
            pieces[name] = vector[i:i + size].reshape(shape)
            i += size
        return torch.func.functional_call(model, pieces, (torch.as_tensor(data[0].tokens[:, :-1]),))

    def head1(vector: torch.Tensor) -> torch.Tensor:
        logits = loss_of(vector)[:, :, 0]
        target = torch.as_tensor(data[0].tokens[:, 1:])
        return torch.nn.functional.cross_entropy(logits.reshape(-1, 5), target.reshape(-1))

    from torch.nn.attention import SDPBackend, sdpa_kernel
    with sdpa_kernel(SDPBackend.MATH):  # the fused CPU kernel has no double backward
        hessian = torch.autograd.functional.hessian(head1, flat)
    eigen = torch.linalg.eigvalsh(hessian)
    exact = float(eigen[eigen.abs().argmax()])
    estimate = probes.top_hessian_eigenvalue(model, data, iterations=200, radius=1e-5)
    assert abs(estimate - exact) / abs(exact) < 0.02


def test_perturbation_sharpness_grows_with_the_radius_and_leaves_the_model_unchanged():
    model = tiny_model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    small = probes.perturbation_sharpness(model, batches(), eps=0.01)
    large = probes.perturbation_sharpness(model, batches(), eps=0.3)
    assert large > small
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())


def test_future_token_probes_cover_every_layer_and_offset():
    model = tiny_model()
    out = probes.future_token_probes(model, batches() + batches(1), ks=(1, 2))
    layers = 1 + len(model.transformer.h) + 1  # embeddings, trunk blocks, head 1
    assert set(out) == {f"probe/layer{layer}/k{k}" for layer in range(layers) for k in (1, 2)}
    assert all(0.0 <= v <= 1.0 for v in out.values())
