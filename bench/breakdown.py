"""Where a submission's grading time goes, and how `course grade` compares with nbgrader.

For each assignment (00-pytorch-basics and 01-lora by default) a class of N copies of the
solution is graded with ``--jobs 1`` in this process, with timers around each phase:

- ``intake``: parse, match and restore cells;
- ``kernel_start``: from launching a sandboxed kernel to its first reply, summed over notebooks;
- ``import_cells``: cells with a top-level import (where torch, transformers, peft ... load;
  what warm kernels would save is most of this);
- ``cells``: the other cells;
- ``checks``: the pytest suite in the grader, reference calls included;
- ``records``: result.json, the gradebook row and the feedback pages;
- ``reference``: starting and running the reference solution (once per worker, in the first
  submission), reported apart and taken out of that submission's other phases.

Per submission the phases are averaged over the class, reference excluded. The peer comparison
runs nbgrader's own autograde (no sandbox, one notebook after another) on the same notebooks in
the same run and reports `course grade` at --jobs 1 and 2 as ratios of its time.

    .venv/bin/python -m bench breakdown
    BENCH_BREAKDOWN="01-lora:10" .venv/bin/python -m bench breakdown   # assignment:class size, ...
"""
from __future__ import annotations

import ast
import contextlib
import os
import shutil
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import nbformat

from graders import paths
from graders.assignment import load_assignment
from graders.release.fill import filled_release

DEFAULT = "00-pytorch-basics:10,01-lora:4"


class Timers:
    """Seconds per phase; a phase entered inside another is taken out of the outer one, and
    everything inside the reference counts as the reference's."""

    def __init__(self, clock=time.perf_counter):
        self.clock = clock
        self.totals: dict[str, float] = defaultdict(float)
        self._stack: list[str] = []

    @contextlib.contextmanager
    def phase(self, name: str):
        if "reference" in self._stack:
            yield
            return
        start = self.clock()
        self._stack.append(name)
        try:
            yield
        finally:
            self._stack.pop()
            spent = self.clock() - start
            self.totals[name] += spent
            if self._stack:
                self.totals[self._stack[-1]] -= spent

    def wrap(self, owner, attribute: str, name: str):
        original = getattr(owner, attribute)

        def timed(*args, **kwargs):
            with self.phase(name):
                return original(*args, **kwargs)

        setattr(owner, attribute, timed)
        return lambda: setattr(owner, attribute, original)


def imports_something(source: str) -> bool:
    try:
        body = ast.parse(source).body
    except SyntaxError:
        return False
    return any(isinstance(node, (ast.Import, ast.ImportFrom)) for node in body)


def write_class(root: Path, name: str, n: int) -> Path:
    assignment = load_assignment(name)
    submitted = root / "submitted"
    for i in range(n):
        folder = submitted / f"s{i:03d}" / name
        folder.mkdir(parents=True)
        for nb in assignment.notebooks:
            nbformat.write(filled_release(name, nb), folder / nb)
    return submitted


def breakdown(name: str, n: int, root: Path) -> dict:
    """Grade ``n`` copies with --jobs 1 under the phase timers."""
    from graders.engine import batch, grade_one, reference
    from graders.engine.grade_one import GradeOptions
    from graders.sandbox import kernel

    assignment = load_assignment(name)
    submitted = write_class(root / name, name, n)
    import_cells = {nb: {c.id for c in nbformat.read(paths.RELEASE / name / nb, as_version=4).cells
                         if c.cell_type == "code" and imports_something(c.source)} for nb in assignment.notebooks}
    timers = Timers()
    restore = [timers.wrap(grade_one, "intake", "intake"), timers.wrap(kernel.KernelSession, "start", "kernel_start"),
               timers.wrap(kernel.KernelSession, "run_notebook", "cells"), timers.wrap(grade_one, "run_suite", "checks"),
               timers.wrap(batch, "record", "records"), timers.wrap(reference.LazyReference, "_get", "reference")]
    imports = 0.0
    try:
        start = time.perf_counter()
        summary = batch.grade_batch(assignment, submitted, root / name / "out", GradeOptions(), jobs=1)
        wall = time.perf_counter() - start
    finally:
        for undo in restore:
            undo()
    for result in summary.graded:
        for nb, cells in (result.get("cells") or {}).items():
            imports += sum(c["elapsed_s"] for c in cells if c["cell"] in import_cells.get(nb, set()))
    totals = dict(timers.totals)
    totals["cells"] = totals.get("cells", 0.0) - imports
    totals["import_cells"] = imports
    per = {k: round(v / n, 2) for k, v in totals.items() if k != "reference"}
    return {"submissions": n, "graded": len(summary.graded), "wall_s": round(wall, 1),
            "per_submission_s": round((wall - totals.get("reference", 0.0)) / n, 2),
            "reference_s": round(totals.get("reference", 0.0), 2), "phases_per_submission_s": per}


