"""The reference: the solution notebooks executed under the same profile, once per batch.

Suites compare with it by calling its functions in its live kernels (``reference.nb(NB).call``),
reading its values and copying its artifacts. How a process gets it:

- ``LazyReference``: started on first use (a suite that never asks for it costs nothing) and
  kept alive for the whole run, so every student's checks compare against the same run. Used by
  ``course check``, ``--jobs 1`` and a batch whose suite never names the reference.
- ``SharedReference`` / ``AttachedReference``: a pool of workers shares one reference. The batch
  process runs it in a thread while the workers start on the first submissions; each worker
  attaches to its kernels (graders/sandbox/attached.py) when its checks first ask, waiting until
  the run is over. The kernels, their scratch folder and its artifacts stay the batch process's:
  a worker reads and calls, and the student kernels never see that folder (the sandbox shows
  each kernel its own scratch alone).
"""
from __future__ import annotations

import ast
import json
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat

from graders import paths
from graders.assignment import Assignment


class ReferenceUnavailable(RuntimeError):
    pass


class LazyReference:
    def __init__(self, assignment: Assignment, options):
        self.assignment = assignment
        self.options = options
        self._executed = None
        self._handle = None
        self.timeout_s = 60.0

    def _get(self):
        if self._handle is None:
            self._open()
        self._handle.timeout_s = self.timeout_s
        return self._handle

    def _open(self) -> None:
        from graders.engine.grade_one import ExecutedNotebooks, make_policy

        folder = paths.SOLUTIONS / self.assignment.name
        if paths.is_student_kit():
            raise ReferenceUnavailable("a student kit holds no reference solution")
        if not folder.is_dir():
            raise ReferenceUnavailable(f"solutions/{self.assignment.name} is missing: run `course release`")
        notebooks = {n: nbformat.read(folder / n, as_version=4) for n in self.assignment.notebooks}
        for nb in notebooks.values():
            for cell in nb.cells:
                if cell.cell_type == "code":
                    cell.outputs, cell.execution_count = [], None
        self._executed = ExecutedNotebooks(self.assignment, notebooks, {}, make_policy(self.assignment, self.options, []))
        self._handle = self._executed.__enter__()
        broken = [(nb, c["cell"], c["error"]) for nb, cells in self._executed.cells.items()
                  for c in cells if c["status"] != "ok"]
        if broken:
            nb, cell, error = broken[0]
            raise ReferenceUnavailable(f"the reference solution fails in {nb} cell {cell}: {error}")

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._get(), name)

    def close(self) -> None:
        if self._executed is not None:
            self._executed.__exit__(None, None, None)
            self._executed = self._handle = None


