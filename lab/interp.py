"""Interpretability probes: attention patterns and the induction-head (prefix-matching) score.

The model's attention runs through `scaled_dot_product_attention`, which never materialises
the attention probabilities, so `attention_maps` recomputes them: it records the input of
every attention layer during an ordinary forward pass and applies that layer's own `c_attn`
query and key weights, scaling (1/sqrt(head_dim)), causal mask and softmax.

The prefix-matching score of Olsson et al. (2022, "In-context Learning and Induction Heads"):
on a sequence of random tokens repeated twice, `x_0 .. x_{L-1} x_0 .. x_{L-1}`, an induction
head attends from each token of the second repeat (position L + j) to the token that
followed its earlier occurrence (position j + 1), whose value it then copies. The score of
an attention head is its mean attention to that position over every token of the second
repeat and every probe sequence; `induction_scores` reports the best head's. The tokens of
one repeat are drawn without replacement, so each token's earlier occurrence is unique. A
head that attends uniformly scores about 1/(1.5 L); a perfect induction head scores 1.

The probe is seeded and uses its own generator (never the global RNG), so logging it at
every evaluation leaves training bit-for-bit unchanged.

`copy_attention` is the task's own version where a task marks its copy positions
(`Task.copy_probe`): for induction, the attention from a repeated name's first token to the
second token of its earlier mention, on validation stories.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from lab.model import CausalSelfAttention, MTPTransformer

PROBE_SEQUENCES = 4  # repeated sequences per probe
PROBE_LENGTH = 24  # tokens per repeat (fewer if the vocabulary or the context is smaller)


def attention_layers(model: MTPTransformer) -> list[tuple[str, CausalSelfAttention]]:
    """Every attention layer in forward order, named `trunk.k` (k-th trunk block, 0-based) or
    `head{i}` (the block of head i, 1-based)."""
    layers = []
    for k, block in enumerate(model.transformer.h):
        layers.append((f"trunk.{k}", block.attn))
    for i, head in enumerate(model.heads, start=1):
        block = getattr(head, "block", None)
        if block is not None:
            layers.append((f"head{i}", block.attn))
    return layers


def attention_probs(attn: CausalSelfAttention, x: torch.Tensor) -> torch.Tensor:
    """Causal attention probabilities `(B, n_head, T, T)` of layer `attn` on its input `x (B, T,
    C)`."""
    B, T, C = x.shape
    hd = C // attn.n_head
    q, k, _ = attn.c_attn(x).split(C, dim=2)
    q, k = (t.view(B, T, attn.n_head, hd).transpose(1, 2).float() for t in (q, k))
    scores = (q @ k.transpose(-2, -1)) / math.sqrt(hd)
    causal = torch.ones(T, T, dtype=torch.bool, device=x.device).tril()
    return F.softmax(scores.masked_fill(~causal, float("-inf")), dim=-1)


@torch.no_grad()
def attention_maps(model: MTPTransformer, idx: torch.Tensor) -> dict[str, torch.Tensor]:
    """Attention probabilities `(B, n_head, T, T)` of every attention layer on tokens `idx (B, T)`,
    keyed as in `attention_layers`, from one forward pass of every head."""
    inputs: dict[str, torch.Tensor] = {}
    hooks = []
    for name, attn in attention_layers(model):
        def record(module, args, name=name):
            inputs[name] = args[0]
        hooks.append(attn.register_forward_pre_hook(record))
    was_training = model.training
    model.eval()
    try:
        model.hidden_states(idx)
    finally:
        model.train(was_training)
        for hook in hooks:
            hook.remove()
    return {name: attention_probs(attn,
                                  inputs[name]) for name, attn in attention_layers(model) if name in inputs}


def repeated_random_tokens(rng: np.random.Generator, n_seqs: int, length: int,
                           vocab_size: int) -> np.ndarray:
    """`(n_seqs, 2 * length)` sequences: `length` distinct random tokens, then the same again."""
    if length > vocab_size:
        raise ValueError(f"cannot draw {length} distinct tokens from a vocabulary of {vocab_size}")
    first = np.stack([rng.choice(vocab_size, size=length, replace=False) for _ in range(n_seqs)])
    return np.concatenate([first, first], axis=1).astype(np.int64)


def prefix_matching(attn: torch.Tensor, length: int) -> torch.Tensor:
    """Per-head prefix-matching score `(n_head,)` of attention `(B, n_head, 2L, 2L)` on sequences
    repeated twice with period `length`: mean attention from position L + j to position j + 1."""
    rows = torch.arange(length, 2 * length, device=attn.device)
    return attn[:, :, rows, rows - length + 1].mean(dim=(0, 2))


def previous_token(attn: torch.Tensor) -> torch.Tensor:
    """Per-head previous-token score `(n_head,)`: mean attention from position t to t - 1 (t >=
    1)."""
    rows = torch.arange(1, attn.shape[-1], device=attn.device)
    return attn[:, :, rows, rows - 1].mean(dim=(0, 2))


def induction_scores(model: MTPTransformer, vocab_size: int, device: torch.device | str,
                     n_seqs: int = PROBE_SEQUENCES, length: int = PROBE_LENGTH,
                     seed: int = 0) -> dict[str, float]:
    """The best attention head's prefix-matching score on repeated random tokens, and where it is.

    Returns `interp/prefix_matching_max`, `interp/prefix_matching_layer` (index into
    `attention_layers`), `interp/prefix_matching_head` and `interp/prev_token_max` (the best
    previous-token head, the other half of the induction circuit). Tokens come from
    `[0, vocab_size)` (pass the task's vocabulary). Empty if the model has no attention layer
    or the context cannot hold two repeats of two tokens.
    """
    length = min(length, vocab_size, model.config.block_size // 2)
    if length < 2 or not attention_layers(model):
        return {}
    tokens = repeated_random_tokens(np.random.default_rng([seed, 0x1D0C]), n_seqs, length,
                                    vocab_size)
    maps = attention_maps(model, torch.as_tensor(tokens, device=device))
    prefix = torch.stack([prefix_matching(a, length) for a in maps.values()])  # (layers, heads)
    previous = torch.stack([previous_token(a) for a in maps.values()])
    best = int(prefix.argmax())
    layer, head = divmod(best, prefix.shape[1])
    return {
        "interp/prefix_matching_max": float(prefix.max()),
        "interp/prefix_matching_layer": layer,
        "interp/prefix_matching_head": head,
        "interp/prev_token_max": float(previous.max()),
    }


COPY_PROBE_SEQUENCES = 32  # validation sequences of a task's copy probe


def copy_attention(model: MTPTransformer, tokens: np.ndarray, pairs: np.ndarray,
                   device: torch.device | str) -> dict[str, float]:
    """The best attention head's mean attention from each query position to its copy source
    (`Task.copy_probe`: for induction, from a repeated first-name token to the second name token of
    the earlier mention, which an induction head must read), and where that head is: the
    task-specific counterpart of the prefix-matching score. Empty without pairs or attention."""
    if len(pairs) == 0 or not attention_layers(model):
        return {}
    maps = attention_maps(model, torch.as_tensor(tokens[:, :-1], device=device))
    rows, queries, sources = (torch.as_tensor(pairs[:, i], device=device) for i in range(3))
    # (layers, heads)
    scores = torch.stack([a[rows, :, queries, sources].mean(dim=0) for a in maps.values()])
    layer, head = divmod(int(scores.argmax()), scores.shape[1])
    return {"interp/copy_attention_max": float(scores.max()), "interp/copy_attention_layer": layer,
            "interp/copy_attention_head": head}
