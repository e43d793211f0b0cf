"""``course gradebook merge SHARD... [--out DIR]``: combine shards' results into one gradebook.

    course grade 01-lora submitted/ --shard 0/2 --out shards/0     # on runner 0
    course grade 01-lora submitted/ --shard 1/2 --out shards/1     # on runner 1
    course gradebook merge shards/0 shards/1 --out results/
    course report 01-lora --results results/

Idempotent: merging the same shard again changes nothing; a newer re-grade of a student wins
and the older grade stays in the history. Bad input (another assignment or grader version, a
half-written shard, an odd student id) is refused with nothing changed; see graders.records.merge.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from graders import paths
from graders.errors import EXIT_OK
from graders.records.merge import merge_shards


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    m = sub.add_parser("merge", help="merge shards' results (their --out folders) into --out",
                       description=__doc__.splitlines()[0])
    m.add_argument("shards", nargs="+", type=Path, help="--out folders of `course grade --shard I/N` runs")
    m.add_argument("--out", type=Path, default=paths.RESULTS, help="merged results folder (default: results/)")
    m.add_argument("--assignment", default=None, help="assignment to merge (default: the one the shards hold)")
    m.add_argument("--lang", choices=("zh", "en"), default="zh", help="language of the re-written feedback")


def run(args: argparse.Namespace) -> int:
    summary = merge_shards(args.shards, args.out, args.assignment, args.lang)
    print(f"merged {summary['assignment']}: {summary['added']} new grade(s), {summary['unchanged']} already there; "
          f"{summary['current']} student(s) in {args.out}")
    return EXIT_OK
