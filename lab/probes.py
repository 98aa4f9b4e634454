"""Measures of a trained model that the Table S6 hypotheses need beyond its losses.

- **Sharpness** (H1, "changes the initialization too brutally"): how sharp the basin a base sits
  in is, as (a) the mean rise of head 1's loss under random weight perturbations of a fixed
  relative size (each tensor moved by `eps` times its own norm, in a Gaussian direction), and
  (b) the top eigenvalue of the Hessian of head 1's loss, by power iteration on Hessian-vector
  products taken as central differences of gradients. A converged model in a sharp basin
  should show larger values than an under-trained one.
- **Specialisation** (H7; Mehra et al. 2025: a next-token model's hidden states are specialised
  for the next token): a linear probe's test accuracy for token t+k from each layer of head 1's
  path (the embeddings, every trunk block, head 1's output), fitted on one half of held-out
  sequences and scored on the other half. The probe is ridge regression onto one-hot labels
  (closed form: no optimiser, no seed), a standard linear probe that is cheap at d <= 128.

Everything runs in float32 on the CPU in seconds at the lab's CPU sizes, deterministically for
a given seed; nothing here changes the model.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from lab.model import MTPTransformer
from lab.objective import IGNORE, head_targets


def _batch(batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    tokens = torch.as_tensor(batch.tokens)
    mask = torch.as_tensor(batch.loss_mask)
    return torch.as_tensor(batch.input_tokens[:, :-1]), tokens, mask


def head1_loss(model: MTPTransformer, batches: list) -> torch.Tensor:
    """Mean cross-entropy of head 1 over the counted targets of `batches` (with gradients)."""
    total, count = 0.0, 0
    for batch in batches:
        inputs, tokens, mask = _batch(batch)
        target = head_targets(tokens, mask, 1)[0]
        logits = model.unembed(model.hidden_states(inputs, heads=1)[0])
        total = total + F.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1),
                                        ignore_index=IGNORE, reduction="sum")
        count += int((target != IGNORE).sum())
    return total / max(count, 1)


def _params(model: MTPTransformer) -> list[torch.nn.Parameter]:
    """The parameters on head 1's path that head 1's loss reaches (the extra heads are left out)."""
    return [p for name, p in model.named_parameters() if not name.startswith("heads.") or name.startswith("heads.0.")]


@torch.no_grad()
def perturbation_sharpness(model: MTPTransformer, batches: list, eps: float = 0.01,
                           directions: int = 8,
                           seed: int = 0) -> float:
    """Mean rise of head 1's loss when every tensor moves by `eps` x its norm in a random direction."""
    model.eval()
    params = _params(model)
    base = float(head1_loss(model, batches))
    saved = [p.detach().clone() for p in params]
    gen = torch.Generator().manual_seed(seed)
    rises = []
    for _ in range(directions):
        for p, w in zip(params, saved):
            noise = torch.randn(w.shape, generator=gen)
            p.copy_(w + eps * w.norm() * noise / noise.norm().clamp(min=1e-12))
        rises.append(float(head1_loss(model, batches)) - base)
        for p, w in zip(params, saved):
            p.copy_(w)
    return sum(rises) / len(rises)


def _grad(model: MTPTransformer, params: list, batches: list) -> list[torch.Tensor]:
    loss = head1_loss(model, batches)
    return list(torch.autograd.grad(loss, params))


