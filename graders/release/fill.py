"""Make submissions from the release: the reference answers, optionally with some cells replaced.

Instructors use it to smoke-test a suite (the solution must score full marks), the tests use it
for mutants, and scripts/make_samples.py for the demo class.
"""
from __future__ import annotations

import copy
import re

import nbformat

from graders import paths

_MARKERS = re.compile(r"[ \t]*### (BEGIN|END) SOLUTION[ \t]*\n?")


def filled_release(assignment: str, notebook: str, overrides: dict[str, str] | None = None) -> nbformat.NotebookNode:
    """The student release with every solution cell answered as the solution version does (so
    the release's visible tests, no hidden test); ``overrides`` replaces cells by grade_id."""
    release = nbformat.read(paths.RELEASE / assignment / notebook, as_version=4)
    solution = nbformat.read(paths.SOLUTIONS / assignment / notebook, as_version=4)
    answers = {c.id: c.source for c in solution.cells if c.metadata.get("nbgrader", {}).get("solution")}
    nb = copy.deepcopy(release)
    for cell in nb.cells:
        if cell.id in answers:
            cell.source = _MARKERS.sub("", answers[cell.id]).rstrip("\n")
        if overrides and cell.id in overrides:
            cell.source = overrides[cell.id]
    return nb
