"""The training loop: schedule, evaluation, early stopping, checkpoint/resume, logging.

Determinism: the training batch of step s is drawn from `np.random.default_rng([seed, s])`,
so data never depends on how often a run was interrupted; the checkpoint holds model,
optimizer, accumulators and torch RNG state. A run resumed from any checkpoint therefore
finishes with the same metrics as an uninterrupted one (on CPU, same thread count).
Checkpoints are written at every evaluation and every `checkpoint_every` steps, on Ctrl-C,
and at the end.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from lab import distributed, interp, runs
from lab.config import RunConfig
from lab.device import autocast, resolve_device
from lab.evaluate import ModelPredictor, batch_tensors, head_metrics, validation_batches
from lab.model import MTPTransformer
from tasks import ConfigError, Task, build_task

WALL_CLOCK_FIELDS = ("wall_s", "tokens_per_s")


def resolve(config: RunConfig) -> tuple[RunConfig, Task]:
    """Fill the config's task-derived fields (vocabulary, context, task defaults) and validate.

    Raises `ConfigError` for any bad value, before anything is written.
    """
    task = build_task(config.task, config.task_config)
    config.task_config = task.config.to_dict()
    # The model may be wider than the task (a shared vocabulary/context across tasks, as when
    # finetuning on another task), never narrower.
    if config.model.vocab_size == 0:
        config.model.vocab_size = task.vocab_size
    elif config.model.vocab_size < task.vocab_size:
        raise ConfigError(f"model.vocab_size={config.model.vocab_size} is smaller than task {config.task!r}'s "
                          f"vocabulary ({task.vocab_size})")
    if config.model.block_size == 0:
        config.model.block_size = task.seq_len - 1
    elif config.model.block_size < task.seq_len - 1:
        raise ConfigError(f"model.block_size={config.model.block_size} is shorter than task {config.task!r}'s "
                          f"inputs ({task.seq_len - 1} tokens)")
    config.model.validate()
    config.train.validate()
    config.finetune.validate()
    if config.train.head_weights is not None and len(config.train.head_weights) != config.model.n_future:
        raise ConfigError(f"train.head_weights has {len(config.train.head_weights)} values for "
                          f"{config.model.n_future} heads")
    return config, task


def lr_at(step: int, config: RunConfig) -> float:
    """Linear warm-up, then cosine decay to `min_lr_ratio` of the peak (Table S13)."""
    t = config.train
    if step < t.warmup_steps:
        return t.lr * (step + 1) / t.warmup_steps
    span = max(1, t.steps - t.warmup_steps)
    progress = min(1.0, (step - t.warmup_steps) / span)
    return t.lr * (t.min_lr_ratio + (1 - t.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))


def make_optimizer(model: torch.nn.Module, config: RunConfig) -> torch.optim.Optimizer:
    """AdamW; weight decay on matrices only (not on norms, biases... embeddings included as in nanoGPT)."""
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.dim() >= 2]
    no_decay = [p for p in params if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": config.train.weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=config.train.lr, betas=(config.train.beta1, config.train.beta2))


@dataclass
class TrainState:
    """Everything besides model and optimizer that a resumed run needs."""

    step: int = 0
    tokens: int = 0  # input tokens processed (batches may be narrower than the task's seq_len)
    wall_s: float = 0.0
    loss_sum: float = 0.0
    loss_steps: int = 0
    best_value: float = -math.inf
    best_step: int = -1
    evals_since_best: int = 0
    stopped_early: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


def save_checkpoint(path: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer, state: TrainState,
                    config: RunConfig) -> None:
    payload = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "state": {k: v for k, v in state.__dict__.items()},
        "torch_rng": torch.get_rng_state(),
        "config": config.to_dict(),
    }
    runs.atomic_write(path, lambda f: torch.save(payload, f), binary=True)


def load_checkpoint(path: Path, device: torch.device) -> dict[str, Any]:
    return torch.load(path, map_location=device, weights_only=True)


def log_line(message: str, quiet: bool) -> None:
    if not quiet:
        tqdm.write(message)


class Trainer:
    """Trains one `RunConfig` into its run directory. Use `run()`.

    Subclass hooks (used by finetuning): `init_model` to load weights, `before_step` to
    change what trains (freezing, loss weights), `extra_metrics` to log more at each eval.
    """

    def __init__(self, config: RunConfig, root: Path | str = "runs", device: str = "auto", quiet: bool = False) -> None:
        self.config, self.task = resolve(config)
        self.device = resolve_device(device)
        self.dp = distributed.setup(self.device)  # data-parallel under torchrun, else one process
        self.device = self.dp.device
        self.root = Path(root)
        self.quiet = quiet or not self.dp.is_main
        self.run_dir, self.status = runs.prepare_run_dir(self.root, config.experiment, config.run_name(),
                                                         config.to_dict())
        self.model: MTPTransformer | None = None

    # ----- hooks -----
    def init_model(self, model: MTPTransformer) -> None:
        """Called once on a fresh (not resumed) run, before training."""

    def before_step(self, step: int) -> list[float] | None:
        """Called before every step; may return per-head loss weights for this step."""
        return self.config.train.head_weights

    def extra_metrics(self, step: int) -> dict[str, float]:
        return {}

    def make_optimizer(self, model: torch.nn.Module) -> torch.optim.Optimizer:
        return make_optimizer(model, self.config)

    # ----- the loop -----
    def evaluate(self, max_examples: int | None) -> dict[str, float]:
        predictor = ModelPredictor(self.model, self.device)
        metrics = self.task.evaluate(predictor, max_examples=max_examples or None)
        return {f"eval/{k}": float(v) for k, v in metrics.items()}

    def run(self) -> dict[str, Any]:
        """Train (or resume, or skip a complete run) and return the summary.

        Raises `runs.RunLocked` if another process is training this run right now.
        """
        if self.status != "complete":
            with self.dp.run_lock(self.run_dir):
                # Another process may have finished or advanced the run before we got the lock.
                self.run_dir, self.status = runs.prepare_run_dir(self.root, self.config.experiment,
                                                                 self.config.run_name(), self.config.to_dict())
                self.dp.barrier()
                if self.status != "complete":
                    return self._train()
        log_line(f"complete already: {self.run_dir}", self.quiet)
        return runs.read_json(self.run_dir / runs.SUMMARY)

    def _train(self) -> dict[str, Any]:
        cfg = self.config
        torch.manual_seed(cfg.seed)
        self.model = model = MTPTransformer(cfg.model).to(self.device)
        optimizer = self.make_optimizer(model)
        state = TrainState()
        ckpt_path = self.run_dir / runs.CHECKPOINT
        meta_path = self.run_dir / runs.META
        metrics = []
        if self.status == "incomplete" and ckpt_path.exists():
            ckpt = load_checkpoint(ckpt_path, self.device)
            model.load_state_dict(ckpt["model"])
            optimizer.load_state_dict(ckpt["optimizer"])
            state = TrainState(**ckpt["state"])
            torch.set_rng_state(ckpt["torch_rng"].cpu())
            metrics = [r for r in runs.read_jsonl(self.run_dir / runs.METRICS) if r["step"] <= state.step]
            meta = runs.read_json(meta_path)
            meta.setdefault("resumed_at", []).append({"step": state.step, "time": runs.now()})
            log_line(f"resuming {self.run_dir} at step {state.step}", self.quiet)
        else:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            runs.write_json(self.run_dir / runs.CONFIG, cfg.to_dict())
            metrics = []
            meta = {"started": runs.now(), "git": runs.git_state(), "versions": runs.environment()}
            self.init_model(model)
        meta.update({"status": "running", "device": str(self.device), "processes": self.dp.world, "error": None})
        runs.write_json(meta_path, meta)
        runs.write_jsonl(self.run_dir / runs.METRICS, metrics)

        if cfg.train.compile:  # after any weight loading or head surgery; checkpoints are unaffected
            model.compile_blocks()
        counts = model.param_counts()
        log_line(f"run {self.run_dir}\nparameters: trunk {counts['trunk']:,}  heads {counts['heads']:,}  "
                 f"embeddings {counts['embedding']:,}  non-embedding {counts['non_embedding']:,}  "
                 f"total {counts['total']:,}", self.quiet)
        val = validation_batches(self.task, cfg)
        n_heads = cfg.model.n_future
        segment_start, segment_tokens0 = time.perf_counter(), state.tokens
        wall_before = state.wall_s
        model.train()
        keep_steps = {max(1, round(f * cfg.train.steps)) for f in cfg.train.keep_checkpoints or []}
        if cfg.train.eval_at_start and state.step == 0 and not metrics:
            self._log_eval(metrics, state, val, cfg.train.eval_examples, 0.0, 0.0)
        due = state.step and (state.step % cfg.train.eval_every == 0 or state.step == cfg.train.steps)
        if due and (not metrics or metrics[-1]["step"] != state.step):
            # Interrupted during this step's evaluation: do it now, as the uninterrupted run did.
            cap = cfg.train.final_eval_examples if state.step == cfg.train.steps else cfg.train.eval_examples
            self._log_eval(metrics, state, val, cap, 0.0, lr_at(state.step - 1, cfg))
            save_checkpoint(ckpt_path, model, optimizer, state, cfg)
        bar = tqdm(total=cfg.train.steps, initial=state.step, disable=self.quiet, unit="step", dynamic_ncols=True)
        try:
            while state.step < cfg.train.steps and not state.stopped_early:
                step = state.step
                weights = self.before_step(step)
                batch = self.task.sample_batch(np.random.default_rng([cfg.seed, step]), cfg.train.batch_size)
                inputs, targets = batch_tensors(batch, self.device, n_heads)
                for group in optimizer.param_groups:
                    group["lr"] = lr_at(step, cfg) * group.get("lr_scale", 1.0)
                with autocast(self.device):
                    result = self.dp.forward_backward(model, inputs, targets, cfg.train.efficient_backward, weights)
                if cfg.train.grad_clip:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.train.grad_clip)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                state.step += 1
                state.tokens += inputs.numel()
                state.loss_sum += result.loss
                state.loss_steps += 1
                state.wall_s = wall_before + time.perf_counter() - segment_start
                tok_s = (state.tokens - segment_tokens0) / max(1e-9, time.perf_counter() - segment_start)
                bar.update(1)
                bar.set_postfix(loss=f"{result.loss:.3f}", tok_s=f"{tok_s:,.0f}", refresh=False)
                last = state.step == cfg.train.steps
                if state.step % cfg.train.eval_every == 0 or last:
                    cap = cfg.train.final_eval_examples if last else cfg.train.eval_examples
                    self._log_eval(metrics, state, val, cap, tok_s, lr_at(step, cfg))
                    save_checkpoint(ckpt_path, model, optimizer, state, cfg)
                elif state.step % cfg.train.checkpoint_every == 0:
                    save_checkpoint(ckpt_path, model, optimizer, state, cfg)
                if state.step in keep_steps:
                    save_checkpoint(self.run_dir / f"checkpoint-step{state.step}.pt", model, optimizer, state, cfg)
        except KeyboardInterrupt:
            bar.close()
            save_checkpoint(ckpt_path, model, optimizer, state, cfg)
            meta.update({"status": "interrupted", "interrupted_at": runs.now()})
            runs.write_json(meta_path, meta)
            raise
        except Exception as e:
            bar.close()
            meta.update({"status": "failed", "error": f"{type(e).__name__}: {e}", "ended": runs.now()})
            runs.write_json(meta_path, meta)
            raise
        bar.close()
        summary = self._summary(metrics, state, counts)
        runs.write_json(self.run_dir / runs.SUMMARY, summary)
        meta.update({"status": "complete", "ended": runs.now()})
        runs.write_json(meta_path, meta)
        return summary

    def _log_eval(self, metrics: list[dict[str, Any]], state: TrainState, val: list, cap: int, tok_s: float,
                  lr: float) -> None:
        """Evaluate, append the row to metrics.jsonl (atomically) and update the best step."""
        row = {"step": state.step, "tokens": state.tokens, "wall_s": round(state.wall_s, 3),
               "tokens_per_s": round(tok_s, 1), "lr": lr}
        if state.loss_steps:
            row["train/loss"] = state.loss_sum / state.loss_steps
        row.update(head_metrics(self.model, val, self.device))
        row.update(interp.induction_scores(self.model, self.task.vocab_size, self.device))
        row.update(self.evaluate(cap))
        row.update(self.extra_metrics(state.step))
        metrics.append(row)
        state.loss_sum, state.loss_steps = 0.0, 0
        self._track_best(state, row)
        runs.write_jsonl(self.run_dir / runs.METRICS, metrics)
        primary = f"eval/{self.task.primary_metric}"
        log_line(f"step {state.step}: train/loss {row.get('train/loss', float('nan')):.4f}  head1/acc "
                 f"{row['head1/acc']:.3f}  {primary} {row.get(primary, float('nan')):.4f}", self.quiet)

    def _track_best(self, state: TrainState, row: dict[str, float]) -> None:
        value = row.get(f"eval/{self.task.primary_metric}")
        if value is None or math.isnan(value):
            return
        if value > state.best_value:
            state.best_value, state.best_step, state.evals_since_best = value, row["step"], 0
        else:
            state.evals_since_best += 1
            patience = self.config.train.early_stop_patience
            if patience and state.evals_since_best >= patience:
                state.stopped_early = True

    def _summary(self, metrics: list[dict[str, Any]], state: TrainState, counts: dict[str, int]) -> dict[str, Any]:
        final = metrics[-1] if metrics else {}
        best = next((r for r in metrics if r["step"] == state.best_step), final)
        return {
            "run_dir": str(self.run_dir),
            "primary_metric": f"eval/{self.task.primary_metric}",
            "final": final,
            "best_step": state.best_step,
            "best": best,
            "steps": state.step,
            "stopped_early": state.stopped_early,
            "wall_s": round(state.wall_s, 3),
            "tokens": state.tokens,
            "tokens_per_s": round(state.tokens / max(state.wall_s, 1e-9), 1),
            "params": counts,
        }


def train(config: RunConfig, root: Path | str = "runs", device: str = "auto", quiet: bool = False) -> dict[str, Any]:
    """Train one run (see `Trainer`). Returns the summary."""
    return Trainer(config, root, device, quiet).run()
