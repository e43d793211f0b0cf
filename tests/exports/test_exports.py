import csv
import io
import json

import pytest

from graders.cli.main import main
from graders.exports import canvas, csv_export, gradescope
from graders.records.effective import effective_result
from graders.records.gradebook import Gradebook
from tests.records.classroom import ASSIGNMENT, klass, write_class


def effective(results=None, overrides=()):
    return [effective_result(r, [o for o in overrides if o["student"] == r["student"]]) for r in results or klass()]


def by_student(text):
    return {row["student"]: row for row in csv.DictReader(io.StringIO(text))}


def test_csv_keeps_ungraded_distinct_from_zero():
    rows = by_student(csv_export.render(effective()))
    assert (rows["carol"]["status"], rows["carol"]["score"], rows["carol"]["reason"]) == \
        ("ungraded", "", "the notebook timed out")
    assert rows["carol"]["check:basics.tensor"] == ""
    assert (rows["bob"]["status"], rows["bob"]["score"], rows["bob"]["check:basics.loop"]) == ("graded", "2", "0")


def test_csv_shows_late_penalty_and_overrides():
    ov = [{"student": "bob", "check": "basics.loop", "points": 3.0, "comment": "typo only", "by": "ta", "at": "t"}]
    rows = by_student(csv_export.render(effective(overrides=ov)))
    assert (rows["dave"]["raw_score"], rows["dave"]["late_days"], rows["dave"]["late_deduction"], rows["dave"]["score"]) \
        == ("9", "2", "1.8", "7.2")
    assert rows["bob"]["score"] == "5" and "basics.loop=3 by ta: typo only" in rows["bob"]["overrides"]


def test_gradescope_results_follow_the_autograder_spec():
    res = {r["student"]: gradescope.results_json(r) for r in effective()}
    bob = res["bob"]
    assert bob["score"] == 2 and len(bob["tests"]) == 4
    for t in bob["tests"]:
        assert set(t) >= {"name", "score", "max_score", "status", "output", "visibility"}
        assert t["status"] in ("passed", "failed") and t["visibility"] in ("hidden", "visible")
    hidden = next(t for t in bob["tests"] if "basics.grad" in t["tags"])
    assert hidden["visibility"] == "hidden"
    assert "hidden detail" not in json.dumps(bob) and "zero_grad" in hidden["output"]  # hint only
    assert "Late by 2 day(s)" in res["dave"]["output"] and res["dave"]["score"] == 7.2


def test_gradescope_ungraded_has_no_score_at_all():
    carol = gradescope.results_json(effective()[2])
    assert "score" not in carol and carol["tests"] == [] and carol["extra_data"]["status"] == "ungraded"
    assert "timed out" in carol["output"]


def test_canvas_csv_leaves_ungraded_empty_and_names_the_assignment_column():
    text = canvas.render(effective(), canvas.column_name(ASSIGNMENT, {"canvas": {"assignment_id": 4321}}))
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == canvas.HEADER + [f"{ASSIGNMENT} (4321)"]
    assert rows[1][0] == "Points Possible" and rows[1][-1] == "10"
    cells = {r[3]: r[-1] for r in rows[2:]}
    assert cells == {"alice": "9", "bob": "2", "carol": "", "dave": "7.2"}


@pytest.mark.parametrize("fmt, expect", [("csv", f"{ASSIGNMENT}-grades.csv"), ("canvas", f"{ASSIGNMENT}-canvas.csv"),
                                         ("gradescope", f"{ASSIGNMENT}-gradescope/bob/results.json")])
def test_course_export_reads_the_gradebook_with_overrides(tmp_path, fmt, expect, capsys):
    write_class(tmp_path)
    with Gradebook(tmp_path / "gradebook.sqlite") as gb:
        gb.add_override(ASSIGNMENT, "bob", "basics.loop", 4, "fine after all", "ta")
    assert main(["export", ASSIGNMENT, "--format", fmt, "--results", str(tmp_path)]) == 0
    text = (tmp_path / expect).read_text()
    assert "6" in text and "ungraded (not zero): carol" in capsys.readouterr().out
    if fmt == "gradescope":
        assert json.loads(text)["score"] == 6


def test_course_export_without_a_gradebook_says_how_to_make_one(tmp_path, capsys):
    assert main(["export", ASSIGNMENT, "--format", "csv", "--results", str(tmp_path)]) == 2
    assert "course grade" in capsys.readouterr().err
