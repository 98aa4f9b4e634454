"""Decoding: greedy decoding with a KV cache and self-speculative (blockwise parallel)
decoding with the MTP heads, and their measurement on a trained run.

Greedy decoding uses only the next-token head (head 1). Self-speculative decoding (Stern et
al. 2018; the paper, section 3.2 and Appendix A) uses the first k heads: every forward pass
both *verifies* the k tokens proposed by the previous pass and *proposes* k new ones, which
are head 1's greedy next token plus heads 2..k's guesses for the tokens after it. A proposal
is accepted as far as it agrees with head 1's greedy choice; where it first disagrees, head
1's token replaces it. Because head 1 decides every token, the output equals greedy decoding
token for token, whatever the other heads guess; good heads only make it faster.

The KV cache keeps a length per sequence, so in a batch every sequence accepts its own
number of tokens per pass, and rejected guesses cost nothing (their cache entries lie
beyond the sequence's length and are overwritten).

Heads that also read the embedding of a future token (`reads_next_embedding`, e.g. `deepseek`:
head i at position t reads token t+i-1) must form a chain, head i reading head i-1. Proposals
then run sequentially: head 2 reads head 1's greedy token, head 3
reads head 2's guess, and so on (DeepSeek-V3's own MTP drafting). Their cache entries at
positions whose future token was still a guess are rewritten once it is known (see
`Speculator`), so drafting matches a plain forward over the true tokens.

This module holds the decoding algorithms only. Their measurement on a trained run (the paper's
Table S2: a list of decoders timed side by side) and the command line are `lab.decode_bench`;
`python -m lab.decode RUN_DIR` runs that command.
"""

from __future__ import annotations

import copy
import sys
from dataclasses import dataclass, field

import torch

from lab.checkpoints import load_run  # noqa: F401 - the trained run behind a decoder (re-exported)
from lab.device import autocast
from lab.model import KVCache, MTPTransformer


def new_cache(model: MTPTransformer, batch: int, capacity: int, bf16: bool = True) -> KVCache:
    c = model.config
    p = next(model.parameters())
    dtype = torch.bfloat16 if p.device.type == "cuda" and bf16 else p.dtype
    return KVCache(model.n_attention_layers, batch, c.n_head, capacity, c.d_model // c.n_head,
                   p.device, dtype)


@torch.no_grad()
def greedy_decode(model: MTPTransformer, prompts: torch.Tensor, max_new_tokens: int,
                  use_cache: bool = True, bf16: bool = True) -> torch.Tensor:
    """Next-token greedy continuation of equal-length prompts: `(B, P)` -> `(B, max_new_tokens)`.

    `bf16=False` keeps CUDA in full precision (see `autocast`)."""
    B, P = prompts.shape
    if P + max_new_tokens - 1 > model.config.block_size:
        raise ValueError(f"prompt {P} + {max_new_tokens} new tokens exceed the context "
                         f"{model.config.block_size}")
    out = torch.empty(B, max_new_tokens, dtype=torch.long, device=prompts.device)
    with autocast(prompts.device, bf16):
        if not use_cache:
            seq = prompts
            for s in range(max_new_tokens):
                nxt = model(seq, heads=1)[:, -1, 0].argmax(-1)
                out[:, s] = nxt
                seq = torch.cat([seq, nxt[:, None]], dim=1)
            return out
        cache = new_cache(model, B, P + max_new_tokens, bf16)
        logits = model(prompts, heads=1, positions=torch.arange(P, device=prompts.device),
                       cache=cache)
        cache.advance(P)
        for s in range(max_new_tokens):
            nxt = logits[:, -1, 0].argmax(-1)
            out[:, s] = nxt
            if s == max_new_tokens - 1:
                break
            logits = model(nxt[:, None], heads=1, positions=cache.lengths[:, None], cache=cache)
            cache.advance(1)
    return out


# ----- self-speculative (blockwise parallel) decoding -----

