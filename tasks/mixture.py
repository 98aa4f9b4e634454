"""A mixture of registered tasks: Table S6's shape, a general domain with a minority target domain.

Llama 2 was pretrained on general text in which code was a minority, then Table S6 continued
it on code alone. `mixture` builds that shape from the lab's tasks: each training sequence
comes from one component, drawn with the component's weight, and every component keeps its
own token ids in **one shared vocabulary** (the largest component's), as text and code share
tokens. A continuation on the target domain is the same mixture with the general weights set
to 0: it trains on target data only and still evaluates every component, so forgetting of
the general domain is measured by the same task.

Knobs are strings, so they travel through `--set`:

    task.components=induction:0.9,polynomial:0.1
    task.knobs=induction.seq_len=64,polynomial.max_ops=2

Metrics are each component's own, prefixed with its name (`polynomial/exact_match/in_domain`),
plus `<name>/nll`: head 1's mean negative log-likelihood of the component's targets on a
fixed held-out sample of its training distribution (the domain's loss; `NLL_SEQUENCES`
sequences per split). The primary metric is the target component's (the last component
unless `task.target` names another). Shorter sequences are right-padded with token 0 outside
the target mask, so padding never trains and never changes an earlier prediction.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from lab.values import convert, split_top_level
from tasks.base import (
    REGISTRY,
    Batch,
    ConfigError,
    Predictor,
    Schedule,
    Task,
    TaskConfig,
    TrainDefaults,
    check_split,
    make_config,
    register,
)

NLL_SEQUENCES = 128  # held-out sequences per component and split for the domain loss `<name>/nll`
_SPLIT_SALT = {"val": 0x76616C, "test": 0x74657374}


def parse_components(text: str) -> dict[str, float]:
    """`"induction:0.9,polynomial:0.1"` -> {name: weight}; weights >= 0 with a positive sum."""
    out: dict[str, float] = {}
    for part in (p.strip() for p in split_top_level(text) if p.strip()):
        name, sep, weight = part.partition(":")
        if not sep:
            raise ConfigError(f"task.components entry {part!r} needs NAME:WEIGHT, e.g. induction:0.9")
        if name == "mixture" or name not in REGISTRY:
            known = ", ".join(sorted(n for n in REGISTRY if n != "mixture"))
            raise ConfigError(f"task.components names unknown task {name!r}; choose from: {known}")
        try:
            out[name] = float(weight)
        except ValueError:
            raise ConfigError(f"task.components weight of {name!r} must be a number, got {weight!r}") from None
        if not out[name] >= 0:
            raise ConfigError(f"task.components weight of {name!r} must be >= 0, got {weight!r}")
    if not out or sum(out.values()) <= 0:
        raise ConfigError(f"task.components={text!r} needs at least one component with a positive weight")
    return out


def parse_knobs(text: str, components: dict[str, float]) -> dict[str, dict[str, str]]:
    """`"induction.seq_len=64,polynomial.max_ops=2"` -> {component: {knob: text}}."""
    out: dict[str, dict[str, str]] = {name: {} for name in components}
    for part in (p.strip() for p in split_top_level(text) if p.strip()):
        key, sep, value = part.partition("=")
        name, dot, knob = key.partition(".")
        if not sep or not dot or name not in components:
            raise ConfigError(f"task.knobs entry {part!r} must be COMPONENT.KNOB=VALUE for a component of "
                              f"task.components ({', '.join(components)})")
        out[name][knob] = value
    return out


def _typed(name: str, knobs: dict[str, str]) -> TaskConfig:
    """The component's config with knob texts parsed to its field types."""
    import dataclasses
    import typing
    types = typing.get_type_hints(REGISTRY[name].Config)
    fields = {f.name for f in dataclasses.fields(REGISTRY[name].Config)}
    parsed = {}
    for knob, text in knobs.items():
        if knob not in fields:
            raise ConfigError(f"task.knobs: {name} has no knob {knob!r}; known: {', '.join(sorted(fields))}")
        parsed[knob] = convert(text.strip(), types[knob], f"task.knobs: {name}.{knob}")
    return make_config(name, parsed)


@dataclass
class MixtureConfig(TaskConfig):
    """Components with weights, their knobs, and which component is the target."""

    components: str = "induction:0.9,polynomial:0.1"
    knobs: str = ""
    target: str = ""  # the component whose primary metric is the mixture's ("" = the last one)

    def validate(self) -> None:
        components = parse_components(self.components)
        parse_knobs(self.knobs, components)
        if self.target and self.target not in components:
            raise ConfigError(f"task.target={self.target!r} is not a component; choose one of: "
                              f"{', '.join(components)}")


