"""The training loop: schedule, evaluation, early stopping, checkpoint/resume, logging.

Determinism: the training batch of step s is drawn from `np.random.default_rng([seed, s])`,
so data never depends on how often a run was interrupted; the checkpoint holds model,
optimizer, accumulators and torch RNG state. A run resumed from any checkpoint therefore
finishes with the same metrics as an uninterrupted one (on CPU, same thread count).
Checkpoints are written at every evaluation and every `checkpoint_every` steps, on Ctrl-C or
SIGTERM (what `timeout`, Slurm and Kubernetes send), and at the end.

A run whose training loss stops being a finite number has diverged: it fails ("diverged at step
K") instead of finishing with NaN metrics, so it is never complete and never selected. A failure
records its one-line error in meta.json and its full traceback in `traceback.txt`; a complete run
records the checksums of its final files (`lab.checkpoints.write_checksums`).
"""

from __future__ import annotations

import contextlib
import math
import signal
import sys
import threading
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from lab import alignment, distributed, interp, runs
from lab.checkpoints import load_checkpoint, save_checkpoint, verify_checksums, write_checksums
from lab.config import RunConfig
from lab.device import autocast, resolve_device
from lab.errors import ConfigError
from lab.evaluate import ModelPredictor, batch_tensors, head_metrics, validation_batches
from lab.model import MTPTransformer
from lab.resolve import resolve  # noqa: F401 - `lab.train.resolve` predates lab/resolve.py
from lab.runs import Status
from lab.tracking import NoTracker, make_tracker

WALL_CLOCK_FIELDS = ("wall_s", "tokens_per_s")




# Evaluation prefixes: selection (best step, early stopping) reads validation metrics; test
# metrics are what summaries, figures and claims report.
SELECT_PREFIX, REPORT_PREFIX = "val/", "eval/"


def lr_at(step: int, config: RunConfig) -> float:
    """Linear warm-up, then cosine decay to `min_lr_ratio` of the peak (Table S13)."""
    t = config.train
    if step < t.warmup_steps:
        return t.lr * (step + 1) / t.warmup_steps
    span = max(1, t.steps - t.warmup_steps)
    progress = min(1.0, (step - t.warmup_steps) / span)
    return t.lr * (t.min_lr_ratio + (1 - t.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))


def make_optimizer(model: torch.nn.Module, config: RunConfig) -> torch.optim.Optimizer:
    """AdamW; weight decay on matrices only (not on norms, biases... embeddings included as in
    nanoGPT)."""
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.dim() >= 2]
    no_decay = [p for p in params if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": config.train.weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=config.train.lr,
                             betas=(config.train.beta1, config.train.beta2))


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
    stop_best: float = math.inf  # the best (lowest, sign-adjusted) value of `train.early_stop_on`
    stopped_early: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


class Diverged(RuntimeError):
    """The training loss stopped being a finite number (NaN or infinite)."""


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived: handled as Ctrl-C is (checkpoint saved, status `interrupted`)."""


@contextlib.contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """Inside, SIGTERM raises `Terminated` in the main thread; then the old handler is back."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        raise Terminated(f"signal {signal.Signals(signum).name}")

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def log_line(message: str, quiet: bool) -> None:
    """One line on stdout. A reader that went away (`| head`) does not stop the run: later lines
    go nowhere."""
    if quiet:
        return
    try:
        tqdm.write(message)
        sys.stdout.flush()
    except BrokenPipeError:
        silence_stdout()


def silence_stdout() -> None:
    """Point stdout at the null device (after a broken pipe): later writes and exit flush pass."""
    import os
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


@dataclass
class Loop:
    """What the steps of one training session share."""

    optimizer: torch.optim.Optimizer
    state: TrainState
    metrics: list[dict[str, Any]]
    meta: dict[str, Any]
    val: list
    counts: dict[str, int]
    keep_steps: set[int]
    segment_start: float = 0.0
    segment_tokens0: int = 0
    wall_before: float = 0.0
    # False while an update or an evaluation is half done: an interrupt then saves nothing, and the
    # run resumes from its last checkpoint on disk (saving mid-update would apply a step twice)
    settled: bool = True


