"""bubblewrap: whether it runs here, and the command line that wraps a kernel in it.

As root, bwrap runs privileged (no user namespace: a user namespace would map the kernel onto
root outside, and root reads every file whatever its mode). It builds the mounts as root, then
the kernel drops to its own unprivileged uid (``DROP`` below) before ipykernel starts, which
also clears every capability. Not as root, bwrap makes a user namespace and the kernel keeps the
grader's uid.
"""
from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from pathlib import Path

from graders.sandbox.limits import reachable_by_others

# Run by the sandbox's interpreter as root inside the mounts: become ``uid``, then exec the kernel.
DROP = "import os, sys; u = int(sys.argv[1]); os.setgroups([]); os.setgid(u); os.setuid(u); os.execv(sys.argv[2], sys.argv[2:])"


def _namespaces() -> list[str]:
    flags = ["--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--die-with-parent", "--new-session"]
    return flags if os.geteuid() == 0 else [*flags, "--unshare-user"]


@functools.lru_cache(maxsize=1)
def available() -> tuple[bool, str]:
    """Try bwrap once with the namespaces we need; (False, why) when it is absent or refused
    (macOS, a container that forbids namespaces)."""
    path = shutil.which("bwrap")
    if path is None:
        return False, "bwrap is not installed (apt-get install bubblewrap)"
    try:
        probe = subprocess.run([path, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", *_namespaces(), "true"],
                               capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as err:
        return False, f"bwrap is installed but could not be run: {err}"
    if probe.returncode != 0:
        return False, f"bwrap is installed but refused here: {probe.stderr.strip()[:200]}"
    return True, path


def _between(cover: str, path: str) -> list[str]:
    """The folders strictly between ``cover`` and ``path``, outermost first."""
    parts = Path(path).relative_to(cover).parts[:-1]
    return [str(Path(cover, *parts[: i + 1])) for i in range(len(parts))]


def wrap(argv: list[str], scratch: Path, hidden: list[str], needed: list[str] = (), uid: int | None = None) -> list[str]:
    """``argv`` inside a read-only view of / with ``scratch`` writable and ``hidden`` emptied,
    run as ``uid`` when given (the grader is root).

    /tmp becomes a private tmpfs. Under ``uid``, every folder that stops an unprivileged user on
    the way to what the kernel needs (root's home holding a pyenv interpreter) is covered by a
    tmpfs too. What the kernel needs under those covers (``needed``, this interpreter's
    prefixes) is bound back read-only first, through folders it may cross; the hidden paths are
    emptied after that, so nothing hidden comes back with it; the scratch folder is bound last.
    """
    cmd = [shutil.which("bwrap") or "bwrap", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", *_namespaces()]
    scratch_s = str(Path(scratch).resolve())
    wanted = sorted({str(Path(p).resolve()) for p in [*needed, sys.prefix, sys.base_prefix,
                                                      Path(sys.executable).resolve().parent] if Path(p).exists()})
    covers = {"/tmp"}
    if uid is not None:
        covers |= {stop for p in [*wanted, scratch_s] if (stop := reachable_by_others(Path(p)))}
    covers = sorted(c for c in covers if not any(c.startswith(o + "/") for o in covers))  # outermost only
    for cover in covers:
        cmd += ["--perms", "1777" if cover == "/tmp" else "0755", "--tmpfs", cover]
    made: set[str] = set()
    for path in [*wanted, scratch_s]:
        cover = next((c for c in covers if path.startswith(c + "/")), None)
        if cover is None:
            continue
        for folder in _between(cover, path):
            if folder not in made:
                made.add(folder)
                cmd += ["--perms", "0755", "--dir", folder]
        if path != scratch_s:
            cmd += ["--ro-bind", path, path]
    for path in sorted(set(hidden)):
        if Path(path).is_file():  # a git worktree's .git is a file: a tmpfs cannot cover it
            cmd += ["--ro-bind", "/dev/null", str(Path(path).resolve())]
        elif Path(path).exists():
            cmd += ["--tmpfs", str(Path(path).resolve())]
    cmd += ["--bind", scratch_s, scratch_s, "--chdir", scratch_s, "--"]
    if uid is not None:
        cmd += [sys.executable, "-c", DROP, str(uid), sys.executable]
        argv = argv[1:] if argv[:1] == [sys.executable] else argv
    return cmd + argv
