"""A pids cgroup per kernel: the one limit on a process tree that a fork bomb cannot outrun.

RLIMIT_NPROC does not bind root, and the kernel runs as root outside its user namespace when
the grader does; a cgroup's ``pids.max`` binds everyone. cgroup v1 (``/sys/fs/cgroup/pids``) and
v2 (``/sys/fs/cgroup`` with the pids controller) are both tried; where neither is writable the
limit is reported as unavailable and the sampler in KernelSession is the backstop.
"""
from __future__ import annotations

import contextlib
import os
import signal
import time
import uuid
from pathlib import Path

CANDIDATES = (Path("/sys/fs/cgroup/pids"), Path("/sys/fs/cgroup"))
PREFIX = "llm-one-piece-"  # then the grader's pid, then a random part


def _owner_gone(path: Path) -> bool:
    from graders.sandbox.scratch import owner_gone

    try:
        return owner_gone(int(path.name[len(PREFIX):].split("-")[0]))
    except (ValueError, IndexError):
        return True  # an older name without the owner's pid: nobody can be using it for long


def _kill_and_remove(path: Path) -> None:
    """Kill until empty, then remove; a dying task keeps the cgroup busy for a moment (EBUSY)."""
    for _ in range(100):
        with contextlib.suppress(OSError, ValueError):
            for pid in [int(p) for p in (path / "cgroup.procs").read_text().split()]:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        try:
            path.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:
            time.sleep(0.05)


def sweep(root: Path) -> None:
    """Kill what is left in, and remove, the cgroups of graders that are gone."""
    for path in root.glob(PREFIX + "*"):
        if path.is_dir() and _owner_gone(path):
            _kill_and_remove(path)


def sweep_all() -> None:
    for root in CANDIDATES:
        if (root / "cgroup.procs").exists() and os.access(root, os.W_OK):
            sweep(root)


class PidsCgroup:
    def __init__(self, max_pids: int):
        self.path: Path | None = None
        self.reason = ""
        for root in CANDIDATES:
            if not (root / "cgroup.procs").exists() or not os.access(root, os.W_OK):
                continue
            if root == Path("/sys/fs/cgroup") and "pids" not in (root / "cgroup.subtree_control").read_text(errors="ignore"):
                continue
            path = root / f"{PREFIX}{os.getpid()}-{uuid.uuid4().hex[:12]}"
            try:
                path.mkdir()
                (path / "pids.max").write_text(str(max_pids))
            except OSError as err:
                with contextlib.suppress(OSError):
                    path.rmdir()
                self.reason = f"{root}: {err}"
                continue
            self.path = path
            return
        self.reason = self.reason or "no writable pids cgroup (not root, or no pids controller)"

    @property
    def procs_file(self) -> str | None:
        return str(self.path / "cgroup.procs") if self.path else None

    def hit_limit(self) -> bool:
        """True when a fork was refused because of pids.max (a fork bomb, or a very busy kernel)."""
        if self.path is None:
            return False
        events = self.path / "pids.events"
        with contextlib.suppress(OSError, ValueError):
            return int(events.read_text().split()[-1]) > 0
        return False

    def close(self) -> None:
        if self.path is not None:
            _kill_and_remove(self.path)
        self.path = None
