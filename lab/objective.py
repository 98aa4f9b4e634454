"""The multi-token prediction loss and its memory-efficient backward.

Targets: for a batch of `(B, L)` tokens the model reads `inputs[:, :-1]` (T = L-1
positions) and head i (1-based) at position t predicts token t+i. That target counts only
where t+i < L and the task's `loss_mask` holds for token t+i.

Loss = sum over heads of w_i * (mean cross-entropy of head i over its counted targets).

The memory-efficient backward (paper, Figure 2): run the trunk once and detach its output;
then, head by head, forward the head, the shared unembedding and its loss, and backward at
once, so only one head's logits (B x T x V) exist at any time; the gradient at the
detached trunk output accumulates; finally backward the trunk once. Heads that read other
heads (`model.sources`: causal, anticausal, deepseek) are visited from the one furthest from the trunk
inward, each receiving the gradient of the heads that read it before its own backward.
The result equals the gradient of the plain summed loss (tests/test_objective.py).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from lab.model import MTPTransformer

IGNORE = -100


class StepResult:
    """What one forward/backward produced: the total loss and per-head loss, accuracy and count.

    The per-head numbers stay on the model's device as tensors until one of them is first
    read; that read copies all of them to the host at once. A training step on a GPU thus
    never waits for the device, and a caller that logs once per step syncs once per step.
    """

    def __init__(self, losses: list[torch.Tensor], corrects: list[torch.Tensor],
                 counts: list[torch.Tensor],
                 weights: list[float]) -> None:
        self._tensors = (losses, corrects, counts)
        self._weights = weights
        self._values: tuple[list[float], list[float], list[int]] | None = None

    def _host(self) -> tuple[list[float], list[float], list[int]]:
        if self._values is None:
            losses, corrects, counts = self._tensors
            n = len(losses)
            # One device-to-host copy: losses keep their dtype (float64 in the gradient tests);
            # counts and correct predictions are exact integers in any float dtype used here.
            dtype = losses[0].dtype if losses[0].is_floating_point() else torch.float32
            stacked = torch.stack([x.to(dtype) for x in (*losses, *corrects, *counts)]).tolist()
            head_loss, correct, count = stacked[:n], stacked[n:2 * n], [int(c) for c in stacked[2 * n:]]
            self._values = (head_loss, [c / max(k, 1) for c, k in zip(correct, count)], count)
            self._tensors = ([], [], [])
        return self._values

    @property
    def loss(self) -> float:
        return sum(w * x for w, x in zip(self._weights, self._host()[0]))

    @property
    def head_loss(self) -> list[float]:
        return self._host()[0]

    @property
    def head_acc(self) -> list[float]:
        return self._host()[1]

    @property
    def head_count(self) -> list[int]:
        return self._host()[2]


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


def head_loss_sums(logits: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor,
                                                                        torch.Tensor]:
    """One head's summed cross-entropy over its counted targets, number correct, number counted.

    Everything stays a device tensor (no `int()`/`float()`), so nothing here waits for a GPU.
    Cross-entropy runs in float32 at least: bf16 logits under autocast are upcast, float32 and
    float64 logits are used as they are (no copy). Training (`_head_loss`) and evaluation
    (`lab.evaluate.head_metrics`) both score a head with this.
    """
    flat_logits = logits.reshape(-1, logits.shape[-1])
    if flat_logits.dtype not in (torch.float32, torch.float64):
        flat_logits = flat_logits.float()
    flat_target = target.reshape(-1)
    valid = flat_target != IGNORE
    count = valid.sum()
    loss_sum = F.cross_entropy(flat_logits, flat_target, ignore_index=IGNORE, reduction="sum")
    with torch.no_grad():  # max(dim).indices predicts like argmax (ties aside), cheaper on CPU
        correct = ((flat_logits.max(-1).indices == flat_target) & valid).sum()
    return loss_sum, correct, count


def _head_loss(logits: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor,
                                                                    torch.Tensor]:
    """Mean cross-entropy over counted targets (0 if none), number correct, number counted."""
    loss_sum, correct, count = head_loss_sums(logits, target)
    return loss_sum / count.clamp(min=1), correct, count


def _unembed_loss(model: MTPTransformer, hidden: torch.Tensor, target: torch.Tensor,
                  head: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Shared final norm and unembedding, then `_head_loss`, for the hidden state of head `head`
    (0-based)."""
    return _head_loss(model.unembed(hidden, head), target)


_compiled: dict[str, object] = {}


def _loss_fn(model: MTPTransformer):
    """`_unembed_loss`, compiled (once, on first use) for models whose blocks are compiled
    (`MTPTransformer.compile_blocks`): fusing the unembedding's output with the loss avoids
    float32 copies of the logits under bf16 autocast."""
    if not getattr(model, "compiled", False):
        return _unembed_loss
    if "unembed_loss" not in _compiled:
        _compiled["unembed_loss"] = torch.compile(_unembed_loss)
    return _compiled["unembed_loss"]


def _summarise(losses: list[torch.Tensor], corrects: list[torch.Tensor], counts: list[torch.Tensor],
               weights: list[float]) -> StepResult:
    return StepResult(losses, corrects, counts, weights)


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
    loss_fn = _loss_fn(model)
    for i, (h, target) in enumerate(zip(model.hidden_states(inputs), targets)):
        loss, correct, count = loss_fn(model, h, target, i)
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

    Gradients accumulate into `.grad` exactly as `backward_plain` would leave them. With one
    head there is nothing to free early, so the single-graph plain backward runs (it is faster).
    """
    if len(model.order) == 1:
        return backward_plain(model, inputs, targets, head_weights, scale)
    weights = _weights(model, head_weights)
    tok_emb = model.embed(inputs)
    z = model.trunk(tok_emb)
    z_leaf = z.detach().requires_grad_(True)
    emb_leaf = tok_emb.detach().requires_grad_(True) if model.reads_next_embedding else None

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
    counts: list[torch.Tensor] = [torch.zeros(())] * n
    loss_fn = _loss_fn(model)
    for i in reversed(model.order):
        loss, correct, count = loss_fn(model, out[i], targets[i], i)
        losses[i], corrects[i], counts[i] = loss.detach(), correct, count
        readers = [j for j in range(n) if model.sources[j] == i]
        incoming = [leaf_in[j].grad for j in readers if leaf_in[j].grad is not None]
        tensors, grads = [loss * (weights[i] * scale)], [None]
        if incoming:
            tensors.append(out[i])
            grads.append(torch.stack(incoming).sum(0) if len(incoming) > 1 else incoming[0])
        torch.autograd.backward(tensors, grads)
        del loss

    roots, root_grads = [], []
    if z.requires_grad and z_leaf.grad is not None:  # a frozen trunk has nothing to backward
        roots.append(z)
        root_grads.append(z_leaf.grad)
    if emb_leaf is not None and emb_leaf.grad is not None and tok_emb.requires_grad:
        roots.append(tok_emb)
        root_grads.append(emb_leaf.grad)
    if roots:
        torch.autograd.backward(roots, root_grads)
    return _summarise(losses, corrects, counts, weights)


def forward_backward(model: MTPTransformer, inputs: torch.Tensor, targets: list[torch.Tensor],
                     efficient: bool = True, head_weights: list[float] | None = None,
                     scale: float = 1.0) -> StepResult:
    """One forward and backward with the chosen implementation."""
    fn = backward_efficient if efficient else backward_plain
    return fn(model, inputs, targets, head_weights, scale)
