"""Grading overhead and parallel speed-up on this machine.

- overhead: wall time of grading one 00-pytorch-basics submission (intake, sandboxed kernel,
  the suite, records) over the time nbclient alone takes to execute the same notebook.
  Target on 2 cores: at most 1.3x.
- speed-up: 10 submissions with --jobs 2 against --jobs 1. Target on 2 cores: at least 1.6x.
- peak memory: the largest kernel tree RSS seen per submission, and the grader's own max RSS.
"""
from __future__ import annotations

import resource
import statistics
import tempfile
import time
from pathlib import Path

import nbformat

from graders.assignment import load_assignment
from graders.engine.batch import grade_batch
from graders.engine.grade_one import GradeOptions
from graders.release.fill import filled_release

A, NB = "00-pytorch-basics", "basics.ipynb"


def _bare_execution(nb: nbformat.NotebookNode, cwd: Path) -> float:
    from nbclient import NotebookClient

    start = time.perf_counter()
    NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(cwd)}}).execute()
    return time.perf_counter() - start


def _class(root: Path, n: int) -> Path:
    submitted = root / "submitted"
    for i in range(n):
        folder = submitted / f"s{i:02d}" / A
        folder.mkdir(parents=True)
        nbformat.write(filled_release(A, NB), folder / NB)
    return submitted


def run(repeats: int = 3) -> dict:
    assignment = load_assignment(A)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        bare = statistics.median(_bare_execution(filled_release(A, NB), root) for _ in range(repeats))
        one = _class(root / "one", 1)
        graded = []
        for i in range(repeats):
            start = time.perf_counter()
            grade_batch(assignment, one, root / f"out-one-{i}", GradeOptions(), jobs=1)
            graded.append(time.perf_counter() - start)
        # The first grade of a batch also starts the reference kernel; report both.
        ten = _class(root / "ten", 10)
        timings = {}
        for jobs in (1, 2):
            start = time.perf_counter()
            summary = grade_batch(assignment, ten, root / f"out-{jobs}", GradeOptions(), jobs=jobs)
            timings[jobs] = time.perf_counter() - start
        peaks = [r["peak_memory_mb"] for r in summary.graded if r.get("peak_memory_mb")]
    per_submission_jobs1 = timings[1] / 10
    return {
        "bare_nbclient_s": round(bare, 2),
        "grade_one_batch_of_1_s": round(statistics.median(graded), 2),
        "grade_per_submission_in_batch_of_10_s": round(per_submission_jobs1, 2),
        "overhead_ratio_batch_of_1": round(statistics.median(graded) / bare, 2),
        "overhead_ratio_in_batch": round(per_submission_jobs1 / bare, 2),
        "jobs1_10_submissions_s": round(timings[1], 1),
        "jobs2_10_submissions_s": round(timings[2], 1),
        "speedup_jobs2": round(timings[1] / timings[2], 2),
        "kernel_peak_rss_mb_max": max(peaks) if peaks else None,
        "grader_max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
