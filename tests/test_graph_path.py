"""Tests of the path-star task: the published files and generated graphs checked with networkx,
the text format, the variants and the scoring (perfect, Clever Hans and peeking predictors)."""

from __future__ import annotations

from pathlib import Path

import networkx as nx
import numpy as np
import pytest

from tasks import ConfigError, TeacherForced, build_task, task_names
from tasks import graph_path as gp
from tasks.graph_path import GraphPathConfig, GraphPathTask, PathStarExample

# The repo sits beside shared/ (here /work/main and /work/shared; in CI a fresh clone with a copy).
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "path_star"
SHARED_FILES = {  # file -> (d, l, N)
    "deg_2_path_5_nodes_50_test_20000.txt": (2, 5, 50),
    "deg_5_path_3_nodes_50_test_20000.txt": (5, 3, 50),
}


def shared_file(name: str) -> Path:
    path = SHARED / name
    assert path.is_file(), f"missing shared data file {path}: the repo must sit beside shared/"
    return path


def assert_path_star(ex: PathStarExample, d: int, length: int, n: int) -> None:
    """The graph is a path-star with d arms of l nodes (source included) and the path is its unique s->g path."""
    g = nx.DiGraph(list(ex.edges))
    assert len(ex.edges) == d * (length - 1) == g.number_of_edges(), "no repeated edges"
    assert g.number_of_nodes() == d * (length - 1) + 1
    assert all(0 <= v < n for v in g.nodes)
    assert nx.is_arborescence(g) and g.in_degree(ex.source) == 0
    assert g.out_degree(ex.source) == d
    depth = nx.single_source_shortest_path_length(g, ex.source)
    leaves = [v for v in g if g.out_degree(v) == 0]
    assert len(leaves) == d and all(depth[v] == length - 1 for v in leaves)
    assert all(g.out_degree(v) == 1 for v in g if v != ex.source and v not in leaves)
    assert ex.goal in leaves
    assert [list(p) for p in nx.all_simple_paths(g, ex.source, ex.goal)] == [list(ex.path)]


@pytest.mark.parametrize("name", sorted(SHARED_FILES))
def test_every_line_of_the_published_files_is_a_path_star(name: str) -> None:
    d, length, n = SHARED_FILES[name]
    path = shared_file(name)
    examples = gp.read_path_star_file(path, num_nodes=n)
    assert len(examples) == 20000 == len(path.read_text().splitlines())
    for ex in examples:
        assert_path_star(ex, d, length, n)
        tokens = ex.tokens(n)
        assert len(tokens) == gp.prefix_len(d, length) + length == 3 * d * (length - 1) + 3 + length
    # Their files round-trip byte for byte through our reader and writer.
    assert "".join(ex.to_line() + "\n" for ex in examples) == path.read_text()


def test_token_lengths_match_their_tokenizer() -> None:
    assert gp.prefix_len(2, 5) == 27 and gp.prefix_len(5, 3) == 33
    line = "32,3|16,12|3,19|32,34|34,6|6,16|19,47|47,28/32,12=32,34,6,16,12"
    ex = gp.parse_line(line)
    assert ex.tokens(50) == [32, 3, 50, 16, 12, 50, 3, 19, 50, 32, 34, 50, 34, 6, 50, 6, 16, 50,
                             19, 47, 50, 47, 28, 52, 32, 12, 51, 32, 34, 6, 16, 12]
    assert ex.tokens(50, reverse=True)[-5:] == [12, 16, 6, 34, 32]
    task = GraphPathTask()
    assert task.format_tokens(np.array(ex.tokens(50))) == line
    assert task.vocab_size == 54 and task.seq_len == 32


@pytest.mark.parametrize("d, length, n", [(2, 5, 50), (5, 3, 50), (2, 2, 3), (7, 7, 100), (1, 4, 4), (3, 10, 200)])
def test_generated_graphs_are_path_stars(d: int, length: int, n: int) -> None:
    tokens = gp.generate_tokens(np.random.default_rng(d * 100 + length), 1500, d, length, n)
    assert tokens.shape == (1500, 3 * d * (length - 1) + 3 + length) and tokens.dtype == np.int64
    examples = gp.tokens_to_examples(tokens, n, length)
    for ex, row in zip(examples, tokens.tolist(), strict=True):
        assert_path_star(ex, d, length, n)
        assert ex.tokens(n) == row
    # Uniform labels: every label is used, sources too; the goal arm is not identifiable by position.
    assert {v for row in tokens.tolist() for v in row if v < n} == set(range(n))
    assert len({ex.source for ex in examples}) >= 0.9 * n
    if d > 1:
        first_child = [next(b for a, b in ex.edges if a == ex.source) for ex in examples]
        on_path = np.mean([c == ex.path[1] for c, ex in zip(first_child, examples, strict=True)])
        assert abs(on_path - 1 / d) < 0.06


