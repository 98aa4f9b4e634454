"""Polynomial arithmetic in the ring F7[X]/(X^5) (Gloeckle et al. 2024, Sec. 4.2 and App. K).

An element of the ring is a polynomial of degree < 5 with coefficients mod 7, i.e. five
coefficients `c0..c4` (constant first). Expressions combine uniformly random literals with
m operations drawn uniformly from: negation (unary), addition, multiplication (a truncated
convolution) and composition (`p o q = p(q(X)) mod X^5`). The model reads the expression and
must write the five coefficients of its value. Difficulty is m: training draws m uniformly in
`[min_ops, max_ops]` (in-domain); evaluation covers m = 1..eval_ops, so m > max_ops is
out-of-domain, as in the paper's Fig. 8.

Expression sampling (the paper does not give one): `tree(m)` with m = 0 is a literal with five
uniform coefficients. Otherwise the root operator is uniform over the four operations; a
negation gets `tree(m - 1)` as its child, a binary operator splits the remaining m - 1
operations between its children with the left share uniform in `0..m-1`. So m counts operator
tokens exactly, and every operator token is uniform given the shape.

Serialization (prefix / Polish notation, one token per symbol, no brackets needed because
every operator has a fixed arity and every literal is exactly five tokens):

    <question> <pause> * pause_tokens  =  c0 c1 c2 c3 c4  <end>  <pad> ...

- tokens 0..6 are the coefficient digits; a literal is its five coefficients c0..c4;
- `neg` (7), `+` (8), `*` (9), `o` (10, composition: `o p q` = p(q(X))) are the operators;
- `=` (11) ends the prompt, `<end>` (12) ends the answer, `<pause>` (13), `<pad>` (14).

Example: `* + 1 0 3 0 0 2 0 0 0 1 neg 0 5 0 0 0 = ...` is `((1 + 3x^2) + (2 + x^4)) * (-5x)`;
`format_tokens` prints it as `(* (+ [1+3x^2] [2+x^4]) (neg [5x])) = [...] <end>`.

Training batches are right-padded with `<pad>` to the batch's longest sequence (never longer
than `seq_len`); the loss mask covers the answer (five coefficients and `<end>`) by default.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from tasks.base import (
    Batch,
    ConfigError,
    Predictor,
    Schedule,
    Task,
    TaskConfig,
    TrainDefaults,
    check_draws,
    check_split,
    register,
    rows_not_in,
)

P = 7  # the field F7
D = 5  # truncation: the ring is F7[X]/(X^5)

# Token ids.
NEG, ADD, MUL, COMP = 7, 8, 9, 10
EQ, END, PAUSE, PAD = 11, 12, 13, 14
VOCAB_SIZE = 15
TOKEN_NAMES = [str(i) for i in range(P)] + ["neg", "+", "*", "o", "=", "<end>", "<pause>", "<pad>"]
OPERATORS = (NEG, ADD, MUL, COMP)  # drawn uniformly
ANSWER_LEN = D + 1  # five coefficients and <end>

# Internal node codes of an expression program (prefix order); operator token = code + 5.
_NOOP, _LEAF, _NEG, _ADD, _MUL, _COMP = 0, 1, 2, 3, 4, 5
_WIDTH = np.array([0, D, 1, 1, 1, 1])  # tokens written per node
_STACK_DELTA = np.array([0, 1, 0, -1, -1, -1])
_EVAL_CHUNK = 500  # eval sets are generated in seeded chunks, so a set's prefix is stable
_PREDICT_BATCH = 512  # examples per predictor call during evaluation

# _CONV[i * D + j, k] = 1 where i + j == k < D: truncated product as one matmul.
_CONV = np.zeros((D * D, D), dtype=np.int64)
for _i in range(D):
    for _j in range(D - _i):
        _CONV[_i * D + _j, _i + _j] = 1


def poly_mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Product of `(..., 5)` coefficient arrays in F7[X]/(X^5) (truncated convolution)."""
    outer = a[..., :, None] * b[..., None, :]
    return (outer.reshape(*outer.shape[:-2], D * D) @ _CONV) % P


