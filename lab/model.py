"""The multi-token prediction transformer: shared trunk, n heads, one shared unembedding.

    tokens -> embedding -> trunk blocks -> z --+--> head 1 --+
                                               +--> head 2 --+--> ln_f -> lm_head -> logits_i
                                               +--> ...    --+

Head i predicts token t+i (head 1 is the ordinary next-token head). Head types (paper,
section 2 and Appendix B):

- `parallel` (default): every head is one transformer block reading the trunk output z.
- `causal`: head i is a block reading head i-1's output (head 1 reads z).
- `anticausal`: head i is a block reading head i+1's output (head n reads z).
- `linear`: the trunk keeps all blocks; head 1 is the identity (so the next-token path is a
  plain transformer) and head i >= 2 is a single d x d linear map of z. n linear heads add
  (n-1) d^2 parameters on top of the plain model.
- `deepseek` (DeepSeek-V3 style): head 1 is a block reading z; head i >= 2 reads head i-1's
  output and the embedding of token t+i-1 (normed, concatenated, projected back to d) and
  runs one block. The next-token path is the plain model by construction.

Parameter matching (`match_params`, on by default): a model with `n_layer` L and n
block-type heads has L-n trunk blocks plus n head blocks, so n=1 is a plain L-layer
transformer and every n has the same parameter count. With matching off, the trunk keeps
L-1 blocks and the n head blocks sit on top (n=1 is still the plain model).

Naming follows nanoGPT (`transformer.wte/wpe/h/ln_f`, `lm_head`); heads live in `heads`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from lab.config import ModelConfig


class KVCache:
    """Keys and values of every attention layer, with a separate length per sequence.

    New entries are written at each sequence's current length; `advance(n)` commits n of
    them. Entries beyond a sequence's length are ignored by attention and overwritten
    later, so rejecting speculated tokens costs nothing.
    """

    def __init__(self, n_layers: int, batch: int, n_head: int, capacity: int, head_dim: int,
                 device: torch.device, dtype: torch.dtype) -> None:
        shape = (n_layers, batch, n_head, capacity, head_dim)
        self.k = torch.zeros(shape, device=device, dtype=dtype)
        self.v = torch.zeros(shape, device=device, dtype=dtype)
        self.lengths = torch.zeros(batch, dtype=torch.long, device=device)
        self.capacity = capacity

    def write(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Store (B, H, q, hd) keys/values after each sequence's length; return all keys,
        values and the (B, 1, q, capacity) boolean visibility mask."""
        q = k.shape[2]
        slots = self.lengths[:, None] + torch.arange(q, device=k.device)  # (B, q)
        if int(slots.max()) >= self.capacity:
            raise ValueError(f"KV cache capacity {self.capacity} exceeded")
        index = slots[:, None, :, None].expand(-1, k.shape[1], -1, k.shape[3])
        self.k[layer].scatter_(2, index, k.to(self.k.dtype))
        self.v[layer].scatter_(2, index, v.to(self.v.dtype))
        keys = torch.arange(self.capacity, device=k.device)
        visible = keys[None, None, :] <= slots[:, :, None]  # (B, q, capacity)
        return self.k[layer], self.v[layer], visible[:, None]

    def advance(self, counts: torch.Tensor | int) -> None:
        self.lengths += counts


class CausalSelfAttention(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.n_head = config.n_head
        self.c_attn = nn.Linear(config.d_model, 3 * config.d_model, bias=config.bias)
        self.c_proj = nn.Linear(config.d_model, config.d_model, bias=config.bias)
        self.dropout = config.dropout

    def forward(self, x: torch.Tensor, cache: KVCache | None = None, layer: int = 0) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(C, dim=2)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))
        dropout = self.dropout if self.training else 0.0
        if cache is None:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True, dropout_p=dropout)
        else:
            keys, values, mask = cache.write(layer, k, v)
            y = F.scaled_dot_product_attention(q, keys.to(q.dtype), values.to(q.dtype), attn_mask=mask)
        return self.c_proj(y.transpose(1, 2).contiguous().view(B, T, C))


