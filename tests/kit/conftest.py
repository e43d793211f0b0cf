"""A student kit built once per session, and a fresh clone of it with its own venv.

The clone's venv is made the way a student's is (``pip install -e .`` of the kit) except that
the heavy stack is hard-linked from this checkout's venv instead of downloaded, less this
checkout's own editable install: ``graders`` and ``common_utils`` come from the clone only. Folders are world-readable because the sandboxed
kernel runs under an unprivileged uid.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

import pytest

from graders.assignment import list_assignments


@pytest.fixture(scope="session")
def open_tmp():
    folder = Path(tempfile.mkdtemp(prefix="kit-test-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def student_kit(open_tmp) -> Path:
    from graders.kit.build import build_kit

    out = open_tmp / "kit"
    build_kit(list_assignments(), out)
    return out


def _git(*args, cwd: Path) -> None:
    subprocess.run(["git", "-c", "user.email=kit@example.org", "-c", "user.name=kit", *args], cwd=cwd,
                   check=True, capture_output=True)


@pytest.fixture(scope="session")
def kit_clone(student_kit, open_tmp) -> Path:
    """A clone of the kit as a student gets it, installed into its own .venv/ (bin/course)."""
    _git("init", "-q", cwd=student_kit)
    _git("add", "-A", cwd=student_kit)
    _git("commit", "-qm", "student kit", cwd=student_kit)
    clone = open_tmp / "clone"
    _git("clone", "-q", str(student_kit), str(clone), cwd=open_tmp)
    venv = clone / ".venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = next(venv.glob("lib/python*/site-packages"))
    shutil.rmtree(site)
    # Hard links: seconds instead of a 2 GB copy, and a venv of its own that the sandbox binds.
    subprocess.run(["cp", "-al", sysconfig.get_paths()["purelib"], str(site)], check=True)
    for ours in [*site.glob("__editable__*llm_one_piece*"), *site.glob("llm_one_piece-*.dist-info")]:
        shutil.rmtree(ours) if ours.is_dir() else ours.unlink()
    pip = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--no-deps",
                          "--no-build-isolation", "-e", str(clone)], capture_output=True, text=True)
    assert pip.returncode == 0, pip.stderr[-2000:]
    subprocess.run(["chmod", "-R", "a+rX", str(open_tmp)], check=True)
    return clone


def kit_env(clone: Path) -> dict:
    """The environment of a student's shell in the clone: its venv first on PATH, nothing of ours."""
    env = {k: v for k, v in os.environ.items() if k not in ("COURSE_ROOT", "PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = str(clone / ".venv" / "bin") + os.pathsep + env.get("PATH", "")
    return env
