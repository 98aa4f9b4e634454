"""Check the memory-efficient backward on an accelerator: gradients, compilation, host syncs.

    python benchmarks/gpu_check.py [--device cuda] [--no-compile]

1. For every head type and n = 1..4, the efficient backward's gradients against the plain
   loss's, in float32 and in bf16 autocast (as training runs on CUDA). Both run the same
   forward; only the order in which gradients are summed differs, so they agree to the
   precision's rounding: ||g_eff - g_plain|| / ||g_plain|| per parameter, worst case shown.
   A float64 CPU run of the same model and batch is the ground truth for both.
2. The compiled model (`compile_blocks`) against the eager one, float32 and bf16.
3. On CUDA, that a training step (forward, backward, clipping, AdamW) does not wait for the
   device: `torch.cuda.set_sync_debug_mode` reports every synchronising call inside it, and the
   lab's step may have no more of them than a plain reference transformer's step.

Exits with status 1 if any check fails. Runs on a CPU too (the sync check is skipped there).
"""

from __future__ import annotations

import argparse
import itertools
import sys
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import autocast, format_table, lab_case, reference_case  # noqa: E402
from lab.config import HEAD_TYPES, ModelConfig  # noqa: E402
from lab.model import MTPTransformer  # noqa: E402
from lab.objective import backward_efficient, backward_plain, head_targets  # noqa: E402

# Largest per-parameter relative error allowed between two gradient computations.
TOLERANCE = {"fp32": 1e-4, "bf16": 3e-2}
# Largest relative error against the float64 ground truth (sanity: the step is the right function).
TRUTH_TOLERANCE = {"fp32": 1e-3, "bf16": 1e-1}


def make_model(head_type: str, n: int, vocab: int = 97, context: int = 64) -> MTPTransformer:
    torch.manual_seed(n)
    config = ModelConfig(d_model=64, n_layer=5, n_head=4, n_future=n, head_type=head_type, vocab_size=vocab,
                         block_size=context)
    return MTPTransformer(config)


def gradients(model: MTPTransformer, tokens: torch.Tensor, mask: torch.Tensor, efficient: bool,
              device: torch.device, precision: str) -> dict[str, torch.Tensor]:
    """float64 copies of every parameter's gradient after one forward/backward."""
    model.zero_grad(set_to_none=True)
    targets = head_targets(tokens, mask, model.config.n_future)
    fn = backward_efficient if efficient else backward_plain
    ctx = autocast(device) if precision == "bf16" else torch.autocast(device.type, enabled=False)
    with ctx:
        fn(model, tokens[:, :-1], targets, [1.0, 0.5, 2.0, 0.25][:model.config.n_future])
    return {k: p.grad.detach().double().cpu() for k, p in model.named_parameters() if p.grad is not None}


