"""Finetuning from a checkpoint: attach heads to it or drop heads from it, and soften the change.

The paper finetuned a next-token Llama 2 with 4-token prediction three ways (Table S6) and
saw no gain; the authors suppose the new loss "changes the initialization too brutally".
This module rebuilds that design at small scale. Let the pretrained next-token model have
blocks b_0 .. b_{L-1} (b_{L-1} is its head-1 block), embeddings, final norm and unembedding.
Embeddings, final norm and unembedding are always copied. The attach modes then map blocks:

- `keep`: the checkpoint's own architecture and heads, unchanged (e.g. a 4-head model
  finetuned with 4 heads, or any model finetuned on another task).
- `linear` (paper: linear heads, +0 layers): head type `linear`; the trunk is b_0 .. b_{L-1}
  (all pretrained blocks), head 1 is the identity, heads 2..n are new d x d linear maps.
- `carve` (paper: transformer heads, +0 layers): parameter-matched parallel heads. The trunk
  is b_0 .. b_{L-n-1}; head 1 is b_{L-1} (the pretrained output block, now reading a
  shallower input); head i >= 2 is b_{L-n+i-2}, i.e. the top trunk blocks become heads. The
  next-token path loses n-1 blocks: this is the "brutal" change.
- `add` (paper: transformer heads, +n-1 layers): parallel heads without matching. The trunk
  is b_0 .. b_{L-2}, head 1 is b_{L-1}, so the next-token path is exactly the pretrained
  model; heads 2..n are new blocks.
- `deepseek`: like `add`, but heads 2..n are DeepSeek-V3 style sequential modules.
- `drop` (paper section 3.6, n' = 1): from an n-head checkpoint keep trunk and head 1 only;
  head 1's logits are exactly the checkpoint's. (Impossible for anticausal heads, whose head
  1 reads head 2.)

New heads (`head_init`): `random` is the usual init; `copy` copies the pretrained output
block b_{L-1}, so in `add` every new head starts out predicting exactly what head 1 predicts
(for linear heads: the identity map, which does the same); `zero` zeroes the output
projections of the new block's attention and MLP, so the block starts as the identity and
passes the trunk output straight to the unembedding (for linear heads: the identity map
too). In `carve` mode `copy` and `zero` apply to the carved blocks of heads 2..n.

Schedules: `freeze_trunk_steps` trains only heads 2..n for the first K steps;
`ramp_steps` ramps heads 2..n's loss weight linearly from 0; `pretrained_lr_scale` scales the
learning rate of every weight that came from the checkpoint.

Diagnostics (logged in metrics.jsonl): a step-0 evaluation before any update, and
`finetune/pretrained_head1_loss` (the checkpoint's own head-1 loss on the same held-out
batches), so `head1/loss - finetune/pretrained_head1_loss` at step 0 is the shock on the
target task; `finetune/source_head1_loss` and `finetune/pretrained_source_head1_loss` are the
same on held-out data of the *pretraining* task, the shock to (and later the forgetting of)
what the checkpoint had learned, which is what matters when the two tasks differ; linear
CKA between the pretrained and the current model's hidden states at several depths
(`cka/depth{k}`, k = number of blocks below the point compared, and `cka/head1_out`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from lab import recipes
from lab.checkpoints import checkpoint_path, load_source, target_model_config  # noqa: F401 - re-exported
from lab.config import RunConfig
from lab.errors import ConfigError
from lab.evaluate import head_metrics, validation_batches
from lab.model import Block, MTPTransformer
from lab.resolve import resolve
from lab.train import Trainer, make_optimizer
from tasks import build_task


def prepare(config: RunConfig, experiment_dir: Path | None = None) -> RunConfig:
    """The finetuning run's resolved config: model shape from its checkpoint, fit with the task
    checked (see `lab.resolve.resolve`; `config` itself is left unchanged)."""
    return resolve(config, experiment_dir)[0]


def _source_blocks(source_model: MTPTransformer) -> list[Block]:
    """The pretrained next-token model's blocks in order: trunk, then head 1's block (if any)."""
    blocks = list(source_model.transformer.h)
    block = source_model.heads[0].pretrained_block()
    if block is not None:
        blocks.append(block)
    return blocks


def pretrained_names(model: MTPTransformer, mode: str) -> set[str]:
    """Parameters that come from the checkpoint: all but the added heads 2..n (in `carve`,
    `keep` and `drop` modes every block is a pretrained one)."""
    names = {n for n, _ in model.named_parameters()}
    if mode in ("carve", "keep", "drop"):
        return names
    return names - model.new_head_parameters()


def attach(model: MTPTransformer, source_model: MTPTransformer, mode: str, head_init: str) -> None:
    """Copy pretrained weights into `model` according to `mode` (see the module docstring)."""
    with torch.no_grad():
        for name in ("wte", "wpe", "ln_f"):
            getattr(model.transformer,
                    name).load_state_dict(getattr(source_model.transformer, name).state_dict())
        model.lm_head.load_state_dict(source_model.lm_head.state_dict())
        if mode in ("keep", "drop"):
            for dst, src in zip(model.transformer.h, source_model.transformer.h):
                dst.load_state_dict(src.state_dict())
            for dst, src in zip(model.heads, source_model.heads):
                dst.load_state_dict(src.state_dict())
            return
        # The trunk takes the first pretrained blocks, head 1 the output block (if it has a
        # block), heads 2..n the blocks left between them (carve); then heads 2..n start new.
        blocks = _source_blocks(source_model)
        L = len(blocks)
        for dst, src in zip(model.transformer.h, blocks):
            dst.load_state_dict(src.state_dict())
        carved = iter(blocks[len(model.transformer.h): L - 1])
        for i, head in enumerate(model.heads):
            if head.pretrained_block() is not None:
                src = blocks[L - 1] if i == 0 else next(carved, None)
                if src is not None:
                    head.load_pretrained(src)
            if i > 0:
                head.init_new(blocks[L - 1], head_init)


@torch.no_grad()
def linear_cka(x: torch.Tensor, y: torch.Tensor) -> float:
    """Linear CKA between two activation matrices `(samples, features)` (Kornblith et al. 2019)."""
    x = x.double() - x.double().mean(0, keepdim=True)
    y = y.double() - y.double().mean(0, keepdim=True)
    cross = (y.T @ x).norm() ** 2
    return float(cross / ((x.T @ x).norm() * (y.T @ y).norm()).clamp_min(1e-30))


@torch.no_grad()
def depth_states(model: MTPTransformer, idx: torch.Tensor) -> dict[str, torch.Tensor]:
    """Hidden states after each trunk block (`depth{k}`) and head 1's output, flattened."""
    was_training = model.training
    model.eval()
    x = model.transformer.drop(model.embed(idx) + model.transformer.wpe(torch.arange(idx.shape[1],
                                                                                     device=idx.device)))
    out = {}
    for k, block in enumerate(model.transformer.h, start=1):
        x = block(x)
        out[f"depth{k}"] = x.reshape(-1, x.shape[-1])
    out["head1_out"] = model.hidden_states(idx, heads=1)[0].reshape(-1, x.shape[-1])
    model.train(was_training)
    return out


