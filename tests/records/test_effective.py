from graders.records.effective import effective_result
from tests.records.classroom import late_record, result


def override(check, points, comment="regraded by hand", by="ta"):
    return {"check": check, "points": points, "comment": comment, "by": by, "at": "2026-12-04T00:00:00+00:00"}


def test_plain_result_keeps_its_score():
    r = result("bob", "partial")
    e = effective_result(r)
    assert (e["score"], e["raw_score"], e["late_deduction"]) == (2, 2, 0)
    assert e["overrides"] == [] and e["pending_points"] == 1


def test_override_replaces_one_checks_points_and_keeps_the_original():
    e = effective_result(result("bob", "partial"), [override("basics.loop", 3)])
    loop = next(c for c in e["checks"] if c["id"] == "basics.loop")
    assert (loop["points"], loop["original_points"], loop["override"]["by"]) == (3, 0, "ta")
    assert e["score"] == 5


def test_effective_result_is_idempotent_and_revert_restores_the_original():
    once = effective_result(result("bob", "partial"), [override("basics.loop", 3)])
    twice = effective_result(once, [override("basics.loop", 3)])
    assert twice["score"] == once["score"] == 5
    assert effective_result(once)["score"] == 2  # no overrides any more: the stored points again


def test_override_of_a_pending_check_counts_it():
    e = effective_result(result("alice"), [override("basics.gpu", 1, "ran on the lab's GPU")])
    assert (e["score"], e["pending_points"]) == (10, 0)


def test_override_for_a_missing_check_changes_nothing_and_is_listed():
    e = effective_result(result("alice"), [override("basics.nope", 5)])
    assert e["score"] == 9 and e["orphan_overrides"] == ["basics.nope"]


def test_late_penalty_applies_after_overrides():
    r = result("dave", late=late_record(1.5))  # 2 started days at 10 % each
    e = effective_result(r, [override("basics.gpu", 1)])
    assert (e["raw_score"], e["late_deduction"], e["score"]) == (10, 2, 8)


def test_ungraded_stays_ungraded_whatever_the_overrides():
    e = effective_result(result("carol", "ungraded"), [override("basics.tensor", 2)])
    assert e["score"] is None and e["status"] == "ungraded"
