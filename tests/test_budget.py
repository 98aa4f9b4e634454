"""Budgets in tokens per parameter (lab/budget.py): steps, equal data across arms, cadence, bad input."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest

from lab.budget import EVALUATIONS, budget_steps, next_token_params
from lab.build import build_config
from lab.config import SIZES
from lab.errors import ConfigError
from lab.resolve import resolve


def budgeted(heads: int = 1, ratio: float = 30, size: str = "100K", **kw) -> object:
    config = build_config("induction", heads=heads, size=size, tokens_per_param=ratio,
                          overrides=["task.seq_len=64", *kw.get("overrides", [])])
    return resolve(config)[0]


def test_next_token_params_is_the_plain_models_non_embedding_count():
    d, layers, _ = SIZES["100K"]
    config = budgeted()
    # 12 d^2 per block (attention 4 d^2, MLP 8 d^2), two norms per block and the final norm, no biases
    assert next_token_params(config.model) == layers * (12 * d * d + 2 * d) + d


def test_steps_follow_the_ratio():
    config = budgeted(ratio=30)
    tokens_per_step = config.train.batch_size * config.model.block_size
    expected = math.ceil(30 * next_token_params(config.model) / tokens_per_step)
    assert config.train.steps == budget_steps(config) == expected
    assert budgeted(ratio=300).train.steps == math.ceil(300 * next_token_params(config.model) / tokens_per_step)


@pytest.mark.parametrize("overrides", [[], ["model.match_params=false"]])
def test_every_head_count_trains_on_the_same_tokens(overrides):
    steps = {budgeted(heads=n, overrides=overrides).train.steps for n in (1, 2, 4)}
    assert len(steps) == 1


def test_cadence_scales_with_the_budget_and_explicit_settings_win():
    config = budgeted(ratio=100)
    assert config.train.eval_every == config.train.steps // EVALUATIONS
    assert config.train.checkpoint_every == config.train.eval_every
    assert config.train.warmup_steps <= config.train.steps // 10
    explicit = budgeted(ratio=100, overrides=["train.eval_every=7", "train.warmup_steps=3"])
    assert (explicit.train.eval_every, explicit.train.warmup_steps) == (7, 3)


def test_budget_is_in_the_run_id_and_resolving_is_idempotent():
    a, b = budgeted(ratio=30), budgeted(ratio=100)
    assert a.run_id() != b.run_id()
    assert resolve(a)[0].to_dict() == a.to_dict()
    plain = resolve(build_config("induction", size="100K", overrides=["task.seq_len=64"]))[0]
    assert "tokens_per_param" not in plain.to_dict()["train"]  # old run ids unchanged


def test_steps_and_budget_together_are_refused():
    with pytest.raises(ConfigError, match="give one"):
        build_config("induction", size="100K", steps=10, tokens_per_param=30)


@pytest.mark.parametrize("args", [["--tokens-per-param", "3", "--steps", "5"], ["--tokens-per-param", "-2"]])
def test_cli_bad_budget_is_one_line_and_exit_2(tmp_path, args):
    out = tmp_path / "runs"
    proc = subprocess.run([sys.executable, "-m", "lab.run", "induction", "--size", "100K", "--out", str(out), *args],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not out.exists()


def test_doubling_slope_reads_the_last_doubling_only():
    from lab.budget import doubling_slope
    tokens = [2 ** k for k in range(1, 11)]
    # 0.5 nats per doubling early, 0.1 over the last doubling (512 -> 1024)
    values = [10 - 0.5 * k if k <= 9 else 10 - 0.5 * 9 - 0.1 for k in range(1, 11)]
    assert doubling_slope(tokens, values) == pytest.approx(-0.1)
    flat = [3.0] * 10
    assert doubling_slope(tokens, flat) == pytest.approx(0.0)
    assert math.isnan(doubling_slope([100], [1.0]))  # one point: no slope
    assert math.isnan(doubling_slope([], []))