def top_hessian_eigenvalue(model: MTPTransformer, batches: list, iterations: int = 20,
                           radius: float = 1e-3,
                           seed: int = 0) -> float:
    """The Hessian's eigenvalue of largest magnitude for head 1's loss (power iteration; Hv by
    central differences of gradients at `radius`, relative to the weights' norm)."""
    model.eval()
    params = _params(model)
    saved = [p.detach().clone() for p in params]
    scale = radius * math.sqrt(sum(float(w.pow(2).sum()) for w in saved))
    gen = torch.Generator().manual_seed(seed)
    v = [torch.randn(w.shape, generator=gen) for w in saved]
    value = 0.0
    for _ in range(iterations):
        norm = math.sqrt(sum(float(x.pow(2).sum()) for x in v))
        v = [x / norm for x in v]
        grads = []
        for sign in (1, -1):
            with torch.no_grad():
                for p, w, x in zip(params, saved, v):
                    p.copy_(w + sign * scale * x)
            grads.append(_grad(model, params, batches))
        with torch.no_grad():
            for p, w in zip(params, saved):
                p.copy_(w)
        hv = [(a - b) / (2 * scale) for a, b in zip(*grads)]
        value = sum(float((x * h).sum()) for x, h in zip(v, hv))
        v = hv
    return value


@torch.no_grad()
def layer_states(model: MTPTransformer, inputs: torch.Tensor) -> list[torch.Tensor]:
    """Hidden states along head 1's path: embeddings, after each trunk block, head 1's output."""
    model.eval()
    tok = model.embed(inputs)
    positions = torch.arange(inputs.shape[1])
    x = tok + model.transformer.wpe(positions)
    states = [x]
    for block in model.transformer.h:
        x = block(x, None, 0)
        states.append(x)
    needed = model.heads_needed(1)
    outputs: dict[int, torch.Tensor] = {}
    for i in model.order:
        if i in needed:
            src = model.sources[i]
            outputs[i] = model.run_head(i, x if src == -1 else outputs[src], tok)
    states.append(outputs[0])
    return states


def ridge_probe_accuracy(fit_x: torch.Tensor, fit_y: torch.Tensor, score_x: torch.Tensor,
                         score_y: torch.Tensor,
                         vocab: int, ridge: float = 1e-2) -> float:
    """Accuracy of a linear least-squares classifier (ridge regression onto one-hot labels, features
    standardised on the fit half, with a bias): closed form, so deterministic and fast."""
    mean, std = fit_x.mean(0), fit_x.std(0).clamp(min=1e-6)

    def design(x: torch.Tensor) -> torch.Tensor:
        z = ((x - mean) / std).double()
        return torch.cat([z, torch.ones(len(z), 1, dtype=z.dtype)], dim=1)

    a = design(fit_x)
    onehot = F.one_hot(fit_y, vocab).double()
    gram = a.T @ a + ridge * len(a) * torch.eye(a.shape[1], dtype=a.dtype)
    weights = torch.linalg.solve(gram, a.T @ onehot)
    return float(((design(score_x) @ weights).argmax(-1) == score_y).double().mean())


@torch.no_grad()
def future_token_probes(model: MTPTransformer, batches: list, ks: tuple[int, ...] = (1, 2, 3, 4),
                        ) -> dict[str, float]:
    """Linear-probe test accuracy for token t+k from every layer of head 1's path:
    `probe/layer{l}/k{k}` (layer 0 = embeddings, the last = head 1's output). Positions count where
    token t+k is a target of the task; the first half of the sequences fit, the second half score."""
    inputs = torch.cat([_batch(b)[0] for b in batches])
    tokens = torch.cat([_batch(b)[1] for b in batches])
    mask = torch.cat([_batch(b)[2] for b in batches])
    states = layer_states(model, inputs)
    half = inputs.shape[0] // 2
    out = {}
    targets = head_targets(tokens, mask, max(ks))
    for k in ks:
        fit, score = targets[k - 1][:half], targets[k - 1][half:]
        fit_valid, score_valid = fit != IGNORE, score != IGNORE
        fit_target, score_target = fit[fit_valid], score[score_valid]
        if len(fit_target) == 0 or len(score_target) == 0:
            continue
        for layer, h in enumerate(states):
            out[f"probe/layer{layer}/k{k}"] = ridge_probe_accuracy(
                h[:half][fit_valid], fit_target, h[half:][score_valid], score_target,
                model.config.vocab_size)
    return out
