"""Intake: unreadable files are named plainly; edited, deleted and re-flagged cells are restored."""
from __future__ import annotations

import json

import nbformat
import pytest

from graders.assignment import load_assignment
from graders.intake import flags as F
from graders.intake.pipeline import intake
from graders.intake.read import UnreadableNotebook, read_notebook

from tests.graders.helpers import filled_release

A = "00-pytorch-basics"


@pytest.mark.parametrize("content, message", [
    (b"", "is empty"),
    (b"{not json", r"is not valid JSON \(line 1"),
    (b'{"hello": 1}', "not a Jupyter notebook"),
    ('{"cells": [], "nbformat": 9}'.encode(), "nbformat 9"),
    ("{\"cells\": \"\xe9\"}".encode("latin-1"), "is not UTF-8"),
    (b'{"cells": [{"cell_type": "code"}], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}', "does not validate"),
])
def test_unreadable_notebooks_say_why(tmp_path, content, message):
    path = tmp_path / "basics.ipynb"
    path.write_bytes(content)
    with pytest.raises(UnreadableNotebook, match=message):
        read_notebook(path)


def test_nbformat3_is_upgraded(tmp_path):
    v3 = {"nbformat": 3, "nbformat_minor": 0, "metadata": {}, "worksheets": [
        {"cells": [{"cell_type": "code", "input": "x = 1", "language": "python", "outputs": []}], "metadata": {}}]}
    path = tmp_path / "old.ipynb"
    path.write_text(json.dumps(v3))
    nb = read_notebook(path)
    assert nb.nbformat == 4 and nb.cells[0].source == "x = 1"


def _submit(tmp_path, nb):
    folder = tmp_path / "s"
    folder.mkdir()
    nbformat.write(nb, folder / "basics.ipynb")
    return intake(load_assignment(A), folder)


def test_clean_submission_has_no_flags_and_keeps_answers(tmp_path):
    taken = _submit(tmp_path, filled_release(A, "basics.ipynb"))
    assert taken.flags == []
    cells = {c.id: c for c in taken.notebooks["basics.ipynb"].cells}
    assert "var(dim=-1" in cells["standardize"].source
    assert all(c.get("outputs", []) == [] for c in cells.values())


def test_edited_deleted_and_reflagged_cells_are_restored_and_flagged(tmp_path):
    nb = filled_release(A, "basics.ipynb")
    by_id = {c.id: c for c in nb.cells}
    by_id["test-standardize"].source = "assert True"
    by_id["test-param-count"].metadata["nbgrader"]["points"] = 99
    by_id["setup"].source += "\nimport os"
    by_id["standardize"].metadata["nbgrader"]["locked"] = True
    nb.cells = [c for c in nb.cells if c.id != "test-tiny-mlp"]
    nb.cells.append(nbformat.v4.new_code_cell("scratch = 1"))
    dup = nbformat.v4.new_code_cell("print('dup')", metadata={"nbgrader": {"grade_id": "setup", "locked": True}})
    nb.cells.append(dup)
    taken = _submit(tmp_path, nb)
    kinds = {(f.kind, f.cell) for f in taken.flags}
    assert {(F.TAMPERED_CELL, "test-standardize"), (F.CHANGED_POINTS, "test-param-count"),
            (F.TAMPERED_CELL, "setup"), (F.TAMPERED_CELL, "standardize"), (F.MISSING_CELL, "test-tiny-mlp"),
            (F.DUPLICATE_CELL, "setup")} <= kinds
    release = nbformat.read(f"release/{A}/basics.ipynb", as_version=4)
    released = {c.id: c.source for c in release.cells}
    out = taken.notebooks["basics.ipynb"]
    got = {c.get("id"): c.source for c in out.cells}
    for gid in ("test-standardize", "test-param-count", "setup", "test-tiny-mlp"):
        assert got[gid] == released[gid]
    order = [c.get("id") for c in out.cells]
    assert order.index("tiny-mlp-build") < order.index("test-tiny-mlp") < order.index("params-md")
    assert any(c.source == "scratch = 1" for c in out.cells)


def test_missing_and_extra_notebooks_are_flagged(tmp_path):
    folder = tmp_path / "s"
    folder.mkdir()
    (folder / "other.ipynb").write_text("{}")
    taken = intake(load_assignment(A), folder)
    assert [f.kind for f in taken.flags] == [F.EXTRA_NOTEBOOK, F.MISSING_NOTEBOOK]
    assert taken.notebooks == {}