def test_write_then_read_round_trip(tmp_path: Path) -> None:
    examples = gp.generate_examples(np.random.default_rng(0), 500, 3, 4, 30)
    out = tmp_path / "g.txt"
    gp.write_path_star_file(out, examples)
    assert gp.read_path_star_file(out, num_nodes=30) == examples
    assert list(tmp_path.iterdir()) == [out], "no temporary file left behind"
    gp.write_path_star_file(out, examples[:3])  # overwrite in place
    assert gp.read_path_star_file(out) == examples[:3]


def test_generation_is_deterministic_given_the_seed() -> None:
    task = GraphPathTask()
    a = task.sample_batch(np.random.default_rng(5), 64)
    b = task.sample_batch(np.random.default_rng(5), 64)
    c = task.sample_batch(np.random.default_rng(6), 64)
    assert np.array_equal(a.tokens, b.tokens) and not np.array_equal(a.tokens, c.tokens)
    assert np.array_equal(GraphPathTask().eval_tokens(), task.eval_tokens())
    other = GraphPathTask(GraphPathConfig(eval_seed=99)).eval_tokens()
    assert not np.array_equal(other, task.eval_tokens())
    assert len(task.eval_tokens()) == 2000


@pytest.mark.parametrize("line, expect", [
    ("1,2|1,3/1,2=1,2,5", "expected a path from source 1 to goal 2"),
    ("1,2|1,3/1,3=1,3|", "expected the path"),
    ("1,2|1,3/1,3", "expected 'edges/source,goal=path'"),
    ("1,2|1;3/1,3=1,3", "expected an edge"),
    ("1,2|1,3/1=1,3", "expected source,goal"),
    ("1,2|1,3/1,2=1,3,2", "not"),
    ("1,2|x,3/1,2=1,2", "expected an edge"),
])
def test_malformed_line_names_file_and_line(tmp_path: Path, line: str, expect: str) -> None:
    good = "32,3|16,12|3,19|32,34|34,6|6,16|19,47|47,28/32,12=32,34,6,16,12"
    path = tmp_path / "bad.txt"
    path.write_text(f"{good}\n{good}\n{line}\n{good}\n")
    with pytest.raises(ConfigError, match=f"^bad.txt:3: .*{expect}"):
        gp.read_path_star_file(path)


def test_labels_beyond_the_vocabulary_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "big.txt"
    path.write_text("1,2|1,3/1,2=1,2\n1,60|1,3/1,60=1,60\n")
    assert len(gp.read_path_star_file(path, num_nodes=61)) == 2
    with pytest.raises(ConfigError, match=r"big.txt:2: .*exceeds the vocabulary \(num_nodes N=50"):
        gp.read_path_star_file(path, num_nodes=50)
    with pytest.raises(ConfigError, match="exceed"):
        build_task("graph", {"eval_file": str(path), "degree": 2, "path_len": 2})
    with pytest.raises(ConfigError, match="not a readable file"):
        build_task("graph", {"eval_file": str(tmp_path / "missing.txt")})


def test_eval_file_of_another_shape_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"G\(d=5, l=3\).*allowed: G\(d=2, l=5\)"):
        build_task("graph", {"eval_file": str(shared_file("deg_5_path_3_nodes_50_test_20000.txt"))})


def test_variants_batch_layout() -> None:
    rng = np.random.default_rng(1)
    fwd = GraphPathTask().sample_batch(np.random.default_rng(1), 100)
    p, length, dollar = 27, 5, 53
    assert fwd.inputs is None
    assert np.array_equal(np.nonzero(fwd.loss_mask[0])[0], np.arange(p, p + length))
    assert (fwd.loss_mask.sum(axis=1) == length).all() and fwd.loss_mask[:, p:].all()
    rev = GraphPathTask(GraphPathConfig(variant="reverse")).sample_batch(np.random.default_rng(1), 100)
    assert np.array_equal(rev.tokens[:, :p], fwd.tokens[:, :p])
    assert np.array_equal(rev.tokens[:, p:], fwd.tokens[:, p:][:, ::-1])
    assert (rev.tokens[:, p] == fwd.tokens[:, p - 2]).all(), "reverse starts at the goal"
    tl = GraphPathTask(GraphPathConfig(variant="teacherless")).sample_batch(rng, 100)
    assert np.array_equal(tl.tokens, fwd.tokens) and np.array_equal(tl.loss_mask, fwd.loss_mask)
    assert tl.inputs is not None
    assert np.array_equal(tl.inputs == dollar, np.broadcast_to(np.arange(p + length) >= p, tl.tokens.shape))
    assert np.array_equal(tl.inputs[:, :p], tl.tokens[:, :p])
    assert not (tl.tokens == dollar).any()


