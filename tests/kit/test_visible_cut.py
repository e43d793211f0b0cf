"""Cutting the visible part out of a grader suite (graders.kit.visible), and the rule it enforces
on every assignment: a visible check never asks for the reference solution."""
from __future__ import annotations

import textwrap

import pytest

from graders import paths
from graders.assignment import list_assignments
from graders.errors import CourseError
from graders.kit.visible import cut_suite

CONFTEST = '''
"""Fixtures."""
import pytest


@pytest.fixture
def shared_model():
    return "model"


@pytest.fixture
def secret_oracle():
    return "oracle-only-hidden-checks-use"
'''

SUITE = '''
"""A suite."""
from __future__ import annotations

import pytest
import math

LIMIT = 3
SECRET_TABLE = {"answer": 42}


def _shared(x):
    return x + 1


def _hidden_helper(x):
    return SECRET_TABLE["answer"] * x


@pytest.mark.check(points=1, title=T, hint=H)
def test_visible(submission, shared_model):
    assert _shared(LIMIT) == 4


# Why the hidden check exists: a comment that goes with it.
@pytest.mark.check(points=2, title=T, hint=H, visibility="hidden")
def test_hidden(submission, secret_oracle):
    assert math.isclose(_hidden_helper(2), 84) and _shared(1)
'''


def _suite(tmp_path, suite=SUITE, conftest=CONFTEST):
    folder = tmp_path / "suite"
    folder.mkdir()
    (folder / "test_a.py").write_text(textwrap.dedent(suite).lstrip())
    (folder / "conftest.py").write_text(textwrap.dedent(conftest).lstrip())
    return folder


def test_hidden_check_and_what_only_it_uses_are_cut(tmp_path):
    cut = cut_suite(_suite(tmp_path))
    kept = "\n".join(cut.files.values())
    for gone in ("def test_hidden", "_hidden_helper", "SECRET_TABLE", "secret_oracle", "import math",
                 "Why the hidden check exists"):
        assert gone not in kept, gone
    assert "def test_hidden" in "".join(cut.hidden_checks[next(iter(cut.hidden_checks))])


def test_what_visible_checks_use_is_kept_as_written(tmp_path):
    cut = cut_suite(_suite(tmp_path))
    kept = "\n".join(cut.files.values())
    for stays in ("def test_visible", "def _shared", "LIMIT = 3", "def shared_model", "from __future__ import annotations",
                  '"""A suite."""'):
        assert stays in kept, stays
    compile(kept.split('"""Fixtures."""')[0], "test_a.py", "exec")  # still Python


def test_file_without_visible_checks_is_left_out(tmp_path):
    only_hidden = SUITE.replace("@pytest.mark.check(points=1, title=T, hint=H)",
                                '@pytest.mark.check(points=1, title=T, hint=H, visibility="hidden")')
    cut = cut_suite(_suite(tmp_path, only_hidden))
    assert [p.name for p in cut.files] == ["conftest.py"]


def test_visible_check_asking_for_the_reference_is_refused(tmp_path):
    with pytest.raises(CourseError, match="test_a.py::test_visible.*make them hidden"):
        cut_suite(_suite(tmp_path, SUITE.replace("def test_visible(submission,", "def test_visible(reference,")))


def test_visibility_must_be_a_literal(tmp_path):
    with pytest.raises(CourseError, match="visibility must be a literal string"):
        cut_suite(_suite(tmp_path, SUITE.replace('visibility="hidden"', "visibility=WHICH")))


@pytest.mark.parametrize("assignment", list_assignments())
def test_visible_checks_never_use_the_reference(assignment):
    """The student kit has no solution to run: a visible check must not need it (else `course
    check` in the kit would differ from the grader). Compare with the reference in hidden checks."""
    cut = cut_suite(paths.SUITES / assignment)  # raises, naming the checks, when one does
    assert cut.files, f"{assignment} has no visible check at all"
