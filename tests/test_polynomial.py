"""Tests of the polynomial task: answers against an independent sympy oracle, layout, scoring."""

from __future__ import annotations

import numpy as np
import pytest
from sympy import Poly, symbols

from tasks import ConfigError, TeacherForced, build_task, task_names
from tasks import polynomial as poly
from tasks.polynomial import PolynomialConfig, PolynomialTask

X = symbols("x")
DIGITS = set(range(7))
OPS = {poly.NEG: "neg", poly.ADD: "add", poly.MUL: "mul", poly.COMP: "comp"}


# --- an independent oracle: parse the token stream, evaluate with sympy over GF(7) ---------

def _sym(coefs: list[int]) -> Poly:
    return Poly(list(reversed(coefs)), X, modulus=7)


def _trunc(p: Poly) -> Poly:
    """Drop the terms of degree >= 5 (the ideal X^5)."""
    low = [int(c) % 7 for c in reversed(p.all_coeffs())][:5]
    return _sym(low + [0] * (5 - len(low)))


def _coefs(p: Poly) -> list[int]:
    low = [int(c) % 7 for c in reversed(p.all_coeffs())]
    return (low + [0] * 5)[:5]


def _parse_eval(tokens: list[int], i: int) -> tuple[Poly, int, int]:
    """(value, next index, number of operators) of the prefix expression at tokens[i]."""
    t = tokens[i]
    if t in DIGITS:
        lit = tokens[i:i + 5]
        assert len(lit) == 5 and set(lit) <= DIGITS, f"bad literal at {i}: {lit}"
        return _sym(lit), i + 5, 0
    assert t in OPS, f"unexpected token {t} at {i}"
    a, j, na = _parse_eval(tokens, i + 1)
    if t == poly.NEG:
        return -a, j, na + 1
    b, k, nb = _parse_eval(tokens, j)
    if t == poly.ADD:
        return a + b, k, na + nb + 1
    if t == poly.MUL:
        return _trunc(a * b), k, na + nb + 1
    return _trunc(a.compose(b)), k, na + nb + 1


def _split(row: np.ndarray) -> tuple[list[int], list[int], list[int]]:
    """(question, pauses+`=`, answer incl. <end>) of one padded sequence."""
    toks = [int(t) for t in row if int(t) != poly.PAD]
    eq = toks.index(poly.EQ)
    q_end = eq
    while q_end > 0 and toks[q_end - 1] == poly.PAUSE:
        q_end -= 1
    return toks[:q_end], toks[q_end:eq + 1], toks[eq + 1:]


def _check_against_oracle(ex: poly.Expressions) -> None:
    for row, ops in zip(ex.tokens, ex.ops.tolist(), strict=True):
        question, _, answer = _split(row)
        value, end, n_ops = _parse_eval(question, 0)
        assert end == len(question), "question must be exactly one expression"
        assert n_ops == ops
        assert answer == _coefs(value) + [poly.END], poly.PolynomialTask().format_tokens(row)


def test_answers_match_sympy_oracle_on_random_expressions() -> None:
    rng = np.random.default_rng(7)
    ops = np.concatenate([rng.integers(1, 6, size=2000), np.repeat(np.arange(6, 11), 100)])
    ex = poly.generate(rng, ops)
    _check_against_oracle(ex)
    # The sample really exercises every operator, composition of compositions included.
    stream = ex.tokens.ravel().tolist()
    for op in OPS:
        assert stream.count(op) > 1000
    nested = sum(1 for row in ex.tokens.tolist()
                 if any(a == poly.COMP and b == poly.COMP for a, b in zip(row, row[1:], strict=False)))
    assert nested > 100


def _program(kind: str, depth: int) -> list[int]:
    """Prefix node codes of a composition chain of `depth` operators (right- or left-nested)."""
    if kind == "right":  # o p1 (o p2 (o p3 p4))
        nodes: list[int] = []
        for _ in range(depth):
            nodes += [poly._COMP, poly._LEAF]
        return nodes + [poly._LEAF]
    # left-nested: o (o (o p1 p2) p3) p4
    return [poly._COMP] * depth + [poly._LEAF] * (depth + 1)


@pytest.mark.parametrize("kind", ["right", "left"])
def test_composition_chains_match_sympy(kind: str) -> None:
    rng = np.random.default_rng(3)
    for depth in (1, 2, 4, 8):
        nodes = np.array([_program(kind, depth)] * 40)
        literals = rng.integers(0, 7, size=(*nodes.shape, 5))
        values = poly.evaluate_programs(nodes, literals)
        for b in range(len(nodes)):
            leaves = [literals[b, j].tolist() for j in range(nodes.shape[1]) if nodes[b, j] == poly._LEAF]
            if kind == "right":
                acc = _sym(leaves[-1])
                for p in reversed(leaves[:-1]):
                    acc = _trunc(_sym(p).compose(acc))
            else:
                acc = _sym(leaves[0])
                for q in leaves[1:]:
                    acc = _trunc(acc.compose(_sym(q)))
            assert values[b].tolist() == _coefs(acc)