def poly_compose(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """`p(q(X)) mod X^5` for `(..., 5)` coefficient arrays, by Horner's rule in the ring."""
    r = np.zeros_like(p)
    r[..., 0] = p[..., D - 1]
    for k in range(D - 2, -1, -1):
        r = poly_mul(r, q)
        r[..., 0] = (r[..., 0] + p[..., k]) % P
    return r


def sample_shapes(rng: np.random.Generator, ops: np.ndarray) -> np.ndarray:
    """Random expression shapes with `ops[b]` operations, as `(B, K)` node codes in prefix order.

    See the module docstring for the distribution. Rows are left-aligned and padded with
    `_NOOP`; K = 2 * max(ops) + 1, the longest possible program.
    """
    ops = np.asarray(ops, dtype=np.int64)
    batch = len(ops)
    max_m = int(ops.max()) if batch else 0
    kinds = (rng.integers(0, len(OPERATORS), size=(batch, max(max_m, 1))) + _NEG).tolist()
    splits = rng.random((batch, max(max_m, 1))).tolist()
    nodes = np.zeros((batch, 2 * max_m + 1), dtype=np.int64)
    for b, m in enumerate(ops.tolist()):
        kind_b, split_b, out = kinds[b], splits[b], []
        pending, i = [m], 0  # stack of subtree sizes still to write
        while pending:
            k = pending.pop()
            if k == 0:
                out.append(_LEAF)
                continue
            kind = kind_b[i]
            out.append(kind)
            if kind == _NEG:
                pending.append(k - 1)
            else:
                left = int(split_b[i] * k)  # uniform in 0..k-1
                pending.append(k - 1 - left)  # right child, written after the left one
                pending.append(left)
            i += 1
        nodes[b, : len(out)] = out
    return nodes


def evaluate_programs(nodes: np.ndarray, literals: np.ndarray) -> np.ndarray:
    """Values `(B, 5)` of prefix programs `nodes (B, K)` with literals `(B, K, 5)` at `_LEAF` nodes.

    A stack machine run right to left over the prefix program, vectorised over the batch:
    a literal pushes, `neg` rewrites the top, a binary operator pops its left operand (top)
    and right operand (below) and pushes the result.
    """
    batch, width = nodes.shape
    depth = width // 2 + 2  # leaves <= ops + 1; last slot is a sink for no-ops
    stack = np.zeros((batch, depth, D), dtype=np.int64)
    sp = np.zeros(batch, dtype=np.int64)
    rows = np.arange(batch)
    sink = depth - 1
    for j in range(width - 1, -1, -1):
        code = nodes[:, j]
        if not code.any():
            continue
        top = stack[rows, np.maximum(sp - 1, 0)]
        below = stack[rows, np.maximum(sp - 2, 0)]
        value = np.zeros((batch, D), dtype=np.int64)
        for c, fn in ((_NEG, None), (_ADD, None), (_MUL, poly_mul), (_COMP, poly_compose)):
            sel = code == c
            if not sel.any():
                continue
            if c == _NEG:
                value[sel] = (-top[sel]) % P
            elif c == _ADD:
                value[sel] = (top[sel] + below[sel]) % P
            else:
                value[sel] = fn(top[sel], below[sel])
        leaf = code == _LEAF
        value[leaf] = literals[leaf, j]
        where = np.where(leaf, sp, np.where(code == _NEG, sp - 1, np.where(code >= _ADD, sp - 2, sink)))
        stack[rows, where] = value
        sp += _STACK_DELTA[code]
    return stack[:, 0]


@dataclass
class Expressions:
    """Serialized expressions: tokens `(B, L)` padded, with where each part sits."""

    tokens: np.ndarray  # (B, L) int64, right-padded with PAD
    prompt_len: np.ndarray  # (B,) tokens up to and including `=`
    answer: np.ndarray  # (B, 5) coefficients of the value
    ops: np.ndarray  # (B,) number of operations


def generate(rng: np.random.Generator, ops: np.ndarray, pause_tokens: int = 0) -> Expressions:
    """Random expressions with `ops[b]` operations each, serialized (see the module docstring)."""
    ops = np.asarray(ops, dtype=np.int64)
    nodes = sample_shapes(rng, ops)
    batch, width = nodes.shape
    literals = rng.integers(0, P, size=(batch, width, D))
    answer = evaluate_programs(nodes, literals)

    widths = _WIDTH[nodes]
    offset = np.cumsum(widths, axis=1) - widths
    question_len = widths.sum(axis=1)
    prompt_len = question_len + pause_tokens + 1
    total = prompt_len + ANSWER_LEN
    length = int(total.max()) if batch else 0
    tokens = np.full((batch, length), PAD, dtype=np.int64)

    r, c = np.nonzero(nodes >= _NEG)
    tokens[r, offset[r, c]] = nodes[r, c] + (NEG - _NEG)
    r, c = np.nonzero(nodes == _LEAF)
    tokens[r[:, None], offset[r, c][:, None] + np.arange(D)] = literals[r, c]

    col = np.arange(length)[None, :]
    rel = col - prompt_len[:, None]  # 0..4: coefficients, 5: <end>
    tokens = np.where((rel >= -pause_tokens - 1) & (rel < -1), PAUSE, tokens)
    tokens = np.where(rel == -1, EQ, tokens)
    coef = np.take_along_axis(answer, np.clip(rel, 0, D - 1), axis=1)
    tokens = np.where((rel >= 0) & (rel < D), coef, tokens)
    tokens = np.where(rel == D, END, tokens)
    return Expressions(tokens=tokens, prompt_len=prompt_len, answer=answer, ops=ops)


def poly_to_text(coefs: np.ndarray | list[int]) -> str:
    """`[1+3x^2]`-style text of five coefficients, constant first."""
    terms = []
    for k, c in enumerate(int(x) for x in coefs):
        if c == 0:
            continue
        mono = "" if k == 0 else ("x" if k == 1 else f"x^{k}")
        terms.append(str(c) if k == 0 else (mono if c == 1 else f"{c}{mono}"))
    return "[" + ("+".join(terms) if terms else "0") + "]"


def _expr_to_text(tokens: list[int], i: int) -> tuple[str, int]:
    """Parse one prefix expression starting at `tokens[i]`; raise ValueError if malformed."""
    if i >= len(tokens):
        raise ValueError("truncated")
    t = tokens[i]
    if 0 <= t < P:
        lit = tokens[i : i + D]
        if len(lit) < D or any(not 0 <= x < P for x in lit):
            raise ValueError("bad literal")
        return poly_to_text(lit), i + D
    if t == NEG:
        inner, j = _expr_to_text(tokens, i + 1)
        return f"(neg {inner})", j
    if t in (ADD, MUL, COMP):
        left, j = _expr_to_text(tokens, i + 1)
        right, k = _expr_to_text(tokens, j)
        return f"({TOKEN_NAMES[t]} {left} {right})", k
    raise ValueError("unexpected token")


def _padded(tokens: np.ndarray, width: int) -> np.ndarray:
    """`tokens` right-padded with PAD to `width` columns."""
    return np.pad(tokens, ((0, 0), (0, width - tokens.shape[1])), constant_values=PAD)


def _trimmed(parts: list[Expressions], n: int) -> Expressions:
    """The first `n` expressions of `parts`, tokens cut to the longest kept row."""
    tokens = np.concatenate([p.tokens for p in parts])[:n]
    tokens = tokens[:, : int((tokens != PAD).sum(axis=1).max())]
    return Expressions(tokens=tokens, prompt_len=np.concatenate([p.prompt_len for p in parts])[:n],
                       answer=np.concatenate([p.answer for p in parts])[:n],
                       ops=np.concatenate([p.ops for p in parts])[:n])


@dataclass
class PolynomialConfig(TaskConfig):
    """Knobs of the polynomial task (defaults follow the paper, smaller eval sets allowed)."""

    min_ops: int = 1  # training draws m uniformly in [min_ops, max_ops]
    max_ops: int = 5  # also the in-domain / out-of-domain boundary of the metrics
    eval_ops: int = 10  # evaluation sets for m = 1..eval_ops
    eval_size: int = 2000  # expressions per m in each evaluation set
    pause_tokens: int = 0  # pause tokens between the question and `=` (App. K uses 5 or 10)
    loss_on: str = "answer"  # "answer": 5 coefficients + <end>; "all": every non-pad token

    def validate(self) -> None:
        for name in ("min_ops", "max_ops", "eval_ops", "eval_size", "pause_tokens", "eval_seed"):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool):
                raise ConfigError(f"task.{name}={value!r} must be an integer")
        if self.min_ops < 1:
            raise ConfigError(f"task.min_ops={self.min_ops} is invalid; allowed: an integer >= 1")
        if self.max_ops < self.min_ops:
            raise ConfigError(f"task.max_ops={self.max_ops} is below task.min_ops={self.min_ops}; "
                              "allowed: max_ops >= min_ops")
        if self.eval_ops < 1:
            raise ConfigError(f"task.eval_ops={self.eval_ops} is invalid; allowed: an integer >= 1")
        if self.eval_size <= 0:
            raise ConfigError(f"task.eval_size={self.eval_size} is invalid; allowed: an integer >= 1")
        if self.pause_tokens < 0:
            raise ConfigError(f"task.pause_tokens={self.pause_tokens} is invalid; allowed: an integer >= 0")
        if self.loss_on not in ("answer", "all"):
            raise ConfigError(f"task.loss_on={self.loss_on!r} is invalid; allowed: 'answer' or 'all'")


