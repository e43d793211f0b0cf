"""Gradescope autograder ``results.json``, one per submission (Gradescope's autograder spec:
https://gradescope-autograders.readthedocs.io/en/latest/specs/).

``score`` is given at the top level, so Gradescope shows the effective score (overrides and late
penalty applied) rather than the sum of the tests. Hidden checks are tests with visibility
``hidden`` (the course's rule: a hidden check is never shown to students) and carry only their
hint. Gradescope has no "ungraded" state: an ungraded submission gets no ``score`` and no tests,
its reason in ``output`` and ``extra_data.status = "ungraded"``, so nothing records a zero.
"""
from __future__ import annotations

from pathlib import Path

from graders.records.result import write_json_atomic

HIDDEN = "hidden"  # Gradescope also knows after_due_date / after_published; hidden checks stay hidden
VISIBLE = "visible"


def _output(c: dict) -> str:
    text = ""
    if c["status"] != "passed":  # a hidden check shows its hint only, never its message
        text = (c.get("hint") if c["visibility"] == "hidden" else c.get("message")) or ""
    if c["status"] == "pending":
        text = "pending: needs a GPU runner; " + text
    o = c.get("override")
    if o:
        text += f"\nManual review by {o['by']} ({o['at']}): {c['original_points']:g} -> {o['points']:g}. {o['comment']}"
    return text.strip()


def test_entry(number: int, c: dict) -> dict:
    return {
        "name": c["title"],
        "number": str(number),
        "score": c["points"],
        "max_score": c["max_points"],
        # Gradescope's status is passed/failed only; error and pending are failures it explains in output.
        "status": "passed" if c["status"] == "passed" else "failed",
        "output": _output(c),
        "tags": [c["id"]] + (["manual-review"] if c.get("override") else []),
        "visibility": HIDDEN if c["visibility"] == "hidden" else VISIBLE,
    }


def results_json(r: dict) -> dict:
    """Gradescope's results.json of one effective result."""
    if r["status"] != "graded":
        return {"output": f"This submission could not be graded: {r.get('reason')}. Course staff will review it.",
                "tests": [], "visibility": VISIBLE, "stdout_visibility": HIDDEN,
                "extra_data": {"status": "ungraded", "reason": r.get("reason"), "student": r["student"]}}
    lines = [f"Score {r['score']:g} / {r['max_score']:g}."]
    if r.get("pending_points"):
        lines.append(f"{r['pending_points']:g} points are pending a GPU runner.")
    late = r.get("late") or {}
    if late.get("days_late"):
        lines.append(f"Late by {late['days_late']} day(s) (due {late['due']}): -{r['late_deduction']:g} "
                     f"from {r['raw_score']:g}.")
    for o in r.get("overrides", []):
        lines.append(f"Manual review of {o['check']} by {o['by']}: {o['comment']}")
    return {
        "score": r["score"],
        "execution_time": round(r.get("duration_s") or 0),
        "output": "\n".join(lines),
        "visibility": VISIBLE,
        "stdout_visibility": HIDDEN,
        "tests": [test_entry(i, c) for i, c in enumerate(r["checks"], 1)],
        "extra_data": {"status": "graded", "student": r["student"], "grader_version": r["grader_version"],
                       "graded_at": r["graded_at"], "flags": [f["kind"] for f in r.get("flags", [])]},
    }


def write(results: list[dict], out: Path, assignment: str) -> list[Path]:
    written = []
    for r in results:
        path = Path(out) / f"{assignment}-gradescope" / r["student"] / "results.json"
        write_json_atomic(path, results_json(r))
        written.append(path)
    return written
