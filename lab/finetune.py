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

import copy
from pathlib import Path
from typing import Any

import torch

from lab import runs
from lab.config import ModelConfig, RunConfig
from lab.model import Block, BlockHead, DeepSeekHead, LinearHead, MTPTransformer
from lab.resolve import resolve
from lab.train import Trainer, head_metrics, make_optimizer, validation_batches
from tasks import ConfigError, build_task


def checkpoint_path(init_from: str, experiment_dir: Path | None = None) -> Path:
    """The checkpoint file behind `--init-from`: a run directory or a .pt file, or `@NAME[/FILE]`
    for a run of the same experiment (resolved in `experiment_dir`), which keeps the configs
    of a pretrain-then-finetune sweep independent of where its output lives."""
    if init_from.startswith("@"):
        if experiment_dir is None:
            raise ConfigError(f"--init-from {init_from}: '@' names a run of the same experiment; give a path instead")
        path = experiment_dir / init_from[1:]
    else:
        path = Path(init_from)
    if path.is_dir():
        path = path / runs.CHECKPOINT
    if not path.is_file():
        raise ConfigError(f"--init-from {init_from}: no checkpoint found (expected a run directory or a .pt file)")
    return path


def load_source(init_from: str, experiment_dir: Path | None = None) -> tuple[RunConfig, dict[str, torch.Tensor]]:
    """The pretrained run's config and model weights, read with `weights_only=True`."""
    path = checkpoint_path(init_from, experiment_dir)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
        source = RunConfig.from_dict(payload["config"])
        state = payload["model"]
    except Exception as e:  # a corrupt or foreign file
        raise ConfigError(f"--init-from {init_from}: not a readable mtp-lab checkpoint ({type(e).__name__})") from None
    return source, state


def n_trunk(config: ModelConfig) -> int:
    if config.head_type == "linear":
        return config.n_layer
    return config.n_layer - config.n_future if config.match_params else config.n_layer - 1


def target_model_config(source: ModelConfig, heads: int, attach: str) -> ModelConfig:
    """The finetuned model's shape for an attach mode (raises `ConfigError` if it cannot fit)."""
    target = copy.deepcopy(source)
    target.n_future = heads
    if attach == "keep":
        if heads != source.n_future:
            raise ConfigError(f"--heads {heads} differs from the checkpoint's {source.n_future} heads; "
                              f"choose --attach linear, carve, add, deepseek (from 1 head) or drop (to 1 head)")
        return target
    if attach == "drop":
        if heads != 1:
            raise ConfigError(f"--attach drop keeps head 1 only; use --heads 1, not {heads}")
        if source.head_type == "anticausal" and source.n_future > 1:
            raise ConfigError("--attach drop is impossible for anticausal heads: head 1 reads head 2")
        target.head_type = "linear" if source.head_type == "linear" else "parallel"
        target.match_params = True
        target.n_layer = n_trunk(source) + (0 if source.head_type == "linear" else 1)
        return target
    if source.n_future != 1:
        raise ConfigError(f"--attach {attach} starts from a next-token checkpoint, but it has {source.n_future} heads "
                          f"(use --attach drop first, or --attach keep)")
    if heads < 2:
        raise ConfigError(f"--attach {attach} adds heads: use --heads 2 or more, not {heads}")
    if attach == "linear":
        target.head_type = "linear"
    elif attach == "carve":
        if heads >= source.n_layer:
            raise ConfigError(f"--attach carve with {heads} heads needs more than {heads} pretrained blocks "
                              f"(the checkpoint has {source.n_layer})")
        target.head_type, target.match_params = "parallel", True
    elif attach in ("add", "deepseek"):
        target.head_type, target.match_params = ("parallel" if attach == "add" else "deepseek"), False
    return target


def prepare(config: RunConfig, experiment_dir: Path | None = None) -> RunConfig:
    """The finetuning run's resolved config: model shape from its checkpoint, fit with the task
    checked (see `lab.resolve.resolve`; `config` itself is left unchanged)."""
    return resolve(config, experiment_dir)[0]


def _source_blocks(source_model: MTPTransformer) -> list[Block]:
    """The pretrained next-token model's blocks in order: trunk, then head 1's block."""
    blocks = list(source_model.transformer.h)
    head = source_model.heads[0]
    if isinstance(head, (BlockHead, DeepSeekHead)):
        blocks.append(head.block)
    return blocks


def _zero_output(block: Block) -> None:
    torch.nn.init.zeros_(block.attn.c_proj.weight)
    torch.nn.init.zeros_(block.mlp.c_proj.weight)
    for layer in (block.attn.c_proj, block.mlp.c_proj):
        if layer.bias is not None:
            torch.nn.init.zeros_(layer.bias)


