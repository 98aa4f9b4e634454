"""Induction: two-token character names repeated in synthetic stories (paper, section 4.1).

The paper trained on children's stories and measured accuracy on the *second token of a
two-token name that was already mentioned*: the first token depends on the story, but the
second one can only be copied from the earlier mention, which is what induction heads do.

A story here is filler text from a fixed random Markov chain over `filler_vocab` tokens
(Zipf-like transition rows, so the filler is learnable but not trivial), into which
`characters` characters are mentioned `mentions` times each at random places. A name is a
pair (first, second) of tokens from two separate name vocabularies; the pair is drawn
uniformly per story, so the second token is unpredictable from local statistics and can
only be copied from an earlier mention. The evaluation set uses name pairs held out from
training, so memorised pairs cannot help: only induction solves it.

A fraction `induction_rich` of training sequences instead repeats a random segment of
filler (the Olsson et al. pattern), the analogue of the paper's Appendix J where the data
itself demands induction.

Token layout: [0, filler_vocab) filler, then the first-name tokens, then the second-name
tokens. Every token is a training target.

Metrics (head 1, teacher-forced, on the fixed evaluation stories):
- `second_token_acc`: the paper's metric, at repeated mentions;
- `second_token_acc_first_mention`: the same at first mentions, a control near chance;
- `first_token_acc_repeat`: the first name token at repeated mentions (about 1/characters);
- `filler_loss`: head-1 loss on filler targets; `filler_acc` likewise.
"""

from __future__ import annotations

from dataclasses import dataclass

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


@dataclass
class InductionConfig(TaskConfig):
    seq_len: int = 128  # tokens per story
    filler_vocab: int = 256
    name_vocab: int = 48  # tokens available for each of the two name positions
    characters: int = 2  # characters per story
    mentions: int = 3  # mentions per character
    branching: float = 1.2  # Zipf exponent of each filler transition row (higher = more predictable)
    induction_rich: float = 0.0  # fraction of training sequences that repeat a random segment
    heldout_pairs: float = 0.2  # fraction of name pairs reserved for evaluation
    eval_stories: int = 512
    language_seed: int = 0  # fixes the Markov chain and the held-out pairs

    def validate(self) -> None:
        for name in ("seq_len", "filler_vocab", "name_vocab", "characters", "mentions", "eval_stories"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"task.{name} must be positive, got {getattr(self, name)}")
        if 2 * self.characters > self.name_vocab:
            raise ConfigError(f"task.characters={self.characters} needs task.name_vocab >= {2 * self.characters}, "
                              f"got {self.name_vocab}")
        slots = (self.seq_len - 1) // 3
        if self.characters * self.mentions > slots:
            raise ConfigError(
                f"{self.characters} characters x {self.mentions} mentions do not fit in task.seq_len={self.seq_len} "
                f"(at most {slots} mentions); raise seq_len or lower mentions"
            )
        if not 0.0 <= self.induction_rich <= 1.0:
            raise ConfigError(f"task.induction_rich must be in [0, 1], got {self.induction_rich}")
        if not 0.0 < self.heldout_pairs < 1.0:
            raise ConfigError(f"task.heldout_pairs must be in (0, 1), got {self.heldout_pairs}")
        if self.branching <= 0:
            raise ConfigError(f"task.branching must be positive, got {self.branching}")


@dataclass
class Stories:
    """Stories with the positions and kinds of their name mentions."""

    tokens: np.ndarray  # (B, L)
    name_pos: np.ndarray  # (B, M): position of each mention's first token
    repeat: np.ndarray  # (B, M) bool: the character was mentioned before


