"""Training budgets in tokens per parameter: one option for every long-budget experiment.

Gloeckle et al. trained their small synthetic models for thousands of tokens per parameter and
Llama 2 saw about 285; a run's budget is therefore stated as `train.tokens_per_param`, and its
steps follow from it:

    steps = ceil(tokens_per_param * P / (batch_size * block_size))

where P counts the **non-embedding parameters of the size's next-token model** (n = 1: the
plain `n_layer`-block transformer of that shape) and `batch_size * block_size` the input
tokens of one step. P deliberately ignores the heads: every arm of a comparison at one size
and one ratio (n = 1, 2, 4, matched or not, any head type) trains on the same tokens, so a
difference between arms is never a difference in data.

Warm-up and evaluation cadence scale with the budget (`cadence`): warm-up is the task's, but
at most a tenth of the steps; a run evaluates about `EVALUATIONS` times and checkpoints at every
evaluation. Explicit `train.warmup_steps` / `train.eval_every` settings win.

How converged a finished run is, as a number (`doubling_slope`): the change of its validation loss
per doubling of training tokens over its last doubling (a least-squares slope against log2 tokens
of the evaluations from half its tokens on; 0 is flat, -0.1 still gains 0.1 nats per doubling).
"""

from __future__ import annotations

import copy
import math

from lab.config import ModelConfig, RunConfig
from lab.errors import ConfigError

# evaluations over a budgeted run (learning curves with enough points to fit a slope)
EVALUATIONS = 40


def next_token_params(model: ModelConfig) -> int:
    """Non-embedding parameters of the plain next-token model of `model`'s shape (n = 1)."""
    import torch  # only when a budget is resolved

    from lab.model import MTPTransformer
    plain = copy.deepcopy(model)
    plain.n_future, plain.head_type, plain.match_params, plain.detach_extra_heads = 1, "parallel", True, False
    plain.vocab_size, plain.block_size = max(plain.vocab_size, 1), max(plain.block_size, 1)
    with torch.device("meta"):
        return MTPTransformer(plain).param_counts()["non_embedding"]


def budget_steps(config: RunConfig) -> int:
    """The optimizer steps of `config`'s `train.tokens_per_param` (a resolved config: block size
    known)."""
    t = config.train
    if t.tokens_per_param <= 0:
        raise ConfigError("budget_steps needs train.tokens_per_param > 0")
    tokens = t.tokens_per_param * next_token_params(config.model)
    return max(1, math.ceil(tokens / (t.batch_size * config.model.block_size)))


def budget_tokens(config: RunConfig) -> int:
    """Input tokens a budgeted run trains on (its steps times the tokens of one step)."""
    return budget_steps(config) * config.train.batch_size * config.model.block_size


def cadence(steps: int, task_warmup: int) -> tuple[int, int]:
    """(warm-up steps, evaluation interval) of a budgeted run of `steps` steps."""
    return max(1, min(task_warmup, steps // 10)), max(1, steps // EVALUATIONS)


def doubling_slope(tokens: list[float], values: list[float]) -> float:
    """Least-squares slope of `values` against log2(`tokens`) over the last doubling (evaluations
    with at least half the last evaluation's tokens): the change per doubling of tokens at the end
    of a run. NaN with fewer than two such evaluations or no spread in tokens."""
    pairs = [(t, v) for t, v in zip(tokens, values) if t > 0 and v == v]
    if not pairs:
        return math.nan
    last = max(t for t, _ in pairs)
    xs, ys = zip(*[(math.log2(t), v) for t, v in pairs if t >= last / 2])
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    if len(xs) < 2 or sxx == 0:
        return math.nan
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx
