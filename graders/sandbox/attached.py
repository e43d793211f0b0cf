"""A kernel that another process of the batch started and owns, talked to from a grading worker.

The batch runs the reference solution once, in its own process, and every pool worker calls the
same reference kernels (graders/engine/reference.py). A worker connects to such a kernel over
its ipc sockets, asks and interrupts, but never starts, limits or kills it: its owner does.

Requests from several workers take turns (``Turns``, one lock file per kernel across the batch):
a cell's CPU-time limit is measured on the kernel's whole process tree, which another worker's
request would otherwise inflate, and an interrupt must stop the request that overran, not someone
else's. The turn is an flock, so a worker killed in the middle of a request releases it.
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import queue
import time

import psutil

from graders.sandbox.kernel import INTERRUPT_GRACE_S, TIMEOUT, CellResult, KernelSession

ATTACH_TIMEOUT_S = 60.0


class Turns:
    """A lock across processes that dies with its holder: ``flock`` on ``path``. The interface of
    ``threading.Lock`` that AttachedKernel uses: ``acquire(timeout=...)``, ``release()``."""

    def __init__(self, path: str):
        self.path = path
        self._fd: int | None = None

    def acquire(self, timeout: float) -> bool:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(fd)
                    return False
                time.sleep(0.02)
                continue
            self._fd = fd
            return True

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)  # closing the only descriptor of this open file drops its flock


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
            self._drop_others_output()
            return super().execute(code, timeout, cell)

    def _drop_others_output(self) -> None:
        """Drop what other workers' requests sent on iopub since our last turn: it waits unread in
        our socket, and a full socket would drop our own request's messages instead."""
        if self._client is not None:
            with contextlib.suppress(queue.Empty):
                while True:
                    self._client.get_iopub_msg(timeout=0)

    def _death_reason(self) -> str:
        return "the shared kernel is gone (its owner, the batch process, stopped it)"

    def _teardown(self) -> None:
        """Disconnect; the kernel stays with its owner (a hung one is given up by this worker)."""
        self._disconnect()
