"""``course gradebook merge``: combine the results of shards graded on other machines.

A shard is the ``--out`` folder of one ``course grade A SUBMITTED --shard I/N`` run:
``SHARD/<assignment>/<student>/result.json`` (its own gradebook.sqlite is not needed).
Every shard is read and checked before anything is written; then all results go into
OUT/gradebook.sqlite in one transaction (``Gradebook.merge``: the same result twice is skipped,
the newest graded_at wins, older grades stay as history) and the current results, with their
feedback, are written to OUT/<assignment>/<student>/.

Refused with nothing written: a folder that is not a shard, results of another assignment or
of another grader version (than each other, or than the grades already in OUT), a half-written
shard (a student folder without a readable result.json), a folder whose name is not a valid
student id or does not match the result inside it.
"""
from __future__ import annotations

import json
from pathlib import Path

from graders.errors import CourseError
from graders.records.gradebook import Gradebook
from graders.records.result import write_json_atomic
from graders.reports.feedback import write_feedback

GRADEBOOK_FILE = "gradebook.sqlite"
REQUIRED = ("assignment", "student", "status", "score", "max_score", "pending_points", "checks", "flags", "files",
            "grader_version", "graded_at")


def _is_report(folder: Path) -> bool:
    return (folder / "index.html").is_file() and not (folder / "result.json").exists()


def assignments_in(shard: Path) -> list[str]:
    return sorted(p.name for p in shard.iterdir() if p.is_dir() and not p.name.startswith("."))


def read_result(folder: Path, assignment: str) -> dict:
    """One student's result.json, checked against its folder; CourseError says what is wrong."""
    from graders.engine.batch import STUDENT_ID

    if not STUDENT_ID.match(folder.name):
        raise CourseError(f"{folder}: {folder.name!r} is not a valid student id (letters, digits, . _ @ + -); "
                          "remove or rename the folder")
    path = folder / "result.json"
    if not path.is_file():
        raise CourseError(f"half-written shard: {folder} has no result.json; let that shard's job finish "
                          "or re-run it, then merge again")
    try:
        result = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CourseError(f"half-written shard: {path} is not valid JSON ({err}); re-run that shard") from None
    missing = [k for k in REQUIRED if not isinstance(result, dict) or k not in result]
    if missing:
        raise CourseError(f"{path} is not a result.json of this course: missing {', '.join(missing)}")
    if result["assignment"] != assignment:
        raise CourseError(f"{path} is a result of {result['assignment']!r}, not {assignment!r}")
    if result["student"] != folder.name:
        raise CourseError(f"{path} belongs to {result['student']!r} but lies in folder {folder.name!r}")
    return result


def read_shard(shard: Path, assignment: str) -> list[dict]:
    if not shard.is_dir():
        raise CourseError(f"{shard} is not a folder; give the --out folders of `course grade --shard I/N` runs")
    others = [a for a in assignments_in(shard) if a != assignment]
    if others:
        raise CourseError(f"{shard} holds results of {', '.join(others)}, not only {assignment!r}; "
                          "merge one assignment at a time from separate folders")
    folder = shard / assignment
    if not folder.is_dir() and (shard / GRADEBOOK_FILE).is_file():
        return []  # a shard that no student fell into: `course grade --shard` made only its gradebook
    if not folder.is_dir():
        raise CourseError(f"{shard} has no results of {assignment!r} ({folder} is missing)")
    students = [p for p in sorted(folder.iterdir()) if p.is_dir() and not p.name.startswith(".") and not _is_report(p)]
    return [read_result(p, assignment) for p in students]


def collect(shards: list[Path], assignment: str | None = None) -> tuple[str, list[dict]]:
    """Read and check every shard; return the assignment and all results, or raise."""
    if assignment is None:
        found = sorted({a for s in shards if s.is_dir() for a in assignments_in(s)})
        if len(found) != 1:
            raise CourseError(f"the shards hold {', '.join(found) or 'no assignment'}; pass --assignment A")
        assignment = found[0]
    results = []
    for shard in shards:
        results += read_shard(Path(shard), assignment)
    if not results:
        raise CourseError(f"no results of {assignment!r} in {', '.join(map(str, shards))}")
    versions = sorted({r["grader_version"] for r in results})
    if len(versions) > 1:
        where = {v: sorted({r["student"] for r in results if r["grader_version"] == v})[:3] for v in versions}
        raise CourseError(f"the shards were graded by different grader versions {where}; re-grade the older "
                          "shards with the current grader (course grade --force --shard I/N) and merge again")
    return assignment, results


def merge_shards(shards: list[Path], out: Path, assignment: str | None = None, lang: str = "zh") -> dict:
    """Merge shards into OUT; returns {assignment, added, unchanged, students, current}."""
    assignment, results = collect([Path(s) for s in shards], assignment)
    version = results[0]["grader_version"]
    out = Path(out)
    with Gradebook(out / GRADEBOOK_FILE) as gb:
        existing = gb.versions(assignment)
        if existing - {version}:
            raise CourseError(f"{out / GRADEBOOK_FILE} holds grades of {assignment} by grader version "
                              f"{', '.join(sorted(existing))}, the shards by {version}; merge into a fresh --out "
                              "or re-grade every shard with one grader")
        counts = gb.merge(results)
        students = sorted({r["student"] for r in results})
        current = [(gb.current(assignment, s), gb.effective(assignment, s)) for s in students]
    for stored, shown in current:  # after the transaction: the gradebook is the record, these are views of it
        folder = out / assignment / stored["student"]
        write_json_atomic(folder / "result.json", stored)
        write_feedback(shown, folder, lang)
    return {"assignment": assignment, **counts, "current": len(current)}
