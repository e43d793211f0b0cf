"""Exports of a class's grades for other systems: one module per format, each with
``write(results, out, assignment) -> list[Path]`` over effective results (overrides and late
penalty applied). An ungraded submission is never written as a zero."""
from __future__ import annotations

from pathlib import Path

from graders.errors import CourseError
from graders.records.gradebook import Gradebook

GRADEBOOK_FILE = "gradebook.sqlite"


def effective_results(assignment: str, results_dir: Path) -> list[dict]:
    """The current effective result of every student, from RESULTS/gradebook.sqlite."""
    path = Path(results_dir) / GRADEBOOK_FILE
    if not path.is_file():
        raise CourseError(f"no gradebook at {path}; run `course grade {assignment} SUBMITTED --out {results_dir}` "
                          "or `course gradebook merge` first")
    with Gradebook(path) as gb:
        results = gb.effective_all(assignment)
    if not results:
        raise CourseError(f"{path} holds no grades of {assignment!r}")
    return results


def writer(fmt: str):
    from graders.exports import canvas, csv_export, gradescope, nbgrader_gradebook

    formats = {"csv": csv_export, "gradescope": gradescope, "canvas": canvas, "nbgrader": nbgrader_gradebook}
    if fmt not in formats:
        raise CourseError(f"unknown export format {fmt!r}; supported: {', '.join(formats)}")
    return formats[fmt]