def pretrained_names(model: MTPTransformer, mode: str) -> set[str]:
    """Parameters that come from the checkpoint: all but the added heads 2..n (in `carve`,
    `keep` and `drop` modes every block is a pretrained one)."""
    names = {n for n, _ in model.named_parameters()}
    if mode in ("carve", "keep", "drop"):
        return names
    return {n for n in names if not (n.startswith("heads.") and not n.startswith("heads.0."))}


def attach(model: MTPTransformer, source_model: MTPTransformer, mode: str, head_init: str) -> None:
    """Copy pretrained weights into `model` according to `mode` (see the module docstring)."""
    with torch.no_grad():
        for name in ("wte", "wpe", "ln_f"):
            getattr(model.transformer, name).load_state_dict(getattr(source_model.transformer, name).state_dict())
        model.lm_head.load_state_dict(source_model.lm_head.state_dict())
        if mode in ("keep", "drop"):
            for dst, src in zip(model.transformer.h, source_model.transformer.h):
                dst.load_state_dict(src.state_dict())
            for dst, src in zip(model.heads, source_model.heads):
                dst.load_state_dict(src.state_dict())
            return
        blocks = _source_blocks(source_model)
        L, n = len(blocks), model.config.n_future
        if mode == "linear":
            trunk_src, head_src = blocks, {}
        elif mode == "carve":
            trunk_src = blocks[: L - n]
            head_src = {0: blocks[L - 1], **{i: blocks[L - n + i - 1] for i in range(1, n)}}
        else:  # add, deepseek
            trunk_src, head_src = blocks[: L - 1], {0: blocks[L - 1]}
        for dst, src in zip(model.transformer.h, trunk_src):
            dst.load_state_dict(src.state_dict())
        for i, head in enumerate(model.heads):
            if i in head_src:
                head.block.load_state_dict(head_src[i].state_dict())
            if i > 0:
                _init_new_head(head, blocks[L - 1], head_init)


def _init_new_head(head: torch.nn.Module, last_block: Block, head_init: str) -> None:
    """Initialise head i >= 2 (random init is what the model already has)."""
    if isinstance(head, LinearHead):
        if head_init in ("copy", "zero"):
            torch.nn.init.eye_(head.proj.weight)
            if head.proj.bias is not None:
                torch.nn.init.zeros_(head.proj.bias)
        return
    if head_init == "copy":
        head.block.load_state_dict(last_block.state_dict())
    elif head_init == "zero":
        _zero_output(head.block)


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
    x = model.transformer.drop(model.embed(idx) + model.transformer.wpe(torch.arange(idx.shape[1], device=idx.device)))
    out = {}
    for k, block in enumerate(model.transformer.h, start=1):
        x = block(x)
        out[f"depth{k}"] = x.reshape(-1, x.shape[-1])
    out["head1_out"] = model.hidden_states(idx, heads=1)[0].reshape(-1, x.shape[-1])
    model.train(was_training)
    return out


class FinetuneTrainer(Trainer):
    """A `Trainer` that starts from a checkpoint (see the module docstring)."""

    def __init__(self, config: RunConfig, root: Path | str = "runs", device: str = "auto", quiet: bool = False) -> None:
        super().__init__(config, root, device, quiet)  # resolves: shape from the checkpoint, eval at start
        source_config, state = load_source(self.config.finetune.init_from, self.root / self.config.experiment)
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
        for name, p in self.model.named_parameters():
            is_new_head = name.startswith("heads.") and not name.startswith("heads.0.")
            p.requires_grad_(is_new_head or not frozen)
        weights = list(self.base_weights)
        if ft.ramp_steps:
            ramp = min(1.0, step / ft.ramp_steps)
            weights = [weights[0]] + [w * ramp for w in weights[1:]]
        return weights

    def extra_metrics(self, step: int) -> dict[str, float]:
        current = depth_states(self.model, self.probe)
        out = {f"cka/{k}": linear_cka(self.source_states[k], v) for k, v in current.items() if k in self.source_states}
        if not hasattr(self, "_pretrained"):  # the checkpoint's own losses never change
            target_val = validation_batches(self.task, self.config)
            self._pretrained = {
                "finetune/pretrained_head1_loss": head_metrics(self.source, target_val, self.device)["head1/loss"],
                "finetune/pretrained_source_head1_loss":
                    head_metrics(self.source, self.source_val, self.device)["head1/loss"],
            }
        out.update(self._pretrained)
        out["finetune/source_head1_loss"] = head_metrics(self.model, self.source_val, self.device)["head1/loss"]
        return out


def finetune(config: RunConfig, root: Path | str = "runs", device: str = "auto", quiet: bool = False) -> dict[str, Any]:
    """Finetune from `config.finetune.init_from` (see `FinetuneTrainer`)."""
    return FinetuneTrainer(config, root, device, quiet).run()