def test_hand_computed_values() -> None:
    one_plus_x = np.array([1, 1, 0, 0, 0])
    x4 = np.array([0, 0, 0, 0, 1])
    assert poly.poly_compose(one_plus_x, one_plus_x).tolist() == [2, 1, 0, 0, 0]  # (x+1)+1
    assert poly.poly_mul(x4, np.array([0, 1, 0, 0, 0])).tolist() == [0] * 5  # x^5 = 0
    assert poly.poly_mul(one_plus_x, one_plus_x).tolist() == [1, 2, 1, 0, 0]
    # (x^4) o (1 + x) = (1+x)^4 = 1 + 4x + 6x^2 + 4x^3 + x^4
    assert poly.poly_compose(x4, one_plus_x).tolist() == [1, 4, 6, 4, 1]
    # (1+x)^5 truncated = 1 + 5x + 10x^2 + 10x^3 + 5x^4 = 1 + 5x + 3x^2 + 3x^3 + 5x^4 mod 7
    x5 = np.array([0, 0, 0, 0, 0])
    assert poly.poly_compose(x5, one_plus_x).tolist() == [0] * 5
    fifth = one_plus_x
    for _ in range(4):
        fifth = poly.poly_mul(fifth, one_plus_x)
    assert fifth.tolist() == [1, 5, 3, 3, 5]


def test_sample_batch_is_deterministic_given_the_seed() -> None:
    task = PolynomialTask(PolynomialConfig(pause_tokens=2))
    a = task.sample_batch(np.random.default_rng(11), 64)
    b = task.sample_batch(np.random.default_rng(11), 64)
    c = task.sample_batch(np.random.default_rng(12), 64)
    assert np.array_equal(a.tokens, b.tokens) and np.array_equal(a.loss_mask, b.loss_mask)
    assert a.tokens.shape != c.tokens.shape or not np.array_equal(a.tokens, c.tokens)


def test_training_batches_follow_the_config() -> None:
    task = PolynomialTask(PolynomialConfig(min_ops=2, max_ops=4))
    batch = task.sample_batch(np.random.default_rng(0), 600)
    assert batch.tokens.dtype == np.int64 and batch.inputs is None
    assert batch.tokens.shape[1] <= task.seq_len
    assert batch.tokens.min() >= 0 and batch.tokens.max() < task.vocab_size
    n_ops = np.isin(batch.tokens, list(OPS)).sum(axis=1)
    assert set(n_ops.tolist()) == {2, 3, 4}
    _check_against_oracle(poly.Expressions(batch.tokens, np.zeros(600), np.zeros((600, 5)), n_ops))
    assert (batch.tokens[:, -1] != poly.PAD).any(), "padded to the batch's longest sequence"


def test_loss_mask_covers_exactly_the_answer() -> None:
    task = PolynomialTask(PolynomialConfig(pause_tokens=3))
    batch = task.sample_batch(np.random.default_rng(1), 200)
    for row, mask in zip(batch.tokens.tolist(), batch.loss_mask, strict=True):
        eq = row.index(poly.EQ)
        assert np.nonzero(mask)[0].tolist() == list(range(eq + 1, eq + 7))
        assert set(row[eq + 1:eq + 6]) <= DIGITS and row[eq + 6] == poly.END
        assert all(t == poly.PAD for t in row[eq + 7:])


def test_loss_on_all_covers_every_non_pad_token_after_the_first() -> None:
    task = PolynomialTask(PolynomialConfig(loss_on="all", pause_tokens=1))
    batch = task.sample_batch(np.random.default_rng(2), 100)
    expected = batch.tokens != poly.PAD
    expected[:, 0] = False
    assert np.array_equal(batch.loss_mask, expected)


@pytest.mark.parametrize("pauses", [0, 1, 5])
def test_pause_tokens_sit_between_question_and_equals(pauses: int) -> None:
    task = PolynomialTask(PolynomialConfig(pause_tokens=pauses, eval_size=30, eval_ops=6))
    rows = list(task.sample_batch(np.random.default_rng(4), 100).tokens) + list(task.eval_set(6).tokens)
    for row in rows:
        toks = [int(t) for t in row if t != poly.PAD]
        eq = toks.index(poly.EQ)
        assert toks[eq - pauses:eq] == [poly.PAUSE] * pauses
        assert toks.count(poly.PAUSE) == pauses
        value, end, _ = _parse_eval(toks, 0)
        assert end == eq - pauses
    assert task.seq_len == PolynomialTask(PolynomialConfig(eval_ops=6)).seq_len + pauses


