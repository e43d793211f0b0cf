"""The mutant file format and the kill-matrix verdicts, without grading anything."""
from __future__ import annotations

import pytest

from graders.assignment import load_assignment
from graders.errors import CourseError
from graders.mutants import load_mutants
from graders.mutants.run import apply_edits, judge
from graders.mutants.spec import load_mutant

NOTEBOOKS = ("a.ipynb", "b.ipynb")


def write(tmp_path, name, text):
    path = tmp_path / f"{name}.toml"
    path.write_text(text)
    return path


def test_a_well_formed_mutant_loads(tmp_path):
    m = load_mutant(write(tmp_path, "bad-scale", 'title = "x"\nfails = ["a.b"]\nci = true\n'
                          '[[edit]]\nnotebook = "a.ipynb"\ncell = "c"\nold = "1"\nnew = "2"\n'), NOTEBOOKS)
    assert (m.name, m.fails, m.ci, m.correct) == ("bad-scale", frozenset({"a.b"}), True, False)


@pytest.mark.parametrize(("text", "says"), [
    ('title = "x"\nfails = []\n', "at least one [[edit]]"),
    ('fails = []\n[[edit]]\nnotebook = "a.ipynb"\ncell = "c"\nsource = "s"\n', "give a title"),
    ('title = "x"\nfails = []\n[[edit]]\nnotebook = "z.ipynb"\ncell = "c"\nsource = "s"\n', "is not one of"),
    ('title = "x"\nfails = []\n[[edit]]\nnotebook = "a.ipynb"\ncell = "c"\nold = "s"\n', "exactly one of"),
    ('title = "x"\nfails = []\n[[edit]]\nnotebook = "a.ipynb"\nsource = "s"\n', "names it"),
    ('title = "x"\nfails = "a.b"\n[[edit]]\nnotebook = "a.ipynb"\ncell = "c"\nsource = "s"\n', "list of check ids"),
    ('title = "x"\nfails = []\nkills = 3\n[[edit]]\nnotebook = "a.ipynb"\ndrop = true\n', "unknown keys"),
])
def test_a_malformed_mutant_says_what_is_wrong(tmp_path, text, says):
    with pytest.raises(CourseError, match=says.replace("[", r"\[").replace("]", r"\]")):
        load_mutant(write(tmp_path, "m", text), NOTEBOOKS)


def test_reserved_names_are_refused(tmp_path):
    with pytest.raises(CourseError, match="file name"):
        load_mutant(write(tmp_path, "solution", 'title = "x"\nfails = []\n[[edit]]\nnotebook = "a.ipynb"\ndrop = true\n'), NOTEBOOKS)


def test_every_shipped_mutant_applies_to_the_current_solution():
    """A mutant whose text no longer occurs in the solution would silently test nothing."""
    from graders.assignment import list_assignments

    for name in list_assignments():
        assignment = load_assignment(name)
        for mutant in load_mutants(assignment):
            notebooks = apply_edits(assignment, mutant)
            assert set(notebooks) == set(assignment.notebooks) - {e.notebook for e in mutant.edits if e.drop}


def _result(student, failing=(), checks=("x.one", "x.two"), score=None, flags=(), pending=()):
    rows = [{"id": c, "status": "pending" if c in pending else "failed" if c in failing else "passed",
             "message": "differs" if c in failing else "", "max_points": 1} for c in checks]
    max_score = float(len(checks))
    got = max_score - len(failing) - len(pending) if score is None else score
    return {"student": student, "status": "graded", "checks": rows, "score": got, "max_score": max_score,
            "pending_points": float(len(pending)), "flags": [{"kind": k} for k in flags]}


def _mutant(tmp_path, name, fails, flags=()):
    text = f'title = "t"\nfails = {list(fails)!r}\nflags = {list(flags)!r}\n[[edit]]\nnotebook = "a.ipynb"\ndrop = true\n'
    return load_mutant(write(tmp_path, name, text.replace("'", '"')), NOTEBOOKS)


def test_judge_is_green_when_every_row_is_as_declared(tmp_path):
    m1, m2 = _mutant(tmp_path, "m1", ["x.one"]), _mutant(tmp_path, "m2", ["x.two"])
    results = {"solution": _result("solution"), "untouched": _result("untouched", ["x.one", "x.two"], score=0),
               "m1": _result("m1", ["x.one"]), "m2": _result("m2", ["x.two"])}
    report = judge("a", results, [m1, m2], full_run=True)
    assert report.ok and report.unkilled == []


def test_judge_names_survivors_collateral_failures_and_missing_flags(tmp_path):
    m1 = _mutant(tmp_path, "m1", ["x.one"], flags=["reference_artifact"])
    results = {"solution": _result("solution"), "untouched": _result("untouched", ["x.one", "x.two"], score=0),
               "m1": _result("m1", ["x.two"])}
    report = judge("a", results, [m1], full_run=True)
    problems = next(v for v in report.verdicts if v.student == "m1").problems
    assert problems == ["survives x.one", "also fails x.two", "does not raise flag reference_artifact"]
    assert not report.ok


def test_judge_reports_checks_no_mutant_kills_on_a_full_run_only(tmp_path):
    m1 = _mutant(tmp_path, "m1", ["x.one"])
    results = {"solution": _result("solution"), "untouched": _result("untouched", ["x.one", "x.two"], score=0),
               "m1": _result("m1", ["x.one"])}
    assert judge("a", results, [m1], full_run=True).unkilled == ["x.two"]
    assert not judge("a", results, [m1], full_run=True).ok
    assert judge("a", results, [m1], full_run=False).ok


def test_a_correct_but_different_answer_must_keep_full_marks(tmp_path):
    same = _mutant(tmp_path, "einsum", [])
    results = {"solution": _result("solution"), "untouched": _result("untouched", ["x.one", "x.two"], score=0),
               "einsum": _result("einsum", ["x.two"])}
    verdict = next(v for v in judge("a", results, [same], full_run=False).verdicts if v.student == "einsum")
    assert not verdict.ok and "also fails x.two" in verdict.problems[0]


def test_a_solution_that_loses_points_or_an_ungraded_row_is_red(tmp_path):
    results = {"solution": _result("solution", ["x.one"]),
               "untouched": {"student": "untouched", "status": "ungraded", "reason": "kernel did not start"}}
    verdicts = {v.student: v for v in judge("a", results, [], full_run=False).verdicts}
    assert verdicts["solution"].problems == ["the solution fails x.one"]
    assert verdicts["untouched"].problems == ["not graded: kernel did not start"]
