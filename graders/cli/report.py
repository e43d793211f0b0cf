"""``course report A``: the class dashboard (HTML + PNG plots) that opens from disk.

    course report 01-lora                       # results/01-lora/report/index.html
    course report 01-lora --results shards/merged --out /tmp/dash --lang en
"""
from __future__ import annotations

import argparse
from pathlib import Path

from graders import paths
from graders.errors import EXIT_OK
from graders.reports.dashboard import build_dashboard


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("assignment", help="assignment name")
    p.add_argument("--results", type=Path, default=paths.RESULTS,
                   help="results folder holding gradebook.sqlite and <assignment>/<student>/ (default: results/)")
    p.add_argument("--out", type=Path, default=None, help="dashboard folder (default: RESULTS/<assignment>/report)")
    p.add_argument("--lang", choices=("zh", "en"), default="zh", help="language of the page and feedback")


def run(args: argparse.Namespace) -> int:
    index = build_dashboard(args.assignment, args.results, args.out, args.lang)
    print(f"dashboard: {index}  (open it in a browser: file://{index.resolve()})")
    return EXIT_OK
