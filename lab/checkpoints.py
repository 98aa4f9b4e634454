"""The one place that saves, loads and validates a run's checkpoint, and names a run with `@`.

- `save_checkpoint` / `load_checkpoint`: the training loop's full state (model, optimizer, schedule,
  RNG), written atomically and read with `weights_only=True`; a truncated or empty file is a
  `CheckpointError` naming the file and the fix, never a bare `EOFError`.
- `load_run`: a trained run directory -> its config, model and task (evaluation, decoding). A run
  that did not finish holds a partial checkpoint: refused unless `allow_incomplete`.
- `load_source` / `checkpoint_path`: the checkpoint behind `--init-from` (a run directory, a `.pt`
  file, or `@NAME[/FILE]`, a `RunRef` to a run of the same experiment) and `target_model_config`,
  the shape it becomes when finetuned. Plain config logic: the resolve step (`lab.resolve`) and
  experiment plans call it without importing the finetuning trainer (`lab.finetune`).
- `to_bytes`, `load_base`, `base_path`, `weights_digest`: committed bases (`lab.bases`),
  weights-only files named by the SHA-256 of their weights, checked on every load (`base:<digest>`).
- `write_checksums` / `verify_checksums`: SHA-256 of a complete run's final files
  (`SHA256SUMS`, the format `sha256sum -c` reads), so that corruption after the fact is found.

torch is imported inside the functions that need it, so `RunRef` costs nothing to import (the sweep
driver reads it to order its runs).
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lab import runs
from lab.config import ModelConfig, RunConfig
from lab.errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover - typing only
    import torch

    from lab.model import MTPTransformer
    from tasks import Task

CHECKSUMS = "SHA256SUMS"
CHECKED_FILES = (
    runs.CONFIG,
    runs.METRICS,
    runs.SUMMARY,
    runs.CHECKPOINT,
)  # what a complete run keeps


class CheckpointError(ConfigError):
    """A checkpoint or run file that cannot be used (missing, partial, truncated, corrupt)."""


# ----- "@NAME[/FILE]": a run of the same experiment -----


@dataclass(frozen=True)
class RunRef:
    """`@NAME[/FILE]`: run NAME of the same experiment (its checkpoint, or FILE in its directory).

    Configs of a pretrain-then-finetune sweep name their source this way, so they do not depend on
    where the sweep's output lives; the directory is found at run time (`path`)."""

    name: str
    file: str = ""

    @classmethod
    def parse(cls, text: str) -> RunRef | None:
        """The reference `text` spells, or None when it is a plain path."""
        if not text.startswith("@"):
            return None
        name, _, file = text[1:].partition("/")
        return cls(name, file)

    def __str__(self) -> str:
        return f"@{self.name}" + (f"/{self.file}" if self.file else "")

    def path(self, experiment_dir: Path) -> Path:
        """The run directory (or the named file in it) under `experiment_dir`."""
        return (
            Path(experiment_dir) / self.name / self.file
            if self.file
            else Path(experiment_dir) / self.name
        )


# ----- the training loop's checkpoint -----


def save_checkpoint(path: Path, model: Any, optimizer: Any, state: Any, config: RunConfig) -> None:
    """Model, optimizer, loop state (a dataclass), torch RNG and config, written atomically.

    The bytes are serialised in memory first, so a full disk shows as an `OSError` on the file
    (see `runs.atomic_write`), not as an opaque serialiser message."""
    import torch

    payload = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "state": dict(state.__dict__),
        "torch_rng": torch.get_rng_state(),
        "config": config.to_dict(),
    }
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    runs.atomic_write(path, lambda f: f.write(buffer.getbuffer()), binary=True)


def to_bytes(payload: dict[str, Any]) -> bytes:
    """A payload of tensors and plain values serialised as a checkpoint file's bytes (committed
    base weights, `lab.bases`; written with `runs.atomic_write`)."""
    import torch

    buffer = io.BytesIO()
    torch.save(payload, buffer)
    return buffer.getvalue()


def load_checkpoint(path: Path, device: Any = "cpu") -> dict[str, Any]:
    """A checkpoint's payload (`weights_only=True`); a `CheckpointError` names an unreadable one."""
    import torch

    path = Path(path)
    try:
        payload = torch.load(path, map_location=device, weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"{path} does not exist") from None
    except Exception as e:  # truncated, empty or foreign: torch raises many kinds
        kind = "empty" if path.stat().st_size == 0 else "truncated or corrupt"
        raise CheckpointError(
            f"{path} is {kind} ({type(e).__name__}); move it away and rerun the run's "
            "command to retrain"
        ) from None
    if not isinstance(payload, dict) or "model" not in payload:
        raise CheckpointError(f"{path} is not an mtp-lab checkpoint (no model weights in it)")
    return payload


# ----- a trained run directory -----