class Trainer:
    """Trains one `RunConfig` into its run directory. Use `run()`.

    The config is resolved here (`lab.resolve.resolve`, idempotent, on a copy: the caller's
    object is never changed), so a config planned and resolved before lands in the directory
    named by its own `run_name()`.

    Subclass hooks (used by finetuning): `init_model` to load weights, `before_step` to
    change what trains (freezing, loss weights), `extra_metrics` to log more at each eval.
    """

    def __init__(self, config: RunConfig, root: Path | str = "runs", device: str = "auto",
                 quiet: bool = False) -> None:
        self.root = Path(root)
        self.config, self.task = resolve(config, self.root / config.experiment)
        self.device = resolve_device(device)
        self.dp = distributed.setup(self.device)  # data-parallel under torchrun, else one process
        self.device = self.dp.device
        self.quiet = quiet or not self.dp.is_main
        self.progress = True  # a progress bar on a terminal (`lab.run --quiet` turns it off)
        self._check_early_stop_metric()
        self.run_dir, self.status = self._prepare_dir()
        if self.status == Status.COMPLETE:
            verify_checksums(self.run_dir)  # a corrupt complete run is not "complete already"
        self.model: MTPTransformer | None = None
        self.tracker = NoTracker()  # until the run starts (`_start_or_resume`)

    def _check_early_stop_metric(self) -> None:
        """Refuse an `early_stop_on` the task does not report, before anything is written (one
        validation example scored by an untrained model of the run's shape names the metrics)."""
        name = self.config.train.early_stop_on
        if not name:
            return
        model = MTPTransformer(self.config.model).eval()
        known = self.task.evaluate(ModelPredictor(model, torch.device("cpu")), max_examples=1,
                                   split="val")
        if name not in known:
            raise ConfigError(f"train.early_stop_on={name!r} is not a validation metric of task "
                              f"{self.config.task!r}; it has: {', '.join(sorted(known))}")

    def _prepare_dir(self) -> tuple[Path, Status]:
        return runs.prepare_run_dir(self.root, self.config.experiment, self.config.run_name(),
                                    self.config.to_dict())

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

    def build_model(self) -> MTPTransformer:
        """The run's model before any weights are loaded (a recipe adds its own parts)."""
        return MTPTransformer(self.config.model)

    def forward_backward(self, model: MTPTransformer, inputs: torch.Tensor,
                         targets: list[torch.Tensor],
                         weights: list[float] | None):
        """One step's forward and backward (a recipe replaces the objective)."""
        return self.dp.forward_backward(model, inputs, targets,
                                        self.config.train.efficient_backward, weights)

    # ----- the loop -----
    def evaluate(self, max_examples: int | None) -> dict[str, float]:
        """The task's metrics on its validation set (`val/...`, which selection reads) and its test
        set (`eval/...`, which is reported)."""
        predictor = ModelPredictor(self.model, self.device)
        out = {}
        for split, prefix in (("val", SELECT_PREFIX), ("test", REPORT_PREFIX)):
            metrics = self.task.evaluate(predictor, max_examples=max_examples or None, split=split)
            out.update({f"{prefix}{k}": float(v) for k, v in metrics.items()})
        return out

    def run(self) -> dict[str, Any]:
        """Train (or resume, or skip a complete run) and return the summary.

        Raises `runs.RunLocked` if another process is training this run right now.
        """
        if self.status != Status.COMPLETE:
            with self.dp.run_lock(self.run_dir):
                # Another process may have finished or advanced the run before we got the lock.
                self.run_dir, self.status = self._prepare_dir()
                self.dp.barrier()
                if self.status != Status.COMPLETE:
                    return self._train()
        log_line(f"complete already: {self.run_dir}", self.quiet)
        return runs.read_json(self.run_dir / runs.SUMMARY)

    def _train(self) -> dict[str, Any]:
        """Start or resume, catch up an interrupted evaluation, step to the end, finish.

        An interrupt at any point marks the run `interrupted`; it saves a checkpoint only once this
        segment has stepped (before that, the checkpoint on disk, or none, is already where to
        resume)."""
        loop, first_step, bar = None, None, tqdm(disable=True)
        try:
            with terminate_as_interrupt():
                loop = self._start_or_resume()
                first_step = loop.state.step
                self._catch_up_eval(loop)
                bar = tqdm(total=self.config.train.steps, initial=loop.state.step,
                           disable=not self._show_bar(), unit="step", dynamic_ncols=True)
                while loop.state.step < self.config.train.steps and not loop.state.stopped_early:
                    loss, tok_s = self._step(loop)
                    bar.update(1)
                    bar.set_postfix(loss=f"{loss:.3f}", tok_s=f"{tok_s:,.0f}", refresh=False)
                    self._maybe_eval(loop, tok_s)
        except KeyboardInterrupt as e:
            bar.close()
            if loop is not None and loop.state.step != first_step and loop.settled:
                self._save(loop)
            signal_name = str(e) if isinstance(e, Terminated) else "SIGINT"
            self._set_status(loop, Status.INTERRUPTED, interrupted_at=runs.now(),
                             interrupted_by=signal_name)
            raise
        except Exception as e:
            bar.close()
            self._record_failure(loop, e)
            raise
        finally:
            self.tracker.close()
        bar.close()
        return self._finish(loop)

    def _show_bar(self) -> bool:
        """A progress bar only on a terminal: piped or logged output gets no bar frames."""
        return not self.quiet and self.progress and sys.stderr.isatty()

    def _record_failure(self, loop: Loop | None, error: BaseException) -> None:
        """Status `failed` with the one-line error in meta.json, the traceback in `traceback.txt`.
        Best effort: on a full disk the error itself is what the user sees."""
        text = str(error) if isinstance(error, Diverged) else f"{type(error).__name__}: {error}"
        with contextlib.suppress(OSError):
            trace = "".join(traceback.format_exception(type(error), error, error.__traceback__))
            runs.atomic_write(self.run_dir / runs.TRACEBACK, lambda f: f.write(trace))
        with contextlib.suppress(OSError):
            self._set_status(loop, Status.FAILED, error=text, ended=runs.now())

    def _start_or_resume(self) -> Loop:
        """Build model and optimizer; load the checkpoint of an incomplete run, or start a fresh
        one. Marks the run `running`, compiles if asked, and opens the live-curve tracker."""
        cfg = self.config
        torch.manual_seed(cfg.seed)
        self.model = model = self.build_model().to(self.device)
        optimizer = self.make_optimizer(model)
        ckpt_path = self.run_dir / runs.CHECKPOINT
        if self.status == Status.INCOMPLETE and ckpt_path.exists():
            ckpt = load_checkpoint(ckpt_path, self.device)  # a CheckpointError names a corrupt file
            model.load_state_dict(ckpt["model"])
            optimizer.load_state_dict(ckpt["optimizer"])
            state = TrainState(**ckpt["state"])
            torch.set_rng_state(ckpt["torch_rng"].cpu())
            metrics = [r for r in runs.read_jsonl(self.run_dir / runs.METRICS) if r["step"] <= state.step]
            meta = runs.read_meta(self.run_dir) or {"started": runs.now(), "git": runs.git_state(),
                                                    "versions": runs.environment()}
            meta.setdefault("resumed_at", []).append({"step": state.step, "time": runs.now()})
            log_line(f"resuming {self.run_dir} at step {state.step}", self.quiet)
        else:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            runs.write_json(self.run_dir / runs.CONFIG, cfg.to_dict())
            state, metrics = TrainState(), []
            meta = {"started": runs.now(), "git": runs.git_state(), "versions": runs.environment()}
            self.init_model(model)
        meta.update({"status": Status.RUNNING, "device": str(self.device),
                     "processes": self.dp.world, "error": None,
                     "log": cfg.train.log})
        runs.write_json(self.run_dir / runs.META, meta)
        runs.write_jsonl(self.run_dir / runs.METRICS, metrics)
        # after any weight loading or head surgery; checkpoints are unaffected
        if cfg.train.compile:
            model.compile_blocks()
        counts = model.param_counts()
        log_line(f"run {self.run_dir}\nparameters: trunk {counts['trunk']:,}  heads "
                 f"{counts['heads']:,}  embeddings {counts['embedding']:,}  non-embedding "
                 f"{counts['non_embedding']:,}  total {counts['total']:,}", self.quiet)
        if self.dp.is_main:
            self.tracker = make_tracker(cfg.train.log, self.run_dir, cfg.to_dict())
        model.train()
        keep_steps = {max(1, round(f * cfg.train.steps)) for f in cfg.train.keep_checkpoints or []}
        return Loop(optimizer, state, metrics, meta, validation_batches(self.task, cfg), counts,
                    keep_steps,
                    segment_start=time.perf_counter(), segment_tokens0=state.tokens,
                    wall_before=state.wall_s)

    def _catch_up_eval(self, loop: Loop) -> None:
        """The step-0 evaluation if asked, and an evaluation a kill interrupted (as the
        uninterrupted run did it)."""
        t, state, metrics = self.config.train, loop.state, loop.metrics
        if t.eval_at_start and state.step == 0 and not metrics:
            self._log_eval(metrics, state, loop.val, t.eval_examples, 0.0, 0.0)
        due = state.step and (state.step % t.eval_every == 0 or state.step == t.steps)
        if due and (not metrics or metrics[-1]["step"] != state.step):
            cap = t.final_eval_examples if state.step == t.steps else t.eval_examples
            self._log_eval(metrics, state, loop.val, cap, 0.0, lr_at(state.step - 1, self.config))
            self._save(loop)

    def _step(self, loop: Loop) -> tuple[float, float]:
        """One optimizer update on the batch of this step; returns its loss and the tokens/s so
        far."""
        cfg, state, model = self.config, loop.state, self.model
        step = state.step
        weights = self.before_step(step)
        batch = self.task.sample_batch(np.random.default_rng([cfg.seed, step]),
                                       cfg.train.batch_size)
        inputs, targets = batch_tensors(batch, self.device, cfg.model.n_future)
        for group in loop.optimizer.param_groups:
            group["lr"] = lr_at(step, cfg) * group.get("lr_scale", 1.0)
        with autocast(self.device):
            result = self.forward_backward(model, inputs, targets, weights)
        if cfg.train.grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.train.grad_clip)
        loop.settled = False
        loop.optimizer.step()
        loop.optimizer.zero_grad(set_to_none=True)
        state.step += 1
        state.tokens += inputs.numel()
        state.loss_sum += result.loss
        state.loss_steps += 1
        loop.settled = True
        elapsed = time.perf_counter() - loop.segment_start
        state.wall_s = loop.wall_before + elapsed
        if not math.isfinite(result.loss):
            raise Diverged(f"diverged at step {state.step}: training loss is {result.loss}")
        return result.loss, (state.tokens - loop.segment_tokens0) / max(1e-9, elapsed)

    def _maybe_eval(self, loop: Loop, tok_s: float) -> None:
        """Evaluate and checkpoint when due; checkpoint on the checkpoint cadence; keep asked-for
        copies."""
        t, state = self.config.train, loop.state
        last = state.step == t.steps
        if state.step % t.eval_every == 0 or last:
            cap = t.final_eval_examples if last else t.eval_examples
            loop.settled = False
            self._log_eval(loop.metrics, state, loop.val, cap, tok_s,
                           lr_at(state.step - 1, self.config))
            self._save(loop)
            loop.settled = True
        elif state.step % t.checkpoint_every == 0:
            self._save(loop)
        if state.step in loop.keep_steps:
            self._save(loop, self.run_dir / f"checkpoint-step{state.step}.pt")

    def _finish(self, loop: Loop) -> dict[str, Any]:
        """Write the summary and mark the run complete."""
        summary = self._summary(loop.metrics, loop.state, loop.counts)
        runs.write_json(self.run_dir / runs.SUMMARY, summary)
        write_checksums(self.run_dir)
        self._set_status(loop, Status.COMPLETE, ended=runs.now())
        return summary

    def _save(self, loop: Loop, path: Path | None = None) -> None:
        save_checkpoint(path or self.run_dir / runs.CHECKPOINT, self.model, loop.optimizer,
                        loop.state, self.config)

    def _set_status(self, loop: Loop | None, status: Status, **fields: Any) -> None:
        """Record the run's status in meta.json. Without `loop` (the run stopped while starting),
        an interrupt changes only a meta.json that already says `running` (one from an earlier
        segment is left as it is); a failure (e.g. a corrupt checkpoint on resume) is recorded."""
        path = self.run_dir / runs.META
        if loop is not None:
            meta = loop.meta
        else:
            try:
                meta = runs.read_meta(self.run_dir)
            except ConfigError:
                meta = {}
            if status != Status.FAILED and meta.get("status") != Status.RUNNING:
                return
            if not self.run_dir.is_dir():
                return
        meta.update({"status": status, **fields})
        runs.write_json(path, meta)

    def _log_eval(self, metrics: list[dict[str, Any]], state: TrainState, val: list, cap: int,
                  tok_s: float,
                  lr: float) -> None:
        """Evaluate, append the row to metrics.jsonl (atomically) and update the best step."""
        row = {"step": state.step, "tokens": state.tokens, "wall_s": round(state.wall_s, 3),
               "tokens_per_s": round(tok_s, 1), "lr": lr}
        if state.loss_steps:
            row["train/loss"] = state.loss_sum / state.loss_steps
        row.update(head_metrics(self.model, val, self.device))
        if self.config.train.log_mechanism:
            n = self.config.model.n_future
            row.update(alignment.gradient_alignment(self.model,
                                                    [batch_tensors(b, self.device,
                                                                   n) for b in val]))
            probe = self.task.copy_probe(interp.COPY_PROBE_SEQUENCES)
            if probe is not None:
                row.update(interp.copy_attention(self.model, *probe, self.device))
        row.update(interp.induction_scores(self.model, self.task.vocab_size, self.device))
        row.update(self.evaluate(cap))
        row.update(self.extra_metrics(state.step))
        metrics.append(row)
        self.tracker.log(row)
        state.loss_sum, state.loss_steps = 0.0, 0
        self._track_best(state, row)
        runs.write_jsonl(self.run_dir / runs.METRICS, metrics)
        val, test = (prefix + self.task.primary_metric for prefix in (SELECT_PREFIX, REPORT_PREFIX))
        log_line(f"step {state.step}: train/loss {row.get('train/loss', float('nan')):.4f}  "
                 "head1/acc "
                 f"{row['head1/acc']:.3f}  {val} {row.get(val, float('nan')):.4f}  "
                 f"{test} {row.get(test, float('nan')):.4f}", self.quiet)

    def _track_best(self, state: TrainState, row: dict[str, float]) -> None:
        """Best step and early stopping read validation metrics only. The best step is the one with
        the highest primary metric. A run stops once the primary metric reaches `stop_at` (the
        capability has formed, so the rest of the budget would measure nothing new), or after
        `early_stop_patience` evaluations without a new best of `early_stop_on` (default: the
        primary metric) by more than `early_stop_min_delta`: gains below it, however many, do not
        reset the patience. A graded `early_stop_on` (a loss or NLL, lower is better) keeps a run
        going through a plateau of an all-or-nothing metric, where the metric stays at 0 while the
        capability is still forming. The step-0 evaluation (a finetuning run's checkpoint before any
        update) is never a candidate: a finetuned run's best step is one it trained to, even when no
        evaluation beats step 0."""
        value = row.get(SELECT_PREFIX + self.task.primary_metric)
        if value is None or math.isnan(value) or row.get("step") == 0:
            return
        if self.config.train.stop_at and value >= self.config.train.stop_at:
            state.stopped_early = True
        delta = self.config.train.early_stop_min_delta
        improved = value > state.best_value + delta
        if value > state.best_value:
            state.best_value, state.best_step = value, row["step"]
        if self.config.train.early_stop_on:
            improved = self._stop_metric_improved(state, row)
        state.evals_since_best = 0 if improved else state.evals_since_best + 1
        patience = self.config.train.early_stop_patience
        if patience and state.evals_since_best >= patience:
            state.stopped_early = True

    def _stop_metric_improved(self, state: TrainState, row: dict[str, float]) -> bool:
        """Whether `train.early_stop_on` beat its best so far by more than `early_stop_min_delta` in
        this evaluation row (the best so far follows every gain, counted or not)."""
        name = self.config.train.early_stop_on
        value = row.get(SELECT_PREFIX + name, math.nan)  # a known name (`_check_early_stop_metric`)
        signed = value if name.endswith(("nll", "loss")) else -value
        if math.isnan(signed) or signed >= state.stop_best:
            return False
        improved = signed < state.stop_best - self.config.train.early_stop_min_delta
        state.stop_best = signed
        return improved

    def _summary(self, metrics: list[dict[str, Any]], state: TrainState,
                 counts: dict[str, int]) -> dict[str, Any]:
        final = metrics[-1] if metrics else {}
        best = next((r for r in metrics if r["step"] == state.best_step), final)
        return {
            "run_dir": str(self.run_dir),
            "primary_metric": f"eval/{self.task.primary_metric}",
            # `best` is the row of the step chosen on it
            "selected_on": SELECT_PREFIX + self.task.primary_metric,
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


def train(config: RunConfig, root: Path | str = "runs", device: str = "auto",
          quiet: bool = False) -> dict[str, Any]:
    """Train one run (see `Trainer`). Returns the summary."""
    return Trainer(config, root, device, quiet).run()