def nbgrader_autograde(name: str, submitted: Path, root: Path) -> float:
    """nbgrader's autograde of the same class, in this process (no sandbox, serial)."""
    from nbgrader.apps import NbGraderAPI
    from nbgrader.converters import GenerateAssignment
    from nbgrader.coursedir import CourseDirectory

    from graders.release.build import _nbgrader_config, _stage_sources

    course = root / "nbgrader"
    paths.venv_tools_on_path()
    c = _nbgrader_config(course, name)  # the configuration `course release` builds with
    c.ExecutePreprocessor.timeout = 600
    c.Execute.timeout = 600
    _stage_sources(load_assignment(name), course / "source" / name)
    GenerateAssignment(coursedir=CourseDirectory(config=c), config=c).start()
    data = [p for p in (paths.RELEASE / name).iterdir() if p.is_file() and p.suffix != ".ipynb"]
    students = sorted(p.name for p in submitted.iterdir())
    for student in students:
        folder = course / "submitted" / student / name
        shutil.copytree(submitted / student / name, folder)
        for item in data:  # the data files `course grade` copies into each scratch folder
            shutil.copy2(item, folder / item.name)
    api = NbGraderAPI(coursedir=CourseDirectory(config=c), config=c)
    start = time.perf_counter()
    for student in students:
        outcome = api.autograde(name, student, force=True, create=True)
        if not outcome.get("success"):
            raise RuntimeError(f"nbgrader autograde failed for {student}: {outcome.get('error', '')[-500:]}")
    return time.perf_counter() - start


def peer(name: str, n: int, root: Path) -> dict:
    from graders.engine.batch import grade_batch
    from graders.engine.grade_one import GradeOptions

    assignment = load_assignment(name)
    submitted = write_class(root / f"peer-{name}", name, n)
    nbgrader_s = nbgrader_autograde(name, submitted, root / f"peer-{name}")
    ours = {}
    for jobs in (1, 2):
        start = time.perf_counter()
        grade_batch(assignment, submitted, root / f"peer-{name}" / f"out-{jobs}", GradeOptions(), jobs=jobs)
        ours[jobs] = time.perf_counter() - start
    return {"submissions": n, "nbgrader_autograde_s": round(nbgrader_s, 1),
            "course_jobs1_s": round(ours[1], 1), "course_jobs2_s": round(ours[2], 1),
            "jobs1_over_nbgrader": round(ours[1] / nbgrader_s, 2), "jobs2_over_nbgrader": round(ours[2] / nbgrader_s, 2),
            "speedup_jobs2": round(ours[1] / ours[2], 2)}


def run() -> dict:
    plan = [(part.split(":")[0], int(part.split(":")[1])) for part in os.environ.get("BENCH_BREAKDOWN", DEFAULT).split(",")]
    figures = {"load_average_at_start": [round(x, 2) for x in os.getloadavg()]}
    with tempfile.TemporaryDirectory(prefix="bench-breakdown-") as tmp:
        root = Path(tmp)
        for name, n in plan:
            figures[name] = {"breakdown": breakdown(name, n, root), "peer": peer(name, n, root)}
    figures["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    return figures
