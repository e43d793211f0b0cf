import pytest

from graders.errors import CourseError
from graders.records.gradebook import Gradebook
from tests.records.classroom import ASSIGNMENT, write_class


def snapshot(gb):
    return gb.db.execute("SELECT * FROM overrides").fetchall(), gb.db.execute("SELECT * FROM grades").fetchall()


@pytest.fixture
def gb(tmp_path):
    write_class(tmp_path)
    with Gradebook(tmp_path / "gradebook.sqlite") as gb:
        yield gb


def test_override_is_recorded_with_who_and_when_and_applied_on_read(gb):
    gb.add_override(ASSIGNMENT, "bob", "basics.loop", 3, "logic right, typo in a name", "ta-wang")
    [o] = gb.overrides(ASSIGNMENT, "bob")
    assert (o["by"], o["check"], o["points"]) == ("ta-wang", "basics.loop", 3) and o["at"]
    assert gb.effective(ASSIGNMENT, "bob")["score"] == 5
    assert gb.current(ASSIGNMENT, "bob")["score"] == 2  # the stored grade is untouched


def test_second_override_of_a_check_replaces_the_first_and_revert_restores(gb):
    gb.add_override(ASSIGNMENT, "bob", "basics.loop", 3, "first look", "ta-a")
    gb.add_override(ASSIGNMENT, "bob", "basics.loop", 4, "second look", "ta-b")
    assert gb.effective(ASSIGNMENT, "bob")["score"] == 6
    gb.revert_override(ASSIGNMENT, "bob", "basics.loop", "ta-b")
    assert gb.effective(ASSIGNMENT, "bob")["score"] == 2
    assert len(gb.overrides(ASSIGNMENT, "bob", include_reverted=True)) == 2  # history kept


def test_override_survives_a_regrade_of_the_same_check(gb):
    from tests.records.classroom import result

    gb.add_override(ASSIGNMENT, "bob", "basics.loop", 3, "ok", "ta")
    gb.record(result("bob", "partial", graded_at="2026-12-05T00:00:00+00:00"))
    assert gb.effective(ASSIGNMENT, "bob")["score"] == 5


@pytest.mark.parametrize("student, check, points, comment, message", [
    ("bob", "basics.nope", 1, "x", "has no check 'basics.nope'; its checks: basics.tensor"),
    ("zoe", "basics.loop", 1, "x", "no grade of 'zoe'"),
    ("bob", "basics.loop", 9, "x", r"give 0\.\.4"),
    ("bob", "basics.loop", -1, "x", r"give 0\.\.4"),
    ("bob", "basics.loop", 1, "  ", "--comment is empty"),
    ("carol", "basics.loop", 1, "x", r"none \(ungraded\)"),
])
def test_bad_override_is_refused_and_changes_nothing(gb, student, check, points, comment, message):
    before = snapshot(gb)
    with pytest.raises(CourseError, match=message):
        gb.add_override(ASSIGNMENT, student, check, points, comment, "ta")
    assert snapshot(gb) == before


def test_revert_without_an_override_is_refused(gb):
    with pytest.raises(CourseError, match="nothing to revert"):
        gb.revert_override(ASSIGNMENT, "bob", "basics.loop", "ta")
