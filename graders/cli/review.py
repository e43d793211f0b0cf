"""``course review A STUDENT CHECK``: a TA's points for one check, with a comment; revertible.

    course review 01-lora alice lora.merge --points 3 --comment "merge is right; tolerance too strict" --by ta-wang
    course review 01-lora alice lora.merge --revert --by ta-wang

The override is a gradebook row (who, when, why), applied whenever the grade is read: in the
feedback (re-written here), the dashboard and every export. The stored check result is never
changed, so a revert restores it exactly. Refused, with nothing written: an unknown student or
check, points outside 0..max.
"""
from __future__ import annotations

import argparse
import getpass
import os
from pathlib import Path

from graders import paths
from graders.errors import EXIT_OK, CourseError
from graders.exports import GRADEBOOK_FILE
from graders.records.gradebook import Gradebook
from graders.reports.feedback import write_feedback


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("assignment", help="assignment name")
    p.add_argument("student", help="student id, as in the gradebook")
    p.add_argument("check", help="check id, e.g. lora.merge (see the student's result.json)")
    p.add_argument("--points", type=float, default=None, help="the check's new points, 0..max_points")
    p.add_argument("--comment", default="", help="why; shown to the student in the feedback")
    p.add_argument("--by", default=None, help="reviewer's name (default: $COURSE_REVIEWER, else the login name)")
    p.add_argument("--revert", action="store_true", help="withdraw the active override of this check")
    p.add_argument("--results", type=Path, default=paths.RESULTS, help="results folder (default: results/)")
    p.add_argument("--lang", choices=("zh", "en"), default="zh", help="language of the re-written feedback")


def run(args: argparse.Namespace) -> int:
    by = args.by or os.environ.get("COURSE_REVIEWER") or getpass.getuser()
    path = args.results / GRADEBOOK_FILE
    if not path.is_file():
        raise CourseError(f"no gradebook at {path}; pass --results DIR where `course grade` wrote it")
    if args.revert == (args.points is not None):
        raise CourseError("give --points P --comment TEXT to override, or --revert to withdraw, not both")
    with Gradebook(path) as gb:
        if args.revert:
            gb.revert_override(args.assignment, args.student, args.check, by)
        else:
            gb.add_override(args.assignment, args.student, args.check, args.points, args.comment, by)
        result = gb.effective(args.assignment, args.student)
    write_feedback(result, args.results / args.assignment / args.student, args.lang)
    score = "ungraded" if result["score"] is None else f"{result['score']:g} / {result['max_score']:g}"
    print(f"{args.student} {args.assignment}: {'reverted' if args.revert else 'overrode'} {args.check}; "
          f"score now {score}")
    return EXIT_OK