def read_config(run_dir: Path) -> RunConfig:
    """A run directory's `config.json` as a `RunConfig` (a `CheckpointError` if unreadable)."""
    path = Path(run_dir) / runs.CONFIG
    try:
        return RunConfig.from_dict(json.loads(path.read_text()))
    except (OSError, ValueError, TypeError) as e:
        raise CheckpointError(
            f"{path} is unreadable ({type(e).__name__}: {e}); it cannot be rebuilt from the "
            "run: rerun the run's command in a fresh --out"
        ) from None


def check_complete(run_dir: Path, what: str, allow_incomplete: bool = False) -> str | None:
    """Refuse a run that did not finish (its checkpoint is partial) unless `allow_incomplete`;
    then return the warning to print. A complete run's files must match their checksums."""
    status = runs.run_state(run_dir)
    if status != runs.Status.COMPLETE:
        if not allow_incomplete:
            raise CheckpointError(
                f"{what}: {str(run_dir)!r} is not a complete run (status: {status}); its "
                "checkpoint is partial: pass --allow-incomplete to use it anyway"
            )
        return (
            f"warning: {str(run_dir)!r} is not a complete run (status: {status}); "
            "using its partial "
            "checkpoint"
        )
    verify_checksums(run_dir)
    return None


def load_run(
    run_dir: str | Path, device: Any = "cpu", allow_incomplete: bool = True, what: str = "run"
) -> tuple[RunConfig, MTPTransformer, Task]:
    """The run's config, its trained model (eval mode, on `device`) and its task.

    `allow_incomplete=False` refuses a run that did not finish (`check_complete`)."""
    from lab.model import MTPTransformer
    from tasks import build_task

    run_dir = Path(run_dir)
    if run_dir.is_file():
        raise ConfigError(f"{str(run_dir)!r} is a file, not a run directory")
    if not run_dir.is_dir():
        raise ConfigError(f"run directory {str(run_dir)!r} does not exist")
    for name in (runs.CONFIG, runs.CHECKPOINT):
        if not (run_dir / name).is_file():
            raise ConfigError(f"{str(run_dir)!r} has no {name}; pass a trained run directory")
    if not allow_incomplete:
        check_complete(run_dir, what)
    config = read_config(run_dir)
    model = MTPTransformer(config.model).to(device)
    model.load_state_dict(load_checkpoint(run_dir / runs.CHECKPOINT, device)["model"])
    return config, model.eval(), build_task(config.task, config.task_config)


# ----- the source of a finetuning run -----


def checkpoint_path(init_from: str, experiment_dir: Path | None = None) -> Path:
    """The checkpoint file behind `--init-from`: a run directory or a .pt file, or `@NAME[/FILE]`
    for a run of the same experiment (resolved in `experiment_dir`); or `base:<digest>`, a
    committed base (`lab.bases`)."""
    if init_from.startswith(BASE_PREFIX):
        return base_path(init_from)
    ref = RunRef.parse(init_from)
    if ref is not None:
        if experiment_dir is None:
            raise ConfigError(
                f"--init-from {init_from}: '@' names a run of the same experiment; "
                "give a path instead"
            )
        path = ref.path(experiment_dir)
    else:
        path = Path(init_from)
    if path.is_dir():
        path = path / runs.CHECKPOINT
    if not path.is_file():
        raise ConfigError(
            f"--init-from {init_from}: no checkpoint found (expected a run directory or a .pt file)"
        )
    return path


def source_run_dir(init_from: str, experiment_dir: Path | None = None) -> Path | None:
    """The run directory the `--init-from` checkpoint belongs to, or None for a loose .pt file."""
    parent = checkpoint_path(init_from, experiment_dir).parent
    return parent if (parent / runs.CONFIG).is_file() else None


def check_source(
    init_from: str, experiment_dir: Path | None = None, allow_incomplete: bool = False
) -> str | None:
    """Refuse to finetune from an unfinished run (`check_complete`); the warning if allowed."""
    run_dir = source_run_dir(init_from, experiment_dir)
    if run_dir is None:
        return None
    return check_complete(run_dir, f"--init-from {init_from}", allow_incomplete)


def load_source(
    init_from: str, experiment_dir: Path | None = None
) -> tuple[RunConfig, dict[str, torch.Tensor]]:
    """The pretrained run's config and model weights, read with `weights_only=True`."""
    if init_from.startswith(BASE_PREFIX):  # digest checked: a corrupted base is never used
        payload = load_base(init_from)
        return RunConfig.from_dict(payload["config"]), payload["model"]
    path = checkpoint_path(init_from, experiment_dir)
    try:
        payload = load_checkpoint(path)
        source = RunConfig.from_dict(payload["config"])
    except Exception as e:  # a corrupt or foreign file
        detail = str(e) if isinstance(e, CheckpointError) else type(e).__name__
        raise ConfigError(
            f"--init-from {init_from}: not a readable mtp-lab checkpoint ({detail})"
        ) from None
    return source, payload["model"]


