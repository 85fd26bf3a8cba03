"""docs/quickstart.ipynb runs from top to bottom on a real Jupyter kernel (the Python API as a user meets it)."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).resolve().parents[1] / "docs" / "quickstart.ipynb"


@pytest.mark.slow
def test_quickstart_notebook_runs(tmp_path: Path) -> None:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    assert all(not cell.get("outputs") for cell in nb.cells if cell.cell_type == "code"), "commit it without outputs"
    client = NotebookClient(
        nb,
        timeout=600,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()  # raises CellExecutionError, naming the cell, when one fails
    outputs = ["".join(o.get("text", "") for o in cell.outputs) for cell in nb.cells if cell.cell_type == "code"]
    text = "\n".join(outputs)
    assert "transactions" in text and "frauds over 45 days" in text
    assert "rows now; 0 rows as of yesterday" in text
    assert "score " in text and "alert " in text
