"""The mixture task (tasks/mixture.py): weights, one shared vocabulary, per-domain metrics, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from tasks import ConfigError, build_task
from tasks.base import TeacherForced

KNOBS = "induction.seq_len=64,polynomial.max_ops=1,polynomial.eval_ops=1,polynomial.eval_size=20"


def mixture(components: str = "induction:0.9,polynomial:0.1", **kw):
    return build_task("mixture", {"components": components, "knobs": KNOBS, **kw})


def test_vocabulary_and_context_are_the_largest_components():
    task = mixture()
    parts = task.parts
    assert task.vocab_size == max(p.vocab_size for p in parts.values())
    assert task.seq_len == max(p.seq_len for p in parts.values()) == 64
    assert task.primary_metric == "polynomial/exact_match/in_domain"


def test_rows_follow_the_weights_and_are_deterministic():
    task = mixture()
    a = task.sample_batch(np.random.default_rng(3), 4000)
    b = task.sample_batch(np.random.default_rng(3), 4000)
    assert np.array_equal(a.tokens, b.tokens) and np.array_equal(a.loss_mask, b.loss_mask)
    # polynomial rows are short: their targets end long before the induction stories' (64 tokens)
    short = a.loss_mask[:, 30:].sum(axis=1) == 0
    assert abs(short.mean() - 0.1) < 0.02


def test_zero_weight_component_never_trains_but_is_still_evaluated():
    task = mixture("induction:0,polynomial:1")
    batch = task.sample_batch(np.random.default_rng(0), 256)
    assert batch.loss_mask[:, 30:].sum() == 0  # no induction story among 256 rows
    assert batch.tokens.shape[1] < 64  # padded to the batch's own width, not the context


class Uniform:
    """A predictor that knows nothing: uniform NLL log V, argmax token 0."""

    n_heads = 1

    def __init__(self, vocab: int) -> None:
        self.vocab = vocab

    def teacher_forced(self, tokens, inputs=None):
        b, length = tokens.shape
        return TeacherForced(np.zeros((b, length - 1, 1), dtype=np.int64),
                             np.full((b, length - 1, 1), np.log(self.vocab)))

    def greedy(self, prompts, max_new_tokens):
        return np.zeros((len(prompts), max_new_tokens), dtype=np.int64)

    def parallel(self, prompts):
        return np.zeros((len(prompts), 1), dtype=np.int64)


def test_every_component_reports_its_metrics_and_domain_loss():
    task = mixture()
    metrics = task.evaluate(Uniform(task.vocab_size), max_examples=8, split="val")
    assert "induction/second_token_acc" in metrics and "polynomial/exact_match/in_domain" in metrics
    for name in ("induction", "polynomial"):
        assert metrics[f"{name}/nll"] == pytest.approx(np.log(task.vocab_size))


def test_the_analysis_reads_the_targets_graded_measure_which_evaluation_logs():
    """Figures and floor fallbacks read a mixture run's graded measure: its target component's."""
    from lab.analysis import evidence
    task = mixture()
    metrics = task.evaluate(Uniform(task.vocab_size), max_examples=8, split="val")
    assert evidence.graded_metric("mixture") == "polynomial/answer_nll" in metrics
    assert evidence.graded_metric("polynomial") == "answer_nll"
    assert evidence.primary_metric("mixture") in metrics


@pytest.mark.parametrize("knobs", [
    {"components": "induction"}, {"components": "nosuch:1"}, {"components": "induction:-1"},
    {"components": "induction:0,polynomial:0"}, {"knobs": "polynomial.nosuch=3"},
    {"knobs": "graph.degree=2"}, {"target": "graph"},
])
def test_bad_knobs_are_one_clear_error(knobs):
    config = {"components": "induction:0.9,polynomial:0.1", "knobs": KNOBS, **knobs}
    with pytest.raises(ConfigError):
        build_task("mixture", config)


def test_knobs_parse_as_the_command_line_parses_them():
    """Optional values, and lists inside brackets, read as `--set` reads them (`lab.values.convert`)."""
    from lab.values import split_top_level
    task = build_task("mixture", {"components": "graph:1,polynomial:0", "target": "polynomial",
                                  "knobs": "graph.eval_file=none,graph.eval_graphs=50,polynomial.eval_size=20"})
    assert task.parts["graph"].config.eval_file is None and task.parts["graph"].config.eval_graphs == 50
    assert split_top_level("a.x=[1,2],b.y=3") == ["a.x=[1,2]", "b.y=3"]
    with pytest.raises(ConfigError, match="graph.eval_graphs expects int"):
        build_task("mixture", {"components": "graph:1", "knobs": "graph.eval_graphs=many", "target": "graph"})
