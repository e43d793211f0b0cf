"""The course command: exit codes, refusals with a reason, and the student's `course check`."""
from __future__ import annotations

import json

import nbformat
import pytest

from graders.cli.main import main
from graders.release.fill import filled_release

from tests.graders.helpers import write_submission

A = "00-pytorch-basics"


def test_unknown_assignment_is_a_usage_error(tmp_path, capsys):
    assert main(["grade", "no-such-lab", str(tmp_path)]) == 2
    assert "unknown assignment 'no-such-lab'; known assignments:" in capsys.readouterr().err


def test_wrong_layout_is_a_usage_error_that_shows_the_layout(tmp_path, capsys):
    assert main(["grade", A, str(tmp_path / "missing")]) == 2
    assert f"expected SUBMITTED/<student>/{A}/*.ipynb" in capsys.readouterr().err


def test_require_isolation_refuses_without_bubblewrap(tmp_path, monkeypatch, capsys):
    from graders.sandbox import bwrap

    monkeypatch.setattr(bwrap, "available", lambda: (False, "bwrap is not installed"))
    write_submission(tmp_path / "sub", "ann", A, {"basics.ipynb": filled_release(A, "basics.ipynb")})
    assert main(["grade", A, str(tmp_path / "sub"), "--out", str(tmp_path / "out"), "--require-isolation"]) == 2
    assert "--require-isolation: bubblewrap cannot run here" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_grade_exits_1_and_lists_a_refused_student_folder(tmp_path, capsys):
    sub = tmp_path / "sub"
    write_submission(sub, "ann", A, {"basics.ipynb": filled_release(A, "basics.ipynb")})
    (sub / "bad name!" / A).mkdir(parents=True)
    out = tmp_path / "out"
    assert main(["grade", A, str(sub), "--out", str(out), "--lang", "en"]) == 1
    printed = capsys.readouterr().out
    assert "refused folder 'bad name!'" in printed
    result = json.loads((out / A / "ann" / "result.json").read_text())
    assert result["score"] == result["max_score"] == 10
    assert "Feedback" in (out / A / "ann" / "feedback.md").read_text()
    # A second run skips the unchanged submission; --force grades it again and keeps history.
    assert main(["grade", A, str(sub), "--out", str(out)]) == 1
    assert "skipped 1 unchanged" in capsys.readouterr().out.replace("\n", " ")
    main(["grade", A, str(sub), "--out", str(out), "--force"])
    from graders.records.gradebook import Gradebook

    with Gradebook(out / "gradebook.sqlite") as gb:
        assert len(gb.history(A, "ann")) == 2


def test_grade_ends_with_one_line_that_gives_submissions_per_minute(tmp_path, capsys, monkeypatch):
    import re
    from types import SimpleNamespace

    from graders.cli import grade
    from graders.engine.batch import BatchSummary

    result = {"student": "ann", "score": 10.0, "max_score": 10.0, "pending_points": 0.0, "flags": [], "status": "graded"}
    summary = BatchSummary(graded=[result, {**result, "student": "ben"}], skipped=["cat"])
    monkeypatch.setattr(grade, "grade_batch", lambda *a, **kw: summary)
    clock = iter([100.0, 130.0])  # the batch took 30 s
    monkeypatch.setattr(grade, "time", SimpleNamespace(perf_counter=lambda: next(clock)))
    out = tmp_path / ("a-results-folder-long-enough-to-wrap-an-80-column-line" * 2)
    assert main(["grade", A, str(tmp_path), "--out", str(out), "--jobs", "2"]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("graded "))
    assert re.fullmatch(rf"graded 2, skipped 1 unchanged, ungraded 0 in 30 s \(4\.0 submissions/min, --jobs 2\); "
                        rf"results in {re.escape(str(out / A))}", line), line


def test_course_check_runs_only_visible_checks(tmp_path, capsys):
    folder = tmp_path / A
    folder.mkdir()
    nbformat.write(filled_release(A, "basics.ipynb"), folder / "basics.ipynb")
    assert main(["check", str(folder / "basics.ipynb"), "--lang", "en"]) == 0
    printed = capsys.readouterr().out
    assert "3 / 3" in printed  # the three visible checks, one point each
    assert "hidden" not in printed


def test_course_check_needs_a_known_assignment(tmp_path, capsys):
    nb = tmp_path / "basics.ipynb"
    nbformat.write(filled_release(A, "basics.ipynb"), nb)
    assert main(["check", str(nb)]) == 2
    assert "pass --assignment" in capsys.readouterr().err


def test_an_assignment_that_requires_isolation_is_refused_without_bubblewrap(tmp_path, monkeypatch, capsys):
    from graders.sandbox import bwrap

    monkeypatch.setattr(bwrap, "available", lambda: (False, "bwrap is not installed"))
    write_submission(tmp_path / "sub", "ann", "13-deepspeed-zero", {"zero.ipynb": filled_release("13-deepspeed-zero", "zero.ipynb")})
    assert main(["grade", "13-deepspeed-zero", str(tmp_path / "sub"), "--out", str(tmp_path / "out")]) == 2
    assert "grades right only inside bubblewrap" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
