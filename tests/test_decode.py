"""Self-speculative decoding: exactly greedy decoding's output, with the right counts.

Random models have heads that guess badly and differently for every sequence, so passes
accept mixed numbers of tokens across a batch; trained models (a few seconds of training on
a predictable induction task) have heads that guess well. Either way the output must equal
`greedy_decode` token for token.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from lab.config import HEAD_TYPES, ModelConfig, RunConfig
from lab.decode import (
    Speculator,
    greedy_decode,
    new_cache,
    propose,
    speculative_decode,
)
from lab.decode_bench import main, measure_run, prompt_batches
from lab.model import MTPTransformer
from lab.train import train
from tasks import build_task, task_names
from tests.conftest import run_cli


def make(n: int, kind: str, vocab: int = 5, block: int = 48, seed: int = 0) -> MTPTransformer:
    torch.manual_seed(seed)
    config = ModelConfig(d_model=32, n_layer=5, n_head=2, n_future=n, head_type=kind, vocab_size=vocab,
                         block_size=block)
    return MTPTransformer(config).eval()


# ----- a plain, cache-free reference of blockwise parallel decoding (one sequence) -----

def naive_propose(model: MTPTransformer, seq: torch.Tensor, k: int) -> list[int]:
    """Head i's guess at the last position, each head reading the guesses before it
    (what deepseek heads need; other heads ignore tokens after their position)."""
    ext, out = seq, []
    for i in range(k):
        token = model(ext[None], heads=i + 1)[0, len(seq) - 1, i].argmax()
        out.append(int(token))
        ext = torch.cat([ext, token[None]])
    return out


def naive_blockwise(model: MTPTransformer, prompt: torch.Tensor, N: int, k: int) -> dict:
    """Stern et al.'s greedy blockwise parallel decoding, rerunning the whole sequence each time."""
    proposal = naive_propose(model, prompt, k)
    out, forwards = [proposal[0]], 1
    checked, accepted, gained = [1] + [0] * (k - 1), [1] + [0] * (k - 1), [0] * k
    while len(out) < N:
        forwards += 1
        checked[0] += 1
        accepted[0] += 1
        committed = torch.cat([prompt, torch.tensor(out)])
        drafts = proposal[1:]
        greedy = model(torch.cat([committed, torch.tensor(drafts, dtype=torch.long)])[None], heads=1)
        greedy = greedy[0, len(committed) - 1:, 0].argmax(-1).tolist()
        a = 0
        while a < len(drafts) and drafts[a] == greedy[a]:
            a += 1
        for j in range(1, k):
            if j <= a + 1 and len(out) - 1 + j < N:
                checked[j] += 1
                accepted[j] += j <= a
        gained[a] += 1
        out += greedy[: a + 1]
        proposal = naive_propose(model, torch.cat([committed, torch.tensor(drafts[:a], dtype=torch.long)]), k)
        assert proposal[0] == greedy[a]
    return {"tokens": out[:N], "forwards": forwards, "checked": checked, "accepted": accepted, "gained": gained}


# ----- random models -----

@pytest.mark.parametrize("kind", HEAD_TYPES)
def test_speculative_equals_greedy_on_random_models(kind: str) -> None:
    for n in (1, 2, 4):
        model = make(n, kind, seed=n)
        for batch in (1, 5):
            prompts = torch.randint(0, 5, (batch, 7), generator=torch.Generator().manual_seed(batch))
            reference = greedy_decode(model, prompts, 30)
            for k in range(1, n + 1):
                out, stats = speculative_decode(model, prompts, 30, k)
                assert torch.equal(out, reference), (kind, n, batch, k)
                assert stats.tokens == batch * 30 and stats.forwards <= batch * 30
                if k == 1:
                    assert stats.forwards == batch * 30 and stats.tokens_per_forward == 1.0


@pytest.mark.parametrize("kind", HEAD_TYPES)
def test_counts_and_proposals_match_a_cache_free_reference(kind: str) -> None:
    """Forwards, per-head checks and acceptances equal those of a plain reimplementation,
    sequence by sequence, in a batch where sequences accept different numbers of tokens."""
    model = make(4, kind, seed=7)
    prompts = torch.randint(0, 5, (4, 6), generator=torch.Generator().manual_seed(3))
    mixed = False
    for k in (2, 3, 4):
        out, stats = speculative_decode(model, prompts, 25, k)
        refs = [naive_blockwise(model, p, 25, k) for p in prompts]
        assert out.tolist() == [r["tokens"] for r in refs]
        assert stats.forwards == sum(r["forwards"] for r in refs)
        for key in ("checked", "accepted", "gained"):
            assert getattr(stats, key) == [sum(col) for col in zip(*(r[key] for r in refs))], (kind, k, key)
        mixed |= len({r["forwards"] for r in refs}) > 1
    assert mixed  # the batch's sequences did not advance in step