def suite_uses_reference(assignment: Assignment) -> bool:
    """Whether a check or fixture of the suite takes ``reference``, or the assignment declares
    artifacts whose missing copies come from the reference (graders/engine/grade_one.py)."""
    if assignment.settings.get("artifacts"):
        return True
    for source in Path(assignment.suite_dir).glob("*.py"):
        for node in ast.walk(ast.parse(source.read_text(), str(source))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                if any(arg.arg == "reference" for arg in node.args.args + node.args.kwonlyargs):
                    return True
    return False


@dataclass
class ReferenceLink:
    """What a worker needs to find the batch's reference: paths only, so it pickles anywhere."""
    manifest: str  # JSON, there once the run is over: the kernels (pid, connection, scratch, uid) or its error
    turns: dict  # notebook -> lock file: one request at a time per kernel (graders/sandbox/attached.py)
    wait_s: float

    def read(self) -> dict:
        deadline = time.monotonic() + self.wait_s
        while not Path(self.manifest).exists():  # written whole, then renamed into place
            if time.monotonic() > deadline:
                raise ReferenceUnavailable(f"the reference solution did not finish within {self.wait_s:g} s")
            time.sleep(0.1)
        manifest = json.loads(Path(self.manifest).read_text())
        if manifest.get("error"):
            raise ReferenceUnavailable(manifest["error"])
        return manifest


class SharedReference:
    """The batch process's side: run the reference once, in a thread, and say where it is."""

    def __init__(self, assignment: Assignment, options):
        from graders.sandbox.scratch import scratch_dir

        from graders.engine.grade_one import make_policy
        from graders.sandbox.kernel import START_TIMEOUT_S

        self._reference = LazyReference(assignment, options)
        self._folder = scratch_dir("reference-link")
        policy = make_policy(assignment, options, [])  # a kernel may start twice, then run to its guard
        wait_s = len(assignment.notebooks) * (2 * START_TIMEOUT_S + policy.wall_guard(policy.notebook_timeout_s))
        folder = Path(self._folder.name)
        self.link = ReferenceLink(manifest=str(folder / "manifest.json"), wait_s=wait_s,
                                  turns={name: str(folder / f"{name}.turn") for name in assignment.notebooks})
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="reference", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        """Run, publish, then hold the kernels until ``close``: they die with the thread that
        started them (bwrap's --die-with-parent and the zygote's parent-death signal follow
        the thread, not the process)."""
        try:
            try:
                manifest = self._describe(self._reference._get())
            except Exception as err:  # every worker's reference checks say why
                manifest = {"error": str(err) if isinstance(err, ReferenceUnavailable) else f"{type(err).__name__}: {err}"}
            path = Path(self.link.manifest)
            path.with_suffix(".tmp").write_text(json.dumps(manifest))
            path.with_suffix(".tmp").rename(path)
            self._stop.wait()
        finally:
            from graders.sandbox import zygote

            self._reference.close()
            zygote.close_all()  # the reference's kernels came from this process's zygote

    @staticmethod
    def _describe(handle) -> dict:
        notebooks = {}
        for name, nb in handle.notebooks.items():
            session = nb._channel.session if nb._channel is not None else None
            notebooks[name] = None if session is None else {"pid": session._proc.pid, "connection": session.connection}
        return {"scratch": str(handle.scratch), "uid": handle.uid, "notebooks": notebooks}

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self._folder.cleanup()


class AttachedReference(LazyReference):
    """A worker's reference: the batch's one run, reached through ``link``; same handles as
    ``LazyReference`` gives, over kernels this process attaches to and never owns. Where a shared
    kernel is gone (it crashed, or its owner was killed) the worker runs its own reference, as
    it did before references were shared; a reference solution that fails fails everywhere."""

    def __init__(self, assignment: Assignment, options, link: ReferenceLink):
        super().__init__(assignment, options)
        self.link = link
        self._sessions: list = []
        self._own: LazyReference | None = None

    def _get(self):
        if self._own is None:
            try:
                handle = super()._get()
                if all(session.alive() for session in self._sessions):
                    return handle
                why = "a kernel of the shared reference is gone"
            except ReferenceUnavailable:
                raise
            except Exception as err:
                why = f"the shared reference cannot be reached ({type(err).__name__}: {err})"
            print(f"course: {why}; this worker runs a reference of its own", file=sys.stderr)
            self.close()
            self._own = LazyReference(self.assignment, self.options)
        self._own.timeout_s = self.timeout_s
        return self._own._get()

    def _open(self) -> None:
        from graders.channel import Channel
        from graders.engine.grade_one import make_policy
        from graders.engine.handles import NotebookHandle, SubmissionHandle
        from graders.sandbox.attached import AttachedKernel, Turns

        manifest = self.link.read()
        scratch, uid = Path(manifest["scratch"]), manifest["uid"]
        policy = make_policy(self.assignment, self.options, [])
        handles = {}
        for name in self.assignment.notebooks:
            kernel = manifest["notebooks"].get(name)
            if kernel is None:
                handles[name] = NotebookHandle(name, None, scratch, f"the reference did not run {name}")
                continue
            session = AttachedKernel(scratch, policy, uid, kernel["pid"], kernel["connection"], Turns(self.link.turns[name]))
            self._sessions.append(session)
            session.start()
            handles[name] = NotebookHandle(name, Channel(session), scratch)
        self._handle = SubmissionHandle(handles, scratch, uid)

    def close(self) -> None:
        for session in self._sessions:
            session.close()
        self._sessions, self._handle = [], None
        if self._own is not None:
            self._own.close()