def test_seq_len_is_the_longest_sequence() -> None:
    task = PolynomialTask(PolynomialConfig(max_ops=3, eval_ops=4))
    assert task.seq_len == 4 + 5 * 5 + 1 + 6  # 4 binary operators, 5 literals, `=`, answer, <end>
    nodes = np.array([[poly._ADD] * 4 + [poly._LEAF] * 5])
    assert poly.evaluate_programs(nodes, np.zeros((1, 9, 5), dtype=np.int64)).shape == (1, 5)
    longest = max(task.eval_set(m).tokens.shape[1] for m in range(1, 5))
    assert longest <= task.seq_len
    ex = poly.generate(np.random.default_rng(0), np.full(3000, 4))
    assert ex.tokens.shape[1] == task.seq_len  # reached when all four operators are binary


def test_eval_sets_depend_on_eval_seed_only() -> None:
    a = PolynomialTask(PolynomialConfig(eval_size=700, eval_seed=5))
    a.sample_batch(np.random.default_rng(0), 10)  # training draws must not disturb the eval sets
    b = PolynomialTask(PolynomialConfig(eval_size=700, eval_seed=5, max_ops=3, pause_tokens=0))
    c = PolynomialTask(PolynomialConfig(eval_size=700, eval_seed=6))
    for m in (1, 4, 9):
        assert np.array_equal(a.eval_set(m).tokens, b.eval_set(m).tokens)
        assert not np.array_equal(a.eval_set(m).answer, c.eval_set(m).answer)
        assert a.eval_set(m) is a.eval_set(m), "cached on the instance"
        assert len(a.eval_set(m).answer) == 700 and set(a.eval_set(m).ops.tolist()) == {m}
    # A smaller set is a prefix of a larger one with the same seed (seeded chunks).
    small = PolynomialTask(PolynomialConfig(eval_size=300, eval_seed=5)).eval_set(4)
    assert np.array_equal(small.answer, a.eval_set(4).answer[:300])
    # Pause tokens change the serialization, not the expressions.
    paused = PolynomialTask(PolynomialConfig(eval_size=700, eval_seed=5, pause_tokens=4)).eval_set(4)
    assert np.array_equal(paused.answer, a.eval_set(4).answer)


def test_default_eval_sets_are_2000_per_m_up_to_10() -> None:
    task = PolynomialTask()
    assert task.config.eval_size == 2000 and task.config.eval_ops == 10
    ex = task.eval_set(10)
    assert len(ex.answer) == 2000 and len(np.unique(ex.tokens, axis=0)) == 2000
    _check_against_oracle(poly.Expressions(ex.tokens[:150], ex.prompt_len[:150], ex.answer[:150], ex.ops[:150]))