@dataclass
class SpeculativeStats:
    """Counts from one speculative decode (Table S2 of the paper).

    `forwards` counts, for every sequence, the passes it took part in before it had all its
    tokens; `tokens` the tokens it kept (at most `max_new_tokens` each). Head i's proposal
    is *checked* when the proposals of heads 1..i-1 in the same pass were all accepted (and
    it lies within the requested length), and *accepted* when it equals head 1's greedy
    choice there. Head 1's own proposal is the greedy token, always accepted.
    `gained[m]` counts verification passes that kept m+1 tokens for a sequence.
    """

    k: int
    tokens: int = 0
    forwards: int = 0
    passes: int = 0  # batched forward passes, prompt pass included
    checked: list[int] = field(default_factory=list)
    accepted: list[int] = field(default_factory=list)
    gained: list[int] = field(default_factory=list)

    @property
    def tokens_per_forward(self) -> float:
        return self.tokens / max(self.forwards, 1)

    @property
    def acceptance(self) -> list[float]:
        """Per head 1..k: accepted / checked (NaN where never checked)."""
        return [a / c if c else float("nan") for a, c in zip(self.accepted, self.checked)]


def _confirmed(inputs: torch.Tensor, greedy: torch.Tensor, verify: bool) -> torch.Tensor:
    """How many of `inputs[:, 1:]` head 1's greedy tokens confirm (the longest agreeing
    prefix), per sequence; all of them when not verifying (a prompt)."""
    B, q = inputs.shape
    if verify and q > 1:
        return (inputs[:, 1:] == greedy[:, :-1]).long().cumprod(dim=1).sum(dim=1)
    return torch.full((B,), q - 1, dtype=torch.long, device=inputs.device)


