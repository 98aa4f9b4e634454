"""Shared machinery of the training benchmarks: models, one training step, timing, memory, FLOPs.

- `ReferenceGPT`: a plain next-token transformer written the way nanoGPT's model is, with
  nothing from `lab.model`, so the lab's n=1 step can be compared with a known-good baseline.
- `lab_case` / `reference_case`: one full training step (forward, backward, gradient
  clipping, AdamW, zero_grad) on a fixed batch already on the device, so data generation
  is not timed (benchmarks/generators.py measures it).
- `time_cases`: interleaved timing (every case runs a block of steps, then the next case;
  several rounds; the median of the rounds), so load drifting on a shared machine hits all
  cases alike. On a GPU each block is timed between two synchronisations and nothing inside
  the step synchronises. On a CPU the clock is the process's CPU time by default, which
  other processes on a shared machine barely disturb (the benchmarks run one torch thread).
- `peak_step_memory`: bytes allocated above what was live before one step, at the step's
  peak. On CUDA from `torch.cuda.max_memory_allocated`; on a CPU from the allocation and
  free events of `torch.profiler` (profile_memory=True), summed in time order.
- `train_flops_per_token`: model FLOPs per token for MFU, PaLM's convention (appendix B):
  6 x matmul parameters (blocks and every head's unembedding) + 12 x layers x d x context
  for attention (the full T x T score matrix, as PaLM and nanoGPT count it).
"""

from __future__ import annotations

import math
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # runnable without installing

from lab.config import SIZES, ModelConfig, RunConfig  # noqa: E402
from lab.device import autocast  # noqa: E402,F401  (bf16 on CUDA, as the training loop runs)
from lab.model import MTPTransformer  # noqa: E402
from lab.objective import forward_backward, head_targets  # noqa: E402
from lab.train import make_optimizer  # noqa: E402

# Dense bf16 tensor-core peaks from the vendors' datasheets (FLOP/s), for MFU on a GPU.
GPU_PEAK_BF16 = {"H100": 989e12, "H200": 989e12, "A100": 312e12, "L4": 121e12, "A10": 125e12}


# ----- the reference model: a plain next-token transformer, nanoGPT-style -----
class RefAttention(nn.Module):
    def __init__(self, d: int, n_head: int) -> None:
        super().__init__()
        self.n_head = n_head
        self.c_attn = nn.Linear(d, 3 * d, bias=False)
        self.c_proj = nn.Linear(d, d, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(C, dim=2)
        q = q.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        k = k.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        v = v.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.c_proj(y.transpose(1, 2).contiguous().view(B, T, C))


class RefBlock(nn.Module):
    def __init__(self, d: int, n_head: int) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(d, bias=False)
        self.attn = RefAttention(d, n_head)
        self.ln_2 = nn.LayerNorm(d, bias=False)
        self.c_fc = nn.Linear(d, 4 * d, bias=False)
        self.c_proj = nn.Linear(4 * d, d, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))
        return x + self.c_proj(F.gelu(self.c_fc(self.ln_2(x))))


