"""Recipes for giving a pretrained next-token model multi-token predictions: one registry, one option.

A continuation run selects one with `finetune.recipe=NAME` (hash-neutral: "" leaves every existing
run id as it was). The experiment sets the usual shape: recipes with heads attach n >= 2 heads to
the next-token checkpoint (`--attach add`, `head_init=zero` in the tournament); the side-token
recipes keep its single head (`--attach keep`) and add their own parts under `recipe_parts`.

- **data_w1, data_w0.3, data_w0.1** (Gloeckle et al. 2024 (weights 1); DeepSeek-V3 / NeMo (0.3,
  0.1)): everything; heads 2..n on data tokens at that weight. Simplified: heads are parallel
  blocks.
- **data_ds** (DeepSeek-V3 (arXiv 2412.19437)): as data, 0.3 then 0.1 for the last 4.8/14.8 of the
  steps. Simplified: the switch point is their token ratio.
- **frozen** (Medusa-1 (Cai et al. 2024)): heads 2..n only, on a frozen base: the next-token path is
  the base. Simplified: heads are blocks, weights 1 (Medusa: 0.8^k).
- **gated** (Samragh et al. 2025 (arXiv 2507.11851)): rank-`LORA_RANK` adapters on every linear
  layer, active only on appended mask tokens; base frozen. Simplified: no sampler head, no latent-
  consistency loss.
- **curriculum_fwd / _rev** (Aynetdinov & Akbik 2025 (arXiv 2505.22757)): as data_w1, heads switched
  on (off) one every steps/n. Simplified: applied to a continuation, not pretraining.
- **registers** (MuToR (Gerontopoulos et al. 2025, arXiv 2505.10518)): everything; one learned
  register per offset 2..n at every position, dropped at inference. Simplified: fixed offsets, total
  register weight `REGISTER_WEIGHT`.
- **distill** (Kirchenbauer et al. 2026; Zhao et al. 2026): everything; heads 2..n learn KL to the
  frozen base's head-1 distribution at t+k-1. Simplified: teacher-forced on the data prefix (not on-
  policy).

The no-training reference (Mehra et al. 2025, arXiv 2502.09419) is a measure, not a recipe:
`rolled_accuracy` rolls a model's head-1 distribution forward (greedy, or marginalised over the
top tokens) to predict token t+k; that is the ceiling any head-k accuracy is compared to.

Side tokens (gated, registers, and the reference): extra tokens appended to the sequence, each
anchored at a position t and attending only to the real tokens up to t and to the side tokens of
its own anchor (a chain for mask tokens, itself alone for registers). Real tokens never attend to
them, so the real tokens' outputs are the plain model's: the masks travel through the blocks'
KV-cache path (`MaskOnly`), no block changes. The next-token loss is always computed on the plain
forward, so a recipe with its extra part switched off (`scale=0`) is next-token continuation
exactly, and the frozen recipes leave head 1 bit-identical to the base.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
import torch.nn as nn
import torch.nn.functional as F

from lab import config as config_module
from lab.config import RunConfig
from lab.errors import ConfigError
from lab.model import MTPTransformer
from lab.objective import IGNORE, StepResult, forward_backward, head_loss_sums

PARTS = "recipe_parts"  # attribute (and state-dict prefix) of a recipe's own modules
LORA_RANK = 4
SIDE_OFFSETS = 4  # gated and registers predict tokens t+2..t+SIDE_OFFSETS (as 4 heads would)
REGISTER_WEIGHT = 1.0  # total weight of the register losses (split evenly over the offsets)
DS_SWITCH = 10 / 14.8  # DeepSeek-V3: 0.3 for the first 10T of 14.8T tokens, then 0.1


def later_targets(first: torch.Tensor, n: int) -> list[torch.Tensor]:
    """Targets of offsets 1..n from head 1's targets `(B, T)`: offset k at t is head 1's at
    t+k-1."""
    out = [first]
    for k in range(2, n + 1):
        pad = first.new_full((first.shape[0], min(k - 1, first.shape[1])), IGNORE)
        out.append(torch.cat([first[:, k - 1:], pad], dim=1))
    return out


# ----- side tokens -----

class MaskOnly:
    """Duck-typed `KVCache` that only supplies an attention mask: blocks given it attend with the
    mask."""

    def __init__(self, mask: torch.Tensor) -> None:
        self.mask = mask

    def write(self, layer: int, k: torch.Tensor, v: torch.Tensor):
        return k, v, self.mask


def side_mask(T: int, m: int, chain: bool, device: torch.device) -> torch.Tensor:
    """Visibility `(S, S)` of T real tokens followed by m blocks of T side tokens (offset j, anchor
    t)."""
    t = torch.arange(T, device=device)
    anchor = torch.cat([t, t.repeat(m)])
    kind = torch.cat([torch.zeros(T, dtype=torch.long, device=device),
                      torch.arange(1, m + 1, device=device).repeat_interleave(T)])
    mask = (kind[None, :] == 0) & (anchor[None, :] <= anchor[:, None])
    own = kind[None, :] <= kind[:, None] if chain else kind[None, :] == kind[:, None]
    return mask | ((anchor[None, :] == anchor[:, None]) & (kind[None, :] > 0) & (kind[:,
                                                                                      None] > 0) & own)


def side_hidden(model: MTPTransformer, inputs: torch.Tensor, side: torch.Tensor, chain: bool,
                gate: GatedAdapters | None = None) -> torch.Tensor:
    """Head 1's output at the side tokens: `side` is `(m, d)` (one embedding per offset) or `(B, m,
    T, d)`; side token (j, t) sits at position t+j. Returns `(B, m, T, d)`."""
    B, T = inputs.shape
    m, d = side.shape[1 if side.dim() == 4 else 0], side.shape[-1]
    if side.dim() == 2:
        side = side[None, :, None, :].expand(B, m, T, d)
    x = torch.cat([model.embed(inputs), side.reshape(B, m * T, d)], dim=1)
    t = torch.arange(T, device=inputs.device)
    offsets = torch.arange(1, m + 1, device=inputs.device)
    positions = torch.cat([t,
                           (t[None, :] + offsets[:,
                                                 None]).clamp(max=model.config.block_size - 1).reshape(-1)])
    cache = MaskOnly(side_mask(T, m, chain, inputs.device))
    if gate is not None:
        gate.gate = torch.cat([x.new_zeros(T), x.new_ones(m * T)])[None, :, None]
    try:
        h = model.run_head(0, model.trunk(x, positions, cache), x, cache)
    finally:
        if gate is not None:
            gate.gate = None
    return h[:, T:].reshape(B, m, T, d)


class GatedAdapters(nn.Module):
    """Low-rank adapters on every linear layer of the next-token path, added where `gate` is 1 (side
    tokens) and nowhere else; `gate` is None outside a side forward, so the model is the base
    there."""

    def __init__(self, model: MTPTransformer, rank: int) -> None:
        super().__init__()
        self.gate: torch.Tensor | None = None
        self.down, self.up = nn.ParameterDict(), nn.ParameterDict()
        blocks = [*model.transformer.h, model.heads[0].pretrained_block()]
        for b, block in enumerate(blocks):
            for name in ("attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj"):
                linear = block.get_submodule(name)
                key = f"b{b}_{name.replace('.', '_')}"
                self.down[key] = nn.Parameter(torch.randn(rank,
                                                          linear.in_features) / linear.in_features ** 0.5)
                # starts as the base
                self.up[key] = nn.Parameter(torch.zeros(linear.out_features, rank))
                linear.register_forward_hook(self._hook(key))

    def _hook(self, key: str):
        def add(module: nn.Module, args: tuple, output: torch.Tensor) -> torch.Tensor | None:
            if self.gate is None:
                return None
            return output + self.gate * (args[0] @ self.down[key].T @ self.up[key].T)
        return add


# ----- the recipes -----

class Recipe:
    """A way of adding multi-token prediction to a next-token checkpoint (see the module docstring).

    `scale` multiplies the weight of the recipe's extra part (1 as published; 0 switches it off)."""

    name: ClassVar[str] = ""
    paper: ClassVar[str] = ""
    simplified: ClassVar[str] = ""
    side: ClassVar[bool] = False  # keeps one head and predicts later tokens with side tokens
    speculation: ClassVar[str] = "heads"  # heads (lab.decode), side (mask tokens) or none
    frozen_base: ClassVar[bool] = False

    def __init__(self, config: RunConfig, source: MTPTransformer | None = None,
                 scale: float = 1.0) -> None:
        self.config, self.source, self.scale = config, source, scale

    @property
    def n(self) -> int:
        """Tokens predicted per position (head 1 included)."""
        return SIDE_OFFSETS if self.side else self.config.model.n_future

    def check(self) -> None:
        """Raise `ConfigError` where the run's shape does not fit the recipe."""
        ft, n = self.config.finetune, self.config.model.n_future
        if self.side and (n != 1 or ft.attach != "keep"):
            raise ConfigError(f"finetune.recipe={self.name} keeps the checkpoint's one head: use "
                              "--heads 1 "
                              f"--attach keep (it predicts later tokens with side tokens)")
        if not self.side and (n < 2 or ft.attach in ("keep", "drop", "carve")):
            raise ConfigError(f"finetune.recipe={self.name} adds heads to a next-token checkpoint: "
                              "use --heads 2 "
                              f"or more with --attach add, deepseek or linear")

    def add_parts(self, model: MTPTransformer) -> None:
        """Attach the recipe's own modules (saved with the model under `recipe_parts`)."""

    def trainable(self, model: MTPTransformer, name: str) -> bool:
        return not self.frozen_base or name.startswith(PARTS) or name in model.new_head_parameters()

    def weights(self, step: int, base: list[float]) -> list[float]:
        """Loss weights of this step: head 1's as given, the extra heads' times `scale`."""
        return [base[0]] + [w * self.scale for w in base[1:]]

    def forward_backward(self, model: MTPTransformer, inputs: torch.Tensor,
                         targets: list[torch.Tensor],
                         weights: list[float]) -> StepResult:
        return forward_backward(model, inputs, targets, self.config.train.efficient_backward,
                                weights)

    def extra_parameters(self, model: MTPTransformer) -> dict[str, int]:
        """Parameters beyond the next-token model, in training and at inference."""
        names = model.new_head_parameters()
        count = sum(p.numel() for n_, p in model.named_parameters() if n_ in names or n_.startswith(PARTS))
        return {"train": count, "inference": count}


REGISTRY: dict[str, type[Recipe]] = {}


def register(cls: type[Recipe]) -> type[Recipe]:
    REGISTRY[cls.name] = cls
    return cls


def _data(name: str, weight: float, paper: str) -> type[Recipe]:
    class Data(Recipe):
        def weights(self, step: int, base: list[float]) -> list[float]:
            return [base[0]] + [w * weight * self.scale for w in base[1:]]
    Data.name, Data.paper = name, paper
    Data.simplified = "parallel transformer heads added on top (+n-1 blocks), zero-initialised output projections"
    return register(Data)


_data("data_w1", 1.0, "Gloeckle et al. 2024: every head on the data at weight 1")
_data("data_w0.3", 0.3, "DeepSeek-V3 (arXiv 2412.19437): extra-token loss weight 0.3")
_data("data_w0.1", 0.1, "NVIDIA NeMo AutoModel MTP default / DeepSeek-V3's late weight: 0.1")


@register
class DeepSeekSchedule(Recipe):
    name = "data_ds"
    paper = "DeepSeek-V3 (arXiv 2412.19437): weight 0.3 for the first 10T of 14.8T tokens, then 0.1"
    simplified = "the switch falls at the same fraction of the continuation's steps"

    def weights(self, step: int, base: list[float]) -> list[float]:
        weight = 0.3 if step < DS_SWITCH * self.config.train.steps else 0.1
        return [base[0]] + [w * weight * self.scale for w in base[1:]]


@register
class Frozen(Recipe):
    name = "frozen"
    paper = "Medusa-1 (Cai et al. 2024): heads trained on a frozen backbone"
    simplified = "heads are transformer blocks sharing the frozen unembedding; equal loss weights"
    frozen_base = True


@register
class Curriculum(Recipe):
    name = "curriculum_fwd"
    paper = "Aynetdinov & Akbik 2025 (arXiv 2505.22757): forward curriculum, one more head every steps/n"
    simplified = "applied to a continuation instead of pretraining"
    reverse = False

    def weights(self, step: int, base: list[float]) -> list[float]:
        n = len(base)
        phase = min(n - 1, step * n // max(1, self.config.train.steps))
        active = n - phase if self.reverse else phase + 1
        return [base[0]] + [w * self.scale if i < active else 0.0 for i, w in enumerate(base[1:],
                                                                                        start=1)]


@register
class ReverseCurriculum(Curriculum):
    name = "curriculum_rev"
    paper = "Aynetdinov & Akbik 2025 (arXiv 2505.22757): reverse curriculum, one head fewer every steps/n"
    reverse = True


@register
class Distill(Recipe):
    name = "distill"
    paper = ("Kirchenbauer et al. 2026 (arXiv 2602.06019); Zhao et al. 2026 (arXiv 2603.23911): "
             "the frozen base as teacher of the extra heads")
    simplified = "teacher-forced on the data prefix: head k learns KL to the base's head-1 distribution at t+k-1"

    def forward_backward(self, model: MTPTransformer, inputs: torch.Tensor,
                         targets: list[torch.Tensor],
                         weights: list[float]) -> StepResult:
        with torch.no_grad():
            teacher = F.log_softmax(self.source(inputs, heads=1)[:, :, 0].float(), dim=-1)
        losses, corrects, counts, total = [], [], [], 0.0
        for i, h in enumerate(model.hidden_states(inputs)):
            logits = model.unembed(h, i)
            loss_sum, correct, count = head_loss_sums(logits, targets[i])
            loss = loss_sum / count.clamp(min=1)
            if i > 0:
                valid = (targets[i] != IGNORE).float()
                shifted = torch.cat([teacher[:, i:],
                                     teacher.new_zeros(teacher.shape[0], i, teacher.shape[2])], 1)
                kl = (shifted.exp() * (shifted - F.log_softmax(logits.float(), dim=-1))).sum(-1)
                loss = (kl * valid).sum() / valid.sum().clamp(min=1)
            total = total + weights[i] * loss
            losses.append(loss.detach())
            corrects.append(correct)
            counts.append(count)
        total.backward()
        return StepResult(losses, corrects, counts, weights)


class SideRecipe(Recipe):
    """Predicts tokens t+2..t+n with side tokens (module docstring); head 1's loss on the plain
    forward."""

    side = True
    chain = False
    side_weights: ClassVar[float] = 1.0  # total weight of the side losses, split over the offsets

    def add_parts(self, model: MTPTransformer) -> None:
        parts = nn.Module()
        parts.embed = nn.Parameter(torch.randn(self.n - 1, model.config.d_model) * 0.02)
        setattr(model, PARTS, parts)

    def gate(self, model: MTPTransformer) -> GatedAdapters | None:
        return None

    def side_logits(self, model: MTPTransformer, inputs: torch.Tensor) -> torch.Tensor:
        """Logits `(B, n-1, T, V)` of tokens t+2..t+n from the side tokens."""
        parts = getattr(model, PARTS)
        return model.unembed(side_hidden(model, inputs, parts.embed, self.chain, self.gate(model)))

    def forward_backward(self, model: MTPTransformer, inputs: torch.Tensor,
                         targets: list[torch.Tensor],
                         weights: list[float]) -> StepResult:
        targets = later_targets(targets[0], self.n)
        logits = model(inputs, heads=1)[:, :, 0]
        loss_sum, correct, count = head_loss_sums(logits, targets[0])
        losses, corrects, counts = [loss_sum / count.clamp(min=1)], [correct], [count]
        side = self.side_logits(model, inputs) if self.scale else None
        w = [weights[0]] + [self.side_weights * self.scale / (self.n - 1)] * (self.n - 1)
        for j in range(1, self.n):
            if side is None:
                # unused: weight 0
                loss_sum, correct, count = head_loss_sums(logits.detach(), targets[j])
            else:
                loss_sum, correct, count = head_loss_sums(side[:, j - 1], targets[j])
            losses.append(loss_sum / count.clamp(min=1))
            corrects.append(correct)
            counts.append(count)
        total = sum(wi * x for wi, x in zip(w, losses) if wi)
        if isinstance(total, torch.Tensor) and total.requires_grad:
            total.backward()
        return StepResult([x.detach() for x in losses], corrects, counts, w)


@register
class Registers(SideRecipe):
    name = "registers"
    paper = "MuToR (Gerontopoulos et al. 2025, arXiv 2505.10518): register tokens, dropped at inference"
    simplified = ("one learned register per offset 2..n at every position (MuToR samples offsets), "
                  f"register losses weighted {REGISTER_WEIGHT:g} in total")
    speculation = "none"
    side_weights = REGISTER_WEIGHT

    def extra_parameters(self, model: MTPTransformer) -> dict[str, int]:
        return {"train": getattr(model, PARTS).embed.numel(), "inference": 0}


@register
class Gated(SideRecipe):
    name = "gated"
    paper = "Samragh et al. 2025 (arXiv 2507.11851): gated LoRA active on appended mask tokens only"
    simplified = f"rank-{LORA_RANK} adapters, no sampler head and no latent-consistency loss"
    chain = True
    speculation = "side"
    frozen_base = True

    def add_parts(self, model: MTPTransformer) -> None:
        super().add_parts(model)
        getattr(model, PARTS).lora = GatedAdapters(model, LORA_RANK)

    def gate(self, model: MTPTransformer) -> GatedAdapters | None:
        return getattr(model, PARTS).lora


# the config validates names without importing torch
if set(REGISTRY) != set(config_module.RECIPES):
    raise RuntimeError(f"lab.config.RECIPES {config_module.RECIPES} differ from the registry "
                       f"{sorted(REGISTRY)}")


def make(config: RunConfig, source: MTPTransformer | None = None, scale: float = 1.0) -> Recipe:
    """The recipe a config selects."""
    return REGISTRY[config.finetune.recipe](config, source, scale)


def check(config: RunConfig) -> None:
    """`ConfigError` where the config's recipe does not fit its shape (called when a config is
    resolved)."""
    make(config).check()


def build_model(config: RunConfig) -> MTPTransformer:
    """The run's model with the recipe's parts (what a checkpoint of a recipe run holds)."""
    model = MTPTransformer(config.model)
    if config.finetune.recipe:
        make(config).add_parts(model)
    return model


# ----- decoding and measures -----

@torch.no_grad()
def side_speculative_decode(model: MTPTransformer, recipe: SideRecipe, prompt: torch.Tensor,
                            max_new_tokens: int) -> tuple[torch.Tensor, int]:
    """Self-speculative greedy decoding of one prompt `(P,)` with the mask tokens drafting t+2..t+n.

    Each pass feeds the confirmed tokens, the pending token and the drafts; head 1's greedy tokens
    (from the plain forward, so equal to greedy decoding) decide, as in `lab.decode`; the mask tokens
    at the last confirmed position draft the next block. No KV cache: a measure of tokens per forward,
    not of speed. Returns the tokens and the number of forward passes."""
    seq = prompt[None]
    logits = model(seq, heads=1)[:, -1, 0]
    out = [int(logits.argmax(-1))]
    drafts = recipe.side_logits(model, seq)[0, :, -1].argmax(-1).tolist()
    forwards = 1
    while len(out) < max_new_tokens:
        block = torch.tensor([out[-1], *drafts], device=prompt.device)
        x = torch.cat([seq, block[None]], dim=1)[:, : model.config.block_size]
        greedy = model(x, heads=1)[0, seq.shape[1]:, 0].argmax(-1).tolist()
        accepted = 0
        while accepted < len(drafts) and accepted + 1 < len(greedy) and drafts[accepted] == greedy[accepted]:
            accepted += 1
        seq = torch.cat([seq, block[None, : accepted + 1]], dim=1)
        out += drafts[:accepted] + [greedy[accepted]]
        anchor = seq.shape[1] - 1
        drafts = recipe.side_logits(model, x[:, : anchor + 1])[0, :, anchor].argmax(-1).tolist()
        forwards += 1
    return torch.tensor(out[:max_new_tokens], device=prompt.device), forwards


@torch.no_grad()
def rolled_distributions(model: MTPTransformer, inputs: torch.Tensor, n: int,
                         top: int) -> list[torch.Tensor]:
    """Mehra et al.'s no-training reference: the model's own distribution of token t+k (k = 1..n) at
    every position `(B, T, V)`, its head-1 distribution rolled forward over the `top` most likely
    tokens at each intermediate step (top=1: the greedy roll; top = vocabulary: exact marginal)."""
    B, T = inputs.shape
    logp = F.log_softmax(model(inputs, heads=1)[:, :, 0].float(), dim=-1)
    out = [logp.exp()]
    paths = inputs.new_zeros(B, T, 1, 0)  # tokens of each path
    logw = logp.new_zeros(B, T, 1)  # log probability of each path
    step_logp = logp[:, :, None]  # (B, T, P, V)
    for k in range(2, n + 1):
        val, idx = step_logp.topk(top, dim=-1)  # extend every path by its `top` likeliest tokens
        P = paths.shape[2] * top
        paths = torch.cat([paths.repeat_interleave(top, 2), idx.reshape(B, T, P, 1)], dim=3)
        logw = (logw[..., None] + val).reshape(B, T, P)
        emb = model.embed(paths.permute(0, 2, 3, 1).reshape(B * P, k - 1, T))  # (B*P, k-1, T, d)
        h = side_hidden(model, inputs.repeat_interleave(P, 0), emb, chain=True)[:, -1]
        step_logp = F.log_softmax(model.unembed(h).float(), dim=-1).reshape(B, P, T,
                                                                            -1).transpose(1, 2)
        out.append((logw[..., None] + step_logp).exp().sum(2))
    return out


def rolled_accuracy(model: MTPTransformer, batches: list[tuple[torch.Tensor, torch.Tensor]], n: int,
                    top: int) -> list[float]:
    """Accuracy of the rolled distribution of token t+k (k = 1..n) against the data, on counted
    targets."""
    hits, counts = [0] * n, [0] * n
    for inputs, first in batches:
        for k, (dist, target) in enumerate(zip(rolled_distributions(model, inputs, n, top),
                                               later_targets(first, n))):
            valid = target != IGNORE
            hits[k] += int(((dist.argmax(-1) == target) & valid).sum())
            counts[k] += int(valid.sum())
    return [h / max(c, 1) for h, c in zip(hits, counts)]


@torch.no_grad()
def head_accuracy(model: MTPTransformer, recipe: Recipe | None, batches: list) -> list[float]:
    """Accuracy of the recipe's prediction of token t+k (k = 1..n: heads, or side tokens) on the data."""
    n = recipe.n if recipe is not None else model.config.n_future
    hits, counts = [0] * n, [0] * n
    for inputs, first in batches:
        logits = model(inputs)  # (B, T, heads, V)
        preds = list(logits.unbind(2))
        if recipe is not None and recipe.side:
            preds += list(recipe.side_logits(model, inputs).unbind(1))
        for k, (pred, target) in enumerate(zip(preds, later_targets(first, n))):
            valid = target != IGNORE
            hits[k] += int(((pred.argmax(-1) == target) & valid).sum())
            counts[k] += int(valid.sum())
    return [h / max(c, 1) for h, c in zip(hits, counts)]


def train_flops(model: MTPTransformer, recipe: Recipe | None, config: RunConfig) -> float:
    """Estimated training FLOPs of the run: 2 per parameter per token forward, 4 backward for
    trained weights (2 through frozen ones where a gradient must pass), side tokens and a teacher
    counted; attention scores ignored. A yardstick between recipes, not a measurement."""
    tokens = config.train.steps * config.train.batch_size * config.model.block_size
    embed = model.transformer.wte.weight.numel() + model.transformer.wpe.weight.numel()
    per_token = sum(p.numel() for n_, p in model.named_parameters() if not n_.startswith(PARTS)) - embed
    unembed = model.lm_head.weight.numel()
    if recipe is None or not recipe.side:
        heads = model.config.n_future
        forward = 2 * (per_token + (heads - 1) * unembed)
        trained = forward if recipe is None or not recipe.frozen_base else 2 * sum(
            p.numel() for n_, p in model.named_parameters() if n_ in model.new_head_parameters())
        teacher = 2 * per_token if recipe is not None and recipe.name == "distill" else 0
        return float(tokens * (3 * forward if trained == forward else forward + 2 * trained) + tokens * teacher)
    side = recipe.n - 1
    forward = 2 * per_token * (1 + (1 + side))  # the plain pass, then real and side tokens together
    backward = 2 * forward * (0.5 if recipe.frozen_base else 1.0)
    return float(tokens * (forward + backward))


def describe() -> list[dict[str, Any]]:
    """Name, paper and simplification of every recipe (for the README and the measure step)."""
    return [{"name": n, "paper": c.paper, "simplified": c.simplified, "speculation": c.speculation}
            for n, c in REGISTRY.items()]
