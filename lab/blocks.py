"""Transformer building blocks: attention with an optional KV cache, MLP, pre-norm block.

Names follow nanoGPT (`attn.c_attn`, `attn.c_proj`, `mlp.c_fc`, `mlp.c_proj`, `ln_1`, `ln_2`),
so checkpoints read the same whichever module builds the block.
"""

from __future__ import annotations

from collections.abc import Callable

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

    def write(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor,
                                                                           torch.Tensor,
                                                                           torch.Tensor]:
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

    def forward(self, x: torch.Tensor, cache: KVCache | None = None,
                layer: int = 0) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(C, dim=2)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))
        dropout = self.dropout if self.training else 0.0
        if cache is None:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True, dropout_p=dropout)
        else:
            keys, values, mask = cache.write(layer, k, v)
            y = F.scaled_dot_product_attention(q, keys.to(q.dtype), values.to(q.dtype),
                                               attn_mask=mask)
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
        # set by MTPTransformer.compile_blocks
        self.compiled: Callable[[torch.Tensor], torch.Tensor] | None = None

    def forward(self, x: torch.Tensor, cache: KVCache | None = None,
                layer: int = 0) -> torch.Tensor:
        if cache is None and self.compiled is not None:
            return self.compiled(x)
        return self.uncompiled_forward(x, cache, layer)

    def uncompiled_forward(self, x: torch.Tensor, cache: KVCache | None = None,
                           layer: int = 0) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x), cache, layer)
        return x + self.mlp(self.ln_2(x))


def block_param_count(config: ModelConfig) -> int:
    """Parameters of one `Block` (without building it): two norms, attention and MLP."""
    d, r, b = config.d_model, config.mlp_ratio, int(config.bias)
    norms = 2 * d * (1 + b)
    attention = d * 3 * d + 3 * d * b + d * d + d * b
    mlp = d * r * d + r * d * b + r * d * d + d * b
    return norms + attention + mlp