@register
class InductionTask(Task):
    name = "induction"
    Config = InductionConfig
    primary_metric = "second_token_acc"
    # `python -m lab.run induction`: a few minutes on 2 CPU cores.
    defaults = TrainDefaults(steps=600, lr=1e-3, warmup_steps=60, eval_every=100)
    # Quick preset: 500 steps (1M tokens); a 1M next-token model forms induction after about
    # 0.5M tokens (the `dynamics` experiment), so 250 steps showed nothing at any size.
    quick = Schedule({"seq_len": 64, "eval_stories": 256}, batch_size=32, steps=500, eval_every=100)

    def __init__(self, config: InductionConfig) -> None:
        super().__init__(config)
        c = config
        rng = np.random.default_rng([c.language_seed, 7])
        # A Markov chain whose rows put Zipf-like mass on a random ordering of successors.
        ranks = np.argsort(rng.random((c.filler_vocab, c.filler_vocab)), axis=1)
        probs = 1.0 / (ranks + 1.0) ** c.branching
        probs /= probs.sum(axis=1, keepdims=True)
        self._cdf = np.cumsum(probs, axis=1)
        self._cdf[:, -1] = 1.0
        n_pairs = c.name_vocab * c.name_vocab
        heldout = rng.permutation(n_pairs)[: max(1, int(round(c.heldout_pairs * n_pairs)))]
        is_heldout = np.zeros(n_pairs, dtype=bool)
        is_heldout[heldout] = True
        self._train_pairs = np.flatnonzero(~is_heldout)
        self._eval_pairs = np.flatnonzero(is_heldout)
        self._eval: dict[str, Stories] = {}

    @property
    def vocab_size(self) -> int:
        return self.config.filler_vocab + 2 * self.config.name_vocab

    @property
    def seq_len(self) -> int:
        return self.config.seq_len

    # ----- generation -----
    def _filler(self, rng: np.random.Generator, batch: int, length: int) -> np.ndarray:
        out = np.empty((batch, length), dtype=np.int64)
        out[:, 0] = rng.integers(0, self.config.filler_vocab, size=batch)
        u = rng.random((batch, length))
        for t in range(1, length):
            rows = self._cdf[out[:, t - 1]]
            out[:, t] = (u[:, t, None] > rows).sum(axis=1)
        return out

    def _stories(self, rng: np.random.Generator, batch: int, pairs: np.ndarray) -> Stories:
        c = self.config
        L, M = c.seq_len, c.characters * c.mentions
        # Mention slots start at 1 + 3k so that mentions never touch; choose M of them.
        n_slots = (L - 1) // 3
        keys = rng.random((batch, n_slots))
        slots = np.sort(np.argsort(keys, axis=1)[:, :M], axis=1)
        name_pos = 1 + 3 * slots
        # Which character each mention names: a random order of each character's mentions.
        who = np.argsort(rng.random((batch, M)), axis=1) % c.characters
        story_pairs = self._distinct_names(rng, batch, pairs)  # (B, characters)
        firsts = c.filler_vocab + story_pairs // c.name_vocab
        seconds = c.filler_vocab + c.name_vocab + story_pairs % c.name_vocab
        rows = np.arange(batch)[:, None]
        is_name = np.zeros((batch, L), dtype=bool)
        is_name[rows, name_pos] = True
        is_name[rows, name_pos + 1] = True
        tokens = np.empty((batch, L), dtype=np.int64)
        tokens[~is_name] = self._filler(rng, batch, L - 2 * M).reshape(-1)
        tokens[rows, name_pos] = firsts[rows, who]
        tokens[rows, name_pos + 1] = seconds[rows, who]
        # A mention repeats if the same character appeared at an earlier mention.
        earlier = (who[:, :, None] == who[:, None, :]) & np.tri(M, k=-1, dtype=bool)[None]
        return Stories(tokens=tokens, name_pos=name_pos, repeat=earlier.any(axis=2))

    def _distinct_names(self, rng: np.random.Generator, batch: int, pairs: np.ndarray) -> np.ndarray:
        """Name pairs for each story such that no two characters share a first or a second
        token (otherwise the second token of a mention would be ambiguous)."""
        c = self.config
        chosen = pairs[rng.integers(0, len(pairs), size=(batch, c.characters))]
        while True:
            firsts, seconds = chosen // c.name_vocab, chosen % c.name_vocab
            clash = np.zeros(batch, dtype=bool)
            for a in range(c.characters):
                for b in range(a + 1, c.characters):
                    clash |= (firsts[:, a] == firsts[:, b]) | (seconds[:, a] == seconds[:, b])
            if not clash.any():
                return chosen
            chosen[clash] = pairs[rng.integers(0, len(pairs), size=(int(clash.sum()), c.characters))]

    def _repeated_segments(self, rng: np.random.Generator, batch: int) -> np.ndarray:
        """Filler with a random segment repeated later in the sequence (Olsson et al.)."""
        L = self.config.seq_len
        tokens = self._filler(rng, batch, L)
        seg = max(2, L // 4)
        start = rng.integers(0, L // 2 - seg + 1, size=batch) if L // 2 >= seg else np.zeros(batch, dtype=int)
        dest = rng.integers(L // 2, L - seg + 1, size=batch)
        cols = np.arange(seg)
        rows = np.arange(batch)[:, None]
        tokens[rows, dest[:, None] + cols] = tokens[rows, start[:, None] + cols]
        return tokens

    def sample_batch(self, rng: np.random.Generator, batch_size: int) -> Batch:
        tokens = self._stories(rng, batch_size, self._train_pairs).tokens
        if self.config.induction_rich > 0:
            rich = rng.random(batch_size) < self.config.induction_rich
            if rich.any():
                tokens[rich] = self._repeated_segments(rng, int(rich.sum()))
        return Batch(tokens=tokens, loss_mask=np.ones_like(tokens, dtype=bool))

    def eval_stories(self, split: str = "test") -> Stories:
        """The fixed evaluation stories of `split` (held-out name pairs), built once per task.

        Validation stories are drawn like the test stories (same held-out names, same
        distribution) from their own seed stream, and any story equal to a test story is
        dropped and replaced, so the two sets are disjoint.
        """
        check_split(split)
        if split not in self._eval:
            n = self.config.eval_stories
            if split == "test":
                rng = np.random.default_rng([self.config.eval_seed, 11])
                self._eval[split] = self._stories(rng, n, self._eval_pairs)
            else:
                self._eval[split] = self._disjoint_stories(self.eval_stories("test"), n)
        return self._eval[split]

    def _disjoint_stories(self, test: Stories, n: int) -> Stories:
        """`n` validation stories, none equal to a test story."""
        parts: list[Stories] = []
        kept, chunk = 0, 0
        while kept < n:
            check_draws(chunk, "stories")
            rng = np.random.default_rng([self.config.eval_seed, 11, 1, chunk])
            part = self._stories(rng, n, self._eval_pairs)
            exclude = np.concatenate([test.tokens, *[q.tokens for q in parts]])
            keep = rows_not_in(part.tokens, exclude)
            parts.append(Stories(part.tokens[keep], part.name_pos[keep], part.repeat[keep]))
            kept, chunk = kept + int(keep.sum()), chunk + 1
        return Stories(tokens=np.concatenate([q.tokens for q in parts])[:n],
                       name_pos=np.concatenate([q.name_pos for q in parts])[:n],
                       repeat=np.concatenate([q.repeat for q in parts])[:n])

    # ----- evaluation -----
    def evaluate(self, predictor: Predictor, max_examples: int | None = None,
                 split: str = "test") -> dict[str, float]:
        """Teacher-forced scores on the stories of `split`. `second_token_acc` (primary) and
        `second_token_nll` (its graded counterpart: mean negative log-likelihood of the true
        second token) count repeated mentions only; the other keys are controls."""
        stories = self.eval_stories(split)
        k = len(stories.tokens) if not max_examples else min(max_examples, len(stories.tokens))
        tokens, name_pos, repeat = stories.tokens[:k], stories.name_pos[:k], stories.repeat[:k]
        out = predictor.teacher_forced(tokens)
        head1 = out.predictions[:, :, 0]
        rows = np.arange(k)[:, None]
        second_ok = head1[rows, name_pos] == tokens[rows, name_pos + 1]
        first_ok = head1[rows, name_pos - 1] == tokens[rows, name_pos]
        filler_target = np.ones_like(tokens, dtype=bool)
        filler_target[rows, name_pos] = False
        filler_target[rows, name_pos + 1] = False
        filler_target = filler_target[:, 1:]  # target t+1 of position t
        right = head1 == tokens[:, 1:]
        second_nll = out.nll[:, :, 0][rows, name_pos]
        return {
            "second_token_acc": float(second_ok[repeat].mean()),
            "second_token_nll": float(second_nll[repeat].mean()),
            "second_token_acc_first_mention": float(second_ok[~repeat].mean()),
            "first_token_acc_repeat": float(first_ok[repeat].mean()),
            "filler_loss": float(out.nll[:, :, 0][filler_target].mean()),
            "filler_acc": float(right[filler_target].mean()),
        }

    def copy_probe(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Repeated mentions of the first `n` validation stories: the query is the first-name token
        (whose next token, the second name token, is the copy), the source the second name token of
        the character's latest earlier mention (characters never share a first token)."""
        stories = self.eval_stories("val")
        tokens, name_pos, repeat = stories.tokens[:n], stories.name_pos[:n], stories.repeat[:n]
        pairs = []
        for row in range(len(tokens)):
            for m in np.flatnonzero(repeat[row]):
                q = int(name_pos[row, m])
                earlier = [int(p) for p in name_pos[row, :m] if tokens[row, p] == tokens[row, q]]
                pairs.append((row, q, earlier[-1] + 1))
        return tokens, np.array(pairs, dtype=np.int64).reshape(-1, 3)

    # ----- display -----
    def token_text(self, token: int) -> str:
        c = self.config
        if token < c.filler_vocab:
            return f"w{token}"
        k = token - c.filler_vocab
        if k < c.name_vocab:
            return f"<{chr(65 + k % 26)}{k // 26}"
        k -= c.name_vocab
        return f"{chr(97 + k % 26)}{k // 26}>"

    def format_tokens(self, tokens: np.ndarray) -> str:
        return " ".join(self.token_text(int(t)) for t in tokens)

    def show_examples(self, rng: np.random.Generator, k: int) -> str:
        lines = ["Names are two tokens, shown as <X0 y1> (first token <.., second ..>); w# are filler words."]
        batch = self.sample_batch(rng, k)
        for i, row in enumerate(batch.tokens):
            lines.append(f"[train {i + 1}] {self.format_tokens(row)}")
        stories = self.eval_stories()
        lines.append(f"[eval 1, held-out names; repeated mentions at positions "
                     f"{stories.name_pos[0][stories.repeat[0]].tolist()}] {self.format_tokens(stories.tokens[0])}")
        return "\n".join(lines)