class ReferenceGPT(nn.Module):
    """Token and position embeddings, `n_layer` pre-norm blocks, final norm, untied unembedding."""

    def __init__(self, d: int, n_layer: int, n_head: int, vocab_size: int, block_size: int) -> None:
        super().__init__()
        self.wte = nn.Embedding(vocab_size, d)
        self.wpe = nn.Embedding(block_size, d)
        self.h = nn.ModuleList([RefBlock(d, n_head) for _ in range(n_layer)])
        self.ln_f = nn.LayerNorm(d, bias=False)
        self.lm_head = nn.Linear(d, vocab_size, bias=False)
        for p in self.parameters():
            if p.dim() == 2:
                nn.init.normal_(p, std=0.02)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Mean next-token cross-entropy; targets use -100 for positions that do not count."""
        x = self.wte(idx) + self.wpe(torch.arange(idx.shape[1], device=idx.device))
        for block in self.h:
            x = block(x)
        logits = self.lm_head(self.ln_f(x))
        return F.cross_entropy(logits.view(-1, logits.shape[-1]).float(), targets.view(-1), ignore_index=-100)


# ----- one training step -----
@dataclass
class Case:
    """One thing to time: a closure running one full training step, and what it computes."""

    name: str
    step: Callable[[], None]
    tokens: int  # input tokens per step
    flops: float  # model FLOPs per step (see train_flops_per_token)
    params: int  # total parameters
    n: int = 1  # output heads
    backward: str = "plain"  # "efficient" or "plain" (the lab), "single" (the reference's one graph)


def train_flops_per_token(d: int, n_layer: int, vocab: int, context: int, n_heads: int = 1,
                          mlp_ratio: int = 4) -> float:
    """Model FLOPs of one training token (forward and backward), PaLM's convention."""
    matmul_params = n_layer * (4 + 2 * mlp_ratio) * d * d + n_heads * d * vocab
    return 6.0 * matmul_params + 12.0 * n_layer * d * context


def batch(vocab: int, batch_size: int, context: int, device: torch.device, seed: int = 0) -> torch.Tensor:
    """Random tokens `(B, context + 1)`: what a task batch looks like to the model."""
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, vocab, (batch_size, context + 1), generator=g).to(device)


def lab_case(size: str, n: int, efficient: bool, vocab: int, batch_size: int, context: int,
             device: torch.device, compile: bool = False, name: str | None = None) -> Case:
    """The lab's training step: `forward_backward`, clipping and AdamW, as `lab.train` runs it."""
    d, n_layer, n_head = SIZES[size]
    torch.manual_seed(0)
    model = MTPTransformer(ModelConfig(d_model=d, n_layer=n_layer, n_head=n_head, n_future=n,
                                       vocab_size=vocab, block_size=context)).to(device)
    if compile:
        model.compile_blocks()
    optimizer = make_optimizer(model, RunConfig())
    tokens = batch(vocab, batch_size, context, device)
    inputs = tokens[:, :-1].contiguous()
    targets = head_targets(tokens, torch.ones_like(tokens, dtype=torch.bool), n)

    def step() -> None:
        with autocast(device):
            forward_backward(model, inputs, targets, efficient)
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    backward = "efficient" if efficient else "plain"
    flops = train_flops_per_token(d, n_layer, vocab, context, n) * inputs.numel()
    return Case(name or f"n={n} {backward}", step, inputs.numel(), flops, sum(p.numel() for p in model.parameters()),
                n, backward)


def reference_case(size: str, vocab: int, batch_size: int, context: int, device: torch.device,
                   compile: bool = False) -> Case:
    """The reference transformer's training step, with the same optimizer and clipping."""
    d, n_layer, n_head = SIZES[size]
    torch.manual_seed(0)
    model = ReferenceGPT(d, n_layer, n_head, vocab, context).to(device)
    loss_fn = torch.compile(model) if compile else model
    optimizer = make_optimizer(model, RunConfig())
    tokens = batch(vocab, batch_size, context, device)
    inputs, targets = tokens[:, :-1].contiguous(), tokens[:, 1:].contiguous()

    def step() -> None:
        with autocast(device):
            loss = loss_fn(inputs, targets)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    flops = train_flops_per_token(d, n_layer, vocab, context, 1) * inputs.numel()
    return Case("reference", step, inputs.numel(), flops, sum(p.numel() for p in model.parameters()), 1, "single")


# ----- measuring -----
def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def clock(device: torch.device, kind: str = "auto") -> Callable[[], float]:
    """`auto`: wall clock on accelerators, process CPU time on a CPU."""
    if kind == "wall" or (kind == "auto" and device.type != "cpu"):
        return time.perf_counter
    return time.process_time


