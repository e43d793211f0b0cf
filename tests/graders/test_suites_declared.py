"""Every suite is well declared: its checks parse, and the points of the checks bound to a
notebook test cell add up to that cell's points in the release."""
from __future__ import annotations

from collections import defaultdict

import nbformat
import pytest

from graders import paths
from graders.assignment import list_assignments, load_assignment
from graders.engine.grade_one import GradeOptions, run_suite


@pytest.mark.parametrize("name", list_assignments())
def test_suite_points_match_notebook_test_cells(name):
    assignment = load_assignment(name)
    plugin = run_suite(assignment, None, None, GradeOptions(), seed=0, collect_only=True)
    assert plugin.spec_errors == []
    assert plugin.collected, f"{name} has no checks"
    by_cell = defaultdict(float)
    for spec in plugin.collected:
        if spec.cell:
            by_cell[spec.cell] += spec.points
    in_notebooks = {}
    for nb_name in assignment.notebooks:
        nb = nbformat.read(paths.RELEASE / name / nb_name, as_version=4)
        for cell in nb.cells:
            meta = cell.metadata.get("nbgrader", {})
            if meta.get("grade") and not meta.get("solution"):
                in_notebooks[meta["grade_id"]] = float(meta["points"])
    assert dict(by_cell) == in_notebooks


@pytest.mark.parametrize("name", list_assignments())
def test_every_check_has_both_languages_and_a_unique_id(name):
    plugin = run_suite(load_assignment(name), None, None, GradeOptions(), seed=0, collect_only=True)
    ids = [spec.id for spec in plugin.collected]
    assert len(ids) == len(set(ids))
    for spec in plugin.collected:
        assert spec.title["zh"] != spec.title["en"] or spec.title["zh"].isascii()
