"""Grade one student's submission of one assignment: the self-contained unit any scheduler runs.

It never raises for anything a student did: a problem with the submission becomes flags, failed
checks and messages; a problem of the grader itself (a sandbox that will not start, a broken
suite) makes the result ``ungraded`` with its reason, never a zero.
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import shutil
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from graders import paths
from graders.assignment import Assignment
from graders.intake import flags as F
from graders.intake.flags import Flag
from graders.intake.pipeline import intake
from graders.records.result import GRADED, UNGRADED, build_result
from graders.engine.handles import NotebookHandle, SubmissionHandle

# Cell statuses of the sandbox that become flags on the result.
STATUS_FLAGS = {"timeout": F.TIMEOUT, "died": F.KERNEL_DIED, "memory_limit": F.MEMORY_LIMIT}


@dataclass
class GradeOptions:
    profile: str = "tiny"
    isolation: str = "auto"  # auto | bwrap | none
    lang: str = "zh"
    visible_only: bool = False
    hidden_paths: tuple[str, ...] = field(default_factory=tuple)  # besides the instructor tree
    threads: int = 0  # CPU threads per kernel and for the grader's own torch work; 0 = all cores
    cold_kernels: bool = False  # start every kernel afresh even where the assignment allows warm ones
    # --jobs N: one reference run by the batch process for every worker (graders/engine/reference.py).
    # Off by default: a check that times reference calls in the grader (20's cache_speedup) would
    # count the wait for the shared kernel's turn; and at --jobs 2 it saved no time (see the issue note).
    shared_reference: bool = False


def instructor_paths() -> list[str]:
    """What a student's kernel must never see: sources, solutions, graders, tests, results."""
    names = ("assignments", "solutions", "graders", "tests", "samples", "results", "bench", ".git")
    # Folders only: in a git worktree .git is a file naming the real one, and bwrap covers folders.
    return [str(paths.REPO_ROOT / n) for n in names if (paths.REPO_ROOT / n).is_dir()]


def prepare_profile(options: GradeOptions) -> None:
    """What kernels of the ``full`` profile read but cannot write, made once before the batch: the
    random-weight Llama checkpoint their quantized loads read (COURSE_WEIGHTS=random, GPU runners;
    hub weights come from ``course models prefetch``)."""
    if options.profile != "full":
        return
    from common_utils.models import prepare_random_full, shared_cache
    from common_utils.profiles import get_weights
    from graders.sandbox import gpu

    shared_cache().mkdir(parents=True, exist_ok=True)
    if get_weights("full") == "random" and gpu.available():
        print("course: preparing the random-weight full Llama checkpoint (once per cache)", flush=True)
        path = prepare_random_full("llama")
        shared_cache().chmod(0o755)  # readable by the kernels' own uids
        path.chmod(0o755)
        for file in path.iterdir():
            file.chmod(0o644)
        print(f"course: random-weight checkpoint ready at {path}", flush=True)


def make_policy(assignment: Assignment, options: GradeOptions, extra_hidden: list[str]):
    from graders.sandbox import SandboxPolicy, gpu

    has_gpu = gpu.available()
    limits = assignment.limits_for(options.profile)
    env = {"COURSE_PROFILE": options.profile, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "HF_DATASETS_OFFLINE": "1", "PYTHONHASHSEED": "0"}
    needed = [str(paths.REPO_ROOT / "common_utils")]  # what notebooks import; the venv is added by the sandbox
    if options.profile == "full":
        from common_utils.models import shared_cache
        from common_utils.profiles import get_weights

        env["COURSE_WEIGHTS"] = get_weights("full")
        cache = shared_cache()  # hub snapshots and random checkpoints the grader prepared, read-only
        env["COURSE_CACHE"] = str(cache)
        env["HF_HOME"] = str(cache / "hf")
        needed.append(str(cache))
    if has_gpu:
        needed += gpu.library_dirs()
    return SandboxPolicy(
        isolation=options.isolation,
        memory_mb=limits.memory_mb,
        max_processes=limits.max_processes,
        max_file_mb=limits.max_file_mb,
        cell_timeout_s=limits.cell_timeout_s,
        notebook_timeout_s=limits.notebook_timeout_s,
        hidden_paths=tuple(dict.fromkeys(instructor_paths() + list(options.hidden_paths) + extra_hidden)),
        threads=options.threads,
        warm_kernels=limits.warm_kernels and not options.cold_kernels,
        needed_paths=tuple(needed),
        env=env,
        gpu=has_gpu,
    )


