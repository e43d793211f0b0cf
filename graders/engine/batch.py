"""Grade a class: discover submissions, skip what is already graded, run a process pool, and
record each result as it arrives (result.json, feedback, one gradebook transaction).

Nothing a single submission does can stop the batch: each unit returns a result, and a worker
that dies is replaced and its submission recorded as ungraded with the reason.
"""
from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import sys
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path

from graders.assignment import Assignment
from graders.engine.grade_one import GradeOptions, grade_submission, prepare_profile
from graders.engine.reference import AttachedReference, LazyReference, ReferenceLink, SharedReference, suite_uses_reference
from graders.engine.version import grader_version
from graders.errors import CourseError
from graders.intake.pipeline import sha256_file
from graders.records.gradebook import Gradebook
from graders.records.late import policy_from_settings
from graders.records.result import UNGRADED, build_result, write_json_atomic
from graders.reports.feedback import write_feedback
from graders.sandbox.scratch import sweep

STUDENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}$")


@dataclass
class Job:
    student: str
    folder: Path


@dataclass
class BatchSummary:
    graded: list[dict] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    ungraded: list[dict] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # folders whose names are not valid student ids


def shard_of(student: str, count: int) -> int:
    """A stable split by student id: the same student lands in the same shard on any machine."""
    return int.from_bytes(hashlib.sha256(student.encode()).digest()[:8], "big") % count


def discover(assignment: Assignment, submitted: Path, shard: tuple[int, int] | None = None) -> tuple[list[Job], list[str]]:
    """nbgrader's layout: ``SUBMITTED/<student>/<assignment>/*.ipynb``."""
    if not submitted.is_dir():
        raise CourseError(f"{submitted} is not a folder; expected SUBMITTED/<student>/{assignment.name}/*.ipynb")
    jobs, refused = [], []
    for folder in sorted(p for p in submitted.iterdir() if p.is_dir()):
        if not STUDENT_ID.match(folder.name):
            refused.append(folder.name)
            continue
        if shard is not None and shard_of(folder.name, shard[1]) != shard[0]:
            continue
        jobs.append(Job(folder.name, folder / assignment.name))
    if not jobs and not refused and shard is None:
        raise CourseError(f"no submissions in {submitted}: expected SUBMITTED/<student>/{assignment.name}/*.ipynb "
                          "(the layout `nbgrader collect` writes)")
    return jobs, refused


def _files_of(folder: Path) -> dict[str, str]:
    return {p.name: sha256_file(p) for p in sorted(folder.iterdir()) if p.is_file()} if folder.is_dir() else {}


# --- the worker side: the batch's shared reference, or one of its own -------------------------
_worker: dict = {}


def _init_worker(assignment: Assignment, options: GradeOptions, version: str, extra_hidden: list[str],
                 link: ReferenceLink | None = None) -> None:
    from multiprocessing import util

    if options.threads:
        import torch

        torch.set_num_threads(options.threads)
    reference = AttachedReference(assignment, options, link) if link else LazyReference(assignment, options)
    _worker.update(assignment=assignment, options=options, version=version, extra_hidden=extra_hidden,
                   reference=reference)
    # A pool worker leaves through multiprocessing's exit path (no atexit): close the reference's
    # kernels and scratch folder there. A worker killed outright is swept by the batch instead.
    util.Finalize(None, _close_worker, exitpriority=10)


def _grade(job: Job) -> dict:
    w = _worker
    return grade_submission(w["assignment"], job.student, job.folder, w["options"], reference=w["reference"],
                            version=w["version"], extra_hidden=w["extra_hidden"])


def _close_worker() -> None:
    from graders.sandbox import zygote

    ref = _worker.pop("reference", None)
    if ref is not None:
        ref.close()
    zygote.close_all()  # a pool worker leaves without atexit


def _check_isolation(assignment: Assignment, options: GradeOptions) -> None:
    from graders.sandbox import bwrap

    if assignment.limits.requires_isolation and (options.isolation == "none" or not bwrap.available()[0]):
        why = "--isolation none" if options.isolation == "none" else bwrap.available()[1]
        raise CourseError(f"{assignment.name} grades right only inside bubblewrap ([limits] requires_isolation), "
                          f"and it cannot be used here ({why}); install bubblewrap (apt-get install bubblewrap) "
                          "or grade on a machine that has it")


def announce_isolation(options: GradeOptions) -> None:
    """Say once, before a batch, that kernels will run without bubblewrap (not once per kernel)."""
    from graders.sandbox.kernel import choose_isolation
    from graders.sandbox.policy import SandboxPolicy

    use_bwrap, why = choose_isolation(SandboxPolicy(isolation=options.isolation))
    if not use_bwrap:
        print(f"WARNING: sandbox degraded, {why.removeprefix('ran with ')}; results will carry isolation_degraded",
              file=sys.stderr)


