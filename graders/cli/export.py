"""``course export A --format csv|gradescope|canvas|nbgrader``: grades for other systems.

    course export 01-lora --format csv                 # results/01-lora-grades.csv
    course export 01-lora --format gradescope          # results/01-lora-gradescope/<student>/results.json
    course export 01-lora --format canvas --out /tmp   # /tmp/01-lora-canvas.csv
    course export 01-lora --format nbgrader --out ~/course/gradebook.db   # formgrader shows the scores

Every format shows the effective grade (TA overrides and late penalty applied) and keeps an
ungraded submission distinct from a zero.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from graders import paths
from graders.assignment import load_assignment
from graders.errors import EXIT_OK
from graders.exports import effective_results, writer


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("assignment", help="assignment name, a folder of assignments/")
    p.add_argument("--format", required=True, choices=("csv", "gradescope", "canvas", "nbgrader"), help="what to write")
    p.add_argument("--results", type=Path, default=paths.RESULTS,
                   help="results folder holding gradebook.sqlite (default: results/)")
    p.add_argument("--out", type=Path, default=None,
                   help="where to write (default: the results folder; for nbgrader its course's gradebook.db, "
                        "default ./gradebook.db)")


def run(args: argparse.Namespace) -> int:
    assignment = load_assignment(args.assignment)
    results = effective_results(assignment.name, args.results)
    module = writer(args.format)
    out = args.out or (Path("gradebook.db") if args.format == "nbgrader" else args.results)
    if args.format == "canvas":
        written = module.write(results, out, assignment.name, assignment.settings)
    else:
        written = module.write(results, out, assignment.name)
    ungraded = [r["student"] for r in results if r["status"] != "graded"]
    print(f"wrote {len(written)} file(s) for {len(results)} student(s) under {out}"
          + (f"; ungraded (not zero): {', '.join(ungraded)}" if ungraded else ""))
    return EXIT_OK
