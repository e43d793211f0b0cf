"""Scratch folders that name the process owning them, so that no command leaves one behind.

Every temporary folder the course tools make is ``$TMPDIR/course-pid<pid>-<kind>-XXXX`` (the
``pid`` marker keeps names such as ``course-12-ddp-…`` from older versions out of reach). A process
removes its own on exit; ``sweep()`` removes those whose owner is gone (a pool worker killed
mid-grade, a grader stopped with SIGKILL), together with their pids cgroups (``cgroup.sweep``).
A folder of a live process, this machine's other graders included, is never touched. Folders
in the naming of earlier versions (``course-<assignment>-XXXX``, no owner) go once they are an
hour old and no process works in them or names them.
"""
from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from pathlib import Path

import psutil

PREFIX = "course-"
OWNED = re.compile(rf"^{PREFIX}pid(\d+)-")
LEGACY = re.compile(rf"^{PREFIX}(?!pid\d|test-)[\w.-]+-[a-z0-9_]{{8}}$")  # tempfile's 8-character tail
LEGACY_AGE_S = 3600


def scratch_dir(kind: str) -> tempfile.TemporaryDirectory:
    """A TemporaryDirectory named after this process and ``kind`` (removed on cleanup)."""
    return tempfile.TemporaryDirectory(prefix=f"{PREFIX}pid{os.getpid()}-{kind}-")


def owner_gone(pid: int) -> bool:
    return not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def orphans(root: Path | None = None) -> list[Path]:
    """Scratch folders under ``root`` (default: the temp dir) whose owner process is gone."""
    root = Path(root or tempfile.gettempdir())
    found = []
    for path in root.glob(f"{PREFIX}*"):
        match = OWNED.match(path.name)
        with contextlib.suppress(psutil.Error, ValueError):
            if match and path.is_dir() and owner_gone(int(match.group(1))):
                found.append(path)
    return found


def legacy_orphans(root: Path | None = None) -> list[Path]:
    """Old-style scratch folders an hour old that no live process uses (cwd or command line)."""
    import time

    root = Path(root or tempfile.gettempdir())
    old = [p for p in root.glob(f"{PREFIX}*") if LEGACY.match(p.name) and p.is_dir()
           and time.time() - p.stat().st_mtime > LEGACY_AGE_S]
    if not old:
        return []
    used: set[str] = set()
    for proc in psutil.process_iter(["cwd", "cmdline"]):
        used.add(proc.info.get("cwd") or "")
        used.update(proc.info.get("cmdline") or [])
    return [p for p in old if not any(str(p) in u for u in used)]


def sweep(root: Path | None = None) -> int:
    """Remove orphaned scratch folders and cgroups; returns how many folders went."""
    from graders.sandbox import cgroup

    cgroup.sweep_all()
    gone = 0
    for path in orphans(root) + legacy_orphans(root):
        shutil.rmtree(path, ignore_errors=True)
        gone += not path.exists()
    return gone
