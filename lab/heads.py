"""Output heads: one class per head type, and the registry that names them.

A head type is one `Head` subclass registered with `register_head`; the model builds head i
as `cls(config, i)`. The class declares everything the rest of the lab asks about a head:

- what it reads: `sources(n)` (for each head, the trunk output or another head's output) and,
  per head, `reads_next_embedding` (the embedding of input token t+i as well, for head i+1);
- how deep it is: `trunk_layers(config)` (blocks the trunk keeps out of `n_layer`) and
  `head_blocks(config, i)` (attention blocks of head i, each one KV-cache slot);
- how finetuning attaches it: `attach_modes` (the `--attach` modes that add heads of this
  type to a next-token checkpoint, each with the `match_params` it sets), `one_head_type`
  (the head type of head 1 alone, for `--attach drop`), and `pretrained_block`,
  `load_pretrained`, `init_new` (which block carries pretrained weights and how new heads
  start).

The model, the objective, the decoders and finetuning ask these, never a head type's name, so
a new head type is one class here (or anywhere) plus `register_head`, which declares its name
and attach modes to `lab.config` (`declare_head_type`), where configs are validated.
"""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn as nn

from lab import config as config_module
from lab.blocks import Block, KVCache
from lab.config import ModelConfig
from lab.errors import ConfigError


class Head(nn.Module):
    """Base of every head type: head `i` (0-based) of a model with `config.n_future` heads."""

    name: ClassVar[str] = ""
    attach_modes: ClassVar[dict[str, bool | None]] = {}  # mode -> match_params it sets (None: keep)
    one_head_type: ClassVar[str] = "parallel"

    def __init__(self, config: ModelConfig, i: int) -> None:
        super().__init__()
        self.reads_next_embedding = False

    @staticmethod
    def sources(n: int) -> list[int]:
        """For each of n heads (0-based), the hidden state it reads: -1 the trunk, j head j."""
        return [-1] * n

    @staticmethod
    def trunk_layers(config: ModelConfig) -> int:
        """Trunk blocks: n heads take n-1 blocks from the trunk with parameter matching."""
        return config.n_layer - config.n_future if config.match_params else config.n_layer - 1

    @staticmethod
    def head_blocks(config: ModelConfig, i: int) -> int:
        """Attention blocks in head i (its KV-cache slots, and its depth on a path)."""
        return 1

    def forward(self, x: torch.Tensor, cache: KVCache | None = None, layer: int = 0,
                next_emb: torch.Tensor | None = None) -> torch.Tensor:
        raise NotImplementedError

    # ----- finetuning -----
    def pretrained_block(self) -> Block | None:
        """The block that holds (or receives) a pretrained block's weights, if any."""
        block = getattr(self, "block", None)
        return block if isinstance(block, Block) else None

    def load_pretrained(self, block: Block) -> None:
        self.pretrained_block().load_state_dict(block.state_dict())

    def init_new(self, last_block: Block, head_init: str) -> None:
        """Start a new head (i >= 1) added to a checkpoint: `random` keeps the model's init,
        `copy` copies the pretrained output block, `zero` makes the block the identity."""
        block = self.pretrained_block()
        if block is None:
            return
        if head_init == "copy":
            block.load_state_dict(last_block.state_dict())
        elif head_init == "zero":
            zero_output(block)


def zero_output(block: Block) -> None:
    """Zero the residual output projections: the block becomes the identity."""
    torch.nn.init.zeros_(block.attn.c_proj.weight)
    torch.nn.init.zeros_(block.mlp.c_proj.weight)
    for layer in (block.attn.c_proj, block.mlp.c_proj):
        if layer.bias is not None:
            torch.nn.init.zeros_(layer.bias)


HEAD_TYPES: dict[str, type[Head]] = {}


def register_head(cls: type[Head]) -> type[Head]:
    """Make a head type available by its `name` (usable as a class decorator), and let configs
    name it and its attach modes (`lab.config.declare_head_type`)."""
    if not cls.name:
        raise ValueError(f"{cls.__name__} has no name")
    HEAD_TYPES[cls.name] = cls
    config_module.declare_head_type(cls.name, tuple(cls.attach_modes))
    return cls


def unregister_head(name: str) -> None:
    """Remove a head type (built-in ones included: only for tests that add their own)."""
    HEAD_TYPES.pop(name, None)
    config_module.withdraw_head_type(name)


def head_class(name: str) -> type[Head]:
    if name not in HEAD_TYPES:
        raise ConfigError(f"unknown head type {name!r}; choose one of: {', '.join(HEAD_TYPES)}")
    return HEAD_TYPES[name]


