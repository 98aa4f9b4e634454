"""Per-head gradient alignment on the trunk: does head k's loss pull the shared weights the way head 1's does?

The paper's argument for multi-token prediction is that the extra heads shape the trunk the
next-token head reads; the finetuning explanations (Table S6) turn on whether that shaping
helps or fights head 1. `gradient_alignment` measures it on fixed validation batches: the
gradient of each head's mean loss with respect to the *trunk parameters* (token and position
embeddings and the trunk blocks, which every head shares), taken head by head, and

- `align/cos/head{k}`: the cosine between head 1's gradient and head k's (k >= 2): positive,
  head k pulls the trunk the same way as next-token prediction; negative, a conflict (the
  measure of PCGrad, Yu et al. 2020);
- `align/norm_ratio/head{k}`: |g_k| / |g_1|, how hard head k pulls relative to head 1 (before
  any loss weight: multiply by w_k / w_1 for the share of the actual update).

Gradients are taken with `torch.autograd.grad`, never into `.grad`, and no random number is
drawn, so logging this at every evaluation (`train.log_mechanism`) leaves training unchanged.
"""

from __future__ import annotations

import math

import torch

from lab.model import MTPTransformer
from lab.objective import head_loss_sums


def trunk_parameters(model: MTPTransformer) -> list[torch.nn.Parameter]:
    """The parameters every head shares: embeddings and trunk blocks (not heads, final norm or
    unembedding)."""
    t = model.transformer
    shared = [*t.wte.parameters(), *t.wpe.parameters(), *t.h.parameters()]
    return [p for p in shared if p.requires_grad]


def head_gradients(model: MTPTransformer, inputs: torch.Tensor,
                   targets: list[torch.Tensor]) -> list[torch.Tensor]:
    """Per head, the flattened gradient of its mean loss on this batch with respect to
    `trunk_parameters`."""
    params = trunk_parameters(model)
    hidden = model.hidden_states(inputs)
    grads = []
    for i, (h, target) in enumerate(zip(hidden, targets)):
        loss_sum, _, count = head_loss_sums(model.unembed(h), target)
        g = torch.autograd.grad(loss_sum / count.clamp(min=1), params,
                                retain_graph=i < len(hidden) - 1,
                                allow_unused=True)
        grads.append(torch.cat([(x if x is not None else torch.zeros_like(p)).reshape(-1).float()
                                for x, p in zip(g, params)]))
    return grads


# model inputs and per-head targets (`lab.evaluate.batch_tensors`)
Batch = tuple[torch.Tensor, list[torch.Tensor]]


def gradient_alignment(model: MTPTransformer, batches: list[Batch]) -> dict[str, float]:
    """`align/cos/head{k}` and `align/norm_ratio/head{k}` for k = 2..n, with the per-head gradients
    summed over `batches` ((inputs, targets) pairs) first. Empty for one head or no trunk
    parameter."""
    n = model.config.n_future
    if n < 2 or not trunk_parameters(model):
        return {}
    was_training = model.training
    model.eval()
    try:
        total: list[torch.Tensor] | None = None
        for inputs, targets in batches:
            grads = head_gradients(model, inputs, targets)
            total = grads if total is None else [a + b for a, b in zip(total, grads)]
    finally:
        model.train(was_training)
    g1 = total[0]
    n1 = float(g1.norm())
    out = {}
    for k in range(1, n):
        nk = float(total[k].norm())
        cos = float(g1 @ total[k]) / (n1 * nk) if n1 > 0 and nk > 0 else math.nan
        out[f"align/cos/head{k + 1}"] = cos
        out[f"align/norm_ratio/head{k + 1}"] = nk / n1 if n1 > 0 else math.nan
    return out