def test_fixed_training_set() -> None:
    task = GraphPathTask(GraphPathConfig(train_graphs=40, train_seed=3))
    seen = {tuple(r) for r in task.sample_batch(np.random.default_rng(0), 1000).tokens.tolist()}
    fixed = {tuple(r) for r in task.train_set().tolist()}
    assert seen == fixed and len(fixed) == 40
    again = GraphPathTask(GraphPathConfig(train_graphs=40, train_seed=3)).train_set()
    assert np.array_equal(again, task.train_set())
    assert not np.array_equal(GraphPathTask(GraphPathConfig(train_graphs=40, train_seed=4)).train_set(), again)
    assert GraphPathTask().train_set() is None


@pytest.mark.parametrize("overrides, field", [
    ({"degree": 0}, "degree"),
    ({"path_len": 1}, "path_len"),
    ({"degree": 5, "path_len": 11, "num_nodes": 50}, "num_nodes"),
    ({"variant": "sideways"}, "variant"),
    ({"train_graphs": -1}, "train_graphs"),
    ({"eval_graphs": 0}, "eval_graphs"),
    ({"num_nodes": "50"}, "num_nodes"),
])
def test_bad_configs_raise_config_error(overrides: dict, field: str) -> None:
    with pytest.raises(ConfigError, match=f"task.{field}"):
        build_task("graph", overrides)
    build_task("graph", {"degree": 5, "path_len": 11, "num_nodes": 51})  # the smallest N that fits


# --- fake predictors ---------------------------------------------------------------------

def _parse_prompt(prompt: list[int], n: int) -> tuple[dict[int, list[int]], int, int]:
    """Children lists, source and goal from a prompt ending in `/ s g =`."""
    assert prompt[-4] == n + 2 and prompt[-1] == n + 1
    body = prompt[:-4]
    children: dict[int, list[int]] = {}
    for i in range(0, len(body), 3):
        children.setdefault(body[i], []).append(body[i + 1])
    return children, prompt[-3], prompt[-2]


def _solve(prompt: list[int], n: int) -> list[int]:
    children, s, g = _parse_prompt(prompt, n)
    parent = {c: a for a, cs in children.items() for c in cs}
    path = [g]
    while path[-1] != s:
        path.append(parent[path[-1]])
    return path[::-1]


class FakePredictor:
    """Reads only the prompt. `mode`: 'perfect' solves the graph; 'hans' picks a random arm at
    the source and follows edges from the previous *input* token (the Clever Hans cheat)."""

    n_heads = 1

    def __init__(self, n: int, length: int, reverse: bool = False, mode: str = "perfect") -> None:
        self.n, self.length, self.reverse, self.mode = n, length, reverse, mode
        self.rng = np.random.default_rng(0)
        self.calls: list[str] = []

    def _path(self, prompt: list[int]) -> list[int]:
        if self.mode == "perfect":
            path = _solve(prompt, self.n)
            return path[::-1] if self.reverse else path
        children, s, _ = _parse_prompt(prompt, self.n)
        path = [s, int(self.rng.choice(children[s]))]
        while len(path) < self.length:
            path.append(children[path[-1]][0])
        return path

    def greedy(self, prompts: np.ndarray, max_new_tokens: int) -> np.ndarray:
        self.calls.append("greedy")
        assert max_new_tokens == self.length and (prompts[:, -1] == self.n + 1).all()
        return np.array([self._path(p) for p in prompts.tolist()])

    def teacher_forced(self, tokens: np.ndarray, inputs: np.ndarray | None = None) -> TeacherForced:
        self.calls.append("teacher_forced" if inputs is None else "teacherless")
        seen = tokens if inputs is None else inputs
        pred = np.array(seen[:, 1:])  # filler; the path positions are overwritten below
        p = tokens.shape[1] - self.length
        for b, row in enumerate(seen.tolist()):
            prompt = row[:p]
            if self.mode == "perfect" or inputs is not None:
                pred[b, p - 1:] = self._path(prompt)
            else:  # teacher-forced cheat: the source, a random arm, then the child of the input
                children, s, _ = _parse_prompt(prompt, self.n)
                pred[b, p - 1] = s
                pred[b, p] = self.rng.choice(children[s])
                for t in range(p + 1, p + self.length - 1):
                    pred[b, t] = children.get(row[t], [-1])[0]
        pred = pred[:, :, None]
        position_nll = np.arange(pred.shape[1])[None, :, None] / 100.0  # nll t/100 at position t
        return TeacherForced(predictions=pred, nll=np.broadcast_to(position_nll, pred.shape).copy())

    def parallel(self, prompts: np.ndarray) -> np.ndarray:
        raise NotImplementedError


