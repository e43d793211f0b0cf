"""bubblewrap: whether it runs here, and the command line that wraps a kernel in it.

The view is an allow-list. The kernel's root is an empty, read-only tmpfs into which we bind,
read-only: the system folders (``SYSTEM``), this interpreter's prefixes, and the paths the
policy names as needed (the course's ``common_utils``); then a private /tmp, a minimal /dev
(plus GPU device nodes where they exist), /proc, and the scratch folder, the only writable
place. Anything else on the host (the instructor tree, other checkouts of the course, other
users' homes, earlier terms' results) is simply not there.

As root, bwrap runs privileged (no user namespace: a user namespace would map the kernel onto
root outside, and root reads every file whatever its mode). It builds the mounts as root, then
the kernel drops to its own unprivileged uid (``DROP`` below) before ipykernel starts, which
also clears every capability. Not as root, bwrap makes a user namespace and the kernel keeps the
grader's uid.
"""
from __future__ import annotations

import functools
import glob
import os
import shutil
import subprocess
import sys
from pathlib import Path

# Read-only system folders every kernel sees (those that exist; a symlink stays a symlink).
SYSTEM = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc", "/sys")
GPU_DEVICES = ("/dev/nvidia*", "/dev/dri")

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
        probe = subprocess.run([path, *_system_binds(), "--dev", "/dev", "--proc", "/proc", *_namespaces(), "true"],
                               capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as err:
        return False, f"bwrap is installed but could not be run: {err}"
    if probe.returncode != 0:
        return False, f"bwrap is installed but refused here: {probe.stderr.strip()[:200]}"
    return True, path


def _system_binds() -> list[str]:
    args: list[str] = []
    for path in SYSTEM:
        if os.path.islink(path):
            args += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            args += ["--ro-bind", path, path]
    return args


def _parents(path: str) -> list[str]:
    """The folders above ``path``, outermost first, that a bind needs created ('/' excluded)."""
    return [str(p) for p in reversed(Path(path).parents) if str(p) != "/"]


def needed_by_interpreter() -> list[str]:
    """This interpreter's prefixes: the venv and the base installation it was made from."""
    found = {str(Path(p).resolve()) for p in (sys.prefix, sys.base_prefix, Path(sys.executable).resolve().parent.parent)}
    return sorted(p for p in found if Path(p).exists())


def wrap(argv: list[str], scratch: Path, needed: list[str] = (), hidden: list[str] = (), uid: int | None = None,
         caps: tuple[str, ...] = ()) -> list[str]:
    """``argv`` inside the allow-listed view with ``scratch`` writable, run as ``uid`` when given.

    Folders created on the way to a bound path get mode 0755 (bwrap would copy the host's mode,
    and a 0700 /root would stop the unprivileged uid). ``hidden`` paths that fall inside a bound
    path are covered by an empty tmpfs (defence in depth: nothing should be bound above them).
    ``caps`` are capabilities kept by root inside (the warm-kernel zygote's; see ``zygote.py``).
    """
    cmd = [shutil.which("bwrap") or "bwrap", *_system_binds(), "--dev", "/dev", "--proc", "/proc", *_namespaces()]
    for pattern in GPU_DEVICES:  # GPU runners: the device nodes CUDA opens
        for node in sorted(glob.glob(pattern)):
            cmd += ["--dev-bind", node, node]
    cmd += ["--perms", "1777", "--tmpfs", "/tmp"]
    scratch_s = str(Path(scratch).resolve())
    system = tuple(p for p in SYSTEM if os.path.exists(p))
    binds = sorted({str(Path(p).resolve()) for p in [*needed_by_interpreter(), *needed] if Path(p).exists()})
    binds = [p for p in binds if not p.startswith(system) and not any(p.startswith(o + "/") for o in binds)]
    made: set[str] = {"/tmp"}
    for path in [*binds, scratch_s]:
        for folder in _parents(path):
            if folder not in made and not folder.startswith(system):
                made.add(folder)
                cmd += ["--perms", "0755", "--dir", folder]
        if path != scratch_s:
            cmd += ["--ro-bind", path, path]
    for path in sorted({str(Path(p).resolve()) for p in hidden}):
        if Path(path).exists() and any(path.startswith(b + "/") for b in binds):
            # A file (a git worktree's .git) cannot take a tmpfs: an empty file goes over it.
            cmd += ["--ro-bind", "/dev/null", path] if Path(path).is_file() else ["--tmpfs", path]
    cmd += ["--bind", scratch_s, scratch_s, "--remount-ro", "/", "--chdir", scratch_s]
    for cap in caps:
        cmd += ["--cap-add", cap]
    cmd.append("--")
    if uid is not None:
        cmd += [sys.executable, "-c", DROP, str(uid), sys.executable]
        argv = argv[1:] if argv[:1] == [sys.executable] else argv
    return cmd + argv
