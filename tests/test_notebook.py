"""The exploration notebook runs top to bottom (on its tiny configuration, against a fresh runs directory)."""

from __future__ import annotations

import os

import nbformat
from conftest import REPO
from nbclient import NotebookClient

from lab import runs


def test_notebook_executes_on_a_tiny_configuration(tmp_path, monkeypatch):
    monkeypatch.setenv("MTP_NOTEBOOK_TINY", "1")
    monkeypatch.setenv("MTP_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    notebook = nbformat.read(REPO / "notebooks" / "explore.ipynb", as_version=4)
    NotebookClient(notebook, timeout=180, kernel_name="python3",
                   resources={"metadata": {"path": str(REPO / "notebooks")}}).execute()

    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) >= 3  # learning curves, attention pattern, a figure from the runs
    text = "".join(o.get("text", "") for o in outputs)
    for task in ("induction", "polynomial", "graph"):
        assert f"=== {task}:" in text
    # The live run was written like any run, with the induction-head score at every evaluation.
    (run_dir,) = (tmp_path / "runs" / "notebook").iterdir()
    assert runs.run_state(run_dir) == "complete"
    rows = runs.read_jsonl(run_dir / runs.METRICS)
    assert rows and all(0 < r["interp/prefix_matching_max"] <= 1 for r in rows)


def test_the_committed_notebook_holds_the_outputs_of_a_full_run():
    """Users open it with its outputs: executed top to bottom at its normal configuration, without
    errors or warnings, and without paths of the machine that executed it."""
    notebook = nbformat.read(REPO / "notebooks" / "explore.ipynb", as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert [cell.execution_count for cell in code] == list(range(1, len(code) + 1))
    assert all(cell.outputs for cell in code)
    outputs = [o for cell in code for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error" or o.get("name") == "stderr"]
    assert len([o for o in outputs if "image/png" in o.get("data", {})]) >= 3
    text = "".join(o.get("text", "") for o in outputs)
    assert "tiny: False" in text and "600 steps" in text
    assert "stored runs" in text and "reproduced" in text  # section 6 reads the committed store and ledger
    tables = "".join("".join(o.get("data", {}).get("text/plain", "")) for o in outputs)
    assert "fig7-long-n2-100K-tpp100" in tables  # section 7: the ledger rows that name a budget
    assert str(REPO) not in nbformat.writes(notebook)
