"""``course student-kit [A ...] --out DIR``: a repository to hand to students.

    course student-kit --out ../llm-one-piece-student        # every assignment
    course student-kit 00-pytorch-basics --out /tmp/kit

The kit holds the release notebooks, common_utils, each assignment's settings, the grader engine
and the visible checks only (see graders.kit.build); `course check` works from it after
`scripts/bootstrap`. A visible check that needs the reference solution stops the build.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from graders.assignment import list_assignments
from graders.errors import EXIT_OK


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("assignments", nargs="*", metavar="A", help="assignments to include (default: all)")
    p.add_argument("--out", type=Path, required=True, help="a new or empty folder for the kit")


def run(args: argparse.Namespace) -> int:
    from graders.kit.build import build_kit

    manifest = build_kit(args.assignments or list_assignments(), args.out)
    left_out = ", ".join(f"{a}: {n}" for a, n in manifest["hidden_checks_left_out"].items())
    print(f"wrote the student kit to {args.out} ({len(manifest['assignments'])} assignment(s); "
          f"hidden checks left out: {left_out})")
    return EXIT_OK