class Speculator:
    """Self-speculative decoding state of a batch: the KV cache, and for heads that read the
    next embedding (deepseek) the tokens known so far and head 1's output at every position.

    `step` runs one forward over a block of tokens written after each sequence's length.
    Such a head i at position t reads token t+i-1, which is known only up to the token
    after the last confirmed one; the heads' entries at positions where it was not known
    yet are provisional, computed from the previous head's guess. So heads 2..k
    run over a window that starts k-2 positions before the block and rewrite those entries
    once their tokens are known: their cache always matches a forward over the true tokens.
    """

    def __init__(self, model: MTPTransformer, batch: int, capacity: int, k: int,
                 bf16: bool = True) -> None:
        self.model, self.k = model, k
        self.needed = model.heads_needed(k)
        self.cache = new_cache(model, batch, capacity, bf16)
        self.lookahead = k > 1 and any(model.heads[i].reads_next_embedding for i in self.needed)
        if self.lookahead and model.sources[:k] != [-1] + list(range(k - 1)):
            raise ValueError("speculative decoding with heads that read the next embedding needs "
                             "head i to read head i-1")
        self.lag = max(k - 2, 0)
        if self.lookahead:
            device = self.cache.lengths.device
            self.tokens = torch.zeros(batch, capacity + 2 * k, dtype=torch.long, device=device)
            self.head1: torch.Tensor | None = None  # (B, capacity, d), allocated at the first step

    def step(self, inputs: torch.Tensor, positions: torch.Tensor, verify: bool
             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One forward over `inputs (B, q)` at `positions (B, q)`, written after each length.

        Returns head 1's greedy token at every position `(B, q)`, how many of `inputs[:, 1:]`
        it confirms `(B,)` (all of them unless `verify`), and heads 2..k's proposals at the
        last confirmed position `(B, k-1)`. The caller advances the cache.
        """
        model, k = self.model, self.k
        z = model.trunk(model.embed(inputs), positions, self.cache)
        if self.lookahead:
            hidden1 = model.heads[0](z, self.cache, model.head_layer(0))
            greedy = model.unembed(hidden1).argmax(-1)
            accepted = _confirmed(inputs, greedy, verify)
            return greedy, accepted, self._draft_sequentially(inputs, hidden1, greedy, accepted)
        hidden: dict[int, torch.Tensor] = {}
        for i in model.order:
            if i in self.needed:
                src = model.sources[i]
                hidden[i] = model.heads[i](z if src == -1 else hidden[src], self.cache,
                                           model.head_layer(i))
        greedy = model.unembed(hidden[0]).argmax(-1)
        accepted = _confirmed(inputs, greedy, verify)
        if k == 1:
            return greedy, accepted, inputs.new_zeros(inputs.shape[0], 0)
        # (B, q, k-1, d): unembed one position
        h = torch.stack([hidden[i] for i in range(1, k)], dim=2)
        h = h.gather(1, accepted[:, None, None, None].expand(-1, 1, k - 1, h.shape[-1]))[:, 0]
        return greedy, accepted, model.unembed(h).argmax(-1)

    def _draft_sequentially(self, inputs: torch.Tensor, hidden1: torch.Tensor, greedy: torch.Tensor,
                            accepted: torch.Tensor) -> torch.Tensor:
        """Heads 2..k over the window, each reading the true token where it is known
        and the previous head's guess where not. Returns their guesses at the last confirmed
        position."""
        model, B, q = self.model, *inputs.shape
        lengths = self.cache.lengths
        slots = lengths[:, None] + torch.arange(q, device=inputs.device)
        self.tokens.scatter_(1, slots, inputs)
        self.tokens.scatter_(1, (lengths + accepted + 1)[:, None],
                             greedy.gather(1, accepted[:, None]))
        known = (lengths + accepted + 2)[:, None]  # tokens before this index are certain
        if self.head1 is None:
            self.head1 = hidden1.new_zeros(B, self.cache.capacity, hidden1.shape[-1])
        d = hidden1.shape[-1]
        self.head1.scatter_(1, slots[:, :, None].expand(-1, -1, d), hidden1)
        start = (lengths - self.lag).clamp(min=0)
        window = start[:, None] + torch.arange(q + self.lag, device=inputs.device)
        h = self.head1.gather(1, window[:, :, None].expand(-1, -1, d))
        guess = model.unembed(h).argmax(-1)
        view = copy.copy(self.cache)  # the same storage, written from each window's start
        view.lengths = start
        last = (lengths + accepted - start)[:, None]  # window index of the last confirmed position
        drafts = []
        for i in range(1, self.k):
            ahead = window + i
            token = torch.where(ahead < known, self.tokens.gather(1, ahead), guess)
            h = model.heads[i](h, view, model.head_layer(i), model.embed(token))
            guess = model.unembed(h).argmax(-1)
            drafts.append(guess.gather(1, last)[:, 0])
        return torch.stack(drafts, dim=1)


@torch.no_grad()
def propose(model: MTPTransformer, prompts: torch.Tensor, k: int | None = None) -> torch.Tensor:
    """The k tokens one forward over equal-length prompts proposes: head 1's greedy next
    token, then heads 2..k's guesses for the tokens after it. `(B, P)` -> `(B, k)`."""
    k = model.config.n_future if k is None else k
    B, P = prompts.shape
    with autocast(prompts.device):
        positions = torch.arange(P, device=prompts.device).expand(B, P)
        greedy, _, drafts = Speculator(model, B, P + 2 * k, k).step(prompts, positions,
                                                                    verify=False)
    return torch.cat([greedy[:, -1:], drafts], dim=1)


@torch.no_grad()
def speculative_decode(model: MTPTransformer, prompts: torch.Tensor, max_new_tokens: int,
                       k: int | None = None, bf16: bool = True) -> tuple[torch.Tensor,
                                                                         SpeculativeStats]:
    """Self-speculative greedy continuation with heads 1..k of equal-length prompts.

    Returns the tokens `(B, max_new_tokens)`, equal to `greedy_decode`'s, and the counts.
    Equal means computed in the same arithmetic: under CUDA's bf16 autocast a block of k
    tokens and k single tokens round differently, so a near tie between two tokens can
    break either way; `bf16=False` (and any CPU run) compares in full precision.
    The loop only runs the model and moves the cache; tokens and counts are assembled
    from the per-pass records at the end, so that k=1 costs what greedy decoding costs.
    """
    n = model.config.n_future
    k = n if k is None else k
    if not 1 <= k <= n:
        raise ValueError(f"k={k} must be between 1 and the model's {n} heads")
    B, P = prompts.shape
    N = max_new_tokens
    if P + N - 1 > model.config.block_size:
        raise ValueError(f"prompt {P} + {N} new tokens exceed the context {model.config.block_size}")
    device = prompts.device
    if N <= 0:
        return torch.empty(B, 0, dtype=torch.long, device=device), _count(k, N, [], [], [], B)
    spec = Speculator(model, B, P + N + 2 * k, k, bf16)
    cache = spec.cache
    offsets = torch.arange(k, device=device)
    last_position = model.config.block_size - 1
    blocks, accepted_log, emitted_log = [], [], []
    with autocast(device, bf16):
        positions = torch.arange(P, device=device).expand(B, P)
        greedy, _, drafts = spec.step(prompts, positions, verify=False)
        cache.advance(P)
        pending = greedy[:, -1]
        blocks.append(pending[:, None])
        emitted = torch.ones(B, dtype=torch.long, device=device)
        while True:
            active = emitted < N
            if not bool(active.any()):
                break
            block = torch.cat([pending[:, None], drafts], dim=1) if k > 1 else pending[:, None]
            # Positions past the context only occur beyond the requested length: clamp them.
            positions = (cache.lengths[:, None] + offsets).clamp_(max=last_position)
            greedy, accepted, drafts = spec.step(block, positions, verify=True)
            # Keep head 1's tokens up to and including the first correction (finished sequences:
            # none).
            gained = (accepted + 1) * active
            blocks.append(greedy)
            accepted_log.append(accepted)
            emitted_log.append(emitted)
            cache.advance(gained)
            emitted = emitted + gained
            pending = greedy.gather(1, accepted[:, None])[:, 0]
    return _assemble(blocks, accepted_log, N), _count(k, N, accepted_log, emitted_log, blocks, B)


def _assemble(blocks: list[torch.Tensor], accepted_log: list[torch.Tensor], N: int) -> torch.Tensor:
    """The kept tokens: the prompt pass's token, then per pass head 1's tokens up to the
    correction."""
    B, device = blocks[0].shape[0], blocks[0].device
    tokens = torch.cat(blocks, dim=1)
    keep = [torch.ones(B, 1, dtype=torch.bool, device=device)]
    keep += [torch.arange(b.shape[1], device=device)[None, :] <= a[:,
                                                                   None] for b, a in zip(blocks[1:],
                                                                                         accepted_log)]
    keep = torch.cat(keep, dim=1)
    index = keep.long().cumsum(dim=1) - 1
    out = torch.zeros(B, N + 1, dtype=torch.long, device=device)
    out.scatter_(1, torch.where(keep & (index < N), index, N), tokens)  # column N collects the rest
    return out[:, :N]


def _count(k: int, N: int, accepted_log: list[torch.Tensor], emitted_log: list[torch.Tensor],
           blocks: list[torch.Tensor], B: int) -> SpeculativeStats:
    """Table S2's counts from the per-pass records (see `SpeculativeStats`)."""
    stats = SpeculativeStats(k=k, tokens=B * max(N, 0), passes=len(blocks), checked=[0] * k,
                             accepted=[0] * k,
                             gained=[0] * k)
    if not blocks:
        return stats
    stats.forwards = B
    stats.checked[0] = stats.accepted[0] = B
    if not accepted_log:
        return stats
    accepted = torch.stack(accepted_log)[:, :, None]  # (passes, B, 1)
    emitted = torch.stack(emitted_log)[:, :, None]
    active = emitted < N
    column = torch.arange(k, device=accepted.device)
    # Block column j >= 1 holds head j+1's proposal: checked if heads 2..j were accepted.
    checked = active & (column <= accepted + 1) & (emitted - 1 + column < N)
    taken = checked & (column <= accepted)
    stats.forwards += int(active.sum())
    stats.checked = [stats.checked[0] + int(active.sum())] + checked.sum(dim=(0, 1))[1:].tolist()
    stats.accepted = [stats.accepted[0] + int(active.sum())] + taken.sum(dim=(0, 1))[1:].tolist()
    stats.gained = torch.bincount(accepted[active], minlength=k).tolist()
    return stats


if __name__ == "__main__":  # `python -m lab.decode RUN_DIR`: the measurement (lab/decode_bench.py)
    from lab.decode_bench import main
    sys.exit(main())
