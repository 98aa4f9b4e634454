"""One checkpoint module: every reader of a trained run goes through `lab.checkpoints`, `@NAME`
references are parsed by `RunRef` only, and the decoding comparison takes a list of decoders."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from lab.checkpoints import RunRef, checkpoint_path
from lab.config import ModelConfig
from lab.decode import greedy_decode
from lab.decode_bench import Decoder, compare_decoders, greedy, speculative
from lab.errors import ConfigError
from lab.model import MTPTransformer
from tests.conftest import REPO


def test_only_the_checkpoint_module_loads_or_saves_torch_files() -> None:
    readers = [
        p.relative_to(REPO).as_posix()
        for p in (REPO / "lab").rglob("*.py")
        if "torch.load" in p.read_text() or "torch.save" in p.read_text()
    ]
    assert readers == ["lab/checkpoints.py"]


def test_at_references_are_parsed_by_run_ref_alone() -> None:
    parsers = [
        p.relative_to(REPO).as_posix()
        for p in [*(REPO / "lab").glob("*.py")]
        if 'startswith("@")' in p.read_text()
    ]
    # lab/selection.py (analysis: no torch, no trainer) still strips run ids from `@` texts itself
    assert sorted(parsers) == ["lab/checkpoints.py", "lab/selection.py"]
    ref = RunRef.parse("@graph-1M-n1-s0-abcd1234/checkpoint-step50.pt")
    assert (
        ref == RunRef("graph-1M-n1-s0-abcd1234", "checkpoint-step50.pt")
        and RunRef.parse("runs/x") is None
    )
    assert str(ref) == "@graph-1M-n1-s0-abcd1234/checkpoint-step50.pt"
    assert ref.path(Path("e")) == Path("e/graph-1M-n1-s0-abcd1234/checkpoint-step50.pt")


def test_checkpoint_path_follows_a_run_ref(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "checkpoint.pt").write_bytes(b"x")
    assert checkpoint_path("@src", tmp_path) == tmp_path / "src" / "checkpoint.pt"
    with pytest.raises(ConfigError, match="same experiment"):
        checkpoint_path("@src")


def test_compare_decoders_takes_any_list_of_decoders() -> None:
    torch.manual_seed(0)
    model = MTPTransformer(
        ModelConfig(d_model=32, n_layer=3, n_head=2, n_future=2, vocab_size=7, block_size=40)
    ).eval()
    prompts = torch.randint(0, 7, (3, 5))
    wrong = Decoder("shifted", lambda m, p, n: ((greedy_decode(m, p, n) + 1) % 7, None))
    rows = compare_decoders(
        model, [(prompts, 8)], [speculative(2, False), greedy(False), wrong], repeats=1
    )
    assert [r["decoder"] for r in rows] == ["speculative k=2", "greedy", "shifted"]
    assert [r["exact"] for r in rows] == [True, True, False] and rows[2][
        "mismatched_sequences"
    ] == 3
    assert (
        rows[0]["stats"].tokens == 3 * 8
        and rows[1]["stats"] is None
        and all(r["speedup"] > 0 for r in rows)
    )


def test_decode_module_holds_only_the_algorithms() -> None:
    text = (REPO / "lab" / "decode.py").read_text()
    assert "argparse" not in text and "def main" not in text and "def measure_run" not in text
    assert "def compare_decoders" in (REPO / "lab" / "decode_bench.py").read_text()
