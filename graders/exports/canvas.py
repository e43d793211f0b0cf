"""A Canvas gradebook import CSV (Grades > Import).

Canvas matches rows by ``SIS Login ID`` (our student id) and an assignment column named
``<title> (<canvas id>)``; the id comes from ``[canvas] assignment_id`` in assignment.toml, and
without it Canvas creates a new assignment named after the column. The second row, "Points
Possible", tells Canvas the maximum. An ungraded submission's cell is left empty: Canvas then
leaves that grade unchanged instead of recording a zero.
"""
from __future__ import annotations

import csv
import io
from pathlib import Path

from graders.records.result import write_text_atomic

HEADER = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]


def column_name(assignment: str, settings: dict | None = None) -> str:
    canvas = (settings or {}).get("canvas", {})
    title = canvas.get("title", assignment)
    return f"{title} ({canvas['assignment_id']})" if "assignment_id" in canvas else title


def render(results: list[dict], column: str) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(HEADER + [column])
    top = max((r["max_score"] for r in results), default=0)
    w.writerow(["Points Possible", "", "", "", "", f"{top:g}"])
    for r in sorted(results, key=lambda r: r["student"]):
        score = "" if r["score"] is None else f"{r['score']:g}"
        w.writerow([r["student"], "", "", r["student"], "", score])
    return buf.getvalue()


def write(results: list[dict], out: Path, assignment: str, settings: dict | None = None) -> list[Path]:
    path = Path(out) / f"{assignment}-canvas.csv"
    write_text_atomic(path, render(results, column_name(assignment, settings)))
    return [path]
