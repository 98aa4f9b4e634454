"""The multi-token prediction transformer: shared trunk, n heads, one shared unembedding.

    tokens -> embedding -> trunk blocks -> z --+--> head 1 --+
                                               +--> head 2 --+--> ln_f -> lm_head -> logits_i
                                               +--> ...    --+

Head i predicts token t+i (head 1 is the ordinary next-token head). The head types
(`parallel`, `causal`, `anticausal`, `linear`, `deepseek`; paper, section 2 and Appendix B)
live in `lab/heads.py`: each declares what its heads read, how many blocks the trunk keeps
and how many each head has, and the model wires, runs and counts them from that.

Parameter matching (`match_params`, on by default): a model with `n_layer` L and n
block-type heads has L-n trunk blocks plus n head blocks, so n=1 is a plain L-layer
transformer and parallel, causal and anticausal heads keep the parameter count of n=1 for
every n. Two head types are not matched: linear heads keep all L trunk blocks and add
(n-1) d^2, and deepseek heads 2..n each add a d x 2d combining projection and two norms.
Matching makes head 1's path shallower: parallel heads at n=4 of a 5-layer size leave it 2
blocks deep (1 trunk + head 1) against 5 at n=1 (`param_counts()["next_token_depth"]`).
With matching off, the trunk keeps L-1 blocks and the n head blocks sit on top (n=1 is
still the plain model).

`detach_extra_heads`: heads 2..n that read the next-token path (the trunk, or head 1 for causal
and deepseek heads) read it detached, so their losses train their own weights only and the
next-token model (with the shared final norm and unembedding) is what next-token training alone
would make it (a stop-gradient recipe that
bounds the harm of the extra heads at zero; anticausal heads are refused, head 1 reads them).

Naming follows nanoGPT (`transformer.wte/wpe/h/ln_f`, `lm_head`); heads live in `heads`.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from lab.blocks import Block, CausalSelfAttention, KVCache, block_param_count  # noqa: F401  (the model's parts)
from lab.config import ModelConfig
from lab.heads import Head, head_class, next_token_depth


def head_order(sources: list[int]) -> list[int]:
    """An order in which every head runs after the head it reads."""
    order, done = [], set()
    while len(order) < len(sources):
        for i, src in enumerate(sources):
            if i not in done and (src == -1 or src in done):
                order.append(i)
                done.add(i)
    return order


class MTPTransformer(nn.Module):
    """Shared trunk, `n_future` heads and one shared unembedding (see module docstring)."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        config.validate()
        self.config = config
        n = config.n_future
        self.head_cls: type[Head] = head_class(config.head_type)
        n_trunk = self.head_cls.trunk_layers(config)
        self.transformer = nn.ModuleDict(dict(
            wte=nn.Embedding(config.vocab_size, config.d_model),
            wpe=nn.Embedding(config.block_size, config.d_model),
            drop=nn.Dropout(config.dropout),
            h=nn.ModuleList([Block(config) for _ in range(n_trunk)]),
            ln_f=nn.LayerNorm(config.d_model, bias=config.bias),
        ))
        self.heads = nn.ModuleList([self.head_cls(config, i) for i in range(n)])
        self.lm_head = nn.Linear(config.d_model, config.vocab_size, bias=False)
        if config.tie_embeddings:
            self.lm_head.weight = self.transformer.wte.weight
        self.compiled = False  # set by compile_blocks
        self.sources = self.head_cls.sources(n)
        self.order = head_order(self.sources)
        slots = [self.head_cls.head_blocks(config, i) for i in range(n)]
        # KV-cache slot of each head
        self._head_layers = [n_trunk + sum(slots[:i]) for i in range(n + 1)]
        self.apply(self._init_weights)
        for name, p in self.named_parameters():  # GPT-2 scaled init of residual projections
            if name.endswith("c_proj.weight"):
                torch.nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            torch.nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                torch.nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            torch.nn.init.normal_(module.weight, mean=0.0, std=0.02)

    # ----- speed -----
    def compile_blocks(self, **options: Any) -> None:
        """Compile every transformer block with `torch.compile` (options passed on), in place.

        Only the uncached path is compiled (training and teacher-forced evaluation); decoding
        with a KV cache stays eager, since its shapes change with every token. All blocks share
        one compiled graph (same code, parameters passed as inputs). `self.compiled` tells the
        objective to compile the shared unembedding and loss too. Parameter names, state dicts
        and checkpoints are unchanged.
        """
        for module in self.modules():
            if isinstance(module, Block):
                module.compiled = torch.compile(module.uncompiled_forward, **options)
        self.compiled = True

    # ----- parameter accounting -----
    def param_counts(self) -> dict[str, Any]:
        """Parameters of the trunk blocks, the heads, the embeddings, and in total; and how the
        model compares with the plain `n_layer`-block model of its size (n=1):

        - `next_token_depth`: blocks on head 1's path (trunk, head 1 and every head it reads);
        - `param_matched`: whether the non-embedding count equals the plain model's exactly;
        - `matched_note`: one line saying so, with the difference where there is one.
        """
        def count(module: nn.Module) -> int:
            return sum(p.numel() for p in module.parameters())
        c = self.config
        embed = count(self.transformer.wte) + count(self.transformer.wpe)
        if not c.tie_embeddings:
            embed += self.lm_head.weight.numel()
        trunk = count(self.transformer.h) + count(self.transformer.ln_f)
        heads = count(self.heads)
        plain = c.n_layer * block_param_count(c) + count(self.transformer.ln_f)
        extra = trunk + heads - plain
        if extra == 0:
            note = f"parameter-matched: as many non-embedding parameters as the plain {c.n_layer}-block model"
        else:
            note = (f"not parameter-matched: {extra:+,} non-embedding parameters against the plain "
                    f"{c.n_layer}-block model ({plain:,})")
        return {"trunk": trunk, "heads": heads, "embedding": embed,
                "non_embedding": trunk + heads, "total": sum(p.numel() for p in self.parameters()),
                "next_token_depth": next_token_depth(c), "param_matched": extra == 0,
                "matched_note": note}

    # ----- the pieces the objective and the decoders call -----
    @property
    def n_attention_layers(self) -> int:
        """Trunk blocks plus the heads' blocks (KV-cache slots)."""
        return self._head_layers[-1]

    def embed(self, idx: torch.Tensor, positions: torch.Tensor | None = None) -> torch.Tensor:
        """Token embeddings only (no positions): what heads reading the next embedding read."""
        return self.transformer.wte(idx)

    def trunk(self, tok_emb: torch.Tensor, positions: torch.Tensor | None = None,
              cache: KVCache | None = None) -> torch.Tensor:
        """Trunk output z for token embeddings `(B, T, d)`; positions default to 0..T-1."""
        if positions is None:
            positions = torch.arange(tok_emb.shape[1], device=tok_emb.device)
        x = self.transformer.drop(tok_emb + self.transformer.wpe(positions))
        for layer, block in enumerate(self.transformer.h):
            x = block(x, cache, layer)
        return x

    def head_layer(self, i: int) -> int:
        """The KV-cache slot of head i's first block (after the trunk's)."""
        return self._head_layers[i]

    def next_embeddings(self, tok_emb: torch.Tensor, i: int) -> torch.Tensor:
        """Embedding of input token t+i at every position t (what head i+1 reads if it
        `reads_next_embedding`, e.g. deepseek heads).

        The last i positions have no such input token and read zeros; in training their
        targets lie beyond the sequence, so nothing learns from them.
        """
        shifted = tok_emb[:, i:]
        pad = tok_emb.new_zeros(tok_emb.shape[0], tok_emb.shape[1] - shifted.shape[1],
                                tok_emb.shape[2])
        return torch.cat([shifted, pad], dim=1)

    def run_head(self, i: int, x: torch.Tensor, tok_emb: torch.Tensor | None = None,
                 cache: KVCache | None = None) -> torch.Tensor:
        """Head i (0-based) applied to the hidden state it reads."""
        next_emb = None
        if self.heads[i].reads_next_embedding:
            next_emb = self.next_embeddings(tok_emb, i)
        # an extra head sees the next-token path as a constant:
        if i > 0 and self.config.detach_extra_heads:
            x = x.detach() if self.sources[i] in (-1, 0) else x  # the trunk or head 1 it reads
            next_emb = None if next_emb is None else next_emb.detach()  # and the shared embeddings
        return self.heads[i](x, cache, self.head_layer(i), next_emb)

    @property
    def reads_next_embedding(self) -> bool:
        """Whether any head reads the embedding of a future input token."""
        return any(h.reads_next_embedding for h in self.heads)

    def heads_needed(self, k: int) -> set[int]:
        """The heads (0-based) that must run to get heads 0..k-1: those and every head they read."""
        needed: set[int] = set()
        for i in range(k):
            while i != -1 and i not in needed:
                needed.add(i)
                i = self.sources[i]
        return needed

    def new_head_parameters(self) -> set[str]:
        """Names of the parameters of heads 2..n (what finetuning adds to a next-token model)."""
        return {f"heads.{i}.{name}" for i, head in enumerate(self.heads) if i > 0
                for name, _ in head.named_parameters()}

    def unembed(self, h: torch.Tensor, head: int = 0) -> torch.Tensor:
        """Shared final norm and unembedding: hidden `(B, T, d)` -> logits `(B, T, V)`. For an extra
        head (`head` >= 1, 0-based) with `detach_extra_heads`, through detached weights: they belong
        to the next-token path, which only head 1's loss trains then."""
        if head == 0 or not self.config.detach_extra_heads:
            return self.lm_head(self.transformer.ln_f(h))
        ln = self.transformer.ln_f
        bias = None if ln.bias is None else ln.bias.detach()
        normed = F.layer_norm(h, ln.normalized_shape, ln.weight.detach(), bias, ln.eps)
        return F.linear(normed, self.lm_head.weight.detach())

    def hidden_states(self, idx: torch.Tensor, heads: int | None = None,
                      positions: torch.Tensor | None = None,
                      cache: KVCache | None = None) -> list[torch.Tensor]:
        """Output hidden states of the first `heads` heads (all by default), in head order."""
        n = self.config.n_future if heads is None else heads
        tok_emb = self.embed(idx)
        z = self.trunk(tok_emb, positions, cache)
        needed = self.heads_needed(n)
        outputs: dict[int, torch.Tensor] = {}
        for i in self.order:
            if i in needed:
                src = self.sources[i]
                outputs[i] = self.run_head(i, z if src == -1 else outputs[src], tok_emb, cache)
        return [outputs[i] for i in range(n)]

    def forward(self, idx: torch.Tensor, heads: int | None = None,
                positions: torch.Tensor | None = None,
                cache: KVCache | None = None) -> torch.Tensor:
        """Logits of every head: `(B, T, n_heads, V)`. The plain, memory-hungry path."""
        return torch.stack([self.unembed(h) for h in self.hidden_states(idx, heads, positions,
                                                                        cache)], dim=2)
