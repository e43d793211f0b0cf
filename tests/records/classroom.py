"""A small class of result.json dicts built with ``build_result``: no engine, no kernel.

alice: full marks (the pending GPU check aside); bob: fails the hidden check, errors on another;
carol: ungraded (time-out); dave: like alice, submitted two days late.
"""
from __future__ import annotations

from pathlib import Path

from graders.records.gradebook import Gradebook
from graders.records.late import LatePolicy
from graders.records.result import UNGRADED, build_result, write_json_atomic
from graders.reports.feedback import write_feedback

ASSIGNMENT = "00-pytorch-basics"
VERSION = "1-test"
POLICY = {"due": "2026-12-01T23:59:00+08:00", "penalty_per_day": 0.1, "max_days": 5}


def check(cid: str, points: float, max_points: float, status: str, visibility: str = "visible", **kw) -> dict:
    return {"id": cid, "title": kw.pop("title", cid.replace(".", " ")), "points": points, "max_points": max_points,
            "status": status, "visibility": visibility, "message": kw.pop("message", ""), "hint": kw.pop("hint", ""),
            "gpu": status == "pending", "duration_s": 0.1, **kw}


def result(student: str, kind: str = "full", *, assignment: str = ASSIGNMENT, version: str = VERSION,
           graded_at: str = "2026-12-03T10:00:00+00:00", late: dict | None = None) -> dict:
    if kind == "ungraded":
        r = build_result(assignment=assignment, student=student, checks=[], flags=[
            {"kind": "timeout", "detail": "notebook ran past 300 s", "notebook": "basics.ipynb", "cell": ""}],
            files={"basics.ipynb": "ab" * 32}, grader_version=version, profile="tiny", isolation="bwrap",
            status=UNGRADED, reason="the notebook timed out", max_score=0.0, duration_s=300.0)
    else:
        bad = kind == "partial"
        checks = [
            check("basics.tensor", 2, 2, "passed", title="張量形狀 tensor shapes"),
            check("basics.grad", 0 if bad else 3, 3, "failed" if bad else "passed", "hidden",
                  message="hidden detail" if bad else "", hint="檢查 backward() 前是否 zero_grad" if bad else ""),
            check("basics.loop", 0 if bad else 4, 4, "error" if bad else "passed",
                  message="NameError: name 'optimizer' is not defined" if bad else ""),
            check("basics.gpu", 0, 1, "pending"),
        ]
        flags = [{"kind": "tampered_cell", "detail": "test cell edited; restored", "notebook": "basics.ipynb",
                  "cell": "test-grad"}] if bad else []
        r = build_result(assignment=assignment, student=student, checks=checks, flags=flags,
                         files={"basics.ipynb": (student.encode().hex() * 64)[:64]}, grader_version=version,
                         profile="tiny", isolation="bwrap", duration_s=12.5 if bad else 8.25,
                         peak_memory_mb=900.0 if bad else 640.0)
    r["graded_at"] = graded_at
    if late is not None:
        r["late"] = late
    return r


def late_record(days_after_due: float) -> dict:
    from datetime import timedelta

    policy = LatePolicy(due=__import__("datetime").datetime.fromisoformat(POLICY["due"]),
                        penalty_per_day=POLICY["penalty_per_day"], max_days=POLICY["max_days"])
    return policy.assess(policy.due + timedelta(days=days_after_due))


def klass() -> list[dict]:
    return [result("alice"), result("bob", "partial"), result("carol", "ungraded"),
            result("dave", late=late_record(1.5))]


def write_class(out: Path, results: list[dict] | None = None) -> Path:
    """What ``course grade`` leaves: OUT/<a>/<student>/{result.json, feedback.*} and the gradebook."""
    results = klass() if results is None else results
    with Gradebook(out / "gradebook.sqlite") as gb:
        for r in results:
            folder = out / r["assignment"] / r["student"]
            write_json_atomic(folder / "result.json", r)
            write_feedback(r, folder)
            gb.record(r)
    return out