@pytest.mark.parametrize("variant", ["forward", "reverse", "teacherless"])
def test_perfect_predictor_scores_one(variant: str) -> None:
    task = GraphPathTask(GraphPathConfig(variant=variant, eval_graphs=300))
    predictor = FakePredictor(50, 5, reverse=variant == "reverse")
    metrics = task.evaluate(predictor)
    assert set(metrics) == {"exact_path_acc", "teacher_forced_acc", "path_nll",
                            *(f"pos_acc/{k}" for k in range(1, 6)), *(f"tf_pos_acc/{k}" for k in range(1, 6))}
    nll = metrics.pop("path_nll")
    assert all(v == 1.0 for v in metrics.values()), metrics
    # Path token k (k = 0..l-1) is predicted at position prefix_len - 1 + k, where the nll is its position / 100.
    assert nll == pytest.approx((task.prefix_len - 1 + (5 - 1) / 2) / 100), "nll read at the path positions"
    expected = {"forward": "greedy", "reverse": "greedy", "teacherless": "teacherless"}[variant]
    assert expected in predictor.calls and "teacher_forced" in predictor.calls
    if variant == "teacherless":
        assert "greedy" not in predictor.calls, "teacherless decodes the whole path in one forward"


@pytest.mark.parametrize("d, length", [(2, 5), (5, 3)])
def test_clever_hans_predictor_scores_one_over_d_at_position_2(d: int, length: int) -> None:
    task = GraphPathTask(GraphPathConfig(degree=d, path_len=length, eval_graphs=2000))
    m = task.evaluate(FakePredictor(50, length, mode="hans"))
    assert m["pos_acc/1"] == 1.0 and m["tf_pos_acc/1"] == 1.0
    assert abs(m["pos_acc/2"] - 1 / d) < 0.04 and abs(m["exact_path_acc"] - 1 / d) < 0.04
    assert abs(m["tf_pos_acc/2"] - 1 / d) < 0.04
    assert all(m[f"tf_pos_acc/{k}"] == 1.0 for k in range(3, length + 1)), "later tokens follow from the input"
    assert all(abs(m[f"pos_acc/{k}"] - m["pos_acc/2"]) < 1e-9 for k in range(3, length + 1)), "wrong arm stays wrong"


def test_teacherless_evaluation_never_shows_the_path() -> None:
    class CopyInputs(FakePredictor):
        def teacher_forced(self, tokens: np.ndarray, inputs: np.ndarray | None = None) -> TeacherForced:
            seen = tokens if inputs is None else inputs
            pred = seen[:, 1:, None]  # echoes the next *input* token
            return TeacherForced(predictions=pred, nll=np.zeros(pred.shape))

    task = GraphPathTask(GraphPathConfig(variant="teacherless", eval_graphs=100))
    metrics = task.evaluate(CopyInputs(50, 5))
    assert metrics["exact_path_acc"] == 0.0 and metrics["pos_acc/1"] == 0.0
    assert metrics["teacher_forced_acc"] == 1.0


class AnyShapeSolver(FakePredictor):
    """Solves graphs of any shape; with `wrong_len`, gets the second node wrong on paths of that length."""

    def __init__(self, wrong_len: int = 0) -> None:
        super().__init__(50, 0)
        self.wrong_len = wrong_len

    def greedy(self, prompts: np.ndarray, max_new_tokens: int) -> np.ndarray:
        paths = np.array([_solve(p, 50) for p in prompts.tolist()])
        assert paths.shape[1] == max_new_tokens
        if max_new_tokens == self.wrong_len:
            paths[:, 1] = 49 - paths[:, 1]
        return paths

    def teacher_forced(self, tokens: np.ndarray, inputs: np.ndarray | None = None) -> TeacherForced:
        pred = tokens[:, 1:, None]
        return TeacherForced(predictions=pred, nll=np.zeros(pred.shape))


