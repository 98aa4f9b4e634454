"""`python -m lab COMMAND ...` and the `mtp-lab COMMAND ...` console script.

Each command hands the rest of the command line to its module's `main(argv)`, so
`mtp-lab run induction --heads 4` is `python -m lab.run induction --heads 4`.
Without a command (or with --help) it lists the commands. Exit codes are the command's own;
an unknown command is exit 2.
"""

from __future__ import annotations

import importlib
import sys

COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("lab.run", "train one model on a task (python -m lab.run TASK --heads N ...)"),
    "sweep": ("lab.sweep",
              "run an experiment's runs locally, on Slurm or on Ray (skips complete runs)"),
    "figures": ("lab.figures",
                "regenerate figures/ and CLAIMS.md from the runs or the results store"),
    "eval": ("lab.eval", "evaluate a trained run on its task's sets or on a data file"),
    "decode": ("lab.decode_bench", "measure greedy and self-speculative decoding of a trained run"),
    "runs": ("lab.table",
             "a table of the runs under a directory: filter, sort, CSV (python -m lab.runs)"),
    "results": ("lab.results_cli",
                "export complete runs into the committed results store, or list it"),
}


def usage() -> str:
    width = max(map(len, COMMANDS))
    lines = ["usage: mtp-lab COMMAND [options]   (or python -m lab COMMAND; COMMAND --help for its "
             "options)", "",
             "commands:"]
    lines += [f"  {name:<{width}}  {text}" for name, (_, text) in COMMANDS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(usage())
        return 0
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        print(f"error: unknown command {command!r}; choose one of: {', '.join(COMMANDS)}",
              file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[command][0])
    return module.main(rest)


if __name__ == "__main__":
    sys.exit(main())
