"""``course grade A SUBMITTED_DIR``: grade a class's submissions of one assignment.

    course grade 00-pytorch-basics submitted/ --jobs 2
    course grade 01-lora submitted/ --profile full --require-isolation --shard 0/4

Results go to OUT/<assignment>/<student>/ (result.json, feedback.md, feedback.html) and the
gradebook OUT/gradebook.sqlite. Exit 0 when every submission was graded (whatever the scores),
1 when some could not be (they are listed), 2 on a usage or configuration error.
"""
from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

from rich.console import Console

from graders import paths
from graders.assignment import load_assignment
from graders.cli.progress import BatchProgress, summary_line, summary_table
from graders.engine.batch import grade_batch
from graders.engine.grade_one import GradeOptions
from graders.errors import EXIT_OK, EXIT_UNGRADED, CourseError


def parse_shard(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    try:
        index, count = (int(x) for x in text.split("/"))
    except ValueError:
        raise CourseError(f"--shard {text!r}: write I/N, e.g. 0/4") from None
    if not (count >= 1 and 0 <= index < count):
        raise CourseError(f"--shard {text!r}: I must be in 0..N-1 and N >= 1")
    return index, count


def add_grading_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--profile", choices=("tiny", "full"), default=None,
                   help="model profile (default: $COURSE_PROFILE, else tiny)")
    p.add_argument("--isolation", choices=("auto", "bwrap", "none"), default="auto",
                   help="auto: bubblewrap where it runs, else rlimits only (flagged isolation_degraded)")
    p.add_argument("--require-isolation", action="store_true",
                   help="refuse to grade without bubblewrap (use for official grading)")
    p.add_argument("--lang", choices=("zh", "en"), default="zh", help="language of feedback (default zh)")
    p.add_argument("--cold-kernels", action="store_true",
                   help="start every kernel afresh instead of forking it from a warm zygote (slower; see "
                        "graders/sandbox/zygote.py)")


def options_from(args: argparse.Namespace, visible_only: bool = False) -> GradeOptions:
    from common_utils.profiles import get_profile

    try:
        profile = get_profile(args.profile)
    except ValueError as err:
        raise CourseError(str(err)) from None
    isolation = args.isolation
    if args.require_isolation:
        from graders.sandbox import bwrap

        ok, why = bwrap.available()
        if not ok:
            raise CourseError(f"--require-isolation: bubblewrap cannot run here ({why}); "
                              "install it (apt-get install bubblewrap) or grade on a machine that has it")
        isolation = "bwrap"
    return GradeOptions(profile=profile, isolation=isolation, lang=args.lang, visible_only=visible_only,
                        cold_kernels=args.cold_kernels)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("assignment", help="assignment name, a folder of assignments/")
    p.add_argument("submitted", type=Path, help="folder in nbgrader's layout: <student>/<assignment>/*.ipynb")
    p.add_argument("--out", type=Path, default=paths.RESULTS, help="results folder (default: results/)")
    p.add_argument("--jobs", type=int, default=1, help="submissions graded at once (default 1)")
    p.add_argument("--shard", default=None, metavar="I/N", help="grade only shard I of N (a stable split by student id)")
    p.add_argument("--force", action="store_true", help="re-grade submissions whose files and grader are unchanged")
    p.add_argument("--shared-reference", action="store_true",
                   help="with --jobs N, run the reference once in this process and let every worker call it "
                        "(less memory; calls take turns, so a check that times reference calls counts the wait)")
    add_grading_options(p)


def run(args: argparse.Namespace) -> int:
    if args.jobs < 1:
        raise CourseError(f"--jobs {args.jobs}: give 1 or more")
    assignment = load_assignment(args.assignment)
    options = dataclasses.replace(options_from(args), shared_reference=args.shared_reference)
    started = time.perf_counter()
    summary = grade_batch(assignment, args.submitted, args.out, options, jobs=args.jobs,
                          shard=parse_shard(args.shard), force=args.force,
                          progress=BatchProgress(f"grading {assignment.name}"))
    elapsed = time.perf_counter() - started
    console = Console()
    results = summary.graded + summary.ungraded
    if results:
        console.print(summary_table(results))
    # One line however narrow the terminal (or none, in a log): soft_wrap leaves it unbroken.
    console.print(summary_line(len(summary.graded), len(summary.skipped), len(summary.ungraded), elapsed, args.jobs,
                               args.out / assignment.name), soft_wrap=True, markup=False, highlight=False)
    for name in summary.refused:
        console.print(f"[red]refused folder {name!r}: not a valid student id (letters, digits, . _ @ + -)[/red]")
    for r in summary.ungraded:
        console.print(f"[red]ungraded {r['student']}: {r['reason']}[/red]")
    return EXIT_UNGRADED if summary.ungraded or summary.refused else EXIT_OK