def test_evaluate_on_the_published_file_and_on_example_lists() -> None:
    path = str(shared_file("deg_2_path_5_nodes_50_test_20000.txt"))
    task = build_task("graph", {"eval_file": path})
    assert "graph" in task_names() and len(task.eval_tokens()) == 20000
    assert task.evaluate(FakePredictor(50, 5), max_examples=200)["exact_path_acc"] == 1.0
    hans = task.evaluate(FakePredictor(50, 5, mode="hans"), max_examples=2000)
    assert abs(hans["pos_acc/2"] - 0.5) < 0.04
    # Lists of examples, one shape or two mixed (scored shape by shape, then pooled).
    d5 = gp.read_path_star_file(shared_file("deg_5_path_3_nodes_50_test_20000.txt"))[:100]
    d2 = gp.read_path_star_file(path)[:100]
    assert GraphPathTask().evaluate_examples(FakePredictor(50, 5), d2)["exact_path_acc"] == 1.0
    mixed = GraphPathTask().evaluate_examples(AnyShapeSolver(), d2 + d5)
    assert mixed["exact_path_acc"] == 1.0 and mixed["pos_acc/3"] == 1.0 and mixed["pos_acc/5"] == 1.0
    half = GraphPathTask().evaluate_examples(AnyShapeSolver(wrong_len=3), d2 + d5)
    assert half["exact_path_acc"] == 0.5 and half["pos_acc/1"] == 1.0 and half["pos_acc/2"] == 0.5
    with pytest.raises(ConfigError, match="exceeds the vocabulary"):
        GraphPathTask(GraphPathConfig(num_nodes=40)).evaluate_examples(FakePredictor(40, 5), d2)


def test_show_examples_is_readable() -> None:
    task = GraphPathTask(GraphPathConfig(variant="teacherless", eval_graphs=10))
    text = task.show_examples(np.random.default_rng(0), 2)
    lines = text.splitlines()
    assert [ln.split(":")[0] for ln in lines] == ["train", "train", "input", "eval"]
    assert lines[2].endswith("=$$$$$")
    ex = gp.parse_line(lines[0].split(": ")[1])
    assert_path_star(ex, 2, 5, 50)


def test_step_errors_sort_each_teacher_forced_guess() -> None:
    examples = gp.read_path_star_file(shared_file("deg_2_path_5_nodes_50_test_20000.txt"))[:400]
    perfect = GraphPathTask().step_errors(FakePredictor(50, 5), examples)
    assert sorted(perfect) == [2, 3, 4, 5] and all(kinds["right"] == 1.0 for kinds in perfect.values())
    # The Clever Hans cheat: a random arm at position 2 (the other arm's first node half the time), then the child
    # of the input node, which is right when writing source -> goal ...
    hans = GraphPathTask().step_errors(FakePredictor(50, 5, mode="hans"), examples)
    assert abs(hans[2]["right"] - 0.5) < 0.08 and hans[2]["right"] + hans[2]["other arm"] == 1.0
    assert all(hans[k]["right"] == 1.0 for k in (3, 4, 5))
    # ... and one step the wrong way when writing goal -> source (at position 2 it names a child of the source:
    # the path's second node, or the other arm's first).
    rev = GraphPathTask(GraphPathConfig(variant="reverse")).step_errors(FakePredictor(50, 5, mode="hans"), examples)
    assert abs(rev[2]["on the path"] - 0.5) < 0.08 and rev[2]["on the path"] + rev[2]["other arm"] == 1.0
    assert all(rev[k]["wrong way"] == 1.0 for k in (3, 4, 5))
    for kinds in (*perfect.values(), *hans.values(), *rev.values()):
        assert set(kinds) == set(gp.STEP_KINDS) and sum(kinds.values()) == pytest.approx(1.0)
    with pytest.raises(ConfigError, match="at least one example"):
        GraphPathTask().step_errors(FakePredictor(50, 5), [])
    d5 = gp.read_path_star_file(shared_file("deg_5_path_3_nodes_50_test_20000.txt"))[:10]
    with pytest.raises(ConfigError, match="mix graph shapes"):
        GraphPathTask().step_errors(FakePredictor(50, 5), examples[:10] + d5)