def _last_line(text: str) -> str:
    lines = [line for line in (text or "").strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""


class ExecutedNotebooks(contextlib.AbstractContextManager):
    """Run notebooks in order, one fresh kernel each, in one scratch folder; keep kernels alive
    for the checks and kill every process tree on exit."""

    def __init__(self, assignment: Assignment, notebooks: dict, missing: dict[str, str], policy, reference=None):
        self.assignment = assignment
        self.reference = reference
        self.substituted: dict[str, str] = {}
        self.notebooks = notebooks
        self.missing = missing
        self.policy = policy
        self.sessions: list = []
        self.cells: dict[str, list[dict]] = {}
        self.flags: list[Flag] = []
        self.isolation = "none"
        self.degraded_reason = ""
        self.peak_rss_mb = 0.0
        from graders.sandbox.scratch import scratch_dir

        self._tmp = scratch_dir(assignment.name)
        self.scratch = Path(self._tmp.name)
        from graders.sandbox.limits import sandbox_uid

        # One uid for all of a submission's kernels: they share the scratch folder and its artifacts.
        self.uid = sandbox_uid()

    def __enter__(self) -> SubmissionHandle:
        from graders.channel import Channel
        from graders.sandbox import KernelSession

        release_dir = paths.RELEASE / self.assignment.name
        for item in release_dir.iterdir():  # data files the notebooks read, never other notebooks
            if item.is_file() and item.suffix != ".ipynb":
                shutil.copy2(item, self.scratch / item.name)
        handles: dict[str, NotebookHandle] = {}
        for name in self.assignment.notebooks:
            if name not in self.notebooks:
                handles[name] = NotebookHandle(name, None, self.scratch, self.missing.get(name, ""), self.substituted)
                continue
            self._substitute_missing_artifacts(name)
            session, run = self._run(name, KernelSession)
            self.cells[name] = [self._cell_record(r) for r in run.cells]
            again = "; the notebook was run again without it" if run.rerun else ""
            for r in run.cells:
                if r.status in STATUS_FLAGS:
                    self.flags.append(Flag(STATUS_FLAGS[r.status], f"cell {r.cell}: {_last_line(r.error) or r.status}{again}",
                                           name, str(r.cell)))
                if r.truncated:
                    self.flags.append(Flag(F.OUTPUT_TRUNCATED, f"cell {r.cell} printed more than the output cap; "
                                           "the rest was dropped", name, str(r.cell)))
            if run.notebook_timed_out:
                self.flags.append(Flag(F.TIMEOUT, f"{name} exceeded its {self.policy.notebook_timeout_s:g} s "
                                       "limit; the remaining cells did not run", name))
            handles[name] = NotebookHandle(name, Channel(session), self.scratch, "", self.substituted)
        return SubmissionHandle(handles, self.scratch, self.uid)

    def _substitute_missing_artifacts(self, notebook: str) -> None:
        """Put the reference's copy of an artifact that ``notebook`` needs but nobody produced,
        or whose student copy fails its declared validator (graders/engine/artifacts.py)."""
        for spec in self.assignment.settings.get("artifacts", []):
            target = self.scratch / spec["path"]
            if notebook not in spec.get("needed_by", []) or self.reference is None or spec["path"] in self.substituted:
                continue
            invalid = target.exists() and self._set_aside_if_invalid(spec, target, notebook)
            if target.exists():
                continue
            try:
                source = self.reference.nb(spec["produced_by"]).artifact_path(spec["path"])
            except Exception as err:  # the reference itself is broken: grade with what the student made
                if invalid:
                    target.with_name(target.name + ".invalid").rename(target)
                self.flags.append(Flag(F.REFERENCE_ARTIFACT, f"{spec['path']} is missing and the reference's copy "
                                       f"is unavailable ({err})", notebook))
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            (shutil.copytree if source.is_dir() else shutil.copy2)(source, target)
            self.substituted[spec["path"]] = spec["produced_by"]
            if not invalid:
                self.flags.append(Flag(F.REFERENCE_ARTIFACT, f"{spec['produced_by']} did not produce {spec['path']}; "
                                       f"{notebook} was graded with the reference's copy so that one early mistake "
                                       "does not zero the rest", notebook))

    def _set_aside_if_invalid(self, spec: dict, target: Path, notebook: str) -> bool:
        """Move an artifact that fails its validator to ``<path>.invalid``; True if it did."""
        from graders.engine.artifacts import check
        from graders.plugin import say

        problem = check(spec.get("validate"), target)
        if problem is None:
            return False
        target.rename(target.with_name(target.name + ".invalid"))
        self.flags.append(Flag(F.REFERENCE_ARTIFACT, say(
            f"{spec['produced_by']} 產生的 {spec['path']} 不合格（{problem[0]}）；{notebook} 改用參考解答的版本評分，"
            "一個早期的錯誤只扣它自己的分數",
            f"{spec['path']} from {spec['produced_by']} is invalid ({problem[1]}); {notebook} was graded with the "
            "reference's copy so that one early mistake costs only its own checks"), notebook))
        return True

    def _run(self, name: str, KernelSession):
        """Run one notebook; if a cell took the kernel down, run it once more in a fresh kernel
        without the cells that did, so that what worked still scores."""
        session = self._start(KernelSession, name)
        self.isolation, self.degraded_reason = session.isolation, session.degraded_reason
        run = session.run_notebook(self.notebooks[name])
        self._note_process_limit(session, name)
        if run.kernel_lost:
            fatal = {r.cell for r in run.cells if r.ename in ("died", "killed")}
            session.close()
            session = self._start(KernelSession, name)
            rerun = session.run_notebook(self.notebooks[name], skip=fatal)
            self._note_process_limit(session, name)
            # Keep the first run's record of the fatal cells; the re-run's for the others.
            first = {r.cell: r for r in run.cells}
            rerun.cells = [first[r.cell] if r.cell in fatal else r for r in rerun.cells]
            rerun.rerun = True
            return session, rerun
        return session, run

    def _start(self, KernelSession, name: str):
        session = KernelSession(self.scratch, self.policy, self.uid)
        self.sessions.append(session)
        session.start()
        if session.cold_reason:
            self.flags.append(Flag(F.WARM_KERNEL_FALLBACK, f"the kernel for {name} started cold instead of from the "
                                   f"warm-kernel zygote: {session.cold_reason}", name))
        if session.slow_start:
            self.flags.append(Flag(F.SLOW_KERNEL_START, f"the kernel for {name} did not answer in time and was "
                                   f"started again (took {session.start_s:.0f} s in all)", name))
        return session

    def _note_process_limit(self, session, name: str) -> None:
        if session.cgroup is not None and session.cgroup.hit_limit():
            self.flags.append(Flag(F.PROCESS_LIMIT, f"{name} tried to start more than {self.policy.max_processes} "
                                   "processes; further forks were refused", name))

    @staticmethod
    def _cell_record(r) -> dict:
        return {"cell": str(r.cell), "status": r.status, "error": _last_line(r.error), "elapsed_s": round(r.elapsed_s, 2)}

    def __exit__(self, *exc) -> None:
        for session in self.sessions:
            with contextlib.suppress(Exception):
                self.peak_rss_mb = max(self.peak_rss_mb, session.peak_rss_mb)
            with contextlib.suppress(Exception):
                session.close()
        self._tmp.cleanup()


def run_suite(assignment: Assignment, submission, reference, options: GradeOptions, seed: int,
              collect_only: bool = False):
    """Run the assignment's pytest suite in this (trusted) process; return the plugin, which
    holds the check results, the collected specs and the suite's declaration errors."""
    import pytest

    from graders.plugin.plugin import GradingPlugin

    plugin = GradingPlugin(submission=submission, reference=reference, profile=options.profile, assignment=assignment,
                           visible_only=options.visible_only, seed=seed, lang=options.lang)
    args = [str(assignment.suite_dir), "-q", "-p", "no:cacheprovider", "-p", "no:randomly",
            "--rootdir", str(paths.REPO_ROOT), "-W", "ignore::DeprecationWarning"] + (["--collect-only"] if collect_only else [])
    sink = io.StringIO()
    with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
        code = pytest.main(args, plugins=[plugin])
    if code not in (0, 1) and not plugin.results and not (collect_only and plugin.collected):
        raise RuntimeError(f"the grader suite did not run (pytest exit {int(code)}): {_last_line(sink.getvalue())}")
    return plugin


def in_notebook_order(assignment: Assignment, results) -> list[dict]:
    """Checks in the order a student meets their test cells; checks bound to no cell come last."""
    import nbformat

    order: dict[str, int] = {}
    for name in assignment.notebooks:
        for cell in nbformat.read(paths.RELEASE / assignment.name / name, as_version=4).cells:
            order.setdefault(cell.get("id", ""), len(order))
    position = {r.id: order.get(r.cell or "", len(order)) for r in results}
    return [r.to_json() for r in sorted(results, key=lambda r: position[r.id])]


def student_seed(student: str) -> int:
    return int.from_bytes(hashlib.sha256(student.encode()).digest()[:4], "little")


def grade_submission(assignment: Assignment, student: str, submission_dir: Path, options: GradeOptions,
                     reference=None, version: str = "", extra_hidden: list[str] | None = None) -> dict:
    start = time.perf_counter()
    common = dict(assignment=assignment.name, student=student, grader_version=version, profile=options.profile)
    try:
        taken = intake(assignment, submission_dir)
    except Exception as err:  # intake handles bad notebooks itself; this is an unreadable folder
        return build_result(**common, checks=[], flags=[], files={}, isolation="none", status=UNGRADED,
                            reason=f"intake failed: {type(err).__name__}: {err}", max_score=0.0)
    flags = list(taken.flags)
    late = _late(assignment, submission_dir, flags)
    policy = make_policy(assignment, options, extra_hidden or [])
    executed = ExecutedNotebooks(assignment, taken.notebooks, taken.unreadable, policy, reference)
    try:
        with executed as submission:
            plugin = run_suite(assignment, submission, reference, options, student_seed(student))
        checks, spec_errors = in_notebook_order(assignment, plugin.results), plugin.spec_errors
        max_score = sum(spec.points for spec in plugin.collected)
    except Exception as err:
        detail = _last_line(traceback.format_exc())
        return build_result(**common, checks=[], flags=[f.to_json() for f in flags + executed.flags],
                            files=taken.files_sha256, isolation=executed.isolation, status=UNGRADED,
                            reason=f"grader error: {type(err).__name__}: {err} ({detail})", cells=executed.cells,
                            duration_s=time.perf_counter() - start, max_score=0.0)
    if spec_errors:
        return build_result(**common, checks=checks, flags=[f.to_json() for f in flags], files=taken.files_sha256,
                            isolation=executed.isolation, status=UNGRADED,
                            reason="the grader suite is misdeclared: " + "; ".join(spec_errors), cells=executed.cells)
    flags += executed.flags
    if executed.sessions and executed.isolation != "bwrap":
        flags.append(Flag(F.ISOLATION_DEGRADED, executed.degraded_reason or "ran without bubblewrap (rlimits only)"))
    result = build_result(**common, checks=checks, flags=[f.to_json() for f in flags], files=taken.files_sha256,
                          isolation=executed.isolation, status=GRADED, cells=executed.cells, max_score=max_score,
                          duration_s=time.perf_counter() - start, peak_memory_mb=round(executed.peak_rss_mb, 1))
    result["late"] = late
    return result


def _late(assignment: Assignment, submission_dir: Path, flags: list[Flag]) -> dict | None:
    """The late-policy record of nbgrader's timestamp.txt; a late or unreadable one is flagged."""
    from graders.errors import CourseError
    from graders.records.late import late_penalty

    try:
        late = late_penalty(assignment.settings, submission_dir)
    except CourseError as err:
        flags.append(Flag(F.LATE, f"the submission time could not be read ({err}); no late penalty applied"))
        return None
    if late and late.get("days_late"):
        flags.append(Flag(F.LATE, f"submitted {late['days_late']} day(s) after the due date "
                          f"{late.get('due')}; penalty {100 * late.get('penalty_fraction', 0):.0f}%"))
    return late