@register
class PolynomialTask(Task):
    """Evaluate random expressions in F7[X]/(X^5); exact match of the 5 answer coefficients."""

    name: ClassVar[str] = "polynomial"
    Config: ClassVar[type[TaskConfig]] = PolynomialConfig
    primary_metric: ClassVar[str] = "exact_match/in_domain"
    defaults: ClassVar[TrainDefaults] = TrainDefaults(steps=1500, lr=1e-3, warmup_steps=100, eval_every=250)
    quick: ClassVar[Schedule] = Schedule({"max_ops": 2, "eval_ops": 3, "eval_size": 300}, batch_size=64,
                                         steps=400, eval_every=200)

    def __init__(self, config: PolynomialConfig | None = None) -> None:
        super().__init__(config if config is not None else PolynomialConfig())
        self.config: PolynomialConfig
        self._eval_sets: dict[tuple[int, str], Expressions] = {}

    @property
    def vocab_size(self) -> int:
        return VOCAB_SIZE

    @property
    def seq_len(self) -> int:
        # Longest when every operation is binary: m operators and m + 1 literals.
        m = max(self.config.max_ops, self.config.eval_ops)
        return m + D * (m + 1) + self.config.pause_tokens + 1 + ANSWER_LEN

    def sample_batch(self, rng: np.random.Generator, batch_size: int) -> Batch:
        ops = rng.integers(self.config.min_ops, self.config.max_ops + 1, size=batch_size)
        ex = generate(rng, ops, self.config.pause_tokens)
        col = np.arange(ex.tokens.shape[1])[None, :]
        end = ex.prompt_len[:, None] + ANSWER_LEN
        if self.config.loss_on == "answer":
            mask = (col >= ex.prompt_len[:, None]) & (col < end)
        else:
            mask = (col >= 1) & (col < end)
        return Batch(tokens=ex.tokens, loss_mask=mask)

    def eval_set(self, ops: int, split: str = "test") -> Expressions:
        """The fixed evaluation set of `split` with `ops` operations (seeded by `eval_seed` and `ops`).

        The validation set is drawn like the test set from its own seed stream; expressions
        that also occur in the test set (or twice) are dropped and replaced, so the two are
        disjoint. Training draws fresh expressions, so disjointness from training is not
        guaranteed (at small `ops` some evaluation expressions are also seen in training).
        """
        check_split(split)
        if (ops, split) not in self._eval_sets:
            n = self.config.eval_size
            if split == "test":
                # Whole seeded chunks, then trimmed: a smaller set is a prefix of a larger one.
                parts = [self._eval_chunk([self.config.eval_seed, ops, c], ops) for c in range(-(-n // _EVAL_CHUNK))]
            else:
                parts = self._disjoint_chunks(ops, n, _padded(self.eval_set(ops, "test").tokens, self.seq_len))
            self._eval_sets[ops, split] = _trimmed(parts, n)
        return self._eval_sets[ops, split]

    def _eval_chunk(self, seed: list[int], ops: int) -> Expressions:
        ex = generate(np.random.default_rng(seed), np.full(_EVAL_CHUNK, ops), self.config.pause_tokens)
        return Expressions(_padded(ex.tokens, self.seq_len), ex.prompt_len, ex.answer, ex.ops)

    def _disjoint_chunks(self, ops: int, n: int, exclude: np.ndarray) -> list[Expressions]:
        """Validation chunks with every row absent from `exclude` and from earlier chunks."""
        parts: list[Expressions] = []
        kept, c = 0, 0
        while kept < n:
            check_draws(c, "expressions")
            ex = self._eval_chunk([self.config.eval_seed, ops, c, 1], ops)
            keep = rows_not_in(ex.tokens, np.concatenate([exclude, *[q.tokens for q in parts]]))
            parts.append(Expressions(ex.tokens[keep], ex.prompt_len[keep], ex.answer[keep], ex.ops[keep]))
            kept, c = kept + int(keep.sum()), c + 1
        return parts

    def evaluate(self, predictor: Predictor, max_examples: int | None = None,
                 split: str = "test") -> dict[str, float]:
        """Greedy-decode the answer of every evaluation expression of `split` and score it.

        Keys: `exact_match/ops=M` (all 5 coefficients right), `exact_match/in_domain` (mean over
        M <= max_ops), `exact_match/out_of_domain` (mean over M > max_ops, if any),
        `coef_acc/pos=K` (coefficient K right, in-domain), `teacher_forced_acc` (head 1 on the
        answer tokens and <end> given the true prefix, in-domain) and `answer_nll` (the graded
        counterpart of exact match: head 1's mean negative log-likelihood of those tokens).
        """
        cfg = self.config
        metrics: dict[str, float] = {}
        in_domain_coef, tf_hits, tf_nll = [], [], []
        for m in range(1, cfg.eval_ops + 1):
            ex = self.eval_set(m, split)
            n = len(ex.answer) if max_examples is None else min(max_examples, len(ex.answer))
            decoded = np.zeros((n, D), dtype=np.int64)
            tf_correct = np.zeros((n, ANSWER_LEN), dtype=bool)
            nll = np.zeros((n, ANSWER_LEN))
            for plen in np.unique(ex.prompt_len[:n]).tolist():
                idx = np.nonzero(ex.prompt_len[:n] == plen)[0]
                for s in range(0, len(idx), _PREDICT_BATCH):
                    part = idx[s : s + _PREDICT_BATCH]
                    seqs = ex.tokens[part, : plen + ANSWER_LEN]
                    out = np.asarray(predictor.greedy(seqs[:, :plen], max_new_tokens=ANSWER_LEN))
                    decoded[part] = out[:, :D]
                    if m <= cfg.max_ops:
                        tf = predictor.teacher_forced(seqs)
                        pred = np.asarray(tf.predictions)[:, plen - 1 : plen - 1 + ANSWER_LEN, 0]
                        tf_correct[part] = pred == seqs[:, plen:]
                        nll[part] = np.asarray(tf.nll)[:, plen - 1 : plen - 1 + ANSWER_LEN, 0]
            coef_ok = decoded == ex.answer[:n]
            metrics[f"exact_match/ops={m}"] = float(coef_ok.all(axis=1).mean())
            if m <= cfg.max_ops:
                in_domain_coef.append(coef_ok)
                tf_hits.append(tf_correct)
                tf_nll.append(nll)
        inside = [metrics[f"exact_match/ops={m}"] for m in range(1, min(cfg.max_ops, cfg.eval_ops) + 1)]
        outside = [metrics[f"exact_match/ops={m}"] for m in range(cfg.max_ops + 1, cfg.eval_ops + 1)]
        if inside:
            metrics["exact_match/in_domain"] = float(np.mean(inside))
            coef = np.concatenate(in_domain_coef)
            for k in range(D):
                metrics[f"coef_acc/pos={k}"] = float(coef[:, k].mean())
            metrics["teacher_forced_acc"] = float(np.concatenate(tf_hits).mean())
            metrics["answer_nll"] = float(np.concatenate(tf_nll).mean())
        if outside:
            metrics["exact_match/out_of_domain"] = float(np.mean(outside))
        return metrics

    def format_tokens(self, tokens: np.ndarray) -> str:
        """`(* (+ [1+3x^2] [2+x^4]) (neg [5x])) <pause>x2 = [4x+...] <end>`; raw names if malformed."""
        toks = [int(t) for t in np.asarray(tokens).ravel() if int(t) != PAD]
        raw = " ".join(TOKEN_NAMES[t] if 0 <= t < VOCAB_SIZE else f"<{t}>" for t in toks)
        stop = next((i for i, t in enumerate(toks) if t in (PAUSE, EQ)), len(toks))
        try:
            text, j = _expr_to_text(toks, 0)
            if j != stop:
                raise ValueError("trailing tokens")
        except ValueError:
            return raw
        rest = toks[stop:]
        pauses = 0
        while pauses < len(rest) and rest[pauses] == PAUSE:
            pauses += 1
        parts = [text] + ([f"<pause>x{pauses}"] if pauses else [])
        rest = rest[pauses:]
        if rest[:1] == [EQ]:
            parts.append("=")
            answer = rest[1 : 1 + D]
            if len(answer) == D and all(0 <= t < P for t in answer):
                parts.append(poly_to_text(answer))
                rest = rest[1 + D :]
            else:
                rest = rest[1:]
        parts.extend(TOKEN_NAMES[t] if 0 <= t < VOCAB_SIZE else f"<{t}>" for t in rest)
        return " ".join(parts)

    def show_examples(self, rng: np.random.Generator, k: int) -> str:
        """`k` training examples and one evaluation example (m = eval_ops), readable and raw."""
        batch = self.sample_batch(rng, k)
        lines = []
        for label, row in [("train", r) for r in batch.tokens] + [
                (f"eval ops={self.config.eval_ops}", self.eval_set(self.config.eval_ops).tokens[0])]:
            raw = " ".join(TOKEN_NAMES[int(t)] for t in row if int(t) != PAD)
            lines.append(f"{label}: {self.format_tokens(row)}\n    tokens: {raw}")
        return "\n".join(lines)
