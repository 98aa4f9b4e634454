"""The induction task: structure of the stories, held-out names, and its metrics' oracle."""

from __future__ import annotations

import numpy as np
import pytest

from tasks import ConfigError, build_task
from tasks.base import TeacherForced
from tasks.induction import InductionTask


class CopyingPredictor:
    """A perfect inductor: predicts the second name token by copying it from the earlier mention,
    and the filler by always guessing token 0."""

    n_heads = 1

    def __init__(self, task: InductionTask) -> None:
        self.task = task

    def teacher_forced(self, tokens, inputs=None):
        c = self.task.config
        B, L = tokens.shape
        pred = np.zeros((B, L - 1, 1), dtype=np.int64)
        for b in range(B):
            seen: dict[int, int] = {}
            for t in range(L - 1):
                tok = int(tokens[b, t])
                if c.filler_vocab <= tok < c.filler_vocab + c.name_vocab:
                    if tok in seen:
                        pred[b, t, 0] = seen[tok]
                    seen[tok] = int(tokens[b, t + 1])
        return TeacherForced(predictions=pred, nll=np.ones((B, L - 1, 1)))


def test_stories_are_deterministic_and_well_formed() -> None:
    task = build_task("induction")
    a = task.sample_batch(np.random.default_rng(5), 16)
    b = task.sample_batch(np.random.default_rng(5), 16)
    assert np.array_equal(a.tokens, b.tokens)
    assert a.tokens.shape == (16, task.seq_len) and a.loss_mask.all()
    assert a.tokens.min() >= 0 and a.tokens.max() < task.vocab_size
    c = task.config
    first = (a.tokens >= c.filler_vocab) & (a.tokens < c.filler_vocab + c.name_vocab)
    second = a.tokens >= c.filler_vocab + c.name_vocab
    assert (first.sum(1) == c.characters * c.mentions).all()
    # every first-name token is immediately followed by a second-name token
    assert np.array_equal(np.roll(first, 1, axis=1), second)
    # a character keeps its name: the same first token is always followed by the same second token
    for row, is_first in zip(a.tokens, first):
        pairs = {(int(row[t]), int(row[t + 1])) for t in np.flatnonzero(is_first)}
        assert len({p[0] for p in pairs}) == len(pairs) == c.characters


def test_evaluation_names_never_appear_in_training() -> None:
    task = build_task("induction")
    c = task.config
    train = task.sample_batch(np.random.default_rng(0), 512).tokens
    ev = task.eval_stories().tokens

    def pairs(tokens):
        first = (tokens >= c.filler_vocab) & (tokens < c.filler_vocab + c.name_vocab)
        rows, cols = np.nonzero(first)
        return set(zip(tokens[rows, cols].tolist(), tokens[rows, cols + 1].tolist()))

    assert pairs(train).isdisjoint(pairs(ev))
    assert np.array_equal(ev, build_task("induction").eval_stories().tokens)  # fixed across instances


def test_perfect_inductor_scores_one_and_first_mentions_stay_near_chance() -> None:
    task = build_task("induction", {"eval_stories": 64})
    metrics = task.evaluate(CopyingPredictor(task))
    assert metrics["second_token_acc"] == 1.0
    assert metrics["second_token_acc_first_mention"] < 0.1


def test_filler_is_learnable_but_not_deterministic() -> None:
    task = build_task("induction")
    cdf = task._cdf
    top = np.diff(np.concatenate([np.zeros((cdf.shape[0], 1)), cdf], axis=1), axis=1).max(axis=1)
    assert 0.1 < top.mean() < 0.9


def test_induction_rich_sequences_repeat_a_segment() -> None:
    task = build_task("induction", {"induction_rich": 1.0, "seq_len": 64})
    tokens = task.sample_batch(np.random.default_rng(1), 8).tokens
    seg = 16
    for row in tokens:
        windows = {tuple(row[i:i + seg]) for i in range(len(row) - seg + 1)}
        assert len(windows) < len(row) - seg + 1  # some 16-token window occurs twice


@pytest.mark.parametrize("overrides,needle", [
    ({"seq_len": 0}, "seq_len"),
    ({"mentions": 100}, "do not fit"),
    ({"induction_rich": 1.5}, "induction_rich"),
    ({"characters": 0}, "characters"),
])
def test_bad_configs_raise(overrides: dict, needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        build_task("induction", overrides)
