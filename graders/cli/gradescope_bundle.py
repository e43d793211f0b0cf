"""``course gradescope-bundle A``: the Gradescope autograder zip (setup.sh, run_autograder).

    course gradescope-bundle 01-lora                 # results/01-lora-autograder.zip
    course gradescope-bundle 01-lora --out /tmp/ag.zip

Upload it as the assignment's autograder ("Zip file upload"). On Gradescope each submission is
graded by this engine and results/results.json written with `course export --format gradescope`.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from graders import paths
from graders.assignment import load_assignment
from graders.errors import EXIT_OK
from graders.exports.gradescope_bundle import build_bundle


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("assignment", help="assignment name")
    p.add_argument("--out", type=Path, default=None, help="zip path (default: results/<assignment>-autograder.zip)")


def run(args: argparse.Namespace) -> int:
    assignment = load_assignment(args.assignment)
    out = build_bundle(assignment.name, args.out or paths.RESULTS / f"{assignment.name}-autograder.zip")
    print(f"autograder zip: {out} ({out.stat().st_size / 1e6:.1f} MB)")
    return EXIT_OK
