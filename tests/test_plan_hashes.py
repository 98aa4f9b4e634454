"""The run names (and so the config hashes) of every experiment's quick and paper plans are
pinned: a refactor that changes how configs are built or resolved must not orphan existing run
directories. Change `tests/data/plan_run_names.json` only on purpose, with a LOG entry."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lab.experiments import plan

PINNED = json.loads((Path(__file__).parent / "data" / "plan_run_names.json").read_text())


@pytest.mark.parametrize("key", sorted(PINNED))
def test_plan_run_names_are_unchanged(key: str) -> None:
    name, preset = key.split("/")
    assert sorted(c.run_name() for c in plan(name, preset)) == PINNED[key]
