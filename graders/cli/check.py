"""``course check NOTEBOOK``: a student's local run of the visible checks, with the same engine.

    course check release/00-pytorch-basics/basics.ipynb

The notebook (and the assignment's other notebooks beside it) run in a fresh kernel, sandboxed
where bubblewrap exists (rlimits only elsewhere, e.g. macOS), then the visible checks run and the
feedback is printed. Nothing is written to the gradebook.
"""
from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from rich.console import Console
from rich.markdown import Markdown

from graders.assignment import list_assignments, load_assignment
from graders.cli.grade import add_grading_options, options_from
from graders.engine.batch import announce_isolation
from graders.engine.grade_one import grade_submission
from graders.engine.reference import LazyReference
from graders.engine.version import grader_version
from graders.errors import CourseError
from graders.reports.feedback import render
from graders.sandbox.scratch import scratch_dir


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("notebook", type=Path, help="your notebook, e.g. release/00-pytorch-basics/basics.ipynb")
    p.add_argument("--assignment", default=None, help="assignment name (default: the notebook's folder name)")
    add_grading_options(p)


def _assignment_of(notebook: Path, explicit: str | None):
    name = explicit or notebook.resolve().parent.name
    if name not in list_assignments():
        raise CourseError(f"cannot tell the assignment of {notebook}: its folder is {notebook.resolve().parent.name!r}; "
                          f"pass --assignment (one of {', '.join(list_assignments())})")
    assignment = load_assignment(name)
    if notebook.name not in assignment.notebooks:
        raise CourseError(f"{notebook.name} is not a notebook of {name} ({', '.join(assignment.notebooks)})")
    return assignment


def run(args: argparse.Namespace) -> int:
    if not args.notebook.is_file():
        raise CourseError(f"{args.notebook} does not exist")
    assignment = _assignment_of(args.notebook, args.assignment)
    options = options_from(args, visible_only=True)
    announce_isolation(options)
    with scratch_dir("check") as tmp:
        folder = Path(tmp) / "me" / assignment.name
        folder.mkdir(parents=True)
        for name in assignment.notebooks:  # the assignment's notebooks that sit beside this one
            source = args.notebook.parent / name
            if source.is_file():
                shutil.copy2(source, folder / name)
        reference = LazyReference(assignment, options)
        try:
            result = grade_submission(assignment, "me", folder, options, reference=reference,
                                      version=grader_version(assignment))
        finally:
            reference.close()
    Console().print(Markdown(render(result, "md", options.lang)))
    return 0 if result["status"] == "graded" else 1