def record(result: dict, out: Path, gradebook: Gradebook, lang: str) -> dict:
    """result.json first (the engine's record), then the gradebook row, then the feedback the
    student reads: the effective result, with TA overrides kept across re-grades and the late
    penalty applied."""
    folder = out / result["assignment"] / result["student"]
    write_json_atomic(folder / "result.json", result)
    gradebook.record(result)
    effective = gradebook.effective(result["assignment"], result["student"])
    write_feedback(effective, folder, lang)
    return effective


def grade_batch(assignment: Assignment, submitted: Path, out: Path, options: GradeOptions, *, jobs: int = 1,
                shard: tuple[int, int] | None = None, force: bool = False, progress=None) -> BatchSummary:
    version = grader_version(assignment)
    policy_from_settings(assignment.settings)  # a bad [late] table stops the batch before it starts
    if not options.threads:  # share the cores among the workers instead of oversubscribing them
        options = dataclasses.replace(options, threads=max(1, (os.cpu_count() or 1) // max(1, jobs)))
    _check_isolation(assignment, options)
    todo, refused = discover(assignment, submitted, shard)
    summary = BatchSummary(refused=refused)
    sweep()  # what killed graders left behind: their kernels' cgroups and scratch folders
    announce_isolation(options)
    prepare_profile(options)
    gradebook = Gradebook(out / "gradebook.sqlite")
    try:
        pending = []
        for job in todo:
            if not force and gradebook.is_current(assignment.name, job.student, _files_of(job.folder), version):
                summary.skipped.append(job.student)
            else:
                pending.append(job)
        if progress:
            progress.start(len(pending), len(summary.skipped))
        extra_hidden = [str(submitted.resolve()), str(out.resolve())]

        def done(result: dict) -> None:
            result = record(result, out, gradebook, options.lang)
            (summary.ungraded if result["status"] == UNGRADED else summary.graded).append(result)
            if progress:
                progress.advance(result)

        if jobs <= 1:
            _init_worker(assignment, options, version, extra_hidden)
            try:
                for job in pending:
                    done(_grade(job))
            finally:
                _close_worker()
        else:
            _run_pool(assignment, pending, options, version, extra_hidden, jobs, done)
    finally:
        gradebook.close()
        if progress:
            progress.stop()
        sweep()  # a pool worker that died mid-grade
    return summary


def _run_pool(assignment, pending, options, version, extra_hidden, jobs, done) -> None:
    # Workers fork from a server that imported the heavy modules once (no fork of this process,
    # whose progress bar runs a thread); each still starts clean of kernels.
    ctx = get_context("forkserver")
    ctx.set_forkserver_preload(["torch", "pytest", "graders.engine.grade_one", "graders.channel.client"])
    # One reference for the batch, run here while the workers grade their first submissions.
    wanted = options.shared_reference and pending and suite_uses_reference(assignment)
    shared = SharedReference(assignment, options) if wanted else None
    try:
        _pool_rounds(assignment, pending, options, version, extra_hidden, jobs, done, ctx, shared)
    finally:
        if shared is not None:
            shared.close()


def _pool_rounds(assignment, pending, options, version, extra_hidden, jobs, done, ctx, shared) -> None:
    remaining = list(pending)
    link = shared.link if shared is not None else None
    while remaining:
        with ProcessPoolExecutor(max_workers=jobs, mp_context=ctx, initializer=_init_worker,
                                 initargs=(assignment, options, version, extra_hidden, link)) as pool:
            futures = {pool.submit(_grade, job): job for job in remaining}
            remaining = []
            for future in as_completed(futures):
                job = futures[future]
                try:
                    done(future.result())
                except BrokenProcessPool:
                    remaining.append(job)
                except Exception as err:
                    done(_ungraded(assignment, job, version, options, f"worker error: {type(err).__name__}: {err}"))
        if remaining:
            # A worker died under these jobs; grade them one at a time so the culprit is isolated.
            print(f"course grade: a worker died; re-running {len(remaining)} submission(s)", file=sys.stderr)
            if len(remaining) == 1 or jobs == 1:
                for job in remaining:
                    done(_ungraded(assignment, job, version, options, "the grading worker died while grading this submission"))
                return
            jobs = 1


def _ungraded(assignment, job, version, options, reason) -> dict:
    return build_result(assignment=assignment.name, student=job.student, checks=[], flags=[],
                        files=_files_of(job.folder), grader_version=version, profile=options.profile,
                        isolation=options.isolation, status=UNGRADED, reason=reason, max_score=0.0)
