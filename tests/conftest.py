"""Shared fixtures of the repository's own tests."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

# Tools of the venv (alembic for nbgrader, jupyter) must be found without activating it.
os.environ["PATH"] = str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", "")
os.environ.setdefault("COURSE_PROFILE", "tiny")

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def course_copy(tmp_path, monkeypatch):
    """A scratch course tree (assignments/, release/, solutions/) that graders.paths points at."""
    import shutil

    from graders import paths

    root = tmp_path / "course"
    for name in ("assignments", "release", "solutions"):
        shutil.copytree(REPO / name, root / name)
    for name in ("ASSIGNMENTS", "RELEASE", "SOLUTIONS"):
        monkeypatch.setattr(paths, name, root / name.lower())
    monkeypatch.setattr(paths, "REPO_ROOT", root)
    return root


@pytest.fixture
def kernel_scratch():
    """A scratch folder a sandboxed kernel's own uid can reach without bubblewrap too (pytest's
    tmp_path sits under a 0700 folder of root's)."""
    import shutil
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="course-test-"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def module_kernel_scratch():
    import shutil
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="course-test-"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)
