"""Sources are jupytext percent files; releases are .ipynb files with stable cell ids."""
from __future__ import annotations

from pathlib import Path

import jupytext
import nbformat


def source_to_notebook(source: Path) -> nbformat.NotebookNode:
    """Read a percent-format source and give every cell an id that survives a rebuild.

    jupytext draws fresh random ids on each read; a release that must be byte-for-byte
    reproducible needs ids derived from the cell itself: its nbgrader grade_id, else its index.
    """
    nb = jupytext.read(source, fmt="py:percent")
    seen: set[str] = set()
    for index, cell in enumerate(nb.cells):
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        cell_id = grade_id if grade_id and grade_id not in seen else f"cell-{index}"
        seen.add(cell_id)
        cell["id"] = cell_id
    nb.metadata.pop("jupytext", None)
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    nb.metadata["language_info"] = {"name": "python"}
    nb.nbformat, nb.nbformat_minor = 4, 5
    return nb


def write_canonical(nb: nbformat.NotebookNode, path: Path) -> None:
    """Write a notebook the same way every time (sorted keys, one-space indent, final newline)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = nbformat.writes(nb, version=4)
    path.write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