def time_cases(cases: list[Case], steps: int, repeats: int, device: torch.device, warmup: int = 2,
               clock_kind: str = "auto") -> dict[str, list[float]]:
    """Seconds per step of each case, one entry per round; rounds interleave the cases.

    Each round runs `steps` steps of every case in turn, starting at a different case each
    round, so no case always follows the same neighbour.
    """
    now = clock(device, clock_kind)
    for case in cases:
        for _ in range(warmup):
            case.step()
    synchronize(device)
    times: dict[str, list[float]] = {c.name: [] for c in cases}
    for r in range(repeats):
        for k in range(len(cases)):
            case = cases[(r + k) % len(cases)]
            synchronize(device)
            start = now()
            for _ in range(steps):
                case.step()
            synchronize(device)
            times[case.name].append((now() - start) / steps)
    return times


def median(values: list[float]) -> float:
    return statistics.median(values) if values else math.nan


def memory_method(device: torch.device) -> str:
    if device.type == "cuda":
        return "torch.cuda.max_memory_allocated above the bytes live before the step"
    return "torch.profiler allocation/free events (profile_memory=True), peak of their running sum"


def peak_step_memory(step: Callable[[], None], device: torch.device) -> float:
    """Peak bytes allocated during one step above those live before it (see module docstring)."""
    if device.type == "cuda":
        synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        step()
        synchronize(device)
        return float(torch.cuda.max_memory_allocated(device) - before)
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        step()
    events = [e for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"]
    events.sort(key=lambda e: e.start_ns())
    live = peak = 0
    for e in events:
        live += e.nbytes()
        peak = max(peak, live)
    return float(peak)


def peak_flops(device: torch.device, seconds: float = 1.0) -> tuple[float, str]:
    """The FLOP/s that MFU divides by, and where it came from.

    GPUs: the datasheet's dense bf16 rate when the card is known, else a measured bf16
    matmul. CPUs: a measured float32 matmul (2048 x 2048) with this process's threads.
    """
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        measured = measured_matmul_flops(device, torch.bfloat16, 8192, seconds)
        for key, value in GPU_PEAK_BF16.items():
            if key in name:
                return value, f"{name} datasheet dense bf16; an 8192^3 bf16 matmul runs at {measured / 1e12:.0f} here"
        return measured, f"{name} measured 8192^3 bf16 matmul"
    rate = measured_matmul_flops(device, torch.float32, 2048, seconds)
    return rate, f"measured fp32 2048^3 matmul, {torch.get_num_threads()} thread(s)"


def measured_matmul_flops(device: torch.device, dtype: torch.dtype, n: int, seconds: float) -> float:
    """FLOP/s of repeated n x n x n matmuls on random data (median of several timings, `clock`)."""
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    torch.matmul(a, b)
    synchronize(device)
    now = clock(device)
    rates, spent = [], 0.0
    while spent < seconds or len(rates) < 3:
        start = now()
        for _ in range(3):
            torch.matmul(a, b)
        synchronize(device)
        elapsed = now() - start
        spent += elapsed
        rates.append(3 * 2 * n**3 / elapsed)
    return statistics.median(rates)


def format_table(rows: list[dict[str, object]], columns: list[str]) -> str:
    """Fixed-width text table; floats get sensible precision, missing values a dash."""
    def cell(v: object) -> str:
        if v is None or (isinstance(v, float) and math.isnan(v)):
            return "-"
        if isinstance(v, float):
            return f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.3g}" if abs(v) < 10 else f"{v:.1f}"
        return str(v)
    cells = [[cell(r.get(c)) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.rjust(w) for c, w in zip(columns, widths)),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(v.rjust(w) for v, w in zip(row, widths)) for row in cells]
    return "\n".join(lines)


def describe_machine(device: torch.device) -> str:
    """One line naming the hardware and torch build."""
    if device.type == "cuda":
        hw = torch.cuda.get_device_name(device)
    else:
        hw = "CPU"
        try:
            for line in Path("/proc/cpuinfo").read_text().splitlines():
                if line.startswith("model name"):
                    hw = line.split(":", 1)[1].strip()
                    break
        except OSError:
            pass
        hw += f", {torch.get_num_threads()} torch thread(s)"
    return f"{hw}; torch {torch.__version__}"
