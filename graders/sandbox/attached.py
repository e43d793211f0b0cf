"""A kernel that another process of the batch started and owns, talked to from a grading worker.

The batch runs the reference solution once, in its own process, and every pool worker calls the
same reference kernels (graders/engine/reference.py). A worker connects to such a kernel over
its ipc sockets, asks and interrupts, but never starts, limits or kills it: its owner does.

Requests from several workers take turns (``lock``, one per kernel across the batch): a cell's
CPU-time limit is measured on the kernel's whole process tree, which another worker's request
would otherwise inflate, and an interrupt must stop the request that overran, not someone else's.
"""
from __future__ import annotations

import contextlib

import psutil

from graders.sandbox.kernel import INTERRUPT_GRACE_S, TIMEOUT, CellResult, KernelSession

ATTACH_TIMEOUT_S = 60.0


class OwnedElsewhere:
    """The owner's kernel process as KernelSession sees a Popen: ``pid``, ``poll``, ``wait``."""

    def __init__(self, pid: int):
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            try:
                process = psutil.Process(self.pid)
                gone = not process.is_running() or process.status() == psutil.STATUS_ZOMBIE
            except psutil.Error:
                gone = True
            if gone:
                self.returncode = -1  # not our child: its exit status is its owner's to read
        return self.returncode

    def wait(self, timeout: float | None = None) -> int | None:
        return self.poll()


class AttachedKernel(KernelSession):
    def __init__(self, scratch, policy, uid: int | None, pid: int, connection: dict, lock):
        super().__init__(scratch, policy, uid)
        self.uid = uid
        self.connection = connection
        self._pid = pid
        self._lock = lock

    def start(self, timeout: float = ATTACH_TIMEOUT_S) -> None:
        self._proc = OwnedElsewhere(self._pid)
        self._connect()
        with self._turn(timeout) as mine:
            if not mine:
                raise RuntimeError(f"the shared kernel stayed busy for {timeout:g} s")
            self._wait_ready(timeout)  # also makes sure our iopub subscription is live

    @contextlib.contextmanager
    def _turn(self, timeout: float):
        mine = self._lock.acquire(timeout=timeout)
        try:
            yield mine
        finally:
            if mine:
                self._lock.release()

    def execute(self, code: str, timeout: float, cell: str = "") -> CellResult:
        # Long enough for another worker's request that runs to its own limit and is interrupted.
        wait = self.policy.wall_guard(timeout) + 2 * INTERRUPT_GRACE_S
        with self._turn(wait) as mine:
            if not mine:
                return CellResult(cell, TIMEOUT, error=f"the shared kernel stayed busy for {wait:g} s")
            return super().execute(code, timeout, cell)

    def _death_reason(self) -> str:
        return "the shared kernel is gone (its owner, the batch process, stopped it)"

    def _teardown(self) -> None:
        """Disconnect; the kernel stays with its owner (a hung one is given up by this worker)."""
        self._disconnect()
