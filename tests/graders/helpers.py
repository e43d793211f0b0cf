"""Build submissions for tests."""
from __future__ import annotations

from pathlib import Path

import nbformat

from graders.release.fill import filled_release  # noqa: F401  (re-exported for the tests)

REPO = Path(__file__).resolve().parents[2]


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
