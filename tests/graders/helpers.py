"""Build submissions for tests: the student release with answers taken from the solutions."""
from __future__ import annotations

import copy
import re
from pathlib import Path

import nbformat

REPO = Path(__file__).resolve().parents[2]


def filled_release(assignment: str, notebook: str, overrides: dict[str, str] | None = None) -> nbformat.NotebookNode:
    """What a student who copied the reference answers would hand in (the release's test cells,
    so no hidden test); ``overrides`` replaces chosen solution cells by grade_id (mutants)."""
    release = nbformat.read(REPO / "release" / assignment / notebook, as_version=4)
    solution = nbformat.read(REPO / "solutions" / assignment / notebook, as_version=4)
    answers = {c.id: c.source for c in solution.cells if c.metadata.get("nbgrader", {}).get("solution")}
    nb = copy.deepcopy(release)
    for cell in nb.cells:
        if cell.id in answers:
            cell.source = re.sub(r"\s*### (BEGIN|END) SOLUTION", "", answers[cell.id])
        if overrides and cell.id in overrides:
            cell.source = overrides[cell.id]
    return nb


def write_submission(root: Path, student: str, assignment: str, notebooks: dict[str, nbformat.NotebookNode | bytes | str]) -> Path:
    folder = root / student / assignment
    folder.mkdir(parents=True, exist_ok=True)
    for name, nb in notebooks.items():
        if isinstance(nb, bytes):
            (folder / name).write_bytes(nb)
        elif isinstance(nb, str):
            (folder / name).write_text(nb)
        else:
            nbformat.write(nb, folder / name)
    return folder
