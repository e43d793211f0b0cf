"""The grader seam: the functions a suite calls in a notebook are declared in assignment.toml
([seam], per notebook); each exists in its notebook, and the suite calls nothing undeclared."""
from __future__ import annotations

import re

import pytest

from graders.assignment import list_assignments, load_assignment

CALL = re.compile(r"""\.call\(\s*["']([A-Za-z_][A-Za-z0-9_]*)["']""")
SEAMED = [a for a in list_assignments() if load_assignment(a).settings.get("seam")]


def _suite_calls(assignment) -> set[str]:
    return {m for path in assignment.suite_dir.glob("*.py") for m in CALL.findall(path.read_text(encoding="utf-8"))}


@pytest.mark.parametrize("name", SEAMED)
def test_every_declared_seam_function_is_defined_in_its_notebook(name):
    assignment = load_assignment(name)
    for notebook, functions in assignment.settings["seam"].items():
        source = assignment.source_notebook(notebook).read_text(encoding="utf-8")
        missing = [f for f in functions if not re.search(rf"^def {f}\(", source, re.M)]
        assert not missing, f"{name}/{notebook} declares seam functions it does not define: {missing}"


@pytest.mark.parametrize("name", SEAMED)
def test_the_suite_calls_exactly_the_declared_seam(name):
    assignment = load_assignment(name)
    declared = {f for functions in assignment.settings["seam"].values() for f in functions}
    called = _suite_calls(assignment)
    assert called - declared == set(), f"{name}'s suite calls undeclared functions: {sorted(called - declared)}"
    assert declared - called == set(), f"{name} declares seam functions its suite never calls: {sorted(declared - called)}"