@pytest.mark.parametrize("kind", HEAD_TYPES)
def test_proposals_of_one_forward(kind: str) -> None:
    """Head 1's greedy token, then each head's guess (deepseek heads reading the guesses before)."""
    model = make(4, kind, vocab=7, seed=2)
    prompts = torch.randint(0, 7, (3, 9), generator=torch.Generator().manual_seed(5))
    got = propose(model, prompts, 4)
    assert got.tolist() == [naive_propose(model, p, 4) for p in prompts]
    assert torch.equal(got[:, 0], greedy_decode(model, prompts, 1)[:, 0])


def test_deepseek_cache_matches_a_forward_over_the_true_tokens() -> None:
    """After a prompt pass and a pass that accepts 2 of 3 guesses, every cache entry whose
    lookahead token is known (head i at position t reads token t+i-1) equals that of a plain
    forward over the true sequence, although earlier passes computed some from guesses."""
    model = make(4, "deepseek", vocab=7, seed=4)
    B, P = 3, 6
    prompts = torch.randint(0, 7, (B, P), generator=torch.Generator().manual_seed(8))
    true = greedy_decode(model, prompts, 8)
    spec = Speculator(model, B, 32, 4)
    spec.step(prompts, torch.arange(P).expand(B, P), verify=False)
    spec.cache.advance(P)
    block = torch.cat([true[:, :3], (true[:, 3:4] + 1) % 7], dim=1)  # 2 right guesses, then a wrong one
    _, accepted, drafts = spec.step(block, P + torch.arange(4).expand(B, 4), verify=True)
    assert accepted.tolist() == [2] * B
    reference = new_cache(model, B, 32)
    model.hidden_states(torch.cat([prompts, true], dim=1), positions=torch.arange(P + 8), cache=reference)
    n_trunk = len(model.transformer.h)
    for layer in range(n_trunk + 4):
        i = max(layer - n_trunk, 0)  # trunk and head 1 (i = 0) read no future token
        known = [t for t in range(P + 3) if t + i <= P + 3]  # tokens up to P+3 are certain now
        for store in ("k", "v"):
            got, want = getattr(spec.cache, store)[layer][:, :, known], getattr(reference, store)[layer][:, :, known]
            assert torch.allclose(got, want, atol=1e-5), (layer, store)
    # The proposals: heads 2..4 at the last confirmed position, reading the guesses before them.
    assert drafts.tolist() == [naive_propose(model, torch.cat([p, t[:3]]), 4)[1:] for p, t in zip(prompts, true)]


def test_bad_arguments() -> None:
    model = make(2, "parallel")
    prompts = torch.zeros(1, 4, dtype=torch.long)
    for k in (0, 3):
        with pytest.raises(ValueError, match="between 1 and"):
            speculative_decode(model, prompts, 5, k)
    with pytest.raises(ValueError, match="exceed the context"):
        speculative_decode(model, prompts, 46, 2)
    out, _ = speculative_decode(model, prompts, 45, 2)  # exactly fills the context
    assert torch.equal(out, greedy_decode(model, prompts, 45))


@pytest.mark.parametrize("name", task_names())
def test_speculative_equals_greedy_on_every_tasks_prompts(name: str) -> None:
    task = build_task(name)
    block = task.seq_len - 1
    for kind in ("parallel", "causal", "deepseek"):
        torch.manual_seed(1)
        model = MTPTransformer(ModelConfig(d_model=32, n_layer=4, n_head=2, n_future=3, head_type=kind,
                                           vocab_size=task.vocab_size, block_size=block)).eval()
        batches = prompt_batches(task, 4, 2, block, 12, torch.device("cpu"))
        assert all(p.shape[0] == 4 for p, _ in batches)
        for prompts, new in batches:
            reference = greedy_decode(model, prompts, new)
            for k in (1, 2, 3):
                assert torch.equal(speculative_decode(model, prompts, new, k)[0], reference), (name, kind, k)


# ----- trained models -----

def tiny_run(kind: str, steps: int = 100) -> RunConfig:
    """Induction with a near-deterministic filler chain: a few seconds of training make the
    heads guess greedy continuations well."""
    config = RunConfig(task="induction", seed=0, size="tiny", experiment="decode-test",
                       task_config={"seq_len": 48, "filler_vocab": 16, "name_vocab": 8, "branching": 1.5,
                                    "eval_stories": 16, "mentions": 2})
    m = config.model
    m.d_model, m.n_head, m.n_layer, m.n_future, m.head_type = 32, 2, 6, 4, kind
    t = config.train
    t.steps, t.batch_size, t.lr, t.warmup_steps = steps, 16, 1e-2, 10
    t.eval_every = t.checkpoint_every = steps
    t.val_batches, t.eval_examples = 1, 16
    return config


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("runs")
    return {kind: Path(train(tiny_run(kind), root, device="cpu", quiet=True)["run_dir"])
            for kind in ("parallel", "deepseek")}


