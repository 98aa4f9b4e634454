"""Evaluation: the predictor the tasks score a model through, and per-head held-out metrics.

`ModelPredictor` implements `tasks.base.Predictor` (teacher-forced predictions and
likelihoods, greedy decoding, one-pass parallel predictions). `head_metrics` is each head's
teacher-forced loss and accuracy on fixed held-out batches, scored with the objective's own
per-head loss (`lab.objective.head_loss_sums`), so evaluation and training measure a head alike.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from lab.config import RunConfig
from lab.decode import greedy_decode
from lab.device import autocast
from lab.model import MTPTransformer
from lab.objective import head_loss_sums, head_targets
from tasks import Task
from tasks.base import TeacherForced


def batch_tensors(batch, device: torch.device, n_heads: int) -> tuple[torch.Tensor,
                                                                      list[torch.Tensor]]:
    """Model inputs `(B, L-1)` and per-head targets from a task batch."""
    tokens = torch.as_tensor(batch.tokens, device=device)
    mask = torch.as_tensor(batch.loss_mask, device=device)
    inputs = torch.as_tensor(batch.input_tokens[:, :-1], device=device)
    return inputs, head_targets(tokens, mask, n_heads)


def validation_batches(task: Task, config: RunConfig) -> list:
    """Fixed held-out batches from the training distribution (same for every run of a task
    config)."""
    rng = np.random.default_rng([task.config.eval_seed, 4242])
    return [task.sample_batch(rng,
                              config.train.batch_size) for _ in range(config.train.val_batches)]


@torch.no_grad()
def head_metrics(model: MTPTransformer, batches: list, device: torch.device) -> dict[str, float]:
    """Per-head teacher-forced loss and accuracy over fixed batches (`head{i}/loss`, `head{i}/acc`)."""
    was_training = model.training
    model.eval()
    n = model.config.n_future
    loss_sum, correct, count = np.zeros(n), np.zeros(n), np.zeros(n)
    for batch in batches:
        inputs, targets = batch_tensors(batch, device, n)
        with autocast(device):
            hidden = model.hidden_states(inputs)
        for i, (h, target) in enumerate(zip(hidden, targets)):
            with autocast(device):
                logits = model.unembed(h)
            sums = head_loss_sums(logits, target)
            loss_sum[i] += float(sums[0])
            correct[i] += float(sums[1])
            count[i] += float(sums[2])
    model.train(was_training)
    out = {}
    for i in range(n):
        out[f"head{i + 1}/loss"] = loss_sum[i] / max(count[i], 1)
        out[f"head{i + 1}/acc"] = correct[i] / max(count[i], 1)
    return out


class ModelPredictor:
    """Runs a model for a task's evaluation (implements `tasks.base.Predictor`)."""

    def __init__(self, model: MTPTransformer, device: torch.device, batch_size: int = 256) -> None:
        self.model = model
        self.device = device
        self.batch_size = batch_size
        self.n_heads = model.config.n_future

    def _chunks(self, n: int) -> range:
        return range(0, n, self.batch_size)

    @torch.no_grad()
    def teacher_forced(self, tokens: np.ndarray, inputs: np.ndarray | None = None) -> TeacherForced:
        was_training = self.model.training
        self.model.eval()
        inputs = tokens if inputs is None else inputs
        preds, nlls = [], []
        n = self.n_heads
        for s in self._chunks(len(tokens)):
            tok = torch.as_tensor(tokens[s:s + self.batch_size], device=self.device)
            inp = torch.as_tensor(inputs[s:s + self.batch_size, :-1], device=self.device)
            T = inp.shape[1]
            pred = torch.empty(*inp.shape, n, dtype=torch.long, device=self.device)
            nll = torch.full((*inp.shape, n), float("nan"), device=self.device)
            with autocast(self.device):
                hidden = self.model.hidden_states(inp)
            for i, h in enumerate(hidden):
                with autocast(self.device):
                    logits = self.model.unembed(h)
                logp = F.log_softmax(logits.float(), dim=-1)
                pred[:, :, i] = logp.argmax(-1)
                k = i + 1
                if k <= T:
                    target = tok[:, k:]
                    nll[:, : T - k + 1, i] = -logp[:, : T - k + 1].gather(-1,
                                                                          target[..., None])[..., 0]
            preds.append(pred.cpu().numpy())
            nlls.append(nll.cpu().numpy())
        self.model.train(was_training)
        return TeacherForced(predictions=np.concatenate(preds), nll=np.concatenate(nlls))

    @torch.no_grad()
    def greedy(self, prompts: np.ndarray, max_new_tokens: int) -> np.ndarray:
        was_training = self.model.training
        self.model.eval()
        outs = []
        for s in self._chunks(len(prompts)):
            p = torch.as_tensor(prompts[s:s + self.batch_size], device=self.device)
            outs.append(greedy_decode(self.model, p, max_new_tokens).cpu().numpy())
        self.model.train(was_training)
        return np.concatenate(outs) if outs else np.zeros((0, max_new_tokens), dtype=np.int64)

    @torch.no_grad()
    def parallel(self, prompts: np.ndarray) -> np.ndarray:
        was_training = self.model.training
        self.model.eval()
        outs = []
        for s in self._chunks(len(prompts)):
            p = torch.as_tensor(prompts[s:s + self.batch_size], device=self.device)
            with autocast(self.device):
                logits = self.model(p)[:, -1]  # (B, n, V)
            outs.append(logits.argmax(-1).cpu().numpy())
        self.model.train(was_training)
        return np.concatenate(outs)