def attach_head_type(mode: str) -> tuple[type[Head], bool | None]:
    """The head type an `--attach` mode adds, and the `match_params` it sets (None: unchanged)."""
    for cls in HEAD_TYPES.values():
        if mode in cls.attach_modes:
            return cls, cls.attach_modes[mode]
    raise ConfigError(f"unknown attach mode {mode!r}")


def adding_modes() -> list[str]:
    """The `--attach` modes that add heads to a next-token checkpoint, in the config's order."""
    return [m for m in config_module.attach_modes() if m not in ("keep", "drop")]


def next_token_depth(config: ModelConfig) -> int:
    """Blocks on head 1's path: the trunk's plus those of head 1 and every head it reads."""
    cls = head_class(config.head_type)
    sources = cls.sources(config.n_future)
    depth, i = cls.trunk_layers(config), 0
    while i != -1:
        depth += cls.head_blocks(config, i)
        i = sources[i]
    return depth


# ----- the built-in head types (paper, section 2 and Appendix B) -----

@register_head
class ParallelHead(Head):
    """One transformer block reading the trunk output (the paper's default)."""

    name = "parallel"
    attach_modes = {"carve": True, "add": False}

    def __init__(self, config: ModelConfig, i: int) -> None:
        super().__init__(config, i)
        self.block = Block(config)

    def forward(self, x: torch.Tensor, cache: KVCache | None = None, layer: int = 0,
                next_emb: torch.Tensor | None = None) -> torch.Tensor:
        return self.block(x, cache, layer)


BlockHead = ParallelHead  # the block head, whichever head type wires it


@register_head
class LinearHead(Head):
    """The trunk keeps every block; head 1 is the identity (the next-token path is a plain
    transformer) and head i >= 2 a single d x d linear map of the trunk output."""

    name = "linear"
    attach_modes = {"linear": None}
    one_head_type = "linear"

    def __init__(self, config: ModelConfig, i: int) -> None:
        super().__init__(config, i)
        self.proj = None if i == 0 else nn.Linear(config.d_model, config.d_model, bias=config.bias)

    @staticmethod
    def trunk_layers(config: ModelConfig) -> int:
        return config.n_layer

    @staticmethod
    def head_blocks(config: ModelConfig, i: int) -> int:
        return 0

    def forward(self, x: torch.Tensor, cache: KVCache | None = None, layer: int = 0,
                next_emb: torch.Tensor | None = None) -> torch.Tensor:
        return x if self.proj is None else self.proj(x)

    def init_new(self, last_block: Block, head_init: str) -> None:
        """`copy` and `zero` both start from the identity map (which predicts what head 1 does)."""
        if head_init in ("copy", "zero"):
            torch.nn.init.eye_(self.proj.weight)
            if self.proj.bias is not None:
                torch.nn.init.zeros_(self.proj.bias)


@register_head
class CausalHead(ParallelHead):
    """A block reading head i-1's output (head 1 reads the trunk)."""

    name = "causal"
    attach_modes = {}

    @staticmethod
    def sources(n: int) -> list[int]:
        return [-1] + list(range(n - 1))


@register_head
class AnticausalHead(ParallelHead):
    """A block reading head i+1's output (head n reads the trunk)."""

    name = "anticausal"
    attach_modes = {}

    @staticmethod
    def sources(n: int) -> list[int]:
        return list(range(1, n)) + [-1]


@register_head
class DeepSeekHead(Head):
    """DeepSeek-V3 MTP module: head 1 is a block reading the trunk; head i >= 2 combines head
    i-1's output with the embedding of token t+i-1 (normed, concatenated, projected back to d)
    and runs one block. The next-token path is the plain model by construction."""

    name = "deepseek"
    attach_modes = {"deepseek": False}

    def __init__(self, config: ModelConfig, i: int) -> None:
        super().__init__(config, i)
        if i > 0:
            self.ln_h = nn.LayerNorm(config.d_model, bias=config.bias)
            self.ln_e = nn.LayerNorm(config.d_model, bias=config.bias)
            self.combine = nn.Linear(2 * config.d_model, config.d_model, bias=config.bias)
            self.reads_next_embedding = True
        self.block = Block(config)

    @staticmethod
    def sources(n: int) -> list[int]:
        return [-1] + list(range(n - 1))

    def forward(self, x: torch.Tensor, cache: KVCache | None = None, layer: int = 0,
                next_emb: torch.Tensor | None = None) -> torch.Tensor:
        if not self.reads_next_embedding:
            return self.block(x, cache, layer)
        assert next_emb is not None, "a deepseek head needs the embedding of the next token"
        return self.block(self.combine(torch.cat([self.ln_h(x), self.ln_e(next_emb)], dim=-1)),
                          cache, layer)
