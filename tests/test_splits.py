"""Validation and test sets: drawn alike, disjoint, fixed, and scored through `split=`."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tasks import ConfigError, build_task
from tasks.base import TeacherForced, rows_not_in
from tasks.polynomial import _padded

SMALL = {
    "induction": {"eval_stories": 64},
    "polynomial": {"eval_size": 300, "eval_ops": 3, "max_ops": 2},
    "graph": {"eval_graphs": 200, "train_graphs": 500},
}


def split_rows(task, split: str) -> np.ndarray:
    """Every evaluation row of `split`, padded to the task's length (so rows compare as sequences)."""
    if task.name == "induction":
        return task.eval_stories(split).tokens
    if task.name == "graph":
        return task.eval_tokens(split)
    return np.concatenate([_padded(task.eval_set(m, split).tokens, task.seq_len)
                           for m in range(1, task.config.eval_ops + 1)])


@pytest.mark.parametrize("name", sorted(SMALL))
def test_validation_and_test_sets_are_disjoint_same_size_and_fixed(name: str) -> None:
    task = build_task(name, SMALL[name])
    val, test = split_rows(task, "val"), split_rows(task, "test")
    assert val.shape == test.shape
    assert rows_not_in(val, test).all(), "a validation row also occurs in the test set"
    assert rows_not_in(val, np.empty((0, val.shape[1]), dtype=np.int64)).all(), "validation repeats a row"
    again = build_task(name, SMALL[name])
    assert np.array_equal(split_rows(again, "val"), val)
    assert np.array_equal(split_rows(again, "test"), test)


def test_polynomial_validation_avoids_test_expressions_even_where_collisions_are_likely() -> None:
    # One-operation expressions: about 3% of 2000 draws repeat a test expression by chance.
    task = build_task("polynomial", {"eval_size": 2000, "eval_ops": 1, "max_ops": 1})
    val, test = split_rows(task, "val"), split_rows(task, "test")
    naive = _padded(task._eval_chunk([task.config.eval_seed, 1, 0, 1], 1).tokens, task.seq_len)
    assert not rows_not_in(naive, test).all(), "the check below would be vacuous"
    assert rows_not_in(val, test).all() and len(val) == 2000


def test_graph_validation_excludes_the_fixed_training_graphs() -> None:
    task = build_task("graph", {"degree": 2, "path_len": 3, "num_nodes": 6, "eval_graphs": 50,
                                "train_graphs": 300})
    val = task.eval_tokens("val")
    assert rows_not_in(val, task.train_set().astype(np.int64)).all()
    assert rows_not_in(val, task.eval_tokens("test")).all()


class Uniform:
    """A predictor that spreads its probability evenly: every nll is log V, argmax token 0."""

    n_heads = 1

    def __init__(self, vocab: int) -> None:
        self.vocab = vocab

    def teacher_forced(self, tokens, inputs=None) -> TeacherForced:
        b, length = np.asarray(tokens).shape
        return TeacherForced(np.zeros((b, length - 1, 1), dtype=np.int64),
                             np.full((b, length - 1, 1), math.log(self.vocab)))

    def greedy(self, prompts, max_new_tokens: int) -> np.ndarray:
        return np.zeros((len(prompts), max_new_tokens), dtype=np.int64)

    def parallel(self, prompts) -> np.ndarray:
        return np.zeros((len(prompts), 1), dtype=np.int64)


@pytest.mark.parametrize("name,graded", [("induction", "second_token_nll"), ("polynomial", "answer_nll"),
                                         ("graph", "path_nll")])
def test_both_splits_score_with_the_graded_likelihood(name: str, graded: str) -> None:
    task = build_task(name, SMALL[name])
    for split in ("val", "test"):
        metrics = task.evaluate(Uniform(task.vocab_size), max_examples=40, split=split)
        assert metrics[graded] == pytest.approx(math.log(task.vocab_size))
        assert task.primary_metric in metrics


@pytest.mark.parametrize("name", sorted(SMALL))
def test_unknown_split_is_a_config_error(name: str) -> None:
    with pytest.raises(ConfigError, match="split"):
        build_task(name, SMALL[name]).evaluate(Uniform(4), split="train")
