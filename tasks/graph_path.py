"""The path-star graph task of Bachmann & Nagarajan, "The Pitfalls of Next-Token Prediction" (2024).

A graph G(d, l, N) is a source node with d disjoint arms of l nodes each (source included), so
d(l-1) edges, all pointing away from the source. Its d(l-1)+1 node labels are drawn uniformly
without repeats from 0..N-1. The goal is the last node of one arm. The model reads the shuffled
edge list, the source and the goal, and must write the path from source to goal. Under
teacher forcing a model can "cheat" (Clever Hans): every node after the second follows from
the previous true node by one edge lookup, so it learns that and guesses the hard second node
(accuracy ~1/d). `pos_acc/2` exposes it.

Text format (one example per line, exactly as in their repository and `shared/data/path_star`):

    32,3|16,12|3,19|32,34|34,6|6,16|19,47|47,28/32,12=32,34,6,16,12

Tokens (their numeral tokenizer; commas dropped): node labels 0..N-1, `|` = N, `=` = N+1,
`/` = N+2, `$` = N+3; vocabulary N+4. A sequence is

    p1 c1 | p2 c2 | ... | pE cE / s g = s v2 ... g

i.e. 3·d(l-1)+3 prefix tokens through `=`, then l path tokens (G(2,5): 27+5; G(5,3): 33+3).
All sequences of one (d, l) have the same length, so there is no padding.

Variants: `forward` (teacher forcing on the path), `reverse` (the path written goal -> source,
easy because every node has a unique parent), `teacherless` (the model input at every path
position is `$`, targets stay the true path, decoded in one forward pass). The loss covers only
the l path tokens.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
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

VARIANTS = ("forward", "reverse", "teacherless")
STEP_KINDS = ("right", "wrong way", "current", "on the path", "other arm", "not in graph")  # `step_errors`
_PREDICT_BATCH = 500  # examples per predictor call during evaluation


def separator_tokens(num_nodes: int) -> dict[str, int]:
    """Token ids of the separators for a vocabulary of `num_nodes` labels."""
    return {"|": num_nodes, "=": num_nodes + 1, "/": num_nodes + 2, "$": num_nodes + 3}


def prefix_len(degree: int, path_len: int) -> int:
    """Tokens through `=`: 3 per edge (less the last `|`), then `/ s g =`."""
    return 3 * degree * (path_len - 1) + 3


@dataclass(frozen=True)
class PathStarExample:
    """One graph: edges (parent, child) in their listed order, source, goal and the path."""

    edges: tuple[tuple[int, int], ...]
    source: int
    goal: int
    path: tuple[int, ...]  # source ... goal

    def to_line(self) -> str:
        edges = "|".join(f"{a},{b}" for a, b in self.edges)
        return f"{edges}/{self.source},{self.goal}={','.join(str(v) for v in self.path)}"

    def tokens(self, num_nodes: int, reverse: bool = False) -> list[int]:
        """The token sequence (the path goal -> source when `reverse`)."""
        sep = separator_tokens(num_nodes)
        out: list[int] = []
        for a, b in self.edges:
            out += [a, b, sep["|"]]
        out[-1:] = [sep["/"], self.source, self.goal, sep["="]]
        return out + list(self.path[::-1] if reverse else self.path)

    @property
    def degree(self) -> int:
        return sum(1 for a, _ in self.edges if a == self.source)

    @property
    def max_label(self) -> int:
        return max(max(max(e) for e in self.edges), self.source, self.goal, max(self.path))


def parse_line(line: str, where: str = "<line>") -> PathStarExample:
    """Parse `a,b|c,d|.../s,g=s,...,g`; a `ConfigError` naming `where` if it is malformed."""

    def ints(text: str, what: str, count: int | None = None) -> tuple[int, ...]:
        parts = [p.strip() for p in text.split(",")]
        if not all(p.isascii() and p.isdigit() for p in parts) or (count is not None and len(parts) != count):
            shape = f"{count} comma-separated labels" if count else "comma-separated labels"
            raise ConfigError(f"{where}: expected {what} as {shape}, got {text!r}")
        return tuple(int(p) for p in parts)

    text = line.strip()
    if text.count("/") != 1 or text.count("=") != 1 or text.index("/") > text.index("="):
        raise ConfigError(f"{where}: expected 'edges/source,goal=path' with one '/' before one '=', "
                          f"got {text[:80]!r}")
    edge_text, rest = text.split("/")
    query, path_text = rest.split("=")
    edges = tuple(ints(e, "an edge", 2) for e in edge_text.split("|"))
    source, goal = ints(query, "source,goal", 2)
    path = ints(path_text, "the path")
    if len(path) < 2 or path[0] != source or path[-1] != goal:
        raise ConfigError(f"{where}: expected a path from source {source} to goal {goal}, got {path_text!r}")
    edge_set = set(edges)
    for a, b in zip(path, path[1:], strict=False):
        if (a, b) not in edge_set:
            raise ConfigError(f"{where}: expected every path step to be an edge, got {a},{b} which is not")
    return PathStarExample(edges=edges, source=source, goal=goal, path=path)  # type: ignore[arg-type]


def read_path_star_file(path: str | os.PathLike, num_nodes: int | None = None) -> list[PathStarExample]:
    """Read a file in their text format (blank lines skipped).

    A malformed line raises `ConfigError` as `file:line: expected ..., got ...`; with
    `num_nodes`, a label >= num_nodes raises `ConfigError` (the labels exceed the vocabulary).
    """
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as err:
        raise ConfigError(f"cannot read path-star file {path}: {err.strerror}") from None
    examples = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        ex = parse_line(line, where=f"{path.name}:{lineno}")
        if num_nodes is not None and ex.max_label >= num_nodes:
            raise ConfigError(f"{path.name}:{lineno}: node label {ex.max_label} exceeds the vocabulary "
                              f"(num_nodes N={num_nodes}, labels must be < N); the file's labels exceed N")
        examples.append(ex)
    if not examples:
        raise ConfigError(f"{path}: expected path-star examples, got an empty file")
    return examples


def write_path_star_file(path: str | os.PathLike, examples: Iterable[PathStarExample]) -> None:
    """Write examples one per line in their format, atomically (temporary file, then rename)."""
    path = Path(path)
    text = "".join(ex.to_line() + "\n" for ex in examples)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def generate_tokens(rng: np.random.Generator, n: int, degree: int, path_len: int, num_nodes: int) -> np.ndarray:
    """`n` random path-star graphs as `(n, 3·d(l-1)+3+l)` forward token sequences.

    Vectorised: the first d(l-1)+1 entries of a random permutation of the labels are the
    source and then the arms (arm 0 holds the goal; the shuffle of the edges hides which arm
    that is), edges are (parent, child) and shuffled per graph.
    """
    d, arm = degree, path_len - 1
    sep = separator_tokens(num_nodes)
    labels = np.argsort(rng.random((n, num_nodes)), axis=1)[:, : d * arm + 1]
    source = labels[:, 0]
    arms = labels[:, 1:].reshape(n, d, arm)
    parents = np.concatenate([np.repeat(source[:, None, None], d, axis=1), arms[:, :, :-1]], axis=2)
    edges = np.stack([parents, arms], axis=-1).reshape(n, d * arm, 2)
    order = np.argsort(rng.random((n, d * arm)), axis=1)
    edges = np.take_along_axis(edges, order[:, :, None], axis=1)
    body = np.concatenate([edges, np.full((n, d * arm, 1), sep["|"])], axis=2).reshape(n, 3 * d * arm)
    goal = arms[:, 0, -1]
    path = np.concatenate([source[:, None], arms[:, 0]], axis=1)
    query = np.stack([np.full(n, sep["/"]), source, goal, np.full(n, sep["="])], axis=1)
    return np.concatenate([body[:, :-1], query, path], axis=1).astype(np.int64)


def tokens_to_examples(tokens: np.ndarray, num_nodes: int, path_len: int) -> list[PathStarExample]:
    """Forward token sequences (as from `generate_tokens`) back to examples."""
    out = []
    for row in np.asarray(tokens).tolist():
        body, (s, g), path = row[: -path_len - 4], row[-path_len - 3 : -path_len - 1], row[-path_len:]
        edges = tuple((body[i], body[i + 1]) for i in range(0, len(body), 3))
        out.append(PathStarExample(edges=edges, source=s, goal=g, path=tuple(path)))
    return out


def generate_examples(rng: np.random.Generator, n: int, degree: int, path_len: int,
                      num_nodes: int) -> list[PathStarExample]:
    """`n` random path-star graphs as examples (e.g. to write a data file)."""
    return tokens_to_examples(generate_tokens(rng, n, degree, path_len, num_nodes), num_nodes, path_len)


@dataclass
class GraphPathConfig(TaskConfig):
    """G(degree, path_len, num_nodes); defaults match the shared G(2,5,50) test file."""

    degree: int = 2  # d: arms out of the source
    path_len: int = 5  # l: nodes per arm, source included
    num_nodes: int = 50  # N: labels are 0..N-1
    variant: str = "forward"  # "forward", "reverse" or "teacherless"
    train_graphs: int = 0  # 0: fresh graphs every batch; K: a fixed set of K graphs (paper: 200,000)
    train_seed: int = 0  # seeds the fixed training set when train_graphs > 0
    eval_graphs: int = 2000  # size of the generated evaluation set
    eval_file: str | None = None  # evaluate on this file (their format) instead of generated graphs

    def validate(self) -> None:
        for name in ("degree", "path_len", "num_nodes", "train_graphs", "train_seed", "eval_graphs", "eval_seed"):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool):
                raise ConfigError(f"task.{name}={value!r} must be an integer")
        if self.degree < 1:
            raise ConfigError(f"task.degree={self.degree} is invalid; allowed: an integer >= 1")
        if self.path_len < 2:
            raise ConfigError(f"task.path_len={self.path_len} is invalid; allowed: an integer >= 2 "
                              "(nodes per arm, source included)")
        need = self.degree * (self.path_len - 1) + 1
        if self.num_nodes < need:
            raise ConfigError(f"task.num_nodes={self.num_nodes} is too small for G(d={self.degree}, "
                              f"l={self.path_len}); allowed: num_nodes >= d(l-1)+1 = {need}")
        if self.variant not in VARIANTS:
            raise ConfigError(f"task.variant={self.variant!r} is invalid; allowed: {', '.join(VARIANTS)}")
        if self.train_graphs < 0:
            raise ConfigError(f"task.train_graphs={self.train_graphs} is invalid; allowed: 0 (fresh graphs) "
                              "or a positive number of fixed graphs")
        if self.eval_graphs <= 0:
            raise ConfigError(f"task.eval_graphs={self.eval_graphs} is invalid; allowed: an integer >= 1")
        if self.eval_file is not None and not Path(self.eval_file).is_file():
            raise ConfigError(f"task.eval_file={self.eval_file!r} is not a readable file; "
                              "allowed: a path-star file in their text format, or None")


@register
class GraphPathTask(Task):
    """Find the source-to-goal path in a path-star graph; exact-path accuracy."""

    name: ClassVar[str] = "graph"
    Config: ClassVar[type[TaskConfig]] = GraphPathConfig
    primary_metric: ClassVar[str] = "exact_path_acc"
    defaults: ClassVar[TrainDefaults] = TrainDefaults(steps=1500, lr=1e-3, warmup_steps=100, eval_every=250)
    quick: ClassVar[Schedule] = Schedule({"eval_graphs": 500}, batch_size=64, steps=250, eval_every=125)

    def __init__(self, config: GraphPathConfig | None = None) -> None:
        super().__init__(config if config is not None else GraphPathConfig())
        self.config: GraphPathConfig
        self.sep = separator_tokens(self.config.num_nodes)
        self._train_set: np.ndarray | None = None
        self._eval_tokens: dict[str, np.ndarray] = {}
        if self.config.eval_file is not None:  # read now, so a bad file is a ConfigError up front
            examples = read_path_star_file(self.config.eval_file, self.config.num_nodes)
            cfg = self.config
            for i, ex in enumerate(examples):
                n_edges = cfg.degree * (cfg.path_len - 1)
                if ex.degree != cfg.degree or len(ex.path) != cfg.path_len or len(ex.edges) != n_edges:
                    raise ConfigError(
                        f"task.eval_file={cfg.eval_file!r}: example {i + 1} is G(d={ex.degree}, l={len(ex.path)}) "
                        f"with {len(ex.edges)} edges; allowed: G(d={cfg.degree}, l={cfg.path_len}) as configured")
            self._eval_tokens["test"] = np.array([ex.tokens(cfg.num_nodes) for ex in examples], dtype=np.int64)

    @property
    def vocab_size(self) -> int:
        return self.config.num_nodes + 4

    @property
    def prefix_len(self) -> int:
        return prefix_len(self.config.degree, self.config.path_len)

    @property
    def seq_len(self) -> int:
        return self.prefix_len + self.config.path_len

    def _generate(self, rng: np.random.Generator, n: int) -> np.ndarray:
        cfg = self.config
        return generate_tokens(rng, n, cfg.degree, cfg.path_len, cfg.num_nodes)

    def _as_batch(self, forward_tokens: np.ndarray) -> Batch:
        """Apply the variant to forward sequences: reverse the path, or `$` on the input side."""
        p, length = self.prefix_len, self.seq_len
        tokens, inputs = self._apply_variant(forward_tokens, p)
        mask = np.zeros(tokens.shape, dtype=bool)
        mask[:, p:length] = True
        return Batch(tokens=tokens, loss_mask=mask, inputs=inputs)

    def _apply_variant(self, forward_tokens: np.ndarray, p: int) -> tuple[np.ndarray, np.ndarray | None]:
        """(targets, inputs) of forward sequences whose path starts at position `p`: the path reversed for
        `reverse`; for `teacherless`, inputs with `$` at every path position (else None: inputs = targets)."""
        tokens = np.array(forward_tokens, dtype=np.int64)
        if self.config.variant == "reverse":
            tokens[:, p:] = tokens[:, p:][:, ::-1]
        inputs = None
        if self.config.variant == "teacherless":
            inputs = tokens.copy()
            inputs[:, p:] = self.sep["$"]
        return tokens, inputs

    def train_set(self) -> np.ndarray | None:
        """The fixed training graphs (forward tokens) when `train_graphs > 0`, else None."""
        if self.config.train_graphs and self._train_set is None:
            rng = np.random.default_rng([self.config.train_seed, 0x7261696E])
            k, chunk = self.config.train_graphs, 16384  # chunks bound the temporary memory
            self._train_set = np.concatenate(
                [self._generate(rng, min(chunk, k - s)).astype(np.int32) for s in range(0, k, chunk)])
        return self._train_set

    def sample_batch(self, rng: np.random.Generator, batch_size: int) -> Batch:
        """Fresh graphs, or (train_graphs > 0) graphs drawn with replacement from the fixed set."""
        fixed = self.train_set()
        if fixed is None:
            return self._as_batch(self._generate(rng, batch_size))
        return self._as_batch(fixed[rng.integers(0, len(fixed), size=batch_size)].astype(np.int64))

    def eval_tokens(self, split: str = "test") -> np.ndarray:
        """The fixed evaluation graphs of `split` as forward tokens.

        Test: from `eval_file`, or seeded by `eval_seed`. Validation: `eval_graphs` generated
        graphs from their own seed stream, without any graph of the test set or of the fixed
        training set (when `train_graphs > 0`), so selection never sees a test or training graph.
        """
        check_split(split)
        if split not in self._eval_tokens:
            if split == "test":
                rng = np.random.default_rng([self.config.eval_seed, 0x6576616C])
                self._eval_tokens[split] = self._generate(rng, self.config.eval_graphs)
            else:
                self._eval_tokens[split] = self._validation_tokens()
        return self._eval_tokens[split]

    def _validation_tokens(self) -> np.ndarray:
        exclude = [self.eval_tokens("test")]
        if self.train_set() is not None:
            exclude.append(self.train_set().astype(np.int64))
        n, parts, kept, chunk = self.config.eval_graphs, [], 0, 0
        while kept < n:
            check_draws(chunk, "graphs")
            part = self._generate(np.random.default_rng([self.config.eval_seed, 0x76616C, chunk]), n)
            part = part[rows_not_in(part, np.concatenate([*exclude, *parts]))]
            parts.append(part)
            kept, chunk = kept + len(part), chunk + 1
        return np.concatenate(parts)[:n]

    def evaluate(self, predictor: Predictor, max_examples: int | None = None,
                 split: str = "test") -> dict[str, float]:
        """Score the model on the evaluation graphs of `split` (see `score_tokens` for the keys)."""
        tokens = self.eval_tokens(split)
        return self.score_tokens(predictor, tokens if max_examples is None else tokens[:max_examples])

    def read_file(self, path: str | os.PathLike) -> list[PathStarExample]:
        """Examples from a file in the published text format, labels checked against N."""
        return read_path_star_file(path, num_nodes=self.config.num_nodes)

    def evaluate_examples(self, predictor: Predictor, examples: list[PathStarExample],
                          max_examples: int | None = None) -> dict[str, float]:
        """Score the model on arbitrary examples (e.g. a published test file), grouped by shape.

        Labels must be below the configured `num_nodes` (else `ConfigError`). Metrics of
        several shapes are pooled, weighted by their number of examples.
        """
        examples = examples[:max_examples] if max_examples is not None else examples
        if not examples:
            raise ConfigError("evaluate_examples: expected at least one example, got none")
        n_max = self.config.num_nodes
        for i, ex in enumerate(examples):
            if ex.max_label >= n_max:
                raise ConfigError(f"example {i + 1}: node label {ex.max_label} exceeds the vocabulary "
                                  f"(num_nodes N={n_max}, labels must be < N)")
        groups: dict[tuple[int, int], list[PathStarExample]] = {}
        for ex in examples:
            groups.setdefault((len(ex.edges), len(ex.path)), []).append(ex)
        sums: dict[str, float] = {}
        counts: dict[str, int] = {}
        for group in groups.values():
            tokens = np.array([ex.tokens(n_max) for ex in group], dtype=np.int64)
            for key, value in self.score_tokens(predictor, tokens, path_len=len(group[0].path)).items():
                sums[key] = sums.get(key, 0.0) + value * len(group)
                counts[key] = counts.get(key, 0) + len(group)
        return {key: sums[key] / counts[key] for key in sums}

    def score_tokens(self, predictor: Predictor, forward_tokens: np.ndarray,
                     path_len: int | None = None) -> dict[str, float]:
        """Decode and score forward token sequences of one shape under the configured variant.

        Keys: `exact_path_acc` (whole path right), `pos_acc/K` (K = 1..l, decoded position K
        right; for `reverse` K counts from the goal), `teacher_forced_acc` (head 1 on the path
        tokens reading the true sequence), `tf_pos_acc/K` (the same per position: the Clever
        Hans signature is ~1/d at K=2 and ~1 elsewhere) and `path_nll` (head 1's mean negative
        log-likelihood of the true path tokens, the graded counterpart of exact-path accuracy).
        """
        n_path = self.config.path_len if path_len is None else path_len
        n, length = np.shape(forward_tokens)
        p = length - n_path  # prefix through `=`
        tokens, dollars = self._apply_variant(forward_tokens, p)
        decoded = np.zeros((n, n_path), dtype=np.int64)
        forced = np.zeros((n, n_path), dtype=np.int64)
        nll = np.zeros((n, n_path))
        for s in range(0, n, _PREDICT_BATCH):
            part = tokens[s : s + _PREDICT_BATCH]
            rows = slice(s, s + len(part))
            if dollars is not None:  # teacherless: the whole path from one forward over `$`s
                tf = predictor.teacher_forced(part, dollars[rows])
                decoded[rows] = np.asarray(tf.predictions)[:, p - 1 : p - 1 + n_path, 0]
            else:
                decoded[rows] = np.asarray(predictor.greedy(part[:, :p], max_new_tokens=n_path))[:, :n_path]
            tf = predictor.teacher_forced(part)
            forced[rows] = np.asarray(tf.predictions)[:, p - 1 : p - 1 + n_path, 0]
            nll[rows] = np.asarray(tf.nll)[:, p - 1 : p - 1 + n_path, 0]
        target = tokens[:, p:]
        right = decoded == target
        forced_right = forced == target
        metrics = {"exact_path_acc": float(right.all(axis=1).mean())}
        for k in range(n_path):
            metrics[f"pos_acc/{k + 1}"] = float(right[:, k].mean())
        metrics["teacher_forced_acc"] = float(forced_right.mean())
        metrics["path_nll"] = float(nll.mean())
        for k in range(n_path):
            metrics[f"tf_pos_acc/{k + 1}"] = float(forced_right[:, k].mean())
        return metrics

    def step_errors(self, predictor: Predictor, examples: list[PathStarExample]) -> dict[int, dict[str, float]]:
        """Where head 1's teacher-forced guesses land, per path position K = 2..l (in the variant's order).

        Each guess (the true path read as input) is one of `STEP_KINDS`: `right`; `wrong way` (the
        neighbour of the current node in the other direction: its parent when writing source -> goal,
        its child when writing goal -> source); `current` (the input node again); `on the path` (another
        node of the path); `other arm`; `not in graph` (a separator, or a label the graph lacks). Shares
        per position sum to 1. A model that has only learnt which nodes occur in the graph spreads its
        guesses over `on the path` and `other arm`; one that finds the edge but reads it the wrong way
        lands on `wrong way`. Teacherless runs read `$` inputs, as trained (`current` is still the true
        previous node).
        """
        if not examples:
            raise ConfigError("step_errors: expected at least one example, got none")
        if len({(len(ex.edges), len(ex.path)) for ex in examples}) > 1:
            raise ConfigError("step_errors: the examples mix graph shapes; pass the examples of one (d, l) at a time")
        reverse = self.config.variant == "reverse"
        n_path = len(examples[0].path)
        forward = np.array([ex.tokens(self.config.num_nodes) for ex in examples], dtype=np.int64)
        p = forward.shape[1] - n_path
        tokens, inputs = self._apply_variant(forward, p)  # teacherless reads `$` inputs, as trained
        guesses = np.asarray(predictor.teacher_forced(tokens, inputs).predictions)[:, p - 1 : p - 1 + n_path, 0]
        counts = {k: dict.fromkeys(STEP_KINDS, 0) for k in range(2, n_path + 1)}
        for ex, row, guess in zip(examples, tokens[:, p:].tolist(), guesses.tolist(), strict=True):
            back = {b: a for a, b in ex.edges} if not reverse else {a: b for a, b in ex.edges}
            nodes = {v for edge in ex.edges for v in edge}
            for k in range(2, n_path + 1):
                current, y = row[k - 2], guess[k - 1]
                kind = ("right" if y == row[k - 1] else "wrong way" if back.get(current) == y
                        else "current" if y == current else "on the path" if y in ex.path
                        else "other arm" if y in nodes else "not in graph")
                counts[k][kind] += 1
        return {k: {kind: c / len(examples) for kind, c in kinds.items()} for k, kinds in counts.items()}

    def format_tokens(self, tokens: np.ndarray) -> str:
        """Their text format, e.g. `32,3|16,12|.../32,12=32,34,6,16,12` (`$` shown as `$`)."""
        names = {v: k for k, v in self.sep.items()}
        out = []
        prev_label = False
        for t in np.asarray(tokens).ravel().tolist():
            label = 0 <= t < self.config.num_nodes
            if label and prev_label:
                out.append(",")
            out.append(str(t) if label else names.get(t, f"<{t}>"))
            prev_label = label
        return "".join(out)

    def show_examples(self, rng: np.random.Generator, k: int) -> str:
        """`k` training examples and one evaluation example (with `$` inputs when teacherless)."""
        batch = self.sample_batch(rng, k)
        lines = [f"train: {self.format_tokens(row)}" for row in batch.tokens]
        if batch.inputs is not None:
            lines.append(f"input: {self.format_tokens(batch.inputs[0])}")
        ev = self._as_batch(self.eval_tokens()[:1])
        lines.append(f"eval:  {self.format_tokens(ev.tokens[0])}")
        return "\n".join(lines)
