"""Data-parallel training of one run: `torchrun --nproc-per-node K -m lab.run TASK ...`.

The training loop runs unchanged in every process; what differs is one call per step:

- every rank draws the same global batch for step s (`np.random.default_rng([seed, s])`) and
  keeps its own contiguous slice of rows;
- it runs the usual forward/backward (memory-efficient or plain) on that slice, with each
  head's loss weighted by `local targets / global targets` of that head, so that the sum of
  the ranks' gradients is exactly the gradient of the full batch's objective (a per-head
  mean over counted targets; slices can count different numbers of targets);
- the gradients are summed across ranks (one all-reduce of a flat buffer), after which
  every rank clips and steps identically, so the replicas never diverge.

We do not wrap the model in `DistributedDataParallel`: the memory-efficient backward calls
the model's pieces directly rather than `model.forward`, which DDP's hooks rely on.

Every rank also evaluates (they hold the same model, so early stopping agrees without any
communication); only rank 0 writes files (`lab.runs.atomic_write`) and prints. Backend:
gloo on CPU, nccl on CUDA (one GPU per process, `cuda:LOCAL_RANK`). Dropout masks, if
dropout is on, differ from a single-process run's; everything else matches it up to
floating-point summation order.
"""

from __future__ import annotations

import atexit
import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist

from lab import runs
from lab.errors import ConfigError
from lab.objective import IGNORE, StepResult, forward_backward


@dataclass
class DataParallel:
    """This process's place in a data-parallel run (`world == 1`: a plain single-process run)."""

    rank: int = 0
    world: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def rows(self, batch_size: int) -> slice:
        """This rank's contiguous share of a global batch's rows."""
        return slice(self.rank * batch_size // self.world,
                     (self.rank + 1) * batch_size // self.world)

    def forward_backward(self, model: torch.nn.Module, inputs: torch.Tensor,
                         targets: list[torch.Tensor],
                         efficient: bool = True,
                         head_weights: list[float] | None = None) -> StepResult:
        """Gradients of the global batch's loss on every rank; the result describes the global
        batch."""
        if self.world == 1:
            return forward_backward(model, inputs, targets, efficient, head_weights)
        if inputs.shape[0] < self.world:
            raise ConfigError(f"train.batch_size={inputs.shape[0]} is smaller than the "
                              f"{self.world} processes")
        rows = self.rows(inputs.shape[0])
        local_targets = [t[rows] for t in targets]
        user = list(head_weights) if head_weights is not None else [1.0] * len(targets)
        shares = shard_weights(targets, local_targets)
        result = forward_backward(model, inputs[rows], local_targets, efficient,
                                  [w * f for w, f in zip(user, shares)])
        all_reduce_grads(model)
        # Per-head loss and number correct over the global batch: sum the ranks' shares.
        n = len(targets)
        stats = torch.tensor([x * f for x, f in zip(result.head_loss, shares)]
                             + [a * c for a, c in zip(result.head_acc, result.head_count)],
                             dtype=torch.float64, device=self.device)
        dist.all_reduce(stats)
        counts = [(t != IGNORE).sum() for t in targets]
        return StepResult(list(stats[:n]), list(stats[n:]), counts, user)

    @contextlib.contextmanager
    def run_lock(self, run_dir: Path) -> Iterator[None]:
        """`runs.run_lock` taken by rank 0 for the whole group; every rank raises `RunLocked` alike."""
        if self.world == 1:
            with runs.run_lock(run_dir):
                yield
            return
        with contextlib.ExitStack() as stack:
            locked = 0
            if self.is_main:
                try:
                    stack.enter_context(runs.run_lock(run_dir))
                except runs.RunLocked:
                    locked = 1
            flag = torch.tensor([locked], device=self.device)
            dist.broadcast(flag, src=0)
            if int(flag):
                raise runs.RunLocked(f"{run_dir} is being trained by another process")
            yield

    def barrier(self) -> None:
        if self.world > 1:
            dist.barrier()


def shard_weights(targets: list[torch.Tensor], local_targets: list[torch.Tensor]) -> list[float]:
    """Per head, the slice's share of the batch's counted targets (`local count / global count`).

    A head's loss on a slice is the mean over that slice's counted targets; weighting it by
    this share makes the ranks' gradients sum to the gradient of the full batch's mean.
    """
    out = []
    for full, part in zip(targets, local_targets):
        total = int((full != IGNORE).sum())
        out.append(int((part != IGNORE).sum()) / total if total else 0.0)
    return out


def all_reduce_grads(model: torch.nn.Module) -> None:
    """Sum every parameter's gradient across ranks (one flat buffer, one collective)."""
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    offset = 0
    for g in grads:
        g.copy_(flat[offset:offset + g.numel()].view_as(g))
        offset += g.numel()


def setup(device: torch.device) -> DataParallel:
    """Join the process group that `torchrun` describes in the environment, if any.

    Without `WORLD_SIZE` > 1 this is a single-process run on `device`. On CUDA each process
    takes `cuda:LOCAL_RANK` and the backend is nccl; elsewhere gloo.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DataParallel(0, 1, device)
    if device.type == "mps":
        raise ConfigError("data-parallel training supports cpu and cuda devices, not mps")
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        atexit.register(_teardown)
    return DataParallel(rank, world, device)


def _teardown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()