@register
class MixtureTask(Task):
    """Sequences from several registered tasks, one shared vocabulary (see the module docstring)."""

    name: ClassVar[str] = "mixture"
    Config: ClassVar[type[TaskConfig]] = MixtureConfig
    # The default target's (polynomial); an instance names its own target's, prefixed with its name.
    primary_metric: ClassVar[str] = "polynomial/exact_match/in_domain"
    defaults: ClassVar[TrainDefaults] = TrainDefaults(steps=1000, lr=1e-3, warmup_steps=100, eval_every=100)
    quick: ClassVar[Schedule | None] = Schedule({}, batch_size=32, steps=1000, eval_every=100)
    in_task_sweeps: ClassVar[bool] = False  # a composite of the other tasks, not another task to sweep

    def __init__(self, config: MixtureConfig) -> None:
        super().__init__(config)
        self.weights = parse_components(config.components)
        knobs = parse_knobs(config.knobs, self.weights)
        self.parts: dict[str, Task] = {}
        for name in self.weights:
            part_config = _typed(name, knobs[name])
            part_config.eval_seed = config.eval_seed
            self.parts[name] = REGISTRY[name](part_config)
        self.target = config.target or list(self.weights)[-1]
        self.primary_metric = f"{self.target}/{self.parts[self.target].primary_metric}"

    @property
    def vocab_size(self) -> int:
        return max(part.vocab_size for part in self.parts.values())

    @property
    def seq_len(self) -> int:
        return max(part.seq_len for part in self.parts.values())

    def sample_batch(self, rng: np.random.Generator, batch_size: int) -> Batch:
        """Rows drawn from the components with their weights (a multinomial count per batch), each
        component's rows generated by its own sampler from the same generator, padded to one width."""
        names = list(self.weights)
        probs = np.array([self.weights[n] for n in names]) / sum(self.weights.values())
        counts = rng.multinomial(batch_size, probs)
        batches = [self.parts[n].sample_batch(rng, int(k)) for n, k in zip(names, counts) if k]
        return stack_batches(batches)

    def evaluate(self, predictor: Predictor, max_examples: int | None = None,
                 split: str = "test") -> dict[str, float]:
        """Every component's metrics (prefixed `<name>/`) and its held-out head-1 loss `<name>/nll`."""
        check_split(split)
        out: dict[str, float] = {}
        for i, (name, part) in enumerate(self.parts.items()):
            out.update({f"{name}/{k}": v for k, v in part.evaluate(predictor, max_examples, split).items()})
            out[f"{name}/nll"] = self.domain_nll(predictor, i, split)
        return out

    def domain_nll(self, predictor: Predictor, index: int, split: str) -> float:
        """Head 1's mean NLL of component `index`'s targets on its fixed held-out sample of `split`."""
        name = list(self.parts)[index]
        rng = np.random.default_rng([self.config.eval_seed, _SPLIT_SALT[split], index])
        batch = self.parts[name].sample_batch(rng, NLL_SEQUENCES)
        result = predictor.teacher_forced(batch.tokens, batch.inputs)
        nll = result.nll[:, :, 0]  # head 1: position t predicts t + 1
        mask = batch.loss_mask[:, 1:] & np.isfinite(nll)
        return float(nll[mask].mean()) if mask.any() else float("nan")

    def format_tokens(self, tokens: np.ndarray) -> str:
        return self.parts[self.target].format_tokens(tokens)

    def show_examples(self, rng: np.random.Generator, k: int) -> str:
        lines = [f"mixture of {', '.join(f'{n} ({w:g})' for n, w in self.weights.items())}; "
                 f"shared vocabulary of {self.vocab_size} tokens; target: {self.target}"]
        for name, part in self.parts.items():
            lines += [f"--- {name} ---", part.show_examples(rng, k)]
        return "\n".join(lines)

    def copy_probe(self, n: int) -> tuple[np.ndarray, np.ndarray] | None:
        probes = [p.copy_probe(n) for p in self.parts.values()]
        return next((p for p in probes if p is not None), None)


def stack_batches(batches: list[Batch]) -> Batch:
    """Concatenate batches of different widths, right-padding with token 0 outside the target mask."""
    width = max(b.tokens.shape[1] for b in batches)

    def pad(array: np.ndarray, fill) -> np.ndarray:
        return np.pad(array, ((0, 0), (0, width - array.shape[1])), constant_values=fill)

    tokens = np.concatenate([pad(b.tokens, 0) for b in batches])
    mask = np.concatenate([pad(b.loss_mask, False) for b in batches])
    inputs = None
    if any(b.inputs is not None for b in batches):
        inputs = np.concatenate([pad(b.input_tokens, 0) for b in batches])
    return Batch(tokens=tokens.astype(np.int64), loss_mask=mask, inputs=inputs)
