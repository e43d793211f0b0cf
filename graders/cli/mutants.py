"""``course mutants A``: grade the assignment's wrong answers and print the kill matrix.

    course mutants 01-lora                 # every mutant (the full matrix, on demand)
    course mutants 01-lora --ci            # the representative subset CI runs
    course mutants 01-lora --only scale-alpha b-not-zero

Exit 0 when the matrix is green (see graders.mutants), 1 when it is not, 2 on a usage error.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console
from rich.table import Table

from graders.assignment import load_assignment
from graders.cli.progress import BatchProgress
from graders.errors import EXIT_OK, EXIT_UNGRADED, CourseError
from graders.mutants import load_mutants, run_mutants


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("assignment", help="assignment name, a folder of assignments/")
    p.add_argument("--ci", action="store_true", help="only the mutants marked ci = true")
    p.add_argument("--only", nargs="+", default=None, metavar="NAME", help="only these mutants")
    p.add_argument("--jobs", type=int, default=2, help="submissions graded at once (default 2)")
    p.add_argument("--keep", type=Path, default=None, metavar="DIR",
                   help="keep the submissions and results in DIR (default: a scratch folder, removed)")


def row(report, student: str, expected: set[str]) -> str:
    """One character per check: x killed as expected, S survived, ! failed but should not,
    · passed, p pending (needs a GPU)."""
    result = report.results.get(student) or {}
    status = {c["id"]: c["status"] for c in result.get("checks", [])}
    failing = report.failing(student)
    marks = []
    for check in report.checks:
        if status.get(check) == "pending":
            marks.append("p")
        elif check in expected:
            marks.append("x" if check in failing else "S")
        else:
            marks.append("!" if check in failing else "·")
    return "".join(marks)


def matrix(report) -> Table:
    n = len(report.checks)
    table = Table(title=f"kill matrix: {report.assignment} ({len(report.mutants)} mutants × {n} checks)")
    table.add_column("mutant", no_wrap=True)
    table.add_column("".join(str((i + 1) % 10) for i in range(n)), no_wrap=True)
    table.add_column("verdict")
    verdicts = {v.student: v for v in report.verdicts}
    expected = {"untouched": set(report.checks), **{m.name: set(m.fails) for m in report.mutants}}
    for student in ["solution", "untouched", *[m.name for m in report.mutants]]:
        v = verdicts.get(student)
        verdict = "[green]ok[/green]" if v and v.ok else f"[red]{'; '.join(v.problems) if v else 'missing'}[/red]"
        table.add_row(student, row(report, student, expected.get(student, set())), verdict)
    return table


def run(args: argparse.Namespace) -> int:
    if args.jobs < 1:
        raise CourseError(f"--jobs {args.jobs}: give 1 or more")
    assignment = load_assignment(args.assignment)
    mutants = load_mutants(assignment, args.only, ci_only=args.ci)
    if not mutants:
        raise CourseError(f"{assignment.name} has no mutants{' marked ci = true' if args.ci else ''} "
                          f"(assignments/{assignment.name}/mutants/*.toml)")
    report = run_mutants(assignment, mutants, jobs=args.jobs, full_run=not (args.ci or args.only), workdir=args.keep,
                         progress=BatchProgress(f"mutants of {assignment.name}"))
    console = Console()
    console.print(matrix(report))
    for i, check in enumerate(report.checks):
        console.print(f"  {i + 1:>2} {check}")
    console.print("legend: x killed as expected, S survived (should fail), ! failed but should not, · passed, p pending")
    if report.full_run and report.unkilled:
        console.print(f"[red]checks no mutant kills: {', '.join(report.unkilled)}[/red]")
    bad = [v for v in report.verdicts if not v.ok]
    console.print(f"{len(report.mutants)} mutants, {len(report.checks)} checks, {len(bad)} problem(s), "
                  f"{report.seconds:.0f} s")
    return EXIT_OK if report.ok else EXIT_UNGRADED
