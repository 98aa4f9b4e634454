"""The multi-token prediction loss and its memory-efficient backward.

Targets: for a batch of `(B, L)` tokens the model reads `inputs[:, :-1]` (T = L-1
positions) and head i (1-based) at position t predicts token t+i. That target counts only
where t+i < L and the task's `loss_mask` holds for token t+i.

Loss = sum over heads of w_i * (mean cross-entropy of head i over its counted targets).

The memory-efficient backward (paper, Figure 2): run the trunk once and detach its output;
then, head by head, forward the head, the shared unembedding and its loss, and backward at
once, so only one head's logits (B x T x V) exist at any time; the gradient at the
detached trunk output accumulates; finally backward the trunk once. Heads that read other
heads (causal, anticausal, deepseek) are visited from the one furthest from the trunk
inward, each receiving the gradient of the heads that read it before its own backward.
The result equals the gradient of the plain summed loss (tests/test_objective.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from lab.model import DeepSeekHead, MTPTransformer

IGNORE = -100


@dataclass
class StepResult:
    """What one forward/backward produced: the total loss and per-head loss and accuracy."""

    loss: float
    head_loss: list[float]
    head_acc: list[float]
    head_count: list[int]


def head_targets(tokens: torch.Tensor, loss_mask: torch.Tensor, n_heads: int) -> list[torch.Tensor]:
    """Per-head target tensors `(B, L-1)` with `IGNORE` where a head has nothing to predict."""
    B, L = tokens.shape
    T = L - 1
    masked = torch.where(loss_mask, tokens, torch.full_like(tokens, IGNORE))
    targets = []
    for i in range(1, n_heads + 1):
        t = torch.full((B, T), IGNORE, dtype=tokens.dtype, device=tokens.device)
        if i <= T:
            t[:, : T - i + 1] = masked[:, i:]
        targets.append(t)
    return targets


def _head_loss(logits: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Mean cross-entropy over counted targets (0 if none), number correct, number counted."""
    flat_logits = logits.reshape(-1, logits.shape[-1]).float()
    flat_target = target.reshape(-1)
    count = int((flat_target != IGNORE).sum())
    loss_sum = F.cross_entropy(flat_logits, flat_target, ignore_index=IGNORE, reduction="sum")
    with torch.no_grad():
        correct = ((flat_logits.argmax(-1) == flat_target) & (flat_target != IGNORE)).sum()
    return loss_sum / max(count, 1), correct, count


def _summarise(losses: list[torch.Tensor], corrects: list[torch.Tensor], counts: list[int],
               weights: list[float]) -> StepResult:
    head_loss = [float(x) for x in losses]
    return StepResult(
        loss=sum(w * x for w, x in zip(weights, head_loss)),
        head_loss=head_loss,
        head_acc=[float(c) / max(n, 1) for c, n in zip(corrects, counts)],
        head_count=counts,
    )


def _weights(model: MTPTransformer, head_weights: list[float] | None) -> list[float]:
    n = model.config.n_future
    if head_weights is None:
        return [1.0] * n
    if len(head_weights) != n:
        raise ValueError(f"{len(head_weights)} head weights given for {n} heads")
    return list(head_weights)


def plain_loss(model: MTPTransformer, inputs: torch.Tensor, targets: list[torch.Tensor],
               head_weights: list[float] | None = None) -> tuple[torch.Tensor, StepResult]:
    """The summed loss as one graph (every head's logits alive at once)."""
    weights = _weights(model, head_weights)
    losses, corrects, counts = [], [], []
    for h, target in zip(model.hidden_states(inputs), targets):
        loss, correct, count = _head_loss(model.unembed(h), target)
        losses.append(loss)
        corrects.append(correct)
        counts.append(count)
    total = sum(w * x for w, x in zip(weights, losses))
    return total, _summarise([x.detach() for x in losses], corrects, counts, weights)


def backward_plain(model: MTPTransformer, inputs: torch.Tensor, targets: list[torch.Tensor],
                   head_weights: list[float] | None = None, scale: float = 1.0) -> StepResult:
    """Forward and backward of the plain summed loss (gradients accumulate into .grad)."""
    total, result = plain_loss(model, inputs, targets, head_weights)
    (total * scale).backward()
    return result


def backward_efficient(model: MTPTransformer, inputs: torch.Tensor, targets: list[torch.Tensor],
                       head_weights: list[float] | None = None, scale: float = 1.0) -> StepResult:
    """Forward and backward head by head on the detached trunk output (see module docstring).

    Gradients accumulate into `.grad` exactly as `backward_plain` would leave them.
    """
    weights = _weights(model, head_weights)
    tok_emb = model.embed(inputs)
    z = model.trunk(tok_emb)
    z_leaf = z.detach().requires_grad_(True)
    needs_emb = any(isinstance(h, DeepSeekHead) for h in model.heads)
    emb_leaf = tok_emb.detach().requires_grad_(True) if needs_emb else None

    # Forward every head on detached inputs, keeping only d-sized activations.
    leaf_in: dict[int, torch.Tensor] = {}
    out: dict[int, torch.Tensor] = {}
    for i in model.order:
        src = model.sources[i]
        x = z_leaf if src == -1 else out[src].detach().requires_grad_(True)
        leaf_in[i] = x
        out[i] = model.run_head(i, x, emb_leaf)

    # Backward from the heads furthest from the trunk inward; one head's logits at a time.
    n = len(model.order)
    losses: list[torch.Tensor] = [torch.zeros(())] * n
    corrects: list[torch.Tensor] = [torch.zeros(())] * n
    counts = [0] * n
    for i in reversed(model.order):
        loss, correct, count = _head_loss(model.unembed(out[i]), targets[i])
        losses[i], corrects[i], counts[i] = loss.detach(), correct, count
        readers = [j for j in range(n) if model.sources[j] == i]
        incoming = [leaf_in[j].grad for j in readers if leaf_in[j].grad is not None]
        tensors, grads = [loss * (weights[i] * scale)], [None]
        if incoming:
            tensors.append(out[i])
            grads.append(torch.stack(incoming).sum(0) if len(incoming) > 1 else incoming[0])
        torch.autograd.backward(tensors, grads)
        del loss

    roots, root_grads = [z], [z_leaf.grad if z_leaf.grad is not None else torch.zeros_like(z)]
    if emb_leaf is not None and emb_leaf.grad is not None:
        roots.append(tok_emb)
        root_grads.append(emb_leaf.grad)
    torch.autograd.backward(roots, root_grads)
    return _summarise(losses, corrects, counts, weights)


def forward_backward(model: MTPTransformer, inputs: torch.Tensor, targets: list[torch.Tensor],
                     efficient: bool = True, head_weights: list[float] | None = None,
                     scale: float = 1.0) -> StepResult:
    """One forward and backward with the chosen implementation."""
    fn = backward_efficient if efficient else backward_plain
    return fn(model, inputs, targets, head_weights, scale)
