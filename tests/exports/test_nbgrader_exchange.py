"""nbgrader's exchange end to end: generate and release_assignment -> fetch -> submit -> collect
with a local exchange folder and two students (each a user of their own: home folder, cache and
student id), then `course grade` on what collect wrote and `course export --format nbgrader` into
the course's gradebook, read back through nbgrader's API (what formgrader shows)."""
from __future__ import annotations

import json

import nbformat
import pytest

from graders.assignment import load_assignment
from graders.cli.main import main
from graders.release.build import _stage_sources
from graders.release.fill import filled_release

A = "00-pytorch-basics"
COURSE = "llm-one-piece"
WRONG = {"standardize": "def standardize(x, eps=1e-5):\n    return x - x.mean()\n"}  # bob's mistake
LATE_STAMP = "2026-12-03 10:00:00.000000 UTC"  # bob's copy arrives 2 days after the due date


def _config(root, exchange, **extra):
    """One user's nbgrader settings: their course folder, the shared exchange, their own cache."""
    from traitlets.config import Config

    c = Config()
    c.CourseDirectory.root = str(root)
    c.CourseDirectory.course_id = COURSE
    c.CourseDirectory.assignment_id = A
    c.CourseDirectory.db_url = f"sqlite:///{root / 'gradebook.db'}"
    c.Exchange.root = str(exchange)
    c.Exchange.cache = str(root / ".nbgrader-cache")
    c.Exchange.assignment_dir = str(root)
    for key, value in extra.items():
        section, name = key.split("__")
        c[section][name] = value
    return c


def _run(step, config):
    """Run one nbgrader exchange step in this process (an nbgrader CLI call costs seconds of start-up)."""
    from nbgrader.auth import Authenticator
    from nbgrader.coursedir import CourseDirectory

    step(coursedir=CourseDirectory(config=config), authenticator=Authenticator(config=config), config=config).start()


@pytest.fixture
def collected(tmp_path):
    """An nbgrader course after collect: alice handed in the solution, bob a wrong standardize, late."""
    from nbgrader.converters import GenerateAssignment
    from nbgrader.coursedir import CourseDirectory
    from nbgrader.exchange.default import (ExchangeCollect, ExchangeFetchAssignment, ExchangeReleaseAssignment,
                                           ExchangeSubmit)

    exchange, inst = tmp_path / "exchange", tmp_path / "instructor"
    exchange.mkdir()
    exchange.chmod(0o777)
    teacher = _config(inst, exchange)
    _stage_sources(load_assignment(A), inst / "source" / A)
    GenerateAssignment(coursedir=CourseDirectory(config=teacher), config=teacher).start()
    _run(ExchangeReleaseAssignment, teacher)
    for student, overrides in (("alice", None), ("bob", WRONG)):
        home = tmp_path / student  # a user of their own: home folder, cache and student id
        home.mkdir()
        me = _config(home, exchange, CourseDirectory__student_id=student)
        _run(ExchangeFetchAssignment, me)
        for name in load_assignment(A).notebooks:  # the student's answers, saved over the fetched copy
            fetched = home / A / name
            assert fetched.is_file(), f"fetch did not write {fetched}"
            nbformat.write(filled_release(A, name, overrides), fetched)
        _run(ExchangeSubmit, me)
    _run(ExchangeCollect, teacher)
    (inst / "submitted" / "bob" / A / "timestamp.txt").write_text(LATE_STAMP)
    return inst


@pytest.mark.slow
def test_exchange_collect_grade_and_export_to_formgrader(collected, tmp_path, capsys):
    inst, results = collected, tmp_path / "results"
    assert sorted(p.name for p in (inst / "submitted").iterdir()) == ["alice", "bob"]
    grade = ["grade", A, str(inst / "submitted"), "--out", str(results), "--jobs", "1"]
    # On a loaded machine a slow kernel start can leave one submission ungraded (exit 1, never a
    # zero); an instructor's second run grades only what is not graded yet, so the test does too.
    assert main(grade) == 0 or main(grade) == 0
    ours = {s: json.loads((results / A / s / "result.json").read_text()) for s in ("alice", "bob")}
    assert main(["export", A, "--format", "nbgrader", "--results", str(results), "--out", str(inst / "gradebook.db")]) == 0

    from nbgrader.api import Gradebook

    alice, bob = ours["alice"], ours["bob"]
    with Gradebook(f"sqlite:///{inst / 'gradebook.db'}") as gb:  # what formgrader reads
        assert gb.find_assignment(A).max_score == alice["max_score"]
        got = {s: gb.find_submission(A, s) for s in ("alice", "bob")}
        assert (got["alice"].score, got["alice"].needs_manual_grade) == (alice["score"], False)
        # result.json holds the score before the late penalty; nbgrader too keeps the penalty apart
        assert got["bob"].score == bob["score"] < bob["max_score"]
        assert bob["late"]["days_late"] == 2
        assert got["bob"].late_submission_penalty == pytest.approx(0.2 * bob["score"])  # 10% per day


def test_nbgrader_export_refuses_a_missing_gradebook(tmp_path, capsys):
    from tests.records.classroom import write_class

    results = write_class(tmp_path / "results")
    assert main(["export", A, "--format", "nbgrader", "--results", str(results),
                 "--out", str(tmp_path / "nope" / "gradebook.db")]) == 2
    assert "no nbgrader gradebook at" in capsys.readouterr().err