@pytest.mark.parametrize("kind", ["parallel", "deepseek"])
def test_trained_model_is_exact_and_faster_per_forward(trained: dict[str, Path], kind: str) -> None:
    result = measure_run(trained[kind], batch=8, max_new=32, n_batches=1, repeats=1)
    rows = {r["k"]: r for r in result["rows"]}
    assert sorted(rows) == [1, 2, 3, 4] and all(r["exact"] for r in rows.values())
    assert rows[1]["tokens_per_forward"] == 1.0
    # Trained heads guess well: more tokens per forward with every extra head.
    tpf = [rows[k]["tokens_per_forward"] for k in (1, 2, 3, 4)]
    assert tpf == sorted(tpf) and tpf[3] > 2.0, tpf
    assert all(a is not None and a > 0.5 for a in rows[4]["acceptance"])
    # Batch 1, other prompts: still greedy's output.
    model_result = measure_run(trained[kind], batch=1, max_new=40, n_batches=2, repeats=1)
    assert all(r["exact"] for r in model_result["rows"]) and model_result["batch_sizes"] == [1, 1]


def test_cli_rejects_bad_input(trained: dict[str, Path], tmp_path: Path, capsys) -> None:
    run = trained["parallel"]
    empty = tmp_path / "not-a-run"
    empty.mkdir()
    (empty / "config.json").write_text(json.dumps(tiny_run("parallel").to_dict()))
    cases = [([str(tmp_path / "missing")], "does not exist"), ([str(empty)], "no checkpoint.pt"),
             ([str(run), "--k", "0"], "k must be in 1..4"), ([str(run), "--k", "5"], "k must be in 1..4"),
             ([str(run), "--batch", "0"], "--batch must be a positive"),
             ([str(run), "--max-new", "-1"], "--max-new must be a positive")]
    for argv, needle in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert needle in err and err.count("\n") == 1, err
    assert not (run / "speculative.json").exists() and not (empty / "speculative.json").exists()


def test_cli_on_a_file_says_it_is_not_a_run_directory(tmp_path: Path, capsys) -> None:
    checkpoint = tmp_path / "checkpoint.pt"
    checkpoint.write_bytes(b"")
    assert main([str(checkpoint)]) == 2
    err = capsys.readouterr().err
    assert "is a file, not a run directory" in err and err.count("\n") == 1, err
    assert not (tmp_path / "speculative.json").exists()


def test_cli_prints_table_and_writes_json(trained: dict[str, Path]) -> None:
    run = trained["deepseek"]
    proc = run_cli(["lab.decode", str(run), "--batch", "4", "--max-new", "16", "--batches", "1", "--repeats", "1"])
    assert proc.returncode == 0, proc.stderr
    assert "tokens/fwd" in proc.stdout and "acceptance" in proc.stdout
    data = json.loads((run / "speculative.json").read_text())
    assert [r["k"] for r in data["rows"]] == [1, 2, 3, 4]
    assert data["n_future"] == 4 and data["head_type"] == "deepseek" and data["batch_sizes"] == [4]
    assert all(r["exact"] and r["speedup"] > 0 and len(r["acceptance"]) == r["k"] for r in data["rows"])
    assert not list(run.glob(".*tmp"))


def test_speculative_experiment_plans_and_measures_its_runs(tmp_path: Path) -> None:
    from lab import runs
    from lab.experiments import plan
    from lab.experiments.speculative import measure
    configs = plan("speculative", "quick")
    variants = {(c.task, c.model.n_future, c.model.head_type) for c in configs}
    from lab.experiments import TASKS
    assert variants == {(t, n, kind) for t in TASKS
                        for kind, n in [("parallel", 1), ("parallel", 2), ("parallel", 4), ("causal", 4),
                                        ("deepseek", 4)]}
    # One complete run (an untrained model stands in for the trained one); the others are missing.
    config = next(c for c in configs if c.task == "graph" and c.model.n_future == 2)
    run_dir = tmp_path / config.experiment / config.run_name()
    runs.write_json(run_dir / "config.json", config.to_dict())
    runs.write_json(run_dir / "meta.json", {"status": "complete"})
    runs.write_json(run_dir / "summary.json", {})
    torch.save({"model": MTPTransformer(config.model).state_dict()}, run_dir / "checkpoint.pt")
    [result] = measure("quick", tmp_path, batch=2, max_new=5, quiet=True)
    assert json.loads((run_dir / "speculative.json").read_text()) == json.loads(json.dumps(result))
    assert [r["k"] for r in result["rows"]] == [1, 2] and all(r["exact"] for r in result["rows"])
    assert measure("quick", tmp_path, quiet=True) == []  # measured already
    assert len(measure("quick", tmp_path, batch=2, max_new=5, force=True, quiet=True)) == 1