def worst_error(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    """Largest per-parameter ||a - b|| / ||b|| (parameters with a zero gradient use the absolute norm)."""
    assert a.keys() == b.keys(), sorted(set(a) ^ set(b))
    worst = 0.0
    for k in b:
        scale = b[k].norm().item()
        err = (a[k] - b[k]).norm().item()
        worst = max(worst, err / scale if scale > 0 else err)
    return worst


def check_gradients(device: torch.device, precisions: list[str]) -> tuple[list[dict[str, object]], bool]:
    rows, ok = [], True
    g = torch.Generator().manual_seed(0)
    tokens_cpu = torch.randint(0, 97, (4, 65), generator=g)
    mask_cpu = torch.rand(4, 65, generator=g) > 0.2
    for head_type, n in itertools.product(HEAD_TYPES, [1, 2, 3, 4]):
        truth_model = make_model(head_type, n).double()
        truth = gradients(truth_model, tokens_cpu, mask_cpu, False, torch.device("cpu"), "fp32")
        model = make_model(head_type, n).to(device)
        tokens, mask = tokens_cpu.to(device), mask_cpu.to(device)
        for precision in precisions:
            eff = gradients(model, tokens, mask, True, device, precision)
            plain = gradients(model, tokens, mask, False, device, precision)
            err = worst_error(eff, plain)
            truth_err = max(worst_error(eff, truth), worst_error(plain, truth))
            passed = err <= TOLERANCE[precision] and truth_err <= TRUTH_TOLERANCE[precision]
            ok &= passed
            rows.append({"check": "efficient vs plain", "head type": head_type, "n": n, "precision": precision,
                         "rel err": err, "vs float64": truth_err, "result": "pass" if passed else "FAIL"})
    return rows, ok


def check_compiled(device: torch.device, precisions: list[str]) -> tuple[list[dict[str, object]], bool]:
    rows, ok = [], True
    g = torch.Generator().manual_seed(1)
    tokens = torch.randint(0, 97, (4, 65), generator=g).to(device)
    mask = torch.ones_like(tokens, dtype=torch.bool)
    for n, precision in itertools.product([4], precisions):
        eager = make_model("parallel", n).to(device)
        compiled = make_model("parallel", n).to(device)
        compiled.compile_blocks()
        reference = gradients(eager, tokens, mask, True, device, precision)
        for efficient in (True, False):
            err = worst_error(gradients(compiled, tokens, mask, efficient, device, precision), reference)
            passed = err <= TOLERANCE[precision] * (3 if precision == "fp32" else 1)
            ok &= passed
            rows.append({"check": f"compiled {'efficient' if efficient else 'plain'} vs eager", "head type": "parallel",
                         "n": n, "precision": precision, "rel err": err, "result": "pass" if passed else "FAIL"})
    return rows, ok


def count_syncs(step) -> list[str]:
    """Synchronising CUDA calls made by one call of `step` (after a warm-up call), with their Python line."""
    step()
    torch.cuda.synchronize()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            step()
        finally:
            torch.cuda.set_sync_debug_mode("default")
    return [f"{Path(w.filename).name}:{w.lineno}: {str(w.message).splitlines()[0]}" for w in caught
            if "synchronizing" in str(w.message).lower() and "prototype" not in str(w.message)]


def check_no_sync(device: torch.device) -> tuple[list[dict[str, object]], bool]:
    """Synchronising calls in one training step of the lab (n=4) and of the reference transformer.

    Some PyTorch kernels synchronise by themselves (an embedding's backward may read a count
    back); the plain reference step shows how many. The lab's step must add none.
    """
    rows, ok = [], True
    shape = dict(vocab=97, batch_size=4, context=64, device=device)
    baseline = count_syncs(reference_case("100K", **shape).step)
    rows.append({"check": "host syncs in a step (reference)", "head type": "-", "n": 1, "precision": "bf16",
                 "rel err": float(len(baseline)), "result": "baseline"})
    for message in baseline[:5]:
        print(f"  reference sync: {message}")
    for efficient in (True, False):
        syncs = count_syncs(lab_case("100K", 4, efficient, **shape).step)
        passed = len(syncs) <= len(baseline)
        ok &= passed
        rows.append({"check": f"host syncs in a step ({'efficient' if efficient else 'plain'})", "head type":
                     "parallel", "n": 4, "precision": "bf16", "rel err": float(len(syncs)),
                     "result": "pass" if passed else "FAIL"})
        for message in syncs[:5]:
            print(f"  lab sync: {message}")
    return rows, ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--no-compile", action="store_true", help="skip the compiled-model check")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    precisions = ["fp32", "bf16"] if device.type == "cuda" else ["fp32"]
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"gpu check on {name}, torch {torch.__version__}; precisions {precisions}", flush=True)
    rows, ok = check_gradients(device, precisions)
    if device.type == "cuda":
        more, more_ok = check_no_sync(device)
        rows, ok = rows + more, ok and more_ok
    if not args.no_compile:
        try:
            more, more_ok = check_compiled(device, precisions)
        except Exception as e:  # a compiler failure is a failed check, reported with the others
            print(f"  compile check failed: {type(e).__name__}: {str(e)[:500]}")
            more, more_ok = [{"check": "compiled vs eager", "result": "FAIL"}], False
        rows, ok = rows + more, ok and more_ok
    print(format_table(rows, ["check", "head type", "n", "precision", "rel err", "vs float64", "result"]))
    print("all checks passed" if ok else "SOME CHECKS FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