def target_model_config(source: ModelConfig, heads: int, attach: str) -> ModelConfig:
    """The finetuned model's shape for an attach mode (raises `ConfigError` if it cannot fit)."""
    from lab.heads import adding_modes, attach_head_type, head_class, next_token_depth

    target = copy.deepcopy(source)
    target.n_future = heads
    if attach == "keep":
        if heads != source.n_future:
            raise ConfigError(
                f"--heads {heads} differs from the checkpoint's {source.n_future} heads; "
                f"choose --attach {', '.join(adding_modes())} (from 1 head) or drop (to 1 head)"
            )
        return target
    if attach == "drop":
        if heads != 1:
            raise ConfigError(f"--attach drop keeps head 1 only; use --heads 1, not {heads}")
        reads = head_class(source.head_type).sources(source.n_future)[0]
        if reads != -1:
            raise ConfigError(
                f"--attach drop is impossible for {source.head_type} heads: "
                f"head 1 reads head {reads + 1}"
            )
        target.head_type = head_class(source.head_type).one_head_type
        target.match_params = True
        target.n_layer = next_token_depth(source)  # head 1 reads the trunk: trunk blocks + head 1's
        return target
    if source.n_future != 1:
        raise ConfigError(
            f"--attach {attach} starts from a next-token checkpoint, "
            f"but it has {source.n_future} heads "
            f"(use --attach drop first, or --attach keep)"
        )
    if heads < 2:
        raise ConfigError(f"--attach {attach} adds heads: use --heads 2 or more, not {heads}")
    cls, match_params = attach_head_type(attach)
    target.head_type = cls.name
    if match_params is not None:
        target.match_params = match_params
    if cls.trunk_layers(target) < 1:
        raise ConfigError(
            f"--attach {attach} with {heads} heads needs more than {heads} pretrained blocks "
            f"(the checkpoint has {source.n_layer})"
        )
    return target


# ----- checksums of a complete run -----


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_checksums(run_dir: Path) -> None:
    """The SHA-256 of a complete run's final files, in `SHA256SUMS` (`sha256sum -c` reads it)."""
    run_dir = Path(run_dir)
    names = [n for n in CHECKED_FILES if (run_dir / n).is_file()]
    text = "".join(f"{file_sha256(run_dir / n)}  {n}\n" for n in names)
    runs.atomic_write(run_dir / CHECKSUMS, lambda f: f.write(text))


def verify_checksums(run_dir: Path) -> None:
    """A `CheckpointError` naming the first final file that changed since the run completed. A file
    deleted since (e.g. a checkpoint removed to save space) is not checked; runs completed before
    checksums were recorded have no `SHA256SUMS` and pass."""
    run_dir = Path(run_dir)
    path = run_dir / CHECKSUMS
    if not path.is_file():
        return
    for line in path.read_text().splitlines():
        digest, _, name = line.partition("  ")
        target = run_dir / name
        if target.is_file() and file_sha256(target) != digest:
            raise CheckpointError(
                f"{target} does not match the checksum recorded when the run completed "
                f"(corrupt): move {run_dir} away and rerun the run's command to retrain it"
            )


# ----- committed bases (`lab.bases`): weights named by their digest -----

BASE_PREFIX = "base:"
BASES_ENV = "MTP_LAB_BASES"  # another bases folder (tests, a shared copy)


def bases_dir() -> Path:
    """`$MTP_LAB_BASES` if set, else `bases/` of the checkout this package runs from."""
    import os
    return Path(os.environ.get(BASES_ENV) or Path(__file__).resolve().parents[1] / "bases")


def weights_digest(state: dict[str, Any]) -> str:
    """SHA-256 over the tensors' names, dtypes, shapes and bytes, in name order (16 hex digits)."""
    import torch
    h = hashlib.sha256()
    for name in sorted(state):
        tensor = state[name].detach().cpu().contiguous()
        h.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        h.update(tensor.view(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:16]


def base_path(reference: str, folder: Path | None = None) -> Path:
    """The file of `base:<digest>` (a `ConfigError` if it is not committed)."""
    digest = reference.removeprefix(BASE_PREFIX)
    path = (folder or bases_dir()) / f"{digest}.pt"
    if not path.exists():
        raise ConfigError(f"--init-from {reference}: no committed base {path}; `python -m "
                          "lab.bases list` shows the bases this checkout has")
    return path


def load_base(reference: str, folder: Path | None = None) -> dict[str, Any]:
    """The payload of a committed base, its digest checked (a corrupted file is a `ConfigError`)."""
    path = base_path(reference, folder)
    try:
        payload = load_checkpoint(path)
    except CheckpointError as e:
        raise ConfigError(f"{e}; restore the base with git checkout") from None
    if weights_digest(payload["model"]) != reference.removeprefix(BASE_PREFIX):
        raise ConfigError(f"{path}: its weights do not match their digest (corrupted); restore it "
                          "with git checkout")
    return payload
