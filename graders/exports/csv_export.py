"""The class gradebook as CSV: one row per student, one column per check.

``status`` is graded or ungraded; an ungraded row has an empty score and its reason, never 0.
``score`` is the effective score (overrides and late penalty applied); ``raw_score`` is before
the late penalty, ``late_days`` and ``late_deduction`` say why they differ.
"""
from __future__ import annotations

import csv
import io
from pathlib import Path

from graders.records.result import write_text_atomic

FIXED = ["student", "status", "score", "max_score", "pending_points", "raw_score", "late_days",
         "late_deduction", "overrides", "reason", "graded_at", "grader_version"]


def _cell(x) -> str:
    if x is None:
        return ""
    return f"{x:g}" if isinstance(x, float) else str(x)


def rows(results: list[dict]) -> tuple[list[str], list[list[str]]]:
    check_ids: list[str] = []
    for r in results:
        check_ids += [c["id"] for c in r["checks"] if c["id"] not in check_ids]
    header = FIXED + [f"check:{cid}" for cid in check_ids]
    body = []
    for r in sorted(results, key=lambda r: r["student"]):
        late = r.get("late") or {}
        points = {c["id"]: c["points"] for c in r["checks"]}
        overrides = "; ".join(f"{o['check']}={o['points']:g} by {o['by']}: {o['comment']}" for o in r.get("overrides", []))
        fixed = [r["student"], r["status"], r["score"], r["max_score"], r["pending_points"], r.get("raw_score"),
                 late.get("days_late"), r.get("late_deduction"), overrides, r.get("reason"), r["graded_at"],
                 r["grader_version"]]
        graded = r["status"] == "graded"
        body.append([_cell(x) for x in fixed] + [_cell(points.get(cid)) if graded else "" for cid in check_ids])
    return header, body


def render(results: list[dict]) -> str:
    header, body = rows(results)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(body)
    return buf.getvalue()


def write(results: list[dict], out: Path, assignment: str) -> list[Path]:
    path = Path(out) / f"{assignment}-grades.csv"
    write_text_atomic(path, render(results))
    return [path]
