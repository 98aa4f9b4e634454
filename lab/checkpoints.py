"""Where a finetuning run starts: the checkpoint behind `--init-from` and the shape it becomes.

Plain config logic plus one `torch.load`: the resolve step (`lab.resolve`) and experiment plans
call it to fill a finetuning run's model shape before the config is hashed, without importing
the finetuning trainer (`lab.finetune`), which applies the weight maps.
"""

from __future__ import annotations

import copy
from pathlib import Path

import torch

from lab import bases, runs
from lab.config import ModelConfig, RunConfig
from lab.errors import ConfigError
from lab.heads import adding_modes, attach_head_type, head_class, next_token_depth


def checkpoint_path(init_from: str, experiment_dir: Path | None = None) -> Path:
    """The checkpoint file behind `--init-from`: a run directory or a .pt file, or `@NAME[/FILE]`
    for a run of the same experiment (resolved in `experiment_dir`), which keeps the configs
    of a pretrain-then-finetune sweep independent of where its output lives; or `base:<digest>`,
    a committed base (`lab.bases`)."""
    if init_from.startswith(bases.PREFIX):
        return bases.path_of(init_from)
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
    if init_from.startswith(bases.PREFIX):  # digest checked: a corrupted base is never used
        payload = bases.load(init_from)
        return RunConfig.from_dict(payload["config"]), payload["model"]
    path = checkpoint_path(init_from, experiment_dir)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
        source = RunConfig.from_dict(payload["config"])
        state = payload["model"]
    except Exception as e:  # a corrupt or foreign file
        raise ConfigError(f"--init-from {init_from}: not a readable mtp-lab checkpoint ({type(e).__name__})") from None
    return source, state


def target_model_config(source: ModelConfig, heads: int, attach: str) -> ModelConfig:
    """The finetuned model's shape for an attach mode (raises `ConfigError` if it cannot fit)."""
    target = copy.deepcopy(source)
    target.n_future = heads
    if attach == "keep":
        if heads != source.n_future:
            raise ConfigError(f"--heads {heads} differs from the checkpoint's {source.n_future} heads; "
                              f"choose --attach {', '.join(adding_modes())} (from 1 head) or drop (to 1 head)")
        return target
    if attach == "drop":
        if heads != 1:
            raise ConfigError(f"--attach drop keeps head 1 only; use --heads 1, not {heads}")
        reads = head_class(source.head_type).sources(source.n_future)[0]
        if reads != -1:
            raise ConfigError(f"--attach drop is impossible for {source.head_type} heads: "
                              f"head 1 reads head {reads + 1}")
        target.head_type = head_class(source.head_type).one_head_type
        target.match_params = True
        target.n_layer = next_token_depth(source)  # head 1 reads the trunk: trunk blocks + head 1's
        return target
    if source.n_future != 1:
        raise ConfigError(f"--attach {attach} starts from a next-token checkpoint, but it has {source.n_future} heads "
                          f"(use --attach drop first, or --attach keep)")
    if heads < 2:
        raise ConfigError(f"--attach {attach} adds heads: use --heads 2 or more, not {heads}")
    cls, match_params = attach_head_type(attach)
    target.head_type = cls.name
    if match_params is not None:
        target.match_params = match_params
    if cls.trunk_layers(target) < 1:
        raise ConfigError(f"--attach {attach} with {heads} heads needs more than {heads} pretrained blocks "
                          f"(the checkpoint has {source.n_layer})")
    return target
