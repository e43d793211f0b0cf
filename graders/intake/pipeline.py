"""Intake of one student's submission folder for one assignment."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from graders import paths
from graders.assignment import Assignment
from graders.intake import flags as F
from graders.intake.cells import restore_cells, strip_outputs
from graders.intake.flags import Flag
from graders.intake.read import UnreadableNotebook, read_notebook


@dataclass
class IntakeResult:
    notebooks: dict[str, nbformat.NotebookNode]  # name -> notebook to execute (missing ones absent)
    flags: list[Flag] = field(default_factory=list)
    files_sha256: dict[str, str] = field(default_factory=dict)
    unreadable: dict[str, str] = field(default_factory=dict)  # name -> why it could not be read


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def intake(assignment: Assignment, submission_dir: Path) -> IntakeResult:
    result = IntakeResult(notebooks={})
    submitted = sorted(p for p in submission_dir.iterdir() if p.is_file()) if submission_dir.is_dir() else []
    for path in submitted:
        result.files_sha256[path.name] = sha256_file(path)
    by_name = {p.name: p for p in submitted}
    for name in sorted(n for n in by_name if n.endswith(".ipynb") and n not in assignment.notebooks):
        result.flags.append(Flag(F.EXTRA_NOTEBOOK, f"{name} is not part of {assignment.name}; it was not graded", name))
    for name in assignment.notebooks:
        path = by_name.get(name)
        if path is None:
            result.flags.append(Flag(F.MISSING_NOTEBOOK, f"{name} was not submitted; its checks score 0", name))
            continue
        try:
            student_nb = read_notebook(path)
        except UnreadableNotebook as err:
            result.unreadable[name] = str(err)
            result.flags.append(Flag(F.MALFORMED_NOTEBOOK, str(err), name))
            continue
        release_nb = nbformat.read(paths.RELEASE / assignment.name / name, as_version=4)
        restored, found = restore_cells(student_nb, release_nb, name)
        result.notebooks[name] = strip_outputs(restored)
        result.flags.extend(found)
    return result
