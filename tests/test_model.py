"""Model shape rules, parameter matching, head wiring and KV-cache decoding."""

from __future__ import annotations

import pytest
import torch

from lab.config import SIZES, ModelConfig
from lab.decode import greedy_decode
from lab.model import MTPTransformer
from tasks import ConfigError


def make(n: int = 1, kind: str = "parallel", **kw) -> MTPTransformer:
    base = dict(d_model=32, n_layer=5, n_head=2, n_future=n, head_type=kind, vocab_size=17, block_size=24)
    base.update(kw)
    return MTPTransformer(ModelConfig(**base))


@pytest.mark.parametrize("kind", ["parallel", "causal", "anticausal"])
def test_parameter_matching_keeps_counts_equal(kind: str) -> None:
    counts = [make(n, kind).param_counts()["total"] for n in (1, 2, 3, 4)]
    assert len(set(counts)) == 1
    assert len(make(4, kind).transformer.h) == 1 and len(make(4, kind).heads) == 4


def test_matching_off_adds_heads_on_top() -> None:
    m = make(3, match_params=False)
    assert len(m.transformer.h) == 4 and len(m.heads) == 3
    assert m.param_counts()["total"] > make(1).param_counts()["total"]


def test_linear_heads_keep_full_trunk() -> None:
    m = make(3, "linear")
    assert len(m.transformer.h) == 5
    assert m.param_counts()["heads"] == 2 * 32 * 32  # head 1 is the identity


def test_one_head_is_a_plain_transformer() -> None:
    """n=1 logits equal a hand-written forward through embedding, 5 blocks, ln_f, lm_head."""
    m = make(1).eval()
    idx = torch.randint(0, 17, (2, 10))
    x = m.transformer.wte(idx) + m.transformer.wpe(torch.arange(10))
    for block in [*m.transformer.h, m.heads[0].block]:
        x = block(x)
    expected = m.lm_head(m.transformer.ln_f(x))
    assert torch.allclose(m(idx)[:, :, 0], expected, atol=1e-6)


def test_heads_share_no_parameters() -> None:
    m = make(4)
    ids = [{id(p) for p in h.parameters()} for h in m.heads]
    for i in range(4):
        for j in range(i + 1, 4):
            assert not ids[i] & ids[j]


@pytest.mark.parametrize("kind", ["parallel", "causal", "anticausal", "linear", "deepseek"])
def test_kv_cache_greedy_equals_uncached(kind: str) -> None:
    torch.manual_seed(0)
    m = make(3, kind).eval()
    prompts = torch.randint(0, 17, (4, 7))
    assert torch.equal(greedy_decode(m, prompts, 9, use_cache=True), greedy_decode(m, prompts, 9, use_cache=False))


def test_causal_head_reads_previous_head() -> None:
    """Perturbing head 1's weights changes head 2's output for causal heads, not for parallel ones."""
    idx = torch.randint(0, 17, (1, 8))
    for kind, should_change in (("causal", True), ("parallel", False)):
        torch.manual_seed(0)
        m = make(2, kind).eval()
        before = m(idx)[:, :, 1].clone()
        with torch.no_grad():
            m.heads[0].block.mlp.c_fc.weight.add_(1.0)
        assert (not torch.allclose(before, m(idx)[:, :, 1])) == should_change


def test_size_presets_match_their_names() -> None:
    for name, (d, layers, _) in SIZES.items():
        approx = 12 * d * d * layers
        scale = {"K": 1e3, "M": 1e6, "B": 1e9}[name[-1]]
        assert 0.6 < approx / (float(name[:-1]) * scale) < 1.6, name


@pytest.mark.parametrize("kw,needle", [
    ({"n_future": 0}, "at least 1"),
    ({"n_future": 5}, "layers"),
    ({"d_model": 0}, "d_model"),
    ({"head_type": "bogus"}, "head type"),
    ({"d_model": 30, "n_head": 4}, "divisible"),
])
def test_bad_shapes_are_config_errors(kw: dict, needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        make(**kw)
