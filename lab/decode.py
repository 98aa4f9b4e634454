"""Decoding: greedy decoding with a KV cache, and the `Predictor` the tasks evaluate through.

Greedy decoding uses only the next-token head (head 1); the other heads are for training
and for self-speculative decoding.
"""

from __future__ import annotations

import contextlib

import numpy as np
import torch
import torch.nn.functional as F

from lab.model import KVCache, MTPTransformer
from tasks.base import TeacherForced


def autocast(device: torch.device) -> contextlib.AbstractContextManager:
    """bf16 autocast on CUDA; full precision elsewhere."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def new_cache(model: MTPTransformer, batch: int, capacity: int) -> KVCache:
    c = model.config
    p = next(model.parameters())
    dtype = torch.bfloat16 if p.device.type == "cuda" else p.dtype
    return KVCache(model.n_attention_layers, batch, c.n_head, capacity, c.d_model // c.n_head, p.device, dtype)


@torch.no_grad()
def greedy_decode(model: MTPTransformer, prompts: torch.Tensor, max_new_tokens: int,
                  use_cache: bool = True) -> torch.Tensor:
    """Next-token greedy continuation of equal-length prompts: `(B, P)` -> `(B, max_new_tokens)`."""
    B, P = prompts.shape
    if P + max_new_tokens - 1 > model.config.block_size:
        raise ValueError(f"prompt {P} + {max_new_tokens} new tokens exceed the context {model.config.block_size}")
    out = torch.empty(B, max_new_tokens, dtype=torch.long, device=prompts.device)
    with autocast(prompts.device):
        if not use_cache:
            seq = prompts
            for s in range(max_new_tokens):
                nxt = model(seq, heads=1)[:, -1, 0].argmax(-1)
                out[:, s] = nxt
                seq = torch.cat([seq, nxt[:, None]], dim=1)
            return out
        cache = new_cache(model, B, P + max_new_tokens)
        logits = model(prompts, heads=1, positions=torch.arange(P, device=prompts.device), cache=cache)
        cache.advance(P)
        for s in range(max_new_tokens):
            nxt = logits[:, -1, 0].argmax(-1)
            out[:, s] = nxt
            if s == max_new_tokens - 1:
                break
            logits = model(nxt[:, None], heads=1, positions=cache.lengths[:, None], cache=cache)
            cache.advance(1)
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
                    nll[:, : T - k + 1, i] = -logp[:, : T - k + 1].gather(-1, target[..., None])[..., 0]
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
