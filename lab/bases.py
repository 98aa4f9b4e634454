"""Committed base weights: trained bases that outlive `runs/`, referenced by content hash.

A continuation experiment (Table S6's regime) must not retrain its base on a fresh clone, and
CPU training is deterministic only on one machine and thread count, so bases are committed as
weights, not regenerated:

    bases/<digest>.pt    {"model": state dict (weights only, no optimizer), "config": the base
                          run's config, "record": run name, budget, final validation metrics}
    bases/INDEX.json     digest -> run name, experiment, size, seed, tokens per parameter, bytes,
                         and how converged it is: `val_loss_slope_per_doubling` (nats per doubling
                         of tokens over its last doubling, `lab.budget.doubling_slope`)

`digest` is the SHA-256 of the weights themselves (tensor names, dtypes, shapes and bytes, in
name order; the first 16 hex digits name the file), so it does not depend on how torch
serialises a file, and loading checks it: a corrupted base is refused, never used. A
continuation names its base as `finetune.init_from = "base:<digest>"`. The folder's total is
kept within `BUDGET_BYTES` (40 MB): `export` refuses to exceed it.

    python -m lab.bases export RUN_DIR [RUN_DIR ...]   weights of complete runs into bases/
    python -m lab.bases list                           what is committed, and the total size
    python -m lab.bases verify                         recompute every digest
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from lab import runs
from lab.checkpoints import BASE_PREFIX as PREFIX
from lab.checkpoints import BASES_ENV as ENV
from lab.checkpoints import base_path as path_of
from lab.checkpoints import bases_dir as default_dir
from lab.checkpoints import load_base as load
from lab.checkpoints import weights_digest
from lab.errors import ConfigError

__all__ = ["BUDGET_BYTES", "ENV", "INDEX", "PREFIX", "by_run_name", "default_dir", "export", "load",
           "main", "path_of", "read_index", "verify", "weights_digest"]

BUDGET_BYTES = 40 * 1024 * 1024
INDEX = "INDEX.json"


def read_index(folder: Path | None = None) -> dict[str, dict[str, Any]]:
    path = (folder or default_dir()) / INDEX
    return runs.read_json(path) if path.exists() else {}


def by_run_name(folder: Path | None = None) -> dict[str, str]:
    """Run name -> digest of every committed base."""
    return {entry["run_name"]: digest for digest, entry in read_index(folder).items()}


def export(run_dir: Path, folder: Path | None = None) -> str:
    """Commit the weights of a complete run as a base; returns its digest (idempotent: exporting a
    committed base again refreshes its index entry, never its weights file)."""
    from lab.budget import doubling_slope
    from lab.checkpoints import load_checkpoint, to_bytes
    folder = folder or default_dir()
    if not (run_dir / runs.META).is_file():
        raise ConfigError(f"{run_dir} is not a run directory (no {runs.META}): give the directory "
                          "of a complete base run, e.g. runs/s6_regime/<run name>")
    meta = runs.read_json(run_dir / runs.META)
    if meta.get("status") != "complete":
        raise ConfigError(f"{run_dir} is {meta.get('status')!r}, not complete: only finished bases "
                          "are committed")
    ckpt = load_checkpoint(run_dir / runs.CHECKPOINT)
    state = {k: v.float() if v.is_floating_point() else v for k, v in ckpt["model"].items()}
    digest = weights_digest(state)
    config = runs.read_json(run_dir / runs.CONFIG)
    summary = runs.read_json(run_dir / runs.SUMMARY)
    final = {k: v for k, v in summary.get("final", {}).items() if k.startswith(("val/", "head"))}
    curve = [r for r in runs.read_jsonl(run_dir / runs.METRICS) if "head1/loss" in r]
    slope = doubling_slope([r["tokens"] for r in curve], [r["head1/loss"] for r in curve])
    record = {"run_name": run_dir.name, "experiment": config["experiment"], "size": config["size"],
              "seed": config["seed"],
              "tokens_per_param": config["train"].get("tokens_per_param", 0.0),
              "steps": summary.get("steps"), "tokens": summary.get("tokens"),
              "val_loss_slope_per_doubling": round(slope, 6) if slope == slope else None,
              "final": final}
    data = to_bytes({"model": state, "config": config, "record": record})
    index = read_index(folder)
    if digest in index and any(index[digest].get(k) != v for k, v in record.items()
                               if k != "final"):
        index[digest] |= {k: v for k, v in record.items() if k != "final"}
        runs.write_json(folder / INDEX, dict(sorted(index.items())))
    if digest not in index:
        total = sum(e["bytes"] for e in index.values()) + len(data)
        if total > BUDGET_BYTES:
            raise ConfigError(f"committing {run_dir.name} would make bases/ {total / 2**20:.1f} "
                              "MB, over its "
                              f"{BUDGET_BYTES / 2**20:.0f} MB budget")
        folder.mkdir(parents=True, exist_ok=True)
        runs.atomic_write(folder / f"{digest}.pt", lambda f: f.write(data), binary=True)
        index[digest] = {k: v for k, v in record.items() if k != "final"} | {"bytes": len(data)}
        runs.write_json(folder / INDEX, dict(sorted(index.items())))
    return digest


def verify(folder: Path | None = None) -> list[str]:
    """Digests whose file is missing or does not match (empty when every base is intact)."""
    bad = []
    for digest in read_index(folder):
        try:
            load(PREFIX + digest, folder)
        except ConfigError:
            bad.append(digest)
    return bad


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lab.bases",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=("export", "list", "verify"))
    parser.add_argument("run_dirs", nargs="*", type=Path,
                        help="with export: complete run directories")
    parser.add_argument("--dir", type=Path, default=None,
                        help="the bases folder (default: the checkout's bases/)")
    # options may come anywhere: `export --dir D RUN ...` as well as `export RUN ... --dir D`
    args = parser.parse_intermixed_args(argv)
    try:
        if args.command == "export":
            for run_dir in args.run_dirs:
                print(f"{export(run_dir, args.dir)}  {run_dir.name}")
        elif args.command == "list":
            index = read_index(args.dir)
            for digest, e in index.items():
                slope = e.get("val_loss_slope_per_doubling")
                converged = "" if slope is None else f"  {slope:+.4f} nats/doubling"
                print(f"{digest}  {e['run_name']}  {e['tokens_per_param']:g} tokens/param  "
                      f"{e['bytes'] / 1024:.0f} KB{converged}")
            total = sum(e["bytes"] for e in index.values())
            print(f"{len(index)} bases, {total / 2**20:.1f} MB of {BUDGET_BYTES / 2**20:.0f} MB")
        else:
            bad = verify(args.dir)
            print("every base matches its digest" if not bad else "corrupted or missing: "
                                                                  f"{', '.join(bad)}")
            return 1 if bad else 0
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
