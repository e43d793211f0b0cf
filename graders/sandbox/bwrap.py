"""bubblewrap: whether it runs here, and the command line that wraps a kernel in it."""
from __future__ import annotations

import functools
import shutil
import subprocess
import sys
from pathlib import Path


@functools.lru_cache(maxsize=1)
def available() -> tuple[bool, str]:
    """Try bwrap once with the namespaces we need; (False, why) when it is absent or refused."""
    path = shutil.which("bwrap")
    if path is None:
        return False, "bwrap is not installed (apt-get install bubblewrap)"
    probe = subprocess.run([path, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--unshare-net",
                            "--unshare-pid", "--unshare-user", "--die-with-parent", "true"],
                           capture_output=True, text=True, timeout=30)
    if probe.returncode != 0:
        return False, f"bwrap is installed but refused here: {probe.stderr.strip()[:200]}"
    return True, path


SANDBOX_UID = 1000  # the kernel's uid inside its user namespace (mapped to the grader's outside)


def wrap(argv: list[str], scratch: Path, hidden: list[str], needed: list[str] = ()) -> list[str]:
    """``argv`` inside a read-only view of / with ``scratch`` writable and ``hidden`` emptied.

    /tmp becomes a private tmpfs; what the kernel needs that lives under /tmp (a checkout or a
    venv there, ``needed`` plus this interpreter's prefixes) is bound back read-only first, and
    the hidden paths are emptied after that, so nothing hidden comes back with it.
    """
    cmd = [shutil.which("bwrap") or "bwrap", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc",
           "--tmpfs", "/tmp", "--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts",
           "--unshare-user", "--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_UID), "--die-with-parent", "--new-session"]
    scratch_s = str(scratch.resolve())
    for path in sorted({str(Path(p).resolve()) for p in [*needed, sys.prefix, sys.base_prefix]}):
        if path.startswith("/tmp/") and Path(path).exists():
            cmd += ["--ro-bind", path, path]
    for path in sorted(set(hidden)):
        if Path(path).exists():
            cmd += ["--tmpfs", str(Path(path).resolve())]
    # The scratch folder is bound last so that no hidden path can cover it.
    cmd += ["--bind", scratch_s, scratch_s, "--chdir", scratch_s, "--"]
    return cmd + argv
