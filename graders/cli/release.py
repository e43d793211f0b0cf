"""``course release [A ...] [--check]``: build or verify release/ and solutions/."""
from __future__ import annotations

import argparse

from graders import paths
from graders.assignment import list_assignments


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("assignments", nargs="*", metavar="A",
                   help="assignments to build (default: every folder under assignments/)")
    p.add_argument("--check", action="store_true",
                   help="rebuild into a temporary folder and fail if release/ or solutions/ differ")


def run(args: argparse.Namespace) -> int:
    from graders.release.build import check, release  # jupytext and nbgrader: needed here only

    names = args.assignments or list_assignments()
    if args.check:
        problems = check(names)
        for line in problems:
            print(f"drift: {line}")
        if problems:
            print(f"course release --check: {len(problems)} file(s) drift; run `course release` and commit")
            return 1
        print(f"course release --check: {len(names)} assignment(s) match their sources")
        return 0
    for out in release(names):
        files = sorted(p.relative_to(paths.REPO_ROOT) for p in out.release.rglob("*") if p.is_file())
        print(f"built {out.assignment}: {len(files)} file(s) in release/, solutions/ "
              + ", ".join(str(f) for f in files))
    return 0
