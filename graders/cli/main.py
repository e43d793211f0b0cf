"""The ``course`` command: one module per sub-command under ``graders.cli``.

    course release [A ...] [--check]
    course grade A SUBMITTED_DIR [--out DIR] [--jobs N] [--profile tiny|full] ...
    course check NOTEBOOK
    course report A / course export A --format csv|gradescope|canvas
    course doctor / course demo
    course mutants A [--ci] [--only NAME ...]
    course student-kit [A ...] --out DIR
    course models counts|prefetch|pin

Exit codes: 0 done (whatever the scores), 1 some submissions could not be graded, 2 usage or
configuration error.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from graders import paths
from graders.errors import EXIT_USAGE, CourseError

# Sub-command name -> module under graders.cli that defines add_arguments(parser) and run(args).
COMMANDS = {
    "grade": "Grade a class's submissions for one assignment.",
    "check": "Run the visible checks on your own notebook (students).",
    "demo": "Build the releases and grade the shipped sample submissions into reports.",
    "release": "Build release/ and solutions/ from assignments/ with nbgrader (or --check drift).",
    "doctor": "Check this machine's environment: Python, torch, GPU, bitsandbytes, bubblewrap, Jupyter.",
    "report": "Build the class dashboard for one assignment.",
    "export": "Export grades (csv, gradescope, canvas, nbgrader).",
    "review": "Override one check's points for one student, with a comment.",
    "gradebook": "Gradebook maintenance (merge shards).",
    "gradescope-bundle": "Build the Gradescope autograder zip.",
    "mutants": "Grade an assignment's wrong answers (mutants) and print the kill matrix.",
    "student-kit": "Write a student repository: release notebooks, common_utils, visible checks only.",
    "models": "The full profile's models: parameter counts, prefetch at pinned commits, dataset pins.",
}
# What a student kit offers (graders.kit.build leaves the other commands' code out).
STUDENT_COMMANDS = ("check", "doctor")


def _module_name(command: str) -> str:
    return "graders.cli." + command.replace("-", "_")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="course", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name, help_text in COMMANDS.items():
        if paths.is_student_kit() and name not in STUDENT_COMMANDS:
            continue
        module = importlib.import_module(_module_name(name))
        p = sub.add_parser(name, help=help_text, description=help_text)
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    paths.venv_tools_on_path()
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args._run(args))
    except CourseError as err:
        print(f"course {args.command}: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"course {args.command}: interrupted; finished work is kept", file=sys.stderr)
        return 130


def entry() -> None:
    sys.exit(main())


if __name__ == "__main__":
    entry()
