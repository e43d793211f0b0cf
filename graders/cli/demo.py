"""``course demo``: the README's main job, end to end on the tiny profile.

Builds every release and solution, grades the sample classes shipped under
``samples/<assignment>/`` (nbgrader's submitted layout) into ``results/`` with feedback for each
student and a class dashboard per assignment, and prints where everything is.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from rich.console import Console

from graders import paths
from graders.assignment import list_assignments, load_assignment
from graders.cli.progress import BatchProgress, summary_table
from graders.engine.batch import grade_batch
from graders.engine.grade_one import GradeOptions
from graders.reports.dashboard import build_dashboard


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", type=Path, default=paths.RESULTS, help="where results and reports go (default: results/)")
    p.add_argument("--jobs", type=int, default=2, help="submissions graded at once (default 2)")
    p.add_argument("--force", action="store_true", help="re-grade samples that are already graded")
    p.add_argument("--lang", choices=("zh", "en"), default="zh", help="language of feedback (default zh)")


def run(args: argparse.Namespace) -> int:
    from graders.release.build import release  # jupytext and nbgrader: needed here only

    console = Console()
    start = time.perf_counter()
    names = list_assignments()
    for out in release(names):
        console.print(f"release: built {out.assignment} -> release/{out.assignment}/, solutions/{out.assignment}/")
    ungraded = 0
    for name in names:
        samples = paths.SAMPLES / name
        if not samples.is_dir():
            continue
        assignment = load_assignment(name)
        summary = grade_batch(assignment, samples, args.out, GradeOptions(isolation="auto", lang=args.lang),
                              jobs=args.jobs, force=args.force, progress=BatchProgress(f"grading samples of {name}"))
        results = summary.graded + summary.ungraded
        if results:
            console.print(summary_table(results))
        ungraded += len(summary.ungraded)
        console.print(f"{name}: feedback in {args.out / name}/<student>/feedback.html")
        console.print(f"{name}: class dashboard {build_dashboard(name, args.out, lang=args.lang)}")
    console.print(f"demo: done in {time.perf_counter() - start:.0f} s; gradebook {args.out / 'gradebook.sqlite'}")
    return 1 if ungraded else 0
