"""The run names (and so the config hashes) of every experiment's quick and paper plans are
pinned: a refactor that changes how configs are built or resolved must not orphan existing run
directories, so every pinned run is still planned, under the same name. Plans may add runs (more
seeds); change `tests/data/plan_run_names.json` only on purpose, with a LOG entry."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lab.experiments import plan

PINNED = json.loads((Path(__file__).parent / "data" / "plan_run_names.json").read_text())


@pytest.mark.parametrize("key", sorted(PINNED))
def test_every_pinned_run_is_still_planned_under_its_name(key: str) -> None:
    name, preset = key.split("/")
    planned = {c.run_name() for c in plan(name, preset)}
    assert not set(PINNED[key]) - planned, sorted(set(PINNED[key]) - planned)[:3]
