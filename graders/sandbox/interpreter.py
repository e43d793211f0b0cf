"""An interpreter the kernel's unprivileged uid can run when there is no bubblewrap.

Without bwrap nothing re-binds folders, so a kernel that drops to its own uid must reach the
interpreter on the host as it is. A pyenv build under /root (mode 0700) is out of its reach. We
never relax the host's modes; instead we mirror the base installation beside the venv, once:
a farm of hard links (or copies across file systems) of the executable, libpython and the
standard library, under ``<venv>/.course-kernel/``, plus a venv shim whose site-packages is
the course venv's. The mirror holds nothing but public Python files.

What the uid still cannot reach (the venv itself, the course's common_utils) is a configuration
error: ``KernelIdentityError`` says how to fix it, and the kernel is never run as root instead.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import sys
import sysconfig
import tempfile
from pathlib import Path

from graders.errors import CourseError
from graders.sandbox.limits import reachable_by_others

MIRROR = ".course-kernel"


class KernelIdentityError(CourseError):
    pass


def _mirror_base(base: Path, target: Path) -> None:
    """Hard-link (or copy) what the interpreter needs from ``base`` into ``target``."""
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    skip = {"site-packages", "test", "idlelib", "tkinter", "turtledemo", "ensurepip"}

    def place(src: Path, dst: Path) -> None:
        dst.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)

    place(Path(os.path.realpath(sys.executable)), target / "bin" / version)
    for lib in (base / "lib").glob("libpython*"):
        if lib.is_file():
            place(lib, target / "lib" / lib.name)
    stdlib = base / "lib" / version
    for root, dirs, files in os.walk(stdlib):
        dirs[:] = [d for d in dirs if d not in skip]
        for name in files:
            src = Path(root) / name
            place(src, target / "lib" / version / src.relative_to(stdlib))
    (target / "lib" / version / "site-packages").mkdir(parents=True, exist_ok=True)


def _build(home: Path) -> None:
    """``home`` = a venv shim over a mirror of the base interpreter; built aside, then renamed."""
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    home.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".building-", dir=home.parent))
    try:
        work.chmod(0o755)
        _mirror_base(Path(sys.base_prefix), work / "base")
        (work / "bin").mkdir(mode=0o755)
        (work / "bin" / "python").symlink_to(Path("..") / "base" / "bin" / version)
        (work / "lib" / version).mkdir(parents=True, mode=0o755)
        (work / "lib" / version / "site-packages").symlink_to(sysconfig.get_paths()["purelib"])
        (work / "pyvenv.cfg").write_text(f"home = {home / 'base' / 'bin'}\ninclude-system-site-packages = false\n"
                                         f"version = {sys.version_info.major}.{sys.version_info.minor}.{sys.version_info.micro}\n")
        for root, dirs, files in os.walk(work):
            for d in dirs:
                os.chmod(os.path.join(root, d), 0o755)
        try:
            work.rename(home)
        except OSError:  # another grader built it first
            pass
    finally:
        shutil.rmtree(work, ignore_errors=True)


def kernel_python(uid: int | None, needed: list[str]) -> tuple[str, dict]:
    """(interpreter path, extra environment) for a kernel that runs as ``uid`` without bwrap."""
    if uid is None:
        return sys.executable, {}
    for path in [sys.prefix, sysconfig.get_paths()["purelib"], *needed]:
        if Path(path).exists() and (stop := reachable_by_others(Path(path))):
            raise KernelIdentityError(
                f"without bubblewrap the kernel runs as an unprivileged uid, which cannot reach {path} "
                f"({stop} is closed to other users). Install bubblewrap (apt-get install bubblewrap), or keep "
                "the course checkout and its .venv in folders others may enter, or grade as a normal user.")
    if not reachable_by_others(Path(os.path.realpath(sys.executable))) and not reachable_by_others(Path(sys.base_prefix)):
        return sys.executable, {}
    tag = hashlib.sha256(f"{sys.base_prefix}|{sys.version}".encode()).hexdigest()[:12]
    home = Path(sys.prefix) / MIRROR / f"{sys.implementation.cache_tag}-{tag}"
    if not (home / "pyvenv.cfg").is_file():
        _build(home)
    return str(home / "bin" / "python"), {"LD_LIBRARY_PATH": str(home / "base" / "lib")}