class PerfectPredictor:
    """Answers by looking up the true sequence of each prompt; checks the calls it gets."""

    n_heads = 1

    def __init__(self, task: PolynomialTask) -> None:
        self.answers: dict[tuple[int, ...], list[int]] = {}
        for m in range(1, task.config.eval_ops + 1):
            ex = task.eval_set(m)
            for row, plen in zip(ex.tokens.tolist(), ex.prompt_len.tolist(), strict=True):
                self.answers[tuple(row[:plen])] = row[plen:plen + 6]
        self.greedy_calls = 0

    def greedy(self, prompts: np.ndarray, max_new_tokens: int) -> np.ndarray:
        assert prompts.ndim == 2 and max_new_tokens == 6
        assert (prompts[:, -1] == poly.EQ).all() and not (prompts == poly.PAD).any()
        self.greedy_calls += 1
        return np.array([self.answers[tuple(p)] for p in prompts.tolist()])

    def teacher_forced(self, tokens: np.ndarray, inputs: np.ndarray | None = None) -> TeacherForced:
        pred = tokens[:, 1:, None]
        return TeacherForced(predictions=pred, nll=np.zeros(pred.shape))

    def parallel(self, prompts: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class GarbagePredictor:
    n_heads = 1

    def __init__(self) -> None:
        self.rng = np.random.default_rng(0)

    def greedy(self, prompts: np.ndarray, max_new_tokens: int) -> np.ndarray:
        return self.rng.integers(0, 7, size=(len(prompts), max_new_tokens))

    def teacher_forced(self, tokens: np.ndarray, inputs: np.ndarray | None = None) -> TeacherForced:
        pred = self.rng.integers(0, 15, size=(tokens.shape[0], tokens.shape[1] - 1, 1))
        return TeacherForced(predictions=pred, nll=np.ones(pred.shape))

    def parallel(self, prompts: np.ndarray) -> np.ndarray:
        raise NotImplementedError


def test_perfect_predictor_scores_one() -> None:
    task = PolynomialTask(PolynomialConfig(eval_size=60, eval_ops=7, pause_tokens=2))
    predictor = PerfectPredictor(task)
    metrics = task.evaluate(predictor)
    assert metrics["exact_match/in_domain"] == 1.0 and metrics["exact_match/out_of_domain"] == 1.0
    assert all(metrics[f"exact_match/ops={m}"] == 1.0 for m in range(1, 8))
    assert all(metrics[f"coef_acc/pos={k}"] == 1.0 for k in range(5))
    assert metrics["teacher_forced_acc"] == 1.0
    assert task.primary_metric in metrics
    assert predictor.greedy_calls > 7, "prompts of different lengths go in separate calls"
    capped = task.evaluate(PerfectPredictor(task), max_examples=5)
    assert capped["exact_match/in_domain"] == 1.0


def test_garbage_predictor_scores_about_zero() -> None:
    task = PolynomialTask(PolynomialConfig(eval_size=400, eval_ops=6))
    metrics = task.evaluate(GarbagePredictor())
    assert metrics["exact_match/in_domain"] < 0.01 and metrics["exact_match/out_of_domain"] < 0.01
    for k in range(5):
        assert abs(metrics[f"coef_acc/pos={k}"] - 1 / 7) < 0.03
    assert metrics["teacher_forced_acc"] < 0.15


def test_in_and_out_of_domain_average_the_right_sets() -> None:
    task = PolynomialTask(PolynomialConfig(eval_size=50, max_ops=3, eval_ops=5))

    class WrongOnOneAndFive(PerfectPredictor):
        def greedy(self, prompts: np.ndarray, max_new_tokens: int) -> np.ndarray:
            out = super().greedy(prompts, max_new_tokens)
            wrong = np.isin(np.isin(prompts, list(OPS)).sum(axis=1), [1, 5])
            out[wrong, 0] = (out[wrong, 0] + 1) % 7
            return out

    metrics = task.evaluate(WrongOnOneAndFive(task))
    assert [metrics[f"exact_match/ops={m}"] for m in range(1, 6)] == [0.0, 1.0, 1.0, 1.0, 0.0]
    assert metrics["exact_match/in_domain"] == pytest.approx(2 / 3)
    assert metrics["exact_match/out_of_domain"] == 0.5
    assert metrics["coef_acc/pos=0"] == pytest.approx(2 / 3) and metrics["coef_acc/pos=1"] == 1.0
    assert metrics["teacher_forced_acc"] == 1.0


@pytest.mark.parametrize("overrides, field", [
    ({"min_ops": 0}, "min_ops"),
    ({"min_ops": 4, "max_ops": 3}, "max_ops"),
    ({"eval_ops": 0}, "eval_ops"),
    ({"eval_size": 0}, "eval_size"),
    ({"eval_size": -5}, "eval_size"),
    ({"pause_tokens": -1}, "pause_tokens"),
    ({"loss_on": "prompt"}, "loss_on"),
    ({"max_ops": 2.5}, "max_ops"),
])
def test_bad_configs_raise_config_error(overrides: dict, field: str) -> None:
    with pytest.raises(ConfigError, match=f"task.{field}"):
        build_task("polynomial", overrides)


def test_registry_and_formatting() -> None:
    assert "polynomial" in task_names()
    task = build_task("polynomial", {"pause_tokens": 1})
    assert isinstance(task, PolynomialTask) and task.vocab_size == 15
    row = [poly.MUL, poly.ADD, 1, 0, 3, 0, 0, 2, 0, 0, 0, 1, poly.NEG, 0, 5, 0, 0, 0,
           poly.PAUSE, poly.EQ, 0, 6, 0, 6, 0, poly.END, poly.PAD]
    assert task.format_tokens(np.array(row)) == \
        "(* (+ [1+3x^2] [2+x^4]) (neg [5x])) <pause>x1 = [6x+6x^3] <end>"
    # (3 + 3x^2 + x^4) * 2x = 6x + 6x^3 (+ 2x^5, truncated): check it with the oracle.
    assert _coefs(_parse_eval(row, 0)[0]) == [0, 6, 0, 6, 0]
    assert task.format_tokens(np.array([poly.ADD, 3, poly.EQ])) == "+ 3 ="  # malformed: raw names
    text = task.show_examples(np.random.default_rng(0), 3)
    assert text.count("train:") == 3 and "eval ops=10" in text and "tokens:" in text
