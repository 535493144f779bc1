"""The notebooks in notebooks/ ship without outputs and run top to bottom in a Jupyter kernel, never importing pyshark."""

from __future__ import annotations

import json
from pathlib import Path

import nbclient
import nbformat
import pytest

NOTEBOOKS_DIR = Path(__file__).resolve().parent.parent / "notebooks"
NOTEBOOKS = sorted(NOTEBOOKS_DIR.glob("*.ipynb"))
CELL_TIMEOUT_S = 300  # the first compile of the decoder on a machine takes about half a minute

# Cells the test adds around a notebook (never saved): record every attempt to import pyshark, then report it.
# pyshark runs tshark from an asyncio event loop, which clashes with Jupyter's own: the notebook path must not need it.
WATCH_IMPORTS = '''
import sys

class _PysharkWatch:
    attempts = []

    def find_spec(self, name, path=None, target=None):
        if name == "pyshark" or name.startswith("pyshark."):
            self.attempts.append(name)
        return None

sys.meta_path.insert(0, _PysharkWatch())
'''
REPORT_IMPORTS = '''
import json
print(json.dumps({"attempts": _PysharkWatch.attempts, "loaded": sorted(m for m in sys.modules if m.split(".")[0] == "pyshark")}))
'''


def test_the_notebooks_are_there():
    names = [p.name for p in NOTEBOOKS]
    assert names == ["01-quick-start.ipynb", "02-investigate-broken-deployment.ipynb", "03-validate.ipynb"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_ships_without_outputs(path: Path):
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    assert notebook.metadata["kernelspec"]["name"] == "python3"
    stored = [k for k, cell in enumerate(notebook.cells) if cell.cell_type == "code" and (cell.outputs or cell.execution_count is not None)]
    assert not stored, f"{path.name}: cells {stored} keep outputs or execution counts; clear them before committing"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_top_to_bottom(path: Path):
    notebook = nbformat.read(path, as_version=4)
    notebook.cells.insert(0, nbformat.v4.new_code_cell(WATCH_IMPORTS))
    notebook.cells.append(nbformat.v4.new_code_cell(REPORT_IMPORTS))
    client = nbclient.NotebookClient(
        notebook, timeout=CELL_TIMEOUT_S, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOKS_DIR)}}
    )
    try:
        client.execute()
    except nbclient.exceptions.CellExecutionError as error:  # names the cell and shows its traceback
        pytest.fail(f"{path.name}: {error}", pytrace=False)

    errors = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs if o.output_type == "error"]
    assert not errors, f"{path.name}: {errors}"
    imports = json.loads("".join(o.text for o in notebook.cells[-1].outputs if o.output_type == "stream"))
    assert imports == {"attempts": [], "loaded": []}, f"{path.name} imported pyshark: {imports}"
    # Every plot a cell returns shows as an image, not as "<Figure size ...>".
    figures = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs if "text/plain" in o.get("data", {}) and o.data["text/plain"].startswith("<Figure")]
    assert all("image/png" in o.data for o in figures), f"{path.name}: a figure shows only as text"
