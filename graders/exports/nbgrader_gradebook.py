"""Scores into an nbgrader gradebook, so formgrader and ``nbgrader export`` show them.

For an instructor who runs nbgrader's exchange (release_assignment -> fetch -> submit ->
collect) and grades what ``collect`` wrote with ``course grade``. ``out`` is that course's
``gradebook.db``, where ``nbgrader generate_assignment`` recorded the assignment, its notebooks
and its grade cells. Per student the submission is created when missing (as ``nbgrader
autograde`` would) and each autograded test cell gets as ``auto_score`` the effective points of
the checks bound to it (``cell=`` on the check marker; overrides applied); the late deduction
goes to the first notebook's ``late_submission_penalty``. Re-running updates in place.

Refused or left alone, and said so: an ungraded submission (its cells stay "needs autograding",
never 0), and checks bound to no cell of nbgrader's assignment (nbgrader has nowhere to put them).
"""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from graders.errors import CourseError
from graders.records.result import GRADED


def _cell_points(result: dict) -> tuple[dict[str, float], list[str]]:
    """Effective points per grade cell, and the checks bound to no cell."""
    per_cell: dict[str, float] = defaultdict(float)
    unbound = []
    for c in result["checks"]:
        if c.get("cell"):
            per_cell[c["cell"]] += c["points"] if c["status"] != "pending" or c.get("override") else 0.0
        else:
            unbound.append(c["id"])
    return dict(per_cell), unbound


def write(results: list[dict], out: Path, assignment: str) -> list[Path]:
    from nbgrader.api import Gradebook, MissingEntry

    db = Path(out)
    if not db.is_file():
        raise CourseError(f"no nbgrader gradebook at {db}; run from your nbgrader course folder or pass "
                          "--out COURSE/gradebook.db (nbgrader generate_assignment creates it)")
    notes: list[str] = []
    with Gradebook(f"sqlite:///{db}") as gb:
        try:
            cells = {cell.name: nb.name for nb in gb.find_assignment(assignment).notebooks for cell in nb.grade_cells}
        except MissingEntry:
            raise CourseError(f"{db} knows no assignment {assignment!r}; run `nbgrader generate_assignment "
                              f"{assignment}` in that course first") from None
        for r in results:
            if r["status"] != GRADED:
                notes.append(f"{r['student']}: ungraded ({r.get('reason')}), left as needs autograding")
                continue
            _write_one(gb, assignment, r, cells, notes)
    for note in notes:
        print(f"nbgrader export: {note}")
    return [db]


def _write_one(gb, assignment: str, result: dict, cells: dict[str, str], notes: list[str]) -> None:
    from nbgrader.api import MissingEntry

    student = result["student"]
    gb.update_or_create_student(student)
    try:
        submission = gb.find_submission(assignment, student)
    except MissingEntry:
        submission = gb.add_submission(assignment, student)
    per_cell, unbound = _cell_points(result)
    unbound += [f"cell {cell}" for cell in per_cell if cell not in cells]
    if unbound:
        notes.append(f"{student}: not in nbgrader (bound to no nbgrader cell): {', '.join(unbound)}")
    for cell, notebook in cells.items():
        grade = gb.find_grade(cell, Path(notebook).stem, assignment, student)
        if grade.cell_type != "code" or cell not in per_cell:
            continue  # written answers and tasks are the TA's to grade in formgrader
        grade.auto_score = per_cell[cell]
        grade.needs_manual_grade = False
    notebooks = sorted(submission.notebooks, key=lambda nb: nb.name)
    for i, nb in enumerate(notebooks):
        nb.late_submission_penalty = (result.get("late_deduction") or 0.0) if i == 0 else 0.0
    gb.db.commit()