class FinetuneTrainer(Trainer):
    """A `Trainer` that starts from a checkpoint (see the module docstring)."""

    def __init__(self, config: RunConfig, root: Path | str = "runs", device: str = "auto",
                 quiet: bool = False) -> None:
        # resolves: shape from the checkpoint, eval at start
        super().__init__(config, root, device, quiet)
        source_config, state = load_source(self.config.finetune.init_from,
                                           self.root / self.config.experiment)
        self.source = MTPTransformer(source_config.model)
        self.source.load_state_dict(state)
        self.source.to(self.device).eval()
        for p in self.source.parameters():
            p.requires_grad_(False)
        val = validation_batches(self.task, self.config)
        self.probe = torch.as_tensor(val[0].input_tokens[:, :-1], device=self.device)
        # Held-out data of the pretraining task: the shock to what the checkpoint had learned.
        source_task = build_task(source_config.task, source_config.task_config)
        self.source_val = validation_batches(source_task, source_config)
        self.source_states = depth_states(self.source, self.probe)
        n = self.config.model.n_future
        base = self.config.train.head_weights or [1.0] * n
        self.base_weights = list(base)
        self.recipe = recipes.make(self.config,
                                   self.source) if self.config.finetune.recipe else None

    # ----- a named recipe (lab/recipes.py) replaces these where the config selects one -----
    def build_model(self) -> MTPTransformer:
        return recipes.build_model(self.config)

    def forward_backward(self, model, inputs, targets, weights):
        if self.recipe is None:
            return super().forward_backward(model, inputs, targets, weights)
        if self.dp.world > 1:
            raise ConfigError(f"finetune.recipe={self.recipe.name} runs in one process, not under "
                              "torchrun")
        return self.recipe.forward_backward(model, inputs, targets, weights)

    def _recipe_step(self, step: int, weights: list[float]) -> list[float]:
        """The recipe's loss weights for this step and its frozen weights (after `before_step`'s
        own)."""
        for name, p in self.model.named_parameters():
            if not self.recipe.trainable(self.model, name):
                p.requires_grad_(False)
        return self.recipe.weights(step, weights)

    def init_model(self, model: MTPTransformer) -> None:
        attach(model, self.source, self.config.finetune.attach, self.config.finetune.head_init)

    def make_optimizer(self, model: MTPTransformer) -> torch.optim.Optimizer:
        scale = self.config.finetune.pretrained_lr_scale
        if scale == 1.0:
            return make_optimizer(model, self.config)
        loaded = pretrained_names(model, self.config.finetune.attach)
        groups = []
        for pretrained in (True, False):
            for decay in (True, False):
                params = [p for n_, p in model.named_parameters()
                          if (n_ in loaded) == pretrained and (p.dim() >= 2) == decay]
                if params:
                    groups.append({"params": params, "lr_scale": scale if pretrained else 1.0,
                                   "weight_decay": self.config.train.weight_decay if decay else 0.0})
        t = self.config.train
        return torch.optim.AdamW(groups, lr=t.lr, betas=(t.beta1, t.beta2))

    def before_step(self, step: int) -> list[float] | None:
        ft = self.config.finetune
        frozen = step < ft.freeze_trunk_steps
        new_heads = self.model.new_head_parameters()
        for name, p in self.model.named_parameters():
            p.requires_grad_(name in new_heads or not frozen)
        weights = list(self.base_weights)
        if ft.ramp_steps:
            ramp = min(1.0, step / ft.ramp_steps)
            weights = [weights[0]] + [w * ramp for w in weights[1:]]
        if self.recipe is not None:
            weights = self._recipe_step(step, weights)
        return weights

    def extra_metrics(self, step: int) -> dict[str, float]:
        current = depth_states(self.model, self.probe)
        out = {f"cka/{k}": linear_cka(self.source_states[k],
                                      v) for k, v in current.items() if k in self.source_states}
        if not hasattr(self, "_pretrained"):  # the checkpoint's own losses never change
            target_val = validation_batches(self.task, self.config)
            self._pretrained = {
                "finetune/pretrained_head1_loss": head_metrics(self.source, target_val,
                                                               self.device)["head1/loss"],
                "finetune/pretrained_source_head1_loss":
                    head_metrics(self.source, self.source_val, self.device)["head1/loss"],
            }
        out.update(self._pretrained)
        out["finetune/source_head1_loss"] = head_metrics(self.model, self.source_val,
                                                         self.device)["head1/loss"]
        return out


def finetune(config: RunConfig, root: Path | str = "runs", device: str = "auto",
             quiet: bool = False) -> dict[str, Any]:
    """Finetune from `config.finetune.init_from` (see `FinetuneTrainer`)."""
    return FinetuneTrainer(config, root, device, quiet).run()
