"""Model shape rules, parameter matching, head wiring and KV-cache decoding."""

from __future__ import annotations

import pytest
import torch

from lab import config as config_module
from lab.blocks import Block, CausalSelfAttention, block_param_count
from lab.config import SIZES, ModelConfig
from lab.decode import greedy_decode
from lab.heads import HEAD_TYPES
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


def preset(n: int, kind: str = "parallel", **kw) -> MTPTransformer:
    d, layers, heads = SIZES["1M"]
    return make(n, kind, d_model=d, n_layer=layers, n_head=heads, **kw)


def blocks_run_for_head_one(m: MTPTransformer) -> int:
    """Transformer blocks a forward of head 1 alone actually runs."""
    ran = []
    hooks = [b.register_forward_hook(lambda mod, i, o: ran.append(mod)) for b in m.modules() if isinstance(b, Block)]
    m.hidden_states(torch.randint(0, 17, (1, 6)), heads=1)
    for h in hooks:
        h.remove()
    return len({id(b) for b in ran})


@pytest.mark.parametrize("n,kind,non_embedding,depth,matched", [
    (1, "parallel", 984_448, 5, True),
    (4, "parallel", 984_448, 2, True),
    (4, "causal", 984_448, 2, True),
    (4, "anticausal", 984_448, 5, True),  # head 1 reads head 2 ... head 4 reads the trunk
    (4, "deepseek", 1_083_520, 2, False),  # 3 combining projections (2d x d) and 6 norms on top
    (4, "linear", 984_448 + 3 * 128 * 128, 5, False),
])
def test_param_counts_say_how_deep_head_one_is_and_whether_matched(n, kind, non_embedding, depth, matched) -> None:
    m = preset(n, kind)
    counts = m.param_counts()
    assert counts["non_embedding"] == non_embedding
    assert counts["next_token_depth"] == depth == blocks_run_for_head_one(m)
    assert counts["param_matched"] is matched
    assert counts["matched_note"].startswith("parameter-matched" if matched else "not parameter-matched")
    if not matched:
        assert f"{non_embedding - 984_448:+,}" in counts["matched_note"]


def test_unmatched_heads_sit_on_top_of_the_trunk() -> None:
    counts = make(3, match_params=False).param_counts()
    assert counts["next_token_depth"] == 5 and not counts["param_matched"]


@pytest.mark.parametrize("bias", [False, True])
def test_block_param_count_counts_a_block(bias: bool) -> None:
    config = ModelConfig(d_model=24, n_layer=2, n_head=2, mlp_ratio=3, bias=bias, vocab_size=5, block_size=5)
    assert block_param_count(config) == sum(p.numel() for p in Block(config).parameters())


@pytest.mark.parametrize("kind", ["parallel", "causal", "anticausal", "linear", "deepseek"])
def test_head_types_declare_their_blocks_and_inputs_truthfully(kind: str) -> None:
    m = make(3, kind)
    cls = HEAD_TYPES[kind]
    for i, head in enumerate(m.heads):
        attention = sum(isinstance(x, CausalSelfAttention) for x in head.modules())
        assert cls.head_blocks(m.config, i) == attention  # its KV-cache slots
        assert head.reads_next_embedding == (kind == "deepseek" and i > 0)
    assert len(m.transformer.h) == cls.trunk_layers(m.config)
    assert m.n_attention_layers == sum(isinstance(x, CausalSelfAttention) for x in m.modules())


def test_registry_is_what_the_config_accepts() -> None:
    assert tuple(HEAD_TYPES) == config_module.head_types() == config_module.HEAD_TYPES == ("parallel", "linear", "causal", "anticausal", "deepseek")
    assert config_module.attach_modes() == config_module.ATTACH_MODES == ("keep", "linear", "carve", "add", "deepseek", "drop")
