"""course release: reproducible builds, drift detection, atomic swaps, no leaked solutions."""
from __future__ import annotations

import re

import pytest

from graders.assignment import list_assignments
from graders.errors import CourseError
from graders.release.build import check, release

REGION = re.compile(r"### BEGIN (SOLUTION|HIDDEN TESTS)\n(.*?)### END \1", re.S)


def _protected_lines(sources: list[str]) -> set[str]:
    """Lines of solution and hidden-test regions that appear nowhere else in the sources (a
    line such as `model.train()` may rightly stand in a locked cell too)."""
    inside, outside = set(), ""
    for text in sources:
        for _, body in REGION.findall(text):
            inside |= {line.strip() for line in body.splitlines()}
        outside += REGION.sub("", text)
    return {line for line in inside if line not in outside and len(line) >= 12 and not line.startswith("#")}


def test_committed_release_matches_sources():
    assert check(list_assignments()) == []


@pytest.mark.parametrize("assignment", list_assignments())
def test_release_holds_no_solution_or_hidden_test_line(assignment):
    from graders import paths

    sources = (paths.ASSIGNMENTS / assignment).glob("*.py")
    protected = _protected_lines([p.read_text(encoding="utf-8") for p in sources])
    assert protected, f"{assignment} has no solution region: the test would prove nothing"
    released = "\n".join(p.read_text(encoding="utf-8") for p in (paths.RELEASE / assignment).rglob("*")
                         if p.is_file())
    # Notebooks store sources as JSON strings: compare against the JSON-escaped form too.
    import json

    leaked = [line for line in protected if line in released or json.dumps(line)[1:-1] in released]
    assert not leaked, f"release/{assignment} contains solution or hidden-test lines: {leaked[:3]}"
    assert "BEGIN SOLUTION" not in released and "HIDDEN TESTS" not in released
    assert not list((paths.RELEASE / assignment).rglob("gradebook.db"))


def test_check_names_a_drifted_file(course_copy):
    nb = course_copy / "release" / "00-pytorch-basics" / "basics.ipynb"
    nb.write_text(nb.read_text(encoding="utf-8").replace("TinyMLP", "TinyMLQ"), encoding="utf-8")
    (course_copy / "solutions" / "00-pytorch-basics" / "stray.txt").write_text("x")
    problems = check(["00-pytorch-basics"])
    assert "release/00-pytorch-basics/basics.ipynb differs from its source" in problems
    assert "solutions/00-pytorch-basics/stray.txt is not built from any source" in problems


def test_failed_build_leaves_previous_release_intact(course_copy):
    before = {p: p.read_bytes() for p in (course_copy / "release").rglob("*") if p.is_file()}
    source = course_copy / "assignments" / "00-pytorch-basics" / "basics.py"
    # Two cells with the same grade_id: nbgrader refuses the notebook.
    source.write_text(source.read_text(encoding="utf-8").replace('"grade_id": "tiny-mlp"', '"grade_id": "standardize"'),
                      encoding="utf-8")
    with pytest.raises(CourseError, match="nbgrader GenerateAssignment failed for 00-pytorch-basics"):
        release(["00-pytorch-basics"])
    after = {p: p.read_bytes() for p in (course_copy / "release").rglob("*") if p.is_file()}
    assert after == before
    assert not [p for p in (course_copy / "release").iterdir() if p.name.startswith(".")]


def test_release_rebuild_is_byte_identical(course_copy):
    target = course_copy / "release" / "00-pytorch-basics" / "basics.ipynb"
    first = target.read_bytes()
    release(["00-pytorch-basics"])
    assert target.read_bytes() == first


def test_unknown_assignment_lists_known_ones():
    with pytest.raises(CourseError, match="unknown assignment 'nope'; known assignments: .*00-pytorch-basics"):
        release(["nope"])