class MLP(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.c_fc = nn.Linear(config.d_model, config.mlp_ratio * config.d_model, bias=config.bias)
        self.c_proj = nn.Linear(config.mlp_ratio * config.d_model, config.d_model, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.c_proj(F.gelu(self.c_fc(x))))


class Block(nn.Module):
    """Pre-norm transformer block."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.d_model, bias=config.bias)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = nn.LayerNorm(config.d_model, bias=config.bias)
        self.mlp = MLP(config)
        self.compiled: Callable[[torch.Tensor], torch.Tensor] | None = None  # see MTPTransformer.compile_blocks

    def forward(self, x: torch.Tensor, cache: KVCache | None = None, layer: int = 0) -> torch.Tensor:
        if cache is None and self.compiled is not None:
            return self.compiled(x)
        return self.uncompiled_forward(x, cache, layer)

    def uncompiled_forward(self, x: torch.Tensor, cache: KVCache | None = None, layer: int = 0) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x), cache, layer)
        return x + self.mlp(self.ln_2(x))


class BlockHead(nn.Module):
    """A head made of one transformer block (parallel, causal and anticausal heads)."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.block = Block(config)

    def forward(self, x: torch.Tensor, cache: KVCache | None = None, layer: int = 0,
                next_emb: torch.Tensor | None = None) -> torch.Tensor:
        return self.block(x, cache, layer)


class LinearHead(nn.Module):
    """A head that is a single linear map of the trunk output (identity for head 1)."""

    def __init__(self, config: ModelConfig, identity: bool) -> None:
        super().__init__()
        self.proj = None if identity else nn.Linear(config.d_model, config.d_model, bias=config.bias)

    def forward(self, x: torch.Tensor, cache: KVCache | None = None, layer: int = 0,
                next_emb: torch.Tensor | None = None) -> torch.Tensor:
        return x if self.proj is None else self.proj(x)


class DeepSeekHead(nn.Module):
    """DeepSeek-V3 MTP module: combine the previous depth's state with the embedding of the
    token one step ahead, then one transformer block."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.ln_h = nn.LayerNorm(config.d_model, bias=config.bias)
        self.ln_e = nn.LayerNorm(config.d_model, bias=config.bias)
        self.combine = nn.Linear(2 * config.d_model, config.d_model, bias=config.bias)
        self.block = Block(config)

    def forward(self, x: torch.Tensor, cache: KVCache | None = None, layer: int = 0,
                next_emb: torch.Tensor | None = None) -> torch.Tensor:
        assert next_emb is not None, "a deepseek head needs the embedding of the next token"
        return self.block(self.combine(torch.cat([self.ln_h(x), self.ln_e(next_emb)], dim=-1)), cache, layer)


def head_sources(head_type: str, n: int) -> list[int]:
    """For each head (0-based), which hidden state it reads: -1 the trunk, j head j."""
    if head_type in ("causal", "deepseek"):
        return [-1] + list(range(n - 1))
    if head_type == "anticausal":
        return list(range(1, n)) + [-1]
    return [-1] * n


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
        n, kind = config.n_future, config.head_type
        if kind == "linear":
            n_trunk = config.n_layer
        elif config.match_params:
            n_trunk = config.n_layer - n
        else:
            n_trunk = config.n_layer - 1
        self.transformer = nn.ModuleDict(dict(
            wte=nn.Embedding(config.vocab_size, config.d_model),
            wpe=nn.Embedding(config.block_size, config.d_model),
            drop=nn.Dropout(config.dropout),
            h=nn.ModuleList([Block(config) for _ in range(n_trunk)]),
            ln_f=nn.LayerNorm(config.d_model, bias=config.bias),
        ))
        self.heads = nn.ModuleList([self._make_head(i) for i in range(n)])
        self.lm_head = nn.Linear(config.d_model, config.vocab_size, bias=False)
        if config.tie_embeddings:
            self.lm_head.weight = self.transformer.wte.weight
        self.compiled = False  # set by compile_blocks
        self.sources = head_sources(kind, n)
        self.order = head_order(self.sources)
        self.apply(self._init_weights)
        for name, p in self.named_parameters():  # GPT-2 scaled init of residual projections
            if name.endswith("c_proj.weight"):
                torch.nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

    def _make_head(self, i: int) -> nn.Module:
        kind = self.config.head_type
        if kind == "linear":
            return LinearHead(self.config, identity=(i == 0))
        if kind == "deepseek" and i > 0:
            return DeepSeekHead(self.config)
        return BlockHead(self.config)

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
    def param_counts(self) -> dict[str, int]:
        """Parameters of the trunk blocks, the heads, the embeddings, and in total."""
        def count(module: nn.Module) -> int:
            return sum(p.numel() for p in module.parameters())
        embed = count(self.transformer.wte) + count(self.transformer.wpe)
        if not self.config.tie_embeddings:
            embed += self.lm_head.weight.numel()
        trunk = count(self.transformer.h) + count(self.transformer.ln_f)
        heads = count(self.heads)
        return {"trunk": trunk, "heads": heads, "embedding": embed,
                "non_embedding": trunk + heads, "total": sum(p.numel() for p in self.parameters())}

    # ----- the pieces the objective and the decoders call -----
    @property
    def n_attention_layers(self) -> int:
        """Trunk blocks plus heads that contain a block (KV-cache slots)."""
        return len(self.transformer.h) + sum(not isinstance(h, LinearHead) for h in self.heads)

    def embed(self, idx: torch.Tensor, positions: torch.Tensor | None = None) -> torch.Tensor:
        """Token embeddings only (no positions): what deepseek heads read."""
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
        """The KV-cache slot of head i's block (after the trunk's)."""
        return len(self.transformer.h) + sum(not isinstance(h, LinearHead) for h in self.heads[:i])

    def next_embeddings(self, tok_emb: torch.Tensor, i: int) -> torch.Tensor:
        """Embedding of input token t+i at every position t (deepseek head i+1 reads it).

        The last i positions have no such input token and read zeros; in training their
        targets lie beyond the sequence, so nothing learns from them.
        """
        shifted = tok_emb[:, i:]
        pad = tok_emb.new_zeros(tok_emb.shape[0], tok_emb.shape[1] - shifted.shape[1], tok_emb.shape[2])
        return torch.cat([shifted, pad], dim=1)

    def run_head(self, i: int, x: torch.Tensor, tok_emb: torch.Tensor | None = None,
                 cache: KVCache | None = None) -> torch.Tensor:
        """Head i (0-based) applied to the hidden state it reads."""
        next_emb = None
        if isinstance(self.heads[i], DeepSeekHead):
            next_emb = self.next_embeddings(tok_emb, i)
        return self.heads[i](x, cache, self.head_layer(i), next_emb)

    def unembed(self, h: torch.Tensor) -> torch.Tensor:
        """Shared final norm and unembedding: hidden `(B, T, d)` -> logits `(B, T, V)`."""
        return self.lm_head(self.transformer.ln_f(h))

    def hidden_states(self, idx: torch.Tensor, heads: int | None = None, positions: torch.Tensor | None = None,
                      cache: KVCache | None = None) -> list[torch.Tensor]:
        """Output hidden states of the first `heads` heads (all by default), in head order."""
        n = self.config.n_future if heads is None else heads
        tok_emb = self.embed(idx)
        z = self.trunk(tok_emb, positions, cache)
        needed: set[int] = set()  # the first n heads and every head they read
        for i in range(n):
            while i != -1 and i not in needed:
                needed.add(i)
                i = self.sources[i]
        outputs: dict[int, torch.Tensor] = {}
        for i in self.order:
            if i in needed:
                src = self.sources[i]
                outputs[i] = self.run_head(i, z if src == -1 else outputs[src], tok_emb, cache)
        return [outputs[i] for i in range(n)]

    def forward(self, idx: torch.Tensor, heads: int | None = None, positions: torch.Tensor | None = None,
                cache: KVCache | None = None) -> torch.Tensor:
        """Logits of every head: `(B, T, n_heads, V)`. The plain, memory-hungry path."""
        return torch.stack([self.unembed(h) for h in self.hidden_states(idx, heads, positions, cache)], dim=2)
